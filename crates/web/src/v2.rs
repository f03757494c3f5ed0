//! Statuspage's public v2 JSON documents, filled from a page's data with the
//! domain's typed shapes (`heliograph_domain::statuspage`), as an anonymous
//! reader sees them.

use heliograph_domain::statuspage::{
    self, ComponentsDoc, IncidentsDoc, MaintenancesDoc, StatusDoc, Summary,
};
use heliograph_domain::{Audience, IncidentStatus, Sight};
use heliograph_domain::{Component, Incident, IncidentUpdate, PageData};

use crate::{PublicPage, group_status, layout, page_status, sight};

/// A component as Statuspage's APIs show it.
#[must_use]
pub fn component_object(c: &Component) -> statuspage::Component {
    statuspage::Component {
        id: c.id.as_uuid(),
        name: c.name.clone(),
        status: c.status,
        created_at: c.created_at,
        updated_at: c.updated_at,
        position: c.position,
        description: c.description.clone(),
        showcase: Some(c.showcase),
        start_date: Some(c.start_date),
        group_id: c.group_id.map(|g| g.as_uuid()),
        page_id: c.page_id.as_uuid(),
        group: false,
        only_show_if_degraded: Some(c.only_show_if_degraded),
        components: None,
    }
}

/// Components and group rows, in page order: each group followed by its members.
fn component_objects(data: &PageData, sight: &Sight) -> Vec<statuspage::Component> {
    let visible: Vec<&Component> = data
        .components
        .iter()
        .filter(|c| sight.sees(c.id.as_uuid()))
        .collect();
    let (ungrouped, groups) = layout(data, &visible);
    let mut out = Vec::with_capacity(visible.len() + groups.len());
    out.extend(ungrouped.into_iter().map(component_object));
    for (g, members) in groups {
        out.push(statuspage::Component {
            id: g.id.as_uuid(),
            name: g.name.clone(),
            status: group_status(members.iter().copied()),
            created_at: g.created_at,
            updated_at: g.updated_at,
            position: g.position,
            description: g.description.clone(),
            showcase: Some(false),
            start_date: Some(None),
            group_id: None,
            page_id: data.page.id.as_uuid(),
            group: true,
            only_show_if_degraded: Some(false),
            components: Some(members.iter().map(|c| c.id.as_uuid()).collect()),
        });
        out.extend(members.into_iter().map(component_object));
    }
    out
}

/// The sight of a reader who sees exactly the `visible` components (the
/// management API passes every component of the page).
fn sight_of(visible: &[&Component]) -> Sight {
    Sight::new(
        Audience::Members,
        visible.iter().map(|c| (c.id.as_uuid(), c.visibility)),
    )
}

/// An incident update as Statuspage's APIs show it, naming only the `visible` components.
#[must_use]
pub fn incident_update_object(
    visible: &[&Component],
    u: &IncidentUpdate,
) -> statuspage::IncidentUpdate {
    update_object(&sight_of(visible), u)
}

fn update_object(sight: &Sight, u: &IncidentUpdate) -> statuspage::IncidentUpdate {
    statuspage::IncidentUpdate {
        id: u.id.as_uuid(),
        incident_id: u.incident_id.as_uuid(),
        status: u.status,
        body: u.body.clone(),
        created_at: u.created_at,
        updated_at: u.updated_at,
        display_at: u.display_at,
        affected_components: u
            .affected_components
            .iter()
            .filter(|a| sight.sees(a.code))
            .map(|a| statuspage::AffectedComponent {
                code: a.code,
                name: a.name.clone(),
                old_status: Some(a.old_status),
                new_status: a.new_status,
            })
            .collect(),
        deliver_notifications: Some(u.deliver_notifications),
    }
}

/// An incident as Statuspage's APIs show it, naming only the `visible` components.
#[must_use]
pub fn incident_object(
    visible: &[&Component],
    page_url: &str,
    incident: &Incident,
    updates: &[IncidentUpdate],
) -> statuspage::Incident {
    object(&sight_of(visible), visible, page_url, incident, updates)
}

fn object(
    sight: &Sight,
    components: &[&Component],
    page_url: &str,
    incident: &Incident,
    updates: &[IncidentUpdate],
) -> statuspage::Incident {
    statuspage::Incident {
        id: incident.id.as_uuid(),
        name: incident.name.clone(),
        status: incident.status,
        impact: sight.impact(&incident.facts(updates)),
        created_at: incident.created_at,
        updated_at: incident.updated_at,
        started_at: incident.started_at,
        monitoring_at: incident.monitoring_at,
        resolved_at: incident.resolved_at,
        shortlink: format!("{page_url}/incidents/{}", incident.id),
        page_id: incident.page_id.as_uuid(),
        incident_updates: updates.iter().map(|u| update_object(sight, u)).collect(),
        components: components
            .iter()
            .filter(|c| sight.sees(c.id.as_uuid()))
            .filter(|c| incident.component_ids.contains(&c.id))
            .map(|c| component_object(c))
            .collect(),
        scheduled_for: incident.scheduled_for,
        scheduled_until: incident.scheduled_until,
    }
}

fn v2_page(page: &PublicPage, sight: &Sight) -> statuspage::Page {
    let data = &page.data;
    let updated_at = data
        .components
        .iter()
        .filter(|c| sight.sees(c.id.as_uuid()))
        .map(|c| c.updated_at)
        .chain(data.groups.iter().map(|g| g.updated_at))
        .chain(
            data.active_incidents
                .iter()
                .chain(&data.history)
                .map(|(i, _)| i.updated_at),
        )
        .fold(data.page.updated_at, std::cmp::max);
    statuspage::Page {
        id: data.page.id.as_uuid(),
        name: data.page.name.clone(),
        url: page.url.clone(),
        time_zone: data.page.time_zone.to_string(),
        updated_at,
    }
}

fn objects<'a>(
    page: &PublicPage,
    sight: &Sight,
    incidents: impl Iterator<Item = &'a (Incident, Vec<IncidentUpdate>)>,
) -> Vec<statuspage::Incident> {
    let components: Vec<&Component> = page.data.components.iter().collect();
    incidents
        .map(|(i, u)| object(sight, &components, &page.url, i, u))
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
    let sight = sight(&page.data, Audience::Public);
    let (maintenances, incidents): (Vec<_>, Vec<_>) = page
        .data
        .active_incidents
        .iter()
        .partition(|(i, _)| i.status.is_maintenance());
    Summary {
        page: v2_page(page, &sight),
        status: page_status(&page.data),
        components: component_objects(&page.data, &sight),
        incidents: objects(page, &sight, incidents.into_iter()),
        scheduled_maintenances: objects(page, &sight, maintenances.into_iter()),
    }
}

/// `GET /api/v2/status.json`.
#[must_use]
pub fn status_doc(page: &PublicPage) -> StatusDoc {
    let sight = sight(&page.data, Audience::Public);
    StatusDoc {
        page: v2_page(page, &sight),
        status: page_status(&page.data),
    }
}

/// `GET /api/v2/components.json`.
#[must_use]
pub fn components_doc(page: &PublicPage) -> ComponentsDoc {
    let sight = sight(&page.data, Audience::Public);
    ComponentsDoc {
        page: v2_page(page, &sight),
        components: component_objects(&page.data, &sight),
    }
}

/// `GET /api/v2/incidents.json` and `…/incidents/unresolved.json`.
#[must_use]
pub fn incidents_doc(page: &PublicPage, which: IncidentList) -> IncidentsDoc {
    let sight = sight(&page.data, Audience::Public);
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
        page: v2_page(page, &sight),
        incidents: objects(page, &sight, chosen),
    }
}

/// `GET /api/v2/scheduled-maintenances.json` and its `upcoming` and `active` lists.
#[must_use]
pub fn maintenances_doc(page: &PublicPage, which: MaintenanceList) -> MaintenancesDoc {
    let sight = sight(&page.data, Audience::Public);
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
        page: v2_page(page, &sight),
        scheduled_maintenances: objects(page, &sight, chosen),
    }
}
