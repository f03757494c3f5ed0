//! `/v1/pages/{page_id}/incidents`: incidents and scheduled maintenances
//! (one resource, as in Statuspage), their updates and postmortems.

use std::collections::HashMap;

use actix_web::{HttpRequest, HttpResponse, web};
use heliograph_domain::{Component, Page};
use heliograph_domain::{
    FieldError, Impact, Incident, IncidentChange, IncidentEdit, IncidentId, IncidentStatus,
    IncidentUpdate, IncidentUpdateId, Name, PageId,
};
use heliograph_store::{IncidentScope, TenantTx};
use heliograph_web::{V2Incident, V2IncidentUpdate};
use serde::{Deserialize, Serialize};

use super::path_id;
use crate::auth::Member;
use crate::error::{ApiError, Fields, envelope};
use crate::input::{Input, ListParams, paginated};
use crate::openapi::{
    BadRequest, Forbidden, NotFound, TooManyRequests, Unauthorized, UnsupportedMediaType,
    ValidationFailed,
};
use crate::page_scope::{Admin, AtPage, Editor, Needs, Viewer};
use crate::startup::AppState;

mod input;
mod postmortem;

pub(crate) use input::IncidentInput;
use input::{IncidentEnvelope, MAX_BODY_CHARS, instant, parse_common, parse_new, schedule_patch};
pub use postmortem::*;

/// An incident in management responses: Statuspage's object and the fields
/// only the team sees.
#[derive(Serialize, utoipa::ToSchema)]
pub struct IncidentResponse {
    #[serde(flatten)]
    #[schema(inline)]
    incident: V2Incident,
    impact_override: Option<Impact>,
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
        impact_override: incident.impact_override,
        scheduled_remind_prior: incident.scheduled_remind_prior,
        scheduled_auto_in_progress: incident.scheduled_auto_in_progress,
        scheduled_auto_completed: incident.scheduled_auto_completed,
        backfilled: incident.backfilled,
        metadata: incident.metadata.clone(),
        postmortem_body: incident.postmortem_body.clone(),
        postmortem_body_last_updated_at: incident
            .postmortem_body_last_updated_at
            .map(heliograph_web::timestamp),
        postmortem_published_at: incident
            .postmortem_published_at
            .map(heliograph_web::timestamp),
    }
}

/// Reads an incident's updates and components and renders it, on `page`
/// (the one the request resolved, which holds the incident).
async fn render(
    state: &AppState,
    tx: &mut TenantTx,
    page: &Page,
    incident: &Incident,
) -> Result<IncidentResponse, ApiError> {
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

/// The incident `{id}` (`raw_id`, from the path) on the page the request
/// resolved: 404 for a malformed id or an incident of any other page.
pub(crate) async fn incident_at<R: Needs>(
    at: &mut AtPage<R>,
    raw_id: &str,
) -> Result<Incident, ApiError> {
    let id: IncidentId = path_id(raw_id)?;
    incident_on_page(&mut at.tx, at.page.id, id).await
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

/// Opens an incident (or a backfilled one, or schedules a maintenance) on
/// `page` from `input`: the template it names, the rules of an opening, the
/// rows with their notification events, the audit entry. The caller
/// commits. `POST /v1/pages/{page_id}/incidents` and the dashboard's
/// composer both open incidents through it.
pub(crate) async fn open(
    member: &Member,
    tx: &mut TenantTx,
    page: &Page,
    input: IncidentInput,
) -> Result<(Incident, IncidentUpdate), ApiError> {
    let page_id = page.id;
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
    tx.audit(&member.audit(
        if incident.is_maintenance() { "maintenance.created" } else { "incident.created" },
        "incident",
        incident.id.as_uuid(),
        serde_json::json!({"name": incident.name, "status": incident.status, "impact": incident.impact}),
    ))
    .await?;
    Ok((incident, update))
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
    at: AtPage<Editor>,
    state: web::Data<AppState>,
    body: Input<IncidentEnvelope>,
) -> Result<HttpResponse, ApiError> {
    let AtPage {
        member,
        mut tx,
        page,
        ..
    } = at;
    let input = envelope("incident", body.0.incident)?;
    let (incident, update) = open(&member, &mut tx, &page, input).await?;
    let components = tx.components(page.id).await?;
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
    at: AtPage<Viewer>,
    state: web::Data<AppState>,
    req: HttpRequest,
    params: web::Query<ListParams>,
    scope: IncidentScope,
) -> Result<HttpResponse, ApiError> {
    let AtPage { mut tx, page, .. } = at;
    let query = params.query(str::parse::<IncidentStatus>, IncidentStatus::as_str)?;
    let listed = tx.list_incidents(page.id, scope, &query).await?;
    let components = tx.components(page.id).await?;
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
    at: AtPage<Viewer>,
    state: web::Data<AppState>,
    req: HttpRequest,
    params: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    list_scope(at, state, req, params, IncidentScope::All).await
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
    at: AtPage<Viewer>,
    state: web::Data<AppState>,
    req: HttpRequest,
    params: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    list_scope(at, state, req, params, IncidentScope::Unresolved).await
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
    at: AtPage<Viewer>,
    state: web::Data<AppState>,
    req: HttpRequest,
    params: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    list_scope(at, state, req, params, IncidentScope::Upcoming).await
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
    at: AtPage<Viewer>,
    state: web::Data<AppState>,
    req: HttpRequest,
    params: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    list_scope(at, state, req, params, IncidentScope::Scheduled).await
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
    at: AtPage<Viewer>,
    state: web::Data<AppState>,
    req: HttpRequest,
    params: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    list_scope(at, state, req, params, IncidentScope::ActiveMaintenance).await
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
    mut at: AtPage<Viewer>,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let incident = incident_at(&mut at, &path.1).await?;
    let AtPage { mut tx, page, .. } = at;
    let body = render(&state, &mut tx, &page, &incident).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(body))
}

/// Changes `current` as `input` asks and, with a status, a message or
/// component states, posts an update (answered with it) (with its notifications unless
/// `deliver_notifications` is false); writes the audit entry. The caller
/// commits. `PATCH /v1/pages/{page_id}/incidents/{id}` and the dashboard's
/// incident page both change incidents through it.
pub(crate) async fn change(
    member: &Member,
    tx: &mut TenantTx,
    current: &Incident,
    input: IncidentInput,
) -> Result<(Incident, Option<IncidentUpdate>), ApiError> {
    let id = current.id;
    let mut f = Fields::default();
    let c = parse_common(&mut f, &input);
    let name = input
        .name
        .as_deref()
        .and_then(|n| f.check(Name::parse("name", n, 255)));
    let schedule = f
        .check(schedule_patch(&input, &c).merged_into(current))
        .flatten();
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
    let mut posted = None;
    if c.status.is_some() || c.body.is_some() || !c.components.is_empty() {
        let change = IncidentChange {
            status: c.status.unwrap_or(current.status),
            body: c.body.unwrap_or_default(),
            components: c.components,
            deliver_notifications: input.deliver_notifications.unwrap_or(true),
            at: None,
            restore_components: input.restore_components.unwrap_or(false),
        };
        let (changed, update) = tx.update_incident(id, &change).await?;
        incident = changed;
        posted = Some(update);
    }
    tx.audit(&member.audit(
        "incident.updated",
        "incident",
        incident.id.as_uuid(),
        serde_json::json!({"name": incident.name, "status": incident.status, "old_status": current.status, "impact": incident.impact}),
    ))
    .await?;
    Ok((incident, posted))
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
    mut at: AtPage<Editor>,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: Input<IncidentEnvelope>,
) -> Result<HttpResponse, ApiError> {
    let current = incident_at(&mut at, &path.1).await?;
    let AtPage {
        member,
        mut tx,
        page,
        ..
    } = at;
    let input = envelope("incident", body.0.incident)?;
    let (incident, _) = change(&member, &mut tx, &current, input).await?;
    let body = render(&state, &mut tx, &page, &incident).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(body))
}

/// Deletes an incident and its updates (admin); answers it as it was.
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
        (status = 200, description = "The deleted incident, as it was.", body = IncidentResponse),
        Unauthorized, Forbidden, NotFound, TooManyRequests,
    ),
)]
pub async fn delete(
    mut at: AtPage<Admin>,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let current = incident_at(&mut at, &path.1).await?;
    let id = current.id;
    let AtPage {
        member,
        mut tx,
        page,
        ..
    } = at;
    // Rendered before its updates go with it.
    let body = render(&state, &mut tx, &page, &current).await?;
    remove(&member, &mut tx, id).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(body))
}

/// Deletes an incident and its updates, with the audit entry; the caller
/// commits. Shared by `DELETE /v1/pages/{page_id}/incidents/{id}` and the
/// dashboard.
pub(crate) async fn remove(
    member: &Member,
    tx: &mut TenantTx,
    id: IncidentId,
) -> Result<Incident, ApiError> {
    let incident = tx.delete_incident(id).await?;
    tx.audit(&member.audit(
        "incident.deleted",
        "incident",
        incident.id.as_uuid(),
        serde_json::json!({"name": incident.name}),
    ))
    .await?;
    Ok(incident)
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
pub(crate) struct IncidentUpdateInput {
    /// At most 25,000 characters.
    #[schema(max_length = 25000)]
    pub(crate) body: Option<String>,
    /// RFC 3339.
    #[schema(format = DateTime)]
    pub(crate) display_at: Option<String>,
    pub(crate) deliver_notifications: Option<bool>,
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
    mut at: AtPage<Editor>,
    path: web::Path<(String, String, String)>,
    body: Input<IncidentUpdateEnvelope>,
) -> Result<HttpResponse, ApiError> {
    let incident = incident_at(&mut at, &path.1).await?;
    let id = incident.id;
    let update_id: IncidentUpdateId = path_id(&path.2)?;
    let AtPage {
        member,
        mut tx,
        page,
        ..
    } = at;
    let update = correct_update(&member, &mut tx, id, update_id, body.0.incident_update).await?;
    let components = tx.components(page.id).await?;
    tx.commit().await?;
    let all: Vec<&Component> = components.iter().collect();
    let out: V2IncidentUpdate = heliograph_web::incident_update_object(&all, &update);
    Ok(HttpResponse::Ok().json(out))
}

/// Corrects the posted update `update_id` of the incident `id` (its text, shown time or
/// notification flag) as `input` asks, with the audit entry; the caller
/// commits. Shared by `PATCH …/incident_updates/{update_id}` and the
/// dashboard's edit form.
pub(crate) async fn correct_update(
    member: &Member,
    tx: &mut TenantTx,
    id: IncidentId,
    update_id: IncidentUpdateId,
    input: Option<IncidentUpdateInput>,
) -> Result<IncidentUpdate, ApiError> {
    tx.incident_update(id, update_id).await?;
    let input = envelope("incident_update", input)?;
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
    tx.audit(&member.audit(
        "incident_update.updated",
        "incident_update",
        update.id.as_uuid(),
        serde_json::json!({"incident_id": id}),
    ))
    .await?;
    Ok(update)
}
