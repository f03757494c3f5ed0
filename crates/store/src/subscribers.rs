//! Subscribers of a page, as stored: their rows, their sealed secrets,
//! and the lists the team reads. Where a subscription stands and how it
//! moves (confirmed, unsubscribed, quarantined, reactivated) is the
//! domain's (`heliograph_domain::subscriber`); this module locks the row,
//! asks the domain, and writes what it answers.
//!
//! It runs past 700 lines because one table carries three concerns that
//! share its row: the lists, the sealed secrets and the lifecycle writes.

use heliograph_domain::{
    Channel, ComponentId, DeliveryHealth, EventKind, PageId, SubscriberId, Subscription,
    SubscriptionState, TenantId,
};
use heliograph_domain::{Subscriber, Target};
use serde::Serialize;
use sqlx::{Postgres, QueryBuilder};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{ListQuery, Listed, Result, StoreError, TenantTx};

/// A subscriber row.
#[derive(Debug, Clone, sqlx::FromRow)]
struct SubscriberRow {
    #[sqlx(try_from = "Uuid")]
    id: SubscriberId,
    #[sqlx(try_from = "Uuid")]
    page_id: PageId,
    #[sqlx(try_from = "String")]
    channel: Channel,
    email: Option<String>,
    phone_number: Option<String>,
    endpoint: Option<String>,
    confirmation_sent_at: Option<OffsetDateTime>,
    confirmation_attempts: i32,
    confirmed_at: Option<OffsetDateTime>,
    quarantined_at: Option<OffsetDateTime>,
    component_ids: Vec<Uuid>,
    sms_handle: Option<Uuid>,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl From<SubscriberRow> for Subscriber {
    fn from(r: SubscriberRow) -> Self {
        Self {
            id: r.id,
            page_id: r.page_id,
            channel: r.channel,
            email: r.email,
            phone_number: r.phone_number,
            endpoint: r.endpoint,
            confirmation_sent_at: r.confirmation_sent_at,
            confirmation_attempts: r.confirmation_attempts,
            confirmed_at: r.confirmed_at,
            quarantined_at: r.quarantined_at,
            component_ids: r.component_ids.into_iter().map(ComponentId::from).collect(),
            sms_handle: r.sms_handle,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// The columns `target` is kept in: email, phone number, endpoint.
fn target_columns(target: &Target) -> (Option<&str>, Option<&str>, Option<&str>) {
    match target {
        Target::Email(e) => (Some(e.as_str()), None, None),
        Target::Sms(p) => (None, Some(p.as_str()), None),
        Target::Http(_, url) => (None, None, Some(url.as_str())),
    }
}

/// A subscription's lifecycle columns, locked, with the database's clock.
#[derive(Debug, Clone, sqlx::FromRow)]
struct SubscriptionRow {
    confirmed_at: Option<OffsetDateTime>,
    quarantined_at: Option<OffsetDateTime>,
    unsubscribed_at: Option<OffsetDateTime>,
    dead_streak: i32,
    now: OffsetDateTime,
}

impl SubscriptionRow {
    const fn subscription(&self) -> Subscription {
        Subscription {
            confirmed_at: self.confirmed_at,
            quarantined_at: self.quarantined_at,
            unsubscribed_at: self.unsubscribed_at,
        }
    }

    const fn health(&self) -> DeliveryHealth {
        DeliveryHealth {
            dead_streak: self.dead_streak,
            quarantined_at: self.quarantined_at,
        }
    }
}

/// The SQL condition for a subscriber in `state`, as `Subscription::state`
/// defines it (ended first, then quarantined, then by confirmation).
pub(crate) const fn state_condition(state: SubscriptionState) -> &'static str {
    match state {
        SubscriptionState::Unsubscribed => "s.unsubscribed_at is not null",
        SubscriptionState::Quarantined => {
            "(s.unsubscribed_at is null and s.quarantined_at is not null)"
        }
        SubscriptionState::Active => {
            "(s.unsubscribed_at is null and s.quarantined_at is null and s.confirmed_at is not null)"
        }
        SubscriptionState::Unconfirmed => {
            "(s.unsubscribed_at is null and s.quarantined_at is null and s.confirmed_at is null)"
        }
    }
}

/// The state of a current (not unsubscribed) subscriber `s`, named as
/// [`SubscriptionState::as_str`] names it: the conditions of
/// [`state_condition`], in one expression.
fn state_case() -> String {
    let name = |state: SubscriptionState| {
        format!("when {} then '{}'", state_condition(state), state.as_str())
    };
    format!(
        "case {} {} {} end",
        name(SubscriptionState::Quarantined),
        name(SubscriptionState::Active),
        name(SubscriptionState::Unconfirmed)
    )
}

/// A row of a search's answer: a cell of the tally (channel, state, count)
/// or the id of a row of the window.
type SearchRow = (Option<String>, Option<String>, Option<i64>, Option<Uuid>);

/// One cell of a tally, from its columns.
fn tally_cell(channel: &str, state: &str, n: i64) -> Result<(Channel, SubscriptionState, i64)> {
    let corrupt = |e: heliograph_domain::UnknownVariant| StoreError::Corrupt(e.to_string());
    Ok((
        channel.parse().map_err(corrupt)?,
        state.parse().map_err(corrupt)?,
        n,
    ))
}

/// Narrows the rows of `alias` (`s`, or a search's `m`) to those past
/// `cursor`, in the direction it reads, `limit` of them and one more (which
/// only says that more lie that way). Answers whether it reads backwards.
fn push_window(
    alias: &str,
    select: &mut QueryBuilder<Postgres>,
    cursor: SubscriberCursor,
    limit: u32,
) -> bool {
    let (key, backwards) = match cursor {
        SubscriberCursor::First => (None, false),
        SubscriberCursor::After(key) => (Some(key), false),
        SubscriberCursor::Before(key) => (Some(key), true),
    };
    if let Some(key) = key {
        let side = if backwards { '<' } else { '>' };
        select
            .push(format!(" and ({alias}.created_at, {alias}.id) {side} ("))
            .push_bind(key.created_at)
            .push(", ")
            .push_bind(key.id.as_uuid())
            .push(")");
    }
    let direction = if backwards { "desc" } else { "asc" };
    select
        .push(format!(
            " order by {alias}.created_at {direction}, {alias}.id {direction} limit "
        ))
        .push_bind(i64::from(limit) + 1);
    backwards
}

/// The window `rows` make (oldest first, up to `limit` and one more, read
/// from `cursor` backwards or not).
fn window_of(
    rows: Vec<SubscriberRow>,
    cursor: SubscriberCursor,
    backwards: bool,
    limit: u32,
) -> Window<Subscriber> {
    let beyond = rows.len() > limit as usize;
    let mut items: Vec<Subscriber> = rows.into_iter().map(Subscriber::from).collect();
    if beyond {
        // The extra row only says that more lie that way.
        if backwards {
            items.remove(0);
        } else {
            items.pop();
        }
    }
    let from_a_row = cursor != SubscriberCursor::First;
    Window {
        items,
        more_before: if backwards { beyond } else { from_a_row },
        more_after: if backwards { true } else { beyond },
    }
}

/// A subscriber to add.
#[derive(Debug, Clone)]
pub struct NewSubscriber {
    /// Its id, chosen by the caller: sealed secrets name it.
    pub id: SubscriberId,
    /// Where they are reached.
    pub target: Target,
    /// What is kept sealed: a Slack or Teams URL (required for those
    /// channels), a webhook's signing secret.
    pub secrets: SealedSecrets,
    /// Components to follow; empty means all.
    pub component_ids: Vec<ComponentId>,
    /// Whether the subscription is active at once (added by the team) or awaits confirmation.
    pub confirmed: bool,
}

/// A subscriber's secrets as the database keeps them, sealed by the caller
/// with the operator's key ring (`heliograph_auth::SecretsKeyring`) for the
/// places [`endpoint_seal_context`] and [`webhook_secret_seal_context`] name.
/// The store never sees a key, nor these values in clear.
#[derive(Debug, Clone, Default)]
pub struct SealedSecrets {
    /// A Slack or Teams URL.
    pub endpoint: Option<SealedEndpoint>,
    /// A webhook's signing secret, sealed.
    pub webhook_secret: Option<String>,
}

/// A sealed Slack or Teams URL.
#[derive(Debug, Clone)]
pub struct SealedEndpoint {
    /// The URL, sealed.
    pub sealed: String,
    /// Its keyed digest (what "already subscribed" compares).
    pub digest: String,
    /// What answers show of it (`Channel::shown_target`): kept in
    /// `endpoint`, the only part a search can match.
    pub shown: String,
}

/// Where a sealed Slack or Teams URL belongs: it opens only there.
#[must_use]
pub fn endpoint_seal_context(id: SubscriberId) -> String {
    format!("subscribers.endpoint:{id}")
}

/// Where a sealed webhook signing secret belongs: it opens only there.
#[must_use]
pub fn webhook_secret_seal_context(id: SubscriberId) -> String {
    format!("subscribers.webhook_secret:{id}")
}

/// A subscriber's secrets as stored, for re-sealing them: the sealed
/// columns, and the plaintext of a row written before sealing.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredSecrets {
    /// The subscriber.
    #[sqlx(try_from = "Uuid")]
    pub id: SubscriberId,
    /// Its channel.
    #[sqlx(try_from = "String")]
    pub channel: Channel,
    /// The URL (a plaintext Slack or Teams URL on a row not yet sealed).
    pub endpoint: Option<String>,
    /// The sealed Slack or Teams URL.
    pub endpoint_sealed: Option<String>,
    /// A webhook's signing secret in clear, on a row not yet sealed.
    pub webhook_secret: Option<String>,
    /// A webhook's signing secret, sealed.
    pub webhook_secret_sealed: Option<String>,
}

/// The columns of [`Subscriber`].
macro_rules! subscriber_columns {
    () => {
        "s.id, s.page_id, s.channel, s.email::text as email, s.phone_number, s.endpoint,
         s.confirmation_sent_at, s.confirmation_attempts, s.confirmed_at, s.quarantined_at,
         array(select sc.component_id from subscriber_components sc
                where sc.subscriber_id = s.id order by sc.component_id) as component_ids,
         s.sms_handle, s.created_at, s.updated_at"
    };
}

/// Which subscribers a list keeps (Statuspage's `state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriberState {
    /// Confirmed and not quarantined.
    Active,
    /// Awaiting confirmation.
    Unconfirmed,
    /// Suspended for failing deliveries.
    Quarantined,
    /// All of the above.
    All,
}

impl SubscriberState {
    /// Every state a list can keep, in the order the dashboard shows them.
    pub const ALL: [Self; 4] = [
        Self::Active,
        Self::Unconfirmed,
        Self::Quarantined,
        Self::All,
    ];

    /// How the state is named in addresses (`?state=`).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Unconfirmed => "unconfirmed",
            Self::Quarantined => "quarantined",
            Self::All => "all",
        }
    }

    /// Whether a subscriber in `state` is kept.
    #[must_use]
    pub fn keeps(self, state: SubscriptionState) -> bool {
        self.only().is_none_or(|only| only == state)
    }

    /// The one state kept, or `None` for all of them.
    const fn only(self) -> Option<SubscriptionState> {
        match self {
            Self::Active => Some(SubscriptionState::Active),
            Self::Unconfirmed => Some(SubscriptionState::Unconfirmed),
            Self::Quarantined => Some(SubscriptionState::Quarantined),
            Self::All => None,
        }
    }
}

/// `select` followed by the filter of a subscriber list: past subscribers
/// (unsubscribed) are never listed; then a name pattern, channels (the
/// query's `statuses`) and the state.
///
/// The pattern matches what answers show of the address, nothing more: of
/// a sealed Slack or Teams URL, `endpoint` holds only that; a Slack or Teams
/// row from before sealing (plaintext until `secrets reencrypt` runs) is
/// not searchable at all, and the sealed columns never are. No index
/// serves the pattern: under row-level security `ilike` (not leakproof) may
/// not run before the tenant's policy, so a trigram index would go unused
/// (measured); [`TenantTx::subscriber_screen`] reads a search's matches once.
fn subscribers_where(
    mut select: QueryBuilder<Postgres>,
    tenant: TenantId,
    page: PageId,
    query: &ListQuery,
    state: SubscriberState,
) -> QueryBuilder<Postgres> {
    select
        .push(" from subscribers s where s.tenant_id = ")
        .push_bind(tenant.as_uuid())
        .push(" and s.page_id = ")
        .push_bind(page.as_uuid())
        .push(" and not ")
        .push(state_condition(SubscriptionState::Unsubscribed));
    if let Some(pattern) = query.pattern() {
        select
            .push(
                " and coalesce(s.email::text, s.phone_number,
                   case when s.channel not in ('slack', 'teams') or s.endpoint_sealed is not null
                        then s.endpoint end) ilike ",
            )
            .push_bind(pattern)
            .push(" escape '\\'");
    }
    if !query.statuses.is_empty() {
        select
            .push(" and s.channel = any(")
            .push_bind(query.statuses.clone())
            .push(")");
    }
    if let Some(only) = state.only() {
        select.push(" and ").push(state_condition(only));
    }
    select
}

/// How many of a page's current subscribers there are in each channel and
/// state, as one grouped count: every tab of the dashboard's list from one
/// scan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubscriberTally {
    cells: Vec<(Channel, SubscriptionState, i64)>,
}

impl SubscriberTally {
    /// How many are in `channel` (any channel: `None`) and kept by `state`.
    #[must_use]
    pub fn count(&self, channel: Option<Channel>, state: SubscriberState) -> i64 {
        self.cells
            .iter()
            .filter(|(c, s, _)| channel.is_none_or(|wanted| wanted == *c) && state.keeps(*s))
            .map(|(_, _, n)| n)
            .sum()
    }
}

/// Where a window of a list starts: at the beginning, just after a row, or
/// just before one. A row is named by its sort key, so a cursor outlives
/// the row it names (removed since).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriberCursor {
    /// The first rows.
    First,
    /// The rows after this key.
    After(SubscriberKey),
    /// The rows before this key.
    Before(SubscriberKey),
}

/// A subscriber's place in a list: when it was added, then its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubscriberKey {
    /// When the row was added.
    pub created_at: OffsetDateTime,
    /// The row's id, which breaks ties.
    pub id: SubscriberId,
}

impl SubscriberKey {
    /// The key of `s`.
    #[must_use]
    pub const fn of(s: &Subscriber) -> Self {
        Self {
            created_at: s.created_at,
            id: s.id,
        }
    }
}

impl std::fmt::Display for SubscriberKey {
    /// `<microseconds since the epoch>.<id>`: what an address carries.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let micros = self.created_at.unix_timestamp_nanos() / 1_000;
        write!(f, "{micros}.{}", self.id)
    }
}

impl std::str::FromStr for SubscriberKey {
    type Err = ();

    fn from_str(s: &str) -> std::result::Result<Self, ()> {
        let (micros, id) = s.split_once('.').ok_or(())?;
        let micros: i128 = micros.parse().map_err(|_| ())?;
        let created_at =
            OffsetDateTime::from_unix_timestamp_nanos(micros * 1_000).map_err(|_| ())?;
        let id = id.parse::<Uuid>().map_err(|_| ())?;
        Ok(Self {
            created_at,
            id: SubscriberId::from(id),
        })
    }
}

/// A window of a list in its order, and whether rows lie beyond each end.
#[derive(Debug, Clone)]
pub struct Window<T> {
    /// The rows, in the list's order.
    pub items: Vec<T>,
    /// Whether rows come before the first.
    pub more_before: bool,
    /// Whether rows come after the last.
    pub more_after: bool,
}

/// The columns of the rows of a list that a subquery chooses (opened here:
/// its order and limit follow, then `) s` and the outer order): the rows
/// are chosen first and their components gathered after, so a deep read
/// does not gather the components of every row it passes.
fn chosen_rows(
    tenant: TenantId,
    page: PageId,
    query: &ListQuery,
    state: SubscriberState,
) -> QueryBuilder<Postgres> {
    subscribers_where(
        QueryBuilder::new(concat!(
            "select ",
            subscriber_columns!(),
            " from (select s.*"
        )),
        tenant,
        page,
        query,
        state,
    )
}

/// What an addressed event (a confirmation, a ping) carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct AddressedEventPayload {
    /// The one subscriber it goes to.
    pub subscriber_id: SubscriberId,
}

impl TenantTx {
    /// A page's subscribers, oldest first, with how many match in all.
    pub async fn list_subscribers(
        &mut self,
        page: PageId,
        query: &ListQuery,
        state: SubscriberState,
    ) -> Result<Listed<Subscriber>> {
        let total = self.count_subscribers(page, query, state).await?;
        let mut select = chosen_rows(self.tenant, page, query, state);
        select
            .push(" order by s.created_at, s.id limit ")
            .push_bind(query.limit)
            .push(" offset ")
            .push_bind(query.offset)
            .push(") s order by s.created_at, s.id");
        let rows: Vec<SubscriberRow> = select.build_query_as().fetch_all(&mut *self.tx).await?;
        Ok(Listed {
            items: rows.into_iter().map(Subscriber::from).collect(),
            total,
        })
    }

    /// A screen of the dashboard's list: `limit` of a page's subscribers
    /// from `cursor`, oldest first, and the tally of every tab (channels ×
    /// states) under the same search.
    ///
    /// Without a search, the rows are a range of the `(page_id, created_at,
    /// id)` index however deep, and the tally one grouped count. A search
    /// (`ilike '%…%'`) cannot use an index under row-level security (the
    /// operator is not leakproof, so it may not run before the tenant's
    /// policy), so its matches are found by one scan that both the tally and
    /// the rows are taken from, not two. `query`'s limit and offset are not
    /// used.
    pub async fn subscriber_screen(
        &mut self,
        page: PageId,
        query: &ListQuery,
        state: SubscriberState,
        cursor: SubscriberCursor,
        limit: u32,
    ) -> Result<(Window<Subscriber>, SubscriberTally)> {
        if query.pattern().is_none() {
            let window = self
                .subscriber_window(page, query, state, cursor, limit)
                .await?;
            let tally = self.tally_subscribers(page, query).await?;
            return Ok((window, tally));
        }
        let search = ListQuery {
            q: query.q.clone(),
            ..ListQuery::all()
        };
        let mut select = subscribers_where(
            QueryBuilder::new(format!(
                "with m as materialized (select s.id, s.created_at, s.channel, {} as state",
                state_case()
            )),
            self.tenant,
            page,
            &search,
            SubscriberState::All,
        );
        select.push("), w as (select m.id from m where true");
        if !query.statuses.is_empty() {
            select
                .push(" and m.channel = any(")
                .push_bind(query.statuses.clone())
                .push(")");
        }
        if let Some(only) = state.only() {
            select.push(" and m.state = ").push_bind(only.as_str());
        }
        let backwards = push_window("m", &mut select, cursor, limit);
        select.push(
            ") select m.channel, m.state, count(*), null::uuid from m group by 1, 2
              union all select null, null, null, w.id from w",
        );
        let rows: Vec<SearchRow> = select.build_query_as().fetch_all(&mut *self.tx).await?;
        let mut cells = Vec::new();
        let mut ids = Vec::new();
        for row in rows {
            match row {
                (Some(channel), Some(state), Some(n), None) => {
                    cells.push(tally_cell(&channel, &state, n)?);
                }
                (None, None, None, Some(id)) => ids.push(id),
                _ => {
                    return Err(StoreError::Corrupt(
                        "a search answered a mixed row".to_owned(),
                    ));
                }
            }
        }
        let rows: Vec<SubscriberRow> = sqlx::query_as(concat!(
            "select ",
            subscriber_columns!(),
            " from subscribers s where s.tenant_id = $1 and s.id = any($2)
              order by s.created_at, s.id"
        ))
        .bind(self.tenant.as_uuid())
        .bind(&ids)
        .fetch_all(&mut *self.tx)
        .await?;
        Ok((
            window_of(rows, cursor, backwards, limit),
            SubscriberTally { cells },
        ))
    }

    /// `limit` of a page's subscribers from `cursor`, oldest first: a range
    /// of the `(page_id, created_at, id)` index, however deep, where an
    /// offset would read every row it skips. `query`'s limit and offset are
    /// not used.
    pub async fn subscriber_window(
        &mut self,
        page: PageId,
        query: &ListQuery,
        state: SubscriberState,
        cursor: SubscriberCursor,
        limit: u32,
    ) -> Result<Window<Subscriber>> {
        let mut select = chosen_rows(self.tenant, page, query, state);
        let backwards = push_window("s", &mut select, cursor, limit);
        select.push(") s order by s.created_at, s.id");
        let rows: Vec<SubscriberRow> = select.build_query_as().fetch_all(&mut *self.tx).await?;
        Ok(window_of(rows, cursor, backwards, limit))
    }

    /// How many of a page's current subscribers matching `query`'s search
    /// (its channels and limits are not used) are in each channel and state.
    pub async fn tally_subscribers(
        &mut self,
        page: PageId,
        query: &ListQuery,
    ) -> Result<SubscriberTally> {
        let search = ListQuery {
            q: query.q.clone(),
            ..ListQuery::all()
        };
        let mut select = subscribers_where(
            QueryBuilder::new(format!("select s.channel, {}, count(*)", state_case())),
            self.tenant,
            page,
            &search,
            SubscriberState::All,
        );
        select.push(" group by 1, 2");
        let rows: Vec<(String, String, i64)> =
            select.build_query_as().fetch_all(&mut *self.tx).await?;
        let cells = rows
            .iter()
            .map(|(channel, state, n)| tally_cell(channel, state, *n))
            .collect::<Result<_>>()?;
        Ok(SubscriberTally { cells })
    }

    /// How many of a page's subscribers match.
    pub async fn count_subscribers(
        &mut self,
        page: PageId,
        query: &ListQuery,
        state: SubscriberState,
    ) -> Result<i64> {
        let (total,): (i64,) = subscribers_where(
            QueryBuilder::new("select count(*)"),
            self.tenant,
            page,
            query,
            state,
        )
        .build_query_as()
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(total)
    }

    /// A current subscriber of `page` (not one who left).
    pub async fn subscriber_on_page(
        &mut self,
        page: PageId,
        id: SubscriberId,
    ) -> Result<Subscriber> {
        Ok(sqlx::query_as::<_, SubscriberRow>(concat!(
            "select ",
            subscriber_columns!(),
            " from subscribers s where s.tenant_id = $1 and s.page_id = $2 and s.id = $3
                and s.unsubscribed_at is null"
        ))
        .bind(self.tenant.as_uuid())
        .bind(page.as_uuid())
        .bind(id.as_uuid())
        .fetch_one(&mut *self.tx)
        .await?
        .into())
    }

    /// Adds a subscriber to a page. A subscriber who is not confirmed gets
    /// a confirmation (link, code or ping) through the outbox.
    pub async fn create_subscriber(
        &mut self,
        page: PageId,
        new: &NewSubscriber,
    ) -> Result<Subscriber> {
        let id = new.id;
        let (email, phone, endpoint) = target_columns(&new.target);
        let sealed = new.secrets.endpoint.as_ref();
        if new.target.is_sealed() && sealed.is_none() {
            return Err(StoreError::Corrupt(
                "a Slack or Teams URL must be sealed before it is stored".to_owned(),
            ));
        }
        let subscription = Subscription::new(new.confirmed, OffsetDateTime::now_utc());
        // The insert selects from pages, so another tenant's page inserts nothing (→ NotFound).
        sqlx::query(
            "insert into subscribers (id, tenant_id, page_id, channel, email, phone_number, endpoint,
                                      endpoint_sealed, endpoint_digest, webhook_secret_sealed,
                                      confirmed_at, sms_handle)
             select $1, p.tenant_id, p.id, $4, $5, $6, $7, $8, $9, $10, $11, $12
               from pages p where p.tenant_id = $2 and p.id = $3
             returning id",
        )
        .bind(id.as_uuid())
        .bind(self.tenant.as_uuid())
        .bind(page.as_uuid())
        .bind(new.target.channel().as_str())
        .bind(email)
        .bind(phone)
        .bind(sealed.map_or(endpoint, |e| Some(e.shown.as_str())))
        .bind(sealed.map(|e| e.sealed.as_str()))
        .bind(sealed.map(|e| e.digest.as_str()))
        .bind(new.secrets.webhook_secret.as_deref())
        .bind(subscription.confirmed_at)
        // Random, unlike the row's time-ordered id: the public code form names it.
        .bind(new.target.confirms_by_code().then(Uuid::new_v4))
        .fetch_one(&mut *self.tx)
        .await?;
        self.set_subscriber_components(page, id, &new.component_ids)
            .await?;
        if !new.confirmed {
            self.request_confirmation(page, id).await?;
        }
        self.subscriber(id).await
    }

    /// Replaces the components a subscriber follows (empty: all).
    pub async fn set_subscriber_components(
        &mut self,
        page: PageId,
        id: SubscriberId,
        components: &[ComponentId],
    ) -> Result<()> {
        self.check_components_on_page("components", page, components)
            .await?;
        let ids: Vec<Uuid> = components.iter().map(ComponentId::as_uuid).collect();
        sqlx::query(
            "delete from subscriber_components where tenant_id = $1 and subscriber_id = $2",
        )
        .bind(self.tenant.as_uuid())
        .bind(id.as_uuid())
        .execute(&mut *self.tx)
        .await?;
        sqlx::query(
            "insert into subscriber_components (tenant_id, subscriber_id, component_id)
             select $1, $2, unnest($3::uuid[]) on conflict do nothing",
        )
        .bind(self.tenant.as_uuid())
        .bind(id.as_uuid())
        .bind(&ids)
        .execute(&mut *self.tx)
        .await?;
        sqlx::query("update subscribers set updated_at = now() where tenant_id = $1 and id = $2")
            .bind(self.tenant.as_uuid())
            .bind(id.as_uuid())
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// The live (not unsubscribed) subscriber of `page` at `target`, if any.
    /// A sealed Slack or Teams URL is found by its digest: `endpoint_digests`
    /// are the URL's under every key of the ring (a row not yet re-sealed
    /// after a rotation carries an older key's); a row from before sealing,
    /// by the URL itself.
    pub async fn subscriber_by_target(
        &mut self,
        page: PageId,
        target: &Target,
        endpoint_digests: &[String],
    ) -> Result<Option<Subscriber>> {
        let (email, phone, endpoint) = target_columns(target);
        Ok(sqlx::query_as::<_, SubscriberRow>(concat!(
            "select ",
            subscriber_columns!(),
            " from subscribers s where s.tenant_id = $1 and s.page_id = $2 and s.channel = $3
                and s.unsubscribed_at is null
                and (s.email = $4::citext or s.phone_number = $5
                     or (s.endpoint = $6 and s.endpoint_sealed is null)
                     or s.endpoint_digest = any($7))"
        ))
        .bind(self.tenant.as_uuid())
        .bind(page.as_uuid())
        .bind(target.channel().as_str())
        .bind(email)
        .bind(phone)
        .bind(endpoint)
        .bind(endpoint_digests)
        .fetch_optional(&mut *self.tx)
        .await?
        .map(Subscriber::from))
    }

    /// Locks a subscriber's secrets as stored, for re-sealing them.
    pub async fn lock_subscriber_secrets(&mut self, id: SubscriberId) -> Result<StoredSecrets> {
        Ok(sqlx::query_as(
            "select id, channel, endpoint, endpoint_sealed, webhook_secret, webhook_secret_sealed
               from subscribers where tenant_id = $1 and id = $2 for update",
        )
        .bind(self.tenant.as_uuid())
        .bind(id.as_uuid())
        .fetch_one(&mut *self.tx)
        .await?)
    }

    /// Replaces a subscriber's secrets with `secrets`, sealed anew (its
    /// plaintext, if any, is cleared). A part left `None` is left as it is.
    pub async fn store_subscriber_secrets(
        &mut self,
        id: SubscriberId,
        secrets: &SealedSecrets,
    ) -> Result<()> {
        let endpoint = secrets.endpoint.as_ref();
        sqlx::query(
            "update subscribers
                set endpoint = coalesce($3, endpoint),
                    endpoint_sealed = coalesce($4, endpoint_sealed),
                    endpoint_digest = coalesce($5, endpoint_digest),
                    webhook_secret_sealed = coalesce($6, webhook_secret_sealed),
                    webhook_secret = case when $6 is null then webhook_secret end
              where tenant_id = $1 and id = $2",
        )
        .bind(self.tenant.as_uuid())
        .bind(id.as_uuid())
        .bind(endpoint.map(|e| e.shown.as_str()))
        .bind(endpoint.map(|e| e.sealed.as_str()))
        .bind(endpoint.map(|e| e.digest.as_str()))
        .bind(secrets.webhook_secret.as_deref())
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// The live SMS subscriber of `page` whose code form names `handle`.
    pub async fn subscriber_by_sms_handle(
        &mut self,
        page: PageId,
        handle: Uuid,
    ) -> Result<Option<Subscriber>> {
        Ok(sqlx::query_as::<_, SubscriberRow>(concat!(
            "select ",
            subscriber_columns!(),
            " from subscribers s where s.tenant_id = $1 and s.page_id = $2 and s.sms_handle = $3
                and s.channel = 'sms' and s.unsubscribed_at is null"
        ))
        .bind(self.tenant.as_uuid())
        .bind(page.as_uuid())
        .bind(handle)
        .fetch_optional(&mut *self.tx)
        .await?
        .map(Subscriber::from))
    }

    /// Sends (again) a subscriber's confirmation: a new SMS code replaces the
    /// last one (the code derives from the time it was sent) and the count
    /// of wrong codes starts over.
    pub async fn request_confirmation(&mut self, page: PageId, id: SubscriberId) -> Result<()> {
        sqlx::query(
            "update subscribers set confirmation_sent_at = now(), confirmation_attempts = 0
              where tenant_id = $1 and page_id = $2 and id = $3",
        )
        .bind(self.tenant.as_uuid())
        .bind(page.as_uuid())
        .bind(id.as_uuid())
        .execute(&mut *self.tx)
        .await?;
        self.record_event(
            page,
            EventKind::SubscriptionConfirmation,
            &AddressedEventPayload { subscriber_id: id },
        )
        .await?;
        Ok(())
    }

    /// Queues a test ping to a subscriber.
    pub async fn request_ping(&mut self, page: PageId, id: SubscriberId) -> Result<()> {
        self.record_event(
            page,
            EventKind::SubscriptionPing,
            &AddressedEventPayload { subscriber_id: id },
        )
        .await?;
        Ok(())
    }

    /// Locks a subscription's lifecycle columns (of `page`, when given).
    pub(crate) async fn lock_subscription(
        &mut self,
        page: Option<PageId>,
        id: SubscriberId,
    ) -> Result<Option<(Subscription, DeliveryHealth, OffsetDateTime)>> {
        let row: Option<SubscriptionRow> = sqlx::query_as(
            "select confirmed_at, quarantined_at, unsubscribed_at, dead_streak, now() as now
               from subscribers
              where tenant_id = $1 and id = $2 and ($3::uuid is null or page_id = $3)
                for update",
        )
        .bind(self.tenant.as_uuid())
        .bind(id.as_uuid())
        .bind(page.map(|p| p.as_uuid()))
        .fetch_optional(&mut *self.tx)
        .await?;
        Ok(row.map(|r| (r.subscription(), r.health(), r.now)))
    }

    /// Writes a subscription's lifecycle columns as the domain left them.
    async fn write_subscription(&mut self, id: SubscriberId, to: &Subscription) -> Result<()> {
        sqlx::query(
            "update subscribers set confirmed_at = $3, quarantined_at = $4, unsubscribed_at = $5
              where tenant_id = $1 and id = $2",
        )
        .bind(self.tenant.as_uuid())
        .bind(id.as_uuid())
        .bind(to.confirmed_at)
        .bind(to.quarantined_at)
        .bind(to.unsubscribed_at)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Writes a subscriber's record of failing deliveries as the domain left it.
    pub(crate) async fn write_delivery_health(
        &mut self,
        id: SubscriberId,
        to: &DeliveryHealth,
    ) -> Result<()> {
        sqlx::query(
            "update subscribers set dead_streak = $3, quarantined_at = $4
              where tenant_id = $1 and id = $2",
        )
        .bind(self.tenant.as_uuid())
        .bind(id.as_uuid())
        .bind(to.dead_streak)
        .bind(to.quarantined_at)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Moves a subscription by `step` (a domain transition, `None` when
    /// there is nothing to do); answers whether it moved.
    async fn move_subscription(
        &mut self,
        page: Option<PageId>,
        id: SubscriberId,
        step: impl FnOnce(Subscription, OffsetDateTime) -> Option<Subscription>,
    ) -> Result<bool> {
        let Some((now_state, _, now)) = self.lock_subscription(page, id).await? else {
            return Ok(false);
        };
        let Some(next) = step(now_state, now) else {
            return Ok(false);
        };
        self.write_subscription(id, &next).await?;
        Ok(true)
    }

    /// Confirms a live subscriber of `page` (`Subscription::confirmed`);
    /// answers whether this call did.
    pub async fn confirm_subscriber(&mut self, page: PageId, id: SubscriberId) -> Result<bool> {
        self.move_subscription(Some(page), id, Subscription::confirmed)
            .await
    }

    /// Confirms a live subscriber (its endpoint answered the confirmation
    /// ping); answers whether this call did.
    pub async fn confirm_subscriber_by_id(&mut self, id: SubscriberId) -> Result<bool> {
        self.move_subscription(None, id, Subscription::confirmed)
            .await
    }

    /// Counts a wrong SMS code; answers how many there have been since the
    /// code was sent.
    pub async fn count_wrong_code(&mut self, page: PageId, id: SubscriberId) -> Result<i32> {
        let (n,): (i32,) = sqlx::query_as(
            "update subscribers set confirmation_attempts = confirmation_attempts + 1
              where tenant_id = $1 and page_id = $2 and id = $3
             returning confirmation_attempts",
        )
        .bind(self.tenant.as_uuid())
        .bind(page.as_uuid())
        .bind(id.as_uuid())
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(n)
    }

    /// Lifts the quarantine of subscribers of `page`
    /// (`Subscription::reactivated`, with a fresh record of failing
    /// deliveries); answers those it lifted.
    pub async fn reactivate_subscribers(
        &mut self,
        page: PageId,
        ids: &[SubscriberId],
    ) -> Result<Vec<SubscriberId>> {
        let mut lifted = Vec::new();
        for &id in ids {
            let Some((subscription, health, _)) = self.lock_subscription(Some(page), id).await?
            else {
                continue;
            };
            let Some(back) = subscription.reactivated() else {
                continue;
            };
            self.write_subscription(id, &back).await?;
            self.write_delivery_health(id, &health.reactivated())
                .await?;
            lifted.push(id);
        }
        Ok(lifted)
    }

    /// One subscriber.
    pub async fn subscriber(&mut self, id: SubscriberId) -> Result<Subscriber> {
        Ok(sqlx::query_as::<_, SubscriberRow>(concat!(
            "select ",
            subscriber_columns!(),
            " from subscribers s where s.tenant_id = $1 and s.id = $2"
        ))
        .bind(self.tenant.as_uuid())
        .bind(id.as_uuid())
        .fetch_one(&mut *self.tx)
        .await?
        .into())
    }

    /// Ends a subscription to `page` (the unsubscribe link's); answers
    /// whether this call ended it (false when it had ended already, or is
    /// not of this page).
    pub async fn unsubscribe(&mut self, page: PageId, id: SubscriberId) -> Result<bool> {
        self.move_subscription(Some(page), id, Subscription::unsubscribed)
            .await
    }

    /// Ends a subscription whose target said it is gone (an endpoint's HTTP
    /// 410, a number's STOP).
    pub async fn unsubscribe_gone(&mut self, id: SubscriberId) -> Result<()> {
        self.move_subscription(None, id, Subscription::unsubscribed)
            .await?;
        Ok(())
    }
}

impl crate::Store {
    /// Subscribers holding a plaintext secret, or one sealed under a key
    /// other than `key_id`, after `after` in id order, at most `limit`.
    ///
    /// Cross-tenant by nature: re-sealing serves every tenant. It answers
    /// ids only; each row is re-read and written in its tenant's transaction.
    pub async fn subscribers_to_reseal(
        &self,
        key_id: &str,
        after: Option<SubscriberId>,
        limit: i32,
    ) -> Result<Vec<(TenantId, SubscriberId)>> {
        let rows: Vec<(Uuid, Uuid)> =
            sqlx::query_as("select tenant_id, id from hg_subscribers_to_reseal($1, $2, $3)")
                .bind(key_id)
                .bind(after.map(|a| a.as_uuid()))
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .into_iter()
            .map(|(tenant, id)| (tenant.into(), id.into()))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_place_in_the_list_reads_back_as_written_and_nonsense_is_refused() {
        let key = SubscriberKey {
            created_at: OffsetDateTime::from_unix_timestamp_nanos(1_796_598_214_123_456_000)
                .unwrap(),
            id: SubscriberId::from(Uuid::from_u128(42)),
        };
        let written = key.to_string();
        assert_eq!(
            written,
            "1796598214123456.00000000-0000-0000-0000-00000000002a"
        );
        assert_eq!(written.parse::<SubscriberKey>(), Ok(key));
        for nonsense in [
            "",
            "yesterday",
            "12.",
            ".0000",
            "1.2.3",
            "99999999999999999999999.x",
        ] {
            assert!(nonsense.parse::<SubscriberKey>().is_err(), "{nonsense}");
        }
    }

    #[test]
    fn a_tally_counts_each_tab_from_its_cells() {
        let tally = SubscriberTally {
            cells: vec![
                (Channel::Email, SubscriptionState::Active, 5),
                (Channel::Email, SubscriptionState::Quarantined, 1),
                (Channel::Sms, SubscriptionState::Unconfirmed, 2),
            ],
        };
        assert_eq!(tally.count(None, SubscriberState::All), 8);
        assert_eq!(tally.count(None, SubscriberState::Active), 5);
        assert_eq!(tally.count(Some(Channel::Email), SubscriberState::All), 6);
        assert_eq!(tally.count(Some(Channel::Sms), SubscriberState::Active), 0);
        assert_eq!(tally.count(Some(Channel::Webhook), SubscriberState::All), 0);
    }
}
