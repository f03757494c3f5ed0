//! The account page: the person's address and whether it is verified
//! (with "send the link again", as `POST /v1/email-verifications`), their
//! password (as `PUT /v1/me/password`), their open sessions in this team
//! (ending one, or all but this one), and switching teams (as signing in
//! with `tenant_id` chooses a team).

use crate::dashboard::form::Posted;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use heliograph_domain::{SessionId, TenantId};
use heliograph_store::SessionSummary;
use serde::Deserialize;

use super::{given, with_session_cookies};
use crate::auth::Member;
use crate::dashboard::form::FormErrors;
use crate::dashboard::frame::{self, Frame, Section};
use crate::error::ApiError;
use crate::routes::accounts::{PasswordChange, send_verification, set_password};
use crate::routes::sessions::{chosen_membership, end_session, open_session};
use crate::startup::AppState;

/// The most sessions the page lists (a person has a handful; the rest are
/// ended by "sign out everywhere else" all the same).
const SESSIONS_SHOWN: i64 = 50;

/// One session, as the page lists it.
struct SessionRow {
    id: SessionId,
    created_at: String,
    last_seen_at: String,
    expires_at: String,
    current: bool,
}

/// The account page.
#[derive(Template)]
#[template(path = "dashboard/accounts/account.html")]
struct AccountView {
    frame: Frame,
    sessions: Vec<SessionRow>,
    errors: FormErrors,
}

fn row(s: &SessionSummary, current: SessionId) -> SessionRow {
    SessionRow {
        id: s.id,
        created_at: heliograph_web::timestamp(s.created_at),
        last_seen_at: heliograph_web::timestamp(s.last_seen_at),
        expires_at: heliograph_web::timestamp(s.expires_at),
        current: s.id == current,
    }
}

/// The account page, with `errors` on the password form (`status` 422
/// when there are some).
async fn render(
    req: &HttpRequest,
    state: &AppState,
    member: &Member,
    errors: FormErrors,
) -> Result<HttpResponse, ApiError> {
    let (user, session) = member.person()?;
    let mut tx = state.store.tenant_tx(member.tenant).await?;
    let sessions = tx
        .open_sessions_of(user, SESSIONS_SHOWN)
        .await?
        .iter()
        .map(|s| row(s, session))
        .collect();
    let frame = Frame::load(state, req, member, &mut tx, None, Section::Account).await?;
    tx.commit().await?;
    let failed = errors.any();
    let view = AccountView {
        frame: frame.clone(),
        sessions,
        errors,
    };
    if failed {
        frame::html_with(StatusCode::UNPROCESSABLE_ENTITY, &view)
    } else {
        frame::html(&frame, &view)
    }
}

/// `GET /account`.
pub async fn show(
    req: HttpRequest,
    state: web::Data<AppState>,
    member: Member,
) -> Result<HttpResponse, ApiError> {
    render(&req, &state, &member, FormErrors::none()).await
}

/// `POST /account/verification`: a new verification link, as
/// `POST /v1/email-verifications` sends it.
pub async fn resend(state: web::Data<AppState>, member: Member) -> Result<HttpResponse, ApiError> {
    send_verification(&state, &member).await?;
    Ok(frame::done(
        "/account",
        "A new link is on its way; the one sent before no longer works.",
    ))
}

/// The password form.
#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_password: String,
}

/// `POST /account/password`: as `PUT /v1/me/password`.
pub async fn change_password(
    req: HttpRequest,
    state: web::Data<AppState>,
    member: Member,
    form: Posted<PasswordForm>,
) -> Result<HttpResponse, ApiError> {
    let form = form.into_inner()?;
    let body = PasswordChange {
        current_password: given(form.current_password),
        new_password: given(form.new_password),
    };
    let errors = match set_password(&req, &state, &member, body).await {
        Ok(()) => {
            return Ok(frame::done(
                "/account",
                "Your password is changed. Every other session of your account has ended.",
            ));
        }
        Err(ApiError::InvalidCredentials) => {
            FormErrors::field("current_password", "This is not your current password.")
        }
        Err(err) => FormErrors::from_error(err)?,
    };
    render(&req, &state, &member, errors).await
}

/// `POST /account/sessions/{id}/end`: ends another of the person's
/// sessions in this team (its tokens stop working at once).
pub async fn end_one(
    state: web::Data<AppState>,
    member: Member,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (user, current) = member.person()?;
    let id: SessionId = path.parse().map_err(|_| ApiError::NotFound)?;
    if id == current {
        // This one ends by signing out, which also clears the cookies.
        return Ok(frame::go("/account"));
    }
    let mut tx = state.store.tenant_tx(member.tenant).await?;
    // Scoped to the person and the team: another's session is untouched.
    tx.revoke_session(id, user).await?;
    tx.commit().await?;
    Ok(frame::done("/account", "That session has ended."))
}

/// `POST /account/sessions/end-others`: ends every session of the person
/// in this team but this one.
pub async fn end_others(
    state: web::Data<AppState>,
    member: Member,
) -> Result<HttpResponse, ApiError> {
    let (user, current) = member.person()?;
    let mut tx = state.store.tenant_tx(member.tenant).await?;
    let ended = tx.revoke_other_sessions(user, current).await?;
    tx.commit().await?;
    let message = match ended {
        0 => "There was no other session to end.".to_owned(),
        1 => "1 other session has ended.".to_owned(),
        n => format!("{n} other sessions have ended."),
    };
    Ok(frame::done("/account", &message))
}

/// The team switcher's form.
#[derive(Deserialize)]
pub struct SwitchForm {
    #[serde(default)]
    tenant_id: String,
}

/// `POST /account/switch`: a session for another team of the person's
/// (chosen as signing in with `tenant_id` chooses), this one ending.
pub async fn switch(
    state: web::Data<AppState>,
    member: Member,
    form: Posted<SwitchForm>,
) -> Result<HttpResponse, ApiError> {
    let form = form.into_inner()?;
    let (user, _) = member.person()?;
    // Not a team of theirs, or not a team at all: nothing to see there.
    let tenant: TenantId = form.tenant_id.parse().map_err(|_| ApiError::NotFound)?;
    let memberships = state.store.memberships_of(user).await?;
    let chosen = match chosen_membership(&memberships, Some(tenant)) {
        Ok(m) => m,
        Err(ApiError::Validation(_)) => return Err(ApiError::NotFound),
        Err(err) => return Err(err),
    };
    if chosen.tenant_id == member.tenant {
        return Ok(frame::go("/dashboard"));
    }
    let message = format!("You now act for {}.", chosen.name);
    let opened = open_session(&state, user, chosen.tenant_id).await?;
    end_session(&state, &member).await?;
    Ok(with_session_cookies(
        frame::done("/dashboard", &message),
        &opened.redirect(&state, "/dashboard"),
    ))
}
