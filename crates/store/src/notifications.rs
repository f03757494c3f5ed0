//! The notification pipeline's tables: the outbox and the deliveries.
//!
//! Every step here is safe to repeat: relaying an event twice enqueues a
//! second fan-out, which inserts no second delivery (one per event ×
//! subscriber × channel); a delivery already sent is never claimed again.

use heliograph_domain::{
    Channel, DeliveryId, EventId, IncidentId, IncidentUpdateId, PageId, SubscriberId, TenantId,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::postgres::PgListener;
use sqlx::types::Json;
use sqlx::{Postgres, Transaction};
use std::time::Duration;

use time::OffsetDateTime;
use uuid::Uuid;

use crate::{Result, Store, TenantTx};

/// What an `incident.*` event carries: ids only; readers re-read the rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentEventPayload {
    /// The incident.
    pub incident_id: IncidentId,
    /// The update that caused the event.
    pub incident_update_id: IncidentUpdateId,
    /// Whether subscribers are to be told.
    pub deliver_notifications: bool,
}

/// Waits for `NOTIFY heliograph_outbox`, sent by a trigger on every outbox insert.
pub struct OutboxListener(PgListener);

impl OutboxListener {
    /// Returns at the next notification (or a lost connection, as an error).
    pub async fn recv(&mut self) -> Result<()> {
        self.0.recv().await?;
        Ok(())
    }
}

/// An event recorded in the outbox.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Event {
    /// Identifier; also the idempotency key of everything it causes.
    #[sqlx(try_from = "Uuid")]
    pub id: EventId,
    /// The page it concerns.
    #[sqlx(try_from = "Uuid")]
    pub page_id: PageId,
    /// What happened (`incident.created`, …).
    pub kind: String,
    /// Ids of what it concerns.
    pub payload: Json<Value>,
    /// When it was recorded.
    pub created_at: OffsetDateTime,
}

/// An outbox row claimed by the relay.
#[derive(Debug, Clone, Copy, sqlx::FromRow)]
pub struct ClaimedEvent {
    /// The event.
    #[sqlx(try_from = "Uuid")]
    pub id: EventId,
    /// Its tenant.
    #[sqlx(try_from = "Uuid")]
    pub tenant_id: TenantId,
}

/// Outbox rows locked by this relay until [`OutboxClaim::finish`].
pub struct OutboxClaim {
    tx: Transaction<'static, Postgres>,
    /// The claimed events, oldest first.
    pub events: Vec<ClaimedEvent>,
}

impl OutboxClaim {
    /// Marks the claimed events relayed and releases them.
    pub async fn finish(mut self) -> Result<()> {
        let ids: Vec<Uuid> = self.events.iter().map(|e| e.id.as_uuid()).collect();
        sqlx::query("select hg_mark_relayed($1)")
            .bind(&ids)
            .execute(&mut *self.tx)
            .await?;
        self.tx.commit().await?;
        Ok(())
    }
}

/// A delivery locked for sending, with what is needed to send it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeliveryWork {
    /// The delivery.
    #[sqlx(try_from = "Uuid")]
    pub id: DeliveryId,
    /// Channel.
    #[sqlx(try_from = "String")]
    pub channel: Channel,
    /// Attempts made before this one.
    pub attempts: i32,
    /// Email address, for the email channel.
    pub email: Option<String>,
    /// Who it goes to (their unsubscribe link names them).
    #[sqlx(try_from = "Uuid")]
    pub subscriber_id: SubscriberId,
    /// Whether the subscriber still wants it (not unsubscribed or quarantined since).
    pub subscriber_active: bool,
    /// The event it announces.
    #[sqlx(try_from = "Uuid")]
    pub event_id: EventId,
}

impl Store {
    /// Claims up to `limit` unrelayed outbox rows, skipping rows another relay holds.
    ///
    /// Cross-tenant by nature: the relay serves every tenant, oldest event first.
    pub async fn claim_outbox(&self, limit: i64) -> Result<OutboxClaim> {
        let mut tx = self.pool.begin().await?;
        let events = sqlx::query_as("select id, tenant_id from hg_claim_outbox($1)")
            .bind(i32::try_from(limit).unwrap_or(i32::MAX))
            .fetch_all(&mut *tx)
            .await?;
        Ok(OutboxClaim { tx, events })
    }

    /// A listener for new outbox rows, on a connection of its own.
    pub async fn listen_outbox(&self) -> Result<OutboxListener> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen("heliograph_outbox").await?;
        Ok(OutboxListener(listener))
    }

    /// Events relayed more than `stale` ago whose fan-out never finished (its
    /// job was lost with Redis): marks them relayed again, now, and answers them.
    ///
    /// Cross-tenant by nature: the sweeper serves every tenant.
    pub async fn restart_stalled_fanouts(
        &self,
        stale: Duration,
        limit: i64,
    ) -> Result<Vec<ClaimedEvent>> {
        Ok(
            sqlx::query_as("select id, tenant_id from hg_restart_stalled_fanouts($1, $2)")
                .bind(i64::try_from(stale.as_millis()).unwrap_or(i64::MAX))
                .bind(i32::try_from(limit).unwrap_or(i32::MAX))
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// Deliveries unfinished for more than `stale` past their due time (their
    /// job was lost with Redis): touches them, so each is answered once per
    /// `stale`, and answers them for re-queueing.
    ///
    /// Cross-tenant by nature: the sweeper serves every tenant.
    pub async fn restart_stalled_deliveries(
        &self,
        stale: Duration,
        limit: i64,
    ) -> Result<Vec<(TenantId, DeliveryId)>> {
        let rows: Vec<(Uuid, Uuid)> =
            sqlx::query_as("select tenant_id, id from hg_restart_stalled_deliveries($1, $2)")
                .bind(i64::try_from(stale.as_millis()).unwrap_or(i64::MAX))
                .bind(i32::try_from(limit).unwrap_or(i32::MAX))
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .into_iter()
            .map(|(t, d)| (t.into(), d.into()))
            .collect())
    }

    /// How many outbox rows await the relay (for metrics and tests).
    pub async fn unrelayed_events(&self) -> Result<i64> {
        let (n,): (i64,) = sqlx::query_as("select hg_unrelayed_events()")
            .fetch_one(&self.pool)
            .await?;
        Ok(n)
    }
}

impl TenantTx {
    /// One outbox event.
    pub async fn event(&mut self, id: EventId) -> Result<Event> {
        Ok(sqlx::query_as(
            "select id, page_id, kind, payload, created_at from outbox where tenant_id = $1 and id = $2",
        )
        .bind(self.tenant.as_uuid())
        .bind(id.as_uuid())
        .fetch_one(&mut *self.tx)
        .await?)
    }

    /// Creates the email deliveries of `event` for the next batch of at most
    /// `limit` subscribers after `after` (by id), and answers the pending
    /// deliveries of that batch plus the cursor for the next batch (`None`
    /// when this was the last).
    ///
    /// Subscribers count when confirmed, not unsubscribed or quarantined, and
    /// following all components or at least one of `components`.
    pub async fn email_deliveries_batch(
        &mut self,
        event: EventId,
        page: PageId,
        components: &[Uuid],
        after: Option<Uuid>,
        limit: i64,
    ) -> Result<(Vec<DeliveryId>, Option<Uuid>)> {
        let batch: Vec<(Uuid,)> = sqlx::query_as(
            "select s.id from subscribers s
              where s.tenant_id = $1 and s.page_id = $2 and s.channel = 'email'
                and s.confirmed_at is not null and s.unsubscribed_at is null and s.quarantined_at is null
                and ($3::uuid is null or s.id > $3)
                and (not exists (select 1 from subscriber_components sc where sc.subscriber_id = s.id)
                     or exists (select 1 from subscriber_components sc
                                 where sc.subscriber_id = s.id and sc.component_id = any($4)))
              order by s.id limit $5",
        )
        .bind(self.tenant.as_uuid())
        .bind(page.as_uuid())
        .bind(after)
        .bind(components)
        .bind(limit)
        .fetch_all(&mut *self.tx)
        .await?;
        let ids: Vec<Uuid> = batch.iter().map(|(id,)| *id).collect();
        sqlx::query(
            "insert into deliveries (id, tenant_id, event_id, subscriber_id, channel)
             select gen_random_uuid(), $1, $2, s, 'email' from unnest($3::uuid[]) as s
             on conflict on constraint deliveries_event_subscriber_channel_key do nothing",
        )
        .bind(self.tenant.as_uuid())
        .bind(event.as_uuid())
        .bind(&ids)
        .execute(&mut *self.tx)
        .await?;
        let pending: Vec<(Uuid,)> = sqlx::query_as(
            "select id from deliveries
              where tenant_id = $1 and event_id = $2 and subscriber_id = any($3) and status = 'pending'
              order by id",
        )
        .bind(self.tenant.as_uuid())
        .bind(event.as_uuid())
        .bind(&ids)
        .fetch_all(&mut *self.tx)
        .await?;
        let next = if i64::try_from(ids.len()).unwrap_or(i64::MAX) < limit {
            None
        } else {
            ids.last().copied()
        };
        Ok((pending.into_iter().map(|(id,)| id.into()).collect(), next))
    }

    /// Locks a pending delivery for sending; `None` when it is already sent,
    /// dead, not due yet (a duplicate job arriving early), or being sent by
    /// another worker.
    pub async fn claim_delivery(&mut self, id: DeliveryId) -> Result<Option<DeliveryWork>> {
        Ok(sqlx::query_as(
            "select d.id, d.channel, d.attempts, s.email::text as email, d.event_id,
                    s.id as subscriber_id,
                    s.unsubscribed_at is null and s.quarantined_at is null as subscriber_active
               from deliveries d
               join subscribers s on s.tenant_id = d.tenant_id and s.id = d.subscriber_id
              where d.tenant_id = $1 and d.id = $2 and d.status in ('pending', 'failed')
                and (d.next_attempt_at is null or d.next_attempt_at <= now() + interval '2 seconds')
                for update of d skip locked",
        )
        .bind(self.tenant.as_uuid())
        .bind(id.as_uuid())
        .fetch_optional(&mut *self.tx)
        .await?)
    }

    /// Records a successful send.
    pub async fn mark_delivery_sent(&mut self, id: DeliveryId) -> Result<()> {
        sqlx::query(
            "update deliveries set status = 'sent', attempts = attempts + 1, sent_at = now(),
                    next_attempt_at = null, last_error = null
              where tenant_id = $1 and id = $2",
        )
        .bind(self.tenant.as_uuid())
        .bind(id.as_uuid())
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Records a failed attempt: `failed`, due again after `retry_in`, or
    /// `dead` when there is no retry. The due time is the database's clock, as
    /// is the check in [`TenantTx::claim_delivery`].
    pub async fn mark_delivery_failed(
        &mut self,
        id: DeliveryId,
        error: &str,
        retry_in: Option<Duration>,
    ) -> Result<()> {
        let retry_ms = retry_in.map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        sqlx::query(
            "update deliveries set attempts = attempts + 1, last_error = $3,
                    next_attempt_at = now() + $4 * interval '1 millisecond',
                    status = case when $4::bigint is null then 'dead' else 'failed' end
              where tenant_id = $1 and id = $2",
        )
        .bind(self.tenant.as_uuid())
        .bind(id.as_uuid())
        .bind(error)
        .bind(retry_ms)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Records that a delivery will not be sent, and why (the subscriber left meanwhile).
    pub async fn mark_delivery_skipped(&mut self, id: DeliveryId, reason: &str) -> Result<()> {
        sqlx::query(
            "update deliveries set status = 'skipped', last_error = $3, next_attempt_at = null
              where tenant_id = $1 and id = $2",
        )
        .bind(self.tenant.as_uuid())
        .bind(id.as_uuid())
        .bind(reason)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Records that every delivery of `event` exists.
    pub async fn mark_fanned_out(&mut self, event: EventId) -> Result<()> {
        sqlx::query("update outbox set fanned_out_at = now() where tenant_id = $1 and id = $2")
            .bind(self.tenant.as_uuid())
            .bind(event.as_uuid())
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }
}
