//! The pages behind the emailed links, and asking for one: verifying an
//! address (`POST /v1/email-verifications/confirm`'s function), forgetting
//! a password (`POST /v1/password-resets`') and choosing a new one
//! (`POST /v1/password-resets/confirm`').
//!
//! Opening a link never uses it: mail scanners fetch links before people
//! do, and a single-use token spent by a scanner would leave the person
//! with a dead link. The page behind the link asks for one click, which
//! posts the token.

use crate::dashboard::form::Posted;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use heliograph_store::LinkProblem;
use serde::Deserialize;

use super::given;
use crate::dashboard::form::FormErrors;
use crate::dashboard::frame;
use crate::error::ApiError;
use crate::routes::accounts::{
    ResetConfirm, ResetRequest, VerifyConfirm, send_reset_link, set_password_with_link,
    verify_with_link,
};
use crate::startup::AppState;

/// What an emailed link's address carries.
#[derive(Deserialize)]
pub struct TokenQuery {
    #[serde(default)]
    token: String,
}

/// A link that did not work, in words.
#[derive(Template)]
#[template(path = "dashboard/accounts/link_problem.html")]
struct ProblemView {
    title: &'static str,
    detail: &'static str,
    /// Where to get a new link, and its words.
    next: (&'static str, &'static str),
}

/// What a link that does not work is answered (410 for one that worked
/// once, 404 for one that never did), `verify` telling which kind of link.
fn problem(problem: LinkProblem, verify: bool) -> Result<HttpResponse, ApiError> {
    let (status, title, detail) = match problem {
        LinkProblem::Used => (
            StatusCode::GONE,
            "This link has been used already",
            "Each link works once. If it was you, you are done; otherwise ask for a new one.",
        ),
        LinkProblem::Expired => (
            StatusCode::GONE,
            "This link has expired",
            "Links work for a limited time (a day to verify an address, an hour to reset a \
             password). Ask for a new one.",
        ),
        LinkProblem::Unknown => (
            StatusCode::NOT_FOUND,
            "This link does not work",
            "It may have been cut short by your email program: open it again from the email, \
             whole. If that fails, ask for a new one.",
        ),
    };
    let next = if verify {
        ("/account", "Send a new link from your account page")
    } else {
        ("/account/forgot-password", "Ask for a new reset link")
    };
    frame::html_with(
        status,
        &ProblemView {
            title,
            detail,
            next,
        },
    )
}

/// The page behind a verification link.
#[derive(Template)]
#[template(path = "dashboard/accounts/verify.html")]
struct VerifyView<'a> {
    token: &'a str,
    verified: bool,
}

/// `GET /account/verify-email?token=…`: asks for the click that verifies.
pub async fn verify_form(query: web::Query<TokenQuery>) -> Result<HttpResponse, ApiError> {
    frame::html_bare(
        &VerifyView {
            token: &query.token,
            verified: false,
        },
        false,
    )
}

/// The verification form.
#[derive(Deserialize)]
pub struct TokenForm {
    #[serde(default)]
    token: String,
}

/// `POST /account/verify-email`: verifies, as
/// `POST /v1/email-verifications/confirm` does.
pub async fn verify(
    state: web::Data<AppState>,
    form: Posted<TokenForm>,
) -> Result<HttpResponse, ApiError> {
    let body = VerifyConfirm {
        token: given(form.into_inner()?.token),
    };
    match verify_with_link(&state, body).await {
        Ok(Ok(())) => frame::html_bare(
            &VerifyView {
                token: "",
                verified: true,
            },
            false,
        ),
        Ok(Err(p)) => problem(p, true),
        Err(ApiError::Validation(_)) => problem(LinkProblem::Unknown, true),
        Err(err) => Err(err),
    }
}

/// The page that asks for a reset link.
#[derive(Template)]
#[template(path = "dashboard/accounts/forgot.html")]
struct ForgotView<'a> {
    email: &'a str,
    errors: FormErrors,
}

/// `GET /account/forgot-password`.
pub async fn forgot_form() -> Result<HttpResponse, ApiError> {
    frame::html_bare(
        &ForgotView {
            email: "",
            errors: FormErrors::none(),
        },
        false,
    )
}

/// The forgotten-password form.
#[derive(Deserialize)]
pub struct ForgotForm {
    #[serde(default)]
    email: String,
}

/// `POST /account/forgot-password`: as `POST /v1/password-resets`, the
/// same answer whether the address has an account or not.
pub async fn forgot(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: Posted<ForgotForm>,
) -> Result<HttpResponse, ApiError> {
    let form = form.into_inner()?;
    let body = ResetRequest {
        email: given(form.email.clone()),
    };
    let errors = match send_reset_link(&req, &state, body).await {
        Ok(()) => {
            return Ok(frame::done(
                "/login",
                "If an account has that address, we have emailed it a link to choose a new \
                 password. The link works for an hour.",
            ));
        }
        Err(err) => FormErrors::from_error(err)?,
    };
    frame::html_with(
        StatusCode::UNPROCESSABLE_ENTITY,
        &ForgotView {
            email: &form.email,
            errors,
        },
    )
}

/// The page behind a reset link.
#[derive(Template)]
#[template(path = "dashboard/accounts/reset.html")]
struct ResetView<'a> {
    token: &'a str,
    errors: FormErrors,
}

/// `GET /account/reset-password?token=…`: the new password's form (the
/// link is used only when it is sent).
pub async fn reset_form(query: web::Query<TokenQuery>) -> Result<HttpResponse, ApiError> {
    frame::html_bare(
        &ResetView {
            token: &query.token,
            errors: FormErrors::none(),
        },
        false,
    )
}

/// The new password's form.
#[derive(Deserialize)]
pub struct ResetForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    password: String,
}

/// `POST /account/reset-password`: as `POST /v1/password-resets/confirm`.
pub async fn reset(
    state: web::Data<AppState>,
    form: Posted<ResetForm>,
) -> Result<HttpResponse, ApiError> {
    let form = form.into_inner()?;
    let body = ResetConfirm {
        token: given(form.token.clone()),
        password: given(form.password),
    };
    let errors = match set_password_with_link(&state, body).await {
        Ok(Ok(())) => {
            return Ok(frame::done(
                "/login",
                "Your password is changed, and every session of your account has ended. \
                 Sign in with the new password.",
            ));
        }
        Ok(Err(p)) => return problem(p, false),
        Err(err) => FormErrors::from_error(err)?,
    };
    if errors.get("token").is_some() {
        return problem(LinkProblem::Unknown, false);
    }
    frame::html_with(
        StatusCode::UNPROCESSABLE_ENTITY,
        &ResetView {
            token: &form.token,
            errors,
        },
    )
}
