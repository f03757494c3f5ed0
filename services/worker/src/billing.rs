//! Billing in the worker (docs/billing.md): the owners of a team whose
//! payments fail are emailed (`BillingNotice`, relayed from the
//! `billing_notices` outbox the webhook fills), and every subscription is
//! re-read from Stripe on a schedule (`reconcile`), so that a webhook Stripe
//! never delivered, or that the API refused while it was down, still
//! reaches the tenant's billing row. Both apply the same rules as the
//! webhook: the store's `apply_subscription` decides what a stated
//! subscription changes.

use std::time::Duration;

use heliograph_billing::Billing;
use heliograph_billing::stripe::StripeCallError;
use heliograph_domain::{EmailAddress, TenantId};
use heliograph_notify::{PastDueEmail, SendError};
use heliograph_store::{Applied, StatedSubscription};
use tokio_util::sync::CancellationToken;

use crate::{BillingNotice, Context, Error};

/// Idempotent: the notice's row is locked while its emails go out and is
/// marked sent in the same transaction; a sent notice is left alone. Each
/// owner's email carries a message id of its own (the notice's, per
/// address), so a retry after a crash mid-way is one the receiving side
/// can tell apart from a new notice.
pub async fn send_notice(job: BillingNotice, ctx: Context) -> Result<(), Error> {
    let grace_days = match &ctx.billing {
        Billing::On(on) => on.grace.whole_days(),
        Billing::Off => 0,
    };
    let mut tx = ctx.store.tenant_tx(job.tenant_id).await?;
    let outcome = tx
        .send_billing_notice(job.notice_id, |work| {
            let ctx = ctx.clone();
            async move {
                let message = PastDueEmail {
                    tenant_name: work.tenant_name.clone(),
                    grace_days,
                    billing_url: format!("{}/dashboard/billing", ctx.urls.origin()),
                }
                .render()
                .map_err(|e| SendError::Permanent(e.to_string()))?;
                for owner in &work.owners {
                    let to = EmailAddress::parse("email", owner)
                        .map_err(|e| SendError::Permanent(e.to_string()))?;
                    let id = per_owner(work.id, owner);
                    ctx.mailer.send(id, &to, &message).await?;
                }
                Ok::<(), SendError>(())
            }
        })
        .await?;
    match outcome {
        Ok(_) => {
            tx.commit().await?;
            Ok(())
        }
        Err(e) => Err(Error::Send(e)),
    }
}

/// A message id of one notice to one owner: stable, so a retry re-sends
/// the same message rather than a new one.
fn per_owner(notice: uuid::Uuid, owner: &str) -> uuid::Uuid {
    use sha2::{Digest, Sha256};
    let digest = Sha256::new()
        .chain_update(notice.as_bytes())
        .chain_update(owner.as_bytes())
        .finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Uuid::from_bytes(bytes)
}

/// What one pass of reconciliation did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Reconciled {
    /// Tenants whose subscriptions were read.
    pub checked: usize,
    /// Tenants whose plan or status moved.
    pub changed: usize,
    /// Tenants Stripe could not answer for (tried again next pass).
    pub failed: usize,
}

/// Tenants read per round trip to the database.
const BATCH: i32 = 100;

/// Re-reads, from Stripe, the subscription of every tenant with a Stripe
/// customer (the one that matters most when it has several: a live one
/// over an ended one, then the newest) and applies it as the webhook would.
/// One tenant's failure is logged and counted; the others go on.
///
/// # Errors
/// When the database cannot list the tenants.
pub async fn reconcile(ctx: &Context) -> anyhow::Result<Reconciled> {
    let Billing::On(on) = &ctx.billing else {
        return Ok(Reconciled::default());
    };
    let mut done = Reconciled::default();
    let mut after: Option<TenantId> = None;
    loop {
        let customers = ctx.store.billing_customers(after, BATCH).await?;
        let Some((last, _)) = customers.last() else {
            return Ok(done);
        };
        after = Some(*last);
        for (tenant, customer) in &customers {
            done.checked += 1;
            match reconcile_one(ctx, on, *tenant, customer).await {
                Ok(true) => done.changed += 1,
                Ok(false) => {}
                Err(e) => {
                    done.failed += 1;
                    tracing::warn!(tenant.id = %tenant, error = format!("{e:#}"), "billing reconciliation failed for a tenant");
                }
            }
        }
    }
}

async fn reconcile_one(
    ctx: &Context,
    on: &heliograph_billing::BillingOn,
    tenant: TenantId,
    customer: &str,
) -> anyhow::Result<bool> {
    let stated_at = time::OffsetDateTime::now_utc();
    let subscriptions = match on.stripe.customer_subscriptions(customer).await {
        Ok(s) => s,
        Err(StripeCallError::NotFound) => return Ok(false),
        Err(e) => return Err(e.into()),
    };
    let Some(subscription) = subscriptions.first() else {
        return Ok(false);
    };
    let state = subscription.state(&on.plans)?;
    let mut tx = ctx.store.tenant_tx(tenant).await?;
    let applied = tx
        .apply_subscription(
            &StatedSubscription {
                subscription_id: &state.subscription_id,
                customer_id: &state.customer_id,
                plan: &state.plan,
                interval: state.interval.as_str(),
                status: state.status,
                current_period_end: state.current_period_end,
                cancel_at_period_end: state.cancel_at_period_end,
            },
            stated_at,
            "reconciliation",
        )
        .await?;
    tx.commit().await?;
    if let Applied::Changed {
        from_plan,
        from_status,
    } = &applied
    {
        tracing::info!(
            tenant.id = %tenant,
            plan.from = from_plan.as_deref().unwrap_or("-"),
            plan.to = %state.plan,
            status.from = from_status.as_deref().unwrap_or("-"),
            status.to = %state.status.as_str(),
            "reconciliation moved a subscription a webhook had not"
        );
    }
    Ok(matches!(applied, Applied::Changed { .. }))
}

/// Every `interval`, [`reconcile`], until `shutdown` fires (billing on only).
pub async fn clock(ctx: Context, interval: Duration, shutdown: CancellationToken) {
    if !ctx.billing.is_on() {
        return;
    }
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
        match reconcile(&ctx).await {
            Ok(done) => tracing::info!(
                checked = done.checked,
                changed = done.changed,
                failed = done.failed,
                "billing reconciled with Stripe"
            ),
            Err(err) => tracing::warn!(error = format!("{err:#}"), "billing reconciliation failed"),
        }
    }
}
