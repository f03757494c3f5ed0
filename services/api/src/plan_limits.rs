//! Plan limits at the entry points: every path that adds something a plan
//! limits (REST, dashboard, the public subscription form, imports) asks
//! here, in the transaction that adds it, before it commits. With billing
//! off the answer is at once; with billing on the tenant's lock for that
//! limit is taken first (so two requests racing for the last slot are
//! decided one after the other), then what it has is counted and the domain
//! asked whether the addition fits.

use heliograph_billing::Billing;
use heliograph_domain::{Limit, Limits, PageId, PlanLimit, PublicUrls};
use heliograph_store::TenantTx;
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
