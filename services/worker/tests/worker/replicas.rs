//! Replicas on one machine: two api processes behind a real load balancer
//! (HAProxy, health-checking `/healthz`) and two worker processes, on one
//! PostgreSQL and one Redis. The whole journey goes through the balancer; a
//! fan-out survives a worker and an api replica killed with SIGKILL while
//! the page keeps answering; a rolling restart under load fails no request;
//! a change made through one replica is served by the other within a second.
//!
//! HAProxy is Debian's (`deploy/dev test` unpacks it and names it in
//! `HAPROXY_BIN`). It retries a request whose server refused the connection
//! or closed it without an answer on the other server (`retry-on`,
//! `option redispatch`), opens a connection per request (`option
//! http-server-close`, so that a replica that stops leaves no idle
//! connection to race with), and checks each server's `/healthz` every
//! 100 ms.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use uuid::Uuid;

use crate::world::{Process, Tenant, World, until};

/// A port free now, for a process to listen on (and to come back to).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// HAProxy in front of the api replicas' ports.
struct Balancer {
    child: Child,
    port: u16,
    socket: PathBuf,
    dir: PathBuf,
}

impl Balancer {
    fn start(servers: &[u16]) -> Self {
        let binary = std::env::var("HAPROXY_BIN").expect(
            "HAPROXY_BIN names Debian's haproxy binary: run the tests with `deploy/dev test`",
        );
        let dir = std::env::temp_dir().join(format!("hg-haproxy-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("a directory for HAProxy");
        let socket = dir.join("admin.sock");
        let port = free_port();
        let backends: String = servers
            .iter()
            .enumerate()
            .map(|(i, p)| format!("  server api{i} 127.0.0.1:{p} check\n"))
            .collect();
        let config = format!(
            "global
  stats socket {socket} mode 600 level admin
  maxconn 2000
defaults
  mode http
  timeout connect 2s
  timeout client 30s
  timeout server 30s
  timeout check 2s
  retries 3
  option redispatch 1
  retry-on conn-failure empty-response response-timeout
  option http-server-close
frontend public
  bind 127.0.0.1:{port}
  default_backend api
backend api
  balance roundrobin
  option httpchk GET /healthz
  default-server inter 100ms fall 1 rise 1
{backends}",
            socket = socket.display()
        );
        let file = dir.join("haproxy.cfg");
        std::fs::write(&file, config).expect("the configuration is written");
        let child = Command::new(binary)
            .args(["-db", "-f"])
            .arg(&file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("HAProxy starts");
        Self {
            child,
            port,
            socket,
            dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// How many servers HAProxy holds up now (its admin socket's view).
    async fn servers_up(&self) -> usize {
        let Ok(mut stream) = tokio::net::UnixStream::connect(&self.socket).await else {
            return 0;
        };
        if stream.write_all(b"show servers state api\n").await.is_err() {
            return 0;
        }
        let mut answer = String::new();
        if stream.read_to_string(&mut answer).await.is_err() {
            return 0;
        }
        // Fields: be_id be_name srv_id srv_name srv_addr srv_op_state ...;
        // an operational state of 2 is "running".
        answer
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter(|l| l.split_whitespace().nth(5) == Some("2"))
            .count()
    }

    /// Waits until HAProxy holds `n` servers up.
    async fn until_up(&self, n: usize) {
        until(
            &format!("HAProxy holds {n} servers up"),
            Duration::from_secs(60),
            async || self.servers_up().await == n,
        )
        .await;
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        drop(self.child.kill());
        drop(self.child.wait());
        drop(std::fs::remove_dir_all(&self.dir));
    }
}

/// Two api replicas, two workers and the balancer in front, started and
/// healthy.
struct Replicas {
    ports: [u16; 2],
    apis: [Option<Process>; 2],
    workers: [Option<Process>; 2],
    balancer: Balancer,
}

impl Replicas {
    async fn start(world: &World) -> Self {
        let ports = [free_port(), free_port()];
        let apis = ports.map(|p| Some(world.api_process(p)));
        for port in ports {
            healthy(world, port).await;
        }
        let balancer = Balancer::start(&ports);
        balancer.until_up(2).await;
        let workers = [Some(world.worker(&[])), Some(world.worker(&[]))];
        Self {
            ports,
            apis,
            workers,
            balancer,
        }
    }

    fn direct(&self, replica: usize, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.ports[replica])
    }
}

/// Waits until the api on `port` answers `/healthz`.
async fn healthy(world: &World, port: u16) {
    let url = format!("http://127.0.0.1:{port}/healthz");
    until(
        "the api replica answers /healthz",
        Duration::from_secs(60),
        async || {
            world
                .client
                .get(&url)
                .send()
                .await
                .is_ok_and(|r| r.status() == StatusCode::OK)
        },
    )
    .await;
}

/// A client of the balancer, as one reader (its own address in
/// `X-Forwarded-For`, which the api trusts behind its proxy).
fn client() -> reqwest::Client {
    let address = format!(
        "10.{}.{}.{}",
        rand_octet(),
        rand_octet(),
        rand_octet().max(1)
    );
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(reqwest::header::HeaderMap::from_iter([(
            reqwest::header::HeaderName::from_static("x-forwarded-for"),
            reqwest::header::HeaderValue::from_str(&address).expect("an address is a header value"),
        )]))
        .build()
        .expect("an HTTP client")
}

fn rand_octet() -> u8 {
    Uuid::new_v4().as_bytes()[0]
}

/// Calls the API through `base`; answers the status and the JSON body.
async fn call(
    client: &reqwest::Client,
    base: &str,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> (StatusCode, Value) {
    let mut request = client.request(method, format!("{base}{path}"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.expect("the balancer answers");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Requests `url` over and over until `stop`, counting the answers that
/// are not 200 (and the requests that got no answer at all) in `failed`.
fn keep_reading(
    url: String,
    stop: Arc<AtomicBool>,
    answered: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    token: Option<String>,
) -> tokio::task::JoinHandle<Vec<String>> {
    tokio::spawn(async move {
        let client = client();
        let mut failures = Vec::new();
        while !stop.load(Ordering::SeqCst) {
            let mut request = client.get(&url);
            if let Some(token) = &token {
                request = request.bearer_auth(token);
                // The API is paced under its per-actor limit (600 a minute).
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
            match request.send().await {
                Ok(r) if r.status() == StatusCode::OK => {
                    answered.fetch_add(1, Ordering::SeqCst);
                }
                Ok(r) => {
                    failed.fetch_add(1, Ordering::SeqCst);
                    failures.push(format!("{url}: {}", r.status()));
                }
                Err(e) => {
                    failed.fetch_add(1, Ordering::SeqCst);
                    failures.push(format!("{url}: {e}"));
                }
            }
        }
        failures
    })
}

/// Readers of the page (and, with a token, of the API) through the
/// balancer, until stopped.
struct Load {
    stop: Arc<AtomicBool>,
    answered: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    tasks: Vec<tokio::task::JoinHandle<Vec<String>>>,
}

impl Load {
    fn start(urls: Vec<(String, Option<String>)>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let answered = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let tasks = urls
            .into_iter()
            .map(|(url, token)| {
                keep_reading(
                    url,
                    Arc::clone(&stop),
                    Arc::clone(&answered),
                    Arc::clone(&failed),
                    token,
                )
            })
            .collect();
        Self {
            stop,
            answered,
            failed,
            tasks,
        }
    }

    fn answered(&self) -> u64 {
        self.answered.load(Ordering::SeqCst)
    }

    /// Waits until `n` more requests have been answered: the load runs
    /// across whatever happened meanwhile.
    async fn until_answered_more(&self, n: u64) {
        let from = self.answered();
        until(
            "the readers get answers",
            Duration::from_secs(60),
            async || self.answered() >= from + n,
        )
        .await;
    }

    /// Stops the readers; answers how many requests were answered 200, and
    /// the failures.
    async fn finish(self) -> (u64, Vec<String>) {
        self.stop.store(true, Ordering::SeqCst);
        let mut failures = Vec::new();
        for task in self.tasks {
            failures.extend(task.await.expect("a reader"));
        }
        assert_eq!(
            self.failed.load(Ordering::SeqCst),
            failures.len() as u64,
            "every failure is listed"
        );
        (self.answered.load(Ordering::SeqCst), failures)
    }
}

/// Signs up through the balancer and sets the page up: a component and an
/// email subscriber added through the API (no confirmation asked).
async fn journey_setup(world: &World, base: &str) -> (Tenant, String, String) {
    let client = client();
    let slug = format!("t-{}", &Uuid::new_v4().simple().to_string()[..12]);
    let owner = format!("owner-{}@example.com", Uuid::new_v4().simple());
    let (status, body) = call(
        &client,
        base,
        Method::POST,
        "/v1/signup",
        None,
        Some(&json!({
            "name": "Acme Cloud", "slug": slug, "email": owner,
            "password": "correct horse battery",
        })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // The owner confirms the address with the emailed link: until then
    // nothing goes to addresses the team types in.
    let token = link_token(world, &owner).await;
    let (status, confirmed) = call(
        &client,
        base,
        Method::POST,
        "/v1/email-verifications/confirm",
        None,
        Some(&json!({"token": token})),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{confirmed}");
    let t = Tenant {
        token: body["token"].as_str().expect("a token").to_owned(),
        page_id: body["page"]["id"].as_str().expect("a page").to_owned(),
        tenant_id: body["tenant"]["id"].as_str().expect("a tenant").to_owned(),
    };
    let p = format!("/v1/pages/{}", t.page_id);
    let (status, component) = call(
        &client,
        base,
        Method::POST,
        &format!("{p}/components"),
        Some(&t.token),
        Some(&json!({"component": {"name": "API"}})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{component}");
    let reader = format!("reader-{}@example.com", Uuid::new_v4().simple());
    let (status, subscriber) = call(
        &client,
        base,
        Method::POST,
        &format!("{p}/subscribers"),
        Some(&t.token),
        Some(&json!({"subscriber": {"email": reader, "skip_confirmation_notification": true}})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{subscriber}");
    (
        t,
        component["id"].as_str().expect("a component id").to_owned(),
        reader,
    )
}

/// Opens an incident through `base` that puts `component` in `status`;
/// answers its id.
async fn open_incident(
    client: &reqwest::Client,
    base: &str,
    t: &Tenant,
    component: &str,
    name: &str,
    status: &str,
) -> String {
    let (code, incident) = call(
        client,
        base,
        Method::POST,
        &format!("/v1/pages/{}/incidents", t.page_id),
        Some(&t.token),
        Some(&json!({"incident": {
            "name": name, "status": "investigating", "body": "Looking into it.",
            "components": {component: status},
        }})),
    )
    .await;
    assert_eq!(code, StatusCode::CREATED, "{incident}");
    incident["id"].as_str().expect("an incident id").to_owned()
}

/// The token of the account link emailed to `to` (quoted-printable or not).
async fn link_token(world: &World, to: &str) -> String {
    until(
        "the verification email arrives",
        Duration::from_secs(120),
        async || world.sink.count_for(to) > 0,
    )
    .await;
    let mail = world
        .sink
        .messages()
        .into_iter()
        .find(|m| m.recipients.iter().any(|r| r == to))
        .expect("the email");
    let raw = String::from_utf8_lossy(mail.raw.as_deref().expect("the sink keeps messages"))
        .replace("=\r\n", "")
        .replace("=3D", "=");
    let start = raw.find("token=").expect("a link with a token") + "token=".len();
    raw[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~'))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_journey_goes_through_the_balancer_and_a_fan_out_survives_a_worker_and_a_replica_killed()
 {
    const SUBSCRIBERS: usize = 10_000;
    let world = World::start().await;
    let mut replicas = Replicas::start(&world).await;
    let base = replicas.balancer.url("");

    // The journey, through the balancer: signup, a component, a
    // subscriber, an incident and its updates, each update emailed.
    let (t, api, reader) = journey_setup(&world, &base).await;
    let client = client();
    let incident = open_incident(
        &client,
        &base,
        &t,
        &api,
        "Slow logins",
        "degraded_performance",
    )
    .await;
    for status in ["identified", "resolved"] {
        let (code, body) = call(
            &client,
            &base,
            Method::PATCH,
            &format!("/v1/pages/{}/incidents/{incident}", t.page_id),
            Some(&t.token),
            Some(&json!({"incident": {"status": status, "body": format!("Now {status}.")}})),
        )
        .await;
        assert_eq!(code, StatusCode::OK, "{body}");
    }
    until(
        "the reader has the three emails",
        Duration::from_secs(120),
        async || world.sink.count_for(&reader) >= 3,
    )
    .await;
    let summary = format!("/status/{}/api/v2/summary.json", slug_of(&world, &t).await);
    let (status, page) = call(&client, &base, Method::GET, &summary, None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["components"][0]["name"], "API", "{page}");

    // A fan-out to 10,000, while readers read the page through the balancer.
    let subscribers = world.email_subscribers(&t, SUBSCRIBERS as i32).await;
    let load = Load::start(vec![
        (replicas.balancer.url(&summary), None),
        (
            replicas
                .balancer
                .url(&summary.replace("summary.json", "components.json")),
            None,
        ),
    ]);
    open_incident(
        &client,
        &base,
        &t,
        &api,
        "Database failover",
        "major_outage",
    )
    .await;
    until(
        "the fan-out is under way",
        Duration::from_secs(300),
        async || world.heard(&subscribers).len() >= 500,
    )
    .await;
    // One worker and one api replica die at once, as a host does.
    replicas.workers[0].take().expect("a worker").kill();
    replicas.apis[0].take().expect("a replica").kill();
    let at_kill = world.heard(&subscribers).len();
    assert!(at_kill < SUBSCRIBERS, "killed mid fan-out ({at_kill} sent)");
    replicas.balancer.until_up(1).await;
    load.until_answered_more(200).await;
    let repeated = world
        .until_everyone_heard(&subscribers, Duration::from_secs(600))
        .await;
    let (answered, failures) = load.finish().await;
    eprintln!(
        "killed a worker and a replica after {at_kill} of {SUBSCRIBERS} sent; \
         {answered} page reads through the balancer meanwhile"
    );
    assert!(
        failures.is_empty(),
        "page reads that failed through the balancer: {failures:?}"
    );
    eprintln!("{repeated} emails sent again, each under its first Message-ID");
    assert!(
        repeated <= 64,
        "{repeated} repeats: more than were in flight"
    );
    drop(replicas);
    world.finish().await;
}

/// The page's slug (signup chose it; the tenant's record has it).
async fn slug_of(world: &World, t: &Tenant) -> String {
    sqlx::query_scalar("select slug from pages where id = $1::uuid")
        .bind(&t.page_id)
        .fetch_one(&world.admin)
        .await
        .expect("the page")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_of_every_replica_under_load_fails_no_request_and_loses_no_email() {
    const SUBSCRIBERS: usize = 2_000;
    let world = World::start().await;
    let mut replicas = Replicas::start(&world).await;
    let base = replicas.balancer.url("");
    let (t, api, _) = journey_setup(&world, &base).await;
    let slug = slug_of(&world, &t).await;
    let subscribers = world.email_subscribers(&t, SUBSCRIBERS as i32).await;
    let load = Load::start(vec![
        (replicas.balancer.url(&format!("/status/{slug}/")), None),
        (
            replicas
                .balancer
                .url(&format!("/status/{slug}/api/v2/summary.json")),
            None,
        ),
        (
            replicas
                .balancer
                .url(&format!("/v1/pages/{}/components", t.page_id)),
            Some(t.token.clone()),
        ),
    ]);
    load.until_answered_more(50).await;
    let (status, body) = world.open_incident(&t, &api, "Rolling").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // One api replica at a time: SIGTERM, wait for it to exit, start it
    // again on its port, wait until the balancer holds it up again.
    for i in 0..2 {
        let stopped = replicas.apis[i]
            .take()
            .expect("a replica")
            .terminate(Duration::from_secs(30))
            .await;
        assert!(stopped.success(), "replica {i} stops cleanly: {stopped:?}");
        load.until_answered_more(20).await;
        replicas.apis[i] = Some(world.api_process(replicas.ports[i]));
        healthy(&world, replicas.ports[i]).await;
        replicas.balancer.until_up(2).await;
        load.until_answered_more(20).await;
    }
    // Then the workers, one at a time, while the fan-out goes on.
    for i in 0..2 {
        let stopped = replicas.workers[i]
            .take()
            .expect("a worker")
            .terminate(Duration::from_secs(60))
            .await;
        assert!(stopped.success(), "worker {i} stops cleanly: {stopped:?}");
        replicas.workers[i] = Some(world.worker(&[]));
    }
    let repeated = world
        .until_everyone_heard(&subscribers, Duration::from_secs(300))
        .await;
    let (answered, failures) = load.finish().await;
    eprintln!("{answered} requests answered through the rolling restart");
    assert!(
        failures.is_empty(),
        "requests that failed during the rolling restart: {failures:?}"
    );
    assert_eq!(repeated, 0, "every email sent once");
    drop(replicas);
    world.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_through_one_replica_is_served_by_the_other_within_a_second() {
    const CHANGES: usize = 40;
    let world = World::start().await;
    let replicas = Replicas::start(&world).await;
    let (t, api, _) = journey_setup(&world, &replicas.balancer.url("")).await;
    let slug = slug_of(&world, &t).await;
    let client = client();
    let summary = replicas.direct(1, &format!("/status/{slug}/api/v2/summary.json"));
    // Warm on the second replica: it holds the page before the changes.
    let (status, _) = call(&client, &summary, Method::GET, "", None, None).await;
    assert_eq!(status, StatusCode::OK);
    let mut took = Vec::with_capacity(CHANGES);
    for n in 0..CHANGES {
        let status = if n % 2 == 0 {
            "partial_outage"
        } else {
            "operational"
        };
        let (code, body) = call(
            &client,
            &replicas.direct(0, ""),
            Method::PATCH,
            &format!("/v1/pages/{}/components/{api}", t.page_id),
            Some(&t.token),
            Some(&json!({"component": {"status": status}})),
        )
        .await;
        assert_eq!(code, StatusCode::OK, "{body}");
        // Asked again at once until it shows (not every 50 ms, as `until`
        // does: that would be the resolution of the measure).
        let changed = Instant::now();
        loop {
            let (_, page) = call(&client, &summary, Method::GET, "", None, None).await;
            if page["components"][0]["status"] == status {
                break;
            }
            assert!(
                changed.elapsed() < Duration::from_secs(30),
                "the other replica never served the change"
            );
            tokio::task::yield_now().await;
        }
        took.push(changed.elapsed());
    }
    took.sort();
    let p50 = took[CHANGES / 2];
    let p99 = took[(CHANGES * 99).div_ceil(100) - 1];
    eprintln!(
        "a change through one replica, served by the other: p50 {p50:?}, p99 {p99:?}, max {:?} ({CHANGES} changes)",
        took[CHANGES - 1]
    );
    assert!(
        p99 < Duration::from_secs(1),
        "p99 {p99:?}: a change took more than a second to reach the other replica"
    );
    drop(replicas);
    world.finish().await;
}
