//! Delivery: sends one notification on its channel and records the outcome.
//!
//! With billing on, a notification text or email is also counted against
//! the plan's `texts_per_month` / `emails_per_month` (the plan in force
//! now), and skipped, saying so, once the month's are spent
//! (docs/billing.md § Monthly limits in the worker). An email's place is
//! taken in a short transaction of its own before it is sent ([`email_place`]).
//! With billing off nothing about plans is read.

use std::time::Duration;

use heliograph_auth::{CONFIRM_PURPOSE, OpenError, SMS_CODE_PURPOSE, UNSUBSCRIBE_PURPOSE};
use heliograph_billing::Billing;
use heliograph_domain::delivery::after_attempt;
use heliograph_domain::{
    AttemptOutcome, Channel, DeliveryStep, EmailAddress, EventKind, Limit, PhoneNumber,
    number_range,
};
use heliograph_notify::payloads::{
    Notice, WebhookMeta, slack_body, sms_confirmation_text, sms_text, teams_body, webhook_body,
};
use heliograph_notify::{
    ComponentLine, ConfirmationEmail, EmailMessage, HttpOutcome, IncidentEmail, RetryPolicy,
    SendError, SmsProvider as _, WebhookSecret, signed_headers,
};
use heliograph_store::{
    DeliveryWork, EmailPlace, MonthlyTake, SmsBudget, TenantTx, endpoint_seal_context,
    webhook_secret_seal_context,
};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use crate::notice::{EventView, event_view};
use crate::{Context, Deliver, Error, SmsRefusal, SmsVelocity};

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

/// Idempotent: the delivery row is locked (`SKIP LOCKED`) while it is sent
/// and marked sent in the same transaction; a delivery already sent, dead,
/// not yet due or held by another worker is left alone, and one whose
/// subscriber left meanwhile is skipped. A failed send is recorded with its
/// error; a transient one is re-queued after the channel's retry policy
/// (never sooner than a receiver's `Retry-After`), a permanent one (or one
/// out of attempts) is marked dead. Were the process to die between sending
/// and committing, the next run sends again with the same Message-ID or
/// `webhook-id`, so receivers can tell.
pub async fn handle(job: Deliver, ctx: Context) -> Result<(), Error> {
    let place = email_place(&ctx, &job).await?;
    let mut tx = ctx.store.tenant_tx(job.tenant_id).await?;
    let Some(work) = tx.claim_delivery(job.delivery_id).await? else {
        if place == EmailPlace::Taken {
            tx.give_back_email().await?;
            tx.commit().await?;
        }
        return Ok(());
    };
    let attempt = if work.subscriber_active {
        match event_view(&ctx, &mut tx, job.tenant_id, work.event_id).await {
            Ok(view) => attempt(&ctx, &mut tx, &work, &view, place).await?,
            // What the event says cannot be told (it names what is gone):
            // the delivery dies, visibly, instead of staying pending for ever.
            Err(err) if !err.is_transient() => Attempt::Failed(Failure::permanent(err.to_string())),
            Err(err) => return Err(err),
        }
    } else {
        Attempt::Skipped("the subscriber left before it was sent")
    };
    if place == EmailPlace::Taken && matches!(attempt, Attempt::Skipped(_)) {
        // Nothing went out: the place is the month's again.
        tx.give_back_email().await?;
    }
    let step = after_attempt(
        work.attempts,
        attempt.into(),
        |attempts_made, retry_after| {
            policy(&ctx, work.channel).next_delay_honouring(
                attempts_made,
                rand::random(),
                retry_after,
            )
        },
    );
    let quarantined = tx.record_delivery_step(&work, &step).await?;
    if let DeliveryStep::Retry { error, .. } | DeliveryStep::Dead { error } = &step {
        tracing::warn!(
            tenant.id = %job.tenant_id, delivery.id = %work.id, channel = %work.channel,
            attempt = work.attempts + 1, retry_in_ms = step.retry_in().map(|d| d.as_millis() as u64),
            error = %error, "delivery failed"
        );
    }
    if quarantined {
        tracing::warn!(tenant.id = %job.tenant_id, subscriber.id = %work.subscriber_id, "subscriber quarantined after repeated dead deliveries");
    }
    // Should the commit fail, it was sent but not recorded: the next run
    // sends again, with the same id.
    tx.commit().await?;
    if step == DeliveryStep::Sent {
        tracing::debug!(tenant.id = %job.tenant_id, delivery.id = %work.id, channel = %work.channel, "delivery sent");
    }
    if let Some(delay) = step.retry_in() {
        ctx.queues.push_after(job, delay).await?;
    }
    Ok(())
}

fn policy(ctx: &Context, channel: Channel) -> &RetryPolicy {
    match channel {
        Channel::Email => &ctx.email_retry,
        Channel::Sms => &ctx.channels.sms_retry,
        Channel::Webhook | Channel::Slack | Channel::Teams => &ctx.channels.webhook_retry,
    }
}

/// Sends `work` once on its channel.
async fn attempt(
    ctx: &Context,
    tx: &mut TenantTx,
    work: &DeliveryWork,
    view: &EventView,
    place: EmailPlace,
) -> Result<Attempt, Error> {
    let page_url = &view.page.url;
    let token = ctx
        .links
        .sign(UNSUBSCRIBE_PURPOSE, work.subscriber_id.as_uuid());
    let unsubscribe_url = format!("{page_url}/unsubscribe?token={token}");
    let manage_url = format!("{page_url}/subscription?token={token}");
    Ok(match work.channel {
        Channel::Email => {
            let message = match email(ctx, work, view, &unsubscribe_url, &manage_url)? {
                Some(message) => message,
                None => return Ok(Attempt::Skipped("nothing to send by email for this event")),
            };
            let Some(Ok(to)) = work
                .email
                .as_deref()
                .map(|e| EmailAddress::parse("email", e))
            else {
                return Ok(Attempt::Failed(Failure::permanent(
                    "the subscriber has no valid email address",
                )));
            };
            if place == EmailPlace::Refused {
                ctx.channels
                    .emails_over_plan
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                return Ok(Attempt::Skipped(EMAILS_OVER_PLAN));
            }
            match ctx.mailer.send(work.id.as_uuid(), &to, &message).await {
                Ok(()) => Attempt::Sent,
                Err(e) => Attempt::Failed(Failure {
                    transient: e.is_transient(),
                    error: e.redacted(),
                    retry_after: None,
                }),
            }
        }
        Channel::Sms => sms(ctx, tx, work, view, page_url).await?,
        Channel::Webhook | Channel::Slack | Channel::Teams => {
            let sent = http(ctx, work, view, &unsubscribe_url).await;
            if matches!(sent, Attempt::Sent) && !work.confirmed && view.kind.is_addressed() {
                // The endpoint answered the confirmation ping: it wants the notifications.
                tx.confirm_subscriber_by_id(work.subscriber_id).await?;
            }
            sent
        }
    })
}

/// The email for `view`, if this kind of event has one.
fn email(
    ctx: &Context,
    work: &DeliveryWork,
    view: &EventView,
    unsubscribe_url: &str,
    manage_url: &str,
) -> Result<Option<EmailMessage>, Error> {
    let rendered = match (&view.notice, view.kind) {
        (_, EventKind::SubscriptionConfirmation) => ConfirmationEmail {
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
        .render(),
        (Notice::Incident { incident, .. }, _) => {
            let Some(update) = incident.updates.first() else {
                return Ok(None);
            };
            IncidentEmail {
                page_name: view.page.name.clone(),
                page_url: view.page.url.clone(),
                incident_url: incident.shortlink.clone(),
                logo_url: view.page.logo_url.clone(),
                brand_color: view.page.brand_color.clone(),
                unsubscribe_url: unsubscribe_url.to_owned(),
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
        }
        _ => return Ok(None),
    };
    rendered
        .map(Some)
        .map_err(|e| Error::Permanent(anyhow::Error::new(e).context("Failed to render the email")))
}

async fn sms(
    ctx: &Context,
    tx: &mut TenantTx,
    work: &DeliveryWork,
    view: &EventView,
    page_url: &str,
) -> Result<Attempt, Error> {
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

/// Takes an email's place under the plan's monthly limit before the
/// delivery's transaction begins: two statements of their own (the plan,
/// then the place), so the month's counter row is locked for one statement
/// and never across an SMTP send, and a tenant's emails still go out in
/// parallel. A place taken for an email that is then not sent (skipped, or
/// a duplicate job whose delivery another worker sent) is given back; a
/// worker dying in between leaves one place taken for nothing (the count
/// errs on the platform's side, by one). Not counted: billing off, a plan
/// without the limit, another channel, or a retry (an email is counted
/// once, at its first attempt).
async fn email_place(ctx: &Context, job: &Deliver) -> Result<EmailPlace, Error> {
    if !ctx.billing.is_on() {
        return Ok(EmailPlace::NotCounted);
    }
    let standing = ctx.store.billing_standing(job.tenant_id).await?;
    let Some(limit) = ctx
        .billing
        .entitlement(standing.as_ref(), time::OffsetDateTime::now_utc())
        .limits
        .emails_per_month
    else {
        return Ok(EmailPlace::NotCounted);
    };
    Ok(ctx
        .store
        .take_email_place(job.tenant_id, job.delivery_id, limit)
        .await?)
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

async fn http(
    ctx: &Context,
    work: &DeliveryWork,
    view: &EventView,
    unsubscribe_url: &str,
) -> Attempt {
    let url = match endpoint_url(ctx, work) {
        Ok(url) => url,
        Err(failure) => return Attempt::Failed(failure),
    };
    let url = url.expose_secret();
    let body = match work.channel {
        Channel::Slack => slack_body(&view.page, &view.notice, unsubscribe_url),
        Channel::Teams => teams_body(&view.page, &view.notice, unsubscribe_url),
        _ => webhook_body(
            &view.page,
            &view.notice,
            &WebhookMeta {
                unsubscribe_url,
                documentation_url: &ctx.channels.webhook_docs_url,
                generated_at: view.created_at,
            },
        ),
    };
    let body = body.to_string().into_bytes();
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
