//! Public pages: by host and by path, in Statuspage's JSON shape.
//!
//! The subscription forms on a page are tested in `subscriptions`, the pages'
//! cache and memory in `page_cache` and `page_memory`.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::TestApp;

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    k.sort_unstable();
    k
}

#[tokio::test]
async fn summary_json_has_statuspages_exact_shape() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    app.component(&t, "API").await;
    let response = app
        .get(&format!("/status/{}/api/v2/summary.json", t.slug), None)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
    let summary: Value = response.json().await.unwrap();
    assert_eq!(
        keys(&summary),
        [
            "components",
            "incidents",
            "page",
            "scheduled_maintenances",
            "status"
        ]
    );
    assert_eq!(
        keys(&summary["page"]),
        ["id", "name", "time_zone", "updated_at", "url"]
    );
    assert_eq!(
        summary["page"]["url"],
        format!("http://{}.heliograph.test", t.slug)
    );
    assert_eq!(summary["page"]["time_zone"], "Etc/UTC");
    assert_eq!(
        summary["status"],
        json!({"indicator": "none", "description": "All Systems Operational"})
    );
    assert_eq!(summary["incidents"], json!([]));
    assert_eq!(summary["scheduled_maintenances"], json!([]));
    let c = &summary["components"][0];
    assert_eq!(
        keys(c),
        [
            "created_at",
            "description",
            "group",
            "group_id",
            "id",
            "name",
            "only_show_if_degraded",
            "page_id",
            "position",
            "showcase",
            "start_date",
            "status",
            "updated_at"
        ]
    );
    assert_eq!(c["status"], "operational");
    assert_eq!(c["group"], false);
    assert!(c["created_at"].as_str().unwrap().ends_with('Z'));
    app.finish().await;
}

#[tokio::test]
async fn the_page_is_served_by_host_and_by_path() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    app.component(&t, "Checkout").await;
    let host = format!("{}.heliograph.test", t.slug);
    for response in [
        app.get("/", Some(&host)).await,
        app.get(&format!("/status/{}/", t.slug), None).await,
        app.get(&format!("/status/{}", t.slug), None).await,
    ] {
        assert_eq!(response.status(), StatusCode::OK);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        let html = response.text().await.unwrap();
        assert!(html.contains("<title>Acme Cloud Status</title>"));
        assert!(html.contains("Checkout"));
        assert!(html.contains("All Systems Operational"));
    }
    let by_host: Value = app
        .get("/api/v2/summary.json", Some(&host))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(by_host["components"][0]["name"], "Checkout");
    app.finish().await;
}

#[tokio::test]
async fn unknown_pages_are_not_found_and_never_another_tenants() {
    let app = TestApp::spawn().await;
    app.signup().await;
    for response in [
        app.get("/", Some("nobody.heliograph.test")).await,
        app.get("/status/nobody/", None).await,
        app.get("/status/nobody/api/v2/summary.json", None).await,
        // A host that is neither ours nor a verified custom domain.
        app.get("/", Some("status.unknown-customer.test")).await,
        app.get("/api/v2/summary.json", Some("status.unknown-customer.test"))
            .await,
    ] {
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        let text = response.text().await.unwrap();
        assert!(text.contains("There is no status page here"));
        assert!(!text.contains("Acme"));
    }
    app.finish().await;
}

#[tokio::test]
async fn private_components_stay_off_the_public_page() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let (status, body) = app
        .post(
            &format!("/v1/pages/{}/components", t.page_id),
            Some(&t.token),
            &json!({"component": {"name": "Internal billing job", "visibility": "private", "status": "major_outage"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["visibility"], "private");
    app.component(&t, "API").await;
    let summary: Value = app
        .get(&format!("/status/{}/api/v2/summary.json", t.slug), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(summary["components"].as_array().unwrap().len(), 1);
    assert_eq!(summary["status"]["indicator"], "none");
    let html = app
        .get(&format!("/status/{}/", t.slug), None)
        .await
        .text()
        .await
        .unwrap();
    assert!(!html.contains("Internal billing job"));
    app.finish().await;
}

#[tokio::test]
async fn the_demo_seed_builds_a_complete_page_once() {
    let app = TestApp::spawn().await;
    assert!(heliograph_api::seed::demo(&app.store).await.unwrap());
    assert!(
        !heliograph_api::seed::demo(&app.store).await.unwrap(),
        "a second run changes nothing"
    );
    // Written straight to the database, as `seed-demo` does: the nudge a
    // worker would send makes the pages read the change.
    app.queues.nudge_page_changes().await.unwrap();
    let summary = app
        .public_json("/status/demo/api/v2/summary.json", None, |s| {
            s["components"].as_array().is_some_and(|c| !c.is_empty())
        })
        .await;
    let components = summary["components"].as_array().unwrap();
    let groups: Vec<&Value> = components.iter().filter(|c| c["group"] == true).collect();
    assert_eq!(groups.len(), 2);
    assert_eq!(groups[0]["name"], "Platform");
    assert_eq!(groups[0]["status"], "partial_outage");
    assert_eq!(groups[0]["components"].as_array().unwrap().len(), 2);
    assert_eq!(
        summary["incidents"].as_array().unwrap().len(),
        1,
        "only the open incident"
    );
    assert_eq!(summary["incidents"][0]["status"], "identified");
    assert_eq!(
        app.count("select count(*) from incidents where status = 'resolved' and started_at < now() - interval '2 days'").await,
        1
    );
    // Resolving restored the component but kept the incident's impact.
    assert_eq!(
        app.count("select count(*) from incidents where status = 'resolved' and impact = 'minor'")
            .await,
        1
    );
    app.drain().await;
    assert_eq!(
        app.count("select count(*) from deliveries where status = 'sent'")
            .await,
        1
    );
    app.finish().await;
}
