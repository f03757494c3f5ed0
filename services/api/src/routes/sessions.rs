//! Sessions: sign in, refresh, sign out, and who am I.

use actix_web::cookie::time::Duration as CookieDuration;
use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder, web};
use anyhow::Context;
use heliograph_domain::{EmailAddress, FieldError, SessionId, TenantId, UserId};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::Member;
use crate::error::{ApiError, Fields, required};
use crate::limits::{Bucket, client_key};
use crate::startup::AppState;

fn memberships_json(memberships: &[heliograph_store::MembershipSummary]) -> Value {
    memberships
        .iter()
        .map(|m| json!({"tenant_id": m.tenant_id, "slug": m.slug, "name": m.name, "role": m.role}))
        .collect()
}

/// The browser's session cookie: HttpOnly, so scripts never see the token.
pub const SESSION_COOKIE: &str = "heliograph_session";
/// The CSRF cookie: readable by the dashboard's scripts, which echo it in
/// `X-CSRF-Token` on every state-changing request made with the cookie.
pub const CSRF_COOKIE: &str = "heliograph_csrf";

/// The CSRF token of a session (an HMAC of its id: nothing to store).
pub fn csrf_token(state: &AppState, session: SessionId) -> String {
    state.links.sign("csrf", session.as_uuid())
}

fn cookie(
    name: &'static str,
    value: String,
    http_only: bool,
    max_age_secs: i64,
) -> Cookie<'static> {
    Cookie::build(name, value)
        .path("/")
        .secure(true)
        .http_only(http_only)
        .same_site(SameSite::Lax)
        .max_age(CookieDuration::seconds(max_age_secs))
        .finish()
}

/// A response carrying `body`, plus the browser cookies of `token`.
fn with_cookies(
    mut response: HttpResponseBuilder,
    state: &AppState,
    token: &str,
    session: SessionId,
    body: &Value,
) -> HttpResponse {
    let ttl = state.tokens.ttl().whole_seconds();
    response
        .cookie(cookie(SESSION_COOKIE, token.to_owned(), true, ttl))
        .cookie(cookie(CSRF_COOKIE, csrf_token(state, session), false, ttl))
        .json(body)
}

/// A session just opened: its answer, and the response that sets its cookies.
pub struct OpenedSession {
    /// The JSON answer (token, session, tenant, memberships, CSRF token).
    pub body: Value,
    token: String,
    session: SessionId,
}

impl OpenedSession {
    /// `status` with the body and the browser cookies.
    pub fn respond(&self, state: &AppState, status: StatusCode) -> HttpResponse {
        with_cookies(
            HttpResponse::build(status),
            state,
            &self.token,
            self.session,
            &self.body,
        )
    }
}

/// Opens a session for `user` acting for `tenant`; answers the token and
/// the tenants the user could act for instead.
pub async fn open_session(
    state: &AppState,
    user: UserId,
    tenant: TenantId,
) -> Result<OpenedSession, ApiError> {
    let mut tx = state.store.tenant_tx(tenant).await?;
    let session = tx.create_session(user, state.session_ttl).await?;
    tx.commit().await?;
    let token = state
        .tokens
        .issue(user, tenant, session.id)
        .context("Failed to issue a session token")?;
    let memberships = state.store.memberships_of(user).await?;
    Ok(OpenedSession {
        body: json!({
            "token": token,
            "token_expires_in": state.tokens.ttl().whole_seconds(),
            "csrf_token": csrf_token(state, session.id),
            "session": { "id": session.id, "expires_at": heliograph_web::timestamp(session.expires_at) },
            "tenant_id": tenant,
            "memberships": memberships_json(&memberships),
        }),
        token,
        session: session.id,
    })
}

/// The sign-in body.
#[derive(Deserialize)]
pub struct LoginBody {
    email: Option<String>,
    password: Option<String>,
    tenant_id: Option<String>,
}

/// `POST /v1/sessions`: signs in with email and password, acting for
/// `tenant_id` or, without it, for the user's oldest membership.
///
/// An unknown email is checked against a dummy hash, so it costs the same
/// time as a wrong password, and both answer the same 401.
pub async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<LoginBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let mut f = Fields::default();
    let email =
        f.check(required("email", body.email).and_then(|e| EmailAddress::parse("email", &e)));
    let password = f.check(required("password", body.password));
    let tenant: Option<TenantId> = body.tenant_id.and_then(|t| {
        f.check(
            t.parse()
                .map_err(|_| FieldError::new("tenant_id", "invalid", "is not a tenant id")),
        )
    });
    let (Some(email), Some(password)) = (email, password) else {
        return Err(f.into_error());
    };
    f.finish()?;
    // Per address, and per email *and* address: guessing from elsewhere
    // cannot lock the owner of the email out.
    let client = client_key(crate::auth::client_ip(&req));
    state.limiter.hit(Bucket::LoginByIp, &client).await?;
    let email_key = format!(
        "{}|{client}",
        heliograph_auth::fingerprint(&email.as_str().to_lowercase())
    );
    state
        .limiter
        .hit(Bucket::LoginByEmailAndIp, &email_key)
        .await?;

    let credentials = state.store.user_credentials(&email).await?;
    let (user, hash) = match credentials {
        Some(c) => (Some(c.id), c.password_hash),
        None => (None, heliograph_auth::dummy_hash().to_owned()),
    };
    let matches = web::block(move || heliograph_auth::verify_password(&hash, &password))
        .await
        .context("Failed to run password verification")?;
    let (Some(user), true) = (user, matches) else {
        return Err(ApiError::InvalidCredentials);
    };
    let memberships = state.store.memberships_of(user).await?;
    let chosen = match tenant {
        Some(t) => memberships
            .iter()
            .find(|m| m.tenant_id == t)
            .ok_or_else(|| {
                ApiError::field(FieldError::new(
                    "tenant_id",
                    "not_a_member",
                    "you are not a member of this tenant",
                ))
            })?,
        None => memberships.first().ok_or(ApiError::Forbidden)?,
    };
    let opened = open_session(&state, user, chosen.tenant_id).await?;
    tracing::info!(user.id = %user, tenant.id = %chosen.tenant_id, "signed in");
    Ok(opened.respond(&state, StatusCode::CREATED))
}

/// `POST /v1/sessions/refresh`: a fresh token for the same, still open, session.
pub async fn refresh(member: Member, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let (user, session) = member.person()?;
    let mut tx = state.store.tenant_tx(member.tenant).await?;
    let open = tx.touch_session(session, user).await?;
    tx.commit().await?;
    if !open {
        return Err(ApiError::Unauthorized);
    }
    let token = state
        .tokens
        .issue(user, member.tenant, session)
        .context("Failed to issue a session token")?;
    let body = json!({
        "token": token,
        "token_expires_in": state.tokens.ttl().whole_seconds(),
        "csrf_token": csrf_token(&state, session),
    });
    Ok(with_cookies(
        HttpResponse::Ok(),
        &state,
        &token,
        session,
        &body,
    ))
}

/// `DELETE /v1/sessions/current`: signs out; every token of the session stops working at once.
pub async fn logout(member: Member, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let (user, session) = member.person()?;
    let mut tx = state.store.tenant_tx(member.tenant).await?;
    tx.revoke_session(session, user).await?;
    tx.commit().await?;
    Ok(HttpResponse::NoContent()
        .cookie(cookie(SESSION_COOKIE, String::new(), true, 0))
        .cookie(cookie(CSRF_COOKIE, String::new(), false, 0))
        .finish())
}

/// `GET /v1/me`: who the token speaks for.
pub async fn me(member: Member, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let (user, session) = member.person()?;
    let memberships = state.store.memberships_of(user).await?;
    Ok(HttpResponse::Ok().json(json!({
        "user": { "id": user, "email_verified": state.store.email_verified(user).await? },
        "tenant_id": member.tenant,
        "role": member.role,
        "session_id": session,
        "memberships": memberships_json(&memberships),
    })))
}
