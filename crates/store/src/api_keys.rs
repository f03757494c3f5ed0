//! API keys: stored as a prefix and a hash, never the key itself. What a
//! key's scope lets it do is the domain's (`ApiKeyScope::role`).

use heliograph_domain::{ApiKey, ApiKeyId, ApiKeyScope, TenantId, UserId};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{Result, Store, TenantTx};

/// An API key row as listed: never its secret.
#[derive(Debug, Clone, sqlx::FromRow)]
struct ApiKeyRow {
    /// Identifier.
    #[sqlx(try_from = "Uuid")]
    pub id: ApiKeyId,
    /// What people call it.
    pub name: String,
    /// The visible start of the key.
    pub prefix: String,
    /// What it may do.
    #[sqlx(try_from = "String")]
    pub scope: ApiKeyScope,
    /// When it was made.
    pub created_at: OffsetDateTime,
    /// When it was last used (to the minute).
    pub last_used_at: Option<OffsetDateTime>,
    /// When it was revoked.
    pub revoked_at: Option<OffsetDateTime>,
}

/// What authenticating a key needs.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ApiKeyCredentials {
    /// The key.
    #[sqlx(try_from = "Uuid")]
    pub id: ApiKeyId,
    /// Its tenant.
    #[sqlx(try_from = "Uuid")]
    pub tenant_id: TenantId,
    /// SHA-256 of the whole key.
    pub key_hash: Vec<u8>,
    /// What it may do.
    #[sqlx(try_from = "String")]
    pub scope: ApiKeyScope,
}

impl From<ApiKeyRow> for ApiKey {
    fn from(r: ApiKeyRow) -> Self {
        Self {
            id: r.id,
            name: r.name,
            prefix: r.prefix,
            scope: r.scope,
            created_at: r.created_at,
            last_used_at: r.last_used_at,
            revoked_at: r.revoked_at,
        }
    }
}

macro_rules! key_columns {
    () => {
        "id, name, prefix, scope, created_at, last_used_at, revoked_at"
    };
}

impl Store {
    /// The unrevoked key with this prefix, if any.
    ///
    /// Cross-tenant by nature: the key names its tenant.
    pub async fn api_key_by_prefix(&self, prefix: &str) -> Result<Option<ApiKeyCredentials>> {
        Ok(
            sqlx::query_as("select id, tenant_id, key_hash, scope from hg_api_key_by_prefix($1)")
                .bind(prefix)
                .fetch_optional(&self.pool)
                .await?,
        )
    }
}

impl TenantTx {
    /// Stores a new key.
    pub async fn create_api_key(
        &mut self,
        name: &str,
        scope: ApiKeyScope,
        prefix: &str,
        hash: &[u8],
        created_by: UserId,
    ) -> Result<ApiKey> {
        let row: ApiKeyRow = sqlx::query_as(concat!(
            "insert into api_keys (id, tenant_id, name, prefix, key_hash, scope, created_by)
             values ($1, $2, $3, $4, $5, $6, $7) returning ",
            key_columns!()
        ))
        .bind(ApiKeyId::new().as_uuid())
        .bind(self.tenant.as_uuid())
        .bind(name)
        .bind(prefix)
        .bind(hash)
        .bind(scope.as_str())
        .bind(created_by.as_uuid())
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(row.into())
    }

    /// The tenant's keys, newest first.
    pub async fn api_keys(&mut self) -> Result<Vec<ApiKey>> {
        let rows: Vec<ApiKeyRow> = sqlx::query_as(concat!(
            "select ",
            key_columns!(),
            " from api_keys where tenant_id = $1 order by created_at desc, id"
        ))
        .bind(self.tenant.as_uuid())
        .fetch_all(&mut *self.tx)
        .await?;
        Ok(rows.into_iter().map(ApiKey::from).collect())
    }

    /// Revokes a key at once; NotFound for another tenant's.
    pub async fn revoke_api_key(&mut self, id: ApiKeyId) -> Result<ApiKey> {
        let row: ApiKeyRow = sqlx::query_as(concat!(
            "update api_keys set revoked_at = coalesce(revoked_at, now())
              where tenant_id = $1 and id = $2 returning ",
            key_columns!()
        ))
        .bind(self.tenant.as_uuid())
        .bind(id.as_uuid())
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(row.into())
    }

    /// Records a use, at most once a minute, so that busy keys cost no write per request.
    pub async fn touch_api_key(&mut self, id: ApiKeyId) -> Result<()> {
        sqlx::query(
            "update api_keys set last_used_at = now()
              where tenant_id = $1 and id = $2
                and (last_used_at is null or last_used_at < now() - interval '1 minute')",
        )
        .bind(self.tenant.as_uuid())
        .bind(id.as_uuid())
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }
}
