//! Liveness and readiness.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::TestApp;

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
