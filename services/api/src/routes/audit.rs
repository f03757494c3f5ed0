//! `GET /v1/audit-log`: who changed what, for admins.

use actix_web::{HttpResponse, web};
use heliograph_domain::{FieldError, Role};
use heliograph_store::AuditFilter;
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::auth::Member;
use crate::error::{ApiError, Fields};
use crate::startup::AppState;

/// Query parameters; all optional.
#[derive(Deserialize)]
pub struct AuditQuery {
    since: Option<String>,
    until: Option<String>,
    actor_id: Option<String>,
    before: Option<i64>,
    limit: Option<i64>,
}

fn time(f: &mut Fields, field: &'static str, raw: Option<String>) -> Option<OffsetDateTime> {
    raw.and_then(|t| {
        f.check(
            OffsetDateTime::parse(&t, &Rfc3339)
                .map_err(|_| FieldError::new(field, "invalid", "must be an RFC 3339 time")),
        )
    })
}

/// Newest first; `before` (an entry's `id`) pages backwards; at most `limit` (default 100, at most 500).
pub async fn list(
    member: Member,
    state: web::Data<AppState>,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    member.require(Role::Admin)?;
    let query = query.into_inner();
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
    f.finish()?;
    let mut tx = state.store.tenant_tx(member.tenant).await?;
    let records = tx
        .audit_log(&AuditFilter {
            since,
            until,
            actor_id,
            before_id: query.before,
            limit,
        })
        .await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(
        records
            .iter()
            .map(|r| {
                json!({
                    "id": r.id,
                    "actor": {"type": r.actor_type, "id": r.actor_id},
                    "action": r.action,
                    "object": {"type": r.object_type, "id": r.object_id},
                    "ip": r.ip,
                    "details": r.details.0,
                    "at": heliograph_web::timestamp(r.at),
                })
            })
            .collect::<Vec<_>>(),
    ))
}
