//! The tests' drain and the worker's one list of job kinds: a drain fails,
//! naming the queue and the job, on a job that died or was left behind;
//! every queue of the list is run and measured; the jobs of a notification
//! run in spans naming their tenant and entities.

use std::time::Duration;

use heliograph_testkit::captured_logs;
use heliograph_worker::JOBS;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::TestApp;

#[tokio::test]
async fn a_job_that_dies_fails_the_drain_naming_its_queue_and_job() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    app.drain().await;
    // An event whose payload is not an incident's: its fan-out fails for good.
    let event_id = Uuid::new_v4();
    sqlx::query(
        "insert into outbox (id, tenant_id, page_id, kind, payload)
         values ($1, $2::uuid, $3::uuid, 'incident.created', '{\"not\": \"an incident\"}')",
    )
    .bind(event_id)
    .bind(&t.tenant_id)
    .bind(&t.page_id)
    .execute(&app.admin)
    .await
    .unwrap();

    let problem = app
        .try_drain(Duration::from_secs(120), None)
        .await
        .expect_err("a dead job fails the drain");
    assert!(problem.contains("died"), "{problem}");
    assert!(problem.contains("queue `fanout`"), "{problem}");
    assert!(problem.contains(&event_id.to_string()), "{problem}");
    let problem = app
        .try_drain(Duration::from_secs(120), Some(("fanout", 2)))
        .await
        .expect_err("one job died, not two");
    assert!(
        problem.contains("1 jobs died on queue `fanout`"),
        "{problem}"
    );

    // Said aloud, the death is expected, and forgotten once drained.
    app.drain_expecting_dead("fanout", 1).await;
    app.finish().await;
}

#[tokio::test]
async fn a_job_left_behind_fails_the_drain_naming_its_queue_and_job() {
    let app = TestApp::spawn().await;
    let link_id = Uuid::new_v4();
    app.queues
        .push_after(
            heliograph_worker::AccountEmail { link_id },
            Duration::from_secs(3600),
        )
        .await
        .unwrap();

    // The job waits for an hour: no wait of two seconds sees the queue empty.
    let problem = app
        .try_drain(Duration::from_secs(2), None)
        .await
        .expect_err("a job left behind fails the drain");
    assert!(problem.contains("did not finish"), "{problem}");
    assert!(problem.contains("queue `account-email`"), "{problem}");
    assert!(problem.contains(&link_id.to_string()), "{problem}");
    app.teardown().await;
}

#[tokio::test]
async fn every_queue_of_the_one_list_has_a_worker_and_a_line_in_the_metrics() {
    let app = TestApp::spawn().await;
    let queues: Vec<&str> = JOBS.queues().collect();
    assert_eq!(
        queues,
        [
            "fanout",
            "deliver",
            "deliver-bulk",
            "account-email",
            "invitation-email",
            "verify-domain",
            "billing-notice",
            "export-page",
            "export-sweep"
        ],
        "the queues, in the order /metrics lists them"
    );
    for queue in &queues {
        // The run loop started a worker on every queue of the list.
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while app
            .queues
            .registered_workers(queue)
            .await
            .unwrap()
            .is_empty()
        {
            assert!(
                std::time::Instant::now() < deadline,
                "no worker runs queue `{queue}`"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let metrics = heliograph_worker::metrics::render(&app.ctx).await;
    for queue in &queues {
        for state in ["ready", "scheduled", "in_flight", "done", "dead"] {
            let line = format!("heliograph_queue_jobs{{queue=\"{queue}\",state=\"{state}\"}}");
            assert!(metrics.contains(&line), "{line} in\n{metrics}");
        }
    }
    app.finish().await;
}

#[tokio::test]
async fn a_notification_fans_out_and_delivers_in_spans_naming_its_tenant_incident_and_delivery() {
    captured_logs();
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let component = app.component(&t, "API").await;
    sqlx::query(
        "insert into subscribers (id, tenant_id, page_id, channel, email, confirmed_at)
         values (gen_random_uuid(), $1::uuid, $2::uuid, 'email', $3, now())",
    )
    .bind(&t.tenant_id)
    .bind(&t.page_id)
    .bind(format!("span-{}@example.com", Uuid::new_v4().simple()))
    .execute(&app.admin)
    .await
    .unwrap();
    let (status, incident) = app
        .post(
            &format!("/v1/pages/{}/incidents", t.page_id),
            Some(&t.token),
            &json!({"incident": {
                "name": "Spans", "status": "investigating", "body": "Looking.",
                "components": {component: "major_outage"},
            }}),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::CREATED, "{incident}");
    let incident_id = incident["id"].as_str().unwrap().to_owned();
    app.drain().await;

    let tenant = format!("tenant.id={}", t.tenant_id);
    assert!(
        captured_logs()
            .matching(&tenant)
            .iter()
            .any(|l| l.starts_with("span fanout")),
        "a fan-out span names the tenant"
    );
    // Recorded into the fan-out's span once the event is read.
    assert!(
        captured_logs()
            .matching(&format!("incident.id={incident_id}"))
            .iter()
            .any(|l| l.starts_with("record #")),
        "the fan-out span names the incident"
    );
    let delivery: (Uuid,) = sqlx::query_as("select id from deliveries where tenant_id = $1::uuid")
        .bind(&t.tenant_id)
        .fetch_one(&app.admin)
        .await
        .unwrap();
    assert!(
        captured_logs()
            .matching(&format!("delivery.id={}", delivery.0))
            .iter()
            .any(|l| l.starts_with("span deliver") && l.contains(&tenant)),
        "a deliver span names the tenant and the delivery"
    );
    app.finish().await;
}
