//! What a change tells subscribers: the kind of each outbox event.

use crate::{Channel, IncidentStatus};

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
    /// A new subscriber is to confirm (email link, SMS code, webhook ping);
    /// goes to that one subscriber only.
    SubscriptionConfirmation,
    /// A test ping asked for by the team or the subscriber; goes to that one
    /// subscriber only.
    SubscriptionPing,
    /// The team redrove dead deliveries: they are queued again. Reaches nobody itself.
    DeliveriesRedriven,
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
            Self::SubscriptionConfirmation => "subscription.confirmation",
            Self::SubscriptionPing => "subscription.ping",
            Self::DeliveriesRedriven => "deliveries.redriven",
        }
    }

    /// The kind a stored string names.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Every kind.
    pub const ALL: [Self; 12] = [
        Self::IncidentCreated,
        Self::IncidentUpdated,
        Self::IncidentResolved,
        Self::MaintenanceScheduled,
        Self::MaintenanceReminder,
        Self::MaintenanceStarted,
        Self::MaintenanceUpdated,
        Self::MaintenanceCompleted,
        Self::ComponentUpdated,
        Self::SubscriptionConfirmation,
        Self::SubscriptionPing,
        Self::DeliveriesRedriven,
    ];

    /// Whether the event goes to one named subscriber rather than to all
    /// who follow the page.
    #[must_use]
    pub const fn is_addressed(self) -> bool {
        matches!(
            self,
            Self::SubscriptionConfirmation | Self::SubscriptionPing
        )
    }

    /// Whether subscribers on `channel` hear of this kind of event (when it
    /// is not addressed to one of them). SMS costs money per message, so as
    /// on Statuspage it carries only an incident's opening and resolution and
    /// a maintenance's start; component changes go to webhooks only (chat
    /// channels and inboxes would drown in them).
    #[must_use]
    pub const fn reaches(self, channel: Channel) -> bool {
        match channel {
            Channel::Sms => matches!(
                self,
                Self::IncidentCreated | Self::IncidentResolved | Self::MaintenanceStarted
            ),
            Channel::Webhook => self.is_incident_event() || matches!(self, Self::ComponentUpdated),
            Channel::Email | Channel::Slack | Channel::Teams => self.is_incident_event(),
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
        !matches!(
            self,
            Self::ComponentUpdated
                | Self::SubscriptionConfirmation
                | Self::SubscriptionPing
                | Self::DeliveriesRedriven
        )
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
        assert!(!SubscriptionPing.is_incident_event());
    }

    #[test]
    fn every_kind_parses_from_its_stored_form() {
        for kind in EventKind::ALL {
            assert_eq!(EventKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(EventKind::parse("incident.exploded"), None);
    }

    #[test]
    fn sms_carries_only_openings_resolutions_and_maintenance_starts() {
        let sms: Vec<EventKind> = EventKind::ALL
            .into_iter()
            .filter(|k| k.reaches(Channel::Sms))
            .collect();
        assert_eq!(sms, [IncidentCreated, IncidentResolved, MaintenanceStarted]);
    }

    #[test]
    fn component_changes_reach_webhooks_only_and_addressed_events_nobody_at_large() {
        for channel in [Channel::Email, Channel::Sms, Channel::Slack, Channel::Teams] {
            assert!(!ComponentUpdated.reaches(channel), "{channel}");
        }
        assert!(ComponentUpdated.reaches(Channel::Webhook));
        for channel in [
            Channel::Email,
            Channel::Sms,
            Channel::Webhook,
            Channel::Slack,
            Channel::Teams,
        ] {
            assert!(!SubscriptionPing.reaches(channel));
            assert!(!SubscriptionConfirmation.reaches(channel));
            assert!(!DeliveriesRedriven.reaches(channel));
        }
        for kind in [
            IncidentCreated,
            IncidentUpdated,
            MaintenanceReminder,
            MaintenanceCompleted,
        ] {
            for channel in [
                Channel::Email,
                Channel::Webhook,
                Channel::Slack,
                Channel::Teams,
            ] {
                assert!(kind.reaches(channel), "{kind} on {channel}");
            }
        }
    }
}
