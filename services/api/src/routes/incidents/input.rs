//! Reading an incident request body into domain values. The formats of its
//! fields are checked here; what a request may ask for (statuses, windows,
//! backfill) is decided by `heliograph_domain::incident`.

use std::collections::{BTreeMap, HashMap};

use heliograph_domain::incident::{OpeningRequest, SchedulePatch};
use heliograph_domain::{
    ComponentId, ComponentStatus, FieldError, Impact, IncidentStatus, IncidentTemplate, Name,
    NewIncident, TimeZoneName,
};
use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::error::{ApiError, Fields, required};
use crate::input::nullable;

/// `{"incident": {...}}`.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct IncidentEnvelope {
    // Required: a body without it is 422 on the envelope.
    #[schema(required = true, value_type = IncidentInput)]
    pub(super) incident: Option<IncidentInput>,
}

/// An incident's or maintenance's fields (Statuspage's, plus `template_id`
/// and `restore_components`). On update, absent fields stay as they are; a
/// `status`, `body` or `components` posts a new update.
#[derive(Deserialize, Default, utoipa::ToSchema)]
pub(crate) struct IncidentInput {
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub(crate) name: Option<String>,
    #[schema(value_type = Option<IncidentStatus>)]
    pub(crate) status: Option<String>,
    /// The update's text, at most 25,000 characters.
    #[schema(max_length = 25000)]
    pub(crate) body: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Impact>)]
    pub(crate) impact_override: Option<Option<String>>,
    /// New status per component id.
    #[schema(value_type = Option<HashMap<Uuid, ComponentStatus>>)]
    pub(crate) components: Option<HashMap<String, String>>,
    /// Further affected components.
    #[schema(value_type = Option<Vec<Uuid>>)]
    pub(crate) component_ids: Option<Vec<String>>,
    pub(crate) deliver_notifications: Option<bool>,
    /// Makes it a scheduled maintenance (RFC 3339).
    #[schema(format = DateTime)]
    pub(crate) scheduled_for: Option<String>,
    #[schema(format = DateTime)]
    pub(crate) scheduled_until: Option<String>,
    pub(crate) scheduled_remind_prior: Option<bool>,
    pub(crate) scheduled_auto_in_progress: Option<bool>,
    pub(crate) scheduled_auto_completed: Option<bool>,
    /// A past incident entered after the fact, on `backfill_date`.
    pub(crate) backfilled: Option<bool>,
    /// `YYYY-MM-DD`, in the page's time zone.
    #[schema(format = Date)]
    pub(crate) backfill_date: Option<String>,
    /// Free-form, an object of at most 16 KiB.
    #[schema(value_type = Option<Object>)]
    pub(crate) metadata: Option<serde_json::Value>,
    /// On resolving: put the incident's components back to operational.
    pub(crate) restore_components: Option<bool>,
    /// Open the incident from this template (create only).
    #[schema(format = Uuid)]
    pub(crate) template_id: Option<String>,
}

pub(super) const MAX_BODY_CHARS: usize = 25_000;

fn component_id(f: &mut Fields, field: &'static str, raw: &str) -> Option<ComponentId> {
    f.check(
        raw.parse().map_err(|_| {
            FieldError::new(field, "invalid", format!("`{raw}` is not a component id"))
        }),
    )
}

pub(super) fn instant(
    f: &mut Fields,
    field: &'static str,
    raw: Option<&str>,
) -> Option<OffsetDateTime> {
    raw.and_then(|r| {
        f.check(
            OffsetDateTime::parse(r, &Rfc3339)
                .map_err(|_| FieldError::new(field, "invalid", "must be an RFC 3339 time")),
        )
    })
}

/// The parts of a body shared by create and update.
pub(super) struct Common {
    pub(super) status: Option<IncidentStatus>,
    pub(super) body: Option<String>,
    pub(super) impact_override: Option<Option<Impact>>,
    pub(super) components: BTreeMap<ComponentId, ComponentStatus>,
    pub(super) component_ids: Vec<ComponentId>,
    pub(super) scheduled_for: Option<OffsetDateTime>,
    pub(super) scheduled_until: Option<OffsetDateTime>,
    pub(super) metadata: Option<serde_json::Value>,
}

pub(super) fn parse_common(f: &mut Fields, input: &IncidentInput) -> Common {
    let status = input.status.as_deref().and_then(|s| {
        f.check(
            s.parse::<IncidentStatus>()
                .map_err(|e| FieldError::new("status", "invalid", e.to_string())),
        )
    });
    let body = input.body.clone();
    if body
        .as_ref()
        .is_some_and(|b| b.chars().count() > MAX_BODY_CHARS)
    {
        f.push(FieldError::new(
            "body",
            "too_long",
            format!("must be at most {MAX_BODY_CHARS} characters"),
        ));
    }
    let impact_override = input.impact_override.clone().map(|o| {
        o.filter(|i| !i.is_empty()).and_then(|i| {
            f.check(
                i.parse::<Impact>()
                    .map_err(|e| FieldError::new("impact_override", "invalid", e.to_string())),
            )
        })
    });
    let mut components = BTreeMap::new();
    for (id, status) in input.components.clone().unwrap_or_default() {
        let id = component_id(f, "components", &id);
        let status = f.check(
            status
                .parse::<ComponentStatus>()
                .map_err(|e| FieldError::new("components", "invalid", e.to_string())),
        );
        if let (Some(id), Some(status)) = (id, status) {
            components.insert(id, status);
        }
    }
    let component_ids = input
        .component_ids
        .clone()
        .unwrap_or_default()
        .iter()
        .filter_map(|id| component_id(f, "component_ids", id))
        .collect();
    let metadata = input.metadata.clone();
    if metadata.as_ref().is_some_and(|m| !m.is_object()) {
        f.push(FieldError::new("metadata", "invalid", "must be an object"));
    }
    if metadata
        .as_ref()
        .is_some_and(|m| m.to_string().len() > 16 * 1024)
    {
        f.push(FieldError::new(
            "metadata",
            "too_long",
            "must be at most 16 KiB",
        ));
    }
    Common {
        status,
        body,
        impact_override,
        components,
        component_ids,
        scheduled_for: instant(f, "scheduled_for", input.scheduled_for.as_deref()),
        scheduled_until: instant(f, "scheduled_until", input.scheduled_until.as_deref()),
        metadata,
    }
}

pub(super) fn parse_new(
    input: IncidentInput,
    template: Option<&IncidentTemplate>,
    zone: &TimeZoneName,
) -> Result<NewIncident, ApiError> {
    let mut f = Fields::default();
    let c = parse_common(&mut f, &input);
    let name = input
        .name
        .clone()
        .or_else(|| template.map(|t| t.title.clone()));
    let name = f.check(required("name", name).and_then(|n| Name::parse("name", &n, 255)));
    let backfilled = input.backfilled.unwrap_or(false);
    let backfill_date = if backfilled {
        let format = time::macros::format_description!("[year]-[month]-[day]");
        f.check(
            required("backfill_date", input.backfill_date.clone()).and_then(|d| {
                time::Date::parse(&d, format).map_err(|_| {
                    FieldError::new("backfill_date", "invalid", "must be a date, YYYY-MM-DD")
                })
            }),
        )
    } else {
        None
    };
    let request = OpeningRequest {
        status: c.status,
        template_status: template.map(|t| t.update_status),
        window: schedule_patch(&input, &c),
        backfilled,
        backfill_date,
        zone: zone.clone(),
    };
    let shape = match request.judge(OffsetDateTime::now_utc()) {
        Ok(shape) => Some(shape),
        Err(refused) => {
            for e in refused {
                f.push(e);
            }
            None
        }
    };
    let mut component_ids = c.component_ids;
    if let Some(t) = template {
        component_ids.extend(t.component_ids.iter().copied());
    }
    let (Some(name), Some(shape)) = (name, shape) else {
        return Err(f.into_error());
    };
    f.finish()?;
    Ok(NewIncident {
        name,
        status: shape.status,
        body: c
            .body
            .or_else(|| template.map(|t| t.body.clone()))
            .unwrap_or_default(),
        impact_override: c.impact_override.flatten(),
        components: c.components,
        component_ids,
        deliver_notifications: input
            .deliver_notifications
            .or_else(|| template.map(|t| t.should_send_notifications))
            .unwrap_or(true),
        at: shape.at,
        schedule: shape.schedule,
        backfilled,
        metadata: c.metadata.unwrap_or_else(|| serde_json::json!({})),
    })
}

/// The window fields a body names.
pub(super) fn schedule_patch(input: &IncidentInput, c: &Common) -> SchedulePatch {
    SchedulePatch {
        scheduled_for: c.scheduled_for,
        scheduled_until: c.scheduled_until,
        remind_prior: input.scheduled_remind_prior,
        auto_in_progress: input.scheduled_auto_in_progress,
        auto_completed: input.scheduled_auto_completed,
    }
}
