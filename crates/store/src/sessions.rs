//! Server-side sessions and the memberships a user can act in.

use std::time::Duration;

use heliograph_domain::{Role, SessionId, TenantId, UserId};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{Result, Store};

/// One tenant a user belongs to, for choosing which one a session acts for.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MembershipSummary {
    /// The tenant.
    #[sqlx(try_from = "Uuid")]
    pub tenant_id: TenantId,
    /// Its slug.
    pub slug: String,
    /// Its name.
    pub name: String,
    /// The user's role there.
    #[sqlx(try_from = "String")]
    pub role: Role,
}

/// A session just opened.
#[derive(Debug, Clone, Copy)]
pub struct NewSession {
    /// Its id, to put in tokens.
    pub id: SessionId,
    /// When it ends, however often its tokens are refreshed.
    pub expires_at: OffsetDateTime,
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Store {
    /// Opens a session for `user` acting for `tenant`, ending after `lifetime`.
    pub async fn create_session(
        &self,
        user: UserId,
        tenant: TenantId,
        lifetime: Duration,
    ) -> Result<NewSession> {
        let id = SessionId::new();
        let (expires_at,): (OffsetDateTime,) = sqlx::query_as(
            "insert into sessions (id, user_id, tenant_id, expires_at)
             values ($1, $2, $3, now() + $4 * interval '1 millisecond')
             returning expires_at",
        )
        .bind(id.as_uuid())
        .bind(user.as_uuid())
        .bind(tenant.as_uuid())
        .bind(millis(lifetime))
        .fetch_one(&self.pool)
        .await?;
        Ok(NewSession { id, expires_at })
    }

    /// The role of `user` in `tenant` through `session`, if the session is
    /// open (not revoked, not expired) and the membership still exists.
    pub async fn session_role(
        &self,
        session: SessionId,
        user: UserId,
        tenant: TenantId,
    ) -> Result<Option<Role>> {
        let row: Option<(String,)> = sqlx::query_as(
            "select m.role from sessions s
               join memberships m on m.user_id = s.user_id and m.tenant_id = s.tenant_id
              where s.id = $1 and s.user_id = $2 and s.tenant_id = $3
                and s.revoked_at is null and s.expires_at > now()",
        )
        .bind(session.as_uuid())
        .bind(user.as_uuid())
        .bind(tenant.as_uuid())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|(role,)| {
            role.parse()
                .map_err(|e: heliograph_domain::UnknownVariant| {
                    crate::StoreError::Corrupt(e.to_string())
                })
        })
        .transpose()
    }

    /// Marks a session seen now (on refresh); answers whether it is still open.
    pub async fn touch_session(&self, session: SessionId, user: UserId) -> Result<bool> {
        let touched = sqlx::query(
            "update sessions set last_seen_at = now()
              where id = $1 and user_id = $2 and revoked_at is null and expires_at > now()",
        )
        .bind(session.as_uuid())
        .bind(user.as_uuid())
        .execute(&self.pool)
        .await?;
        Ok(touched.rows_affected() == 1)
    }

    /// Ends a session at once.
    pub async fn revoke_session(&self, session: SessionId, user: UserId) -> Result<()> {
        sqlx::query(
            "update sessions set revoked_at = coalesce(revoked_at, now()) where id = $1 and user_id = $2",
        )
        .bind(session.as_uuid())
        .bind(user.as_uuid())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The tenants `user` belongs to, oldest membership first.
    pub async fn memberships_of(&self, user: UserId) -> Result<Vec<MembershipSummary>> {
        Ok(sqlx::query_as(
            "select t.id as tenant_id, t.slug, t.name, m.role
               from memberships m join tenants t on t.id = m.tenant_id
              where m.user_id = $1 order by m.created_at, t.id",
        )
        .bind(user.as_uuid())
        .fetch_all(&self.pool)
        .await?)
    }
}
