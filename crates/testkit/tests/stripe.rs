//! `LocalStripe` and `StripeStandIn` as the billing client and its webhook
//! endpoint see them: a real localstripe behind the stand-in, an
//! `HttpReceiver` as the endpoint, reqwest speaking Stripe's form-encoded
//! API. The billing integration's own behaviour is tested where it lives.

#![allow(
    clippy::unwrap_used,
    reason = "a test that cannot go on should fail loudly where it stopped"
)]

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use heliograph_testkit::{HttpReceiver, LocalStripe, ReceivedRequest, StripeStandIn};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

/// A bound for a loaded machine; every wait returns as soon as its condition
/// holds. localstripe sends its own events a second after the call.
const WAIT: Duration = Duration::from_secs(30);
const SECRET: &str = "whsec_stand_in_test_secret";
const PRICE: &str = "price_pro_monthly";
const HOOK_PATH: &str = "/stripe/webhook";

struct World {
    // Dropped last: the stand-in forwards to it.
    _localstripe: LocalStripe,
    receiver: HttpReceiver,
    stripe: StripeStandIn,
    http: reqwest::Client,
}

async fn world() -> World {
    // reqwest is built without a TLS provider of its own and panics without one.
    drop(rustls::crypto::ring::default_provider().install_default());
    let localstripe = LocalStripe::start();
    let receiver = HttpReceiver::start().await.unwrap();
    let stripe = StripeStandIn::start(&localstripe, &receiver.url(HOOK_PATH), SECRET).await;
    let http = reqwest::Client::builder()
        .timeout(WAIT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    World {
        _localstripe: localstripe,
        receiver,
        stripe,
        http,
    }
}

impl World {
    /// A request to the stand-in as the billing client sends it.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        form: &[(&str, &str)],
        idempotency_key: Option<&str>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.stripe.api_base()))
            .bearer_auth(LocalStripe::SECRET_KEY)
            .header("stripe-version", "2026-09-30.endive");
        if let Some(key) = idempotency_key {
            request = request.header("idempotency-key", key);
        }
        if !form.is_empty() {
            request = request.form(form);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let bytes = response.bytes().await.unwrap();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("{path} answered {status}, not JSON ({e}): {bytes:?}"));
        (status, body)
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, &[], None).await
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> (u16, Value) {
        self.call(reqwest::Method::POST, path, form, None).await
    }

    async fn customer(&self) -> String {
        let (status, customer) = self
            .post(
                "v1/customers",
                &[
                    ("email", "owner@example.com"),
                    ("metadata[tenant_id]", "t1"),
                ],
            )
            .await;
        assert_eq!(status, 200, "{customer}");
        customer["id"].as_str().unwrap().to_owned()
    }

    async fn checkout(&self, customer: &str) -> Value {
        let (status, session) = self
            .post(
                "v1/checkout/sessions",
                &[
                    ("customer", customer),
                    ("mode", "subscription"),
                    ("line_items[0][price]", PRICE),
                    ("line_items[0][quantity]", "1"),
                    (
                        "success_url",
                        "http://app.test/billing?session={CHECKOUT_SESSION_ID}",
                    ),
                    ("cancel_url", "http://app.test/billing"),
                    ("client_reference_id", "tenant-1"),
                    ("metadata[tenant_id]", "t1"),
                    ("subscription_data[metadata][tenant_id]", "t1"),
                ],
            )
            .await;
        assert_eq!(status, 200, "{session}");
        session
    }

    /// A paying customer with an active subscription to `PRICE`.
    async fn subscribed(&self) -> String {
        self.stripe.create_price(PRICE, "month", 1900).await;
        let customer = self.customer().await;
        let session = self.checkout(&customer).await;
        self.stripe
            .complete_checkout(session["id"].as_str().unwrap())
            .await
    }

    /// Waits until what the endpoint received satisfies `done`.
    async fn wait_until(&self, what: &str, done: impl Fn(&[ReceivedRequest]) -> bool) {
        let deadline = Instant::now() + WAIT;
        loop {
            let received = self.receiver.requests();
            if done(&received) {
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let types: Vec<Value> = received
                .iter()
                .filter_map(|r| r.json().ok())
                .map(|e| e["type"].clone())
                .collect();
            assert!(
                self.receiver.wait_for(received.len() + 1, left).await,
                "no {what} within {WAIT:?}; the endpoint got {types:?}"
            );
        }
    }

    /// Waits until the endpoint received an event for which `wanted` holds,
    /// and answers the first.
    async fn event(&self, what: &str, wanted: impl Fn(&Value) -> bool) -> ReceivedRequest {
        let matches = |r: &ReceivedRequest| r.json().is_ok_and(|event| wanted(&event));
        self.wait_until(what, |received| received.iter().any(matches))
            .await;
        self.receiver.requests().into_iter().find(matches).unwrap()
    }

    async fn event_of_type(&self, event_type: &str) -> ReceivedRequest {
        self.event(event_type, |e| e["type"] == event_type).await
    }
}

fn unix_now() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

/// Checks the `Stripe-Signature` as Stripe documents it, independently of
/// the stand-in's signing code.
fn assert_signed(request: &ReceivedRequest) {
    let header = request.header("stripe-signature").unwrap();
    let (t, v1) = header.split_once(',').unwrap();
    let t: i64 = t.strip_prefix("t=").unwrap().parse().unwrap();
    let v1 = hex::decode(v1.strip_prefix("v1=").unwrap()).unwrap();
    assert!((unix_now() - t).abs() < 300, "signed at {t}");
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(&request.body);
    mac.verify_slice(&v1)
        .expect("the signature matches the body");
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, HOOK_PATH);
    assert!(
        request
            .header("content-type")
            .unwrap()
            .starts_with("application/json")
    );
}

#[tokio::test]
async fn a_paid_checkout_makes_an_active_subscription_and_signed_events() {
    let world = world().await;
    world.stripe.create_price(PRICE, "month", 1900).await;
    let customer = world.customer().await;
    let session = world.checkout(&customer).await;

    let id = session["id"].as_str().unwrap();
    assert!(id.starts_with("cs_test_"));
    assert_eq!(session["object"], "checkout.session");
    assert_eq!(session["status"], "open");
    assert_eq!(session["mode"], "subscription");
    assert_eq!(session["customer"], customer.as_str());
    assert_eq!(session["client_reference_id"], "tenant-1");
    assert_eq!(session["metadata"]["tenant_id"], "t1");
    assert_eq!(session["subscription"], Value::Null);
    assert_eq!(session["livemode"], false);
    let page_url = session["url"].as_str().unwrap();
    assert_eq!(
        page_url,
        format!("{}checkout/{id}", world.stripe.api_base())
    );
    let page = world.http.get(page_url).send().await.unwrap();
    assert_eq!(page.status().as_u16(), 200);
    assert!(page.text().await.unwrap().contains(id));
    let recorded = world.stripe.checkout_sessions();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0]["line_items"]["data"][0]["price"]["id"], PRICE);

    let subscription_id = world.stripe.complete_checkout(id).await;

    let completed = world.event_of_type("checkout.session.completed").await;
    assert_signed(&completed);
    let event = completed.json().unwrap();
    assert!(event["id"].as_str().unwrap().starts_with("evt_"));
    assert_eq!(event["object"], "event");
    assert_eq!(event["livemode"], false);
    assert_eq!(event["api_version"], "2026-09-30.endive");
    assert_eq!(event["data"]["object"]["id"], id);
    assert_eq!(event["data"]["object"]["status"], "complete");
    assert_eq!(event["data"]["object"]["payment_status"], "paid");
    assert_eq!(
        event["data"]["object"]["subscription"],
        subscription_id.as_str()
    );
    assert_eq!(event["data"]["object"]["client_reference_id"], "tenant-1");
    let (_, session) = world.get(&format!("v1/checkout/sessions/{id}")).await;
    assert_eq!(session["status"], "complete");

    let (status, subscription) = world
        .get(&format!("v1/subscriptions/{subscription_id}"))
        .await;
    assert_eq!(status, 200, "{subscription}");
    assert_eq!(subscription["status"], "active");
    assert_eq!(subscription["customer"], customer.as_str());
    assert_eq!(subscription["metadata"]["tenant_id"], "t1");
    assert_eq!(subscription["items"]["data"][0]["price"]["id"], PRICE);
    assert_eq!(
        subscription["items"]["data"][0]["price"]["recurring"]["interval"],
        "month"
    );
    assert!(subscription["current_period_end"].as_i64().unwrap() > unix_now());
    assert_eq!(
        subscription["items"]["data"][0]["current_period_end"],
        subscription["current_period_end"]
    );
    let (_, list) = world
        .get(&format!("v1/subscriptions?customer={customer}"))
        .await;
    assert_eq!(list["data"][0]["id"], subscription_id.as_str());

    // localstripe's own event, relayed: shaped and signed the same way.
    let created = world.event_of_type("customer.subscription.created").await;
    assert_signed(&created);
    let created = created.json().unwrap();
    assert_eq!(created["data"]["object"]["id"], subscription_id.as_str());
    assert_eq!(
        created["data"]["object"]["items"]["data"][0]["price"]["id"],
        PRICE
    );
    assert_eq!(created["api_version"], "2026-09-30.endive");
    let sent = world.stripe.sent_events();
    assert!(sent.iter().any(|body| body.as_bytes() == completed.body));
}

#[tokio::test]
async fn status_changes_read_back_and_reach_the_endpoint_only_when_notified() {
    let world = world().await;
    let subscription = world.subscribed().await;
    let path = format!("v1/subscriptions/{subscription}");

    let status = world
        .stripe
        .set_subscription_status(&subscription, "past_due", true)
        .await;
    assert_eq!(status, Some(200));
    let updated = world
        .event("customer.subscription.updated (past_due)", |e| {
            e["type"] == "customer.subscription.updated"
                && e["data"]["object"]["status"] == "past_due"
        })
        .await;
    assert_signed(&updated);
    let updated = updated.json().unwrap();
    assert_eq!(updated["data"]["object"]["id"], subscription.as_str());
    assert_eq!(updated["data"]["previous_attributes"]["status"], "active");
    assert_eq!(world.get(&path).await.1["status"], "past_due");
    let (_, past_due) = world.get("v1/subscriptions?status=past_due").await;
    assert_eq!(past_due["data"][0]["id"], subscription.as_str());
    let (_, active) = world.get("v1/subscriptions?status=active").await;
    assert_eq!(active["data"], serde_json::json!([]));

    // A missed webhook: the state changes, nothing is sent.
    let sent = world.stripe.sent_events().len();
    let status = world
        .stripe
        .set_subscription_status(&subscription, "unpaid", false)
        .await;
    assert_eq!(status, None);
    assert_eq!(world.get(&path).await.1["status"], "unpaid");
    assert_eq!(world.stripe.sent_events().len(), sent);

    let (status, canceled) = world.call(reqwest::Method::DELETE, &path, &[], None).await;
    assert_eq!(status, 200, "{canceled}");
    assert_eq!(canceled["status"], "canceled");
    assert_eq!(world.get(&path).await.1["status"], "canceled");
    let (_, current) = world.get("v1/subscriptions").await;
    assert_eq!(current["data"], serde_json::json!([]));
    let deleted = world.event_of_type("customer.subscription.deleted").await;
    assert_eq!(
        deleted.json().unwrap()["data"]["object"]["status"],
        "canceled"
    );
}

#[tokio::test]
async fn price_changes_replays_and_forged_signatures() {
    let world = world().await;
    let subscription = world.subscribed().await;
    world
        .stripe
        .create_price("price_pro_yearly", "year", 19000)
        .await;

    let status = world
        .stripe
        .change_subscription_price(&subscription, "price_pro_yearly", true)
        .await;
    assert_eq!(status, Some(200));
    let (_, read) = world.get(&format!("v1/subscriptions/{subscription}")).await;
    assert_eq!(read["items"]["data"][0]["price"]["id"], "price_pro_yearly");
    assert_eq!(read["status"], "active");
    let updated = world.event_of_type("customer.subscription.updated").await;
    let event = updated.json().unwrap();
    assert_eq!(
        event["data"]["object"]["items"]["data"][0]["price"]["id"],
        "price_pro_yearly"
    );
    assert_eq!(
        event["data"]["previous_attributes"]["items"]["data"][0]["price"]["id"],
        PRICE
    );

    // A replay: the same body, signed afresh.
    let body = updated.body_text();
    assert_eq!(world.stripe.resend(&body).await, 200);
    let same_body = |r: &ReceivedRequest| r.body == updated.body;
    world
        .wait_until("the replay", |received| {
            received.iter().filter(|r| same_body(r)).count() == 2
        })
        .await;
    let replay = world
        .receiver
        .requests()
        .into_iter()
        .filter(same_body)
        .nth(1)
        .unwrap();
    assert_signed(&replay);
    let sent = world.stripe.sent_events();
    assert_eq!(sent.iter().filter(|b| **b == body).count(), 2);

    // Forged headers, for tests of the endpoint's checks.
    let now = unix_now();
    let header = world.stripe.signature_header(&body, now);
    assert!(header.starts_with(&format!("t={now},v1=")));
    assert_ne!(world.stripe.signature_header(&body, now - 600), header);
    let custom = world
        .stripe
        .send_event(
            "invoice.paid",
            serde_json::json!({ "id": "in_1", "object": "invoice" }),
        )
        .await;
    assert_eq!(custom, 200);
    let paid = world.event_of_type("invoice.paid").await;
    assert_signed(&paid);
    assert_eq!(paid.json().unwrap()["data"]["object"]["id"], "in_1");
}

#[tokio::test]
async fn sessions_are_checked_idempotent_and_the_rest_is_localstripe() {
    let world = world().await;
    world.stripe.create_price(PRICE, "month", 1900).await;
    let customer = world.customer().await;

    let (status, error) = world
        .post(
            "v1/checkout/sessions",
            &[
                ("mode", "subscription"),
                ("line_items[0][price]", PRICE),
                ("line_items[0][quantity]", "1"),
            ],
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(error["error"]["type"], "invalid_request_error");
    assert_eq!(error["error"]["param"], "customer");
    let (status, error) = world
        .post(
            "v1/checkout/sessions",
            &[("customer", customer.as_str()), ("mode", "subscription")],
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(error["error"]["param"], "line_items[0][price]");
    let (status, error) = world
        .post(
            "v1/checkout/sessions",
            &[
                ("customer", customer.as_str()),
                ("mode", "subscription"),
                ("line_items[0][price]", "price_nope"),
                ("line_items[0][quantity]", "1"),
            ],
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(error["error"]["code"], "resource_missing");
    let (status, error) = world.get("v1/checkout/sessions/cs_test_nope").await;
    assert_eq!(status, 404);
    assert_eq!(error["error"]["type"], "invalid_request_error");

    let form = [
        ("customer", customer.as_str()),
        ("mode", "subscription"),
        ("line_items[0][price]", PRICE),
        ("line_items[0][quantity]", "2"),
    ];
    let (_, first) = world
        .call(
            reqwest::Method::POST,
            "v1/checkout/sessions",
            &form,
            Some("key-1"),
        )
        .await;
    let (_, again) = world
        .call(
            reqwest::Method::POST,
            "v1/checkout/sessions",
            &form,
            Some("key-1"),
        )
        .await;
    assert_eq!(first["id"], again["id"]);
    assert_eq!(world.stripe.checkout_sessions().len(), 1);
    let (status, error) = world
        .call(
            reqwest::Method::POST,
            "v1/checkout/sessions",
            &form[..3],
            Some("key-1"),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(error["error"]["type"], "idempotency_error");

    let (status, portal) = world
        .post(
            "v1/billing_portal/sessions",
            &[
                ("customer", customer.as_str()),
                ("return_url", "http://app.test/billing"),
            ],
        )
        .await;
    assert_eq!(status, 200, "{portal}");
    assert_eq!(portal["object"], "billing_portal.session");
    assert_eq!(portal["customer"], customer.as_str());
    assert_eq!(portal["return_url"], "http://app.test/billing");
    let page = world
        .http
        .get(portal["url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(page.status().as_u16(), 200);
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("http://app.test/billing")
    );
    assert_eq!(world.stripe.portal_sessions(), vec![portal]);

    // Forwarded: localstripe answers, and refuses a request without a key.
    let (status, fetched) = world.get(&format!("v1/customers/{customer}")).await;
    assert_eq!(status, 200);
    assert_eq!(fetched["email"], "owner@example.com");
    let unauthenticated = world
        .http
        .get(format!(
            "{}v1/customers/{customer}",
            world.stripe.api_base()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status().as_u16(), 401);
    let requests = world.stripe.requests();
    assert!(requests.contains(&("GET".to_owned(), format!("/v1/customers/{customer}"))));
    assert!(requests.contains(&("POST".to_owned(), "/v1/billing_portal/sessions".to_owned())));
}

#[tokio::test]
async fn subscriptions_made_through_the_api_take_price_ids() {
    let world = world().await;
    world.stripe.create_price(PRICE, "month", 1900).await;
    world
        .stripe
        .create_price("price_pro_yearly", "year", 19000)
        .await;
    let customer = world.customer().await;
    let (status, card) = world
        .post(
            &format!("v1/customers/{customer}/sources"),
            &[
                ("source[object]", "card"),
                ("source[number]", "4242424242424242"),
                ("source[exp_month]", "12"),
                ("source[exp_year]", "2040"),
                ("source[cvc]", "123"),
            ],
        )
        .await;
    assert_eq!(status, 200, "{card}");

    // As async-stripe sends them: prices, not plans.
    let (status, created) = world
        .post(
            "v1/subscriptions",
            &[
                ("customer", customer.as_str()),
                ("items[0][price]", PRICE),
                ("items[0][quantity]", "1"),
            ],
        )
        .await;
    assert_eq!(status, 200, "{created}");
    assert_eq!(created["status"], "active");
    assert_eq!(created["items"]["data"][0]["price"]["id"], PRICE);
    let id = created["id"].as_str().unwrap();
    let item = created["items"]["data"][0]["id"].as_str().unwrap();
    let (status, updated) = world
        .post(
            &format!("v1/subscriptions/{id}"),
            &[
                ("items[0][id]", item),
                ("items[0][price]", "price_pro_yearly"),
            ],
        )
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(
        updated["items"]["data"][0]["price"]["id"],
        "price_pro_yearly"
    );
    let (_, by_price) = world.get("v1/subscriptions?price=price_pro_yearly").await;
    assert_eq!(by_price["data"][0]["id"], id);
}
