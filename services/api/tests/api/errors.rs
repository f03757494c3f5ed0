//! Bad input answers a JSON error with a stable code and changes nothing.
//!
//! What every endpoint shares; each endpoint's own rules are tested with it.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, unique_email};

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

fn fields(body: &Value) -> Vec<&str> {
    body["error"]["fields"]
        .as_array()
        .map(|f| f.iter().filter_map(|e| e["field"].as_str()).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn signup_with_a_taken_slug_is_a_conflict_and_creates_nothing() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let (status, body) = app
        .post(
            "/v1/signup",
            None,
            &json!({"name": "Copycat", "slug": t.slug, "email": unique_email("cat"), "password": "correct horse battery"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(code(&body), "slug_taken");
    assert_eq!(app.count("select count(*) from tenants").await, 1);
    assert_eq!(app.count("select count(*) from users").await, 1);
    app.finish().await;
}

#[tokio::test]
async fn signup_lists_every_invalid_field_and_creates_nothing() {
    let app = TestApp::spawn().await;
    let (status, body) = app
        .post(
            "/v1/signup",
            None,
            &json!({"name": " ", "slug": "Bad Slug", "email": "not-an-email", "password": "short"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(code(&body), "validation_failed");
    assert_eq!(fields(&body), ["name", "slug", "email", "password"]);
    let (status, body) = app.post("/v1/signup", None, &json!({})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&body), ["name", "slug", "email", "password"]);
    assert_eq!(app.count("select count(*) from tenants").await, 0);
    app.finish().await;
}

#[tokio::test]
async fn malformed_json_is_a_bad_request() {
    let app = TestApp::spawn().await;
    let response = app
        .client
        .post(app.url("/v1/signup"))
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert_eq!(code(&body), "malformed_body");
    app.finish().await;
}

#[tokio::test]
async fn writes_without_a_valid_token_are_unauthorized() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let forged = format!("{}x", t.token);
    for path in ["components", "subscribers", "incidents"] {
        for token in [None, Some("not-a-jwt"), Some(forged.as_str())] {
            let (status, body) = app
                .post(
                    &format!("/v1/pages/{}/{path}", t.page_id),
                    token,
                    &json!({}),
                )
                .await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{path} with {token:?}");
            assert_eq!(code(&body), "unauthorized");
        }
    }
    app.finish().await;
}

#[tokio::test]
async fn another_tenants_page_is_not_found_and_untouched() {
    let app = TestApp::spawn().await;
    let a = app.signup().await;
    let b = app.signup().await;
    let component = app.component(&a, "API").await;
    let attempts = [
        ("components", json!({"component": {"name": "Sneaky"}})),
        (
            "subscribers",
            json!({"subscriber": {"email": unique_email("x"), "skip_confirmation_notification": true}}),
        ),
        (
            "incidents",
            json!({"incident": {"name": "Sneaky", "components": {component.clone(): "major_outage"}}}),
        ),
    ];
    for (path, body) in &attempts {
        let (status, answer) = app
            .post(
                &format!("/v1/pages/{}/{path}", a.page_id),
                Some(&b.token),
                body,
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {answer}");
        assert_eq!(code(&answer), "not_found");
    }
    // A's component, named from B's own page, is unknown there too.
    let (status, answer) = app
        .post(
            &format!("/v1/pages/{}/incidents", b.page_id),
            Some(&b.token),
            &json!({"incident": {"name": "Sneaky", "components": {component: "major_outage"}}}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert_eq!(app.count("select count(*) from components").await, 1);
    assert_eq!(app.count("select count(*) from subscribers").await, 0);
    assert_eq!(app.count("select count(*) from incidents").await, 0);
    assert_eq!(
        app.count("select count(*) from components where status <> 'operational'")
            .await,
        0
    );
    assert_eq!(app.count("select count(*) from outbox").await, 0);
    // Garbage ids are simply not found.
    let (status, _) = app
        .post(
            "/v1/pages/not-a-uuid/components",
            Some(&a.token),
            &attempts[0].1,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    app.finish().await;
}

#[tokio::test]
async fn a_search_for_a_nul_character_is_unprocessable_not_a_server_error() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let page = format!("/v1/pages/{}", t.page_id);
    let lists = [
        "components",
        "component-groups",
        "incidents",
        "incidents/unresolved",
        "subscribers",
        "incident_templates",
        "domains",
    ]
    .map(|list| format!("{page}/{list}"));
    for list in lists.iter().map(String::as_str).chain(["/v1/pages"]) {
        let (status, body) = app
            .call(
                reqwest::Method::GET,
                &format!("{list}?q=a%00b"),
                Some(&t.token),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{list}: {body}");
        assert_eq!(code(&body), "validation_failed", "{list}");
        assert_eq!(fields(&body), ["q"], "{list}");
    }
    app.finish().await;
}

#[tokio::test]
async fn an_unknown_component_status_is_unprocessable_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let component = app.component(&t, "API").await;
    let (status, body) = app
        .post(
            &format!("/v1/pages/{}/components", t.page_id),
            Some(&t.token),
            &json!({"component": {"name": "DB", "status": "on_fire"}}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&body), ["status"]);
    let (status, body) = app
        .post(
            &format!("/v1/pages/{}/incidents", t.page_id),
            Some(&t.token),
            &json!({"incident": {"name": "Fire", "components": {component: "on_fire"}}}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&body), ["components"]);
    assert!(
        body["error"]["fields"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("major_outage")
    );
    assert_eq!(app.count("select count(*) from components").await, 1);
    assert_eq!(app.count("select count(*) from incidents").await, 0);
    assert_eq!(app.count("select count(*) from outbox").await, 0);
    app.finish().await;
}

#[tokio::test]
async fn bodies_must_be_wrapped_in_the_resource_name() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let (status, body) = app
        .post(
            &format!("/v1/pages/{}/components", t.page_id),
            Some(&t.token),
            &json!({"name": "API"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&body), ["component"]);
    app.finish().await;
}

#[tokio::test]
async fn subscribers_need_a_valid_email_and_are_unique_per_page() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let path = format!("/v1/pages/{}/subscribers", t.page_id);
    let (status, body) = app
        .post(
            &path,
            Some(&t.token),
            &json!({"subscriber": {"email": "nope", "skip_confirmation_notification": true}}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&body), ["email"]);
    let email = unique_email("once");
    let sub = json!({"subscriber": {"email": email, "skip_confirmation_notification": true}});
    assert_eq!(
        app.post(&path, Some(&t.token), &sub).await.0,
        StatusCode::CREATED
    );
    let (status, body) = app.post(&path, Some(&t.token), &sub).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(code(&body), "already_subscribed");
    assert_eq!(app.count("select count(*) from subscribers").await, 1);
    app.finish().await;
}

#[tokio::test]
async fn internal_details_never_reach_the_client() {
    let app = TestApp::spawn().await;
    let response = app.client.get(app.url("/v1/nowhere")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(response.headers().contains_key("x-request-id"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"error": {"code": "not_found", "detail": "Not found."}})
    );
    app.finish().await;
}
