//! Rate limits: 429 with Retry-After, per address and per account or key,
//! without locking a victim out.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{PASSWORD, TestApp, unique_email, unique_ip, unique_slug};

async fn post_from(
    app: &TestApp,
    ip: &str,
    path: &str,
    body: &serde_json::Value,
) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .header("x-forwarded-for", ip)
        .json(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn signups_are_limited_per_address() {
    let app = TestApp::spawn().await;
    let ip = unique_ip();
    let signup = || json!({"name": "Acme", "slug": unique_slug("rl"), "email": unique_email("rl"), "password": PASSWORD});
    for _ in 0..10 {
        assert_eq!(
            post_from(&app, &ip, "/v1/signup", &signup()).await.status(),
            StatusCode::CREATED
        );
    }
    let refused = post_from(&app, &ip, "/v1/signup", &signup()).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=3600).contains(&wait), "{wait}");
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    assert_eq!(
        post_from(&app, &unique_ip(), "/v1/signup", &signup())
            .await
            .status(),
        StatusCode::CREATED,
        "another address is not affected"
    );
    assert_eq!(app.count("select count(*) from tenants").await, 11);
    app.finish().await;
}

#[tokio::test]
async fn password_guessing_is_slowed_without_locking_the_owner_out() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let attacker = unique_ip();
    let guess = json!({"email": t.email, "password": "guess-guess-guess"});
    for _ in 0..10 {
        assert_eq!(
            post_from(&app, &attacker, "/v1/sessions", &guess)
                .await
                .status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let refused = post_from(&app, &attacker, "/v1/sessions", &guess).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.headers().contains_key("retry-after"));
    // Even the right password waits, from the attacker's address.
    let right = json!({"email": t.email, "password": PASSWORD});
    assert_eq!(
        post_from(&app, &attacker, "/v1/sessions", &right)
            .await
            .status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    // The owner, from their own address, signs in as usual.
    assert_eq!(
        post_from(&app, &unique_ip(), "/v1/sessions", &right)
            .await
            .status(),
        StatusCode::CREATED
    );
    app.finish().await;
}

#[tokio::test]
async fn a_busy_api_key_is_limited_to_600_requests_a_minute() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let (_, key) = app
        .post(
            "/v1/api-keys",
            Some(&t.token),
            &json!({"api_key": {"name": "busy", "scope": "read_write"}}),
        )
        .await;
    let key = key["key"].as_str().unwrap();
    let path = format!("/v1/pages/{}/components", t.page_id);
    let mut statuses = vec![];
    for _ in 0..601 {
        // Different addresses: the limit follows the key, not the address.
        let status = app
            .client
            .post(app.url(&path))
            .header("authorization", format!("OAuth {key}"))
            .header("x-forwarded-for", unique_ip())
            .json(&json!({"component": {}}))
            .send()
            .await
            .unwrap()
            .status();
        statuses.push(status);
    }
    assert!(
        statuses[..600]
            .iter()
            .all(|s| *s == StatusCode::UNPROCESSABLE_ENTITY),
        "600 counted as usual"
    );
    assert_eq!(statuses[600], StatusCode::TOO_MANY_REQUESTS);
    // The person who owns the tenant is not held back by their key.
    assert_eq!(
        app.call(reqwest::Method::GET, "/v1/me", Some(&t.token), None)
            .await
            .0,
        StatusCode::OK
    );
    app.finish().await;
}
