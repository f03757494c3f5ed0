//! What reaches the logs and spans: no link token, and the client address
//! the API trusts.

use std::time::Duration;

use heliograph_api::Application;
use heliograph_testkit::captured_logs;
use reqwest::{Method, Response};
use uuid::Uuid;

use crate::helpers::TestApp;

/// The request id a response names, once its request's span is captured.
async fn captured_request(response: &Response) -> String {
    let id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        captured_logs()
            .wait_for(&format!("request_id={id}"), Duration::from_secs(30))
            .await,
        "the span of request {id} is captured"
    );
    id
}

/// The captured span of request `id`.
fn request_span(id: &str) -> String {
    let spans: Vec<String> = captured_logs()
        .matching(&format!("request_id={id}"))
        .into_iter()
        .filter(|l| l.starts_with("span HTTP request"))
        .collect();
    assert_eq!(spans.len(), 1, "{spans:?}");
    spans[0].clone()
}

#[tokio::test]
async fn a_link_token_in_a_query_string_reaches_no_log_and_no_span() {
    captured_logs();
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let secret = format!("secret{}", Uuid::new_v4().simple());
    let requests = [
        (
            Method::GET,
            format!("/status/{}/unsubscribe?token={secret}", t.slug),
        ),
        (
            Method::POST,
            format!("/status/{}/unsubscribe?token={secret}", t.slug),
        ),
        (
            Method::GET,
            format!("/status/{}/subscriptions/confirm?token={secret}", t.slug),
        ),
        (
            Method::GET,
            format!("/v1/pages/{}/subscribers?page=1&token={secret}", t.page_id),
        ),
        (
            Method::GET,
            format!("/v1/pages/{}/subscribers/count?q={secret}", t.page_id),
        ),
    ];
    let mut ids = Vec::new();
    for (method, path) in requests {
        let response = app
            .client
            .request(method, app.url(&path))
            .bearer_auth(&t.token)
            .send()
            .await
            .unwrap();
        ids.push(captured_request(&response).await);
    }
    let first = request_span(&ids[0]);
    assert!(
        first.contains(&format!(
            "http.target=/status/{}/unsubscribe?token=[redacted]",
            t.slug
        )),
        "the span shows the path and the parameter's name: {first}"
    );
    assert!(
        request_span(&ids[3]).contains("?page=1&token=[redacted]"),
        "pagination stays readable"
    );
    let leaked = captured_logs().matching(&secret);
    assert!(leaked.is_empty(), "the token reached the log: {leaked:?}");
    app.finish().await;
}

#[tokio::test]
async fn the_request_span_names_the_client_address_the_api_trusts() {
    captured_logs();
    let app = TestApp::spawn().await;
    // Behind a proxy (the tests' API trusts it): the entry it added, the
    // last one; the first is whatever the client wrote.
    let response = app
        .client
        .get(app.url("/healthz"))
        .header("x-forwarded-for", "203.0.113.66, 198.51.100.23")
        .send()
        .await
        .unwrap();
    let span = request_span(&captured_request(&response).await);
    assert!(span.contains("http.client_ip=198.51.100.23"), "{span}");
    assert!(!span.contains("203.0.113.66"), "{span}");

    // Not behind a proxy: the peer, whatever the header says.
    let mut direct = app.config.clone();
    direct.trust_proxy_headers = false;
    let server = Application::build(&direct).await.unwrap();
    let address = format!("http://127.0.0.1:{}", server.port());
    tokio::spawn(server.run_until_stopped());
    let response = app
        .client
        .get(format!("{address}/healthz"))
        .header("x-forwarded-for", "203.0.113.66")
        .send()
        .await
        .unwrap();
    let span = request_span(&captured_request(&response).await);
    assert!(span.contains("http.client_ip=127.0.0.1"), "{span}");
    assert!(!span.contains("203.0.113.66"), "{span}");
    app.finish().await;
}
