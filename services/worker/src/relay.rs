//! The outbox relay: moves committed events from PostgreSQL to the fan-out queue.

use std::time::Duration;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::{AccountEmail, BillingNotice, Context, FanOut, InvitationEmail, VerifyDomain};

/// Events claimed per round trip.
const BATCH: i64 = 100;

/// Relays every pending outbox event; answers how many. Rows are claimed with
/// `SKIP LOCKED`, so several relays share the work; a crash between the push
/// and the commit relays an event twice, which fan-out absorbs.
pub async fn relay_pending(ctx: &Context) -> anyhow::Result<usize> {
    let mut total = 0;
    // Account links are their own outbox.
    loop {
        let claim = ctx.store.claim_account_links(BATCH).await?;
        if claim.items.is_empty() {
            break;
        }
        for link_id in &claim.items {
            ctx.queues
                .push(AccountEmail { link_id: *link_id })
                .instrument(tracing::info_span!("relay", link.id = %link_id))
                .await
                .with_context(|| format!("Failed to queue the email of link {link_id}"))?;
        }
        total += claim.items.len();
        claim.finish().await?;
    }
    // So are invitations.
    loop {
        let claim = ctx.store.claim_invitations(BATCH).await?;
        if claim.items.is_empty() {
            break;
        }
        for (invitation_id, tenant_id) in &claim.items {
            ctx.queues
                .push(InvitationEmail {
                    tenant_id: *tenant_id,
                    invitation_id: *invitation_id,
                })
                .instrument(tracing::info_span!("relay", tenant.id = %tenant_id, invitation.id = %invitation_id))
                .await
                .with_context(|| format!("Failed to queue invitation {invitation_id} of tenant {tenant_id}"))?;
        }
        total += claim.items.len();
        claim.finish().await?;
    }
    // And billing notices to owners.
    loop {
        let claim = ctx.store.claim_billing_notices(BATCH).await?;
        if claim.items.is_empty() {
            break;
        }
        for (notice_id, tenant_id) in &claim.items {
            ctx.queues
                .push(BillingNotice {
                    tenant_id: *tenant_id,
                    notice_id: *notice_id,
                })
                .instrument(
                    tracing::info_span!("relay", tenant.id = %tenant_id, notice.id = %notice_id),
                )
                .await
                .with_context(|| {
                    format!("Failed to queue billing notice {notice_id} of tenant {tenant_id}")
                })?;
        }
        total += claim.items.len();
        claim.finish().await?;
    }
    // And domains with a check asked for.
    loop {
        let claim = ctx.store.claim_domain_checks(BATCH).await?;
        if claim.items.is_empty() {
            break;
        }
        for (domain_id, tenant_id) in &claim.items {
            ctx.queues
                .push(VerifyDomain {
                    tenant_id: *tenant_id,
                    domain_id: *domain_id,
                })
                .instrument(
                    tracing::info_span!("relay", tenant.id = %tenant_id, domain.id = %domain_id),
                )
                .await
                .with_context(|| {
                    format!("Failed to queue the check of domain {domain_id} of tenant {tenant_id}")
                })?;
        }
        total += claim.items.len();
        claim.finish().await?;
    }
    loop {
        let claim = ctx.store.claim_outbox(BATCH).await?;
        if claim.items.is_empty() {
            return Ok(total);
        }
        for event in &claim.items {
            ctx.queues
                .push(FanOut::new(event.tenant_id, event.id))
                .instrument(tracing::info_span!("relay", tenant.id = %event.tenant_id, event.id = %event.id))
                .await
                .with_context(|| format!("Failed to queue the fan-out of event {} of tenant {}", event.id, event.tenant_id))?;
        }
        total += claim.items.len();
        claim.finish().await?;
    }
}

/// Relays until `shutdown`: woken by `LISTEN/NOTIFY`, polling every `poll` as a fallback.
pub async fn run(ctx: Context, poll: Duration, shutdown: CancellationToken) {
    while !shutdown.is_cancelled() {
        if let Err(err) = relay_loop(&ctx, poll, &shutdown).await {
            tracing::error!(
                error = format!("{err:#}"),
                "outbox relay failed; restarting"
            );
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }
}

async fn relay_loop(
    ctx: &Context,
    poll: Duration,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    // None behind a transaction pooler with no DATABASE_LISTEN_URL: the
    // poll alone then finds new events.
    let mut listener = ctx.store.listen_outbox().await?;
    loop {
        let n = relay_pending(ctx).await?;
        if n > 0 {
            tracing::debug!(events = n, "relayed outbox events");
        }
        let woken = async {
            match listener.as_mut() {
                Some(listener) => listener.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            woken = woken => woken?,
            () = tokio::time::sleep(poll) => {}
        }
    }
}
