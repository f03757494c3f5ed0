//! `/v1/pages/{page_id}/subscribers`.

use actix_web::{HttpResponse, web};
use heliograph_domain::{Channel, ComponentId, EmailAddress, FieldError, PageId, Role};
use heliograph_store::NewSubscriber;
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use super::path_id;
use crate::auth::Member;
use crate::error::{ApiError, Fields, envelope, required};
use crate::openapi::{
    BadRequest, Conflict, Forbidden, NotFound, TooManyRequests, Unauthorized, ValidationFailed,
};
use crate::startup::AppState;

/// `{"subscriber": {...}}`.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct SubscriberEnvelope {
    subscriber: Option<SubscriberInput>,
}

/// A subscriber to add.
#[derive(Deserialize, utoipa::ToSchema)]
struct SubscriberInput {
    email: Option<String>,
    /// Not supported yet (SMS subscribers).
    phone_number: Option<String>,
    /// Not supported yet (webhook subscribers).
    endpoint: Option<String>,
    /// Component ids to follow; none means all.
    components: Option<Vec<String>>,
    /// Must be `true` for now: no confirmation email is sent.
    skip_confirmation_notification: Option<bool>,
}

/// A subscriber.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SubscriberResponse {
    id: Uuid,
    /// How they are reached.
    mode: Channel,
    email: Option<String>,
    /// Component ids followed; empty means all.
    components: Vec<Uuid>,
    skip_confirmation_notification: bool,
    confirmed_at: Option<String>,
    /// Always null for now.
    quarantined_at: Option<String>,
    /// Always null for now.
    purge_at: Option<String>,
    created_at: String,
    updated_at: String,
}

fn parse(input: SubscriberInput) -> Result<NewSubscriber, ApiError> {
    let mut f = Fields::default();
    // SMS and webhook subscribers arrive with the notification channels (issue 6).
    for (field, given) in [
        ("phone_number", input.phone_number.is_some()),
        ("endpoint", input.endpoint.is_some()),
    ] {
        if given {
            f.push(FieldError::new(
                field,
                "unsupported_channel",
                "only email subscribers are supported so far",
            ));
        }
    }
    // Double opt-in (confirmation emails) arrives with self-service subscription;
    // until then a team member vouches for the address explicitly.
    if input.skip_confirmation_notification != Some(true) {
        f.push(FieldError::new(
            "skip_confirmation_notification",
            "unsupported",
            "must be true: confirmation emails are not available yet",
        ));
    }
    let email =
        f.check(required("email", input.email).and_then(|e| EmailAddress::parse("email", &e)));
    let component_ids: Vec<ComponentId> = input
        .components
        .unwrap_or_default()
        .iter()
        .filter_map(|c| {
            f.check(c.parse().map_err(|_| {
                FieldError::new(
                    "components",
                    "invalid",
                    format!("`{c}` is not a component id"),
                )
            }))
        })
        .collect();
    let Some(email) = email else {
        return Err(f.into_error());
    };
    f.finish()?;
    Ok(NewSubscriber {
        email,
        component_ids,
        confirmed: true,
    })
}

/// Adds a confirmed email subscriber to a page (editor).
#[utoipa::path(
    post,
    path = "/v1/pages/{page_id}/subscribers",
    tag = "subscribers",
    operation_id = "create_subscriber",
    security(("bearer" = []), ("oauth" = []), ("cookie" = [])),
    params(("page_id" = Uuid, Path, description = "The page's id.")),
    request_body(content = SubscriberEnvelope, content_type = "application/json"),
    responses(
        (status = 201, description = "The subscriber.", body = SubscriberResponse),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, ValidationFailed, TooManyRequests,
    ),
)]
pub async fn create(
    member: Member,
    state: web::Data<AppState>,
    page_id: web::Path<String>,
    body: web::Json<SubscriberEnvelope>,
) -> Result<HttpResponse, ApiError> {
    let page: PageId = path_id(&page_id)?;
    let mut tx = state.store.tenant_tx(member.tenant).await?;
    tx.page(page).await?;
    member.require(Role::Editor)?;
    let input = envelope("subscriber", body.into_inner().subscriber)?;
    let new = parse(input)?;
    let s = tx.create_email_subscriber(page, &new).await?;
    // The address itself stays out of the log: it names a person.
    tx.audit(&member.audit(
        "subscriber.created",
        "subscriber",
        s.id.as_uuid(),
        json!({"mode": s.channel}),
    ))
    .await?;
    tx.commit().await?;
    Ok(HttpResponse::Created().json(SubscriberResponse {
        id: s.id.as_uuid(),
        mode: s.channel,
        email: s.email,
        components: s.component_ids,
        skip_confirmation_notification: true,
        confirmed_at: s.confirmed_at.map(heliograph_web::timestamp),
        quarantined_at: None,
        purge_at: None,
        created_at: heliograph_web::timestamp(s.created_at),
        updated_at: heliograph_web::timestamp(s.updated_at),
    }))
}
