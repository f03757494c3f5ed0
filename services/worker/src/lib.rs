//! The Heliograph worker: relays the outbox to the queues, fans events out to
//! subscribers, and delivers each notification with retry and backoff; and
//! checks the DNS records of custom domains (`domains`); and publishes public
//! pages to object storage when export is on (`export`).
//!
//! ```text
//! outbox (Postgres) ──relay──► fanout queue ──► deliveries rows ──► deliver queue ──► SMTP
//! ```
//!
//! Every step is idempotent: an event relayed twice creates no second
//! delivery (one per event × subscriber × channel), and a delivery marked
//! sent is never claimed again. Run as many workers as needed.
//!
//! This module declares the jobs: each job type's `impl Job` names its
//! queue and its handler, and [`JOBS`] lists them once for the run loop,
//! the janitor, `/metrics` and the tests' drain. Whether a job's failure is
//! retried is decided in one place, `From<Error> for JobError` (`error`).
//! What each job does lives in its module (`fanout`, `deliver`, `account`,
//! `domains`, `export`); the rules it applies live in the domain crate.
//!
//! The file is long (over 700 lines) because it is the one list of what the
//! worker runs: each job kind with its wire format (deliver jobs read the
//! format of earlier releases too), the context every job shares, and the
//! clocks and the sweeper that re-queue what a lost job left.

mod account;
mod billing;
pub mod config;
mod deliver;
pub mod domains;
mod error;
pub mod export;
mod fanout;
pub mod metrics;
mod notice;
mod relay;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use heliograph_auth::{LinkSigner, SecretsKeyring};
use heliograph_domain::{Channel, DeliveryId, DomainId, EventId, PublicUrls, TenantId};
use heliograph_jobs::{Job, JobKind, Queues, Registry};
use heliograph_notify::{Mailer, RetryPolicy, TwilioSms, WebhookClient};
use heliograph_store::{Store, StoreError};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

pub use billing::{Reconciled, reconcile as reconcile_billing};
pub use config::{ChannelConfig, SmsConfig, SmsVelocity, WorkerConfig};
pub use domains::{DnsChecker, DomainChecks, check_domain, tick_domains};
pub use error::Error;
pub use fanout::{BATCH as FAN_OUT_BATCH, BULK_AHEAD, EVENT_AHEAD};
pub use notice::EventCache;
pub use relay::relay_pending;

/// Fan an outbox event out to the subscribers it concerns, one batch per job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FanOut {
    /// The event's tenant.
    pub tenant_id: TenantId,
    /// The event.
    pub event_id: EventId,
    /// Where the previous batch ended (subscriber id); none for the first batch.
    #[serde(default)]
    pub after: Option<uuid::Uuid>,
}

impl FanOut {
    /// The first batch of `event`.
    #[must_use]
    pub const fn new(tenant_id: TenantId, event_id: EventId) -> Self {
        Self {
            tenant_id,
            event_id,
            after: None,
        }
    }
}

impl Job for FanOut {
    const QUEUE: &'static str = "fanout";
    type Context = Context;
    type Error = Error;
    fn run(self, ctx: Context) -> impl Future<Output = Result<(), Error>> + Send {
        // `incident.id` is recorded once the event is read.
        let span = tracing::info_span!(
            "fanout",
            tenant.id = %self.tenant_id,
            event.id = %self.event_id,
            incident.id = tracing::field::Empty,
        );
        fanout::handle(self, ctx).instrument(span)
    }
}

/// Send a batch of deliveries of one tenant (usually of one event and one
/// channel): claimed, sent and recorded a group at a time (`deliver`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(from = "DeliverWire")]
pub struct Deliver {
    /// The deliveries' tenant.
    pub tenant_id: TenantId,
    /// The deliveries.
    pub delivery_ids: Vec<DeliveryId>,
    /// Their channel when they share one (it sizes the groups).
    #[serde(default)]
    pub channel: Option<Channel>,
}

/// A deliver job as any release wrote it: before batches, a job carried
/// one `delivery_id`; such jobs still in Redis during an upgrade are read
/// as batches of one.
#[derive(Deserialize)]
struct DeliverWire {
    tenant_id: TenantId,
    #[serde(default)]
    delivery_ids: Vec<DeliveryId>,
    #[serde(default)]
    delivery_id: Option<DeliveryId>,
    #[serde(default)]
    channel: Option<Channel>,
}

impl From<DeliverWire> for Deliver {
    fn from(w: DeliverWire) -> Self {
        let mut delivery_ids = w.delivery_ids;
        delivery_ids.extend(w.delivery_id);
        Self {
            tenant_id: w.tenant_id,
            delivery_ids,
            channel: w.channel,
        }
    }
}

/// A deliver job's span: its tenant, how many deliveries, and the
/// delivery's id when there is one (a batch's failures name theirs in
/// their own lines).
fn deliver_span(tenant: TenantId, ids: &[DeliveryId]) -> tracing::Span {
    match ids {
        [only] => {
            tracing::info_span!("deliver", tenant.id = %tenant, deliveries = 1_usize, delivery.id = %only)
        }
        _ => tracing::info_span!("deliver", tenant.id = %tenant, deliveries = ids.len()),
    }
}

impl Deliver {
    /// A job for one delivery.
    #[must_use]
    pub fn one(tenant_id: TenantId, delivery_id: DeliveryId) -> Self {
        Self {
            tenant_id,
            delivery_ids: vec![delivery_id],
            channel: None,
        }
    }
}

impl Job for Deliver {
    const QUEUE: &'static str = "deliver";
    type Context = Context;
    type Error = Error;
    fn run(self, ctx: Context) -> impl Future<Output = Result<(), Error>> + Send {
        let span = deliver_span(self.tenant_id, &self.delivery_ids);
        deliver::handle(self, ctx, deliver::Lane::First).instrument(span)
    }
}

/// A batch of a large fan-out's later deliveries: the same work as
/// [`Deliver`], in a lane of its own so that it never holds back the first
/// batch of another event (see `fanout`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(from = "DeliverWire")]
pub struct BulkDeliver {
    /// The deliveries' tenant.
    pub tenant_id: TenantId,
    /// The deliveries.
    pub delivery_ids: Vec<DeliveryId>,
    /// Their channel when they share one.
    #[serde(default)]
    pub channel: Option<Channel>,
}

impl From<DeliverWire> for BulkDeliver {
    fn from(w: DeliverWire) -> Self {
        let job = Deliver::from(w);
        Self {
            tenant_id: job.tenant_id,
            delivery_ids: job.delivery_ids,
            channel: job.channel,
        }
    }
}

impl Job for BulkDeliver {
    const QUEUE: &'static str = "deliver-bulk";
    type Context = Context;
    type Error = Error;
    fn run(self, ctx: Context) -> impl Future<Output = Result<(), Error>> + Send {
        let span = deliver_span(self.tenant_id, &self.delivery_ids);
        deliver::handle(self.into(), ctx, deliver::Lane::Bulk).instrument(span)
    }
}

impl From<BulkDeliver> for Deliver {
    fn from(job: BulkDeliver) -> Self {
        Self {
            tenant_id: job.tenant_id,
            delivery_ids: job.delivery_ids,
            channel: job.channel,
        }
    }
}

/// Send one account email (verification, password reset).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccountEmail {
    /// The link's row in `account_tokens`.
    pub link_id: uuid::Uuid,
}

impl Job for AccountEmail {
    const QUEUE: &'static str = "account-email";
    type Context = Context;
    type Error = Error;
    fn run(self, ctx: Context) -> impl Future<Output = Result<(), Error>> + Send {
        let span = tracing::info_span!("account email", link.id = %self.link_id);
        account::handle(self, ctx).instrument(span)
    }
}

/// Send one team invitation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InvitationEmail {
    /// The inviting tenant.
    pub tenant_id: TenantId,
    /// The invitation.
    pub invitation_id: uuid::Uuid,
}

impl Job for InvitationEmail {
    const QUEUE: &'static str = "invitation-email";
    type Context = Context;
    type Error = Error;
    fn run(self, ctx: Context) -> impl Future<Output = Result<(), Error>> + Send {
        let span = tracing::info_span!("invitation email", tenant.id = %self.tenant_id, invitation.id = %self.invitation_id);
        account::handle_invitation(self, ctx).instrument(span)
    }
}

/// Email a team's owners a billing notice (payments failing).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BillingNotice {
    /// The team.
    pub tenant_id: TenantId,
    /// The notice's row in `billing_notices`.
    pub notice_id: uuid::Uuid,
}

impl Job for BillingNotice {
    const QUEUE: &'static str = "billing-notice";
    type Context = Context;
    type Error = Error;
    fn run(self, ctx: Context) -> impl Future<Output = Result<(), Error>> + Send {
        let span = tracing::info_span!("billing notice", tenant.id = %self.tenant_id, notice.id = %self.notice_id);
        billing::send_notice(self, ctx).instrument(span)
    }
}

/// Check one custom domain's DNS records now (the API asked for it).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VerifyDomain {
    /// The domain's tenant.
    pub tenant_id: TenantId,
    /// The domain.
    pub domain_id: DomainId,
}

impl Job for VerifyDomain {
    const QUEUE: &'static str = "verify-domain";
    type Context = Context;
    type Error = Error;
    fn run(self, ctx: Context) -> impl Future<Output = Result<(), Error>> + Send {
        // `check_domain` opens the span (the domain clock calls it too).
        domains::handle(self, ctx)
    }
}

/// Publish one page's documents to the export bucket, or delete what it
/// no longer has (`export`); nothing when export is off. Idempotent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExportPage {
    /// The page (its tenant is read afresh: the page may be gone).
    pub page_id: heliograph_domain::PageId,
}

impl Job for ExportPage {
    const QUEUE: &'static str = "export-page";
    type Context = Context;
    type Error = Error;
    fn run(self, ctx: Context) -> impl Future<Output = Result<(), Error>> + Send {
        let span = tracing::info_span!("export page", page.id = %self.page_id);
        export::handle(self, ctx).instrument(span)
    }
}

/// Look for pages the export bucket holds that are gone from the database,
/// and queue their deletion (`export`); nothing when export is off. Idempotent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExportSweep {}

impl Job for ExportSweep {
    const QUEUE: &'static str = "export-sweep";
    type Context = Context;
    type Error = Error;
    fn run(self, ctx: Context) -> impl Future<Output = Result<(), Error>> + Send {
        export::sweep(ctx).instrument(tracing::info_span!("export sweep"))
    }
}

/// Every kind of job the worker runs: the one list the run loop, the
/// janitor, `/metrics` and the tests' drain read. A job kind declares its
/// queue and its handler in its `impl Job`; listing it here is what makes
/// the worker run it.
pub static JOBS: Registry<Context> = Registry::new(&[
    JobKind::of::<FanOut>(),
    JobKind::of::<Deliver>(),
    JobKind::of::<BulkDeliver>(),
    JobKind::of::<AccountEmail>(),
    JobKind::of::<InvitationEmail>(),
    JobKind::of::<VerifyDomain>(),
    JobKind::of::<BillingNotice>(),
    JobKind::of::<ExportPage>(),
    JobKind::of::<ExportSweep>(),
]);

/// What the jobs share. Cheap to clone.
#[derive(Clone)]
pub struct Context(Arc<Inner>);

/// The parts of [`Context`].
pub struct Inner {
    /// The database.
    pub store: Store,
    /// The job queues.
    pub queues: Queues,
    /// The SMTP sender.
    pub mailer: Mailer,
    /// For links in notifications.
    pub urls: PublicUrls,
    /// When to retry a failed email.
    pub email_retry: RetryPolicy,
    /// Signs account links.
    pub links: LinkSigner,
    /// Opens sealed secrets (webhook signing secrets, Slack and Teams URLs)
    /// where a delivery is signed or sent, and nowhere else.
    pub secrets: Arc<SecretsKeyring>,
    /// How long before a maintenance window its reminder goes out.
    pub maintenance_reminder: Duration,
    /// Custom domain checks: the resolver, the CNAME target, the cadence.
    pub domains: DomainChecks,
    /// The webhook, Slack, Teams and SMS senders.
    pub channels: Channels,
    /// What events say, read once per event.
    pub events: notice::EventCache,
    /// Billing: with it on, deliveries keep to the plan's monthly limits
    /// on texts and emails (`deliver`); with it off, nothing is read.
    pub billing: heliograph_billing::Billing,
    /// Delivery groups with a transaction open, at most: fewer than the
    /// database pool's connections, so that groups waiting on slow
    /// receivers never starve the relay, the fan-out and the clocks of a
    /// connection ([`DeliverySlots::for_pool`]).
    pub delivery_slots: DeliverySlots,
    /// Fires when the worker is stopping: a deliver job then finishes the
    /// groups in hand and queues the rest of its batch again (`deliver`),
    /// rather than sending a whole batch on the way out. `run` fires it.
    pub stopping: CancellationToken,
    /// Page export to object storage (`SNAPSHOT_BUCKET_URL`); `None`: off.
    pub export: Option<Arc<export::PageExport>>,
}

/// Places for delivery groups' transactions (see [`Inner::delivery_slots`]).
#[derive(Debug)]
pub struct DeliverySlots(tokio::sync::Semaphore);

impl DeliverySlots {
    /// Slots for a database pool of `connections`: all but two of them
    /// (at least one), the two left for everything else.
    #[must_use]
    pub fn for_pool(connections: u32) -> Self {
        let slots = usize::try_from(connections.saturating_sub(2).max(1)).unwrap_or(1);
        Self(tokio::sync::Semaphore::new(slots))
    }

    /// A slot, waiting for one.
    pub(crate) async fn take(&self) -> tokio::sync::SemaphorePermit<'_> {
        self.0
            .acquire()
            .await
            .expect("the delivery slots are never closed")
    }
}

/// The senders of the channels other than email, and their policies.
pub struct Channels {
    /// Posts to webhook, Slack and Teams URLs, through the SSRF guard.
    pub http: WebhookClient,
    /// When to retry a webhook, Slack or Teams delivery.
    pub webhook_retry: RetryPolicy,
    /// The SMS provider, if one is configured.
    pub sms: Option<TwilioSms>,
    /// When to retry an SMS.
    pub sms_retry: RetryPolicy,
    /// Texts per tenant per month, unless the tenant has its own budget.
    pub sms_monthly_budget: i32,
    /// Confirmation codes per tenant per month, apart from the texts above.
    pub sms_confirmation_monthly_budget: i32,
    /// The platform's hourly limits on confirmation codes.
    pub sms_velocity: SmsVelocity,
    /// Texts not sent, by why, since the process started (for `/metrics`).
    pub sms_refused: SmsRefusals,
    /// Notification emails not sent because the plan's `emails_per_month`
    /// was reached, since the process started (for `/metrics`).
    pub emails_over_plan: std::sync::atomic::AtomicU64,
    /// Where webhook payloads are documented.
    pub webhook_docs_url: String,
}

/// Why a text was not sent: the refusals `/metrics` counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmsRefusal {
    /// The page has SMS turned off.
    SmsOff,
    /// Too many confirmation codes to the number's range this hour.
    RangeVelocity,
    /// Too many confirmation codes for the page this hour.
    PageVelocity,
    /// The tenant's monthly budget of confirmation codes is spent.
    ConfirmationBudget,
    /// The tenant's monthly budget of notification texts is spent.
    NotificationBudget,
    /// The plan's `texts_per_month` is reached (billing on).
    PlanLimit,
}

impl SmsRefusal {
    /// Every refusal, in the order `/metrics` lists them.
    pub const ALL: [Self; 6] = [
        Self::SmsOff,
        Self::RangeVelocity,
        Self::PageVelocity,
        Self::ConfirmationBudget,
        Self::NotificationBudget,
        Self::PlanLimit,
    ];

    /// Its `reason` label.
    #[must_use]
    pub const fn label(self) -> &'static str {
        match self {
            Self::SmsOff => "sms_off",
            Self::RangeVelocity => "range_velocity",
            Self::PageVelocity => "page_velocity",
            Self::ConfirmationBudget => "confirmation_budget",
            Self::NotificationBudget => "notification_budget",
            Self::PlanLimit => "plan_limit",
        }
    }

    /// What the delivery log records (no number in it).
    #[must_use]
    pub const fn reason(self) -> &'static str {
        match self {
            Self::SmsOff => "SMS is turned off for this page",
            Self::RangeVelocity => {
                "refused: too many confirmation codes to this number's range this hour (platform limit)"
            }
            Self::PageVelocity => "refused: too many confirmation codes for this page this hour",
            Self::ConfirmationBudget => "this month's budget of confirmation texts is spent",
            Self::NotificationBudget => "this month's SMS budget is spent",
            Self::PlanLimit => "the plan's texts_per_month limit is reached this month",
        }
    }
}

/// Counts of [`SmsRefusal`]s since the process started.
#[derive(Debug, Default)]
pub struct SmsRefusals([std::sync::atomic::AtomicU64; SmsRefusal::ALL.len()]);

impl SmsRefusals {
    /// Counts one refusal.
    pub fn count(&self, refusal: SmsRefusal) {
        self.0[refusal as usize].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// How many of `refusal` so far.
    #[must_use]
    pub fn get(&self, refusal: SmsRefusal) -> u64 {
        self.0[refusal as usize].load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Channels {
    /// The senders `config` describes.
    pub fn new(config: &ChannelConfig) -> anyhow::Result<Self> {
        let http = WebhookClient::new(
            config.allow,
            config.webhook_timeout,
            "Heliograph-Webhooks/1",
        )
        .context("Failed to build the webhook client")?;
        let sms = config
            .sms
            .as_ref()
            .map(|s| TwilioSms::new(&s.url, &s.account_sid, s.auth_token.clone(), s.from.clone()))
            .transpose()
            .context("Failed to build the SMS client")?;
        Ok(Self {
            http,
            webhook_retry: config.webhook_retry.clone(),
            sms,
            sms_retry: config.sms_retry.clone(),
            sms_monthly_budget: config.sms_monthly_budget,
            sms_confirmation_monthly_budget: config.sms_confirmation_monthly_budget,
            sms_velocity: config.sms_velocity,
            sms_refused: SmsRefusals::default(),
            emails_over_plan: std::sync::atomic::AtomicU64::new(0),
            webhook_docs_url: config.webhook_docs_url.clone(),
        })
    }
}

impl std::ops::Deref for Context {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl Context {
    /// A context from its parts.
    #[must_use]
    pub fn new(inner: Inner) -> Self {
        Self(Arc::new(inner))
    }

    /// Connects to PostgreSQL and Redis; each failure names its setting.
    pub async fn connect(config: &WorkerConfig) -> anyhow::Result<Self> {
        // Settings first, connections after: a typo is reported as a typo.
        let mailer = Mailer::with_settings(
            config.smtp_url.expose_secret(),
            config.email_from.clone(),
            config.smtp,
        )
        .context("SMTP_URL: is malformed")?;
        let dns = DnsChecker::new(config.dns_nameserver, domains::DNS_TIMEOUT).context(
            "DNS_NAMESERVER: is not set and the system's resolver configuration cannot be read",
        )?;
        let channels = Channels::new(&config.channels)?;
        let export = config
            .export
            .as_ref()
            .map(|e| export::PageExport::new(e, &config.redis_url, &config.queue_namespace))
            .transpose()?
            .map(Arc::new);
        let store = Store::connect_with(
            config.database_url.expose_secret(),
            heliograph_store::PoolSettings {
                max_connections: config.database_max_connections,
                acquire_timeout: config.database_acquire_timeout,
                statement_timeout: config.database_statement_timeout,
                // Batches take a connection per group, in steady use: a
                // ping before each would be one more round trip per group.
                ping_after_idle: Some(Duration::from_secs(10)),
                pooler: config.database_pooler,
            },
        )
        .await
        .map_err(|err| {
            let step = err.connect_step();
            anyhow::Error::new(err).context(step)
        })?
        .with_listen_url(
            config
                .database_listen_url
                .as_ref()
                .map(ExposeSecret::expose_secret),
        );
        if config.database_listen_url.is_some() {
            // Checked at start, as DATABASE_URL is: a wrong URL is a refusal
            // to start, not a relay that quietly falls back to polling.
            store
                .listen_outbox()
                .await
                .context("DATABASE_LISTEN_URL: cannot LISTEN there")?;
        }
        let redis =
            heliograph_jobs::connect(config.redis_url.expose_secret(), Duration::from_secs(5))
                .await
                .context("REDIS_URL: cannot connect to Redis")?;

        Ok(Self::new(Inner {
            store,
            queues: Queues::new(redis, config.queue_namespace.clone()),
            mailer,
            urls: config.urls.clone(),
            email_retry: config.channels.email_retry.clone(),
            channels,
            events: notice::EventCache::default(),
            billing: config.billing.clone(),
            delivery_slots: DeliverySlots::for_pool(config.database_max_connections),
            stopping: CancellationToken::new(),
            export,
            links: LinkSigner::new(config.link_secret.clone())
                .context("LINK_SECRET: must be at least 32 bytes")?,
            secrets: Arc::clone(&config.secrets),
            maintenance_reminder: config.maintenance_reminder,
            domains: DomainChecks {
                dns,
                policy: config.custom_domains.clone(),
                recheck: config.domain_recheck,
                grace: config.domain_grace,
                pending_period: config.domain_pending_period,
            },
        }))
    }
}

/// Runs the relay, a worker for every kind of job in [`JOBS`], the clocks
/// and the janitor (every `janitor_interval`) until `shutdown` fires; then
/// lets the jobs in hand finish.
pub async fn run(
    ctx: Context,
    concurrency: usize,
    outbox_poll_interval: Duration,
    janitor_interval: Duration,
    shutdown: CancellationToken,
) {
    let stopping = ctx.stopping.clone();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        stop.cancelled().await;
        stopping.cancel();
    });
    let mut tasks = vec![(
        "relay",
        tokio::spawn(relay::run(
            ctx.clone(),
            outbox_poll_interval,
            shutdown.clone(),
        )),
    )];
    tasks.extend(JOBS.spawn(&ctx.queues, concurrency, &ctx, &shutdown));
    tasks.push(("clock", tokio::spawn(clock(ctx.clone(), shutdown.clone()))));
    tasks.push((
        "domain clock",
        tokio::spawn(domain_clock(ctx.clone(), shutdown.clone())),
    ));
    tasks.push((
        "billing clock",
        tokio::spawn(billing::clock(
            ctx.clone(),
            BILLING_RECONCILE_INTERVAL,
            shutdown.clone(),
        )),
    ));
    tasks.push((
        "page export",
        tokio::spawn(export::run(ctx.clone(), shutdown.clone())),
    ));
    tasks.push((
        "janitor",
        tokio::spawn(janitor(ctx, janitor_interval, shutdown)),
    ));
    for (task, handle) in tasks {
        if let Err(err) = handle.await {
            tracing::error!(task, error = %err, "worker task panicked");
        }
    }
}

/// How often every subscription is re-read from Stripe (billing on only),
/// so a webhook that never arrived is healed within this.
pub const BILLING_RECONCILE_INTERVAL: Duration = Duration::from_secs(3600);

/// How often the clock looks for maintenances due to remind, start or complete.
pub const CLOCK_INTERVAL: Duration = Duration::from_secs(15);

/// Every [`CLOCK_INTERVAL`]: does what scheduled maintenances have due.
async fn clock(ctx: Context, shutdown: CancellationToken) {
    loop {
        if let Err(err) = tick_maintenance(&ctx, time::OffsetDateTime::now_utc()).await {
            tracing::warn!(error = format!("{err:#}"), "maintenance clock failed");
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(CLOCK_INTERVAL) => {}
        }
    }
}

/// Every [`CLOCK_INTERVAL`]: checks the custom domains due. Its own task,
/// so that slow name servers never hold back the maintenance clock.
async fn domain_clock(ctx: Context, shutdown: CancellationToken) {
    loop {
        if let Err(err) = tick_domains(&ctx, time::OffsetDateTime::now_utc()).await {
            tracing::warn!(error = format!("{err:#}"), "domain clock failed");
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(CLOCK_INTERVAL) => {}
        }
    }
}

/// Reminds, starts and completes the maintenances due at `now`, each in its
/// own transaction (so one tenant's failure holds back no other), writing
/// the updates and outbox events the relay then delivers. Safe to run on
/// several workers at once: each maintenance is re-read under lock. Answers
/// how many steps it took.
pub async fn tick_maintenance(ctx: &Context, now: time::OffsetDateTime) -> anyhow::Result<usize> {
    let mut steps = 0;
    let due = ctx
        .store
        .due_maintenances(now, ctx.maintenance_reminder, 500)
        .await
        .context("Failed to list due maintenances")?;
    for (tenant, id) in due {
        let span = tracing::info_span!("maintenance step", tenant.id = %tenant, incident.id = %id);
        let result = async {
            let mut tx = ctx.store.tenant_tx(tenant).await?;
            let done = tx
                .advance_maintenance(id, now, ctx.maintenance_reminder)
                .await?;
            tx.commit().await?;
            Ok::<_, StoreError>(done)
        }
        .instrument(span.clone())
        .await;
        match result {
            Ok(done) => {
                for kind in &done {
                    tracing::info!(tenant.id = %tenant, incident.id = %id, event.kind = %kind, "maintenance step");
                }
                steps += done.len();
            }
            Err(err) => {
                tracing::warn!(tenant.id = %tenant, incident.id = %id, error = %err, "maintenance step failed");
            }
        }
    }
    if steps > 0 {
        // The triggers logged the change; this only makes the pages show it now.
        if let Err(err) = ctx.queues.nudge_page_changes().await {
            tracing::warn!(error = %err, "could not nudge the public pages; they will poll");
        }
    }
    if let Err(err) = ctx
        .store
        .expire_idempotency_keys(now - time::Duration::hours(24))
        .await
    {
        tracing::warn!(error = %err, "could not expire idempotency keys");
    }
    if let Err(err) = ctx
        .store
        .prune_page_changes(now - time::Duration::hours(1))
        .await
    {
        tracing::warn!(error = %err, "could not prune page changes");
    }
    Ok(steps)
}

/// How long work may look stalled before the sweeper re-queues it.
pub const SWEEP_AFTER: Duration = Duration::from_secs(600);

/// Every `interval`: purges finished job records so Redis does not fill up,
/// and sweeps for work whose job was lost.
async fn janitor(ctx: Context, interval: Duration, shutdown: CancellationToken) {
    loop {
        for (queue, result) in JOBS.purge_finished(&ctx.queues).await {
            if let Err(err) = result {
                tracing::warn!(job.name = queue, error = %err, "could not purge finished jobs");
            }
        }
        if let Err(err) = sweep(&ctx, SWEEP_AFTER).await {
            tracing::warn!(error = format!("{err:#}"), "sweep failed");
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
    }
}

/// Re-queues work stalled for longer than `stale`: fan-outs of relayed
/// events that never finished, and deliveries left pending or failed past
/// their due time. Jobs live in Redis, and this is what makes losing them
/// lose nothing: PostgreSQL says what is left to do. (A lost domain check
/// needs no sweeping: the domain clock checks every domain in time anyway.) Answers how many jobs
/// it queued.
pub async fn sweep(ctx: &Context, stale: Duration) -> anyhow::Result<usize> {
    let mut queued = 0;
    loop {
        let events = ctx.store.restart_stalled_fanouts(stale, 500).await?;
        for e in &events {
            ctx.queues.push(FanOut::new(e.tenant_id, e.id)).await?;
        }
        queued += events.len();
        if events.len() < 500 {
            break;
        }
    }
    loop {
        let deliveries = ctx.store.restart_stalled_deliveries(stale, 500).await?;
        let mut by_tenant: std::collections::BTreeMap<TenantId, Vec<DeliveryId>> =
            std::collections::BTreeMap::new();
        for (tenant_id, delivery_id) in &deliveries {
            by_tenant.entry(*tenant_id).or_default().push(*delivery_id);
        }
        ctx.queues
            .push_all(
                by_tenant
                    .into_iter()
                    .map(|(tenant_id, delivery_ids)| Deliver {
                        tenant_id,
                        delivery_ids,
                        channel: None,
                    }),
            )
            .await?;
        queued += deliveries.len();
        if deliveries.len() < 500 {
            break;
        }
    }
    for link_id in ctx.store.restart_stalled_account_links(stale, 500).await? {
        ctx.queues.push(AccountEmail { link_id }).await?;
        queued += 1;
    }
    for (invitation_id, tenant_id) in ctx.store.restart_stalled_invitations(stale, 500).await? {
        ctx.queues
            .push(InvitationEmail {
                tenant_id,
                invitation_id,
            })
            .await?;
        queued += 1;
    }
    for (notice_id, tenant_id) in ctx
        .store
        .restart_stalled_billing_notices(stale, 500)
        .await?
    {
        ctx.queues
            .push(BillingNotice {
                tenant_id,
                notice_id,
            })
            .await?;
        queued += 1;
    }
    if queued > 0 {
        tracing::warn!(jobs = queued, "re-queued stalled work");
    }
    Ok(queued)
}
