//! Fan-out: one delivery row per subscriber × channel an event concerns,
//! one deliver job per batch and channel (at most [`BATCH`] deliveries).
//!
//! An event's subscribers are paged through in batches of [`BATCH`], one
//! batch per job: each job does one batch and queues the next as a new job
//! at the back of the queue, so a tenant with 100,000 subscribers takes its
//! turn with everyone else instead of holding a fan-out worker for minutes.
//!
//! Fairness between tenants rests on two lanes of deliver jobs. The first
//! batch of every event goes to the `deliver` lane, which therefore holds at
//! most one batch per event in flight and drains quickly; later batches go to
//! the `deliver-bulk` lane. A one-subscriber email of one tenant thus never
//! queues behind another tenant's 100,000. And later batches wait while the
//! bulk lane already holds [`BULK_AHEAD`] ready jobs, so fan-out never runs
//! far ahead of sending (Redis holds a bounded backlog, and the sweeper's
//! view of progress stays true); nor while their event has [`EVENT_AHEAD`]
//! deliveries unfinished, which bounds what PostgreSQL and Redis hold when
//! sending stalls (a relay refusing everything) and the lane stays empty.

use std::time::Duration;

use heliograph_domain::EventKind;
use heliograph_store::{
    AddressedEventPayload, ComponentEventPayload, IncidentEventPayload, RedriveEventPayload,
    StoreError,
};
use uuid::Uuid;

use crate::{BulkDeliver, Context, Deliver, Error, FanOut};
use heliograph_domain::{Channel, DeliveryId, TenantId};

/// Subscribers handled per job (and per transaction).
pub const BATCH: i64 = 500;

/// Ready jobs in the bulk lane above which later batches wait: each job is
/// a batch (up to [`BATCH`] deliveries), so about 5,000 deliveries.
pub const BULK_AHEAD: u64 = 10;

/// Unfinished deliveries of one event above which its later batches wait,
/// whatever the bulk lane holds: a relay that refuses everything sends each
/// batch back as a retry due later, which leaves the lane empty, and without
/// this the fan-out would then write every subscriber's row (and Redis hold
/// every batch's retry) ahead of sending. Above what the lane and the jobs
/// in flight hold in steady flow, so that it binds only when sending stalls.
pub const EVENT_AHEAD: i64 = 20 * BATCH;

/// How long a later batch waits when the bulk lane is full, or its event
/// has [`EVENT_AHEAD`] deliveries unfinished.
const BULK_WAIT: Duration = Duration::from_secs(1);

/// Idempotent: deliveries are unique per event × subscriber × channel, and a
/// re-run re-queues only the deliveries still pending, which the deliver job
/// ignores once sent.
pub async fn handle(job: FanOut, ctx: Context) -> Result<(), Error> {
    let mut tx = ctx.store.tenant_tx(job.tenant_id).await?;
    if job.after.is_some() {
        let full = ctx.queues.depth::<BulkDeliver>().await?.ready >= BULK_AHEAD;
        if full || tx.unfinished_deliveries(job.event_id, EVENT_AHEAD).await? >= EVENT_AHEAD {
            // Waiting is moving, as far as the sweeper is concerned: it
            // restarts only a fan-out whose job was lost.
            tx.touch_fanout(job.event_id).await?;
            tx.commit().await?;
            return Ok(ctx.queues.push_after(job, BULK_WAIT).await?);
        }
    }
    let event = match tx.event(job.event_id).await {
        Ok(event) => event,
        // The tenant was deleted since: nobody is left to tell.
        Err(StoreError::NotFound) => return Ok(()),
        Err(err) => return Err(err.into()),
    };
    let Some(kind) = EventKind::parse(&event.kind) else {
        tracing::error!(tenant.id = %job.tenant_id, event.kind = %event.kind, "unknown event kind; nobody told");
        tx.mark_fanned_out(event.id).await?;
        return Ok(tx.commit().await?);
    };
    let payload = event.payload.0.clone();
    let (pending, next) = if kind == EventKind::DeliveriesRedriven {
        let p: RedriveEventPayload = serde_json::from_value(payload)?;
        let pending = tx.pending_among(&p.delivery_ids).await?;
        (pending.into_iter().map(|id| (id, None)).collect(), None)
    } else if kind.is_addressed() {
        let p: AddressedEventPayload = serde_json::from_value(payload)?;
        let pending = tx.addressed_delivery(event.id, p.subscriber_id).await?;
        (with_channels(pending), None)
    } else {
        let components: Vec<Uuid> = if kind.is_incident_event() {
            let p: IncidentEventPayload = serde_json::from_value(payload)?;
            tracing::Span::current().record("incident.id", tracing::field::display(p.incident_id));
            if !p.deliver_notifications {
                tx.mark_fanned_out(event.id).await?;
                return Ok(tx.commit().await?);
            }
            tx.incident(p.incident_id)
                .await?
                .component_ids
                .iter()
                .map(|c| c.as_uuid())
                .collect()
        } else {
            let p: ComponentEventPayload = serde_json::from_value(payload)?;
            // A private component's change is announced to nobody (and a
            // deleted component's to nobody either).
            let public = match tx.component(p.component_id).await {
                Ok(c) => heliograph_domain::Audience::Public.sees(c.visibility),
                Err(StoreError::NotFound) => false,
                Err(err) => return Err(err.into()),
            };
            if !public {
                tx.mark_fanned_out(event.id).await?;
                return Ok(tx.commit().await?);
            }
            vec![p.component_id.as_uuid()]
        };
        let (pending, next) = tx
            .deliveries_batch(event.id, event.page_id, kind, &components, job.after, BATCH)
            .await?;
        (with_channels(pending), next)
    };
    if next.is_none() {
        // Every delivery exists once this commits; the jobs below may
        // still be lost, which the sweeper covers per delivery.
        tx.mark_fanned_out(event.id).await?;
    } else {
        // Progress: the sweeper restarts only fan-outs that stopped moving.
        tx.touch_fanout(event.id).await?;
    }
    tx.commit().await?;
    if job.after.is_none() {
        tracing::info!(tenant.id = %job.tenant_id, event.id = %event.id, event.kind = %event.kind, "fanning out");
    }
    // A redrive may name thousands: it takes the bulk lane. A batch's
    // deliveries go out as one job per channel, in one round trip to Redis.
    let first = job.after.is_none() && kind != EventKind::DeliveriesRedriven;
    let jobs = by_channel(job.tenant_id, pending);
    let pushed = if first {
        ctx.queues.push_all(jobs).await
    } else {
        ctx.queues
            .push_all(jobs.into_iter().map(|j| BulkDeliver {
                tenant_id: j.tenant_id,
                delivery_ids: j.delivery_ids,
                channel: j.channel,
            }))
            .await
    };
    pushed?;
    if let Some(cursor) = next {
        ctx.queues
            .push(FanOut {
                after: Some(cursor),
                ..job
            })
            .await?;
    }
    Ok(())
}

/// Pending deliveries with their channels known.
fn with_channels(pending: Vec<(DeliveryId, Channel)>) -> Vec<(DeliveryId, Option<Channel>)> {
    pending.into_iter().map(|(id, c)| (id, Some(c))).collect()
}

/// One deliver job per channel among `pending` (those of unknown channel
/// together), in id order within each.
fn by_channel(tenant_id: TenantId, pending: Vec<(DeliveryId, Option<Channel>)>) -> Vec<Deliver> {
    let mut jobs: Vec<Deliver> = Vec::new();
    for (id, channel) in pending {
        match jobs.iter_mut().find(|j| j.channel == channel) {
            Some(job) => job.delivery_ids.push(id),
            None => jobs.push(Deliver {
                tenant_id,
                delivery_ids: vec![id],
                channel,
            }),
        }
    }
    jobs
}
