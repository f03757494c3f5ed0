//! Every channel end to end through the real worker: signed webhooks, Slack
//! and Teams to real HTTP receivers on loopback, SMS to the stand-in of
//! Twilio's API, with retries, 410s, the SSRF guard, quarantine, the SMS
//! rules and budget, and confirmations.
//!
//! The email path is `notifications`'.

use std::time::Duration;

use heliograph_domain::{EmailAddress, EndpointUrl, HttpChannel, PhoneNumber, Target, TenantId};
use heliograph_notify::WebhookSecret;
use heliograph_testkit::{HttpReceiver, Reply, Script, SmsStandIn};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    Infra, SMS_SID, SMS_TOKEN, Tenant, TestApp, emails_to, unique_email, wait_until,
};

/// A bound for a loaded machine; every wait returns as soon as its condition holds.
const WAIT: Duration = Duration::from_secs(60);

/// Adds a subscriber straight through the store (the API's own paths have tests of their own).
async fn subscribe(
    app: &TestApp,
    t: &Tenant,
    target: Target,
    confirmed: bool,
) -> (String, Option<String>) {
    let tenant: TenantId = t.tenant_id.parse().expect("a tenant id");
    // Sealed as the API seals what it is given.
    let (new, secret) =
        heliograph_api::secrets::sealed_subscriber(&app.config.secrets, target, vec![], confirmed);
    let mut tx = app.store.tenant_tx(tenant).await.expect("a transaction");
    let s = tx
        .create_subscriber(t.page_id.parse().expect("a page id"), &new)
        .await
        .expect("the subscriber is added");
    tx.commit().await.expect("committed");
    (s.id.to_string(), secret)
}

fn webhook(url: &str) -> Target {
    Target::Http(
        HttpChannel::Webhook,
        EndpointUrl::parse("endpoint", url).expect("a URL"),
    )
}

async fn open_incident(app: &TestApp, t: &Tenant, component: &str, name: &str) -> Value {
    let (status, incident) = app
        .post(
            &format!("/v1/pages/{}/incidents", t.page_id),
            Some(&t.token),
            &json!({"incident": {
                "name": name, "status": "investigating", "body": "Looking into it.",
                "components": {component: "major_outage"},
            }}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{incident}");
    incident
}

async fn move_incident(app: &TestApp, t: &Tenant, incident: &Value, status: &str) {
    let (code, body) = app
        .call(
            reqwest::Method::PATCH,
            &format!(
                "/v1/pages/{}/incidents/{}",
                t.page_id,
                incident["id"].as_str().unwrap_or_default()
            ),
            Some(&t.token),
            Some(&json!({"incident": {"status": status, "body": format!("Now {status}.")}})),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_signed_in_statuspages_envelope_and_hear_component_changes() {
    let receiver = HttpReceiver::start().await.expect("a receiver");
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let api = app.component(&t, "API").await;
    let (subscriber, secret) = subscribe(&app, &t, webhook(&receiver.url("/hook")), true).await;
    let secret = WebhookSecret::parse(&secret.expect("a secret")).expect("a whsec_ secret");

    open_incident(&app, &t, &api, "Checkout down").await;
    app.drain().await;

    let requests = receiver.requests_to("/hook");
    let bodies: Vec<Value> = requests.iter().map(|r| r.json().expect("JSON")).collect();
    let kinds: Vec<&str> = bodies
        .iter()
        .map(|b| b["meta"]["event"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        requests.len(),
        2,
        "the incident and the component change: {kinds:?}"
    );
    for r in &requests {
        let id = r.header("webhook-id").expect("webhook-id");
        let ts: i64 = r
            .header("webhook-timestamp")
            .expect("webhook-timestamp")
            .parse()
            .expect("seconds");
        let signature = r.header("webhook-signature").expect("webhook-signature");
        assert!(signature.starts_with("v1,"), "{signature}");
        assert_eq!(
            signature,
            secret.sign(id, ts, &r.body),
            "the signature verifies"
        );
        assert!((time::OffsetDateTime::now_utc().unix_timestamp() - ts).abs() < 60);
    }
    let incident = bodies
        .iter()
        .find(|b| b.get("incident").is_some())
        .expect("an incident webhook");
    assert_eq!(incident["incident"]["name"], "Checkout down");
    assert_eq!(
        incident["incident"]["incident_updates"][0]["body"],
        "Looking into it."
    );
    assert_eq!(incident["page"]["status_indicator"], "critical");
    let unsubscribe = incident["meta"]["unsubscribe"]
        .as_str()
        .expect("an unsubscribe URL");
    assert!(unsubscribe.contains("/unsubscribe?token="), "{unsubscribe}");
    let component = bodies
        .iter()
        .find(|b| b.get("component_update").is_some())
        .expect("a component webhook");
    assert_eq!(component["component_update"]["old_status"], "operational");
    assert_eq!(component["component_update"]["new_status"], "major_outage");
    assert_eq!(component["component"]["id"], api.as_str());
    assert_eq!(
        app.count("select count(*) from deliveries where status = 'sent' and channel = 'webhook'")
            .await,
        2
    );
    drop(subscriber);
    app.finish().await;
    receiver.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_receiver_is_retried_with_backoff_under_one_webhook_id_until_it_recovers() {
    let receiver = HttpReceiver::start().await.expect("a receiver");
    receiver.respond_with(
        "/flaky",
        Script::fail_first(2, Reply::status(503).header("Retry-After", "1")),
    );
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let api = app.component(&t, "API").await;
    subscribe(&app, &t, webhook(&receiver.url("/flaky")), true).await;
    let incident = open_incident(&app, &t, &api, "Flaky").await;
    // Only the incident: a component-only event would add its own deliveries.
    assert!(
        receiver.wait_for(4, WAIT).await,
        "two failures, then both events delivered"
    );
    app.drain().await;

    let requests = receiver.requests_to("/flaky");
    let mut by_id: std::collections::BTreeMap<String, Vec<std::time::Instant>> = Default::default();
    for r in &requests {
        by_id
            .entry(r.header("webhook-id").unwrap_or_default().to_owned())
            .or_default()
            .push(r.received_at);
    }
    assert_eq!(by_id.len(), 2, "one webhook-id per delivery: {by_id:?}");
    let retried = by_id
        .values()
        .find(|times| times.len() > 1)
        .expect("a retried delivery");
    assert!(
        retried
            .windows(2)
            .all(|w| w[1].duration_since(w[0]) >= Duration::from_millis(700)),
        "retries wait (schedule 3 s, claimed up to 2 s early): {retried:?}"
    );
    let (attempts, failures): (i32, i64) = sqlx::query_as(
        "select max(d.attempts), (select count(*) from delivery_attempts a where a.error like '%503%')
           from deliveries d where d.status = 'sent'",
    )
    .fetch_one(&app.admin)
    .await
    .expect("the log");
    assert!(attempts >= 2, "a delivery took more than one attempt");
    assert_eq!(
        failures, 2,
        "both failed attempts are in the log with their error"
    );

    // The team sees the same in the delivery log of the incident's update.
    let update = incident["incident_updates"][0]["id"]
        .as_str()
        .unwrap_or_default();
    let log: Vec<(String, i32)> = sqlx::query_as(
        "select d.status, d.attempts from deliveries d join outbox o on o.id = d.event_id
          where o.payload ->> 'incident_update_id' = $1",
    )
    .bind(update)
    .fetch_all(&app.admin)
    .await
    .expect("the log");
    assert!(log.iter().all(|(s, _)| s == "sent"), "{log:?}");
    app.finish().await;
    receiver.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_answering_410_unsubscribes_itself() {
    let receiver = HttpReceiver::start().await.expect("a receiver");
    receiver.respond_with("/gone", Script::gone());
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let api = app.component(&t, "API").await;
    subscribe(&app, &t, webhook(&receiver.url("/gone")), true).await;
    open_incident(&app, &t, &api, "Gone").await;
    app.drain().await;
    assert_eq!(
        app.count("select count(*) from subscribers where unsubscribed_at is not null")
            .await,
        1
    );
    let requests_before = receiver.count();
    open_incident(&app, &t, &api, "Nobody hears this").await;
    app.drain().await;
    assert_eq!(
        receiver.count(),
        requests_before,
        "an unsubscribed endpoint hears nothing more"
    );
    app.finish().await;
    receiver.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_targets_are_refused_and_repeated_deaths_quarantine_the_subscriber() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let api = app.component(&t, "API").await;
    // Link-local (cloud metadata): never allowed, whatever the configuration.
    subscribe(
        &app,
        &t,
        webhook("http://169.254.169.254/latest/meta-data/"),
        true,
    )
    .await;
    for n in 0..3 {
        open_incident(&app, &t, &api, &format!("Outage {n}")).await;
        app.drain().await;
    }
    let (dead, error): (i64, String) =
        sqlx::query_as("select count(*), min(last_error) from deliveries where status = 'dead'")
            .fetch_one(&app.admin)
            .await
            .expect("counts");
    assert!(dead >= 3, "each delivery died at once (permanent): {dead}");
    assert!(error.contains("not allowed"), "{error}");
    assert!(
        !error.contains("169.254"),
        "the error does not echo the target: {error}"
    );
    assert_eq!(
        app.count("select count(*) from subscribers where quarantined_at is not null")
            .await,
        1,
        "three deaths in a row quarantine"
    );
    let before = app.count("select count(*) from deliveries").await;
    open_incident(&app, &t, &api, "After quarantine").await;
    app.drain().await;
    assert_eq!(
        app.count("select count(*) from deliveries").await,
        before,
        "a quarantined subscriber gets no delivery"
    );
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_and_teams_get_messages_in_their_own_formats_and_no_component_noise() {
    let receiver = HttpReceiver::start().await.expect("a receiver");
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let api = app.component(&t, "API").await;
    for (channel, path) in [
        (HttpChannel::Slack, "/slack"),
        (HttpChannel::Teams, "/teams"),
    ] {
        let url = EndpointUrl::parse("endpoint", &receiver.url(path)).expect("a URL");
        subscribe(&app, &t, Target::Http(channel, url), true).await;
    }
    open_incident(&app, &t, &api, "Chat outage").await;
    app.drain().await;
    let slack = receiver.requests_to("/slack");
    let teams = receiver.requests_to("/teams");
    assert_eq!(
        (slack.len(), teams.len()),
        (1, 1),
        "the incident only, no component change"
    );
    let (status, log) = app
        .call(
            reqwest::Method::GET,
            &format!("/v1/pages/{}/deliveries?channel=slack", t.page_id),
            Some(&t.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{log}");
    assert_eq!(
        log["deliveries"][0]["target"],
        format!("http://{}/…lack", receiver.addr()).as_str(),
        "the log never shows a chat URL whole: {log}"
    );
    let slack = slack[0].json().expect("JSON");
    assert!(
        slack["text"]
            .as_str()
            .unwrap_or_default()
            .contains("Chat outage"),
        "{slack}"
    );
    assert!(slack["blocks"].is_array(), "{slack}");
    assert!(
        receiver.requests_to("/slack")[0]
            .header("webhook-signature")
            .is_none(),
        "chat webhooks are not signed (they would not check)"
    );
    let teams = teams[0].json().expect("JSON");
    assert_eq!(teams["type"], "message");
    assert_eq!(
        teams["attachments"][0]["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    assert!(teams.to_string().contains("Chat outage"));
    app.finish().await;
    receiver.stop().await;
}

/// An app whose worker texts through a stand-in, and a tenant with a
/// component and one confirmed SMS subscriber at `number`.
async fn texting(number: &str) -> (SmsStandIn, TestApp, Tenant, String) {
    let sms = SmsStandIn::start_with_credentials(SMS_SID, SMS_TOKEN)
        .await
        .expect("the stand-in");
    let app = TestApp::spawn_on(Infra {
        sms_url: Some(sms.base_url()),
        ..Infra::default()
    })
    .await;
    let t = app.signup().await;
    app.enable_sms(&t, &["1"]).await;
    let api = app.component(&t, "API").await;
    let phone = PhoneNumber::parse("phone_number", number).expect("a number");
    subscribe(&app, &t, Target::Sms(phone), true).await;
    (sms, app, t, api)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sms_carries_only_openings_resolutions_and_maintenance_starts_within_the_budget() {
    let (sms, app, t, api) = texting("+14155550123").await;

    let incident = open_incident(&app, &t, &api, "Texting outage").await;
    app.drain().await;
    move_incident(&app, &t, &incident, "identified").await;
    app.drain().await;
    move_incident(&app, &t, &incident, "resolved").await;
    app.drain().await;
    let texts = sms.messages();
    assert_eq!(
        texts.len(),
        2,
        "created and resolved, not identified: {texts:?}"
    );
    assert!(
        texts
            .iter()
            .all(|m| m.to == "+14155550123" && m.from == crate::helpers::SMS_FROM)
    );
    assert!(
        texts[0].body.contains("Texting outage"),
        "{}",
        texts[0].body
    );
    assert!(texts[1].body.contains("Resolved"), "{}", texts[1].body);

    // A budget of two a month is now spent: the next text is not sent.
    sqlx::query("update tenants set sms_monthly_budget = 2")
        .execute(&app.admin)
        .await
        .expect("budget set");
    open_incident(&app, &t, &api, "Over budget").await;
    app.drain().await;
    assert_eq!(sms.count(), 2, "nothing beyond the budget");
    let (reason,): (String,) = sqlx::query_as(
        "select last_error from deliveries where channel = 'sms' and status = 'skipped'",
    )
    .fetch_one(&app.admin)
    .await
    .expect("a skipped text");
    assert!(reason.contains("budget"), "{reason}");
    app.finish().await;
    sms.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_number_that_answered_stop_to_the_provider_is_unsubscribed() {
    let (sms, app, t, api) = texting("+14155550124").await;
    sms.stop_number("+14155550124");

    open_incident(&app, &t, &api, "Texting outage").await;
    app.drain().await;
    assert_eq!(sms.count(), 0);
    let (status, reason, attempts): (String, String, i32) =
        sqlx::query_as("select status, last_error, attempts from deliveries where channel = 'sms'")
            .fetch_one(&app.admin)
            .await
            .expect("the text's delivery");
    assert_eq!(status, "skipped", "not retried, not dead");
    assert!(reason.contains("STOP"), "{reason}");
    assert_eq!(attempts, 0);
    let left = app
        .count("select count(*) from subscribers where channel = 'sms' and unsubscribed_at is not null")
        .await;
    assert_eq!(left, 1, "the subscriber is unsubscribed");
    app.finish().await;
    sms.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_subscribers_get_a_confirmation_and_hear_nothing_else_until_they_confirm() {
    let receiver = HttpReceiver::start().await.expect("a receiver");
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let api = app.component(&t, "API").await;
    let address = unique_email("optin");
    let email = EmailAddress::parse("email", &address).expect("an address");
    let (email_id, _) = subscribe(&app, &t, Target::Email(email), false).await;
    subscribe(&app, &t, webhook(&receiver.url("/optin")), false).await;
    app.drain().await;

    let mails = emails_to(&address, 1).await;
    assert_eq!(mails.len(), 1);
    assert!(
        mails[0]["subject"]
            .as_str()
            .unwrap_or_default()
            .contains("Confirm")
    );
    let text = mails[0]["text"].as_str().unwrap_or_default();
    let token = text
        .split("subscriptions/confirm?token=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("a confirmation link");
    let signer = heliograph_auth::LinkSigner::new(secrecy::SecretString::from(
        crate::helpers::LINK_SECRET.to_owned(),
    ))
    .expect("a signer");
    assert_eq!(
        signer
            .verify(heliograph_auth::CONFIRM_PURPOSE, token)
            .map(|id| id.to_string()),
        Some(email_id),
        "the link confirms this subscriber"
    );

    // The webhook answered its ping with 200: it is confirmed. The email is not yet.
    let ping = receiver.requests_to("/optin");
    assert_eq!(ping.len(), 1);
    assert!(ping[0].json().expect("JSON").get("ping").is_some());
    assert_eq!(
        app.count("select count(*) from subscribers where channel = 'webhook' and confirmed_at is not null").await,
        1
    );
    open_incident(&app, &t, &api, "Only the confirmed hear").await;
    app.drain().await;
    // Drained: no delivery to the unconfirmed address was even created, and
    // maildev holds the confirmation only. (Waiting for a second email that
    // must not come would cost emails_to's whole 15 s.)
    assert_eq!(
        app.count(
            "select count(*) from deliveries d join outbox o on o.id = d.event_id
              where d.channel = 'email' and o.kind <> 'subscription.confirmation'"
        )
        .await,
        0,
        "no incident email before confirming"
    );
    assert_eq!(emails_to(&address, 1).await.len(), 1);
    assert!(
        receiver.requests_to("/optin").len() >= 2,
        "the confirmed webhook hears it"
    );
    app.finish().await;
    receiver.stop().await;
}

/// Fairness: a tenant's 100,000-subscriber fan-out does not hold back
/// another tenant's single email. Ordering, not timing, is asserted: the
/// small tenant's email is sent while most of the large fan-out is unsent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_fan_out_does_not_hold_back_another_tenants_single_email() {
    use heliograph_testkit::{SinkOptions, SmtpSink};
    const LARGE: i64 = 100_000;
    let sink = SmtpSink::start_with(SinkOptions::lean())
        .await
        .expect("an SMTP sink");
    let app = TestApp::spawn_on(Infra {
        smtp_url: Some(sink.url()),
        ..Infra::default()
    })
    .await;
    let large = app.signup().await;
    let small = app.signup().await;
    let large_api = app.component(&large, "API").await;
    let small_api = app.component(&small, "API").await;
    app.bulk_email_subscribers(&large, "bulk", LARGE).await;
    let lonely = unique_email("lonely");
    subscribe(
        &app,
        &small,
        Target::Email(EmailAddress::parse("email", &lonely).expect("an address")),
        true,
    )
    .await;

    open_incident(&app, &large, &large_api, "Large outage").await;
    assert!(
        sink.wait_for_count(200, WAIT).await,
        "the large fan-out is under way"
    );
    open_incident(&app, &small, &small_api, "Small outage").await;
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    while sink.count_for(&lonely) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the small tenant's email never came"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (unsent,): (i64,) = sqlx::query_as(
        "select $1 - count(*) from deliveries where tenant_id = $2::uuid and status = 'sent'",
    )
    .bind(LARGE)
    .bind(&large.tenant_id)
    .fetch_one(&app.admin)
    .await
    .expect("a count");
    assert!(
        unsent > LARGE / 2,
        "the small tenant's email went out while {unsent} of the large tenant's {LARGE} were still unsent"
    );
    // The queues never held the whole fan-out: later batches wait for the
    // bulk lane (the one that looked before it filled may add one more).
    let bulk = app
        .queues
        .depth::<heliograph_worker::BulkDeliver>()
        .await
        .expect("a depth");
    assert!(
        bulk.ready <= heliograph_worker::BULK_AHEAD + 1,
        "bounded backlog in Redis: {bulk:?}"
    );
    app.teardown().await;
    sink.stop().await;
}

/// A relay that refuses everything sends each batch back as retries due
/// later, which leaves the bulk lane empty: the fan-out must still stop
/// writing its event's rows ahead of sending (and Redis hold jobs only for
/// those), however many subscribers are left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fan_out_writes_no_further_ahead_while_the_relay_refuses_everything() {
    use heliograph_testkit::{SinkOptions, SmtpMode, SmtpSink};
    use heliograph_worker::{BulkDeliver, Deliver, EVENT_AHEAD, FAN_OUT_BATCH, FanOut};
    const LARGE: i64 = 30_000;
    let sink = SmtpSink::start_with(SinkOptions::lean())
        .await
        .expect("an SMTP sink");
    sink.set_mode(SmtpMode::RefuseTransient);
    let app = TestApp::spawn_on(Infra {
        smtp_url: Some(sink.url()),
        ..Infra::default()
    })
    .await;
    let t = app.signup().await;
    let api = app.component(&t, "API").await;
    app.bulk_email_subscribers(&t, "refused", LARGE).await;
    open_incident(&app, &t, &api, "Relay down").await;

    let rows = async || -> i64 {
        sqlx::query_scalar("select count(*) from deliveries where tenant_id = $1::uuid")
            .bind(&t.tenant_id)
            .fetch_one(&app.admin)
            .await
            .expect("a count")
    };
    let touched = async || -> Option<time::OffsetDateTime> {
        sqlx::query_scalar(
            "select relayed_at from outbox where tenant_id = $1::uuid and kind = 'incident.created'",
        )
        .bind(&t.tenant_id)
        .fetch_one(&app.admin)
        .await
        .expect("the event")
    };
    // The fan-out holds back once its event has EVENT_AHEAD deliveries
    // unfinished; the batch that crossed the line is the most it overshoots.
    let bound = EVENT_AHEAD + FAN_OUT_BATCH;
    wait_until("the fan-out holds back", async || {
        rows().await >= EVENT_AHEAD
            && app
                .queues
                .depth::<FanOut>()
                .await
                .expect("a depth")
                .scheduled
                > 0
    })
    .await;
    let held = rows().await;
    assert!(
        held <= bound,
        "{held} rows written ahead of a relay that refuses everything (at most {bound})"
    );
    // It looks again, finds sending still stalled, and waits again (telling
    // the sweeper it is alive) rather than writing on.
    let before = touched().await;
    wait_until("the fan-out looks again", async || touched().await > before).await;
    let again = rows().await;
    assert!(
        again <= bound,
        "{again} rows after looking again (at most {bound})"
    );
    assert!(
        (again as f64) < 0.5 * LARGE as f64,
        "the bound binds: {again} of {LARGE}"
    );
    // Redis holds jobs for those rows only: each job carries at least one.
    let mut jobs = 0;
    for depth in [
        app.queues.depth::<Deliver>().await.expect("a depth"),
        app.queues.depth::<BulkDeliver>().await.expect("a depth"),
    ] {
        jobs += depth.ready + depth.scheduled + depth.in_flight;
    }
    assert!(
        i64::try_from(jobs).expect("a count") <= again,
        "{jobs} deliver jobs for {again} rows"
    );
    assert_eq!(sink.count(), 0, "the relay took nothing");
    app.teardown().await;
    sink.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_serves_queue_depths_delivery_age_and_deliveries_by_state_on_metrics() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let api = app.component(&t, "API").await;
    subscribe(&app, &t, webhook("http://169.254.169.254/"), true).await;
    open_incident(&app, &t, &api, "Measured").await;
    app.drain().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let addr = listener.local_addr().expect("an address");
    let shutdown = tokio_util::sync::CancellationToken::new();
    tokio::spawn(heliograph_worker::metrics::serve(
        app.ctx.clone(),
        listener,
        shutdown.clone(),
    ));
    let response = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .expect("an answer");
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.expect("text");
    for line in [
        "heliograph_queue_jobs{queue=\"deliver\",state=\"ready\"} 0",
        "heliograph_queue_jobs{queue=\"deliver-bulk\",state=\"in_flight\"} 0",
        "heliograph_queue_jobs{queue=\"fanout\",state=\"scheduled\"} 0",
        "heliograph_deliveries{channel=\"webhook\",state=\"dead\"} 2",
        "heliograph_oldest_unsent_delivery_seconds 0.000",
        "heliograph_outbox_unrelayed 0",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "{line} missing from:\n{text}"
        );
    }
    let missing = reqwest::get(format!("http://{addr}/other"))
        .await
        .expect("an answer");
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    shutdown.cancel();
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_gives_the_impact_the_public_page_gives_not_a_private_outage() {
    let receiver = HttpReceiver::start().await.expect("a receiver");
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
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let private = body["id"].as_str().expect("an id").to_owned();
    subscribe(&app, &t, webhook(&receiver.url("/hook")), true).await;

    let (status, body) = app
        .post(
            &format!("/v1/pages/{}/incidents", t.page_id),
            Some(&t.token),
            &json!({"incident": {
                "name": "Slow", "status": "investigating", "body": "Looking into it.",
                "components": {(public.clone()): "degraded_performance", (private.clone()): "major_outage"},
            }}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["impact"], "critical", "the team sees the whole outage");
    app.drain().await;

    let bodies: Vec<Value> = receiver
        .requests_to("/hook")
        .iter()
        .map(|r| r.json().expect("JSON"))
        .collect();
    let incident = bodies
        .iter()
        .find(|b| b.get("incident").is_some())
        .expect("an incident webhook");
    assert_eq!(incident["incident"]["impact"], "minor");
    assert_eq!(incident["page"]["status_indicator"], "minor");
    let text = incident.to_string();
    assert!(!text.contains("Secret batch cluster"), "{text}");
    assert!(!text.contains(&private), "{text}");
    app.finish().await;
    receiver.stop().await;
}
