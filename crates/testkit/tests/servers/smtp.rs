//! `SmtpSink` as lettre and a raw socket see it: pooled deliveries,
//! pipelining, dot-unstuffing, commands out of order, and the failures it
//! can be switched to. The email sender's own behaviour is tested in
//! `heliograph-notify`, not here.

use std::time::Duration;

use heliograph_testkit::{SinkOptions, SmtpMode, SmtpSink};
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncSmtpTransport, AsyncTransport as _, Message, Tokio1Executor};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// A bound for a loaded machine; every wait returns as soon as its condition holds.
const WAIT: Duration = Duration::from_secs(30);

fn transport(url: &str) -> AsyncSmtpTransport<Tokio1Executor> {
    AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
        .unwrap()
        .timeout(Some(WAIT))
        .build()
}

/// lettre hands a connection back to its pool from a spawned task: on a
/// single-threaded runtime it is back once the test has yielded.
async fn settle() {
    for _ in 0..3 {
        tokio::task::yield_now().await;
    }
}

fn mail(to: &str, id: &str, subject: &str) -> Message {
    Message::builder()
        .from("Acme Status <status@acme.test>".parse().unwrap())
        .to(to.parse().unwrap())
        .subject(subject)
        .message_id(Some(format!("<{id}@acme.test>")))
        .body(String::from(
            "We are looking into it.\r\n.a line that starts with a dot\r\n",
        ))
        .unwrap()
}

#[tokio::test]
async fn lettre_delivers_over_one_pooled_connection_and_the_sink_records_each_message() {
    let sink = SmtpSink::start().await.unwrap();
    assert!(
        sink.url().starts_with("smtp://127.0.0.1:"),
        "{}",
        sink.url()
    );
    let mailer = transport(&sink.url());
    for (i, to) in ["ann@example.test", "bob@example.test", "ann@example.test"]
        .into_iter()
        .enumerate()
    {
        mailer
            .send(mail(
                to,
                &format!("m{i}"),
                "[Acme] Investigating: Café – slow",
            ))
            .await
            .unwrap();
        settle().await;
    }
    assert!(sink.wait_for_count(3, WAIT).await);
    assert_eq!(sink.connections(), 1, "lettre's pool reuses its connection");

    let first = &sink.messages()[0];
    assert_eq!(first.from, "status@acme.test");
    assert_eq!(first.recipients, ["ann@example.test"]);
    assert_eq!(first.message_id.as_deref(), Some("<m0@acme.test>"));
    assert_eq!(
        first.subject.as_deref(),
        Some("[Acme] Investigating: Café – slow"),
        "encoded words are decoded"
    );
    assert_eq!(first.header("to"), Some("ann@example.test"));
    let raw = String::from_utf8(first.raw.clone().unwrap()).unwrap();
    assert!(
        raw.contains("\r\n\r\nWe are looking into it.\r\n.a line that starts with a dot\r\n"),
        "dot-unstuffed: {raw}"
    );

    assert_eq!(sink.count_for("ANN@example.test"), 2);
    assert_eq!(
        sink.message_ids_for("ann@example.test"),
        ["<m0@acme.test>", "<m2@acme.test>"]
    );
    let by = sink.message_ids_by_recipient();
    assert_eq!(by.len(), 2);
    assert_eq!(by["ann@example.test"], ["<m0@acme.test>", "<m2@acme.test>"]);
    assert_eq!(by["bob@example.test"], ["<m1@acme.test>"]);
}

/// Reads from `stream` until `done` says the replies so far are complete.
async fn read_until(stream: &mut TcpStream, done: impl Fn(&str) -> bool) -> String {
    let mut replies = Vec::new();
    let mut buf = [0_u8; 4096];
    while !done(&String::from_utf8_lossy(&replies)) {
        let n = tokio::time::timeout(WAIT, stream.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&replies));
        replies.extend_from_slice(&buf[..n]);
    }
    String::from_utf8(replies).unwrap()
}

fn codes(replies: &str) -> Vec<&str> {
    replies
        .lines()
        // The last line of a multi-line reply has a space after the code.
        .filter(|line| line.as_bytes().get(3) == Some(&b' '))
        .map(|line| &line[..3])
        .collect()
}

#[tokio::test]
async fn pipelined_commands_are_answered_in_order_and_the_text_is_unstuffed_and_unfolded() {
    let sink = SmtpSink::start().await.unwrap();
    let mut stream = TcpStream::connect(sink.addr()).await.unwrap();
    let greeting = read_until(&mut stream, |r| r.ends_with("\r\n")).await;
    assert!(greeting.starts_with("220 "), "{greeting}");

    stream.write_all(b"EHLO client.test\r\n").await.unwrap();
    let ehlo = read_until(&mut stream, |r| r.contains("\r\n250 ")).await;
    for extension in ["PIPELINING", "8BITMIME", "SIZE"] {
        assert!(ehlo.contains(extension), "{ehlo}");
    }

    // Two transactions, a stray command and QUIT in one write, as a
    // pipelining client may send them.
    stream
        .write_all(
            b"MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nRCPT TO:<c@y.test>\r\nDATA\r\n\
              Subject: folded\r\n over two lines\r\nMessage-ID: <p1@x.test>\r\n\r\n\
              ..starts with a dot\r\n.\r\n\
              NOOP\r\nFROB\r\nRSET\r\n\
              MAIL FROM:<>\r\nRCPT TO:<d@y.test>\r\nDATA\r\nSubject: second\r\n\r\nbody\r\n.\r\n\
              QUIT\r\n",
        )
        .await
        .unwrap();
    let replies = read_until(&mut stream, |r| r.contains("221 ")).await;
    assert_eq!(
        codes(&replies),
        [
            "250", "250", "250", "354", "250", "250", "500", "250", "250", "250", "354", "250",
            "221"
        ],
        "{replies}"
    );

    let messages = sink.messages();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0].recipients, ["b@y.test", "c@y.test"]);
    assert_eq!(
        messages[0].subject.as_deref(),
        Some("folded over two lines")
    );
    assert_eq!(messages[0].message_id.as_deref(), Some("<p1@x.test>"));
    assert!(
        messages[0]
            .raw
            .as_deref()
            .unwrap()
            .ends_with(b"\r\n\r\n.starts with a dot\r\n")
    );
    assert_eq!(messages[1].from, "", "the null sender");
    assert_eq!(messages[1].message_id, None);
}

#[tokio::test]
async fn commands_out_of_order_are_refused_and_the_connection_goes_on() {
    let sink = SmtpSink::start().await.unwrap();
    let mut stream = TcpStream::connect(sink.addr()).await.unwrap();
    read_until(&mut stream, |r| r.ends_with("\r\n")).await;
    stream
        .write_all(
            b"MAIL FROM:<a@x.test>\r\nHELO c.test\r\nRCPT TO:<b@y.test>\r\nMAIL FROM:<a@x.test>\r\n\
              DATA\r\nMAIL FROM:<a@x.test>\r\nQUIT\r\n",
        )
        .await
        .unwrap();
    let replies = read_until(&mut stream, |r| r.contains("221 ")).await;
    assert_eq!(
        codes(&replies),
        ["503", "250", "503", "250", "554", "503", "221"],
        "{replies}"
    );
    assert_eq!(sink.count(), 0);
}

#[tokio::test]
async fn refusing_transiently_gives_lettre_a_transient_error_and_accepting_again_delivers() {
    let sink = SmtpSink::start().await.unwrap();

    // A new connection: greeted with 421.
    sink.set_mode(SmtpMode::RefuseTransient);
    let error = transport(&sink.url())
        .send(mail("ann@example.test", "t1", "s"))
        .await
        .unwrap_err();
    assert!(error.is_transient(), "{error:?}");
    assert!(error.to_string().contains("421"), "{error}");

    // An open, pooled connection: MAIL answered 451.
    sink.set_mode(SmtpMode::Accept);
    let mailer = transport(&sink.url());
    mailer
        .send(mail("ann@example.test", "t2", "s"))
        .await
        .unwrap();
    settle().await;
    let connections = sink.connections();
    sink.set_mode(SmtpMode::RefuseTransient);
    let error = mailer
        .send(mail("ann@example.test", "t3", "s"))
        .await
        .unwrap_err();
    assert!(error.is_transient(), "{error:?}");
    assert!(error.to_string().contains("451"), "{error}");
    assert_eq!(
        sink.connections(),
        connections,
        "refused on the open connection"
    );

    sink.set_mode(SmtpMode::Accept);
    mailer
        .send(mail("ann@example.test", "t4", "s"))
        .await
        .unwrap();
    assert_eq!(sink.refused_transient(), 2);
    assert_eq!(
        sink.message_ids_for("ann@example.test"),
        ["<t2@acme.test>", "<t4@acme.test>"]
    );
}

#[tokio::test]
async fn refuse_next_refuses_that_many_transactions_then_accepts() {
    let sink = SmtpSink::start().await.unwrap();
    let mailer = transport(&sink.url());
    sink.refuse_next(2);
    for id in ["r1", "r2"] {
        let error = mailer
            .send(mail("ann@example.test", id, "s"))
            .await
            .unwrap_err();
        assert!(error.is_transient(), "{error:?}");
    }
    mailer
        .send(mail("ann@example.test", "r3", "s"))
        .await
        .unwrap();
    assert_eq!(sink.refused_transient(), 2);
    assert_eq!(sink.count(), 1);
}

#[tokio::test]
async fn a_rejected_recipient_is_a_permanent_error_and_others_still_arrive() {
    let sink = SmtpSink::start().await.unwrap();
    let mailer = transport(&sink.url());
    sink.reject_recipient("Gone@Example.test");
    let error = mailer
        .send(mail("gone@example.test", "p1", "s"))
        .await
        .unwrap_err();
    assert!(error.is_permanent(), "{error:?}");
    assert!(error.to_string().contains("5.1.1"), "{error}");
    mailer
        .send(mail("ann@example.test", "p2", "s"))
        .await
        .unwrap();

    sink.set_mode(SmtpMode::RefusePermanent);
    let error = mailer
        .send(mail("ann@example.test", "p3", "s"))
        .await
        .unwrap_err();
    assert!(error.is_permanent(), "{error:?}");

    sink.set_mode(SmtpMode::Accept);
    sink.accept_recipient("gone@example.test");
    mailer
        .send(mail("gone@example.test", "p4", "s"))
        .await
        .unwrap();
    assert_eq!(sink.refused_permanent(), 2);
    assert_eq!(sink.count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_senders_over_many_connections_all_arrive_and_lean_mode_keeps_the_envelope() {
    let sink = SmtpSink::start_with(SinkOptions::lean()).await.unwrap();
    let mailer = AsyncSmtpTransport::<Tokio1Executor>::from_url(&sink.url())
        .unwrap()
        .pool_config(PoolConfig::new().max_size(8))
        .build();
    let sends = (0..200).map(|i| {
        let mailer = mailer.clone();
        tokio::spawn(async move {
            mailer
                .send(mail(
                    &format!("u{}@example.test", i % 10),
                    &format!("c{i}"),
                    "s",
                ))
                .await
        })
    });
    for send in join_all(sends).await {
        send.unwrap();
    }
    assert!(sink.wait_for_count(200, WAIT).await);
    assert!(sink.connections() > 1, "{}", sink.connections());
    assert_eq!(sink.count_for("u3@example.test"), 20);
    let one = &sink.messages()[0];
    assert!(one.message_id.is_some());
    assert!(one.subject.is_none() && one.headers.is_empty() && one.raw.is_none());
}

async fn join_all<T>(handles: impl Iterator<Item = tokio::task::JoinHandle<T>>) -> Vec<T> {
    let handles: Vec<_> = handles.collect();
    let mut out = Vec::with_capacity(handles.len());
    for handle in handles {
        out.push(handle.await.unwrap());
    }
    out
}

#[tokio::test]
async fn a_message_over_the_size_limit_is_refused_permanently_and_smaller_ones_still_pass() {
    let sink = SmtpSink::start_with(SinkOptions {
        max_message_bytes: 400,
        ..SinkOptions::default()
    })
    .await
    .unwrap();
    let mailer = transport(&sink.url());
    let big = Message::builder()
        .from("status@acme.test".parse().unwrap())
        .to("ann@example.test".parse().unwrap())
        .subject("big")
        .body("x".repeat(600))
        .unwrap();
    let error = mailer.send(big).await.unwrap_err();
    assert!(error.is_permanent(), "{error:?}");
    assert!(error.to_string().contains("5.3.4"), "{error}");
    let small = Message::builder()
        .from("s@a.test".parse().unwrap())
        .to("t@b.test".parse().unwrap())
        .body(String::new())
        .unwrap();
    mailer.send(small).await.unwrap();
    assert_eq!(sink.count(), 1);
}

#[tokio::test]
async fn stop_closes_the_listener_and_open_connections() {
    let sink = SmtpSink::start().await.unwrap();
    let mut open = TcpStream::connect(sink.addr()).await.unwrap();
    read_until(&mut open, |r| r.ends_with("\r\n")).await;
    sink.stop().await;
    assert!(TcpStream::connect(sink.addr()).await.is_err());
    let mut buf = [0_u8; 16];
    assert_eq!(open.read(&mut buf).await.unwrap(), 0, "closed by the sink");
}

#[tokio::test]
async fn accepted_bytes_add_up_the_messages_as_received_in_lean_mode_too() {
    let full = SmtpSink::start().await.unwrap();
    let lean = SmtpSink::start_with(SinkOptions::lean()).await.unwrap();
    let messages = [
        mail("ann@example.test", "b1", "short"),
        mail("bob@example.test", "b2", "a somewhat longer subject"),
    ];
    for sink in [&full, &lean] {
        let mailer = transport(&sink.url());
        for m in &messages {
            mailer.send_raw(m.envelope(), &m.formatted()).await.unwrap();
        }
        assert!(sink.wait_for_count(2, WAIT).await);
    }
    let raw: usize = full
        .messages()
        .iter()
        .map(|m| m.raw.as_ref().map_or(0, Vec::len))
        .sum();
    assert!(raw > 0);
    assert_eq!(full.accepted_bytes(), raw, "as recorded, dot-unstuffed");
    assert_eq!(lean.accepted_bytes(), raw, "the same without recording");
}
