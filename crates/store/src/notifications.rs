//! The notification pipeline's tables: the outbox and the deliveries.
//!
//! Every step here is safe to repeat: relaying an event twice enqueues a
//! second fan-out, which inserts no second delivery (one per event ×
//! subscriber × channel); a delivery already sent is never claimed again.

use heliograph_domain::{
    Channel, DeliveryId, EventId, EventKind, IncidentId, IncidentUpdateId, PageId, SubscriberId,
    TenantId,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::postgres::PgListener;
use sqlx::types::Json;
use sqlx::{Postgres, Transaction};
use std::time::Duration;

use time::OffsetDateTime;
use uuid::Uuid;

use crate::{Listed, Result, Store, TenantTx};

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
    /// Phone number, for the SMS channel.
    pub phone_number: Option<String>,
    /// URL, for the webhook channel; for Slack and Teams, only what answers
    /// show of it, unless the row predates sealing (then the URL itself).
    pub endpoint: Option<String>,
    /// A Slack or Teams URL, sealed (see `endpoint_seal_context`).
    pub endpoint_sealed: Option<String>,
    /// The signing secret in clear, for a webhook subscriber from before sealing.
    pub webhook_secret: Option<String>,
    /// The signing secret, sealed (see `webhook_secret_seal_context`).
    pub webhook_secret_sealed: Option<String>,
    /// When the subscriber's last confirmation was sent (an SMS code derives from it).
    pub confirmation_sent_at: Option<OffsetDateTime>,
    /// Whether the subscriber has confirmed.
    pub confirmed: bool,
    /// Who it goes to (their unsubscribe link names them).
    #[sqlx(try_from = "Uuid")]
    pub subscriber_id: SubscriberId,
    /// Whether the subscriber still wants it (not unsubscribed or quarantined since).
    pub subscriber_active: bool,
    /// The event it announces.
    #[sqlx(try_from = "Uuid")]
    pub event_id: EventId,
    /// The event's kind.
    pub event_kind: String,
    /// The page the event is about.
    #[sqlx(try_from = "Uuid")]
    pub page_id: PageId,
    /// Whether the page has SMS turned on (`allow_sms_subscribers`).
    pub page_sms_on: bool,
}

/// Which monthly SMS budget a text draws on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmsBudget {
    /// Incident, maintenance and component texts.
    Notifications,
    /// Confirmation codes, which strangers can ask for: a budget of their
    /// own, so that they never use up the notifications'.
    Confirmations,
}

/// What became of a failed delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureOutcome {
    /// It will be tried again.
    Retrying,
    /// It is dead; the subscriber is still active.
    Dead,
    /// It is dead, and its subscriber has now failed often enough in a row
    /// to be quarantined.
    DeadAndQuarantined,
}

/// One row of the delivery log.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeliveryRecord {
    /// The delivery.
    #[sqlx(try_from = "Uuid")]
    pub id: DeliveryId,
    /// The event it announces.
    #[sqlx(try_from = "Uuid")]
    pub event_id: EventId,
    /// The event's kind.
    pub event_kind: String,
    /// The recipient.
    #[sqlx(try_from = "Uuid")]
    pub subscriber_id: SubscriberId,
    /// Channel.
    #[sqlx(try_from = "String")]
    pub channel: Channel,
    /// Where it goes: the address, number or URL.
    pub target: Option<String>,
    /// `pending`, `sent`, `failed` (to be retried), `dead` or `skipped`.
    pub status: String,
    /// Attempts made.
    pub attempts: i32,
    /// The last failure, if any.
    pub last_error: Option<String>,
    /// When the last attempt was made.
    pub last_attempt_at: Option<OffsetDateTime>,
    /// When it is due again (failed ones).
    pub next_attempt_at: Option<OffsetDateTime>,
    /// When it was sent.
    pub sent_at: Option<OffsetDateTime>,
    /// When it was created.
    pub created_at: OffsetDateTime,
}

/// A failed attempt of a delivery.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeliveryAttempt {
    /// Its number, from 1.
    pub attempt: i32,
    /// When it was made.
    pub at: OffsetDateTime,
    /// Why it failed.
    pub error: String,
    /// When the next attempt was scheduled (none when it died).
    pub retry_at: Option<OffsetDateTime>,
}

impl TenantTx {
    /// Those of `ids` that are still pending (a redrive's deliveries, to queue).
    pub async fn pending_among(&mut self, ids: &[DeliveryId]) -> Result<Vec<DeliveryId>> {
        let ids: Vec<Uuid> = ids.iter().map(DeliveryId::as_uuid).collect();
        let rows: Vec<(Uuid,)> = sqlx::query_as(
            "select id from deliveries where tenant_id = $1 and id = any($2) and status = 'pending'",
        )
        .bind(self.tenant.as_uuid())
        .bind(&ids)
        .fetch_all(&mut *self.tx)
        .await?;
        Ok(rows.into_iter().map(|(id,)| id.into()).collect())
    }
}

/// Which deliveries a log query keeps.
#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    /// Those of one event.
    pub event: Option<EventId>,
    /// Those of the events of one incident update.
    pub incident_update: Option<IncidentUpdateId>,
    /// Those of the events of one incident.
    pub incident: Option<IncidentId>,
    /// Statuses to keep (empty: all).
    pub statuses: Vec<String>,
    /// Channels to keep (empty: all).
    pub channels: Vec<String>,
}

/// An outbox event with how its deliveries stand.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EventSummary {
    /// The event.
    #[sqlx(try_from = "Uuid")]
    pub id: EventId,
    /// Its kind.
    pub kind: String,
    /// Its payload (ids).
    pub payload: Json<Value>,
    /// When it was recorded.
    pub created_at: OffsetDateTime,
    /// When fan-out had created every delivery.
    pub fanned_out_at: Option<OffsetDateTime>,
    /// Deliveries per status.
    pub pending: i64,
    /// Sent.
    pub sent: i64,
    /// Failed, to be retried.
    pub failed: i64,
    /// Given up.
    pub dead: i64,
    /// Not sent because the subscriber left.
    pub skipped: i64,
}

/// The filter of the delivery log: `$1` tenant, `$2` page, `$3` event,
/// `$4` incident update, `$5` statuses, `$6` channels, `$7` incident.
const DELIVERIES_WHERE: &str = " from deliveries d
      join outbox o on o.tenant_id = d.tenant_id and o.id = d.event_id
      join subscribers s on s.tenant_id = d.tenant_id and s.id = d.subscriber_id
     where d.tenant_id = $1 and o.page_id = $2
       and ($3::uuid is null or d.event_id = $3)
       and ($4::text is null or o.payload ->> 'incident_update_id' = $4)
       and (cardinality($5::text[]) = 0 or d.status = any($5))
       and (cardinality($6::text[]) = 0 or d.channel = any($6))
       and ($7::text is null or o.payload ->> 'incident_id' = $7)";

/// Deliveries dying this many times in a row quarantine their subscriber.
pub const QUARANTINE_AFTER: i32 = 3;

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

    /// Creates the deliveries of `event` (of `kind`) for the next batch of
    /// at most `limit` subscribers after `after` (by id), on every channel
    /// the kind reaches, and answers the pending deliveries of that batch
    /// plus the cursor for the next batch (`None` when this was the last).
    ///
    /// Subscribers count when confirmed, not unsubscribed or quarantined, and
    /// following all components or at least one of `components` (an event
    /// that names no component, such as a maintenance reminder of a window
    /// without components, reaches those who follow all).
    pub async fn deliveries_batch(
        &mut self,
        event: EventId,
        page: PageId,
        kind: EventKind,
        components: &[Uuid],
        after: Option<Uuid>,
        limit: i64,
    ) -> Result<(Vec<DeliveryId>, Option<Uuid>)> {
        let channels: Vec<&str> = Channel::ALL
            .iter()
            .copied()
            .filter(|c| kind.reaches(*c))
            .map(Channel::as_str)
            .collect();
        let batch: Vec<(Uuid, String)> = sqlx::query_as(
            "select s.id, s.channel from subscribers s
              where s.tenant_id = $1 and s.page_id = $2 and s.channel = any($6)
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
        .bind(&channels)
        .fetch_all(&mut *self.tx)
        .await?;
        let ids: Vec<Uuid> = batch.iter().map(|(id, _)| *id).collect();
        let pending = self.insert_deliveries(event, &batch).await?;
        let next = if i64::try_from(ids.len()).unwrap_or(i64::MAX) < limit {
            None
        } else {
            ids.last().copied()
        };
        Ok((pending, next))
    }

    /// Creates the one delivery of an addressed event (a confirmation, a
    /// ping) to its subscriber, whether confirmed or not; none when the
    /// subscriber left. Answers it when pending.
    pub async fn addressed_delivery(
        &mut self,
        event: EventId,
        subscriber: SubscriberId,
    ) -> Result<Vec<DeliveryId>> {
        let target: Vec<(Uuid, String)> = sqlx::query_as(
            "select id, channel from subscribers
              where tenant_id = $1 and id = $2 and unsubscribed_at is null",
        )
        .bind(self.tenant.as_uuid())
        .bind(subscriber.as_uuid())
        .fetch_all(&mut *self.tx)
        .await?;
        self.insert_deliveries(event, &target).await
    }

    /// Inserts one delivery per (subscriber, channel), skipping those that
    /// exist; answers the pending ones among them.
    async fn insert_deliveries(
        &mut self,
        event: EventId,
        to: &[(Uuid, String)],
    ) -> Result<Vec<DeliveryId>> {
        let (ids, channels): (Vec<Uuid>, Vec<String>) = to.iter().cloned().unzip();
        sqlx::query(
            "insert into deliveries (id, tenant_id, event_id, subscriber_id, channel)
             select gen_random_uuid(), $1, $2, s, c from unnest($3::uuid[], $4::text[]) as t(s, c)
             on conflict on constraint deliveries_event_subscriber_channel_key do nothing",
        )
        .bind(self.tenant.as_uuid())
        .bind(event.as_uuid())
        .bind(&ids)
        .bind(&channels)
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
        Ok(pending.into_iter().map(|(id,)| id.into()).collect())
    }

    /// Locks a pending delivery for sending; `None` when it is already sent,
    /// dead, not due yet (a duplicate job arriving early), or being sent by
    /// another worker.
    pub async fn claim_delivery(&mut self, id: DeliveryId) -> Result<Option<DeliveryWork>> {
        Ok(sqlx::query_as(
            "select d.id, d.channel, d.attempts, s.email::text as email, s.phone_number, s.endpoint,
                    s.endpoint_sealed, s.webhook_secret, s.webhook_secret_sealed, s.confirmation_sent_at, s.confirmed_at is not null as confirmed,
                    d.event_id, o.kind as event_kind, s.id as subscriber_id,
                    s.unsubscribed_at is null and s.quarantined_at is null as subscriber_active,
                    o.page_id, p.allow_sms_subscribers as page_sms_on
               from deliveries d
               join subscribers s on s.tenant_id = d.tenant_id and s.id = d.subscriber_id
               join outbox o on o.tenant_id = d.tenant_id and o.id = d.event_id
               join pages p on p.tenant_id = o.tenant_id and p.id = o.page_id
              where d.tenant_id = $1 and d.id = $2 and d.status in ('pending', 'failed')
                and (d.next_attempt_at is null or d.next_attempt_at <= now() + interval '2 seconds')
                for update of d skip locked",
        )
        .bind(self.tenant.as_uuid())
        .bind(id.as_uuid())
        .fetch_optional(&mut *self.tx)
        .await?)
    }

    /// Records a successful send; the subscriber's run of dead deliveries ends.
    pub async fn mark_delivery_sent(&mut self, id: DeliveryId) -> Result<()> {
        sqlx::query(
            "with d as (
                 update deliveries set status = 'sent', attempts = attempts + 1, sent_at = now(),
                        last_attempt_at = now(), next_attempt_at = null
                  where tenant_id = $1 and id = $2
                 returning subscriber_id)
             update subscribers set dead_streak = 0
              where tenant_id = $1 and id = (select subscriber_id from d) and dead_streak > 0",
        )
        .bind(self.tenant.as_uuid())
        .bind(id.as_uuid())
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Records a failed attempt in the delivery and in its log: `failed`,
    /// due again after `retry_in`, or `dead` when there is no retry. The due
    /// time is the database's clock, as is the check in
    /// [`TenantTx::claim_delivery`]. A death that makes [`QUARANTINE_AFTER`]
    /// in a row quarantines the subscriber.
    pub async fn mark_delivery_failed(
        &mut self,
        id: DeliveryId,
        error: &str,
        retry_in: Option<Duration>,
    ) -> Result<FailureOutcome> {
        let retry_ms = retry_in.map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let (subscriber,): (Uuid,) = sqlx::query_as(
            "update deliveries set attempts = attempts + 1, last_error = $3, last_attempt_at = now(),
                    next_attempt_at = now() + $4 * interval '1 millisecond',
                    status = case when $4::bigint is null then 'dead' else 'failed' end
              where tenant_id = $1 and id = $2
             returning subscriber_id",
        )
        .bind(self.tenant.as_uuid())
        .bind(id.as_uuid())
        .bind(error)
        .bind(retry_ms)
        .fetch_one(&mut *self.tx)
        .await?;
        sqlx::query(
            "insert into delivery_attempts (tenant_id, delivery_id, attempt, error, retry_at)
             select $1, $2, coalesce(max(attempt), 0) + 1, $3, now() + $4 * interval '1 millisecond'
               from delivery_attempts where tenant_id = $1 and delivery_id = $2",
        )
        .bind(self.tenant.as_uuid())
        .bind(id.as_uuid())
        .bind(error)
        .bind(retry_ms)
        .execute(&mut *self.tx)
        .await?;
        if retry_ms.is_some() {
            return Ok(FailureOutcome::Retrying);
        }
        let (quarantined,): (bool,) = sqlx::query_as(
            "update subscribers set dead_streak = dead_streak + 1,
                    quarantined_at = case when dead_streak + 1 >= $3 and quarantined_at is null
                                          then now() else quarantined_at end
              where tenant_id = $1 and id = $2
             returning quarantined_at is not null and dead_streak = $3",
        )
        .bind(self.tenant.as_uuid())
        .bind(subscriber)
        .bind(QUARANTINE_AFTER)
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(if quarantined {
            FailureOutcome::DeadAndQuarantined
        } else {
            FailureOutcome::Dead
        })
    }

    /// Ends a subscription whose endpoint said it is gone (HTTP 410).
    pub async fn unsubscribe_gone(&mut self, id: SubscriberId) -> Result<()> {
        sqlx::query(
            "update subscribers set unsubscribed_at = now()
              where tenant_id = $1 and id = $2 and unsubscribed_at is null",
        )
        .bind(self.tenant.as_uuid())
        .bind(id.as_uuid())
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Takes one SMS from this month's `which` budget (`budget` when the
    /// tenant has none of its own); answers false when it is spent.
    pub async fn take_sms_budget(&mut self, which: SmsBudget, budget: i32) -> Result<bool> {
        // Two statements rather than one with the column as a parameter:
        // SQL never comes from a format string here.
        let sql = match which {
            SmsBudget::Notifications => {
                "insert into sms_usage as u (tenant_id, month, sent)
                 select $1, date_trunc('month', now() at time zone 'utc')::date, 1
                   from tenants t where t.id = $1 and coalesce(t.sms_monthly_budget, $2) > 0
                 on conflict (tenant_id, month) do update set sent = u.sent + 1
                  where u.sent < (select coalesce(t.sms_monthly_budget, $2) from tenants t where t.id = $1)
                 returning sent"
            }
            SmsBudget::Confirmations => {
                "insert into sms_usage as u (tenant_id, month, confirmations)
                 select $1, date_trunc('month', now() at time zone 'utc')::date, 1
                   from tenants t where t.id = $1
                    and coalesce(t.sms_confirmation_monthly_budget, $2) > 0
                 on conflict (tenant_id, month) do update set confirmations = u.confirmations + 1
                  where u.confirmations < (select coalesce(t.sms_confirmation_monthly_budget, $2)
                                             from tenants t where t.id = $1)
                 returning confirmations"
            }
        };
        let taken: Option<(i32,)> = sqlx::query_as(sql)
            .bind(self.tenant.as_uuid())
            .bind(budget)
            .fetch_optional(&mut *self.tx)
            .await?;
        Ok(taken.is_some())
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

    /// Records that the fan-out of `event` moved on (the sweeper restarts
    /// only fan-outs that stopped moving).
    pub async fn touch_fanout(&mut self, event: EventId) -> Result<()> {
        sqlx::query("update outbox set relayed_at = now() where tenant_id = $1 and id = $2")
            .bind(self.tenant.as_uuid())
            .bind(event.as_uuid())
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

impl TenantTx {
    /// A page's events, newest first, with their deliveries counted by status.
    pub async fn list_events(
        &mut self,
        page: PageId,
        limit: i64,
        offset: i64,
    ) -> Result<Listed<EventSummary>> {
        let (total,): (i64,) =
            sqlx::query_as("select count(*) from outbox where tenant_id = $1 and page_id = $2")
                .bind(self.tenant.as_uuid())
                .bind(page.as_uuid())
                .fetch_one(&mut *self.tx)
                .await?;
        let items = sqlx::query_as(
            "select o.id, o.kind, o.payload, o.created_at, o.fanned_out_at,
                    count(d.id) filter (where d.status = 'pending') as pending,
                    count(d.id) filter (where d.status = 'sent') as sent,
                    count(d.id) filter (where d.status = 'failed') as failed,
                    count(d.id) filter (where d.status = 'dead') as dead,
                    count(d.id) filter (where d.status = 'skipped') as skipped
               from outbox o left join deliveries d on d.tenant_id = o.tenant_id and d.event_id = o.id
              where o.tenant_id = $1 and o.page_id = $2
              group by o.id
              order by o.created_at desc, o.id desc limit $3 offset $4",
        )
        .bind(self.tenant.as_uuid())
        .bind(page.as_uuid())
        .bind(limit)
        .bind(offset)
        .fetch_all(&mut *self.tx)
        .await?;
        Ok(Listed { items, total })
    }

    /// One event of a page.
    pub async fn event_on_page(&mut self, page: PageId, id: EventId) -> Result<Event> {
        Ok(sqlx::query_as(
            "select id, page_id, kind, payload, created_at from outbox
              where tenant_id = $1 and page_id = $2 and id = $3",
        )
        .bind(self.tenant.as_uuid())
        .bind(page.as_uuid())
        .bind(id.as_uuid())
        .fetch_one(&mut *self.tx)
        .await?)
    }

    /// The deliveries of a page that `filter` keeps, oldest first.
    pub async fn list_deliveries(
        &mut self,
        page: PageId,
        filter: &DeliveryFilter,
        limit: i64,
        offset: i64,
    ) -> Result<Listed<DeliveryRecord>> {
        let (total,): (i64,) = bind_filter(
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "select count(*){DELIVERIES_WHERE}"
            ))),
            self.tenant,
            page,
            filter,
        )
        .fetch_one(&mut *self.tx)
        .await?;
        let items = bind_filter(
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "select d.id, d.event_id, o.kind as event_kind, d.subscriber_id, d.channel,
                        coalesce(s.email::text, s.phone_number, s.endpoint) as target,
                        d.status, d.attempts, d.last_error, d.last_attempt_at, d.next_attempt_at,
                        d.sent_at, d.created_at{DELIVERIES_WHERE}
                  order by d.created_at, d.id limit $8 offset $9"
            ))),
            self.tenant,
            page,
            filter,
        )
        .bind(limit)
        .bind(offset)
        .fetch_all(&mut *self.tx)
        .await?;
        Ok(Listed { items, total })
    }

    /// How many deliveries `filter` keeps, per status and channel.
    pub async fn count_deliveries(
        &mut self,
        page: PageId,
        filter: &DeliveryFilter,
    ) -> Result<Vec<(String, String, i64)>> {
        Ok(bind_filter(
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "select d.status, d.channel, count(*){DELIVERIES_WHERE}
                  group by d.status, d.channel order by d.status, d.channel"
            ))),
            self.tenant,
            page,
            filter,
        )
        .fetch_all(&mut *self.tx)
        .await?)
    }

    /// One delivery of a page, with its failed attempts.
    pub async fn delivery_on_page(
        &mut self,
        page: PageId,
        id: DeliveryId,
    ) -> Result<(DeliveryRecord, Vec<DeliveryAttempt>)> {
        let record: DeliveryRecord = bind_filter(
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "select d.id, d.event_id, o.kind as event_kind, d.subscriber_id, d.channel,
                        coalesce(s.email::text, s.phone_number, s.endpoint) as target,
                        d.status, d.attempts, d.last_error, d.last_attempt_at, d.next_attempt_at,
                        d.sent_at, d.created_at{DELIVERIES_WHERE} and d.id = $8"
            ))),
            self.tenant,
            page,
            &DeliveryFilter::default(),
        )
        .bind(id.as_uuid())
        .fetch_one(&mut *self.tx)
        .await?;
        let attempts = sqlx::query_as(
            "select attempt, at, error, retry_at from delivery_attempts
              where tenant_id = $1 and delivery_id = $2 order by attempt",
        )
        .bind(self.tenant.as_uuid())
        .bind(id.as_uuid())
        .fetch_all(&mut *self.tx)
        .await?;
        Ok((record, attempts))
    }

    /// Gives dead deliveries of `page` a fresh start: pending, their attempt
    /// count back to zero (their failed attempts stay in the log). `ids`
    /// empty redrives every dead delivery of the page (at most `limit`).
    /// A `deliveries.redriven` event naming them tells the worker to queue
    /// them (through the outbox, so a Redis outage loses none). Answers them.
    pub async fn redrive_deliveries(
        &mut self,
        page: PageId,
        ids: &[DeliveryId],
        limit: i64,
    ) -> Result<Vec<DeliveryId>> {
        let ids: Vec<Uuid> = ids.iter().map(DeliveryId::as_uuid).collect();
        let rows: Vec<(Uuid,)> = sqlx::query_as(
            "update deliveries d set status = 'pending', attempts = 0, next_attempt_at = null
              where d.id in (select d2.id from deliveries d2
                               join outbox o on o.tenant_id = d2.tenant_id and o.id = d2.event_id
                              where d2.tenant_id = $1 and o.page_id = $2 and d2.status = 'dead'
                                and (cardinality($3::uuid[]) = 0 or d2.id = any($3))
                              order by d2.updated_at limit $4
                                for update of d2)
             returning d.id",
        )
        .bind(self.tenant.as_uuid())
        .bind(page.as_uuid())
        .bind(&ids)
        .bind(limit)
        .fetch_all(&mut *self.tx)
        .await?;
        let ids: Vec<DeliveryId> = rows.into_iter().map(|(id,)| id.into()).collect();
        if !ids.is_empty() {
            self.record_event(
                page,
                EventKind::DeliveriesRedriven,
                &RedriveEventPayload {
                    delivery_ids: ids.clone(),
                },
            )
            .await?;
        }
        Ok(ids)
    }
}

/// What a `deliveries.redriven` event carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedriveEventPayload {
    /// The deliveries to queue again.
    pub delivery_ids: Vec<DeliveryId>,
}

/// Binds the [`DELIVERIES_WHERE`] parameters `$1`..`$7`.
fn bind_filter<'q, O>(
    query: sqlx::query::QueryAs<'q, Postgres, O, sqlx::postgres::PgArguments>,
    tenant: TenantId,
    page: PageId,
    filter: &DeliveryFilter,
) -> sqlx::query::QueryAs<'q, Postgres, O, sqlx::postgres::PgArguments> {
    query
        .bind(tenant.as_uuid())
        .bind(page.as_uuid())
        .bind(filter.event.map(|e| e.as_uuid()))
        .bind(filter.incident_update.map(|u| u.as_uuid().to_string()))
        .bind(filter.statuses.clone())
        .bind(filter.channels.clone())
        .bind(filter.incident.map(|i| i.as_uuid().to_string()))
}

impl Store {
    /// How long the oldest unsent (pending or failed) delivery has waited,
    /// in seconds, across tenants (for `/metrics`).
    pub async fn oldest_unsent_delivery_seconds(&self) -> Result<f64> {
        let (age,): (f64,) = sqlx::query_as("select hg_oldest_unsent_delivery_seconds()")
            .fetch_one(&self.pool)
            .await?;
        Ok(age)
    }

    /// Deliveries by channel and status across tenants (for `/metrics`).
    pub async fn delivery_counts(&self) -> Result<Vec<(String, String, i64)>> {
        Ok(
            sqlx::query_as("select channel, status, n from hg_delivery_counts()")
                .fetch_all(&self.pool)
                .await?,
        )
    }
}
