//! Scheduled maintenance on the dashboard: the list (in progress, scheduled,
//! past) and the form that schedules one, its window typed in the page's
//! time zone.
//!
//! A maintenance is an incident with a window, so the form fills the REST
//! API's own `IncidentInput` (with `scheduled_for` / `scheduled_until` in
//! UTC, converted by `heliograph_domain::local_to_utc`) and opens it
//! through `routes::incidents::open`, as `POST /v1/pages/{page_id}/incidents`
//! does; the maintenance's own page is the incident page.

use crate::dashboard::form::Posted;
use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use heliograph_domain::{
    Component, ComponentStatus, FieldError, Incident, IncidentStatus, TimeZoneName, local_to_utc,
    utc_to_local,
};
use heliograph_store::{IncidentScope, ListQuery};
use serde::Deserialize;
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, PrimitiveDateTime};

use super::form::FormErrors;
use super::frame::{self, Frame, Section, frame_at};
use super::incidents::{Audience, field, shown, ticked};
use crate::error::ApiError;
use crate::page_scope::{AtPage, Editor, Viewer};
use crate::routes::incidents::IncidentInput;

/// Past maintenances shown at once.
const PER_PAGE: i64 = 50;

/// `2026-07-15 10:00`: how a wall-clock time reads.
fn wall(t: PrimitiveDateTime) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]");
    t.format(format).unwrap_or_default()
}

/// A maintenance's window as its page's readers see it, with the UTC
/// equivalent: "2026-07-15 10:00 – 2026-07-15 11:00 Europe/Paris
/// (2026-07-15 08:00 UTC – 2026-07-15 09:00 UTC)".
pub(crate) fn window_text(incident: &Incident, zone: &TimeZoneName) -> Option<String> {
    let (start, end) = incident.scheduled_for.zip(incident.scheduled_until)?;
    Some(format!(
        "{} – {} {zone} ({} – {})",
        wall(utc_to_local(start, zone)),
        wall(utc_to_local(end, zone)),
        shown(start),
        shown(end)
    ))
}

/// The maintenances of a page, by where they stand.
#[derive(Template)]
#[template(path = "dashboard/maintenance/list.html")]
struct List {
    frame: Frame,
    page_id: String,
    zone: TimeZoneName,
    in_progress: Vec<Incident>,
    scheduled: Vec<Incident>,
    past: Vec<Incident>,
    past_total: i64,
    number: i64,
    pages: i64,
}

impl List {
    fn window(&self, i: &Incident) -> String {
        window_text(i, &self.zone).unwrap_or_default()
    }

    fn stamp(i: &Incident) -> String {
        heliograph_web::timestamp(i.scheduled_for.unwrap_or(i.started_at))
    }
}

/// `?page=N` of past maintenances.
#[derive(Deserialize)]
pub struct ListParams {
    page: Option<i64>,
}

fn only(statuses: &[IncidentStatus], limit: i64, offset: i64) -> ListQuery {
    ListQuery {
        q: None,
        statuses: statuses.iter().map(|s| s.as_str().to_owned()).collect(),
        limit,
        offset,
    }
}

/// `GET /dashboard/pages/{page_id}/maintenance`: maintenances in progress,
/// scheduled, and past (50 at a time), read as `GET /v1/…/incidents`
/// reads them.
pub async fn list(
    req: HttpRequest,
    mut at: AtPage<Viewer>,
    params: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    let number = params.page.unwrap_or(1).max(1);
    let page = at.page.id;
    let scope = IncidentScope::Scheduled;
    let in_progress = at
        .tx
        .list_incidents(
            page,
            scope,
            &only(
                &[IncidentStatus::InProgress, IncidentStatus::Verifying],
                PER_PAGE,
                0,
            ),
        )
        .await?;
    let scheduled = at
        .tx
        .list_incidents(
            page,
            scope,
            &only(&[IncidentStatus::Scheduled], PER_PAGE, 0),
        )
        .await?;
    let past = at
        .tx
        .list_incidents(
            page,
            scope,
            &only(
                &[IncidentStatus::Completed],
                PER_PAGE,
                (number - 1).saturating_mul(PER_PAGE),
            ),
        )
        .await?;
    let frame = frame_at(&req, &mut at, Section::Maintenance).await?;
    at.tx.commit().await?;
    frame::html(
        &frame,
        &List {
            frame: frame.clone(),
            page_id: page.to_string(),
            zone: at.page.time_zone.clone(),
            in_progress: in_progress.items,
            scheduled: scheduled.items,
            past: past.items,
            past_total: past.total,
            number,
            pages: ((past.total + PER_PAGE - 1) / PER_PAGE).max(1),
        },
    )
}

/// A component's row in the form: whether the maintenance affects it, and
/// the status it will be in.
struct Affected {
    id: String,
    name: String,
    affected: bool,
    chosen: ComponentStatus,
}

impl Affected {
    fn all(components: &[Component], pairs: &[(String, String)]) -> Vec<Self> {
        components
            .iter()
            .map(|c| {
                let id = c.id.to_string();
                Self {
                    affected: ticked(pairs, &format!("affected.{id}")),
                    chosen: field(pairs, &format!("component.{id}"))
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(ComponentStatus::UnderMaintenance),
                    name: c.name.clone(),
                    id,
                }
            })
            .collect()
    }

    fn options(&self) -> &'static [ComponentStatus] {
        ComponentStatus::ALL
    }
}

/// The form scheduling a maintenance.
#[derive(Template)]
#[template(path = "dashboard/maintenance/new.html")]
struct New {
    frame: Frame,
    errors: FormErrors,
    page_id: String,
    zone: TimeZoneName,
    name: String,
    body: String,
    starts: String,
    ends: String,
    auto_start: bool,
    auto_complete: bool,
    remind: bool,
    notify: bool,
    rows: Vec<Affected>,
    audience: Audience,
}

async fn new_view(
    req: &HttpRequest,
    at: &mut AtPage<Editor>,
    pairs: &[(String, String)],
    errors: FormErrors,
) -> Result<New, ApiError> {
    let components = at.tx.components(at.page.id).await?;
    let audience = Audience::of(&mut at.tx, at.page.id).await?;
    let frame = frame_at(req, at, Section::Maintenance).await?;
    let fresh = pairs.is_empty();
    let text = |key| field(pairs, key).unwrap_or_default().to_owned();
    Ok(New {
        frame,
        errors,
        page_id: at.page.id.to_string(),
        zone: at.page.time_zone.clone(),
        name: text("name"),
        body: text("body"),
        starts: text("scheduled_for"),
        ends: text("scheduled_until"),
        auto_start: fresh || ticked(pairs, "scheduled_auto_in_progress"),
        auto_complete: fresh || ticked(pairs, "scheduled_auto_completed"),
        remind: ticked(pairs, "scheduled_remind_prior"),
        notify: fresh || ticked(pairs, "notify"),
        rows: Affected::all(&components, pairs),
        audience,
    })
}

/// `GET /dashboard/pages/{page_id}/maintenance/new`.
pub async fn new(req: HttpRequest, mut at: AtPage<Editor>) -> Result<HttpResponse, ApiError> {
    let view = new_view(&req, &mut at, &[], FormErrors::none()).await?;
    at.tx.commit().await?;
    frame::html(&view.frame.clone(), &view)
}

/// A `datetime-local` value (`2026-07-15T10:00`, seconds optional) typed in
/// `zone`, as the RFC 3339 UTC instant the API takes; blank is `None` (the
/// domain then says the window is missing).
fn utc_of(
    field_name: &'static str,
    raw: Option<&str>,
    zone: &TimeZoneName,
) -> Result<Option<String>, FieldError> {
    let Some(raw) = raw.map(str::trim).filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    let short = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]");
    let long = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    let local = PrimitiveDateTime::parse(raw, short)
        .or_else(|_| PrimitiveDateTime::parse(raw, long))
        .map_err(|_| {
            FieldError::new(
                field_name,
                "invalid",
                "must be a date and time, YYYY-MM-DDTHH:MM",
            )
        })?;
    let at: OffsetDateTime = local_to_utc(field_name, local, zone)?;
    Ok(at.format(&Rfc3339).ok())
}

/// The API's input for the form: a maintenance (status `scheduled`) with
/// its window in UTC, or the field errors of the window's local times.
fn input_of(
    pairs: &[(String, String)],
    rows: &[Affected],
    zone: &TimeZoneName,
) -> Result<IncidentInput, ApiError> {
    let starts = utc_of("scheduled_for", field(pairs, "scheduled_for"), zone);
    let ends = utc_of("scheduled_until", field(pairs, "scheduled_until"), zone);
    let (scheduled_for, scheduled_until) = match (starts, ends) {
        (Ok(s), Ok(e)) => (s, e),
        (s, e) => {
            return Err(ApiError::Validation(
                [s.err(), e.err()].into_iter().flatten().collect(),
            ));
        }
    };
    let components: HashMap<String, String> = rows
        .iter()
        .filter(|r| r.affected)
        .map(|r| (r.id.clone(), r.chosen.as_str().to_owned()))
        .collect();
    Ok(IncidentInput {
        name: field(pairs, "name").map(str::to_owned),
        status: Some(IncidentStatus::Scheduled.as_str().to_owned()),
        body: field(pairs, "body").map(str::to_owned),
        components: (!components.is_empty()).then_some(components),
        deliver_notifications: Some(ticked(pairs, "notify")),
        scheduled_for,
        scheduled_until,
        scheduled_remind_prior: Some(ticked(pairs, "scheduled_remind_prior")),
        scheduled_auto_in_progress: Some(ticked(pairs, "scheduled_auto_in_progress")),
        scheduled_auto_completed: Some(ticked(pairs, "scheduled_auto_completed")),
        ..IncidentInput::default()
    })
}

/// `POST /dashboard/pages/{page_id}/maintenance`: schedules the maintenance
/// as `POST /v1/pages/{page_id}/incidents` does, then shows its page.
pub async fn create(
    req: HttpRequest,
    mut at: AtPage<Editor>,
    form: Posted<Vec<(String, String)>>,
) -> Result<HttpResponse, ApiError> {
    let pairs = form.into_inner()?;
    let components = at.tx.components(at.page.id).await?;
    let rows = Affected::all(&components, &pairs);
    let opened = match input_of(&pairs, &rows, &at.page.time_zone) {
        Ok(input) => crate::routes::incidents::open(&at.member, &mut at.tx, &at.page, input).await,
        Err(err) => Err(err),
    };
    match opened {
        Ok((incident, _)) => {
            at.tx.commit().await?;
            Ok(frame::done(
                &format!("/dashboard/pages/{}/incidents/{}", at.page.id, incident.id),
                &format!("Maintenance “{}” scheduled.", incident.name),
            ))
        }
        Err(err) => {
            let errors = FormErrors::from_error(err)?;
            let view = new_view(&req, &mut at, &pairs, errors).await?;
            // Not committed: a refusal keeps nothing it may have begun.
            drop(at.tx);
            frame::html_with(StatusCode::UNPROCESSABLE_ENTITY, &view)
        }
    }
}
