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
mod components;
mod domains;
mod error;
mod idempotency;
mod incidents;
mod notifications;
mod pages;
mod sessions;
mod subscribers;
mod team;
mod templates;
mod tenants;

use heliograph_domain::TenantId;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres, Transaction};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub use accounts::{AccountEmailWork, AccountLinkClaim, LinkProblem};
pub use api_keys::{ApiKey, ApiKeyCredentials};
pub use audit::{AuditActor, AuditEntry, AuditFilter, AuditRecord};
pub use components::{
    Component, ComponentEdit, ComponentGroup, ComponentHistory, GroupEdit, NewComponent,
};
pub use domains::{
    Domain, DomainCheckClaim, DomainNotice, DomainNoticeKind, RecordedCheck, RoutableDomain,
    TOKEN_LEN,
};
pub use error::StoreError;
pub use idempotency::{IdempotencyKey, IdempotencyRecord};
pub use incidents::{
    AffectedComponent, ChangeCause, ComponentEventPayload, Incident, IncidentChange, IncidentEdit,
    IncidentScope, IncidentUpdate, NewIncident, Schedule,
};
pub use notifications::{
    ClaimedEvent, DeliveryAttempt, DeliveryFilter, DeliveryRecord, DeliveryWork, Event,
    EventSummary, FailureOutcome, IncidentEventPayload, OutboxClaim, OutboxListener,
    QUARANTINE_AFTER, RedriveEventPayload,
};
pub use pages::{HISTORY_LIMIT, Page, PageData, PageEdit, PageRef, PageRoute};
pub use sessions::{MembershipSummary, NewSession};
/// JSON columns, as rows carry them.
pub use sqlx::types::Json;
pub use subscribers::{
    AddressedEventPayload, HttpChannel, NewSubscriber, Subscriber, SubscriberState, Target,
};
pub use team::{
    Invitation, InvitationClaim, InvitationEmailWork, InvitationProblem, TeamMember, TeamProblem,
};
pub use templates::{IncidentTemplate, NewTemplate};
pub use tenants::{NewSignup, SignupRecord, Tenant, UserCredentials};

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

/// A duration as whole milliseconds, the unit the `hg_*` functions take.
pub(crate) fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Result of a store operation.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

macro_rules! app_role {
    () => {
        "heliograph_app"
    };
}

/// The database role the application acts as: not the owner of the tables
/// and without BYPASSRLS, so row-level security holds (see the migrations).
pub const APP_ROLE: &str = app_role!();

/// The migrations, embedded at build time.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");

/// The database handle, cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: PgPool,
    /// Connections handed out by the pool, ever: every query takes one, so
    /// this counts database round trips from above (the public pages' "zero
    /// queries when warm" is measured with it, through `/metrics`).
    acquisitions: Arc<AtomicU64>,
}

impl Store {
    /// Connects a pool of at most `max_connections` and checks the database
    /// answers. Every connection then acts as [`APP_ROLE`], so row-level
    /// security applies whatever role `url` names.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self> {
        let options = PgConnectOptions::from_str(url)?.application_name("heliograph");
        let acquisitions = Arc::new(AtomicU64::new(0));
        let (counted, opened) = (Arc::clone(&acquisitions), Arc::clone(&acquisitions));
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .after_connect(move |conn, _| {
                // A new connection is handed out without passing `before_acquire`.
                opened.fetch_add(1, Ordering::Relaxed);
                Box::pin(async move {
                    sqlx::query(concat!("set role ", app_role!()))
                        .execute(conn)
                        .await?;
                    Ok(())
                })
            })
            .before_acquire(move |_, _| {
                counted.fetch_add(1, Ordering::Relaxed);
                Box::pin(async { Ok(true) })
            })
            .connect_with(options)
            .await?;
        Ok(Self { pool, acquisitions })
    }

    /// How many connections the pool has handed out (see the field).
    #[must_use]
    pub fn acquisitions(&self) -> u64 {
        self.acquisitions.load(Ordering::Relaxed)
    }

    /// Applies pending migrations, connected as `url`'s own role (the owner
    /// of the schema, which may create [`APP_ROLE`]).
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

    /// The pool, for LISTEN connections.
    #[must_use]
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// One round trip, for readiness checks.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("select 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Opens a transaction bound to `tenant`.
    pub async fn tenant_tx(&self, tenant: TenantId) -> Result<TenantTx> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("select set_config('app.tenant_id', $1, true)")
            .bind(tenant.to_string())
            .execute(&mut *tx)
            .await?;
        Ok(TenantTx { tx, tenant })
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
