//! `HttpReceiver` as reqwest sees it: recording, scripted answers (errors,
//! `Retry-After`, delays, gone, redirects), waiting for requests, and
//! releasing its port. The webhook sender's own behaviour is tested in
//! `heliograph-notify`, not here.

use std::time::Duration;

use heliograph_testkit::{HttpReceiver, Reply, Script};
use tokio::net::TcpStream;

use crate::http_client;

/// A bound for a loaded machine; every wait returns as soon as its condition holds.
const WAIT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn every_request_is_recorded_and_answered_200_by_default() {
    let receiver = HttpReceiver::start().await.unwrap();
    let client = http_client(WAIT);
    let response = client
        .post(receiver.url("/hooks/a?attempt=1"))
        .header("X-Signature", "v1,abc")
        .body(r#"{"event":"incident.created"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), r#"{"ok":true}"#);
    client.delete(receiver.url("other")).send().await.unwrap();

    assert_eq!(receiver.count(), 2);
    let first = &receiver.requests()[0];
    assert_eq!(first.method, "POST");
    assert_eq!(first.path, "/hooks/a?attempt=1");
    assert_eq!(first.path_only(), "/hooks/a");
    assert_eq!(first.header("x-signature"), Some("v1,abc"));
    assert!(
        first.headers.iter().any(|(name, _)| name == "x-signature"),
        "names are lower-cased"
    );
    assert_eq!(first.json().unwrap()["event"], "incident.created");
    assert_eq!(first.status, 200);
    assert_eq!(receiver.requests_to("/hooks/a").len(), 1);
    assert_eq!(receiver.requests_to("/hooks/a?attempt=1").len(), 1);
    assert_eq!(receiver.requests_to("/hooks/a?attempt=2").len(), 0);
    assert_eq!(receiver.requests_to("/other")[0].method, "DELETE");
}

#[tokio::test]
async fn failing_the_first_two_with_503_and_retry_after_then_200_is_what_reqwest_sees() {
    let receiver = HttpReceiver::start().await.unwrap();
    receiver.respond_with(
        "/hooks",
        Script::fail_first(2, Reply::status(503).header("Retry-After", "1")),
    );
    let client = http_client(WAIT);
    let mut seen = Vec::new();
    for _ in 0..3 {
        let response = client.post(receiver.url("/hooks/a")).send().await.unwrap();
        let retry_after = response
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned());
        seen.push((response.status().as_u16(), retry_after));
    }
    assert_eq!(
        seen,
        [
            (503, Some("1".to_owned())),
            (503, Some("1".to_owned())),
            (200, None)
        ]
    );
    let statuses: Vec<u16> = receiver
        .requests_to("/hooks/a")
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, [503, 503, 200]);
}

#[tokio::test]
async fn a_delay_longer_than_the_client_timeout_makes_the_client_time_out() {
    let receiver = HttpReceiver::start().await.unwrap();
    receiver.respond_with("/slow", Script::delay(Duration::from_secs(3)));
    let client = http_client(Duration::from_millis(300));
    let error = client.post(receiver.url("/slow")).send().await.unwrap_err();
    assert!(error.is_timeout(), "{error:?}");
    assert_eq!(
        receiver.requests_to("/slow").len(),
        1,
        "recorded before the delay"
    );
    // Other paths are not held up by it.
    assert_eq!(
        client
            .get(receiver.url("/fast"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn queues_gone_redirects_and_the_longest_prefix_decide_the_answer() {
    let receiver = HttpReceiver::start().await.unwrap();
    receiver.respond_to_all(Script::status(500));
    receiver.respond_with("/q", Script::statuses([502, 429]));
    receiver.respond_with("/gone", Script::gone());
    receiver.respond_with("/moved", Script::redirect("/new-home"));
    let client = http_client(WAIT);
    let status = |path: &'static str| {
        let request = client.get(receiver.url(path));
        async move { request.send().await.unwrap() }
    };
    assert_eq!(status("/q").await.status(), 502);
    assert_eq!(status("/q").await.status(), 429);
    assert_eq!(status("/q").await.status(), 200, "then the default");
    assert_eq!(status("/gone/x").await.status(), 410);
    assert_eq!(status("/anything").await.status(), 500);
    let moved = status("/moved").await;
    assert_eq!(moved.status(), 302);
    assert_eq!(moved.headers()["location"], "/new-home");

    receiver.respond_with("/gone", Script::always(Reply::ok().body("back")));
    assert_eq!(status("/gone").await.text().await.unwrap(), "back");
    receiver.clear_scripts();
    assert_eq!(status("/anything").await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_for_returns_once_enough_requests_arrived_and_false_on_timeout() {
    let receiver = HttpReceiver::start().await.unwrap();
    let client = http_client(WAIT);
    for i in 0..20 {
        let request = client.post(receiver.url(&format!("/n/{i}"))).body("x");
        tokio::spawn(async move { request.send().await });
    }
    assert!(receiver.wait_for(20, WAIT).await);
    assert!(!receiver.wait_for(21, Duration::from_millis(100)).await);
}

#[tokio::test]
async fn stop_releases_the_port() {
    let receiver = HttpReceiver::start().await.unwrap();
    receiver.stop().await;
    assert!(TcpStream::connect(receiver.addr()).await.is_err());
}
