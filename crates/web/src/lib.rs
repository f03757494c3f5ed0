//! The public face of a page: the HTML page rendered from
//! `frontend-templates/public/`, and Statuspage's v2 JSON documents.
//!
//! Everything here is a pure function of a [`PublicPage`] (the page's data
//! plus its uptime, read once when the api builds the page's snapshot). This
//! crate renders; it decides no rule. What a reader may see, the impact they
//! may know and the page's indicator are the domain's visibility rules
//! (`heliograph_domain::visibility`), and the JSON documents are the domain's
//! Statuspage shapes (`heliograph_domain::statuspage`), filled here.

mod colours;
mod feeds;
mod html;
mod v2;
mod widgets;

use std::collections::HashMap;

use heliograph_domain::ComponentId;
use time::Date;

pub use colours::contrast_warnings;
pub use feeds::{atom, rss};
pub use html::notice::render_notice;
pub use html::{impact_tone, render_history, render_incident, render_page};
pub use v2::{
    IncidentList, MaintenanceList, V2_LIST_LIMIT, component_object, components_doc,
    incident_object, incident_update_object, incidents_doc, maintenances_doc, status_doc, summary,
};
pub use widgets::{badge, embed, embed_script};

/// Who reads: anyone, or a signed-in member of the page's tenant, who also
/// sees private components (marked as such). Only the HTML pages have a
/// members' view; the JSON, feeds, badge and widget are always public.
pub use heliograph_domain::Audience;
/// The v2 documents and objects, under the names the API's schemas give them.
pub use heliograph_domain::statuspage::{
    Component as V2Component, ComponentsDoc, Incident as V2Incident,
    IncidentUpdate as V2IncidentUpdate, IncidentsDoc, MaintenancesDoc, StatusDoc, Summary,
    timestamp,
};

use heliograph_domain::{Component, ComponentGroup, PageData};
use heliograph_domain::{ComponentStatus, PageStatus, Sight};
use time::OffsetDateTime;

/// One day of a component's uptime bar.
#[derive(Debug, Clone, PartialEq)]
pub struct UptimeDay {
    /// The day, in the page's time zone.
    pub date: Date,
    /// Percent up, or `None` before the component existed.
    pub percentage: Option<f64>,
    /// Seconds of major outage that day.
    pub major_outage_s: i64,
    /// Seconds of partial outage that day.
    pub partial_outage_s: i64,
}

/// Everything the public face of a page is rendered from.
#[derive(Debug, Clone)]
pub struct PublicPage {
    /// The page, its components and incidents.
    pub data: PageData,
    /// The page's canonical address (its custom domain, sub-domain or
    /// `/status/<slug>` URL), without a trailing slash.
    pub url: String,
    /// The last [`UPTIME_DAYS`] days of each component, oldest first.
    pub uptime: HashMap<ComponentId, Vec<UptimeDay>>,
    /// When the data was read.
    pub as_of: OffsetDateTime,
}

/// How many days the uptime bars show.
pub const UPTIME_DAYS: u16 = 90;

/// The sight of `audience` on the page.
fn sight(data: &PageData, audience: Audience) -> Sight {
    Sight::new(
        audience,
        data.components
            .iter()
            .map(|c| (c.id.as_uuid(), c.visibility)),
    )
}

/// The page's overall status as an anonymous visitor sees it (the domain's
/// [`Sight::page_status`]).
#[must_use]
pub fn page_status(data: &PageData) -> PageStatus {
    sight(data, Audience::Public).page_status(
        data.components.iter().map(|c| (c.id.as_uuid(), c.status)),
        data.active_incidents.iter().map(|(i, u)| i.facts(u)),
    )
}

/// Visible components as the page lays them out: those in no group, then
/// each group that has visible members, with its members.
fn layout<'a>(
    data: &'a PageData,
    visible: &[&'a Component],
) -> (
    Vec<&'a Component>,
    Vec<(&'a ComponentGroup, Vec<&'a Component>)>,
) {
    let ungrouped = visible
        .iter()
        .copied()
        .filter(|c| c.group_id.is_none())
        .collect();
    let groups = data
        .groups
        .iter()
        .map(|g| {
            let members: Vec<&Component> = visible
                .iter()
                .copied()
                .filter(|c| c.group_id == Some(g.id))
                .collect();
            (g, members)
        })
        .filter(|(_, members)| !members.is_empty())
        .collect();
    (ungrouped, groups)
}

/// The worst status among a group's components.
fn group_status<'a>(members: impl Iterator<Item = &'a Component>) -> ComponentStatus {
    heliograph_domain::component::group_status(members.map(|c| c.status))
}

#[cfg(test)]
mod html_tests;
#[cfg(test)]
mod tests;
