//! The notification delivery benchmark's driver (issue 6, item 11), run by
//! `load-tests/notifications`, which builds it and says what it needs.
//!
//! One run each, all on loopback:
//!
//! - **Emails.** A page with `BENCH_EMAILS` confirmed email subscribers
//!   (inserted with one SQL statement); an incident created through the REST
//!   API; the time until the last message is accepted by a lean
//!   [`SmtpSink`]. The release worker does the sending, as a process of its
//!   own with `SMTP_URL` pointing at the sink. Then a bare lettre loop sends
//!   as many messages, built as the worker's `Mailer` builds them, to the
//!   same sink with as many in flight as the worker's delivery lane runs.
//! - **Webhooks.** The same with `BENCH_WEBHOOKS` webhook subscribers, each
//!   with a URL of its own on one [`HttpReceiver`], against a bare reqwest
//!   loop posting the very bytes the worker posted.
//! - **First delivery.** `BENCH_LATENCY_SAMPLES` incidents, one after
//!   another, on a page with one email and one webhook subscriber: the time
//!   from sending the POST to the sink and the receiver having the delivery.
//!
//! Every subscriber must get exactly one message, with a Message-ID or
//! `webhook-id` of its own; otherwise the run fails.

#![allow(
    clippy::print_stdout,
    reason = "a benchmark reports its figures on standard output"
)]

use std::collections::HashSet;
use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use heliograph_domain::{EmailAddress, Impact, IncidentStatus};
use heliograph_notify::{IncidentEmail, Mailer};
use heliograph_testkit::{HttpReceiver, SinkOptions, SmtpSink};
use lettre::{AsyncSmtpTransport, AsyncTransport as _, Tokio1Executor};
use serde_json::{Value, json};
use sqlx::PgPool;

/// Shared by the API and the worker (≥ 32 bytes each).
const LINK_SECRET: &str = "benchmark-link-secret-benchmark-0123";
const JWT_SECRET: &str = "benchmark-secret-benchmark-secret-0123";
/// The key ring secrets at rest are sealed with in the benchmark.
const SECRETS_KEY: &str = "bench:aGVsaW9ncmFwaC1iZW5jaG1hcmstc2VjcmV0cy1rZXk=";
/// A valid Standard Webhooks secret (`whsec_` and base64 of 24 bytes),
/// shared by every webhook subscriber of the run.
const WEBHOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// The worker's default (`Mailer`): the sender, whose domain names the Message-IDs.
const EMAIL_FROM: &str = "Heliograph <notifications@heliograph.localhost>";
const INCIDENT_BODY: &str = "We are investigating elevated error rates on the API. \
     Some requests fail with a 503; retries usually succeed. Next update within 30 minutes.";

/// What the run is told by its environment (see `load-tests/notifications`).
struct Settings {
    /// The run's database, as a superuser: the driver's own writes.
    database_url: String,
    /// The run's database, as the serving role: the api's and the worker's.
    app_database_url: String,
    redis_url: String,
    namespace: String,
    api_bin: PathBuf,
    worker_bin: PathBuf,
    api_port: u16,
    log_dir: PathBuf,
    emails: usize,
    webhooks: usize,
    samples: usize,
    concurrency: usize,
    phases: Vec<String>,
    timeout: Duration,
}

fn var(name: &str) -> anyhow::Result<String> {
    std::env::var(name).with_context(|| format!("{name} is not set"))
}

fn var_or<T: FromStr>(name: &str, default: T) -> anyhow::Result<T> {
    match std::env::var(name) {
        Ok(raw) if !raw.trim().is_empty() => raw
            .trim()
            .parse()
            .map_err(|_| anyhow::anyhow!("{name}: cannot read {raw:?}")),
        _ => Ok(default),
    }
}

impl Settings {
    fn from_env() -> anyhow::Result<Self> {
        Ok(Self {
            database_url: var("BENCH_DATABASE_URL")?,
            app_database_url: var("BENCH_APP_DATABASE_URL")?,
            redis_url: var("REDIS_URL")?,
            namespace: var("BENCH_NAMESPACE")?,
            api_bin: var("HELIOGRAPH_API_BIN")?.into(),
            worker_bin: var("HELIOGRAPH_WORKER_BIN")?.into(),
            api_port: var_or("BENCH_API_PORT", 18090)?,
            log_dir: var_or("BENCH_LOG_DIR", PathBuf::from("."))?,
            emails: var_or("BENCH_EMAILS", 100_000)?,
            webhooks: var_or("BENCH_WEBHOOKS", 20_000)?,
            samples: var_or("BENCH_LATENCY_SAMPLES", 200)?,
            // The worker's own default, read the way the worker reads it.
            concurrency: var_or("WORKER_CONCURRENCY", 8)?,
            phases: var_or("BENCH_PHASES", "emails,webhooks,latency".to_owned())?
                .split(',')
                .map(|p| p.trim().to_owned())
                .collect(),
            timeout: Duration::from_secs(var_or("BENCH_TIMEOUT_SECONDS", 900)?),
        })
    }

    fn runs(&self, phase: &str) -> bool {
        self.phases.iter().any(|p| p == phase)
    }

    fn api_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.api_port)
    }

    /// What the API and the worker share.
    fn common_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("DATABASE_URL", self.app_database_url.clone()),
            ("REDIS_URL", self.redis_url.clone()),
            ("QUEUE_NAMESPACE", self.namespace.clone()),
            ("PUBLIC_URL", self.api_url()),
            ("CUSTOM_DOMAIN_CNAME_TARGET", "pages.bench.test".to_owned()),
            ("LINK_SECRET", LINK_SECRET.to_owned()),
            ("SECRETS_KEY", SECRETS_KEY.to_owned()),
            ("LOG_FORMAT", "json".to_owned()),
            (
                "RUST_LOG",
                std::env::var("BENCH_RUST_LOG").unwrap_or_else(|_| "warn".to_owned()),
            ),
        ]
    }
}

/// The peak resident memory of process `pid` (`VmHWM`), as text.
fn peak_rss(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:").map(|v| v.trim().to_owned()))
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

/// A child process, killed when dropped.
struct Process {
    name: &'static str,
    child: Child,
}

impl Process {
    fn spawn(
        name: &'static str,
        bin: &PathBuf,
        env: Vec<(&'static str, String)>,
        settings: &Settings,
    ) -> anyhow::Result<Self> {
        let log_path = settings.log_dir.join(format!("{name}.log"));
        let log = File::create(&log_path)
            .with_context(|| format!("Failed to create {}", log_path.display()))?;
        let child = Command::new(bin)
            .envs(env)
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("Failed to start {}", bin.display()))?;
        Ok(Self { name, child })
    }

    /// An error when the process has exited.
    fn check(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "the {} exited ({status}); see its log in BENCH_LOG_DIR",
                self.name
            );
        }
        Ok(())
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // Killed outright: the script deletes the run's queues afterwards.
        drop(self.child.kill());
        drop(self.child.wait());
    }
}

/// The REST API, signed in as the run's tenant owner.
struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    async fn call(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .with_context(|| format!("POST {path}"))?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        ensure!(status.is_success(), "POST {path}: {status} {body}");
        Ok(body)
    }

    async fn open_incident(&self, page: &Page, name: &str) -> anyhow::Result<()> {
        self.call(
            &format!("/v1/pages/{}/incidents", page.id),
            &json!({"incident": {
                "name": name, "status": "investigating", "body": INCIDENT_BODY,
                "deliver_notifications": true,
            }}),
        )
        .await
        .map(drop)
    }
}

/// A status page of the run's tenant.
struct Page {
    id: String,
    name: String,
    url: String,
}

impl Page {
    fn from_json(page: &Value) -> anyhow::Result<Self> {
        let text = |key: &str| {
            page[key]
                .as_str()
                .map(str::to_owned)
                .with_context(|| format!("the page has no {key}: {page}"))
        };
        Ok(Self {
            id: text("id")?,
            name: text("name")?,
            url: text("url")?,
        })
    }
}

/// One timed run of many deliveries.
struct Throughput {
    count: usize,
    elapsed: Duration,
    /// Until the first delivery arrived.
    first: Duration,
    /// Bytes per message (emails) or per request body (webhooks).
    bytes_each: usize,
}

impl Throughput {
    fn rate(&self) -> f64 {
        as_f64(self.count) / self.elapsed.as_secs_f64()
    }
}

fn as_f64(n: usize) -> f64 {
    // Counts here stay far below 2^52.
    u32::try_from(n).map_or(f64::MAX, f64::from)
}

/// Waits until `count()` reaches `target`, printing progress every five seconds;
/// answers when the first of them arrived (relative to `started`).
async fn wait_for_all(
    what: &str,
    count: impl Fn() -> usize,
    base: usize,
    total: usize,
    started: Instant,
    worker: &mut Process,
    timeout: Duration,
) -> anyhow::Result<Duration> {
    let mut first = None;
    let mut last_report = Instant::now();
    let mut last_count = 0;
    loop {
        let done = count().saturating_sub(base);
        if first.is_none() && done > 0 {
            first = Some(started.elapsed());
        }
        if done >= total {
            return Ok(first.unwrap_or_default());
        }
        worker.check()?;
        ensure!(
            started.elapsed() < timeout,
            "{what}: {done} of {total} after {} s",
            timeout.as_secs()
        );
        if last_report.elapsed() >= Duration::from_secs(5) {
            eprintln!(
                "[bench] {what}: {done} of {total} after {:.0} s ({:.0}/s over the last 5 s)",
                started.elapsed().as_secs_f64(),
                as_f64(done - last_count) / last_report.elapsed().as_secs_f64()
            );
            last_report = Instant::now();
            last_count = done;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// The incident email the worker sends, rendered once with an unsubscribe
/// token of the real one's length (a UUID and an HMAC in hex).
fn rendered_email(page: &Page, incident: &str) -> anyhow::Result<heliograph_notify::EmailMessage> {
    let token = format!("{}.{}", uuid::Uuid::new_v4().simple(), "0".repeat(64));
    Ok(IncidentEmail {
        page_name: page.name.clone(),
        page_url: page.url.clone(),
        // The id is not known here; a URL of the real one's length.
        incident_url: format!("{}/incidents/{}", page.url, uuid::Uuid::nil()),
        logo_url: None,
        brand_color: "#0969da".to_owned(),
        incident_name: incident.to_owned(),
        status: IncidentStatus::Investigating,
        impact: Impact::Minor,
        body: INCIDENT_BODY.to_owned(),
        components: Vec::new(),
        unsubscribe_url: format!("{}/unsubscribe?token={token}", page.url),
    }
    .render()?)
}

/// `n` as `bulk-<n>@bench.test`: the inverse of the subscribers' addresses.
fn bulk_index(address: &str) -> Option<usize> {
    address
        .strip_prefix("bulk-")?
        .strip_suffix("@bench.test")?
        .parse()
        .ok()
}

/// Every one of `1..=total` exactly once, as `index` reads them.
fn exactly_once<'a>(
    what: &str,
    items: impl Iterator<Item = &'a str>,
    index: impl Fn(&str) -> Option<usize>,
    total: usize,
) -> anyhow::Result<()> {
    let mut seen = vec![false; total + 1];
    let mut count = 0;
    for item in items {
        let i = index(item)
            .filter(|i| (1..=total).contains(i))
            .with_context(|| format!("{what}: an unexpected recipient {item:?}"))?;
        ensure!(!seen[i], "{what}: recipient {i} got more than one");
        seen[i] = true;
        count += 1;
    }
    ensure!(count == total, "{what}: {count} of {total} recipients");
    Ok(())
}

async fn email_pipeline(
    s: &Settings,
    api: &Api,
    db: &PgPool,
    sink: &SmtpSink,
    worker: &mut Process,
    page: &Page,
) -> anyhow::Result<Throughput> {
    let n = s.emails;
    sqlx::query(
        "insert into subscribers (id, tenant_id, page_id, channel, email, confirmed_at)
         select gen_random_uuid(), tenant_id, id, 'email', 'bulk-' || n || '@bench.test', now()
           from pages, generate_series(1, $2) as n where id = $1::uuid",
    )
    .bind(&page.id)
    .bind(i64::try_from(n)?)
    .execute(db)
    .await
    .context("Failed to insert the email subscribers")?;
    sqlx::query("analyze subscribers").execute(db).await?;

    let base = sink.count();
    let bytes_before = sink.accepted_bytes();
    eprintln!("[bench] emails: {n} subscribers; opening the incident");
    let started = Instant::now();
    api.open_incident(page, "Elevated API errors").await?;
    let first = wait_for_all(
        "emails",
        || sink.count(),
        base,
        n,
        started,
        worker,
        s.timeout,
    )
    .await?;
    let elapsed = started.elapsed();
    // Late duplicates would show within a moment.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mail = sink.messages();
    let ours = &mail[base..];
    ensure!(
        ours.len() == n,
        "emails: the sink has {} messages for {n} subscribers",
        ours.len()
    );
    ensure!(
        ours.iter().all(|m| m.recipients.len() == 1),
        "emails: one recipient each"
    );
    exactly_once(
        "emails",
        ours.iter().map(|m| m.recipients[0].as_str()),
        bulk_index,
        n,
    )?;
    let ids: HashSet<&str> = ours
        .iter()
        .filter_map(|m| m.message_id.as_deref())
        .collect();
    ensure!(ids.len() == n, "emails: {} distinct Message-IDs", ids.len());
    Ok(Throughput {
        count: n,
        elapsed,
        first,
        bytes_each: (sink.accepted_bytes() - bytes_before) / n,
    })
}

async fn email_bare(
    s: &Settings,
    sink: &SmtpSink,
    worker: &mut Process,
    page: &Page,
) -> anyhow::Result<Throughput> {
    let n = s.emails;
    let message = Arc::new(rendered_email(page, "Elevated API errors")?);
    // Builds the very messages `Mailer::send` sends (it is not used to send).
    let builder = Arc::new(Mailer::new(&sink.url(), EMAIL_FROM.parse()?)?);
    // As `Mailer` builds its transport: lettre's default pool (10 idle connections).
    let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&sink.url())?
        .timeout(Some(Duration::from_secs(15)))
        .build();
    let base = sink.count();
    let bytes_before = sink.accepted_bytes();
    let next = Arc::new(AtomicUsize::new(1));
    let started = Instant::now();
    let mut senders = Vec::with_capacity(s.concurrency);
    for _ in 0..s.concurrency {
        let (transport, builder, message, next) = (
            transport.clone(),
            Arc::clone(&builder),
            Arc::clone(&message),
            Arc::clone(&next),
        );
        senders.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i > n {
                    return Ok::<_, anyhow::Error>(());
                }
                let to = EmailAddress::parse("email", &format!("bulk-{i}@bench.test"))
                    .map_err(|e| anyhow::anyhow!("{}", e.message))?;
                let email = builder.message(uuid::Uuid::new_v4(), &to, &message)?;
                transport.send(email).await?;
            }
        }));
    }
    let first = wait_for_all(
        "bare emails",
        || sink.count(),
        base,
        n,
        started,
        worker,
        s.timeout,
    )
    .await?;
    for sender in senders {
        sender.await??;
    }
    let elapsed = started.elapsed();
    let mail = sink.messages();
    exactly_once(
        "bare emails",
        mail[base..].iter().map(|m| m.recipients[0].as_str()),
        bulk_index,
        n,
    )?;
    Ok(Throughput {
        count: n,
        elapsed,
        first,
        bytes_each: (sink.accepted_bytes() - bytes_before) / n,
    })
}

/// What the worker posted to one webhook: replayed by the bare loop.
struct Captured {
    body: Vec<u8>,
    headers: Vec<(String, String)>,
}

async fn webhook_pipeline(
    s: &Settings,
    api: &Api,
    db: &PgPool,
    receiver: &HttpReceiver,
    worker: &mut Process,
    page: &Page,
) -> anyhow::Result<(Throughput, Captured)> {
    let n = s.webhooks;
    sqlx::query(
        "insert into subscribers (id, tenant_id, page_id, channel, endpoint, webhook_secret, confirmed_at)
         select gen_random_uuid(), tenant_id, id, 'webhook', $3 || n, $4, now()
           from pages, generate_series(1, $2) as n where id = $1::uuid",
    )
    .bind(&page.id)
    .bind(i64::try_from(n)?)
    .bind(receiver.url("/hook/"))
    .bind(WEBHOOK_SECRET)
    .execute(db)
    .await
    .context("Failed to insert the webhook subscribers")?;
    sqlx::query("analyze subscribers").execute(db).await?;

    let base = receiver.count();
    eprintln!("[bench] webhooks: {n} subscribers; opening the incident");
    let started = Instant::now();
    api.open_incident(page, "Elevated API errors").await?;
    let first = wait_for_all(
        "webhooks",
        || receiver.count(),
        base,
        n,
        started,
        worker,
        s.timeout,
    )
    .await?;
    let elapsed = started.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let requests = receiver.requests();
    let ours = &requests[base..];
    ensure!(
        ours.len() == n,
        "webhooks: the receiver has {} requests for {n} subscribers",
        ours.len()
    );
    exactly_once(
        "webhooks",
        ours.iter().map(|r| r.path.as_str()),
        |path| path.strip_prefix("/hook/")?.parse().ok(),
        n,
    )?;
    let ids: HashSet<&str> = ours.iter().filter_map(|r| r.header("webhook-id")).collect();
    ensure!(
        ids.len() == n,
        "webhooks: {} distinct webhook-ids",
        ids.len()
    );
    let sample = ours.first().context("no webhook arrived")?;
    let bytes: usize = ours.iter().map(|r| r.body.len()).sum();
    let captured = Captured {
        body: sample.body.clone(),
        headers: sample
            .headers
            .iter()
            .filter(|(name, _)| name == "content-type" || name.starts_with("webhook-"))
            .cloned()
            .collect(),
    };
    Ok((
        Throughput {
            count: n,
            elapsed,
            first,
            bytes_each: bytes / n,
        },
        captured,
    ))
}

async fn webhook_bare(
    s: &Settings,
    receiver: &HttpReceiver,
    worker: &mut Process,
    captured: Captured,
) -> anyhow::Result<Throughput> {
    let n = s.webhooks;
    // As `WebhookClient` builds its client, but for its guarded resolver
    // (the URLs here are IP literals, which never reach a resolver).
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .user_agent("Heliograph-Webhooks/1")
        .build()?;
    let captured = Arc::new(captured);
    let base = receiver.count();
    let next = Arc::new(AtomicUsize::new(1));
    let started = Instant::now();
    let mut senders = Vec::with_capacity(s.concurrency);
    for _ in 0..s.concurrency {
        let (client, captured, next) = (client.clone(), Arc::clone(&captured), Arc::clone(&next));
        let prefix = receiver.url("/bare/");
        senders.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i > n {
                    return Ok::<_, anyhow::Error>(());
                }
                let mut request = client.post(format!("{prefix}{i}"));
                for (name, value) in &captured.headers {
                    request = request.header(name, value);
                }
                let status = request.body(captured.body.clone()).send().await?.status();
                ensure!(status.is_success(), "the receiver answered {status}");
            }
        }));
    }
    let first = wait_for_all(
        "bare webhooks",
        || receiver.count(),
        base,
        n,
        started,
        worker,
        s.timeout,
    )
    .await?;
    for sender in senders {
        sender.await??;
    }
    let elapsed = started.elapsed();
    let requests = receiver.requests();
    exactly_once(
        "bare webhooks",
        requests[base..].iter().map(|r| r.path.as_str()),
        |path| path.strip_prefix("/bare/")?.parse().ok(),
        n,
    )?;
    Ok(Throughput {
        count: n,
        elapsed,
        first,
        bytes_each: captured.body.len(),
    })
}

/// Milliseconds from sending the POST to each channel's delivery, one pair per incident.
struct Latencies {
    email: Vec<f64>,
    webhook: Vec<f64>,
    post: Vec<f64>,
}

async fn first_delivery(
    s: &Settings,
    api: &Api,
    db: &PgPool,
    sink: &SmtpSink,
    receiver: &HttpReceiver,
    worker: &mut Process,
    page: &Page,
) -> anyhow::Result<Latencies> {
    sqlx::query(
        "insert into subscribers (id, tenant_id, page_id, channel, email, endpoint, webhook_secret, confirmed_at)
         select gen_random_uuid(), tenant_id, id, c, case when c = 'email' then 'latency@bench.test' end,
                case when c = 'webhook' then $2 end, case when c = 'webhook' then $3 end, now()
           from pages, unnest(array['email', 'webhook']) as c where id = $1::uuid",
    )
    .bind(&page.id)
    .bind(receiver.url("/latency"))
    .bind(WEBHOOK_SECRET)
    .execute(db)
    .await
    .context("Failed to insert the latency subscribers")?;
    let mut out = Latencies {
        email: Vec::new(),
        webhook: Vec::new(),
        post: Vec::new(),
    };
    eprintln!("[bench] first delivery: {} incidents", s.samples);
    let mail_base = sink.count();
    for i in 0..s.samples {
        // Spread over the queues' 200 ms poll, as real incidents would be.
        let pause = u64::try_from(i)? * 61 % 200;
        tokio::time::sleep(Duration::from_millis(pause)).await;
        worker.check()?;
        let (mails, hooks) = (sink.count(), receiver.count());
        let started = Instant::now();
        let (posted, mailed, hooked) = tokio::join!(
            async {
                api.open_incident(page, &format!("Latency sample {i}"))
                    .await
                    .map(|()| started.elapsed())
            },
            async {
                sink.wait_for_count(mails + 1, Duration::from_secs(30))
                    .await
                    .then(|| started.elapsed())
            },
            async {
                receiver
                    .wait_for(hooks + 1, Duration::from_secs(30))
                    .await
                    .then(|| started.elapsed())
            },
        );
        out.post.push(ms(posted?));
        out.email.push(ms(
            mailed.with_context(|| format!("incident {i}: no email within 30 s"))?
        ));
        out.webhook.push(ms(
            hooked.with_context(|| format!("incident {i}: no webhook within 30 s"))?
        ));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    ensure!(
        sink.count() - mail_base == s.samples && sink.count_for("latency@bench.test") == s.samples,
        "first delivery: {} emails for {} incidents",
        sink.count() - mail_base,
        s.samples
    );
    ensure!(
        receiver.requests_to("/latency").len() == s.samples,
        "first delivery: {} webhooks for {} incidents",
        receiver.requests_to("/latency").len(),
        s.samples
    );
    Ok(out)
}

/// The nearest-rank percentile `p` (0–100) of `values`.
fn percentile(values: &[f64], p: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p / 100.0 * as_f64(sorted.len())).ceil().max(1.0);
    // The rank is within 1..=len, which fits a usize.
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "a rank between 1 and the length"
    )]
    let index = rank as usize - 1;
    sorted[index.min(sorted.len() - 1)]
}

async fn signup(s: &Settings, http: &reqwest::Client) -> anyhow::Result<(Api, Page)> {
    let id = uuid::Uuid::new_v4();
    let suffix = &id.simple().to_string()[..10];
    // Signups are limited per address (10 an hour), under a Redis key that
    // no queue namespace separates: each run signs up from an address of
    // its own in the benchmarking range (RFC 2544), as the tests do, so that
    // runs neither run out nor use up 127.0.0.1's allowance.
    let [.., a, b] = *id.as_bytes();
    let response = http
        .post(format!("{}/v1/signup", s.api_url()))
        .header("x-forwarded-for", format!("198.18.{a}.{b}"))
        .json(&json!({
            "name": "Notification benchmark", "slug": format!("bench-{suffix}"),
            "email": format!("owner-{suffix}@bench.test"), "password": "benchmark-password-1",
        }))
        .send()
        .await?;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    ensure!(status.is_success(), "signup: {status} {body}");
    let api = Api {
        http: http.clone(),
        base: s.api_url(),
        token: body["token"].as_str().context("a token")?.to_owned(),
    };
    Ok((api, Page::from_json(&body["page"])?))
}

async fn new_page(api: &Api, name: &str) -> anyhow::Result<Page> {
    let subdomain = format!(
        "{}-{}",
        name.to_lowercase(),
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    );
    let body = api
        .call(
            "/v1/pages",
            &json!({"page": {"name": name, "subdomain": subdomain}}),
        )
        .await?;
    Page::from_json(&body)
}

async fn wait_for_api(
    s: &Settings,
    http: &reqwest::Client,
    api: &mut Process,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        api.check()?;
        if let Ok(r) = http.get(format!("{}/healthz", s.api_url())).send().await
            && r.status().is_success()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("the api did not answer /healthz within 30 s")
}

fn ratio_line(name: &str, unit: &str, ours: &Throughput, bare: &Throughput) {
    println!(
        "{name:<10} {:>8} {unit:<4} {:>12.0} {:>12.0} {:>7.2} {:>10.1} {:>10.1} {:>9.0} {:>8}",
        ours.count,
        ours.rate(),
        bare.rate(),
        ours.rate() / bare.rate(),
        ours.elapsed.as_secs_f64(),
        bare.elapsed.as_secs_f64(),
        ms(ours.first),
        ours.bytes_each,
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "MISSED" }
}

async fn run() -> anyhow::Result<()> {
    let s = Settings::from_env()?;
    rustls::crypto::ring::default_provider()
        .install_default()
        .map_err(|_| anyhow::anyhow!("a rustls crypto provider was already installed"))?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let db = PgPool::connect(&s.database_url)
        .await
        .context("BENCH_DATABASE_URL: cannot connect")?;
    let sink = SmtpSink::start_with(SinkOptions::lean()).await?;
    let receiver = HttpReceiver::start().await?;

    let mut api_env = s.common_env();
    api_env.extend([
        ("BIND_ADDR", format!("127.0.0.1:{}", s.api_port)),
        // For the signup's address (see `signup`).
        ("TRUST_PROXY_HEADERS", "true".to_owned()),
        ("JWT_SECRET", JWT_SECRET.to_owned()),
        ("ACCESS_TOKEN_TTL_MINUTES", "60".to_owned()),
    ]);
    let mut api_process = Process::spawn("api", &s.api_bin, api_env, &s)?;
    let mut worker_env = s.common_env();
    worker_env.extend([
        ("SMTP_URL", sink.url()),
        ("WEBHOOK_ALLOW_LOOPBACK", "true".to_owned()),
        // Off: another worker on this machine may hold the default port.
        ("METRICS_ADDR", String::new()),
        ("WORKER_CONCURRENCY", s.concurrency.to_string()),
    ]);
    // The SMTP pool's settings, when the run names them.
    for name in ["SMTP_POOL_SIZE", "SMTP_MAX_MESSAGES_PER_SESSION"] {
        if let Ok(value) = std::env::var(name) {
            worker_env.push((name, value));
        }
    }
    let mut worker = Process::spawn("worker", &s.worker_bin, worker_env, &s)?;
    wait_for_api(&s, &http, &mut api_process).await?;

    let (api, email_page) = signup(&s, &http).await?;
    // The signup's verification email: once it is in, the worker is up.
    let deadline = Instant::now() + Duration::from_secs(60);
    while sink.count() == 0 {
        worker.check()?;
        ensure!(
            Instant::now() < deadline,
            "the worker sent no verification email within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let hooks_page = new_page(&api, "Hooks").await?;
    let latency_page = new_page(&api, "Latency").await?;

    let emails = if s.runs("emails") {
        let ours = email_pipeline(&s, &api, &db, &sink, &mut worker, &email_page).await?;
        eprintln!(
            "[bench] emails: the worker's peak RSS so far {}",
            peak_rss(worker.child.id())
        );
        eprintln!("[bench] emails: bare lettre loop");
        let bare = email_bare(&s, &sink, &mut worker, &email_page).await?;
        Some((ours, bare))
    } else {
        None
    };
    let webhooks = if s.runs("webhooks") {
        let (ours, captured) =
            webhook_pipeline(&s, &api, &db, &receiver, &mut worker, &hooks_page).await?;
        eprintln!("[bench] webhooks: bare reqwest loop");
        let bare = webhook_bare(&s, &receiver, &mut worker, captured).await?;
        Some((ours, bare))
    } else {
        None
    };
    let latency = if s.runs("latency") {
        Some(first_delivery(&s, &api, &db, &sink, &receiver, &mut worker, &latency_page).await?)
    } else {
        None
    };
    api_process.check()?;

    println!();
    println!(
        "{:<10} {:>8} {:<4} {:>12} {:>12} {:>7} {:>10} {:>10} {:>9} {:>8}",
        "channel",
        "count",
        "",
        "heliograph/s",
        "bare/s",
        "ratio",
        "helio s",
        "bare s",
        "first ms",
        "bytes"
    );
    if let Some((ours, bare)) = &emails {
        ratio_line("email", "msgs", ours, bare);
    }
    if let Some((ours, bare)) = &webhooks {
        ratio_line("webhook", "reqs", ours, bare);
    }
    if let Some(l) = &latency {
        println!();
        println!(
            "first delivery after the incident POST, {} incidents one after another (ms):",
            l.email.len()
        );
        println!("{:<10} {:>8} {:>8} {:>8}", "", "p50", "p99", "max");
        for (name, values) in [
            ("email", &l.email),
            ("webhook", &l.webhook),
            ("POST only", &l.post),
        ] {
            println!(
                "{name:<10} {:>8.1} {:>8.1} {:>8.1}",
                percentile(values, 50.0),
                percentile(values, 99.0),
                percentile(values, 100.0)
            );
        }
    }
    println!();
    println!(
        "worker: WORKER_CONCURRENCY={} (jobs per queue), SMTP_POOL_SIZE={}; the bare loops keep {} in flight",
        s.concurrency,
        std::env::var("SMTP_POOL_SIZE").unwrap_or_else(|_| "2 (default)".to_owned()),
        s.concurrency
    );
    println!("worker peak RSS (VmHWM): {}", peak_rss(worker.child.id()));
    println!("goals:");
    if let Some((ours, bare)) = &emails {
        println!(
            "  emails   >= 0.7 of bare lettre: {:.2} {}",
            ours.rate() / bare.rate(),
            met(ours.rate() / bare.rate() >= 0.7)
        );
        println!(
            "  {} emails in {:.1} s",
            ours.count,
            ours.elapsed.as_secs_f64(),
        );
    }
    if let Some((ours, bare)) = &webhooks {
        println!(
            "  webhooks >= 0.5 of bare reqwest: {:.2} {}",
            ours.rate() / bare.rate(),
            met(ours.rate() / bare.rate() >= 0.5)
        );
    }
    if let Some(l) = &latency {
        for (name, values) in [("email", &l.email), ("webhook", &l.webhook)] {
            let (p50, p99) = (percentile(values, 50.0), percentile(values, 99.0));
            println!(
                "  first {name} p50 < 25 ms and p99 < 50 ms: {p50:.1} / {p99:.1} ms {}",
                met(p50 < 25.0 && p99 < 50.0)
            );
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("[bench] error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
