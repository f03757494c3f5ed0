//! `/v1/pages/{page_id}/incident_templates`.

use actix_web::{HttpRequest, HttpResponse, web};
use heliograph_domain::{ComponentId, FieldError, IncidentStatus, Name, PageId};
use heliograph_domain::{IncidentTemplate, TemplateId};
use heliograph_store::{NewTemplate, TenantTx};
use serde::{Deserialize, Serialize};

use super::path_id;
use crate::auth::Member;
use crate::error::{ApiError, Fields, envelope, required};
use crate::input::{Input, ListParams, paginated};
use crate::openapi::{
    BadRequest, Conflict, Forbidden, NotFound, TooManyRequests, Unauthorized, UnsupportedMediaType,
    ValidationFailed,
};
use crate::page_scope::{AtPage, Editor, Viewer};
use crate::startup::AppState;

/// An incident template, as Statuspage shows it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TemplateResponse {
    id: String,
    page_id: String,
    name: String,
    title: String,
    body: String,
    update_status: IncidentStatus,
    should_send_notifications: bool,
    /// Affected component ids.
    components: Vec<String>,
    created_at: String,
    updated_at: String,
}

fn template_response(t: &IncidentTemplate) -> TemplateResponse {
    TemplateResponse {
        id: t.id.to_string(),
        page_id: t.page_id.to_string(),
        name: t.name.clone(),
        title: t.title.clone(),
        body: t.body.clone(),
        update_status: t.update_status,
        should_send_notifications: t.should_send_notifications,
        components: t.component_ids.iter().map(ToString::to_string).collect(),
        created_at: heliograph_web::timestamp(t.created_at),
        updated_at: heliograph_web::timestamp(t.updated_at),
    }
}

/// `{"template": {...}}`.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct TemplateEnvelope {
    // Required: a body without it is 422 on the envelope.
    #[schema(required = true, value_type = TemplateInput)]
    template: Option<TemplateInput>,
}

/// A template's fields.
#[derive(Deserialize, Default, Clone, utoipa::ToSchema)]
pub(crate) struct TemplateInput {
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub(crate) name: Option<String>,
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub(crate) title: Option<String>,
    /// At most 25,000 characters.
    #[schema(max_length = 25000)]
    pub(crate) body: Option<String>,
    /// The status the incident opens in (default `investigating`).
    #[schema(value_type = Option<crate::openapi::TemplateStatus>)]
    pub(crate) update_status: Option<String>,
    pub(crate) should_send_notifications: Option<bool>,
    #[schema(value_type = Option<Vec<Uuid>>)]
    pub(crate) component_ids: Option<Vec<String>>,
}

fn parse(input: TemplateInput) -> Result<NewTemplate, ApiError> {
    let mut f = Fields::default();
    let name = f.check(required("name", input.name).and_then(|n| Name::parse("name", &n, 255)));
    let title = f.check(required("title", input.title).and_then(|n| Name::parse("title", &n, 255)));
    let body = input.body.unwrap_or_default();
    if body.chars().count() > 25_000 {
        f.push(FieldError::new(
            "body",
            "too_long",
            "must be at most 25000 characters",
        ));
    }
    let update_status = f
        .check(
            input
                .update_status
                .as_deref()
                .map_or(Ok(IncidentStatus::Investigating), str::parse)
                .map_err(|e| FieldError::new("update_status", "invalid", e.to_string()))
                .and_then(|s: IncidentStatus| {
                    if s.is_unresolved() || s == IncidentStatus::Resolved {
                        Ok(s)
                    } else {
                        Err(FieldError::new(
                            "update_status",
                            "invalid",
                            "is investigating, identified, monitoring or resolved",
                        ))
                    }
                }),
        )
        .unwrap_or(IncidentStatus::Investigating);
    let component_ids = input
        .component_ids
        .unwrap_or_default()
        .iter()
        .filter_map(|id| {
            f.check(id.parse::<ComponentId>().map_err(|_| {
                FieldError::new(
                    "component_ids",
                    "invalid",
                    format!("`{id}` is not a component id"),
                )
            }))
        })
        .collect();
    let (Some(name), Some(title)) = (name, title) else {
        return Err(f.into_error());
    };
    f.finish()?;
    Ok(NewTemplate {
        name,
        title,
        body,
        update_status,
        should_send_notifications: input.should_send_notifications.unwrap_or(true),
        component_ids,
    })
}

/// Lists a page's incident templates (viewer).
#[utoipa::path(
    get,
    path = "/v1/pages/{page_id}/incident_templates",
    tag = "incident templates",
    operation_id = "list_incident_templates",
    security(("bearer" = []), ("oauth" = []), ("cookie" = [])),
    params(("page_id" = Uuid, Path, description = "The page's id."), ListParams),
    responses(
        crate::openapi::TemplateList,
        Unauthorized, NotFound, ValidationFailed, TooManyRequests,
    ),
)]
pub async fn list(
    at: AtPage<Viewer>,
    state: web::Data<AppState>,
    req: HttpRequest,
    params: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    let page = at.id();
    let AtPage { mut tx, .. } = at;
    let query = params.plain_query()?;
    let listed = tx.list_templates(page, &query).await?;
    tx.commit().await?;
    Ok(paginated(
        &req,
        state.urls.origin(),
        &query,
        listed,
        template_response,
    ))
}

/// Adds an incident template to a page (editor).
#[utoipa::path(
    post,
    path = "/v1/pages/{page_id}/incident_templates",
    tag = "incident templates",
    operation_id = "create_incident_template",
    security(("bearer" = []), ("oauth" = []), ("cookie" = [])),
    params(("page_id" = Uuid, Path, description = "The page's id.")),
    request_body(content(
        (TemplateEnvelope = "application/json", example = json!({"template": {"name": "API down", "title": "The API is down", "body": "We are on it."}})),
        (TemplateEnvelope = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 201, description = "The new template.", body = TemplateResponse),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, UnsupportedMediaType,
        ValidationFailed, TooManyRequests,
    ),
)]
pub async fn create(
    at: AtPage<Editor>,
    body: Input<TemplateEnvelope>,
) -> Result<HttpResponse, ApiError> {
    let AtPage {
        member,
        mut tx,
        page,
        ..
    } = at;
    let input = envelope("template", body.0.template)?;
    let t = create_template(&mut tx, &member, page.id, input).await?;
    tx.commit().await?;
    Ok(HttpResponse::Created().json(template_response(&t)))
}

/// Deletes an incident template (editor).
#[utoipa::path(
    delete,
    path = "/v1/pages/{page_id}/incident_templates/{id}",
    tag = "incident templates",
    operation_id = "delete_incident_template",
    security(("bearer" = []), ("oauth" = []), ("cookie" = [])),
    params(
        ("page_id" = Uuid, Path, description = "The page's id."),
        ("id" = Uuid, Path, description = "The template's id."),
    ),
    responses(
        (status = 204, description = "Deleted."),
        Unauthorized, Forbidden, NotFound, TooManyRequests,
    ),
)]
pub async fn delete(
    at: AtPage<Editor>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let AtPage {
        member,
        mut tx,
        page,
        ..
    } = at;
    let id: TemplateId = path_id(&path.1)?;
    delete_template(&mut tx, &member, page.id, id).await?;
    tx.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Adds a template to `page`, with its audit entry (the caller checked the
/// editor role): what `POST /v1/pages/{page_id}/incident_templates` and the
/// dashboard do.
pub(crate) async fn create_template(
    tx: &mut TenantTx,
    member: &Member,
    page: PageId,
    input: TemplateInput,
) -> Result<IncidentTemplate, ApiError> {
    let new = parse(input)?;
    let t = tx.create_template(page, &new).await?;
    tx.audit(&member.audit(
        "incident_template.created",
        "incident_template",
        t.id.as_uuid(),
        serde_json::json!({"name": t.name}),
    ))
    .await?;
    Ok(t)
}

/// Deletes `page`'s template `id` (another page's is a 404), with its
/// audit entry: what `DELETE /v1/pages/{page_id}/incident_templates/{id}`
/// and the dashboard do.
pub(crate) async fn delete_template(
    tx: &mut TenantTx,
    member: &Member,
    page: PageId,
    id: TemplateId,
) -> Result<IncidentTemplate, ApiError> {
    tx.template(page, id).await?;
    let t = tx.delete_template(page, id).await?;
    tx.audit(&member.audit(
        "incident_template.deleted",
        "incident_template",
        t.id.as_uuid(),
        serde_json::json!({"name": t.name}),
    ))
    .await?;
    Ok(t)
}

/// Replaces `page`'s template `id` with `input`, in the caller's
/// transaction: the API has no update, so a change is the delete and the
/// create it would take through `/v1` (same rules, same audit entries),
/// done at once. Bad input changes nothing; the new template has a new id.
pub(crate) async fn replace_template(
    tx: &mut TenantTx,
    member: &Member,
    page: PageId,
    id: TemplateId,
    input: TemplateInput,
) -> Result<IncidentTemplate, ApiError> {
    tx.template(page, id).await?;
    // Checked before anything is deleted, so a refusal leaves it as it was.
    parse(input.clone())?;
    delete_template(tx, member, page, id).await?;
    create_template(tx, member, page, input).await
}
