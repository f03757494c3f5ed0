//! Statuspage's public v2 JSON (shared/reference/statuspage-api.md §1).

use heliograph_domain::{ComponentStatus, Impact, IncidentStatus, PageStatus};
use heliograph_store::{AffectedComponent, Component, Incident, IncidentUpdate, PageData};
use serde::Serialize;

use crate::{
    Audience, PublicPage, group_status, layout, page_status, public_components, timestamp,
};

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
        impact: crate::visible_impact(visible, incident, updates),
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

fn v2_page(page: &PublicPage) -> V2Page {
    let data = &page.data;
    let updated_at = data
        .components
        .iter()
        .filter(|c| Audience::Public.sees(c))
        .map(|c| c.updated_at)
        .chain(data.groups.iter().map(|g| g.updated_at))
        .chain(
            data.active_incidents
                .iter()
                .chain(&data.history)
                .map(|(i, _)| i.updated_at),
        )
        .fold(data.page.updated_at, std::cmp::max);
    V2Page {
        id: data.page.id.to_string(),
        name: data.page.name.clone(),
        url: page.url.clone(),
        time_zone: data.page.time_zone.to_string(),
        updated_at: timestamp(updated_at),
    }
}

fn objects<'a>(
    page: &PublicPage,
    incidents: impl Iterator<Item = &'a (Incident, Vec<IncidentUpdate>)>,
) -> Vec<V2Incident> {
    let visible: Vec<&Component> = public_components(&page.data).collect();
    incidents
        .map(|(i, u)| incident_object(&visible, &page.url, i, u))
        .collect()
}

/// How many incidents (or maintenances) the v2 lists hold, as on Statuspage.
pub const V2_LIST_LIMIT: usize = 50;

/// Which incidents `incidents.json` lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncidentList {
    /// The 50 most recent, any status.
    Recent,
    /// Investigating, identified or monitoring.
    Unresolved,
}

/// Which maintenances `scheduled-maintenances.json` lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaintenanceList {
    /// The 50 most recent, any status.
    Recent,
    /// Not begun.
    Upcoming,
    /// In progress or verifying.
    Active,
}

/// `GET /api/v2/summary.json`: unresolved incidents, and maintenances
/// upcoming or under way.
#[must_use]
pub fn summary(page: &PublicPage) -> Summary {
    let (maintenances, incidents): (Vec<_>, Vec<_>) = page
        .data
        .active_incidents
        .iter()
        .partition(|(i, _)| i.status.is_maintenance());
    Summary {
        page: v2_page(page),
        status: page_status(&page.data),
        components: component_objects(&page.data),
        incidents: objects(page, incidents.into_iter()),
        scheduled_maintenances: objects(page, maintenances.into_iter()),
    }
}

/// `GET /api/v2/status.json`.
#[derive(Debug, Serialize)]
pub struct StatusDoc {
    page: V2Page,
    status: PageStatus,
}

/// `GET /api/v2/status.json`.
#[must_use]
pub fn status_doc(page: &PublicPage) -> StatusDoc {
    StatusDoc {
        page: v2_page(page),
        status: page_status(&page.data),
    }
}

/// `GET /api/v2/components.json`.
#[derive(Debug, Serialize)]
pub struct ComponentsDoc {
    page: V2Page,
    components: Vec<V2Component>,
}

/// `GET /api/v2/components.json`.
#[must_use]
pub fn components_doc(page: &PublicPage) -> ComponentsDoc {
    ComponentsDoc {
        page: v2_page(page),
        components: component_objects(&page.data),
    }
}

/// `GET /api/v2/incidents.json` and `…/incidents/unresolved.json`.
#[derive(Debug, Serialize)]
pub struct IncidentsDoc {
    page: V2Page,
    incidents: Vec<V2Incident>,
}

/// `GET /api/v2/incidents.json` and `…/incidents/unresolved.json`.
#[must_use]
pub fn incidents_doc(page: &PublicPage, which: IncidentList) -> IncidentsDoc {
    let source = match which {
        IncidentList::Recent => &page.data.history,
        IncidentList::Unresolved => &page.data.active_incidents,
    };
    let chosen = source
        .iter()
        .filter(|(i, _)| !i.status.is_maintenance())
        .filter(|(i, _)| which == IncidentList::Recent || i.status.is_unresolved())
        .take(V2_LIST_LIMIT);
    IncidentsDoc {
        page: v2_page(page),
        incidents: objects(page, chosen),
    }
}

/// `GET /api/v2/scheduled-maintenances.json` and its `upcoming` and `active` lists.
#[derive(Debug, Serialize)]
pub struct MaintenancesDoc {
    page: V2Page,
    scheduled_maintenances: Vec<V2Incident>,
}

/// `GET /api/v2/scheduled-maintenances.json` and its `upcoming` and `active` lists.
#[must_use]
pub fn maintenances_doc(page: &PublicPage, which: MaintenanceList) -> MaintenancesDoc {
    let source = match which {
        MaintenanceList::Recent => &page.data.history,
        MaintenanceList::Upcoming | MaintenanceList::Active => &page.data.active_incidents,
    };
    let chosen = source
        .iter()
        .filter(|(i, _)| i.status.is_maintenance())
        .filter(|(i, _)| match which {
            MaintenanceList::Recent => true,
            MaintenanceList::Upcoming => i.status == IncidentStatus::Scheduled,
            MaintenanceList::Active => matches!(
                i.status,
                IncidentStatus::InProgress | IncidentStatus::Verifying
            ),
        })
        .take(V2_LIST_LIMIT);
    MaintenancesDoc {
        page: v2_page(page),
        scheduled_maintenances: objects(page, chosen),
    }
}
