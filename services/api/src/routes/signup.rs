//! `POST /v1/signup`: a new tenant, its owner and its first page.
//!
//! Validating the fields is the domain's, writing the rows the store's; the
//! verification email is sent by the worker.

use actix_web::{HttpRequest, HttpResponse, web};
use anyhow::Context;
use heliograph_domain::{EmailAddress, Name, Password, Role, Slug};
use heliograph_store::NewSignup;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::sessions::{OpenedSession, SessionAnswer, open_session};
use crate::error::{ApiError, Fields, required};
use crate::limits::Bucket;
use crate::openapi::{BadRequest, Conflict, TooManyRequests, ValidationFailed};
use crate::startup::AppState;

/// How long a "someone tried to sign up" note may still go out (it carries
/// no link: this only keeps a note lost with Redis from going out days late).
const ATTEMPT_NOTE_LIFETIME: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// The signup body.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct SignupBody {
    /// The company's name.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub(crate) name: Option<String>,
    /// The tenant's slug, also its first page's: 3 to 63 lowercase letters,
    /// digits and single inner hyphens, starting with a letter (a few
    /// names are reserved).
    #[schema(min_length = 3, max_length = 63, pattern = "^[a-z](-?[a-z0-9])*$")]
    pub(crate) slug: Option<String>,
    #[schema(format = Email, max_length = 254)]
    pub(crate) email: Option<String>,
    /// 10 to 256 characters.
    #[schema(min_length = 10, max_length = 256)]
    pub(crate) password: Option<String>,
}

/// What signup answers: a session, and what was created.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SignupAnswer {
    #[serde(flatten)]
    #[schema(inline)]
    session: SessionAnswer,
    tenant: SignupTenant,
    user: SignupUser,
    page: SignupPage,
}

/// The new tenant.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SignupTenant {
    id: Uuid,
    slug: String,
    name: String,
    created_at: String,
}

/// The new tenant's owner.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SignupUser {
    id: Uuid,
    email: String,
    /// Always `owner`.
    role: Role,
}

/// The new tenant's first page.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SignupPage {
    id: Uuid,
    slug: String,
    name: String,
    time_zone: String,
    url: String,
}

/// Signs a company up.
///
/// Creates the tenant, its owner (argon2id password) and a first page with
/// the tenant's slug; answers a session, as sign-in does, and emails a link
/// to verify the address. Until an owner's address is verified the tenant
/// can build its page but sends nothing to addresses it types in, and its
/// owner signs in with this session only (not with the password).
///
/// An address that has an account answers the same (so the answer tells
/// nobody who has one): the new tenant's owner is then a shadow of that
/// account, which can never verify (its address is someone else's), and
/// the account's owner gets an email saying someone tried.
#[utoipa::path(
    post,
    path = "/v1/signup",
    tag = "sessions",
    operation_id = "signup",
    request_body(content = SignupBody, content_type = "application/json",
        example = json!({"name": "Acme Cloud", "slug": "acme", "email": "owner@example.com",
            "password": "correct horse battery staple"})),
    responses(
        (status = 201, description = "Signed up and signed in.", body = SignupAnswer,
            headers(("Set-Cookie" = String, description = "The session and CSRF cookies."))),
        BadRequest, Conflict, ValidationFailed, TooManyRequests,
    ),
)]
pub async fn signup(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<SignupBody>,
) -> Result<HttpResponse, ApiError> {
    let (opened, body) = sign_up(&req, &state, body.into_inner()).await?;
    Ok(opened.respond_with(&state, actix_web::http::StatusCode::CREATED, &body))
}

/// Signs a company up and opens its owner's session: signup, for the API
/// and the dashboard alike.
pub(crate) async fn sign_up(
    req: &HttpRequest,
    state: &AppState,
    body: SignupBody,
) -> Result<(OpenedSession, SignupAnswer), ApiError> {
    let ip = crate::auth::client_ip(req);
    state.limiter.hit_client(Bucket::SignupByIp, ip).await?;
    let mut f = Fields::default();
    let name = f.check(required("name", body.name).and_then(|n| Name::parse("name", &n, 100)));
    let slug = f.check(required("slug", body.slug).and_then(|s| Slug::parse("slug", &s)));
    let email =
        f.check(required("email", body.email).and_then(|e| EmailAddress::parse("email", &e)));
    let password =
        f.check(required("password", body.password).and_then(|p| Password::parse("password", &p)));
    let (Some(name), Some(slug), Some(email), Some(password)) = (name, slug, email, password)
    else {
        return Err(f.into_error());
    };

    let password_hash = web::block(move || heliograph_auth::hash_password(&password))
        .await
        .context("Failed to run password hashing")?
        .context("Failed to hash a password")?;
    let record = state
        .store
        .signup(NewSignup {
            name,
            slug,
            email: email.clone(),
            password_hash,
            ip: ip.map(|ip| ip.to_string()),
        })
        .await?;
    match record.taken_by {
        None => {
            state
                .store
                .create_account_link(
                    record.user_id,
                    "verify_email",
                    super::accounts::VERIFY_LIFETIME,
                )
                .await?;
        }
        Some(account) => {
            // A few notes an hour at most: signups must not become a way
            // to flood someone's inbox. Past that the answer stays the same.
            let fingerprint = heliograph_auth::fingerprint(&email.as_str().to_lowercase());
            if state
                .limiter
                .hit(Bucket::SignupAttemptByEmail, &fingerprint)
                .await
                .is_ok()
            {
                state
                    .store
                    .create_account_link(account, "signup_attempt", ATTEMPT_NOTE_LIFETIME)
                    .await?;
            }
        }
    }
    let opened = open_session(state, record.user_id, record.tenant.id).await?;
    tracing::info!(
        tenant.id = %record.tenant.id, user.email = %email.masked(),
        shadow = record.taken_by.is_some(), "tenant signed up"
    );
    let body = SignupAnswer {
        session: opened.body.clone(),
        tenant: SignupTenant {
            id: record.tenant.id.as_uuid(),
            slug: record.tenant.slug.to_string(),
            name: record.tenant.name.clone(),
            created_at: heliograph_web::timestamp(record.tenant.created_at),
        },
        user: SignupUser {
            id: record.user_id.as_uuid(),
            email: email.as_str().to_owned(),
            role: Role::Owner,
        },
        page: SignupPage {
            id: record.page.id.as_uuid(),
            slug: record.page.slug.to_string(),
            name: record.page.name.clone(),
            time_zone: record.page.time_zone.to_string(),
            url: state.urls.page_url(record.page.slug.as_str()),
        },
    };
    Ok((opened, body))
}

/// Whether `slug` is taken: a tenant or a page has it (signup would be
/// refused with `slug_taken`). For the sign-up form's live check; signup
/// itself relies on the database's unique keys, which also catch a race.
pub(crate) async fn slug_taken(state: &AppState, slug: &Slug) -> Result<bool, ApiError> {
    Ok(state.store.tenant_by_slug(slug).await?.is_some()
        || state.store.page_ref_by_slug(slug).await?.is_some())
}
