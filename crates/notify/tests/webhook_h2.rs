//! HTTP/2 where a TLS receiver offers it: the webhook client negotiates it
//! (ALPN) and sends a burst to one origin as streams of one connection; a
//! receiver that offers only HTTP/1.1 gets HTTP/1.1 on kept-alive
//! connections. The receiver is the test's own, on loopback: a certificate
//! made at start, HTTP/2 served by `h2` over tokio-rustls, HTTP/1.1 by hand.

#![allow(
    clippy::unwrap_used,
    reason = "a test that cannot go on should fail loudly where it stopped"
)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use heliograph_notify::{AllowedTargets, Guard, HttpOutcome, WebhookClient};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

const LOOPBACK: AllowedTargets = AllowedTargets {
    loopback: true,
    private: false,
};

/// What the receiver saw: TLS connections, and requests by protocol.
#[derive(Default)]
struct Seen {
    connections: AtomicUsize,
    protocols: Mutex<Vec<&'static str>>,
}

/// A TLS receiver on loopback offering `alpn` (in order of preference),
/// answering every request 200; its port, its certificate, what it saw.
async fn receiver(alpn: &[&[u8]]) -> (u16, CertificateDer<'static>, Arc<Seen>) {
    drop(rustls::crypto::ring::default_provider().install_default());
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let der = cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(signing_key.serialize_der()));
    let mut config = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![der.clone()], key)
        .unwrap();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Seen::default());
    let shared = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, seen) = (acceptor.clone(), Arc::clone(&shared));
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                seen.connections.fetch_add(1, Ordering::SeqCst);
                if tls.get_ref().1.alpn_protocol() == Some(b"h2") {
                    serve_h2(tls, &seen).await;
                } else {
                    serve_http1(tls, &seen).await;
                }
            });
        }
    });
    (port, der, seen)
}

async fn serve_h2(tls: tokio_rustls::server::TlsStream<tokio::net::TcpStream>, seen: &Arc<Seen>) {
    let Ok(mut connection) = h2::server::handshake(tls).await else {
        return;
    };
    while let Some(Ok((request, mut respond))) = connection.accept().await {
        let seen = Arc::clone(seen);
        tokio::spawn(async move {
            let mut body = request.into_body();
            while let Some(Ok(chunk)) = body.data().await {
                drop(body.flow_control().release_capacity(chunk.len()));
            }
            seen.protocols.lock().unwrap().push("h2");
            let response = http::Response::builder().status(200).body(()).unwrap();
            drop(respond.send_response(response, true));
        });
    }
}

/// HTTP/1.1, kept alive: requests one after another on the connection.
async fn serve_http1(
    tls: tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
    seen: &Arc<Seen>,
) {
    let mut stream = BufReader::new(tls);
    loop {
        let mut length = 0;
        let mut line = String::new();
        if stream.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        loop {
            line.clear();
            if stream.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            if line == "\r\n" {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; length];
        stream.read_exact(&mut body).await.unwrap();
        seen.protocols.lock().unwrap().push("http/1.1");
        let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
        if stream.get_mut().write_all(answer).await.is_err() {
            return;
        }
    }
}

fn client(certificate: CertificateDer<'static>) -> WebhookClient {
    WebhookClient::with_guard_and_roots(
        Guard::new(LOOPBACK),
        Duration::from_secs(10),
        "heliograph-test",
        [reqwest::Certificate::from_der(&certificate).unwrap()],
    )
    .unwrap()
}

/// Sends `n` webhooks at once to `url`; each must be delivered.
async fn burst(client: &WebhookClient, url: &str, n: usize) {
    let sends = (0..n).map(|i| {
        let body = format!("{{\"n\":{i}}}");
        async move {
            client
                .post_json(url, [("webhook-id", format!("msg_{i}"))], body.as_bytes())
                .await
        }
    });
    for delivery in futures::future::join_all(sends).await {
        assert_eq!(delivery.outcome, HttpOutcome::Delivered, "{delivery:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_offering_http2_gets_a_burst_as_streams_of_one_connection() {
    let (port, certificate, seen) = receiver(&[b"h2", b"http/1.1"]).await;
    let client = client(certificate);
    let url = format!("https://localhost:{port}/hook");
    // One first, so that the connection (and what it speaks) is settled
    // before the burst: then every request has it to share.
    burst(&client, &url, 1).await;
    burst(&client, &url, 20).await;
    let protocols = seen.protocols.lock().unwrap().clone();
    assert_eq!(protocols.len(), 21);
    assert!(protocols.iter().all(|p| *p == "h2"), "{protocols:?}");
    assert_eq!(
        seen.connections.load(Ordering::SeqCst),
        1,
        "twenty-one requests, one connection"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_offering_only_http1_gets_it_on_connections_kept_alive() {
    let (port, certificate, seen) = receiver(&[b"http/1.1"]).await;
    let client = client(certificate);
    let url = format!("https://localhost:{port}/hook");
    const REQUESTS: usize = 10;
    for _ in 0..REQUESTS {
        burst(&client, &url, 1).await;
    }
    let protocols = seen.protocols.lock().unwrap().clone();
    assert_eq!(protocols, vec!["http/1.1"; REQUESTS]);
    // Kept alive: connections are used again. Not necessarily one: the
    // client gives a connection back to its pool from a task of its own
    // once the answer is read, and a request that comes first opens another.
    let connections = seen.connections.load(Ordering::SeqCst);
    assert!(
        connections < REQUESTS,
        "{REQUESTS} requests one after another took {connections} connections: none was kept alive"
    );
}
