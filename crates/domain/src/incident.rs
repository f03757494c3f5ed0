//! Incidents and scheduled maintenances: the entities and every rule of
//! their lifecycle, as pure functions.
//!
//! Owns: what an incident, an update and a maintenance window are; which
//! status a new one may start in and how a backfilled one is dated
//! ([`request`]); how a status change moves the impact and the timestamps
//! and which component moves it implies ([`lifecycle`]); what the worker's
//! clock does to a maintenance ([`maintenance`]); the postmortem's draft,
//! publish and delete rules ([`postmortem`]). Each decision takes the state
//! before, the change and the time, and answers the state after or a
//! [`Refusal`]; the store writes what it answers.
//!
//! Does not own: how these are stored or queried (the store), nor how they
//! are rendered (the web crate, the API).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{
    ComponentId, ComponentStatus, FieldError, Impact, IncidentId, IncidentStatus, IncidentUpdateId,
    Name, PageId, UnknownVariant,
};

pub mod lifecycle;
pub mod maintenance;
pub mod postmortem;
pub mod request;

#[cfg(test)]
mod props;
#[cfg(test)]
mod tests;

pub use lifecycle::{ImpliedMove, Lifecycle, Opening};
pub use maintenance::{MAINTENANCE_COMPLETED_BODY, MAINTENANCE_STARTED_BODY, MaintenanceSteps};
pub use request::{OpeningRequest, OpeningShape, SchedulePatch};

/// Whether a record is an incident or a scheduled maintenance. Fixed when it
/// is opened: a maintenance stays a maintenance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IncidentKind {
    /// Something broke.
    Incident,
    /// Planned work in a window.
    Maintenance,
}

impl IncidentKind {
    /// Every value.
    pub const ALL: &'static [Self] = &[Self::Incident, Self::Maintenance];

    /// The wire and storage form.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Incident => "incident",
            Self::Maintenance => "maintenance",
        }
    }

    /// The kind whose statuses `status` belongs to.
    #[must_use]
    pub const fn of_status(status: IncidentStatus) -> Self {
        if status.is_maintenance() {
            Self::Maintenance
        } else {
            Self::Incident
        }
    }

    /// The status a record of this kind holds before its first update.
    #[must_use]
    pub const fn initial_status(self) -> IncidentStatus {
        match self {
            Self::Incident => IncidentStatus::Investigating,
            Self::Maintenance => IncidentStatus::Scheduled,
        }
    }
}

impl FromStr for IncidentKind {
    type Err = UnknownVariant;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "incident" => Ok(Self::Incident),
            "maintenance" => Ok(Self::Maintenance),
            other => Err(UnknownVariant {
                value: other.to_owned(),
                allowed: "incident, maintenance",
            }),
        }
    }
}

impl TryFrom<String> for IncidentKind {
    type Error = UnknownVariant;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl fmt::Display for IncidentKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a record in this status is over: resolved, postmortem, completed.
/// A closed record carries `resolved_at`; an open one does not.
#[must_use]
pub const fn is_closed(status: IncidentStatus) -> bool {
    matches!(
        status,
        IncidentStatus::Resolved | IncidentStatus::Postmortem | IncidentStatus::Completed
    )
}

/// The statuses of maintenances under way.
pub const ACTIVE_MAINTENANCE: [IncidentStatus; 2] =
    [IncidentStatus::InProgress, IncidentStatus::Verifying];

/// Why a lifecycle decision refused a change; each maps to one API answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The change is not allowed in this state (422 on the named field).
    #[error("{0}")]
    Invalid(FieldError),
    /// The change conflicts with what was already done (409 with this code).
    #[error("conflict: {0}")]
    Conflict(&'static str),
    /// There is nothing the change could apply to (404).
    #[error("nothing to change")]
    Missing,
}

/// An incident or a scheduled maintenance.
#[derive(Debug, Clone, PartialEq)]
pub struct Incident {
    /// Identifier.
    pub id: IncidentId,
    /// The page it is on.
    pub page_id: PageId,
    /// Incident or maintenance.
    pub kind: IncidentKind,
    /// Title.
    pub name: String,
    /// Current status.
    pub status: IncidentStatus,
    /// Current impact.
    pub impact: Impact,
    /// The impact set by hand, which wins over the derived one.
    pub impact_override: Option<Impact>,
    /// When it began.
    pub started_at: OffsetDateTime,
    /// When it first entered `monitoring`.
    pub monitoring_at: Option<OffsetDateTime>,
    /// When it was resolved.
    pub resolved_at: Option<OffsetDateTime>,
    /// Maintenance window start.
    pub scheduled_for: Option<OffsetDateTime>,
    /// Maintenance window end.
    pub scheduled_until: Option<OffsetDateTime>,
    /// Whether subscribers are reminded before the window.
    pub scheduled_remind_prior: bool,
    /// Whether the worker starts the maintenance at `scheduled_for`.
    pub scheduled_auto_in_progress: bool,
    /// Whether the worker completes the maintenance at `scheduled_until`.
    pub scheduled_auto_completed: bool,
    /// When the reminder went out.
    pub reminded_at: Option<OffsetDateTime>,
    /// Whether it was entered after the fact.
    pub backfilled: bool,
    /// Free-form data of the team's tooling.
    pub metadata: serde_json::Value,
    /// The postmortem, draft or published.
    pub postmortem_body: Option<String>,
    /// When the postmortem was last edited.
    pub postmortem_body_last_updated_at: Option<OffsetDateTime>,
    /// When the postmortem was published.
    pub postmortem_published_at: Option<OffsetDateTime>,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
    /// The components it concerns.
    pub component_ids: Vec<ComponentId>,
}

impl Incident {
    /// Whether this is a scheduled maintenance.
    #[must_use]
    pub fn is_maintenance(&self) -> bool {
        self.kind == IncidentKind::Maintenance
    }

    /// The maintenance window, when both ends are set.
    #[must_use]
    pub fn schedule(&self) -> Option<Schedule> {
        Some(Schedule {
            scheduled_for: self.scheduled_for?,
            scheduled_until: self.scheduled_until?,
            remind_prior: self.scheduled_remind_prior,
            auto_in_progress: self.scheduled_auto_in_progress,
            auto_completed: self.scheduled_auto_completed,
        })
    }

    /// What the visibility rules read of this incident and its updates.
    #[must_use]
    pub fn facts(&self, updates: &[IncidentUpdate]) -> crate::IncidentFacts<'_> {
        crate::IncidentFacts {
            status: self.status,
            impact: self.impact,
            impact_override: self.impact_override,
            component_ids: &self.component_ids,
            changes: updates
                .iter()
                .flat_map(|u| u.affected_components.iter())
                .map(|a| (a.code, a.new_status))
                .collect(),
        }
    }
}

/// One component's change within an incident update (Statuspage's `affected_components`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AffectedComponent {
    /// The component's id.
    pub code: Uuid,
    /// The component's name.
    pub name: String,
    /// Status before the update.
    pub old_status: ComponentStatus,
    /// Status after the update.
    pub new_status: ComponentStatus,
    /// Whether the component is private: never shown to the public or to subscribers.
    #[serde(default, skip_serializing)]
    pub private: bool,
}

/// One update posted on an incident.
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentUpdate {
    /// Identifier.
    pub id: IncidentUpdateId,
    /// The incident.
    pub incident_id: IncidentId,
    /// The incident's status as of this update.
    pub status: IncidentStatus,
    /// The message.
    pub body: String,
    /// The time shown for it.
    pub display_at: OffsetDateTime,
    /// Whether subscribers are told.
    pub deliver_notifications: bool,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
    /// Component changes carried by this update.
    pub affected_components: Vec<AffectedComponent>,
}

/// A maintenance window and what the worker does with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// Window start.
    pub scheduled_for: OffsetDateTime,
    /// Window end (after the start).
    pub scheduled_until: OffsetDateTime,
    /// Remind subscribers before the window.
    pub remind_prior: bool,
    /// Start it at `scheduled_for`.
    pub auto_in_progress: bool,
    /// Complete it at `scheduled_until`.
    pub auto_completed: bool,
}

/// An incident, or with a schedule a maintenance, to open.
#[derive(Debug, Clone)]
pub struct NewIncident {
    /// Title.
    pub name: Name,
    /// Initial status (a maintenance status when `schedule` is set).
    pub status: IncidentStatus,
    /// The first update's message.
    pub body: String,
    /// Impact to show instead of the one derived from the components.
    pub impact_override: Option<Impact>,
    /// New status per affected component.
    pub components: BTreeMap<ComponentId, ComponentStatus>,
    /// Further affected components whose status does not change now.
    pub component_ids: Vec<ComponentId>,
    /// Whether subscribers are told.
    pub deliver_notifications: bool,
    /// When it happened, if not now (backfilled history, demo data).
    pub at: Option<OffsetDateTime>,
    /// For a scheduled maintenance: its window.
    pub schedule: Option<Schedule>,
    /// Entered after the fact: no component changes, nobody told.
    pub backfilled: bool,
    /// Free-form data of the team's tooling.
    pub metadata: serde_json::Value,
}

/// An update to post on an incident or maintenance.
#[derive(Debug, Clone)]
pub struct IncidentChange {
    /// New status.
    pub status: IncidentStatus,
    /// The update's message.
    pub body: String,
    /// New status per component.
    pub components: BTreeMap<ComponentId, ComponentStatus>,
    /// Whether subscribers are told.
    pub deliver_notifications: bool,
    /// When it happened, if not now.
    pub at: Option<OffsetDateTime>,
    /// On resolving: put the incident's components back to operational
    /// (those `components` does not name).
    pub restore_components: bool,
}

/// Changes to an incident's own fields (not an update).
#[derive(Debug, Clone, Default)]
pub struct IncidentEdit {
    /// New title.
    pub name: Option<Name>,
    /// New override; `Some(None)` removes it.
    pub impact_override: Option<Option<Impact>>,
    /// New window and flags, for a maintenance.
    pub schedule: Option<Schedule>,
    /// New metadata.
    pub metadata: Option<serde_json::Value>,
    /// Further affected components.
    pub component_ids: Vec<ComponentId>,
}

impl Incident {
    /// The incident after an edit of its own fields; refuses a window on an
    /// incident. A moved window start earns a new reminder; setting an
    /// override sets the impact to it, removing one leaves the impact as it is.
    ///
    /// The further affected components are the store's to add.
    pub fn after_edit(mut self, edit: &IncidentEdit) -> Result<Self, Refusal> {
        if edit.schedule.is_some() && !self.is_maintenance() {
            return Err(Refusal::Invalid(FieldError::new(
                "scheduled_for",
                "invalid",
                "only a maintenance has a window",
            )));
        }
        if let Some(name) = &edit.name {
            name.as_str().clone_into(&mut self.name);
        }
        if let Some(chosen) = edit.impact_override {
            let life = self.lifecycle().with_override(chosen);
            self.impact = life.impact;
            self.impact_override = life.impact_override;
        }
        if let Some(s) = edit.schedule {
            if self.scheduled_for != Some(s.scheduled_for) {
                self.reminded_at = None;
            }
            self.scheduled_for = Some(s.scheduled_for);
            self.scheduled_until = Some(s.scheduled_until);
            self.scheduled_remind_prior = s.remind_prior;
            self.scheduled_auto_in_progress = s.auto_in_progress;
            self.scheduled_auto_completed = s.auto_completed;
        }
        if let Some(metadata) = &edit.metadata {
            metadata.clone_into(&mut self.metadata);
        }
        Ok(self)
    }
}
