//! Public pages: by host (`<slug>.<base domain>`) and by path
//! (`/status/<slug>/…` on the platform host), answered from the page's
//! in-memory snapshot (see `public_pages`).
//!
//! The subscription forms are `self_service`'s and the words of the small
//! pages `notices`'; the page's documents are rendered by `heliograph-web`
//! and kept by `public_pages`.

use std::sync::atomic::Ordering;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::guard::GuardContext;
use actix_web::http::header::{
    self, AcceptEncoding, CacheControl, CacheDirective, Encoding, HeaderValue,
};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{HttpMessage as _, HttpRequest, HttpResponse, web};
use heliograph_web::Audience;
use tracing_actix_web::RootSpanBuilder;

use super::notices::{Link, Notice, answer};
use super::self_service;
use crate::auth;
use crate::public_pages::{Base, Doc, Lookup, PageKey, Snapshot, render};
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
    if let Some(doc) = doc {
        let Some(stored) = state.pages.doc(&snapshot, doc, base) else {
            return not_found_page();
        };
        let gzipped = stored.gzip.as_ref().filter(|_| accepts_gzip(req.headers()));
        let (body, etag) = match (gzipped, &stored.gzip_headers) {
            (Some(gz), Some(headers)) => (gz.clone(), &headers.etag),
            _ => (
                state.pages.plain(&snapshot, stored),
                &stored.plain_headers.etag,
            ),
        };
        return respond(
            req,
            Answer {
                body,
                etag: etag.to_str().unwrap_or_default(),
                gzipped: gzipped.is_some(),
                content_type: doc.content_type(),
            },
            doc.cross_origin(),
            html,
            doc.content_security_policy(),
        );
    }
    let rendered = match incident {
        Some(id) => state.pages.incident(&snapshot, id, base).await,
        None => Ok(None),
    };
    match rendered {
        Ok(Some(r)) => {
            let (body, etag, gzipped) = match &r.gzip {
                Some((gz, etag)) if accepts_gzip(req.headers()) => (gz, etag, true),
                _ => (&r.body, &r.etag, false),
            };
            respond(
                req,
                Answer {
                    body: body.clone(),
                    etag,
                    gzipped,
                    content_type: r.content_type,
                },
                false,
                html,
                Doc::Page.content_security_policy(),
            )
        }
        Ok(None) => not_found_page(),
        Err(e) => {
            tracing::warn!(error = %e, "a past incident's page could not be read");
            unavailable()
        }
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
    // Read afresh: the snapshot keeps no uptime bars (its HTML has them),
    // and a member's view is per request anyway.
    let page = match state
        .pages
        .read_public(snapshot.tenant_id, snapshot.page_id)
        .await
    {
        Ok(Some(page)) => page,
        Ok(None) => return None,
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "a member's view of the page could not be read");
            return Some(unavailable());
        }
    };
    let body = match (doc, incident) {
        (Some(doc), _) => render(&page, doc, Audience::Members, prefix).ok()?,
        (None, Some(id)) => heliograph_web::render_incident(&page, Audience::Members, prefix, id)
            .ok()
            .flatten()?,
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

/// The bytes chosen for a request, and what describes them.
struct Answer<'a> {
    body: web::Bytes,
    etag: &'a str,
    gzipped: bool,
    content_type: &'static str,
}

/// Whether `If-None-Match` names this validator (weak or strong) or `*`.
fn not_modified(headers: &header::HeaderMap, etag: &str) -> bool {
    headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .map(|t| t.trim().trim_start_matches("W/"))
                .any(|t| t == etag || t == "*")
        })
}

fn respond(
    req: &HttpRequest,
    answer: Answer<'_>,
    cross_origin: bool,
    html: bool,
    csp: &'static str,
) -> HttpResponse {
    let Answer {
        body,
        etag,
        gzipped,
        content_type,
    } = answer;
    let fresh = not_modified(req.headers(), etag);
    let mut response = if fresh {
        HttpResponse::build(StatusCode::NOT_MODIFIED)
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header(public_cache())
        .insert_header((header::ETAG, etag))
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
        .insert_header((header::CONTENT_TYPE, HeaderValue::from_static(content_type)))
        .body(body)
}

/// Whether the client takes gzip (`Accept-Encoding`, a zero q-value refusing it).
fn accepts_gzip(headers: &header::HeaderMap) -> bool {
    headers
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

/// One request in this many answered by the [`fast_path`] gets the root
/// span every other request gets (the same fields, see
/// [`super::RequestSpan`]): a trace of what page traffic does, without the
/// cost of a span per request when a page is read hardest.
pub const FAST_PATH_SPAN_ONE_IN: u64 = 1024;

/// Answers a page's documents (`GET`, `HEAD`) ahead of the middleware
/// stack: no span (but one request in [`FAST_PATH_SPAN_ONE_IN`]), no
/// routing, no compression negotiation beyond what chooses between the
/// snapshot's bytes, headers copied from the snapshot's [`HeaderBlock`]s.
/// Counted on `/metrics` (`heliograph_page_fast_answers_total`).
///
/// It answers only what the general path would answer with the same bytes
/// and headers (`X-Request-Id` included), and leaves everything else to it
/// (`next`): a page not held (it needs building), incident pages and forms,
/// unknown hosts, slugs and paths, the HTML on the platform host for a
/// request with a session cookie (a member's view), and a client whose
/// `Accept-Encoding` would have the compression middleware compress on the
/// fly (a small document to a client that takes gzip) or refuse (406).
///
/// [`HeaderBlock`]: crate::public_pages::HeaderBlock
pub async fn fast_path<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    match fast_answer(&req) {
        Some(response) => Ok(req.into_response(response).map_into_right_body()),
        None => next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body),
    }
}

fn fast_answer(req: &ServiceRequest) -> Option<HttpResponse> {
    let state = req.app_data::<web::Data<AppState>>()?;
    if !state.page_fast_path || (req.method() != Method::GET && req.method() != Method::HEAD) {
        return None;
    }
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(crate::public_pages::lowercase);
    let page_host = host
        .as_deref()
        .and_then(|host| match state.urls.slug_for_host(host) {
            Some(slug) => Some(state.pages.route_by_slug(slug)),
            None => state.pages.route_by_host(host).map(Some),
        });
    let (route, path, base) = match page_host {
        Some(route) => (route?, req.path(), Base::Host),
        None => {
            let rest = req.path().strip_prefix("/status/")?;
            let (slug, path) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
            (state.pages.route_by_slug(slug)?, path, Base::Path)
        }
    };
    let doc = Doc::from_path(path)?;
    if base == Base::Path && !doc.cross_origin() && req.cookie(super::SESSION_COOKIE).is_some() {
        return None;
    }
    let snapshot = state.pages.cached(route.1)?;
    let stored = state.pages.doc(&snapshot, doc, &base)?;
    // What the compression middleware would do with the general path's answer.
    let negotiated = match req.get_header::<AcceptEncoding>() {
        None => Encoding::identity(),
        Some(accepted) => accepted
            .negotiate([Encoding::identity(), Encoding::gzip(), Encoding::deflate()].iter())?,
    };
    let gzip = stored.gzip.as_ref().filter(|_| accepts_gzip(req.headers()));
    if gzip.is_none() && negotiated != Encoding::identity() {
        return None;
    }
    let block = match gzip {
        Some(_) => stored.gzip_headers.as_ref()?,
        None => &stored.plain_headers,
    };
    state.pages.touch(&snapshot);
    let fresh = not_modified(req.headers(), block.etag.to_str().unwrap_or_default());
    let mut response = if fresh {
        HttpResponse::build(StatusCode::NOT_MODIFIED).finish()
    } else {
        let body = match gzip {
            Some(gz) => gz.clone(),
            None => state.pages.plain(&snapshot, stored),
        };
        HttpResponse::with_body(StatusCode::OK, body).map_into_boxed_body()
    };
    let out = response.headers_mut();
    block.write(out, fresh);
    let id = uuid::Uuid::new_v4();
    let mut buffer = uuid::Uuid::encode_buffer();
    if let Ok(value) = HeaderValue::from_str(id.hyphenated().encode_lower(&mut buffer)) {
        out.insert(header::HeaderName::from_static("x-request-id"), value);
    }
    let answered = state
        .pages
        .stats
        .fast_answers
        .fetch_add(1, Ordering::Relaxed);
    if answered % FAST_PATH_SPAN_ONE_IN == 0 {
        let span = <super::RequestSpan as RootSpanBuilder>::on_request_start(req);
        span.record("request_id", tracing::field::display(id));
        span.record("page.id", tracing::field::display(route.1));
        span.record("http.status_code", i32::from(response.status().as_u16()));
        span.record("otel.status_code", "OK");
    }
    Some(response)
}
