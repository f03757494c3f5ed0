//! Statuspage's JSON shapes, typed: the objects of its public v2 documents
//! (page, status, component and group row, incident, incident update,
//! affected component, the summary and list documents) and of its webhook
//! bodies (the envelope, with the same incident and component objects).
//!
//! One set of structs serves the public documents, the management API's
//! answers and the webhooks, so the three cannot drift apart. Field order is
//! Statuspage's, and timestamps are written as Statuspage writes them
//! ([`timestamp`]: UTC, milliseconds, `Z`).
//!
//! This module owns the shapes only: which components, incidents and changes
//! a reader may see is [`crate::visibility`]'s decision, and filling the
//! shapes from the page's data is done by the face that answers.

use serde::{Serialize, Serializer};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use crate::{ComponentStatus, Impact, IncidentStatus, PageStatus};

/// ISO 8601 in UTC with milliseconds, as Statuspage writes timestamps
/// (`2026-11-22T06:24:21.184Z`).
#[must_use]
pub fn timestamp(t: OffsetDateTime) -> String {
    const FORMAT: &[time::format_description::BorrowedFormatItem<'_>] = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.to_offset(time::UtcOffset::UTC)
        .format(FORMAT)
        .unwrap_or_default()
}

/// Serde helpers writing times as [`timestamp`] does.
mod wire {
    use super::{Date, OffsetDateTime, Serializer, timestamp};

    pub fn at<S: Serializer>(t: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&timestamp(*t))
    }

    #[expect(
        clippy::ref_option,
        reason = "serde's `serialize_with` passes a reference to the field"
    )]
    pub fn at_opt<S: Serializer>(t: &Option<OffsetDateTime>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&timestamp(*t)),
            None => s.serialize_none(),
        }
    }

    /// A date that may be absent (`None`, left out by `skip_serializing_if`)
    /// or null (`Some(None)`).
    #[expect(
        clippy::ref_option,
        clippy::option_option,
        reason = "serde's `serialize_with` passes a reference to the field"
    )]
    pub fn date_opt<S: Serializer>(d: &Option<Option<Date>>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(Some(d)) => s.serialize_str(&d.to_string()),
            _ => s.serialize_none(),
        }
    }
}

/// `page` of every v2 document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(as = V2Page)]
pub struct Page {
    /// The page's id.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// Its canonical address, without a trailing slash.
    pub url: String,
    /// The IANA time zone it shows times in.
    pub time_zone: String,
    /// When anything on it last changed.
    #[serde(serialize_with = "wire::at")]
    pub updated_at: OffsetDateTime,
}

/// A component, or a group row (`group: true`, with its members' ids).
///
/// Webhook bodies leave the page's display settings out (`showcase`,
/// `start_date`, `only_show_if_degraded` are `None` there); the public and
/// management documents always carry them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(as = V2Component)]
pub struct Component {
    /// The component's (or group's) id.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// Its status now (a group's: the worst of its members').
    pub status: ComponentStatus,
    /// When it was created.
    #[serde(serialize_with = "wire::at")]
    pub created_at: OffsetDateTime,
    /// When it last changed.
    #[serde(serialize_with = "wire::at")]
    pub updated_at: OffsetDateTime,
    /// Its place on the page.
    pub position: i32,
    /// Its public description.
    pub description: Option<String>,
    /// Whether the page shows its uptime.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = bool)]
    pub showcase: Option<bool>,
    /// When it started to exist, for uptime.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "wire::date_opt"
    )]
    #[schema(value_type = Option<Date>)]
    pub start_date: Option<Option<Date>>,
    /// The group it belongs to.
    pub group_id: Option<Uuid>,
    /// The page it is on.
    pub page_id: Uuid,
    /// Whether this row is a group.
    pub group: bool,
    /// Whether the page shows it only while it is not operational.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = bool)]
    pub only_show_if_degraded: Option<bool>,
    /// A group's members, by id; absent on a component.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub components: Option<Vec<Uuid>>,
}

/// One component's change within an incident update (`code` is the
/// component's id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AffectedComponent {
    /// The component's id.
    pub code: Uuid,
    /// Its name.
    pub name: String,
    /// Its status before the update, when known.
    pub old_status: Option<ComponentStatus>,
    /// Its status after the update.
    pub new_status: ComponentStatus,
}

/// An update posted on an incident or maintenance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(as = V2IncidentUpdate)]
pub struct IncidentUpdate {
    /// The update's id.
    pub id: Uuid,
    /// The incident's id.
    pub incident_id: Uuid,
    /// The incident's status as of this update.
    pub status: IncidentStatus,
    /// The message.
    pub body: String,
    /// When it was posted.
    #[serde(serialize_with = "wire::at")]
    pub created_at: OffsetDateTime,
    /// When it was last edited.
    #[serde(serialize_with = "wire::at")]
    pub updated_at: OffsetDateTime,
    /// The time shown for it (may be backdated).
    #[serde(serialize_with = "wire::at")]
    pub display_at: OffsetDateTime,
    /// The components it changed.
    pub affected_components: Vec<AffectedComponent>,
    /// Whether subscribers were told; webhook bodies leave it out (`None`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = bool)]
    pub deliver_notifications: Option<bool>,
}

/// An incident or a scheduled maintenance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(as = V2Incident)]
pub struct Incident {
    /// The incident's id.
    pub id: Uuid,
    /// Its title.
    pub name: String,
    /// Its status now.
    pub status: IncidentStatus,
    /// Its impact, as the reader may know it.
    pub impact: Impact,
    /// When it was created.
    #[serde(serialize_with = "wire::at")]
    pub created_at: OffsetDateTime,
    /// When it last changed.
    #[serde(serialize_with = "wire::at")]
    pub updated_at: OffsetDateTime,
    /// When the trouble began.
    #[serde(serialize_with = "wire::at")]
    pub started_at: OffsetDateTime,
    /// When it entered `monitoring`.
    #[serde(serialize_with = "wire::at_opt")]
    pub monitoring_at: Option<OffsetDateTime>,
    /// When it was resolved (or the maintenance completed).
    #[serde(serialize_with = "wire::at_opt")]
    pub resolved_at: Option<OffsetDateTime>,
    /// Its public URL.
    pub shortlink: String,
    /// The page it is on.
    pub page_id: Uuid,
    /// Its updates, newest first.
    pub incident_updates: Vec<IncidentUpdate>,
    /// The components it concerns, with their status now.
    pub components: Vec<Component>,
    /// A maintenance's planned start; absent on an incident.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "wire::at_opt"
    )]
    pub scheduled_for: Option<OffsetDateTime>,
    /// A maintenance's planned end; absent on an incident.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "wire::at_opt"
    )]
    pub scheduled_until: Option<OffsetDateTime>,
}

/// `GET /api/v2/summary.json`: unresolved incidents, and maintenances
/// upcoming or under way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Summary {
    /// The page.
    pub page: Page,
    /// Its overall status.
    pub status: PageStatus,
    /// Its components and group rows, in page order.
    pub components: Vec<Component>,
    /// Unresolved incidents.
    pub incidents: Vec<Incident>,
    /// Maintenances upcoming or under way.
    pub scheduled_maintenances: Vec<Incident>,
}

/// `GET /api/v2/status.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusDoc {
    /// The page.
    pub page: Page,
    /// Its overall status.
    pub status: PageStatus,
}

/// `GET /api/v2/components.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ComponentsDoc {
    /// The page.
    pub page: Page,
    /// Its components and group rows, in page order.
    pub components: Vec<Component>,
}

/// `GET /api/v2/incidents.json` and `…/incidents/unresolved.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IncidentsDoc {
    /// The page.
    pub page: Page,
    /// The incidents listed.
    pub incidents: Vec<Incident>,
}

/// `GET /api/v2/scheduled-maintenances.json` and its `upcoming` and `active` lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MaintenancesDoc {
    /// The page.
    pub page: Page,
    /// The maintenances listed.
    pub scheduled_maintenances: Vec<Incident>,
}

/// A webhook's body, in Statuspage's envelope: `meta`, `page`, then what
/// happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WebhookBody {
    /// About the notification.
    pub meta: WebhookMeta,
    /// The page it comes from.
    pub page: WebhookPage,
    /// What happened.
    #[serde(flatten)]
    pub event: WebhookEvent,
}

/// A webhook's `meta`: Statuspage's `unsubscribe` and `documentation`, and
/// two fields of ours.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WebhookMeta {
    /// The subscriber's own unsubscribe link.
    pub unsubscribe: String,
    /// Where the payload is documented.
    pub documentation: String,
    /// When the notification was made.
    #[serde(serialize_with = "wire::at")]
    pub generated_at: OffsetDateTime,
    /// The event's name (`incident.created`, `component.updated`, `ping`, …).
    pub event: String,
}

/// A webhook's `page`: Statuspage's `id`, `status_indicator` and
/// `status_description`, plus `name` and `url`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WebhookPage {
    /// The page's id.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// Its public URL, without a trailing slash.
    pub url: String,
    /// Its overall indicator now.
    pub status_indicator: Impact,
    /// The sentence for it.
    pub status_description: String,
}

/// What a webhook announces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum WebhookEvent {
    /// An incident or maintenance event.
    Incident {
        /// The incident as it is after the event.
        incident: Incident,
    },
    /// A component's status change.
    Component {
        /// The change.
        component_update: ComponentUpdate,
        /// The component, with its status now.
        component: Component,
    },
    /// A test notification.
    Ping {
        /// What the test says.
        ping: Ping,
    },
}

/// A webhook's `component_update`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ComponentUpdate {
    /// The change's id.
    pub id: Uuid,
    /// The component's id.
    pub component_id: Uuid,
    /// When it changed.
    #[serde(serialize_with = "wire::at")]
    pub created_at: OffsetDateTime,
    /// Its status before.
    pub old_status: ComponentStatus,
    /// Its status after.
    pub new_status: ComponentStatus,
}

/// A test webhook's `ping`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ping {
    /// The sentence a receiver shows.
    pub message: String,
}

#[cfg(test)]
mod tests;
