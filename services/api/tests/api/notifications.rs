//! The thin path end to end: incident → outbox → relay → fan-out → SMTP.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, emails_to, unique_email};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incident_reaches_subscribers_by_email_and_shows_on_the_page() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let api = app.component(&t, "API").await;
    let subscriber = unique_email("sub");
    let (status, body) = app
        .post(
            &format!("/v1/pages/{}/subscribers", t.page_id),
            Some(&t.token),
            &json!({"subscriber": {"email": subscriber, "skip_confirmation_notification": true}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    let (status, incident) = app
        .post(
            &format!("/v1/pages/{}/incidents", t.page_id),
            Some(&t.token),
            &json!({"incident": {
                "name": "Elevated API errors",
                "status": "investigating",
                "body": "We are looking into elevated error rates.",
                "components": {api.clone(): "partial_outage"},
            }}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{incident}");
    assert_eq!(incident["impact"], "major");
    assert_eq!(
        incident["incident_updates"][0]["affected_components"][0]["old_status"],
        "operational"
    );
    assert_eq!(
        incident["incident_updates"][0]["affected_components"][0]["new_status"],
        "partial_outage"
    );

    app.drain().await;
    let mails = emails_to(&subscriber, 1).await;
    assert_eq!(mails.len(), 1, "exactly one email reached the subscriber");
    let subject = mails[0]["subject"].as_str().unwrap_or_default();
    assert!(
        subject.contains("Elevated API errors"),
        "subject: {subject}"
    );
    assert!(subject.contains("Investigating"), "subject: {subject}");
    let text = mails[0]["text"].as_str().unwrap_or_default();
    assert!(text.contains("We are looking into elevated error rates."));
    assert!(text.contains(&format!("http://{}.heliograph.test", t.slug)));
    let sent = app
        .count("select count(*) from deliveries where status = 'sent' and attempts = 1")
        .await;
    assert_eq!(sent, 1);

    let summary: Value = app
        .get(&format!("/status/{}/api/v2/summary.json", t.slug), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(summary["status"]["indicator"], "major");
    assert_eq!(summary["incidents"][0]["name"], "Elevated API errors");
    assert_eq!(summary["incidents"][0]["components"][0]["id"], api.as_str());
    assert_eq!(summary["components"][0]["status"], "partial_outage");

    let host = format!("{}.heliograph.test", t.slug);
    let page = app.get("/", Some(&host)).await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("Elevated API errors"));
    assert!(html.contains("We are looking into elevated error rates."));
    assert!(html.contains("Partial Outage"));
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relaying_an_event_twice_sends_each_email_once() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let subscriber = unique_email("twice");
    app.post(
        &format!("/v1/pages/{}/subscribers", t.page_id),
        Some(&t.token),
        &json!({"subscriber": {"email": subscriber, "skip_confirmation_notification": true}}),
    )
    .await;
    let (status, _) = app
        .post(
            &format!("/v1/pages/{}/incidents", t.page_id),
            Some(&t.token),
            &json!({"incident": {"name": "Database failover", "body": "Failing over."}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    app.drain().await;

    // At-least-once delivery: the same fan-out job arrives again, as after a
    // relay crash between push and commit.
    let (tenant_id, event_id): (uuid::Uuid, uuid::Uuid) =
        sqlx::query_as("select tenant_id, id from outbox")
            .fetch_one(app.store.pool())
            .await
            .unwrap();
    app.queues
        .push(heliograph_worker::FanOut {
            tenant_id: tenant_id.into(),
            event_id: event_id.into(),
        })
        .await
        .unwrap();
    app.drain().await;

    assert_eq!(emails_to(&subscriber, 1).await.len(), 1);
    assert_eq!(app.count("select count(*) from deliveries").await, 1);
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_hear_only_of_their_components_and_their_tenant() {
    let app = TestApp::spawn().await;
    let a = app.signup().await;
    let b = app.signup().await;
    let api = app.component(&a, "API").await;
    let web = app.component(&a, "Website").await;
    let (follows_web, follows_all, other_tenant) =
        (unique_email("web"), unique_email("all"), unique_email("b"));
    for (t, email, components) in [
        (&a, &follows_web, vec![web.clone()]),
        (&a, &follows_all, vec![]),
        (&b, &other_tenant, vec![]),
    ] {
        let (status, body) = app
            .post(
                &format!("/v1/pages/{}/subscribers", t.page_id),
                Some(&t.token),
                &json!({"subscriber": {"email": email, "components": components, "skip_confirmation_notification": true}}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    app.post(
        &format!("/v1/pages/{}/incidents", a.page_id),
        Some(&a.token),
        &json!({"incident": {"name": "API latency", "components": {api: "degraded_performance"}}}),
    )
    .await;
    app.drain().await;
    assert_eq!(emails_to(&follows_all, 1).await.len(), 1);
    assert_eq!(app.count("select count(*) from deliveries").await, 1);
    assert!(emails_to(&follows_web, 0).await.is_empty());
    assert!(emails_to(&other_tenant, 0).await.is_empty());
    app.finish().await;
}
