//! The thin path end to end: incident → outbox → relay → fan-out → SMTP.
//!
//! Channels other than email, and their retries, are in `channels`.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Infra, TestApp, emails_to, unique_email};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incident_reaches_subscribers_by_email_and_shows_on_the_page() {
    an_incident_reaches_subscribers_by_email_and_shows_on_the_page_on(Infra::default()).await;
}

/// The same journey with the api and the worker behind PgBouncer in transaction mode (`DATABASE_POOLER=transaction`), the relay listening on a direct connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incident_reaches_subscribers_by_email_and_shows_on_the_page_through_pgbouncer_in_transaction_mode()
 {
    an_incident_reaches_subscribers_by_email_and_shows_on_the_page_on(Infra {
        pgbouncer: true,
        ..Infra::default()
    })
    .await;
}

async fn an_incident_reaches_subscribers_by_email_and_shows_on_the_page_on(infra: Infra) {
    let app = TestApp::spawn_on(infra).await;
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
            .fetch_one(&app.admin)
            .await
            .unwrap();
    app.queues
        .push(heliograph_worker::FanOut::new(
            tenant_id.into(),
            event_id.into(),
        ))
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

/// Signs up, adds one email subscriber and opens an incident; answers the
/// tenant and the subscriber's address once the email has gone out.
async fn one_incident_sent(app: &TestApp, components: Value) -> (crate::helpers::Tenant, String) {
    let t = app.signup().await;
    let subscriber = unique_email("sub");
    let (status, _) = app
        .post(
            &format!("/v1/pages/{}/subscribers", t.page_id),
            Some(&t.token),
            &json!({"subscriber": {"email": subscriber, "skip_confirmation_notification": true}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = app
        .post(
            &format!("/v1/pages/{}/incidents", t.page_id),
            Some(&t.token),
            &json!({"incident": {"name": "Queue backlog", "body": "Draining.", "components": components}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    app.drain().await;
    assert_eq!(emails_to(&subscriber, 1).await.len(), 1);
    (t, subscriber)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_lost_with_redis_is_requeued_by_the_sweeper() {
    let app = TestApp::spawn().await;
    let (_, subscriber) = one_incident_sent(&app, json!({})).await;
    assert_eq!(
        app.count("select count(*) from outbox where fanned_out_at is not null")
            .await,
        1
    );
    // Nothing is stalled: the sweeper leaves finished work alone.
    assert_eq!(
        heliograph_worker::sweep(&app.ctx, std::time::Duration::ZERO)
            .await
            .unwrap(),
        0
    );

    // As if the fan-out job had been lost with Redis before it ran.
    sqlx::query("delete from deliveries")
        .execute(&app.admin)
        .await
        .unwrap();
    sqlx::query("update outbox set fanned_out_at = null, relayed_at = now() - interval '1 hour'")
        .execute(&app.admin)
        .await
        .unwrap();
    assert_eq!(
        heliograph_worker::sweep(&app.ctx, std::time::Duration::from_secs(60))
            .await
            .unwrap(),
        1
    );
    app.drain().await;
    assert_eq!(
        emails_to(&subscriber, 2).await.len(),
        2,
        "the lost fan-out was redone"
    );

    // As if a deliver job had been lost: its row is still pending. (The
    // updated_at trigger keeps the row fresh, so any age counts as stalled.)
    sqlx::query("update deliveries set status = 'pending'")
        .execute(&app.admin)
        .await
        .unwrap();
    assert_eq!(
        heliograph_worker::sweep(&app.ctx, std::time::Duration::ZERO)
            .await
            .unwrap(),
        1
    );
    app.drain().await;
    assert_eq!(
        emails_to(&subscriber, 3).await.len(),
        3,
        "the lost delivery was sent"
    );
    assert_eq!(
        app.count("select count(*) from deliveries where status = 'sent'")
            .await,
        1
    );
    app.finish().await;
}

/// Rewinds the one delivery with `rewind` (which answers its tenant and id),
/// queues a deliver job for it as a duplicate would arrive, and drains.
async fn deliver_again(app: &TestApp, rewind: &'static str) {
    let (tenant_id, delivery_id): (uuid::Uuid, uuid::Uuid) =
        sqlx::query_as(rewind).fetch_one(&app.admin).await.unwrap();
    app.queues
        .push(heliograph_worker::Deliver::one(
            tenant_id.into(),
            delivery_id.into(),
        ))
        .await
        .unwrap();
    app.drain().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_who_leaves_before_the_send_is_skipped() {
    let app = TestApp::spawn().await;
    let (_, subscriber) = one_incident_sent(&app, json!({})).await;
    sqlx::query("update subscribers set unsubscribed_at = now()")
        .execute(&app.admin)
        .await
        .unwrap();
    deliver_again(
        &app,
        "update deliveries set status = 'pending' returning tenant_id, id",
    )
    .await;
    assert_eq!(
        app.count("select count(*) from deliveries where status = 'skipped'")
            .await,
        1
    );
    assert_eq!(emails_to(&subscriber, 1).await.len(), 1, "no second email");
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_retried_early_by_a_duplicate_job_waits_for_its_time() {
    let app = TestApp::spawn().await;
    let (_, subscriber) = one_incident_sent(&app, json!({})).await;
    deliver_again(
        &app,
        "update deliveries set status = 'failed', next_attempt_at = now() + interval '1 hour'
         returning tenant_id, id",
    )
    .await;
    assert_eq!(
        app.count("select count(*) from deliveries where status = 'failed'")
            .await,
        1
    );
    assert_eq!(
        emails_to(&subscriber, 1).await.len(),
        1,
        "nothing sent before the retry is due"
    );
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_components_stay_out_of_emails() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let public = app.component(&t, "Public API").await;
    let (status, body) = app
        .post(
            &format!("/v1/pages/{}/components", t.page_id),
            Some(&t.token),
            &json!({"component": {"name": "Secret batch cluster", "visibility": "private"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let private = body["id"].as_str().unwrap().to_owned();
    let subscriber = unique_email("priv");
    app.post(
        &format!("/v1/pages/{}/subscribers", t.page_id),
        Some(&t.token),
        &json!({"subscriber": {"email": subscriber, "skip_confirmation_notification": true}}),
    )
    .await;
    app.post(
        &format!("/v1/pages/{}/incidents", t.page_id),
        Some(&t.token),
        &json!({"incident": {"name": "Outage", "components": {public: "major_outage", private: "major_outage"}}}),
    )
    .await;
    app.drain().await;
    let mails = emails_to(&subscriber, 1).await;
    assert_eq!(mails.len(), 1);
    for part in ["text", "html"] {
        let body = mails[0][part].as_str().unwrap_or_default();
        assert!(body.contains("Public API"), "{part}");
        assert!(!body.contains("Secret batch cluster"), "{part}");
    }
    app.finish().await;
}

#[tokio::test]
async fn every_email_carries_a_one_click_unsubscribe_that_works() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let stranger = app.signup().await;
    let subscriber = unique_email("leaver");
    let (status, body) = app
        .post(
            &format!("/v1/pages/{}/subscribers", t.page_id),
            Some(&t.token),
            &json!({"subscriber": {"email": subscriber, "skip_confirmation_notification": true}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let incident = |name: &'static str| {
        let (app, t) = (&app, &t);
        async move {
            let (status, body) = app
                .post(
                    &format!("/v1/pages/{}/incidents", t.page_id),
                    Some(&t.token),
                    &json!({"incident": {"name": name, "status": "investigating", "body": "Looking."}}),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
            app.drain().await;
        }
    };
    incident("First").await;
    let mail = emails_to(&subscriber, 1).await.remove(0);
    let headers = &mail["headers"];
    assert_eq!(
        headers["list-unsubscribe-post"],
        "List-Unsubscribe=One-Click"
    );
    let link = headers["list-unsubscribe"]
        .as_str()
        .unwrap()
        .trim_matches(['<', '>']);
    let host = format!("{}.heliograph.test", t.slug);
    let path = link
        .strip_prefix(&format!("http://{host}"))
        .expect("the link is on the page's own host");
    assert!(mail["text"].as_str().unwrap().contains(link));
    let active = "select count(*) from subscribers where unsubscribed_at is null";
    let post = |host: String, path: String| {
        let app = &app;
        async move {
            app.client
                .post(app.url(&path))
                .header(reqwest::header::HOST, host)
                .header("content-type", "application/x-www-form-urlencoded")
                .body("List-Unsubscribe=One-Click")
                .send()
                .await
                .unwrap()
        }
    };

    // Fetching the link (as scanners do) only asks.
    let page = app.get(path, Some(&host)).await;
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("<form method=\"post\""));
    assert_eq!(app.count(active).await, 1);
    // A forged token, or the right token on another tenant's page, ends nothing.
    let forged = post(
        host.clone(),
        "/unsubscribe?token=00000000-0000-0000-0000-000000000000.00".into(),
    )
    .await;
    assert_eq!(forged.status(), StatusCode::BAD_REQUEST);
    let elsewhere = post(
        format!("{}.heliograph.test", stranger.slug),
        path.to_owned(),
    )
    .await;
    assert_eq!(elsewhere.status(), StatusCode::OK);
    assert_eq!(app.count(active).await, 1);

    // One click, as a mail client sends it (RFC 8058).
    let done = post(host.clone(), path.to_owned()).await;
    assert_eq!(done.status(), StatusCode::OK);
    assert!(done.text().await.unwrap().contains("no longer receive"));
    assert_eq!(app.count(active).await, 0);
    // Again: still fine, nothing more to do.
    assert_eq!(post(host, path.to_owned()).await.status(), StatusCode::OK);

    incident("Second").await;
    assert_eq!(
        app.count("select count(*) from deliveries where status = 'sent'")
            .await,
        1,
        "nothing more was sent"
    );
    assert_eq!(emails_to(&subscriber, 1).await.len(), 1);
    app.finish().await;
}

#[tokio::test]
async fn the_team_lists_counts_reads_and_removes_subscribers() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let p = format!("/v1/pages/{}/subscribers", t.page_id);
    let mut ids = Vec::new();
    for name in ["ann", "bob", "cat"] {
        let (status, body) = app
            .post(
                &p,
                Some(&t.token),
                &json!({"subscriber": {"email": unique_email(name), "skip_confirmation_notification": true}}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        ids.push(body["id"].as_str().unwrap().to_owned());
    }
    let call = |path: String| {
        let app = &app;
        let token = t.token.clone();
        async move {
            app.call(reqwest::Method::GET, &path, Some(&token), None)
                .await
        }
    };
    let (status, list) = call(format!("{p}?per_page=2&type=email")).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert_eq!(list[0]["id"], ids[0].as_str());
    assert_eq!(list[0]["mode"], "email");
    let (_, bob) = call(format!("{p}?q=bob-")).await;
    assert_eq!(bob.as_array().unwrap().len(), 1);
    assert_eq!(bob[0]["id"], ids[1].as_str());
    assert_eq!(call(format!("{p}/count")).await.1, json!({"count": 3}));
    assert_eq!(
        call(format!("{p}/count?state=unconfirmed")).await.1,
        json!({"count": 0})
    );
    let (status, bad) = call(format!("{p}?state=gone&type=pigeon")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<&str> = bad["error"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["type", "state"]);
    let (status, one) = call(format!("{p}/{}", ids[2])).await;
    assert_eq!(status, StatusCode::OK);
    assert!(one["email"].as_str().unwrap().starts_with("cat-"));

    let (status, gone) = app
        .call(
            reqwest::Method::DELETE,
            &format!("{p}/{}", ids[2]),
            Some(&t.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{gone}");
    assert_eq!(
        call(format!("{p}/{}", ids[2])).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(call(format!("{p}/count")).await.1, json!({"count": 2}));
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_are_claimed_and_recorded_a_group_at_a_time_not_one_transaction_each() {
    const SUBSCRIBERS: i64 = 200;
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    app.bulk_email_subscribers(&t, "group", SUBSCRIBERS).await;
    let (status, body) = app
        .post(
            &format!("/v1/pages/{}/incidents", t.page_id),
            Some(&t.token),
            &json!({"incident": {"name": "Batched", "body": "Draining."}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    app.drain().await;
    assert_eq!(
        app.count("select count(*) from deliveries where status = 'sent'")
            .await,
        SUBSCRIBERS
    );
    // A row's `xmin` is the transaction that last wrote it: the
    // transactions that recorded the sends, counted. One delivery per
    // transaction would show 200; groups of 8 show 25.
    let recorded_by = app
        .count("select count(distinct xmin::text) from deliveries where status = 'sent'")
        .await;
    assert!(
        recorded_by <= SUBSCRIBERS / 8 + 2,
        "{SUBSCRIBERS} emails were recorded by {recorded_by} transactions"
    );
    app.finish().await;
}
