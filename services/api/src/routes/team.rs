//! The team: invitations and members.

use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, web};
use anyhow::Context;
use heliograph_domain::{EmailAddress, FieldError, Password, Role, UserId};
use heliograph_store::{Invitation, InvitationProblem, TeamProblem};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::path_id;
use super::sessions::open_session;
use crate::auth::Member;
use crate::auth::client_ip;
use crate::error::{ApiError, Fields, required};
use crate::limits::{Bucket, client_key};
use crate::startup::AppState;

/// How long an invitation link works.
const INVITATION_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

fn invitation_json(i: &Invitation) -> Value {
    json!({
        "id": i.id,
        "email": i.email,
        "role": i.role,
        "expires_at": heliograph_web::timestamp(i.expires_at),
        "created_at": heliograph_web::timestamp(i.created_at),
    })
}

fn parse_role(f: &mut Fields, raw: Option<String>) -> Option<Role> {
    f.check(required("role", raw).and_then(|r| {
        r.parse::<Role>()
            .map_err(|e| FieldError::new("role", "invalid", e.to_string()))
    }))
}

/// Admins manage the team, as people; anything touching an owner needs an
/// owner. `acting` is the actor's role, re-read under the team lock where
/// it matters (it may have changed since the request began).
fn team_manager(member: &Member, acting: Role, roles: &[Role]) -> Result<UserId, ApiError> {
    let user = member.person().map(|(user, _)| user)?;
    let needed = if roles.contains(&Role::Owner) {
        Role::Owner
    } else {
        Role::Admin
    };
    if acting.rank() < needed.rank() {
        return Err(ApiError::Forbidden);
    }
    Ok(user)
}

fn last_owner() -> ApiError {
    ApiError::Conflict {
        code: "last_owner",
        detail: "A tenant keeps at least one owner.",
    }
}

/// `{"invitation": {"email", "role"}}`.
#[derive(Deserialize)]
pub struct InvitationEnvelope {
    invitation: Option<InvitationInput>,
}

#[derive(Deserialize)]
struct InvitationInput {
    email: Option<String>,
    role: Option<String>,
}

/// `POST /v1/invitations`: emails a single-use link, valid 7 days.
pub async fn invite(
    member: Member,
    state: web::Data<AppState>,
    body: web::Json<InvitationEnvelope>,
) -> Result<HttpResponse, ApiError> {
    member.require(Role::Admin)?;
    let input = body
        .into_inner()
        .invitation
        .ok_or_else(|| ApiError::field(FieldError::new("invitation", "missing", "is required")))?;
    let mut f = Fields::default();
    let email =
        f.check(required("email", input.email).and_then(|e| EmailAddress::parse("email", &e)));
    let role = parse_role(&mut f, input.role);
    let (Some(email), Some(role)) = (email, role) else {
        return Err(f.into_error());
    };
    let inviter = team_manager(&member, member.role, &[role])?;
    state
        .limiter
        .hit(Bucket::InviteByActor, &member.actor.to_string())
        .await?;
    let mut tx = state.store.tenant_tx(member.tenant).await?;
    let invitation = tx
        .create_invitation(&email, role, inviter, INVITATION_LIFETIME)
        .await?;
    tx.audit(&member.audit(
        "invitation.created",
        "invitation",
        invitation.id,
        json!({"role": role}),
    ))
    .await?;
    tx.commit().await?;
    Ok(HttpResponse::Created().json(invitation_json(&invitation)))
}

/// `GET /v1/invitations`: the pending ones.
pub async fn invitations(
    member: Member,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    team_manager(&member, member.role, &[])?;
    let mut tx = state.store.tenant_tx(member.tenant).await?;
    let list = tx.pending_invitations().await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(list.iter().map(invitation_json).collect::<Vec<_>>()))
}

/// `DELETE /v1/invitations/{id}`: the link stops working at once.
pub async fn revoke_invitation(
    member: Member,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id: Uuid = path_id(&id)?;
    team_manager(&member, member.role, &[])?;
    let mut tx = state.store.tenant_tx(member.tenant).await?;
    let invitation = tx.revoke_invitation(id).await?;
    // Withdrawing an owner's invitation is an owner's business (dropping the
    // transaction undoes the revocation).
    team_manager(&member, member.role, &[invitation.role])?;
    tx.audit(&member.audit(
        "invitation.revoked",
        "invitation",
        invitation.id,
        json!({"role": invitation.role}),
    ))
    .await?;
    tx.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `{"token", "password"}`.
#[derive(Deserialize)]
pub struct AcceptBody {
    token: Option<String>,
    password: Option<String>,
}

fn invitation_error(problem: InvitationProblem) -> ApiError {
    let (code, message) = match problem {
        InvitationProblem::Unknown => ("invalid", "is not a valid invitation"),
        InvitationProblem::Used => ("used", "has been accepted already"),
        InvitationProblem::Revoked => ("revoked", "was withdrawn by the team"),
        InvitationProblem::Expired => ("expired", "has expired; ask the team for a new one"),
    };
    ApiError::field(FieldError::new("token", code, message))
}

/// `POST /v1/invitations/accept`: joins the team. For an address with no
/// account, `password` creates one (the link proves the address); for an
/// existing account, `password` must be that account's. Answers a session
/// acting for the tenant joined.
pub async fn accept(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<AcceptBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let mut f = Fields::default();
    let token = f.check(required("token", body.token));
    let password = f.check(required("password", body.password));
    let (Some(token), Some(password)) = (token, password) else {
        return Err(f.into_error());
    };
    let id = state
        .links
        .verify("invitation", &token)
        .ok_or_else(|| invitation_error(InvitationProblem::Unknown))?;
    let tenant = state
        .store
        .invitation_tenant(id)
        .await?
        .ok_or_else(|| invitation_error(InvitationProblem::Unknown))?;
    // A first look, outside the transaction that accepts, to know the address.
    let mut look = state.store.tenant_tx(tenant).await?;
    let invitation = look
        .invitation_to_accept(id)
        .await?
        .map_err(invitation_error)?;
    look.commit().await?;
    let email = EmailAddress::parse("email", &invitation.email).map_err(ApiError::field)?;

    let user = match state.store.user_credentials(&email).await? {
        Some(existing) => {
            // A leaked link must not become unlimited password guessing.
            let client = client_key(client_ip(&req));
            state.limiter.hit(Bucket::LoginByIp, &client).await?;
            let key = format!(
                "{}|{client}",
                heliograph_auth::fingerprint(&email.as_str().to_lowercase())
            );
            state.limiter.hit(Bucket::LoginByEmailAndIp, &key).await?;
            let hash = existing.password_hash.clone();
            let matches = web::block(move || heliograph_auth::verify_password(&hash, &password))
                .await
                .context("Failed to run password verification")?;
            if !matches {
                return Err(ApiError::InvalidCredentials);
            }
            existing.id
        }
        None => {
            let password = Password::parse("password", &password).map_err(ApiError::field)?;
            let hash = web::block(move || heliograph_auth::hash_password(&password))
                .await
                .context("Failed to run password hashing")?
                .context("Failed to hash a password")?;
            state.store.create_verified_user(&email, &hash).await?
        }
    };
    let mut tx = state.store.tenant_tx(tenant).await?;
    // Checked again under the lock: the link works once, even when raced.
    let invitation = tx
        .invitation_to_accept(id)
        .await?
        .map_err(invitation_error)?;
    tx.accept_invitation(&invitation, user).await?;
    tx.audit(&heliograph_store::AuditEntry {
        actor: heliograph_store::AuditActor {
            kind: "user",
            id: user.as_uuid(),
        },
        action: "invitation.accepted",
        object_type: "invitation",
        object_id: invitation.id,
        ip: None,
        details: json!({"role": invitation.role}),
    })
    .await?;
    tx.commit().await?;
    Ok(open_session(&state, user, tenant)
        .await?
        .respond(&state, actix_web::http::StatusCode::CREATED))
}

/// `GET /v1/members`: the team, for every member.
pub async fn members(member: Member, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let mut tx = state.store.tenant_tx(member.tenant).await?;
    let list = tx.members().await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(
        list.iter()
            .map(|m| {
                json!({"user_id": m.user_id, "email": m.email, "role": m.role,
                       "joined_at": heliograph_web::timestamp(m.joined_at)})
            })
            .collect::<Vec<_>>(),
    ))
}

/// `{"member": {"role"}}`.
#[derive(Deserialize)]
pub struct MemberEnvelope {
    member: Option<MemberInput>,
}

#[derive(Deserialize)]
struct MemberInput {
    role: Option<String>,
}

/// `PATCH /v1/members/{user_id}`: takes effect on the member's next request.
pub async fn change_role(
    member: Member,
    state: web::Data<AppState>,
    user: web::Path<String>,
    body: web::Json<MemberEnvelope>,
) -> Result<HttpResponse, ApiError> {
    let target: UserId = path_id(&user)?;
    member.require(Role::Admin)?;
    let mut f = Fields::default();
    let role = parse_role(&mut f, body.into_inner().member.and_then(|m| m.role));
    let Some(role) = role else {
        return Err(f.into_error());
    };
    let mut tx = state.store.tenant_tx(member.tenant).await?;
    let current = tx.member_role(target).await?;
    let acting = tx.member_role(member.person()?.0).await?;
    team_manager(&member, acting, &[current, role])?;
    let old = tx
        .set_member_role(target, role)
        .await?
        .map_err(|TeamProblem::LastOwner| last_owner())?;
    tx.audit(&member.audit(
        "member.role_changed",
        "user",
        target.as_uuid(),
        json!({"from": old, "to": role}),
    ))
    .await?;
    tx.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `DELETE /v1/members/{user_id}`: the member's sessions here end at once.
pub async fn remove(
    member: Member,
    state: web::Data<AppState>,
    user: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let target: UserId = path_id(&user)?;
    member.require(Role::Admin)?;
    let mut tx = state.store.tenant_tx(member.tenant).await?;
    let current = tx.member_role(target).await?;
    let acting = tx.member_role(member.person()?.0).await?;
    team_manager(&member, acting, &[current])?;
    let old = tx
        .remove_member(target)
        .await?
        .map_err(|TeamProblem::LastOwner| last_owner())?;
    tx.audit(&member.audit(
        "member.removed",
        "user",
        target.as_uuid(),
        json!({"role": old}),
    ))
    .await?;
    tx.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}
