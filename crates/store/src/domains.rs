//! Custom domains: a tenant's hostnames, their verification state, and the
//! cross-tenant questions routing and the worker's checks ask.
//!
//! The rules of the state (what a check's outcome changes, who holds a
//! hostname, how many claims may wait) live in
//! `heliograph_domain::custom_domain`; this module reads and writes it.
//!
//! Claims of one hostname by several tenants meet here: recording a passing
//! check locks every claim of the hostname (in id order, through
//! `hg_lock_hostname_claims`) before deciding, so two claims verified at the
//! same moment are decided one after the other, and the partial unique
//! index `domains_verified_hostname_key` is never the one to say no.

use std::time::Duration;

use heliograph_domain::custom_domain::{CheckRules, ClaimRefusal, PendingClaims, is_held};
use heliograph_domain::{
    DomainCheckError, DomainId, DomainState, Hostname, PageId, RoutableDomain, TenantId,
};
use rand::Rng;
use rand::distr::Alphanumeric;
use sqlx::{Postgres, QueryBuilder};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{Claimed, ListQuery, Listed, Result, Store, StoreError, TenantTx, millis};

/// Length of a verification token: 32 letters and digits, about 190 bits.
pub const TOKEN_LEN: usize = 32;

/// A custom domain of a page, as the domain crate has it.
use heliograph_domain::CustomDomain as Domain;

/// A domain's row, before its state is checked.
#[derive(sqlx::FromRow)]
struct DomainRow {
    id: Uuid,
    page_id: Uuid,
    hostname: String,
    token: String,
    pending_since: OffsetDateTime,
    verified_at: Option<OffsetDateTime>,
    last_checked_at: Option<OffsetDateTime>,
    failing_since: Option<OffsetDateTime>,
    last_error: Option<String>,
    stopped_at: Option<OffsetDateTime>,
    taken_at: Option<OffsetDateTime>,
    expired_at: Option<OffsetDateTime>,
    last_cname_seen: Option<String>,
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
            hostname: stored_hostname(&r.hostname)?,
            token: r.token,
            state: DomainState {
                pending_since: Some(r.pending_since),
                verified_at: r.verified_at,
                last_checked_at: r.last_checked_at,
                failing_since: r.failing_since,
                last_error,
                stopped_at: r.stopped_at,
                taken_at: r.taken_at,
                expired_at: r.expired_at,
            },
            last_cname_seen: r.last_cname_seen,
            created_at: r.created_at,
        })
    }
}

/// A stored hostname, which the domain must accept.
fn stored_hostname(hostname: &str) -> Result<Hostname> {
    Hostname::parse("hostname", hostname)
        .map_err(|e| StoreError::Corrupt(format!("hostname {hostname:?}: {e}")))
}

/// A [`RoutableDomain`]'s row.
#[derive(sqlx::FromRow)]
struct RoutableRow {
    hostname: String,
    tenant_id: Uuid,
    page_id: Uuid,
}

impl TryFrom<RoutableRow> for RoutableDomain {
    type Error = StoreError;
    fn try_from(r: RoutableRow) -> Result<Self> {
        Ok(Self {
            hostname: stored_hostname(&r.hostname)?,
            tenant_id: r.tenant_id.into(),
            page_id: r.page_id.into(),
        })
    }
}

/// What an email telling a tenant about one of its domains needs: that it
/// stopped, or that another claim of its hostname was verified first.
#[derive(Debug, Clone)]
pub struct DomainNotice {
    /// The domain, as it now is.
    pub domain: Domain,
    /// The name of the page it showed.
    pub page_name: String,
    /// The tenant's owners and admins: who is told, with their addresses.
    pub recipients: Vec<(Uuid, String)>,
}

/// Which notice to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DomainNoticeKind {
    /// The domain stopped routing (`stop_notified_at`).
    Stopped,
    /// Another claim of the hostname was verified first (`taken_notified_at`).
    Taken,
}

/// A check's outcome, as recorded.
#[derive(Debug, Clone)]
pub struct RecordedCheck {
    /// The domain as it now is.
    pub domain: Domain,
    /// Other tenants' (or pages') claims of the hostname this check took,
    /// whose owners are to be told.
    pub taken: Vec<(TenantId, DomainId)>,
}

/// A claim of a hostname, as `hg_lock_hostname_claims` answers it.
#[derive(sqlx::FromRow)]
struct ClaimRow {
    id: Uuid,
    pending_since: OffsetDateTime,
    verified_at: Option<OffsetDateTime>,
    stopped_at: Option<OffsetDateTime>,
    taken_at: Option<OffsetDateTime>,
    expired_at: Option<OffsetDateTime>,
}

impl ClaimRow {
    /// What of the state the claim's holding depends on.
    fn state(&self) -> DomainState {
        DomainState {
            pending_since: Some(self.pending_since),
            verified_at: self.verified_at,
            stopped_at: self.stopped_at,
            taken_at: self.taken_at,
            expired_at: self.expired_at,
            ..DomainState::default()
        }
    }
}

macro_rules! domain_columns {
    () => {
        "d.id, d.page_id, d.hostname, d.token, d.pending_since, d.verified_at, d.last_checked_at, \
         d.failing_since, d.last_error, d.stopped_at, d.taken_at, d.expired_at, d.last_cname_seen, \
         d.created_at"
    };
}

/// The advisory lock key that serialises changes to one tenant's pending
/// claims (adding, renewing), so that two at once cannot both pass the limit.
const CLAIMS_LOCK: &str =
    "select pg_advisory_xact_lock(hashtextextended('domain-claims:' || $1::text, 0))";

impl Store {
    /// Every hostname that routes (verified, not stopped), with its page.
    ///
    /// Cross-tenant by nature: a request names a host, not a tenant.
    pub async fn routable_domains(&self) -> Result<Vec<RoutableDomain>> {
        let rows: Vec<RoutableRow> =
            sqlx::query_as("select hostname, tenant_id, page_id from hg_routable_domains()")
                .fetch_all(&self.pool)
                .await?;
        // One hostname today's rules refuse must not take every other
        // domain off the air: it is left out, and said so.
        Ok(rows
            .into_iter()
            .filter_map(|row| {
                let page = row.page_id;
                RoutableDomain::try_from(row)
                    .inspect_err(|e| tracing::warn!(page.id = %page, error = %e, "domain left out of routing"))
                    .ok()
            })
            .collect())
    }

    /// Takes up to `limit` domains due for a periodic check at `now` (for
    /// ten minutes, so other workers' clocks pass them by): new ones at once;
    /// those pending for less than a day every `pending`; those whose
    /// pending period (`pending_period`) ended since their last check at
    /// once (they expire unless it passes); the others every `recheck`; a
    /// stopped or taken one whose tenant was not told yet at once. Expired
    /// claims are not taken, nor taken ones once told.
    ///
    /// Cross-tenant by nature: the worker's clock serves every tenant.
    pub async fn due_domains(
        &self,
        now: OffsetDateTime,
        recheck: Duration,
        pending: Duration,
        pending_period: Duration,
        limit: i64,
    ) -> Result<Vec<(TenantId, DomainId)>> {
        let rows: Vec<(Uuid, Uuid)> =
            sqlx::query_as("select tenant_id, id from hg_domains_due($1, $2, $3, $4, $5)")
                .bind(now)
                .bind(millis(recheck))
                .bind(millis(pending))
                .bind(millis(pending_period))
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
    pub async fn claim_domain_checks(&self, limit: i64) -> Result<Claimed<(DomainId, TenantId)>> {
        let mut tx = self.pool.begin().await?;
        let rows: Vec<(Uuid, Uuid)> =
            sqlx::query_as("select id, tenant_id from hg_claim_domain_checks($1)")
                .bind(i32::try_from(limit).unwrap_or(i32::MAX))
                .fetch_all(&mut *tx)
                .await?;
        Ok(Claimed::new(
            tx,
            rows.into_iter()
                .map(|(d, t)| (d.into(), t.into()))
                .collect(),
            |(d, _): &(DomainId, TenantId)| d.as_uuid(),
            "select hg_mark_domain_checks_queued($1)",
        ))
    }
}

impl TenantTx {
    /// Claims a hostname for a page, with a fresh token, and asks for a
    /// first check, at `now` by `claims`: refused while a verified claim
    /// holds the hostname, or when the tenant has as many pending claims as
    /// it may. A hostname the tenant claims already (on any page, claim not
    /// over) is a conflict on `domains_tenant_hostname_key`.
    pub async fn create_domain(
        &mut self,
        page: PageId,
        hostname: &Hostname,
        claims: PendingClaims,
        now: OffsetDateTime,
    ) -> Result<std::result::Result<Domain, ClaimRefusal>> {
        self.page(page).await?;
        self.lock_claims().await?;
        let held: Vec<DomainState> = sqlx::query_as::<
            _,
            (
                Option<OffsetDateTime>,
                Option<OffsetDateTime>,
                Option<OffsetDateTime>,
                Option<OffsetDateTime>,
            ),
        >(
            "select verified_at, stopped_at, taken_at, expired_at from hg_hostname_claims($1)",
        )
        .bind(hostname.as_str())
        .fetch_all(&mut *self.tx)
        .await?
        .into_iter()
        .map(
            |(verified_at, stopped_at, taken_at, expired_at)| DomainState {
                verified_at,
                stopped_at,
                taken_at,
                expired_at,
                ..DomainState::default()
            },
        )
        .collect();
        if is_held(&held) {
            return Ok(Err(ClaimRefusal::Held));
        }
        if let Err(refusal) = claims.admit(&self.claim_states().await?, now) {
            return Ok(Err(refusal));
        }
        let token: String = rand::rng()
            .sample_iter(&Alphanumeric)
            .take(TOKEN_LEN)
            .map(char::from)
            .collect();
        let row: DomainRow = sqlx::query_as(concat!(
            "insert into domains as d (id, tenant_id, page_id, hostname, token, pending_since, check_requested_at)
             values ($1, $2, $3, $4, $5, $6, now()) returning ",
            domain_columns!()
        ))
        .bind(DomainId::new().as_uuid())
        .bind(self.tenant.as_uuid())
        .bind(page.as_uuid())
        .bind(hostname.as_str())
        .bind(token)
        .bind(now)
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(Ok(row.try_into()?))
    }

    /// Serialises changes to this tenant's pending claims until the end of
    /// the transaction.
    async fn lock_claims(&mut self) -> Result<()> {
        sqlx::query(CLAIMS_LOCK)
            .bind(self.tenant.as_uuid())
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// The states of every domain of the tenant, for counting its pending claims.
    async fn claim_states(&mut self) -> Result<Vec<DomainState>> {
        let rows: Vec<DomainRow> = sqlx::query_as(concat!(
            "select ",
            domain_columns!(),
            " from domains d where d.tenant_id = $1"
        ))
        .bind(self.tenant.as_uuid())
        .fetch_all(&mut *self.tx)
        .await?;
        rows.into_iter()
            .map(|r| Domain::try_from(r).map(|d| d.state))
            .collect()
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
        let filter = |select: &str| {
            let mut qb = QueryBuilder::<Postgres>::new(select);
            qb.push(" from domains d where d.tenant_id = ")
                .push_bind(self.tenant.as_uuid())
                .push(" and d.page_id = ")
                .push_bind(page.as_uuid());
            if let Some(pattern) = query.pattern() {
                qb.push(" and d.hostname ilike ")
                    .push_bind(pattern)
                    .push(" escape '\\'");
            }
            qb
        };
        crate::listed::<DomainRow, _>(
            &mut self.tx,
            filter,
            concat!("select ", domain_columns!()),
            " order by d.hostname, d.id",
            query,
        )
        .await
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

    /// Asks for a check of a domain of a page now (the relay queues it), at
    /// `now` by `claims`: an expired claim is renewed first (pending again,
    /// counted against the tenant's limit); a taken one is refused.
    pub async fn request_domain_check(
        &mut self,
        page: PageId,
        id: DomainId,
        claims: PendingClaims,
        now: OffsetDateTime,
    ) -> Result<std::result::Result<Domain, ClaimRefusal>> {
        self.lock_claims().await?;
        let domain = self.domain(page, id).await?;
        let renewed = match domain.state.renewed(now) {
            Ok(state) => state,
            Err(refusal) => return Ok(Err(refusal)),
        };
        if renewed != domain.state {
            if let Err(refusal) = claims.admit(&self.claim_states().await?, now) {
                return Ok(Err(refusal));
            }
            sqlx::query(
                "update domains set pending_since = $3, expired_at = $4
                  where tenant_id = $1 and id = $2",
            )
            .bind(self.tenant.as_uuid())
            .bind(id.as_uuid())
            .bind(renewed.pending_since)
            .bind(renewed.expired_at)
            .execute(&mut *self.tx)
            .await?;
        }
        sqlx::query(
            "update domains set check_requested_at = now()
              where tenant_id = $1 and page_id = $2 and id = $3",
        )
        .bind(self.tenant.as_uuid())
        .bind(page.as_uuid())
        .bind(id.as_uuid())
        .execute(&mut *self.tx)
        .await?;
        Ok(Ok(self.domain(page, id).await?))
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
    /// the row's lock, by the rules of `DomainState::after_check`. A pass
    /// first locks every claim of the hostname: if another holds it, this
    /// one is taken; if this one now routes, every other claim not over is
    /// taken (first verified wins). Answers the domain as it now is, with
    /// the claims it took, or `None` when it is gone or a check begun later
    /// has been recorded meanwhile (this one is then dropped). `cname_seen`
    /// is where the hostname's CNAME pointed when it pointed elsewhere; it is
    /// kept only with that finding, so it never outlives it.
    pub async fn record_domain_check(
        &mut self,
        id: DomainId,
        started: OffsetDateTime,
        outcome: Result<(), DomainCheckError>,
        cname_seen: Option<&str>,
        rules: CheckRules,
    ) -> Result<Option<RecordedCheck>> {
        // Claims of the hostname are locked before this row, all in id
        // order, so that concurrent checks of one hostname queue up.
        let claims: Vec<ClaimRow> = if outcome.is_ok() {
            sqlx::query_as(
                "select id, pending_since, verified_at, stopped_at, taken_at, expired_at
                   from hg_lock_hostname_claims($1)",
            )
            .bind(id.as_uuid())
            .fetch_all(&mut *self.tx)
            .await?
        } else {
            Vec::new()
        };
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
        if domain.state.is_newer_than(started) || domain.state.is_over() {
            return Ok(None);
        }
        let others: Vec<&ClaimRow> = claims.iter().filter(|c| c.id != id.as_uuid()).collect();
        let held_elsewhere = is_held(&others.iter().map(|c| c.state()).collect::<Vec<_>>());
        let next = domain
            .state
            .after_check(outcome, started, rules, held_elsewhere);
        let cname_seen =
            cname_seen.filter(|_| next.last_error == Some(DomainCheckError::CnameMismatch));
        // The others are taken before this row is verified: a stopped
        // holder still has its place in `domains_verified_hostname_key`.
        let mut taken = Vec::new();
        if next.routes() {
            let losing: Vec<Uuid> = others
                .iter()
                .filter(|c| c.state().taken(started) != c.state())
                .map(|c| c.id)
                .collect();
            if !losing.is_empty() {
                let rows: Vec<(Uuid, Uuid)> =
                    sqlx::query_as("select tenant_id, id from hg_mark_domains_taken($1, $2, $3)")
                        .bind(id.as_uuid())
                        .bind(&losing)
                        .bind(started)
                        .fetch_all(&mut *self.tx)
                        .await?;
                taken = rows
                    .into_iter()
                    .map(|(t, d)| (t.into(), d.into()))
                    .collect();
            }
        }
        sqlx::query(
            "update domains set verified_at = $3, last_checked_at = $4, failing_since = $5,
                    last_error = $6, stopped_at = $7,
                    stop_notified_at = case when $7::timestamptz is null then null else stop_notified_at end,
                    taken_at = $8, expired_at = $9, last_cname_seen = $10
              where tenant_id = $1 and id = $2",
        )
        .bind(self.tenant.as_uuid())
        .bind(id.as_uuid())
        .bind(next.verified_at)
        .bind(next.last_checked_at)
        .bind(next.failing_since)
        .bind(next.last_error.map(DomainCheckError::as_str))
        .bind(next.stopped_at)
        .bind(next.taken_at)
        .bind(next.expired_at)
        .bind(cname_seen)
        .execute(&mut *self.tx)
        .await?;
        domain.state = next;
        domain.last_cname_seen = cname_seen.map(str::to_owned);
        Ok(Some(RecordedCheck { domain, taken }))
    }

    /// Tells the tenant a domain stopped routing, or that another claim of
    /// its hostname was verified first (`kind`): locks the domain if that
    /// happened and nobody was told yet, runs `send` with the notice, and
    /// marks it told in the same transaction; `Ok(false)` when there was
    /// nothing to send.
    pub async fn send_domain_notice<F, Fut, E>(
        &mut self,
        id: DomainId,
        kind: DomainNoticeKind,
        send: F,
    ) -> Result<std::result::Result<bool, E>>
    where
        F: FnOnce(DomainNotice) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<(), E>>,
    {
        let (select, mark) = match kind {
            DomainNoticeKind::Stopped => (
                concat!(
                    "select ",
                    domain_columns!(),
                    " from domains d where d.tenant_id = $1 and d.id = $2
                        and d.stopped_at is not null and d.stop_notified_at is null
                        for update skip locked"
                ),
                "update domains set stop_notified_at = now() where tenant_id = $1 and id = $2",
            ),
            DomainNoticeKind::Taken => (
                concat!(
                    "select ",
                    domain_columns!(),
                    " from domains d where d.tenant_id = $1 and d.id = $2
                        and d.taken_at is not null and d.taken_notified_at is null
                        for update skip locked"
                ),
                "update domains set taken_notified_at = now() where tenant_id = $1 and id = $2",
            ),
        };
        let row: Option<DomainRow> = sqlx::query_as(select)
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
        let notice = DomainNotice {
            domain,
            page_name,
            recipients,
        };
        if let Err(e) = send(notice).await {
            return Ok(Err(e));
        }
        sqlx::query(mark)
            .bind(self.tenant.as_uuid())
            .bind(id.as_uuid())
            .execute(&mut *self.tx)
            .await?;
        Ok(Ok(true))
    }
}
