//! Account links (email verification, password reset) and what they change.
//!
//! These rows belong to a person, not a tenant.

use std::time::Duration;

use heliograph_domain::{SessionId, UserId};
use sqlx::{Postgres, Transaction};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{Claimed, Result, Store, millis};

/// Why a link cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkProblem {
    /// No such link (or not of this kind).
    Unknown,
    /// Used already.
    Used,
    /// Past its expiry.
    Expired,
}

/// An account email to send.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AccountEmailWork {
    /// The link's row.
    pub id: Uuid,
    /// `verify_email` or `password_reset`.
    pub kind: String,
    /// The person's address.
    pub email: String,
    /// The name of their first team (the one made at signup), if any.
    pub tenant_name: Option<String>,
    /// When the link stops working.
    pub expires_at: OffsetDateTime,
}

/// Ends every outstanding reset link of `user` (the password just changed).
async fn end_reset_links(tx: &mut Transaction<'static, Postgres>, user: UserId) -> Result<()> {
    sqlx::query(
        "update account_tokens set used_at = now()
          where user_id = $1 and kind = 'password_reset' and used_at is null",
    )
    .bind(user.as_uuid())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Store {
    /// Creates a link of `kind` for `user`, valid for `lifetime`; earlier
    /// unused links of the same kind stop working.
    pub async fn create_account_link(
        &self,
        user: UserId,
        kind: &str,
        lifetime: Duration,
    ) -> Result<Uuid> {
        let mut tx = self.pool.begin().await?;
        // A new verification link replaces the old one (only the person can
        // ask for it). Reset links do not replace each other: anyone can ask
        // for one, and must not be able to void the link the owner is using;
        // all of them end when one is used or the password changes.
        if kind == "verify_email" {
            sqlx::query(
                "update account_tokens set used_at = now()
                  where user_id = $1 and kind = $2 and used_at is null",
            )
            .bind(user.as_uuid())
            .bind(kind)
            .execute(&mut *tx)
            .await?;
        }
        let id = Uuid::now_v7();
        sqlx::query(
            "insert into account_tokens (id, kind, user_id, expires_at)
             values ($1, $2, $3, now() + $4 * interval '1 millisecond')",
        )
        .bind(id)
        .bind(kind)
        .bind(user.as_uuid())
        .bind(millis(lifetime))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Uses a link of `kind` once: locks it, checks it, marks it used, and
    /// answers its user; the caller's change runs in the same transaction.
    async fn use_link(
        tx: &mut Transaction<'static, Postgres>,
        id: Uuid,
        kind: &str,
    ) -> Result<std::result::Result<UserId, LinkProblem>> {
        let row: Option<(Uuid, Option<OffsetDateTime>, bool)> = sqlx::query_as(
            "select user_id, used_at, expires_at <= now() from account_tokens
              where id = $1 and kind = $2 for update",
        )
        .bind(id)
        .bind(kind)
        .fetch_optional(&mut **tx)
        .await?;
        let Some((user, used_at, expired)) = row else {
            return Ok(Err(LinkProblem::Unknown));
        };
        if used_at.is_some() {
            return Ok(Err(LinkProblem::Used));
        }
        if expired {
            return Ok(Err(LinkProblem::Expired));
        }
        sqlx::query("update account_tokens set used_at = now() where id = $1")
            .bind(id)
            .execute(&mut **tx)
            .await?;
        Ok(Ok(user.into()))
    }

    /// Resets a password through a `password_reset` link, and ends every
    /// session of the user (on every tenant) in the same transaction.
    pub async fn reset_password(
        &self,
        link: Uuid,
        password_hash: &str,
    ) -> Result<std::result::Result<UserId, LinkProblem>> {
        let mut tx = self.pool.begin().await?;
        let user = match Self::use_link(&mut tx, link, "password_reset").await? {
            Ok(user) => user,
            Err(problem) => return Ok(Err(problem)),
        };
        // The link came to the address: it is proven, as a verification link proves it.
        sqlx::query(
            "update users set password_hash = $2,
                    email_verified_at = coalesce(email_verified_at, now()) where id = $1",
        )
        .bind(user.as_uuid())
        .bind(password_hash)
        .execute(&mut *tx)
        .await?;
        // Sessions are tenant rows; this definer function ends them all.
        sqlx::query("select hg_revoke_sessions_of($1, null)")
            .bind(user.as_uuid())
            .execute(&mut *tx)
            .await?;
        end_reset_links(&mut tx, user).await?;
        tx.commit().await?;
        Ok(Ok(user))
    }

    /// Sets a new password for `user` and ends every session but `keep`.
    pub async fn change_password(
        &self,
        user: UserId,
        password_hash: &str,
        keep: SessionId,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("update users set password_hash = $2 where id = $1")
            .bind(user.as_uuid())
            .bind(password_hash)
            .execute(&mut *tx)
            .await?;
        sqlx::query("select hg_revoke_sessions_of($1, $2)")
            .bind(user.as_uuid())
            .bind(keep.as_uuid())
            .execute(&mut *tx)
            .await?;
        end_reset_links(&mut tx, user).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The password hash of `user`.
    pub async fn password_hash(&self, user: UserId) -> Result<String> {
        let (hash,): (String,) = sqlx::query_as("select password_hash from users where id = $1")
            .bind(user.as_uuid())
            .fetch_one(&self.pool)
            .await?;
        Ok(hash)
    }

    /// Verifies an email address through a `verify_email` link.
    pub async fn verify_email(
        &self,
        link: Uuid,
    ) -> Result<std::result::Result<UserId, LinkProblem>> {
        let mut tx = self.pool.begin().await?;
        let user = match Self::use_link(&mut tx, link, "verify_email").await? {
            Ok(user) => user,
            Err(problem) => return Ok(Err(problem)),
        };
        sqlx::query(
            "update users set email_verified_at = coalesce(email_verified_at, now())
              where id = $1 and shadow_of is null",
        )
        .bind(user.as_uuid())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Ok(user))
    }

    /// Marks the user's address verified (a link sent to it was used: an
    /// invitation's, or a password reset's).
    pub async fn mark_email_verified(&self, user: UserId) -> Result<()> {
        sqlx::query(
            "update users set email_verified_at = coalesce(email_verified_at, now())
              where id = $1 and shadow_of is null",
        )
        .bind(user.as_uuid())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Whether the user is a shadow account (made by a signup with an
    /// address that has an account): nothing is ever sent to its address.
    pub async fn is_shadow(&self, user: UserId) -> Result<bool> {
        let (shadow,): (bool,) =
            sqlx::query_as("select shadow_of is not null from users where id = $1")
                .bind(user.as_uuid())
                .fetch_one(&self.pool)
                .await?;
        Ok(shadow)
    }

    /// The user's address, and whether it is verified: who the dashboard
    /// says is signed in.
    pub async fn person(&self, user: UserId) -> Result<(String, bool)> {
        let person: (String, bool) = sqlx::query_as(
            "select email::text, email_verified_at is not null from users where id = $1",
        )
        .bind(user.as_uuid())
        .fetch_one(&self.pool)
        .await?;
        Ok(person)
    }

    /// Whether the user's address is verified.
    pub async fn email_verified(&self, user: UserId) -> Result<bool> {
        let (verified,): (bool,) =
            sqlx::query_as("select email_verified_at is not null from users where id = $1")
                .bind(user.as_uuid())
                .fetch_one(&self.pool)
                .await?;
        Ok(verified)
    }

    /// Claims up to `limit` links whose email is not yet queued.
    pub async fn claim_account_links(&self, limit: i64) -> Result<Claimed<Uuid>> {
        let mut tx = self.pool.begin().await?;
        let rows: Vec<(Uuid,)> = sqlx::query_as(
            "select id from account_tokens where queued_at is null
              order by created_at limit $1 for update skip locked",
        )
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        Ok(Claimed::new(
            tx,
            rows.into_iter().map(|(id,)| id).collect(),
            |id| *id,
            "update account_tokens set queued_at = now() where id = any($1)",
        ))
    }

    /// Links queued more than `stale` ago and still unsent (their job was
    /// lost): touches them, answers them for re-queueing.
    pub async fn restart_stalled_account_links(
        &self,
        stale: Duration,
        limit: i64,
    ) -> Result<Vec<Uuid>> {
        let rows: Vec<(Uuid,)> = sqlx::query_as(
            "update account_tokens set queued_at = now()
              where id in (select id from account_tokens
                            where sent_at is null and used_at is null and expires_at > now()
                              and queued_at < now() - $1 * interval '1 millisecond'
                            limit $2 for update skip locked)
              returning id",
        )
        .bind(millis(stale))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// Sends one account email: locks the row if unsent and still usable,
    /// runs `send`, and marks it sent in the same transaction; `Ok(false)`
    /// when there was nothing to send.
    ///
    /// The lock is waited for, not skipped: the relay pushes the job while
    /// its claim still holds the row, and a job that skipped it then would
    /// send nothing until the sweeper re-queued the link ten minutes later.
    /// A second job for the same link waits for the first to commit and then
    /// finds the row sent (PostgreSQL re-reads a row it waited for).
    pub async fn send_account_email<F, Fut, E>(
        &self,
        id: Uuid,
        send: F,
    ) -> Result<std::result::Result<bool, E>>
    where
        F: FnOnce(AccountEmailWork) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<(), E>>,
    {
        let mut tx = self.pool.begin().await?;
        let work: Option<AccountEmailWork> = sqlx::query_as(
            "select t.id, t.kind, u.email::text as email, t.expires_at,
                    (select m.name from hg_memberships_of(u.id) m limit 1) as tenant_name
               from account_tokens t join users u on u.id = t.user_id
              where t.id = $1 and t.sent_at is null and t.used_at is null and t.expires_at > now()
                for update of t",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(work) = work else {
            return Ok(Ok(false));
        };
        if let Err(e) = send(work).await {
            return Ok(Err(e));
        }
        sqlx::query("update account_tokens set sent_at = now() where id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Ok(true))
    }
}
