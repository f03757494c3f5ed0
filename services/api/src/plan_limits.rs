//! Plan limits at the entry points: every path that adds something a plan
//! limits (REST, dashboard, the public subscription form, imports) asks
//! here, in the transaction that adds it, before it commits. With billing
//! off the answer is at once; with billing on the tenant's lock for that
//! limit is taken first (so two requests racing for the last slot are
//! decided one after the other), then what it has is counted and the domain
//! asked whether the addition fits.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use heliograph_billing::Billing;
use heliograph_domain::{Limit, Limits, PageId, PlanLimit, PublicUrls, TenantId};
use heliograph_store::{AuditFilter, TenantTx};
use time::OffsetDateTime;

use crate::error::ApiError;
use crate::startup::AppState;

/// Where an owner upgrades: the dashboard's billing page.
pub(crate) fn upgrade_url(urls: &PublicUrls) -> String {
    format!("{}/dashboard/billing", urls.origin())
}

/// A tenant's hold on `limit` for the rest of a transaction: how much it
/// had when the hold was taken, and its plan's value. Additions are checked
/// against it with [`Claim::admit`]; nobody else adds under the limit until
/// the transaction ends.
pub(crate) struct Claim {
    limit: Limit,
    used: u64,
    plan: String,
    limits: Limits,
    upgrade_url: String,
}

impl Claim {
    /// Takes the hold (nothing to take with billing off).
    pub(crate) async fn take(
        state: &AppState,
        tx: &mut TenantTx,
        limit: Limit,
        page: Option<PageId>,
    ) -> Result<Self, ApiError> {
        let (used, plan, limits) = match &state.billing {
            Billing::Off => (0, String::new(), Limits::UNLIMITED),
            billing @ Billing::On(_) => {
                let used = tx.claim_usage(limit, page).await?;
                let standing = tx.billing().await?.map(|r| r.standing()).transpose()?;
                let e = billing.entitlement(standing.as_ref(), OffsetDateTime::now_utc());
                (used, e.plan_id().to_owned(), e.limits)
            }
        };
        Ok(Self {
            limit,
            used,
            plan,
            limits,
            upgrade_url: upgrade_url(&state.urls),
        })
    }

    /// Whether `adding` more fit.
    ///
    /// # Errors
    /// [`ApiError::PlanLimit`] (402 `plan_limit`) when they do not.
    pub(crate) fn admit(&self, adding: u64) -> Result<(), ApiError> {
        self.limits
            .admit(&self.plan, self.limit, self.used, adding)
            .map_err(|refusal: PlanLimit| ApiError::PlanLimit {
                refusal,
                upgrade_url: self.upgrade_url.clone(),
            })
    }
}

/// Whether one more fits under `limit` (on `page`, for a per-page limit),
/// in `tx`, which then adds it before it commits.
///
/// # Errors
/// [`ApiError::PlanLimit`] (402 `plan_limit`) when it does not.
pub(crate) async fn admit_one(
    state: &AppState,
    tx: &mut TenantTx,
    limit: Limit,
    page: Option<PageId>,
) -> Result<(), ApiError> {
    Claim::take(state, tx, limit, page).await?.admit(1)
}

/// The limits of the plan in force for `tx`'s tenant ([`Limits::UNLIMITED`]
/// with billing off, without a read).
pub(crate) async fn limits_of(state: &AppState, tx: &mut TenantTx) -> Result<Limits, ApiError> {
    if !state.billing.is_on() {
        return Ok(Limits::UNLIMITED);
    }
    let standing = tx.billing().await?.map(|r| r.standing()).transpose()?;
    Ok(state
        .billing
        .entitlement(standing.as_ref(), OffsetDateTime::now_utc())
        .limits)
}

/// Keeps a read of the audit log within the plan's retention: older
/// entries are kept (a larger plan shows them again), but not shown.
pub(crate) async fn within_retention(
    state: &AppState,
    tx: &mut TenantTx,
    filter: &mut AuditFilter,
) -> Result<(), ApiError> {
    if let Some(days) = limits_of(state, tx).await?.audit_retention_days {
        let from = OffsetDateTime::now_utc() - time::Duration::days(i64::from(days));
        filter.since = Some(filter.since.map_or(from, |s| s.max(from)));
    }
    Ok(())
}

/// How long a tenant's API rate is trusted before it is read again: a plan
/// change reaches the limiter within this.
const RATE_TTL: Duration = Duration::from_secs(30);

/// Tenants' API rates (requests a minute by one person or key) as their
/// plans set them, read once per [`RATE_TTL`] per tenant rather than on
/// every request. Bounded: past [`Self::MAX`] tenants it starts afresh.
#[derive(Default)]
pub struct ApiRates(Mutex<HashMap<TenantId, (Option<u32>, Instant)>>);

impl ApiRates {
    const MAX: usize = 50_000;

    /// The plan's `api_requests_per_minute` for `tenant` (none: the
    /// platform's own limit applies; always none with billing off).
    pub(crate) async fn of(
        &self,
        state: &AppState,
        tenant: TenantId,
    ) -> Result<Option<u32>, ApiError> {
        if !state.billing.is_on() {
            return Ok(None);
        }
        let now = Instant::now();
        if let Some((rate, at)) = self.lock().get(&tenant).copied()
            && now.duration_since(at) < RATE_TTL
        {
            return Ok(rate);
        }
        let mut tx = state.store.tenant_tx(tenant).await?;
        let rate = limits_of(state, &mut tx).await?.api_requests_per_minute;
        tx.commit().await?;
        let mut rates = self.lock();
        if rates.len() >= Self::MAX {
            rates.clear();
        }
        rates.insert(tenant, (rate, now));
        Ok(rate)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TenantId, (Option<u32>, Instant)>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
