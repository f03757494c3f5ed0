//! What a change tells subscribers: the kind of each outbox event.

use crate::IncidentStatus;

/// The kind of a notification event, as stored in the outbox and sent to
/// webhooks. The string forms are stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// An incident was opened.
    IncidentCreated,
    /// An incident got an update that did not resolve it.
    IncidentUpdated,
    /// An incident was resolved.
    IncidentResolved,
    /// A maintenance was scheduled.
    MaintenanceScheduled,
    /// A maintenance window is near.
    MaintenanceReminder,
    /// A maintenance began.
    MaintenanceStarted,
    /// A maintenance got an update that neither began nor ended it.
    MaintenanceUpdated,
    /// A maintenance ended.
    MaintenanceCompleted,
    /// A component's status changed (by hand, by an incident or by a maintenance).
    ComponentUpdated,
}

impl EventKind {
    /// The stored and wire form.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::IncidentCreated => "incident.created",
            Self::IncidentUpdated => "incident.updated",
            Self::IncidentResolved => "incident.resolved",
            Self::MaintenanceScheduled => "maintenance.scheduled",
            Self::MaintenanceReminder => "maintenance.reminder",
            Self::MaintenanceStarted => "maintenance.started",
            Self::MaintenanceUpdated => "maintenance.updated",
            Self::MaintenanceCompleted => "maintenance.completed",
            Self::ComponentUpdated => "component.updated",
        }
    }

    /// The event an incident update announces: `before` is the status before
    /// it (`None` when the update opens the incident or maintenance).
    #[must_use]
    pub const fn for_update(before: Option<IncidentStatus>, after: IncidentStatus) -> Self {
        use IncidentStatus::{Completed, InProgress, Resolved, Scheduled};
        match (before, after) {
            (None, Scheduled) => Self::MaintenanceScheduled,
            (None, InProgress) => Self::MaintenanceStarted,
            (None, s) if s.is_maintenance() => Self::MaintenanceCompleted,
            (None, _) => Self::IncidentCreated,
            (Some(Scheduled), InProgress) => Self::MaintenanceStarted,
            (Some(b), Completed) if !matches!(b, Completed) => Self::MaintenanceCompleted,
            (Some(_), s) if s.is_maintenance() => Self::MaintenanceUpdated,
            (Some(b), Resolved) if b.is_unresolved() => Self::IncidentResolved,
            (Some(_), _) => Self::IncidentUpdated,
        }
    }

    /// Whether the event concerns an incident or maintenance (and carries its ids).
    #[must_use]
    pub const fn is_incident_event(self) -> bool {
        !matches!(self, Self::ComponentUpdated)
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::EventKind::*;
    use super::*;
    use IncidentStatus::*;

    #[test]
    fn each_lifecycle_step_announces_its_own_event() {
        assert_eq!(EventKind::for_update(None, Investigating), IncidentCreated);
        assert_eq!(EventKind::for_update(None, Resolved), IncidentCreated);
        assert_eq!(
            EventKind::for_update(Some(Investigating), Identified),
            IncidentUpdated
        );
        assert_eq!(
            EventKind::for_update(Some(Monitoring), Resolved),
            IncidentResolved
        );
        assert_eq!(
            EventKind::for_update(Some(Resolved), Resolved),
            IncidentUpdated
        );
        assert_eq!(
            EventKind::for_update(Some(Resolved), Postmortem),
            IncidentUpdated
        );
        assert_eq!(EventKind::for_update(None, Scheduled), MaintenanceScheduled);
        assert_eq!(EventKind::for_update(None, InProgress), MaintenanceStarted);
        assert_eq!(
            EventKind::for_update(Some(Scheduled), InProgress),
            MaintenanceStarted
        );
        assert_eq!(
            EventKind::for_update(Some(InProgress), Verifying),
            MaintenanceUpdated
        );
        assert_eq!(
            EventKind::for_update(Some(Verifying), Completed),
            MaintenanceCompleted
        );
        assert_eq!(
            EventKind::for_update(Some(Scheduled), Completed),
            MaintenanceCompleted
        );
    }

    #[test]
    fn only_component_events_carry_no_incident() {
        assert!(IncidentCreated.is_incident_event());
        assert!(MaintenanceReminder.is_incident_event());
        assert!(!ComponentUpdated.is_incident_event());
    }
}
