//! The fast path answers a page's documents ahead of the middleware stack,
//! and answers exactly what the general path answers: the same status,
//! bytes and headers (validators, cache, CSP, CORS, `Vary`, encoding,
//! `X-Request-Id`), for `GET` and `HEAD`, with and without gzip, fresh or
//! 304 — checked against a replica on the same database whose fast path is
//! off (`PAGE_FAST_PATH=false`). What it does not know (unknown hosts and
//! slugs) it leaves to the general path, which answers from memory.

use heliograph_api::{Application, PageServing};
use reqwest::{Method, StatusCode};
use serde_json::json;
use sha2::{Digest as _, Sha256};

use crate::helpers::{Tenant, TestApp};
use crate::page_cache::{
    DOCUMENTS, db_use_at, metric_in, metrics_text, queries_beyond_change_reads,
};

/// What clients send as `Accept-Encoding`: nothing, plain only, browsers',
/// gzip refused, gzip preferred less than plain, an encoding we lack,
/// everything refused (the compression middleware's 406).
const ENCODINGS: [Option<&str>; 7] = [
    None,
    Some("identity"),
    Some("gzip, deflate, br, zstd"),
    Some("gzip;q=0"),
    Some("gzip;q=0.5, identity"),
    Some("br"),
    Some("identity;q=0, *;q=0"),
];

/// Headers that differ between any two answers (`X-Request-Id` is checked
/// present on both instead).
const PER_ANSWER: [&str; 2] = ["date", "x-request-id"];

/// A page whose documents do not depend on when they were rendered (no
/// outage under way, which would move today's bar by the minute): two
/// replicas that build it at different moments render the same bytes.
async fn steady_page(app: &TestApp, t: &Tenant) {
    let p = &format!("/v1/pages/{}", t.page_id);
    app.component(t, "API").await;
    let (status, _) = app
        .post(
            &format!("{p}/components"),
            Some(&t.token),
            &json!({"component": {"name": "Billing job", "visibility": "private"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    for body in [
        json!({"name": "Yesterday's blip", "status": "resolved", "body": "Fixed."}),
        json!({"name": "Database upgrade", "scheduled_for": "2099-01-01T10:00:00Z",
               "scheduled_until": "2099-01-01T11:00:00Z"}),
    ] {
        let (status, answer) = app
            .post(
                &format!("{p}/incidents"),
                Some(&t.token),
                &json!({"incident": body}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
    }
}

/// Status, headers (but [`PER_ANSWER`]'s, sorted) and the body's length
/// and SHA-256 (readable when two differ).
type Seen = (StatusCode, Vec<(String, String)>, (usize, String));

async fn fetch(
    client: &reqwest::Client,
    method: &Method,
    url: &str,
    host: Option<&str>,
    encoding: Option<&str>,
    if_none_match: Option<&str>,
) -> Seen {
    let mut request = client.request(method.clone(), url);
    if let Some(host) = host {
        request = request.header("host", host);
    }
    if let Some(encoding) = encoding {
        request = request.header("accept-encoding", encoding);
    }
    if let Some(etag) = if_none_match {
        request = request.header("if-none-match", etag);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    assert!(
        status == StatusCode::NOT_ACCEPTABLE || response.headers().contains_key("x-request-id"),
        "{method} {url} {encoding:?}: no X-Request-Id"
    );
    let mut headers: Vec<(String, String)> = response
        .headers()
        .iter()
        .filter(|(name, _)| !PER_ANSWER.contains(&name.as_str()))
        .map(|(name, value)| (name.to_string(), value.to_str().unwrap().to_owned()))
        .collect();
    headers.sort();
    let body = response.bytes().await.unwrap();
    let digest: String = Sha256::digest(&body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    (status, headers, (body.len(), digest))
}

/// A counter of `/metrics`.
async fn metric(client: &reqwest::Client, address: &str, name: &str) -> u64 {
    metric_in(&metrics_text(client, address).await, name)
}

#[tokio::test]
async fn every_document_answers_the_same_bytes_and_headers_with_the_fast_path_as_without() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    steady_page(&app, &t).await;
    let mut config = app.config.clone();
    config.page_serving = PageServing {
        fast_path: false,
        ..PageServing::default()
    };
    let slow = Application::build(&config)
        .await
        .expect("the replica starts");
    let slow_address = format!("http://127.0.0.1:{}", slow.port());
    tokio::spawn(slow.run_until_stopped());
    let client = reqwest::Client::new();
    let host = format!("{}.heliograph.test", t.slug);
    let roots = [
        (format!("/status/{}", t.slug), None),
        (String::new(), Some(host.as_str())),
    ];
    // Both warm: a page's first read builds it (on the general path).
    for address in [&app.address, &slow_address] {
        for (root, host) in &roots {
            for path in DOCUMENTS {
                let url = format!("{address}{root}{path}");
                let (status, ..) = fetch(&client, &Method::GET, &url, *host, None, None).await;
                assert_eq!(status, StatusCode::OK, "{url}");
            }
        }
    }
    let fast_before = metric(&client, &app.address, "heliograph_page_fast_answers_total").await;
    let slow_before = metric(&client, &slow_address, "heliograph_page_fast_answers_total").await;
    let queries_before = db_use_at(&client, &app.address).await;
    let (mut compared, mut gzipped, mut not_modified) = (0, 0, 0);
    for (root, host) in &roots {
        for path in DOCUMENTS {
            for encoding in ENCODINGS {
                for method in [Method::GET, Method::HEAD] {
                    let on = format!("{}{root}{path}", app.address);
                    let off = format!("{slow_address}{root}{path}");
                    let fast = fetch(&client, &method, &on, *host, encoding, None).await;
                    let general = fetch(&client, &method, &off, *host, encoding, None).await;
                    assert_eq!(fast, general, "{method} {root}{path} {encoding:?}");
                    compared += 1;
                    let etag = fast.1.iter().find(|(name, _)| name == "etag");
                    gzipped += usize::from(
                        fast.1
                            .iter()
                            .any(|h| h == &("content-encoding".into(), "gzip".into())),
                    );
                    if method == Method::HEAD {
                        assert_eq!(fast.2.0, 0, "HEAD {root}{path} sent a body");
                    }
                    // Revalidation: 304 with the same headers but the body's.
                    if let Some((_, etag)) = etag {
                        let fast = fetch(&client, &method, &on, *host, encoding, Some(etag)).await;
                        let general =
                            fetch(&client, &method, &off, *host, encoding, Some(etag)).await;
                        assert_eq!(
                            fast.0,
                            StatusCode::NOT_MODIFIED,
                            "{root}{path} {encoding:?}"
                        );
                        assert_eq!(fast, general, "304 of {method} {root}{path} {encoding:?}");
                        not_modified += 1;
                    }
                }
            }
        }
    }
    let fast_answers =
        metric(&client, &app.address, "heliograph_page_fast_answers_total").await - fast_before;
    println!(
        "{compared} answers compared ({gzipped} gzipped, {not_modified} revalidated); \
         {fast_answers} of them and their 304s answered by the fast path"
    );
    assert!(gzipped > 0 && not_modified > 0);
    // Plain and gzipped answers of every document, and their 304s, took the
    // fast path; what it leaves to the general path is a small part.
    assert!(
        fast_answers >= 2 * 15 * 2 * 3,
        "{fast_answers} fast answers"
    );
    assert_eq!(
        metric(&client, &slow_address, "heliograph_page_fast_answers_total").await,
        slow_before,
        "the replica without the fast path answered none by it"
    );
    assert_eq!(
        queries_beyond_change_reads(&client, &app.address, queries_before).await,
        0,
        "a warm page was answered without the database"
    );
    app.finish().await;
}

#[tokio::test]
async fn the_summary_of_a_warm_page_takes_the_fast_path_and_unknown_pages_take_no_query() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let client = reqwest::Client::new();
    let summary = format!("/status/{}/api/v2/summary.json", t.slug);
    // The first read builds the snapshot, on the general path.
    let fast = || metric(&client, &app.address, "heliograph_page_fast_answers_total");
    let before = fast().await;
    assert_eq!(app.get(&summary, None).await.status(), StatusCode::OK);
    assert_eq!(
        fast().await,
        before,
        "a page not held is built by the general path"
    );
    let queries = db_use_at(&client, &app.address).await;
    for _ in 0..10 {
        let response = app.get(&summary, None).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["access-control-allow-origin"], "*");
    }
    assert_eq!(fast().await, before + 10);
    // Unknown hosts, slugs and documents: 404 from memory, on the general path.
    for (path, host) in [
        (
            "/api/v2/summary.json".to_owned(),
            Some("nobody.heliograph.test"),
        ),
        ("/".to_owned(), Some("status.nobody.example")),
        ("/status/nobody-here/api/v2/summary.json".to_owned(), None),
        (format!("/status/{}/api/v2/nothing.json", t.slug), None),
    ] {
        let response = app.get(&path, host).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path} {host:?}");
    }
    assert_eq!(fast().await, before + 10);
    assert_eq!(
        queries_beyond_change_reads(&client, &app.address, queries).await,
        0,
        "warm and unknown pages were answered without the database"
    );
    app.finish().await;
}
