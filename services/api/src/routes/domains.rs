//! `/v1/pages/{page_id}/domains`: a page's custom domains.
//!
//! Adding a hostname answers the DNS records the tenant must create; the
//! worker checks them (at once, on request, and periodically) and only a
//! verified hostname routes. Adding is a claim: several tenants may claim
//! a hostname nobody has verified; the first verified holds it and the
//! others' claims become `taken`. See `heliograph_domain::custom_domain`.

use actix_web::{HttpRequest, HttpResponse, web};
use heliograph_domain::custom_domain::txt_record_name;
use heliograph_domain::{
    CustomDomain as Domain, DomainCheckError, DomainId, DomainStatus, Hostname, PageId,
};
use heliograph_store::TenantTx;
use serde::{Deserialize, Serialize};

use super::path_id;
use crate::auth::Member;
use crate::error::{ApiError, envelope, required};
use crate::input::{Input, ListParams, paginated};
use crate::openapi::{
    BadRequest, Conflict, Forbidden, NotFound, PaymentRequired, TooManyRequests, Unauthorized,
    UnsupportedMediaType, ValidationFailed,
};
use crate::page_scope::{Admin, AtPage, Viewer};
use crate::startup::AppState;

/// A custom domain of a page, with the DNS records it needs.
#[derive(Serialize, utoipa::ToSchema)]
pub struct DomainResponse {
    id: String,
    page_id: String,
    /// Lower-case, without a trailing dot.
    hostname: String,
    status: DomainStatus,
    /// What the status means, in a sentence.
    explanation: &'static str,
    /// When a pending domain expires unless verified first
    /// (`DOMAIN_PENDING_DAYS` after it was added or renewed).
    expires_at: Option<String>,
    /// When a check first passed.
    verified_at: Option<String>,
    /// When the last check began.
    last_checked_at: Option<String>,
    /// Since when a verified domain fails its checks (it still routes
    /// through the grace period, then stops).
    failing_since: Option<String>,
    /// Why the last check failed.
    last_error: Option<DomainCheckError>,
    /// When it stopped routing.
    stopped_at: Option<String>,
    /// When another page's claim of the hostname was verified first.
    taken_at: Option<String>,
    /// When it expired, not verified in time.
    expired_at: Option<String>,
    created_at: String,
    /// The records to create at the tenant's DNS provider.
    records: Vec<DnsRecord>,
}

/// One DNS record to create.
#[derive(Serialize, utoipa::ToSchema)]
pub struct DnsRecord {
    /// `CNAME` or `TXT`.
    #[serde(rename = "type")]
    pub(crate) kind: &'static str,
    /// The record's name.
    pub(crate) name: String,
    /// Its value: the CNAME target, or the TXT record's text.
    pub(crate) value: String,
}

/// The records `d` needs: a CNAME to the platform's target, and the TXT
/// record carrying its token.
pub(crate) fn records(state: &AppState, d: &Domain) -> Vec<DnsRecord> {
    vec![
        DnsRecord {
            kind: "CNAME",
            name: d.hostname.to_string(),
            value: state.domains.cname_target().to_string(),
        },
        DnsRecord {
            kind: "TXT",
            name: txt_record_name(d.hostname.as_str()),
            value: d.token.clone(),
        },
    ]
}

fn domain_response(state: &AppState, d: &Domain) -> DomainResponse {
    let at = |t: Option<time::OffsetDateTime>| t.map(heliograph_web::timestamp);
    DomainResponse {
        id: d.id.to_string(),
        page_id: d.page_id.to_string(),
        hostname: d.hostname.to_string(),
        status: d.state.status(),
        explanation: d.state.status().explanation(),
        expires_at: at(d.state.expires_at(state.domain_claims.expire_after)),
        verified_at: at(d.state.verified_at),
        last_checked_at: at(d.state.last_checked_at),
        failing_since: at(d.state.failing_since),
        last_error: d.state.last_error,
        stopped_at: at(d.state.stopped_at),
        taken_at: at(d.state.taken_at),
        expired_at: at(d.state.expired_at),
        created_at: heliograph_web::timestamp(d.created_at),
        records: records(state, d),
    }
}

/// `{"domain": {...}}`.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct DomainEnvelope {
    // Required: a body without it is 422 on the envelope.
    #[schema(required = true, value_type = DomainInput)]
    domain: Option<DomainInput>,
}

/// A domain's fields.
#[derive(Deserialize, utoipa::ToSchema)]
struct DomainInput {
    /// The hostname, such as `status.example.com`: ASCII (an
    /// internationalised name in its `xn--` form), at least two labels, not
    /// an IP address, not the platform's own domain.
    hostname: Option<String>,
}

/// The hostname a tenant typed, as a domain may have it.
pub(crate) fn hostname_of(state: &AppState, raw: Option<String>) -> Result<Hostname, ApiError> {
    required("hostname", raw)
        .and_then(|raw| state.domains.parse_hostname("hostname", &raw))
        .map_err(ApiError::field)
}

/// Claims `hostname` for `page` and records who did (the caller commits).
pub(crate) async fn add(
    state: &AppState,
    member: &Member,
    tx: &mut TenantTx,
    page: PageId,
    hostname: &Hostname,
) -> Result<Domain, ApiError> {
    crate::plan_limits::admit_one(state, tx, heliograph_domain::Limit::CustomDomains, None).await?;
    let d = tx
        .create_domain(
            page,
            hostname,
            state.domain_claims,
            time::OffsetDateTime::now_utc(),
        )
        .await??;
    tx.audit(&member.audit(
        "domain.created",
        "domain",
        d.id.as_uuid(),
        serde_json::json!({"hostname": d.hostname, "page_id": d.page_id}),
    ))
    .await?;
    Ok(d)
}

/// Removes `page`'s domain `id` (404 for another page's) and records who
/// did (the caller commits).
pub(crate) async fn remove(
    member: &Member,
    tx: &mut TenantTx,
    page: PageId,
    id: DomainId,
) -> Result<Domain, ApiError> {
    tx.domain(page, id).await?;
    let d = tx.delete_domain(page, id).await?;
    tx.audit(&member.audit(
        "domain.deleted",
        "domain",
        d.id.as_uuid(),
        serde_json::json!({"hostname": d.hostname, "page_id": d.page_id}),
    ))
    .await?;
    Ok(d)
}

/// Queues a check of `page`'s domain `id` (renewing an expired claim) and
/// records who asked (the caller commits).
pub(crate) async fn request_check(
    state: &AppState,
    member: &Member,
    tx: &mut TenantTx,
    page: PageId,
    id: DomainId,
) -> Result<Domain, ApiError> {
    tx.domain(page, id).await?;
    let d = tx
        .request_domain_check(
            page,
            id,
            state.domain_claims,
            time::OffsetDateTime::now_utc(),
        )
        .await??;
    tx.audit(&member.audit(
        "domain.check_requested",
        "domain",
        d.id.as_uuid(),
        serde_json::json!({"hostname": d.hostname}),
    ))
    .await?;
    Ok(d)
}

/// Lists a page's custom domains, by hostname (viewer).
///
/// `q` matches the hostname.
#[utoipa::path(
    get,
    path = "/v1/pages/{page_id}/domains",
    tag = "custom domains",
    operation_id = "list_domains",
    security(("bearer" = []), ("oauth" = []), ("cookie" = [])),
    params(("page_id" = Uuid, Path, description = "The page's id."), ListParams),
    responses(
        crate::openapi::DomainList,
        Unauthorized, NotFound, ValidationFailed, TooManyRequests,
    ),
)]
pub async fn list(
    at: AtPage<Viewer>,
    state: web::Data<AppState>,
    req: HttpRequest,
    params: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    let page = at.id();
    let AtPage { mut tx, .. } = at;
    let query = params.plain_query()?;
    let listed = tx.list_domains(page, &query).await?;
    tx.commit().await?;
    Ok(paginated(&req, state.urls.origin(), &query, listed, |d| {
        domain_response(&state, d)
    }))
}

/// Adds a custom domain to a page (admin).
///
/// Answers the records to create: a CNAME from the hostname to the
/// platform's target, and a TXT record `_heliograph.<hostname>` carrying
/// the domain's token. A first check runs at once; until one passes the
/// domain is `pending` and does not route, and expires after
/// `DOMAIN_PENDING_DAYS`. Several tenants may claim a hostname nobody has
/// verified; the first verified holds it, and the other claims become
/// `taken`. 409 `domain_taken` while a verified domain holds the hostname,
/// or when one of the tenant's pages claims it already; 409
/// `pending_domain_limit` when the tenant has `DOMAIN_PENDING_LIMIT`
/// domains pending.
#[utoipa::path(
    post,
    path = "/v1/pages/{page_id}/domains",
    tag = "custom domains",
    operation_id = "create_domain",
    security(("bearer" = []), ("oauth" = []), ("cookie" = [])),
    params(("page_id" = Uuid, Path, description = "The page's id.")),
    request_body(content(
        (DomainEnvelope = "application/json", example = json!({"domain": {"hostname": "status.example.com"}})),
        (DomainEnvelope = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 201, description = "The new domain, pending.", body = DomainResponse),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, UnsupportedMediaType,
        ValidationFailed, TooManyRequests, PaymentRequired,
    ),
)]
pub async fn create(
    at: AtPage<Admin>,
    state: web::Data<AppState>,
    body: Input<DomainEnvelope>,
) -> Result<HttpResponse, ApiError> {
    let page = at.id();
    let AtPage { member, mut tx, .. } = at;
    let hostname = hostname_of(&state, envelope("domain", body.0.domain)?.hostname)?;
    let d = add(&state, &member, &mut tx, page, &hostname).await?;
    tx.commit().await?;
    Ok(HttpResponse::Created().json(domain_response(&state, &d)))
}

/// Gets a custom domain (viewer).
#[utoipa::path(
    get,
    path = "/v1/pages/{page_id}/domains/{id}",
    tag = "custom domains",
    operation_id = "get_domain",
    security(("bearer" = []), ("oauth" = []), ("cookie" = [])),
    params(
        ("page_id" = Uuid, Path, description = "The page's id."),
        ("id" = Uuid, Path, description = "The domain's id."),
    ),
    responses(
        (status = 200, description = "The domain.", body = DomainResponse),
        Unauthorized, NotFound, TooManyRequests,
    ),
)]
pub async fn get(
    at: AtPage<Viewer>,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let page = at.id();
    let AtPage { mut tx, .. } = at;
    let id: DomainId = path_id(&path.1)?;
    let d = tx.domain(page, id).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(domain_response(&state, &d)))
}

/// Removes a custom domain (admin); the hostname stops routing at once and
/// any page may claim it again.
#[utoipa::path(
    delete,
    path = "/v1/pages/{page_id}/domains/{id}",
    tag = "custom domains",
    operation_id = "delete_domain",
    security(("bearer" = []), ("oauth" = []), ("cookie" = [])),
    params(
        ("page_id" = Uuid, Path, description = "The page's id."),
        ("id" = Uuid, Path, description = "The domain's id."),
    ),
    responses(
        (status = 204, description = "Deleted."),
        Unauthorized, Forbidden, NotFound, TooManyRequests,
    ),
)]
pub async fn delete(
    at: AtPage<Admin>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let page = at.id();
    let AtPage { member, mut tx, .. } = at;
    let id: DomainId = path_id(&path.1)?;
    remove(&member, &mut tx, page, id).await?;
    tx.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Asks for a check of a custom domain's records now (admin).
///
/// The worker runs it within seconds; the answer is the domain as it stands
/// before that check (read it again for the outcome). A check that passes
/// verifies a pending domain, and brings a failing or stopped one back. An
/// expired domain is renewed (pending again for `DOMAIN_PENDING_DAYS`,
/// counted against `DOMAIN_PENDING_LIMIT`: 409 `pending_domain_limit`); a
/// taken one is 409 `domain_taken`.
#[utoipa::path(
    post,
    path = "/v1/pages/{page_id}/domains/{id}/verify",
    tag = "custom domains",
    operation_id = "verify_domain",
    security(("bearer" = []), ("oauth" = []), ("cookie" = [])),
    params(
        ("page_id" = Uuid, Path, description = "The page's id."),
        ("id" = Uuid, Path, description = "The domain's id."),
    ),
    responses(
        (status = 202, description = "The check is queued; the domain as it stands.", body = DomainResponse),
        Unauthorized, Forbidden, NotFound, Conflict, TooManyRequests,
    ),
)]
pub async fn verify(
    at: AtPage<Admin>,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let page = at.id();
    let AtPage { member, mut tx, .. } = at;
    let id: DomainId = path_id(&path.1)?;
    let d = request_check(&state, &member, &mut tx, page, id).await?;
    tx.commit().await?;
    Ok(HttpResponse::Accepted().json(domain_response(&state, &d)))
}
