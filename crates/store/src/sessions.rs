//! Server-side sessions and the memberships a user can act in.

use std::time::Duration;

use heliograph_domain::{Role, SessionId, TenantId, UserId};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{Result, Store, StoreError, TenantTx};

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

/// An open session of a user, as their account page lists it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionSummary {
    /// Its id.
    #[sqlx(try_from = "Uuid")]
    pub id: SessionId,
    /// When it was opened (signed in).
    pub created_at: OffsetDateTime,
    /// When it was last renewed.
    pub last_seen_at: OffsetDateTime,
    /// When it ends, however often it is renewed.
    pub expires_at: OffsetDateTime,
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl TenantTx {
    /// Opens a session for `user` acting for this tenant, ending after `lifetime`.
    pub async fn create_session(&mut self, user: UserId, lifetime: Duration) -> Result<NewSession> {
        let id = SessionId::new();
        let (expires_at,): (OffsetDateTime,) = sqlx::query_as(
            "insert into sessions (id, user_id, tenant_id, expires_at)
             values ($1, $2, $3, now() + $4 * interval '1 millisecond')
             returning expires_at",
        )
        .bind(id.as_uuid())
        .bind(user.as_uuid())
        .bind(self.tenant.as_uuid())
        .bind(millis(lifetime))
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(NewSession { id, expires_at })
    }

    /// The role of `user` here through `session`, if the session is open
    /// (not revoked, not expired) and the membership still exists.
    pub async fn session_role(&mut self, session: SessionId, user: UserId) -> Result<Option<Role>> {
        let row: Option<(String,)> = sqlx::query_as(
            "select m.role from sessions s
               join memberships m on m.tenant_id = s.tenant_id and m.user_id = s.user_id
              where s.tenant_id = $1 and s.id = $2 and s.user_id = $3
                and s.revoked_at is null and s.expires_at > now()",
        )
        .bind(self.tenant.as_uuid())
        .bind(session.as_uuid())
        .bind(user.as_uuid())
        .fetch_optional(&mut *self.tx)
        .await?;
        row.map(|(role,)| {
            role.parse()
                .map_err(|e: heliograph_domain::UnknownVariant| StoreError::Corrupt(e.to_string()))
        })
        .transpose()
    }

    /// Marks a session seen now (on refresh); answers whether it is still open.
    pub async fn touch_session(&mut self, session: SessionId, user: UserId) -> Result<bool> {
        let touched = sqlx::query(
            "update sessions set last_seen_at = now()
              where tenant_id = $1 and id = $2 and user_id = $3
                and revoked_at is null and expires_at > now()",
        )
        .bind(self.tenant.as_uuid())
        .bind(session.as_uuid())
        .bind(user.as_uuid())
        .execute(&mut *self.tx)
        .await?;
        Ok(touched.rows_affected() == 1)
    }

    /// Ends a session at once.
    pub async fn revoke_session(&mut self, session: SessionId, user: UserId) -> Result<()> {
        sqlx::query(
            "update sessions set revoked_at = coalesce(revoked_at, now())
              where tenant_id = $1 and id = $2 and user_id = $3",
        )
        .bind(self.tenant.as_uuid())
        .bind(session.as_uuid())
        .bind(user.as_uuid())
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// The open sessions (not revoked, not expired) of `user` acting for
    /// this tenant, last seen first; at most `limit`.
    pub async fn open_sessions_of(
        &mut self,
        user: UserId,
        limit: i64,
    ) -> Result<Vec<SessionSummary>> {
        Ok(sqlx::query_as(
            "select id, created_at, last_seen_at, expires_at from sessions
              where tenant_id = $1 and user_id = $2
                and revoked_at is null and expires_at > now()
              order by last_seen_at desc, id
              limit $3",
        )
        .bind(self.tenant.as_uuid())
        .bind(user.as_uuid())
        .bind(limit)
        .fetch_all(&mut *self.tx)
        .await?)
    }

    /// Ends every open session of `user` acting for this tenant but `keep`;
    /// answers how many ended.
    pub async fn revoke_other_sessions(&mut self, user: UserId, keep: SessionId) -> Result<u64> {
        let done = sqlx::query(
            "update sessions set revoked_at = now()
              where tenant_id = $1 and user_id = $2 and id <> $3 and revoked_at is null",
        )
        .bind(self.tenant.as_uuid())
        .bind(user.as_uuid())
        .bind(keep.as_uuid())
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected())
    }
}

impl Store {
    /// The tenants `user` belongs to, oldest membership first.
    ///
    /// Cross-tenant by nature: a user chooses among their tenants.
    pub async fn memberships_of(&self, user: UserId) -> Result<Vec<MembershipSummary>> {
        Ok(
            sqlx::query_as("select tenant_id, slug, name, role from hg_memberships_of($1)")
                .bind(user.as_uuid())
                .fetch_all(&self.pool)
                .await?,
        )
    }
}
