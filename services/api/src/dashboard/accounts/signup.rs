//! Signing up on the dashboard: the same signup as `POST /v1/signup`
//! (`routes::signup::sign_up`), then signed in on the dashboard; and the
//! sign-up form's live answer to "is this slug free?".

use crate::dashboard::form::Posted;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use heliograph_domain::Slug;
use serde::{Deserialize, Serialize};

use super::{given, with_session_cookies};
use crate::dashboard::form::FormErrors;
use crate::dashboard::frame;
use crate::error::ApiError;
use crate::limits::Bucket;
use crate::routes::signup::{SignupBody, sign_up, slug_taken};
use crate::startup::AppState;

/// The sign-up page.
#[derive(Template)]
#[template(path = "dashboard/accounts/signup.html")]
struct SignupView<'a> {
    name: &'a str,
    slug: &'a str,
    email: &'a str,
    errors: FormErrors,
    platform: String,
}

/// `GET /signup`.
pub async fn form(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let view = SignupView {
        name: "",
        slug: "",
        email: "",
        errors: FormErrors::none(),
        platform: state.urls.page_url("your-slug"),
    };
    frame::html_bare(&view, false)
}

/// The sign-up form.
#[derive(Deserialize)]
pub struct SignupForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    slug: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

/// `POST /signup`: signs up as `POST /v1/signup` does, and lands signed in.
pub async fn submit(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: Posted<SignupForm>,
) -> Result<HttpResponse, ApiError> {
    let form = form.into_inner()?;
    let body = SignupBody {
        name: given(form.name.clone()),
        slug: given(form.slug.clone()),
        email: given(form.email.clone()),
        password: given(form.password),
    };
    let errors = match sign_up(&req, &state, body).await {
        Ok((opened, _)) => {
            let landed = opened.redirect(&state, "/dashboard");
            let message = format!(
                "Welcome to Heliograph. We have emailed {} a link to verify the address: \
                 until it is verified, nothing goes to addresses your team types in.",
                form.email.trim()
            );
            return Ok(with_session_cookies(
                frame::done("/dashboard", &message),
                &landed,
            ));
        }
        Err(ApiError::Conflict {
            code: "slug_taken", ..
        }) => FormErrors::field("slug", "This slug is taken: choose another."),
        Err(err) => FormErrors::from_error(err)?,
    };
    let view = SignupView {
        name: &form.name,
        slug: &form.slug,
        email: &form.email,
        errors,
        platform: state.urls.page_url("your-slug"),
    };
    frame::html_with(StatusCode::UNPROCESSABLE_ENTITY, &view)
}

/// What the live check is asked.
#[derive(Deserialize)]
pub struct SlugQuery {
    #[serde(default)]
    slug: String,
}

/// Whether a slug can be had.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum SlugState {
    Available,
    Taken,
    Invalid,
}

/// The live check's answer.
#[derive(Serialize)]
struct SlugAnswer {
    state: SlugState,
    /// A sentence for the person typing it.
    message: String,
}

/// `GET /signup/slug?slug=…`: whether the slug is valid and free, for the
/// sign-up form's live check (the form's own answer stays the rule: a
/// slug taken meanwhile comes back as a field error).
pub async fn check_slug(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<SlugQuery>,
) -> Result<HttpResponse, ApiError> {
    // Each probe costs a lookup and tells whether a slug is in use (as its
    // public page would): paced per address by a budget of its own, not
    // signup's (a few an hour, which a typist would spend) nor sign-in's
    // (which a typist would spend for the sign-in that follows).
    state
        .limiter
        .hit_client(Bucket::SlugCheckByIp, crate::auth::client_ip(&req))
        .await?;
    let answer = match Slug::parse("slug", query.slug.trim()) {
        Err(e) => SlugAnswer {
            state: SlugState::Invalid,
            message: format!("Not a valid slug: it {}.", e.message),
        },
        Ok(slug) if slug_taken(&state, &slug).await? => SlugAnswer {
            state: SlugState::Taken,
            message: format!("“{slug}” is taken."),
        },
        Ok(slug) => SlugAnswer {
            state: SlugState::Available,
            message: format!("“{slug}” is available."),
        },
    };
    Ok(HttpResponse::Ok().json(answer))
}
