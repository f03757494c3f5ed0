//! `GET /v1/audit-log`: who changed what, for admins.
//!
//! It only reads the log: each change writes its own entry, in the store, in
//! the change's transaction.

use actix_web::{HttpResponse, web};
use heliograph_domain::{FieldError, Role};
use heliograph_store::AuditFilter;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use crate::auth::Member;
use crate::error::{ApiError, Fields};
use crate::openapi::{Forbidden, TooManyRequests, Unauthorized, ValidationFailed};
use crate::startup::AppState;

/// Query parameters; all optional.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Entries at or after this time (RFC 3339).
    #[param(format = DateTime)]
    pub(crate) since: Option<String>,
    /// Entries before this time (RFC 3339).
    #[param(format = DateTime)]
    pub(crate) until: Option<String>,
    /// Only this user's or key's entries.
    #[param(format = Uuid)]
    pub(crate) actor_id: Option<String>,
    /// Only entries of this action, exactly as listed (`domain.created`).
    #[param(max_length = 100)]
    pub(crate) action: Option<String>,
    /// Entries older than the one with this `id`: the next page back.
    pub(crate) before: Option<i64>,
    /// At most this many, 1 to 500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    pub(crate) limit: Option<i64>,
}

/// One change.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AuditEntryResponse {
    /// Position in the log: pass it as `before` to page back.
    id: i64,
    /// Who: a `user` or an `api_key`.
    actor: AuditObject,
    /// What, e.g. `component.updated`.
    action: String,
    /// To what.
    object: AuditObject,
    /// From which address.
    ip: Option<String>,
    /// The change's particulars; they vary with `action`.
    #[schema(value_type = Object)]
    details: serde_json::Value,
    at: String,
}

/// A kind and an id.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AuditObject {
    #[serde(rename = "type")]
    kind: String,
    id: Uuid,
}

fn time(f: &mut Fields, field: &'static str, raw: Option<String>) -> Option<OffsetDateTime> {
    raw.and_then(|t| {
        f.check(
            OffsetDateTime::parse(&t, &Rfc3339)
                .map_err(|_| FieldError::new(field, "invalid", "must be an RFC 3339 time")),
        )
    })
}

/// Lists the audit log, newest first (admin).
///
/// Filters: `since`/`until` (a time range), `actor_id` (a user or a key),
/// `action` (one action, exactly: `api_key.created`). `before` (an entry's
/// `id`) pages backwards; at most `limit` entries
/// (default 100, at most 500).
#[utoipa::path(
    get,
    path = "/v1/audit-log",
    tag = "audit log",
    operation_id = "list_audit_log",
    security(("bearer" = []), ("oauth" = []), ("cookie" = [])),
    params(AuditQuery),
    responses(
        (status = 200, description = "The entries, newest first.", body = Vec<AuditEntryResponse>),
        Unauthorized, Forbidden, ValidationFailed, TooManyRequests,
    ),
)]
pub async fn list(
    member: Member,
    state: web::Data<AppState>,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    member.require(Role::Admin)?;
    let mut filter = filter_of(query.into_inner())?;
    let mut tx = state.store.tenant_tx(member.tenant).await?;
    crate::plan_limits::within_retention(&state, &mut tx, &mut filter).await?;
    let records = tx.audit_log(&filter).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(
        records
            .into_iter()
            .map(|r| AuditEntryResponse {
                id: r.id,
                actor: AuditObject {
                    kind: r.actor_type,
                    id: r.actor_id,
                },
                action: r.action,
                object: AuditObject {
                    kind: r.object_type,
                    id: r.object_id,
                },
                ip: r.ip,
                details: r.details.0,
                at: heliograph_web::timestamp(r.at),
            })
            .collect::<Vec<_>>(),
    ))
}

/// The store's filter for `query`, or the fields that are wrong.
pub(crate) fn filter_of(query: AuditQuery) -> Result<AuditFilter, ApiError> {
    let mut f = Fields::default();
    let since = time(&mut f, "since", query.since);
    let until = time(&mut f, "until", query.until);
    let actor_id = query.actor_id.and_then(|a| {
        f.check(
            a.parse()
                .map_err(|_| FieldError::new("actor_id", "invalid", "is not an id")),
        )
    });
    let limit = query.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        f.push(FieldError::new(
            "limit",
            "invalid",
            "must be between 1 and 500",
        ));
    }
    let action = query.action.filter(|a| !a.trim().is_empty());
    if action.as_ref().is_some_and(|a| a.len() > 100) {
        f.push(FieldError::new(
            "action",
            "too_long",
            "must be at most 100 characters",
        ));
    }
    f.finish()?;
    Ok(AuditFilter {
        since,
        until,
        actor_id,
        action,
        before_id: query.before,
        limit,
    })
}
