//! Public pages: by host (`<slug>.<base domain>`) and by path
//! (`/status/<slug>/…` on the platform host), answered from the page's
//! in-memory snapshot (see `public_pages`).
//!
//! The subscription forms are `self_service`'s and the words of the small
//! pages `notices`'; the page's documents are rendered by `heliograph-web`
//! and kept by `public_pages`.

use actix_web::guard::GuardContext;
use actix_web::http::header::{self, CacheControl, CacheDirective, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse, web};
use heliograph_web::Audience;

use super::notices::{Link, Notice, answer};
use super::self_service;
use crate::auth;
use crate::public_pages::{Base, Doc, Lookup, PageKey, Rendered, Snapshot, render};
use crate::startup::AppState;

fn host_of(headers: &header::HeaderMap) -> Option<String> {
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_ascii_lowercase)
}

/// Whether the request's `Host` is a page host: a sub-domain of the base
/// domain, or a verified custom domain.
pub fn is_page_host(ctx: &GuardContext<'_>) -> bool {
    let Some(state) = ctx.app_data::<web::Data<AppState>>() else {
        return false;
    };
    host_of(ctx.head().headers()).is_some_and(|host| {
        state.urls.slug_for_host(&host).is_some() || state.pages.route_by_host(&host).is_some()
    })
}

/// Short enough that a change shows within seconds; stale copies cover a
/// burst (`stale-while-revalidate`) and an outage of ours (`stale-if-error`).
fn public_cache() -> CacheControl {
    CacheControl(vec![
        CacheDirective::Public,
        CacheDirective::MaxAge(10),
        CacheDirective::Extension("stale-while-revalidate".into(), Some("30".into())),
        CacheDirective::Extension("stale-if-error".into(), Some("86400".into())),
    ])
}

fn private_cache() -> CacheControl {
    CacheControl(vec![CacheDirective::Private, CacheDirective::NoStore])
}

/// Anything on a page host: `GET` (or `HEAD`) of the page's documents,
/// and the subscription forms' `POST`s.
pub async fn by_host(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> HttpResponse {
    let Some(host) = host_of(req.headers()) else {
        return not_found_page();
    };
    let route = match state.urls.slug_for_host(&host) {
        Some(slug) => state.pages.route_by_slug(slug),
        None => state.pages.route_by_host(&host),
    };
    let path = req.path().to_owned();
    serve(&req, &state, route, &path, &Base::Host, "", &body).await
}

/// Anything under `/status/<slug>` on the platform host, as [`by_host`].
pub async fn by_path(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> HttpResponse {
    let Some(rest) = req.path().strip_prefix("/status/") else {
        return not_found_page();
    };
    let (slug, path) = rest.split_once('/').map_or((rest, ""), |(s, p)| (s, p));
    let (route, path) = (state.pages.route_by_slug(slug), format!("/{path}"));
    let prefix = format!("/status/{slug}");
    serve(&req, &state, route, &path, &Base::Path, &prefix, &body).await
}

/// `GET /internal/tls/ask?domain=<host>`: Caddy's on-demand TLS asks before
/// it gets a certificate; 200 only for a verified custom domain, answered
/// from memory (a flood of handshakes for random names costs no query).
pub async fn tls_ask(
    state: web::Data<AppState>,
    query: web::Query<std::collections::HashMap<String, String>>,
) -> HttpResponse {
    match query.get("domain") {
        Some(domain) if state.pages.route_by_host(domain).is_some() => HttpResponse::Ok().finish(),
        _ => HttpResponse::NotFound().finish(),
    }
}

async fn serve(
    req: &HttpRequest,
    state: &AppState,
    route: Option<PageKey>,
    path: &str,
    base: &Base,
    prefix: &str,
    body: &web::Bytes,
) -> HttpResponse {
    match path.trim_end_matches('/') {
        "/unsubscribe" => return unsubscribe(req, state, route, prefix).await,
        "/subscriptions" => return self_service::subscribe(req, state, route, prefix, body).await,
        "/subscriptions/confirm" => return self_service::confirm(req, state, route, prefix).await,
        "/subscriptions/confirm_sms" => {
            return self_service::confirm_sms(req, state, route, prefix, body).await;
        }
        "/subscription" => return self_service::manage(req, state, route, prefix, body).await,
        _ => {}
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return HttpResponse::MethodNotAllowed()
            .insert_header((header::ALLOW, "GET, HEAD"))
            .finish();
    }
    let incident = path
        .strip_prefix("/incidents/")
        .and_then(|id| id.trim_end_matches('/').parse::<uuid::Uuid>().ok());
    let doc = Doc::from_path(path);
    if doc.is_none() && incident.is_none() {
        // Decided before any lookup: a path no page has costs nothing.
        return not_found_page();
    }
    let snapshot = match state.pages.get(route).await {
        Lookup::Found(s) => s,
        Lookup::NoSuchPage => return not_found_page(),
        Lookup::Unavailable => return unavailable(),
    };
    let html = incident.is_some() || doc.is_some_and(|d| !d.cross_origin());
    if html
        && *base == Base::Path
        && let Some(response) = members_view(req, state, &snapshot, doc, incident, prefix).await
    {
        return response;
    }
    let rendered = match (doc, incident) {
        (Some(doc), _) => snapshot.doc(doc, base).cloned(),
        (None, Some(id)) => state.pages.incident(&snapshot, id, base),
        (None, None) => None,
    };
    let csp = doc.unwrap_or(Doc::Page).content_security_policy();
    match rendered {
        Some(r) => respond(req, &r, doc.is_some_and(Doc::cross_origin), html, csp),
        None => not_found_page(),
    }
}

/// The HTML with private components, for a signed-in member of the page's
/// tenant (by the session cookie of the platform host); `None` for anyone else.
async fn members_view(
    req: &HttpRequest,
    state: &AppState,
    snapshot: &Snapshot,
    doc: Option<Doc>,
    incident: Option<uuid::Uuid>,
    prefix: &str,
) -> Option<HttpResponse> {
    auth::cookie_member_of(req, state, snapshot.tenant_id).await?;
    let body = match (doc, incident) {
        (Some(doc), _) => render(&snapshot.page, doc, Audience::Members, prefix).ok()?,
        (None, Some(id)) => {
            heliograph_web::render_incident(&snapshot.page, Audience::Members, prefix, id)
                .ok()
                .flatten()?
        }
        (None, None) => return None,
    };
    Some(
        HttpResponse::Ok()
            .insert_header(private_cache())
            .insert_header((
                header::CONTENT_SECURITY_POLICY,
                doc.unwrap_or(Doc::Page).content_security_policy(),
            ))
            .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
            .insert_header((header::VARY, "Cookie"))
            .content_type("text/html; charset=utf-8")
            .body(body),
    )
}

fn respond(
    req: &HttpRequest,
    r: &Rendered,
    cross_origin: bool,
    html: bool,
    csp: &'static str,
) -> HttpResponse {
    let (body, etag, gzipped) = match &r.gzip {
        Some((gz, etag)) if accepts_gzip(req) => (gz, etag, true),
        _ => (&r.body, &r.etag, false),
    };
    let fresh = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .map(|t| t.trim().trim_start_matches("W/"))
                .any(|t| t == etag || t == "*")
        });
    let mut response = if fresh {
        HttpResponse::build(StatusCode::NOT_MODIFIED)
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header(public_cache())
        .insert_header((header::ETAG, etag.as_str()))
        .insert_header((header::VARY, "Accept-Encoding"))
        .insert_header((header::CONTENT_SECURITY_POLICY, csp))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "strict-origin-when-cross-origin"));
    if cross_origin {
        response.insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"));
    }
    if html {
        // A member's view of the same URL must never be served from a shared cache.
        response.append_header((header::VARY, "Cookie"));
    }
    if gzipped {
        // Already encoded: the compression middleware leaves it alone.
        response.insert_header((header::CONTENT_ENCODING, "gzip"));
    }
    if fresh {
        return response.finish();
    }
    response
        .insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static(r.content_type),
        ))
        .body(body.clone())
}

/// Whether the client takes gzip (`Accept-Encoding`, a zero q-value refusing it).
fn accepts_gzip(req: &HttpRequest) -> bool {
    req.headers()
        .get_all(header::ACCEPT_ENCODING)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let coding = parts.next().unwrap_or_default();
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q == 0.0)
            });
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
        })
}

/// `{page}/unsubscribe?token=…`, the link in every email. `GET` asks (link
/// scanners fetch links; they must not unsubscribe anyone); `POST` — the
/// page's button, or a mail client's one-click `List-Unsubscribe-Post`
/// (RFC 8058) — ends the subscription at once. The signed token names the
/// subscriber; the page must be theirs.
async fn unsubscribe(
    req: &HttpRequest,
    state: &AppState,
    route: Option<PageKey>,
    prefix: &str,
) -> HttpResponse {
    let Some((tenant, page)) = route else {
        return not_found_page();
    };
    let token =
        web::Query::<std::collections::HashMap<String, String>>::from_query(req.query_string())
            .ok()
            .and_then(|q| q.get("token").cloned());
    let Some(subscriber) = token
        .as_deref()
        .and_then(|t| state.links.verify(heliograph_auth::UNSUBSCRIBE_PURPOSE, t))
    else {
        let notice = Notice::LinkNotValid {
            link: Link::Unsubscribe,
        };
        return answer(state, route, prefix, StatusCode::BAD_REQUEST, &notice).await;
    };
    if req.method() == Method::GET || req.method() == Method::HEAD {
        let token = token.unwrap_or_default();
        return answer(
            state,
            route,
            prefix,
            StatusCode::OK,
            &Notice::UnsubscribeAsk { token },
        )
        .await;
    }
    if req.method() != Method::POST {
        return HttpResponse::MethodNotAllowed()
            .insert_header((header::ALLOW, "GET, HEAD, POST"))
            .finish();
    }
    let done = async {
        let mut tx = state.store.tenant_tx(tenant).await?;
        tx.unsubscribe(page, heliograph_domain::SubscriberId::from(subscriber))
            .await?;
        tx.commit().await
    };
    match done.await {
        Ok(()) => answer(state, route, prefix, StatusCode::OK, &Notice::Unsubscribed).await,
        Err(e) => {
            tracing::warn!(error = %e, "unsubscribe failed");
            unavailable()
        }
    }
}

/// The answer when the page's data cannot be read now.
pub(super) fn unavailable() -> HttpResponse {
    HttpResponse::ServiceUnavailable()
        .insert_header((header::RETRY_AFTER, "5"))
        .insert_header(CacheControl(vec![CacheDirective::NoStore]))
        .content_type("text/html; charset=utf-8")
        .body(concat!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Unavailable</title></head>",
            "<body><main><h1>Unavailable</h1><p>This status page cannot be shown right now. Try again in a few seconds.</p></main></body></html>"
        ))
}

/// The answer for a page that does not exist (or a path no page has).
pub(crate) fn not_found_page() -> HttpResponse {
    HttpResponse::NotFound()
        .insert_header(CacheControl(vec![
            CacheDirective::Public,
            CacheDirective::MaxAge(60),
        ]))
        .content_type("text/html; charset=utf-8")
        .body(concat!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Not found</title></head>",
            "<body><main><h1>Not found</h1><p>There is no status page here.</p></main></body></html>"
        ))
}
