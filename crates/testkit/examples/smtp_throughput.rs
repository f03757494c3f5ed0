//! How many messages per second lettre pushes into a lean `SmtpSink`, with
//! client and sink on one runtime, as the delivery benchmark runs them.
//!
//! ```text
//! cargo run --release -p heliograph-testkit --example smtp_throughput -- [MESSAGES] [pooled|nodelay] [CONCURRENCY]
//! ```
//!
//! Defaults: 100000 messages, `pooled`, 32 sends in flight.
//!
//! - `pooled`: lettre's `AsyncSmtpTransport` with a pool as large as the
//!   concurrency, which is how `heliograph-notify` sends. lettre 0.11.23
//!   never sets `TCP_NODELAY`: it writes the body and then the final `.` as
//!   two writes, Nagle's algorithm holds the second until the body is
//!   acknowledged, and Linux delays that ACK by 40 ms, so each connection
//!   would carry about 23 messages a second whatever the server. The
//!   workspace builds lettre with that fixed (`vendor/README.md`); this
//!   mode shows the effect of the patch: about 720 messages a second at 32
//!   in flight without it, about 27,000 with it (2 cores).
//! - `nodelay`: the same lettre SMTP client on connections the example opens
//!   itself with `TCP_NODELAY` set (`AsyncSmtpConnection::connect_with_transport`),
//!   one per task: what the sink takes once the client is not waiting.

#![allow(
    clippy::print_stdout,
    reason = "an example reports its measurement on standard output"
)]

use std::error::Error;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use heliograph_testkit::{SinkOptions, SmtpSink};
use lettre::message::Mailbox;
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport as _, Message, Tokio1Executor};
use tokio::net::TcpStream;

type BoxError = Box<dyn Error + Send + Sync>;

fn message(from: &Mailbox, i: usize) -> Result<Message, BoxError> {
    Ok(Message::builder()
        .from(from.clone())
        .to(format!("subscriber{}@example.test", i % 1000).parse()?)
        .subject("[Acme] Investigating: Elevated errors")
        .message_id(Some(format!("<{i}@acme.test>")))
        .body(String::from("We are looking into it.\r\n"))?)
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let mut args = std::env::args().skip(1);
    let total: usize = args.next().map_or(Ok(100_000), |n| n.parse())?;
    let nodelay = match args.next().as_deref() {
        None | Some("pooled") => false,
        Some("nodelay") => true,
        Some(other) => return Err(format!("unknown client {other:?}: pooled or nodelay").into()),
    };
    let concurrency: usize = args.next().map_or(Ok(32), |n| n.parse())?;

    let sink = SmtpSink::start_with(SinkOptions::lean()).await?;
    let mailer = AsyncSmtpTransport::<Tokio1Executor>::from_url(&sink.url())?
        .pool_config(PoolConfig::new().max_size(u32::try_from(concurrency)?))
        .build();
    let from: Mailbox = "Acme Status <status@acme.test>".parse()?;
    let next = Arc::new(AtomicUsize::new(0));

    let started = Instant::now();
    let mut senders = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let (mailer, from, next) = (mailer.clone(), from.clone(), Arc::clone(&next));
        let addr = sink.addr();
        senders.push(tokio::spawn(async move {
            let mut connection = if nodelay {
                let stream = TcpStream::connect(addr).await?;
                stream.set_nodelay(true)?;
                let connection = AsyncSmtpConnection::connect_with_transport(
                    Box::new(stream),
                    &ClientId::default(),
                )
                .await?;
                Some(connection)
            } else {
                None
            };
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    if let Some(connection) = connection.as_mut() {
                        connection.quit().await?;
                    }
                    return Ok::<_, BoxError>(());
                }
                let message = message(&from, i)?;
                match connection.as_mut() {
                    Some(connection) => {
                        connection
                            .send(message.envelope(), &message.formatted())
                            .await?;
                    }
                    None => {
                        mailer.send(message).await?;
                    }
                }
            }
        }));
    }
    for sender in senders {
        sender.await??;
    }
    if !sink.wait_for_count(total, Duration::from_secs(10)).await {
        return Err(format!("the sink has {} of {total} messages", sink.count()).into());
    }
    let elapsed = started.elapsed();
    println!(
        "{total} messages, {} client, {concurrency} in flight: {:.2} s, {:.0} messages/s, {} connections",
        if nodelay { "nodelay" } else { "pooled" },
        elapsed.as_secs_f64(),
        f64::from(u32::try_from(total)?) / elapsed.as_secs_f64(),
        sink.connections(),
    );
    Ok(())
}
