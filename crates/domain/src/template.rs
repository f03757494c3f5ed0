//! Incident templates: prepared names, messages and components for the
//! incidents a team opens again and again. A template holds no rule of its
//! own: the incident opened from it follows the incident's.

use time::OffsetDateTime;

use crate::{ComponentId, IncidentStatus, PageId, TemplateId};

/// An incident template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentTemplate {
    /// Identifier.
    pub id: TemplateId,
    /// The page it is for.
    pub page_id: PageId,
    /// The template's own name, unique on the page.
    pub name: String,
    /// The incident's name.
    pub title: String,
    /// The first update's message.
    pub body: String,
    /// The incident's first status.
    pub update_status: IncidentStatus,
    /// Whether subscribers are told.
    pub should_send_notifications: bool,
    /// The components it concerns.
    pub component_ids: Vec<ComponentId>,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
}
