//! Incidents and maintenances through their lifecycles, as the management
//! API and the worker's clock drive them.
//!
//! The notifications they send are in `notifications` and `channels`.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::helpers::{Tenant, TestApp};

async fn event_kinds(app: &TestApp) -> Vec<String> {
    sqlx::query_scalar("select kind from outbox order by created_at, kind")
        .fetch_all(&app.admin)
        .await
        .unwrap()
}

async fn component_status(app: &TestApp, t: &Tenant, id: &str) -> String {
    let (_, c) = app
        .call(
            Method::GET,
            &format!("/v1/pages/{}/components/{id}", t.page_id),
            Some(&t.token),
            None,
        )
        .await;
    c["status"].as_str().unwrap().to_owned()
}

async fn patch(app: &TestApp, t: &Tenant, id: &str, incident: Value) -> (StatusCode, Value) {
    app.call(
        Method::PATCH,
        &format!("/v1/pages/{}/incidents/{id}", t.page_id),
        Some(&t.token),
        Some(&json!({ "incident": incident })),
    )
    .await
}

#[tokio::test]
async fn an_incident_runs_its_lifecycle_by_patch_and_ends_with_a_postmortem() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let api = app.component(&t, "API").await;
    let db = app.component(&t, "Database").await;
    let (status, incident) = app
        .post(
            &format!("/v1/pages/{}/incidents", t.page_id),
            Some(&t.token),
            &json!({"incident": {"name": "Errors", "body": "Looking", "components": {api.clone(): "major_outage"}, "component_ids": [db]}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{incident}");
    assert_eq!(incident["impact"], "critical");
    let id = incident["id"].as_str().unwrap().to_owned();

    let (status, body) = patch(&app, &t, &id, json!({"status": "identified", "body": "Found it", "components": {api.clone(): "partial_outage"}})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "identified");
    assert_eq!(body["impact"], "critical", "impact never falls on its own");
    let (_, body) = patch(
        &app,
        &t,
        &id,
        json!({"status": "monitoring", "body": "Fix deployed"}),
    )
    .await;
    assert!(body["monitoring_at"].is_string());
    // A rename alone posts no update.
    let (_, body) = patch(
        &app,
        &t,
        &id,
        json!({"name": "API errors", "impact_override": "major"}),
    )
    .await;
    assert_eq!(body["name"], "API errors");
    assert_eq!(body["impact"], "major");
    assert_eq!(body["incident_updates"].as_array().unwrap().len(), 3);

    let (status, body) = patch(
        &app,
        &t,
        &id,
        json!({"status": "resolved", "body": "All good", "restore_components": true}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["resolved_at"].is_string());
    assert_eq!(component_status(&app, &t, &api).await, "operational");
    assert_eq!(component_status(&app, &t, &db).await, "operational");
    let latest = &body["incident_updates"][0];
    assert_eq!(latest["status"], "resolved");
    assert_eq!(
        latest["affected_components"][0]["old_status"],
        "partial_outage"
    );
    assert_eq!(
        latest["affected_components"][0]["new_status"],
        "operational"
    );

    // The lifecycle refuses a maintenance status, and a postmortem before its text.
    let (status, body) = patch(&app, &t, &id, json!({"status": "in_progress"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["fields"][0]["code"], "invalid_transition");
    let pm = format!("/v1/pages/{}/incidents/{id}/postmortem", t.page_id);
    let (status, _) = app.call(Method::GET, &pm, Some(&t.token), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = app
        .call(
            Method::PUT,
            &format!("{pm}/publish"),
            Some(&t.token),
            Some(&json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, body) = app
        .call(
            Method::PUT,
            &pm,
            Some(&t.token),
            Some(&json!({"postmortem": {"body_draft": "Root cause: a bad index."}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["published_at"].is_null());
    let (status, body) = app
        .call(
            Method::PUT,
            &format!("{pm}/publish"),
            Some(&t.token),
            Some(&json!({"postmortem": {"notify_subscribers": false}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["published_at"].is_string());
    let (status, body) = app
        .call(
            Method::PUT,
            &format!("{pm}/publish"),
            Some(&t.token),
            Some(&json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"]["code"], "postmortem_published");
    let (_, body) = app
        .call(
            Method::GET,
            &format!("/v1/pages/{}/incidents/{id}", t.page_id),
            Some(&t.token),
            None,
        )
        .await;
    assert_eq!(body["status"], "postmortem");
    // postmortem is final.
    let (status, _) = patch(
        &app,
        &t,
        &id,
        json!({"status": "investigating", "body": "again?"}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // Every change wrote its event in its own transaction.
    let kinds = event_kinds(&app).await;
    for kind in [
        "incident.created",
        "incident.updated",
        "incident.resolved",
        "component.updated",
    ] {
        assert!(
            kinds.iter().any(|k| k == kind),
            "{kind} missing from {kinds:?}"
        );
    }
    assert_eq!(
        kinds.iter().filter(|k| *k == "component.updated").count(),
        3,
        "{kinds:?}"
    );

    let (_, before) = app
        .call(
            Method::GET,
            &format!("/v1/pages/{}/incidents/{id}", t.page_id),
            Some(&t.token),
            None,
        )
        .await;
    let (status, deleted) = app
        .call(
            Method::DELETE,
            &format!("/v1/pages/{}/incidents/{id}", t.page_id),
            Some(&t.token),
            None,
        )
        .await;
    // As Statuspage answers: the deleted incident, as GET showed it.
    assert_eq!(status, StatusCode::OK, "{deleted}");
    assert_eq!(deleted, before);
    assert_eq!(app.count("select count(*) from incidents").await, 0);
    assert_eq!(app.count("select count(*) from incident_updates").await, 0);
    assert_eq!(
        app.count("select count(*) from component_status_changes")
            .await,
        3,
        "uptime history outlives the incident"
    );
    app.finish().await;
}

#[tokio::test]
async fn backfilled_incidents_change_no_component_and_tell_nobody() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let api = app.component(&t, "API").await;
    let (status, body) = app
        .post(
            &format!("/v1/pages/{}/incidents", t.page_id),
            Some(&t.token),
            &json!({"incident": {"name": "Last year's outage", "backfilled": true, "backfill_date": "2025-11-03",
                                 "body": "Entered after the fact", "components": {api.clone(): "major_outage"}}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["status"], "resolved");
    assert_eq!(body["backfilled"], true);
    assert!(
        body["created_at"]
            .as_str()
            .unwrap()
            .starts_with("2025-11-03")
    );
    assert_eq!(component_status(&app, &t, &api).await, "operational");
    assert_eq!(
        app.count("select count(*) from outbox where (payload->>'deliver_notifications')::boolean")
            .await,
        0
    );
    let (status, body) = app
        .post(
            &format!("/v1/pages/{}/incidents", t.page_id),
            Some(&t.token),
            &json!({"incident": {"name": "Future", "backfilled": true, "backfill_date": "2999-01-01"}}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    app.finish().await;
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap()
}

#[tokio::test]
async fn a_maintenance_reminds_starts_and_completes_on_time_and_gives_components_back() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let db = app.component(&t, "Database").await;
    // Degraded before the window: that is what it must get back.
    app.call(
        Method::PATCH,
        &format!("/v1/pages/{}/components/{db}", t.page_id),
        Some(&t.token),
        Some(&json!({"component": {"status": "degraded_performance"}})),
    )
    .await;
    let start = OffsetDateTime::now_utc() + time::Duration::hours(3);
    let end = start + time::Duration::hours(1);
    let (status, m) = app
        .post(
            &format!("/v1/pages/{}/incidents", t.page_id),
            Some(&t.token),
            &json!({"incident": {"name": "Database upgrade", "body": "Planned", "component_ids": [db],
                                 "scheduled_for": rfc3339(start), "scheduled_until": rfc3339(end),
                                 "scheduled_remind_prior": true, "scheduled_auto_in_progress": true,
                                 "scheduled_auto_completed": true}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{m}");
    assert_eq!(m["status"], "scheduled");
    assert_eq!(m["impact"], "maintenance");
    let id = m["id"].as_str().unwrap();
    let list = |scope: &str| format!("/v1/pages/{}/incidents/{scope}", t.page_id);
    let (_, upcoming) = app
        .call(Method::GET, &list("upcoming"), Some(&t.token), None)
        .await;
    assert_eq!(upcoming.as_array().unwrap().len(), 1);
    assert_eq!(
        component_status(&app, &t, &db).await,
        "degraded_performance",
        "nothing moves before the window"
    );

    let tick = |at: OffsetDateTime| heliograph_worker::tick_maintenance(&app.ctx, at);
    assert_eq!(
        tick(start - time::Duration::hours(2)).await.unwrap(),
        0,
        "too early to remind"
    );
    assert_eq!(
        tick(start - time::Duration::minutes(30)).await.unwrap(),
        1,
        "the reminder"
    );
    assert_eq!(
        tick(start - time::Duration::minutes(20)).await.unwrap(),
        0,
        "one reminder per window"
    );
    assert_eq!(
        tick(start + time::Duration::minutes(1)).await.unwrap(),
        1,
        "the start"
    );
    assert_eq!(component_status(&app, &t, &db).await, "under_maintenance");
    let (_, active) = app
        .call(
            Method::GET,
            &list("active_maintenance"),
            Some(&t.token),
            None,
        )
        .await;
    assert_eq!(active[0]["status"], "in_progress");
    assert_eq!(tick(start + time::Duration::minutes(2)).await.unwrap(), 0);
    assert_eq!(
        tick(end + time::Duration::minutes(1)).await.unwrap(),
        1,
        "the completion"
    );
    assert_eq!(
        component_status(&app, &t, &db).await,
        "degraded_performance"
    );
    let (_, done) = app
        .call(
            Method::GET,
            &format!("/v1/pages/{}/incidents/{id}", t.page_id),
            Some(&t.token),
            None,
        )
        .await;
    assert_eq!(done["status"], "completed");
    let statuses: Vec<&str> = done["incident_updates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["completed", "in_progress", "scheduled"]);
    let kinds = event_kinds(&app).await;
    for kind in [
        "maintenance.scheduled",
        "maintenance.reminder",
        "maintenance.started",
        "maintenance.completed",
    ] {
        assert_eq!(
            kinds.iter().filter(|k| *k == kind).count(),
            1,
            "{kind} in {kinds:?}"
        );
    }
    let (status, body) = patch(&app, &t, id, json!({"status": "in_progress"})).await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "completed is final: {body}"
    );
    app.finish().await;
}

#[tokio::test]
async fn a_maintenance_needs_a_window_that_ends_after_it_starts() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let now = OffsetDateTime::now_utc();
    for (incident, field) in [
        (
            json!({"name": "M", "scheduled_for": rfc3339(now)}),
            "scheduled_until",
        ),
        (
            json!({"name": "M", "scheduled_for": rfc3339(now), "scheduled_until": rfc3339(now - time::Duration::hours(1))}),
            "scheduled_until",
        ),
        (json!({"name": "M", "status": "scheduled"}), "scheduled_for"),
        (
            json!({"name": "M", "scheduled_for": "tomorrow", "scheduled_until": rfc3339(now)}),
            "scheduled_for",
        ),
    ] {
        let (status, body) = app
            .post(
                &format!("/v1/pages/{}/incidents", t.page_id),
                Some(&t.token),
                &json!({ "incident": incident }),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(body["error"]["fields"][0]["field"], field, "{body}");
    }
    assert_eq!(app.count("select count(*) from incidents").await, 0);
    app.finish().await;
}

#[tokio::test]
async fn incidents_open_from_templates_and_updates_can_be_corrected() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let api = app.component(&t, "API").await;
    let base = format!("/v1/pages/{}/incident_templates", t.page_id);
    let (status, template) = app
        .post(
            &base,
            Some(&t.token),
            &json!({"template": {"name": "API down", "title": "The API is down", "body": "We are on it.",
                                 "update_status": "identified", "should_send_notifications": false, "component_ids": [api]}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{template}");
    let (status, body) = app
        .post(
            &base,
            Some(&t.token),
            &json!({"template": {"name": "api DOWN", "title": "x"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"]["code"], "template_name_taken");
    let (_, list) = app.call(Method::GET, &base, Some(&t.token), None).await;
    assert_eq!(list.as_array().unwrap().len(), 1);

    let (status, incident) = app
        .post(
            &format!("/v1/pages/{}/incidents", t.page_id),
            Some(&t.token),
            &json!({"incident": {"template_id": template["id"]}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{incident}");
    assert_eq!(incident["name"], "The API is down");
    assert_eq!(incident["status"], "identified");
    assert_eq!(incident["components"][0]["id"], api.as_str());
    let update = &incident["incident_updates"][0];
    assert_eq!(update["body"], "We are on it.");
    assert_eq!(update["deliver_notifications"], false);

    let (status, corrected) = app
        .call(
            Method::PATCH,
            &format!("/v1/pages/{}/incidents/{}/incident_updates/{}", t.page_id, incident["id"].as_str().unwrap(), update["id"].as_str().unwrap()),
            Some(&t.token),
            Some(&json!({"incident_update": {"body": "We are on it (typo fixed).", "display_at": "2026-11-20T10:00:00Z"}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{corrected}");
    assert_eq!(corrected["body"], "We are on it (typo fixed).");
    assert!(
        corrected["display_at"]
            .as_str()
            .unwrap()
            .starts_with("2026-11-20T10:00:00")
    );

    let (status, _) = app
        .post(
            &format!("/v1/pages/{}/incidents", t.page_id),
            Some(&t.token),
            &json!({"incident": {"template_id": api}}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a component id is no template"
    );
    let (status, _) = app
        .call(
            Method::DELETE,
            &format!("{base}/{}", template["id"].as_str().unwrap()),
            Some(&t.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    app.finish().await;
}
