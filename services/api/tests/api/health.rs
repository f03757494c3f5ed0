//! Liveness and readiness.
//!
//! Only the probes: how the API behaves when a dependency stops or hangs is
//! tested in `page_cache` and `frozen`.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::domains::{add, right_records, unique_host, verify};
use crate::helpers::{DnsServer, Infra, TestApp};

#[tokio::test]
async fn healthz_and_readyz_answer_when_dependencies_are_up() {
    let app = TestApp::spawn().await;
    let health = app.get("/healthz", None).await;
    assert_eq!(health.status(), StatusCode::OK);
    let ready = app.get("/readyz", None).await;
    assert_eq!(ready.status(), StatusCode::OK);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(
        body,
        json!({"status": "ready", "checks": {"database": "ok", "redis": "ok"}})
    );
    app.finish().await;
}

#[tokio::test]
async fn readyz_names_the_database_when_it_is_gone() {
    let app = TestApp::spawn().await;
    app.lose_database().await;
    let ready = app.get("/readyz", None).await;
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(
        body,
        json!({"status": "unavailable", "checks": {"database": "unavailable", "redis": "ok"}})
    );
    assert_eq!(
        app.get("/healthz", None).await.status(),
        StatusCode::OK,
        "still alive"
    );
    app.teardown().await;
}

/// GETs `url` with `host` as the `Host`, when given.
async fn status_of(client: &reqwest::Client, url: &str, host: Option<&str>) -> StatusCode {
    let mut request = client.get(url);
    if let Some(host) = host {
        request = request.header(reqwest::header::HOST, host);
    }
    request.send().await.unwrap().status()
}

#[tokio::test]
async fn with_an_admin_addr_the_operators_endpoints_answer_there_and_nowhere_else() {
    let mut dns = DnsServer::start(&[]);
    let app = TestApp::spawn_on(Infra {
        nameserver: Some(dns.addr),
        admin_listener: true,
        ..Infra::default()
    })
    .await;
    let admin = app.admin_address.clone().expect("ADMIN_ADDR is bound");
    assert_ne!(admin, app.address);
    let t = app.signup().await;
    let host = unique_host();
    let (_, domain) = add(&app, &t, &host).await;
    dns.set_records(&right_records(&domain));
    verify(&app, &t, domain["id"].as_str().unwrap()).await;
    let client = &app.client;
    let ask = format!("/internal/tls/ask?domain={host}");

    // The admin listener answers the verified domain as soon as it routes.
    let deadline = Instant::now() + Duration::from_secs(60);
    while status_of(client, &format!("{admin}{ask}"), None).await != StatusCode::OK {
        assert!(
            Instant::now() < deadline,
            "the verified domain never routed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let metrics = client.get(format!("{admin}/metrics")).send().await.unwrap();
    assert_eq!(metrics.status(), StatusCode::OK);
    let text = metrics.text().await.unwrap();
    for name in [
        "heliograph_db_connection_acquisitions_total",
        "heliograph_page_memo_entries",
        "heliograph_page_memo_bytes",
    ] {
        assert!(text.contains(&format!("\n{name} ")), "{name} in {text}");
    }
    assert_eq!(
        status_of(
            client,
            &format!("{admin}/internal/tls/ask?domain=example.com"),
            None
        )
        .await,
        StatusCode::NOT_FOUND
    );

    // The public listener has none of it, by whatever name it is reached.
    let page_host = format!("{}.heliograph.test", t.slug);
    for name in [None, Some(host.as_str()), Some(page_host.as_str())] {
        for path in ["/metrics", ask.as_str(), "/internal/", "/internal/anything"] {
            assert_eq!(
                status_of(client, &app.url(path), name).await,
                StatusCode::NOT_FOUND,
                "{path} on the public listener as {name:?}"
            );
        }
    }
    // Health checks are on both; the API and the pages on the public one only.
    for base in [app.address.as_str(), admin.as_str()] {
        for path in ["/healthz", "/readyz"] {
            assert_eq!(
                status_of(client, &format!("{base}{path}"), None).await,
                StatusCode::OK,
                "{base}{path}"
            );
        }
    }
    assert_eq!(
        status_of(client, &app.url(&format!("/status/{}/", t.slug)), None).await,
        StatusCode::OK
    );
    assert_eq!(
        status_of(client, &app.url("/"), Some(&host)).await,
        StatusCode::OK
    );
    for path in [format!("/status/{}/", t.slug), "/v1/me".to_owned()] {
        assert_eq!(
            status_of(client, &format!("{admin}{path}"), None).await,
            StatusCode::NOT_FOUND,
            "{path} on the admin listener"
        );
    }
    assert_eq!(
        status_of(client, &format!("{admin}/"), Some(&host)).await,
        StatusCode::NOT_FOUND,
        "no page on the admin listener"
    );
    app.finish().await;
}
