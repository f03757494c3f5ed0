//! Every route, and the middleware that frames each request.

mod accounts;
mod api_keys;
mod audit;
mod components;
mod groups;
mod health;
mod incidents;
mod pages;
mod public;
mod sessions;
mod signup;
mod subscribers;
mod team;
mod templates;
mod uptime;

pub use sessions::SESSION_COOKIE;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage, guard, web};
use tracing::Span;
use tracing_actix_web::{DefaultRootSpanBuilder, RequestId, RootSpanBuilder};

use crate::error::ApiError;

/// All routes. Page hosts (`<slug>.<base domain>`) see only the public page;
/// the platform host serves the API, health checks and `/status/<slug>/`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("")
            .guard(guard::fn_guard(public::is_page_host))
            .route("/", web::get().to(public::page_by_host))
            .route(
                "/api/v2/summary.json",
                web::get().to(public::summary_by_host),
            )
            .default_service(web::to(public::not_found)),
    )
    .route("/healthz", web::get().to(health::healthz))
    .route("/readyz", web::get().to(health::readyz))
    .service(
        web::scope("/v1")
            .wrap(actix_web::middleware::from_fn(
                crate::idempotency::middleware,
            ))
            .route("/signup", web::post().to(signup::signup))
            .route("/sessions", web::post().to(sessions::login))
            .route("/sessions/refresh", web::post().to(sessions::refresh))
            .route("/sessions/current", web::delete().to(sessions::logout))
            .route("/me", web::get().to(sessions::me))
            .route("/me/password", web::put().to(accounts::change_password))
            .route("/password-resets", web::post().to(accounts::request_reset))
            .route(
                "/password-resets/confirm",
                web::post().to(accounts::confirm_reset),
            )
            .route(
                "/email-verifications",
                web::post().to(accounts::resend_verification),
            )
            .route(
                "/email-verifications/confirm",
                web::post().to(accounts::confirm_verification),
            )
            .route("/api-keys", web::post().to(api_keys::create))
            .route("/api-keys", web::get().to(api_keys::list))
            .route("/api-keys/{id}", web::delete().to(api_keys::revoke))
            .route("/audit-log", web::get().to(audit::list))
            .route("/invitations", web::post().to(team::invite))
            .route("/invitations", web::get().to(team::invitations))
            .route("/invitations/accept", web::post().to(team::accept))
            .route(
                "/invitations/{id}",
                web::delete().to(team::revoke_invitation),
            )
            .route("/members", web::get().to(team::members))
            .route("/members/{user_id}", web::patch().to(team::change_role))
            .route("/members/{user_id}", web::delete().to(team::remove))
            .route("/pages", web::get().to(pages::list))
            .route("/pages", web::post().to(pages::create))
            .route("/pages/{page_id}", web::get().to(pages::get))
            .route("/pages/{page_id}", web::patch().to(pages::update))
            .route("/pages/{page_id}", web::put().to(pages::update))
            .route("/pages/{page_id}/uptime", web::get().to(uptime::daily))
            .route(
                "/pages/{page_id}/components",
                web::get().to(components::list),
            )
            .route(
                "/pages/{page_id}/components",
                web::post().to(components::create),
            )
            .route(
                "/pages/{page_id}/components/{id}",
                web::get().to(components::get),
            )
            .route(
                "/pages/{page_id}/components/{id}",
                web::patch().to(components::update),
            )
            .route(
                "/pages/{page_id}/components/{id}",
                web::put().to(components::update),
            )
            .route(
                "/pages/{page_id}/components/{id}",
                web::delete().to(components::delete),
            )
            .route(
                "/pages/{page_id}/components/{id}/uptime",
                web::get().to(uptime::component),
            )
            .route(
                "/pages/{page_id}/component-groups",
                web::get().to(groups::list),
            )
            .route(
                "/pages/{page_id}/component-groups",
                web::post().to(groups::create),
            )
            .route(
                "/pages/{page_id}/component-groups/{id}",
                web::get().to(groups::get),
            )
            .route(
                "/pages/{page_id}/component-groups/{id}",
                web::patch().to(groups::update),
            )
            .route(
                "/pages/{page_id}/component-groups/{id}",
                web::put().to(groups::update),
            )
            .route(
                "/pages/{page_id}/component-groups/{id}",
                web::delete().to(groups::delete),
            )
            .route(
                "/pages/{page_id}/component-groups/{id}/uptime",
                web::get().to(uptime::group),
            )
            .route(
                "/pages/{page_id}/subscribers",
                web::post().to(subscribers::create),
            )
            .route("/pages/{page_id}/incidents", web::get().to(incidents::list))
            .route(
                "/pages/{page_id}/incidents",
                web::post().to(incidents::create),
            )
            .route(
                "/pages/{page_id}/incidents/unresolved",
                web::get().to(incidents::unresolved),
            )
            .route(
                "/pages/{page_id}/incidents/upcoming",
                web::get().to(incidents::upcoming),
            )
            .route(
                "/pages/{page_id}/incidents/scheduled",
                web::get().to(incidents::scheduled),
            )
            .route(
                "/pages/{page_id}/incidents/active_maintenance",
                web::get().to(incidents::active_maintenance),
            )
            .route(
                "/pages/{page_id}/incidents/{id}",
                web::get().to(incidents::get),
            )
            .route(
                "/pages/{page_id}/incidents/{id}",
                web::patch().to(incidents::update),
            )
            .route(
                "/pages/{page_id}/incidents/{id}",
                web::put().to(incidents::update),
            )
            .route(
                "/pages/{page_id}/incidents/{id}",
                web::delete().to(incidents::delete),
            )
            .route(
                "/pages/{page_id}/incidents/{id}/incident_updates/{update_id}",
                web::patch().to(incidents::edit_update),
            )
            .route(
                "/pages/{page_id}/incidents/{id}/incident_updates/{update_id}",
                web::put().to(incidents::edit_update),
            )
            .route(
                "/pages/{page_id}/incidents/{id}/postmortem",
                web::get().to(incidents::get_postmortem),
            )
            .route(
                "/pages/{page_id}/incidents/{id}/postmortem",
                web::put().to(incidents::put_postmortem),
            )
            .route(
                "/pages/{page_id}/incidents/{id}/postmortem",
                web::delete().to(incidents::delete_postmortem),
            )
            .route(
                "/pages/{page_id}/incidents/{id}/postmortem/publish",
                web::put().to(incidents::publish_postmortem),
            )
            .route(
                "/pages/{page_id}/incident_templates",
                web::get().to(templates::list),
            )
            .route(
                "/pages/{page_id}/incident_templates",
                web::post().to(templates::create),
            )
            .route(
                "/pages/{page_id}/incident_templates/{id}",
                web::delete().to(templates::delete),
            ),
    )
    .service(
        web::scope("/status/{slug}")
            .route("", web::get().to(public::page_by_path))
            .route("/", web::get().to(public::page_by_path))
            .route(
                "/api/v2/summary.json",
                web::get().to(public::summary_by_path),
            )
            .default_service(web::to(public::not_found)),
    )
    .default_service(web::to(not_found));
}

async fn not_found() -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::NotFound)
}

/// The root span of each request: tracing-actix-web's, with a `tenant.id`
/// field that the `Member` extractor fills in.
pub struct RequestSpan;

impl RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        tracing_actix_web::root_span!(
            request,
            tenant.id = tracing::field::Empty,
            actor = tracing::field::Empty
        )
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        DefaultRootSpanBuilder::on_request_end(span, outcome);
    }
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
fn path_id<T: std::str::FromStr>(raw: &str) -> Result<T, ApiError> {
    raw.parse().map_err(|_| ApiError::NotFound)
}
