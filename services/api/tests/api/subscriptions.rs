//! Subscribers on every channel: the team's API (add, change, resend,
//! ping, reactivate), the delivery log and its redrive, and self-service
//! subscription on the public page (double opt-in by link or code, limits,
//! the manage page).
//!
//! What each channel then delivers is in `channels` and `notifications`.

use heliograph_auth::{LinkSigner, SMS_CODE_PURPOSE, UNSUBSCRIBE_PURPOSE};
use heliograph_testkit::HttpReceiver;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use secrecy::SecretString;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{LINK_SECRET, Tenant, TestApp, emails_to, unique_email, unique_ip};

fn subscribers(t: &Tenant) -> String {
    format!("/v1/pages/{}/subscribers", t.page_id)
}

/// Adds a subscriber through the team's API; answers status and body.
async fn add(app: &TestApp, t: &Tenant, subscriber: Value) -> (StatusCode, Value) {
    app.post(
        &subscribers(t),
        Some(&t.token),
        &json!({ "subscriber": subscriber }),
    )
    .await
}

/// Adds a subscriber that must exist; answers its id.
async fn added(app: &TestApp, t: &Tenant, subscriber: Value) -> String {
    let (status, body) = add(app, t, subscriber).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_str().expect("an id").to_owned()
}

fn field_codes(body: &Value) -> Vec<(String, String)> {
    body["error"]["fields"]
        .as_array()
        .map(|fields| {
            fields
                .iter()
                .map(|f| {
                    (
                        f["field"].as_str().unwrap_or_default().to_owned(),
                        f["code"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// How many outbox events of `kind` name the subscriber.
async fn events_for(app: &TestApp, kind: &str, subscriber: &str) -> i64 {
    let (n,): (i64,) = sqlx::query_as(
        "select count(*) from outbox where kind = $1 and payload ->> 'subscriber_id' = $2",
    )
    .bind(kind)
    .bind(subscriber)
    .fetch_one(&app.admin)
    .await
    .unwrap();
    n
}

async fn set_page(app: &TestApp, t: &Tenant, settings: Value) {
    let (status, body) = app
        .call(
            Method::PATCH,
            &format!("/v1/pages/{}", t.page_id),
            Some(&t.token),
            Some(&json!({ "page": settings })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

// ------------------------------------------------------------------ team API

#[tokio::test]
async fn the_team_adds_an_email_subscriber_who_must_confirm_unless_vouched_for() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let address = unique_email("optin");
    let (status, pending) = add(&app, &t, json!({"email": address})).await;
    assert_eq!(status, StatusCode::CREATED, "{pending}");
    assert_eq!(pending["mode"], "email");
    assert_eq!(pending["email"], address.as_str());
    assert_eq!(pending["confirmed_at"], Value::Null);
    assert!(pending["confirmation_sent_at"].is_string());
    assert_eq!(pending["purge_at"], Value::Null);
    assert!(pending.get("webhook_secret").is_none());
    let id = pending["id"].as_str().unwrap();
    assert_eq!(
        events_for(&app, "subscription.confirmation", id).await,
        1,
        "a confirmation is on its way"
    );

    let vouched = added(
        &app,
        &t,
        json!({"email": unique_email("vouched"), "skip_confirmation_notification": true}),
    )
    .await;
    let (_, body) = app
        .call(
            Method::GET,
            &format!("{}/{vouched}", subscribers(&t)),
            Some(&t.token),
            None,
        )
        .await;
    assert!(body["confirmed_at"].is_string(), "{body}");
    assert_eq!(
        events_for(&app, "subscription.confirmation", &vouched).await,
        0
    );
    let (_, count) = app
        .call(
            Method::GET,
            &format!("{}/count?state=unconfirmed", subscribers(&t)),
            Some(&t.token),
            None,
        )
        .await;
    assert_eq!(count, json!({"count": 1}));
    // The audit log names the channel, never the address.
    let (details,): (Value,) = sqlx::query_as(
        "select details from audit_log where action = 'subscriber.created' and object_id = $1::uuid",
    )
    .bind(id)
    .fetch_one(&app.admin)
    .await
    .unwrap();
    assert_eq!(details["mode"], "email");
    assert!(!details.to_string().contains(&address));
    app.finish().await;
}

#[tokio::test]
async fn sms_subscribers_need_an_international_number() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    app.enable_sms(&t, &["1"]).await;
    for bad in ["0612345678", "+0123456789", "+1 415 CALL ME", "+1234"] {
        let (status, body) = add(
            &app,
            &t,
            json!({"phone_number": bad, "skip_confirmation_notification": true}),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {body}");
        assert_eq!(
            field_codes(&body),
            [("phone_number".to_owned(), "invalid".to_owned())]
        );
    }
    let (status, body) = add(
        &app,
        &t,
        json!({"phone_number": "+1 (415) 555-0123", "phone_country": "US", "skip_confirmation_notification": true}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["mode"], "sms");
    assert_eq!(body["phone_number"], "+14155550123");
    assert_eq!(body["email"], Value::Null);
    let (status, body) = add(
        &app,
        &t,
        json!({"email": unique_email("two"), "phone_number": "+14155550124"}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        field_codes(&body),
        [("subscriber".to_owned(), "ambiguous".to_owned())]
    );
    let (status, body) = add(&app, &t, json!({"components": []})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        field_codes(&body),
        [("email".to_owned(), "missing".to_owned())]
    );
    assert_eq!(app.count("select count(*) from subscribers").await, 1);
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_subscriber_gets_its_signing_secret_once_and_confirms_by_answering_the_ping() {
    let receiver = HttpReceiver::start().await.expect("a receiver");
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let url = receiver.url("/hooks/status");
    let (status, created) = add(&app, &t, json!({"endpoint": url})).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["mode"], "webhook");
    assert_eq!(created["endpoint"], url.as_str());
    let secret = created["webhook_secret"].as_str().expect("a secret");
    assert!(secret.starts_with("whsec_"), "{secret}");
    let id = created["id"].as_str().unwrap();
    // Kept sealed (never in clear), and it opens to the secret shown.
    let (plain, sealed): (Option<String>, Option<String>) = sqlx::query_as(
        "select webhook_secret, webhook_secret_sealed from subscribers where id = $1::uuid",
    )
    .bind(id)
    .fetch_one(&app.admin)
    .await
    .unwrap();
    assert_eq!(plain, None);
    let stored = crate::helpers::secrets_keyring()
        .open(
            &heliograph_store::webhook_secret_seal_context(id.parse().unwrap()),
            &sealed.unwrap(),
        )
        .unwrap();
    assert_eq!(secrecy::ExposeSecret::expose_secret(&stored), secret);

    let (_, one) = app
        .call(
            Method::GET,
            &format!("{}/{id}", subscribers(&t)),
            Some(&t.token),
            None,
        )
        .await;
    let (_, all) = app
        .call(
            Method::GET,
            &format!("{}?state=all", subscribers(&t)),
            Some(&t.token),
            None,
        )
        .await;
    for shown in [&one, &all] {
        assert!(!shown.to_string().contains("whsec_"), "{shown}");
    }

    // The ping is answered 200: the worker confirms the endpoint.
    app.drain().await;
    assert_eq!(receiver.requests_to("/hooks/status").len(), 1);
    let (_, one) = app
        .call(
            Method::GET,
            &format!("{}/{id}", subscribers(&t)),
            Some(&t.token),
            None,
        )
        .await;
    assert!(one["confirmed_at"].is_string(), "{one}");
    app.finish().await;
    receiver.stop().await;
}

#[tokio::test]
async fn slack_and_teams_endpoints_are_subscribers_of_their_own_kind_without_a_secret() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    for (field, kind) in [("type", "slack"), ("mode", "teams")] {
        let (status, body) = add(
            &app,
            &t,
            json!({
                "endpoint": format!("https://hooks.example.test/{kind}"),
                field: kind,
                "skip_confirmation_notification": true,
            }),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["mode"], kind);
        assert!(body.get("webhook_secret").is_none(), "{body}");
        // The URL is the credential to post in that channel: never shown whole.
        let shown = format!("https://hooks.example.test/…{}", &kind[1..]);
        assert_eq!(body["endpoint"], shown.as_str());
        let (status, list) = app
            .call(
                reqwest::Method::GET,
                &format!("/v1/pages/{}/subscribers?type={kind}", t.page_id),
                Some(&t.token),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{list}");
        assert_eq!(list[0]["endpoint"], shown.as_str(), "{list}");
    }
    let (status, body) = add(
        &app,
        &t,
        json!({"endpoint": "https://hooks.example.test/x", "type": "pigeon"}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        field_codes(&body),
        [("type".to_owned(), "invalid".to_owned())]
    );
    let (status, body) = add(
        &app,
        &t,
        json!({"email": unique_email("x"), "type": "slack"}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        field_codes(&body),
        [("type".to_owned(), "mismatch".to_owned())]
    );
    let (status, body) = add(&app, &t, json!({"endpoint": "ftp://example.test/"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        field_codes(&body),
        [("endpoint".to_owned(), "invalid".to_owned())]
    );
    app.finish().await;
}

#[tokio::test]
async fn a_channel_the_page_does_not_take_is_refused() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    set_page(
        &app,
        &t,
        json!({"allow_sms_subscribers": false, "allow_webhook_subscribers": false}),
    )
    .await;
    for (subscriber, field) in [
        (json!({"phone_number": "+14155550123"}), "phone_number"),
        (
            json!({"endpoint": "https://hooks.example.test/a"}),
            "endpoint",
        ),
        (
            json!({"endpoint": "https://hooks.example.test/b", "type": "slack"}),
            "endpoint",
        ),
    ] {
        let (status, body) = add(&app, &t, subscriber).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(
            field_codes(&body),
            [(field.to_owned(), "channel_not_allowed".to_owned())]
        );
    }
    assert_eq!(
        add(&app, &t, json!({"email": unique_email("ok")})).await.0,
        StatusCode::CREATED
    );
    assert_eq!(app.count("select count(*) from subscribers").await, 1);
    app.finish().await;
}

#[tokio::test]
async fn the_same_number_or_endpoint_is_subscribed_once_per_page() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let other = app.signup().await;
    app.enable_sms(&t, &["44"]).await;
    app.enable_sms(&other, &["44"]).await;
    for subscriber in [
        json!({"phone_number": "+447700900123", "skip_confirmation_notification": true}),
        json!({"endpoint": "https://hooks.example.test/once", "skip_confirmation_notification": true}),
    ] {
        assert_eq!(
            add(&app, &t, subscriber.clone()).await.0,
            StatusCode::CREATED
        );
        let (status, body) = add(&app, &t, subscriber.clone()).await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert_eq!(body["error"]["code"], "already_subscribed");
        // Another page may have the same subscriber.
        assert_eq!(add(&app, &other, subscriber).await.0, StatusCode::CREATED);
    }
    // The same URL as Slack is another subscription than as a webhook.
    assert_eq!(
        add(
            &app,
            &t,
            json!({"endpoint": "https://hooks.example.test/once", "type": "slack", "skip_confirmation_notification": true})
        )
        .await
        .0,
        StatusCode::CREATED
    );
    app.finish().await;
}

#[tokio::test]
async fn the_team_changes_the_components_a_subscriber_follows() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let stranger = app.signup().await;
    let api = app.component(&t, "API").await;
    let web = app.component(&t, "Website").await;
    let theirs = app.component(&stranger, "Theirs").await;
    let id = added(
        &app,
        &t,
        json!({"email": unique_email("c"), "components": [api.clone()], "skip_confirmation_notification": true}),
    )
    .await;
    let path = format!("{}/{id}", subscribers(&t));
    let (status, body) = app
        .call(
            Method::PATCH,
            &path,
            Some(&t.token),
            Some(&json!({"subscriber": {"components": [web.clone(), api.clone()]}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut got: Vec<&str> = body["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    got.sort_unstable();
    let mut want = vec![api.as_str(), web.as_str()];
    want.sort_unstable();
    assert_eq!(got, want);

    let (status, body) = app
        .call(
            Method::PUT,
            &path,
            Some(&t.token),
            Some(&json!({"subscriber": {"component_ids": []}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["components"], json!([]), "empty means all");

    for bad in [theirs.as_str(), "not-an-id"] {
        let (status, body) = app
            .call(
                Method::PATCH,
                &path,
                Some(&t.token),
                Some(&json!({"subscriber": {"components": [bad]}})),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(field_codes(&body)[0].0, "components");
    }
    assert_eq!(
        app.count("select count(*) from subscriber_components")
            .await,
        0,
        "a refused change changes nothing"
    );
    assert_eq!(
        app.count("select count(*) from audit_log where action = 'subscriber.updated'")
            .await,
        2
    );
    app.finish().await;
}

#[tokio::test]
async fn confirmations_are_resent_only_to_the_unconfirmed_and_at_most_once_a_minute() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let pending = added(&app, &t, json!({"email": unique_email("resend")})).await;
    let resend = |id: String| {
        let (app, t) = (&app, &t);
        async move {
            let response = app
                .client
                .post(app.url(&format!("{}/{id}/resend_confirmation", subscribers(t))))
                .bearer_auth(&t.token)
                .send()
                .await
                .unwrap();
            let status = response.status();
            let headers = response.headers().clone();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            (status, headers, body)
        }
    };
    // Creation sent the first one a moment ago.
    let (status, headers, body) = resend(pending.clone()).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"]["code"], "rate_limited");
    let wait: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    assert_eq!(
        events_for(&app, "subscription.confirmation", &pending).await,
        1
    );

    sqlx::query(
        "update subscribers set confirmation_sent_at = now() - interval '61 seconds',
                confirmation_attempts = 4
          where id = $1::uuid",
    )
    .bind(&pending)
    .execute(&app.admin)
    .await
    .unwrap();
    let (status, _, body) = resend(pending.clone()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["id"], pending.as_str());
    assert_eq!(
        events_for(&app, "subscription.confirmation", &pending).await,
        2
    );
    let (fresh, attempts): (bool, i32) = sqlx::query_as(
        "select confirmation_sent_at > now() - interval '10 seconds', confirmation_attempts
           from subscribers where id = $1::uuid",
    )
    .bind(&pending)
    .fetch_one(&app.admin)
    .await
    .unwrap();
    assert!(fresh);
    assert_eq!(
        attempts, 0,
        "a new code starts the count of wrong ones over"
    );

    let confirmed = added(
        &app,
        &t,
        json!({"email": unique_email("done"), "skip_confirmation_notification": true}),
    )
    .await;
    let (status, _, body) = resend(confirmed).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "already_confirmed");
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_ping_is_queued_for_endpoints_only() {
    let receiver = HttpReceiver::start().await.expect("a receiver");
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let hook = added(
        &app,
        &t,
        json!({"endpoint": receiver.url("/ping-me"), "skip_confirmation_notification": true}),
    )
    .await;
    let (status, body) = app
        .post(
            &format!("{}/{hook}/test", subscribers(&t)),
            Some(&t.token),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(events_for(&app, "subscription.ping", &hook).await, 1);
    app.drain().await;
    let pings = receiver.requests_to("/ping-me");
    assert_eq!(pings.len(), 1, "the worker sent it");

    let email = added(
        &app,
        &t,
        json!({"email": unique_email("noping"), "skip_confirmation_notification": true}),
    )
    .await;
    let (status, body) = app
        .post(
            &format!("{}/{email}/test", subscribers(&t)),
            Some(&t.token),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(
        field_codes(&body),
        [("mode".to_owned(), "not_an_endpoint".to_owned())]
    );
    assert_eq!(events_for(&app, "subscription.ping", &email).await, 0);
    app.finish().await;
    receiver.stop().await;
}

#[tokio::test]
async fn reactivating_lifts_the_quarantine_of_the_subscribers_named() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let quarantined = added(
        &app,
        &t,
        json!({"email": unique_email("q"), "skip_confirmation_notification": true}),
    )
    .await;
    let healthy = added(
        &app,
        &t,
        json!({"email": unique_email("h"), "skip_confirmation_notification": true}),
    )
    .await;
    sqlx::query(
        "update subscribers set quarantined_at = now(), dead_streak = 3 where id = $1::uuid",
    )
    .bind(&quarantined)
    .execute(&app.admin)
    .await
    .unwrap();
    let count = |state: &'static str| {
        let (app, t) = (&app, &t);
        async move {
            app.call(
                Method::GET,
                &format!("{}/count?state={state}", subscribers(t)),
                Some(&t.token),
                None,
            )
            .await
            .1["count"]
                .as_i64()
                .unwrap()
        }
    };
    assert_eq!(count("quarantined").await, 1);
    let (status, body) = app
        .post(
            &format!("{}/reactivate", subscribers(&t)),
            Some(&t.token),
            &json!({"subscribers": [quarantined.clone(), healthy.clone(), Uuid::new_v4().to_string()]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"reactivated": [quarantined.clone()]}));
    assert_eq!(count("quarantined").await, 0);
    assert_eq!(count("active").await, 2);
    assert_eq!(
        app.count("select count(*) from subscribers where dead_streak > 0")
            .await,
        0
    );
    assert_eq!(
        app.count("select count(*) from audit_log where action = 'subscriber.reactivated'")
            .await,
        1
    );
    let (status, body) = app
        .post(
            &format!("{}/reactivate", subscribers(&t)),
            Some(&t.token),
            &json!({"subscribers": ["nope"]}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    app.finish().await;
}

// ------------------------------------------------------------- delivery log

/// Opens an incident that tells subscribers; answers the incident and its
/// first update's id once the worker is done.
async fn incident_sent(app: &TestApp, t: &Tenant, name: &str) -> (String, String) {
    let (status, incident) = app
        .post(
            &format!("/v1/pages/{}/incidents", t.page_id),
            Some(&t.token),
            &json!({"incident": {"name": name, "status": "investigating", "body": "Looking."}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{incident}");
    app.drain().await;
    (
        incident["id"].as_str().unwrap().to_owned(),
        incident["incident_updates"][0]["id"]
            .as_str()
            .unwrap()
            .to_owned(),
    )
}

async fn get(app: &TestApp, t: &Tenant, path: &str) -> (StatusCode, HeaderMap, Value) {
    let response = app
        .client
        .get(app.url(&format!("/v1/pages/{}{path}", t.page_id)))
        .bearer_auth(&t.token)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    (
        status,
        headers,
        response.json().await.unwrap_or(Value::Null),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_updates_delivery_log_counts_every_recipient_and_shows_each_ones_state() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let (ann, bob) = (unique_email("ann"), unique_email("bob"));
    for address in [&ann, &bob] {
        added(
            &app,
            &t,
            json!({"email": address, "skip_confirmation_notification": true}),
        )
        .await;
    }
    let (incident, update) = incident_sent(&app, &t, "Slow checkout").await;

    let (status, headers, log) = get(
        &app,
        &t,
        &format!("/incidents/{incident}/incident_updates/{update}/deliveries"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{log}");
    assert_eq!(
        log["counts"],
        json!({"pending": 0, "sent": 2, "failed": 0, "dead": 0, "skipped": 0})
    );
    assert_eq!(log["by_channel"]["email"]["sent"], 2);
    assert_eq!(log["by_channel"]["sms"]["sent"], 0);
    assert_eq!(headers["x-total-count"], "2");
    let deliveries = log["deliveries"].as_array().unwrap();
    let mut targets: Vec<&str> = deliveries
        .iter()
        .map(|d| d["target"].as_str().unwrap())
        .collect();
    targets.sort_unstable();
    let mut want = vec![ann.as_str(), bob.as_str()];
    want.sort_unstable();
    assert_eq!(targets, want);
    for d in deliveries {
        assert_eq!(d["status"], "sent");
        assert_eq!(d["channel"], "email");
        assert_eq!(d["event_kind"], "incident.created");
        assert_eq!(d["attempts"], 1);
        assert!(d["sent_at"].is_string());
    }

    // A page of one: the counts are still over the whole log.
    let (_, headers, page) = get(
        &app,
        &t,
        &format!("/incidents/{incident}/deliveries?per_page=1"),
    )
    .await;
    assert_eq!(page["deliveries"].as_array().unwrap().len(), 1);
    assert_eq!(page["counts"]["sent"], 2);
    assert_eq!(headers["x-total-count"], "2");
    assert!(
        headers["link"].to_str().unwrap().contains("rel=\"next\""),
        "{headers:?}"
    );
    // Filters narrow the counts too.
    let (_, _, none) = get(&app, &t, "/deliveries?status=dead,failed&channel=email").await;
    assert_eq!(none["counts"]["sent"], 0);
    assert_eq!(none["deliveries"], json!([]));
    let (status, _, bad) = get(&app, &t, "/deliveries?status=lost&channel=pigeon").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<String> = field_codes(&bad).into_iter().map(|(f, _)| f).collect();
    assert_eq!(fields, ["status", "channel"]);

    // The events list, and one event's deliveries.
    let (status, _, events) = get(&app, &t, "/events").await;
    assert_eq!(status, StatusCode::OK, "{events}");
    let event = &events[0];
    assert_eq!(event["kind"], "incident.created");
    assert_eq!(event["payload"]["incident_update_id"], update.as_str());
    assert_eq!(event["counts"]["sent"], 2);
    assert!(event["fanned_out_at"].is_string());
    let (_, _, by_event) = get(
        &app,
        &t,
        &format!("/events/{}/deliveries", event["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(by_event["counts"]["sent"], 2);

    // Another incident's update is not this incident's.
    let (other, _) = incident_sent(&app, &t, "Something else").await;
    let (status, _, _) = get(
        &app,
        &t,
        &format!("/incidents/{other}/incident_updates/{update}/deliveries"),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_deliveries_are_listed_with_their_attempts_and_redriven() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let address = unique_email("dead");
    added(
        &app,
        &t,
        json!({"email": address, "skip_confirmation_notification": true}),
    )
    .await;
    incident_sent(&app, &t, "Mail trouble").await;
    assert_eq!(emails_to(&address, 1).await.len(), 1);
    // As if the send had failed twice and died.
    let (id,): (Uuid,) = sqlx::query_as(
        "update deliveries set status = 'dead', attempts = 2, sent_at = null,
                last_error = '550 mailbox unavailable', last_attempt_at = now()
         returning id",
    )
    .fetch_one(&app.admin)
    .await
    .unwrap();
    sqlx::query(
        "insert into delivery_attempts (tenant_id, delivery_id, attempt, at, error, retry_at)
         select tenant_id, id, 1, now() - interval '1 minute', '421 try later', now() - interval '30 seconds'
           from deliveries where id = $1
         union all
         select tenant_id, id, 2, now(), '550 mailbox unavailable', null from deliveries where id = $1",
    )
    .bind(id)
    .execute(&app.admin)
    .await
    .unwrap();

    let (status, _, dead) = get(&app, &t, "/deliveries?status=dead").await;
    assert_eq!(status, StatusCode::OK, "{dead}");
    assert_eq!(dead["counts"]["dead"], 1);
    assert_eq!(dead["deliveries"][0]["id"], id.to_string());
    assert_eq!(
        dead["deliveries"][0]["last_error"],
        "550 mailbox unavailable"
    );

    let (status, _, one) = get(&app, &t, &format!("/deliveries/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{one}");
    assert_eq!(one["status"], "dead");
    assert_eq!(one["attempt_count"], 2);
    let attempts = one["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0]["attempt"], 1);
    assert_eq!(attempts[0]["error"], "421 try later");
    assert!(attempts[0]["retry_at"].is_string());
    assert_eq!(attempts[1]["error"], "550 mailbox unavailable");
    assert_eq!(attempts[1]["retry_at"], Value::Null);

    let (status, body) = app
        .post(
            &format!("/v1/pages/{}/deliveries/redrive", t.page_id),
            Some(&t.token),
            &json!({"deliveries": [id.to_string()]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"redriven": [id.to_string()]}));
    let (redriven,): (i64,) = sqlx::query_as(
        "select count(*) from outbox where kind = 'deliveries.redriven'
            and payload -> 'delivery_ids' ? $1",
    )
    .bind(id.to_string())
    .fetch_one(&app.admin)
    .await
    .unwrap();
    assert_eq!(redriven, 1, "the redrive travels through the outbox");
    assert_eq!(
        app.count("select count(*) from audit_log where action = 'deliveries.redriven'")
            .await,
        1
    );

    // The worker sends it again: one attempt, counted from zero; the failed ones stay logged.
    app.drain().await;
    assert_eq!(emails_to(&address, 2).await.len(), 2);
    let (_, _, one) = get(&app, &t, &format!("/deliveries/{id}")).await;
    assert_eq!(one["status"], "sent");
    assert_eq!(one["attempt_count"], 1);
    assert_eq!(one["attempts"].as_array().unwrap().len(), 2);

    // Redriving what is not dead does nothing.
    let (status, body) = app
        .post(
            &format!("/v1/pages/{}/deliveries/redrive", t.page_id),
            Some(&t.token),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"redriven": []}));
    let (status, _, _) = get(&app, &t, &format!("/deliveries/{}", Uuid::new_v4())).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    app.finish().await;
}

// ------------------------------------------------------------ self-service

fn signer() -> LinkSigner {
    LinkSigner::new(SecretString::from(LINK_SECRET.to_owned())).expect("a long enough secret")
}

fn page_host(t: &Tenant) -> String {
    format!("{}.heliograph.test", t.slug)
}

/// Percent-encodes a form value.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.') {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// POSTs a form on the page's own host, from `ip`.
async fn form(app: &TestApp, t: &Tenant, path: &str, body: String, ip: &str) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .header(reqwest::header::HOST, page_host(t))
        .header("x-forwarded-for", ip)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap()
}

/// POSTs JSON under `/status/<slug>` on the platform host, from `ip`.
async fn public_json(
    app: &TestApp,
    t: &Tenant,
    path: &str,
    body: &Value,
    ip: &str,
) -> (StatusCode, HeaderMap, Value) {
    let response = app
        .client
        .post(app.url(&format!("/status/{}{path}", t.slug)))
        .header("x-forwarded-for", ip)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    (
        status,
        headers,
        response.json().await.unwrap_or(Value::Null),
    )
}

async fn subscribe_json(app: &TestApp, t: &Tenant, subscriber: Value) -> (StatusCode, Value) {
    let (status, _, body) = public_json(
        app,
        t,
        "/subscriptions",
        &json!({ "subscriber": subscriber }),
        &unique_ip(),
    )
    .await;
    (status, body)
}

/// The subscriber row of an address, number or URL: id, confirmed, components.
async fn row(app: &TestApp, target: &str) -> (String, bool, Vec<Uuid>) {
    let (id, confirmed, components): (Uuid, bool, Vec<Uuid>) = sqlx::query_as(
        "select s.id, s.confirmed_at is not null,
                array(select component_id from subscriber_components c
                       where c.subscriber_id = s.id order by component_id)
           from subscribers s
          where coalesce(s.email::text, s.phone_number, s.endpoint) = $1 and s.unsubscribed_at is null",
    )
    .bind(target)
    .fetch_one(&app.admin)
    .await
    .unwrap();
    (id.to_string(), confirmed, components)
}

async fn private_component(app: &TestApp, t: &Tenant, name: &str) -> String {
    let (status, body) = app
        .post(
            &format!("/v1/pages/{}/components", t.page_id),
            Some(&t.token),
            &json!({"component": {"name": name, "visibility": "private"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_public_form_subscribes_an_address_that_confirms_by_the_emailed_link() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let stranger = app.signup().await;
    let api = app.component(&t, "API").await;
    let address = unique_email("form");
    let answer = form(
        &app,
        &t,
        "/subscriptions",
        // As the page's form sends it: every field, the unused ones blank.
        format!(
            "subscriber%5Bemail%5D={}&subscriber%5Bphone_number%5D=&subscriber%5Bendpoint%5D=\
             &subscriber%5Btype%5D=webhook&subscriber%5Bcomponents%5D%5B%5D={api}",
            enc(&address)
        ),
        &unique_ip(),
    )
    .await;
    assert_eq!(answer.status(), StatusCode::OK);
    let csp = answer.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("form-action 'self'"), "{csp}");
    assert!(answer.text().await.unwrap().contains("Check your inbox"));
    let (id, confirmed, components) = row(&app, &address).await;
    assert!(!confirmed);
    assert_eq!(components, [api.parse::<Uuid>().unwrap()]);

    app.drain().await;
    let mails = emails_to(&address, 1).await;
    assert_eq!(mails.len(), 1, "the worker sent the confirmation");
    assert!(mails[0]["subject"].as_str().unwrap().contains("Confirm"));
    let text = mails[0]["text"].as_str().unwrap();
    let token = text
        .split("subscriptions/confirm?token=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("a confirmation link")
        .to_owned();
    let link = format!("/subscriptions/confirm?token={token}");

    // Fetching the link, as scanners do, only asks.
    let page = app.get(&link, Some(&page_host(&t))).await;
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("<form method=\"post\""));
    assert!(!row(&app, &address).await.1, "a GET confirms nothing");
    // The token on another page, or a forged one, is not valid.
    for (host, path) in [
        (page_host(&stranger), link.clone()),
        (
            page_host(&t),
            format!(
                "/subscriptions/confirm?token={}.00",
                Uuid::new_v4().simple()
            ),
        ),
    ] {
        for method in [Method::GET, Method::POST] {
            let response = app
                .client
                .request(method, app.url(&path))
                .header(reqwest::header::HOST, &host)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        }
    }
    assert!(!row(&app, &address).await.1);

    for _ in 0..2 {
        let done = app
            .client
            .post(app.url(&link))
            .header(reqwest::header::HOST, page_host(&t))
            .send()
            .await
            .unwrap();
        assert_eq!(done.status(), StatusCode::OK);
        let html = done.text().await.unwrap();
        assert!(html.contains("confirmed"), "{html}");
        assert!(html.contains("/subscription?token="), "a way to manage it");
    }
    assert_eq!(row(&app, &address).await, (id, true, components));
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_subscriptions_are_answered_in_json_and_a_webhook_gets_its_secret_once() {
    let receiver = HttpReceiver::start().await.expect("a receiver");
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let (status, body) = subscribe_json(&app, &t, json!({"email": unique_email("json")})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body, json!({"status": "confirmation_sent"}));

    let hook = receiver.url("/public-hook");
    let (status, body) = subscribe_json(&app, &t, json!({"endpoint": hook})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["status"], "confirmation_sent");
    assert!(
        body["webhook_secret"]
            .as_str()
            .unwrap()
            .starts_with("whsec_")
    );
    let (status, body) = subscribe_json(&app, &t, json!({"endpoint": hook})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "already_subscribed");

    let (status, body) = subscribe_json(
        &app,
        &t,
        json!({"endpoint": receiver.url("/public-slack"), "type": "slack"}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body, json!({"status": "confirmation_sent"}));

    // The worker pings both; answered 200, both are confirmed.
    app.drain().await;
    assert_eq!(receiver.requests_to("/public-hook").len(), 1);
    assert_eq!(receiver.requests_to("/public-slack").len(), 1);
    assert!(row(&app, &hook).await.1);
    // A Slack URL is kept sealed: its row holds only what answers show of it.
    let shown = heliograph_domain::Channel::Slack.shown_target(&receiver.url("/public-slack"));
    assert!(row(&app, &shown).await.1);

    let wrong_type = app
        .client
        .post(app.url(&format!("/status/{}/subscriptions", t.slug)))
        .header("content-type", "text/plain")
        .body("subscribe me")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_type.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let get = app
        .get(&format!("/status/{}/subscriptions", t.slug), None)
        .await;
    assert_eq!(get.status(), StatusCode::METHOD_NOT_ALLOWED);
    app.finish().await;
    receiver.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_subscribed_already_gets_the_same_answer_and_nothing_new() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let api = app.component(&t, "API").await;
    let member = unique_email("member");
    let id = added(
        &app,
        &t,
        json!({"email": member, "components": [api.clone()], "skip_confirmation_notification": true}),
    )
    .await;
    let fresh = subscribe_json(&app, &t, json!({"email": unique_email("fresh")})).await;
    let again = subscribe_json(&app, &t, json!({"email": member})).await;
    assert_eq!(again, fresh, "answered exactly as a new subscription");
    assert_eq!(events_for(&app, "subscription.confirmation", &id).await, 0);
    assert_eq!(
        row(&app, &member).await.2,
        [api.parse::<Uuid>().unwrap()],
        "their choice is untouched"
    );

    // A pending address gets its confirmation again.
    let pending = unique_email("pending");
    for _ in 0..2 {
        let (status, _) = subscribe_json(&app, &t, json!({"email": pending})).await;
        assert_eq!(status, StatusCode::ACCEPTED);
    }
    let (pending_id, _, _) = row(&app, &pending).await;
    assert_eq!(
        events_for(&app, "subscription.confirmation", &pending_id).await,
        2
    );
    app.drain().await;
    assert_eq!(emails_to(&pending, 2).await.len(), 2);
    assert!(
        emails_to(&member, 0).await.is_empty(),
        "nothing was sent to the subscribed address"
    );
    assert_eq!(
        app.count("select count(*) from subscribers").await,
        3,
        "no second row"
    );
    app.finish().await;
}

#[tokio::test]
async fn self_service_subscriptions_are_limited_per_client_and_per_address() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let ip = unique_ip();
    let body = || json!({"subscriber": {"email": unique_email("burst")}});
    for _ in 0..10 {
        let (status, _, answer) = public_json(&app, &t, "/subscriptions", &body(), &ip).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    }
    let (status, headers, answer) = public_json(&app, &t, "/subscriptions", &body(), &ip).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{answer}");
    assert_eq!(answer["error"]["code"], "rate_limited");
    let wait: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=3600).contains(&wait), "{wait}");
    // The page's form gets a page saying so.
    let refused = form(
        &app,
        &t,
        "/subscriptions",
        format!("subscriber%5Bemail%5D={}", enc(&unique_email("form"))),
        &ip,
    )
    .await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.headers().contains_key("retry-after"));
    assert!(
        refused.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );

    // One address, from anywhere: three an hour.
    let target = unique_email("target");
    for n in 0..4 {
        let (status, _) = subscribe_json(&app, &t, json!({"email": target})).await;
        let expected = if n < 3 {
            StatusCode::ACCEPTED
        } else {
            StatusCode::TOO_MANY_REQUESTS
        };
        assert_eq!(status, expected, "attempt {n}");
    }
    let (id, _, _) = row(&app, &target).await;
    assert_eq!(events_for(&app, "subscription.confirmation", &id).await, 3);
    app.finish().await;
}

#[tokio::test]
async fn the_public_may_choose_only_public_components_and_allowed_channels() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let private = private_component(&app, &t, "Secret batch cluster").await;
    for component in [private.clone(), Uuid::new_v4().to_string()] {
        let (status, body) = subscribe_json(
            &app,
            &t,
            json!({"email": unique_email("priv"), "components": [component]}),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(
            field_codes(&body),
            [("components".to_owned(), "not_found".to_owned())]
        );
    }
    let page = form(
        &app,
        &t,
        "/subscriptions",
        format!(
            "subscriber%5Bemail%5D={}&subscriber%5Bcomponents%5D%5B%5D={private}",
            enc(&unique_email("priv"))
        ),
        &unique_ip(),
    )
    .await;
    assert_eq!(page.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.text().await.unwrap().contains("Check the form"));

    set_page(&app, &t, json!({"allow_sms_subscribers": false})).await;
    let (status, body) = subscribe_json(&app, &t, json!({"phone_number": "+14155550100"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(
        field_codes(&body),
        [("phone_number".to_owned(), "channel_not_allowed".to_owned())]
    );
    assert_eq!(app.count("select count(*) from subscribers").await, 0);
    app.finish().await;
}

/// The code the worker texts for the subscriber whose code form names
/// `handle`, from its row.
async fn sms_code(app: &TestApp, handle: &str) -> String {
    let (id, sent): (Uuid, time::OffsetDateTime) = sqlx::query_as(
        "select id, confirmation_sent_at from subscribers where sms_handle = $1::uuid",
    )
    .bind(handle)
    .fetch_one(&app.admin)
    .await
    .unwrap();
    let sent_ms = i64::try_from(sent.unix_timestamp_nanos() / 1_000_000).unwrap();
    signer().code(SMS_CODE_PURPOSE, id, sent_ms)
}

/// The id the code form of a number's subscription names (not its row's id).
async fn handle(app: &TestApp, number: &str) -> String {
    let (handle,): (Uuid,) = sqlx::query_as(
        "select sms_handle from subscribers where phone_number = $1 and unsubscribed_at is null",
    )
    .bind(number)
    .fetch_one(&app.admin)
    .await
    .unwrap();
    handle.to_string()
}

/// A six-digit code that is not `right`.
fn wrong(right: &str) -> String {
    if right == "000000" {
        "111111".to_owned()
    } else {
        "000000".to_owned()
    }
}

async fn enter_code(app: &TestApp, t: &Tenant, id: &str, code: &str) -> (StatusCode, Value) {
    let (status, _, body) = public_json(
        app,
        t,
        "/subscriptions/confirm_sms",
        &json!({"subscriber_id": id, "code": code}),
        &unique_ip(),
    )
    .await;
    (status, body)
}

#[tokio::test]
async fn an_sms_subscriber_confirms_with_the_texted_code_and_wrong_codes_count() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    app.enable_sms(&t, &["1"]).await;
    let (status, body) = subscribe_json(&app, &t, json!({"phone_number": "+14155550199"})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let id = body["subscriber_id"]
        .as_str()
        .expect("the id the code goes with");
    assert_eq!(handle(&app, "+14155550199").await, id);
    let right = sms_code(&app, id).await;

    let (status, body) = enter_code(&app, &t, id, &wrong(&right)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(
        field_codes(&body),
        [("code".to_owned(), "wrong_code".to_owned())]
    );
    assert_eq!(
        app.count("select confirmation_attempts::bigint from subscribers")
            .await,
        1
    );
    let (status, body) = enter_code(&app, &t, id, &right).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"status": "confirmed"}));
    assert!(row(&app, "+14155550199").await.1);
    app.finish().await;
}

#[tokio::test]
async fn five_wrong_codes_lock_the_code_until_a_new_one_is_sent() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    app.enable_sms(&t, &["44"]).await;
    let number = "+447700900777";
    let page = form(
        &app,
        &t,
        "/subscriptions",
        format!("subscriber%5Bphone_number%5D={}", enc(number)),
        &unique_ip(),
    )
    .await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    let id = handle(&app, number).await;
    assert!(
        html.contains(&format!("name=\"subscriber_id\" value=\"{id}\"")),
        "the page asks for the code: {html}"
    );
    let right = sms_code(&app, &id).await;
    let bad = wrong(&right);
    for n in 1..=5 {
        let answer = form(
            &app,
            &t,
            "/subscriptions/confirm_sms",
            format!("subscriber_id={id}&code={bad}"),
            &unique_ip(),
        )
        .await;
        let expected = if n < 5 {
            StatusCode::UNPROCESSABLE_ENTITY
        } else {
            StatusCode::TOO_MANY_REQUESTS
        };
        assert_eq!(answer.status(), expected, "try {n}");
    }
    let (status, body) = enter_code(&app, &t, &id, &right).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"]["code"], "too_many_attempts");
    assert!(
        !row(&app, number).await.1,
        "locked, even for the right code"
    );

    // Subscribing again sends a new code, which works.
    let (status, body) = subscribe_json(&app, &t, json!({"phone_number": number})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(body["subscriber_id"], id.as_str());
    let new = sms_code(&app, &id).await;
    let (status, body) = enter_code(&app, &t, &id, &new).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(row(&app, number).await.1);
    app.finish().await;
}

#[tokio::test]
async fn a_number_subscribed_already_is_not_told_apart_by_its_code_form() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    app.enable_sms(&t, &["1"]).await;
    let number = "+14155550142";
    let real = added(
        &app,
        &t,
        json!({"phone_number": number, "skip_confirmation_notification": true}),
    )
    .await;
    let (status, first) = subscribe_json(&app, &t, json!({"phone_number": number})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{first}");
    let shown = first["subscriber_id"].as_str().unwrap().to_owned();
    assert_ne!(shown, real, "the subscriber's id is not given away");
    let shown_id: Uuid = shown.parse().unwrap();
    assert_eq!(
        shown_id.get_version_num(),
        4,
        "shaped like a real code form's id: random, no time in it"
    );
    let (_, second) = subscribe_json(&app, &t, json!({"phone_number": number})).await;
    assert_eq!(second, first, "the same each time, as for a pending number");
    assert_eq!(
        events_for(&app, "subscription.confirmation", &real).await,
        0,
        "nothing is texted"
    );
    for n in 1..=6 {
        let (status, body) = enter_code(&app, &t, &shown, "123456").await;
        if n < 5 {
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
            assert_eq!(body["error"]["fields"][0]["code"], "wrong_code");
        } else {
            assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "try {n}: {body}");
            assert_eq!(body["error"]["code"], "too_many_attempts");
        }
    }
    assert_eq!(
        app.count("select confirmation_attempts::bigint from subscribers")
            .await,
        0
    );
    app.finish().await;
}

#[tokio::test]
async fn the_manage_page_shows_public_components_only_and_saves_a_choice() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let stranger = app.signup().await;
    let edge = app.component(&t, "Edge <EU>").await;
    let api = app.component(&t, "API").await;
    let private = private_component(&app, &t, "Secret batch cluster").await;
    let address = unique_email("manage");
    let id = added(
        &app,
        &t,
        json!({"email": address, "components": [private.clone()], "skip_confirmation_notification": true}),
    )
    .await;
    let token = signer().sign(UNSUBSCRIBE_PURPOSE, id.parse().unwrap());
    let path = format!("/subscription?token={token}");

    let page = app.get(&path, Some(&page_host(&t))).await;
    assert_eq!(page.status(), StatusCode::OK);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    let html = page.text().await.unwrap();
    assert!(
        html.contains("Edge &lt;EU&gt;"),
        "names are escaped: {html}"
    );
    assert!(!html.contains("Edge <EU>"));
    assert!(html.contains(&format!("value=\"{api}\"")));
    assert!(!html.contains("Secret batch"), "{html}");
    assert!(!html.contains(&private));
    assert!(html.contains("value=\"some\" checked"));
    assert!(html.contains(&format!("action=\"/unsubscribe?token={token}\"")));
    // Under /status/<slug> the forms post there.
    let by_path = app
        .get(&format!("/status/{}{path}", t.slug), None)
        .await
        .text()
        .await
        .unwrap();
    assert!(by_path.contains(&format!(
        "action=\"/status/{}/subscription?token={token}\"",
        t.slug
    )));

    let save = |body: String| {
        let (app, t, path) = (&app, &t, &path);
        async move { form(app, t, path, body, &unique_ip()).await }
    };
    let saved = save(format!("scope=some&components%5B%5D={edge}")).await;
    assert_eq!(saved.status(), StatusCode::OK);
    let html = saved.text().await.unwrap();
    assert!(html.contains("Saved."));
    assert!(html.contains(&format!("value=\"{edge}\" checked")));
    let mut want: Vec<Uuid> = [&edge, &private]
        .iter()
        .map(|c| c.parse().unwrap())
        .collect();
    want.sort_unstable();
    assert_eq!(
        row(&app, &address).await.2,
        want,
        "the private component the team chose stays"
    );
    for bad in [
        "scope=some".to_owned(),
        format!("scope=some&components%5B%5D={private}"),
    ] {
        let refused = save(bad).await;
        assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }
    assert_eq!(row(&app, &address).await.2, want, "unchanged");
    assert_eq!(save("scope=all".to_owned()).await.status(), StatusCode::OK);
    assert!(row(&app, &address).await.2.is_empty(), "all components");

    // Another page's host, or a forged token: not valid.
    let elsewhere = app.get(&path, Some(&page_host(&stranger))).await;
    assert_eq!(elsewhere.status(), StatusCode::BAD_REQUEST);
    let forged = app
        .get(
            &format!("/subscription?token={}.00", Uuid::new_v4().simple()),
            Some(&page_host(&t)),
        )
        .await;
    assert_eq!(forged.status(), StatusCode::BAD_REQUEST);
    // The unsubscribe button still works, and the link ends with the subscription.
    let gone = form(
        &app,
        &t,
        &format!("/unsubscribe?token={token}"),
        "List-Unsubscribe=One-Click".to_owned(),
        &unique_ip(),
    )
    .await;
    assert_eq!(gone.status(), StatusCode::OK);
    let after = app.get(&path, Some(&page_host(&t))).await;
    assert_eq!(after.status(), StatusCode::BAD_REQUEST);
    app.finish().await;
}
