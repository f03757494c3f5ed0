//! Abuse controls: texts that cannot be pumped (SMS off until a verified team
//! turns it on, the countries a page texts, a budget of their own for
//! confirmation codes, the platform's velocity limits, IPv6 limits per /48,
//! an SMS answer that tells nothing), and unverified accounts that are not a
//! relay.

use heliograph_testkit::SmsStandIn;
use heliograph_worker::SmsVelocity;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{
    Infra, SMS_SID, SMS_TOKEN, Tenant, TestApp, emails_to, token_in_email, unique_email, unique_ip,
    unique_slug,
};

/// Subscribes through the page's public JSON endpoint, from an address of its own.
async fn subscribe(app: &TestApp, t: &Tenant, subscriber: Value) -> (StatusCode, Value) {
    subscribe_from(app, t, &unique_ip(), &json!({ "subscriber": subscriber })).await
}

async fn subscribe_from(app: &TestApp, t: &Tenant, ip: &str, body: &Value) -> (StatusCode, Value) {
    let response = app
        .client
        .post(app.url(&format!("/status/{}/subscriptions", t.slug)))
        .header("x-forwarded-for", ip)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Adds a subscriber through the team's API.
async fn add(app: &TestApp, t: &Tenant, subscriber: Value) -> (StatusCode, Value) {
    app.post(
        &format!("/v1/pages/{}/subscribers", t.page_id),
        Some(&t.token),
        &json!({ "subscriber": subscriber }),
    )
    .await
}

async fn set_page(app: &TestApp, t: &Tenant, settings: Value) -> (StatusCode, Value) {
    app.call(
        Method::PATCH,
        &format!("/v1/pages/{}", t.page_id),
        Some(&t.token),
        Some(&json!({ "page": settings })),
    )
    .await
}

async fn invite(app: &TestApp, t: &Tenant, email: &str) -> (StatusCode, Value) {
    app.post(
        "/v1/invitations",
        Some(&t.token),
        &json!({"invitation": {"email": email, "role": "editor"}}),
    )
    .await
}

/// The field and code of a 422's only field error.
fn field_code(body: &Value) -> (String, String) {
    let fields = body["error"]["fields"].as_array().expect("field errors");
    assert_eq!(fields.len(), 1, "{body}");
    (
        fields[0]["field"].as_str().unwrap().to_owned(),
        fields[0]["code"].as_str().unwrap().to_owned(),
    )
}

/// Verifies the owner's address through the link emailed at signup.
async fn verify_owner(app: &TestApp, t: &Tenant) {
    app.drain().await;
    let token = token_in_email(&t.email, "Confirm your email address", 1).await;
    let (status, body) = app
        .post(
            "/v1/email-verifications/confirm",
            None,
            &json!({"token": token}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
}

async fn open_incident(app: &TestApp, t: &Tenant, component: &str, name: &str) {
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
}

/// Why skipped texts were not sent, sorted.
async fn skipped_texts(app: &TestApp) -> Vec<String> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "select last_error from deliveries where channel = 'sms' and status = 'skipped'
          order by last_error",
    )
    .fetch_all(&app.admin)
    .await
    .unwrap();
    rows.into_iter().map(|(r,)| r).collect()
}

/// The worker's `heliograph_sms_refused_total` for `reason`.
async fn refused_metric(app: &TestApp, reason: &str) -> u64 {
    let text = heliograph_worker::metrics::render(&app.ctx).await;
    let prefix = format!("heliograph_sms_refused_total{{reason=\"{reason}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {prefix} in:\n{text}"))
        .parse()
        .unwrap()
}

// ------------------------------------------------------------ SMS settings

#[tokio::test]
async fn sms_stays_off_until_a_verified_team_turns_it_on_for_a_country() {
    let app = TestApp::spawn().await;
    let t = app.signup_unverified().await;
    let (_, page) = app
        .call(
            Method::GET,
            &format!("/v1/pages/{}", t.page_id),
            Some(&t.token),
            None,
        )
        .await;
    assert_eq!(page["allow_sms_subscribers"], false, "{page}");
    assert_eq!(page["sms_calling_code"], Value::Null);
    assert_eq!(page["sms_allowed_calling_codes"], json!([]));
    let (status, body) = subscribe(&app, &t, json!({"phone_number": "+14155550100"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(
        field_code(&body),
        ("phone_number".into(), "channel_not_allowed".into())
    );

    // Not before an owner's address is verified: on a page, nor on a new one.
    let on = json!({"allow_sms_subscribers": true, "sms_calling_code": "1"});
    let (status, body) = set_page(&app, &t, on.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "email_unverified");
    let (status, body) = app
        .post(
            "/v1/pages",
            Some(&t.token),
            &json!({"page": {"name": "Texts", "subdomain": unique_slug("sms"),
                             "allow_sms_subscribers": true, "sms_calling_code": "1"}}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "email_unverified");

    verify_owner(&app, &t).await;
    // A page that texts must text some country, and only countries.
    let (status, body) = set_page(&app, &t, json!({"allow_sms_subscribers": true})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(
        field_code(&body),
        ("sms_calling_code".into(), "missing".into())
    );
    for network in ["+882", "881", "4"] {
        let (status, body) = set_page(
            &app,
            &t,
            json!({"allow_sms_subscribers": true, "sms_calling_code": network}),
        )
        .await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{network}: {body}"
        );
        assert_eq!(
            field_code(&body),
            ("sms_calling_code".into(), "invalid".into())
        );
    }
    let (status, page) = set_page(
        &app,
        &t,
        json!({"allow_sms_subscribers": true, "sms_calling_code": "+1"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["allow_sms_subscribers"], true);
    assert_eq!(page["sms_calling_code"], "1");
    let (status, body) = subscribe(&app, &t, json!({"phone_number": "+14155550100"})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let (status, body) = set_page(&app, &t, json!({"sms_calling_code": null})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(
        field_code(&body),
        ("sms_calling_code".into(), "missing".into())
    );
    // Should the tenant have no verified owner any more, where the page
    // texts cannot change either.
    sqlx::query("update users set email_verified_at = null")
        .execute(&app.admin)
        .await
        .unwrap();
    let (status, body) =
        set_page(&app, &t, json!({"sms_allowed_calling_codes": ["1", "44"]})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "email_unverified");
    app.finish().await;
}

#[tokio::test]
async fn numbers_outside_the_countries_a_page_texts_are_refused_to_the_public_and_the_team() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let (status, body) = set_page(
        &app,
        &t,
        json!({"allow_sms_subscribers": true, "sms_calling_code": "44"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // The page's own country only, while no list is given.
    let (status, body) = subscribe(&app, &t, json!({"phone_number": "+14155550100"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(
        field_code(&body),
        ("phone_number".into(), "country_not_allowed".into())
    );
    assert!(
        body["error"]["fields"][0]["message"]
            .as_str()
            .unwrap()
            .contains("+44"),
        "{body}"
    );
    for (number, expected) in [
        ("+14155550101", StatusCode::UNPROCESSABLE_ENTITY),
        // Satellite and international networks, the pumpers' favourites: never.
        ("+88216123456", StatusCode::UNPROCESSABLE_ENTITY),
        ("+447700900101", StatusCode::CREATED),
    ] {
        let (status, body) = add(
            &app,
            &t,
            json!({"phone_number": number, "skip_confirmation_notification": true}),
        )
        .await;
        assert_eq!(status, expected, "{number}: {body}");
    }
    let (status, body) = subscribe(&app, &t, json!({"phone_number": "+447700900100"})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");

    // A list replaces the page's own country.
    let (status, page) = set_page(
        &app,
        &t,
        json!({"sms_allowed_calling_codes": ["353", "+1", "1"]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["sms_allowed_calling_codes"], json!(["1", "353"]));
    let (status, body) = subscribe(&app, &t, json!({"phone_number": "+14155550102"})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let (status, body) = subscribe(&app, &t, json!({"phone_number": "+447700900102"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(
        app.count("select count(*) from subscribers where channel = 'sms'")
            .await,
        3
    );
    app.finish().await;
}

// ------------------------------------------------------ the public answer

#[tokio::test]
async fn the_subscribe_answer_never_tells_a_new_number_from_a_pending_or_a_confirmed_one() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    app.enable_sms(&t, &["1"]).await;
    let (status, confirmed) = add(
        &app,
        &t,
        json!({"phone_number": "+14155550142", "skip_confirmation_notification": true}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{confirmed}");

    let new = subscribe(&app, &t, json!({"phone_number": "+14155550141"})).await;
    let pending = subscribe(&app, &t, json!({"phone_number": "+14155550141"})).await;
    let known = subscribe(&app, &t, json!({"phone_number": "+14155550142"})).await;
    let again = subscribe(&app, &t, json!({"phone_number": "+14155550142"})).await;
    assert_eq!(new, pending, "a pending number answers as it did when new");
    assert_eq!(
        known, again,
        "a confirmed number answers the same each time"
    );
    let rows: Vec<(Uuid,)> = sqlx::query_as("select id from subscribers")
        .fetch_all(&app.admin)
        .await
        .unwrap();
    for (status, body) in [&new, &known] {
        assert_eq!(*status, StatusCode::ACCEPTED, "{body}");
        let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["status", "subscriber_id"], "{body}");
        assert_eq!(body["status"], "confirmation_sent");
        let id: Uuid = body["subscriber_id"].as_str().unwrap().parse().unwrap();
        // No UUIDv7: its timestamp would date the number's first subscription.
        assert_eq!(id.get_version_num(), 4, "no time in it: {id}");
        assert!(
            rows.iter().all(|(row,)| *row != id),
            "never a subscriber's own id"
        );
    }
    assert_ne!(new.1["subscriber_id"], known.1["subscriber_id"]);
    app.finish().await;
}

// ------------------------------------------------------------ IPv6 limits

#[tokio::test]
async fn ipv6_clients_are_limited_per_slash_48_as_well_as_per_slash_64() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    // A site of its own: the tests' addresses are random down to the /48.
    let n = Uuid::new_v4().as_u128();
    let site = format!("3fff:{:x}:{:x}", (n >> 16) & 0xfff, n & 0xffff);
    // Every request is counted, even one the body of which is refused; a
    // /64 has 10 an hour, and the /48 four times that.
    let empty = json!({});
    for subnet in 0..4 {
        let ip = format!("{site}:{subnet:x}::1");
        for _ in 0..10 {
            let (status, body) = subscribe_from(&app, &t, &ip, &empty).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{ip}: {body}");
        }
        let (status, _) = subscribe_from(&app, &t, &format!("{site}:{subnet:x}::2"), &empty).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "the /64 is spent");
    }
    let (status, body) = subscribe_from(&app, &t, &format!("{site}:ff::1"), &empty).await;
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "a fresh /64 of the same /48: {body}"
    );
    assert_eq!(body["error"]["code"], "rate_limited");
    let (status, _) = subscribe_from(&app, &t, &unique_ip(), &empty).await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "another site is not affected"
    );
    app.finish().await;
}

// -------------------------------------------------------- unverified relay

#[tokio::test]
async fn an_unverified_tenant_sends_nothing_to_addresses_it_types_in() {
    let app = TestApp::spawn().await;
    let t = app.signup_unverified().await;
    let typed = unique_email("typed");
    for subscriber in [
        json!({"email": typed}),
        json!({"email": typed, "skip_confirmation_notification": true}),
    ] {
        let (status, body) = add(&app, &t, subscriber).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert_eq!(body["error"]["code"], "email_unverified");
    }
    let invitee = unique_email("invitee");
    let (status, body) = invite(&app, &t, &invitee).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "email_unverified");
    // It can build its page: its own endpoints, and readers who subscribe
    // themselves (double opt-in: the address's owner confirms).
    let (status, body) = add(
        &app,
        &t,
        json!({"endpoint": "https://hooks.example.test/own", "skip_confirmation_notification": true}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let reader = unique_email("reader");
    let (status, body) = subscribe(&app, &t, json!({"email": reader})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(
        app.count("select count(*) from invitations").await
            + app
                .count("select count(*) from subscribers where channel = 'email'")
                .await,
        1,
        "the reader only"
    );

    verify_owner(&app, &t).await;
    let (status, body) = add(&app, &t, json!({"email": typed})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = invite(&app, &t, &invitee).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    app.drain().await;
    assert_eq!(emails_to(&reader, 1).await.len(), 1, "the reader's link");
    assert_eq!(emails_to(&typed, 1).await.len(), 1, "sent once verified");
    assert_eq!(emails_to(&invitee, 1).await.len(), 1, "sent once verified");
    app.finish().await;
}

// ----------------------------------------------------- budgets and limits

/// An app whose worker texts through a stand-in, with the given limits.
async fn texting(velocity: Option<SmsVelocity>) -> (SmsStandIn, TestApp) {
    let sms = SmsStandIn::start_with_credentials(SMS_SID, SMS_TOKEN)
        .await
        .expect("the stand-in");
    let app = TestApp::spawn_on(Infra {
        sms_url: Some(sms.base_url()),
        sms_velocity: velocity,
        ..Infra::default()
    })
    .await;
    (sms, app)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirmation_codes_have_a_budget_of_their_own_and_never_silence_incident_texts() {
    let (sms, app) = texting(None).await;
    let t = app.signup().await;
    app.enable_sms(&t, &["1"]).await;
    let api = app.component(&t, "API").await;
    let (status, body) = add(
        &app,
        &t,
        json!({"phone_number": "+14155550100", "skip_confirmation_notification": true}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    sqlx::query("update tenants set sms_monthly_budget = 1, sms_confirmation_monthly_budget = 2")
        .execute(&app.admin)
        .await
        .unwrap();

    // Strangers ask for three codes: two go out, the third is over budget.
    for number in ["+14155550201", "+14155550202", "+14155550203"] {
        let (status, body) = subscribe(&app, &t, json!({"phone_number": number})).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    }
    app.drain().await;
    assert_eq!(sms.count(), 2, "{:?}", sms.messages());
    assert_eq!(
        skipped_texts(&app).await,
        ["this month's budget of confirmation texts is spent"]
    );
    // The incident's text still goes out: the codes used none of its budget.
    open_incident(&app, &t, &api, "Texts still go out").await;
    app.drain().await;
    let to_subscriber: Vec<String> = sms
        .messages()
        .into_iter()
        .filter(|m| m.to == "+14155550100")
        .map(|m| m.body)
        .collect();
    assert_eq!(to_subscriber.len(), 1, "{to_subscriber:?}");
    assert!(to_subscriber[0].contains("Texts still go out"));
    assert_eq!(refused_metric(&app, "confirmation_budget").await, 1);

    // Turning SMS off stops texts to the subscribers the page has, at once.
    sqlx::query("update tenants set sms_monthly_budget = 100")
        .execute(&app.admin)
        .await
        .unwrap();
    let (status, body) = set_page(&app, &t, json!({"allow_sms_subscribers": false})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    open_incident(&app, &t, &api, "Nobody is texted").await;
    app.drain().await;
    assert_eq!(sms.count(), 3);
    assert!(
        skipped_texts(&app)
            .await
            .contains(&"SMS is turned off for this page".to_owned())
    );
    assert_eq!(refused_metric(&app, "sms_off").await, 1);
    app.finish().await;
    sms.stop().await;
}

/// Asks for a code for each of `numbers` on `t`'s page, then lets the worker send them.
async fn ask(app: &TestApp, t: &Tenant, numbers: &[&str]) {
    for number in numbers {
        let (status, body) = subscribe(app, t, json!({"phone_number": number})).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    }
    app.drain().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirmation_codes_to_one_number_range_or_for_one_page_are_limited_platform_wide() {
    let (sms, app) = texting(Some(SmsVelocity {
        range_digits: 3,
        per_range: 2,
        per_page: 3,
    }))
    .await;
    let a = app.signup().await;
    let b = app.signup().await;
    app.enable_sms(&a, &["1"]).await;
    app.enable_sms(&b, &["1"]).await;
    // Three numbers of one range (+1415555 0000–0999) from page A: two codes.
    ask(&app, &a, &["+14155550101", "+14155550102", "+14155550103"]).await;
    assert_eq!(sms.count(), 2);
    // The range is counted across the platform: page B's number in it is refused too.
    ask(&app, &b, &["+14155550104"]).await;
    assert_eq!(sms.count(), 2);
    // Other ranges, from page B: three an hour for the page.
    ask(
        &app,
        &b,
        &[
            "+14155551104",
            "+14155552104",
            "+14155553104",
            "+14155554104",
        ],
    )
    .await;
    assert_eq!(sms.count(), 5, "{:?}", sms.messages());
    let range =
        "refused: too many confirmation codes to this number's range this hour (platform limit)";
    let page = "refused: too many confirmation codes for this page this hour";
    assert_eq!(skipped_texts(&app).await, [page, range, range]);
    assert_eq!(refused_metric(&app, "range_velocity").await, 2);
    assert_eq!(refused_metric(&app, "page_velocity").await, 1);
    app.finish().await;
    sms.stop().await;
}
