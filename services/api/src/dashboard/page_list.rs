//! The team's pages: the list (each with where readers see it, its
//! overview and its settings) and the form that adds one. The reads are
//! `GET /v1/pages`' store query; adding a page is
//! `routes::pages::create_page`, as `POST /v1/pages` does it.

use crate::dashboard::form::Posted;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use heliograph_domain::Role;
use heliograph_store::ListQuery;
use serde::Deserialize;

use super::form::FormErrors;
use super::frame::{self, Frame, PageLink, Section};
use super::page_settings::COMMON_ZONES;
use crate::auth::Member;
use crate::error::ApiError;
use crate::routes::pages::{PageInput, create_page};
use crate::startup::AppState;

/// Pages a slice of the list shows.
const PER_PAGE: i64 = 50;

/// Which slice of the list to show.
#[derive(Deserialize)]
pub struct ListParams {
    page: Option<u32>,
}

/// The list of pages.
#[derive(Template)]
#[template(path = "dashboard/settings/list.html")]
struct ListView {
    frame: Frame,
    pages: Vec<PageLink>,
    number: i64,
    last: i64,
    previous: Option<String>,
    next: Option<String>,
}

/// `GET /dashboard/pages`: the team's pages, 50 a slice.
pub async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    member: Member,
    params: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    let number = i64::from(params.page.unwrap_or(1).max(1));
    let mut tx = state.store.tenant_tx(member.tenant).await?;
    let listed = tx
        .list_pages(&ListQuery {
            limit: PER_PAGE,
            offset: (number - 1).saturating_mul(PER_PAGE),
            ..ListQuery::all()
        })
        .await?;
    let frame = Frame::load(&state, &req, &member, &mut tx, None, Section::Pages).await?;
    tx.commit().await?;
    let last = ((listed.total + PER_PAGE - 1) / PER_PAGE).max(1);
    let at = |n: i64| format!("/dashboard/pages?page={n}");
    let view = ListView {
        frame: frame.clone(),
        pages: listed
            .items
            .iter()
            .map(|p| PageLink {
                id: p.id,
                name: p.name.clone(),
                public_url: state.urls.page_url(p.slug.as_str()),
            })
            .collect(),
        number,
        last,
        previous: (number > 1).then(|| at(number - 1)),
        next: (number < last).then(|| at(number + 1)),
    };
    frame::html(&frame, &view)
}

/// What the new-page form sends.
#[derive(Deserialize, Default)]
pub struct NewPageForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    subdomain: String,
    #[serde(default)]
    time_zone: String,
}

/// The form that adds a page.
#[derive(Template)]
#[template(path = "dashboard/settings/new.html")]
struct NewView {
    frame: Frame,
    form: NewPageForm,
    errors: FormErrors,
    zones: &'static [&'static str],
    /// Where readers will find a page, before its subdomain.
    url_start: String,
}

async fn new_form(
    state: &AppState,
    req: &HttpRequest,
    member: &Member,
    form: NewPageForm,
    errors: FormErrors,
) -> Result<HttpResponse, ApiError> {
    let mut tx = state.store.tenant_tx(member.tenant).await?;
    let frame = Frame::load(state, req, member, &mut tx, None, Section::Pages).await?;
    tx.commit().await?;
    let example = state.urls.page_url("example");
    let url_start = example
        .split_once("example")
        .map_or_else(String::new, |(start, _)| start.to_owned());
    let failed = errors.any();
    let view = NewView {
        frame: frame.clone(),
        form,
        errors,
        zones: COMMON_ZONES,
        url_start,
    };
    if failed {
        frame::html_with(StatusCode::UNPROCESSABLE_ENTITY, &view)
    } else {
        frame::html(&frame, &view)
    }
}

/// `GET /dashboard/pages/new` (admins, as `POST /v1/pages`).
pub async fn new(
    req: HttpRequest,
    state: web::Data<AppState>,
    member: Member,
) -> Result<HttpResponse, ApiError> {
    member.require(Role::Admin)?;
    let form = NewPageForm {
        time_zone: "UTC".to_owned(),
        ..NewPageForm::default()
    };
    new_form(&state, &req, &member, form, FormErrors::none()).await
}

/// `POST /dashboard/pages`: adds the page, then shows its overview.
pub async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    member: Member,
    form: Posted<NewPageForm>,
) -> Result<HttpResponse, ApiError> {
    member.require(Role::Admin)?;
    let form = form.into_inner()?;
    let input = PageInput {
        name: Some(form.name.clone()),
        subdomain: Some(form.subdomain.trim().to_owned()),
        time_zone: Some(form.time_zone.trim().to_owned()).filter(|z| !z.is_empty()),
        ..PageInput::default()
    };
    let mut tx = state.store.tenant_tx(member.tenant).await?;
    let created = create_page(&state, &mut tx, &member, input).await;
    let page = match created {
        Ok(page) => page,
        Err(err) => {
            drop(tx);
            let errors = match err {
                // A subdomain someone has: said at the field, as a refusal of it.
                ApiError::Conflict { detail, .. } => FormErrors::field("subdomain", detail),
                other => FormErrors::from_error(other)?,
            };
            return new_form(&state, &req, &member, form, errors).await;
        }
    };
    tx.commit().await?;
    Ok(frame::done(
        &format!("/dashboard/pages/{}", page.id),
        &format!("Page “{}” created.", page.name),
    ))
}
