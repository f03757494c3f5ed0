//! The `Idempotency-Key` store: the first response to a keyed POST,
//! replayed to the same actor for 24 hours.

use time::OffsetDateTime;

use crate::{Result, Store, StoreError, TenantTx};

/// What a key already holds.
#[derive(Debug, Clone)]
pub enum IdempotencyRecord {
    /// Nothing: the key is now reserved for this request, which must
    /// [`TenantTx::save_idempotent_response`] or release it.
    Reserved,
    /// The same key came with a different request.
    Mismatch,
    /// The first request with this key is still running.
    InProgress,
    /// The first request's response.
    Done {
        /// HTTP status.
        status: u16,
        /// Headers worth replaying, name → value.
        headers: Vec<(String, String)>,
        /// Body bytes.
        body: Vec<u8>,
    },
}

/// Identifies a keyed request.
#[derive(Debug, Clone, Copy)]
pub struct IdempotencyKey<'a> {
    /// Who sent it (`user:<id>` or `api_key:<id>`).
    pub actor: &'a str,
    /// The client's key.
    pub key: &'a str,
    /// Method and path.
    pub method: &'a str,
    /// Path.
    pub path: &'a str,
    /// SHA-256 of the body.
    pub request_hash: &'a [u8],
}

type Row = (
    String,
    String,
    Vec<u8>,
    Option<i16>,
    Option<sqlx::types::Json<Vec<(String, String)>>>,
    Option<Vec<u8>>,
);

impl TenantTx {
    /// Reserves `key`, or answers what it already holds. Commit at once: the
    /// reservation must be visible to a concurrent request with the same key.
    pub async fn reserve_idempotency_key(
        &mut self,
        key: &IdempotencyKey<'_>,
        window_start: OffsetDateTime,
    ) -> Result<IdempotencyRecord> {
        // A record from before the window is as good as none.
        sqlx::query(
            "delete from idempotency_keys
              where tenant_id = $1 and actor = $2 and key = $3 and created_at < $4",
        )
        .bind(self.tenant.as_uuid())
        .bind(key.actor)
        .bind(key.key)
        .bind(window_start)
        .execute(&mut *self.tx)
        .await?;
        let inserted = sqlx::query(
            "insert into idempotency_keys (tenant_id, actor, key, method, path, request_hash)
             values ($1, $2, $3, $4, $5, $6) on conflict do nothing",
        )
        .bind(self.tenant.as_uuid())
        .bind(key.actor)
        .bind(key.key)
        .bind(key.method)
        .bind(key.path)
        .bind(key.request_hash)
        .execute(&mut *self.tx)
        .await?;
        if inserted.rows_affected() == 1 {
            return Ok(IdempotencyRecord::Reserved);
        }
        let (method, path, hash, status, headers, body): Row = sqlx::query_as(
            "select method, path, request_hash, response_status, response_headers, response_body
               from idempotency_keys where tenant_id = $1 and actor = $2 and key = $3",
        )
        .bind(self.tenant.as_uuid())
        .bind(key.actor)
        .bind(key.key)
        .fetch_one(&mut *self.tx)
        .await?;
        if method != key.method || path != key.path || hash != key.request_hash {
            return Ok(IdempotencyRecord::Mismatch);
        }
        Ok(match (status, body) {
            (Some(status), Some(body)) => IdempotencyRecord::Done {
                status: u16::try_from(status)
                    .map_err(|_| StoreError::Corrupt("idempotency status".to_owned()))?,
                headers: headers.map(|h| h.0).unwrap_or_default(),
                body,
            },
            _ => IdempotencyRecord::InProgress,
        })
    }

    /// Stores the response of a reserved key.
    pub async fn save_idempotent_response(
        &mut self,
        actor: &str,
        key: &str,
        status: u16,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Result<()> {
        sqlx::query(
            "update idempotency_keys set response_status = $4, response_headers = $5, response_body = $6
              where tenant_id = $1 and actor = $2 and key = $3",
        )
        .bind(self.tenant.as_uuid())
        .bind(actor)
        .bind(key)
        .bind(i16::try_from(status).unwrap_or(i16::MAX))
        .bind(sqlx::types::Json(headers))
        .bind(body)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Frees a reserved key whose request failed on our side, so a retry runs again.
    pub async fn release_idempotency_key(&mut self, actor: &str, key: &str) -> Result<()> {
        sqlx::query(
            "delete from idempotency_keys
              where tenant_id = $1 and actor = $2 and key = $3 and response_status is null",
        )
        .bind(self.tenant.as_uuid())
        .bind(actor)
        .bind(key)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }
}

impl Store {
    /// Deletes idempotency records created before `before`, across tenants
    /// (the janitor's job); answers how many.
    pub async fn expire_idempotency_keys(&self, before: OffsetDateTime) -> Result<i64> {
        let (n,): (i64,) = sqlx::query_as("select hg_expire_idempotency_keys($1)")
            .bind(before)
            .fetch_one(&self.pool)
            .await?;
        Ok(n)
    }
}
