//! Account links by email, through the worker and the real SMTP server:
//! verification at signup and password reset, single use, expiring.
//!
//! Signing in is in `sessions`.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, emails_to, token_in_email, unique_email, unique_slug};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signup_sends_a_verification_link_that_works_once() {
    let app = TestApp::spawn().await;
    let t = app.signup_unverified().await;
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

/// `value` with every leaf replaced by its kind: what a client can tell
/// from an answer's shape.
fn shape(value: &Value) -> Value {
    match value {
        Value::Object(map) => map.iter().map(|(k, v)| (k.clone(), shape(v))).collect(),
        Value::Array(items) => items.iter().map(shape).collect(),
        Value::String(_) => json!("string"),
        Value::Number(_) => json!("number"),
        Value::Bool(_) => json!("bool"),
        Value::Null => Value::Null,
    }
}

async fn sign_in(app: &TestApp, email: &str, password: &str) -> (StatusCode, Value) {
    app.post(
        "/v1/sessions",
        None,
        &json!({"email": email, "password": password}),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signup_with_a_taken_email_answers_as_a_new_one_and_tells_the_account_owner() {
    let app = TestApp::spawn().await;
    let email = unique_email("dup");
    let signup = |password: &str| json!({"name": "Acme", "slug": unique_slug("dup"), "email": email, "password": password});
    let (status, first) = app
        .post("/v1/signup", None, &signup("correct horse battery"))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let (status, second) = app
        .post("/v1/signup", None, &signup("another horse battery"))
        .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "as for a new address: {second}"
    );
    assert_eq!(shape(&second), shape(&first));
    assert_eq!(second["user"]["email"], email.as_str());
    assert_ne!(second["tenant"]["id"], first["tenant"]["id"]);
    assert_ne!(second["user"]["id"], first["user"]["id"]);
    assert_eq!(app.count("select count(*) from tenants").await, 2);
    // Both sessions work, each for its own tenant only.
    for answer in [&first, &second] {
        let token = answer["token"].as_str().unwrap();
        let (status, me) = app.call(Method::GET, "/v1/me", Some(token), None).await;
        assert_eq!(status, StatusCode::OK, "{me}");
        assert_eq!(me["user"]["email_verified"], false);
        assert_eq!(me["memberships"].as_array().unwrap().len(), 1, "{me}");
        assert_eq!(me["tenant_id"], answer["tenant"]["id"]);
    }
    // Neither signs in with a password before the address is verified: the
    // second one never can, so the first may not either, or signing in
    // would tell them apart.
    for password in ["correct horse battery", "another horse battery"] {
        let (status, body) = sign_in(&app, &email, password).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert_eq!(body["error"]["code"], "invalid_credentials");
    }
    // The second one is answered as the first when it asks for a link, and
    // nothing is sent: the address is someone else's.
    let (status, _) = app
        .call(
            Method::POST,
            "/v1/email-verifications",
            second["token"].as_str(),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    app.drain().await;
    let mut subjects: Vec<String> = emails_to(&email, 2)
        .await
        .iter()
        .map(|m| m["subject"].as_str().unwrap().to_owned())
        .collect();
    subjects.sort();
    assert_eq!(
        subjects,
        [
            "Confirm your email address",
            "Someone tried to sign up with your address"
        ],
        "the account's owner hears of the attempt, through the real SMTP server"
    );
    let note = emails_to(&email, 2)
        .await
        .into_iter()
        .find(|m| m["subject"] == "Someone tried to sign up with your address")
        .unwrap();
    assert!(!note["text"].as_str().unwrap().contains("token="), "{note}");

    // Verified through the link, the account signs in, to its own tenant.
    let token = token_in_email(&email, "Confirm your email address", 2).await;
    let (status, _) = app
        .post(
            "/v1/email-verifications/confirm",
            None,
            &json!({"token": token}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, session) = sign_in(&app, &email, "correct horse battery").await;
    assert_eq!(status, StatusCode::CREATED, "{session}");
    assert_eq!(session["tenant_id"], first["tenant"]["id"]);
    assert_eq!(session["memberships"].as_array().unwrap().len(), 1);
    let (status, _) = sign_in(&app, &email, "another horse battery").await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the shadow never signs in"
    );
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_reset_proves_the_address_so_the_account_signs_in() {
    let app = TestApp::spawn().await;
    let t = app.signup_unverified().await;
    let (status, _) = sign_in(&app, &t.email, PASSWORD).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "not verified yet");
    let (status, _) = app
        .post("/v1/password-resets", None, &json!({"email": t.email}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    app.drain().await;
    let token = token_in_email(&t.email, "Reset your password", 2).await;
    let (status, body) = app
        .post(
            "/v1/password-resets/confirm",
            None,
            &json!({"token": token, "password": "a new long password"}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, session) = sign_in(&app, &t.email, "a new long password").await;
    assert_eq!(status, StatusCode::CREATED, "{session}");
    let (_, me) = app
        .call(Method::GET, "/v1/me", session["token"].as_str(), None)
        .await;
    assert_eq!(me["user"]["email_verified"], true);
    app.finish().await;
}
