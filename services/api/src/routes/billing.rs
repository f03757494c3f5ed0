//! `/v1/billing`: the tenant's plan, its limits, what it has of each, and
//! its subscription. With billing off the answer says so: no plan, no limit.

use actix_web::{HttpRequest, HttpResponse, web};
use heliograph_billing::stripe::{CheckoutRequest, StripeCallError, SubscriptionState};
use heliograph_billing::{Billing, BillingOn, Event, Interval, verify_signature};
use heliograph_domain::{FieldError, Limit, Limits, Role};
use heliograph_store::{Applied, StatedSubscription};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::auth::{Actor, Member};
use crate::error::ApiError;
use crate::openapi::{
    BadRequest, Conflict, Forbidden, NotFound, StripeRefused, StripeUnavailable, TooManyRequests,
    Unauthorized, ValidationFailed,
};
use crate::plan_limits::upgrade_url;
use crate::startup::AppState;

/// A plan.
#[derive(Serialize, utoipa::ToSchema)]
pub struct PlanResponse {
    /// Its id in the plans file.
    pub(crate) id: String,
    /// Its name.
    pub(crate) name: String,
}

/// What one page has of the per-page limits.
#[derive(Serialize, utoipa::ToSchema)]
pub struct PageUsageResponse {
    /// The page.
    pub(crate) page_id: Uuid,
    /// Its components (the limit `components_per_page`).
    pub(crate) components: i64,
    /// Its current subscribers (the limit `subscribers_per_page`).
    pub(crate) subscribers: i64,
}

/// What the tenant has of each limited thing.
#[derive(Serialize, utoipa::ToSchema)]
pub struct UsageResponse {
    /// Status pages (the limit `pages`).
    pub(crate) pages: u64,
    /// Members with the open invitations (the limit `team_members`).
    pub(crate) team_members: u64,
    /// Custom domains (the limit `custom_domains`).
    pub(crate) custom_domains: u64,
    /// Each page's components and subscribers.
    pub(crate) per_page: Vec<PageUsageResponse>,
}

/// The tenant's subscription, as Stripe last stated it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SubscriptionResponse {
    /// The plan subscribed to (the plan in force may be the free plan, for
    /// a subscription unpaid past its grace period).
    pub(crate) plan: String,
    /// Stripe's status: `trialing`, `active`, `past_due`, `unpaid`,
    /// `canceled`, `incomplete`, `incomplete_expired` or `paused`.
    pub(crate) status: Option<String>,
    /// `month` or `year`.
    pub(crate) interval: Option<String>,
    /// When the period paid for ends: the next renewal, or the end.
    pub(crate) current_period_end: Option<String>,
    /// Whether the subscription ends then instead of renewing.
    pub(crate) cancel_at_period_end: bool,
}

/// The tenant's billing.
#[derive(Serialize, utoipa::ToSchema)]
pub struct BillingResponse {
    /// `on`, or `off` (self-hosted: no plan, no limit).
    pub(crate) billing: &'static str,
    /// The plan in force (none with billing off).
    pub(crate) plan: Option<PlanResponse>,
    /// Its limits; null is no limit.
    pub(crate) limits: Limits,
    /// What the tenant has.
    pub(crate) usage: UsageResponse,
    /// Its subscription, if it ever subscribed.
    pub(crate) subscription: Option<SubscriptionResponse>,
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
    Ok(HttpResponse::Ok().json(read(&state, &member).await?))
}

/// The tenant's billing, as `GET /v1/billing` answers it.
pub(crate) async fn read(state: &AppState, member: &Member) -> Result<BillingResponse, ApiError> {
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
    Ok(BillingResponse {
        billing: if state.billing.is_on() { "on" } else { "off" },
        plan: entitlement.plan.map(|p| PlanResponse {
            id: p.id.clone(),
            name: p.name.clone(),
        }),
        limits: entitlement.limits,
        usage,
        subscription: record
            .filter(|r| r.status.is_some())
            .map(|r| SubscriptionResponse {
                plan: r.plan,
                status: r.status,
                interval: r.billing_interval,
                current_period_end: r.current_period_end.map(heliograph_web::timestamp),
                cancel_at_period_end: r.cancel_at_period_end,
            }),
    })
}

/// How far a webhook's signature time may be from ours (Stripe's libraries
/// use five minutes).
const SIGNATURE_TOLERANCE: time::Duration = time::Duration::minutes(5);

/// Billing's settings, or 409 `billing_off`.
fn billing_on(state: &AppState) -> Result<&BillingOn, ApiError> {
    match &state.billing {
        Billing::On(on) => Ok(on),
        Billing::Off => Err(ApiError::Conflict {
            code: "billing_off",
            detail: "Billing is off on this platform: every tenant has every feature and no plan to buy.",
        }),
    }
}

impl From<StripeCallError> for ApiError {
    fn from(e: StripeCallError) -> Self {
        tracing::error!(error = %e, "a Stripe request failed");
        Self::Stripe {
            transient: e.is_transient(),
        }
    }
}

/// A plan to subscribe to.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckoutBody {
    /// A paid plan's id (`GET /v1/billing/plans` lists them).
    plan: String,
    /// `month` (the default) or `year`.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    interval: Option<String>,
}

/// `{"checkout": {…}}`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckoutEnvelope {
    checkout: CheckoutBody,
}

/// Where to go next: Stripe's Checkout or its Customer Portal.
#[derive(Serialize, utoipa::ToSchema)]
pub struct RedirectResponse {
    /// The page on Stripe.
    url: String,
}

/// A plan as sold.
#[derive(Serialize, utoipa::ToSchema)]
pub struct PlanOffer {
    /// Its id.
    id: String,
    /// Its name.
    name: String,
    /// Its limits; null is no limit.
    limits: Limits,
    /// The intervals it is sold by (`month`, `year`); none for the free plan.
    intervals: Vec<&'static str>,
}

/// The plans on sale (`[]` with billing off).
#[derive(Serialize, utoipa::ToSchema)]
pub struct PlansResponse {
    /// Free first, then as the plans file orders them.
    plans: Vec<PlanOffer>,
}

/// The plans on sale, with their limits (any member).
#[utoipa::path(
    get,
    path = "/v1/billing/plans",
    tag = "billing",
    operation_id = "list_plans",
    security(("bearer" = []), ("oauth" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "The plans.", body = PlansResponse),
        Unauthorized, TooManyRequests,
    ),
)]
pub async fn plans(_member: Member, state: web::Data<AppState>) -> HttpResponse {
    let plans = match &state.billing {
        Billing::Off => Vec::new(),
        Billing::On(on) => on
            .plans
            .all()
            .map(|p| PlanOffer {
                id: p.id.clone(),
                name: p.name.clone(),
                limits: p.limits,
                intervals: p.prices.keys().map(|i| i.as_str()).collect(),
            })
            .collect(),
    };
    HttpResponse::Ok().json(PlansResponse { plans })
}

/// Starts a Checkout for `plan` billed every `interval`: gives the tenant
/// its Stripe customer when it has none, and answers where the owner pays.
/// The plan moves once Stripe says it is paid (the webhook), not here.
pub(crate) async fn start_checkout(
    state: &AppState,
    member: &Member,
    plan: &str,
    interval: Option<&str>,
) -> Result<String, ApiError> {
    member.require(Role::Owner)?;
    let on = billing_on(state)?;
    let interval = match interval.unwrap_or("month") {
        "month" => Interval::Month,
        "year" => Interval::Year,
        _ => {
            return Err(ApiError::field(FieldError::new(
                "checkout.interval",
                "invalid",
                "must be `month` or `year`",
            )));
        }
    };
    let Some(chosen) = on.plans.get(plan).filter(|p| p.is_paid()) else {
        return Err(ApiError::field(FieldError::new(
            "checkout.plan",
            "invalid",
            "must name a paid plan (GET /v1/billing/plans lists them)",
        )));
    };
    let Some(price) = chosen.prices.get(&interval) else {
        return Err(ApiError::field(FieldError::new(
            "checkout.interval",
            "unavailable",
            format!(
                "the plan {} is not sold by the {}",
                chosen.id,
                interval.as_str()
            ),
        )));
    };
    let mut tx = state.store.tenant_tx(member.tenant).await?;
    let record = tx.billing().await?;
    let team = tx.members().await?;
    let name = tx.team_name().await?;
    tx.commit().await?;
    if record
        .as_ref()
        .and_then(|r| r.status.as_deref())
        .is_some_and(|s| !matches!(s, "canceled" | "incomplete_expired" | "incomplete"))
    {
        return Err(ApiError::Conflict {
            code: "subscription_exists",
            detail: "The tenant has a subscription already: change its plan in the customer portal (POST /v1/billing/portal).",
        });
    }
    let customer = match record.and_then(|r| r.stripe_customer_id) {
        Some(customer) => customer,
        None => {
            // Invoices go to the owner starting the checkout (a person), or
            // to the team's first owner.
            let me = match member.actor {
                Actor::User { user, .. } => Some(user.as_uuid()),
                Actor::ApiKey { .. } => None,
            };
            let email = team
                .iter()
                .find(|m| Some(m.user_id.as_uuid()) == me)
                .or_else(|| team.iter().find(|m| m.role == Role::Owner))
                .map(|m| m.email.clone())
                .unwrap_or_default();
            let created = on
                .stripe
                .create_customer(member.tenant, &name, &email)
                .await?;
            let mut tx = state.store.tenant_tx(member.tenant).await?;
            let held = tx
                .set_stripe_customer(&created, &on.plans.free().id)
                .await?;
            tx.commit().await?;
            held
        }
    };
    let back = upgrade_url(&state.urls);
    let success = format!("{back}?checkout=done");
    let cancel = format!("{back}?checkout=canceled");
    let session = on
        .stripe
        .create_checkout_session(&CheckoutRequest {
            customer: &customer,
            price,
            tenant: member.tenant,
            plan: &chosen.id,
            success_url: &success,
            cancel_url: &cancel,
        })
        .await?;
    let url = session.url.ok_or_else(|| {
        ApiError::from(StripeCallError::Unreadable(
            "a Checkout Session without a URL".to_owned(),
        ))
    })?;
    let mut tx = state.store.tenant_tx(member.tenant).await?;
    tx.audit(&member.audit(
        "billing.checkout_started",
        "subscription",
        member.tenant.as_uuid(),
        json!({"plan": chosen.id, "interval": interval.as_str(), "session": session.id}),
    ))
    .await?;
    tx.commit().await?;
    tracing::info!(tenant.id = %member.tenant, plan = %chosen.id, "checkout started");
    Ok(url)
}

/// Opens the Customer Portal for the tenant's customer: where an owner
/// changes the card or the plan, cancels, and finds the invoices.
pub(crate) async fn open_portal(state: &AppState, member: &Member) -> Result<String, ApiError> {
    member.require(Role::Owner)?;
    let on = billing_on(state)?;
    let mut tx = state.store.tenant_tx(member.tenant).await?;
    let customer = tx.billing().await?.and_then(|r| r.stripe_customer_id);
    tx.commit().await?;
    let Some(customer) = customer else {
        return Err(ApiError::Conflict {
            code: "no_subscription",
            detail: "The tenant has never subscribed: start with a checkout (POST /v1/billing/checkout).",
        });
    };
    let portal = on
        .stripe
        .create_portal_session(&customer, &upgrade_url(&state.urls))
        .await?;
    Ok(portal.url)
}

/// Starts a Checkout Session for a paid plan (owners only; billing on).
#[utoipa::path(
    post,
    path = "/v1/billing/checkout",
    tag = "billing",
    operation_id = "start_checkout",
    security(("bearer" = []), ("oauth" = []), ("cookie" = [])),
    request_body = CheckoutEnvelope,
    responses(
        (status = 201, description = "Where the owner pays (Stripe Checkout).", body = RedirectResponse),
        BadRequest, Unauthorized, Forbidden, Conflict, ValidationFailed, TooManyRequests,
        StripeRefused, StripeUnavailable,
    ),
)]
pub async fn checkout(
    member: Member,
    state: web::Data<AppState>,
    body: web::Json<CheckoutEnvelope>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner().checkout;
    let url = start_checkout(&state, &member, &body.plan, body.interval.as_deref()).await?;
    Ok(HttpResponse::Created().json(RedirectResponse { url }))
}

/// Opens a Customer Portal session (owners only; billing on).
#[utoipa::path(
    post,
    path = "/v1/billing/portal",
    tag = "billing",
    operation_id = "open_portal",
    security(("bearer" = []), ("oauth" = []), ("cookie" = [])),
    responses(
        (status = 201, description = "Where the owner manages the subscription (Stripe's Customer Portal).", body = RedirectResponse),
        Unauthorized, Forbidden, Conflict, TooManyRequests, StripeRefused, StripeUnavailable,
    ),
)]
pub async fn portal(member: Member, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let url = open_portal(&state, &member).await?;
    Ok(HttpResponse::Created().json(RedirectResponse { url }))
}

/// What came of a webhook event.
#[derive(Serialize, utoipa::ToSchema)]
pub struct WebhookReceipt {
    /// `applied`, `unchanged`, `stale` (older than the state held),
    /// `duplicate` (received before) or `ignored` (a type or a customer
    /// billing does not follow).
    outcome: &'static str,
}

/// Stripe's webhook: the signature checked on the raw body first, the
/// event applied once (by its id), and the subscription applied as Stripe
/// states it now, read back from Stripe, never as the event's delta.
#[utoipa::path(
    post,
    path = "/v1/billing/stripe-webhook",
    tag = "billing",
    operation_id = "stripe_webhook",
    responses(
        (status = 200, description = "Received.", body = WebhookReceipt),
        BadRequest, NotFound, TooManyRequests, StripeRefused, StripeUnavailable,
    ),
)]
pub async fn stripe_webhook(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let Billing::On(on) = &state.billing else {
        return Err(ApiError::NotFound);
    };
    let header = req
        .headers()
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok());
    let secrets: Vec<&[u8]> = on
        .webhook_secrets
        .iter()
        .map(|s| s.expose_secret().as_bytes())
        .collect();
    if let Err(e) = verify_signature(
        header,
        &body,
        &secrets,
        OffsetDateTime::now_utc(),
        SIGNATURE_TOLERANCE,
    ) {
        tracing::warn!(reason = %e, "a Stripe webhook was refused");
        return Err(ApiError::InvalidSignature);
    }
    let event: Event = serde_json::from_slice(&body)
        .map_err(|_| ApiError::MalformedBody("the event is not a Stripe event".to_owned()))?;
    let outcome = apply_event(&state, on, &event).await?;
    tracing::info!(stripe.event = %event.id, stripe.type = %event.kind, outcome, "Stripe event");
    Ok(HttpResponse::Ok().json(WebhookReceipt { outcome }))
}

/// Applies one verified event; answers what came of it.
async fn apply_event(
    state: &AppState,
    on: &BillingOn,
    event: &Event,
) -> Result<&'static str, ApiError> {
    if state.store.stripe_event_seen(&event.id).await? {
        return Ok("duplicate");
    }
    let subject = event.subject();
    let tenant = match (&subject.customer, event.is_followed()) {
        (Some(customer), true) => state.store.billing_tenant_of_customer(customer).await?,
        _ => None,
    };
    let Some(tenant) = tenant else {
        state
            .store
            .record_stripe_event(&event.id, &event.kind, "ignored")
            .await?;
        return Ok("ignored");
    };
    // The subscription as Stripe states it now (an ended one Stripe no
    // longer has is the event's own object, which states its end).
    let stated_at = OffsetDateTime::now_utc();
    let subscription = match &subject.subscription {
        None => None,
        Some(id) => match on.stripe.subscription(id).await {
            Ok(s) => Some(s),
            Err(StripeCallError::NotFound) if event.kind == "customer.subscription.deleted" => {
                serde_json::from_value(event.data.object.clone()).ok()
            }
            Err(e) => return Err(e.into()),
        },
    };
    let current = subscription
        .filter(|s| Some(&s.customer) == subject.customer.as_ref())
        .map(|s| s.state(&on.plans))
        .transpose()
        .map_err(|e| {
            // A price the plans file does not name: the operator's to fix;
            // Stripe sends the event again meanwhile.
            ApiError::Internal(anyhow::anyhow!(e))
        })?;
    let mut tx = state.store.tenant_tx(tenant).await?;
    if !tx
        .record_stripe_event(&event.id, &event.kind, "applied")
        .await?
    {
        return Ok("duplicate");
    }
    let applied = match &current {
        Some(s) => Some(
            tx.apply_subscription(&stated(s), stated_at, &event.id)
                .await?,
        ),
        None => None,
    };
    if event.is_invoice() {
        let action = if event.kind == "invoice.payment_failed" {
            "billing.payment_failed"
        } else {
            "billing.payment_succeeded"
        };
        let o = &event.data.object;
        tx.audit_billing_event(
            action,
            json!({
                "event": event.id,
                "invoice": o.get("id"),
                "amount": o.get("amount_due"),
                "currency": o.get("currency"),
                "subscription": subject.subscription,
            }),
        )
        .await?;
    }
    let outcome = match applied {
        Some(Applied::Changed { .. }) => "applied",
        Some(Applied::Stale) => {
            tx.set_stripe_event_outcome(&event.id, "stale").await?;
            "stale"
        }
        Some(Applied::Unchanged) | None => "unchanged",
    };
    tx.commit().await?;
    Ok(outcome)
}

/// A subscription state as the store applies it.
pub(crate) fn stated(s: &SubscriptionState) -> StatedSubscription<'_> {
    StatedSubscription {
        subscription_id: &s.subscription_id,
        customer_id: &s.customer_id,
        plan: &s.plan,
        interval: s.interval.as_str(),
        status: s.status,
        current_period_end: s.current_period_end,
        cancel_at_period_end: s.cancel_at_period_end,
    }
}
