//! `/v1/pages/{page_id}/subscribers`.

use actix_web::{HttpResponse, web};
use heliograph_domain::{ComponentId, EmailAddress, FieldError, PageId, Role};
use heliograph_store::NewSubscriber;
use serde::Deserialize;
use serde_json::json;

use super::path_id;
use crate::auth::Member;
use crate::error::{ApiError, Fields, required};
use crate::startup::AppState;

/// `{"subscriber": {...}}`.
#[derive(Deserialize)]
pub struct SubscriberEnvelope {
    subscriber: Option<SubscriberInput>,
}

#[derive(Deserialize)]
struct SubscriberInput {
    email: Option<String>,
    phone_number: Option<String>,
    endpoint: Option<String>,
    components: Option<Vec<String>>,
    skip_confirmation_notification: Option<bool>,
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

/// `POST /v1/pages/{page_id}/subscribers` (editor): adds a confirmed email subscriber.
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
    let input = body
        .into_inner()
        .subscriber
        .ok_or_else(|| ApiError::field(FieldError::new("subscriber", "missing", "is required")))?;
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
    Ok(HttpResponse::Created().json(json!({
        "id": s.id,
        "mode": s.channel,
        "email": s.email,
        "components": s.component_ids,
        "skip_confirmation_notification": true,
        "confirmed_at": s.confirmed_at.map(heliograph_web::timestamp),
        "quarantined_at": null,
        "purge_at": null,
        "created_at": heliograph_web::timestamp(s.created_at),
        "updated_at": heliograph_web::timestamp(s.updated_at),
    })))
}
