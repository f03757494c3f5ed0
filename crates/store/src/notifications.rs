//! The notification pipeline's tables: the outbox and the deliveries.
//!
//! What an attempt makes of a delivery (sent, due again, dead, skipped) and
//! when a subscriber is quarantined are the domain's
//! (`heliograph_domain::delivery`); this module writes what it decides.
//!
//! It runs past 700 lines because the outbox, the deliveries and the
//! delivery log are one pipeline over the same rows; split, each step's SQL
//! would sit apart from the row shapes it reads and writes.
//!
//! Every step here is safe to repeat: relaying an event twice enqueues a
//! second fan-out, which inserts no second delivery (one per event ×
//! subscriber × channel); a delivery already sent is never claimed again.

use heliograph_domain::{
    Channel, DeliveryAttempt, DeliveryHealth, DeliveryId, DeliveryRecord, DeliveryStatus,
    DeliveryStep, EventId, EventKind, IncidentId, IncidentUpdateId, PageId, SubscriberId,
    Subscription, SubscriptionState, TenantId,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::postgres::PgListener;
use sqlx::types::Json;
use sqlx::{Postgres, QueryBuilder};
use std::time::Duration;

use time::OffsetDateTime;
use uuid::Uuid;

use crate::subscribers::state_condition;
use crate::{Claimed, Listed, Result, Store, StoreError, TenantTx};

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

/// A delivery locked for sending, with what is needed to send it.
#[derive(Debug, Clone)]
pub struct DeliveryWork {
    /// The delivery.
    pub id: DeliveryId,
    /// Channel.
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
    pub subscriber_id: SubscriberId,
    /// Whether the subscriber still wants it (`Subscription::wants_deliveries`).
    pub subscriber_active: bool,
    /// The subscriber's record of failing deliveries, as read with it.
    pub health: DeliveryHealth,
    /// The event it announces.
    pub event_id: EventId,
    /// The event's kind.
    pub event_kind: String,
    /// The page the event is about.
    pub page_id: PageId,
    /// Whether the page has SMS turned on (`allow_sms_subscribers`).
    pub page_sms_on: bool,
}

/// A delivery row locked for sending, with its subscriber's and page's columns.
#[derive(Debug, Clone, sqlx::FromRow)]
struct DeliveryWorkRow {
    #[sqlx(try_from = "Uuid")]
    id: DeliveryId,
    #[sqlx(try_from = "String")]
    channel: Channel,
    attempts: i32,
    email: Option<String>,
    phone_number: Option<String>,
    endpoint: Option<String>,
    endpoint_sealed: Option<String>,
    webhook_secret: Option<String>,
    webhook_secret_sealed: Option<String>,
    confirmation_sent_at: Option<OffsetDateTime>,
    confirmed_at: Option<OffsetDateTime>,
    quarantined_at: Option<OffsetDateTime>,
    unsubscribed_at: Option<OffsetDateTime>,
    dead_streak: i32,
    #[sqlx(try_from = "Uuid")]
    subscriber_id: SubscriberId,
    #[sqlx(try_from = "Uuid")]
    event_id: EventId,
    event_kind: String,
    #[sqlx(try_from = "Uuid")]
    page_id: PageId,
    page_sms_on: bool,
}

impl From<DeliveryWorkRow> for DeliveryWork {
    fn from(r: DeliveryWorkRow) -> Self {
        let subscription = Subscription {
            confirmed_at: r.confirmed_at,
            quarantined_at: r.quarantined_at,
            unsubscribed_at: r.unsubscribed_at,
        };
        Self {
            id: r.id,
            channel: r.channel,
            attempts: r.attempts,
            email: r.email,
            phone_number: r.phone_number,
            endpoint: r.endpoint,
            endpoint_sealed: r.endpoint_sealed,
            webhook_secret: r.webhook_secret,
            webhook_secret_sealed: r.webhook_secret_sealed,
            confirmation_sent_at: r.confirmation_sent_at,
            confirmed: subscription.confirmed_at.is_some(),
            subscriber_id: r.subscriber_id,
            subscriber_active: subscription.wants_deliveries(),
            health: DeliveryHealth {
                dead_streak: r.dead_streak,
                quarantined_at: r.quarantined_at,
            },
            event_id: r.event_id,
            event_kind: r.event_kind,
            page_id: r.page_id,
            page_sms_on: r.page_sms_on,
        }
    }
}

/// Which monthly SMS budget a text draws on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmsBudget {
    /// Incident, maintenance and component texts: the budget, and with
    /// billing on the plan's `texts_per_month` too (whichever is smaller).
    Notifications {
        /// The plan's `texts_per_month`; none: no plan limit (billing off,
        /// or a plan without one).
        plan_limit: Option<u32>,
    },
    /// Confirmation codes, which strangers can ask for: a budget of their
    /// own, so that they never use up the notifications' (nor the plan's).
    Confirmations,
}

/// What came of taking one from a month's count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MonthlyTake {
    /// Taken: it may be sent.
    Taken,
    /// Not taken: the budget (the tenant's own, or the operator's default) is spent.
    BudgetSpent,
    /// Not taken: the plan's limit is reached (it is smaller than the budget).
    PlanLimitReached,
}

/// A row of the delivery log.
#[derive(Debug, Clone, sqlx::FromRow)]
struct DeliveryRecordRow {
    #[sqlx(try_from = "Uuid")]
    id: DeliveryId,
    #[sqlx(try_from = "Uuid")]
    event_id: EventId,
    event_kind: String,
    #[sqlx(try_from = "Uuid")]
    subscriber_id: SubscriberId,
    #[sqlx(try_from = "String")]
    channel: Channel,
    target: Option<String>,
    #[sqlx(try_from = "String")]
    status: DeliveryStatus,
    attempts: i32,
    last_error: Option<String>,
    last_attempt_at: Option<OffsetDateTime>,
    next_attempt_at: Option<OffsetDateTime>,
    sent_at: Option<OffsetDateTime>,
    created_at: OffsetDateTime,
}

impl From<DeliveryRecordRow> for DeliveryRecord {
    fn from(r: DeliveryRecordRow) -> Self {
        Self {
            id: r.id,
            event_id: r.event_id,
            event_kind: r.event_kind,
            subscriber_id: r.subscriber_id,
            channel: r.channel,
            target: r.target,
            status: r.status,
            attempts: r.attempts,
            last_error: r.last_error,
            last_attempt_at: r.last_attempt_at,
            next_attempt_at: r.next_attempt_at,
            sent_at: r.sent_at,
            created_at: r.created_at,
        }
    }
}

/// A failed attempt's row.
#[derive(Debug, Clone, sqlx::FromRow)]
struct DeliveryAttemptRow {
    attempt: i32,
    at: OffsetDateTime,
    error: String,
    retry_at: Option<OffsetDateTime>,
}

impl From<DeliveryAttemptRow> for DeliveryAttempt {
    fn from(r: DeliveryAttemptRow) -> Self {
        Self {
            attempt: r.attempt,
            at: r.at,
            error: r.error,
            retry_at: r.retry_at,
        }
    }
}

impl TenantTx {
    /// How many deliveries of `event` are not finished yet (pending, or
    /// failed and due again), counted no further than `cap`: what a fan-out
    /// holds back on, so that a relay that refuses everything does not make
    /// it write every subscriber's row ahead of sending.
    pub async fn unfinished_deliveries(&mut self, event: EventId, cap: i64) -> Result<i64> {
        let (n,): (i64,) = sqlx::query_as(
            "select count(*) from (select from deliveries
                                    where event_id = $1 and tenant_id = $2
                                      and status in ('pending', 'failed')
                                    limit $3) as unfinished",
        )
        .bind(event.as_uuid())
        .bind(self.tenant.as_uuid())
        .bind(cap)
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(n)
    }

    /// Those of `ids` that are still pending (a redrive's deliveries, to queue).
    pub async fn pending_among(&mut self, ids: &[DeliveryId]) -> Result<Vec<DeliveryId>> {
        let ids: Vec<Uuid> = ids.iter().map(DeliveryId::as_uuid).collect();
        let rows: Vec<(Uuid,)> = sqlx::query_as(
            "select id from deliveries where tenant_id = $1 and id = any($2) and status = $3",
        )
        .bind(self.tenant.as_uuid())
        .bind(&ids)
        .bind(DeliveryStatus::Pending.as_str())
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
    pub statuses: Vec<DeliveryStatus>,
    /// Channels to keep (empty: all).
    pub channels: Vec<Channel>,
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
    /// The name of what it is about: its incident or maintenance, else its
    /// component; none for an event addressed to one subscriber, or when
    /// that was deleted since.
    pub subject: Option<String>,
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

/// The columns of [`DeliveryRecordRow`], from `d` (deliveries), `o` (outbox), `s` (subscribers).
const RECORD_COLUMNS: &str =
    "select d.id, d.event_id, o.kind as event_kind, d.subscriber_id, d.channel,
        coalesce(s.email::text, s.phone_number, s.endpoint) as target,
        d.status, d.attempts, d.last_error, d.last_attempt_at, d.next_attempt_at,
        d.sent_at, d.created_at";

/// A limit as the counters' `integer` column holds it (a plan's value
/// past `i32::MAX` is as good as none).
fn clamp_i32(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// `select` followed by the delivery log of `page` that `filter` keeps.
fn deliveries_where(
    mut select: QueryBuilder<Postgres>,
    tenant: TenantId,
    page: PageId,
    filter: &DeliveryFilter,
) -> QueryBuilder<Postgres> {
    select
        .push(
            " from deliveries d
              join outbox o on o.tenant_id = d.tenant_id and o.id = d.event_id
              join subscribers s on s.tenant_id = d.tenant_id and s.id = d.subscriber_id
             where d.tenant_id = ",
        )
        .push_bind(tenant.as_uuid())
        .push(" and o.page_id = ")
        .push_bind(page.as_uuid());
    if let Some(event) = filter.event {
        select.push(" and d.event_id = ").push_bind(event.as_uuid());
    }
    if let Some(update) = filter.incident_update {
        // The first condition is the partial index's own (`outbox_incident_update_idx`).
        select
            .push(" and o.payload ? 'incident_update_id' and o.payload ->> 'incident_update_id' = ")
            .push_bind(update.as_uuid().to_string());
    }
    if !filter.statuses.is_empty() {
        let statuses: Vec<&'static str> = filter.statuses.iter().map(|s| s.as_str()).collect();
        select
            .push(" and d.status = any(")
            .push_bind(statuses)
            .push(")");
    }
    if !filter.channels.is_empty() {
        let channels: Vec<&'static str> = filter.channels.iter().map(|c| c.as_str()).collect();
        select
            .push(" and d.channel = any(")
            .push_bind(channels)
            .push(")");
    }
    if let Some(incident) = filter.incident {
        select
            .push(" and o.payload ->> 'incident_id' = ")
            .push_bind(incident.as_uuid().to_string());
    }
    select
}

impl Store {
    /// Claims up to `limit` unrelayed outbox rows, skipping rows another relay holds.
    ///
    /// Cross-tenant by nature: the relay serves every tenant, oldest event first.
    pub async fn claim_outbox(&self, limit: i64) -> Result<Claimed<ClaimedEvent>> {
        let mut tx = self.pool.begin().await?;
        let events = sqlx::query_as("select id, tenant_id from hg_claim_outbox($1)")
            .bind(i32::try_from(limit).unwrap_or(i32::MAX))
            .fetch_all(&mut *tx)
            .await?;
        Ok(Claimed::new(
            tx,
            events,
            |e: &ClaimedEvent| e.id.as_uuid(),
            "select hg_mark_relayed($1)",
        ))
    }

    /// A listener for new outbox rows, on a connection of its own; `None`
    /// under a transaction pooler without a listen URL
    /// ([`Store::with_listen_url`]): such a pooler lends the server
    /// connection that ran `LISTEN` to other clients, so notifications
    /// would reach them, or no one. Callers then poll.
    pub async fn listen_outbox(&self) -> Result<Option<OutboxListener>> {
        let mut listener = match (self.pool.pooler(), &self.listen_url) {
            (_, Some(url)) => PgListener::connect(url).await?,
            (crate::Pooler::None, None) => PgListener::connect_with(&self.pool).await?,
            (crate::Pooler::Transaction, None) => return Ok(None),
        };
        listener.listen("heliograph_outbox").await?;
        Ok(Some(OutboxListener(listener)))
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
    ) -> Result<(Vec<(DeliveryId, Channel)>, Option<Uuid>)> {
        let channels: Vec<&str> = Channel::ALL
            .iter()
            .copied()
            .filter(|c| kind.reaches(*c))
            .map(Channel::as_str)
            .collect();
        let mut select = QueryBuilder::<Postgres>::new(
            "select s.id, s.channel from subscribers s where s.tenant_id = ",
        );
        select
            .push_bind(self.tenant.as_uuid())
            .push(" and s.page_id = ")
            .push_bind(page.as_uuid())
            .push(" and s.channel = any(")
            .push_bind(channels)
            .push(") and ")
            .push(state_condition(SubscriptionState::Active));
        if let Some(after) = after {
            select.push(" and s.id > ").push_bind(after);
        }
        select
            .push(
                " and (not exists (select 1 from subscriber_components sc where sc.subscriber_id = s.id)
                      or exists (select 1 from subscriber_components sc
                                  where sc.subscriber_id = s.id and sc.component_id = any(",
            )
            .push_bind(components.to_vec())
            .push("))) order by s.id limit ")
            .push_bind(limit);
        let batch: Vec<(Uuid, String)> = select.build_query_as().fetch_all(&mut *self.tx).await?;
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
    ) -> Result<Vec<(DeliveryId, Channel)>> {
        let mut select = QueryBuilder::<Postgres>::new(
            "select s.id, s.channel from subscribers s where s.tenant_id = ",
        );
        select
            .push_bind(self.tenant.as_uuid())
            .push(" and s.id = ")
            .push_bind(subscriber.as_uuid())
            .push(" and not ")
            .push(state_condition(SubscriptionState::Unsubscribed));
        let target: Vec<(Uuid, String)> = select.build_query_as().fetch_all(&mut *self.tx).await?;
        self.insert_deliveries(event, &target).await
    }

    /// Inserts one delivery per (subscriber, channel), skipping those that
    /// exist; answers the pending ones among them, with their channels.
    ///
    /// The new rows come back from the insert itself. Only when some
    /// existed already (a fan-out run again) are those looked up, through
    /// the unique (event, subscriber, channel) index: a scan of the event's
    /// pending rows would also wade through every row the event's sends
    /// left behind, and slow a large fan-out down as it goes.
    async fn insert_deliveries(
        &mut self,
        event: EventId,
        to: &[(Uuid, String)],
    ) -> Result<Vec<(DeliveryId, Channel)>> {
        let (ids, channels): (Vec<Uuid>, Vec<String>) = to.iter().cloned().unzip();
        let mut rows: Vec<(Uuid, String)> = sqlx::query_as(
            "insert into deliveries (id, tenant_id, event_id, subscriber_id, channel)
             select gen_random_uuid(), $1, $2, s, c from unnest($3::uuid[], $4::text[]) as t(s, c)
             on conflict on constraint deliveries_event_subscriber_channel_key do nothing
             returning id, channel",
        )
        .bind(self.tenant.as_uuid())
        .bind(event.as_uuid())
        .bind(&ids)
        .bind(&channels)
        .fetch_all(&mut *self.tx)
        .await?;
        if rows.len() < to.len() {
            rows = sqlx::query_as(
                "select d.id, d.channel
                   from unnest($3::uuid[], $4::text[]) as t(s, c)
                   join deliveries d on d.event_id = $2 and d.subscriber_id = t.s and d.channel = t.c
                  where d.tenant_id = $1 and d.status = $5",
            )
            .bind(self.tenant.as_uuid())
            .bind(event.as_uuid())
            .bind(&ids)
            .bind(&channels)
            .bind(DeliveryStatus::Pending.as_str())
            .fetch_all(&mut *self.tx)
            .await?;
        }
        rows.sort_unstable();
        rows.into_iter()
            .map(|(id, channel)| {
                let channel = Channel::try_from(channel)
                    .map_err(|e| StoreError::Corrupt(format!("a delivery's channel: {e}")))?;
                Ok((id.into(), channel))
            })
            .collect()
    }

    /// Locks those of `ids` that may be sent now, in id order, skipping any
    /// already sent, dead, not due yet (a duplicate job arriving early) or
    /// being sent by another worker: one statement for the whole batch.
    pub async fn claim_deliveries(&mut self, ids: &[DeliveryId]) -> Result<Vec<DeliveryWork>> {
        let sendable: Vec<&'static str> = DeliveryStatus::SENDABLE
            .iter()
            .map(|s| s.as_str())
            .collect();
        let ids: Vec<Uuid> = ids.iter().map(DeliveryId::as_uuid).collect();
        // Each id is looked up on its own (`lateral`), by full key: a plan
        // for `d.id = any($2)` rests on the table's statistics, and a table
        // that grew fast since they were taken looks tiny, so the planner
        // read every delivery of the tenant to find a batch's eight
        // (migrations/20261207000500_delivery_steps.sql says more).
        let rows: Vec<DeliveryWorkRow> = sqlx::query_as(
            "select d.id, d.channel, d.attempts, s.email::text as email, s.phone_number, s.endpoint,
                    s.endpoint_sealed, s.webhook_secret, s.webhook_secret_sealed,
                    s.confirmation_sent_at, s.confirmed_at, s.quarantined_at, s.unsubscribed_at,
                    s.dead_streak,
                    d.event_id, o.kind as event_kind, s.id as subscriber_id,
                    o.page_id, p.allow_sms_subscribers as page_sms_on
               from unnest($2::uuid[]) as wanted(id)
              cross join lateral (
                    select d.id, d.channel, d.attempts, d.subscriber_id, d.event_id, d.tenant_id
                      from deliveries d
                     where d.tenant_id = $1 and d.id = wanted.id and d.status = any($3)
                       and (d.next_attempt_at is null
                            or d.next_attempt_at <= now() + interval '2 seconds')
                       for update skip locked
                   ) d
               join subscribers s on s.tenant_id = d.tenant_id and s.id = d.subscriber_id
               join outbox o on o.tenant_id = d.tenant_id and o.id = d.event_id
               join pages p on p.tenant_id = o.tenant_id and p.id = o.page_id
              order by d.id",
        )
        .bind(self.tenant.as_uuid())
        .bind(&ids)
        .bind(sendable)
        .fetch_all(&mut *self.tx)
        .await?;
        Ok(rows.into_iter().map(DeliveryWork::from).collect())
    }

    /// Records what the attempts at a batch of claimed deliveries came to,
    /// as the domain decided each (`heliograph_domain::delivery::after_attempt`):
    /// every delivery's status in one statement, the log of failed attempts
    /// in one more when any failed; then, for the few steps that need it,
    /// the subscriber's record of failing deliveries (a send ends a run of
    /// dead ones; a death may quarantine) or the end of the subscription
    /// when its target is gone. Times are the database's clock, as is the
    /// check in [`TenantTx::claim_deliveries`]. Answers the subscribers
    /// these steps quarantined.
    pub async fn record_delivery_steps(
        &mut self,
        steps: &[(&DeliveryWork, DeliveryStep)],
    ) -> Result<Vec<SubscriberId>> {
        if steps.is_empty() {
            return Ok(Vec::new());
        }
        let mut ids = Vec::with_capacity(steps.len());
        let mut statuses = Vec::with_capacity(steps.len());
        let mut attempted = Vec::with_capacity(steps.len());
        let mut retry_ms: Vec<Option<i64>> = Vec::with_capacity(steps.len());
        let mut errors: Vec<Option<String>> = Vec::with_capacity(steps.len());
        for (work, step) in steps {
            ids.push(work.id.as_uuid());
            statuses.push(step.status().as_str());
            let (tried, error) = match step {
                DeliveryStep::Sent => (true, None),
                DeliveryStep::Retry { error, .. } | DeliveryStep::Dead { error } => {
                    (true, Some(error.clone()))
                }
                DeliveryStep::Skipped { reason, .. } => (false, Some((*reason).to_owned())),
            };
            attempted.push(tried);
            retry_ms.push(step.retry_in().map(crate::millis));
            errors.push(error);
        }
        // Row by row inside, by full key: see the function's migration for
        // why not one `update … from unnest(…)`.
        sqlx::query("select hg_record_delivery_steps($1, $2, $3, $4, $5, $6)")
            .bind(self.tenant.as_uuid())
            .bind(&ids)
            .bind(&statuses)
            .bind(&attempted)
            .bind(&retry_ms)
            .bind(&errors)
            .execute(&mut *self.tx)
            .await?;
        let failed: Vec<(Uuid, &str, Option<i64>)> = steps
            .iter()
            .filter_map(|(work, step)| match step {
                DeliveryStep::Retry { error, .. } | DeliveryStep::Dead { error } => Some((
                    work.id.as_uuid(),
                    error.as_str(),
                    step.retry_in().map(crate::millis),
                )),
                _ => None,
            })
            .collect();
        if !failed.is_empty() {
            let ids: Vec<Uuid> = failed.iter().map(|f| f.0).collect();
            let errors: Vec<&str> = failed.iter().map(|f| f.1).collect();
            let retry_ms: Vec<Option<i64>> = failed.iter().map(|f| f.2).collect();
            sqlx::query(
                "insert into delivery_attempts (tenant_id, delivery_id, attempt, error, retry_at)
                 select $1, u.id,
                        coalesce((select max(a.attempt) from delivery_attempts a
                                   where a.tenant_id = $1 and a.delivery_id = u.id), 0) + 1,
                        u.error, now() + u.retry_ms * interval '1 millisecond'
                   from unnest($2::uuid[], $3::text[], $4::bigint[]) as u(id, error, retry_ms)",
            )
            .bind(self.tenant.as_uuid())
            .bind(&ids)
            .bind(&errors)
            .bind(&retry_ms)
            .execute(&mut *self.tx)
            .await?;
        }
        let mut quarantined = Vec::new();
        for (work, step) in steps {
            match step {
                // Most sends find no run of dead deliveries to end: the row
                // read with the delivery says so, and saves a write.
                DeliveryStep::Sent => {
                    let after = work.health.after_sent();
                    if after != work.health {
                        self.write_sent_health(work.subscriber_id, &after).await?;
                    }
                }
                DeliveryStep::Dead { .. } => {
                    let Some((_, health, now)) =
                        self.lock_subscription(None, work.subscriber_id).await?
                    else {
                        return Err(StoreError::NotFound);
                    };
                    let after = health.after_dead(now);
                    self.write_delivery_health(work.subscriber_id, &after)
                        .await?;
                    if health.quarantines(&after) {
                        quarantined.push(work.subscriber_id);
                    }
                }
                DeliveryStep::Skipped {
                    unsubscribe: true, ..
                } => self.unsubscribe_gone(work.subscriber_id).await?,
                DeliveryStep::Retry { .. } | DeliveryStep::Skipped { .. } => {}
            }
        }
        Ok(quarantined)
    }

    /// Writes the record of failing deliveries a send left. Sends of other
    /// deliveries to the same subscriber may race this one: each writes the
    /// run's end, and none touches the quarantine.
    async fn write_sent_health(&mut self, id: SubscriberId, after: &DeliveryHealth) -> Result<()> {
        sqlx::query("update subscribers set dead_streak = $3 where tenant_id = $1 and id = $2")
            .bind(self.tenant.as_uuid())
            .bind(id.as_uuid())
            .bind(after.dead_streak)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Takes one SMS from this month's `which` budget (`budget` when the
    /// tenant has none of its own; for notifications, no more than the
    /// plan's limit either); answers which refused it, if one did. One
    /// statement, the same with or without a plan limit: the conditional
    /// upsert locks the month's row, so texts racing for the last one are
    /// decided one after the other.
    pub async fn take_sms_budget(&mut self, which: SmsBudget, budget: i32) -> Result<MonthlyTake> {
        // Two statements rather than one with the column as a parameter:
        // SQL never comes from a format string here.
        match which {
            SmsBudget::Notifications { plan_limit } => {
                // `least` ignores a null: no plan limit leaves the budget.
                let (taken, budget): (Option<i32>, Option<i32>) = sqlx::query_as(
                    "with cap as (
                         select coalesce(t.sms_monthly_budget, $2) as budget,
                                least(coalesce(t.sms_monthly_budget, $2), $3::integer) as allowed
                           from tenants t where t.id = $1
                     ), taken as (
                         insert into sms_usage as u (tenant_id, month, sent)
                         select $1, date_trunc('month', now() at time zone 'utc')::date, 1
                           from cap where cap.allowed > 0
                         on conflict (tenant_id, month) do update set sent = u.sent + 1
                          where u.sent < (select allowed from cap)
                         returning sent
                     )
                     select (select sent from taken), (select budget from cap)",
                )
                .bind(self.tenant.as_uuid())
                .bind(budget)
                .bind(plan_limit.map(clamp_i32))
                .fetch_one(&mut *self.tx)
                .await?;
                Ok(match (taken, plan_limit, budget) {
                    (Some(_), _, _) => MonthlyTake::Taken,
                    // The smaller of the two is what refused; at a tie, the
                    // budget (a bigger plan would not help).
                    (None, Some(plan), Some(budget)) if i64::from(plan) < i64::from(budget) => {
                        MonthlyTake::PlanLimitReached
                    }
                    (None, _, _) => MonthlyTake::BudgetSpent,
                })
            }
            SmsBudget::Confirmations => {
                let taken: Option<(i32,)> = sqlx::query_as(
                    "insert into sms_usage as u (tenant_id, month, confirmations)
                     select $1, date_trunc('month', now() at time zone 'utc')::date, 1
                       from tenants t where t.id = $1
                        and coalesce(t.sms_confirmation_monthly_budget, $2) > 0
                     on conflict (tenant_id, month) do update set confirmations = u.confirmations + 1
                      where u.confirmations < (select coalesce(t.sms_confirmation_monthly_budget, $2)
                                                 from tenants t where t.id = $1)
                     returning confirmations",
                )
                .bind(self.tenant.as_uuid())
                .bind(budget)
                .fetch_optional(&mut *self.tx)
                .await?;
                Ok(if taken.is_some() {
                    MonthlyTake::Taken
                } else {
                    MonthlyTake::BudgetSpent
                })
            }
        }
    }

    /// Gives back `count` places [`Store::take_email_places`] took for
    /// emails that were not sent after all.
    pub async fn give_back_emails(&mut self, count: usize) -> Result<()> {
        if count == 0 {
            return Ok(());
        }
        sqlx::query(
            "update email_usage set sent = greatest(sent - $2, 0)
              where tenant_id = $1 and month = date_trunc('month', now() at time zone 'utc')::date
                and sent > 0",
        )
        .bind(self.tenant.as_uuid())
        .bind(i32::try_from(count).unwrap_or(i32::MAX))
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
            // The events shown are chosen first; only their deliveries are
            // counted (each an index-only range of `deliveries_event_status_idx`), not the page's
            // whole history.
            "select o.id, o.kind, o.payload, o.created_at, o.fanned_out_at,
                    coalesce((select i.name from incidents i
                               where i.tenant_id = o.tenant_id
                                 and i.id = (o.payload ->> 'incident_id')::uuid),
                             (select cp.name from components cp
                               where cp.tenant_id = o.tenant_id
                                 and cp.id = (o.payload ->> 'component_id')::uuid)) as subject,
                    c.pending, c.sent, c.failed, c.dead, c.skipped
               from (select id, tenant_id, kind, payload, created_at, fanned_out_at
                       from outbox where tenant_id = $1 and page_id = $2
                      order by created_at desc, id desc limit $3 offset $4) o
              cross join lateral (
                     select count(*) filter (where d.status = $5) as pending,
                            count(*) filter (where d.status = $6) as sent,
                            count(*) filter (where d.status = $7) as failed,
                            count(*) filter (where d.status = $8) as dead,
                            count(*) filter (where d.status = $9) as skipped
                       from deliveries d where d.tenant_id = o.tenant_id and d.event_id = o.id) c
              order by o.created_at desc, o.id desc",
        )
        .bind(self.tenant.as_uuid())
        .bind(page.as_uuid())
        .bind(limit)
        .bind(offset)
        .bind(DeliveryStatus::Pending.as_str())
        .bind(DeliveryStatus::Sent.as_str())
        .bind(DeliveryStatus::Failed.as_str())
        .bind(DeliveryStatus::Dead.as_str())
        .bind(DeliveryStatus::Skipped.as_str())
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
        let (total,): (i64,) = deliveries_where(
            QueryBuilder::new("select count(*)"),
            self.tenant,
            page,
            filter,
        )
        .build_query_as()
        .fetch_one(&mut *self.tx)
        .await?;
        let mut select =
            deliveries_where(QueryBuilder::new(RECORD_COLUMNS), self.tenant, page, filter);
        select
            .push(" order by d.created_at, d.id limit ")
            .push_bind(limit)
            .push(" offset ")
            .push_bind(offset);
        let rows: Vec<DeliveryRecordRow> = select.build_query_as().fetch_all(&mut *self.tx).await?;
        Ok(Listed {
            items: rows.into_iter().map(DeliveryRecord::from).collect(),
            total,
        })
    }

    /// How many deliveries `filter` keeps, per status and channel.
    pub async fn count_deliveries(
        &mut self,
        page: PageId,
        filter: &DeliveryFilter,
    ) -> Result<Vec<(DeliveryStatus, Channel, i64)>> {
        let mut select = deliveries_where(
            QueryBuilder::new("select d.status, d.channel, count(*)"),
            self.tenant,
            page,
            filter,
        );
        select.push(" group by d.status, d.channel order by d.status, d.channel");
        let rows: Vec<(String, String, i64)> =
            select.build_query_as().fetch_all(&mut *self.tx).await?;
        rows.into_iter()
            .map(|(status, channel, n)| {
                let corrupt =
                    |e: heliograph_domain::UnknownVariant| StoreError::Corrupt(e.to_string());
                Ok((
                    status.parse().map_err(corrupt)?,
                    channel.parse().map_err(corrupt)?,
                    n,
                ))
            })
            .collect()
    }

    /// One delivery of a page, with its failed attempts.
    pub async fn delivery_on_page(
        &mut self,
        page: PageId,
        id: DeliveryId,
    ) -> Result<(DeliveryRecord, Vec<DeliveryAttempt>)> {
        let mut select = deliveries_where(
            QueryBuilder::new(RECORD_COLUMNS),
            self.tenant,
            page,
            &DeliveryFilter::default(),
        );
        select.push(" and d.id = ").push_bind(id.as_uuid());
        let record: DeliveryRecordRow = select.build_query_as().fetch_one(&mut *self.tx).await?;
        let attempts: Vec<DeliveryAttemptRow> = sqlx::query_as(
            "select attempt, at, error, retry_at from delivery_attempts
              where tenant_id = $1 and delivery_id = $2 order by attempt",
        )
        .bind(self.tenant.as_uuid())
        .bind(id.as_uuid())
        .fetch_all(&mut *self.tx)
        .await?;
        Ok((
            record.into(),
            attempts.into_iter().map(DeliveryAttempt::from).collect(),
        ))
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
            "update deliveries d set status = $5, attempts = 0, next_attempt_at = null
              where d.id in (select d2.id from deliveries d2
                               join outbox o on o.tenant_id = d2.tenant_id and o.id = d2.event_id
                              where d2.tenant_id = $1 and o.page_id = $2 and d2.status = any($6)
                                and (cardinality($3::uuid[]) = 0 or d2.id = any($3))
                              order by d2.updated_at limit $4
                                for update of d2)
             returning d.id",
        )
        .bind(self.tenant.as_uuid())
        .bind(page.as_uuid())
        .bind(&ids)
        .bind(limit)
        .bind(DeliveryStatus::Pending.as_str())
        .bind(
            DeliveryStatus::ALL
                .iter()
                .filter(|s| s.is_redrivable())
                .map(|s| s.as_str())
                .collect::<Vec<_>>(),
        )
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
