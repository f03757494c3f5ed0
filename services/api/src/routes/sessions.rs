//! Sessions: sign in, refresh, sign out, and who am I.
//!
//! Password hashing and token signing are `heliograph-auth`'s; the limits on
//! guesses are `limits`'.

use actix_web::cookie::time::Duration as CookieDuration;
use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder, web};
use anyhow::Context;
use heliograph_domain::{EmailAddress, FieldError, Role, SessionId, TenantId, UserId};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::auth::Member;
use crate::error::{ApiError, Fields, required};
use crate::idempotency::ShownOnce;
use crate::limits::{Bucket, client_key};
use crate::openapi::{BadRequest, Forbidden, TooManyRequests, Unauthorized, ValidationFailed};
use crate::startup::AppState;

/// A tenant the user belongs to.
#[derive(Clone, Serialize, utoipa::ToSchema)]
pub struct MembershipResponse {
    tenant_id: Uuid,
    slug: String,
    name: String,
    role: Role,
}

fn membership_responses(
    memberships: &[heliograph_store::MembershipSummary],
) -> Vec<MembershipResponse> {
    memberships
        .iter()
        .map(|m| MembershipResponse {
            tenant_id: m.tenant_id.as_uuid(),
            slug: m.slug.clone(),
            name: m.name.clone(),
            role: m.role,
        })
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

/// The browser cookies of a session's `token`: the token (HttpOnly) and
/// the session's CSRF token.
pub(crate) fn session_cookies(
    state: &AppState,
    token: &str,
    session: SessionId,
) -> [Cookie<'static>; 2] {
    let ttl = state.tokens.ttl().whole_seconds();
    // The cookie outlives the token inside it: the dashboard renews an
    // expired token while its session is open (the session's own end is
    // checked on every request).
    let lifetime = i64::try_from(state.session_ttl.as_secs())
        .unwrap_or(ttl)
        .max(ttl);
    [
        cookie(SESSION_COOKIE, token.to_owned(), true, lifetime),
        cookie(CSRF_COOKIE, csrf_token(state, session), false, lifetime),
    ]
}

/// Cookies that clear the session's.
pub(crate) fn cleared_cookies() -> [Cookie<'static>; 2] {
    [
        cookie(SESSION_COOKIE, String::new(), true, 0),
        cookie(CSRF_COOKIE, String::new(), false, 0),
    ]
}

/// A response carrying `body`, plus the browser cookies of `token`.
fn with_cookies(
    mut response: HttpResponseBuilder,
    state: &AppState,
    token: &str,
    session: SessionId,
    body: &impl Serialize,
) -> HttpResponse {
    let [session_cookie, csrf_cookie] = session_cookies(state, token, session);
    let response = response
        .cookie(session_cookie)
        .cookie(csrf_cookie)
        .json(body);
    // The token is shown once: an idempotent replay answers without it
    // (and never with the cookies, which are not replayed).
    ShownOnce::mark(response, &["token", "csrf_token"])
}

/// A session just opened, as sign-in answers it.
#[derive(Clone, Serialize, utoipa::ToSchema)]
pub struct SessionAnswer {
    /// The access token, for `Authorization: Bearer`.
    token: String,
    /// Seconds the token lives; refresh it before then.
    token_expires_in: i64,
    /// Echo it in `X-CSRF-Token` on changes authenticated by the session cookie.
    csrf_token: String,
    session: SessionInfo,
    /// The tenant the session acts for.
    tenant_id: Uuid,
    /// Every tenant the user could act for instead.
    memberships: Vec<MembershipResponse>,
}

/// The server-side session behind the tokens.
#[derive(Clone, Serialize, utoipa::ToSchema)]
pub struct SessionInfo {
    id: Uuid,
    /// When the session ends, however often its token is refreshed.
    expires_at: String,
}

/// A session just opened: its answer, and the response that sets its cookies.
pub struct OpenedSession {
    /// The JSON answer (token, session, tenant, memberships, CSRF token).
    pub body: SessionAnswer,
    token: String,
    session: SessionId,
}

impl OpenedSession {
    /// `status` with the body and the browser cookies.
    pub fn respond(&self, state: &AppState, status: StatusCode) -> HttpResponse {
        self.respond_with(state, status, &self.body)
    }

    /// A redirect (303) to `location`, with the browser cookies: the
    /// dashboard's answer to signing in.
    pub fn redirect(&self, state: &AppState, location: &str) -> HttpResponse {
        let mut response = HttpResponse::SeeOther();
        response.insert_header((actix_web::http::header::LOCATION, location.to_owned()));
        for c in session_cookies(state, &self.token, self.session) {
            response.cookie(c);
        }
        response.finish()
    }

    /// `status` with another body (the session's, extended) and the browser cookies.
    pub fn respond_with(
        &self,
        state: &AppState,
        status: StatusCode,
        body: &impl Serialize,
    ) -> HttpResponse {
        with_cookies(
            HttpResponse::build(status),
            state,
            &self.token,
            self.session,
            body,
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
        body: SessionAnswer {
            token: token.clone(),
            token_expires_in: state.tokens.ttl().whole_seconds(),
            csrf_token: csrf_token(state, session.id),
            session: SessionInfo {
                id: session.id.as_uuid(),
                expires_at: heliograph_web::timestamp(session.expires_at),
            },
            tenant_id: tenant.as_uuid(),
            memberships: membership_responses(&memberships),
        },
        token,
        session: session.id,
    })
}

/// The sign-in body.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct LoginBody {
    #[schema(format = Email, max_length = 254)]
    pub(crate) email: Option<String>,
    pub(crate) password: Option<String>,
    /// The tenant to act for; default: the user's oldest membership.
    #[schema(format = Uuid)]
    pub(crate) tenant_id: Option<String>,
}

/// What signing in takes, from the API's JSON or the dashboard's form.
pub(crate) type Credentials = LoginBody;

/// Signs in with email and password.
///
/// Acts for `tenant_id` or, without it, for the user's oldest membership.
/// An unknown email is checked against a dummy hash, so it costs the same
/// time as a wrong password, and both answer the same 401
/// `invalid_credentials`; so does an address not verified yet (its signup's
/// session works until it ends; a password reset verifies the address too). Also sets the `heliograph_session` (HttpOnly) and
/// `heliograph_csrf` cookies.
#[utoipa::path(
    post,
    path = "/v1/sessions",
    tag = "sessions",
    operation_id = "create_session",
    request_body(content = LoginBody, content_type = "application/json"),
    responses(
        (status = 201, description = "Signed in.", body = SessionAnswer,
            headers(("Set-Cookie" = String, description = "The session and CSRF cookies."))),
        BadRequest, Unauthorized, Forbidden, ValidationFailed, TooManyRequests,
    ),
)]
pub async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<LoginBody>,
) -> Result<HttpResponse, ApiError> {
    let opened = sign_in(&req, &state, body.into_inner()).await?;
    Ok(opened.respond(&state, StatusCode::CREATED))
}

/// Checks credentials (with the limits on guesses) and opens a session:
/// signing in, for the API and the dashboard alike.
pub(crate) async fn sign_in(
    req: &HttpRequest,
    state: &AppState,
    body: Credentials,
) -> Result<OpenedSession, ApiError> {
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
    let ip = crate::auth::client_ip(req);
    let client = client_key(ip);
    state.limiter.hit_client(Bucket::LoginByIp, ip).await?;
    let email_key = format!(
        "{}|{client}",
        heliograph_auth::fingerprint(&email.as_str().to_lowercase())
    );
    state
        .limiter
        .hit(Bucket::LoginByEmailAndIp, &email_key)
        .await?;

    let credentials = state.store.user_credentials(&email).await?;
    let (user, hash, verified) = match credentials {
        Some(c) => (Some(c.id), c.password_hash, c.email_verified),
        None => (None, heliograph_auth::dummy_hash().to_owned(), false),
    };
    let matches = web::block(move || heliograph_auth::verify_password(&hash, &password))
        .await
        .context("Failed to run password verification")?;
    // An unverified address signs in with its signup's session only, not
    // with a password: otherwise signing in after a signup would tell an
    // address that had an account (whose signup made a shadow, which never
    // signs in) from a new one. The answer is the wrong password's.
    let (Some(user), true, true) = (user, matches, verified) else {
        return Err(ApiError::InvalidCredentials);
    };
    let memberships = state.store.memberships_of(user).await?;
    let chosen = chosen_membership(&memberships, tenant)?;
    let opened = open_session(state, user, chosen.tenant_id).await?;
    tracing::info!(user.id = %user, tenant.id = %chosen.tenant_id, "signed in");
    Ok(opened)
}

/// The membership a new session acts in: `tenant`'s (a 422 on
/// `tenant_id` if the user is not a member), or the oldest. Signing in and
/// switching teams choose alike.
pub(crate) fn chosen_membership(
    memberships: &[heliograph_store::MembershipSummary],
    tenant: Option<TenantId>,
) -> Result<&heliograph_store::MembershipSummary, ApiError> {
    match tenant {
        Some(t) => memberships
            .iter()
            .find(|m| m.tenant_id == t)
            .ok_or_else(|| {
                ApiError::field(FieldError::new(
                    "tenant_id",
                    "not_a_member",
                    "you are not a member of this tenant",
                ))
            }),
        None => memberships.first().ok_or(ApiError::Forbidden),
    }
}

/// The refreshed token.
#[derive(Serialize, utoipa::ToSchema)]
pub struct RefreshAnswer {
    token: String,
    /// Seconds the token lives.
    token_expires_in: i64,
    csrf_token: String,
}

/// A fresh token for the same, still open, session.
///
/// People only: an API key is refused (403).
#[utoipa::path(
    post,
    path = "/v1/sessions/refresh",
    tag = "sessions",
    operation_id = "refresh_session",
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "A new token; the cookies are renewed too.", body = RefreshAnswer,
            headers(("Set-Cookie" = String, description = "The session and CSRF cookies."))),
        Unauthorized, Forbidden, TooManyRequests,
    ),
)]
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
    let body = RefreshAnswer {
        token: token.clone(),
        token_expires_in: state.tokens.ttl().whole_seconds(),
        csrf_token: csrf_token(&state, session),
    };
    Ok(with_cookies(
        HttpResponse::Ok(),
        &state,
        &token,
        session,
        &body,
    ))
}

/// Signs out.
///
/// Every token of the session stops working at once; the cookies are cleared.
#[utoipa::path(
    delete,
    path = "/v1/sessions/current",
    tag = "sessions",
    operation_id = "delete_current_session",
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 204, description = "Signed out.",
            headers(("Set-Cookie" = String, description = "Clears the session and CSRF cookies."))),
        Unauthorized, Forbidden, TooManyRequests,
    ),
)]
pub async fn logout(member: Member, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    end_session(&state, &member).await?;
    let [session_cookie, csrf_cookie] = cleared_cookies();
    Ok(HttpResponse::NoContent()
        .cookie(session_cookie)
        .cookie(csrf_cookie)
        .finish())
}

/// Ends the member's session: every token of it stops working at once.
pub(crate) async fn end_session(state: &AppState, member: &Member) -> Result<(), ApiError> {
    let (user, session) = member.person()?;
    let mut tx = state.store.tenant_tx(member.tenant).await?;
    tx.revoke_session(session, user).await?;
    tx.commit().await?;
    Ok(())
}

/// Who the token speaks for.
#[derive(Serialize, utoipa::ToSchema)]
pub struct MeResponse {
    user: MeUser,
    tenant_id: Uuid,
    /// The role in that tenant.
    role: Role,
    session_id: Uuid,
    memberships: Vec<MembershipResponse>,
}

/// The signed-in person.
#[derive(Serialize, utoipa::ToSchema)]
pub struct MeUser {
    id: Uuid,
    email_verified: bool,
}

/// Who the token speaks for.
///
/// People only: an API key is refused (403).
#[utoipa::path(
    get,
    path = "/v1/me",
    tag = "sessions",
    operation_id = "get_me",
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "The person, the tenant and the role.", body = MeResponse),
        Unauthorized, Forbidden, TooManyRequests,
    ),
)]
pub async fn me(member: Member, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let (user, session) = member.person()?;
    let memberships = state.store.memberships_of(user).await?;
    Ok(HttpResponse::Ok().json(MeResponse {
        user: MeUser {
            id: user.as_uuid(),
            email_verified: state.store.email_verified(user).await?,
        },
        tenant_id: member.tenant.as_uuid(),
        role: member.role,
        session_id: session.as_uuid(),
        memberships: membership_responses(&memberships),
    }))
}
