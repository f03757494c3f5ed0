//! The team: invitations and members.

use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, web};
use anyhow::Context;
use heliograph_domain::{
    EmailAddress, FieldError, Invitation, InvitationId, InvitationProblem, Password, Role,
    TeamMember, TeamProblem, TenantId, UserId,
};
use heliograph_store::TenantTx;
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use super::path_id;
use super::sessions::{SessionAnswer, open_session};
use crate::auth::Member;
use crate::auth::client_ip;
use crate::error::{ApiError, Fields, envelope, required};
use crate::limits::{Bucket, client_key};
use crate::openapi::{
    BadRequest, Conflict, Forbidden, NotFound, PaymentRequired, TooManyRequests, Unauthorized,
    ValidationFailed,
};
use crate::startup::AppState;

/// How long an invitation link works.
const INVITATION_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

/// A pending invitation.
#[derive(Serialize, utoipa::ToSchema)]
pub struct InvitationResponse {
    id: Uuid,
    email: String,
    role: Role,
    expires_at: String,
    created_at: String,
}

fn invitation_json(i: &Invitation) -> InvitationResponse {
    InvitationResponse {
        id: i.id.as_uuid(),
        email: i.email.clone(),
        role: i.role,
        expires_at: heliograph_web::timestamp(i.expires_at),
        created_at: heliograph_web::timestamp(i.created_at),
    }
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
    if !heliograph_domain::team::may_manage_team(acting, roles) {
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
#[derive(Deserialize, utoipa::ToSchema)]
pub struct InvitationEnvelope {
    // Required: a body without it is 422 on the envelope.
    #[schema(required = true, value_type = InvitationInput)]
    invitation: Option<InvitationInput>,
}

/// Whom to invite, as what.
#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct InvitationInput {
    #[schema(format = Email)]
    pub(crate) email: Option<String>,
    /// `owner`, `admin`, `editor` or `viewer`.
    #[schema(value_type = Option<Role>)]
    pub(crate) role: Option<String>,
}

/// Invites someone: emails a single-use link, valid 7 days.
///
/// Admins, as people; inviting an owner takes an owner. Until an owner of
/// the tenant has verified their email address, nobody can be invited
/// (403 `email_unverified`).
#[utoipa::path(
    post,
    path = "/v1/invitations",
    tag = "team",
    operation_id = "create_invitation",
    security(("bearer" = []), ("cookie" = [])),
    request_body(content = InvitationEnvelope, content_type = "application/json",
        example = json!({"invitation": {"email": "new.member@example.com", "role": "editor"}})),
    responses(
        (status = 201, description = "Invited.", body = InvitationResponse),
        BadRequest, Unauthorized, Forbidden, Conflict, ValidationFailed, TooManyRequests, PaymentRequired,
    ),
)]
pub async fn invite(
    member: Member,
    state: web::Data<AppState>,
    body: web::Json<InvitationEnvelope>,
) -> Result<HttpResponse, ApiError> {
    member.require(Role::Admin)?;
    let input = envelope("invitation", body.into_inner().invitation)?;
    let invitation = create_invitation(&state, &member, input).await?;
    Ok(HttpResponse::Created().json(invitation_json(&invitation)))
}

/// Invites `input.email` as `input.role` (see [`invite`] for who may):
/// `POST /v1/invitations` and the dashboard's invitation form.
pub(crate) async fn create_invitation(
    state: &AppState,
    member: &Member,
    input: InvitationInput,
) -> Result<Invitation, ApiError> {
    member.require(Role::Admin)?;
    let mut f = Fields::default();
    let email =
        f.check(required("email", input.email).and_then(|e| EmailAddress::parse("email", &e)));
    let role = parse_role(&mut f, input.role);
    let (Some(email), Some(role)) = (email, role) else {
        return Err(f.into_error());
    };
    let inviter = team_manager(member, member.role, &[role])?;
    state
        .limiter
        .hit(Bucket::InviteByActor, &member.actor.to_string())
        .await?;
    let mut tx = state.store.tenant_tx(member.tenant).await?;
    let invitation = invite_in(state, &mut tx, member, &email, role, inviter).await?;
    tx.commit().await?;
    Ok(invitation)
}

/// Records an invitation in `tx` (the tenant verified, the inviter's right
/// to the role checked already), with its audit entry.
async fn invite_in(
    state: &AppState,
    tx: &mut TenantTx,
    member: &Member,
    email: &EmailAddress,
    role: Role,
    inviter: UserId,
) -> Result<Invitation, ApiError> {
    // An invitation emails an address the team typed in: not from an
    // account nobody has proven to be anyone's.
    if !tx.tenant_verified().await? {
        return Err(ApiError::EmailUnverified);
    }
    // An open invitation holds a member's place.
    crate::plan_limits::admit_one(state, tx, heliograph_domain::Limit::TeamMembers, None).await?;
    let invitation = tx
        .create_invitation(email, role, inviter, INVITATION_LIFETIME)
        .await?;
    tx.audit(&member.audit(
        "invitation.created",
        "invitation",
        invitation.id.as_uuid(),
        json!({"role": role}),
    ))
    .await?;
    Ok(invitation)
}

/// Sends an invitation again: revokes it and invites the same address with
/// the same role, in one transaction, through the same steps as
/// [`revoke_invitation`] and [`invite`] (a fresh link, valid 7 days; the
/// old link stops working). The REST API has no endpoint of its own for
/// it: a client revokes and invites again.
pub(crate) async fn resend_invitation(
    state: &AppState,
    member: &Member,
    id: InvitationId,
) -> Result<Invitation, ApiError> {
    member.require(Role::Admin)?;
    let inviter = team_manager(member, member.role, &[])?;
    state
        .limiter
        .hit(Bucket::InviteByActor, &member.actor.to_string())
        .await?;
    let mut tx = state.store.tenant_tx(member.tenant).await?;
    let old = revoke_in(&mut tx, member, id).await?;
    let email = EmailAddress::parse("email", &old.email).map_err(ApiError::field)?;
    let invitation = invite_in(state, &mut tx, member, &email, old.role, inviter).await?;
    tx.commit().await?;
    Ok(invitation)
}

/// Lists the pending invitations (admin, as a person).
#[utoipa::path(
    get,
    path = "/v1/invitations",
    tag = "team",
    operation_id = "list_invitations",
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "The pending invitations.", body = Vec<InvitationResponse>),
        Unauthorized, Forbidden, TooManyRequests,
    ),
)]
pub async fn invitations(
    member: Member,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let list = pending_invitations(&state, &member).await?;
    Ok(HttpResponse::Ok().json(list.iter().map(invitation_json).collect::<Vec<_>>()))
}

/// The pending invitations, for whoever may manage the team.
pub(crate) async fn pending_invitations(
    state: &AppState,
    member: &Member,
) -> Result<Vec<Invitation>, ApiError> {
    team_manager(member, member.role, &[])?;
    let mut tx = state.store.tenant_tx(member.tenant).await?;
    let list = tx.pending_invitations().await?;
    tx.commit().await?;
    Ok(list)
}

/// Withdraws an invitation: the link stops working at once.
///
/// Admins, as people; an owner's invitation takes an owner.
#[utoipa::path(
    delete,
    path = "/v1/invitations/{id}",
    tag = "team",
    operation_id = "revoke_invitation",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path, description = "The invitation's id.")),
    responses(
        (status = 204, description = "Withdrawn."),
        Unauthorized, Forbidden, NotFound, TooManyRequests,
    ),
)]
pub async fn revoke_invitation(
    member: Member,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id: InvitationId = path_id(&id)?;
    withdraw_invitation(&state, &member, id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Withdraws invitation `id`: `DELETE /v1/invitations/{id}` and the
/// dashboard's revoke button.
pub(crate) async fn withdraw_invitation(
    state: &AppState,
    member: &Member,
    id: InvitationId,
) -> Result<Invitation, ApiError> {
    team_manager(member, member.role, &[])?;
    let mut tx = state.store.tenant_tx(member.tenant).await?;
    let invitation = revoke_in(&mut tx, member, id).await?;
    tx.commit().await?;
    Ok(invitation)
}

/// Revokes an open invitation in `tx`, with its audit entry.
async fn revoke_in(
    tx: &mut TenantTx,
    member: &Member,
    id: InvitationId,
) -> Result<Invitation, ApiError> {
    let invitation = tx.revoke_invitation(id).await?;
    // Withdrawing an owner's invitation is an owner's business (dropping the
    // transaction undoes the revocation).
    team_manager(member, member.role, &[invitation.role])?;
    tx.audit(&member.audit(
        "invitation.revoked",
        "invitation",
        invitation.id.as_uuid(),
        json!({"role": invitation.role}),
    ))
    .await?;
    Ok(invitation)
}

/// `{"token", "password"}`.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct AcceptBody {
    /// The token from the emailed link.
    pub(crate) token: Option<String>,
    /// A new account's password, or the existing account's own.
    pub(crate) password: Option<String>,
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

/// Accepts an invitation: joins the team.
///
/// For an address with no account, `password` creates one (the link proves
/// the address); for an existing account, `password` must be that
/// account's (else 401 `invalid_credentials`). Answers a session acting for
/// the tenant joined, as sign-in does. A bad token is a 422 on `token` with
/// code `invalid`, `used`, `revoked` or `expired`.
#[utoipa::path(
    post,
    path = "/v1/invitations/accept",
    tag = "team",
    operation_id = "accept_invitation",
    request_body(content = AcceptBody, content_type = "application/json"),
    responses(
        (status = 201, description = "Joined, and signed in.", body = SessionAnswer,
            headers(("Set-Cookie" = String, description = "The session and CSRF cookies."))),
        BadRequest, Unauthorized, Conflict, ValidationFailed, TooManyRequests,
    ),
)]
pub async fn accept(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<AcceptBody>,
) -> Result<HttpResponse, ApiError> {
    let (user, tenant) = join_team(&req, &state, body.into_inner()).await?;
    Ok(open_session(&state, user, tenant)
        .await?
        .respond(&state, actix_web::http::StatusCode::CREATED))
}

/// What an invitation link offers, before it is accepted.
pub(crate) struct InvitationOffer {
    /// The invitation (acceptable now).
    pub(crate) invitation: Invitation,
    /// Its tenant.
    pub(crate) tenant: TenantId,
    /// The team's name.
    pub(crate) team: String,
    /// Whether an account with the invited address exists (then its
    /// password is asked, not a new one).
    pub(crate) account_exists: bool,
}

/// The invitation a link's token names, if it can be accepted now (else
/// why not); outside the transaction that accepts.
pub(crate) async fn invitation_offer(
    state: &AppState,
    token: &str,
) -> Result<Result<InvitationOffer, InvitationProblem>, ApiError> {
    let Some(id) = state
        .links
        .verify("invitation", token)
        .map(InvitationId::from)
    else {
        return Ok(Err(InvitationProblem::Unknown));
    };
    let Some(tenant) = state.store.invitation_tenant(id).await? else {
        return Ok(Err(InvitationProblem::Unknown));
    };
    let mut look = state.store.tenant_tx(tenant).await?;
    let invitation = match look.invitation_to_accept(id).await? {
        Ok(invitation) => invitation,
        Err(problem) => return Ok(Err(problem)),
    };
    let team = look.team_name().await?;
    look.commit().await?;
    let email = EmailAddress::parse("email", &invitation.email).map_err(ApiError::field)?;
    let account_exists = state.store.user_credentials(&email).await?.is_some();
    Ok(Ok(InvitationOffer {
        invitation,
        tenant,
        team,
        account_exists,
    }))
}

/// Accepts an invitation (see [`accept`]): the person joins, with an
/// account made for them if they had none. Answers whom to sign in, where:
/// `POST /v1/invitations/accept` and the dashboard's invitation page.
pub(crate) async fn join_team(
    req: &HttpRequest,
    state: &AppState,
    body: AcceptBody,
) -> Result<(UserId, TenantId), ApiError> {
    let mut f = Fields::default();
    let token = f.check(required("token", body.token));
    let password = f.check(required("password", body.password));
    let (Some(token), Some(password)) = (token, password) else {
        return Err(f.into_error());
    };
    // A first look, outside the transaction that accepts, to know the address.
    let InvitationOffer {
        invitation, tenant, ..
    } = invitation_offer(state, &token)
        .await?
        .map_err(invitation_error)?;
    let id = invitation.id;
    let email = EmailAddress::parse("email", &invitation.email).map_err(ApiError::field)?;

    let user = match state.store.user_credentials(&email).await? {
        Some(existing) => {
            // A leaked link must not become unlimited password guessing.
            let ip = client_ip(req);
            let client = client_key(ip);
            state.limiter.hit_client(Bucket::LoginByIp, ip).await?;
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
            if !existing.email_verified {
                // The invitation came to the address: that proves it.
                state.store.mark_email_verified(existing.id).await?;
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
        object_id: invitation.id.as_uuid(),
        ip: None,
        details: json!({"role": invitation.role}),
    })
    .await?;
    tx.commit().await?;
    Ok((user, tenant))
}

/// A member of the team.
#[derive(Serialize, utoipa::ToSchema)]
pub struct MemberResponse {
    user_id: Uuid,
    email: String,
    role: Role,
    joined_at: String,
}

/// Lists the team (any member).
#[utoipa::path(
    get,
    path = "/v1/members",
    tag = "team",
    operation_id = "list_members",
    security(("bearer" = []), ("oauth" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "The members.", body = Vec<MemberResponse>),
        Unauthorized, TooManyRequests,
    ),
)]
pub async fn members(member: Member, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let list = team_members(&state, &member).await?;
    Ok(HttpResponse::Ok().json(
        list.iter()
            .map(|m| MemberResponse {
                user_id: m.user_id.as_uuid(),
                email: m.email.clone(),
                role: m.role,
                joined_at: heliograph_web::timestamp(m.joined_at),
            })
            .collect::<Vec<_>>(),
    ))
}

/// The team (any member): `GET /v1/members` and the dashboard's team page.
pub(crate) async fn team_members(
    state: &AppState,
    member: &Member,
) -> Result<Vec<TeamMember>, ApiError> {
    let mut tx = state.store.tenant_tx(member.tenant).await?;
    let list = tx.members().await?;
    tx.commit().await?;
    Ok(list)
}

/// `{"member": {"role"}}`.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct MemberEnvelope {
    // Required: a body without it is 422 on the envelope.
    #[schema(required = true, value_type = MemberInput)]
    member: Option<MemberInput>,
}

/// A member's new role.
#[derive(Deserialize, utoipa::ToSchema)]
struct MemberInput {
    /// `owner`, `admin`, `editor` or `viewer`.
    #[schema(value_type = Option<Role>)]
    role: Option<String>,
}

/// Changes a member's role; it takes effect on their next request.
///
/// Admins, as people; anything touching an owner takes an owner. The last
/// owner stays one (409 `last_owner`).
#[utoipa::path(
    patch,
    path = "/v1/members/{user_id}",
    tag = "team",
    operation_id = "change_member_role",
    security(("bearer" = []), ("cookie" = [])),
    params(("user_id" = Uuid, Path, description = "The member's user id.")),
    request_body(content = MemberEnvelope, content_type = "application/json"),
    responses(
        (status = 204, description = "Changed."),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, ValidationFailed, TooManyRequests,
    ),
)]
pub async fn change_role(
    member: Member,
    state: web::Data<AppState>,
    user: web::Path<String>,
    body: web::Json<MemberEnvelope>,
) -> Result<HttpResponse, ApiError> {
    let target: UserId = path_id(&user)?;
    set_member_role(
        &state,
        &member,
        target,
        body.into_inner().member.and_then(|m| m.role),
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Gives `target` the role `role` names (see [`change_role`] for who may):
/// `PATCH /v1/members/{user_id}` and the dashboard's role selector.
pub(crate) async fn set_member_role(
    state: &AppState,
    member: &Member,
    target: UserId,
    role: Option<String>,
) -> Result<(), ApiError> {
    member.require(Role::Admin)?;
    let mut f = Fields::default();
    let role = parse_role(&mut f, role);
    let Some(role) = role else {
        return Err(f.into_error());
    };
    // A key is refused before the target is looked up: keys never manage the team.
    let (person, _) = member.person()?;
    let mut tx = state.store.tenant_tx(member.tenant).await?;
    let current = tx.member_role(target).await?;
    let acting = tx.member_role(person).await?;
    team_manager(member, acting, &[current, role])?;
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
    Ok(())
}

/// Removes a member; their sessions here end at once.
///
/// Admins, as people; removing an owner takes an owner. The last owner
/// stays (409 `last_owner`).
#[utoipa::path(
    delete,
    path = "/v1/members/{user_id}",
    tag = "team",
    operation_id = "remove_member",
    security(("bearer" = []), ("cookie" = [])),
    params(("user_id" = Uuid, Path, description = "The member's user id.")),
    responses(
        (status = 204, description = "Removed."),
        Unauthorized, Forbidden, NotFound, Conflict, TooManyRequests,
    ),
)]
pub async fn remove(
    member: Member,
    state: web::Data<AppState>,
    user: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let target: UserId = path_id(&user)?;
    remove_member(&state, &member, target).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Removes `target` from the team (see [`remove`] for who may):
/// `DELETE /v1/members/{user_id}` and the dashboard's remove button.
pub(crate) async fn remove_member(
    state: &AppState,
    member: &Member,
    target: UserId,
) -> Result<(), ApiError> {
    member.require(Role::Admin)?;
    // A key is refused before the target is looked up: keys never manage the team.
    let (person, _) = member.person()?;
    let mut tx = state.store.tenant_tx(member.tenant).await?;
    let current = tx.member_role(target).await?;
    let acting = tx.member_role(person).await?;
    team_manager(member, acting, &[current])?;
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
    Ok(())
}
