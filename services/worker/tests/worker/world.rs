//! The world of a process test: a database of its own, a Redis server of its
//! own (so the test may stop it), the API in this process, an SMTP sink, and
//! the worker as a real process of the binary under test, which the test may
//! kill with SIGKILL or stop with SIGTERM.
//!
//! No test's assertions live here.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, Once, PoisonError};
use std::time::{Duration, Instant};

use heliograph_api::{ApiConfig, Application};
use heliograph_domain::{CustomDomains, Hostname, PublicUrls};
use heliograph_jobs::Queues;
use heliograph_runtime::{LogFormat, Settings};
use heliograph_store::Store;
use heliograph_testkit::{ScratchRedis, SmtpSink, TestPostgres};
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

/// The token-signing key of the API, in-process and as processes, in these tests.
const JWT_SECRET: &str = "process-test-jwt-secret-0123456789";

/// The link-signing key the API and the worker share in these tests.
const LINK_SECRET: &str = "process-test-link-secret-0123456789";

/// The key ring of secrets at rest the API and the worker share in these tests.
const SECRETS_KEY: &str = "proc:aGVsaW9ncmFwaC1wcm9jZXNzLXRlc3RzLWtleS0zMmI=";

/// The API, the database, Redis and an SMTP sink of one test.
pub struct World {
    /// The API's base URL.
    pub api: String,
    /// A client that follows no redirects.
    pub client: reqwest::Client,
    /// The server's superuser on the test's database: sees every tenant's rows.
    pub admin: PgPool,
    /// The test's own Redis server.
    pub redis: ScratchRedis,
    /// The queues, as the worker sees them.
    pub queues: Queues,
    /// Where the worker sends email.
    pub sink: SmtpSink,
    namespace: String,
    database_url: String,
    db: TestPostgres,
    /// With billing on: the settings that turn it on (the plans file's
    /// path among them), for the API and every worker of this world.
    billing: Vec<(&'static str, String)>,
    plans_file: Option<PathBuf>,
}

/// A tenant, as signup answered it.
pub struct Tenant {
    pub token: String,
    pub page_id: String,
    pub tenant_id: String,
}

impl World {
    /// Creates and migrates a database, starts Redis, the sink and the API.
    pub async fn start() -> Self {
        Self::start_with(None, None).await
    }

    /// The same, with the database on the PostgreSQL server `admin_url`
    /// names (a `ScratchPostgres` the test may freeze) instead of the shared one.
    pub async fn start_on(admin_url: Option<String>) -> Self {
        Self::start_with(admin_url, None).await
    }

    /// The same with billing on (`BILLING=on`), on the plans of `plans` (a
    /// plans file's text), for the API and every worker this world starts.
    pub async fn start_with_plans(plans: &str) -> Self {
        Self::start_with(None, Some(plans)).await
    }

    async fn start_with(admin_url: Option<String>, plans: Option<&str>) -> Self {
        static CRYPTO: Once = Once::new();
        CRYPTO.call_once(|| drop(rustls::crypto::ring::default_provider().install_default()));
        let server_url = admin_url.unwrap_or_else(|| {
            std::env::var("TEST_DATABASE_URL")
                .or_else(|_| std::env::var("DATABASE_URL"))
                .expect("TEST_DATABASE_URL is set: run the tests with `deploy/dev test`")
        });
        let db = TestPostgres::create(&server_url).await;
        Store::migrate(&db.owner_url())
            .await
            .expect("migrations apply as the schema's owner");
        // The serving role, as the api and the worker connect in production.
        let database_url = db.app_url();
        let admin = PgPool::connect(&db.admin_url())
            .await
            .expect("connects as the server's superuser");

        let redis = tokio::task::spawn_blocking(ScratchRedis::start)
            .await
            .expect("Redis starts");
        let namespace = format!("test-{}", Uuid::new_v4().simple());
        let queues = Queues::new(
            heliograph_jobs::connect(&redis.url(), Duration::from_secs(5))
                .await
                .expect("Redis is reachable"),
            namespace.clone(),
        );
        let sink = SmtpSink::start().await.expect("the SMTP sink starts");

        // Billing is read from settings, as the processes read it: the
        // worker binary gets the same ones in its environment.
        let (billing, plans_file) = match plans {
            None => (Vec::new(), None),
            Some(text) => {
                heliograph_billing::Plans::parse(text).expect("the test's plans parse");
                let path = std::env::temp_dir()
                    .join(format!("heliograph-plans-{}.toml", Uuid::new_v4().simple()));
                std::fs::write(&path, text).expect("the plans file is written");
                let settings = vec![
                    ("BILLING", "on".to_owned()),
                    ("PLANS_FILE", path.display().to_string()),
                    // Stripe is never called here: a closed port, should it be.
                    ("STRIPE_SECRET_KEY", "sk_test_worker_tests".to_owned()),
                    ("STRIPE_WEBHOOK_SECRET", "whsec_worker_tests".to_owned()),
                    ("STRIPE_API_BASE", "http://127.0.0.1:9".to_owned()),
                ];
                (settings, Some(path))
            }
        };
        let urls =
            PublicUrls::new("http://heliograph.test", Some("heliograph.test")).expect("valid URLs");
        let config = ApiConfig {
            billing: heliograph_billing::Billing::from_settings(&Settings::from_pairs(
                billing.iter().map(|(k, v)| (*k, v.as_str())),
            ))
            .expect("the billing settings are valid"),
            domain_grace: time::Duration::days(3),
            domain_claims: heliograph_domain::PendingClaims::DEFAULT,
            custom_domains: CustomDomains::new(
                &urls,
                Hostname::parse("cname_target", "pages.heliograph.test").expect("a host"),
            ),
            database_url: SecretString::from(database_url.clone()),
            database_max_connections: 5,
            database_pooler: heliograph_store::Pooler::None,
            redis_url: SecretString::from(redis.url()),
            bind_addr: "127.0.0.1:0".parse().expect("a loopback address"),
            admin_addr: None,
            urls,
            jwt_secret: SecretString::from(JWT_SECRET.to_owned()),
            access_token_ttl_minutes: 15,
            session_ttl_hours: 24,
            trust_proxy_headers: true,
            link_secret: SecretString::from(LINK_SECRET.to_owned()),
            secrets: std::sync::Arc::new(
                heliograph_auth::SecretsKeyring::parse(SECRETS_KEY).expect("a key ring"),
            ),
            log_format: LogFormat::Text,
            page_cache_poll: Duration::from_secs(3600),
            page_memo: heliograph_api::public_pages::MemoLimits {
                per_page: 256,
                max_bytes: 64 << 20,
            },
            page_serving: heliograph_api::PageServing::default(),
            page_changes_channel: heliograph_jobs::page_changes_channel(&namespace),
            timeouts: heliograph_api::Timeouts::default(),
        };
        let app = Application::build(&config).await.expect("the API starts");
        let api = format!("http://127.0.0.1:{}", app.port());
        tokio::spawn(app.run_until_stopped());
        Self {
            api,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("an HTTP client"),
            admin,
            redis,
            queues,
            sink,
            namespace,
            database_url,
            db,
            billing,
            plans_file,
        }
    }

    /// Starts the worker binary on this world, with the tests' settings
    /// and `extra` ones over them.
    pub fn worker(&self, extra: &[(&str, &str)]) -> Process {
        let mut command = self.command(env!("CARGO_BIN_EXE_heliograph-worker"));
        command
            .env("SMTP_URL", self.sink.url())
            .env("OUTBOX_POLL_INTERVAL_MS", "200")
            // Parallel tests run several workers: none takes the metrics port.
            .env("METRICS_ADDR", "off")
            .env("DNS_NAMESERVER", "127.0.0.1:9");
        for (name, value) in extra {
            command.env(name, value);
        }
        Process::spawn(command)
    }

    /// Starts the api binary on this world, listening on `port` (so that a
    /// replica started again comes back where a balancer expects it), with
    /// the settings of the api this world runs in-process: its tokens work
    /// on either, and both hear of page changes through the same Redis.
    ///
    /// The binary is the workspace's, built beside the worker's: `cargo
    /// nextest run --workspace` builds both.
    pub fn api_process(&self, port: u16) -> Process {
        let binary = std::path::Path::new(env!("CARGO_BIN_EXE_heliograph-worker"))
            .with_file_name("heliograph-api");
        assert!(
            binary.exists(),
            "{} is missing: build it (`cargo build --bin heliograph-api`), or run the workspace's tests",
            binary.display()
        );
        let mut command = self.command(binary);
        command
            .env("BIND_ADDR", format!("127.0.0.1:{port}"))
            .env("JWT_SECRET", JWT_SECRET)
            .env("CUSTOM_DOMAIN_CNAME_TARGET", "pages.heliograph.test")
            .env("TRUST_PROXY_HEADERS", "true")
            .env("DATABASE_MAX_CONNECTIONS", "5");
        Process::spawn(command)
    }

    /// A command for one of the binaries, with the settings both take.
    fn command(&self, binary: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new(binary);
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("DATABASE_URL", &self.database_url)
            .env("REDIS_URL", self.redis.url())
            .env("QUEUE_NAMESPACE", &self.namespace)
            .env("PUBLIC_URL", "http://heliograph.test")
            .env("BASE_DOMAIN", "heliograph.test")
            .env("LINK_SECRET", LINK_SECRET)
            .env("SECRETS_KEY", SECRETS_KEY)
            .env(
                "RUST_LOG",
                std::env::var("TEST_LOG").map_or("error", |_| "info"),
            )
            .stdin(Stdio::null());
        for (name, value) in &self.billing {
            command.env(name, value);
        }
        command
    }

    /// The URL of `path` on the API.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.api)
    }

    /// Sends `body` to `path` with `token`; answers the status and JSON body.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .client
            .request(method, self.url(path))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.expect("the API answers");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Signs a new tenant up.
    pub async fn signup(&self) -> Tenant {
        let slug = format!("t-{}", &Uuid::new_v4().simple().to_string()[..12]);
        let response = self
            .client
            .post(self.url("/v1/signup"))
            .json(&json!({
                "name": "Acme Cloud", "slug": slug,
                "email": format!("owner-{}@example.com", Uuid::new_v4().simple()),
                "password": "correct horse battery",
            }))
            .send()
            .await
            .expect("the API answers");
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.expect("a JSON body");
        Tenant {
            token: body["token"].as_str().expect("a token").to_owned(),
            page_id: body["page"]["id"].as_str().expect("a page").to_owned(),
            tenant_id: body["tenant"]["id"].as_str().expect("a tenant").to_owned(),
        }
    }

    /// Creates a component and answers its id.
    pub async fn component(&self, t: &Tenant, name: &str) -> String {
        let (status, body) = self
            .call(
                reqwest::Method::POST,
                &format!("/v1/pages/{}/components", t.page_id),
                &t.token,
                Some(&json!({"component": {"name": name}})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_str().expect("a component id").to_owned()
    }

    /// Opens an incident on `component` through the API; answers the status and body.
    pub async fn open_incident(
        &self,
        t: &Tenant,
        component: &str,
        name: &str,
    ) -> (StatusCode, Value) {
        self.call(
            reqwest::Method::POST,
            &format!("/v1/pages/{}/incidents", t.page_id),
            &t.token,
            Some(&json!({"incident": {
                "name": name, "status": "investigating", "body": "Looking into it.",
                "components": {component: "major_outage"},
            }})),
        )
        .await
    }

    /// Adds `n` confirmed email subscribers (of every component) straight
    /// into the database; answers their addresses.
    pub async fn email_subscribers(&self, t: &Tenant, n: i32) -> HashSet<String> {
        let prefix = Uuid::new_v4().simple().to_string();
        sqlx::query(
            "insert into subscribers (id, tenant_id, page_id, channel, email, confirmed_at)
             select gen_random_uuid(), $1::uuid, $2::uuid, 'email', $3 || '-' || n || '@example.com', now()
               from generate_series(1, $4) as n",
        )
        .bind(&t.tenant_id)
        .bind(&t.page_id)
        .bind(&prefix)
        .bind(n)
        .execute(&self.admin)
        .await
        .expect("subscribers are added");
        (1..=n)
            .map(|i| format!("{prefix}-{i}@example.com"))
            .collect()
    }

    /// Turns SMS on for `t`'s page and adds `n` confirmed SMS subscribers
    /// (of every component) straight into the database; answers their numbers.
    pub async fn sms_subscribers(&self, t: &Tenant, n: i32) -> HashSet<String> {
        sqlx::query(
            "update pages set allow_sms_subscribers = true, sms_calling_code = '1'
              where tenant_id = $1::uuid and id = $2::uuid",
        )
        .bind(&t.tenant_id)
        .bind(&t.page_id)
        .execute(&self.admin)
        .await
        .expect("SMS is turned on");
        // A block of numbers of this call's own: +1 415 5xx xxxx.
        let base = 5_000_000 + (Uuid::new_v4().as_u128() % 990_000) as i64;
        sqlx::query(
            "insert into subscribers (id, tenant_id, page_id, channel, phone_number, sms_handle, confirmed_at)
             select gen_random_uuid(), $1::uuid, $2::uuid, 'sms', '+1415' || ($3 + n)::text,
                    gen_random_uuid(), now()
               from generate_series(1, $4) as n",
        )
        .bind(&t.tenant_id)
        .bind(&t.page_id)
        .bind(base)
        .bind(n)
        .execute(&self.admin)
        .await
        .expect("subscribers are added");
        (1..=i64::from(n))
            .map(|i| format!("+1415{}", base + i))
            .collect()
    }

    /// Puts `t` on `plan` with a subscription that is paid for (active,
    /// monthly), as Stripe's webhook would leave it.
    pub async fn subscribe_to_plan(&self, t: &Tenant, plan: &str) {
        sqlx::query(
            "insert into tenant_billing (tenant_id, plan, status, billing_interval)
             values ($1::uuid, $2, 'active', 'month')",
        )
        .bind(&t.tenant_id)
        .bind(plan)
        .execute(&self.admin)
        .await
        .expect("the tenant is on the plan");
    }

    /// The Message-IDs the sink accepted for each of `subscribers` that
    /// heard anything (the owner's own account emails left out).
    pub fn heard(&self, subscribers: &HashSet<String>) -> HashMap<String, Vec<String>> {
        let mut by = self.sink.message_ids_by_recipient();
        by.retain(|to, _| subscribers.contains(to));
        by
    }

    /// Waits until each of `subscribers` has heard (within `within`) and
    /// every delivery is recorded sent; answers how many emails went out
    /// twice or more, checking that every repeat carried its first
    /// Message-ID (what at-least-once allows, and all it allows).
    pub async fn until_everyone_heard(
        &self,
        subscribers: &HashSet<String>,
        within: Duration,
    ) -> usize {
        until("every subscriber has the email", within, async || {
            self.heard(subscribers).len() == subscribers.len()
        })
        .await;
        until(
            "every delivery is marked sent",
            Duration::from_secs(120),
            async || {
                self.count("select count(*) from deliveries where status <> 'sent'")
                    .await
                    == 0
            },
        )
        .await;
        let mut repeated = 0;
        for (to, ids) in self.heard(subscribers) {
            let distinct: HashSet<&String> = ids.iter().collect();
            assert_eq!(
                distinct.len(),
                1,
                "{to} got two different Message-IDs: {ids:?}"
            );
            assert!(!ids[0].is_empty(), "{to}'s email has a Message-ID");
            repeated += ids.len() - 1;
        }
        repeated
    }

    /// A count over the test's database.
    pub async fn count(&self, sql: &'static str) -> i64 {
        let (n,): (i64,) = sqlx::query_as(sql)
            .fetch_one(&self.admin)
            .await
            .expect("the count query runs");
        n
    }

    /// Drops the database and stops the servers.
    pub async fn finish(self) {
        if let Some(path) = &self.plans_file {
            drop(std::fs::remove_file(path));
        }
        self.sink.stop().await;
        self.admin.close().await;
        self.db.drop_now().await;
    }
}

/// One of the binaries (the worker, the api), running.
pub struct Process {
    child: Option<Child>,
    log: Arc<Mutex<Vec<String>>>,
}

impl Process {
    /// Starts `command`. Its log (stderr) is kept, so that a test can wait
    /// for what the process says it did instead of waiting for a while; and
    /// passed on, so that it still shows with the test's output.
    fn spawn(mut command: Command) -> Self {
        command.stderr(Stdio::piped());
        let mut child = command.spawn().expect("the binary starts");
        let log = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().expect("stderr is piped");
        std::thread::spawn({
            let log = Arc::clone(&log);
            move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    eprintln!("{line}");
                    log.lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(line);
                }
            }
        });
        Self {
            child: Some(child),
            log,
        }
    }

    /// How many lines the process has logged so far that contain `needle`.
    pub fn logged(&self, needle: &str) -> usize {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|line| line.contains(needle))
            .count()
    }

    /// Kills it with SIGKILL, as a crash or an OOM kill would.
    pub fn kill(mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("the process is killed");
            child.wait().expect("the process is reaped");
        }
    }

    /// Sends SIGTERM, as an orchestrator does, and waits for it to exit.
    pub async fn terminate(mut self, within: Duration) -> ExitStatus {
        let mut child = self.child.take().expect("the process runs");
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "SIGTERM is sent");
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = child.try_wait().expect("the process's state") {
                return status;
            }
            if Instant::now() > deadline {
                drop(child.kill());
                panic!("the process did not exit within {within:?} of SIGTERM");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            drop(child.kill());
            drop(child.wait());
        }
    }
}

/// Waits until `done` holds, polling every 50 ms; fails the test after `timeout`.
pub async fn until(what: &str, timeout: Duration, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done().await {
        assert!(Instant::now() < deadline, "{what}: not within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
