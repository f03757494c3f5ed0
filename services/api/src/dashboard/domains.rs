//! A page's custom domains: the list, adding a hostname, and each domain's
//! page (the records to create, its state and last check in words, what
//! happens next, "Check now", delete), plus the small JSON its live status
//! polls. The rules and the writes are `routes::domains`' (the same
//! functions the `/v1` handlers call); the words are the domain's
//! (`DomainState::in_words`).

use crate::dashboard::form::Posted;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use heliograph_domain::custom_domain::utc_minute;
use heliograph_domain::{CheckRules, CustomDomain, DomainId, DomainStatus, StateInWords};
use serde::{Deserialize, Serialize};

use super::form::FormErrors;
use super::frame::{self, Frame, Section, frame_at};
use crate::error::ApiError;
use crate::input::ListParams;
use crate::page_scope::{Admin, AtPage, Viewer};
use crate::routes::domains::{self as rest, DnsRecord};
use crate::routes::path_id;
use crate::startup::AppState;

/// A domain as its rows and its page show it.
struct Shown {
    domain: CustomDomain,
    words: StateInWords,
    checked_at: Option<String>,
    pending: bool,
}

impl Shown {
    fn of(state: &AppState, domain: CustomDomain) -> Self {
        let rules = CheckRules {
            grace: state.domain_grace,
            pending: state.domain_claims.expire_after,
        };
        let words = domain.state.in_words(
            rules,
            state.domains.cname_target().as_str(),
            domain.last_cname_seen.as_deref(),
        );
        Self {
            checked_at: domain.state.last_checked_at.map(utc_minute),
            pending: domain.state.status() == DomainStatus::Pending,
            words,
            domain,
        }
    }

    fn tone(&self) -> &'static str {
        match self.domain.state.status() {
            DomainStatus::Verified => "ok",
            DomainStatus::Pending => "neutral",
            DomainStatus::Failing => "minor",
            DomainStatus::Stopped | DomainStatus::Taken | DomainStatus::Expired => "major",
        }
    }

    fn status(&self) -> &'static str {
        match self.domain.state.status() {
            DomainStatus::Pending => "Pending",
            DomainStatus::Verified => "Verified",
            DomainStatus::Failing => "Failing",
            DomainStatus::Stopped => "Stopped",
            DomainStatus::Taken => "Taken",
            DomainStatus::Expired => "Expired",
        }
    }
}

/// The list of a page's domains, with the form that adds one.
#[derive(Template)]
#[template(path = "dashboard/domains/list.html")]
struct ListView {
    frame: Frame,
    domains: Vec<Shown>,
    hostname: String,
    errors: FormErrors,
    page_no: i64,
    pages: i64,
}

async fn list_view(
    state: &AppState,
    req: &actix_web::HttpRequest,
    at: &mut AtPage<impl crate::page_scope::Needs>,
    params: &ListParams,
    hostname: String,
    errors: FormErrors,
) -> Result<ListView, ApiError> {
    let query = params.plain_query()?;
    let listed = at.tx.list_domains(at.page.id, &query).await?;
    let frame = frame_at(req, at, Section::Domains).await?;
    let per_page = query.limit.max(1);
    Ok(ListView {
        frame,
        page_no: query.offset / per_page + 1,
        pages: ((listed.total + per_page - 1) / per_page).max(1),
        domains: listed
            .items
            .into_iter()
            .map(|d| Shown::of(state, d))
            .collect(),
        hostname,
        errors,
    })
}

/// `GET /dashboard/pages/{page_id}/domains`.
pub async fn list(
    req: actix_web::HttpRequest,
    state: web::Data<AppState>,
    mut at: AtPage<Viewer>,
    params: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    let view = list_view(
        &state,
        &req,
        &mut at,
        &params,
        String::new(),
        FormErrors::none(),
    )
    .await?;
    at.tx.commit().await?;
    frame::html(&view.frame, &view)
}

/// The add form.
#[derive(Deserialize)]
pub struct AddForm {
    hostname: Option<String>,
}

/// `POST /dashboard/pages/{page_id}/domains`: adds a hostname, as
/// `POST /v1/pages/{page_id}/domains` does.
pub async fn add(
    req: actix_web::HttpRequest,
    state: web::Data<AppState>,
    mut at: AtPage<Admin>,
    form: Posted<AddForm>,
) -> Result<HttpResponse, ApiError> {
    let typed = form.into_inner()?.hostname;
    let added = match rest::hostname_of(&state, typed.clone()) {
        Ok(hostname) => rest::add(&state, &at.member, &mut at.tx, at.page.id, &hostname).await,
        Err(e) => Err(e),
    };
    let errors = match added {
        Ok(d) => {
            at.tx.commit().await?;
            return Ok(frame::done(
                &format!("/dashboard/pages/{}/domains/{}", d.page_id, d.id),
                &format!("{} added — create the two records below.", d.hostname),
            ));
        }
        // A hostname held elsewhere, or too many pending: said at the field.
        Err(ApiError::Conflict { detail, .. }) => FormErrors::field("hostname", detail),
        Err(err) => FormErrors::from_error(err)?,
    };
    // The failed write may have left the transaction unusable: a fresh one
    // reads the page again.
    at.tx = state.store.tenant_tx(at.member.tenant).await?;
    let params = web::Query::<ListParams>::from_query("")
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("empty list parameters: {e}")))?;
    let view = list_view(
        &state,
        &req,
        &mut at,
        &params,
        typed.unwrap_or_default(),
        errors,
    )
    .await?;
    at.tx.commit().await?;
    frame::html_with(StatusCode::UNPROCESSABLE_ENTITY, &view)
}

/// One domain's page.
#[derive(Template)]
#[template(path = "dashboard/domains/show.html")]
struct ShowView {
    frame: Frame,
    shown: Shown,
    records: Vec<DnsRecord>,
}

/// `GET /dashboard/pages/{page_id}/domains/{id}`.
pub async fn show(
    req: actix_web::HttpRequest,
    state: web::Data<AppState>,
    mut at: AtPage<Viewer>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let id: DomainId = path_id(&path.1)?;
    let domain = at.tx.domain(at.page.id, id).await?;
    let frame = frame_at(&req, &mut at, Section::Domains).await?;
    at.tx.commit().await?;
    let view = ShowView {
        frame,
        records: rest::records(&state, &domain),
        shown: Shown::of(&state, domain),
    };
    frame::html(&view.frame, &view)
}

/// What the live status of a domain's page polls.
#[derive(Serialize)]
struct StateJson {
    status: DomainStatus,
    pending: bool,
    headline: String,
    last_check: Option<String>,
    checked_at: Option<String>,
    next: String,
}

/// `GET /dashboard/pages/{page_id}/domains/{id}/state`: the domain's state
/// in words, for the page's live status.
pub async fn state_json(
    state: web::Data<AppState>,
    mut at: AtPage<Viewer>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let id: DomainId = path_id(&path.1)?;
    let domain = at.tx.domain(at.page.id, id).await?;
    at.tx.commit().await?;
    let shown = Shown::of(&state, domain);
    Ok(HttpResponse::Ok().json(StateJson {
        status: shown.domain.state.status(),
        pending: shown.pending,
        headline: shown.words.headline,
        last_check: shown.words.last_check,
        checked_at: shown.checked_at,
        next: shown.words.next,
    }))
}

/// `POST /dashboard/pages/{page_id}/domains/{id}/verify`: asks for a check
/// now, as `POST /v1/pages/{page_id}/domains/{id}/verify` does.
pub async fn verify(
    state: web::Data<AppState>,
    mut at: AtPage<Admin>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let id: DomainId = path_id(&path.1)?;
    let d = rest::request_check(&state, &at.member, &mut at.tx, at.page.id, id).await?;
    at.tx.commit().await?;
    Ok(frame::done(
        &format!("/dashboard/pages/{}/domains/{}", d.page_id, d.id),
        "Check requested — it runs within seconds; this page shows the result.",
    ))
}

/// `POST /dashboard/pages/{page_id}/domains/{id}/delete`: removes the
/// domain, as `DELETE /v1/pages/{page_id}/domains/{id}` does.
pub async fn delete(
    mut at: AtPage<Admin>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let id: DomainId = path_id(&path.1)?;
    let d = rest::remove(&at.member, &mut at.tx, at.page.id, id).await?;
    at.tx.commit().await?;
    Ok(frame::done(
        &format!("/dashboard/pages/{}/domains", d.page_id),
        &format!("{} deleted — it no longer serves the page.", d.hostname),
    ))
}
