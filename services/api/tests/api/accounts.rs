//! Account links by email, through the worker and the real SMTP server:
//! verification at signup and password reset, single use, expiring.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, emails_to, token_in_email, unique_email};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signup_sends_a_verification_link_that_works_once() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    app.drain().await;
    let token = token_in_email(&t.email, "Confirm your email address", 1).await;
    let (_, me) = app.call(Method::GET, "/v1/me", Some(&t.token), None).await;
    assert_eq!(me["user"]["email_verified"], false);
    let confirm = json!({"token": token});
    let (status, body) = app
        .post("/v1/email-verifications/confirm", None, &confirm)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (_, me) = app.call(Method::GET, "/v1/me", Some(&t.token), None).await;
    assert_eq!(me["user"]["email_verified"], true);
    let (status, body) = app
        .post("/v1/email-verifications/confirm", None, &confirm)
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["fields"][0]["code"], "used");
    let (status, _) = app
        .call(
            Method::POST,
            "/v1/email-verifications",
            Some(&t.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "nothing left to verify");
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_reset_sets_the_password_and_ends_every_session() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let (status, _) = app
        .post("/v1/password-resets", None, &json!({"email": t.email}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    app.drain().await;
    let token = token_in_email(&t.email, "Reset your password", 2).await;
    let new_password = "a completely new password";
    let (status, body) = app
        .post(
            "/v1/password-resets/confirm",
            None,
            &json!({"token": token, "password": new_password}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(
        app.call(Method::GET, "/v1/me", Some(&t.token), None)
            .await
            .0,
        StatusCode::UNAUTHORIZED,
        "the old session ended"
    );
    let (status, _) = app
        .post(
            "/v1/sessions",
            None,
            &json!({"email": t.email, "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the old password is gone");
    let (status, _) = app
        .post(
            "/v1/sessions",
            None,
            &json!({"email": t.email, "password": new_password}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = app
        .post(
            "/v1/password-resets/confirm",
            None,
            &json!({"token": token, "password": "yet another password"}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a link works once"
    );
    assert_eq!(body["error"]["fields"][0]["code"], "used");
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_for_an_unknown_email_answers_the_same_and_sends_nothing() {
    let app = TestApp::spawn().await;
    let nobody = unique_email("nobody");
    let (status, body) = app
        .post("/v1/password-resets", None, &json!({"email": nobody}))
        .await;
    assert_eq!((status, body), (StatusCode::ACCEPTED, Value::Null));
    app.drain().await;
    assert!(emails_to(&nobody, 0).await.is_empty());
    assert_eq!(app.count("select count(*) from account_tokens").await, 0);
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_spent_and_expired_links_are_refused_and_asking_again_voids_nothing() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    app.post("/v1/password-resets", None, &json!({"email": t.email}))
        .await;
    app.drain().await;
    let first = token_in_email(&t.email, "Reset your password", 2).await;
    // A second request (anyone can make one) leaves the first link working.
    app.post("/v1/password-resets", None, &json!({"email": t.email}))
        .await;
    app.drain().await;
    let second = token_in_email(&t.email, "Reset your password", 3).await;
    assert_ne!(first, second);
    let attempt = |token: &str, password: &str| json!({"token": token, "password": password});

    let mut tampered = second.clone();
    tampered.pop();
    tampered.push(if second.ends_with('0') { '1' } else { '0' });
    let (status, body) = app
        .post(
            "/v1/password-resets/confirm",
            None,
            &attempt(&tampered, "a completely new password"),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["fields"][0]["code"], "invalid");

    let (status, _) = app
        .post(
            "/v1/password-resets/confirm",
            None,
            &attempt(&first, "a completely new password"),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "the first link still works");
    let (status, body) = app
        .post(
            "/v1/password-resets/confirm",
            None,
            &attempt(&second, "a second new password"),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "the password change spent every link"
    );
    assert_eq!(body["error"]["fields"][0]["code"], "used");

    app.post("/v1/password-resets", None, &json!({"email": t.email}))
        .await;
    app.drain().await;
    let third = token_in_email(&t.email, "Reset your password", 4).await;
    sqlx::query(
        "update account_tokens set expires_at = now() - interval '1 second' where used_at is null",
    )
    .execute(&app.admin)
    .await
    .unwrap();
    let (status, body) = app
        .post(
            "/v1/password-resets/confirm",
            None,
            &attempt(&third, "a third new password"),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["fields"][0]["code"], "expired");
    let (status, _) = app
        .post(
            "/v1/sessions",
            None,
            &json!({"email": t.email, "password": "a completely new password"}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "only the first link changed the password"
    );
    app.finish().await;
}

#[tokio::test]
async fn reset_emails_to_one_address_are_limited() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    for _ in 0..5 {
        let (status, _) = app
            .post("/v1/password-resets", None, &json!({"email": t.email}))
            .await;
        assert_eq!(status, StatusCode::ACCEPTED);
    }
    let (status, _) = app
        .post("/v1/password-resets", None, &json!({"email": t.email}))
        .await;
    assert_eq!(
        status,
        StatusCode::ACCEPTED,
        "the answer never tells (a 429 would let a stranger block the owner)"
    );
    assert_eq!(
        app.count("select count(*) from account_tokens where kind = 'password_reset'")
            .await,
        5,
        "but nothing more is sent"
    );
    app.finish().await;
}
