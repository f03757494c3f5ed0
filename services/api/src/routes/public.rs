//! Public pages: by host (`<slug>.<base domain>`) and by path (`/status/<slug>/`).

use actix_web::guard::GuardContext;
use actix_web::http::header::{self, CacheControl, CacheDirective};
use actix_web::{HttpRequest, HttpResponse, web};
use anyhow::Context;
use heliograph_domain::Slug;
use heliograph_store::PageData;

use crate::error::ApiError;
use crate::startup::AppState;

fn host_of(headers: &header::HeaderMap) -> Option<String> {
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_ascii_lowercase)
}

/// Whether the request's `Host` is a page host.
pub fn is_page_host(ctx: &GuardContext<'_>) -> bool {
    let Some(state) = ctx.app_data::<web::Data<AppState>>() else {
        return false;
    };
    host_of(ctx.head().headers()).is_some_and(|host| state.urls.slug_for_host(&host).is_some())
}

fn slug_from_host(req: &HttpRequest, state: &AppState) -> Option<String> {
    let host = host_of(req.headers())?;
    state.urls.slug_for_host(&host).map(str::to_owned)
}

async fn load(state: &AppState, raw_slug: &str) -> Result<Option<PageData>, ApiError> {
    let Ok(slug) = Slug::parse("slug", raw_slug) else {
        return Ok(None);
    };
    let Some(page) = state.store.page_ref_by_slug(&slug).await? else {
        return Ok(None);
    };
    let mut tx = state.store.tenant_tx(page.tenant_id).await?;
    let data = tx.page_data(page.page_id).await?;
    tx.commit().await?;
    Ok(Some(data))
}

fn cache_control() -> CacheControl {
    CacheControl(vec![
        CacheDirective::Public,
        CacheDirective::MaxAge(10),
        CacheDirective::Extension("stale-if-error".into(), Some("86400".into())),
    ])
}

async fn page(
    state: &AppState,
    slug: Option<String>,
    base_path: &str,
) -> Result<HttpResponse, ApiError> {
    let Some(data) = (match slug {
        Some(slug) => load(state, &slug).await?,
        None => None,
    }) else {
        return Ok(not_found().await);
    };
    let html = heliograph_web::render_page(&data, base_path)
        .context("Failed to render the public page")?;
    Ok(HttpResponse::Ok()
        .insert_header(cache_control())
        .content_type("text/html; charset=utf-8")
        .body(html))
}

async fn summary(state: &AppState, slug: Option<String>) -> Result<HttpResponse, ApiError> {
    let Some(data) = (match slug {
        Some(slug) => load(state, &slug).await?,
        None => None,
    }) else {
        return Err(ApiError::NotFound);
    };
    let url = state.urls.page_url(&data.page.slug);
    Ok(HttpResponse::Ok()
        .insert_header(cache_control())
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
        .json(heliograph_web::summary(&data, &url)))
}

/// `GET /` on a page host.
pub async fn page_by_host(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    page(&state, slug_from_host(&req, &state), "").await
}

/// `GET /status/<slug>/` on the platform host.
pub async fn page_by_path(
    slug: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let slug = slug.into_inner();
    let base = format!("/status/{slug}");
    page(&state, Some(slug), &base).await
}

/// `GET /api/v2/summary.json` on a page host.
pub async fn summary_by_host(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    summary(&state, slug_from_host(&req, &state)).await
}

/// `GET /status/<slug>/api/v2/summary.json` on the platform host.
pub async fn summary_by_path(
    slug: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    summary(&state, Some(slug.into_inner())).await
}

/// A plain page for hosts and paths that name no status page.
pub async fn not_found() -> HttpResponse {
    HttpResponse::NotFound()
        .content_type("text/html; charset=utf-8")
        .body(concat!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Not found</title></head>",
            "<body><main><h1>Not found</h1><p>There is no status page here.</p></main></body></html>"
        ))
}
