//! Every route, and the middleware that frames each request.

pub(crate) mod accounts;
pub(crate) mod api_keys;
pub(crate) mod audit;
pub(crate) mod billing;
pub(crate) mod components;
pub(crate) mod deliveries;
pub(crate) mod domains;
pub(crate) mod groups;
pub(crate) mod health;
pub(crate) mod incidents;
pub(crate) mod notices;
pub(crate) mod pages;
mod public;
mod self_service;
pub(crate) mod sessions;
pub(crate) mod signup;
pub(crate) mod subscribers;
pub(crate) mod team;
pub(crate) mod templates;
pub(crate) mod uptime;

pub use public::fast_path;
pub use sessions::SESSION_COOKIE;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage, guard, web};
use tracing::Span;
use tracing_actix_web::{DefaultRootSpanBuilder, RequestId, RootSpanBuilder};

use crate::error::ApiError;
use crate::openapi;

/// Declares a table of routes once. `$register` adds them to an app or a
/// scope (paths relative to it, see [`register_resources`]); `$list`
/// answers each as `(METHOD, full path)`, which the OpenAPI document must
/// cover (the API tests check it).
macro_rules! route_table {
    (
        $(#[$doc:meta])*
        $list:ident, $register:ident, $prefix:literal {
            $($method:ident $path:literal => $handler:path,)*
        }
    ) => {
        $(#[$doc])*
        #[must_use]
        pub fn $list() -> Vec<(&'static str, &'static str)> {
            vec![$((stringify!($method), concat!($prefix, $path))),*]
        }

        fn $register(cfg: &mut web::ServiceConfig) {
            register_resources(
                cfg,
                vec![$((stringify!($method), $path, http_method!($method).to($handler))),*],
            );
        }
    };
}

/// Registers each path of a table once, as a resource serving the methods
/// the table gives it, in the table's order (a fixed path such as
/// `subscribers/count` comes before `subscribers/{id}`, and so wins). Any
/// other method on a path answers 405 `method_not_allowed`, with `Allow`
/// naming the methods the path serves.
pub(crate) fn register_resources(
    cfg: &mut web::ServiceConfig,
    table: Vec<(&'static str, &'static str, actix_web::Route)>,
) {
    let mut by_path: Vec<(&'static str, Vec<(&'static str, actix_web::Route)>)> = Vec::new();
    for (method, path, route) in table {
        match by_path.iter_mut().find(|(p, _)| *p == path) {
            Some((_, routes)) => routes.push((method, route)),
            None => by_path.push((path, vec![(method, route)])),
        }
    }
    for (path, routes) in by_path {
        let allow: Vec<&'static str> = routes.iter().map(|(method, _)| *method).collect();
        let allow = allow.join(", ");
        let resource = routes
            .into_iter()
            .fold(web::resource(path), |resource, (_, route)| {
                resource.route(route)
            });
        cfg.service(resource.default_service(web::to(move || {
            let allow = allow.clone();
            async move { Err::<actix_web::HttpResponse, _>(ApiError::MethodNotAllowed { allow }) }
        })));
    }
}

macro_rules! http_method {
    (GET) => {
        web::get()
    };
    (POST) => {
        web::post()
    };
    (PUT) => {
        web::put()
    };
    (PATCH) => {
        web::patch()
    };
    (DELETE) => {
        web::delete()
    };
}

route_table! {
    /// Liveness and readiness, on the platform host.
    health_routes, register_health, "" {
        GET "/healthz" => health::healthz,
        GET "/readyz" => health::readyz,
    }
}

route_table! {
    /// The management API, under `/v1` on the platform host.
    v1_routes, register_v1, "/v1" {
        POST "/signup" => signup::signup,
        POST "/sessions" => sessions::login,
        POST "/sessions/refresh" => sessions::refresh,
        DELETE "/sessions/current" => sessions::logout,
        GET "/me" => sessions::me,
        PUT "/me/password" => accounts::change_password,
        POST "/password-resets" => accounts::request_reset,
        POST "/password-resets/confirm" => accounts::confirm_reset,
        POST "/email-verifications" => accounts::resend_verification,
        POST "/email-verifications/confirm" => accounts::confirm_verification,
        POST "/api-keys" => api_keys::create,
        GET "/api-keys" => api_keys::list,
        DELETE "/api-keys/{id}" => api_keys::revoke,
        GET "/audit-log" => audit::list,
        GET "/billing" => billing::get,
        GET "/billing/plans" => billing::plans,
        POST "/billing/checkout" => billing::checkout,
        POST "/billing/portal" => billing::portal,
        POST "/billing/stripe-webhook" => billing::stripe_webhook,
        POST "/invitations" => team::invite,
        GET "/invitations" => team::invitations,
        POST "/invitations/accept" => team::accept,
        DELETE "/invitations/{id}" => team::revoke_invitation,
        GET "/members" => team::members,
        PATCH "/members/{user_id}" => team::change_role,
        DELETE "/members/{user_id}" => team::remove,
        GET "/pages" => pages::list,
        POST "/pages" => pages::create,
        GET "/pages/{page_id}" => pages::get,
        PATCH "/pages/{page_id}" => pages::update,
        PUT "/pages/{page_id}" => pages::update,
        GET "/pages/{page_id}/uptime" => uptime::daily,
        GET "/pages/{page_id}/components" => components::list,
        POST "/pages/{page_id}/components" => components::create,
        GET "/pages/{page_id}/components/{id}" => components::get,
        PATCH "/pages/{page_id}/components/{id}" => components::update,
        PUT "/pages/{page_id}/components/{id}" => components::update,
        DELETE "/pages/{page_id}/components/{id}" => components::delete,
        GET "/pages/{page_id}/components/{id}/uptime" => uptime::component,
        GET "/pages/{page_id}/component-groups" => groups::list,
        POST "/pages/{page_id}/component-groups" => groups::create,
        GET "/pages/{page_id}/component-groups/{id}" => groups::get,
        PATCH "/pages/{page_id}/component-groups/{id}" => groups::update,
        PUT "/pages/{page_id}/component-groups/{id}" => groups::update,
        DELETE "/pages/{page_id}/component-groups/{id}" => groups::delete,
        GET "/pages/{page_id}/component-groups/{id}/uptime" => uptime::group,
        POST "/pages/{page_id}/subscribers" => subscribers::create,
        GET "/pages/{page_id}/subscribers" => subscribers::list,
        GET "/pages/{page_id}/subscribers/count" => subscribers::count,
        POST "/pages/{page_id}/subscribers/reactivate" => subscribers::reactivate,
        GET "/pages/{page_id}/subscribers/{id}" => subscribers::get,
        PATCH "/pages/{page_id}/subscribers/{id}" => subscribers::update,
        PUT "/pages/{page_id}/subscribers/{id}" => subscribers::update,
        DELETE "/pages/{page_id}/subscribers/{id}" => subscribers::delete,
        POST "/pages/{page_id}/subscribers/{id}/resend_confirmation" => subscribers::resend_confirmation,
        POST "/pages/{page_id}/subscribers/{id}/test" => subscribers::test,
        GET "/pages/{page_id}/events" => deliveries::events,
        GET "/pages/{page_id}/events/{id}/deliveries" => deliveries::event_deliveries,
        GET "/pages/{page_id}/deliveries" => deliveries::list,
        POST "/pages/{page_id}/deliveries/redrive" => deliveries::redrive,
        GET "/pages/{page_id}/deliveries/{id}" => deliveries::get,
        GET "/pages/{page_id}/incidents" => incidents::list,
        POST "/pages/{page_id}/incidents" => incidents::create,
        GET "/pages/{page_id}/incidents/unresolved" => incidents::unresolved,
        GET "/pages/{page_id}/incidents/upcoming" => incidents::upcoming,
        GET "/pages/{page_id}/incidents/scheduled" => incidents::scheduled,
        GET "/pages/{page_id}/incidents/active_maintenance" => incidents::active_maintenance,
        GET "/pages/{page_id}/incidents/{id}" => incidents::get,
        PATCH "/pages/{page_id}/incidents/{id}" => incidents::update,
        PUT "/pages/{page_id}/incidents/{id}" => incidents::update,
        DELETE "/pages/{page_id}/incidents/{id}" => incidents::delete,
        PATCH "/pages/{page_id}/incidents/{id}/incident_updates/{update_id}" => incidents::edit_update,
        PUT "/pages/{page_id}/incidents/{id}/incident_updates/{update_id}" => incidents::edit_update,
        GET "/pages/{page_id}/incidents/{id}/deliveries" => deliveries::incident_deliveries,
        GET "/pages/{page_id}/incidents/{id}/incident_updates/{update_id}/deliveries" => deliveries::update_deliveries,
        GET "/pages/{page_id}/incidents/{id}/postmortem" => incidents::get_postmortem,
        PUT "/pages/{page_id}/incidents/{id}/postmortem" => incidents::put_postmortem,
        DELETE "/pages/{page_id}/incidents/{id}/postmortem" => incidents::delete_postmortem,
        PUT "/pages/{page_id}/incidents/{id}/postmortem/publish" => incidents::publish_postmortem,
        GET "/pages/{page_id}/incident_templates" => templates::list,
        POST "/pages/{page_id}/incident_templates" => templates::create,
        DELETE "/pages/{page_id}/incident_templates/{id}" => templates::delete,
        GET "/pages/{page_id}/domains" => domains::list,
        POST "/pages/{page_id}/domains" => domains::create,
        GET "/pages/{page_id}/domains/{id}" => domains::get,
        DELETE "/pages/{page_id}/domains/{id}" => domains::delete,
        POST "/pages/{page_id}/domains/{id}/verify" => domains::verify,
    }
}

/// All routes of the public listener. Page hosts (`<slug>.<base domain>`)
/// see only the public page; the platform host serves the API (the tables
/// above, its OpenAPI document and Swagger UI), health checks and
/// `/status/<slug>/` and the team dashboard — and the operators' endpoints only when `operator`
/// (no `ADMIN_ADDR`: they have no listener of their own).
pub fn configure(cfg: &mut web::ServiceConfig, operator: bool) {
    cfg.service(
        web::scope("")
            .guard(guard::fn_guard(public::is_page_host))
            .default_service(web::to(public::by_host)),
    )
    .configure(register_health);
    if operator {
        register_operator(cfg);
    }
    cfg.service(
        web::scope("/v1")
            .wrap(actix_web::middleware::from_fn(
                crate::idempotency::middleware,
            ))
            .wrap(actix_web::middleware::from_fn(nudge_public_pages))
            // Outermost: the deadline covers the idempotency record and the
            // public pages' catch-up as well as the handler.
            .wrap(actix_web::middleware::from_fn(deadline))
            .configure(register_v1)
            .route("/openapi.json", web::get().to(openapi::document))
            .route("/docs", web::get().to(openapi::docs_redirect))
            .service(openapi::swagger_ui()),
    )
    .service(web::scope("/status/{slug}").default_service(web::to(public::by_path)))
    .configure(crate::dashboard::configure)
    .default_service(web::to(not_found));
}

/// The routes of the operators' listener (`ADMIN_ADDR`): health checks and
/// the operators' endpoints, whatever the `Host`.
pub fn configure_admin(cfg: &mut web::ServiceConfig) {
    cfg.configure(register_health);
    register_operator(cfg);
    cfg.default_service(web::to(not_found));
}

/// `/metrics` and `/internal/*`: for the operators' scraper and proxy only.
fn register_operator(cfg: &mut web::ServiceConfig) {
    cfg.route("/metrics", web::get().to(health::metrics))
        .route("/internal/tls/ask", web::get().to(public::tls_ask));
}

/// Answers 503 `database_unavailable` to a request still running after
/// `REQUEST_TIMEOUT_MS`. Redis calls have their own short budget, and a
/// request does no other I/O, so what a request can still be waiting on
/// then is PostgreSQL: a connection that stopped answering while in use
/// (the pool's acquire timeout covers the wait for one). The handler is
/// dropped; its transaction, never committed, is rolled back when the
/// connection answers again. A commit already sent may still land, as with
/// any timeout, and an `Idempotency-Key` the request reserved stays reserved
/// (a retry with it answers 409 `idempotency_in_progress`, as after a crash).
pub(crate) async fn deadline(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let Some(budget) = req
        .app_data::<web::Data<crate::startup::AppState>>()
        .map(|s| s.request_timeout)
    else {
        return next.call(req).await;
    };
    let path = req.path().to_owned();
    if let Ok(response) = tokio::time::timeout(budget, next.call(req)).await {
        response
    } else {
        tracing::warn!(
            path,
            budget_ms = u64::try_from(budget.as_millis()).unwrap_or(u64::MAX),
            "request deadline passed; answering database_unavailable"
        );
        Err(ApiError::DatabaseUnavailable.into())
    }
}

/// After a successful change through the API or the dashboard, the public pages catch up
/// here before the answer goes out (so the caller reads its own change back),
/// and on every other replica at once (a change that touched no page costs
/// one cheap read of `page_changes`).
pub(crate) async fn nudge_public_pages(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let unsafe_method = !req.method().is_safe();
    let pages = req
        .app_data::<web::Data<crate::startup::AppState>>()
        .map(|s| std::sync::Arc::clone(&s.pages));
    let response = next.call(req).await?;
    // A dashboard form answers a change with a redirect (303), the API with 2xx.
    let changed = response.status().is_success() || response.status().is_redirection();
    if unsafe_method
        && changed
        && let Some(pages) = pages
    {
        pages.changed().await;
    }
    Ok(response)
}

/// Nothing here: the API's JSON error under `/v1`, a plain page elsewhere
/// (hosts that are neither the platform's nor a page's end up here too).
pub(crate) async fn not_found(
    req: actix_web::HttpRequest,
) -> Result<actix_web::HttpResponse, ApiError> {
    if req.path() == "/v1" || req.path().starts_with("/v1/") {
        Err(ApiError::NotFound)
    } else {
        Ok(public::not_found_page())
    }
}

/// The root span of each request: the fields of tracing-actix-web's own
/// (OpenTelemetry's names), with two differences that keep secrets and lies
/// out of it — `http.target` shows query values only for parameters known
/// to be harmless (a link's `token`, a search's text show as `[redacted]`),
/// and `http.client_ip` is the address [`crate::auth::client_ip`] trusts
/// (the one rate limits and the audit log use), not the first
/// `X-Forwarded-For` entry, which the client writes. Plus `tenant.id` and
/// `actor`, which the `Member` extractor fills in.
pub struct RequestSpan;

impl RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let user_agent = request
            .headers()
            .get(actix_web::http::header::USER_AGENT)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        let route = request.match_pattern().unwrap_or_else(|| "default".into());
        let method = request.method().as_str();
        let client_ip = crate::auth::client_ip(request.request())
            .map(|ip| ip.to_string())
            .unwrap_or_default();
        let request_id = request
            .extensions()
            .get::<RequestId>()
            .map(ToString::to_string)
            .unwrap_or_default();
        let connection = request.connection_info();
        tracing::info_span!(
            "HTTP request",
            http.method = %method,
            http.route = %route,
            http.flavor = http_flavor(request.version()),
            http.scheme = %connection.scheme(),
            http.host = %connection.host(),
            http.client_ip = %client_ip,
            http.user_agent = %user_agent,
            http.target = %loggable_target(request.uri()),
            http.status_code = tracing::field::Empty,
            otel.name = %format!("{method} {route}"),
            otel.kind = "server",
            otel.status_code = tracing::field::Empty,
            trace_id = tracing::field::Empty,
            request_id = %request_id,
            exception.message = tracing::field::Empty,
            exception.details = tracing::field::Empty,
            tenant.id = tracing::field::Empty,
            actor = tracing::field::Empty,
            page.id = tracing::field::Empty,
        )
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        DefaultRootSpanBuilder::on_request_end(span, outcome);
    }
}

fn http_flavor(version: actix_web::http::Version) -> &'static str {
    use actix_web::http::Version;
    match version {
        Version::HTTP_09 => "0.9",
        Version::HTTP_10 => "1.0",
        Version::HTTP_2 => "2.0",
        Version::HTTP_3 => "3.0",
        _ => "1.1",
    }
}

/// Query parameters whose values say nothing about anyone: pagination and
/// the list filters. Every other value is left out of logs and spans —
/// link tokens above all, and search text (`q`), which may be an address.
const LOGGED_QUERY_PARAMETERS: &[&str] = &[
    "page", "per_page", "limit", "status", "type", "state", "channel", "since", "until", "before",
    "days", "start", "end",
];

/// The request's path and query as logs may show them: each query value
/// that is not of [`LOGGED_QUERY_PARAMETERS`] becomes `[redacted]` (its name
/// stays, for debugging).
pub(crate) fn loggable_target(uri: &actix_web::http::Uri) -> String {
    let Some(query) = uri.query() else {
        return uri.path().to_owned();
    };
    let mut shown = String::with_capacity(uri.path().len() + query.len() + 1);
    shown.push_str(uri.path());
    for (i, pair) in query.split('&').enumerate() {
        shown.push(if i == 0 { '?' } else { '&' });
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        if LOGGED_QUERY_PARAMETERS.contains(&name) {
            shown.push_str(pair);
        } else if !value.is_empty() && is_plain_name(name) {
            shown.push_str(name);
            shown.push_str("=[redacted]");
        } else {
            // A bare word, or a name that is not one of ours, could itself be the secret.
            shown.push_str("[redacted]");
        }
    }
    shown
}

fn is_plain_name(name: &str) -> bool {
    (1..=40).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// Answers the request id in `X-Request-Id`, so a user's report can be matched to the logs.
pub async fn request_id_header(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let id = req.extensions().get::<RequestId>().copied();
    let mut res = next.call(req).await?;
    if let Some(value) = id.and_then(|id| HeaderValue::from_str(&id.to_string()).ok()) {
        res.headers_mut()
            .insert(HeaderName::from_static("x-request-id"), value);
    }
    Ok(res)
}

/// Parses an id from the path; anything that is not an id is simply not found.
pub(crate) fn path_id<T: std::str::FromStr>(raw: &str) -> Result<T, ApiError> {
    raw.parse().map_err(|_| ApiError::NotFound)
}

#[cfg(test)]
mod tests {
    use super::loggable_target;

    #[test]
    fn logged_targets_keep_filters_and_redact_every_other_value() {
        let shown = |uri: &str| loggable_target(&uri.parse().unwrap());
        assert_eq!(shown("/v1/pages"), "/v1/pages");
        assert_eq!(
            shown("/status/acme/unsubscribe?token=abc.def"),
            "/status/acme/unsubscribe?token=[redacted]"
        );
        assert_eq!(
            shown("/v1/pages/x/subscribers?page=2&q=ann%40example.com&type=email"),
            "/v1/pages/x/subscribers?page=2&q=[redacted]&type=email"
        );
        assert_eq!(shown("/x?t%6Fken=abc"), "/x?[redacted]");
        assert_eq!(shown("/x?abc.def"), "/x?[redacted]");
    }
}
