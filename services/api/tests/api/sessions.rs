//! Sign-in, server-side sessions, and choosing the tenant a session acts for.
//!
//! The limits on sign-in guesses are in `limits`.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, unique_email};

async fn login(app: &TestApp, body: Value) -> (StatusCode, Value) {
    app.post("/v1/sessions", None, &body).await
}

#[tokio::test]
async fn the_right_password_opens_a_working_session() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let (status, body) = login(&app, json!({"email": t.email, "password": PASSWORD})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["tenant_id"], t.tenant_id.as_str());
    assert_eq!(body["token_expires_in"], 15 * 60);
    assert_eq!(body["memberships"][0]["role"], "owner");
    let token = body["token"].as_str().unwrap();
    let (status, me) = app.call(Method::GET, "/v1/me", Some(token), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["role"], "owner");
    assert_eq!(me["session_id"], body["session"]["id"]);
    // The email is matched without regard to case.
    let (status, _) = login(
        &app,
        json!({"email": t.email.to_uppercase(), "password": PASSWORD}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    app.finish().await;
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_email_get_the_same_answer() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let wrong = login(
        &app,
        json!({"email": t.email, "password": "not the password"}),
    )
    .await;
    let unknown = login(
        &app,
        json!({"email": unique_email("nobody"), "password": PASSWORD}),
    )
    .await;
    assert_eq!(wrong.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        wrong, unknown,
        "nothing tells an unknown email from a wrong password"
    );
    assert_eq!(wrong.1["error"]["code"], "invalid_credentials");
    assert_eq!(
        app.count("select count(*) from sessions").await,
        1,
        "only signup's session"
    );
    app.finish().await;
}

#[tokio::test]
async fn signing_out_stops_the_token_at_once() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let (status, _) = app
        .call(Method::DELETE, "/v1/sessions/current", Some(&t.token), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = app.call(Method::GET, "/v1/me", Some(&t.token), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, _) = app
        .post(
            &format!("/v1/pages/{}/components", t.page_id),
            Some(&t.token),
            &json!({"component": {"name": "API"}}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = app
        .call(Method::POST, "/v1/sessions/refresh", Some(&t.token), None)
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a closed session cannot be refreshed"
    );
    app.finish().await;
}

#[tokio::test]
async fn an_open_session_refreshes_and_an_expired_one_does_not() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let (status, body) = app
        .call(Method::POST, "/v1/sessions/refresh", Some(&t.token), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let fresh = body["token"].as_str().unwrap().to_owned();
    assert_eq!(
        app.call(Method::GET, "/v1/me", Some(&fresh), None).await.0,
        StatusCode::OK
    );
    sqlx::query("update sessions set expires_at = now() - interval '1 second'")
        .execute(&app.admin)
        .await
        .unwrap();
    for token in [&t.token, &fresh] {
        assert_eq!(
            app.call(Method::GET, "/v1/me", Some(token), None).await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    app.finish().await;
}

#[tokio::test]
async fn a_removed_member_is_locked_out_at_once() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    sqlx::query("delete from memberships")
        .execute(&app.admin)
        .await
        .unwrap();
    assert_eq!(
        app.call(Method::GET, "/v1/me", Some(&t.token), None)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    let (status, _) = login(&app, json!({"email": t.email, "password": PASSWORD})).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a user with no tenant left cannot act for one"
    );
    app.finish().await;
}

#[tokio::test]
async fn a_user_of_two_tenants_chooses_which_one_a_session_acts_for() {
    let app = TestApp::spawn().await;
    let a = app.signup().await;
    let b = app.signup().await;
    // A's owner also joins B as a viewer (invitations will do this through the API).
    sqlx::query(
        "insert into memberships (tenant_id, user_id, role)
         select $1::uuid, user_id, 'viewer' from memberships where tenant_id = $2::uuid",
    )
    .bind(uuid::Uuid::parse_str(&b.tenant_id).unwrap())
    .bind(uuid::Uuid::parse_str(&a.tenant_id).unwrap())
    .execute(&app.admin)
    .await
    .unwrap();

    let (status, default) = login(&app, json!({"email": a.email, "password": PASSWORD})).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        default["tenant_id"],
        a.tenant_id.as_str(),
        "the oldest membership by default"
    );
    assert_eq!(default["memberships"].as_array().unwrap().len(), 2);

    let (status, in_b) = login(
        &app,
        json!({"email": a.email, "password": PASSWORD, "tenant_id": b.tenant_id}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let token = in_b["token"].as_str().unwrap();
    let (_, me) = app.call(Method::GET, "/v1/me", Some(token), None).await;
    assert_eq!(me["tenant_id"], b.tenant_id.as_str());
    assert_eq!(me["role"], "viewer");
    // As a viewer of B, it may read but not write.
    let (status, body) = app
        .post(
            &format!("/v1/pages/{}/components", b.page_id),
            Some(token),
            &json!({"component": {"name": "API"}}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "forbidden");

    // A tenant it does not belong to cannot be chosen.
    let stranger = app.signup().await;
    let (status, body) = login(
        &app,
        json!({"email": a.email, "password": PASSWORD, "tenant_id": stranger.tenant_id}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    app.finish().await;
}

#[tokio::test]
async fn changing_the_password_ends_every_other_session_at_once() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let (_, other) = login(&app, json!({"email": t.email, "password": PASSWORD})).await;
    let other = other["token"].as_str().unwrap().to_owned();
    let change = |current: &str| json!({"current_password": current, "new_password": "an entirely new password"});
    let (status, _) = app
        .call(
            Method::PUT,
            "/v1/me/password",
            Some(&t.token),
            Some(&change("wrong guess")),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the current password is needed"
    );
    let (status, body) = app
        .call(
            Method::PUT,
            "/v1/me/password",
            Some(&t.token),
            Some(&change(PASSWORD)),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(
        app.call(Method::GET, "/v1/me", Some(&t.token), None)
            .await
            .0,
        StatusCode::OK,
        "this session stays"
    );
    assert_eq!(
        app.call(Method::GET, "/v1/me", Some(&other), None).await.0,
        StatusCode::UNAUTHORIZED,
        "the other ended"
    );
    let (status, _) = login(
        &app,
        json!({"email": t.email, "password": "an entirely new password"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    app.finish().await;
}

#[tokio::test]
async fn a_browser_session_rides_a_locked_down_cookie_and_needs_its_csrf_token_to_change_things() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let response = app
        .client
        .post(app.url("/v1/sessions"))
        .json(&json!({"email": t.email, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let cookies: Vec<String> = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let body: Value = response.json().await.unwrap();
    let session = cookies
        .iter()
        .find(|c| c.starts_with("heliograph_session="))
        .expect("a session cookie");
    for attribute in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
        assert!(session.contains(attribute), "{attribute} in {session}");
    }
    let csrf_cookie = cookies
        .iter()
        .find(|c| c.starts_with("heliograph_csrf="))
        .expect("a CSRF cookie");
    assert!(
        !csrf_cookie.contains("HttpOnly"),
        "the dashboard's scripts read it"
    );
    let cookie = session.split(';').next().unwrap().to_owned();
    let csrf = body["csrf_token"].as_str().unwrap().to_owned();
    assert!(csrf_cookie.contains(&csrf));

    let with_cookie = |method: Method, path: &str| {
        app.client
            .request(method, app.url(path))
            .header("cookie", &cookie)
    };
    assert_eq!(
        with_cookie(Method::GET, "/v1/me")
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK,
        "reads need no CSRF token"
    );
    let components = format!("/v1/pages/{}/components", t.page_id);
    let body = json!({"component": {"name": "From the dashboard"}});
    let refused = with_cookie(Method::POST, &components)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let refused: Value = refused.json().await.unwrap();
    assert_eq!(refused["error"]["code"], "csrf_failed");
    // Another session's token does not fit this one.
    let (_, other) = login(&app, json!({"email": t.email, "password": PASSWORD})).await;
    let foreign = with_cookie(Method::POST, &components)
        .header("x-csrf-token", other["csrf_token"].as_str().unwrap())
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), StatusCode::FORBIDDEN);
    let accepted = with_cookie(Method::POST, &components)
        .header("x-csrf-token", &csrf)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), StatusCode::CREATED);
    let out = with_cookie(Method::DELETE, "/v1/sessions/current")
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::NO_CONTENT);
    assert!(
        out.headers().get_all("set-cookie").iter().any(|c| c
            .to_str()
            .unwrap()
            .starts_with("heliograph_session=;")
            && c.to_str().unwrap().contains("Max-Age=0"))
    );
    assert_eq!(
        with_cookie(Method::GET, "/v1/me")
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    app.finish().await;
}
