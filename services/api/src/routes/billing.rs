//! `/v1/billing`: the tenant's plan, its limits, what it has of each, and
//! its subscription. With billing off the answer says so: no plan, no limit.

use actix_web::{HttpResponse, web};
use heliograph_domain::{Limit, Limits};
use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::auth::Member;
use crate::error::ApiError;
use crate::openapi::{TooManyRequests, Unauthorized};
use crate::startup::AppState;

/// A plan.
#[derive(Serialize, utoipa::ToSchema)]
pub struct PlanResponse {
    /// Its id in the plans file.
    id: String,
    /// Its name.
    name: String,
}

/// What one page has of the per-page limits.
#[derive(Serialize, utoipa::ToSchema)]
pub struct PageUsageResponse {
    /// The page.
    page_id: Uuid,
    /// Its components (the limit `components_per_page`).
    components: i64,
    /// Its current subscribers (the limit `subscribers_per_page`).
    subscribers: i64,
}

/// What the tenant has of each limited thing.
#[derive(Serialize, utoipa::ToSchema)]
pub struct UsageResponse {
    /// Status pages (the limit `pages`).
    pages: u64,
    /// Members with the open invitations (the limit `team_members`).
    team_members: u64,
    /// Custom domains (the limit `custom_domains`).
    custom_domains: u64,
    /// Each page's components and subscribers.
    per_page: Vec<PageUsageResponse>,
}

/// The tenant's subscription, as Stripe last stated it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SubscriptionResponse {
    /// The plan subscribed to (the plan in force may be the free plan, for
    /// a subscription unpaid past its grace period).
    plan: String,
    /// Stripe's status: `trialing`, `active`, `past_due`, `unpaid`,
    /// `canceled`, `incomplete`, `incomplete_expired` or `paused`.
    status: Option<String>,
    /// `month` or `year`.
    interval: Option<String>,
    /// When the period paid for ends: the next renewal, or the end.
    current_period_end: Option<String>,
    /// Whether the subscription ends then instead of renewing.
    cancel_at_period_end: bool,
}

/// The tenant's billing.
#[derive(Serialize, utoipa::ToSchema)]
pub struct BillingResponse {
    /// `on`, or `off` (self-hosted: no plan, no limit).
    billing: &'static str,
    /// The plan in force (none with billing off).
    plan: Option<PlanResponse>,
    /// Its limits; null is no limit.
    limits: Limits,
    /// What the tenant has.
    usage: UsageResponse,
    /// Its subscription, if it ever subscribed.
    subscription: Option<SubscriptionResponse>,
}

/// The tenant's plan, limits, usage and subscription (any member).
#[utoipa::path(
    get,
    path = "/v1/billing",
    tag = "billing",
    operation_id = "get_billing",
    security(("bearer" = []), ("oauth" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "The tenant's billing.", body = BillingResponse),
        Unauthorized, TooManyRequests,
    ),
)]
pub async fn get(member: Member, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let mut tx = state.store.tenant_tx(member.tenant).await?;
    let record = tx.billing().await?;
    let usage = UsageResponse {
        pages: tx.usage(Limit::Pages, None).await?,
        team_members: tx.usage(Limit::TeamMembers, None).await?,
        custom_domains: tx.usage(Limit::CustomDomains, None).await?,
        per_page: tx
            .page_usage()
            .await?
            .into_iter()
            .map(|u| PageUsageResponse {
                page_id: u.page_id.as_uuid(),
                components: u.components,
                subscribers: u.subscribers,
            })
            .collect(),
    };
    tx.commit().await?;
    let standing = record.as_ref().map(|r| r.standing()).transpose()?;
    let entitlement = state
        .billing
        .entitlement(standing.as_ref(), OffsetDateTime::now_utc());
    Ok(HttpResponse::Ok().json(BillingResponse {
        billing: if state.billing.is_on() { "on" } else { "off" },
        plan: entitlement.plan.map(|p| PlanResponse {
            id: p.id.clone(),
            name: p.name.clone(),
        }),
        limits: entitlement.limits,
        usage,
        subscription: record.map(|r| SubscriptionResponse {
            plan: r.plan,
            status: r.status,
            interval: r.billing_interval,
            current_period_end: r.current_period_end.map(heliograph_web::timestamp),
            cancel_at_period_end: r.cancel_at_period_end,
        }),
    }))
}
