//! Stripe for the billing tests: [`LocalStripe`], the third-party emulator
//! (localstripe 1.15.10 from PyPI, pinned in
//! `deploy/localstripe/requirements.txt`), and [`StripeStandIn`], a
//! **stand-in** for exactly what localstripe lacks, in front of it.
//!
//! What localstripe 1.15.10 does, as run here: customers, sources and
//! cards, products, plans (no prices), subscriptions, invoices and their
//! payment; subscription lists filter by `customer`, `status`, `limit` and
//! `starting_after`. A parameter it does not know (`price` in a list,
//! `proration_behavior` in an update) is a plain-text 500; a subscription's
//! items take `plan`, so `items[0][price]` is refused on create and ignored
//! on update. It accepts any key beginning `sk_` (Bearer or Basic), refuses
//! the rest with 401, and ignores `Stripe-Version` and `Idempotency-Key`. A
//! subscription for a customer with a good card (4242 4242 4242 4242, added
//! as a source) is `active` at once, with top-level `current_period_start`
//! and `current_period_end`, and items that carry a `plan` but no `price`;
//! `DELETE` marks it `canceled` and keeps it (lists leave it out unless asked
//! for `status=all`). Its events (`customer.created`, `product.created`,
//! `plan.created`, `customer.source.created`, `invoice.created`,
//! `payment_intent.succeeded`, `invoice.payment_succeeded` or
//! `invoice.payment_failed`, `customer.subscription.created` and
//! `customer.subscription.deleted`; never `invoice.paid` nor
//! `customer.subscription.updated`) are signed and sent about a second
//! after the call to the URLs registered at `POST /_config/webhooks/{id}`,
//! with `api_version` 2017-08-15.
//!
//! What the stand-in adds: Checkout Sessions and their completion, Customer
//! Portal sessions, subscription status changes and
//! `customer.subscription.updated` events, `price` objects mirroring plans
//! (Stripe takes a plan's id wherever a price id goes; `items[N][price]` is
//! passed on as `items[N][plan]`), the fields Stripe always sends that typed
//! clients (async-stripe) require and localstripe leaves out
//! (`billing_mode`, `automatic_tax`, `collection_method`,
//! `invoice_settings`, `currency`, items' `current_period_*`, …),
//! `Idempotency-Key`, and Stripe-shaped errors where localstripe answers
//! plain text.
//!
//! The file is long because the stand-in is one server with one state: its
//! Stripe routes, the forwarding and reshaping of localstripe's answers and
//! events, and the signing all read and write it.
//!
//! Two things localstripe does that a test can trip on: it listens on every
//! interface (`[::]`, not only loopback; it has no option to do otherwise),
//! and every instance writes its data to the same `/tmp/localstripe.pickle`
//! on each change (started with `--from-scratch`, none reads it back; a
//! file there that the user cannot write makes every change fail).

use std::collections::HashMap;
use std::fs;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use actix_web::http::StatusCode;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{Map, Value, json};
use sha2::Sha256;
use uuid::Uuid;

use crate::log::{Log, lock};
use crate::server::Running;

/// The path on the stand-in where localstripe delivers its own events.
const RELAY_PATH: &str = "/_localstripe/events";

/// The card Stripe documents as always succeeding; localstripe charges it.
const GOOD_CARD: &str = "4242424242424242";

/// localstripe on a free loopback port, of one test's own, with an empty
/// store (`--from-scratch`). Dropping it kills it.
///
/// The binary is `LOCALSTRIPE_BIN` (which `deploy/dev test` sets), else
/// `localstripe` on `PATH`, else the one `deploy/dev test` installed under
/// `.local/localstripe`.
#[derive(Debug)]
pub struct LocalStripe {
    addr: SocketAddr,
    dir: PathBuf,
    child: Child,
}

impl LocalStripe {
    /// A secret key localstripe accepts (it takes any beginning `sk_`).
    pub const SECRET_KEY: &str = "sk_test_heliograph_localstripe";

    /// Starts localstripe and waits until it answers HTTP.
    ///
    /// # Panics
    /// If localstripe cannot be found or does not start.
    #[must_use]
    pub fn start() -> Self {
        let binary = localstripe_binary();
        let dir = std::env::temp_dir().join(format!("hg-localstripe-{}", Uuid::new_v4().simple()));
        fs::create_dir_all(&dir).expect("a temporary folder");
        // A free port may be taken between looking and binding: try a few.
        for _ in 0..10 {
            let addr = free_loopback_port();
            if let Some(child) = run_localstripe(&binary, &dir, addr) {
                return Self { addr, dir, child };
            }
        }
        panic!(
            "localstripe ({}) did not start; see the logs in {}",
            binary.display(),
            dir.display()
        );
    }

    /// `http://127.0.0.1:PORT/`: its API base (`…/v1/customers`).
    #[must_use]
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// Where it answers.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for LocalStripe {
    fn drop(&mut self) {
        drop(self.child.kill());
        drop(self.child.wait());
        drop(fs::remove_dir_all(&self.dir));
    }
}

const INSTALL_HINT: &str = "run `deploy/dev test`, which installs it (pinned in \
     deploy/localstripe/requirements.txt) into .local/localstripe and sets LOCALSTRIPE_BIN, or \
     set LOCALSTRIPE_BIN to a localstripe 1.15.10 executable";

fn localstripe_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("LOCALSTRIPE_BIN") {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "LOCALSTRIPE_BIN names {}, which is not a file: {INSTALL_HINT}",
            path.display()
        );
        return path;
    }
    let in_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("localstripe"))
            .find(|candidate| candidate.is_file())
    });
    if let Some(path) = in_path {
        return path;
    }
    let installed =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.local/localstripe/bin/localstripe");
    assert!(installed.is_file(), "localstripe not found: {INSTALL_HINT}");
    installed
}

fn free_loopback_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
}

/// Starts localstripe on `addr`'s port; `None` when it exits first (the port
/// was taken) or does not answer in time.
fn run_localstripe(binary: &Path, dir: &Path, addr: SocketAddr) -> Option<Child> {
    let port = addr.port();
    let log_path = dir.join(format!("localstripe-{port}.log"));
    let log = fs::File::create(&log_path).expect("a log file");
    let mut child = Command::new(binary)
        .arg("--port")
        .arg(port.to_string())
        .arg("--from-scratch")
        // Its "Running on" line must reach the log file as it is printed.
        .env("PYTHONUNBUFFERED", "1")
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("the log file, twice"))
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("{} does not run: {e}", binary.display()));
    // aiohttp prints this once our child has bound the port itself (on
    // `[::]`, which no other listener on 127.0.0.1 could share): whatever
    // answers after it is ours.
    let running = format!("Running on http://[::]:{port} ");
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if child.try_wait().ok().flatten().is_some() {
            return None;
        }
        let bound = fs::read_to_string(&log_path).is_ok_and(|log| log.contains(&running));
        if bound && answers_http(addr) {
            return Some(child);
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    drop(child.kill());
    drop(child.wait());
    None
}

/// Whether `addr` answers an unauthenticated request as localstripe does (401).
fn answers_http(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
        return false;
    };
    drop(stream.set_read_timeout(Some(Duration::from_secs(2))));
    if stream
        .write_all(b"GET /v1/customers HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut answer = String::new();
    drop(stream.read_to_string(&mut answer));
    answer.starts_with("HTTP/1.") && answer.contains(" 401 ")
}

/// A **stand-in** for the parts of Stripe's API that localstripe lacks, in
/// front of a [`LocalStripe`], on `127.0.0.1`: the single API base the
/// billing client is given ([`StripeStandIn::api_base`]).
///
/// It serves itself `POST /v1/checkout/sessions`,
/// `GET /v1/checkout/sessions/{id}`, `POST /v1/billing_portal/sessions`, and
/// the pages their `url`s lead to (`GET /checkout/{id}`, `GET /portal/{id}`).
/// Every other `/v1/…` request is forwarded to localstripe (method, path,
/// query, body, `Authorization`, `Content-Type`) and its answer passed back,
/// with every subscription in it shaped as Stripe sends one: the status a
/// test set ([`StripeStandIn::set_subscription_status`]; a `DELETE` of the
/// subscription clears it), a `price` beside each item's `plan`, and the
/// fields typed clients require. Lists of subscriptions are filtered by
/// status (and `price`) after that, so they agree with the statuses set.
/// A subscription's `items[N][price]` reaches localstripe as
/// `items[N][plan]`.
///
/// `POST`s with an `Idempotency-Key` are answered once and replayed after
/// (`Idempotent-Replayed: true`); the same key with another path or body is
/// Stripe's 400 `idempotency_error`. Requests without a secret key (`sk_…`)
/// are 401.
///
/// Events go to the webhook endpoint signed as Stripe signs them
/// (`Stripe-Signature: t=…,v1=…`): those the stand-in makes
/// (`checkout.session.completed`, `customer.subscription.updated`, any
/// [`StripeStandIn::send_event`]) and localstripe's own, which it relays,
/// shaped and signed the same way. Dropping it stops it.
#[derive(Debug)]
pub struct StripeStandIn {
    shared: Arc<Shared>,
    server: Running,
}

#[derive(Debug)]
struct Shared {
    /// `http://127.0.0.1:PORT/`, its own.
    base: String,
    /// localstripe's `http://127.0.0.1:PORT/`.
    localstripe: String,
    /// Where events go (settable after start: the endpoint's server may
    /// need the stand-in's address before it can start).
    webhook_url: Mutex<String>,
    webhook_secret: String,
    http: reqwest::Client,
    state: Mutex<State>,
    requests: Log<(String, String)>,
    sent: Log<String>,
}

#[derive(Debug, Default)]
struct State {
    /// In order of creation.
    checkout: Vec<CheckoutSession>,
    portal: Vec<Value>,
    /// Subscription id → the status a test set.
    statuses: HashMap<String, String>,
    idempotency: HashMap<String, Stored>,
    /// The last `Stripe-Version` a client sent: events are rendered in it.
    api_version: Option<String>,
}

#[derive(Debug, Clone)]
struct CheckoutSession {
    /// As Stripe shows it.
    object: Value,
    /// The create request's parameters, parsed.
    params: Value,
    /// The price of each line item, as Stripe shows it.
    prices: Vec<Value>,
}

/// An answer kept for an idempotency key.
#[derive(Debug, Clone)]
struct Stored {
    path: String,
    request: Vec<u8>,
    answer: Answer,
}

#[derive(Debug, Clone)]
struct Answer {
    status: u16,
    content_type: String,
    body: Vec<u8>,
    /// Kept for an idempotency key and sent again.
    replayed: bool,
}

impl Answer {
    fn json(status: u16, value: &Value) -> Self {
        Self {
            status,
            content_type: "application/json".to_owned(),
            body: value.to_string().into_bytes(),
            replayed: false,
        }
    }

    fn into_response(self) -> HttpResponse {
        let mut response = HttpResponse::build(
            StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_GATEWAY),
        );
        if self.replayed {
            response.insert_header(("idempotent-replayed", "true"));
        }
        response.content_type(self.content_type).body(self.body)
    }
}

impl StripeStandIn {
    /// The API version events carry until a client sends `Stripe-Version`
    /// (async-stripe 1.0.0-rc.10's).
    pub const DEFAULT_API_VERSION: &str = "2026-09-30.endive";

    /// Starts the stand-in in front of `localstripe`, sending events to
    /// `webhook_url` signed with `webhook_secret` (`whsec_…`), and has
    /// localstripe send its own events through it.
    ///
    /// Must be called within a tokio runtime, which drives the server's
    /// control task.
    ///
    /// # Panics
    /// When no loopback port can be bound or localstripe refuses the webhook.
    pub async fn start(localstripe: &LocalStripe, webhook_url: &str, webhook_secret: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
        let addr = listener.local_addr().expect("its address");
        let shared = Arc::new(Shared {
            base: format!("http://{addr}/"),
            localstripe: localstripe.url(),
            webhook_url: Mutex::new(webhook_url.to_owned()),
            webhook_secret: webhook_secret.to_owned(),
            http: http_client(),
            state: Mutex::default(),
            requests: Log::default(),
            sent: Log::default(),
        });
        let data = web::Data::from(Arc::clone(&shared));
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .default_service(web::to(dispatch))
        })
        .workers(2)
        .disable_signals()
        .shutdown_timeout(0)
        .listen(listener)
        .expect("the stand-in listens");
        let server = Running::new(&server.addrs(), server.run()).expect("the stand-in runs");
        let stand_in = Self { shared, server };
        let registration = [
            ("url", format!("http://{addr}{RELAY_PATH}")),
            // localstripe signs with it; the stand-in re-signs with the real one.
            ("secret", format!("whsec_{}", Uuid::new_v4().simple())),
        ];
        let id = format!("stand-in-{}", Uuid::new_v4().simple());
        let (status, body) = stand_in
            .localstripe("POST", &format!("_config/webhooks/{id}"), &registration)
            .await;
        assert_eq!(status, 200, "localstripe refused the webhook: {body}");
        stand_in
    }

    /// Sends events to `url` from now on (for an endpoint that could only
    /// start once it knew [`Self::api_base`]).
    pub async fn set_webhook_url(&self, url: &str) {
        *lock(&self.shared.webhook_url) = url.to_owned();
    }

    /// `http://127.0.0.1:PORT/`: the API base to give the Stripe client.
    #[must_use]
    pub fn api_base(&self) -> String {
        self.shared.base.clone()
    }

    /// The address the stand-in listens on.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// Creates in localstripe a product and a plan whose id is `price_id`,
    /// in US dollars, billed every `interval` (`month`, `year`).
    ///
    /// # Panics
    /// If localstripe refuses them (an id already taken, an unknown interval).
    pub async fn create_price(&self, price_id: &str, interval: &str, amount_cents: u32) {
        let (status, product) = self
            .localstripe("POST", "v1/products", &[("name", price_id.to_owned())])
            .await;
        assert_eq!(status, 200, "localstripe refused the product: {product}");
        let plan = [
            ("id", price_id.to_owned()),
            ("product", str_at(&product, "/id").to_owned()),
            ("amount", amount_cents.to_string()),
            ("currency", "usd".to_owned()),
            ("interval", interval.to_owned()),
        ];
        let (status, plan) = self.localstripe("POST", "v1/plans", &plan).await;
        assert_eq!(status, 200, "localstripe refused the plan: {plan}");
    }

    /// Every Checkout Session created, in order, as Stripe shows it with
    /// `expand[]=line_items`.
    #[must_use]
    pub fn checkout_sessions(&self) -> Vec<Value> {
        lock(&self.shared.state)
            .checkout
            .iter()
            .map(|session| session.render(true))
            .collect()
    }

    /// Every Customer Portal session created, in order.
    #[must_use]
    pub fn portal_sessions(&self) -> Vec<Value> {
        lock(&self.shared.state).portal.clone()
    }

    /// Every request the stand-in received, in order, as (method, path
    /// without the query), except localstripe's event deliveries.
    #[must_use]
    pub fn requests(&self) -> Vec<(String, String)> {
        self.shared.requests.snapshot()
    }

    /// What Stripe does when the customer pays on the Checkout page: gives
    /// the session's customer a good card, creates in localstripe the
    /// subscription to the session's price (with its quantity and the
    /// session's `subscription_data[metadata]`), marks the session
    /// `complete` and `paid` with the subscription, and sends
    /// `checkout.session.completed`. localstripe sends its own events
    /// (`customer.subscription.created`, `invoice.payment_succeeded`…) about
    /// a second later. Answers the subscription's id.
    ///
    /// # Panics
    /// If the session is unknown, not open or not in `subscription` mode, or
    /// localstripe refuses the card or the subscription.
    pub async fn complete_checkout(&self, session_id: &str) -> String {
        let (customer, params) = {
            let state = lock(&self.shared.state);
            let session = state
                .checkout
                .iter()
                .find(|s| s.object["id"] == session_id)
                .unwrap_or_else(|| panic!("no Checkout Session {session_id}"));
            assert_eq!(
                session.object["status"], "open",
                "Checkout Session {session_id} is not open"
            );
            assert_eq!(
                session.object["mode"], "subscription",
                "only a subscription's Checkout Session can be completed here"
            );
            (
                str_at(&session.object, "/customer").to_owned(),
                session.params.clone(),
            )
        };
        let card = [
            ("source[object]", "card".to_owned()),
            ("source[number]", GOOD_CARD.to_owned()),
            ("source[exp_month]", "12".to_owned()),
            ("source[exp_year]", "2040".to_owned()),
            ("source[cvc]", "123".to_owned()),
        ];
        let (status, body) = self
            .localstripe("POST", &format!("v1/customers/{customer}/sources"), &card)
            .await;
        assert_eq!(status, 200, "localstripe refused the card: {body}");
        let mut subscription = vec![
            ("customer".to_owned(), customer),
            (
                "items[0][plan]".to_owned(),
                str_at(&params, "/line_items/0/price").to_owned(),
            ),
            (
                "items[0][quantity]".to_owned(),
                str_at(&params, "/line_items/0/quantity").to_owned(),
            ),
        ];
        if let Some(metadata) = params
            .pointer("/subscription_data/metadata")
            .and_then(Value::as_object)
        {
            for (key, value) in metadata {
                subscription.push((format!("metadata[{key}]"), as_text(value)));
            }
        }
        if let Some(days) = params.pointer("/subscription_data/trial_period_days") {
            subscription.push(("trial_period_days".to_owned(), as_text(days)));
        }
        let (status, created) = self
            .localstripe("POST", "v1/subscriptions", &subscription)
            .await;
        assert_eq!(
            status, 200,
            "localstripe refused the subscription: {created}"
        );
        let subscription_id = str_at(&created, "/id").to_owned();
        let session = {
            let mut state = lock(&self.shared.state);
            let session = state
                .checkout
                .iter_mut()
                .find(|s| s.object["id"] == session_id)
                .expect("the session is still there");
            let object = &mut session.object;
            object["status"] = json!("complete");
            object["payment_status"] = json!("paid");
            object["subscription"] = json!(subscription_id);
            object["url"] = Value::Null;
            session.render(false)
        };
        self.shared
            .send_event("checkout.session.completed", session, None)
            .await;
        subscription_id
    }

    /// Sets the status `subscription_id` reads with from now on (`past_due`,
    /// `unpaid`, `active`…), whatever localstripe holds, until it is set
    /// again or the subscription is deleted. With `notify`, sends
    /// `customer.subscription.updated` (the subscription as it now reads,
    /// `previous_attributes` the old status) and answers the endpoint's
    /// status (0 when it could not be reached); without, sends nothing (a
    /// missed webhook) and answers `None`.
    ///
    /// # Panics
    /// If localstripe does not know the subscription.
    pub async fn set_subscription_status(
        &self,
        subscription_id: &str,
        status: &str,
        notify: bool,
    ) -> Option<u16> {
        let before = self.subscription(subscription_id).await;
        lock(&self.shared.state)
            .statuses
            .insert(subscription_id.to_owned(), status.to_owned());
        if !notify {
            return None;
        }
        let after = self.subscription(subscription_id).await;
        let previous = json!({ "status": before["status"] });
        Some(
            self.shared
                .send_event("customer.subscription.updated", after, Some(previous))
                .await,
        )
    }

    /// Moves `subscription_id`'s item to `price_id` in localstripe (same
    /// quantity), as a plan change in the Customer Portal does. With
    /// `notify`, sends `customer.subscription.updated` (`previous_attributes`
    /// the old `items` and `plan`) and answers the endpoint's status (0 when
    /// it could not be reached); without, sends nothing and answers `None`.
    /// localstripe bills a change of interval at once (its `invoice.*`
    /// events follow).
    ///
    /// # Panics
    /// If localstripe does not know the subscription or the price.
    pub async fn change_subscription_price(
        &self,
        subscription_id: &str,
        price_id: &str,
        notify: bool,
    ) -> Option<u16> {
        let before = self.subscription(subscription_id).await;
        let item = [
            (
                "items[0][id]",
                str_at(&before, "/items/data/0/id").to_owned(),
            ),
            ("items[0][plan]", price_id.to_owned()),
            (
                "items[0][quantity]",
                as_text(&before["items"]["data"][0]["quantity"]),
            ),
        ];
        let (status, body) = self
            .localstripe(
                "POST",
                &format!("v1/subscriptions/{subscription_id}"),
                &item,
            )
            .await;
        assert_eq!(status, 200, "localstripe refused the price change: {body}");
        if !notify {
            return None;
        }
        let after = self.subscription(subscription_id).await;
        let previous = json!({ "items": before["items"], "plan": before["plan"] });
        Some(
            self.shared
                .send_event("customer.subscription.updated", after, Some(previous))
                .await,
        )
    }

    /// Signs and sends an event of `event_type` about `object` (a fresh
    /// `evt_` id), answering the endpoint's status (0 when it could not be
    /// reached).
    pub async fn send_event(&self, event_type: &str, object: Value) -> u16 {
        self.shared.send_event(event_type, object, None).await
    }

    /// Sends `event_body` again, with a fresh valid signature (a replay),
    /// answering the endpoint's status (0 when it could not be reached).
    pub async fn resend(&self, event_body: &str) -> u16 {
        self.shared.deliver(event_body.to_owned()).await
    }

    /// Every event body sent to the endpoint, in order: the stand-in's own,
    /// localstripe's relayed ones, and replays.
    #[must_use]
    pub fn sent_events(&self) -> Vec<String> {
        self.shared.sent.snapshot()
    }

    /// `t=<timestamp>,v1=<hex HMAC-SHA256 of "<timestamp>.<body>">` with the
    /// endpoint's secret, as Stripe signs: for forging stale signatures.
    #[must_use]
    pub fn signature_header(&self, body: &str, timestamp: i64) -> String {
        signature(&self.shared.webhook_secret, body, timestamp)
    }

    /// Stops accepting, closes the connections, and waits for the server to end.
    pub async fn stop(&self) {
        self.server.stop().await;
    }

    /// The subscription as the API answers it now.
    async fn subscription(&self, id: &str) -> Value {
        let (status, mut subscription) = self
            .localstripe::<&str>("GET", &format!("v1/subscriptions/{id}"), &[])
            .await;
        assert_eq!(
            status, 200,
            "localstripe has no subscription {id}: {subscription}"
        );
        overlay(&mut subscription, &lock(&self.shared.state).statuses);
        subscription
    }

    async fn localstripe<K: AsRef<str>>(
        &self,
        method: &str,
        path: &str,
        form: &[(K, String)],
    ) -> (u16, Value) {
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_ref(), v.as_str())).collect();
        self.shared
            .localstripe(method, path, &form)
            .await
            .unwrap_or_else(|e| panic!("localstripe does not answer: {e}"))
    }
}

impl CheckoutSession {
    fn render(&self, line_items: bool) -> Value {
        let mut object = self.object.clone();
        if line_items {
            let id = str_at(&object, "/id").to_owned();
            let quantities = self.params["line_items"].as_array();
            let data: Vec<Value> = self
                .prices
                .iter()
                .enumerate()
                .map(|(i, price)| {
                    let quantity = quantities
                        .and_then(|items| items.get(i))
                        .and_then(|item| item["quantity"].as_str())
                        .and_then(|q| q.parse::<i64>().ok())
                        .unwrap_or(1);
                    let amount = price["unit_amount"].as_i64().unwrap_or(0) * quantity;
                    json!({
                        "id": format!("li_{}_{i}", id.trim_start_matches("cs_test_")),
                        "object": "item",
                        "amount_discount": 0,
                        "amount_subtotal": amount,
                        "amount_tax": 0,
                        "amount_total": amount,
                        "currency": price["currency"],
                        "description": price["nickname"],
                        "price": price,
                        "quantity": quantity,
                    })
                })
                .collect();
            object["line_items"] = json!({
                "object": "list",
                "data": data,
                "has_more": false,
                "url": format!("/v1/checkout/sessions/{id}/line_items"),
            });
        }
        object
    }
}

impl Shared {
    /// Calls localstripe with [`LocalStripe::SECRET_KEY`]; answers the status
    /// and the body (JSON, or the text as a JSON string).
    async fn localstripe(
        &self,
        method: &str,
        path: &str,
        form: &[(&str, &str)],
    ) -> Result<(u16, Value), reqwest::Error> {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("an HTTP method");
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.localstripe))
            .bearer_auth(LocalStripe::SECRET_KEY);
        if !form.is_empty() {
            request = request.form(form);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let body = response.bytes().await?;
        let value = serde_json::from_slice(&body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
        Ok((status, value))
    }

    fn api_version(&self) -> String {
        lock(&self.state)
            .api_version
            .clone()
            .unwrap_or_else(|| StripeStandIn::DEFAULT_API_VERSION.to_owned())
    }

    async fn send_event(&self, event_type: &str, object: Value, previous: Option<Value>) -> u16 {
        let mut data = json!({ "object": object });
        if let Some(previous) = previous {
            data["previous_attributes"] = previous;
        }
        let event = json!({
            "id": format!("evt_{}", Uuid::new_v4().simple()),
            "object": "event",
            "api_version": self.api_version(),
            "created": unix_now(),
            "data": data,
            "livemode": false,
            "pending_webhooks": 1,
            "request": { "id": null, "idempotency_key": null },
            "type": event_type,
        });
        self.deliver(event.to_string()).await
    }

    /// Signs `body` now and posts it to the endpoint; answers its status, 0
    /// when it could not be reached.
    async fn deliver(&self, body: String) -> u16 {
        let signature = signature(&self.webhook_secret, &body, unix_now());
        // Recorded first: an endpoint that has it finds it here too.
        self.sent.push(body.clone());
        let url = lock(&self.webhook_url).clone();
        self.http
            .post(url)
            .header("content-type", "application/json; charset=utf-8")
            .header("stripe-signature", signature)
            .header(
                "user-agent",
                "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            )
            .body(body)
            .send()
            .await
            .map_or(0, |response| response.status().as_u16())
    }
}

fn http_client() -> reqwest::Client {
    // Plain HTTP on loopback only; reqwest is built with rustls and wants a
    // provider, given here rather than installed for the whole process.
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("ring supports the default TLS versions")
    .with_root_certificates(rustls::RootCertStore::empty())
    .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .no_proxy()
        // Handlers run on actix's worker runtimes and helpers on the test's:
        // a pooled connection would be driven by whichever made it.
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("an HTTP client")
}

fn signature(secret: &str, body: &str, timestamp: i64) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(format!("{timestamp}.{body}").as_bytes());
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The string at `pointer`, or `""`.
fn str_at<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// A form value as text: strings as they are, anything else as JSON.
fn as_text(value: &Value) -> String {
    value
        .as_str()
        .map_or_else(|| value.to_string(), str::to_owned)
}

fn header(req: &HttpRequest, name: &str) -> Option<String> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Parses a form (or query) as Stripe reads it: `a[b][0][c]=v` nests,
/// numeric keys make arrays. Empty is an empty object.
fn parse_form(bytes: &[u8]) -> Result<Value, Answer> {
    let value: Value = serde_qs::Config::new()
        .use_form_encoding(true)
        .deserialize_bytes(bytes)
        .map_err(|e| {
            stripe_error(
                400,
                "invalid_request_error",
                None,
                &format!("Invalid request parameters: {e}"),
                None,
            )
        })?;
    Ok(if value.is_null() { json!({}) } else { value })
}

fn stripe_error(
    status: u16,
    kind: &str,
    code: Option<&str>,
    message: &str,
    param: Option<&str>,
) -> Answer {
    let mut error = Map::new();
    error.insert("type".to_owned(), json!(kind));
    error.insert("message".to_owned(), json!(message));
    if let Some(code) = code {
        error.insert("code".to_owned(), json!(code));
    }
    if let Some(param) = param {
        error.insert("param".to_owned(), json!(param));
    }
    Answer::json(status, &json!({ "error": error }))
}

fn missing(param: &str) -> Answer {
    stripe_error(
        400,
        "invalid_request_error",
        Some("parameter_missing"),
        &format!("Missing required param: {param}."),
        Some(param),
    )
}

fn no_such(kind: &str, id: &str, param: &str, status: u16) -> Answer {
    stripe_error(
        status,
        "invalid_request_error",
        Some("resource_missing"),
        &format!("No such {kind}: '{id}'"),
        Some(param),
    )
}

fn unrecognized(method: &str, path: &str) -> Answer {
    stripe_error(
        404,
        "invalid_request_error",
        None,
        &format!("Unrecognized request URL ({method}: {path})."),
        None,
    )
}

/// Whether the request carries a secret key, as localstripe (and Stripe)
/// take it: `Bearer sk_…` or Basic with `sk_…` as the user.
fn authenticated(req: &HttpRequest) -> bool {
    let Some(value) = header(req, "authorization") else {
        return false;
    };
    let key = match value.split_once(' ') {
        Some(("Bearer", key)) => key.to_owned(),
        Some(("Basic", encoded)) => base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()
            .and_then(|d| String::from_utf8(d).ok())
            .and_then(|d| d.split(':').next().map(str::to_owned))
            .unwrap_or_default(),
        _ => String::new(),
    };
    key.starts_with("sk_") && key.len() > 5
}

async fn dispatch(req: HttpRequest, body: web::Bytes, shared: web::Data<Shared>) -> HttpResponse {
    let method = req.method().as_str().to_owned();
    let path = req.path().to_owned();
    if method == "POST" && path == RELAY_PATH {
        return relay(&shared, &body).await;
    }
    shared.requests.push((method.clone(), path.clone()));
    if let Some(version) = header(&req, "stripe-version") {
        lock(&shared.state).api_version = Some(version);
    }
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method.as_str(), segments.as_slice()) {
        ("GET", ["checkout", id]) => checkout_page(&shared, id),
        ("GET", ["portal", id]) => portal_page(&shared, id),
        (_, ["v1", ..]) => api(&req, &method, &path, &body, &shared)
            .await
            .into_response(),
        _ => unrecognized(&method, &path).into_response(),
    }
}

async fn api(req: &HttpRequest, method: &str, path: &str, body: &[u8], shared: &Shared) -> Answer {
    if !authenticated(req) {
        return stripe_error(
            401,
            "invalid_request_error",
            None,
            "You did not provide a valid API key. Provide your secret key in the Authorization \
             header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
            None,
        );
    }
    let key = header(req, "idempotency-key").filter(|_| method == "POST");
    if let Some(key) = &key {
        let stored = lock(&shared.state).idempotency.get(key).cloned();
        if let Some(stored) = stored {
            if stored.path != path || stored.request != body {
                return stripe_error(
                    400,
                    "idempotency_error",
                    None,
                    &format!(
                        "Keys for idempotent requests can only be used with the same parameters \
                         they were first used with. Try using a key other than '{key}' if you \
                         meant to execute a different request."
                    ),
                    None,
                );
            }
            return Answer {
                replayed: true,
                ..stored.answer
            };
        }
    }
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let answer = match (method, &segments[1..]) {
        ("POST", ["checkout", "sessions"]) => create_checkout(shared, body).await,
        ("GET", ["checkout", "sessions", id]) => get_checkout(shared, id, req.query_string()),
        ("POST", ["billing_portal", "sessions"]) => create_portal(shared, body).await,
        (_, ["checkout" | "billing_portal", ..]) => unrecognized(method, path),
        _ => forward(req, method, path, body, shared).await,
    };
    if let Some(key) = key
        && answer.status < 500
    {
        let stored = Stored {
            path: path.to_owned(),
            request: body.to_vec(),
            answer: answer.clone(),
        };
        lock(&shared.state).idempotency.insert(key, stored);
    }
    answer
}

async fn create_checkout(shared: &Shared, body: &[u8]) -> Answer {
    let params = match parse_form(body) {
        Ok(params) => params,
        Err(answer) => return answer,
    };
    let customer = str_at(&params, "/customer");
    if customer.is_empty() {
        return missing("customer");
    }
    let mode = str_at(&params, "/mode");
    if mode.is_empty() {
        return missing("mode");
    }
    if !matches!(mode, "payment" | "setup" | "subscription") {
        return stripe_error(
            400,
            "invalid_request_error",
            Some("parameter_invalid_string"),
            "Invalid mode: must be one of payment, setup, or subscription",
            Some("mode"),
        );
    }
    match fetch(shared, &format!("v1/customers/{customer}")).await {
        Ok(Some(_)) => {}
        Ok(None) => return no_such("customer", customer, "customer", 400),
        Err(answer) => return answer,
    }
    let mut prices = Vec::new();
    if mode != "setup" {
        if str_at(&params, "/line_items/0/price").is_empty() {
            return missing("line_items[0][price]");
        }
        let items = params["line_items"].as_array().cloned().unwrap_or_default();
        for (i, item) in items.iter().enumerate() {
            let price = str_at(item, "/price");
            if price.is_empty() {
                return missing(&format!("line_items[{i}][price]"));
            }
            if str_at(item, "/quantity").is_empty() {
                return missing(&format!("line_items[{i}][quantity]"));
            }
            let plan = match fetch(shared, &format!("v1/plans/{price}")).await {
                Ok(Some(plan)) => plan,
                Ok(None) => {
                    return no_such("price", price, &format!("line_items[{i}][price]"), 400);
                }
                Err(answer) => return answer,
            };
            prices.push(price_from_plan(&plan));
        }
    }
    let id = format!("cs_test_{}", Uuid::new_v4().simple());
    let created = unix_now();
    let object = json!({
        "id": id,
        "object": "checkout.session",
        "automatic_tax": { "enabled": false, "liability": null, "provider": null, "status": null },
        "cancel_url": params.get("cancel_url"),
        "client_reference_id": params.get("client_reference_id"),
        "created": created,
        "currency": null,
        "custom_fields": [],
        "custom_text": {
            "after_submit": null,
            "shipping_address": null,
            "submit": null,
            "terms_of_service_acceptance": null,
        },
        "customer": customer,
        "customer_email": null,
        "expires_at": created + 24 * 3600,
        "invoice": null,
        "livemode": false,
        "locale": params.get("locale"),
        "metadata": params.get("metadata").cloned().unwrap_or_else(|| json!({})),
        "mode": mode,
        "payment_intent": null,
        "payment_method_types": ["card"],
        "payment_status": "unpaid",
        "setup_intent": null,
        "shipping_options": [],
        "status": "open",
        "subscription": null,
        "success_url": params.get("success_url"),
        "ui_mode": "hosted",
        "url": format!("{}checkout/{id}", shared.base),
    });
    let session = CheckoutSession {
        object,
        params,
        prices,
    };
    let answer = session.render(expands_line_items(&session.params));
    lock(&shared.state).checkout.push(session);
    Answer::json(200, &answer)
}

fn expands_line_items(params: &Value) -> bool {
    params["expand"]
        .as_array()
        .is_some_and(|paths| paths.iter().any(|p| p == "line_items"))
}

fn get_checkout(shared: &Shared, id: &str, query: &str) -> Answer {
    let expand = parse_form(query.as_bytes()).is_ok_and(|q| expands_line_items(&q));
    lock(&shared.state)
        .checkout
        .iter()
        .find(|s| s.object["id"] == id)
        .map_or_else(
            || no_such("checkout.session", id, "session", 404),
            |session| Answer::json(200, &session.render(expand)),
        )
}

async fn create_portal(shared: &Shared, body: &[u8]) -> Answer {
    let params = match parse_form(body) {
        Ok(params) => params,
        Err(answer) => return answer,
    };
    let customer = str_at(&params, "/customer");
    if customer.is_empty() {
        return missing("customer");
    }
    match fetch(shared, &format!("v1/customers/{customer}")).await {
        Ok(Some(_)) => {}
        Ok(None) => return no_such("customer", customer, "customer", 400),
        Err(answer) => return answer,
    }
    let id = format!("bps_{}", Uuid::new_v4().simple());
    let session = json!({
        "id": id,
        "object": "billing_portal.session",
        "configuration": "bpc_stand_in",
        "created": unix_now(),
        "customer": customer,
        "flow": null,
        "livemode": false,
        "locale": params.get("locale"),
        "on_behalf_of": null,
        "return_url": params.get("return_url"),
        "url": format!("{}portal/{id}", shared.base),
    });
    lock(&shared.state).portal.push(session.clone());
    Answer::json(200, &session)
}

/// What localstripe answers to `GET path`, if that is 200; Stripe's
/// `api_error` when it does not answer.
async fn fetch(shared: &Shared, path: &str) -> Result<Option<Value>, Answer> {
    match shared.localstripe("GET", path, &[]).await {
        Ok((status, value)) => Ok((status == 200).then_some(value)),
        Err(e) => Err(localstripe_down(&e)),
    }
}

fn localstripe_down(error: &reqwest::Error) -> Answer {
    stripe_error(
        502,
        "api_error",
        None,
        &format!("localstripe does not answer: {error}"),
        None,
    )
}

fn page(title: &str, paragraphs: &[String]) -> HttpResponse {
    let body: String = paragraphs.iter().map(|p| format!("<p>{p}</p>")).collect();
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title} \
             (Stripe stand-in)</title></head><body><main><h1>{title} (Stripe stand-in)</h1>\
             {body}</main></body></html>"
        ))
}

fn not_found_page() -> HttpResponse {
    HttpResponse::NotFound()
        .content_type("text/html; charset=utf-8")
        .body("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Not found</title></head><body><main><h1>Not found</h1></main></body></html>")
}

fn link(href: &Value, text: &str) -> String {
    href.as_str().map_or_else(String::new, |href| {
        format!("<a href=\"{}\">{text}</a>", escape(href))
    })
}

fn checkout_page(shared: &Shared, id: &str) -> HttpResponse {
    let state = lock(&shared.state);
    let Some(session) = state.checkout.iter().find(|s| s.object["id"] == id) else {
        return not_found_page();
    };
    let object = &session.object;
    // Stripe puts the session's id where the success URL asks for it.
    let success = object["success_url"]
        .as_str()
        .map(|url| json!(url.replace("{CHECKOUT_SESSION_ID}", id)))
        .unwrap_or_default();
    page(
        "Checkout",
        &[
            format!(
                "Session <code>{}</code> for customer <code>{}</code>: {}.",
                escape(id),
                escape(str_at(object, "/customer")),
                escape(str_at(object, "/status"))
            ),
            link(&success, "Continue"),
            link(&object["cancel_url"], "Cancel"),
        ],
    )
}

fn portal_page(shared: &Shared, id: &str) -> HttpResponse {
    let state = lock(&shared.state);
    let Some(session) = state.portal.iter().find(|s| s["id"] == id) else {
        return not_found_page();
    };
    page(
        "Customer portal",
        &[
            format!(
                "Session <code>{}</code> for customer <code>{}</code>.",
                escape(id),
                escape(str_at(session, "/customer"))
            ),
            link(&session["return_url"], "Return"),
        ],
    )
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// Passes a request to localstripe and its answer back, shaped.
async fn forward(
    req: &HttpRequest,
    method: &str,
    path: &str,
    body: &[u8],
    shared: &Shared,
) -> Answer {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let list = method == "GET" && segments == ["v1", "subscriptions"];
    let mut query: Vec<(String, String)> =
        url::form_urlencoded::parse(req.query_string().as_bytes())
            .into_owned()
            .collect();
    let mut filter = ListFilter::default();
    if list {
        // localstripe filters by the statuses it holds and knows no `price`:
        // ask for everything, and filter once the statuses are shaped.
        query.retain(|(name, value)| match name.as_str() {
            "status" => {
                filter.status = Some(value.clone());
                false
            }
            "price" => {
                filter.price = Some(value.clone());
                false
            }
            "limit" => {
                filter.limit = value.parse().ok();
                false
            }
            _ => true,
        });
        query.push(("status".to_owned(), "all".to_owned()));
        query.push(("limit".to_owned(), "1000".to_owned()));
    }
    let mut url = format!("{}{}", shared.localstripe, path.trim_start_matches('/'));
    if !query.is_empty() {
        url.push('?');
        url.push_str(
            &url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(&query)
                .finish(),
        );
    }
    let mut request = shared.http.request(
        reqwest::Method::from_bytes(method.as_bytes()).unwrap_or(reqwest::Method::GET),
        url,
    );
    for name in ["authorization", "content-type"] {
        if let Some(value) = header(req, name) {
            request = request.header(name, value);
        }
    }
    let form = header(req, "content-type")
        .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
    let body = if method == "POST" && form && segments.get(1) == Some(&"subscriptions") {
        prices_as_plans(body)
    } else {
        body.to_vec()
    };
    let response = match request.body(body).send().await {
        Ok(response) => response,
        Err(e) => return localstripe_down(&e),
    };
    let status = response.status().as_u16();
    let bytes = response.bytes().await.unwrap_or_default();
    let Ok(mut value) = serde_json::from_slice::<Value>(&bytes) else {
        // aiohttp's own plain-text answers: unknown routes, and the 500s of
        // parameters localstripe does not take.
        let text = String::from_utf8_lossy(&bytes);
        return match status {
            404 | 405 => unrecognized(method, path),
            _ => stripe_error(
                status,
                "api_error",
                None,
                &format!("localstripe answered {status}: {}", text.trim()),
                None,
            ),
        };
    };
    let mut state = lock(&shared.state);
    if method == "DELETE"
        && matches!(segments.as_slice(), ["v1", "subscriptions", _])
        && (200..300).contains(&status)
    {
        state.statuses.remove(segments[2]);
    }
    overlay(&mut value, &state.statuses);
    drop(state);
    if list && status == 200 {
        filter.apply(&mut value);
    }
    Answer::json(status, &value)
}

/// A subscription's form with each `items[N][price]` as `items[N][plan]`:
/// localstripe refuses a new subscription's items without a plan, and
/// ignores the price in an update's.
fn prices_as_plans(body: &[u8]) -> Vec<u8> {
    let pairs = url::form_urlencoded::parse(body).map(|(name, value)| {
        let name = match name.strip_prefix("items[") {
            Some(rest) if rest.ends_with("][price]") => {
                format!("items[{}][plan]", rest.trim_end_matches("][price]"))
            }
            _ => name.into_owned(),
        };
        (name, value.into_owned())
    });
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
        .into_bytes()
}

#[derive(Debug, Default)]
struct ListFilter {
    status: Option<String>,
    price: Option<String>,
    limit: Option<usize>,
}

impl ListFilter {
    /// Filters a list of subscriptions as Stripe does: no status means all
    /// but `canceled` and `incomplete_expired`; `all` means all.
    fn apply(&self, list: &mut Value) {
        let Some(data) = list.get_mut("data").and_then(Value::as_array_mut) else {
            return;
        };
        data.retain(|subscription| {
            let status = str_at(subscription, "/status");
            let status_matches = match self.status.as_deref() {
                None => !matches!(status, "canceled" | "incomplete_expired"),
                Some("all") => true,
                Some(wanted) => status == wanted,
            };
            let price_matches = self.price.as_deref().is_none_or(|price| {
                subscription["items"]["data"]
                    .as_array()
                    .is_some_and(|items| items.iter().any(|i| i["price"]["id"] == price))
            });
            status_matches && price_matches
        });
        let limit = self.limit.unwrap_or(10);
        let has_more = data.len() > limit;
        data.truncate(limit);
        list["has_more"] = json!(has_more);
        if list.get("total_count").is_some() {
            list["total_count"] = json!(list["data"].as_array().map_or(0, Vec::len));
        }
    }
}

/// Relays one of localstripe's events to the endpoint, shaped as the API
/// answers and signed with the endpoint's secret.
async fn relay(shared: &Shared, body: &[u8]) -> HttpResponse {
    let Ok(mut event) = serde_json::from_slice::<Value>(body) else {
        return HttpResponse::BadRequest().finish();
    };
    overlay(&mut event, &lock(&shared.state).statuses);
    if let Some(event) = event.as_object_mut() {
        event.insert("api_version".to_owned(), json!(shared.api_version()));
        event.entry("pending_webhooks").or_insert_with(|| json!(1));
        event
            .entry("request")
            .or_insert_with(|| json!({ "id": null, "idempotency_key": null }));
    }
    let status = shared.deliver(event.to_string()).await;
    HttpResponse::build(StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY)).finish()
}

/// Shapes every subscription in `value` (answers, lists, expansions,
/// events) as Stripe sends one.
fn overlay(value: &mut Value, statuses: &HashMap<String, String>) {
    match value {
        Value::Object(map) => {
            if map.get("object").and_then(Value::as_str) == Some("subscription") {
                shape_subscription(map, statuses);
            }
            for child in map.values_mut() {
                overlay(child, statuses);
            }
        }
        Value::Array(items) => {
            for item in items {
                overlay(item, statuses);
            }
        }
        _ => {}
    }
}

fn shape_subscription(subscription: &mut Map<String, Value>, statuses: &HashMap<String, String>) {
    let id = subscription
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    if let Some(status) = statuses.get(&id) {
        subscription.insert("status".to_owned(), json!(status));
    }
    let first_item = subscription
        .get("items")
        .and_then(|items| items.pointer("/data/0"))
        .cloned()
        .unwrap_or(Value::Null);
    for period in ["current_period_start", "current_period_end"] {
        if subscription.get(period).is_none_or(Value::is_null)
            && let Some(at) = first_item.get(period)
        {
            subscription.insert(period.to_owned(), at.clone());
        }
    }
    let start = subscription
        .get("current_period_start")
        .or_else(|| subscription.get("start_date"))
        .cloned()
        .unwrap_or(Value::Null);
    let end = subscription
        .get("current_period_end")
        .cloned()
        .unwrap_or(Value::Null);
    if subscription
        .get("billing_cycle_anchor")
        .is_none_or(Value::is_null)
    {
        subscription.insert("billing_cycle_anchor".to_owned(), start.clone());
    }
    let currency = subscription
        .get("plan")
        .or_else(|| first_item.get("plan"))
        .and_then(|plan| plan.get("currency"))
        .cloned()
        .unwrap_or_else(|| json!("usd"));
    let defaults = [
        ("currency", currency),
        (
            "automatic_tax",
            json!({ "enabled": false, "disabled_reason": null, "liability": null }),
        ),
        ("billing_mode", json!({ "type": "classic" })),
        ("billing_schedules", json!([])),
        ("collection_method", json!("charge_automatically")),
        ("discounts", json!([])),
        (
            "invoice_settings",
            json!({ "account_tax_ids": null, "issuer": { "type": "self" } }),
        ),
    ];
    for (name, value) in defaults {
        subscription.entry(name).or_insert(value);
    }
    let Some(items) = subscription
        .get_mut("items")
        .and_then(|items| items.get_mut("data"))
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    for item in items.iter_mut().filter_map(Value::as_object_mut) {
        if !item.contains_key("price")
            && let Some(plan) = item.get("plan")
        {
            let price = price_from_plan(plan);
            item.insert("price".to_owned(), price);
        }
        item.entry("current_period_start")
            .or_insert_with(|| start.clone());
        item.entry("current_period_end")
            .or_insert_with(|| end.clone());
        item.entry("discounts").or_insert_with(|| json!([]));
        item.entry("subscription").or_insert_with(|| json!(id));
    }
}

/// The price Stripe shows for a plan (a plan is a recurring price).
fn price_from_plan(plan: &Value) -> Value {
    json!({
        "id": plan["id"],
        "object": "price",
        "active": plan.get("active").cloned().unwrap_or(json!(true)),
        "billing_scheme": plan.get("billing_scheme").cloned().unwrap_or(json!("per_unit")),
        "created": plan["created"],
        "currency": plan["currency"],
        "livemode": false,
        "lookup_key": null,
        "metadata": plan.get("metadata").cloned().unwrap_or_else(|| json!({})),
        "nickname": plan["nickname"],
        "product": plan["product"],
        "recurring": {
            "interval": plan["interval"],
            "interval_count": plan.get("interval_count").cloned().unwrap_or(json!(1)),
            "meter": null,
            "trial_period_days": plan["trial_period_days"],
            "usage_type": plan.get("usage_type").cloned().unwrap_or(json!("licensed")),
        },
        "tax_behavior": "unspecified",
        "tiers_mode": plan["tiers_mode"],
        "type": "recurring",
        "unit_amount": plan["amount"],
        "unit_amount_decimal": plan["amount"].as_i64().map(|a| a.to_string()),
    })
}
