//! Where an emailed invitation link lands: a page naming the team and the
//! role offered, which makes the invited person's account (or asks the
//! existing account's password), joins the team and signs them in, as
//! `POST /v1/invitations/accept` does (its functions are
//! `routes::team`'s). Showing the page changes nothing (mail scanners
//! fetch links); only the form's post accepts.

use crate::dashboard::form::Posted;
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use heliograph_domain::{InvitationProblem, Role};
use serde::Deserialize;

use super::form::FormErrors;
use super::frame;
use crate::error::ApiError;
use crate::routes::sessions::open_session;
use crate::routes::team::{self as rest, AcceptBody, InvitationOffer};
use crate::startup::AppState;

/// The invitation's page.
#[derive(Template)]
#[template(path = "dashboard/team/accept.html")]
struct AcceptView<'a> {
    token: &'a str,
    team: &'a str,
    email: &'a str,
    role: Role,
    account_exists: bool,
    errors: FormErrors,
}

/// A link that no longer works.
#[derive(Template)]
#[template(path = "dashboard/team/invitation_gone.html")]
struct GoneView {
    title: &'static str,
    detail: &'static str,
}

/// The page for a link that does not work, saying why.
fn gone(problem: InvitationProblem) -> Result<HttpResponse, ApiError> {
    let (title, detail) = match problem {
        InvitationProblem::Unknown => (
            "This invitation link does not work",
            "The link is incomplete or was not made by us. Open it again from the email, \
             or ask the team to invite you again.",
        ),
        InvitationProblem::Used => (
            "This invitation has been accepted",
            "The link worked once and is used up. If it was you, sign in to reach the team.",
        ),
        InvitationProblem::Revoked => (
            "This invitation was withdrawn",
            "The team withdrew it (or sent a newer one: look for a later email). Ask them to \
             invite you again if you still should join.",
        ),
        InvitationProblem::Expired => (
            "This invitation has expired",
            "Invitation links work for 7 days. Ask the team to send you a new one.",
        ),
    };
    frame::html_with(StatusCode::GONE, &GoneView { title, detail })
}

/// What the newcomer reads first: "Welcome to Acme: you are an editor."
fn welcome(team: &str, role: Role) -> String {
    let article = match role {
        Role::Owner | Role::Admin | Role::Editor => "an",
        Role::Viewer => "a",
    };
    format!("Welcome to {team}: you are {article} {role}.")
}

fn show(
    status: StatusCode,
    token: &str,
    offer: &InvitationOffer,
    errors: FormErrors,
) -> Result<HttpResponse, ApiError> {
    let view = AcceptView {
        token,
        team: &offer.team,
        email: &offer.invitation.email,
        role: offer.invitation.role,
        account_exists: offer.account_exists,
        errors,
    };
    frame::html_with(status, &view)
}

/// The link's query.
#[derive(Deserialize)]
pub struct Link {
    #[serde(default)]
    token: String,
}

/// `GET /account/accept-invitation?token=…`: what the invitation offers,
/// and the form that accepts it.
pub async fn form(
    state: web::Data<AppState>,
    query: web::Query<Link>,
) -> Result<HttpResponse, ApiError> {
    match rest::invitation_offer(&state, &query.token).await? {
        Ok(offer) => show(StatusCode::OK, &query.token, &offer, FormErrors::none()),
        Err(problem) => gone(problem),
    }
}

/// The accepting form.
#[derive(Deserialize)]
pub struct AcceptForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    password: String,
}

/// `POST /account/accept-invitation`: joins the team, as
/// `POST /v1/invitations/accept`, and signs in there.
pub async fn submit(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: Posted<AcceptForm>,
) -> Result<HttpResponse, ApiError> {
    let form = form.into_inner()?;
    let offer = match rest::invitation_offer(&state, &form.token).await? {
        Ok(offer) => offer,
        Err(problem) => return gone(problem),
    };
    let body = AcceptBody {
        token: Some(form.token.clone()),
        password: Some(form.password),
    };
    let errors = match rest::join_team(&req, &state, body).await {
        Ok((user, tenant)) => {
            let mut landing = open_session(&state, user, tenant)
                .await?
                .redirect(&state, "/dashboard");
            // The welcome is the flash `frame::done` leaves, carried over
            // to the response that also signs in.
            let welcome = frame::done("/dashboard", &welcome(&offer.team, offer.invitation.role));
            for cookie in welcome.headers().get_all(header::SET_COOKIE) {
                landing
                    .headers_mut()
                    .append(header::SET_COOKIE, cookie.clone());
            }
            return Ok(landing);
        }
        Err(ApiError::InvalidCredentials) => FormErrors::field(
            "password",
            "That is not this account's password. Use the password you sign in with \
             (or reset it from the sign-in page, then open this link again).",
        ),
        Err(err) => FormErrors::from_error(err)?,
    };
    show(
        StatusCode::UNPROCESSABLE_ENTITY,
        &form.token,
        &offer,
        errors,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_welcome_names_the_team_and_the_role() {
        assert_eq!(
            welcome("Acme", Role::Admin),
            "Welcome to Acme: you are an admin."
        );
        assert_eq!(
            welcome("Acme", Role::Viewer),
            "Welcome to Acme: you are a viewer."
        );
    }
}
