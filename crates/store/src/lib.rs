//! PostgreSQL access for Heliograph.
//!
//! Owns the connection pool, the migrations (from the top-level
//! `migrations/`) and every query. Tenant-owned data is reached only through
//! [`TenantTx`], a transaction bound to one tenant: its methods put the
//! tenant id into every statement, and it sets `app.tenant_id` for the
//! transaction so that row-level security can check the same thing again.
//! The few cross-tenant queries (signup, resolving a public page by host or
//! custom domain, the outbox relay, the worker's clock) are methods on
//! [`Store`] and say why they are cross-tenant.
//!
//! Depends on `heliograph-domain` only.

mod accounts;
mod api_keys;
mod audit;
mod billing;
mod components;
mod domains;
mod error;
mod idempotency;
mod incidents;
mod notifications;
mod onboarding;
mod pages;
mod pooler;
mod sessions;
mod subscribers;
mod team;
mod templates;
mod tenants;

use heliograph_domain::TenantId;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Postgres, Transaction};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub use accounts::{AccountEmailWork, LinkProblem};
pub use api_keys::ApiKeyCredentials;
pub use audit::{AuditActor, AuditEntry, AuditFilter, AuditRecord};
pub use billing::{
    Applied, BillingNoticeWork, BillingRecord, EmailPlace, PageUsage, StatedSubscription,
};
pub use components::ComponentHistory;
pub use domains::{DomainNotice, DomainNoticeKind, RecordedCheck, TOKEN_LEN};
pub use error::{StoreError, is_unavailable};
pub use idempotency::{IdempotencyKey, IdempotencyRecord};
pub use incidents::{ChangeCause, ComponentEventPayload, IncidentScope};
pub use notifications::{
    ClaimedEvent, DeliveryFilter, DeliveryWork, Event, EventSummary, IncidentEventPayload,
    MonthlyTake, OutboxListener, RedriveEventPayload, SmsBudget,
};
pub use onboarding::Onboarding;
pub use pooler::{Pooled, Pooler, UnknownPooler};
pub use sessions::{MembershipSummary, NewSession, SessionSummary};
/// JSON columns, as rows carry them.
pub use sqlx::types::Json;
pub use subscribers::{
    AddressedEventPayload, NewSubscriber, SealedEndpoint, SealedSecrets, StoredSecrets,
    SubscriberCursor, SubscriberKey, SubscriberState, SubscriberTally, Window,
    endpoint_seal_context, webhook_secret_seal_context,
};
pub use team::InvitationEmailWork;
pub use templates::NewTemplate;
pub use tenants::{NewSignup, SignupRecord, UserCredentials};

/// Which slice of a list to read, and what to look for in it.
#[derive(Debug, Clone)]
pub struct ListQuery {
    /// Text the name must contain (case-insensitive), if any.
    pub q: Option<String>,
    /// Statuses to keep; empty keeps all.
    pub statuses: Vec<String>,
    /// Rows to answer at most.
    pub limit: i64,
    /// Rows to skip.
    pub offset: i64,
}

impl ListQuery {
    /// Everything, in one slice.
    #[must_use]
    pub fn all() -> Self {
        Self {
            q: None,
            statuses: Vec::new(),
            limit: i64::MAX,
            offset: 0,
        }
    }

    /// The `ilike` pattern for `q`, with the user's wildcards taken literally.
    fn pattern(&self) -> Option<String> {
        self.q.as_deref().map(|q| {
            let escaped = q
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            format!("%{escaped}%")
        })
    }
}

/// One slice of a list, and how many rows the whole list has.
#[derive(Debug, Clone)]
pub struct Listed<T> {
    /// The rows of the slice.
    pub items: Vec<T>,
    /// Rows matching, over all slices.
    pub total: i64,
}

/// Counts the rows a filtered list holds and reads one slice of them.
/// `filter` builds `<select list> from … where …` for the select list it is
/// given; the slice is `columns` ordered by `order` (` order by …`) and cut
/// by the query's limit and offset. Each row becomes a `T` through
/// `TryFrom`, so a stored value the domain refuses is an error, not a value.
pub(crate) async fn listed<R, T>(
    conn: &mut sqlx::PgConnection,
    filter: impl Fn(&str) -> sqlx::QueryBuilder<Postgres>,
    columns: &str,
    order: &str,
    query: &ListQuery,
) -> Result<Listed<T>>
where
    R: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
    T: TryFrom<R>,
    StoreError: From<T::Error>,
{
    let (total,): (i64,) = filter("select count(*)")
        .build_query_as()
        .fetch_one(&mut *conn)
        .await?;
    let mut select = filter(columns);
    select
        .push(order)
        .push(" limit ")
        .push_bind(query.limit)
        .push(" offset ")
        .push_bind(query.offset);
    let rows: Vec<R> = select.build_query_as().fetch_all(&mut *conn).await?;
    let items = rows
        .into_iter()
        .map(|r| T::try_from(r).map_err(StoreError::from))
        .collect::<Result<_>>()?;
    Ok(Listed { items, total })
}

/// A duration as whole milliseconds, the unit the `hg_*` functions take.
pub(crate) fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Result of a store operation.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The database role whose privileges the application uses: not the owner
/// of the tables and without BYPASSRLS, so row-level security holds (see the
/// migrations). The processes log in as a role that is a member of it.
pub const APP_ROLE: &str = "heliograph_app";

/// The migrations, embedded at build time.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");

/// How a [`Store`]'s pool waits on PostgreSQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolSettings {
    /// Connections at most.
    pub max_connections: u32,
    /// How long a caller waits for a connection, including opening one and
    /// checking an idle one still answers; past it, [`StoreError::Unavailable`].
    pub acquire_timeout: Duration,
    /// PostgreSQL's `statement_timeout` on every connection: a statement
    /// running longer is cancelled by the server ([`StoreError::Unavailable`]).
    /// A server that does not run at all (frozen, partitioned) cannot enforce
    /// it; the acquire timeout and the caller's own deadline cover that.
    pub statement_timeout: Duration,
    /// When a pooled connection is pinged before it is handed out: `None`,
    /// before every use (a frozen server is then noticed within the
    /// acquire timeout, which is what the API's budgets rest on); `Some(d)`,
    /// only after it rested `d` or longer (the worker's batches: one round
    /// trip less per transaction, and a job that meets a frozen server
    /// waits for it and carries on).
    pub ping_after_idle: Option<Duration>,
    /// What stands between the pool and PostgreSQL (`DATABASE_POOLER`):
    /// under a transaction pooler nothing is left on a server connection
    /// past a transaction (see [`Pooler`]).
    pub pooler: Pooler,
}

impl PoolSettings {
    /// `max_connections`, waiting 5 s for a connection and 30 s for a statement.
    #[must_use]
    pub const fn new(max_connections: u32) -> Self {
        Self {
            max_connections,
            acquire_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(30),
            ping_after_idle: None,
            pooler: Pooler::None,
        }
    }
}

/// The connected role, and the first thing that makes it unfit to serve, if any.
///
/// Row-level security binds neither a superuser nor a BYPASSRLS role, and
/// a role that owns the tables (or can `SET ROLE` to one that does: a member
/// of it) could lift it. So the role that serves must be none of these; and
/// it needs [`APP_ROLE`]'s privileges to work at all. Owners are looked up
/// across the database: tables, functions, schemas, the database itself.
const ROLE_PROBLEM: &str = "
    with owners(owner, kind, what) as (
        select c.relowner, 1, format('table %s', c.oid::regclass) from pg_class c
         where c.relkind in ('r', 'p', 'v', 'm', 'f')
        union all
        select p.proowner, 2, format('function %s', p.oid::regprocedure) from pg_proc p
        union all
        select n.nspowner, 3, format('schema %I', n.nspname) from pg_namespace n
        union all
        select d.datdba, 4, format('database %I', d.datname) from pg_database d
         where d.datname = current_database()
    )
    select current_user::text, case
        when r.rolsuper then 'is a superuser, whom row-level security does not bind'
        when r.rolbypassrls then 'has BYPASSRLS, which row-level security does not bind'
        when o.owner is not null then format('can act as %I, the owner of %s', pg_get_userbyid(o.owner), o.what)
        when not exists (select from pg_roles a where a.rolname = $1) then format('cannot find the role %I: apply the migrations first', $1::text)
        when not pg_has_role(current_user, $1::text, 'USAGE') then format('lacks the privileges of %I: grant %I to %I', $1::text, $1::text, current_user)
       end
      from pg_roles r
      left join lateral (select owner, what from owners
                          where pg_has_role(current_user, owner, 'MEMBER')
                          order by kind, what limit 1) o on true
     where r.rolname = current_user";

/// The database handle, cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: Pooled,
    /// Where `LISTEN` connects under a transaction pooler, which cannot
    /// keep a session's `LISTEN` (`DATABASE_LISTEN_URL`).
    listen_url: Option<Arc<str>>,
    /// Connections handed out by the pool, ever: every query takes one, so
    /// this counts database round trips from above (the public pages' "zero
    /// queries when warm" is measured with it, through `/metrics`).
    acquisitions: Arc<AtomicU64>,
}

impl Store {
    /// Connects a pool of at most `max_connections`, with the default time
    /// budgets of [`PoolSettings`], and checks that `url`'s role may serve:
    /// [`StoreError::UnfitRole`] when it is a superuser, has BYPASSRLS, owns
    /// anything or can act as a role that does, or lacks [`APP_ROLE`]'s
    /// privileges (see README § Database roles).
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self> {
        Self::connect_with(url, PoolSettings::new(max_connections)).await
    }

    /// Connects a pool as `settings` say, checks `url`'s role as
    /// [`Store::connect`] does; every connection carries the statement timeout.
    pub async fn connect_with(url: &str, settings: PoolSettings) -> Result<Self> {
        let options = PgConnectOptions::from_str(url)?.application_name("heliograph");
        let acquisitions = Arc::new(AtomicU64::new(0));
        let (counted, opened) = (Arc::clone(&acquisitions), Arc::clone(&acquisitions));
        let ping_after_idle = settings.ping_after_idle;
        // Set per connection rather than as a startup parameter: PgBouncer
        // refuses unknown startup parameters unless told to ignore them.
        // Under a transaction pooler a session setting would stay on a
        // server connection other clients use: there each transaction sets
        // it locally instead (`Pooled::begin`).
        let statement_timeout_ms = millis(settings.statement_timeout);
        let session_timeout =
            (settings.pooler == Pooler::None).then(|| statement_timeout_ms.to_string());
        let options = match settings.pooler {
            Pooler::None => options,
            // Named statements live on one server connection, and the
            // next transaction may get another.
            Pooler::Transaction => options.statement_cache_capacity(0),
        };
        let pool = PgPoolOptions::new()
            .max_connections(settings.max_connections)
            // Covers the wait for a free connection, opening a new one, and
            // the liveness ping of a long-idle one (below): a server that
            // does not answer is noticed there, and the caller gets
            // `PoolTimedOut` instead of waiting.
            .acquire_timeout(settings.acquire_timeout)
            // With `ping_after_idle`, no ping before every use of a
            // connection in steady use (one round trip per transaction
            // fewer); one that rested longer is still pinged first, so one
            // a restart or a firewall closed meanwhile is replaced instead
            // of failing the caller.
            .test_before_acquire(settings.ping_after_idle.is_none())
            .after_connect(move |conn, _| {
                // A new connection is handed out without passing `before_acquire`.
                opened.fetch_add(1, Ordering::Relaxed);
                let session_timeout = session_timeout.clone();
                Box::pin(async move {
                    if let Some(ms) = session_timeout {
                        sqlx::query("select set_config('statement_timeout', $1, false)")
                            .bind(ms)
                            .execute(&mut *conn)
                            .await?;
                    }
                    Ok(())
                })
            })
            .before_acquire(move |conn, meta| {
                counted.fetch_add(1, Ordering::Relaxed);
                let idle = ping_after_idle.is_some_and(|d| meta.idle_for >= d);
                Box::pin(async move {
                    if idle {
                        sqlx::Connection::ping(conn).await?;
                    }
                    Ok(true)
                })
            })
            .connect_with(options)
            .await?;
        let pool = Pooled::new(pool, settings.pooler, statement_timeout_ms);
        let (role, problem): (String, Option<String>) = sqlx::query_as(ROLE_PROBLEM)
            .bind(APP_ROLE)
            .fetch_one(&pool)
            .await?;
        if let Some(problem) = problem {
            pool.close().await;
            return Err(StoreError::UnfitRole { role, problem });
        }
        Ok(Self {
            pool,
            listen_url: None,
            acquisitions,
        })
    }

    /// How many connections the pool has handed out (see the field).
    #[must_use]
    pub fn acquisitions(&self) -> u64 {
        self.acquisitions.load(Ordering::Relaxed)
    }

    /// Applies pending migrations, connected as `url`'s own role: the owner
    /// of the schema, never the role the processes serve as (see
    /// `migrations/20261206000900_database_roles.sql`).
    pub async fn migrate(url: &str) -> Result<()> {
        let options = PgConnectOptions::from_str(url)?.application_name("heliograph-migrate");
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        pool.close().await;
        Ok(())
    }

    /// Where `LISTEN` connects under a transaction pooler: a URL that
    /// reaches PostgreSQL itself, or one of the pooler's in session mode
    /// (`DATABASE_LISTEN_URL`). Without one there, nothing listens and the
    /// relay polls (see [`Store::listen_outbox`]).
    #[must_use]
    pub fn with_listen_url(mut self, url: Option<&str>) -> Self {
        self.listen_url = url.map(Arc::from);
        self
    }

    /// The pool (an executor; see [`Pooled`]).
    #[must_use]
    pub fn pool(&self) -> &Pooled {
        &self.pool
    }

    /// One round trip, for readiness checks.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("select 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Opens a transaction bound to `tenant`.
    pub async fn tenant_tx(&self, tenant: TenantId) -> Result<TenantTx> {
        // The statement timeout is set here too, transaction-locally: under
        // a transaction pooler the transaction carries it (see `Pooled`);
        // otherwise it is the connection's own value again.
        let mut tx = self.pool.begin_bare().await?;
        sqlx::query(
            "select set_config('app.tenant_id', $1, true), set_config('statement_timeout', $2, true)",
        )
        .bind(tenant.to_string())
        .bind(self.pool.statement_timeout_ms())
        .execute(&mut *tx)
        .await?;
        Ok(TenantTx { tx, tenant })
    }
}

/// Rows of an outbox (events, invitations, domain checks, billing notices)
/// claimed by one relay: locked (`FOR UPDATE SKIP LOCKED`, so relays share
/// the work) in a transaction of its own until [`Claimed::finish`] marks
/// them queued. A relay that dies before then leaves them to the next.
pub struct Claimed<T> {
    tx: Transaction<'static, Postgres>,
    ids: Vec<uuid::Uuid>,
    /// The `hg_mark_…_queued($1)` call that marks them.
    mark: &'static str,
    /// The claimed rows, in the order claimed.
    pub items: Vec<T>,
}

impl<T> Claimed<T> {
    fn new(
        tx: Transaction<'static, Postgres>,
        items: Vec<T>,
        id: impl Fn(&T) -> uuid::Uuid,
        mark: &'static str,
    ) -> Self {
        Self {
            tx,
            ids: items.iter().map(id).collect(),
            mark,
            items,
        }
    }

    /// Marks the claimed rows queued and releases them.
    pub async fn finish(mut self) -> Result<()> {
        sqlx::query(self.mark)
            .bind(&self.ids)
            .execute(&mut *self.tx)
            .await?;
        self.tx.commit().await?;
        Ok(())
    }
}

/// A transaction acting for one tenant. Every query it runs is scoped to that tenant.
pub struct TenantTx {
    tx: Transaction<'static, Postgres>,
    tenant: TenantId,
}

impl TenantTx {
    /// The tenant this transaction acts for.
    #[must_use]
    pub const fn tenant(&self) -> TenantId {
        self.tenant
    }

    /// Commits the transaction.
    pub async fn commit(self) -> Result<()> {
        self.tx.commit().await?;
        Ok(())
    }
}
