//! Fan-out: one delivery row per subscriber an event concerns, one deliver job per row.

use heliograph_jobs::JobError;
use heliograph_store::{IncidentEventPayload, StoreError};

use crate::{Context, Deliver, FanOut, job_error};

/// Subscribers handled per transaction.
const BATCH: i64 = 500;

/// Idempotent: deliveries are unique per event × subscriber × channel, and a
/// re-run re-queues only the deliveries still pending, which the deliver job
/// ignores once sent.
pub async fn handle(job: FanOut, ctx: Context) -> Result<(), JobError> {
    let mut tx = ctx
        .store
        .tenant_tx(job.tenant_id)
        .await
        .map_err(job_error)?;
    let event = match tx.event(job.event_id).await {
        Ok(event) => event,
        // The tenant was deleted since: nobody is left to tell.
        Err(StoreError::NotFound) => return Ok(()),
        Err(err) => return Err(job_error(err)),
    };
    // Component events go to webhook subscribers only (issue #6); no email
    // subscriber hears of them.
    if event.kind.starts_with("component.") {
        tx.mark_fanned_out(event.id).await.map_err(job_error)?;
        return tx.commit().await.map_err(job_error);
    }
    let payload: IncidentEventPayload =
        serde_json::from_value(event.payload.0.clone()).map_err(|e| {
            JobError::Permanent(anyhow::Error::new(e).context("Malformed event payload"))
        })?;
    if !payload.deliver_notifications {
        tx.mark_fanned_out(event.id).await.map_err(job_error)?;
        return tx.commit().await.map_err(job_error);
    }
    let incident = tx.incident(payload.incident_id).await.map_err(job_error)?;
    tx.commit().await.map_err(job_error)?;
    tracing::info!(tenant.id = %job.tenant_id, incident.id = %incident.id, event.kind = %event.kind, "fanning out");

    let mut after = None;
    loop {
        let mut tx = ctx
            .store
            .tenant_tx(job.tenant_id)
            .await
            .map_err(job_error)?;
        let (pending, next) = tx
            .email_deliveries_batch(
                event.id,
                event.page_id,
                &incident.component_ids,
                after,
                BATCH,
            )
            .await
            .map_err(job_error)?;
        if next.is_none() {
            // Every delivery exists once this commits; the jobs below may
            // still be lost, which the sweeper covers per delivery.
            tx.mark_fanned_out(event.id).await.map_err(job_error)?;
        }
        tx.commit().await.map_err(job_error)?;
        for delivery_id in pending {
            ctx.queues
                .push(Deliver {
                    tenant_id: job.tenant_id,
                    delivery_id,
                })
                .await
                .map_err(|e| JobError::Transient(e.into()))?;
        }
        match next {
            Some(cursor) => after = Some(cursor),
            None => return Ok(()),
        }
    }
}
