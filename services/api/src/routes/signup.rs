//! `POST /v1/signup`: a new tenant, its owner and its first page.

use actix_web::{HttpRequest, HttpResponse, web};
use anyhow::Context;
use heliograph_domain::{EmailAddress, Name, Password, Slug};
use heliograph_store::NewSignup;
use serde::Deserialize;
use serde_json::json;

use super::sessions::open_session;
use crate::error::{ApiError, Fields, required};
use crate::limits::{Bucket, client_key};
use crate::startup::AppState;

/// The signup body.
#[derive(Deserialize)]
pub struct SignupBody {
    name: Option<String>,
    slug: Option<String>,
    email: Option<String>,
    password: Option<String>,
}

/// Creates the tenant, its owner (argon2id password) and a first page with
/// the tenant's slug; answers a session token.
pub async fn signup(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<SignupBody>,
) -> Result<HttpResponse, ApiError> {
    let ip = crate::auth::client_ip(&req);
    state
        .limiter
        .hit(Bucket::SignupByIp, &client_key(ip))
        .await?;
    let body = body.into_inner();
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
    state
        .store
        .create_account_link(
            record.user_id,
            "verify_email",
            super::accounts::VERIFY_LIFETIME,
        )
        .await?;
    let mut opened = open_session(&state, record.user_id, record.tenant.id).await?;
    let body = &mut opened.body;
    tracing::info!(tenant.id = %record.tenant.id, user.email = %email.masked(), "tenant signed up");
    body["tenant"] = json!({
        "id": record.tenant.id,
        "slug": record.tenant.slug,
        "name": record.tenant.name,
        "created_at": heliograph_web::timestamp(record.tenant.created_at),
    });
    body["user"] = json!({ "id": record.user_id, "email": email.as_str(), "role": "owner" });
    body["page"] = json!({
        "id": record.page.id,
        "slug": record.page.slug,
        "name": record.page.name,
        "time_zone": record.page.time_zone,
        "url": state.urls.page_url(&record.page.slug),
    });
    Ok(opened.respond(&state, actix_web::http::StatusCode::CREATED))
}
