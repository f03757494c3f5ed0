//! API keys: made by admins, shown once, used as `OAuth` or `Bearer`, revoked at once.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, Tenant, TestApp};

async fn make_key(app: &TestApp, t: &Tenant, scope: &str) -> (StatusCode, Value) {
    app.post(
        "/v1/api-keys",
        Some(&t.token),
        &json!({"api_key": {"name": "monitoring", "scope": scope}}),
    )
    .await
}

async fn create_component_with(app: &TestApp, t: &Tenant, authorization: &str) -> StatusCode {
    app.client
        .post(app.url(&format!("/v1/pages/{}/components", t.page_id)))
        .header("authorization", authorization)
        .json(&json!({"component": {"name": "From a key"}}))
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn a_read_write_key_works_in_both_header_forms_and_is_shown_once() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let (status, created) = make_key(&app, &t, "read_write").await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let key = created["key"].as_str().unwrap().to_owned();
    assert!(key.starts_with(created["prefix"].as_str().unwrap()));
    assert_eq!(
        create_component_with(&app, &t, &format!("OAuth {key}")).await,
        StatusCode::CREATED
    );
    assert_eq!(
        create_component_with(&app, &t, &format!("Bearer {key}")).await,
        StatusCode::CREATED
    );

    let (status, list) = app
        .call(Method::GET, "/v1/api-keys", Some(&t.token), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert!(list[0]["key"].is_null(), "the list never shows the key");
    assert!(
        !list.to_string().contains(&key[12..]),
        "nor its secret part"
    );
    assert!(list[0]["last_used_at"].is_string(), "use is recorded");
    let (stored,): (Vec<u8>,) = sqlx::query_as("select key_hash from api_keys")
        .fetch_one(&app.admin)
        .await
        .unwrap();
    assert_eq!(stored.len(), 32, "only a SHA-256 is stored");
    app.finish().await;
}

#[tokio::test]
async fn a_read_key_reads_but_cannot_write() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let (_, created) = make_key(&app, &t, "read").await;
    let key = created["key"].as_str().unwrap();
    assert_eq!(
        create_component_with(&app, &t, &format!("OAuth {key}")).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(app.count("select count(*) from components").await, 0);
    app.finish().await;
}

#[tokio::test]
async fn a_revoked_key_stops_at_once() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let (_, created) = make_key(&app, &t, "read_write").await;
    let key = created["key"].as_str().unwrap();
    let id = created["id"].as_str().unwrap();
    let (status, _) = app
        .call(
            Method::DELETE,
            &format!("/v1/api-keys/{id}"),
            Some(&t.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        create_component_with(&app, &t, &format!("OAuth {key}")).await,
        StatusCode::UNAUTHORIZED
    );
    app.finish().await;
}

#[tokio::test]
async fn keys_cannot_manage_keys_and_forged_keys_are_refused() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let (_, created) = make_key(&app, &t, "read_write").await;
    let key = created["key"].as_str().unwrap();
    let (status, _) = app
        .post(
            "/v1/api-keys",
            Some(key),
            &json!({"api_key": {"name": "child"}}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a key cannot mint keys");
    // Right prefix, wrong secret.
    let forged = format!("{}{}", &key[..12], "x".repeat(key.len() - 12));
    assert_eq!(
        create_component_with(&app, &t, &format!("OAuth {forged}")).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        create_component_with(&app, &t, "OAuth hg_nothing").await,
        StatusCode::UNAUTHORIZED
    );
    app.finish().await;
}

#[tokio::test]
async fn another_tenants_key_and_key_ids_are_not_found() {
    let app = TestApp::spawn().await;
    let a = app.signup().await;
    let b = app.signup().await;
    let (_, created) = make_key(&app, &a, "read_write").await;
    let key = created["key"].as_str().unwrap();
    let id = created["id"].as_str().unwrap();
    // A's key on B's page.
    assert_eq!(
        create_component_with(&app, &b, &format!("OAuth {key}")).await,
        StatusCode::NOT_FOUND
    );
    // B revoking A's key.
    let (status, _) = app
        .call(
            Method::DELETE,
            &format!("/v1/api-keys/{id}"),
            Some(&b.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, b_list) = app
        .call(Method::GET, "/v1/api-keys", Some(&b.token), None)
        .await;
    assert_eq!(b_list, json!([]));
    assert_eq!(
        create_component_with(&app, &a, &format!("OAuth {key}")).await,
        StatusCode::CREATED,
        "still works"
    );
    app.finish().await;
}

#[tokio::test]
async fn only_admins_make_keys() {
    let app = TestApp::spawn().await;
    let owner = app.signup().await;
    let editor = app.signup().await;
    // The second owner also joins the first tenant as an editor.
    sqlx::query(
        "insert into memberships (tenant_id, user_id, role)
         select $1::uuid, user_id, 'editor' from memberships where tenant_id = $2::uuid",
    )
    .bind(&owner.tenant_id)
    .bind(&editor.tenant_id)
    .execute(&app.admin)
    .await
    .unwrap();
    let (_, session) = app
        .post(
            "/v1/sessions",
            None,
            &json!({"email": editor.email, "password": PASSWORD, "tenant_id": owner.tenant_id}),
        )
        .await;
    let token = session["token"].as_str().unwrap();
    let (status, _) = app
        .post(
            "/v1/api-keys",
            Some(token),
            &json!({"api_key": {"name": "nope"}}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = app
        .post(
            "/v1/api-keys",
            Some(&owner.token),
            &json!({"api_key": {"name": "k", "scope": "god"}}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(app.count("select count(*) from api_keys").await, 0);
    app.finish().await;
}

/// What every stored idempotent response holds, as one text.
async fn stored_responses(app: &TestApp) -> String {
    let rows: Vec<(Option<Vec<u8>>, Option<Value>)> =
        sqlx::query_as("select response_body, response_headers from idempotency_keys")
            .fetch_all(&app.admin)
            .await
            .unwrap();
    rows.iter()
        .map(|(body, headers)| {
            format!(
                "{} {}",
                String::from_utf8_lossy(body.as_deref().unwrap_or_default()),
                headers.clone().unwrap_or_default()
            )
        })
        .collect()
}

#[tokio::test]
async fn a_replayed_key_creation_answers_without_the_key_and_says_so() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let send = || {
        app.client
            .post(app.url("/v1/api-keys"))
            .bearer_auth(&t.token)
            .header("idempotency-key", "make-the-ci-key")
            .json(&json!({"api_key": {"name": "CI", "scope": "read"}}))
            .send()
    };
    let first = send().await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    assert!(first.headers().get("secrets-withheld").is_none());
    let first: Value = first.json().await.unwrap();
    let key = first["key"].as_str().unwrap().to_owned();
    let secret_part = &key[12..];

    let again = send().await.unwrap();
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(again.headers()["idempotency-replayed"], "true");
    assert_eq!(again.headers()["secrets-withheld"], "key");
    let again: Value = again.json().await.unwrap();
    assert!(again.get("key").is_none(), "{again}");
    assert_eq!(again["secrets_withheld"], json!(["key"]));
    assert_eq!(again["id"], first["id"], "the same key, made once");
    assert_eq!(again["prefix"], first["prefix"]);
    assert_eq!(app.count("select count(*) from api_keys").await, 1);
    assert!(
        !stored_responses(&app).await.contains(secret_part),
        "the stored response holds no key"
    );

    // A session's token is shown once the same way (a refresh, here).
    let refresh = || {
        app.client
            .post(app.url("/v1/sessions/refresh"))
            .bearer_auth(&t.token)
            .header("idempotency-key", "refresh-once")
            .send()
    };
    let fresh: Value = refresh().await.unwrap().json().await.unwrap();
    let token = fresh["token"].as_str().unwrap().to_owned();
    let replayed = refresh().await.unwrap();
    assert_eq!(replayed.headers()["secrets-withheld"], "token, csrf_token");
    let replayed: Value = replayed.json().await.unwrap();
    assert!(replayed.get("token").is_none(), "{replayed}");
    assert_eq!(replayed["secrets_withheld"], json!(["token", "csrf_token"]));
    let stored = stored_responses(&app).await;
    assert!(
        !stored.contains(&token),
        "the stored response holds no token"
    );
    assert!(!stored.contains(fresh["csrf_token"].as_str().unwrap()));
    app.finish().await;
}
