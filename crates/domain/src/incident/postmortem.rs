//! The postmortem of an incident: when a draft may be written, published
//! and removed, and what each does to the incident.

use std::collections::BTreeMap;

use time::OffsetDateTime;

use super::{Incident, IncidentChange, Refusal};
use crate::{FieldError, IncidentStatus};

impl Incident {
    /// The incident with `body` as its postmortem draft, written at `now`.
    /// Only a resolved incident (or one whose postmortem is out) gets one.
    pub fn with_postmortem_draft(
        mut self,
        body: &str,
        now: OffsetDateTime,
    ) -> Result<Self, Refusal> {
        if !matches!(
            self.status,
            IncidentStatus::Resolved | IncidentStatus::Postmortem
        ) {
            return Err(Refusal::Invalid(FieldError::new(
                "status",
                "not_resolved",
                "a postmortem is written once the incident is resolved",
            )));
        }
        self.postmortem_body = Some(body.to_owned());
        self.postmortem_body_last_updated_at = Some(now);
        Ok(self)
    }

    /// The update that publishes the postmortem: the incident moves to
    /// `postmortem` with the draft as the update's text, telling subscribers
    /// if `notify`. Refused without a draft, or when it is out already. The
    /// store posts the update, then marks the postmortem published.
    pub fn postmortem_publication(&self, notify: bool) -> Result<IncidentChange, Refusal> {
        let Some(body) = self.postmortem_body.clone() else {
            return Err(Refusal::Invalid(FieldError::new(
                "postmortem",
                "missing",
                "write the postmortem before publishing it",
            )));
        };
        if self.postmortem_published_at.is_some() {
            return Err(Refusal::Conflict("postmortem_published"));
        }
        Ok(IncidentChange {
            status: IncidentStatus::Postmortem,
            body,
            components: BTreeMap::new(),
            deliver_notifications: notify,
            at: None,
            restore_components: false,
        })
    }

    /// The incident without its postmortem (draft or published); one that
    /// was published takes the incident back to `resolved`. Refused when
    /// there is none.
    pub fn without_postmortem(mut self) -> Result<Self, Refusal> {
        if self.postmortem_body.is_none() {
            return Err(Refusal::Missing);
        }
        self.postmortem_body = None;
        self.postmortem_body_last_updated_at = None;
        self.postmortem_published_at = None;
        if self.status == IncidentStatus::Postmortem {
            self.status = IncidentStatus::Resolved;
        }
        Ok(self)
    }
}
