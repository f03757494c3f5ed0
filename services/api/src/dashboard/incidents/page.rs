//! An incident's own page: its state, the form that posts an update (or
//! resolves it, restoring its components), the history of its updates
//! newest first, each with its text correction and its delivery proof, and
//! its deletion.

use crate::dashboard::form::Posted;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use heliograph_domain::{Incident, IncidentStatus, IncidentUpdate, IncidentUpdateId};
use time::OffsetDateTime;

use super::{Audience, ComponentRow, field, input_of, posted_message, shown, ticked};
use crate::dashboard::form::FormErrors;
use crate::dashboard::frame::{self, Frame, Section, frame_at};
use crate::error::ApiError;
use crate::page_scope::{Admin, AtPage, Editor, Needs, Viewer};
use crate::routes::incidents::{IncidentUpdateInput, change, correct_update, incident_at, remove};
use crate::routes::path_id;
use crate::startup::AppState;

/// An incident's page.
#[derive(Template)]
#[template(path = "dashboard/incidents/show.html")]
pub(crate) struct Show {
    frame: Frame,
    errors: FormErrors,
    base: String,
    incident: Incident,
    updates: Vec<IncidentUpdate>,
    status: IncidentStatus,
    body: String,
    notify: bool,
    restore: bool,
    rows: Vec<ComponentRow>,
    audience: Audience,
    /// A maintenance's window, in the page's zone and in UTC.
    window: Option<String>,
    /// The postmortem text in its form: as typed, or as saved.
    draft: String,
}

impl Show {
    /// The statuses it may move to, in their usual order.
    fn statuses(&self) -> Vec<IncidentStatus> {
        IncidentStatus::ALL
            .iter()
            .copied()
            .filter(|s| *s != IncidentStatus::Postmortem)
            .filter(|s| s.is_maintenance() == self.incident.is_maintenance())
            .filter(|s| self.incident.status.can_move_to(*s))
            .collect()
    }

    /// The postmortem's lines, shown with line breaks as the public page
    /// shows them.
    fn postmortem_lines(&self) -> Vec<&str> {
        self.incident
            .postmortem_body
            .as_deref()
            .map(|b| b.lines().collect())
            .unwrap_or_default()
    }

    fn tone(&self) -> &'static str {
        heliograph_domain::incident_tone(self.incident.status, self.incident.impact)
    }

    fn when(t: &OffsetDateTime) -> String {
        shown(*t)
    }

    fn stamp(t: &OffsetDateTime) -> String {
        heliograph_web::timestamp(*t)
    }
}

pub(crate) async fn show_view<R: Needs>(
    state: &AppState,
    req: &HttpRequest,
    at: &mut AtPage<R>,
    incident: Incident,
    pairs: &[(String, String)],
    errors: FormErrors,
) -> Result<Show, ApiError> {
    let components = at.tx.components(at.page.id).await?;
    let mut updates = at.tx.incident_updates(&[incident.id]).await?;
    updates.sort_by(|a, b| {
        b.display_at
            .cmp(&a.display_at)
            .then(b.created_at.cmp(&a.created_at))
    });
    let audience = Audience::of(&mut at.tx, at.page.id).await?;
    let frame = Frame::load(
        state,
        req,
        &at.member,
        &mut at.tx,
        Some(&at.page),
        if incident.is_maintenance() {
            Section::Maintenance
        } else {
            Section::Incidents
        },
    )
    .await?;
    Ok(Show {
        frame,
        errors,
        base: format!("/dashboard/pages/{}/incidents/{}", at.page.id, incident.id),
        status: field(pairs, "status")
            .and_then(|s| s.parse().ok())
            .unwrap_or(incident.status),
        body: field(pairs, "body").unwrap_or_default().to_owned(),
        notify: pairs.is_empty() || ticked(pairs, "notify"),
        restore: pairs.is_empty() || ticked(pairs, "restore_components"),
        rows: ComponentRow::all(&components, pairs),
        window: crate::dashboard::maintenance::window_text(&incident, &at.page.time_zone),
        draft: field(pairs, "body_draft").map_or_else(
            || incident.postmortem_body.clone().unwrap_or_default(),
            str::to_owned,
        ),
        incident,
        updates,
        audience,
    })
}

/// `GET /dashboard/pages/{page_id}/incidents/{id}`.
pub async fn show(
    req: HttpRequest,
    state: web::Data<AppState>,
    mut at: AtPage<Viewer>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let incident = incident_at(&mut at, &path.1).await?;
    let view = show_view(&state, &req, &mut at, incident, &[], FormErrors::none()).await?;
    at.tx.commit().await?;
    frame::html(&view.frame.clone(), &view)
}

/// `POST /dashboard/pages/{page_id}/incidents/{id}`: posts an update (or
/// resolves) as `PATCH /v1/pages/{page_id}/incidents/{id}` does.
pub async fn post_update(
    req: HttpRequest,
    state: web::Data<AppState>,
    mut at: AtPage<Editor>,
    path: web::Path<(String, String)>,
    form: Posted<Vec<(String, String)>>,
) -> Result<HttpResponse, ApiError> {
    let pairs = form.into_inner()?;
    let current = incident_at(&mut at, &path.1).await?;
    let components = at.tx.components(at.page.id).await?;
    let rows = ComponentRow::all(&components, &pairs);
    let mut input = input_of(&pairs, &rows);
    // Restoring applies to resolving only; the box is ticked by default.
    if input.status.as_deref() != Some(IncidentStatus::Resolved.as_str()) {
        input.restore_components = None;
    }
    let notify = ticked(&pairs, "notify");
    match change(&at.member, &mut at.tx, &current, input).await {
        Ok((incident, update)) => {
            let audience = Audience::of(&mut at.tx, at.page.id).await?;
            at.tx.commit().await?;
            let base = format!("/dashboard/pages/{}/incidents/{}", at.page.id, incident.id);
            let location = update.map_or_else(
                || base.clone(),
                |u| format!("{base}/incident_updates/{}/deliveries", u.id),
            );
            Ok(frame::done(&location, &posted_message(&audience, notify)))
        }
        Err(err) => {
            let errors = FormErrors::from_error(err)?;
            let view = show_view(&state, &req, &mut at, current, &pairs, errors).await?;
            // Not committed: a refusal keeps nothing it may have begun.
            drop(at.tx);
            frame::html_with(StatusCode::UNPROCESSABLE_ENTITY, &view)
        }
    }
}

/// `POST /dashboard/pages/{page_id}/incidents/{id}/delete`: as
/// `DELETE /v1/pages/{page_id}/incidents/{id}`.
pub async fn delete(
    mut at: AtPage<Admin>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let incident = incident_at(&mut at, &path.1).await?;
    remove(&at.member, &mut at.tx, incident.id).await?;
    at.tx.commit().await?;
    Ok(frame::done(
        &format!("/dashboard/pages/{}/incidents", at.page.id),
        &format!("Incident “{}” deleted.", incident.name),
    ))
}

/// The form correcting an update's text.
#[derive(Template)]
#[template(path = "dashboard/incidents/edit_update.html")]
struct EditUpdate {
    frame: Frame,
    errors: FormErrors,
    base: String,
    incident: Incident,
    update: IncidentUpdate,
    body: String,
}

async fn edit_view(
    req: &HttpRequest,
    at: &mut AtPage<Editor>,
    path: &(String, String, String),
    body: Option<String>,
    errors: FormErrors,
) -> Result<EditUpdate, ApiError> {
    let incident = incident_at(at, &path.1).await?;
    let update_id: IncidentUpdateId = path_id(&path.2)?;
    let update = at.tx.incident_update(incident.id, update_id).await?;
    let frame = frame_at(req, at, Section::Incidents).await?;
    Ok(EditUpdate {
        frame,
        errors,
        base: format!("/dashboard/pages/{}/incidents/{}", at.page.id, incident.id),
        body: body.unwrap_or_else(|| update.body.clone()),
        incident,
        update,
    })
}

/// `GET …/incidents/{id}/incident_updates/{update_id}/edit`.
pub async fn edit_update(
    req: HttpRequest,
    mut at: AtPage<Editor>,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    let view = edit_view(&req, &mut at, &path, None, FormErrors::none()).await?;
    at.tx.commit().await?;
    frame::html(&view.frame.clone(), &view)
}

/// `POST …/incidents/{id}/incident_updates/{update_id}`: corrects the text
/// as `PATCH /v1/…/incident_updates/{update_id}` does (nobody is told again).
pub async fn save_update(
    req: HttpRequest,
    mut at: AtPage<Editor>,
    path: web::Path<(String, String, String)>,
    form: Posted<Vec<(String, String)>>,
) -> Result<HttpResponse, ApiError> {
    let form = form.into_inner()?;
    let body = field(&form, "body").unwrap_or_default().to_owned();
    let incident = incident_at(&mut at, &path.1).await?;
    let update_id: IncidentUpdateId = path_id(&path.2)?;
    let input = IncidentUpdateInput {
        body: Some(body.clone()),
        display_at: None,
        deliver_notifications: None,
    };
    match correct_update(&at.member, &mut at.tx, incident.id, update_id, Some(input)).await {
        Ok(_) => {
            at.tx.commit().await?;
            Ok(frame::done(
                &format!("/dashboard/pages/{}/incidents/{}", at.page.id, incident.id),
                "Update corrected. Nobody is told again.",
            ))
        }
        Err(err) => {
            let errors = FormErrors::from_error(err)?;
            let view = edit_view(&req, &mut at, &path, Some(body), errors).await?;
            drop(at.tx);
            frame::html_with(StatusCode::UNPROCESSABLE_ENTITY, &view)
        }
    }
}
