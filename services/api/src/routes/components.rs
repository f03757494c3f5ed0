//! `/v1/pages/{page_id}/components`.

use actix_web::{HttpResponse, web};
use heliograph_domain::{ComponentStatus, FieldError, Name, PageId, Role, Visibility};
use heliograph_store::NewComponent;
use heliograph_web::V2Component;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::path_id;
use crate::auth::Member;
use crate::error::{ApiError, Fields, required};
use crate::startup::AppState;

/// `{"component": {...}}`.
#[derive(Deserialize)]
pub struct ComponentEnvelope {
    component: Option<ComponentInput>,
}

#[derive(Deserialize)]
struct ComponentInput {
    name: Option<String>,
    description: Option<String>,
    status: Option<String>,
    group_id: Option<String>,
    showcase: Option<bool>,
    only_show_if_degraded: Option<bool>,
    start_date: Option<String>,
    visibility: Option<String>,
}

/// A component in management responses: Statuspage's object plus its visibility.
#[derive(Serialize)]
pub struct ComponentResponse {
    #[serde(flatten)]
    component: V2Component,
    visibility: Visibility,
}

fn parse(input: ComponentInput) -> Result<NewComponent, ApiError> {
    let mut f = Fields::default();
    let name = f.check(required("name", input.name).and_then(|n| Name::parse("name", &n, 255)));
    let description = input.description.filter(|d| !d.trim().is_empty());
    if description
        .as_ref()
        .is_some_and(|d| d.chars().count() > 1000)
    {
        f.push(FieldError::new(
            "description",
            "too_long",
            "must be at most 1000 characters",
        ));
    }
    let status = f
        .check(
            input
                .status
                .as_deref()
                .map_or(Ok(ComponentStatus::Operational), str::parse)
                .map_err(|e| FieldError::new("status", "invalid", e.to_string())),
        )
        .unwrap_or(ComponentStatus::Operational);
    let visibility = f
        .check(
            input
                .visibility
                .as_deref()
                .map_or(Ok(Visibility::Public), str::parse)
                .map_err(|e| FieldError::new("visibility", "invalid", e.to_string())),
        )
        .unwrap_or(Visibility::Public);
    let group_id = input.group_id.and_then(|g| {
        f.check(
            g.parse::<Uuid>()
                .map_err(|_| FieldError::new("group_id", "invalid", "is not a component group id")),
        )
    });
    let start_date =
        input.start_date.and_then(|d| {
            let format = time::macros::format_description!("[year]-[month]-[day]");
            f.check(time::Date::parse(&d, format).map_err(|_| {
                FieldError::new("start_date", "invalid", "must be a date, YYYY-MM-DD")
            }))
        });
    let Some(name) = name else {
        return Err(f.into_error());
    };
    f.finish()?;
    Ok(NewComponent {
        name,
        description,
        status,
        group_id,
        showcase: input.showcase.unwrap_or(true),
        only_show_if_degraded: input.only_show_if_degraded.unwrap_or(false),
        start_date,
        visibility,
    })
}

/// `POST /v1/pages/{page_id}/components` (admin).
pub async fn create(
    member: Member,
    state: web::Data<AppState>,
    page_id: web::Path<String>,
    body: web::Json<ComponentEnvelope>,
) -> Result<HttpResponse, ApiError> {
    let page: PageId = path_id(&page_id)?;
    let mut tx = state.store.tenant_tx(member.tenant).await?;
    // Another tenant's page answers 404 before anything else is said about the request.
    tx.page(page).await?;
    member.require(Role::Admin)?;
    let input = body
        .into_inner()
        .component
        .ok_or_else(|| ApiError::field(FieldError::new("component", "missing", "is required")))?;
    let new = parse(input)?;
    let component = tx.create_component(page, &new).await?;
    tx.audit(&member.audit(
        "component.created",
        "component",
        component.id.as_uuid(),
        serde_json::json!({"name": component.name, "status": component.status, "visibility": component.visibility}),
    ))
    .await?;
    tx.commit().await?;
    Ok(HttpResponse::Created().json(ComponentResponse {
        visibility: component.visibility,
        component: heliograph_web::component_object(&component),
    }))
}
