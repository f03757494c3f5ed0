//! The team page: its members and their roles, the pending invitations, and
//! inviting someone. Each action is its REST twin's function in
//! `routes::team` (the same parsing, checks, audit entries); this module
//! only turns forms into their inputs and refusals into messages on the
//! page (the last owner kept, an unverified team's invitation refused).

use crate::dashboard::form::Posted;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use heliograph_domain::{Invitation, InvitationId, Role, TeamMember, UserId};
use serde::Deserialize;

use super::form::FormErrors;
use super::frame::{self, Frame, Section};
use crate::auth::Member;
use crate::error::ApiError;
use crate::routes::team::{self as rest, InvitationInput};
use crate::startup::AppState;

/// The team page.
#[derive(Template)]
#[template(path = "dashboard/team/index.html")]
struct TeamView {
    frame: Frame,
    members: Vec<TeamMember>,
    invitations: Vec<Invitation>,
    /// What the invitation form holds (kept when it came back).
    email: String,
    role: Role,
    errors: FormErrors,
    /// A refusal about the members (the last owner), shown above them.
    refusal: Option<String>,
}

impl TeamView {
    /// The roles the person may give an invitation; the domain's rule,
    /// as the REST twin checks it.
    fn invitable(&self) -> Vec<Role> {
        heliograph_domain::team::grantable_roles(self.frame.team.role, None)
    }

    /// The roles the person may give `m` (none when `m` is not theirs to
    /// change, as an owner is not an admin's).
    fn grantable_to(&self, m: &TeamMember) -> Vec<Role> {
        heliograph_domain::team::grantable_roles(self.frame.team.role, Some(m.role))
    }

    /// Whether the person may remove `m` (not an owner, for an admin), by
    /// the rule the REST twin checks.
    fn removable(&self, m: &TeamMember) -> bool {
        heliograph_domain::team::may_manage_team(self.frame.team.role, &[m.role])
    }

    fn when(t: &time::OffsetDateTime) -> String {
        heliograph_web::timestamp(*t)
    }

    fn day(t: &time::OffsetDateTime) -> String {
        let d = t.date();
        format!("{} {} {}", d.day(), d.month(), d.year())
    }

    fn is_me(&self, m: &TeamMember) -> bool {
        m.email.eq_ignore_ascii_case(&self.frame.email)
    }
}

/// What the invitation form shows, and how the page answers.
struct Shown {
    email: String,
    role: Role,
    errors: FormErrors,
    refusal: Option<String>,
    status: StatusCode,
}

impl Shown {
    fn fresh() -> Self {
        Self {
            email: String::new(),
            role: Role::Editor,
            errors: FormErrors::none(),
            refusal: None,
            status: StatusCode::OK,
        }
    }
}

/// Renders the team page as `member` sees it.
async fn render(
    state: &AppState,
    req: &HttpRequest,
    member: &Member,
    shown: Shown,
) -> Result<HttpResponse, ApiError> {
    let members = rest::team_members(state, member).await?;
    // Invitations are admins' business, as `GET /v1/invitations` is.
    let invitations = if member.role.rank() >= Role::Admin.rank() {
        rest::pending_invitations(state, member).await?
    } else {
        Vec::new()
    };
    let mut tx = state.store.tenant_tx(member.tenant).await?;
    let frame = Frame::load(state, req, member, &mut tx, None, Section::Team).await?;
    tx.commit().await?;
    let view = TeamView {
        frame: frame.clone(),
        members,
        invitations,
        email: shown.email,
        role: shown.role,
        errors: shown.errors,
        refusal: shown.refusal,
    };
    if shown.status == StatusCode::OK {
        frame::html(&frame, &view)
    } else {
        frame::html_with(shown.status, &view)
    }
}

/// `GET /dashboard/team`: the members, the pending invitations, the
/// invitation form.
pub async fn page(
    req: HttpRequest,
    member: Member,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    member.person()?;
    render(&state, &req, &member, Shown::fresh()).await
}

/// The invitation form.
#[derive(Deserialize)]
pub struct InviteForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
}

/// `POST /dashboard/team/invitations`: invites, as `POST /v1/invitations`.
pub async fn invite(
    req: HttpRequest,
    member: Member,
    state: web::Data<AppState>,
    form: Posted<InviteForm>,
) -> Result<HttpResponse, ApiError> {
    member.require(Role::Admin)?;
    let form = form.into_inner()?;
    let input = InvitationInput {
        email: Some(form.email.clone()),
        role: Some(form.role.clone()),
    };
    let (errors, status) = match rest::create_invitation(&state, &member, input).await {
        Ok(invitation) => {
            return Ok(frame::done(
                "/dashboard/team",
                &format!(
                    "Invitation sent to {} as {}. The link works for 7 days.",
                    invitation.email, invitation.role
                ),
            ));
        }
        Err(ApiError::EmailUnverified) => (
            FormErrors::field(
                "email",
                "Invitations go out once an owner of this team has verified their email \
                 address. The link is in the email we sent at sign-up; the account page can \
                 send it again.",
            ),
            StatusCode::FORBIDDEN,
        ),
        Err(ApiError::Conflict { detail, .. }) => {
            (FormErrors::field("email", detail), StatusCode::CONFLICT)
        }
        Err(err) => (
            FormErrors::from_error(err)?,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    };
    let shown = Shown {
        email: form.email,
        role: form.role.parse().unwrap_or(Role::Editor),
        errors,
        refusal: None,
        status,
    };
    render(&state, &req, &member, shown).await
}

fn invitation_id(raw: &str) -> Result<InvitationId, ApiError> {
    raw.parse().map_err(|_| ApiError::NotFound)
}

fn user_id(raw: &str) -> Result<UserId, ApiError> {
    raw.parse().map_err(|_| ApiError::NotFound)
}

/// `POST /dashboard/team/invitations/{id}/resend`: a fresh link, the old
/// one withdrawn (`routes::team::resend_invitation`).
pub async fn resend(
    member: Member,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = invitation_id(&id)?;
    let invitation = rest::resend_invitation(&state, &member, id).await?;
    Ok(frame::done(
        "/dashboard/team",
        &format!(
            "A new invitation is on its way to {}; the earlier link no longer works.",
            invitation.email
        ),
    ))
}

/// `POST /dashboard/team/invitations/{id}/revoke`: as
/// `DELETE /v1/invitations/{id}`.
pub async fn revoke(
    member: Member,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = invitation_id(&id)?;
    let invitation = rest::withdraw_invitation(&state, &member, id).await?;
    Ok(frame::done(
        "/dashboard/team",
        &format!(
            "The invitation to {} is withdrawn; its link no longer works.",
            invitation.email
        ),
    ))
}

/// The role selector.
#[derive(Deserialize)]
pub struct RoleForm {
    role: Option<String>,
}

/// `POST /dashboard/team/members/{user_id}/role`: as
/// `PATCH /v1/members/{user_id}`; the last owner's refusal is said on the
/// page.
pub async fn change_role(
    req: HttpRequest,
    member: Member,
    state: web::Data<AppState>,
    user: web::Path<String>,
    form: Posted<RoleForm>,
) -> Result<HttpResponse, ApiError> {
    // Any change of role needs an admin (more, for an owner's: the REST
    // twin's check); asked before the form is read, so that a malformed
    // form from a viewer is refused for the role, as the API refuses it.
    member.require(Role::Admin)?;
    let target = user_id(&user)?;
    let role = form.into_inner()?.role;
    match rest::set_member_role(&state, &member, target, role).await {
        Ok(()) => Ok(frame::done(
            "/dashboard/team",
            "Role changed. It applies from the member's next click.",
        )),
        Err(err) => refused(&state, &req, &member, err).await,
    }
}

/// `POST /dashboard/team/members/{user_id}/remove`: as
/// `DELETE /v1/members/{user_id}`.
pub async fn remove(
    req: HttpRequest,
    member: Member,
    state: web::Data<AppState>,
    user: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let target = user_id(&user)?;
    match rest::remove_member(&state, &member, target).await {
        Ok(()) => Ok(frame::done(
            "/dashboard/team",
            "Member removed; their sessions in this team have ended.",
        )),
        Err(err) => refused(&state, &req, &member, err).await,
    }
}

/// A refusal about a member: a conflict (the last owner) is said above the
/// members, with the page around it; anything else is an error page.
async fn refused(
    state: &AppState,
    req: &HttpRequest,
    member: &Member,
    err: ApiError,
) -> Result<HttpResponse, ApiError> {
    let ApiError::Conflict { detail, .. } = err else {
        return Err(err);
    };
    let shown = Shown {
        refusal: Some(format!(
            "{detail} Make another member an owner first, then change this one."
        )),
        status: StatusCode::CONFLICT,
        ..Shown::fresh()
    };
    render(state, req, member, shown).await
}
