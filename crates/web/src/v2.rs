//! Statuspage's public v2 JSON (shared/reference/statuspage-api.md §1).

use heliograph_domain::{ComponentStatus, Impact, IncidentStatus, PageStatus};
use heliograph_store::{AffectedComponent, Component, Incident, IncidentUpdate, PageData};
use serde::Serialize;

use crate::{group_status, layout, page_status, public_components, timestamp};

/// `page` of every v2 document.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct V2Page {
    id: String,
    name: String,
    url: String,
    time_zone: String,
    updated_at: String,
}

/// A component or a group row.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct V2Component {
    id: String,
    name: String,
    status: ComponentStatus,
    created_at: String,
    updated_at: String,
    position: i32,
    description: Option<String>,
    showcase: bool,
    start_date: Option<String>,
    group_id: Option<String>,
    page_id: String,
    group: bool,
    only_show_if_degraded: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    components: Option<Vec<String>>,
}

/// An incident update.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct V2IncidentUpdate {
    id: String,
    incident_id: String,
    status: IncidentStatus,
    body: String,
    created_at: String,
    updated_at: String,
    display_at: String,
    affected_components: Vec<AffectedComponent>,
    deliver_notifications: bool,
}

/// An incident or a scheduled maintenance.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct V2Incident {
    id: String,
    name: String,
    status: IncidentStatus,
    impact: Impact,
    created_at: String,
    updated_at: String,
    started_at: String,
    monitoring_at: Option<String>,
    resolved_at: Option<String>,
    shortlink: String,
    page_id: String,
    incident_updates: Vec<V2IncidentUpdate>,
    components: Vec<V2Component>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scheduled_for: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scheduled_until: Option<String>,
}

/// `GET /api/v2/summary.json`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Summary {
    page: V2Page,
    status: PageStatus,
    components: Vec<V2Component>,
    incidents: Vec<V2Incident>,
    scheduled_maintenances: Vec<V2Incident>,
}

/// A component as Statuspage's APIs show it.
#[must_use]
pub fn component_object(c: &Component) -> V2Component {
    V2Component {
        id: c.id.to_string(),
        name: c.name.clone(),
        status: c.status,
        created_at: timestamp(c.created_at),
        updated_at: timestamp(c.updated_at),
        position: c.position,
        description: c.description.clone(),
        showcase: c.showcase,
        start_date: c.start_date.map(|d| d.to_string()),
        group_id: c.group_id.map(|g| g.to_string()),
        page_id: c.page_id.to_string(),
        group: false,
        only_show_if_degraded: c.only_show_if_degraded,
        components: None,
    }
}

/// Components and group rows, in page order: each group followed by its members.
fn component_objects(data: &PageData) -> Vec<V2Component> {
    let visible: Vec<&Component> = public_components(data).collect();
    let (ungrouped, groups) = layout(data, &visible);
    let mut out = Vec::with_capacity(visible.len() + groups.len());
    let page_id = data.page.id.to_string();
    out.extend(ungrouped.into_iter().map(component_object));
    for (g, members) in groups {
        out.push(V2Component {
            id: g.id.to_string(),
            name: g.name.clone(),
            status: group_status(members.iter().copied()),
            created_at: timestamp(g.created_at),
            updated_at: timestamp(g.updated_at),
            position: g.position,
            description: g.description.clone(),
            showcase: false,
            start_date: None,
            group_id: None,
            page_id: page_id.clone(),
            group: true,
            only_show_if_degraded: false,
            components: Some(members.iter().map(|c| c.id.to_string()).collect()),
        });
        out.extend(members.into_iter().map(component_object));
    }
    out
}

/// An incident update as Statuspage's APIs show it, naming only the `visible` components.
#[must_use]
pub fn incident_update_object(visible: &[&Component], u: &IncidentUpdate) -> V2IncidentUpdate {
    V2IncidentUpdate {
        id: u.id.to_string(),
        incident_id: u.incident_id.to_string(),
        status: u.status,
        body: u.body.clone(),
        created_at: timestamp(u.created_at),
        updated_at: timestamp(u.updated_at),
        display_at: timestamp(u.display_at),
        affected_components: u
            .affected_components
            .iter()
            .filter(|a| visible.iter().any(|c| c.id.as_uuid() == a.code))
            .cloned()
            .collect(),
        deliver_notifications: u.deliver_notifications,
    }
}

/// An incident as Statuspage's APIs show it, naming only the `visible` components.
#[must_use]
pub fn incident_object(
    visible: &[&Component],
    page_url: &str,
    incident: &Incident,
    updates: &[IncidentUpdate],
) -> V2Incident {
    V2Incident {
        id: incident.id.to_string(),
        name: incident.name.clone(),
        status: incident.status,
        impact: incident.impact,
        created_at: timestamp(incident.created_at),
        updated_at: timestamp(incident.updated_at),
        started_at: timestamp(incident.started_at),
        monitoring_at: incident.monitoring_at.map(timestamp),
        resolved_at: incident.resolved_at.map(timestamp),
        shortlink: format!("{page_url}/incidents/{}", incident.id),
        page_id: incident.page_id.to_string(),
        incident_updates: updates
            .iter()
            .map(|u| incident_update_object(visible, u))
            .collect(),
        components: visible
            .iter()
            .filter(|c| incident.component_ids.contains(&c.id.as_uuid()))
            .map(|c| component_object(c))
            .collect(),
        scheduled_for: incident.scheduled_for.map(timestamp),
        scheduled_until: incident.scheduled_until.map(timestamp),
    }
}

/// The summary document of a page, as an anonymous visitor may see it.
#[must_use]
pub fn summary(data: &PageData, page_url: &str) -> Summary {
    let (maintenances, incidents): (Vec<_>, Vec<_>) = data
        .active_incidents
        .iter()
        .partition(|(i, _)| i.status.is_maintenance());
    let updated_at = data
        .components
        .iter()
        .map(|c| c.updated_at)
        .chain(data.active_incidents.iter().map(|(i, _)| i.updated_at))
        .fold(data.page.updated_at, std::cmp::max);
    let visible: Vec<&Component> = public_components(data).collect();
    Summary {
        page: V2Page {
            id: data.page.id.to_string(),
            name: data.page.name.clone(),
            url: page_url.to_owned(),
            time_zone: data.page.time_zone.clone(),
            updated_at: timestamp(updated_at),
        },
        status: page_status(data),
        components: component_objects(data),
        incidents: incidents
            .into_iter()
            .map(|(i, u)| incident_object(&visible, page_url, i, u))
            .collect(),
        scheduled_maintenances: maintenances
            .into_iter()
            .map(|(i, u)| incident_object(&visible, page_url, i, u))
            .collect(),
    }
}
