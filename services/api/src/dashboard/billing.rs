//! The team's billing: the plan in force, what the team has against each
//! limit, and, for owners, the plans on sale with a way to each (Stripe
//! Checkout) and the way to the Customer Portal (card, plan, cancelling,
//! invoices). Others see the plan only. As `GET /v1/billing`,
//! `POST /v1/billing/checkout` and `POST /v1/billing/portal`, whose
//! functions it calls (`routes::billing`).

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use heliograph_billing::Billing;
use heliograph_domain::{Limit, Role};
use serde::Deserialize;

use super::form::Posted;
use super::frame::{self, Frame, Section};
use crate::auth::Member;
use crate::error::ApiError;
use crate::routes::billing::{self as rest, BillingResponse};
use crate::startup::AppState;

/// One limit, as a row with its bar shows it.
struct UsageRow {
    label: String,
    used: u64,
    /// None: no limit.
    allowed: Option<u32>,
}

impl UsageRow {
    /// Whether the team is at (or over) the limit.
    fn full(&self) -> bool {
        self.allowed.is_some_and(|a| self.used >= u64::from(a))
    }
}

/// A plan on sale, as an owner sees it.
struct Offer {
    id: String,
    name: String,
    intervals: Vec<&'static str>,
    lines: Vec<String>,
    current: bool,
}

/// The billing page.
#[derive(Template)]
#[template(path = "dashboard/billing/index.html")]
struct BillingView {
    frame: Frame,
    on: bool,
    plan_name: String,
    status: Option<String>,
    renews: Option<String>,
    cancel_at_period_end: bool,
    past_due: bool,
    subscribed: bool,
    rows: Vec<UsageRow>,
    offers: Vec<Offer>,
    owner: bool,
    notice: Option<&'static str>,
}

/// What Checkout's return address carries.
#[derive(Deserialize)]
pub struct Returned {
    checkout: Option<String>,
}

/// The CSP of the billing page: the dashboard's, with Stripe's hosted
/// pages (or, with `STRIPE_API_BASE`, that server's origin) as form
/// targets: CSP `form-action` governs the redirect after a post, too.
fn csp(state: &AppState) -> String {
    let extra = match &state.billing {
        Billing::On(on) => on.stripe.hosted_pages(),
        Billing::Off => String::new(),
    };
    super::guard::CSP.replace("form-action 'self'", &format!("form-action 'self' {extra}"))
}

fn label(limit: Limit) -> &'static str {
    match limit {
        Limit::Pages => "Status pages",
        Limit::ComponentsPerPage => "Components on a page",
        Limit::SubscribersPerPage => "Subscribers of a page",
        Limit::TeamMembers => "Team members (with open invitations)",
        Limit::CustomDomains => "Custom domains",
        Limit::TextsPerMonth => "Texts a month",
        Limit::EmailsPerMonth => "Emails a month",
        Limit::ApiRequestsPerMinute => "API requests a minute",
        Limit::AuditRetentionDays => "Audit log kept (days)",
    }
}

fn rows(b: &BillingResponse, page_names: &[(uuid::Uuid, String)]) -> Vec<UsageRow> {
    let mut rows = vec![
        UsageRow {
            label: label(Limit::Pages).to_owned(),
            used: b.usage.pages,
            allowed: b.limits.pages,
        },
        UsageRow {
            label: label(Limit::TeamMembers).to_owned(),
            used: b.usage.team_members,
            allowed: b.limits.team_members,
        },
        UsageRow {
            label: label(Limit::CustomDomains).to_owned(),
            used: b.usage.custom_domains,
            allowed: b.limits.custom_domains,
        },
    ];
    for page in &b.usage.per_page {
        let name = page_names
            .iter()
            .find(|(id, _)| *id == page.page_id)
            .map_or("a page", |(_, n)| n.as_str());
        rows.push(UsageRow {
            label: format!("Components on {name}"),
            used: u64::try_from(page.components).unwrap_or(0),
            allowed: b.limits.components_per_page,
        });
        rows.push(UsageRow {
            label: format!("Subscribers of {name}"),
            used: u64::try_from(page.subscribers).unwrap_or(0),
            allowed: b.limits.subscribers_per_page,
        });
    }
    rows
}

/// `GET /dashboard/billing`.
pub async fn page(
    req: HttpRequest,
    member: Member,
    state: web::Data<AppState>,
    returned: web::Query<Returned>,
) -> Result<HttpResponse, ApiError> {
    member.person()?;
    let billing = rest::read(&state, &member).await?;
    let mut tx = state.store.tenant_tx(member.tenant).await?;
    let frame = Frame::load(&state, &req, &member, &mut tx, None, Section::Billing).await?;
    tx.commit().await?;
    let page_names: Vec<(uuid::Uuid, String)> = frame
        .pages
        .iter()
        .map(|p| (p.id.as_uuid(), p.name.clone()))
        .collect();
    let current = billing.plan.as_ref().map(|p| p.id.clone());
    let offers = match &state.billing {
        Billing::On(on) => on
            .plans
            .all()
            .map(|p| Offer {
                id: p.id.clone(),
                name: p.name.clone(),
                intervals: p.prices.keys().map(|i| i.as_str()).collect(),
                lines: Limit::ALL
                    .iter()
                    .map(|l| match p.limits.of(*l) {
                        Some(n) => format!("{}: {n}", label(*l)),
                        None => format!("{}: no limit", label(*l)),
                    })
                    .collect(),
                current: current.as_deref() == Some(p.id.as_str()),
            })
            .collect(),
        Billing::Off => Vec::new(),
    };
    let subscription = billing.subscription.as_ref();
    let status = subscription.and_then(|s| s.status.clone());
    let view = BillingView {
        on: state.billing.is_on(),
        plan_name: billing
            .plan
            .as_ref()
            .map_or_else(|| "No plan: billing is off".to_owned(), |p| p.name.clone()),
        past_due: status.as_deref() == Some("past_due"),
        subscribed: status
            .as_deref()
            .is_some_and(|s| !matches!(s, "canceled" | "incomplete_expired")),
        status,
        renews: subscription
            .and_then(|s| s.current_period_end.clone())
            .map(|t| t.chars().take(10).collect()),
        cancel_at_period_end: subscription.is_some_and(|s| s.cancel_at_period_end),
        rows: rows(&billing, &page_names),
        offers,
        owner: member.role == Role::Owner,
        notice: match returned.checkout.as_deref() {
            Some("done") => Some(
                "Thank you. Stripe is confirming the payment; the plan changes here as soon \
                 as it has (usually within a minute).",
            ),
            Some("canceled") => Some("Checkout was cancelled. Nothing was charged."),
            _ => None,
        },
        frame: frame.clone(),
    };
    let mut response = frame::html(&frame, &view)?;
    if let Ok(value) = header::HeaderValue::from_str(&csp(&state)) {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, value);
    }
    Ok(response)
}

/// The upgrade form.
#[derive(Deserialize)]
pub struct UpgradeForm {
    #[serde(default)]
    plan: String,
    #[serde(default)]
    interval: String,
}

/// `POST /dashboard/billing/checkout`: to Stripe Checkout, as
/// `POST /v1/billing/checkout`.
pub async fn checkout(
    member: Member,
    state: web::Data<AppState>,
    form: Posted<UpgradeForm>,
) -> Result<HttpResponse, ApiError> {
    member.require(Role::Owner)?;
    let form = form.into_inner()?;
    let interval = Some(form.interval.as_str()).filter(|i| !i.is_empty());
    let url = rest::start_checkout(&state, &member, &form.plan, interval).await?;
    Ok(frame::go(&url))
}

/// The portal form (nothing but the CSRF token).
#[derive(Deserialize)]
pub struct PortalForm {}

/// `POST /dashboard/billing/portal`: to Stripe's Customer Portal, as
/// `POST /v1/billing/portal`.
pub async fn portal(
    member: Member,
    state: web::Data<AppState>,
    form: Posted<PortalForm>,
) -> Result<HttpResponse, ApiError> {
    member.require(Role::Owner)?;
    form.into_inner()?;
    let url = rest::open_portal(&state, &member).await?;
    Ok(frame::go(&url))
}
