//! `/v1/pages/{page_id}/incidents/{id}/postmortem`: an incident's
//! postmortem, drafted, published and removed by the domain's rules.

use actix_web::{HttpResponse, web};
use heliograph_domain::{FieldError, Incident, IncidentId};
use heliograph_store::TenantTx;
use serde::{Deserialize, Serialize};

use super::incident_at;
use crate::auth::Member;
use crate::error::{ApiError, envelope, required};
use crate::input::Input;
use crate::openapi::{
    BadRequest, Conflict, Forbidden, NotFound, TooManyRequests, Unauthorized, UnsupportedMediaType,
    ValidationFailed,
};
use crate::page_scope::{AtPage, Editor, Viewer};

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
    mut at: AtPage<Viewer>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let incident = incident_at(&mut at, &path.1).await?;
    let AtPage { tx, .. } = at;
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
    mut at: AtPage<Editor>,
    path: web::Path<(String, String)>,
    body: Input<PostmortemEnvelope>,
) -> Result<HttpResponse, ApiError> {
    let incident = incident_at(&mut at, &path.1).await?;
    let AtPage { member, mut tx, .. } = at;
    let input = envelope("postmortem", body.0.postmortem)?;
    let incident = save_postmortem(
        &member,
        &mut tx,
        incident.id,
        input.body_draft.or(input.body),
    )
    .await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(postmortem_response(&incident)?))
}

/// Writes the postmortem draft `text` of the incident `id` (of the page the
/// caller resolved), with its audit entry; the caller commits.
/// `PUT …/postmortem` and the dashboard's postmortem form both write
/// through it.
pub(crate) async fn save_postmortem(
    member: &Member,
    tx: &mut TenantTx,
    id: IncidentId,
    text: Option<String>,
) -> Result<Incident, ApiError> {
    let text = required("body_draft", text)
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
    Ok(incident)
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
    mut at: AtPage<Editor>,
    path: web::Path<(String, String)>,
    body: Input<PostmortemEnvelope>,
) -> Result<HttpResponse, ApiError> {
    let incident = incident_at(&mut at, &path.1).await?;
    let id = incident.id;
    let AtPage { member, mut tx, .. } = at;
    let notify = body
        .0
        .postmortem
        .and_then(|p| p.notify_subscribers)
        .unwrap_or(false);
    let incident = release_postmortem(&member, &mut tx, id, notify).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(postmortem_response(&incident)?))
}

/// Publishes the postmortem of the incident `id`, telling subscribers when
/// `notify`, with its audit entry; the caller commits.
pub(crate) async fn release_postmortem(
    member: &Member,
    tx: &mut TenantTx,
    id: IncidentId,
    notify: bool,
) -> Result<Incident, ApiError> {
    let (incident, _) = tx.publish_postmortem(id, notify).await?;
    tx.audit(&member.audit(
        "postmortem.published",
        "incident",
        id.as_uuid(),
        serde_json::json!({"notify_subscribers": notify}),
    ))
    .await?;
    Ok(incident)
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
    mut at: AtPage<Editor>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let incident = incident_at(&mut at, &path.1).await?;
    let id = incident.id;
    let AtPage { member, mut tx, .. } = at;
    remove_postmortem(&member, &mut tx, id).await?;
    tx.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Deletes the postmortem of the incident `id`, with its audit entry; the
/// caller commits.
pub(crate) async fn remove_postmortem(
    member: &Member,
    tx: &mut TenantTx,
    id: IncidentId,
) -> Result<(), ApiError> {
    tx.delete_postmortem(id).await?;
    tx.audit(&member.audit(
        "postmortem.deleted",
        "incident",
        id.as_uuid(),
        serde_json::json!({}),
    ))
    .await?;
    Ok(())
}
