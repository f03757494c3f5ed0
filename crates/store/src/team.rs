//! The team: members, their roles, and invitations, as stored. Who may
//! change what (the last owner, keys outliving their maker's power, when an
//! invitation works) is the domain's (`heliograph_domain::team`).

use std::time::Duration;

use heliograph_domain::team::{change_role, remove_member};
use heliograph_domain::{
    EmailAddress, Invitation, InvitationId, InvitationProblem, Role, TeamMember, TeamProblem,
    TenantId, UserId,
};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{Claimed, Result, Store, StoreError, TenantTx};

/// An invitation row.
#[derive(Debug, Clone, sqlx::FromRow)]
struct InvitationRow {
    #[sqlx(try_from = "Uuid")]
    id: InvitationId,
    email: String,
    #[sqlx(try_from = "String")]
    role: Role,
    expires_at: OffsetDateTime,
    accepted_at: Option<OffsetDateTime>,
    revoked_at: Option<OffsetDateTime>,
    created_at: OffsetDateTime,
}

impl From<InvitationRow> for Invitation {
    fn from(r: InvitationRow) -> Self {
        Self {
            id: r.id,
            email: r.email,
            role: r.role,
            expires_at: r.expires_at,
            accepted_at: r.accepted_at,
            revoked_at: r.revoked_at,
            created_at: r.created_at,
        }
    }
}

/// An invitation row with what sending its email needs.
#[derive(Debug, Clone, sqlx::FromRow)]
struct InvitationSendRow {
    #[sqlx(flatten)]
    invitation: InvitationRow,
    sent_at: Option<OffsetDateTime>,
    tenant_name: String,
    inviter_email: Option<String>,
    /// The database's clock, which the expiry is measured by.
    now: OffsetDateTime,
}

/// A member row.
#[derive(Debug, Clone, sqlx::FromRow)]
struct MemberRow {
    #[sqlx(try_from = "Uuid")]
    user_id: UserId,
    email: String,
    #[sqlx(try_from = "String")]
    role: Role,
    joined_at: OffsetDateTime,
}

impl From<MemberRow> for TeamMember {
    fn from(r: MemberRow) -> Self {
        Self {
            user_id: r.user_id,
            email: r.email,
            role: r.role,
            joined_at: r.joined_at,
        }
    }
}

/// An invitation email to send.
#[derive(Debug, Clone)]
pub struct InvitationEmailWork {
    /// The invitation.
    pub id: Uuid,
    /// Who is invited.
    pub email: String,
    /// With which role.
    pub role: Role,
    /// The tenant's name.
    pub tenant_name: String,
    /// Who invited them (their address), unless that account is gone.
    pub inviter_email: Option<String>,
    /// When the link stops working.
    pub expires_at: OffsetDateTime,
}

macro_rules! invitation_columns {
    () => {
        "id, email::text as email, role, expires_at, accepted_at, revoked_at, created_at"
    };
}

impl Store {
    /// The tenant of an invitation, if it exists.
    ///
    /// Cross-tenant by nature: the link names an invitation, not a tenant.
    pub async fn invitation_tenant(&self, id: InvitationId) -> Result<Option<TenantId>> {
        let (tenant,): (Option<Uuid>,) = sqlx::query_as("select hg_invitation_tenant($1)")
            .bind(id.as_uuid())
            .fetch_one(&self.pool)
            .await?;
        Ok(tenant.map(TenantId::from))
    }

    /// Claims up to `limit` invitations whose email is not yet queued.
    ///
    /// Cross-tenant by nature: the relay serves every tenant.
    pub async fn claim_invitations(&self, limit: i64) -> Result<Claimed<(Uuid, TenantId)>> {
        let mut tx = self.pool.begin().await?;
        let rows: Vec<(Uuid, Uuid)> =
            sqlx::query_as("select id, tenant_id from hg_claim_invitations($1)")
                .bind(i32::try_from(limit).unwrap_or(i32::MAX))
                .fetch_all(&mut *tx)
                .await?;
        Ok(Claimed::new(
            tx,
            rows.into_iter().map(|(id, t)| (id, t.into())).collect(),
            |(id, _)| *id,
            "select hg_mark_invitations_queued($1)",
        ))
    }

    /// Invitations queued more than `stale` ago and still unsent (their job
    /// was lost): touches them, answers them for re-queueing.
    ///
    /// Cross-tenant by nature: the sweeper serves every tenant.
    pub async fn restart_stalled_invitations(
        &self,
        stale: Duration,
        limit: i64,
    ) -> Result<Vec<(Uuid, TenantId)>> {
        let rows: Vec<(Uuid, Uuid)> =
            sqlx::query_as("select id, tenant_id from hg_restart_stalled_invitations($1, $2)")
                .bind(i64::try_from(stale.as_millis()).unwrap_or(i64::MAX))
                .bind(i32::try_from(limit).unwrap_or(i32::MAX))
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().map(|(id, t)| (id, t.into())).collect())
    }

    /// Creates a person's account, its address proven (by an invitation link).
    pub async fn create_verified_user(
        &self,
        email: &EmailAddress,
        password_hash: &str,
    ) -> Result<UserId> {
        let id = UserId::new();
        sqlx::query(
            "insert into users (id, email, password_hash, email_verified_at) values ($1, $2, $3, now())",
        )
        .bind(id.as_uuid())
        .bind(email.as_str())
        .bind(password_hash)
        .execute(&self.pool)
        .await?;
        Ok(id)
    }
}

impl TenantTx {
    /// Invites `email` with `role`, valid for `lifetime`. Conflicts: an
    /// address already a member (`memberships_pkey`), or already invited
    /// (`invitations_pending_key`).
    pub async fn create_invitation(
        &mut self,
        email: &EmailAddress,
        role: Role,
        invited_by: UserId,
        lifetime: Duration,
    ) -> Result<Invitation> {
        let member: Option<(Uuid,)> = sqlx::query_as(
            "select m.user_id from memberships m join users u on u.id = m.user_id
              where m.tenant_id = $1 and u.email = $2::citext",
        )
        .bind(self.tenant.as_uuid())
        .bind(email.as_str())
        .fetch_optional(&mut *self.tx)
        .await?;
        if member.is_some() {
            return Err(StoreError::Conflict {
                constraint: "memberships_pkey".to_owned(),
            });
        }
        let row: InvitationRow = sqlx::query_as(concat!(
            "insert into invitations (id, tenant_id, email, role, invited_by, expires_at)
             values ($1, $2, $3, $4, $5, now() + $6 * interval '1 millisecond') returning ",
            invitation_columns!()
        ))
        .bind(InvitationId::new().as_uuid())
        .bind(self.tenant.as_uuid())
        .bind(email.as_str())
        .bind(role.as_str())
        .bind(invited_by.as_uuid())
        .bind(i64::try_from(lifetime.as_millis()).unwrap_or(i64::MAX))
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(row.into())
    }

    /// Open invitations (`Invitation::is_open`), newest first.
    pub async fn pending_invitations(&mut self) -> Result<Vec<Invitation>> {
        let rows: Vec<InvitationRow> = sqlx::query_as(concat!(
            "select ",
            invitation_columns!(),
            " from invitations where tenant_id = $1 order by created_at desc"
        ))
        .bind(self.tenant.as_uuid())
        .fetch_all(&mut *self.tx)
        .await?;
        Ok(rows
            .into_iter()
            .map(Invitation::from)
            .filter(Invitation::is_open)
            .collect())
    }

    /// One invitation, locked.
    async fn lock_invitation(&mut self, id: InvitationId) -> Result<Option<Invitation>> {
        let row: Option<InvitationRow> = sqlx::query_as(concat!(
            "select ",
            invitation_columns!(),
            " from invitations where tenant_id = $1 and id = $2 for update"
        ))
        .bind(self.tenant.as_uuid())
        .bind(id.as_uuid())
        .fetch_optional(&mut *self.tx)
        .await?;
        Ok(row.map(Invitation::from))
    }

    /// Revokes an open invitation; NotFound for another tenant's or a used
    /// or revoked one.
    pub async fn revoke_invitation(&mut self, id: InvitationId) -> Result<Invitation> {
        let open = self
            .lock_invitation(id)
            .await?
            .filter(Invitation::is_open)
            .ok_or(StoreError::NotFound)?;
        let row: InvitationRow = sqlx::query_as(concat!(
            "update invitations set revoked_at = now() where tenant_id = $1 and id = $2 returning ",
            invitation_columns!()
        ))
        .bind(self.tenant.as_uuid())
        .bind(open.id.as_uuid())
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(row.into())
    }

    /// Locks an invitation and checks it can be accepted now
    /// (`Invitation::acceptable_at`).
    pub async fn invitation_to_accept(
        &mut self,
        id: InvitationId,
    ) -> Result<std::result::Result<Invitation, InvitationProblem>> {
        let Some(invitation) = self.lock_invitation(id).await? else {
            return Ok(Err(InvitationProblem::Unknown));
        };
        Ok(invitation
            .acceptable_at(OffsetDateTime::now_utc())
            .map(|()| invitation))
    }

    /// Accepts an invitation for `user`: the membership with its role, and
    /// the invitation used up. A user who is a member already keeps their role.
    pub async fn accept_invitation(&mut self, invitation: &Invitation, user: UserId) -> Result<()> {
        sqlx::query(
            "insert into memberships (tenant_id, user_id, role) values ($1, $2, $3)
             on conflict on constraint memberships_pkey do nothing",
        )
        .bind(self.tenant.as_uuid())
        .bind(user.as_uuid())
        .bind(invitation.role.as_str())
        .execute(&mut *self.tx)
        .await?;
        sqlx::query("update invitations set accepted_at = now() where tenant_id = $1 and id = $2")
            .bind(self.tenant.as_uuid())
            .bind(invitation.id.as_uuid())
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// The team's name (what an invitation link names).
    pub async fn team_name(&mut self) -> Result<String> {
        let (name,): (String,) = sqlx::query_as("select name from tenants where id = $1")
            .bind(self.tenant.as_uuid())
            .fetch_one(&mut *self.tx)
            .await?;
        Ok(name)
    }

    /// The team, oldest member first.
    pub async fn members(&mut self) -> Result<Vec<TeamMember>> {
        let rows: Vec<MemberRow> = sqlx::query_as(
            "select m.user_id, u.email::text as email, m.role, m.created_at as joined_at
               from memberships m join users u on u.id = m.user_id
              where m.tenant_id = $1 order by m.created_at, m.user_id",
        )
        .bind(self.tenant.as_uuid())
        .fetch_all(&mut *self.tx)
        .await?;
        Ok(rows.into_iter().map(TeamMember::from).collect())
    }

    /// A member's role, locking the tenant's owner rows so that two
    /// concurrent demotions cannot both pass the last-owner check.
    async fn lock_member(&mut self, user: UserId) -> Result<(Role, usize)> {
        let owners: Vec<(Uuid,)> = sqlx::query_as(
            "select user_id from memberships where tenant_id = $1 and role = $2 for update",
        )
        .bind(self.tenant.as_uuid())
        .bind(Role::Owner.as_str())
        .fetch_all(&mut *self.tx)
        .await?;
        let (role,): (String,) = sqlx::query_as(
            "select role from memberships where tenant_id = $1 and user_id = $2 for update",
        )
        .bind(self.tenant.as_uuid())
        .bind(user.as_uuid())
        .fetch_one(&mut *self.tx)
        .await?;
        let role = role
            .parse()
            .map_err(|e: heliograph_domain::UnknownVariant| StoreError::Corrupt(e.to_string()))?;
        Ok((role, owners.len()))
    }

    /// The role of a member (NotFound for a non-member).
    pub async fn member_role(&mut self, user: UserId) -> Result<Role> {
        Ok(self.lock_member(user).await?.0)
    }

    /// Changes a member's role; never demotes the last owner.
    pub async fn set_member_role(
        &mut self,
        user: UserId,
        role: Role,
    ) -> Result<std::result::Result<Role, TeamProblem>> {
        let (old, owners) = self.lock_member(user).await?;
        let change = match change_role(old, role, owners) {
            Ok(change) => change,
            Err(problem) => return Ok(Err(problem)),
        };
        sqlx::query("update memberships set role = $3 where tenant_id = $1 and user_id = $2")
            .bind(self.tenant.as_uuid())
            .bind(user.as_uuid())
            .bind(role.as_str())
            .execute(&mut *self.tx)
            .await?;
        if change.revokes_keys {
            self.revoke_keys_made_by(user).await?;
        }
        Ok(Ok(old))
    }

    /// Removes a member and ends their sessions here; never the last owner.
    pub async fn remove_member(
        &mut self,
        user: UserId,
    ) -> Result<std::result::Result<Role, TeamProblem>> {
        let (old, owners) = self.lock_member(user).await?;
        if let Err(problem) = remove_member(old, owners) {
            return Ok(Err(problem));
        }
        sqlx::query("delete from memberships where tenant_id = $1 and user_id = $2")
            .bind(self.tenant.as_uuid())
            .bind(user.as_uuid())
            .execute(&mut *self.tx)
            .await?;
        sqlx::query("update sessions set revoked_at = coalesce(revoked_at, now()) where tenant_id = $1 and user_id = $2")
            .bind(self.tenant.as_uuid())
            .bind(user.as_uuid())
            .execute(&mut *self.tx)
            .await?;
        self.revoke_keys_made_by(user).await?;
        Ok(Ok(old))
    }

    /// Revokes the keys `user` made here: a key must not outlive its maker's
    /// power to make it (removal, or demotion below admin).
    async fn revoke_keys_made_by(&mut self, user: UserId) -> Result<()> {
        sqlx::query(
            "update api_keys set revoked_at = now()
              where tenant_id = $1 and created_by = $2 and revoked_at is null",
        )
        .bind(self.tenant.as_uuid())
        .bind(user.as_uuid())
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Sends one invitation email: locks it if unsent and still usable, runs
    /// `send`, marks it sent in the same transaction; `Ok(false)` when there
    /// was nothing to send. The lock is waited for, not skipped, for the
    /// reason given at `Store::send_account_email`.
    pub async fn send_invitation_email<F, Fut, E>(
        &mut self,
        id: Uuid,
        send: F,
    ) -> Result<std::result::Result<bool, E>>
    where
        F: FnOnce(InvitationEmailWork) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<(), E>>,
    {
        // Locked and checked here (`Invitation::is_sendable_at`, by the
        // database's clock): an invitation revoked or expired meanwhile is
        // not sent.
        let row: Option<InvitationSendRow> = sqlx::query_as(
            "select i.id, i.email::text as email, i.role, i.expires_at, i.accepted_at,
                    i.revoked_at, i.created_at, i.sent_at, t.name as tenant_name,
                    inviter.email::text as inviter_email, now() as now
               from invitations i join tenants t on t.id = i.tenant_id
               left join users inviter on inviter.id = i.invited_by
              where i.tenant_id = $1 and i.id = $2
                for update of i",
        )
        .bind(self.tenant.as_uuid())
        .bind(id)
        .fetch_optional(&mut *self.tx)
        .await?;
        let work = row.and_then(|row| {
            let invitation = Invitation::from(row.invitation);
            (row.sent_at.is_none() && invitation.is_sendable_at(row.now)).then(|| {
                InvitationEmailWork {
                    id: invitation.id.as_uuid(),
                    email: invitation.email,
                    role: invitation.role,
                    tenant_name: row.tenant_name,
                    inviter_email: row.inviter_email,
                    expires_at: invitation.expires_at,
                }
            })
        });
        let Some(work) = work else {
            return Ok(Ok(false));
        };
        if let Err(e) = send(work).await {
            return Ok(Err(e));
        }
        sqlx::query("update invitations set sent_at = now() where tenant_id = $1 and id = $2")
            .bind(self.tenant.as_uuid())
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        Ok(Ok(true))
    }
}
