//! How a status change moves an incident: the transition check, the impact,
//! the timestamps, and the component moves it implies.

use std::collections::BTreeMap;

use time::OffsetDateTime;

use super::{Incident, IncidentChange, IncidentKind, NewIncident, Refusal, is_closed};
use crate::{ComponentId, ComponentStatus, FieldError, Impact, IncidentStatus};

/// The part of an incident that its status changes decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifecycle {
    /// Incident or maintenance; never changes.
    pub kind: IncidentKind,
    /// Current status.
    pub status: IncidentStatus,
    /// Current impact.
    pub impact: Impact,
    /// The impact set by hand.
    pub impact_override: Option<Impact>,
    /// When it began (for a maintenance: the window start, until it starts).
    pub started_at: OffsetDateTime,
    /// When it first entered `monitoring`.
    pub monitoring_at: Option<OffsetDateTime>,
    /// When it was closed, while it is.
    pub resolved_at: Option<OffsetDateTime>,
}

impl Incident {
    /// The part of this incident its status changes decide.
    #[must_use]
    pub fn lifecycle(&self) -> Lifecycle {
        Lifecycle {
            kind: self.kind,
            status: self.status,
            impact: self.impact,
            impact_override: self.impact_override,
            started_at: self.started_at,
            monitoring_at: self.monitoring_at,
            resolved_at: self.resolved_at,
        }
    }
}

impl Lifecycle {
    /// The state after an update moving to `next` at `at`, which sets
    /// components to `asked`; refuses a move the lifecycle does not allow
    /// (see [`IncidentStatus::can_move_to`]: incidents and maintenances never
    /// take each other's statuses).
    ///
    /// - Impact follows the worst status an update sets and never falls on
    ///   its own (a resolved incident keeps the impact it had); an override
    ///   wins, and a maintenance keeps its impact.
    /// - `started_at`: a maintenance that goes from `scheduled` to
    ///   `in_progress` started now.
    /// - `monitoring_at`: set the first time it enters `monitoring`, never cleared.
    /// - `resolved_at`: set when it closes (kept if it was closed already),
    ///   cleared when it reopens.
    pub fn after_update(
        self,
        next: IncidentStatus,
        asked: impl IntoIterator<Item = ComponentStatus>,
        at: OffsetDateTime,
    ) -> Result<Self, Refusal> {
        if !self.status.can_move_to(next) {
            return Err(Refusal::Invalid(FieldError::new(
                "status",
                "invalid_transition",
                format!("cannot move from {} to {next}", self.status),
            )));
        }
        let impact = if self.impact_override.is_some() || self.kind == IncidentKind::Maintenance {
            self.impact
        } else {
            self.impact.worst(Impact::from_component_statuses(asked))
        };
        let started_at =
            if next == IncidentStatus::InProgress && self.status == IncidentStatus::Scheduled {
                at
            } else {
                self.started_at
            };
        let monitoring_at = if next == IncidentStatus::Monitoring {
            Some(self.monitoring_at.unwrap_or(at))
        } else {
            self.monitoring_at
        };
        let resolved_at = is_closed(next).then(|| self.resolved_at.unwrap_or(at));
        Ok(Self {
            status: next,
            impact,
            started_at,
            monitoring_at,
            resolved_at,
            ..self
        })
    }

    /// The state after the override is set (`Some(impact)`: the impact
    /// becomes it) or removed (`None`: the impact stays until an update
    /// raises it).
    #[must_use]
    pub fn with_override(self, chosen: Option<Impact>) -> Self {
        Self {
            impact: chosen.unwrap_or(self.impact),
            impact_override: chosen,
            ..self
        }
    }
}

/// How an incident or maintenance is opened: the row as it stands before
/// its first update, and that first update.
#[derive(Debug, Clone)]
pub struct Opening {
    /// The row's state before the first update.
    pub before: Lifecycle,
    /// When it was opened (or happened, for history entered after the fact).
    pub at: OffsetDateTime,
    /// The first update.
    pub first: IncidentChange,
    /// Every component it concerns, sorted, without repeats.
    pub component_ids: Vec<ComponentId>,
}

impl Opening {
    /// Opens `new` at `now` (or at its own time, for history entered after
    /// the fact).
    ///
    /// A maintenance (one with a window) starts `scheduled` with the
    /// `maintenance` impact and `started_at` at its window start; an
    /// incident starts `investigating` with the impact of the statuses it
    /// sets; an override wins either way. The first update moves it to the
    /// status asked for. History entered after the fact changes no current
    /// status and tells nobody; a maintenance touches its components when it
    /// begins, not when it is scheduled.
    #[must_use]
    pub fn plan(new: &NewIncident, now: OffsetDateTime) -> Self {
        let kind = if new.schedule.is_some() {
            IncidentKind::Maintenance
        } else {
            IncidentKind::Incident
        };
        let at = new.at.unwrap_or(now);
        let impact = new.impact_override.unwrap_or_else(|| match kind {
            IncidentKind::Maintenance => Impact::Maintenance,
            IncidentKind::Incident => {
                Impact::from_component_statuses(new.components.values().copied())
            }
        });
        let before = Lifecycle {
            kind,
            status: kind.initial_status(),
            impact,
            impact_override: new.impact_override,
            started_at: new.schedule.map_or(at, |s| s.scheduled_for),
            monitoring_at: None,
            resolved_at: None,
        };
        let first = IncidentChange {
            status: new.status,
            body: new.body.clone(),
            components: if new.backfilled || new.status == IncidentStatus::Scheduled {
                BTreeMap::new()
            } else {
                new.components.clone()
            },
            deliver_notifications: new.deliver_notifications && !new.backfilled,
            at: Some(at),
            restore_components: false,
        };
        let mut component_ids: Vec<ComponentId> = new.components.keys().copied().collect();
        component_ids.extend(new.component_ids.iter().copied());
        component_ids.sort();
        component_ids.dedup();
        Self {
            before,
            at,
            first,
            component_ids,
        }
    }
}

/// A component move a status change implies beyond those asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImpliedMove {
    /// A maintenance begins: its components go under maintenance, and their
    /// status is remembered.
    Start,
    /// A maintenance under way ends: each component still under maintenance
    /// gets back what it had.
    End,
    /// An incident resolved with `restore_components`: its components go
    /// back to operational.
    Restore,
}

impl ImpliedMove {
    /// The move implied by going from `before` (`None` for a new record)
    /// to `change`, if any.
    #[must_use]
    pub fn of(before: Option<IncidentStatus>, change: &IncidentChange) -> Option<Self> {
        use IncidentStatus::{Completed, InProgress, Resolved, Verifying};
        let after = change.status;
        let under_way = matches!(before, Some(InProgress | Verifying));
        if after == InProgress && !under_way {
            Some(Self::Start)
        } else if after == Completed && under_way {
            Some(Self::End)
        } else if change.restore_components && after == Resolved {
            Some(Self::Restore)
        } else {
            None
        }
    }

    /// Whether the components' statuses are to be remembered before the
    /// move, for [`ImpliedMove::End`] to give them back.
    #[must_use]
    pub const fn remembers(self) -> bool {
        matches!(self, Self::Start)
    }

    /// Where a component now in `current`, which had `remembered` when the
    /// maintenance began, goes; `None` leaves it as it is (a status set by
    /// hand during a maintenance stands).
    #[must_use]
    pub fn target(
        self,
        current: ComponentStatus,
        remembered: Option<ComponentStatus>,
    ) -> Option<ComponentStatus> {
        match self {
            Self::Start => Some(ComponentStatus::UnderMaintenance),
            Self::End => (current == ComponentStatus::UnderMaintenance)
                .then(|| remembered.unwrap_or(ComponentStatus::Operational)),
            Self::Restore => Some(ComponentStatus::Operational),
        }
    }

    /// Every component move of an update: those implied for `components`
    /// (id, current status, remembered status), overridden by those asked
    /// for explicitly.
    #[must_use]
    pub fn moves(
        implied: Option<Self>,
        components: &[(ComponentId, ComponentStatus, Option<ComponentStatus>)],
        asked: &BTreeMap<ComponentId, ComponentStatus>,
    ) -> BTreeMap<ComponentId, ComponentStatus> {
        let mut moves: BTreeMap<ComponentId, ComponentStatus> = implied
            .map(|m| {
                components
                    .iter()
                    .filter_map(|(id, current, remembered)| {
                        m.target(*current, *remembered).map(|t| (*id, t))
                    })
                    .collect()
            })
            .unwrap_or_default();
        moves.extend(asked.iter().map(|(c, s)| (*c, *s)));
        moves
    }
}
