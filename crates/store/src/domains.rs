//! Custom domains: a tenant's hostnames, their verification state, and the
//! cross-tenant questions routing and the worker's checks ask.
//!
//! The rules of the state (what a check's outcome changes) live in
//! `heliograph_domain::DomainState`; this module reads and writes it.

use std::time::Duration;

use heliograph_domain::{DomainCheckError, DomainId, DomainState, Hostname, PageId, TenantId};
use rand::Rng;
use rand::distr::Alphanumeric;
use sqlx::{Postgres, Transaction};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{ListQuery, Listed, Result, Store, StoreError, TenantTx, millis};

/// Length of a verification token: 32 letters and digits, about 190 bits.
pub const TOKEN_LEN: usize = 32;

/// A custom domain of a page.
#[derive(Debug, Clone)]
pub struct Domain {
    /// Identifier.
    pub id: DomainId,
    /// The page it shows.
    pub page_id: PageId,
    /// The hostname, lower-case.
    pub hostname: String,
    /// What the TXT record `_heliograph.<hostname>` must carry.
    pub token: String,
    /// Where verification stands.
    pub state: DomainState,
    /// When it was added.
    pub created_at: OffsetDateTime,
}

/// A domain's row, before its state is checked.
#[derive(sqlx::FromRow)]
struct DomainRow {
    id: Uuid,
    page_id: Uuid,
    hostname: String,
    token: String,
    verified_at: Option<OffsetDateTime>,
    last_checked_at: Option<OffsetDateTime>,
    failing_since: Option<OffsetDateTime>,
    last_error: Option<String>,
    stopped_at: Option<OffsetDateTime>,
    created_at: OffsetDateTime,
}

impl TryFrom<DomainRow> for Domain {
    type Error = StoreError;
    fn try_from(r: DomainRow) -> Result<Self> {
        let last_error = r
            .last_error
            .map(|e| e.parse::<DomainCheckError>())
            .transpose()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok(Self {
            id: r.id.into(),
            page_id: r.page_id.into(),
            hostname: r.hostname,
            token: r.token,
            state: DomainState {
                verified_at: r.verified_at,
                last_checked_at: r.last_checked_at,
                failing_since: r.failing_since,
                last_error,
                stopped_at: r.stopped_at,
            },
            created_at: r.created_at,
        })
    }
}

/// A hostname that routes, and the page it shows.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RoutableDomain {
    /// The hostname, lower-case, without a port.
    pub hostname: String,
    /// The page's tenant.
    #[sqlx(try_from = "Uuid")]
    pub tenant_id: TenantId,
    /// The page.
    #[sqlx(try_from = "Uuid")]
    pub page_id: PageId,
}

/// Domains with a check requested, locked by the relay until [`DomainCheckClaim::finish`].
pub struct DomainCheckClaim {
    tx: Transaction<'static, Postgres>,
    /// The claimed domains and their tenants.
    pub domains: Vec<(DomainId, TenantId)>,
}

impl DomainCheckClaim {
    /// Marks the requests queued and releases the rows.
    pub async fn finish(mut self) -> Result<()> {
        let ids: Vec<Uuid> = self.domains.iter().map(|(id, _)| id.as_uuid()).collect();
        sqlx::query("select hg_mark_domain_checks_queued($1)")
            .bind(&ids)
            .execute(&mut *self.tx)
            .await?;
        self.tx.commit().await?;
        Ok(())
    }
}

/// What the email telling a tenant that a domain stopped needs.
#[derive(Debug, Clone)]
pub struct DomainStopNotice {
    /// The domain, as stopped.
    pub domain: Domain,
    /// The name of the page it showed.
    pub page_name: String,
    /// The tenant's owners and admins: who is told, with their addresses.
    pub recipients: Vec<(Uuid, String)>,
}

macro_rules! domain_columns {
    () => {
        "d.id, d.page_id, d.hostname, d.token, d.verified_at, d.last_checked_at, d.failing_since, \
         d.last_error, d.stopped_at, d.created_at"
    };
}

impl Store {
    /// Every hostname that routes (verified, not stopped), with its page.
    ///
    /// Cross-tenant by nature: a request names a host, not a tenant.
    pub async fn routable_domains(&self) -> Result<Vec<RoutableDomain>> {
        Ok(
            sqlx::query_as("select hostname, tenant_id, page_id from hg_routable_domains()")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// Takes up to `limit` domains due for a periodic check at `now` (for
    /// ten minutes, so other workers' clocks pass them by): new ones at once;
    /// those added in the last day and still pending every `pending`; the
    /// others every `recheck`; a stopped one whose tenant was not told yet at once.
    ///
    /// Cross-tenant by nature: the worker's clock serves every tenant.
    pub async fn due_domains(
        &self,
        now: OffsetDateTime,
        recheck: Duration,
        pending: Duration,
        limit: i64,
    ) -> Result<Vec<(TenantId, DomainId)>> {
        let rows: Vec<(Uuid, Uuid)> =
            sqlx::query_as("select tenant_id, id from hg_domains_due($1, $2, $3, $4)")
                .bind(now)
                .bind(millis(recheck))
                .bind(millis(pending))
                .bind(i32::try_from(limit).unwrap_or(i32::MAX))
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .into_iter()
            .map(|(t, d)| (t.into(), d.into()))
            .collect())
    }

    /// Claims up to `limit` domains whose requested check is not queued yet.
    ///
    /// Cross-tenant by nature: the relay serves every tenant.
    pub async fn claim_domain_checks(&self, limit: i64) -> Result<DomainCheckClaim> {
        let mut tx = self.pool.begin().await?;
        let rows: Vec<(Uuid, Uuid)> =
            sqlx::query_as("select id, tenant_id from hg_claim_domain_checks($1)")
                .bind(i32::try_from(limit).unwrap_or(i32::MAX))
                .fetch_all(&mut *tx)
                .await?;
        Ok(DomainCheckClaim {
            tx,
            domains: rows
                .into_iter()
                .map(|(d, t)| (d.into(), t.into()))
                .collect(),
        })
    }
}

impl TenantTx {
    /// Adds a hostname to a page, with a fresh token, and asks for a first
    /// check. A hostname any page has already is a conflict on
    /// `domains_hostname_key`.
    pub async fn create_domain(&mut self, page: PageId, hostname: &Hostname) -> Result<Domain> {
        self.page(page).await?;
        let token: String = rand::rng()
            .sample_iter(&Alphanumeric)
            .take(TOKEN_LEN)
            .map(char::from)
            .collect();
        let row: DomainRow = sqlx::query_as(concat!(
            "insert into domains as d (id, tenant_id, page_id, hostname, token, check_requested_at)
             values ($1, $2, $3, $4, $5, now()) returning ",
            domain_columns!()
        ))
        .bind(DomainId::new().as_uuid())
        .bind(self.tenant.as_uuid())
        .bind(page.as_uuid())
        .bind(hostname.as_str())
        .bind(token)
        .fetch_one(&mut *self.tx)
        .await?;
        row.try_into()
    }

    /// One domain of a page (NotFound for another page's, as for another tenant's).
    pub async fn domain(&mut self, page: PageId, id: DomainId) -> Result<Domain> {
        let domain = self.domain_by_id(id).await?;
        if domain.page_id == page {
            Ok(domain)
        } else {
            Err(StoreError::NotFound)
        }
    }

    /// A slice of a page's domains, by hostname; `q` matches the hostname.
    pub async fn list_domains(
        &mut self,
        page: PageId,
        query: &ListQuery,
    ) -> Result<Listed<Domain>> {
        const WHERE: &str = " from domains d where d.tenant_id = $1 and d.page_id = $2
             and ($3::text is null or d.hostname ilike $3 escape '\\')";
        let (total,): (i64,) =
            sqlx::query_as(sqlx::AssertSqlSafe(format!("select count(*){WHERE}")))
                .bind(self.tenant.as_uuid())
                .bind(page.as_uuid())
                .bind(query.pattern())
                .fetch_one(&mut *self.tx)
                .await?;
        let rows: Vec<DomainRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "select {}{WHERE} order by d.hostname, d.id limit $4 offset $5",
            domain_columns!()
        )))
        .bind(self.tenant.as_uuid())
        .bind(page.as_uuid())
        .bind(query.pattern())
        .bind(query.limit)
        .bind(query.offset)
        .fetch_all(&mut *self.tx)
        .await?;
        let items = rows
            .into_iter()
            .map(Domain::try_from)
            .collect::<Result<_>>()?;
        Ok(Listed { items, total })
    }

    /// Removes a domain of a page; its hostname stops routing and is free again.
    pub async fn delete_domain(&mut self, page: PageId, id: DomainId) -> Result<Domain> {
        let domain = self.domain(page, id).await?;
        sqlx::query("delete from domains where tenant_id = $1 and id = $2")
            .bind(self.tenant.as_uuid())
            .bind(id.as_uuid())
            .execute(&mut *self.tx)
            .await?;
        Ok(domain)
    }

    /// Asks for a check of a domain of a page now (the relay queues it).
    pub async fn request_domain_check(&mut self, page: PageId, id: DomainId) -> Result<Domain> {
        sqlx::query(
            "update domains set check_requested_at = now()
              where tenant_id = $1 and page_id = $2 and id = $3",
        )
        .bind(self.tenant.as_uuid())
        .bind(page.as_uuid())
        .bind(id.as_uuid())
        .execute(&mut *self.tx)
        .await?;
        self.domain(page, id).await
    }

    /// A domain of the tenant, whichever its page.
    pub async fn domain_by_id(&mut self, id: DomainId) -> Result<Domain> {
        let row: DomainRow = sqlx::query_as(concat!(
            "select ",
            domain_columns!(),
            " from domains d where d.tenant_id = $1 and d.id = $2"
        ))
        .bind(self.tenant.as_uuid())
        .bind(id.as_uuid())
        .fetch_one(&mut *self.tx)
        .await?;
        row.try_into()
    }

    /// Records the outcome of a check of `id` that began at `started`, under
    /// the row's lock, by the rules of `DomainState::after_check`. Answers
    /// the domain as it now is, or `None` when it is gone or a check begun
    /// later has been recorded meanwhile (this one is then dropped).
    pub async fn record_domain_check(
        &mut self,
        id: DomainId,
        started: OffsetDateTime,
        outcome: Result<(), DomainCheckError>,
        grace: Duration,
    ) -> Result<Option<Domain>> {
        let row: Option<DomainRow> = sqlx::query_as(concat!(
            "select ",
            domain_columns!(),
            " from domains d where d.tenant_id = $1 and d.id = $2 for update"
        ))
        .bind(self.tenant.as_uuid())
        .bind(id.as_uuid())
        .fetch_optional(&mut *self.tx)
        .await?;
        let Some(mut domain) = row.map(Domain::try_from).transpose()? else {
            return Ok(None);
        };
        if domain.state.is_newer_than(started) {
            return Ok(None);
        }
        let grace = time::Duration::try_from(grace).unwrap_or(time::Duration::MAX);
        let next = domain.state.after_check(outcome, started, grace);
        sqlx::query(
            "update domains set verified_at = $3, last_checked_at = $4, failing_since = $5,
                    last_error = $6, stopped_at = $7,
                    stop_notified_at = case when $7::timestamptz is null then null else stop_notified_at end
              where tenant_id = $1 and id = $2",
        )
        .bind(self.tenant.as_uuid())
        .bind(id.as_uuid())
        .bind(next.verified_at)
        .bind(next.last_checked_at)
        .bind(next.failing_since)
        .bind(next.last_error.map(DomainCheckError::as_str))
        .bind(next.stopped_at)
        .execute(&mut *self.tx)
        .await?;
        domain.state = next;
        Ok(Some(domain))
    }

    /// Tells the tenant a domain stopped routing: locks the domain if it is
    /// stopped and nobody was told yet, runs `send` with the notice, and marks
    /// it told in the same transaction; `Ok(false)` when there was nothing to send.
    pub async fn send_domain_stop_notice<F, Fut, E>(
        &mut self,
        id: DomainId,
        send: F,
    ) -> Result<std::result::Result<bool, E>>
    where
        F: FnOnce(DomainStopNotice) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<(), E>>,
    {
        let row: Option<DomainRow> = sqlx::query_as(concat!(
            "select ",
            domain_columns!(),
            " from domains d where d.tenant_id = $1 and d.id = $2
                and d.stopped_at is not null and d.stop_notified_at is null
                for update skip locked"
        ))
        .bind(self.tenant.as_uuid())
        .bind(id.as_uuid())
        .fetch_optional(&mut *self.tx)
        .await?;
        let Some(domain) = row.map(Domain::try_from).transpose()? else {
            return Ok(Ok(false));
        };
        let page_name = self.page(domain.page_id).await?.name;
        let recipients: Vec<(Uuid, String)> = sqlx::query_as(
            // Verified addresses only: an unverified one (or a shadow's,
            // which is someone else's) must not hear from a stranger's tenant.
            "select u.id, u.email::text from memberships m join users u on u.id = m.user_id
              where m.tenant_id = $1 and m.role in ('owner', 'admin')
                and u.email_verified_at is not null
              order by m.created_at, u.id",
        )
        .bind(self.tenant.as_uuid())
        .fetch_all(&mut *self.tx)
        .await?;
        let notice = DomainStopNotice {
            domain,
            page_name,
            recipients,
        };
        if let Err(e) = send(notice).await {
            return Ok(Err(e));
        }
        sqlx::query("update domains set stop_notified_at = now() where tenant_id = $1 and id = $2")
            .bind(self.tenant.as_uuid())
            .bind(id.as_uuid())
            .execute(&mut *self.tx)
            .await?;
        Ok(Ok(true))
    }
}
