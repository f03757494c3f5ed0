//! The public HTML page.

use askama::Template;
use heliograph_store::{Component, Incident, IncidentUpdate};

use crate::{Audience, PublicPage, group_status, layout, page_status, timestamp};

struct ComponentView<'a> {
    name: &'a str,
    description: Option<&'a str>,
    status: &'static str,
    status_label: &'static str,
}

struct GroupView<'a> {
    name: &'a str,
    status: &'static str,
    status_label: &'static str,
    components: Vec<ComponentView<'a>>,
}

struct UpdateView<'a> {
    status_label: &'static str,
    body: &'a str,
    /// Machine-readable, for `<time datetime>`.
    at: String,
    /// For people.
    at_label: String,
}

/// "Nov 20, 12:00 UTC".
pub(crate) fn time_label(t: time::OffsetDateTime) -> String {
    const FORMAT: &[time::format_description::BorrowedFormatItem<'_>] = time::macros::format_description!(
        "[month repr:short] [day padding:none], [hour]:[minute] UTC"
    );
    t.to_offset(time::UtcOffset::UTC)
        .format(FORMAT)
        .unwrap_or_default()
}

struct IncidentView<'a> {
    name: &'a str,
    impact: &'static str,
    status_label: &'static str,
    updates: Vec<UpdateView<'a>>,
}

#[derive(Template)]
#[template(path = "public/page.html")]
struct PageTemplate<'a> {
    name: &'a str,
    indicator: &'static str,
    description: &'static str,
    ungrouped: Vec<ComponentView<'a>>,
    groups: Vec<GroupView<'a>>,
    incidents: Vec<IncidentView<'a>>,
    maintenances: Vec<IncidentView<'a>>,
    base_path: &'a str,
}

fn shown(c: &Component) -> bool {
    c.showcase
        && (!c.only_show_if_degraded || c.status != heliograph_domain::ComponentStatus::Operational)
}

fn component_view(c: &Component) -> ComponentView<'_> {
    ComponentView {
        name: &c.name,
        description: c.description.as_deref(),
        status: c.status.as_str(),
        status_label: c.status.label(),
    }
}

fn incident_view((i, updates): &(Incident, Vec<IncidentUpdate>)) -> IncidentView<'_> {
    IncidentView {
        name: &i.name,
        impact: i.impact.as_str(),
        status_label: i.status.label(),
        updates: updates
            .iter()
            .map(|u| UpdateView {
                status_label: u.status.label(),
                body: &u.body,
                at: timestamp(u.display_at),
                at_label: time_label(u.display_at),
            })
            .collect(),
    }
}

/// Renders the page for `audience`. `base_path` is the prefix of the page's
/// own links (`""` on its host, `/status/<slug>` on the platform host).
pub fn render_page(
    page: &PublicPage,
    audience: Audience,
    base_path: &str,
) -> Result<String, askama::Error> {
    let data = &page.data;
    let status = page_status(data);
    let visible: Vec<&Component> = data
        .components
        .iter()
        .filter(|c| audience.sees(c) && shown(c))
        .collect();
    let (ungrouped, groups) = layout(data, &visible);
    let groups = groups
        .into_iter()
        .map(|(g, members)| {
            let worst = group_status(members.iter().copied());
            GroupView {
                name: &g.name,
                status: worst.as_str(),
                status_label: worst.label(),
                components: members.into_iter().map(component_view).collect(),
            }
        })
        .collect();
    PageTemplate {
        name: &data.page.name,
        indicator: status.indicator.as_str(),
        description: status.description,
        ungrouped: ungrouped.into_iter().map(component_view).collect(),
        groups,
        incidents: data
            .active_incidents
            .iter()
            .filter(|(i, _)| !i.status.is_maintenance())
            .map(incident_view)
            .collect(),
        maintenances: data
            .active_incidents
            .iter()
            .filter(|(i, _)| i.status.is_maintenance())
            .map(incident_view)
            .collect(),
        base_path,
    }
    .render()
}

#[derive(Template)]
#[template(path = "public/history.html")]
struct HistoryTemplate<'a> {
    name: &'a str,
    incidents: Vec<(String, IncidentView<'a>)>,
    base_path: &'a str,
}

/// The page's incident history, newest first.
pub fn render_history(
    page: &PublicPage,
    _audience: Audience,
    base_path: &str,
) -> Result<String, askama::Error> {
    HistoryTemplate {
        name: &page.data.page.name,
        incidents: page
            .data
            .history
            .iter()
            .map(|pair| (pair.0.id.to_string(), incident_view(pair)))
            .collect(),
        base_path,
    }
    .render()
}

#[derive(Template)]
#[template(path = "public/incident.html")]
struct IncidentTemplate<'a> {
    name: &'a str,
    incident: IncidentView<'a>,
    base_path: &'a str,
}

/// One incident's page; `None` when the page's history does not hold it.
pub fn render_incident(
    page: &PublicPage,
    _audience: Audience,
    base_path: &str,
    id: uuid::Uuid,
) -> Result<Option<String>, askama::Error> {
    let Some(pair) = page
        .data
        .history
        .iter()
        .chain(&page.data.active_incidents)
        .find(|(i, _)| i.id.as_uuid() == id)
    else {
        return Ok(None);
    };
    IncidentTemplate {
        name: &page.data.page.name,
        incident: incident_view(pair),
        base_path,
    }
    .render()
    .map(Some)
}
