//! Billing through Stripe, against localstripe (a third-party Stripe
//! emulator from PyPI) behind the testkit's stand-in for what it lacks
//! (Checkout, the Customer Portal, subscription updates): checkout →
//! webhook → plan active → limits raised; a failed payment → past due →
//! owners emailed → cancelled → the free plan, nothing deleted; forged,
//! stale and replayed webhooks change nothing; a missed webhook healed by
//! reconciliation; only owners start a checkout or open the portal; with
//! billing off nothing of it answers.

use heliograph_testkit::{LocalStripe, StripeStandIn};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Infra, STRIPE_WEBHOOK_SECRET, Tenant, TestApp, email_starting, unique_slug};

/// Small limits, so the plans differ in a step.
const PLANS: &str = r#"
free = "free"

[plans.free]
name = "Free"
limits = { pages = 1, team_members = 3 }

[plans.team]
name = "Team"
limits = { pages = 3, team_members = 10 }
prices = { month = "price_hg_team_month", year = "price_hg_team_year" }

[plans.business]
name = "Business"
limits = { pages = 10, team_members = 50 }
prices = { month = "price_hg_business_month" }
"#;

/// An API with billing on, talking to Stripe through the stand-in in front
/// of a localstripe of its own.
struct World {
    app: TestApp,
    stripe: StripeStandIn,
    _localstripe: LocalStripe,
}

impl World {
    async fn start() -> Self {
        let localstripe = LocalStripe::start();
        let stripe = StripeStandIn::start(&localstripe, "", STRIPE_WEBHOOK_SECRET).await;
        for (price, interval, cents) in [
            ("price_hg_team_month", "month", 2900),
            ("price_hg_team_year", "year", 29_000),
            ("price_hg_business_month", "month", 9900),
        ] {
            stripe.create_price(price, interval, cents).await;
        }
        let app = TestApp::spawn_on(Infra {
            plans: Some(PLANS),
            stripe_api: Some(stripe.api_base()),
            ..Infra::default()
        })
        .await;
        stripe
            .set_webhook_url(&app.url("/v1/billing/stripe-webhook"))
            .await;
        Self {
            app,
            stripe,
            _localstripe: localstripe,
        }
    }

    async fn billing(&self, t: &Tenant) -> Value {
        let (status, body) = self
            .app
            .call(Method::GET, "/v1/billing", Some(&t.token), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// Starts a checkout for `plan` as `t`'s owner; answers the session.
    async fn checkout(&self, t: &Tenant, plan: &str) -> Value {
        let (status, body) = self
            .app
            .post(
                "/v1/billing/checkout",
                Some(&t.token),
                &json!({"checkout": {"plan": plan, "interval": "month"}}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let url = body["url"].as_str().expect("a checkout URL");
        self.stripe
            .checkout_sessions()
            .into_iter()
            .find(|s| s["url"] == url)
            .expect("the session the answer points to")
    }

    /// Subscribes `t` to `plan` through Checkout; answers the subscription id.
    async fn subscribe(&self, t: &Tenant, plan: &str) -> String {
        let session = self.checkout(t, plan).await;
        let sub = self
            .stripe
            .complete_checkout(session["id"].as_str().unwrap())
            .await;
        // The stand-in sent `checkout.session.completed` and had its answer:
        // the plan is in force now, before localstripe's own events.
        let billing = self.billing(t).await;
        assert_eq!(billing["plan"]["id"], plan, "{billing}");
        sub
    }

    /// Runs one pass of the worker's reconciliation.
    async fn reconcile(&self) -> heliograph_worker::Reconciled {
        heliograph_worker::reconcile_billing(&self.app.ctx)
            .await
            .expect("reconciliation runs")
    }

    async fn new_page(&self, t: &Tenant) -> StatusCode {
        let (status, _) = self
            .app
            .post(
                "/v1/pages",
                Some(&t.token),
                &json!({"page": {"name": "Another", "subdomain": unique_slug("bill")}}),
            )
            .await;
        status
    }

    async fn audit_actions(&self, t: &Tenant) -> Vec<String> {
        let (status, log) = self
            .app
            .call(Method::GET, "/v1/audit-log", Some(&t.token), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{log}");
        log.as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap().to_owned())
            .collect()
    }

    async fn finish(self) {
        self.stripe.stop().await;
        self.app.finish().await;
    }
}

#[tokio::test]
async fn a_paid_checkout_moves_the_tenant_to_its_plan_and_raises_its_limits() {
    let w = World::start().await;
    let t = w.app.signup().await;
    // The free plan: one page, and the signup made it.
    assert_eq!(w.new_page(&t).await, StatusCode::PAYMENT_REQUIRED);
    let before = w.billing(&t).await;
    assert_eq!(before["plan"]["id"], "free");
    assert!(before["subscription"].is_null(), "{before}");

    let session = w.checkout(&t, "team").await;
    // Checkout in subscription mode, for the tenant's own customer and the
    // plan's monthly price, coming back to the platform.
    assert_eq!(session["mode"], "subscription");
    assert_eq!(session["client_reference_id"], t.tenant_id.as_str());
    assert!(session["customer"].as_str().unwrap().starts_with("cus_"));
    assert_eq!(
        session["line_items"]["data"][0]["price"]["id"], "price_hg_team_month",
        "{session}"
    );
    assert!(
        session["success_url"]
            .as_str()
            .unwrap()
            .starts_with("http://heliograph.test/dashboard/billing")
    );
    // Not paid yet: nothing moved.
    assert_eq!(w.billing(&t).await["plan"]["id"], "free");

    let sub = w
        .stripe
        .complete_checkout(session["id"].as_str().unwrap())
        .await;
    let after = w.billing(&t).await;
    assert_eq!(after["plan"]["id"], "team", "{after}");
    assert_eq!(after["limits"]["pages"], 3);
    assert_eq!(after["subscription"]["status"], "active");
    assert_eq!(after["subscription"]["interval"], "month");
    assert!(
        after["subscription"]["current_period_end"].is_string(),
        "{after}"
    );
    // The raised limit holds: two more pages, not three.
    assert_eq!(w.new_page(&t).await, StatusCode::CREATED);
    assert_eq!(w.new_page(&t).await, StatusCode::CREATED);
    assert_eq!(w.new_page(&t).await, StatusCode::PAYMENT_REQUIRED);
    // A second checkout while subscribed is refused: plans change in the portal.
    let (status, body) = w
        .app
        .post(
            "/v1/billing/checkout",
            Some(&t.token),
            &json!({"checkout": {"plan": "business"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "subscription_exists");
    // The audit log has the checkout and the plan change.
    let actions = w.audit_actions(&t).await;
    assert!(
        actions.contains(&"billing.checkout_started".to_owned()),
        "{actions:?}"
    );
    assert!(
        actions.contains(&"billing.subscription_changed".to_owned()),
        "{actions:?}"
    );
    // A plan change in the portal reaches the tenant by its webhook.
    assert_eq!(
        w.stripe
            .change_subscription_price(&sub, "price_hg_business_month", true)
            .await,
        Some(200)
    );
    assert_eq!(w.billing(&t).await["plan"]["id"], "business");
    w.finish().await;
}

#[tokio::test]
async fn a_failed_payment_keeps_the_plan_through_the_grace_emails_the_owners_and_cancelling_falls_to_free_deleting_nothing()
 {
    let w = World::start().await;
    let t = w.app.signup().await;
    let sub = w.subscribe(&t, "team").await;
    for _ in 0..2 {
        assert_eq!(w.new_page(&t).await, StatusCode::CREATED);
    }
    // The renewal fails: Stripe says past due, and the invoice failed.
    assert_eq!(
        w.stripe
            .set_subscription_status(&sub, "past_due", true)
            .await,
        Some(200)
    );
    let object = json!({
        "id": "in_failed_1", "object": "invoice", "customer": w.billing_customer(&t).await,
        "subscription": sub, "amount_due": 2900, "currency": "usd", "status": "open",
    });
    assert_eq!(
        w.stripe.send_event("invoice.payment_failed", object).await,
        200
    );
    let billing = w.billing(&t).await;
    assert_eq!(billing["subscription"]["status"], "past_due", "{billing}");
    // Within the grace period the plan keeps working.
    assert_eq!(billing["plan"]["id"], "team", "{billing}");
    // The owners are told, with the way to the portal.
    w.app.drain().await;
    let mail = email_starting(&t.email, "Payment failed").await;
    assert!(
        mail["text"]
            .as_str()
            .unwrap()
            .contains("http://heliograph.test/dashboard/billing"),
        "{mail}"
    );
    let actions = w.audit_actions(&t).await;
    assert!(
        actions.contains(&"billing.payment_failed".to_owned()),
        "{actions:?}"
    );
    // A second past-due event (Stripe's retries) sends no second email.
    assert_eq!(
        w.stripe
            .set_subscription_status(&sub, "past_due", true)
            .await,
        Some(200)
    );
    w.app.drain().await;
    assert_eq!(w.app.count("select count(*) from billing_notices").await, 1);

    // Stripe gives up and cancels: the free plan, and every page kept.
    let (status, _) = reqwest::Client::new()
        .delete(format!("{}v1/subscriptions/{sub}", w.stripe.api_base()))
        .bearer_auth(crate::helpers::STRIPE_SECRET_KEY)
        .send()
        .await
        .map(|r| (r.status(), ()))
        .unwrap();
    assert!(status.is_success(), "{status}");
    // localstripe sends `customer.subscription.deleted` by itself, a moment
    // later; the reconciliation pass reads the same end meanwhile.
    w.reconcile().await;
    let billing = w.billing(&t).await;
    assert_eq!(billing["subscription"]["status"], "canceled", "{billing}");
    assert_eq!(billing["plan"]["id"], "free", "{billing}");
    assert_eq!(
        billing["usage"]["pages"], 3,
        "nothing is deleted: {billing}"
    );
    let (status, pages) = w
        .app
        .call(Method::GET, "/v1/pages", Some(&t.token), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(pages.as_array().unwrap().len(), 3);
    assert_eq!(w.new_page(&t).await, StatusCode::PAYMENT_REQUIRED);
    w.finish().await;
}

impl World {
    async fn billing_customer(&self, t: &Tenant) -> String {
        let (customer,): (String,) = sqlx::query_as(
            "select stripe_customer_id from tenant_billing where tenant_id = $1::uuid",
        )
        .bind(&t.tenant_id)
        .fetch_one(&self.app.admin)
        .await
        .unwrap();
        customer
    }

    /// Posts `body` to the webhook with `signature` (none: no header).
    async fn post_webhook(&self, body: &str, signature: Option<&str>) -> (StatusCode, Value) {
        let mut request = self
            .app
            .client
            .post(self.app.url("/v1/billing/stripe-webhook"))
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(signature) = signature {
            request = request.header("stripe-signature", signature);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

#[tokio::test]
async fn forged_stale_and_replayed_webhooks_change_nothing() {
    let w = World::start().await;
    let t = w.app.signup().await;
    let sub = w.subscribe(&t, "team").await;
    let customer = w.billing_customer(&t).await;
    let held = || async {
        let b = w.billing(&t).await;
        (b["plan"]["id"].clone(), b["subscription"]["status"].clone())
    };
    let before = held().await;
    // An event that claims the subscription is unpaid.
    let body = json!({
        "id": "evt_forged_1", "object": "event", "type": "customer.subscription.updated",
        "created": time::OffsetDateTime::now_utc().unix_timestamp(),
        "data": {"object": {"id": sub, "object": "subscription", "customer": customer,
                             "status": "unpaid", "items": {"data": [{"price": {"id": "price_hg_team_month"}}]}}}
    })
    .to_string();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    // Forged: signed with another secret.
    let forged = heliograph_billing::webhook::sign(
        body.as_bytes(),
        b"whsec_not_ours",
        time::OffsetDateTime::now_utc(),
    );
    // Stale: our secret, ten minutes ago (past the five of tolerance).
    let stale = w.stripe.signature_header(&body, now - 600);
    for (signature, what) in [
        (None, "no signature"),
        (Some(forged.as_str()), "forged"),
        (Some(stale.as_str()), "stale"),
        (Some("t=1,v1=zz"), "malformed"),
    ] {
        let (status, answer) = w.post_webhook(&body, signature).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {answer}");
        assert_eq!(answer["error"]["code"], "invalid_signature", "{what}");
    }
    // The body altered after signing is refused too.
    let signed = w.stripe.signature_header(&body, now);
    let altered = body.replace("unpaid", "active");
    let (status, _) = w.post_webhook(&altered, Some(&signed)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(held().await, before);
    assert_eq!(
        w.app
            .count("select count(*) from stripe_events where id = 'evt_forged_1'")
            .await,
        0,
        "a refused event is not even recorded"
    );

    // Signed properly, it is taken, but the subscription is applied as
    // Stripe states it now (active), never as the event's claim.
    let (status, answer) = w.post_webhook(&body, Some(&signed)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(held().await, before);
    // Replayed, with a fresh valid signature: a duplicate, nothing applied.
    assert_eq!(w.stripe.resend(&body).await, 200);
    let (status, answer) = w.post_webhook(&body, Some(&signed)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer["outcome"], "duplicate", "{answer}");
    assert_eq!(
        w.app
            .count("select count(*) from stripe_events where id = 'evt_forged_1'")
            .await,
        1
    );
    assert_eq!(held().await, before);
    w.finish().await;
}

#[tokio::test]
async fn a_missed_webhook_is_healed_by_reconciliation() {
    let w = World::start().await;
    let t = w.app.signup().await;
    let other = w.app.signup().await;
    let sub = w.subscribe(&t, "team").await;
    // From here no webhook reaches the API (localstripe's own events about
    // the checkout, still on their way, included): only reconciliation can
    // tell it what Stripe does next.
    w.stripe.set_webhook_url("http://127.0.0.1:9/").await;
    // Stripe moves the subscription and the webhook never arrives.
    assert_eq!(
        w.stripe
            .change_subscription_price(&sub, "price_hg_business_month", false)
            .await,
        None
    );
    assert_eq!(
        w.stripe
            .set_subscription_status(&sub, "past_due", false)
            .await,
        None
    );
    assert_eq!(w.billing(&t).await["plan"]["id"], "team");
    let done = w.reconcile().await;
    assert!(done.changed >= 1, "{done:?}");
    let billing = w.billing(&t).await;
    assert_eq!(billing["subscription"]["plan"], "business", "{billing}");
    assert_eq!(billing["subscription"]["status"], "past_due", "{billing}");
    let actions = w.audit_actions(&t).await;
    assert!(actions.contains(&"billing.subscription_changed".to_owned()));
    // A second pass finds nothing to move; the tenant without a customer
    // was never asked about.
    let again = w.reconcile().await;
    assert_eq!(again.changed, 0, "{again:?}");
    assert_eq!(w.billing(&other).await["plan"]["id"], "free");
    w.finish().await;
}

#[tokio::test]
async fn only_owners_start_a_checkout_or_open_the_portal() {
    let w = World::start().await;
    let owner = w.app.signup().await;
    // The portal needs a customer: none before the first checkout.
    let (status, body) = w
        .app
        .call(Method::POST, "/v1/billing/portal", Some(&owner.token), None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "no_subscription");
    for role in ["viewer", "editor", "admin"] {
        let person = w.app.signup().await;
        let token = w.app.join(&owner, &person, role).await;
        for (path, body) in [
            (
                "/v1/billing/checkout",
                Some(json!({"checkout": {"plan": "team"}})),
            ),
            ("/v1/billing/portal", None),
        ] {
            let (status, answer) = w
                .app
                .call(Method::POST, path, Some(&token), body.as_ref())
                .await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{path} as {role}: {answer}");
        }
    }
    // Bad input is named, and reaches no Stripe.
    let calls = w.stripe.requests().len();
    for (body, field) in [
        (json!({"checkout": {"plan": "free"}}), "checkout.plan"),
        (json!({"checkout": {"plan": "nope"}}), "checkout.plan"),
        (
            json!({"checkout": {"plan": "business", "interval": "year"}}),
            "checkout.interval",
        ),
        (
            json!({"checkout": {"plan": "team", "interval": "week"}}),
            "checkout.interval",
        ),
    ] {
        let (status, answer) = w
            .app
            .post("/v1/billing/checkout", Some(&owner.token), &body)
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
        assert_eq!(answer["error"]["fields"][0]["field"], field, "{answer}");
    }
    assert_eq!(w.stripe.requests().len(), calls);
    // The owner subscribes, then opens the portal, which comes back to the platform.
    w.subscribe(&owner, "team").await;
    let (status, body) = w
        .app
        .call(Method::POST, "/v1/billing/portal", Some(&owner.token), None)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let portal = w.stripe.portal_sessions();
    assert_eq!(portal.len(), 1);
    assert_eq!(body["url"], portal[0]["url"]);
    assert_eq!(
        portal[0]["return_url"],
        "http://heliograph.test/dashboard/billing"
    );
    // One customer per tenant, however many checkouts.
    let customers = w
        .app
        .count("select count(distinct stripe_customer_id) from tenant_billing")
        .await;
    assert_eq!(customers, 1);
    w.finish().await;
}

#[tokio::test]
async fn a_stripe_that_does_not_answer_is_a_clear_error_that_changes_nothing() {
    // Billing on, with Stripe's API at a port nothing listens on.
    let app = TestApp::spawn_on(Infra {
        plans: Some(PLANS),
        ..Infra::default()
    })
    .await;
    let t = app.signup().await;
    let (status, body) = app
        .post(
            "/v1/billing/checkout",
            Some(&t.token),
            &json!({"checkout": {"plan": "team"}}),
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"]["code"], "stripe_unavailable");
    assert!(
        !body.to_string().contains("127.0.0.1"),
        "nothing internal: {body}"
    );
    assert_eq!(app.count("select count(*) from tenant_billing").await, 0);
    app.finish().await;
}

#[tokio::test]
async fn with_billing_off_there_is_no_plan_no_limit_and_no_stripe() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let (status, body) = app
        .call(Method::GET, "/v1/billing", Some(&t.token), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["billing"], "off");
    assert!(body["plan"].is_null());
    assert!(body["limits"]["pages"].is_null(), "no limit: {body}");
    let (_, plans) = app
        .call(Method::GET, "/v1/billing/plans", Some(&t.token), None)
        .await;
    assert_eq!(plans["plans"], json!([]));
    for (path, body) in [
        (
            "/v1/billing/checkout",
            Some(json!({"checkout": {"plan": "team"}})),
        ),
        ("/v1/billing/portal", None),
    ] {
        let (status, answer) = app
            .call(Method::POST, path, Some(&t.token), body.as_ref())
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{answer}");
        assert_eq!(answer["error"]["code"], "billing_off");
    }
    // The webhook is not there at all.
    let status = app
        .client
        .post(app.url("/v1/billing/stripe-webhook"))
        .header("content-type", "application/json")
        .header("stripe-signature", "t=1,v1=00")
        .body("{}")
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Reconciliation reads nothing.
    let done = heliograph_worker::reconcile_billing(&app.ctx)
        .await
        .unwrap();
    assert_eq!(done, heliograph_worker::Reconciled::default());
    // Any number of pages.
    for _ in 0..3 {
        let (status, _) = app
            .post(
                "/v1/pages",
                Some(&t.token),
                &json!({"page": {"name": "More", "subdomain": unique_slug("off")}}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    app.finish().await;
}

#[tokio::test]
async fn the_billing_page_shows_owners_usage_and_plans_and_takes_them_to_checkout() {
    let w = World::start().await;
    let t = w.app.signup().await;
    let owner = w.app.browser().await;
    w.app.sign_in(&owner, &t.email).await;
    owner.goto(&w.app.url("/dashboard/billing")).await;
    owner.wait_for_text("Your plan: Free").await;
    owner.wait_for_text("Status pages").await;
    // The page is at the free plan's one page: the row says so.
    owner.wait_for_text("(at the limit)").await;
    owner.check_page("billing-free").await;
    // Upgrade: the form posts, and the browser lands on Stripe's Checkout
    // page (the stand-in's), which the page's CSP lets the form reach.
    owner.click_text("Upgrade to Team").await;
    owner.wait_for_text("Checkout (Stripe stand-in)").await;
    let at = owner.url().await;
    let session = w.stripe.checkout_sessions().pop().expect("a session");
    assert_eq!(at, session["url"].as_str().unwrap());
    w.stripe
        .complete_checkout(session["id"].as_str().unwrap())
        .await;
    owner
        .goto(&w.app.url("/dashboard/billing?checkout=done"))
        .await;
    owner.wait_for_text("Your plan: Team").await;
    owner
        .wait_for_text("Stripe is confirming the payment")
        .await;
    owner
        .wait_for_text("Manage the subscription and invoices")
        .await;
    owner.check_page("billing-team").await;
    owner
        .click_text("Manage the subscription and invoices")
        .await;
    owner
        .wait_for_text("Customer portal (Stripe stand-in)")
        .await;
    assert_eq!(w.stripe.portal_sessions().len(), 1);

    // A viewer sees the plan and usage, and no way to change them.
    let person = w.app.signup().await;
    let token = w.app.join(&t, &person, "viewer").await;
    let (cookie, _) = w.app.dashboard_session(&token);
    let page = w
        .app
        .client
        .get(w.app.url("/dashboard/billing"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("Your plan: Team"), "{html}");
    assert!(html.contains("Only owners of the team can change the plan"));
    assert!(!html.contains("Upgrade to"), "{html}");
    assert!(!html.contains("/dashboard/billing/portal"), "{html}");
    owner.close().await;
    w.finish().await;
}
