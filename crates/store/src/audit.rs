//! The audit log: written in the same transaction as the change it records.

use serde_json::Value;
use sqlx::types::Json;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{Result, TenantTx};

/// Who acted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditActor {
    /// `user` or `api_key`.
    pub kind: &'static str,
    /// The user's or the key's id.
    pub id: Uuid,
}

/// One change to record.
#[derive(Debug, Clone)]
pub struct AuditEntry<'a> {
    /// Who.
    pub actor: AuditActor,
    /// What, as `object.verb` (`component.created`).
    pub action: &'a str,
    /// The kind of object changed.
    pub object_type: &'a str,
    /// The object changed.
    pub object_id: Uuid,
    /// From which address, when known.
    pub ip: Option<String>,
    /// Anything else worth knowing (names, old and new values).
    pub details: Value,
}

/// A recorded change.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuditRecord {
    /// Position in the log (a cursor for paging).
    pub id: i64,
    /// `user` or `api_key`.
    pub actor_type: String,
    /// The user's or the key's id.
    pub actor_id: Uuid,
    /// What.
    pub action: String,
    /// The kind of object.
    pub object_type: String,
    /// The object.
    pub object_id: Uuid,
    /// From which address.
    pub ip: Option<String>,
    /// Anything else.
    pub details: Json<Value>,
    /// When.
    pub at: OffsetDateTime,
}

/// Which entries to read; every part optional.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// At or after.
    pub since: Option<OffsetDateTime>,
    /// Before.
    pub until: Option<OffsetDateTime>,
    /// By this user or key.
    pub actor_id: Option<Uuid>,
    /// This action only (`domain.created`).
    pub action: Option<String>,
    /// Older than this entry (paging).
    pub before_id: Option<i64>,
    /// At most this many.
    pub limit: i64,
}

impl TenantTx {
    /// Records a change.
    pub async fn audit(&mut self, entry: &AuditEntry<'_>) -> Result<()> {
        sqlx::query(
            "insert into audit_log (tenant_id, actor_type, actor_id, action, object_type, object_id, ip, details)
             values ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(self.tenant.as_uuid())
        .bind(entry.actor.kind)
        .bind(entry.actor.id)
        .bind(entry.action)
        .bind(entry.object_type)
        .bind(entry.object_id)
        .bind(entry.ip.as_deref())
        .bind(Json(&entry.details))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Entries matching `filter`, newest first.
    pub async fn audit_log(&mut self, filter: &AuditFilter) -> Result<Vec<AuditRecord>> {
        Ok(sqlx::query_as(
            "select id, actor_type, actor_id, action, object_type, object_id, ip, details, at
               from audit_log
              where tenant_id = $1
                and ($2::timestamptz is null or at >= $2)
                and ($3::timestamptz is null or at < $3)
                and ($4::uuid is null or actor_id = $4)
                and ($5::bigint is null or id < $5)
                and ($7::text is null or action = $7)
              order by id desc limit $6",
        )
        .bind(self.tenant.as_uuid())
        .bind(filter.since)
        .bind(filter.until)
        .bind(filter.actor_id)
        .bind(filter.before_id)
        .bind(filter.limit)
        .bind(filter.action.as_deref())
        .fetch_all(&mut *self.tx)
        .await?)
    }
}
