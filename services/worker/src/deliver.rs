//! Delivery: sends a batch of notifications and records the outcomes.
//!
//! A deliver job carries a batch of one tenant's deliveries (usually of one
//! event and one channel). It works through them a group at a time
//! ([`group_size`]: 8 emails, 32 webhooks, 8 texts), several groups at
//! once ([`groups_in_flight`]); each group is one transaction:
//!
//! 1. with billing on, the emails' places under the plan's monthly limit
//!    are taken for the whole group in one statement of its own, before the
//!    transaction (the month's row is never locked across a send);
//! 2. the group's deliveries are claimed in one statement (`FOR UPDATE SKIP
//!    LOCKED`, the tenant set once): any already sent, dead, not yet due or
//!    held by another worker are left out;
//! 3. they are sent: emails one after another over one reused SMTP session
//!    (the email rendered once per event, only the recipient's parts per
//!    copy), webhooks all at once (bodies serialized once per event, signed
//!    per delivery), texts one by one;
//! 4. the outcomes are recorded in one statement and committed.
//!
//! Exactly-once per recipient holds as with one delivery per job: a send
//! and its record commit together, so a worker killed mid-group sends the
//! group's uncommitted deliveries again, with the same Message-ID or
//! `webhook-id`. A group being small bounds those repeats: at most the
//! groups in flight at the kill (with the SMTP pool's default, 2 × 8:
//! no more than the 16 jobs in flight of one delivery per job before).
//! Failed deliveries go back to the queue as batches by due time.
//!
//! With billing on, a notification text or email is also counted against
//! the plan's `texts_per_month` / `emails_per_month` (the plan in force
//! now), and skipped, saying so, once the month's are spent
//! (docs/billing.md § Monthly limits in the worker). With billing off
//! nothing about plans is read.
//!
//! The file is long (over 700 lines) because a group's claim, its sends on
//! every channel and its record share one transaction and one list of
//! outcomes: the channel steps (email copies, texts and their limits,
//! webhooks) are parts of that one group, and read the same claimed rows.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use heliograph_auth::{CONFIRM_PURPOSE, OpenError, SMS_CODE_PURPOSE, UNSUBSCRIBE_PURPOSE};
use heliograph_billing::Billing;
use heliograph_domain::delivery::after_attempt;
use heliograph_domain::{
    AttemptOutcome, Channel, DeliveryId, DeliveryStep, EmailAddress, EventId, EventKind, Limit,
    PhoneNumber, TenantId, number_range,
};
use heliograph_notify::payloads::{
    Notice, Spliced, WebhookMeta, slack_body, sms_confirmation_text, sms_text, teams_body,
    webhook_body,
};
use heliograph_notify::{
    ComponentLine, ConfirmationEmail, EmailMessage, HttpOutcome, IncidentEmail, PreparedEmail,
    RetryPolicy, SendError, SmsProvider as _, UNSUBSCRIBE_SLOT, WebhookSecret, signed_headers,
};
use heliograph_store::{
    DeliveryWork, EmailPlace, MonthlyTake, SmsBudget, TenantTx, endpoint_seal_context,
    webhook_secret_seal_context,
};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use crate::notice::{EventView, event_view};
use crate::{BulkDeliver, Context, Deliver, Error, SmsRefusal, SmsVelocity};

/// Why an attempt did not deliver.
struct Failure {
    /// Whether a later attempt may succeed.
    transient: bool,
    /// What to record (no address, number, URL or secret in it).
    error: String,
    /// How long the receiver asked us to wait.
    retry_after: Option<Duration>,
}

impl Failure {
    fn permanent(error: impl Into<String>) -> Self {
        Self {
            transient: false,
            error: error.into(),
            retry_after: None,
        }
    }
}

/// What became of an attempt.
enum Attempt {
    Sent,
    Failed(Failure),
    /// Not sent, and never will be: the reason is recorded.
    Skipped(&'static str),
    /// The target said it wants nothing more (an endpoint's HTTP 410, a
    /// number's STOP): the subscriber is unsubscribed, for the reason given.
    Gone(&'static str),
}

impl From<Attempt> for AttemptOutcome {
    fn from(attempt: Attempt) -> Self {
        match attempt {
            Attempt::Sent => Self::Sent,
            Attempt::Failed(f) => Self::Failed {
                transient: f.transient,
                error: f.error,
                retry_after: f.retry_after,
            },
            Attempt::Skipped(reason) => Self::Skipped(reason),
            Attempt::Gone(reason) => Self::Gone(reason),
        }
    }
}

/// Deliveries claimed, sent and recorded in one transaction: small enough
/// that a kill repeats little, large enough that the database's round
/// trips are a small share of each send.
const fn group_size(channel: Option<Channel>) -> usize {
    match channel {
        Some(Channel::Webhook | Channel::Slack | Channel::Teams) => 32,
        Some(Channel::Sms) => 8,
        Some(Channel::Email) | None => 8,
    }
}

/// Groups of one job worked on at once: for email, as many as the SMTP
/// pool has sessions (more would only wait for one).
fn groups_in_flight(ctx: &Context, channel: Option<Channel>) -> usize {
    match channel {
        Some(Channel::Email) => ctx.mailer.pool().settings().pool_size,
        Some(Channel::Webhook | Channel::Slack | Channel::Teams) => 4,
        Some(Channel::Sms) | None => 1,
    }
}

/// A delivery to try again, after a delay.
struct Retry {
    after: Duration,
    id: DeliveryId,
    channel: Channel,
}

/// Idempotent: each group claims only deliveries still to be sent and due
/// (`SKIP LOCKED`, so a duplicate job or another worker leaves them be),
/// and one whose subscriber left meanwhile is skipped. A failed send is
/// recorded with its error; a transient one is queued again after the
/// channel's retry policy (never sooner than a receiver's `Retry-After`),
/// a permanent one (or one out of attempts) is marked dead. Were the
/// process to die between sending and committing, the next run sends again
/// with the same Message-ID or `webhook-id`, so receivers can tell.
pub async fn handle(job: Deliver, ctx: Context, lane: Lane) -> Result<(), Error> {
    let (tenant, channel) = (job.tenant_id, job.channel);
    let groups: Vec<Vec<DeliveryId>> = job
        .delivery_ids
        .chunks(group_size(job.channel))
        .map(<[DeliveryId]>::to_vec)
        .collect();
    let results: Vec<Result<Group, Error>> = futures::stream::iter(groups)
        .map(|ids| {
            let ctx = ctx.clone();
            async move {
                // Stopping: the groups not yet begun go back to the queue.
                if ctx.stopping.is_cancelled() {
                    return Ok(Group::NotBegun(ids));
                }
                group(&ctx, tenant, &ids).await.map(Group::Done)
            }
        })
        .buffer_unordered(groups_in_flight(&ctx, job.channel))
        .collect()
        .await;
    let mut retries = Vec::new();
    let mut left: Vec<DeliveryId> = Vec::new();
    let mut failed = None;
    for result in results {
        match result {
            Ok(Group::Done(r)) => retries.extend(r),
            Ok(Group::NotBegun(ids)) => left.extend(ids),
            Err(err) => {
                failed.get_or_insert(err);
            }
        }
    }
    requeue(&ctx, tenant, retries).await?;
    if !left.is_empty() {
        let rest = Deliver {
            tenant_id: tenant,
            delivery_ids: left,
            channel,
        };
        match lane {
            Lane::First => ctx.queues.push(rest).await?,
            Lane::Bulk => {
                ctx.queues
                    .push(BulkDeliver {
                        tenant_id: rest.tenant_id,
                        delivery_ids: rest.delivery_ids,
                        channel: rest.channel,
                    })
                    .await?;
            }
        }
    }
    // A group that failed (the database, say) fails the job, which runs
    // again: the groups that were done claim nothing the second time.
    failed.map_or(Ok(()), Err)
}

/// Which queue a deliver job came from (the rest of its batch goes back there).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// `deliver`: the first batch of every event.
    First,
    /// `deliver-bulk`: later batches of large fan-outs.
    Bulk,
}

/// What became of a group.
enum Group {
    /// Sent and recorded; these are to be tried again.
    Done(Vec<Retry>),
    /// Not begun (the worker is stopping): to be queued again.
    NotBegun(Vec<DeliveryId>),
}

/// Queues `retries` again as batches by due time: those due within a
/// second of each other go together, at the latest one's time (none early).
async fn requeue(ctx: &Context, tenant_id: TenantId, mut retries: Vec<Retry>) -> Result<(), Error> {
    retries.sort_by_key(|r| r.after);
    // (first due, last due, job)
    let mut batches: Vec<(Duration, Duration, Deliver)> = Vec::new();
    for r in retries {
        match batches.last_mut() {
            Some((first, last, job))
                if r.after <= *first + Duration::from_secs(1)
                    && job.channel == Some(r.channel)
                    && job.delivery_ids.len() < 500 =>
            {
                job.delivery_ids.push(r.id);
                *last = r.after;
            }
            _ => batches.push((
                r.after,
                r.after,
                Deliver {
                    tenant_id,
                    delivery_ids: vec![r.id],
                    channel: Some(r.channel),
                },
            )),
        }
    }
    for (_, after, job) in batches {
        ctx.queues.push_after(job, after).await?;
    }
    Ok(())
}

/// One group: places, claim, send, record, commit. Answers what to retry.
async fn group(ctx: &Context, tenant: TenantId, ids: &[DeliveryId]) -> Result<Vec<Retry>, Error> {
    let places = email_places(ctx, tenant, ids).await?;
    // A slot first: groups with a transaction open are fewer than the
    // pool's connections. An email group takes its SMTP session only for
    // its sends, after the claim and before the record, so that a session
    // is never idle while a group talks to the database. (No cycle: a
    // group waits for a session only while it holds a slot, and a group
    // with a session never waits for a slot.)
    let _slot = ctx.delivery_slots.take().await;
    let mut tx = ctx.store.tenant_tx(tenant).await?;
    let works = tx.claim_deliveries(ids).await?;
    let place_of = |id: DeliveryId| places.get(&id).copied().unwrap_or(EmailPlace::NotCounted);
    // Places taken for deliveries this group did not claim (sent already,
    // or held by another worker) are the month's again.
    let claimed_places = works
        .iter()
        .filter(|w| place_of(w.id) == EmailPlace::Taken)
        .count();
    let mut give_back =
        places.values().filter(|p| **p == EmailPlace::Taken).count() - claimed_places;

    let mut views: HashMap<EventId, Result<Arc<EventView>, String>> = HashMap::new();
    for work in &works {
        if views.contains_key(&work.event_id) {
            continue;
        }
        let view = match event_view(ctx, &mut tx, tenant, work.event_id).await {
            Ok(view) => Ok(view),
            // What the event says cannot be told (it names what is gone):
            // its deliveries die, visibly, instead of staying pending for ever.
            Err(err) if !err.is_transient() => Err(err.to_string()),
            Err(err) => return Err(err),
        };
        views.insert(work.event_id, view);
    }

    let mut attempts: Vec<Option<Attempt>> = works.iter().map(|_| None).collect();
    let mut emails = Vec::new();
    let mut posts = Vec::new();
    for (i, work) in works.iter().enumerate() {
        if !work.subscriber_active {
            attempts[i] = Some(Attempt::Skipped("the subscriber left before it was sent"));
            continue;
        }
        let view = match &views[&work.event_id] {
            Ok(view) => Arc::clone(view),
            Err(error) => {
                attempts[i] = Some(Attempt::Failed(Failure::permanent(error.clone())));
                continue;
            }
        };
        match work.channel {
            Channel::Email => match email_copy(ctx, work, &view, place_of(work.id))? {
                Ok(copy) => emails.push((i, copy)),
                Err(attempt) => attempts[i] = Some(attempt),
            },
            Channel::Sms => attempts[i] = Some(sms(ctx, &mut tx, work, &view).await?),
            Channel::Webhook | Channel::Slack | Channel::Teams => posts.push((i, view)),
        }
    }
    if !emails.is_empty() {
        let (at, copies): (Vec<usize>, Vec<(lettre::Address, Vec<u8>)>) =
            emails.into_iter().unzip();
        let sent = ctx
            .mailer
            .pool()
            .session()
            .await
            .send_all(ctx.mailer.sender(), &copies)
            .await;
        for (i, result) in at.into_iter().zip(sent) {
            attempts[i] = Some(match result {
                Ok(()) => Attempt::Sent,
                Err(e) => Attempt::Failed(Failure {
                    transient: e.is_transient(),
                    error: e.redacted(),
                    retry_after: None,
                }),
            });
        }
    }
    if !posts.is_empty() {
        let sent =
            futures::future::join_all(posts.iter().map(|(i, view)| http(ctx, &works[*i], view)))
                .await;
        for ((i, view), attempt) in posts.iter().zip(sent) {
            let work = &works[*i];
            if matches!(attempt, Attempt::Sent) && !work.confirmed && view.kind.is_addressed() {
                // The endpoint answered the confirmation ping: it wants the notifications.
                tx.confirm_subscriber_by_id(work.subscriber_id).await?;
            }
            attempts[*i] = Some(attempt);
        }
    }

    let mut steps = Vec::with_capacity(works.len());
    for (work, attempt) in works.iter().zip(attempts) {
        let attempt = attempt.expect("every claimed delivery was attempted");
        if place_of(work.id) == EmailPlace::Taken && matches!(attempt, Attempt::Skipped(_)) {
            // Nothing went out: the place is the month's again.
            give_back += 1;
        }
        let step = after_attempt(
            work.attempts,
            attempt.into(),
            |attempts_made, retry_after| {
                policy(ctx, work.channel).next_delay_honouring(
                    attempts_made,
                    rand::random(),
                    retry_after,
                )
            },
        );
        if let DeliveryStep::Retry { error, .. } | DeliveryStep::Dead { error } = &step {
            tracing::warn!(
                tenant.id = %tenant, delivery.id = %work.id, channel = %work.channel,
                attempt = work.attempts + 1, retry_in_ms = step.retry_in().map(|d| d.as_millis() as u64),
                error = %error, "delivery failed"
            );
        }
        steps.push((work, step));
    }
    tx.give_back_emails(give_back).await?;
    let quarantined = tx.record_delivery_steps(&steps).await?;
    for subscriber in quarantined {
        tracing::warn!(tenant.id = %tenant, subscriber.id = %subscriber, "subscriber quarantined after repeated dead deliveries");
    }
    // Should the commit fail, they were sent but not recorded: the next
    // run sends them again, with the same ids.
    tx.commit().await?;
    tracing::debug!(tenant.id = %tenant, deliveries = steps.len(), "group delivered");
    Ok(steps
        .iter()
        .filter_map(|(work, step)| {
            step.retry_in().map(|after| Retry {
                after,
                id: work.id,
                channel: work.channel,
            })
        })
        .collect())
}

fn policy(ctx: &Context, channel: Channel) -> &RetryPolicy {
    match channel {
        Channel::Email => &ctx.email_retry,
        Channel::Sms => &ctx.channels.sms_retry,
        Channel::Webhook | Channel::Slack | Channel::Teams => &ctx.channels.webhook_retry,
    }
}

/// The subscriber's own signed unsubscribe link, and the page to manage
/// the subscription (the same token).
fn links(ctx: &Context, work: &DeliveryWork, view: &EventView) -> (String, String) {
    let page_url = &view.page.url;
    let token = ctx
        .links
        .sign(UNSUBSCRIBE_PURPOSE, work.subscriber_id.as_uuid());
    (
        format!("{page_url}/unsubscribe?token={token}"),
        format!("{page_url}/subscription?token={token}"),
    )
}

/// The email `work` is to receive, as its recipient and the bytes on the
/// wire; or what becomes of the delivery instead.
fn email_copy(
    ctx: &Context,
    work: &DeliveryWork,
    view: &EventView,
    place: EmailPlace,
) -> Result<Result<(lettre::Address, Vec<u8>), Attempt>, Error> {
    let Some(Ok(to)) = work
        .email
        .as_deref()
        .map(|e| EmailAddress::parse("email", e))
    else {
        return Ok(Err(Attempt::Failed(Failure::permanent(
            "the subscriber has no valid email address",
        ))));
    };
    let confirmation = view.kind == EventKind::SubscriptionConfirmation;
    let prepared = if confirmation {
        None
    } else {
        let Some(prepared) = prepared_email(ctx, view)? else {
            return Ok(Err(Attempt::Skipped(
                "nothing to send by email for this event",
            )));
        };
        Some(prepared)
    };
    if place == EmailPlace::Refused {
        ctx.channels
            .emails_over_plan
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        return Ok(Err(Attempt::Skipped(EMAILS_OVER_PLAN)));
    }
    let (unsubscribe_url, manage_url) = links(ctx, work, view);
    let copy = if let Some(prepared) = prepared {
        ctx.mailer
            .personal(prepared, work.id.as_uuid(), &to, &unsubscribe_url)
    } else {
        // Addressed to one subscriber: rendered for them alone.
        let message = confirmation_email(ctx, work, view, &manage_url)?;
        ctx.mailer
            .message(work.id.as_uuid(), &to, &message)
            .map(|m| (m.envelope().to()[0].clone(), m.formatted()))
    };
    Ok(match copy {
        Ok(copy) => Ok(copy),
        Err(e) => Err(Attempt::Failed(Failure {
            transient: e.is_transient(),
            error: e.redacted(),
            retry_after: None,
        })),
    })
}

/// The double opt-in email for `work`'s subscriber.
fn confirmation_email(
    ctx: &Context,
    work: &DeliveryWork,
    view: &EventView,
    manage_url: &str,
) -> Result<EmailMessage, Error> {
    ConfirmationEmail {
        page_name: view.page.name.clone(),
        page_url: view.page.url.clone(),
        confirm_url: format!(
            "{}/subscriptions/confirm?token={}",
            view.page.url,
            ctx.links
                .sign(CONFIRM_PURPOSE, work.subscriber_id.as_uuid())
        ),
        manage_url: Some(manage_url.to_owned()),
    }
    .render()
    .map_err(|e| Error::Permanent(anyhow::Error::new(e).context("Failed to render the email")))
}

/// The incident email of `view`, rendered and encoded once (the first
/// delivery of the event asks, the others reuse it); none when the event
/// has no email.
fn prepared_email<'v>(
    ctx: &Context,
    view: &'v EventView,
) -> Result<Option<&'v PreparedEmail>, Error> {
    if let Some(prepared) = view.email.get() {
        return Ok(prepared.as_ref());
    }
    let Notice::Incident { incident, .. } = &view.notice else {
        return Ok(view.email.get_or_init(|| None).as_ref());
    };
    let Some(update) = incident.updates.first() else {
        return Ok(view.email.get_or_init(|| None).as_ref());
    };
    let rendered = IncidentEmail {
        page_name: view.page.name.clone(),
        page_url: view.page.url.clone(),
        incident_url: incident.shortlink.clone(),
        logo_url: view.page.logo_url.clone(),
        brand_color: view.page.brand_color.clone(),
        unsubscribe_url: UNSUBSCRIBE_SLOT.to_owned(),
        incident_name: incident.name.clone(),
        status: update.status,
        impact: incident.impact,
        body: update.body.clone(),
        components: update
            .affected_components
            .iter()
            .map(|c| ComponentLine::new(c.name.clone(), c.new_status))
            .collect(),
    }
    .render()
    .map_err(|e| Error::Permanent(anyhow::Error::new(e).context("Failed to render the email")))?;
    let prepared = ctx.mailer.prepare(&rendered);
    Ok(view.email.get_or_init(|| Some(prepared)).as_ref())
}

async fn sms(
    ctx: &Context,
    tx: &mut TenantTx,
    work: &DeliveryWork,
    view: &EventView,
) -> Result<Attempt, Error> {
    let page_url = &view.page.url;
    if !work.page_sms_on {
        return Ok(refused(ctx, SmsRefusal::SmsOff));
    }
    let Some(provider) = &ctx.channels.sms else {
        return Ok(Attempt::Failed(Failure::permanent(
            "no SMS provider is configured (SMS_PROVIDER_URL)",
        )));
    };
    let confirmation = view.kind == EventKind::SubscriptionConfirmation;
    let text = if confirmation {
        let Some(sent_at) = work.confirmation_sent_at else {
            return Ok(Attempt::Skipped("no confirmation was asked for"));
        };
        let sent_ms = i64::try_from(sent_at.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
        let code = ctx
            .links
            .code(SMS_CODE_PURPOSE, work.subscriber_id.as_uuid(), sent_ms);
        sms_confirmation_text(&view.page.name, &code)
    } else {
        let link = match &view.notice {
            Notice::Incident { incident, .. } => incident.shortlink.clone(),
            _ => page_url.to_owned(),
        };
        sms_text(&view.page.name, &view.notice, &link)
    };
    let Some(Ok(to)) = work
        .phone_number
        .as_deref()
        .map(|p| PhoneNumber::parse("phone_number", p))
    else {
        return Ok(Attempt::Failed(Failure::permanent(
            "the subscriber has no valid phone number",
        )));
    };
    let (budget, limit, spent) = if confirmation {
        // Codes go to numbers nobody has vouched for yet: the platform's
        // velocity limits first, then a budget apart from the tenant's
        // notifications, so strangers asking for codes never use those up
        // (nor the plan's texts: they are not counted against it).
        if let Some(refusal) = over_velocity(ctx, work, &to).await? {
            return Ok(refused(ctx, refusal));
        }
        (
            SmsBudget::Confirmations,
            ctx.channels.sms_confirmation_monthly_budget,
            SmsRefusal::ConfirmationBudget,
        )
    } else {
        (
            SmsBudget::Notifications {
                plan_limit: plan_limit(ctx, tx, Limit::TextsPerMonth).await?,
            },
            ctx.channels.sms_monthly_budget,
            SmsRefusal::NotificationBudget,
        )
    };
    match tx.take_sms_budget(budget, limit).await? {
        MonthlyTake::Taken => {}
        MonthlyTake::BudgetSpent => return Ok(refused(ctx, spent)),
        MonthlyTake::PlanLimitReached => return Ok(refused(ctx, SmsRefusal::PlanLimit)),
    }
    Ok(match provider.send(&to, &text).await {
        Ok(_sid) => Attempt::Sent,
        Err(SendError::Unsubscribed(_)) => {
            Attempt::Gone("the number answered STOP to the provider: it is unsubscribed")
        }
        Err(e) => Attempt::Failed(Failure {
            transient: e.is_transient(),
            error: e.to_string(),
            retry_after: None,
        }),
    })
}

/// Takes the places of the group's emails under the plan's monthly limit
/// before the group's transaction begins: two statements of their own for
/// the whole group (the plan, then the places), so the month's counter row
/// is locked for one statement and never across an SMTP send, and a
/// tenant's groups still go out in parallel. A place taken for an email
/// that is then not sent (skipped, or claimed by another worker) is given
/// back; a worker dying in between leaves those places taken for nothing
/// (the count errs on the platform's side, by at most a group). Not
/// counted: billing off, a plan without the limit, another channel, or a
/// retry (an email is counted once, at its first attempt).
async fn email_places(
    ctx: &Context,
    tenant: TenantId,
    ids: &[DeliveryId],
) -> Result<HashMap<DeliveryId, EmailPlace>, Error> {
    if !ctx.billing.is_on() {
        return Ok(HashMap::new());
    }
    let standing = ctx.store.billing_standing(tenant).await?;
    let Some(limit) = ctx
        .billing
        .entitlement(standing.as_ref(), time::OffsetDateTime::now_utc())
        .limits
        .emails_per_month
    else {
        return Ok(HashMap::new());
    };
    Ok(ctx
        .store
        .take_email_places(tenant, ids, limit)
        .await?
        .into_iter()
        .collect())
}

/// What the delivery log records of an email over the plan's limit.
const EMAILS_OVER_PLAN: &str = "the plan's emails_per_month limit is reached this month";

/// The plan's value for the monthly `limit` of the tenant of `tx`, in force
/// now; none when it has none. With billing off: none, and no query.
async fn plan_limit(ctx: &Context, tx: &mut TenantTx, limit: Limit) -> Result<Option<u32>, Error> {
    match &ctx.billing {
        Billing::Off => Ok(None),
        billing @ Billing::On(_) => {
            let standing = tx.billing().await?.map(|r| r.standing()).transpose()?;
            let entitlement =
                billing.entitlement(standing.as_ref(), time::OffsetDateTime::now_utc());
            Ok(entitlement.limits.of(limit))
        }
    }
}

/// A text not sent, for `refusal`: skipped with its reason in the delivery
/// log, and counted on `/metrics`.
fn refused(ctx: &Context, refusal: SmsRefusal) -> Attempt {
    ctx.channels.sms_refused.count(refusal);
    Attempt::Skipped(refusal.reason())
}

/// Counts a confirmation code against the platform's hourly limits (per
/// number range, per page), shared by every worker through Redis; answers
/// the limit it goes over, if any. The range is kept in Redis only as a
/// keyed hash (the link secret's): Redis never holds a number.
async fn over_velocity(
    ctx: &Context,
    work: &DeliveryWork,
    to: &PhoneNumber,
) -> Result<Option<SmsRefusal>, Error> {
    let limits = ctx.channels.sms_velocity;
    let range = number_range(to, limits.range_digits);
    let digest = Sha256::digest(range.as_bytes());
    let mut id = [0u8; 16];
    id.copy_from_slice(&digest[..16]);
    let signed = ctx.links.sign("sms-range", uuid::Uuid::from_bytes(id));
    let tag = signed.split_once('.').map_or("", |(_, tag)| tag);
    let tag = tag.get(..32).unwrap_or(tag);
    let count = |key: String| async move {
        ctx.queues
            .count_in_window(&key, SmsVelocity::WINDOW)
            .await
            .map_err(Error::from)
    };
    if count(format!("sms-range:{tag}")).await? > limits.per_range {
        tracing::warn!(page.id = %work.page_id, "confirmation code refused: number range over its hourly limit");
        return Ok(Some(SmsRefusal::RangeVelocity));
    }
    if count(format!("sms-page:{}", work.page_id)).await? > limits.per_page {
        tracing::warn!(page.id = %work.page_id, "confirmation code refused: page over its hourly limit");
        return Ok(Some(SmsRefusal::PageVelocity));
    }
    Ok(None)
}

/// The body of `work`'s channel for `view`, serialized once per event with
/// the slot where each recipient's unsubscribe link goes.
fn body_of<'v>(ctx: &Context, work: &DeliveryWork, view: &'v EventView) -> &'v Spliced {
    let (slot, body): (usize, fn(&Context, &EventView) -> serde_json::Value) = match work.channel {
        Channel::Slack => (1, |_, v| slack_body(&v.page, &v.notice, UNSUBSCRIBE_SLOT)),
        Channel::Teams => (2, |_, v| teams_body(&v.page, &v.notice, UNSUBSCRIBE_SLOT)),
        _ => (0, |ctx, v| {
            webhook_body(
                &v.page,
                &v.notice,
                &WebhookMeta {
                    unsubscribe_url: UNSUBSCRIBE_SLOT,
                    documentation_url: &ctx.channels.webhook_docs_url,
                    generated_at: v.created_at,
                },
            )
        }),
    };
    view.bodies[slot]
        .get_or_init(|| Spliced::new(body(ctx, view).to_string().as_bytes(), UNSUBSCRIBE_SLOT))
}

async fn http(ctx: &Context, work: &DeliveryWork, view: &EventView) -> Attempt {
    let url = match endpoint_url(ctx, work) {
        Ok(url) => url,
        Err(failure) => return Attempt::Failed(failure),
    };
    let url = url.expose_secret();
    let (unsubscribe_url, _) = links(ctx, work, view);
    // The link as a JSON string's content (it holds nothing to escape, but
    // the body must stay valid JSON whatever a page URL holds).
    let link = serde_json::to_string(&unsubscribe_url).unwrap_or_default();
    let link = link
        .get(1..link.len().saturating_sub(1))
        .unwrap_or_default();
    let body = body_of(ctx, work, view).with(link.as_bytes());
    let mut headers: Vec<(String, String)> = Vec::new();
    if work.channel == Channel::Webhook {
        let secret = match opened(
            ctx,
            &webhook_secret_seal_context(work.subscriber_id),
            work.webhook_secret_sealed.as_deref(),
            work.webhook_secret.as_deref(),
            "signing secret",
        ) {
            Ok(secret) => secret,
            Err(failure) => return Attempt::Failed(failure),
        };
        let Ok(secret) = WebhookSecret::parse(secret.expose_secret()) else {
            return Attempt::Failed(Failure::permanent(
                "the webhook has no valid signing secret",
            ));
        };
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        headers.extend(
            signed_headers(
                &secret,
                &format!("msg_{}", work.id.as_uuid().simple()),
                now,
                &body,
            )
            .map(|(k, v)| (k.to_owned(), v)),
        );
    }
    let answer = ctx.channels.http.post_json(url, headers, &body).await;
    match answer.outcome {
        HttpOutcome::Delivered => Attempt::Sent,
        HttpOutcome::Gone => Attempt::Gone("the endpoint answered 410 Gone: it is unsubscribed"),
        HttpOutcome::Transient | HttpOutcome::Permanent => Attempt::Failed(Failure {
            transient: answer.outcome == HttpOutcome::Transient,
            error: answer
                .error
                .unwrap_or_else(|| format!("HTTP {}", answer.status.unwrap_or_default())),
            retry_after: answer.retry_after,
        }),
    }
}

/// Where a webhook, Slack or Teams delivery goes: a Slack or Teams URL is
/// sealed (opened here, for this send only); a webhook's URL, and a Slack
/// or Teams URL from before sealing, are `endpoint` itself.
fn endpoint_url(ctx: &Context, work: &DeliveryWork) -> Result<SecretString, Failure> {
    let plain = match work.channel {
        // A sealed row's `endpoint` is only what answers show of the URL.
        Channel::Slack | Channel::Teams if work.endpoint_sealed.is_some() => None,
        _ => work.endpoint.as_deref(),
    };
    opened(
        ctx,
        &endpoint_seal_context(work.subscriber_id),
        work.endpoint_sealed.as_deref(),
        plain,
        "endpoint URL",
    )
}

/// A secret of the subscriber: `sealed` opened, or else the `plain` value
/// of a row from before sealing. A value sealed under a key the ring no
/// longer holds is a transient failure (the operator can put the key back;
/// the retries wait for that); one that does not authenticate, permanent.
fn opened(
    ctx: &Context,
    context: &str,
    sealed: Option<&str>,
    plain: Option<&str>,
    what: &str,
) -> Result<SecretString, Failure> {
    match (sealed, plain) {
        (Some(sealed), _) => ctx.secrets.open(context, sealed).map_err(|e| Failure {
            transient: matches!(e, OpenError::UnknownKey(_)),
            error: format!("the {what} cannot be opened: {e}"),
            retry_after: None,
        }),
        (None, Some(plain)) => Ok(SecretString::from(plain.to_owned())),
        (None, None) => Err(Failure::permanent(format!("the subscriber has no {what}"))),
    }
}
