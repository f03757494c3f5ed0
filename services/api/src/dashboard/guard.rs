//! What frames every dashboard request, before and after its handler.
//!
//! - [`headers`]: a strict Content-Security-Policy (scripts and styles from
//!   our own origin only, no inline script, no framing, forms post only to
//!   us), `nosniff`, `Referrer-Policy: same-origin`, and `no-store` on
//!   everything but the static assets: the dashboard shows a tenant's data.
//! - [`renew_session`]: a session token lives minutes, a session days; a
//!   browser whose cookie holds a token that expired on a session still
//!   open gets a fresh token, as `POST /v1/sessions/refresh` would give it,
//!   and the request goes on with it.
//! - [`form_csrf`]: a form post must come from our own origin (`Origin`,
//!   and `Sec-Fetch-Site` where the browser sends it), and carries the
//!   session's CSRF token in a hidden `_csrf` field (or, for a file upload,
//!   in the action's query), which is handed to the [`crate::auth::Member`]
//!   extractor as the API's `X-CSRF-Token`: the check itself is the API's.
//! - [`html_errors`]: an [`ApiError`] becomes a page; 401 becomes the
//!   sign-in page, coming back here afterwards.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage, HttpResponse, web};
use tracing_actix_web::RequestId;

use crate::error::ApiError;
use crate::routes::SESSION_COOKIE;
use crate::startup::AppState;

/// The dashboard's Content-Security-Policy.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' https: data:; connect-src 'self'; form-action 'self'; \
    frame-ancestors 'none'; base-uri 'none'";

/// Adds the dashboard's headers to every answer that has not set its own.
pub async fn headers(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let mut res = next.call(req).await?;
    let h = res.headers_mut();
    let mut set = |name: header::HeaderName, value: &'static str| {
        if !h.contains_key(&name) {
            h.insert(name, HeaderValue::from_static(value));
        }
    };
    set(header::CONTENT_SECURITY_POLICY, CSP);
    set(header::X_FRAME_OPTIONS, "DENY");
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(header::REFERRER_POLICY, "same-origin");
    set(header::CACHE_CONTROL, "no-store");
    Ok(res)
}

/// The session cookie's token, read from the `Cookie` headers themselves
/// (not through `HttpRequest::cookies`, whose parse is cached and would keep
/// the old token after a renewal).
fn session_token(req: &ServiceRequest) -> Option<String> {
    cookie_pairs(req)
        .into_iter()
        .find(|(name, _)| name == SESSION_COOKIE)
        .map(|(_, value)| value)
}

/// Every `name=value` of the request's `Cookie` headers.
fn cookie_pairs(req: &ServiceRequest) -> Vec<(String, String)> {
    req.headers()
        .get_all(header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect()
}

/// Renews an expired session token whose session is still open: the
/// request goes on with the new token, and the answer sets it.
pub async fn renew_session<B: MessageBody + 'static>(
    mut req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, Error> {
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let renewed = match (state, session_token(&req)) {
        (Some(state), Some(token)) if state.tokens.verify(&token).is_err() => {
            match renewal(&state, &token).await {
                Ok(renewed) => renewed,
                Err(e) => return Ok(req.error_response(e).map_into_right_body()),
            }
        }
        _ => None,
    };
    if let Some((token, _, _)) = &renewed {
        let others: Vec<String> = cookie_pairs(&req)
            .into_iter()
            .filter(|(name, _)| name != SESSION_COOKIE)
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        let mut all = others;
        all.push(format!("{SESSION_COOKIE}={token}"));
        if let Ok(value) = HeaderValue::from_str(&all.join("; ")) {
            req.headers_mut().insert(header::COOKIE, value);
        }
    }
    let mut res = next.call(req).await?;
    if let Some((token, session, state)) = renewed {
        for cookie in crate::routes::sessions::session_cookies(&state, &token, session) {
            res.response_mut().add_cookie(&cookie)?;
        }
    }
    Ok(res.map_into_left_body())
}

/// A fresh token for an expired one whose session is still open (and is
/// touched, as a refresh touches it).
async fn renewal(
    state: &web::Data<AppState>,
    token: &str,
) -> Result<Option<(String, heliograph_domain::SessionId, web::Data<AppState>)>, ApiError> {
    let Ok(claims) = state.tokens.verify_expired(token) else {
        return Ok(None);
    };
    let mut tx = state.store.tenant_tx(claims.tid).await?;
    let open = tx.touch_session(claims.sid, claims.sub).await?;
    tx.commit().await?;
    if !open {
        return Ok(None);
    }
    let fresh = state
        .tokens
        .issue(claims.sub, claims.tid, claims.sid)
        .map_err(|e| ApiError::Internal(anyhow::Error::new(e)))?;
    Ok(Some((fresh, claims.sid, state.clone())))
}

/// Whether a post comes from a page of ours: `Sec-Fetch-Site` (sent by
/// every current browser) is `same-origin`, and `Origin`, when sent, names
/// the host the request was made to. A client that sends neither is not a
/// browser, and cannot ride a browser's cookies.
fn same_origin(req: &ServiceRequest) -> bool {
    let h = req.headers();
    let site_ok = h
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_none_or(|site| site == "same-origin" || site == "none");
    let origin_ok = match h.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        None => true,
        Some(origin) => {
            let host = h.get(header::HOST).and_then(|v| v.to_str().ok());
            let origin_host = origin.split_once("://").map(|(_, rest)| rest);
            origin_host.is_some() && origin_host == host
        }
    };
    site_ok && origin_ok
}

/// The form field that carries the session's CSRF token.
pub const CSRF_FIELD: &str = "_csrf";

/// Checks a form post's origin, and hands its `_csrf` field to the API's
/// CSRF check as `X-CSRF-Token`.
pub async fn form_csrf<B: MessageBody + 'static>(
    mut req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, Error> {
    if req.method() != Method::POST {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body);
    }
    if !same_origin(&req) {
        // An answer (not an `Err`), so that `html_errors` sees it.
        return Ok(req
            .error_response(ApiError::CsrfFailed)
            .map_into_right_body());
    }
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let token = if content_type.starts_with("application/x-www-form-urlencoded") {
        let body = match req.extract::<web::Bytes>().await {
            Ok(body) => body,
            Err(e) => return Ok(req.error_response(e).map_into_right_body()),
        };
        let token = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body)
            .ok()
            .and_then(|pairs| pairs.into_iter().find(|(k, _)| k == CSRF_FIELD))
            .map(|(_, v)| v);
        let stream: std::pin::Pin<
            Box<dyn futures::Stream<Item = Result<web::Bytes, actix_web::error::PayloadError>>>,
        > = Box::pin(futures::stream::once(async move { Ok(body) }));
        req.set_payload(Payload::from(stream));
        token
    } else {
        // A file upload (multipart) carries it in the action's query.
        web::Query::<Vec<(String, String)>>::from_query(req.query_string())
            .ok()
            .and_then(|q| q.into_inner().into_iter().find(|(k, _)| k == CSRF_FIELD))
            .map(|(_, v)| v)
    };
    if let Some(value) = token.and_then(|t| HeaderValue::from_str(&t).ok()) {
        req.headers_mut()
            .insert(header::HeaderName::from_static("x-csrf-token"), value);
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_left_body)
}

/// Answers an [`ApiError`] as a page of the dashboard; 401 sends the browser
/// to sign in (and back here afterwards).
pub async fn html_errors<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, Error> {
    let back = (req.method() == Method::GET).then(|| req.uri().to_string());
    let request_id = req.extensions().get::<RequestId>().map(ToString::to_string);
    // Every error reaches here as an answer that carries it: the handlers'
    // (actix-web answers them), and the other middleware's (they answer
    // with `ServiceRequest::error_response`).
    let res = next.call(req).await?;
    let Some(page) = res.response().error().map(|e| {
        e.as_error::<ApiError>().map_or_else(
            || ErrorPage::other(e.as_response_error().status_code()),
            error_page_of,
        )
    }) else {
        return Ok(res.map_into_left_body());
    };
    let retry_after = res.headers().get(header::RETRY_AFTER).cloned();
    let (http, _) = res.into_parts();
    let response = if page.status == StatusCode::UNAUTHORIZED {
        let target = match back {
            Some(path) => format!("/login?next={}", crate::dashboard::form::encode(&path)),
            None => "/login".to_owned(),
        };
        HttpResponse::SeeOther()
            .insert_header((header::LOCATION, target))
            .finish()
    } else {
        let mut builder = HttpResponse::build(page.status);
        if let Some(value) = retry_after {
            builder.insert_header((header::RETRY_AFTER, value));
        }
        crate::dashboard::frame::render_error(&mut builder, &page, request_id.as_deref())
    };
    Ok(ServiceResponse::new(http, response).map_into_right_body())
}

/// What an error page says.
#[derive(Debug)]
pub struct ErrorPage {
    /// The answer's status.
    pub status: StatusCode,
    /// Its heading.
    pub title: &'static str,
    /// What happened and what to do, for a person.
    pub detail: String,
}

impl ErrorPage {
    /// An error of actix-web's own (a form it could not read, a body too
    /// large): its status, in words.
    fn other(status: StatusCode) -> Self {
        if status.is_client_error() {
            Self {
                status,
                title: "Please check the form",
                detail: "The request could not be read (a field of the wrong kind, or too \
                         much at once). Go back, check the form and try again."
                    .to_owned(),
            }
        } else {
            Self::internal()
        }
    }

    fn internal() -> Self {
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            title: "Something went wrong",
            detail: "Something went wrong on our side. Try again in a moment; if it keeps \
                     happening, tell us the reference below."
                .to_owned(),
        }
    }
}

fn error_page_of(err: &ApiError) -> ErrorPage {
    let (status, title, detail): (StatusCode, &'static str, String) = match err {
        ApiError::Unauthorized | ApiError::InvalidCredentials => (
            StatusCode::UNAUTHORIZED,
            "Sign in",
            "Sign in to continue.".to_owned(),
        ),
        ApiError::NotFound => (
            StatusCode::NOT_FOUND,
            "Not found",
            "There is nothing here, or nothing your account can see.".to_owned(),
        ),
        ApiError::Forbidden => (
            StatusCode::FORBIDDEN,
            "Not allowed",
            "Your role in this team does not allow this. An admin or an owner can do it, \
             or change your role."
                .to_owned(),
        ),
        ApiError::EmailUnverified => (
            StatusCode::FORBIDDEN,
            "Verify your email address first",
            "Until an owner of this team has verified their email address, nothing goes to \
             addresses the team types in (email and SMS subscribers, invitations) and SMS \
             stays off. The link is in the email we sent when you signed up; your account \
             page can send it again."
                .to_owned(),
        ),
        ApiError::CsrfFailed => (
            StatusCode::FORBIDDEN,
            "This form has expired",
            "The form was sent from another site, or from a page of a session that has \
             ended. Go back, reload the page and try again."
                .to_owned(),
        ),
        ApiError::Conflict { detail, .. } => {
            (StatusCode::CONFLICT, "Conflict", (*detail).to_owned())
        }
        ApiError::Validation(fields) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "Please check the form",
            fields
                .iter()
                .map(|f| format!("{}: {}", f.field, f.message))
                .collect::<Vec<_>>()
                .join("; "),
        ),
        ApiError::MalformedBody(_) | ApiError::UnsupportedMediaType => (
            StatusCode::BAD_REQUEST,
            "Please check the form",
            "The form could not be read. Reload the page and try again.".to_owned(),
        ),
        ApiError::MethodNotAllowed { .. } => (
            StatusCode::METHOD_NOT_ALLOWED,
            "Not here",
            "This address does not take that kind of request.".to_owned(),
        ),
        ApiError::PlanLimit { refusal, .. } => (
            StatusCode::PAYMENT_REQUIRED,
            "Your plan's limit",
            format!(
                "The {} plan's limit on {} is {}. Nothing was added; an owner of the team can \
                 move it to a larger plan.",
                refusal.plan,
                refusal.limit.counted(),
                refusal.allowed
            ),
        ),
        ApiError::RateLimited { retry_after_secs } => (
            StatusCode::TOO_MANY_REQUESTS,
            "Too many tries",
            format!(
                "Too many tries in a short time. Wait {retry_after_secs} seconds and try again."
            ),
        ),
        ApiError::Unavailable | ApiError::DatabaseUnavailable => (
            StatusCode::SERVICE_UNAVAILABLE,
            "Unavailable for a moment",
            "We could not reach our database in time. Your public pages keep being served; \
             try again in a few seconds."
                .to_owned(),
        ),
        ApiError::Stripe { transient } => (
            if *transient {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::BAD_GATEWAY
            },
            "Stripe did not answer",
            "We could not reach Stripe, our payment provider, just now. Nothing was charged              or changed; try again in a moment."
                .to_owned(),
        ),
        ApiError::InvalidSignature => (
            StatusCode::BAD_REQUEST,
            "Not here",
            "This address takes Stripe's signed events only.".to_owned(),
        ),
        ApiError::Internal(_) => return ErrorPage::internal(),
    };
    ErrorPage {
        status,
        title,
        detail,
    }
}
