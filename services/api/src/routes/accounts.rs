//! Account links: password reset and email verification.
//!
//! Signing and checking the links' tokens is `heliograph-auth`'s; the emails
//! are `heliograph-notify`'s, sent by the worker.

use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, web};
use anyhow::Context;
use heliograph_domain::{EmailAddress, FieldError, Password};
use heliograph_store::LinkProblem;
use serde::Deserialize;

use crate::auth::{Member, client_ip};
use crate::error::{ApiError, Fields, required};
use crate::limits::{Bucket, client_key};
use crate::openapi::{
    BadRequest, Conflict, Forbidden, TooManyRequests, Unauthorized, ValidationFailed,
};
use crate::startup::AppState;

/// How long a password-reset link works.
const RESET_LIFETIME: Duration = Duration::from_secs(3600);
/// How long an email-verification link works.
pub const VERIFY_LIFETIME: Duration = Duration::from_secs(24 * 3600);

fn link_error(problem: LinkProblem) -> ApiError {
    let (code, message) = match problem {
        LinkProblem::Unknown => ("invalid", "is not a valid link"),
        LinkProblem::Used => ("used", "has been used already"),
        LinkProblem::Expired => ("expired", "has expired; ask for a new one"),
    };
    ApiError::field(FieldError::new("token", code, message))
}

/// `{"email"}`.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct ResetRequest {
    #[schema(format = Email, max_length = 254)]
    pub(crate) email: Option<String>,
}

/// Emails a password-reset link, if the address has an account.
///
/// Always 202, so the answer says nothing about who has one. The link works
/// for an hour; past 5 requests an hour for an address nothing more is sent,
/// and the answer stays 202.
#[utoipa::path(
    post,
    path = "/v1/password-resets",
    tag = "accounts",
    operation_id = "request_password_reset",
    request_body(content = ResetRequest, content_type = "application/json"),
    responses(
        (status = 202, description = "Sent, if the address has an account."),
        BadRequest, ValidationFailed, TooManyRequests,
    ),
)]
pub async fn request_reset(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<ResetRequest>,
) -> Result<HttpResponse, ApiError> {
    send_reset_link(&req, &state, body.into_inner()).await?;
    Ok(HttpResponse::Accepted().finish())
}

/// Emails a password-reset link if the address has an account; answers
/// the same (nothing) whether it has one or not: for the API and the
/// dashboard alike.
pub(crate) async fn send_reset_link(
    req: &HttpRequest,
    state: &AppState,
    body: ResetRequest,
) -> Result<(), ApiError> {
    let email = required("email", body.email)
        .and_then(|e| EmailAddress::parse("email", &e))
        .map_err(ApiError::field)?;
    state
        .limiter
        .hit_client(Bucket::ResetByIp, client_ip(req))
        .await?;
    let fingerprint = heliograph_auth::fingerprint(&email.as_str().to_lowercase());
    // Over the per-address cap, nothing more is sent, but the answer stays
    // 202: a 429 here would let a stranger stop the owner's own requests.
    if state
        .limiter
        .hit(Bucket::ResetByEmail, &fingerprint)
        .await
        .is_err()
    {
        return Ok(());
    }
    if let Some(user) = state.store.user_credentials(&email).await? {
        state
            .store
            .create_account_link(user.id, "password_reset", RESET_LIFETIME)
            .await?;
    }
    Ok(())
}

/// `{"token", "password"}`.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct ResetConfirm {
    /// The token from the emailed link.
    pub(crate) token: Option<String>,
    /// The new password, 10 to 256 characters.
    #[schema(min_length = 10, max_length = 256)]
    pub(crate) password: Option<String>,
}

/// Sets a new password with a reset link's token.
///
/// Uses the link up and ends every session of the account. A bad token is
/// a 422 on `token` with code `invalid`, `used` or `expired`.
#[utoipa::path(
    post,
    path = "/v1/password-resets/confirm",
    tag = "accounts",
    operation_id = "confirm_password_reset",
    request_body(content = ResetConfirm, content_type = "application/json"),
    responses(
        (status = 204, description = "The password is changed."),
        BadRequest, ValidationFailed,
    ),
)]
pub async fn confirm_reset(
    state: web::Data<AppState>,
    body: web::Json<ResetConfirm>,
) -> Result<HttpResponse, ApiError> {
    set_password_with_link(&state, body.into_inner())
        .await?
        .map_err(link_error)?;
    Ok(HttpResponse::NoContent().finish())
}

/// Sets a new password with a reset link's token (using the link up and
/// ending every session of the account): for the API and the dashboard.
/// A link that does not work is the inner error.
pub(crate) async fn set_password_with_link(
    state: &AppState,
    body: ResetConfirm,
) -> Result<Result<(), LinkProblem>, ApiError> {
    let mut f = Fields::default();
    let token = f.check(required("token", body.token));
    let password =
        f.check(required("password", body.password).and_then(|p| Password::parse("password", &p)));
    let (Some(token), Some(password)) = (token, password) else {
        return Err(f.into_error());
    };
    let Some(link) = state.links.verify("password_reset", &token) else {
        return Ok(Err(LinkProblem::Unknown));
    };
    let hash = web::block(move || heliograph_auth::hash_password(&password))
        .await
        .context("Failed to run password hashing")?
        .context("Failed to hash a password")?;
    let user = match state.store.reset_password(link, &hash).await? {
        Ok(user) => user,
        Err(problem) => return Ok(Err(problem)),
    };
    tracing::info!(user.id = %user, "password reset; sessions ended");
    Ok(Ok(()))
}

/// `{"token"}`.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct VerifyConfirm {
    /// The token from the emailed link.
    pub(crate) token: Option<String>,
}

/// Marks the address verified, with a verification link's token.
///
/// A bad token is a 422 on `token` with code `invalid`, `used` or `expired`.
#[utoipa::path(
    post,
    path = "/v1/email-verifications/confirm",
    tag = "accounts",
    operation_id = "confirm_email_verification",
    request_body(content = VerifyConfirm, content_type = "application/json"),
    responses(
        (status = 204, description = "The address is verified."),
        BadRequest, ValidationFailed,
    ),
)]
pub async fn confirm_verification(
    state: web::Data<AppState>,
    body: web::Json<VerifyConfirm>,
) -> Result<HttpResponse, ApiError> {
    verify_with_link(&state, body.into_inner())
        .await?
        .map_err(link_error)?;
    Ok(HttpResponse::NoContent().finish())
}

/// Marks the address verified with a verification link's token: for the
/// API and the dashboard alike. A link that does not work is the inner
/// error.
pub(crate) async fn verify_with_link(
    state: &AppState,
    body: VerifyConfirm,
) -> Result<Result<(), LinkProblem>, ApiError> {
    let token = required("token", body.token).map_err(ApiError::field)?;
    let Some(link) = state.links.verify("verify_email", &token) else {
        return Ok(Err(LinkProblem::Unknown));
    };
    Ok(state.store.verify_email(link).await?.map(|_| ()))
}

/// Sends the signed-in person a new email-verification link.
///
/// The previous link stops working; 5 an hour. People only: an API key is
/// refused (403). The owner made by a signup with an address that has an
/// account (see signup) gets the same answer, and nothing is sent: the
/// address is someone else's.
#[utoipa::path(
    post,
    path = "/v1/email-verifications",
    tag = "accounts",
    operation_id = "resend_email_verification",
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 202, description = "A new link is on its way."),
        Unauthorized, Forbidden, Conflict, TooManyRequests,
    ),
)]
pub async fn resend_verification(
    member: Member,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    send_verification(&state, &member).await?;
    Ok(HttpResponse::Accepted().finish())
}

/// Sends the signed-in person a new verification link (nothing to a
/// shadow account, answered the same): for the API and the dashboard.
pub(crate) async fn send_verification(state: &AppState, member: &Member) -> Result<(), ApiError> {
    let (user, _) = member.person()?;
    if state.store.email_verified(user).await? {
        return Err(ApiError::Conflict {
            code: "already_verified",
            detail: "This address is verified already.",
        });
    }
    state
        .limiter
        .hit(Bucket::VerifyByUser, &user.to_string())
        .await?;
    if state.store.is_shadow(user).await? {
        return Ok(());
    }
    state
        .store
        .create_account_link(user, "verify_email", VERIFY_LIFETIME)
        .await?;
    Ok(())
}

/// `{"current_password", "new_password"}`.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct PasswordChange {
    pub(crate) current_password: Option<String>,
    /// 10 to 256 characters.
    #[schema(min_length = 10, max_length = 256)]
    pub(crate) new_password: Option<String>,
}

/// Changes the signed-in person's password.
///
/// Needs the current password (a wrong one is 401 `invalid_credentials`);
/// every other session of the account (on every tenant) ends at once.
/// People only: an API key is refused (403).
#[utoipa::path(
    put,
    path = "/v1/me/password",
    tag = "accounts",
    operation_id = "change_password",
    security(("bearer" = []), ("cookie" = [])),
    request_body(content = PasswordChange, content_type = "application/json"),
    responses(
        (status = 204, description = "The password is changed."),
        BadRequest, Unauthorized, Forbidden, ValidationFailed, TooManyRequests,
    ),
)]
pub async fn change_password(
    req: HttpRequest,
    member: Member,
    state: web::Data<AppState>,
    body: web::Json<PasswordChange>,
) -> Result<HttpResponse, ApiError> {
    set_password(&req, &state, &member, body.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Changes the signed-in person's password, given the current one, and
/// ends their other sessions: for the API and the dashboard alike.
pub(crate) async fn set_password(
    req: &HttpRequest,
    state: &AppState,
    member: &Member,
    body: PasswordChange,
) -> Result<(), ApiError> {
    let (user, session) = member.person()?;
    // Guessing the current password is slowed like guessing at sign-in.
    let ip = client_ip(req);
    let client = client_key(ip);
    state.limiter.hit_client(Bucket::LoginByIp, ip).await?;
    state
        .limiter
        .hit(Bucket::LoginByEmailAndIp, &format!("user:{user}|{client}"))
        .await?;
    let mut f = Fields::default();
    let current = f.check(required("current_password", body.current_password));
    let new = f.check(
        required("new_password", body.new_password)
            .and_then(|p| Password::parse("new_password", &p)),
    );
    let (Some(current), Some(new)) = (current, new) else {
        return Err(f.into_error());
    };
    let stored = state.store.password_hash(user).await?;
    let matches = web::block(move || heliograph_auth::verify_password(&stored, &current))
        .await
        .context("Failed to run password verification")?;
    if !matches {
        return Err(ApiError::InvalidCredentials);
    }
    let hash = web::block(move || heliograph_auth::hash_password(&new))
        .await
        .context("Failed to run password hashing")?
        .context("Failed to hash a password")?;
    state.store.change_password(user, &hash, session).await?;
    Ok(())
}
