//! The team's audit log: who changed what, newest first, filtered by
//! actor, action and a range of days, paged back 50 at a time. Admins
//! only, as `GET /v1/audit-log`, whose filter it builds (`routes::audit`).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use heliograph_domain::custom_domain::utc_minute;
use heliograph_domain::{FieldError, Role};
use heliograph_store::AuditRecord;
use serde::Deserialize;
use std::collections::HashMap;
use time::Date;
use time::macros::format_description;
use uuid::Uuid;

use super::form::{FormErrors, encode};
use super::frame::{self, Frame, Section};
use crate::auth::Member;
use crate::error::{ApiError, Fields};
use crate::routes::audit::{AuditQuery, filter_of};
use crate::startup::AppState;

/// Entries a page shows.
const PER_PAGE: i64 = 50;

/// The filter form, as the address carries it.
#[derive(Deserialize, Default, Clone)]
pub struct Filters {
    #[serde(default)]
    actor: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    since: String,
    #[serde(default)]
    until: String,
    before: Option<i64>,
}

/// Someone who may have acted: a member or a key.
struct Actor {
    id: Uuid,
    label: String,
}

/// One entry as its row shows it.
struct Entry {
    at_iso: String,
    at: String,
    actor: String,
    action: String,
    object: String,
    details: String,
}

/// The audit log page.
#[derive(Template)]
#[template(path = "dashboard/audit/list.html")]
struct AuditView {
    frame: Frame,
    filters: Filters,
    actors: Vec<Actor>,
    entries: Vec<Entry>,
    older: Option<String>,
    errors: FormErrors,
}

impl AuditView {
    fn chosen(&self, id: &Uuid) -> bool {
        self.filters.actor == id.to_string()
    }
}

/// A day (`YYYY-MM-DD`, UTC) given in `field`, as the start of that day,
/// or of the next one (`next`: an inclusive "until").
fn day(f: &mut Fields, field: &'static str, raw: &str, next: bool) -> Option<String> {
    if raw.trim().is_empty() {
        return None;
    }
    let parsed = Date::parse(raw.trim(), format_description!("[year]-[month]-[day]"))
        .ok()
        .and_then(|d| if next { d.next_day() } else { Some(d) });
    f.check(
        parsed
            .map(|d| format!("{d}T00:00:00Z"))
            .ok_or_else(|| FieldError::new(field, "invalid", "must be a date, as 2026-12-06")),
    )
}

fn details(r: &AuditRecord) -> String {
    r.details
        .0
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| match v {
                    serde_json::Value::String(s) => format!("{k}: {s}"),
                    other => format!("{k}: {other}"),
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

/// `GET /dashboard/audit-log`.
pub async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    member: Member,
    filters: web::Query<Filters>,
) -> Result<HttpResponse, ApiError> {
    member.require(Role::Admin)?;
    let filters = filters.into_inner();
    let mut f = Fields::default();
    let since = day(&mut f, "since", &filters.since, false);
    let until = day(&mut f, "until", &filters.until, true);
    let checked = f.finish().and_then(|()| {
        filter_of(AuditQuery {
            since,
            until,
            actor_id: Some(filters.actor.clone()).filter(|a| !a.is_empty()),
            action: Some(filters.action.trim().to_owned()).filter(|a| !a.is_empty()),
            before: filters.before,
            limit: Some(PER_PAGE),
        })
    });
    let (filter, errors) = match checked {
        Ok(filter) => (Some(filter), FormErrors::none()),
        Err(err) => (None, FormErrors::from_error(err)?),
    };
    let mut tx = state.store.tenant_tx(member.tenant).await?;
    let records = match filter {
        Some(mut filter) => {
            crate::plan_limits::within_retention(&state, &mut tx, &mut filter).await?;
            tx.audit_log(&filter).await?
        }
        None => Vec::new(),
    };
    // Names for the actors: one read of the team, one of the keys.
    let mut actors: Vec<Actor> = tx
        .members()
        .await?
        .into_iter()
        .map(|m| Actor {
            id: m.user_id.as_uuid(),
            label: m.email,
        })
        .collect();
    actors.extend(tx.api_keys().await?.into_iter().map(|k| Actor {
        id: k.id.as_uuid(),
        label: format!("API key “{}”", k.name),
    }));
    let frame = Frame::load(&state, &req, &member, &mut tx, None, Section::Audit).await?;
    tx.commit().await?;
    let names: HashMap<Uuid, &str> = actors.iter().map(|a| (a.id, a.label.as_str())).collect();
    let older = (i64::try_from(records.len()).unwrap_or(0) == PER_PAGE)
        .then(|| records.last().map(|r| r.id))
        .flatten()
        .map(|before| {
            format!(
                "/dashboard/audit-log?actor={}&action={}&since={}&until={}&before={before}",
                encode(&filters.actor),
                encode(&filters.action),
                encode(&filters.since),
                encode(&filters.until),
            )
        });
    let entries = records
        .iter()
        .map(|r| Entry {
            at_iso: heliograph_web::timestamp(r.at),
            at: utc_minute(r.at),
            actor: names.get(&r.actor_id).map_or_else(
                || format!("Former {} {}", r.actor_type, r.actor_id),
                |n| (*n).to_owned(),
            ),
            action: r.action.clone(),
            object: r.object_type.clone(),
            details: details(r),
        })
        .collect();
    let view = AuditView {
        frame,
        filters,
        actors,
        entries,
        older,
        errors,
    };
    if view.errors.any() {
        frame::html_with(StatusCode::UNPROCESSABLE_ENTITY, &view)
    } else {
        frame::html(&view.frame, &view)
    }
}
