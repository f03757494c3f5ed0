//! The public face of a page: the HTML page rendered from
//! `frontend-templates/public/`, and Statuspage's v2 JSON documents.
//!
//! Everything here is a pure function of a [`PublicPage`] (the page's data
//! plus its uptime, read once when the api builds the page's snapshot): what
//! visitors see is decided in one place, including what they must not see
//! (private components never leave this crate for an anonymous reader).

mod colours;
mod feeds;
mod html;
mod v2;
mod widgets;

use std::collections::HashMap;

use heliograph_domain::ComponentId;
use time::Date;

pub use feeds::{atom, rss};
pub use html::{render_history, render_incident, render_page};
pub use v2::{
    ComponentsDoc, IncidentList, IncidentsDoc, MaintenanceList, MaintenancesDoc, StatusDoc,
    Summary, V2_LIST_LIMIT, V2Component, V2Incident, V2IncidentUpdate, component_object,
    components_doc, incident_object, incident_update_object, incidents_doc, maintenances_doc,
    status_doc, summary,
};
pub use widgets::{badge, embed, embed_script};

use heliograph_domain::{ComponentStatus, Impact, PageStatus, Visibility};
use heliograph_store::{Component, ComponentGroup, Incident, IncidentUpdate, PageData};
use time::OffsetDateTime;

/// Who reads: anyone, or a signed-in member of the page's tenant, who also
/// sees private components (marked as such). Only the HTML pages have a
/// members' view; the JSON, feeds, badge and widget are always public.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Audience {
    /// An anonymous visitor.
    Public,
    /// A member of the tenant.
    Members,
}

impl Audience {
    /// Whether this reader may see `c`.
    #[must_use]
    pub fn sees(self, c: &Component) -> bool {
        self == Self::Members || c.visibility == Visibility::Public
    }
}

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

/// Components an anonymous visitor may see.
fn public_components(data: &PageData) -> impl Iterator<Item = &Component> {
    data.components
        .iter()
        .filter(|c| c.visibility == Visibility::Public)
}

/// An incident's impact as a reader who sees only `visible` components may
/// know it. The stored impact is derived from every component the incident
/// touched, private ones too; when it touched any the reader cannot see,
/// the impact is derived again from the visible ones its updates named, so
/// a private outage never shows through (an override is the team's own
/// public word, and stands).
#[must_use]
pub fn visible_impact(visible: &[&Component], i: &Incident, updates: &[IncidentUpdate]) -> Impact {
    let sees = |id: &uuid::Uuid| visible.iter().any(|c| c.id.as_uuid() == *id);
    if i.status.is_maintenance() || i.component_ids.iter().all(sees) {
        return i.impact;
    }
    if let Some(chosen) = i.impact_override.as_deref().and_then(|o| o.parse().ok()) {
        return chosen;
    }
    updates
        .iter()
        .flat_map(|u| u.affected_components.iter())
        .filter(|a| sees(&a.code))
        .map(|a| a.new_status.impact())
        .max_by_key(|impact| impact.rank())
        .unwrap_or(Impact::None)
}

/// The page's overall status as an anonymous visitor sees it: from public
/// components and from open incidents (their impact as the public may know
/// it) and maintenances under way.
#[must_use]
pub fn page_status(data: &PageData) -> PageStatus {
    let visible: Vec<&Component> = public_components(data).collect();
    let incidents = data.active_incidents.iter().filter_map(|(i, updates)| {
        if i.status.is_unresolved() {
            Some(visible_impact(&visible, i, updates))
        } else if matches!(
            i.status,
            heliograph_domain::IncidentStatus::InProgress
                | heliograph_domain::IncidentStatus::Verifying
        ) {
            Some(Impact::Maintenance)
        } else {
            None
        }
    });
    PageStatus::compute(visible.iter().map(|c| c.status), incidents)
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

/// ISO 8601 in UTC with milliseconds, as Statuspage writes timestamps.
#[must_use]
pub fn timestamp(t: OffsetDateTime) -> String {
    const FORMAT: &[time::format_description::BorrowedFormatItem<'_>] = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.to_offset(time::UtcOffset::UTC)
        .format(FORMAT)
        .unwrap_or_default()
}

#[cfg(test)]
mod html_tests;
#[cfg(test)]
mod tests;
