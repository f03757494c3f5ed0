//! The order every page-scoped route answers in, whatever its handler:
//! who is calling (401), then which page (404: another tenant's page or a
//! malformed id, whatever role the caller has), then the role (403) — and
//! the request's span names the page once it is found.

use std::time::Duration;

use heliograph_testkit::captured_logs;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{Tenant, TestApp};

/// A key of `t` with `scope`: `read` acts as a viewer.
async fn key(app: &TestApp, t: &Tenant, scope: &str) -> String {
    let (status, body) = app
        .post(
            "/v1/api-keys",
            Some(&t.token),
            &json!({"api_key": {"name": "scoped", "scope": scope}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["key"].as_str().unwrap().to_owned()
}

/// Write routes of a page, each with a body it would accept, as
/// `(method, path under the page, body)`; they need an editor or an admin.
fn writes(component: &str) -> Vec<(Method, String, Option<Value>)> {
    let nobody = Uuid::new_v4();
    vec![
        (
            Method::POST,
            "/components".to_owned(),
            Some(json!({"component": {"name": "API"}})),
        ),
        (
            Method::PATCH,
            format!("/components/{component}"),
            Some(json!({"component": {"status": "major_outage"}})),
        ),
        (
            Method::POST,
            "/incidents".to_owned(),
            Some(json!({"incident": {"name": "Down", "status": "investigating"}})),
        ),
        (
            Method::PATCH,
            String::new(),
            Some(json!({"page": {"name": "Renamed"}})),
        ),
        (
            Method::POST,
            "/subscribers/reactivate".to_owned(),
            Some(json!({"subscribers": []})),
        ),
        (
            Method::POST,
            "/deliveries/redrive".to_owned(),
            Some(json!({"deliveries": []})),
        ),
        (
            Method::DELETE,
            format!("/incident_templates/{nobody}"),
            None,
        ),
        (Method::DELETE, format!("/incidents/{nobody}"), None),
    ]
}

#[tokio::test]
async fn another_tenants_page_is_not_found_even_to_a_viewer_on_a_write_route() {
    let app = TestApp::spawn().await;
    let victim = app.signup().await;
    let intruder = app.signup().await;
    let viewer_key = key(&app, &intruder, "read").await;
    let component = app.component(&victim, "Theirs").await;
    for (method, tail, body) in writes(&component) {
        let path = format!("/v1/pages/{}{tail}", victim.page_id);
        for credential in [&viewer_key, &intruder.token] {
            let (status, answer) = app
                .call(method.clone(), &path, Some(credential), body.as_ref())
                .await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {answer}");
            assert_eq!(answer["error"]["code"], "not_found", "{method} {path}");
        }
    }
    app.finish().await;
}

#[tokio::test]
async fn a_malformed_page_id_is_not_found_before_the_role_is_looked_at() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let viewer_key = key(&app, &t, "read").await;
    let component = app.component(&t, "API").await;
    for (method, tail, body) in writes(&component) {
        for page in ["not-a-page", "1234", &format!("{}x", t.page_id)] {
            let path = format!("/v1/pages/{page}{tail}");
            for credential in [&viewer_key, &t.token] {
                let (status, answer) = app
                    .call(method.clone(), &path, Some(credential), body.as_ref())
                    .await;
                assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {answer}");
                assert_eq!(answer["error"]["code"], "not_found", "{method} {path}");
            }
        }
    }
    // Reads too.
    let (status, _) = app
        .call(
            Method::GET,
            "/v1/pages/nope/incidents",
            Some(&t.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    app.finish().await;
}

#[tokio::test]
async fn a_viewer_of_the_page_is_forbidden_on_a_write_route_whatever_it_names() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let viewer_key = key(&app, &t, "read").await;
    let person = app.signup().await;
    let viewer_session = app.join(&t, &person, "viewer").await;
    let component = app.component(&t, "API").await;
    for (method, tail, body) in writes(&component) {
        let path = format!("/v1/pages/{}{tail}", t.page_id);
        for credential in [&viewer_key, &viewer_session] {
            let (status, answer) = app
                .call(method.clone(), &path, Some(credential), body.as_ref())
                .await;
            // The page is theirs to see, so a missing child (the template
            // and incident above do not exist) says nothing they may not know:
            // the role is what stops them.
            assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {answer}");
            assert_eq!(answer["error"]["code"], "forbidden", "{method} {path}");
        }
    }
    // And the same viewer reads the page's resources.
    let (status, answer) = app
        .call(
            Method::GET,
            &format!("/v1/pages/{}/components/{component}", t.page_id),
            Some(&viewer_key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    app.finish().await;
}

#[tokio::test]
async fn the_request_span_names_the_page_once_it_is_found() {
    captured_logs();
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let other = app.signup().await;
    let span_of = |response: &reqwest::Response| {
        response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned()
    };
    let found = app
        .client
        .get(app.url(&format!("/v1/pages/{}/components", t.page_id)))
        .bearer_auth(&t.token)
        .send()
        .await
        .unwrap();
    assert_eq!(found.status(), StatusCode::OK);
    let not_found = app
        .client
        .get(app.url(&format!("/v1/pages/{}/components", other.page_id)))
        .bearer_auth(&t.token)
        .send()
        .await
        .unwrap();
    assert_eq!(not_found.status(), StatusCode::NOT_FOUND);
    for (response, page) in [(&found, Some(&t.page_id)), (&not_found, None)] {
        let id = span_of(response);
        assert!(
            captured_logs()
                .wait_for(&format!("request_id={id}"), Duration::from_secs(30))
                .await,
            "the span of request {id} is captured"
        );
        let spans: Vec<String> = captured_logs()
            .matching(&format!("request_id={id}"))
            .into_iter()
            .filter(|l| l.starts_with("span HTTP request"))
            .collect();
        assert_eq!(spans.len(), 1, "{spans:?}");
        // `span HTTP request #<id>: …`; what is filled in later is recorded
        // as `record #<id>: …`.
        let span = spans[0]
            .split_whitespace()
            .nth(3)
            .unwrap()
            .trim_end_matches(':')
            .to_owned();
        let named: Vec<String> = captured_logs()
            .matching(&format!("record {span}:"))
            .into_iter()
            .filter(|l| l.contains("page.id="))
            .collect();
        match page {
            Some(page) => assert_eq!(named, [format!("record {span}: page.id={page}")]),
            // Another tenant's page is not named, not even in the log.
            None => assert!(named.is_empty(), "{named:?}"),
        }
    }
    app.finish().await;
}
