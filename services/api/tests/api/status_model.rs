//! Pages, components and component groups through the management API.
//!
//! Incidents are in `lifecycle`, the public documents in `public`.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, unique_slug};

fn names(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn components_are_read_changed_reordered_and_deleted() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let editor = app.signup().await;
    let editor_token = app.join(&t, &editor, "editor").await;
    let base = format!("/v1/pages/{}/components", t.page_id);
    let api = app.component(&t, "API").await;
    let web = app.component(&t, "Website").await;
    let jobs = app.component(&t, "Jobs").await;

    let (status, list) = app.call(Method::GET, &base, Some(&t.token), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(names(&list), ["API", "Website", "Jobs"]);

    // An editor flips a status: recorded as a manual change, and announced.
    let (status, body) = app
        .call(
            Method::PATCH,
            &format!("{base}/{api}"),
            Some(&editor_token),
            Some(&json!({"component": {"status": "major_outage"}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "major_outage");
    assert_eq!(
        app.count("select count(*) from component_status_changes where cause = 'manual' and new_status = 'major_outage'").await,
        1
    );
    assert_eq!(
        app.count("select count(*) from outbox where kind = 'component.updated'")
            .await,
        1
    );
    // Anything but the status is an admin's.
    let (status, _) = app
        .call(
            Method::PATCH,
            &format!("{base}/{api}"),
            Some(&editor_token),
            Some(&json!({"component": {"name": "Renamed"}})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Admin: rename, describe, make private, move to the top.
    let (status, body) = app
        .call(
            Method::PUT,
            &format!("{base}/{jobs}"),
            Some(&t.token),
            Some(&json!({"component": {"name": "Background jobs", "description": "Queues", "visibility": "private", "position": 1}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["visibility"], "private");
    assert_eq!(body["description"], "Queues");
    let (_, list) = app.call(Method::GET, &base, Some(&t.token), None).await;
    assert_eq!(names(&list), ["Background jobs", "API", "Website"]);
    let positions: Vec<i64> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["position"].as_i64().unwrap())
        .collect();
    assert_eq!(positions, [1, 2, 3]);

    // Null clears; bad values are listed per field and change nothing.
    let (status, body) = app
        .call(
            Method::PATCH,
            &format!("{base}/{jobs}"),
            Some(&t.token),
            Some(&json!({"component": {"description": null}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["description"].is_null());
    let (status, body) = app
        .call(
            Method::PATCH,
            &format!("{base}/{web}"),
            Some(&t.token),
            Some(&json!({"component": {"status": "on_fire", "position": 0, "start_date": "soon"}})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<&str> = body["error"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["status", "start_date", "position"]);

    let (status, _) = app
        .call(
            Method::DELETE,
            &format!("{base}/{web}"),
            Some(&editor_token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app
        .call(
            Method::DELETE,
            &format!("{base}/{web}"),
            Some(&t.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = app
        .call(Method::GET, &format!("{base}/{web}"), Some(&t.token), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "not_found");
    app.finish().await;
}

#[tokio::test]
async fn component_groups_hold_components_and_let_them_go_when_deleted() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let api = app.component(&t, "API").await;
    let web = app.component(&t, "Website").await;
    let base = format!("/v1/pages/{}/component-groups", t.page_id);
    let (status, group) = app
        .post(
            &base,
            Some(&t.token),
            &json!({"component_group": {"name": "Platform", "components": [api, web]}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{group}");
    assert_eq!(group["components"], json!([api, web]));
    let id = group["id"].as_str().unwrap();

    let (status, group) = app
        .call(
            Method::PATCH,
            &format!("{base}/{id}"),
            Some(&t.token),
            Some(&json!({"component_group": {"name": "Core", "components": [web]}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{group}");
    assert_eq!(group["name"], "Core");
    assert_eq!(group["components"], json!([web]));
    let (_, c) = app
        .call(
            Method::GET,
            &format!("/v1/pages/{}/components/{api}", t.page_id),
            Some(&t.token),
            None,
        )
        .await;
    assert!(c["group_id"].is_null(), "{c}");

    // A component of another page (or tenant) cannot join.
    let other = app.signup().await;
    let foreign = app.component(&other, "Theirs").await;
    let (status, body) = app
        .call(
            Method::PATCH,
            &format!("{base}/{id}"),
            Some(&t.token),
            Some(&json!({"component_group": {"components": [foreign]}})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    let (status, list) = app.call(Method::GET, &base, Some(&t.token), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 1);
    let (status, deleted) = app
        .call(
            Method::DELETE,
            &format!("{base}/{id}"),
            Some(&t.token),
            None,
        )
        .await;
    // As Statuspage answers: the deleted group, with the members it had.
    assert_eq!(status, StatusCode::OK, "{deleted}");
    assert_eq!(deleted["id"], id);
    assert_eq!(deleted["components"], json!([web]));
    let (_, c) = app
        .call(
            Method::GET,
            &format!("/v1/pages/{}/components/{web}", t.page_id),
            Some(&t.token),
            None,
        )
        .await;
    assert!(c["group_id"].is_null(), "the member stays, ungrouped: {c}");
    app.finish().await;
}

#[tokio::test]
async fn pages_are_listed_read_created_and_configured() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let (status, list) = app
        .call(Method::GET, "/v1/pages", Some(&t.token), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["subdomain"], t.slug.as_str());

    let path = format!("/v1/pages/{}", t.page_id);
    let (status, page) = app
        .call(
            Method::PATCH,
            &path,
            Some(&t.token),
            Some(&json!({"page": {"name": "Acme Status", "time_zone": "europe/berlin",
                                  "css_link_color": "#AA0000", "logo_url": "https://acme.example/logo.svg",
                                  "allow_sms_subscribers": false, "uptime_partial_weight": 0.5}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["name"], "Acme Status");
    assert_eq!(page["time_zone"], "Europe/Berlin");
    assert_eq!(page["css_link_color"], "#aa0000");
    assert_eq!(page["allow_sms_subscribers"], false);
    assert_eq!(page["uptime_partial_weight"], 0.5);

    let (status, body) = app
        .call(
            Method::PATCH,
            &path,
            Some(&t.token),
            Some(
                &json!({"page": {"time_zone": "Mars/Olympus", "css_link_color": "red",
                                  "logo_url": "javascript:alert(1)", "uptime_partial_weight": 2}}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        body["error"]["fields"].as_array().unwrap().len(),
        4,
        "{body}"
    );
    let (_, page) = app.call(Method::GET, &path, Some(&t.token), None).await;
    assert_eq!(
        page["time_zone"], "Europe/Berlin",
        "a refused change changes nothing"
    );

    // Another page for the tenant; a taken subdomain is a conflict.
    let slug = unique_slug("second");
    let (status, second) = app
        .post(
            "/v1/pages",
            Some(&t.token),
            &json!({"page": {"name": "Internal", "subdomain": slug}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    assert_eq!(second["time_zone"], "Etc/UTC");
    let (status, body) = app
        .post(
            "/v1/pages",
            Some(&t.token),
            &json!({"page": {"name": "Again", "subdomain": slug}}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"]["code"], "slug_taken");
    let (_, list) = app
        .call(Method::GET, "/v1/pages", Some(&t.token), None)
        .await;
    assert_eq!(list.as_array().unwrap().len(), 2);
    app.finish().await;
}
