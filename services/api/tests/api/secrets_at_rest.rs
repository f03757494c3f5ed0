//! Secrets at rest: webhook signing secrets and Slack/Teams URLs are sealed
//! with `SECRETS_KEY`, a search matches only what answers show, and
//! `secrets reencrypt` seals old plaintext rows and re-seals after a key
//! rotation, resumably.

use std::process::Command;
use std::time::Duration;

use heliograph_api::secrets::{ReencryptReport, reencrypt, sealed_subscriber};
use heliograph_auth::SecretsKeyring;
use heliograph_domain::{EndpointUrl, HttpChannel, SubscriberId, Target, TenantId};
use heliograph_notify::WebhookSecret;
use heliograph_store::{endpoint_seal_context, webhook_secret_seal_context};
use heliograph_testkit::HttpReceiver;
use reqwest::StatusCode;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{NEW_SECRETS_KEY, OLD_SECRETS_KEY, Tenant, TestApp, secrets_key};

fn subscribers(t: &Tenant) -> String {
    format!("/v1/pages/{}/subscribers", t.page_id)
}

async fn add(app: &TestApp, t: &Tenant, subscriber: Value) -> (StatusCode, Value) {
    app.post(
        &subscribers(t),
        Some(&t.token),
        &json!({ "subscriber": subscriber }),
    )
    .await
}

/// A Slack incoming-webhook URL whose secret part is random.
fn slack_url() -> (String, String) {
    let token = Uuid::new_v4().simple().to_string()[..24].to_owned();
    (
        format!("https://hooks.slack.com/services/T0HELIO01/B0GRAPH02/{token}"),
        token,
    )
}

/// Every subscriber row, as the database holds it, in one text.
async fn raw_subscribers(app: &TestApp) -> String {
    let rows: Vec<(String,)> = sqlx::query_as("select row_to_json(s)::text from subscribers s")
        .fetch_all(&app.admin)
        .await
        .unwrap();
    rows.into_iter()
        .map(|(r,)| r)
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn a_viewers_search_finds_nothing_of_a_chat_url_beyond_what_answers_show() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let (url, token) = slack_url();
    let (status, created) = add(
        &app,
        &t,
        json!({"endpoint": url, "type": "slack", "skip_confirmation_notification": true}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let last_four = &token[token.len() - 4..];
    let shown = format!("https://hooks.slack.com/…{last_four}");
    assert_eq!(created["endpoint"], shown.as_str());
    // Its last four characters are no hex digits: they cannot be Slack's.
    let teams = format!(
        "https://acme.webhook.office.com/webhookb2/{}-teams",
        Uuid::new_v4().simple()
    );
    let (status, _) = add(
        &app,
        &t,
        json!({"endpoint": teams, "type": "teams", "skip_confirmation_notification": true}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);

    let (status, key) = app
        .post(
            "/v1/api-keys",
            Some(&t.token),
            &json!({"api_key": {"name": "viewer", "scope": "read"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{key}");
    let viewer = format!("OAuth {}", key["key"].as_str().unwrap());
    let count = |q: String| {
        let encoded: String = q
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() {
                    char::from(b).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        let request = app
            .client
            .get(app.url(&format!("{}/count?q={encoded}", subscribers(&t))))
            .header("authorization", &viewer);
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            response.json::<Value>().await.unwrap()["count"]
                .as_i64()
                .unwrap()
        }
    };

    // What the answer shows is found …
    assert_eq!(count("hooks.slack.com".to_owned()).await, 1);
    assert_eq!(count(last_four.to_owned()).await, 1);
    assert_eq!(count(shown.clone()).await, 1);
    assert_eq!(count("acme.webhook.office.com".to_owned()).await, 1);
    // … and nothing else: no piece of the hidden part, not one character
    // of it at a time.
    for hidden in [
        "services",
        "T0HELIO01",
        "B0GRAPH02",
        &token[..8],
        &token[8..16],
        "webhookb2",
        &url,
        // Nor the sealed form.
        "v1:test2:",
    ] {
        assert_eq!(count(hidden.to_owned()).await, 0, "{hidden}");
    }
    for c in ('a'..='z').chain('A'..='Z').chain('0'..='9') {
        assert_eq!(count(format!("hooks.slack.com/{c}")).await, 0, "{c}");
    }
    let (status, list) = app
        .call(
            reqwest::Method::GET,
            &format!("{}?q=services", subscribers(&t)),
            Some(&t.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list, json!([]));
    app.finish().await;
}

#[tokio::test]
async fn no_signing_secret_or_chat_url_is_stored_in_clear() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let send = || {
        app.client
            .post(app.url(&subscribers(&t)))
            .bearer_auth(&t.token)
            .header("idempotency-key", "add-the-hook")
            .json(&json!({"subscriber": {
                "endpoint": "https://example.com/hooks/status",
                "skip_confirmation_notification": true,
            }}))
            .send()
    };
    let created: Value = send().await.unwrap().json().await.unwrap();
    let secret = created["webhook_secret"].as_str().unwrap().to_owned();
    // A replay answers without the secret, saying so.
    let replayed: Value = send().await.unwrap().json().await.unwrap();
    assert!(replayed.get("webhook_secret").is_none(), "{replayed}");
    assert_eq!(replayed["secrets_withheld"], json!(["webhook_secret"]));

    let (slack, slack_token) = slack_url();
    let (status, _) = add(
        &app,
        &t,
        json!({"endpoint": slack, "type": "slack", "skip_confirmation_notification": true}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let teams_secret = Uuid::new_v4().simple().to_string();
    let (status, _) = add(
        &app,
        &t,
        json!({"endpoint": format!("https://acme.webhook.office.com/webhookb2/{teams_secret}"),
               "type": "teams", "skip_confirmation_notification": true}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);

    let raw = raw_subscribers(&app).await;
    for secret_part in [&secret[6..], &slack_token, &teams_secret[..28]] {
        assert!(!raw.contains(secret_part), "{secret_part} is in {raw}");
    }
    assert!(
        raw.contains("v1:test2:"),
        "sealed under the current key: {raw}"
    );

    // The same URL is still told apart from others: once is enough, and
    // another URL that shows the same is welcome.
    let (status, body) = add(&app, &t, json!({"endpoint": slack, "type": "slack"})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "already_subscribed");
    let twin = format!(
        "https://hooks.slack.com/services/T0HELIO01/B0OTHER03/{}",
        &slack_token[slack_token.len() - 4..]
    );
    let (status, body) = add(
        &app,
        &t,
        json!({"endpoint": twin, "type": "slack", "skip_confirmation_notification": true}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    app.finish().await;
}

/// Inserts a subscriber as rows were written before secrets were sealed.
async fn legacy_subscriber(
    app: &TestApp,
    t: &Tenant,
    channel: &str,
    endpoint: &str,
    webhook_secret: Option<&str>,
) -> SubscriberId {
    let id = SubscriberId::new();
    sqlx::query(
        "insert into subscribers (id, tenant_id, page_id, channel, endpoint, webhook_secret, confirmed_at)
         values ($1, $2::uuid, $3::uuid, $4, $5, $6, now())",
    )
    .bind(id.as_uuid())
    .bind(&t.tenant_id)
    .bind(&t.page_id)
    .bind(channel)
    .bind(endpoint)
    .bind(webhook_secret)
    .execute(&app.admin)
    .await
    .unwrap();
    id
}

/// Adds a confirmed subscriber sealed with `keyring` (an older key's, say).
async fn sealed_with(
    app: &TestApp,
    t: &Tenant,
    keyring: &SecretsKeyring,
    target: Target,
) -> (SubscriberId, Option<String>) {
    let (new, secret) = sealed_subscriber(keyring, target, vec![], true);
    let tenant: TenantId = t.tenant_id.parse().unwrap();
    let mut tx = app.store.tenant_tx(tenant).await.unwrap();
    let s = tx
        .create_subscriber(t.page_id.parse().unwrap(), &new)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    (s.id, secret)
}

fn target(channel: HttpChannel, url: &str) -> Target {
    Target::Http(channel, EndpointUrl::parse("endpoint", url).unwrap())
}

/// Runs `heliograph-api secrets reencrypt` on the test's database; answers
/// whether it succeeded, and its log.
fn reencrypt_command(app: &TestApp, secrets_key: &str) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_heliograph-api"))
        .args(["secrets", "reencrypt"])
        .env_clear()
        .env("DATABASE_URL", app.config.database_url.expose_secret())
        .env("SECRETS_KEY", secrets_key)
        .env("LOG_FORMAT", "json")
        .output()
        .expect("the binary runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_key_rotation_reencrypt_seals_every_row_under_the_new_key_and_deliveries_still_work()
 {
    let receiver = HttpReceiver::start().await.expect("a receiver");
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let api = app.component(&t, "API").await;
    let old_ring = SecretsKeyring::parse(OLD_SECRETS_KEY).unwrap();
    let new_only = SecretsKeyring::parse(NEW_SECRETS_KEY).unwrap();

    // Rows from before sealing, rows sealed under the old key, one under the new.
    let legacy_secret = WebhookSecret::generate().expose();
    let legacy_hook = legacy_subscriber(
        &app,
        &t,
        "webhook",
        &receiver.url("/legacy-hook"),
        Some(&legacy_secret),
    )
    .await;
    let legacy_slack_url = receiver.url("/legacy-slack");
    let legacy_slack = legacy_subscriber(&app, &t, "slack", &legacy_slack_url, None).await;
    let (old_hook, old_secret) = sealed_with(
        &app,
        &t,
        &old_ring,
        target(HttpChannel::Webhook, &receiver.url("/old-hook")),
    )
    .await;
    let old_teams_url = receiver.url("/old-teams");
    let (old_teams, _) = sealed_with(
        &app,
        &t,
        &old_ring,
        target(HttpChannel::Teams, &old_teams_url),
    )
    .await;
    let (status, _) = add(
        &app,
        &t,
        json!({"endpoint": receiver.url("/new-slack"), "type": "slack",
               "skip_confirmation_notification": true}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert!(raw_subscribers(&app).await.contains(&legacy_secret));

    // The key ring now starts with the new key; the command re-seals.
    let (ok, log) = reencrypt_command(&app, &secrets_key());
    assert!(ok, "{log}");
    assert!(log.contains(r#""resealed":4"#), "{log}");

    let raw = raw_subscribers(&app).await;
    assert!(!raw.contains(&legacy_secret), "{raw}");
    assert!(!raw.contains("legacy-slack"), "{raw}");
    assert!(
        !raw.contains("v1:test1:"),
        "nothing left under the old key: {raw}"
    );
    // Everything opens with the new key alone, to what it was.
    let sealed: Vec<(Uuid, Option<String>, Option<String>)> = sqlx::query_as(
        "select id, endpoint_sealed, webhook_secret_sealed from subscribers order by id",
    )
    .fetch_all(&app.admin)
    .await
    .unwrap();
    let open_endpoint = |id: SubscriberId| {
        let (_, e, _) = sealed.iter().find(|(i, _, _)| *i == id.as_uuid()).unwrap();
        new_only
            .open(&endpoint_seal_context(id), e.as_deref().unwrap())
            .unwrap()
            .expose_secret()
            .to_owned()
    };
    let open_secret = |id: SubscriberId| {
        let (_, _, w) = sealed.iter().find(|(i, _, _)| *i == id.as_uuid()).unwrap();
        new_only
            .open(&webhook_secret_seal_context(id), w.as_deref().unwrap())
            .unwrap()
            .expose_secret()
            .to_owned()
    };
    assert_eq!(open_endpoint(legacy_slack), legacy_slack_url);
    assert_eq!(open_endpoint(old_teams), old_teams_url);
    assert_eq!(open_secret(legacy_hook), legacy_secret);
    assert_eq!(open_secret(old_hook), old_secret.clone().unwrap());

    // Again: nothing left to do.
    let (ok, log) = reencrypt_command(&app, &secrets_key());
    assert!(ok && log.contains(r#""resealed":0"#), "{log}");

    // Deliveries reach every endpoint, webhooks signed with their own secrets.
    let (status, incident) = app
        .post(
            &format!("/v1/pages/{}/incidents", t.page_id),
            Some(&t.token),
            &json!({"incident": {"name": "Rotated", "status": "investigating",
                    "body": "Looking into it.", "components": {api: "major_outage"},
                    "deliver_notifications": true}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{incident}");
    app.drain().await;
    for (path, secret) in [
        ("/legacy-hook", legacy_secret.clone()),
        ("/old-hook", old_secret.unwrap()),
    ] {
        let secret = WebhookSecret::parse(&secret).unwrap();
        let requests = receiver.requests_to(path);
        assert!(!requests.is_empty(), "{path} got nothing");
        for r in requests {
            let id = r.header("webhook-id").unwrap();
            let ts: i64 = r.header("webhook-timestamp").unwrap().parse().unwrap();
            assert_eq!(
                r.header("webhook-signature").unwrap(),
                secret.sign(id, ts, &r.body),
                "{path}: the signature verifies"
            );
        }
    }
    for path in ["/legacy-slack", "/old-teams", "/new-slack"] {
        assert_eq!(receiver.requests_to(path).len(), 1, "{path}");
    }
    app.finish().await;
}

#[tokio::test]
async fn a_reencrypt_cut_short_is_finished_by_the_next_run_and_unreadable_rows_are_reported() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let ring = crate::helpers::secrets_keyring();
    for n in 0..3 {
        legacy_subscriber(
            &app,
            &t,
            "webhook",
            &format!("https://example.com/hooks/{n}"),
            Some(&WebhookSecret::generate().expose()),
        )
        .await;
    }
    let in_clear = "select count(*) from subscribers where webhook_secret is not null";

    // Stopped after its first batch (of one row): the rest is still due.
    let report = reencrypt(&app.store, &ring, 1, Some(1)).await.unwrap();
    assert_eq!(report.resealed, 1);
    assert_eq!(app.count(in_clear).await, 2);
    let report = reencrypt(&app.store, &ring, 1, None).await.unwrap();
    assert_eq!(
        report,
        ReencryptReport {
            resealed: 2,
            unreadable: 0
        }
    );
    assert_eq!(app.count(in_clear).await, 0);
    assert_eq!(
        reencrypt(&app.store, &ring, 1, None).await.unwrap(),
        ReencryptReport::default(),
        "nothing left to do"
    );

    // A row sealed under a key nobody holds any more is reported and kept.
    let gone = SecretsKeyring::parse(&SecretsKeyring::generate_entry("gone")).unwrap();
    let (lost, _) = sealed_with(
        &app,
        &t,
        &gone,
        target(HttpChannel::Teams, "https://acme.webhook.office.com/x"),
    )
    .await;
    let report = reencrypt(&app.store, &ring, 10, None).await.unwrap();
    assert_eq!(report.unreadable, 1);
    let (ok, log) = reencrypt_command(&app, &secrets_key());
    assert!(!ok, "the command fails while a row cannot be read");
    assert!(log.contains(&lost.to_string()), "it names the row: {log}");
    let (kept,): (String,) =
        sqlx::query_as("select endpoint_sealed from subscribers where id = $1")
            .bind(lost.as_uuid())
            .fetch_one(&app.admin)
            .await
            .unwrap();
    assert!(kept.starts_with("v1:gone:"));
    app.finish().await;
}

#[tokio::test]
async fn a_delivery_whose_secret_opens_with_no_key_fails_saying_so() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let gone = SecretsKeyring::parse(&SecretsKeyring::generate_entry("gone")).unwrap();
    sealed_with(
        &app,
        &t,
        &gone,
        target(HttpChannel::Webhook, "https://example.com/hooks/gone"),
    )
    .await;
    let api = app.component(&t, "API").await;
    let (status, _) = app
        .post(
            &format!("/v1/pages/{}/incidents", t.page_id),
            Some(&t.token),
            &json!({"incident": {"name": "Lost key", "status": "investigating",
                    "components": {api: "major_outage"}}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let error = loop {
        let row: Option<(Option<String>,)> = sqlx::query_as(
            "select last_error from deliveries where channel = 'webhook' and last_error is not null",
        )
        .fetch_optional(&app.admin)
        .await
        .unwrap();
        if let Some((Some(error),)) = row {
            break error;
        }
        assert!(std::time::Instant::now() < deadline, "no failure recorded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        error,
        "the signing secret cannot be opened: sealed under key `gone`, which SECRETS_KEY does not hold"
    );
    app.teardown().await;
}
