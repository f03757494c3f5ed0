//! The public face of a page: the HTML page rendered from
//! `frontend-templates/public/`, and Statuspage's v2 JSON documents.
//!
//! Everything here is a pure function of [`heliograph_store::PageData`]:
//! what visitors see is decided in one place, including what they must not
//! see (private components never leave this crate for an anonymous reader).

mod html;
mod v2;

pub use html::render_page;
pub use v2::{
    Summary, V2Component, V2Incident, V2IncidentUpdate, component_object, incident_object,
    incident_update_object, summary,
};

use heliograph_domain::{ComponentStatus, Impact, PageStatus, Visibility};
use heliograph_store::{Component, ComponentGroup, PageData};
use time::OffsetDateTime;

/// Components an anonymous visitor may see.
fn public_components(data: &PageData) -> impl Iterator<Item = &Component> {
    data.components
        .iter()
        .filter(|c| c.visibility == Visibility::Public)
}

/// The page's overall status as an anonymous visitor sees it: from public
/// components and from open incidents and maintenances under way.
#[must_use]
pub fn page_status(data: &PageData) -> PageStatus {
    let incidents = data.active_incidents.iter().filter_map(|(i, _)| {
        if i.status.is_unresolved() {
            Some(i.impact)
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
    PageStatus::compute(public_components(data).map(|c| c.status), incidents)
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
    members
        .map(|c| c.status)
        .max_by_key(|s| s.impact().rank())
        .unwrap_or(ComponentStatus::Operational)
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
mod tests;
