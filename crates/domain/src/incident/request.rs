//! What a request to open or edit an incident may ask for: the statuses a
//! new incident or maintenance may start in, the backfill rules, and the
//! maintenance window.

use time::{Date, OffsetDateTime};

use super::{Incident, Schedule};
use crate::{FieldError, IncidentStatus, TimeZoneName, day_bounds};

/// Refuses a window that does not end after it starts.
pub fn check_window(start: OffsetDateTime, end: OffsetDateTime) -> Result<(), FieldError> {
    if end <= start {
        return Err(FieldError::new(
            "scheduled_until",
            "invalid",
            "must be after scheduled_for",
        ));
    }
    Ok(())
}

/// The window fields a request names; absent ones are not asked for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SchedulePatch {
    /// Window start.
    pub scheduled_for: Option<OffsetDateTime>,
    /// Window end.
    pub scheduled_until: Option<OffsetDateTime>,
    /// Remind subscribers before the window.
    pub remind_prior: Option<bool>,
    /// Start it at `scheduled_for`.
    pub auto_in_progress: Option<bool>,
    /// Complete it at `scheduled_until`.
    pub auto_completed: Option<bool>,
}

impl SchedulePatch {
    /// Whether the request names any window field.
    #[must_use]
    pub const fn touches(&self) -> bool {
        self.scheduled_for.is_some()
            || self.scheduled_until.is_some()
            || self.remind_prior.is_some()
            || self.auto_in_progress.is_some()
            || self.auto_completed.is_some()
    }

    /// The window of `current` with this patch applied: `None` when the
    /// patch names nothing; refused when the result has no window (only a
    /// maintenance has one) or ends before it starts.
    pub fn merged_into(&self, current: &Incident) -> Result<Option<Schedule>, FieldError> {
        if !self.touches() {
            return Ok(None);
        }
        let (Some(start), Some(end)) = (
            self.scheduled_for.or(current.scheduled_for),
            self.scheduled_until.or(current.scheduled_until),
        ) else {
            return Err(FieldError::new(
                "scheduled_for",
                "invalid",
                "only a maintenance has a window",
            ));
        };
        check_window(start, end)?;
        Ok(Some(Schedule {
            scheduled_for: start,
            scheduled_until: end,
            remind_prior: self.remind_prior.unwrap_or(current.scheduled_remind_prior),
            auto_in_progress: self
                .auto_in_progress
                .unwrap_or(current.scheduled_auto_in_progress),
            auto_completed: self
                .auto_completed
                .unwrap_or(current.scheduled_auto_completed),
        }))
    }
}

/// What a request to open asks for, parsed but not yet judged.
#[derive(Debug, Clone)]
pub struct OpeningRequest {
    /// The status asked for.
    pub status: Option<IncidentStatus>,
    /// The status of the template it is opened from.
    pub template_status: Option<IncidentStatus>,
    /// The window fields.
    pub window: SchedulePatch,
    /// Entered after the fact.
    pub backfilled: bool,
    /// The day it happened, for a backfilled incident (`None` when the
    /// request's date was missing or unreadable: already refused).
    pub backfill_date: Option<Date>,
    /// The page's time zone, in which `backfill_date` is a day.
    pub zone: TimeZoneName,
}

/// The judged shape of a new record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpeningShape {
    /// The status of its first update.
    pub status: IncidentStatus,
    /// When it happened, if not now (a backfilled incident: the start of its day).
    pub at: Option<OffsetDateTime>,
    /// For a maintenance: its window.
    pub schedule: Option<Schedule>,
}

impl OpeningRequest {
    /// Whether the request opens a maintenance: it names a window or a
    /// maintenance status.
    #[must_use]
    pub fn is_maintenance(&self) -> bool {
        self.window.scheduled_for.is_some()
            || self.window.scheduled_until.is_some()
            || self.status.is_some_and(IncidentStatus::is_maintenance)
    }

    /// Judges the request at `now`, answering every refusal in field order.
    ///
    /// - Backfilled: an incident (never a maintenance) on a day not in the
    ///   future, resolved, dated at the start of that day in the page's zone.
    /// - A maintenance needs both ends of its window, the end after the
    ///   start, and starts `scheduled` or `in_progress`.
    /// - An incident starts in the status asked for, else the template's,
    ///   else `investigating`, and never in `postmortem`.
    pub fn judge(&self, now: OffsetDateTime) -> Result<OpeningShape, Vec<FieldError>> {
        let mut refused = Vec::new();
        let maintenance = self.is_maintenance();
        let mut at = None;
        let mut schedule = None;
        let status = if self.backfilled {
            if let Some(date) = self.backfill_date {
                let (start, _) = day_bounds(date, &self.zone);
                if start > now {
                    refused.push(FieldError::new(
                        "backfill_date",
                        "invalid",
                        "must not be in the future",
                    ));
                }
                at = Some(start);
            }
            if maintenance {
                refused.push(FieldError::new(
                    "backfilled",
                    "invalid",
                    "a maintenance is not backfilled",
                ));
            }
            IncidentStatus::Resolved
        } else if maintenance {
            match (self.window.scheduled_for, self.window.scheduled_until) {
                (Some(start), Some(end)) => {
                    if let Err(e) = check_window(start, end) {
                        refused.push(e);
                    }
                    schedule = Some(Schedule {
                        scheduled_for: start,
                        scheduled_until: end,
                        remind_prior: self.window.remind_prior.unwrap_or(false),
                        auto_in_progress: self.window.auto_in_progress.unwrap_or(false),
                        auto_completed: self.window.auto_completed.unwrap_or(false),
                    });
                }
                (None, _) => refused.push(FieldError::new(
                    "scheduled_for",
                    "missing",
                    "a maintenance needs its window",
                )),
                (_, None) => refused.push(FieldError::new(
                    "scheduled_until",
                    "missing",
                    "a maintenance needs its window",
                )),
            }
            let status = self.status.unwrap_or(IncidentStatus::Scheduled);
            if !matches!(
                status,
                IncidentStatus::Scheduled | IncidentStatus::InProgress
            ) {
                refused.push(FieldError::new(
                    "status",
                    "invalid",
                    "a new maintenance is scheduled or in_progress",
                ));
            }
            status
        } else {
            let status = self
                .status
                .or(self.template_status)
                .unwrap_or(IncidentStatus::Investigating);
            if status == IncidentStatus::Postmortem {
                refused.push(FieldError::new(
                    "status",
                    "invalid",
                    "a new incident is investigating, identified, monitoring or resolved",
                ));
            }
            status
        };
        if refused.is_empty() {
            Ok(OpeningShape {
                status,
                at,
                schedule,
            })
        } else {
            Err(refused)
        }
    }
}
