//! Delivery: sends one notification and records the outcome.

use heliograph_domain::EmailAddress;
use heliograph_jobs::JobError;
use heliograph_notify::{ComponentLine, IncidentEmail};
use heliograph_store::{IncidentEventPayload, StoreError};

use heliograph_auth::UNSUBSCRIBE_PURPOSE;

use crate::{Context, Deliver, job_error};

/// Idempotent: the delivery row is locked (`SKIP LOCKED`) while it is sent
/// and marked sent in the same transaction; a delivery already sent, dead,
/// not yet due or held by another worker is left alone, and one whose
/// subscriber left meanwhile is skipped. A failed send is recorded with its
/// error; a transient one is re-queued after the retry policy's delay, a
/// permanent one (or one out of attempts) is marked dead.
pub async fn handle(job: Deliver, ctx: Context) -> Result<(), JobError> {
    let mut tx = ctx
        .store
        .tenant_tx(job.tenant_id)
        .await
        .map_err(job_error)?;
    let Some(work) = tx
        .claim_delivery(job.delivery_id)
        .await
        .map_err(job_error)?
    else {
        return Ok(());
    };
    if !work.subscriber_active {
        tx.mark_delivery_skipped(work.id, "the subscriber left before it was sent")
            .await
            .map_err(job_error)?;
        return tx.commit().await.map_err(job_error);
    }
    let event = tx.event(work.event_id).await.map_err(job_error)?;
    let payload: IncidentEventPayload =
        serde_json::from_value(event.payload.0.clone()).map_err(|e| {
            JobError::Permanent(anyhow::Error::new(e).context("Malformed event payload"))
        })?;
    let page = tx.page(event.page_id).await.map_err(job_error)?;
    let incident = tx.incident(payload.incident_id).await.map_err(job_error)?;
    let update = tx
        .incident_update(payload.incident_id, payload.incident_update_id)
        .await
        .map_err(job_error)?;
    let page_url = ctx.urls.page_url(&page.slug);
    let unsubscribe_url = format!(
        "{page_url}/unsubscribe?token={}",
        ctx.links
            .sign(UNSUBSCRIBE_PURPOSE, work.subscriber_id.as_uuid())
    );
    let message = IncidentEmail {
        page_name: page.name.clone(),
        page_url,
        unsubscribe_url,
        incident_name: incident.name.clone(),
        status: update.status,
        body: update.body.clone(),
        components: update
            .affected_components
            .iter()
            .filter(|c| !c.private)
            .map(|c| ComponentLine::new(c.name.clone(), c.new_status))
            .collect(),
    }
    .render()
    .map_err(|e| {
        JobError::Permanent(anyhow::Error::new(e).context("Failed to render the email"))
    })?;

    let outcome = match work
        .email
        .as_deref()
        .map(|e| EmailAddress::parse("email", e))
    {
        Some(Ok(to)) => ctx
            .mailer
            .send(work.id.as_uuid(), &to, &message)
            .await
            .map_err(|e| (e.is_transient(), e.redacted())),
        _ => Err((
            false,
            "the subscriber has no valid email address".to_owned(),
        )),
    };
    let attempts_made = usize::try_from(work.attempts).unwrap_or(0) + 1;
    let retry_in = match &outcome {
        Ok(()) => {
            tx.mark_delivery_sent(work.id).await.map_err(job_error)?;
            None
        }
        Err((transient, error)) => {
            let delay = if *transient {
                ctx.email_retry.next_delay(attempts_made, rand::random())
            } else {
                None
            };
            tx.mark_delivery_failed(work.id, error, delay)
                .await
                .map_err(job_error)?;
            tracing::warn!(
                tenant.id = %job.tenant_id, delivery.id = %work.id, attempt = attempts_made,
                dead = delay.is_none(), error = %error, "delivery failed"
            );
            delay
        }
    };
    match tx.commit().await {
        Ok(()) => {}
        // Sent but not recorded: the next run sends again, with the same Message-ID.
        Err(StoreError::Database(e)) => return Err(JobError::Transient(e.into())),
        Err(e) => return Err(job_error(e)),
    }
    if outcome.is_ok() {
        tracing::info!(tenant.id = %job.tenant_id, delivery.id = %work.id, "delivery sent");
    }
    if let Some(delay) = retry_in {
        ctx.queues
            .push_after(job, delay)
            .await
            .map_err(|e| JobError::Transient(e.into()))?;
    }
    Ok(())
}
