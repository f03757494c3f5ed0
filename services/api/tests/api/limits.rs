//! Rate limits: 429 with Retry-After, per address and per account or key,
//! without locking a victim out.
//!
//! The limits on self-service subscriptions are in `subscriptions`, those on
//! texts in `abuse`.

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

/// 601 requests take over a minute on a loaded machine, and the window is a
/// minute of the wall clock: so the test makes 20 of them, checks Redis
/// counted each against the key (whatever the address), adds the other 579
/// to that count in the same window, and makes the 600th and 601st.
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
    let id = key["id"].as_str().unwrap().to_owned();
    let key = key["key"].as_str().unwrap();
    let path = format!("/v1/pages/{}/components", t.page_id);
    let request = || {
        // Different addresses: the limit follows the key, not the address.
        app.client
            .post(app.url(&path))
            .header("authorization", format!("OAuth {key}"))
            .header("x-forwarded-for", unique_ip())
            .json(&json!({"component": {}}))
            .send()
    };
    for n in 1..=20 {
        let status = request().await.unwrap().status();
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "request {n} counted as usual"
        );
    }
    let counter = format!("heliograph:rl:api-actor:api_key:{id}");
    let mut redis = app.redis().await;
    let counted: u64 = redis::cmd("GET")
        .arg(&counter)
        .query_async(&mut redis)
        .await
        .expect("the key's count is in Redis");
    assert_eq!(counted, 20, "each request counted against the key");
    // INCRBY keeps the window's expiry: the same minute goes on.
    let _: u64 = redis::cmd("INCRBY")
        .arg(&counter)
        .arg(579)
        .query_async(&mut redis)
        .await
        .expect("INCRBY runs");
    assert_eq!(
        request().await.unwrap().status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "the 600th is counted as usual"
    );
    assert_eq!(
        request().await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS,
        "the 601st is refused"
    );
    // The person who owns the tenant is not held back by their key.
    assert_eq!(
        app.call(reqwest::Method::GET, "/v1/me", Some(&t.token), None)
            .await
            .0,
        StatusCode::OK
    );
    app.finish().await;
}
