//! `/v1/pages/{page_id}/incidents`: incidents and scheduled maintenances
//! (one resource, as in Statuspage), their updates and postmortems.

use std::collections::{BTreeMap, HashMap};

use actix_web::{HttpRequest, HttpResponse, web};
use heliograph_domain::{
    ComponentId, ComponentStatus, FieldError, Impact, IncidentId, IncidentStatus, IncidentUpdateId,
    Name, PageId, Role, TimeZoneName,
};
use heliograph_store::{
    Component, Incident, IncidentChange, IncidentEdit, IncidentScope, IncidentTemplate,
    IncidentUpdate, NewIncident, Schedule, TenantTx,
};
use heliograph_web::{V2Incident, V2IncidentUpdate};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::path_id;
use crate::auth::Member;
use crate::error::{ApiError, Fields, envelope, required};
use crate::input::{Input, ListParams, nullable, paginated};
use crate::openapi::{
    BadRequest, Conflict, Forbidden, NotFound, TooManyRequests, Unauthorized, UnsupportedMediaType,
    ValidationFailed,
};
use crate::startup::AppState;

/// `{"incident": {...}}`.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct IncidentEnvelope {
    // Required: a body without it is 422 on the envelope.
    #[schema(required = true, value_type = IncidentInput)]
    incident: Option<IncidentInput>,
}

/// An incident's or maintenance's fields (Statuspage's, plus `template_id`
/// and `restore_components`). On update, absent fields stay as they are; a
/// `status`, `body` or `components` posts a new update.
#[derive(Deserialize, Default, utoipa::ToSchema)]
struct IncidentInput {
    name: Option<String>,
    #[schema(value_type = Option<IncidentStatus>)]
    status: Option<String>,
    body: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Impact>)]
    impact_override: Option<Option<String>>,
    /// New status per component id.
    #[schema(value_type = Option<HashMap<Uuid, ComponentStatus>>)]
    components: Option<HashMap<String, String>>,
    /// Further affected components.
    #[schema(value_type = Option<Vec<Uuid>>)]
    component_ids: Option<Vec<String>>,
    deliver_notifications: Option<bool>,
    /// Makes it a scheduled maintenance (RFC 3339).
    #[schema(format = DateTime)]
    scheduled_for: Option<String>,
    #[schema(format = DateTime)]
    scheduled_until: Option<String>,
    scheduled_remind_prior: Option<bool>,
    scheduled_auto_in_progress: Option<bool>,
    scheduled_auto_completed: Option<bool>,
    /// A past incident entered after the fact, on `backfill_date`.
    backfilled: Option<bool>,
    /// `YYYY-MM-DD`, in the page's time zone.
    #[schema(format = Date)]
    backfill_date: Option<String>,
    /// Free-form, an object of at most 16 KiB.
    #[schema(value_type = Option<Object>)]
    metadata: Option<serde_json::Value>,
    /// On resolving: put the incident's components back to operational.
    restore_components: Option<bool>,
    /// Open the incident from this template (create only).
    #[schema(format = Uuid)]
    template_id: Option<String>,
}

/// An incident in management responses: Statuspage's object and the fields
/// only the team sees.
#[derive(Serialize, utoipa::ToSchema)]
pub struct IncidentResponse {
    #[serde(flatten)]
    #[schema(inline)]
    incident: V2Incident,
    impact_override: Option<String>,
    scheduled_remind_prior: bool,
    scheduled_auto_in_progress: bool,
    scheduled_auto_completed: bool,
    backfilled: bool,
    #[schema(value_type = Object)]
    metadata: serde_json::Value,
    postmortem_body: Option<String>,
    postmortem_body_last_updated_at: Option<String>,
    postmortem_published_at: Option<String>,
}

const MAX_BODY_CHARS: usize = 25_000;

fn incident_response(
    state: &AppState,
    slug: &str,
    components: &[Component],
    incident: &Incident,
    updates: &[IncidentUpdate],
) -> IncidentResponse {
    let all: Vec<&Component> = components.iter().collect();
    IncidentResponse {
        incident: heliograph_web::incident_object(
            &all,
            &state.urls.page_url(slug),
            incident,
            updates,
        ),
        impact_override: incident.impact_override.clone(),
        scheduled_remind_prior: incident.scheduled_remind_prior,
        scheduled_auto_in_progress: incident.scheduled_auto_in_progress,
        scheduled_auto_completed: incident.scheduled_auto_completed,
        backfilled: incident.backfilled,
        metadata: incident.metadata.0.clone(),
        postmortem_body: incident.postmortem_body.clone(),
        postmortem_body_last_updated_at: incident
            .postmortem_body_last_updated_at
            .map(heliograph_web::timestamp),
        postmortem_published_at: incident
            .postmortem_published_at
            .map(heliograph_web::timestamp),
    }
}

/// Reads an incident's updates and components and renders it.
async fn render(
    state: &AppState,
    tx: &mut TenantTx,
    incident: &Incident,
) -> Result<IncidentResponse, ApiError> {
    let page = tx.page(incident.page_id).await?;
    let components = tx.components(incident.page_id).await?;
    let updates = tx.incident_updates(&[incident.id]).await?;
    Ok(incident_response(
        state,
        page.slug.as_str(),
        &components,
        incident,
        &updates,
    ))
}

fn component_id(f: &mut Fields, field: &'static str, raw: &str) -> Option<ComponentId> {
    f.check(
        raw.parse().map_err(|_| {
            FieldError::new(field, "invalid", format!("`{raw}` is not a component id"))
        }),
    )
}

fn instant(f: &mut Fields, field: &'static str, raw: Option<&str>) -> Option<OffsetDateTime> {
    raw.and_then(|r| {
        f.check(
            OffsetDateTime::parse(r, &Rfc3339)
                .map_err(|_| FieldError::new(field, "invalid", "must be an RFC 3339 time")),
        )
    })
}

/// The parts of a body shared by create and update.
struct Common {
    status: Option<IncidentStatus>,
    body: Option<String>,
    impact_override: Option<Option<Impact>>,
    components: BTreeMap<ComponentId, ComponentStatus>,
    component_ids: Vec<ComponentId>,
    scheduled_for: Option<OffsetDateTime>,
    scheduled_until: Option<OffsetDateTime>,
    metadata: Option<serde_json::Value>,
}

fn parse_common(f: &mut Fields, input: &IncidentInput) -> Common {
    let status = input.status.as_deref().and_then(|s| {
        f.check(
            s.parse::<IncidentStatus>()
                .map_err(|e| FieldError::new("status", "invalid", e.to_string())),
        )
    });
    let body = input.body.clone();
    if body
        .as_ref()
        .is_some_and(|b| b.chars().count() > MAX_BODY_CHARS)
    {
        f.push(FieldError::new(
            "body",
            "too_long",
            format!("must be at most {MAX_BODY_CHARS} characters"),
        ));
    }
    let impact_override = input.impact_override.clone().map(|o| {
        o.filter(|i| !i.is_empty()).and_then(|i| {
            f.check(
                i.parse::<Impact>()
                    .map_err(|e| FieldError::new("impact_override", "invalid", e.to_string())),
            )
        })
    });
    let mut components = BTreeMap::new();
    for (id, status) in input.components.clone().unwrap_or_default() {
        let id = component_id(f, "components", &id);
        let status = f.check(
            status
                .parse::<ComponentStatus>()
                .map_err(|e| FieldError::new("components", "invalid", e.to_string())),
        );
        if let (Some(id), Some(status)) = (id, status) {
            components.insert(id, status);
        }
    }
    let component_ids = input
        .component_ids
        .clone()
        .unwrap_or_default()
        .iter()
        .filter_map(|id| component_id(f, "component_ids", id))
        .collect();
    let metadata = input.metadata.clone();
    if metadata.as_ref().is_some_and(|m| !m.is_object()) {
        f.push(FieldError::new("metadata", "invalid", "must be an object"));
    }
    if metadata
        .as_ref()
        .is_some_and(|m| m.to_string().len() > 16 * 1024)
    {
        f.push(FieldError::new(
            "metadata",
            "too_long",
            "must be at most 16 KiB",
        ));
    }
    Common {
        status,
        body,
        impact_override,
        components,
        component_ids,
        scheduled_for: instant(f, "scheduled_for", input.scheduled_for.as_deref()),
        scheduled_until: instant(f, "scheduled_until", input.scheduled_until.as_deref()),
        metadata,
    }
}

fn check_window(f: &mut Fields, start: OffsetDateTime, end: OffsetDateTime) {
    if end <= start {
        f.push(FieldError::new(
            "scheduled_until",
            "invalid",
            "must be after scheduled_for",
        ));
    }
}

fn parse_new(
    input: IncidentInput,
    template: Option<&IncidentTemplate>,
    zone: &TimeZoneName,
) -> Result<NewIncident, ApiError> {
    let mut f = Fields::default();
    let c = parse_common(&mut f, &input);
    let name = input
        .name
        .clone()
        .or_else(|| template.map(|t| t.title.clone()));
    let name = f.check(required("name", name).and_then(|n| Name::parse("name", &n, 255)));
    let maintenance = c.scheduled_for.is_some()
        || c.scheduled_until.is_some()
        || c.status.is_some_and(IncidentStatus::is_maintenance);
    let backfilled = input.backfilled.unwrap_or(false);
    let mut at = None;
    let mut schedule = None;
    let status = if backfilled {
        let format = time::macros::format_description!("[year]-[month]-[day]");
        let date = f.check(
            required("backfill_date", input.backfill_date.clone()).and_then(|d| {
                time::Date::parse(&d, format).map_err(|_| {
                    FieldError::new("backfill_date", "invalid", "must be a date, YYYY-MM-DD")
                })
            }),
        );
        if let Some(date) = date {
            let (start, _) = heliograph_domain::day_bounds(date, zone);
            if start > OffsetDateTime::now_utc() {
                f.push(FieldError::new(
                    "backfill_date",
                    "invalid",
                    "must not be in the future",
                ));
            }
            at = Some(start);
        }
        if maintenance {
            f.push(FieldError::new(
                "backfilled",
                "invalid",
                "a maintenance is not backfilled",
            ));
        }
        IncidentStatus::Resolved
    } else if maintenance {
        match (c.scheduled_for, c.scheduled_until) {
            (Some(start), Some(end)) => {
                check_window(&mut f, start, end);
                schedule = Some(Schedule {
                    scheduled_for: start,
                    scheduled_until: end,
                    remind_prior: input.scheduled_remind_prior.unwrap_or(false),
                    auto_in_progress: input.scheduled_auto_in_progress.unwrap_or(false),
                    auto_completed: input.scheduled_auto_completed.unwrap_or(false),
                });
            }
            (None, _) => f.push(FieldError::new(
                "scheduled_for",
                "missing",
                "a maintenance needs its window",
            )),
            (_, None) => f.push(FieldError::new(
                "scheduled_until",
                "missing",
                "a maintenance needs its window",
            )),
        }
        let status = c.status.unwrap_or(IncidentStatus::Scheduled);
        if !matches!(
            status,
            IncidentStatus::Scheduled | IncidentStatus::InProgress
        ) {
            f.push(FieldError::new(
                "status",
                "invalid",
                "a new maintenance is scheduled or in_progress",
            ));
        }
        status
    } else {
        let status = c
            .status
            .or_else(|| template.map(|t| t.update_status))
            .unwrap_or(IncidentStatus::Investigating);
        if status == IncidentStatus::Postmortem {
            f.push(FieldError::new(
                "status",
                "invalid",
                "a new incident is investigating, identified, monitoring or resolved",
            ));
        }
        status
    };
    let mut component_ids = c.component_ids;
    if let Some(t) = template {
        component_ids.extend(t.component_ids.iter().copied().map(ComponentId::from));
    }
    let Some(name) = name else {
        return Err(f.into_error());
    };
    f.finish()?;
    Ok(NewIncident {
        name,
        status,
        body: c
            .body
            .or_else(|| template.map(|t| t.body.clone()))
            .unwrap_or_default(),
        impact_override: c.impact_override.flatten(),
        components: c.components,
        component_ids,
        deliver_notifications: input
            .deliver_notifications
            .or_else(|| template.map(|t| t.should_send_notifications))
            .unwrap_or(true),
        at,
        schedule,
        backfilled,
        metadata: c.metadata.unwrap_or_else(|| serde_json::json!({})),
    })
}

/// An incident of this page (404 for any other, another tenant's included).
pub(crate) async fn incident_on_page(
    tx: &mut TenantTx,
    page: PageId,
    id: IncidentId,
) -> Result<Incident, ApiError> {
    let i = tx.incident(id).await?;
    if i.page_id == page {
        Ok(i)
    } else {
        Err(ApiError::NotFound)
    }
}

fn page_and_incident(path: &(String, String)) -> Result<(PageId, IncidentId), ApiError> {
    Ok((path_id(&path.0)?, path_id(&path.1)?))
}

/// Opens an incident, a backfilled one, or schedules a maintenance (editor).
///
/// The row, its first update, the component changes and the notification
/// events are written in one transaction.
#[utoipa::path(
    post,
    path = "/v1/pages/{page_id}/incidents",
    tag = "incidents",
    operation_id = "create_incident",
    security(("bearer" = []), ("oauth" = []), ("cookie" = [])),
    params(("page_id" = Uuid, Path, description = "The page's id.")),
    request_body(content(
        (IncidentEnvelope = "application/json", example = json!({"incident": {"name": "Elevated error rates", "status": "investigating", "body": "We are looking into it."}})),
        (IncidentEnvelope = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 201, description = "The incident, with its first update.", body = IncidentResponse),
        BadRequest, Unauthorized, Forbidden, NotFound, UnsupportedMediaType, ValidationFailed,
        TooManyRequests,
    ),
)]
pub async fn create(
    member: Member,
    state: web::Data<AppState>,
    page_id: web::Path<String>,
    body: Input<IncidentEnvelope>,
) -> Result<HttpResponse, ApiError> {
    let page_id: PageId = path_id(&page_id)?;
    let mut tx = state.store.tenant_tx(member.tenant).await?;
    let page = tx.page(page_id).await?;
    member.require(Role::Editor)?;
    let input = envelope("incident", body.0.incident)?;
    let template = match input.template_id.as_deref() {
        Some(raw) => {
            let id = raw.parse().map_err(|_| {
                ApiError::field(FieldError::new(
                    "template_id",
                    "invalid",
                    "is not a template id",
                ))
            })?;
            Some(tx.template(page_id, id).await.map_err(|e| match e {
                heliograph_store::StoreError::NotFound => ApiError::field(FieldError::new(
                    "template_id",
                    "not_found",
                    "no such template on this page",
                )),
                other => other.into(),
            })?)
        }
        None => None,
    };
    let new = parse_new(input, template.as_ref(), &page.time_zone)?;
    let (incident, update) = tx.create_incident(page_id, &new).await?;
    let components = tx.components(page_id).await?;
    tx.audit(&member.audit(
        if incident.is_maintenance() { "maintenance.created" } else { "incident.created" },
        "incident",
        incident.id.as_uuid(),
        serde_json::json!({"name": incident.name, "status": incident.status, "impact": incident.impact}),
    ))
    .await?;
    tx.commit().await?;
    tracing::info!(tenant.id = %member.tenant, actor = %member.actor, incident.id = %incident.id, "incident opened");
    Ok(HttpResponse::Created().json(incident_response(
        &state,
        page.slug.as_str(),
        &components,
        &incident,
        &[update],
    )))
}

async fn list_scope(
    member: Member,
    state: web::Data<AppState>,
    req: HttpRequest,
    page_id: web::Path<String>,
    params: web::Query<ListParams>,
    scope: IncidentScope,
) -> Result<HttpResponse, ApiError> {
    let page_id: PageId = path_id(&page_id)?;
    let query = params.query(str::parse::<IncidentStatus>, IncidentStatus::as_str)?;
    let mut tx = state.store.tenant_tx(member.tenant).await?;
    let page = tx.page(page_id).await?;
    let listed = tx.list_incidents(page_id, scope, &query).await?;
    let components = tx.components(page_id).await?;
    let ids: Vec<IncidentId> = listed.items.iter().map(|i| i.id).collect();
    let mut updates: HashMap<IncidentId, Vec<IncidentUpdate>> = HashMap::new();
    for u in tx.incident_updates(&ids).await? {
        updates.entry(u.incident_id).or_default().push(u);
    }
    tx.commit().await?;
    Ok(paginated(&req, state.urls.origin(), &query, listed, |i| {
        incident_response(
            &state,
            page.slug.as_str(),
            &components,
            i,
            updates.get(&i.id).map_or(&[], Vec::as_slice),
        )
    }))
}

/// Lists a page's incidents and maintenances, newest first (viewer).
///
/// `q` filters on the name, `status` on incident statuses.
#[utoipa::path(
    get,
    path = "/v1/pages/{page_id}/incidents",
    tag = "incidents",
    operation_id = "list_incidents",
    security(("bearer" = []), ("oauth" = []), ("cookie" = [])),
    params(
        ("page_id" = Uuid, Path, description = "The page's id."), ListParams,
        ("status" = Option<Vec<IncidentStatus>>, Query, style = Form, explode = false,
            description = "Keep only these statuses (comma-separated)."),
    ),
    responses(
        crate::openapi::IncidentList,
        Unauthorized, NotFound, ValidationFailed, TooManyRequests,
    ),
)]
pub async fn list(
    member: Member,
    state: web::Data<AppState>,
    req: HttpRequest,
    page_id: web::Path<String>,
    params: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    list_scope(member, state, req, page_id, params, IncidentScope::All).await
}

/// Lists a page's unresolved incidents (viewer).
#[utoipa::path(
    get,
    path = "/v1/pages/{page_id}/incidents/unresolved",
    tag = "incidents",
    operation_id = "list_unresolved_incidents",
    security(("bearer" = []), ("oauth" = []), ("cookie" = [])),
    params(
        ("page_id" = Uuid, Path, description = "The page's id."), ListParams,
        ("status" = Option<Vec<IncidentStatus>>, Query, style = Form, explode = false,
            description = "Keep only these statuses (comma-separated)."),
    ),
    responses(
        crate::openapi::IncidentList,
        Unauthorized, NotFound, ValidationFailed, TooManyRequests,
    ),
)]
pub async fn unresolved(
    member: Member,
    state: web::Data<AppState>,
    req: HttpRequest,
    page_id: web::Path<String>,
    params: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    list_scope(
        member,
        state,
        req,
        page_id,
        params,
        IncidentScope::Unresolved,
    )
    .await
}

/// Lists a page's maintenances not yet begun, soonest first (viewer).
#[utoipa::path(
    get,
    path = "/v1/pages/{page_id}/incidents/upcoming",
    tag = "incidents",
    operation_id = "list_upcoming_incidents",
    security(("bearer" = []), ("oauth" = []), ("cookie" = [])),
    params(
        ("page_id" = Uuid, Path, description = "The page's id."), ListParams,
        ("status" = Option<Vec<IncidentStatus>>, Query, style = Form, explode = false,
            description = "Keep only these statuses (comma-separated)."),
    ),
    responses(
        crate::openapi::IncidentList,
        Unauthorized, NotFound, ValidationFailed, TooManyRequests,
    ),
)]
pub async fn upcoming(
    member: Member,
    state: web::Data<AppState>,
    req: HttpRequest,
    page_id: web::Path<String>,
    params: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    list_scope(member, state, req, page_id, params, IncidentScope::Upcoming).await
}

/// Lists every maintenance of a page (viewer).
#[utoipa::path(
    get,
    path = "/v1/pages/{page_id}/incidents/scheduled",
    tag = "incidents",
    operation_id = "list_scheduled_incidents",
    security(("bearer" = []), ("oauth" = []), ("cookie" = [])),
    params(
        ("page_id" = Uuid, Path, description = "The page's id."), ListParams,
        ("status" = Option<Vec<IncidentStatus>>, Query, style = Form, explode = false,
            description = "Keep only these statuses (comma-separated)."),
    ),
    responses(
        crate::openapi::IncidentList,
        Unauthorized, NotFound, ValidationFailed, TooManyRequests,
    ),
)]
pub async fn scheduled(
    member: Member,
    state: web::Data<AppState>,
    req: HttpRequest,
    page_id: web::Path<String>,
    params: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    list_scope(
        member,
        state,
        req,
        page_id,
        params,
        IncidentScope::Scheduled,
    )
    .await
}

/// Lists a page's maintenances in progress (viewer).
#[utoipa::path(
    get,
    path = "/v1/pages/{page_id}/incidents/active_maintenance",
    tag = "incidents",
    operation_id = "list_active_maintenance",
    security(("bearer" = []), ("oauth" = []), ("cookie" = [])),
    params(
        ("page_id" = Uuid, Path, description = "The page's id."), ListParams,
        ("status" = Option<Vec<IncidentStatus>>, Query, style = Form, explode = false,
            description = "Keep only these statuses (comma-separated)."),
    ),
    responses(
        crate::openapi::IncidentList,
        Unauthorized, NotFound, ValidationFailed, TooManyRequests,
    ),
)]
pub async fn active_maintenance(
    member: Member,
    state: web::Data<AppState>,
    req: HttpRequest,
    page_id: web::Path<String>,
    params: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    list_scope(
        member,
        state,
        req,
        page_id,
        params,
        IncidentScope::ActiveMaintenance,
    )
    .await
}

/// Gets an incident or maintenance (viewer).
#[utoipa::path(
    get,
    path = "/v1/pages/{page_id}/incidents/{id}",
    tag = "incidents",
    operation_id = "get_incident",
    security(("bearer" = []), ("oauth" = []), ("cookie" = [])),
    params(("page_id" = Uuid, Path, description = "The page's id."), ("id" = Uuid, Path, description = "The incident's id.")),
    responses(
        (status = 200, description = "The incident.", body = IncidentResponse),
        Unauthorized, NotFound, TooManyRequests,
    ),
)]
pub async fn get(
    member: Member,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (page, id) = page_and_incident(&path)?;
    let mut tx = state.store.tenant_tx(member.tenant).await?;
    let incident = incident_on_page(&mut tx, page, id).await?;
    let body = render(&state, &mut tx, &incident).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(body))
}

/// Changes an incident and, with `status`, `body` or `components`, posts an update (editor).
///
/// Absent fields stay as they are. PATCH and PUT do the same.
#[utoipa::path(
    method(patch, put),
    path = "/v1/pages/{page_id}/incidents/{id}",
    tag = "incidents",
    operation_id = "update_incident",
    security(("bearer" = []), ("oauth" = []), ("cookie" = [])),
    params(("page_id" = Uuid, Path, description = "The page's id."), ("id" = Uuid, Path, description = "The incident's id.")),
    request_body(content(
        (IncidentEnvelope = "application/json"),
        (IncidentEnvelope = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 200, description = "The incident.", body = IncidentResponse),
        BadRequest, Unauthorized, Forbidden, NotFound, UnsupportedMediaType, ValidationFailed,
        TooManyRequests,
    ),
)]
pub async fn update(
    member: Member,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: Input<IncidentEnvelope>,
) -> Result<HttpResponse, ApiError> {
    let (page, id) = page_and_incident(&path)?;
    let mut tx = state.store.tenant_tx(member.tenant).await?;
    let current = incident_on_page(&mut tx, page, id).await?;
    member.require(Role::Editor)?;
    let input = envelope("incident", body.0.incident)?;
    let mut f = Fields::default();
    let c = parse_common(&mut f, &input);
    let name = input
        .name
        .as_deref()
        .and_then(|n| f.check(Name::parse("name", n, 255)));
    let touches_window = c.scheduled_for.is_some()
        || c.scheduled_until.is_some()
        || input.scheduled_remind_prior.is_some()
        || input.scheduled_auto_in_progress.is_some()
        || input.scheduled_auto_completed.is_some();
    let schedule = if touches_window {
        if let (Some(start), Some(end)) = (
            c.scheduled_for.or(current.scheduled_for),
            c.scheduled_until.or(current.scheduled_until),
        ) {
            check_window(&mut f, start, end);
            Some(Schedule {
                scheduled_for: start,
                scheduled_until: end,
                remind_prior: input
                    .scheduled_remind_prior
                    .unwrap_or(current.scheduled_remind_prior),
                auto_in_progress: input
                    .scheduled_auto_in_progress
                    .unwrap_or(current.scheduled_auto_in_progress),
                auto_completed: input
                    .scheduled_auto_completed
                    .unwrap_or(current.scheduled_auto_completed),
            })
        } else {
            f.push(FieldError::new(
                "scheduled_for",
                "invalid",
                "only a maintenance has a window",
            ));
            None
        }
    } else {
        None
    };
    if input.template_id.is_some() || input.backfilled.is_some() {
        f.push(FieldError::new(
            "incident",
            "invalid",
            "template_id and backfilled apply when an incident is opened",
        ));
    }
    f.finish()?;
    let edit = IncidentEdit {
        name,
        impact_override: c.impact_override,
        schedule,
        metadata: c.metadata,
        component_ids: c.component_ids,
    };
    let mut incident = tx.edit_incident(id, &edit).await?;
    if c.status.is_some() || c.body.is_some() || !c.components.is_empty() {
        let change = IncidentChange {
            status: c.status.unwrap_or(current.status),
            body: c.body.unwrap_or_default(),
            components: c.components,
            deliver_notifications: input.deliver_notifications.unwrap_or(true),
            at: None,
            restore_components: input.restore_components.unwrap_or(false),
        };
        incident = tx.update_incident(id, &change).await?.0;
    }
    tx.audit(&member.audit(
        "incident.updated",
        "incident",
        incident.id.as_uuid(),
        serde_json::json!({"name": incident.name, "status": incident.status, "old_status": current.status, "impact": incident.impact}),
    ))
    .await?;
    let body = render(&state, &mut tx, &incident).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(body))
}

/// Deletes an incident and its updates (admin).
///
/// Component statuses and their history stay.
#[utoipa::path(
    delete,
    path = "/v1/pages/{page_id}/incidents/{id}",
    tag = "incidents",
    operation_id = "delete_incident",
    security(("bearer" = []), ("oauth" = []), ("cookie" = [])),
    params(("page_id" = Uuid, Path, description = "The page's id."), ("id" = Uuid, Path, description = "The incident's id.")),
    responses(
        (status = 204, description = "Deleted."),
        Unauthorized, Forbidden, NotFound, TooManyRequests,
    ),
)]
pub async fn delete(
    member: Member,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (page, id) = page_and_incident(&path)?;
    let mut tx = state.store.tenant_tx(member.tenant).await?;
    incident_on_page(&mut tx, page, id).await?;
    member.require(Role::Admin)?;
    let incident = tx.delete_incident(id).await?;
    tx.audit(&member.audit(
        "incident.deleted",
        "incident",
        incident.id.as_uuid(),
        serde_json::json!({"name": incident.name}),
    ))
    .await?;
    tx.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `{"incident_update": {...}}`.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct IncidentUpdateEnvelope {
    // Required: a body without it is 422 on the envelope.
    #[schema(required = true, value_type = IncidentUpdateInput)]
    incident_update: Option<IncidentUpdateInput>,
}

/// The editable fields of a posted update.
#[derive(Deserialize, utoipa::ToSchema)]
struct IncidentUpdateInput {
    body: Option<String>,
    /// RFC 3339.
    #[schema(format = DateTime)]
    display_at: Option<String>,
    deliver_notifications: Option<bool>,
}

/// Corrects a posted update's text or shown time (editor).
///
/// Notifications already sent are not sent again. PATCH and PUT do the same.
#[utoipa::path(
    method(patch, put),
    path = "/v1/pages/{page_id}/incidents/{id}/incident_updates/{update_id}",
    tag = "incidents",
    operation_id = "update_incident_update",
    security(("bearer" = []), ("oauth" = []), ("cookie" = [])),
    params(
        ("page_id" = Uuid, Path, description = "The page's id."),
        ("id" = Uuid, Path, description = "The incident's id."),
        ("update_id" = Uuid, Path, description = "The update's id."),
    ),
    request_body(content(
        (IncidentUpdateEnvelope = "application/json"),
        (IncidentUpdateEnvelope = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 200, description = "The update.", body = V2IncidentUpdate),
        BadRequest, Unauthorized, Forbidden, NotFound, UnsupportedMediaType, ValidationFailed,
        TooManyRequests,
    ),
)]
pub async fn edit_update(
    member: Member,
    state: web::Data<AppState>,
    path: web::Path<(String, String, String)>,
    body: Input<IncidentUpdateEnvelope>,
) -> Result<HttpResponse, ApiError> {
    let (page, id) = page_and_incident(&(path.0.clone(), path.1.clone()))?;
    let update_id: IncidentUpdateId = path_id(&path.2)?;
    let mut tx = state.store.tenant_tx(member.tenant).await?;
    incident_on_page(&mut tx, page, id).await?;
    tx.incident_update(id, update_id).await?;
    member.require(Role::Editor)?;
    let input = envelope("incident_update", body.0.incident_update)?;
    let mut f = Fields::default();
    if input
        .body
        .as_ref()
        .is_some_and(|b| b.chars().count() > MAX_BODY_CHARS)
    {
        f.push(FieldError::new(
            "body",
            "too_long",
            format!("must be at most {MAX_BODY_CHARS} characters"),
        ));
    }
    let display_at = instant(&mut f, "display_at", input.display_at.as_deref());
    f.finish()?;
    let update = tx
        .edit_incident_update(
            id,
            update_id,
            input.body.as_deref(),
            display_at,
            input.deliver_notifications,
        )
        .await?;
    let components = tx.components(page).await?;
    tx.audit(&member.audit(
        "incident_update.updated",
        "incident_update",
        update.id.as_uuid(),
        serde_json::json!({"incident_id": id}),
    ))
    .await?;
    tx.commit().await?;
    let all: Vec<&Component> = components.iter().collect();
    let out: V2IncidentUpdate = heliograph_web::incident_update_object(&all, &update);
    Ok(HttpResponse::Ok().json(out))
}

/// A postmortem.
#[derive(Serialize, utoipa::ToSchema)]
pub struct PostmortemResponse {
    body: String,
    body_updated_at: Option<String>,
    published_at: Option<String>,
}

fn postmortem_response(i: &Incident) -> Result<PostmortemResponse, ApiError> {
    let body = i.postmortem_body.clone().ok_or(ApiError::NotFound)?;
    Ok(PostmortemResponse {
        body,
        body_updated_at: i
            .postmortem_body_last_updated_at
            .map(heliograph_web::timestamp),
        published_at: i.postmortem_published_at.map(heliograph_web::timestamp),
    })
}

/// `{"postmortem": {...}}`.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct PostmortemEnvelope {
    // Required: a body without it is 422 on the envelope.
    #[schema(required = true, value_type = PostmortemInput)]
    postmortem: Option<PostmortemInput>,
}

/// A postmortem draft, or how to publish it.
#[derive(Deserialize, utoipa::ToSchema)]
struct PostmortemInput {
    /// The draft's text (Statuspage's name for it).
    body_draft: Option<String>,
    /// Same as `body_draft`.
    body: Option<String>,
    /// On publish: tell subscribers.
    notify_subscribers: Option<bool>,
}

/// Gets an incident's postmortem (viewer).
///
/// 404 when there is none.
#[utoipa::path(
    get,
    path = "/v1/pages/{page_id}/incidents/{id}/postmortem",
    tag = "postmortems",
    operation_id = "get_postmortem",
    security(("bearer" = []), ("oauth" = []), ("cookie" = [])),
    params(("page_id" = Uuid, Path, description = "The page's id."), ("id" = Uuid, Path, description = "The incident's id.")),
    responses(
        (status = 200, description = "The postmortem.", body = PostmortemResponse),
        Unauthorized, NotFound, TooManyRequests,
    ),
)]
pub async fn get_postmortem(
    member: Member,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (page, id) = page_and_incident(&path)?;
    let mut tx = state.store.tenant_tx(member.tenant).await?;
    let incident = incident_on_page(&mut tx, page, id).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(postmortem_response(&incident)?))
}

/// Writes an incident's postmortem draft (editor).
///
/// A published postmortem is not rewritten (409 `postmortem_published`).
#[utoipa::path(
    put,
    path = "/v1/pages/{page_id}/incidents/{id}/postmortem",
    tag = "postmortems",
    operation_id = "put_postmortem",
    security(("bearer" = []), ("oauth" = []), ("cookie" = [])),
    params(("page_id" = Uuid, Path, description = "The page's id."), ("id" = Uuid, Path, description = "The incident's id.")),
    request_body(content(
        (PostmortemEnvelope = "application/json"),
        (PostmortemEnvelope = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 200, description = "The postmortem.", body = PostmortemResponse),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, UnsupportedMediaType,
        ValidationFailed, TooManyRequests,
    ),
)]
pub async fn put_postmortem(
    member: Member,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: Input<PostmortemEnvelope>,
) -> Result<HttpResponse, ApiError> {
    let (page, id) = page_and_incident(&path)?;
    let mut tx = state.store.tenant_tx(member.tenant).await?;
    incident_on_page(&mut tx, page, id).await?;
    member.require(Role::Editor)?;
    let input = envelope("postmortem", body.0.postmortem)?;
    let text = required("body_draft", input.body_draft.or(input.body))
        .and_then(|b| {
            if b.trim().is_empty() {
                Err(FieldError::new("body_draft", "missing", "is required"))
            } else if b.chars().count() > 100_000 {
                Err(FieldError::new(
                    "body_draft",
                    "too_long",
                    "must be at most 100000 characters",
                ))
            } else {
                Ok(b)
            }
        })
        .map_err(ApiError::field)?;
    let incident = tx.set_postmortem(id, &text).await?;
    tx.audit(&member.audit(
        "postmortem.updated",
        "incident",
        id.as_uuid(),
        serde_json::json!({}),
    ))
    .await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(postmortem_response(&incident)?))
}

/// Publishes an incident's postmortem (editor).
///
/// With `notify_subscribers`, subscribers are told.
#[utoipa::path(
    put,
    path = "/v1/pages/{page_id}/incidents/{id}/postmortem/publish",
    tag = "postmortems",
    operation_id = "publish_postmortem",
    security(("bearer" = []), ("oauth" = []), ("cookie" = [])),
    params(("page_id" = Uuid, Path, description = "The page's id."), ("id" = Uuid, Path, description = "The incident's id.")),
    request_body(content(
        (PostmortemEnvelope = "application/json"),
        (PostmortemEnvelope = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 200, description = "The published postmortem.", body = PostmortemResponse),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, UnsupportedMediaType,
        ValidationFailed, TooManyRequests,
    ),
)]
pub async fn publish_postmortem(
    member: Member,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: Input<PostmortemEnvelope>,
) -> Result<HttpResponse, ApiError> {
    let (page, id) = page_and_incident(&path)?;
    let mut tx = state.store.tenant_tx(member.tenant).await?;
    incident_on_page(&mut tx, page, id).await?;
    member.require(Role::Editor)?;
    let notify = body
        .0
        .postmortem
        .and_then(|p| p.notify_subscribers)
        .unwrap_or(false);
    let (incident, _) = tx.publish_postmortem(id, notify).await?;
    tx.audit(&member.audit(
        "postmortem.published",
        "incident",
        id.as_uuid(),
        serde_json::json!({"notify_subscribers": notify}),
    ))
    .await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(postmortem_response(&incident)?))
}

/// Deletes an incident's postmortem (editor).
#[utoipa::path(
    delete,
    path = "/v1/pages/{page_id}/incidents/{id}/postmortem",
    tag = "postmortems",
    operation_id = "delete_postmortem",
    security(("bearer" = []), ("oauth" = []), ("cookie" = [])),
    params(("page_id" = Uuid, Path, description = "The page's id."), ("id" = Uuid, Path, description = "The incident's id.")),
    responses(
        (status = 204, description = "Deleted."),
        Unauthorized, Forbidden, NotFound, TooManyRequests,
    ),
)]
pub async fn delete_postmortem(
    member: Member,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (page, id) = page_and_incident(&path)?;
    let mut tx = state.store.tenant_tx(member.tenant).await?;
    incident_on_page(&mut tx, page, id).await?;
    member.require(Role::Editor)?;
    tx.delete_postmortem(id).await?;
    tx.audit(&member.audit(
        "postmortem.deleted",
        "incident",
        id.as_uuid(),
        serde_json::json!({}),
    ))
    .await?;
    tx.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}
