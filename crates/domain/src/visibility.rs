//! Who may see what on a page, and what follows from it: which components a
//! reader sees, which recorded changes may be shown to them, the impact of an
//! incident as that reader may know it, and the page's indicator.
//!
//! Every face of a page (the HTML, the v2 JSON, feeds, the badge, webhook,
//! email and SMS notices, the self-service subscription forms) asks these
//! functions rather than comparing [`Visibility`] itself, so a private
//! component cannot show through one face that forgot the rule.
//!
//! This module decides; it does not read. Callers hand it the page's
//! components (id and visibility) and the incidents' facts. What a face
//! renders from the answer is the face's business.

use std::collections::HashMap;

use uuid::Uuid;

use crate::{ComponentId, ComponentStatus, Impact, IncidentStatus, PageStatus, Visibility};

/// Who reads: anyone, or a signed-in member of the page's tenant, who also
/// sees private components.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Audience {
    /// An anonymous visitor, a subscriber, an integration.
    Public,
    /// A member of the tenant.
    Members,
}

impl Audience {
    /// Whether this reader may see a component with this visibility.
    #[must_use]
    pub const fn sees(self, visibility: Visibility) -> bool {
        matches!(self, Self::Members) || matches!(visibility, Visibility::Public)
    }
}

/// What the impact rule needs to know of an incident or maintenance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentFacts<'a> {
    /// Its status now.
    pub status: IncidentStatus,
    /// Its stored impact, derived from every component it touched.
    pub impact: Impact,
    /// The impact the team set by hand, if any.
    pub impact_override: Option<Impact>,
    /// The components it concerns.
    pub component_ids: &'a [ComponentId],
    /// Every component change its updates recorded: the component and the
    /// status the update put it in.
    pub changes: Vec<(Uuid, ComponentStatus)>,
}

/// One reader's sight of one page: the page's components and which of them
/// this reader may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sight {
    audience: Audience,
    components: HashMap<Uuid, Visibility>,
}

impl Sight {
    /// The sight of `audience` on a page holding `components` (every one of
    /// them, private ones too: the sight decides, not the caller).
    #[must_use]
    pub fn new(
        audience: Audience,
        components: impl IntoIterator<Item = (Uuid, Visibility)>,
    ) -> Self {
        Self {
            audience,
            components: components.into_iter().collect(),
        }
    }

    /// Who reads.
    #[must_use]
    pub const fn audience(&self) -> Audience {
        self.audience
    }

    /// Whether the reader sees the component `id`: one on the page that the
    /// audience may see. A component no longer on the page is seen by nobody.
    #[must_use]
    pub fn sees(&self, id: Uuid) -> bool {
        self.components
            .get(&id)
            .is_some_and(|v| self.audience.sees(*v))
    }

    /// Whether a change that an update recorded on the component `id` may be
    /// shown: members see every change; the public never sees one of a
    /// component that was private then (`private_then`) or is private now,
    /// and still sees one of a component since deleted.
    #[must_use]
    pub fn shows_change(&self, id: Uuid, private_then: bool) -> bool {
        self.audience == Audience::Members
            || (!private_then
                && self
                    .components
                    .get(&id)
                    .is_none_or(|v| self.audience.sees(*v)))
    }

    /// An incident's impact as this reader may know it. The stored impact is
    /// derived from every component the incident touched, private ones too;
    /// when it touched any the reader cannot see, the impact is derived again
    /// from the changes to seen components its updates recorded, so a private
    /// outage never shows through. A maintenance keeps its impact, and an
    /// override is the team's own public word, and stands.
    #[must_use]
    pub fn impact(&self, incident: &IncidentFacts<'_>) -> Impact {
        if incident.status.is_maintenance()
            || incident
                .component_ids
                .iter()
                .all(|id| self.sees(id.as_uuid()))
        {
            return incident.impact;
        }
        if let Some(chosen) = incident.impact_override {
            return chosen;
        }
        Impact::from_component_statuses(
            incident
                .changes
                .iter()
                .filter(|(id, _)| self.sees(*id))
                .map(|(_, status)| *status),
        )
    }

    /// The page's overall status as this reader sees it: from the statuses
    /// of the components they see, from open incidents (their impact as the
    /// reader may know it) and from maintenances under way. `components`
    /// gives each component's status now; `incidents` the page's active
    /// incidents and maintenances (resolved or not yet begun ones count for
    /// nothing).
    #[must_use]
    pub fn page_status<'a>(
        &self,
        components: impl IntoIterator<Item = (Uuid, ComponentStatus)>,
        incidents: impl IntoIterator<Item = IncidentFacts<'a>>,
    ) -> PageStatus {
        let statuses = components
            .into_iter()
            .filter(|(id, _)| self.sees(*id))
            .map(|(_, status)| status);
        let impacts: Vec<Impact> = incidents
            .into_iter()
            .filter_map(|i| {
                if i.status.is_unresolved() {
                    Some(self.impact(&i))
                } else if matches!(
                    i.status,
                    IncidentStatus::InProgress | IncidentStatus::Verifying
                ) {
                    Some(Impact::Maintenance)
                } else {
                    None
                }
            })
            .collect();
        PageStatus::compute(statuses, impacts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    const API: u128 = 1;
    const SECRET: u128 = 2;
    const GONE: u128 = 3;

    fn sight(audience: Audience) -> Sight {
        Sight::new(
            audience,
            [
                (id(API), Visibility::Public),
                (id(SECRET), Visibility::Private),
            ],
        )
    }

    fn outage<'a>(
        component_ids: &'a [ComponentId],
        changes: &[(u128, ComponentStatus)],
    ) -> IncidentFacts<'a> {
        IncidentFacts {
            status: IncidentStatus::Investigating,
            impact: Impact::Critical,
            impact_override: None,
            component_ids,
            changes: changes.iter().map(|(n, s)| (id(*n), *s)).collect(),
        }
    }

    #[test]
    fn the_public_sees_public_components_and_members_see_all() {
        assert!(Audience::Public.sees(Visibility::Public));
        assert!(!Audience::Public.sees(Visibility::Private));
        assert!(Audience::Members.sees(Visibility::Public));
        assert!(Audience::Members.sees(Visibility::Private));
        let public = sight(Audience::Public);
        assert!(public.sees(id(API)));
        assert!(!public.sees(id(SECRET)));
        assert!(
            !public.sees(id(GONE)),
            "a deleted component is seen by nobody"
        );
        let members = sight(Audience::Members);
        assert!(members.sees(id(SECRET)));
        assert!(!members.sees(id(GONE)));
    }

    #[test]
    fn a_change_to_a_component_private_then_or_now_is_hidden_from_the_public() {
        let public = sight(Audience::Public);
        assert!(public.shows_change(id(API), false));
        assert!(!public.shows_change(id(API), true), "private then");
        assert!(!public.shows_change(id(SECRET), false), "private now");
        assert!(
            public.shows_change(id(GONE), false),
            "deleted since, public then"
        );
        assert!(!public.shows_change(id(GONE), true));
        let members = sight(Audience::Members);
        assert!(members.shows_change(id(SECRET), true));
        assert!(members.shows_change(id(GONE), true));
    }

    #[test]
    fn a_private_outage_never_shows_through_the_public_impact() {
        let ids = [ComponentId::from(id(API)), ComponentId::from(id(SECRET))];
        let facts = outage(
            &ids,
            &[
                (API, ComponentStatus::DegradedPerformance),
                (SECRET, ComponentStatus::MajorOutage),
            ],
        );
        assert_eq!(sight(Audience::Public).impact(&facts), Impact::Minor);
        assert_eq!(sight(Audience::Members).impact(&facts), Impact::Critical);
        let only_private = outage(&ids[1..], &[(SECRET, ComponentStatus::MajorOutage)]);
        assert_eq!(sight(Audience::Public).impact(&only_private), Impact::None);
    }

    #[test]
    fn the_stored_impact_stands_when_the_reader_sees_every_component() {
        let ids = [ComponentId::from(id(API))];
        let facts = outage(&ids, &[(API, ComponentStatus::DegradedPerformance)]);
        assert_eq!(sight(Audience::Public).impact(&facts), Impact::Critical);
        let none = outage(&[], &[]);
        assert_eq!(sight(Audience::Public).impact(&none), Impact::Critical);
    }

    #[test]
    fn an_override_and_a_maintenance_keep_their_impact() {
        let ids = [ComponentId::from(id(SECRET))];
        let mut facts = outage(&ids, &[(SECRET, ComponentStatus::MajorOutage)]);
        facts.impact_override = Some(Impact::Major);
        assert_eq!(sight(Audience::Public).impact(&facts), Impact::Major);
        let maintenance = IncidentFacts {
            status: IncidentStatus::InProgress,
            impact: Impact::Maintenance,
            impact_override: None,
            component_ids: &ids,
            changes: Vec::new(),
        };
        assert_eq!(
            sight(Audience::Public).impact(&maintenance),
            Impact::Maintenance
        );
    }

    #[test]
    fn the_page_status_counts_only_what_the_reader_sees() {
        let components = [
            (id(API), ComponentStatus::Operational),
            (id(SECRET), ComponentStatus::MajorOutage),
        ];
        let public = sight(Audience::Public);
        assert_eq!(
            public.page_status(components, []),
            PageStatus::from_indicator(Impact::None)
        );
        assert_eq!(
            sight(Audience::Members)
                .page_status(components, [])
                .indicator,
            Impact::Critical
        );
        let ids = [ComponentId::from(id(SECRET))];
        let hidden = outage(&ids, &[(SECRET, ComponentStatus::MajorOutage)]);
        assert_eq!(
            public.page_status(components, [hidden]).indicator,
            Impact::None
        );
        let seen_ids = [ComponentId::from(id(API))];
        let seen = outage(&seen_ids, &[(API, ComponentStatus::PartialOutage)]);
        assert_eq!(
            public.page_status(components, [seen]).indicator,
            Impact::Critical
        );
    }

    #[test]
    fn maintenances_count_only_while_under_way_and_resolved_incidents_not_at_all() {
        let components = [(id(API), ComponentStatus::Operational)];
        let public = sight(Audience::Public);
        let with = |status| IncidentFacts {
            status,
            impact: if status.is_maintenance() {
                Impact::Maintenance
            } else {
                Impact::Critical
            },
            impact_override: None,
            component_ids: &[],
            changes: Vec::new(),
        };
        let indicator = |status| public.page_status(components, [with(status)]).indicator;
        assert_eq!(indicator(IncidentStatus::Scheduled), Impact::None);
        assert_eq!(indicator(IncidentStatus::InProgress), Impact::Maintenance);
        assert_eq!(indicator(IncidentStatus::Verifying), Impact::Maintenance);
        assert_eq!(indicator(IncidentStatus::Completed), Impact::None);
        assert_eq!(indicator(IncidentStatus::Monitoring), Impact::Critical);
        assert_eq!(indicator(IncidentStatus::Resolved), Impact::None);
        assert_eq!(indicator(IncidentStatus::Postmortem), Impact::None);
    }
}
