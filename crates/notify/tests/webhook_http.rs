//! The webhook sender against real HTTP receivers on loopback: what each
//! answer means for the delivery, that redirects are not followed, that the
//! SSRF guard refuses internal targets (by name and by literal address), and
//! that the Standard Webhooks headers arrive and verify.

#![allow(
    clippy::unwrap_used,
    reason = "a test that cannot go on should fail loudly where it stopped"
)]

use std::sync::Mutex;
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine as _;
use heliograph_notify::{
    AllowedTargets, HttpDelivery, HttpOutcome, WebhookClient, WebhookSecret, signed_headers,
};
use hmac::{Hmac, Mac};
use sha2::Sha256;

const LOOPBACK: AllowedTargets = AllowedTargets {
    loopback: true,
    private: false,
};
const REFUSED: &str =
    "the target resolves to an address that is not allowed (loopback/private/link-local/metadata)";

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct Receiver {
    received: Mutex<Vec<Received>>,
}

async fn record(req: HttpRequest, body: web::Bytes, state: web::Data<Receiver>) -> HttpResponse {
    state.received.lock().unwrap().push(Received {
        path: req.path().to_owned(),
        headers: req
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
            .collect(),
        body: body.to_vec(),
    });
    match req.path() {
        "/gone" => HttpResponse::Gone().finish(),
        "/busy" => HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", "7"))
            .body("try later"),
        "/moved-for-now" => HttpResponse::Found()
            .insert_header(("Location", "/landed"))
            .finish(),
        "/moved" => HttpResponse::MovedPermanently()
            .insert_header(("Location", "/landed"))
            .finish(),
        "/refuse" => HttpResponse::BadRequest().body(format!(
            "invalid_payload\n\n{}",
            "the receiver explains itself at length ".repeat(200)
        )),
        // Never answers: only the client's own timeout can end the request.
        "/slow" => std::future::pending().await,
        _ => HttpResponse::Ok().body("ok"),
    }
}

/// A receiver on 127.0.0.1 with a port of its own: its origin and what it saw.
async fn receiver() -> (String, web::Data<Receiver>) {
    let state = web::Data::new(Receiver::default());
    (serve(state.clone(), record), state)
}

/// Serves every request with `handler`, `state` shared, on 127.0.0.1 with
/// a port of its own (one worker); answers the origin.
fn serve<S, H, Args>(state: web::Data<S>, handler: H) -> String
where
    S: Send + Sync + 'static,
    H: actix_web::Handler<Args> + Clone + Send + 'static,
    Args: actix_web::FromRequest + 'static,
    H::Output: actix_web::Responder + 'static,
{
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .default_service(web::to(handler.clone()))
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let port = server.addrs()[0].port();
    tokio::spawn(server.run());
    format!("127.0.0.1:{port}")
}

fn client(allow: AllowedTargets, timeout: Duration) -> WebhookClient {
    drop(rustls::crypto::ring::default_provider().install_default());
    WebhookClient::new(allow, timeout, "Heliograph-Webhooks/test").unwrap()
}

async fn post(client: &WebhookClient, url: &str) -> HttpDelivery {
    client
        .post_json(url, Vec::<(String, String)>::new(), br#"{"ping":{}}"#)
        .await
}

fn paths(state: &Receiver) -> Vec<String> {
    state
        .received
        .lock()
        .unwrap()
        .iter()
        .map(|r| r.path.clone())
        .collect()
}

#[actix_web::test]
async fn a_2xx_answer_is_delivered_with_the_json_and_our_user_agent() {
    let (host, state) = receiver().await;
    let sent = post(
        &client(LOOPBACK, Duration::from_secs(5)),
        &format!("http://{host}/hook"),
    )
    .await;
    assert_eq!(
        sent,
        HttpDelivery {
            outcome: HttpOutcome::Delivered,
            status: Some(200),
            retry_after: None,
            error: None,
        }
    );
    let received = state.received.lock().unwrap();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].body, br#"{"ping":{}}"#);
    assert_eq!(received[0].header("content-type"), Some("application/json"));
    assert_eq!(
        received[0].header("user-agent"),
        Some("Heliograph-Webhooks/test")
    );
}

#[actix_web::test]
async fn a_410_means_the_receiver_is_gone() {
    let (host, _) = receiver().await;
    let sent = post(
        &client(LOOPBACK, Duration::from_secs(5)),
        &format!("http://{host}/gone"),
    )
    .await;
    assert_eq!(sent.outcome, HttpOutcome::Gone);
    assert_eq!(sent.status, Some(410));
    assert_eq!(
        sent.error.as_deref(),
        Some("the receiver answered 410 Gone")
    );
}

#[actix_web::test]
async fn a_503_is_transient_and_its_retry_after_is_read() {
    let (host, _) = receiver().await;
    let sent = post(
        &client(LOOPBACK, Duration::from_secs(5)),
        &format!("http://{host}/busy"),
    )
    .await;
    assert_eq!(sent.outcome, HttpOutcome::Transient);
    assert_eq!(sent.status, Some(503));
    assert_eq!(sent.retry_after, Some(Duration::from_secs(7)));
    assert_eq!(
        sent.error.as_deref(),
        Some("the receiver answered 503 Service Unavailable: try later")
    );
}

#[actix_web::test]
async fn redirects_are_answers_and_are_never_followed() {
    let (host, state) = receiver().await;
    let client = client(LOOPBACK, Duration::from_secs(5));

    // Classified as retry.rs says: a temporary redirect may go away, a
    // permanent one will not.
    let temporary = post(&client, &format!("http://{host}/moved-for-now")).await;
    assert_eq!(temporary.outcome, HttpOutcome::Transient);
    assert_eq!(temporary.status, Some(302));
    assert_eq!(
        temporary.error.as_deref(),
        Some("the receiver answered 302 Found (redirects are not followed)")
    );
    let permanent = post(&client, &format!("http://{host}/moved")).await;
    assert_eq!(permanent.outcome, HttpOutcome::Permanent);
    assert_eq!(permanent.status, Some(301));

    assert_eq!(
        paths(&state),
        ["/moved-for-now", "/moved"],
        "/landed never reached"
    );
}

#[actix_web::test]
async fn a_refusal_is_permanent_and_quotes_only_the_start_of_the_answer() {
    let (host, _) = receiver().await;
    let sent = post(
        &client(LOOPBACK, Duration::from_secs(5)),
        &format!("http://{host}/refuse"),
    )
    .await;
    assert_eq!(sent.outcome, HttpOutcome::Permanent);
    assert_eq!(sent.status, Some(400));
    let error = sent.error.unwrap();
    assert!(
        error.starts_with(
            "the receiver answered 400 Bad Request: invalid_payload the receiver explains"
        ),
        "{error}"
    );
    assert!(error.ends_with("..."), "{error}");
    assert!(error.chars().count() <= 200, "{}", error.chars().count());
}

#[actix_web::test]
async fn a_receiver_that_does_not_answer_in_time_is_transient() {
    let (host, _) = receiver().await;
    // The receiver never answers, so this returns only through the client's
    // timeout (the outer bound is there to fail clearly, not to measure).
    let sent = actix_web::rt::time::timeout(
        Duration::from_secs(60),
        post(
            &client(LOOPBACK, Duration::from_millis(300)),
            &format!("http://{host}/slow"),
        ),
    )
    .await
    .expect("the client's timeout ends the request");
    assert_eq!(sent.outcome, HttpOutcome::Transient);
    assert_eq!(sent.status, None);
    assert_eq!(
        sent.error.as_deref(),
        Some("the receiver did not answer within 300 ms")
    );
}

#[actix_web::test]
async fn an_unreachable_receiver_is_transient_and_the_error_keeps_the_url_out() {
    // Slack and Teams URLs carry their secret in the path.
    let sent = post(
        &client(LOOPBACK, Duration::from_secs(5)),
        "http://127.0.0.1:9/services/T0000/B0000/s3cr3tpathtoken",
    )
    .await;
    assert_eq!(sent.outcome, HttpOutcome::Transient);
    let error = sent.error.unwrap();
    assert!(error.starts_with("could not connect: "), "{error}");
    assert!(
        !error.contains("s3cr3t") && !error.contains("127.0.0.1"),
        "{error}"
    );
}

#[actix_web::test]
async fn loopback_is_refused_by_name_and_by_address_unless_allowed() {
    let (host, state) = receiver().await;
    let port = host.rsplit(':').next().unwrap();
    let guarded = client(AllowedTargets::default(), Duration::from_secs(5));

    // By name: the resolver drops 127.0.0.1 and ::1, so nothing is left to connect to.
    let by_name = post(&guarded, &format!("http://localhost:{port}/hook")).await;
    // By literal address, which never reaches a resolver.
    let by_address = post(&guarded, &format!("http://{host}/hook")).await;
    let mapped = post(&guarded, &format!("http://[::ffff:127.0.0.1]:{port}/hook")).await;
    let decimal = post(&guarded, &format!("http://2130706433:{port}/hook")).await;
    for sent in [by_name, by_address, mapped, decimal] {
        assert_eq!(sent.outcome, HttpOutcome::Permanent, "{sent:?}");
        assert_eq!(sent.status, None);
        assert_eq!(sent.error.as_deref(), Some(REFUSED));
    }
    assert!(paths(&state).is_empty(), "nothing reached the receiver");

    let allowed = post(
        &client(LOOPBACK, Duration::from_secs(5)),
        &format!("http://localhost:{port}/hook"),
    )
    .await;
    assert_eq!(allowed.outcome, HttpOutcome::Delivered, "{allowed:?}");
    assert_eq!(paths(&state), ["/hook"]);
}

#[actix_web::test]
async fn metadata_and_private_addresses_are_refused_before_any_connection() {
    // Even with loopback allowed; and refused before any connection: an
    // attempt to these would end in a timeout (transient) instead.
    let client = client(LOOPBACK, Duration::from_secs(2));
    for url in [
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/",
        "https://[fd00:ec2::254]/",
        "http://0.0.0.0:80/",
    ] {
        let sent = post(&client, url).await;
        assert_eq!(sent.outcome, HttpOutcome::Permanent, "{url}: {sent:?}");
        assert_eq!(sent.error.as_deref(), Some(REFUSED), "{url}");
    }
}

#[actix_web::test]
async fn only_http_urls_are_sent_to() {
    let client = client(LOOPBACK, Duration::from_secs(2));
    for (url, error) in [
        (
            "ftp://127.0.0.1/hook",
            "the target's scheme is not http or https",
        ),
        (
            "file:///etc/passwd",
            "the target's scheme is not http or https",
        ),
        ("not a url", "the target is not a valid URL"),
        ("http://", "the target is not a valid URL"),
    ] {
        let sent = post(&client, url).await;
        assert_eq!(sent.outcome, HttpOutcome::Permanent, "{url}");
        assert_eq!(sent.error.as_deref(), Some(error), "{url}");
    }
}

#[actix_web::test]
async fn a_header_value_that_cannot_be_sent_is_permanent_and_not_quoted() {
    let (host, state) = receiver().await;
    let sent = client(LOOPBACK, Duration::from_secs(2))
        .post_json(
            &format!("http://{host}/hook"),
            [("authorization", "Bearer s3cr3t\nInjected: yes")],
            b"{}",
        )
        .await;
    assert_eq!(sent.outcome, HttpOutcome::Permanent);
    assert_eq!(
        sent.error.as_deref(),
        Some("the value of header authorization is not valid")
    );
    assert!(paths(&state).is_empty());
}

#[actix_web::test]
async fn standard_webhooks_headers_arrive_and_verify() {
    let (host, state) = receiver().await;
    let secret = WebhookSecret::generate();
    let body = br#"{"meta":{"event":"ping"}}"#;
    let id = "msg_0193a1b2c3d4";
    let timestamp = 1_795_328_661;
    let sent = client(LOOPBACK, Duration::from_secs(5))
        .post_json(
            &format!("http://{host}/hook"),
            signed_headers(&secret, id, timestamp, body),
            body,
        )
        .await;
    assert_eq!(sent.outcome, HttpOutcome::Delivered, "{sent:?}");

    let received = state.received.lock().unwrap()[0].clone();
    assert_eq!(received.header("webhook-id"), Some(id));
    assert_eq!(received.header("webhook-timestamp"), Some("1795328661"));
    // Verified as a receiver would, from the shown secret and what arrived.
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.expose().strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{}.", received.header("webhook-timestamp").unwrap()).as_bytes());
    mac.update(&received.body);
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    let signatures = received.header("webhook-signature").unwrap();
    assert!(
        signatures.split(' ').any(|s| s == format!("v1,{expected}")),
        "{signatures}"
    );
    assert_eq!(received.body, body);
}

/// A receiver that holds every request until released, counting how many
/// it holds at once.
#[derive(Default)]
struct Holding {
    now: std::sync::atomic::AtomicUsize,
    most: std::sync::atomic::AtomicUsize,
    released: tokio::sync::Notify,
    arrived: tokio::sync::Notify,
    open: std::sync::atomic::AtomicBool,
}

async fn hold(state: web::Data<Holding>) -> HttpResponse {
    use std::sync::atomic::Ordering::SeqCst;
    let now = state.now.fetch_add(1, SeqCst) + 1;
    state.most.fetch_max(now, SeqCst);
    state.arrived.notify_waiters();
    while !state.open.load(SeqCst) {
        let released = state.released.notified();
        if state.open.load(SeqCst) {
            break;
        }
        released.await;
    }
    state.now.fetch_sub(1, SeqCst);
    HttpResponse::Ok().body("ok")
}

async fn holding_receiver() -> (String, web::Data<Holding>) {
    let state = web::Data::new(Holding::default());
    (serve(state.clone(), hold), state)
}

#[actix_web::test]
async fn a_slow_origin_gets_no_more_than_its_share_and_holds_back_no_other() {
    use std::sync::atomic::Ordering::SeqCst;
    let (slow_host, slow) = holding_receiver().await;
    let (quick_host, quick) = receiver().await;
    let client = client(LOOPBACK, Duration::from_secs(30)).per_origin(3);
    let held: Vec<_> = (0..10)
        .map(|n| {
            let client = client.clone();
            let url = format!("http://{slow_host}/hook/{n}");
            actix_web::rt::spawn(async move { post(&client, &url).await })
        })
        .collect();
    // Three reach the slow receiver; the other seven wait for a place.
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let arrived = slow.arrived.notified();
            if slow.now.load(SeqCst) >= 3 {
                break;
            }
            arrived.await;
        }
    })
    .await
    .expect("three requests reach the slow origin");
    // Another origin is served meanwhile.
    let sent = post(&client, &format!("http://{quick_host}/hook")).await;
    assert_eq!(sent.outcome, HttpOutcome::Delivered);
    assert_eq!(paths(&quick), ["/hook"]);
    assert_eq!(
        slow.now.load(SeqCst),
        3,
        "the slow origin still holds its three"
    );
    slow.open.store(true, SeqCst);
    slow.released.notify_waiters();
    for request in held {
        assert_eq!(request.await.unwrap().outcome, HttpOutcome::Delivered);
    }
    assert_eq!(slow.most.load(SeqCst), 3, "never more than three at once");
}
