//! `/v1/pages/{page_id}/incidents`.

use std::collections::{BTreeMap, HashMap};

use actix_web::{HttpResponse, web};
use heliograph_domain::{
    ComponentId, ComponentStatus, FieldError, Impact, IncidentStatus, Name, PageId, Role,
};
use heliograph_store::{Component, NewIncident};
use serde::Deserialize;

use super::path_id;
use crate::auth::Member;
use crate::error::{ApiError, Fields, required};
use crate::startup::AppState;

/// `{"incident": {...}}`.
#[derive(Deserialize)]
pub struct IncidentEnvelope {
    incident: Option<IncidentInput>,
}

#[derive(Deserialize)]
struct IncidentInput {
    name: Option<String>,
    status: Option<String>,
    body: Option<String>,
    impact_override: Option<String>,
    components: Option<HashMap<String, String>>,
    component_ids: Option<Vec<String>>,
    deliver_notifications: Option<bool>,
}

const MAX_BODY_CHARS: usize = 25_000;

fn component_id(f: &mut Fields, field: &'static str, raw: &str) -> Option<ComponentId> {
    f.check(
        raw.parse().map_err(|_| {
            FieldError::new(field, "invalid", format!("`{raw}` is not a component id"))
        }),
    )
}

fn parse(input: IncidentInput) -> Result<NewIncident, ApiError> {
    let mut f = Fields::default();
    let name = f.check(required("name", input.name).and_then(|n| Name::parse("name", &n, 255)));
    let status = f
        .check(
            input
                .status
                .as_deref()
                .map_or(Ok(IncidentStatus::Investigating), str::parse)
                .map_err(|e| FieldError::new("status", "invalid", e.to_string()))
                .and_then(|s: IncidentStatus| {
                    if s.is_maintenance() || s == IncidentStatus::Postmortem {
                        Err(FieldError::new(
                            "status",
                            "invalid",
                            "a new incident is investigating, identified, monitoring or resolved",
                        ))
                    } else {
                        Ok(s)
                    }
                }),
        )
        .unwrap_or(IncidentStatus::Investigating);
    let body = input.body.unwrap_or_default();
    if body.chars().count() > MAX_BODY_CHARS {
        f.push(FieldError::new(
            "body",
            "too_long",
            format!("must be at most {MAX_BODY_CHARS} characters"),
        ));
    }
    let impact_override = input.impact_override.and_then(|i| {
        f.check(
            i.parse::<Impact>()
                .map_err(|e| FieldError::new("impact_override", "invalid", e.to_string())),
        )
    });
    let mut components = BTreeMap::new();
    for (id, status) in input.components.unwrap_or_default() {
        let id = component_id(&mut f, "components", &id);
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
        .unwrap_or_default()
        .iter()
        .filter_map(|id| component_id(&mut f, "component_ids", id))
        .collect();
    let Some(name) = name else {
        return Err(f.into_error());
    };
    f.finish()?;
    Ok(NewIncident {
        name,
        status,
        body,
        impact_override,
        components,
        component_ids,
        deliver_notifications: input.deliver_notifications.unwrap_or(true),
        at: None,
    })
}

/// `POST /v1/pages/{page_id}/incidents` (editor): opens an incident. The
/// incident, its first update, the component changes and the notification
/// event are written in one transaction.
pub async fn create(
    member: Member,
    state: web::Data<AppState>,
    page_id: web::Path<String>,
    body: web::Json<IncidentEnvelope>,
) -> Result<HttpResponse, ApiError> {
    let page_id: PageId = path_id(&page_id)?;
    let mut tx = state.store.tenant_tx(member.tenant).await?;
    let page = tx.page(page_id).await?;
    member.require(Role::Editor)?;
    let input = body
        .into_inner()
        .incident
        .ok_or_else(|| ApiError::field(FieldError::new("incident", "missing", "is required")))?;
    let new = parse(input)?;
    let (incident, update) = tx.create_incident(page_id, &new).await?;
    let components = tx.components(page_id).await?;
    tx.audit(&member.audit(
        "incident.created",
        "incident",
        incident.id.as_uuid(),
        serde_json::json!({"name": incident.name, "status": incident.status, "impact": incident.impact}),
    ))
    .await?;
    tx.commit().await?;
    tracing::info!(tenant.id = %member.tenant, actor = %member.actor, incident.id = %incident.id, "incident opened");
    let all: Vec<&Component> = components.iter().collect();
    Ok(
        HttpResponse::Created().json(heliograph_web::incident_object(
            &all,
            &state.urls.page_url(&page.slug),
            &incident,
            &[update],
        )),
    )
}
