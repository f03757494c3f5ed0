//! The world each test owns: a fresh database, its own Redis key prefix, the
//! API on a random port and the real worker, all on loopback; plus the shared
//! mail catcher (maildev), read through its HTTP API and filtered by the
//! test's own unique addresses.
//!
//! No test's assertions live here.

use std::net::SocketAddr;
use std::sync::Once;
use std::time::{Duration, Instant};

use heliograph_api::public_pages::MemoLimits;
use heliograph_api::{ApiConfig, Application};
use heliograph_domain::{CustomDomains, Hostname, PublicUrls};
use heliograph_jobs::Queues;
use heliograph_notify::{Mailer, RetryPolicy};
use heliograph_runtime::LogFormat;
use heliograph_store::{PoolSettings, Pooler, Store};
use heliograph_testkit::TestPostgres;
use heliograph_worker::{
    ChannelConfig, Channels, Context, DnsChecker, DomainChecks, EventCache, Inner, SmsConfig,
    SmsVelocity,
};
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The page host domain used in tests: pages live at `<slug>.heliograph.test`.
pub const BASE_DOMAIN: &str = "heliograph.test";

/// Where custom domains point their CNAME in tests (the default, `pages.<base domain>`).
pub const CNAME_TARGET: &str = "pages.heliograph.test";

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the tests with `deploy/dev test`, which starts PostgreSQL, Redis and maildev")
    })
}

fn install_crypto() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        drop(rustls::crypto::ring::default_provider().install_default());
    });
}

/// A running API and worker with a database of their own.
pub struct TestApp {
    pub address: String,
    /// The operators' listener, when the test asked for one (`ADMIN_ADDR`).
    pub admin_address: Option<String>,
    pub client: reqwest::Client,
    pub store: Store,
    /// The server's superuser on the test's database: sees every tenant's
    /// rows, for assertions.
    pub admin: sqlx::PgPool,
    pub queues: Queues,
    /// The worker's context, for driving its functions directly.
    pub ctx: Context,
    /// The API's settings, for starting more replicas of it.
    pub config: ApiConfig,
    /// The test's database, and its URLs as each role.
    pub db: TestDatabase,
    shutdown: CancellationToken,
    worker: Option<tokio::task::JoinHandle<()>>,
    /// The pooler in front of the database, when the test asked for one.
    _pgbouncer: Option<heliograph_testkit::ScratchPgBouncer>,
}

/// Where a [`TestApp`] finds PostgreSQL and Redis: the shared instances,
/// unless a test brings its own (to stop them).
#[derive(Default)]
pub struct Infra {
    /// A PostgreSQL server's superuser URL (it makes the roles and the database).
    pub postgres_admin_url: Option<String>,
    /// A Redis URL.
    pub redis_url: Option<String>,
    /// The name server domain checks ask (default: a closed loopback port).
    pub nameserver: Option<SocketAddr>,
    /// A Twilio-compatible SMS API (a stand-in); none: SMS is not configured.
    pub sms_url: Option<String>,
    /// An SMTP server (default: the shared maildev, `SMTP_URL`).
    pub smtp_url: Option<String>,
    /// Serve `/metrics` and `/internal/*` on a listener of their own
    /// (`ADMIN_ADDR`) rather than on the public one.
    pub admin_listener: bool,
    /// The bounds of the incident page memo (default: the settings' defaults).
    pub page_memo: Option<MemoLimits>,
    /// The platform's limits on confirmation codes (default: the worker's defaults).
    pub sms_velocity: Option<SmsVelocity>,
    /// How many custom domains a tenant may have pending (default: the
    /// production default, `PendingClaims::DEFAULT`).
    pub pending_domain_limit: Option<usize>,
    /// Plans (a plans file's text) with billing on; none: billing off.
    pub plans: Option<&'static str>,
    /// Stripe's API base with billing on (a stand-in's, in front of
    /// localstripe); none: a port nothing listens on.
    pub stripe_api: Option<String>,
    /// Put a PgBouncer in transaction-pooling mode (a few server
    /// connections) between the api and worker and PostgreSQL, both run
    /// with `DATABASE_POOLER=transaction`; the worker's `LISTEN` goes
    /// straight to PostgreSQL (`DATABASE_LISTEN_URL`).
    pub pgbouncer: bool,
}

/// The stand-in SMS API's credentials in tests.
/// The Stripe secret key the API is given in tests.
pub const STRIPE_SECRET_KEY: &str = "sk_test_heliograph";

/// The secret Stripe signs webhooks with in tests.
pub const STRIPE_WEBHOOK_SECRET: &str = "whsec_test_heliograph";

pub const SMS_SID: &str = "ACtest0000000000000000000000000000";
/// The stand-in SMS API's token in tests.
pub const SMS_TOKEN: &str = "stand-in-auth-token";
/// The number tests send texts from.
pub const SMS_FROM: &str = "+15005550006";

/// The channels of a test worker: webhooks may reach loopback (the tests'
/// receivers live there) and retries come within seconds.
/// Waits until `done` answers true, asking again every 20 ms; panics
/// naming `what` after two minutes (a deadline for a hung test, not a
/// measure of anything).
pub async fn wait_until(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !done().await {
        assert!(Instant::now() < deadline, "{what}: not within two minutes");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn test_channels(sms_url: Option<&str>) -> ChannelConfig {
    ChannelConfig {
        allow: heliograph_notify::AllowedTargets {
            loopback: true,
            private: false,
        },
        webhook_timeout: Duration::from_secs(5),
        // Retries come within seconds; a claim takes a delivery up to 2 s
        // early (see `claim_delivery`), so the first delay is 3 s.
        webhook_retry: RetryPolicy::parse("3s,3s,3s").expect("a schedule"),
        email_retry: RetryPolicy::email(),
        sms_retry: RetryPolicy::parse("1s,1s").expect("a schedule"),
        sms: sms_url.map(|url| SmsConfig {
            url: url.to_owned(),
            account_sid: SMS_SID.to_owned(),
            auth_token: SecretString::from(SMS_TOKEN.to_owned()),
            from: heliograph_domain::PhoneNumber::parse("from", SMS_FROM).expect("a number"),
        }),
        sms_monthly_budget: 5,
        sms_confirmation_monthly_budget: 50,
        sms_velocity: SmsVelocity::default(),
        webhook_docs_url: "http://heliograph.test/docs/webhooks".to_owned(),
    }
}

/// What signup answered.
pub struct Tenant {
    pub token: String,
    pub page_id: String,
    pub slug: String,
    pub tenant_id: String,
    pub email: String,
}

/// The link-signing key of the tests (API and worker share it).
pub const LINK_SECRET: &str = "test-link-secret-test-link-secret!";

/// The tests' older key for secrets at rest (see [`SECRETS_KEY`]).
pub const OLD_SECRETS_KEY: &str = "test1:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
/// The tests' current key for secrets at rest.
pub const NEW_SECRETS_KEY: &str = "test2:AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=";

/// The tests' `SECRETS_KEY` (API and worker share it): `test2` seals, and
/// `test1` still opens, as after a rotation.
pub fn secrets_key() -> String {
    format!("{NEW_SECRETS_KEY},{OLD_SECRETS_KEY}")
}

/// The tests' key ring.
pub fn secrets_keyring() -> std::sync::Arc<heliograph_auth::SecretsKeyring> {
    std::sync::Arc::new(
        heliograph_auth::SecretsKeyring::parse(&secrets_key()).expect("the tests' key ring parses"),
    )
}

/// The password every test owner signs up with.
pub const PASSWORD: &str = "correct horse battery";

/// A unique slug, so parallel tests never collide.
pub fn unique_slug(prefix: &str) -> String {
    format!("{prefix}-{}", &Uuid::new_v4().simple().to_string()[..12])
}

/// A client address of a test's own (documentation range, random /64).
pub fn unique_ip() -> String {
    let n = Uuid::new_v4().as_u128();
    // In the documentation range 3fff::/20 (RFC 9637), random down to the
    // /48 too, since IPv6 clients are limited per /48 as well as per /64.
    format!(
        "3fff:{:x}:{:x}:{:x}::1",
        (n >> 32) & 0xfff,
        (n >> 16) & 0xffff,
        n & 0xffff
    )
}

/// A unique address at a domain maildev accepts.
pub fn unique_email(prefix: &str) -> String {
    format!("{prefix}-{}@example.com", Uuid::new_v4().simple())
}

/// A fresh database of a test's own, migrated by its owner; dropped with
/// [`TestDatabase::drop_now`]. The api and worker connect as the serving
/// role ([`TestDatabase::url`]), as in production.
pub struct TestDatabase {
    /// Its URL, as the serving login role: a member of `heliograph_app`
    /// that owns nothing.
    pub url: String,
    /// Its URL, as the schema's owner.
    pub owner_url: String,
    /// Its URL, as the server's superuser: sees every tenant's rows.
    pub admin_url: String,
    db: TestPostgres,
}

impl TestDatabase {
    /// Creates `hg_test_<uuid>` on `TEST_DATABASE_URL`'s server and applies the migrations.
    pub async fn create() -> Self {
        let server_url = std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| env("DATABASE_URL"));
        Self::create_on(server_url).await
    }

    /// Creates `hg_test_<uuid>` on the server whose superuser `server_url`
    /// names and applies the migrations as the schema's owner.
    pub async fn create_on(server_url: String) -> Self {
        let db = TestPostgres::create(&server_url).await;
        Store::migrate(&db.owner_url())
            .await
            .expect("migrations apply as the schema's owner");
        Self {
            url: db.app_url(),
            owner_url: db.owner_url(),
            admin_url: db.admin_url(),
            db,
        }
    }

    /// Drops the database, closing whatever is connected to it.
    pub async fn drop_now(&self) {
        self.db.drop_now().await;
    }
}

impl TestApp {
    /// Starts the API and the worker on a fresh, migrated database. Custom
    /// domain checks ask a closed loopback port, so they fail fast (as
    /// `dns_error`) and never leave the machine; tests of domains use
    /// [`TestApp::spawn_with_dns`].
    pub async fn spawn() -> Self {
        Self::spawn_on(Infra::default()).await
    }

    /// Starts the API and the worker, the worker's domain checks asking the
    /// name server at `nameserver` (a [`DnsServer`]).
    pub async fn spawn_with_dns(nameserver: SocketAddr) -> Self {
        Self::spawn_on(Infra {
            nameserver: Some(nameserver),
            ..Infra::default()
        })
        .await
    }

    /// Starts the API and the worker on infrastructure of the test's choosing.
    pub async fn spawn_on(infra: Infra) -> Self {
        let nameserver = infra.nameserver.unwrap_or_else(|| {
            std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
        });
        install_crypto();
        // Logs are kept for the tests of what reaches them, and printed
        // only with TEST_LOG=1 (noise in a passing run).
        heliograph_testkit::captured_logs();
        let db = match infra.postgres_admin_url {
            Some(url) => TestDatabase::create_on(url).await,
            None => TestDatabase::create().await,
        };
        // Four server connections for the api's five and the worker's ten.
        let pgbouncer = infra
            .pgbouncer
            .then(|| heliograph_testkit::ScratchPgBouncer::start(&db.admin_url, 4));
        let (db_url, pooler) = match &pgbouncer {
            None => (db.url.clone(), Pooler::None),
            Some(bouncer) => (bouncer.url_for(&db.url), Pooler::Transaction),
        };
        let store = Store::connect_with(
            &db_url,
            PoolSettings {
                pooler,
                ..PoolSettings::new(10)
            },
        )
        .await
        .expect("connects to the test database as the serving role")
        .with_listen_url(pgbouncer.is_some().then_some(db.url.as_str()));
        // The superuser's view, for assertions across tenants (the serving
        // role sees one tenant at a time, and FORCE binds even the owner).
        let admin = sqlx::PgPool::connect(&db.admin_url)
            .await
            .expect("connects to the test database as the superuser");

        let redis_url = infra.redis_url.unwrap_or_else(|| env("REDIS_URL"));
        let namespace = format!("test-{}", Uuid::new_v4().simple());
        let urls =
            PublicUrls::new("http://heliograph.test", Some(BASE_DOMAIN)).expect("valid test URLs");
        let custom_domains = CustomDomains::new(
            &urls,
            Hostname::parse("cname_target", CNAME_TARGET).expect("a valid target"),
        );
        let config = ApiConfig {
            billing: match infra.plans {
                None => heliograph_billing::Billing::Off,
                Some(text) => heliograph_billing::Billing::On(std::sync::Arc::new(
                    heliograph_billing::BillingOn {
                        plans: heliograph_billing::Plans::parse(text).expect("the test's plans"),
                        grace: time::Duration::days(14),
                        stripe: heliograph_billing::stripe::StripeApi::new(
                            &SecretString::from(STRIPE_SECRET_KEY),
                            Some(infra.stripe_api.as_deref().unwrap_or("http://127.0.0.1:9/")),
                        )
                        .expect("a Stripe client"),
                        webhook_secrets: vec![SecretString::from(STRIPE_WEBHOOK_SECRET)],
                    },
                )),
            },
            domain_grace: time::Duration::days(3),
            domain_claims: heliograph_domain::PendingClaims {
                per_tenant: infra
                    .pending_domain_limit
                    .unwrap_or(heliograph_domain::PendingClaims::DEFAULT.per_tenant),
                ..heliograph_domain::PendingClaims::DEFAULT
            },
            custom_domains: custom_domains.clone(),
            database_url: SecretString::from(db_url.clone()),
            database_max_connections: 5,
            database_pooler: pooler,
            redis_url: SecretString::from(redis_url.clone()),
            bind_addr: "127.0.0.1:0".parse().expect("loopback address"),
            admin_addr: infra
                .admin_listener
                .then(|| "127.0.0.1:0".parse().expect("loopback address")),
            urls: urls.clone(),
            jwt_secret: SecretString::from("test-secret-test-secret-test-secret!".to_owned()),
            access_token_ttl_minutes: 15,
            session_ttl_hours: 24,
            trust_proxy_headers: true,
            link_secret: SecretString::from(LINK_SECRET.to_owned()),
            secrets: secrets_keyring(),
            log_format: LogFormat::Text,
            // Changes reach the pages by the Redis nudge; tests that need
            // the poll (or its absence) set their own interval.
            page_cache_poll: Duration::from_secs(3600),
            page_memo: infra.page_memo.unwrap_or(MemoLimits {
                per_page: 256,
                max_bytes: 64 << 20,
            }),
            page_serving: heliograph_api::PageServing::default(),
            page_changes_channel: heliograph_jobs::page_changes_channel(&namespace),
            timeouts: heliograph_api::Timeouts::default(),
        };
        let app = Application::build(&config).await.expect("the API starts");
        let config_kept = config.clone();
        let address = format!("http://127.0.0.1:{}", app.port());
        let admin_address = app
            .admin_port()
            .map(|port| format!("http://127.0.0.1:{port}"));
        tokio::spawn(app.run_until_stopped());

        let redis = redis::aio::ConnectionManager::new(
            redis::Client::open(redis_url).expect("REDIS_URL parses"),
        )
        .await
        .expect("Redis is reachable");
        let queues = Queues::new(redis, namespace);
        let mailer = Mailer::new(
            &infra.smtp_url.unwrap_or_else(|| env("SMTP_URL")),
            "Heliograph Test <notifications@heliograph.test>"
                .parse()
                .expect("valid sender"),
        )
        .expect("SMTP_URL parses");
        let ctx = Context::new(Inner {
            store: store.clone(),
            queues: queues.clone(),
            mailer,
            urls,
            email_retry: RetryPolicy::email(),
            links: heliograph_auth::LinkSigner::new(SecretString::from(LINK_SECRET.to_owned()))
                .expect("a long enough secret"),
            secrets: std::sync::Arc::clone(&config_kept.secrets),
            maintenance_reminder: Duration::from_secs(3600),
            channels: Channels::new(&ChannelConfig {
                sms_velocity: infra.sms_velocity.unwrap_or_default(),
                ..test_channels(infra.sms_url.as_deref())
            })
            .expect("the channel senders build"),
            events: EventCache::default(),
            billing: config_kept.billing.clone(),
            delivery_slots: heliograph_worker::DeliverySlots::for_pool(10),
            stopping: CancellationToken::new(),
            export: None,
            domains: DomainChecks {
                dns: DnsChecker::new(Some(nameserver), Duration::from_millis(500))
                    .expect("a resolver"),
                policy: custom_domains,
                recheck: Duration::from_secs(6 * 3600),
                grace: Duration::from_secs(3 * 86_400),
                pending_period: Duration::from_secs(7 * 86_400),
            },
        });
        let shutdown = CancellationToken::new();
        let worker = tokio::spawn(heliograph_worker::run(
            ctx.clone(),
            4,
            Duration::from_millis(200),
            // The janitor purges dead jobs, which the drain reads: in a test
            // it runs once, at start, so that no death goes unseen.
            Duration::from_secs(24 * 3600),
            shutdown.clone(),
        ));
        Self {
            address,
            admin_address,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                // Each test is its own client address (the API trusts the
                // header here), so rate limits never couple parallel tests.
                .default_headers(reqwest::header::HeaderMap::from_iter([(
                    reqwest::header::HeaderName::from_static("x-forwarded-for"),
                    reqwest::header::HeaderValue::from_str(&unique_ip())
                        .expect("an address is a header value"),
                )]))
                .build()
                .expect("an HTTP client"),
            store,
            admin,
            queues,
            ctx,
            config: config_kept,
            db,
            shutdown,
            worker: Some(worker),
            _pgbouncer: pgbouncer,
        }
    }

    /// Starts another API replica on the same database and Redis; answers its address.
    pub async fn replica(&self) -> String {
        let app = Application::build(&self.config)
            .await
            .expect("the replica starts");
        let address = format!("http://127.0.0.1:{}", app.port());
        tokio::spawn(app.run_until_stopped());
        address
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// POSTs JSON, with a bearer token when given; answers status and JSON body.
    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> (StatusCode, Value) {
        let mut request = self.client.post(self.url(path)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("the API answers");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Sends a request with a method, an optional token and an optional JSON body.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.expect("the API answers");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// GETs a public JSON document until `ready` holds for it (the pages
    /// catch up with a change within a second), and answers it.
    pub async fn public_json(
        &self,
        path: &str,
        host: Option<&str>,
        ready: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let response = self.get(path, host).await;
            let status = response.status();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            if status == StatusCode::OK && ready(&body) {
                return body;
            }
            assert!(
                Instant::now() < deadline,
                "{path} did not catch up within 30 s: {status} {body}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// GETs a path, optionally with another `Host`.
    pub async fn get(&self, path: &str, host: Option<&str>) -> reqwest::Response {
        let mut request = self.client.get(self.url(path));
        if let Some(host) = host {
            request = request.header(reqwest::header::HOST, host);
        }
        request.send().await.expect("the API answers")
    }

    /// Signs a new tenant up and answers its token and ids. Its owner's
    /// address counts as verified (straight in the database, leaving the
    /// emailed link unused), as most tests want a tenant that may send;
    /// [`TestApp::signup_unverified`] leaves it as signup does.
    pub async fn signup(&self) -> Tenant {
        let t = self.signup_unverified().await;
        sqlx::query(
            "update users set email_verified_at = now()
              where id in (select user_id from memberships where tenant_id = $1::uuid)",
        )
        .bind(&t.tenant_id)
        .execute(&self.admin)
        .await
        .expect("the owner is verified");
        t
    }

    /// `n` confirmed email subscribers of `t`'s page, written straight into
    /// the table (a large fan-out's audience in a second), addressed
    /// `<prefix>-<i>-<unique>@example.com`.
    pub async fn bulk_email_subscribers(&self, t: &Tenant, prefix: &str, n: i64) {
        sqlx::query(
            "insert into subscribers (id, tenant_id, page_id, channel, email, confirmed_at)
             select gen_random_uuid(), $1::uuid, $2::uuid, 'email',
                    $3 || '-' || i || '-' || $4 || '@example.com', now()
               from generate_series(1, $5) as i",
        )
        .bind(&t.tenant_id)
        .bind(&t.page_id)
        .bind(prefix)
        .bind(Uuid::new_v4().simple().to_string())
        .bind(n)
        .execute(&self.admin)
        .await
        .expect("the subscribers are written");
    }

    /// Signs a new tenant up, its owner's address not verified.
    pub async fn signup_unverified(&self) -> Tenant {
        let slug = unique_slug("t");
        let email = unique_email("owner");
        // Each signup from an address of its own: tests sign many people up,
        // and the per-address signup limit has tests of its own.
        let response = self
            .client
            .post(self.url("/v1/signup"))
            .header("x-forwarded-for", unique_ip())
            .json(
                &json!({"name": "Acme Cloud", "slug": slug, "email": email, "password": PASSWORD}),
            )
            .send()
            .await
            .expect("the API answers");
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert_eq!(status, StatusCode::CREATED, "{body}");
        Tenant {
            token: body["token"].as_str().expect("a token").to_owned(),
            page_id: body["page"]["id"].as_str().expect("a page id").to_owned(),
            slug,
            tenant_id: body["tenant"]["id"]
                .as_str()
                .expect("a tenant id")
                .to_owned(),
            email,
        }
    }

    /// A headless Chromium of the test's own, its requests coming from an
    /// address of their own (`X-Forwarded-For`, which the API trusts here).
    pub async fn browser(&self) -> heliograph_testkit::Browser {
        let browser = heliograph_testkit::Browser::start().await;
        browser
            .send_headers(&[("x-forwarded-for", &unique_ip())])
            .await;
        browser
    }

    /// What a browser holding the session of `token` (a session token)
    /// sends with a dashboard form: the `Cookie` header and the `_csrf` field.
    pub fn dashboard_session(&self, token: &str) -> (String, String) {
        let keys = heliograph_auth::TokenKeys::new(
            &self.config.jwt_secret,
            self.config.urls.origin(),
            time::Duration::minutes(15),
        )
        .expect("the tests' token keys");
        let session = keys.verify(token).expect("a session token").sid;
        let csrf = heliograph_auth::LinkSigner::new(SecretString::from(LINK_SECRET.to_owned()))
            .expect("a long enough secret")
            .sign("csrf", session.as_uuid());
        (format!("heliograph_session={token}"), csrf)
    }

    /// A session of `email` in the tenant `tenant_id`, signed in through the
    /// API, as a dashboard form sends it: the `Cookie` header and the
    /// `_csrf` field.
    pub async fn form_session(&self, email: &str, tenant_id: &str) -> (String, String) {
        let (status, body) = self
            .post(
                "/v1/sessions",
                None,
                &serde_json::json!({"email": email, "password": PASSWORD, "tenant_id": tenant_id}),
            )
            .await;
        assert_eq!(status, reqwest::StatusCode::CREATED, "{body}");
        (
            format!("heliograph_session={}", body["token"].as_str().unwrap()),
            body["csrf_token"].as_str().unwrap().to_owned(),
        )
    }

    /// Reads a dashboard page as `session` ([`Self::form_session`]): the
    /// status and the page.
    pub async fn page_get(
        &self,
        (cookie, _): &(String, String),
        path: &str,
    ) -> (reqwest::StatusCode, String) {
        let res = self
            .client
            .get(self.url(path))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        (res.status(), res.text().await.unwrap())
    }

    /// Posts a dashboard form as `session` ([`Self::form_session`]) sends
    /// it, its `_csrf` field first: the status and the page.
    pub async fn form_post(
        &self,
        (cookie, csrf): &(String, String),
        path: &str,
        fields: &[(&str, &str)],
    ) -> (reqwest::StatusCode, String) {
        let mut form: Vec<(&str, &str)> = vec![("_csrf", csrf)];
        form.extend_from_slice(fields);
        let res = self
            .client
            .post(self.url(path))
            .header("cookie", cookie)
            .form(&form)
            .send()
            .await
            .unwrap();
        (res.status(), res.text().await.unwrap())
    }

    /// Signs `email` in on the dashboard's sign-in page, in `browser`.
    pub async fn sign_in(&self, browser: &heliograph_testkit::Browser, email: &str) {
        browser.goto(&self.url("/login")).await;
        browser.fill("#email", email).await;
        browser.fill("#password", PASSWORD).await;
        browser.click_text("Sign in").await;
        browser.wait_for("nav.side").await;
    }

    /// Adds the owner of `other` to `tenant` with `role` and signs in there.
    pub async fn join(&self, tenant: &Tenant, other: &Tenant, role: &str) -> String {
        sqlx::query(
            "insert into memberships (tenant_id, user_id, role)
             select $1::uuid, user_id, $3 from memberships where tenant_id = $2::uuid",
        )
        .bind(&tenant.tenant_id)
        .bind(&other.tenant_id)
        .bind(role)
        .execute(&self.admin)
        .await
        .unwrap();
        let (status, body) = self
            .post(
                "/v1/sessions",
                None,
                &json!({"email": other.email, "password": PASSWORD, "tenant_id": tenant.tenant_id}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["token"].as_str().unwrap().to_owned()
    }

    /// Turns SMS on for the tenant's page, texting the countries of `codes`
    /// (calling codes; the first is the page's own).
    pub async fn enable_sms(&self, t: &Tenant, codes: &[&str]) {
        let (status, body) = self
            .call(
                reqwest::Method::PATCH,
                &format!("/v1/pages/{}", t.page_id),
                Some(&t.token),
                Some(&json!({"page": {
                    "allow_sms_subscribers": true,
                    "sms_calling_code": codes.first(),
                    "sms_allowed_calling_codes": codes,
                }})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    /// Creates a component on the tenant's page and answers its id.
    pub async fn component(&self, t: &Tenant, name: &str) -> String {
        let (status, body) = self
            .post(
                &format!("/v1/pages/{}/components", t.page_id),
                Some(&t.token),
                &json!({"component": {"name": name}}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_str().expect("a component id").to_owned()
    }

    /// A connection of the test's own to the API's Redis.
    pub async fn redis(&self) -> redis::aio::ConnectionManager {
        use secrecy::ExposeSecret as _;
        let url = self.config.redis_url.expose_secret();
        redis::aio::ConnectionManager::new(redis::Client::open(url).expect("REDIS_URL parses"))
            .await
            .expect("Redis is reachable")
    }

    /// A single count query on the test database.
    pub async fn count(&self, sql: &'static str) -> i64 {
        let (n,): (i64,) = sqlx::query_as(sql)
            .fetch_one(&self.admin)
            .await
            .expect("the count query runs");
        n
    }

    /// Waits until the outbox (and every row that is its own outbox, such as
    /// a domain with a check asked for) is relayed and every queue the
    /// worker runs (`heliograph_worker::JOBS`) is empty, twice in a row so
    /// that a job that enqueues another is seen through. Fails the test,
    /// naming the queue and the job, if a job died or is still there after
    /// 120 s: background work a test starts must finish, and finish well. A
    /// test that makes a job die on purpose says so with
    /// [`TestApp::drain_expecting_dead`].
    pub async fn drain(&self) {
        if let Err(problem) = self.try_drain(DRAIN_WITHIN, None).await {
            panic!("{problem}");
        }
    }

    /// [`TestApp::drain`], for a test that makes jobs die on purpose: exactly
    /// `n` jobs died on `queue` (and none elsewhere). They are then
    /// forgotten, so that a later drain fails only on new deaths.
    pub async fn drain_expecting_dead(&self, queue: &str, n: usize) {
        assert!(
            heliograph_worker::JOBS.queues().any(|q| q == queue),
            "no job kind runs on a queue named {queue:?}"
        );
        if let Err(problem) = self.try_drain(DRAIN_WITHIN, Some((queue, n))).await {
            panic!("{problem}");
        }
        self.queues
            .forget_dead(queue)
            .await
            .expect("the dead jobs are forgotten");
    }

    /// What [`TestApp::drain`] checks, waiting at most `within`: what went
    /// wrong, if anything (a job left behind or dead, other than the
    /// `expected_dead` number on one queue).
    pub async fn try_drain(
        &self,
        within: Duration,
        expected_dead: Option<(&str, usize)>,
    ) -> Result<(), String> {
        self.settle(within).await?;
        self.check_dead(expected_dead).await
    }

    /// Waits until the outbox and the queues are empty (see [`TestApp::drain`]).
    async fn settle(&self, within: Duration) -> Result<(), String> {
        let deadline = Instant::now() + within;
        let mut quiet = 0;
        while quiet < 2 {
            if Instant::now() >= deadline {
                let left = heliograph_worker::JOBS
                    .unfinished_jobs(&self.queues)
                    .await
                    .expect("the queues can be read");
                let unrelayed = self.store.unrelayed_events().await.expect("outbox count");
                return Err(format!(
                    "background work did not finish within {within:?}: {unrelayed} outbox events unrelayed; jobs left:\n{}",
                    lines(&left)
                ));
            }
            let idle = self.store.unrelayed_events().await.expect("outbox count") == 0
                && self
                    .count("select count(*) from domains where check_requested_at is not null")
                    .await
                    == 0
                && heliograph_worker::JOBS
                    .drained(&self.queues)
                    .await
                    .expect("the queues can be read");
            quiet = if idle { quiet + 1 } else { 0 };
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
        Ok(())
    }

    /// Whether the jobs that died are exactly the `expected` number on one queue.
    async fn check_dead(&self, expected: Option<(&str, usize)>) -> Result<(), String> {
        let dead = heliograph_worker::JOBS
            .dead_jobs(&self.queues)
            .await
            .expect("the queues can be read");
        let (expected_queue, expected_n) = expected.unwrap_or(("", 0));
        let on_expected = dead.iter().filter(|j| j.queue == expected_queue).count();
        let elsewhere: Vec<_> = dead
            .iter()
            .filter(|j| j.queue != expected_queue)
            .cloned()
            .collect();
        if !elsewhere.is_empty() {
            return Err(format!(
                "a background job died (a test that means it to says so with `drain_expecting_dead`):\n{}",
                lines(&elsewhere)
            ));
        }
        if on_expected != expected_n {
            return Err(format!(
                "{on_expected} jobs died on queue `{expected_queue}`, not {expected_n}:\n{}",
                lines(&dead)
            ));
        }
        Ok(())
    }

    /// Stops the worker (asserting nothing was left behind) and drops the test's database and keys.
    pub async fn finish(self) {
        self.drain().await;
        self.teardown().await;
    }

    /// Drops the test's database while the app runs, as if PostgreSQL were lost.
    pub async fn lose_database(&self) {
        self.db.drop_now().await;
    }

    /// Stops the worker and removes the test's database and keys, without draining first.
    pub async fn teardown(mut self) {
        self.shutdown.cancel();
        if let Some(worker) = self.worker.take() {
            tokio::time::timeout(Duration::from_secs(15), worker)
                .await
                .expect("the worker stops within 15 s")
                .expect("the worker did not panic");
        }
        self.queues.delete_all().await.expect("test keys deleted");
        self.store.pool().close().await;
        self.admin.close().await;
        self.db.drop_now().await;
    }
}

/// How long a drain waits for background work (a bound for a loaded
/// machine; it returns as soon as the work is done).
const DRAIN_WITHIN: Duration = Duration::from_secs(120);

/// One job a line, for a failure message.
fn lines(jobs: &[heliograph_jobs::HeldJob]) -> String {
    jobs.iter()
        .map(|job| format!("  {job}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Emails maildev holds for `to`, waiting up to 60 s for at least `n` (a
/// bound for a loaded machine; it returns as soon as they are there).
pub async fn emails_to(to: &str, n: usize) -> Vec<Value> {
    let catcher = env("MAILCATCHER_URL");
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let all: Vec<Value> = client
            .get(format!("{catcher}/email"))
            .send()
            .await
            .expect("maildev answers")
            .json()
            .await
            .expect("maildev answers JSON");
        let mine: Vec<Value> = all
            .into_iter()
            .filter(|m| {
                m["to"]
                    .as_array()
                    .is_some_and(|to_list| to_list.iter().any(|a| a["address"] == to))
            })
            .collect();
        if mine.len() >= n || Instant::now() > deadline {
            return mine;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The newest email to `to` whose subject starts with `prefix`, waiting for
/// it as [`emails_to`] waits (one more email at a time, each within its
/// bound).
pub async fn email_starting(to: &str, prefix: &str) -> Value {
    let mut n = 1;
    loop {
        let mails = emails_to(to, n).await;
        if let Some(mail) = mails
            .iter()
            .rev()
            .find(|m| m["subject"].as_str().is_some_and(|s| s.starts_with(prefix)))
        {
            return mail.clone();
        }
        assert!(mails.len() >= n, "no email {prefix:?}… to {to}: {mails:?}");
        n = mails.len() + 1;
    }
}

/// The token in the link (`…?token=<token>`) of the newest email to `to`
/// with `subject`, once at least `n` emails reached `to`.
pub async fn token_in_email(to: &str, subject: &str, n: usize) -> String {
    // At least `n` emails, and one of them with `subject`: the `n` may be
    // reached by an earlier email (a verification) before this one arrives.
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mails, index) = loop {
        let mails = emails_to(to, n).await;
        if let Some(index) = mails.iter().rposition(|m| m["subject"] == subject) {
            break (mails, index);
        }
        assert!(
            Instant::now() < deadline,
            "no email {subject:?} to {to}: {mails:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let mail = &mails[index];
    let text = mail["text"].as_str().expect("a text part");
    let start = text.find("token=").expect("a link with a token") + "token=".len();
    text[start..]
        .split(char::is_whitespace)
        .next()
        .expect("a token")
        .to_owned()
}

/// A real DNS server of a test's own (the testkit's dnsmasq), which also
/// knows the platform's CNAME target and `elsewhere.test`.
pub struct DnsServer;

impl DnsServer {
    /// Starts dnsmasq with `records` besides the platform's own.
    pub fn start(records: &[String]) -> heliograph_testkit::DnsServer {
        heliograph_testkit::DnsServer::with_fixed(
            vec![
                format!("host-record={CNAME_TARGET},192.0.2.10"),
                "host-record=elsewhere.test,192.0.2.20".to_owned(),
            ],
            records,
        )
    }
}

/// A TXT record, as a dnsmasq setting.
pub fn txt_record(name: &str, value: &str) -> String {
    heliograph_testkit::DnsServer::txt_record(name, value)
}

/// A CNAME record, as a dnsmasq setting (the target must be a name dnsmasq
/// knows: the CNAME target and `elsewhere.test` are).
pub fn cname_record(name: &str, target: &str) -> String {
    heliograph_testkit::DnsServer::cname_record(name, target)
}

/// Asserts that at 375 px no cell of the page's tables is narrower than
/// 80 px: a table squeezed into a phone's width breaks its words letter by
/// letter, which `check_page` (it looks for sideways scrolling only) does
/// not see. The viewport is back at 1280 × 900 afterwards.
pub async fn assert_tables_fit_a_phone(browser: &heliograph_testkit::Browser, name: &str) {
    browser.viewport(375, 812).await;
    let narrow = browser
        .client()
        .execute(
            "return Array.from(document.querySelectorAll('table th, table td'))
               .filter(c => c.closest('thead') === null && c.offsetParent !== null)
               .map(c => [Math.round(c.getBoundingClientRect().width), c.innerText.trim().slice(0, 40)])
               .filter(([w]) => w < 80);",
            vec![],
        )
        .await
        .expect("the page answers");
    browser.viewport(1280, 900).await;
    assert_eq!(
        narrow,
        json!([]),
        "{name}: table cells narrower than 80 px at 375 px ([width, text])"
    );
}
