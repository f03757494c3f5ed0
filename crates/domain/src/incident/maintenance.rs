//! What the worker's clock does to a scheduled maintenance: the reminder,
//! the automatic start and the automatic completion.

use std::collections::BTreeMap;

use time::OffsetDateTime;

use super::{Incident, IncidentChange};
use crate::IncidentStatus;

/// The message of the update posted when a maintenance begins on time.
pub const MAINTENANCE_STARTED_BODY: &str =
    "Scheduled maintenance is currently in progress. We will provide updates as necessary.";
/// The message of the update posted when a maintenance ends on time.
pub const MAINTENANCE_COMPLETED_BODY: &str = "The scheduled maintenance has been completed.";

/// What is due on a maintenance at one moment, in the order to do it.
#[derive(Debug, Clone, Default)]
pub struct MaintenanceSteps {
    /// The reminder is due: mark it done. `Some(true)`: also tell
    /// subscribers; `Some(false)`: the window has begun, a reminder is
    /// pointless, it is only marked done.
    pub remind: Option<bool>,
    /// The automatic start, as the update to post.
    pub start: Option<IncidentChange>,
    /// The automatic completion, as the update to post (after the start, if
    /// that is due too).
    pub complete: Option<IncidentChange>,
}

impl MaintenanceSteps {
    /// Whether nothing is due.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.remind.is_none() && self.start.is_none() && self.complete.is_none()
    }

    /// What is due on `m` at `now`, with reminders sent `remind_before` the
    /// window. An incident, or a maintenance without a window, has nothing due.
    ///
    /// - The reminder: once, while `scheduled`, from `remind_before` the
    ///   window start, when asked for.
    /// - The start: while `scheduled`, from the window start, when asked
    ///   for; dated at the window start (or the creation, if later).
    /// - The completion: before it is completed, from the window end, when
    ///   asked for; dated at the window end (or the creation, if later).
    ///
    /// Each step is due until done, so running this again after doing them
    /// finds nothing.
    #[must_use]
    pub fn due(m: &Incident, now: OffsetDateTime, remind_before: std::time::Duration) -> Self {
        let mut steps = Self::default();
        if !m.is_maintenance() {
            return steps;
        }
        let (Some(start), Some(end)) = (m.scheduled_for, m.scheduled_until) else {
            return steps;
        };
        let lead = time::Duration::try_from(remind_before).unwrap_or(time::Duration::ZERO);
        let mut status = m.status;
        if status == IncidentStatus::Scheduled
            && m.scheduled_remind_prior
            && m.reminded_at.is_none()
            && start - lead <= now
        {
            steps.remind = Some(now < start);
        }
        let step = |next: IncidentStatus, body: &str, at: OffsetDateTime| IncidentChange {
            status: next,
            body: body.to_owned(),
            components: BTreeMap::new(),
            deliver_notifications: true,
            at: Some(at),
            restore_components: false,
        };
        if status == IncidentStatus::Scheduled && m.scheduled_auto_in_progress && start <= now {
            steps.start = Some(step(
                IncidentStatus::InProgress,
                MAINTENANCE_STARTED_BODY,
                start.max(m.created_at),
            ));
            status = IncidentStatus::InProgress;
        }
        if matches!(
            status,
            IncidentStatus::Scheduled | IncidentStatus::InProgress | IncidentStatus::Verifying
        ) && m.scheduled_auto_completed
            && end <= now
        {
            steps.complete = Some(step(
                IncidentStatus::Completed,
                MAINTENANCE_COMPLETED_BODY,
                end.max(m.created_at),
            ));
        }
        steps
    }
}
