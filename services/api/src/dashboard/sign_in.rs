//! Signing in and out of the dashboard: the same checks as
//! `POST /v1/sessions` and `DELETE /v1/sessions/current` (the functions
//! are `routes::sessions`'), answered as pages and cookies.

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::form::{FormErrors, Posted, local_path};
use super::frame;
use crate::auth::Member;
use crate::error::ApiError;
use crate::routes::sessions::{self, Credentials};
use crate::startup::AppState;

/// The sign-in page.
#[derive(Template)]
#[template(path = "dashboard/login.html")]
struct LoginView<'a> {
    email: &'a str,
    next: &'a str,
    errors: FormErrors,
    flash: Option<String>,
}

/// What `/login` may be given: where to go afterwards.
#[derive(Deserialize)]
pub struct Next {
    next: Option<String>,
}

/// `GET /login`.
pub async fn form(req: HttpRequest, query: web::Query<Next>) -> Result<HttpResponse, ApiError> {
    let view = LoginView {
        email: "",
        next: local_path(query.next.as_deref()),
        errors: FormErrors::none(),
        flash: frame::flash_of(&req),
    };
    frame::html_bare(&view, view.flash.is_some())
}

/// The sign-in form.
#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    next: Option<String>,
}

/// `POST /login`: signs in, as `POST /v1/sessions` does.
pub async fn submit(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: Posted<LoginForm>,
) -> Result<HttpResponse, ApiError> {
    let form = form.into_inner()?;
    let next = local_path(form.next.as_deref()).to_owned();
    let credentials = Credentials {
        email: Some(form.email.clone()),
        password: Some(form.password),
        tenant_id: None,
    };
    let errors = match sessions::sign_in(&req, &state, credentials).await {
        Ok(opened) => return Ok(opened.redirect(&state, &next)),
        Err(ApiError::InvalidCredentials) => FormErrors::field(
            "password",
            "The email or the password is wrong, or the address is not verified yet \
             (the link is in the email we sent when you signed up).",
        ),
        Err(err) => FormErrors::from_error(err)?,
    };
    let view = LoginView {
        email: &form.email,
        next: &next,
        errors,
        flash: None,
    };
    frame::html_with(actix_web::http::StatusCode::UNPROCESSABLE_ENTITY, &view)
}

/// `POST /logout`: ends the session, as `DELETE /v1/sessions/current` does.
pub async fn sign_out(
    member: Member,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    sessions::end_session(&state, &member).await?;
    let mut response = frame::done("/login", "You are signed out.");
    for cookie in sessions::cleared_cookies() {
        response
            .add_cookie(&cookie)
            .map_err(|e| ApiError::Internal(e.into()))?;
    }
    Ok(response)
}
