//! The audit log: who, what, which object, when, from where; for admins only.
//!
//! Which roles may read it is also walked in `permissions`.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::TestApp;

async fn log(app: &TestApp, token: &str, query: &str) -> (StatusCode, Value) {
    app.call(
        Method::GET,
        &format!("/v1/audit-log{query}"),
        Some(token),
        None,
    )
    .await
}

#[tokio::test]
async fn changes_are_recorded_with_actor_object_and_address() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let response = app
        .client
        .post(app.url(&format!("/v1/pages/{}/components", t.page_id)))
        .bearer_auth(&t.token)
        .header("x-forwarded-for", "203.0.113.9")
        .json(&json!({"component": {"name": "API"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let component: Value = response.json().await.unwrap();
    let (_, key) = app
        .post(
            "/v1/api-keys",
            Some(&t.token),
            &json!({"api_key": {"name": "pager", "scope": "read_write"}}),
        )
        .await;
    let (status, incident) = app
        .post(
            &format!("/v1/pages/{}/incidents", t.page_id),
            Some(key["key"].as_str().unwrap()),
            &json!({"incident": {"name": "Paged", "deliver_notifications": false}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);

    let (status, entries) = log(&app, &t.token, "").await;
    assert_eq!(status, StatusCode::OK, "{entries}");
    let actions: Vec<&str> = entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "incident.created",
            "api_key.created",
            "component.created",
            "tenant.created"
        ]
    );
    let by_key = &entries[0];
    assert_eq!(by_key["actor"], json!({"type": "api_key", "id": key["id"]}));
    assert_eq!(
        by_key["object"],
        json!({"type": "incident", "id": incident["id"]})
    );
    let by_person = &entries[2];
    assert_eq!(by_person["actor"]["type"], "user");
    assert_eq!(by_person["object"]["id"], component["id"]);
    assert_eq!(by_person["ip"], "203.0.113.9");
    assert_eq!(by_person["details"]["name"], "API");

    // Filters: by actor, by time, and paging.
    let (_, only_key) = log(
        &app,
        &t.token,
        &format!("?actor_id={}", key["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(only_key.as_array().unwrap().len(), 1);
    let (_, future) = log(&app, &t.token, "?since=2999-01-01T00:00:00Z").await;
    assert_eq!(future, json!([]));
    let (_, page) = log(
        &app,
        &t.token,
        &format!("?limit=2&before={}", entries[1]["id"]),
    )
    .await;
    let paged: Vec<&str> = page
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(paged, ["component.created", "tenant.created"]);
    let (status, _) = log(&app, &t.token, "?since=yesterday").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    app.finish().await;
}

#[tokio::test]
async fn the_log_is_for_admins_of_the_tenant_only() {
    let app = TestApp::spawn().await;
    let a = app.signup().await;
    let b = app.signup().await;
    let (_, key) = app
        .post(
            "/v1/api-keys",
            Some(&a.token),
            &json!({"api_key": {"name": "reader", "scope": "read"}}),
        )
        .await;
    let (status, _) = log(&app, key["key"].as_str().unwrap(), "").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a read key acts as a viewer");
    let (status, b_entries) = log(&app, &b.token, "").await;
    assert_eq!(status, StatusCode::OK);
    let actions: Vec<&str> = b_entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["tenant.created"], "B sees only its own history");
    app.finish().await;
}

#[tokio::test]
async fn the_audit_log_filters_by_action_through_the_api_too() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let (status, body) = app
        .post(
            "/v1/api-keys",
            Some(&t.token),
            &json!({"api_key": {"name": "ci"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, all) = app
        .call(Method::GET, "/v1/audit-log", Some(&t.token), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{all}");
    assert!(all.as_array().unwrap().len() > 1, "{all}");
    let (status, only) = app
        .call(
            Method::GET,
            "/v1/audit-log?action=api_key.created",
            Some(&t.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{only}");
    let only = only.as_array().unwrap();
    assert_eq!(only.len(), 1, "{only:?}");
    assert_eq!(only[0]["action"], "api_key.created");
    assert_eq!(only[0]["details"]["name"], "ci");
    let (status, long) = app
        .call(
            Method::GET,
            &format!("/v1/audit-log?action={}", "a".repeat(101)),
            Some(&t.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{long}");
    app.finish().await;
}
