//! Delivery proof: who was told of an incident update and how that went
//! (counts by state, then each recipient, masked as the API masks them,
//! with state, attempts and last error), and the redrive of its dead
//! deliveries. Read and redriven through `routes::deliveries`.

use crate::dashboard::form::Posted;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use heliograph_domain::{
    DeliveryId, DeliveryRecord, DeliveryStatus, IncidentId, IncidentUpdate, IncidentUpdateId,
};
use heliograph_store::{DeliveryFilter, ListQuery};
use serde::Deserialize;

use super::{PER_PAGE, field};
use crate::dashboard::frame::{self, Frame, Section, frame_at};
use crate::error::ApiError;
use crate::page_scope::{AtPage, Editor, Viewer};
use crate::routes::deliveries::{DeliveryCounts, read_log, redrive_dead};
use crate::routes::incidents::{incident_at, incident_on_page};
use crate::routes::path_id;

/// One recipient's row.
struct Recipient {
    channel: &'static str,
    target: String,
    status: DeliveryStatus,
    attempts: i32,
    last_error: String,
}

impl Recipient {
    fn of(d: &DeliveryRecord) -> Self {
        Self {
            channel: d.channel.as_str(),
            target: d
                .target
                .as_deref()
                .map(|t| d.channel.shown_target(t))
                .unwrap_or_else(|| "(gone)".to_owned()),
            status: d.status,
            attempts: d.attempts,
            last_error: d.last_error.clone().unwrap_or_default(),
        }
    }

    fn tone(&self) -> &'static str {
        match self.status {
            DeliveryStatus::Sent => "ok",
            DeliveryStatus::Pending | DeliveryStatus::Skipped => "neutral",
            DeliveryStatus::Failed => "minor",
            DeliveryStatus::Dead => "critical",
        }
    }
}

/// The delivery proof of an update.
#[derive(Template)]
#[template(path = "dashboard/incidents/deliveries.html")]
struct Proof {
    frame: Frame,
    base: String,
    page_id: String,
    incident_id: String,
    incident_name: String,
    update: IncidentUpdate,
    counts: DeliveryCounts,
    total: i64,
    recipients: Vec<Recipient>,
    number: i64,
    pages: i64,
}

impl Proof {
    fn counted(&self) -> [(&'static str, i64); 5] {
        [
            ("Sent", self.counts.sent),
            ("Pending", self.counts.pending),
            ("Failed, to retry", self.counts.failed),
            ("Dead", self.counts.dead),
            ("Skipped", self.counts.skipped),
        ]
    }
}

/// `?page=N`.
#[derive(Deserialize)]
pub struct ProofParams {
    page: Option<i64>,
}

/// `GET …/incidents/{id}/incident_updates/{update_id}/deliveries`: as
/// `GET /v1/…/incident_updates/{update_id}/deliveries` reads it.
pub async fn deliveries(
    req: HttpRequest,
    mut at: AtPage<Viewer>,
    path: web::Path<(String, String, String)>,
    params: web::Query<ProofParams>,
) -> Result<HttpResponse, ApiError> {
    let incident = incident_at(&mut at, &path.1).await?;
    let update_id: IncidentUpdateId = path_id(&path.2)?;
    let update = at.tx.incident_update(incident.id, update_id).await?;
    let number = params.page.unwrap_or(1).max(1);
    let query = ListQuery {
        limit: PER_PAGE,
        offset: (number - 1).saturating_mul(PER_PAGE),
        ..ListQuery::all()
    };
    let filter = DeliveryFilter {
        incident_update: Some(update_id),
        ..DeliveryFilter::default()
    };
    let (listed, counts, _) = read_log(&mut at.tx, at.page.id, &query, &filter).await?;
    let frame = frame_at(&req, &mut at, Section::Notifications).await?;
    at.tx.commit().await?;
    let total = counts.pending + counts.sent + counts.failed + counts.dead + counts.skipped;
    let view = Proof {
        frame: frame.clone(),
        base: format!("/dashboard/pages/{}/incidents/{}", at.page.id, incident.id),
        page_id: at.page.id.to_string(),
        incident_id: incident.id.to_string(),
        incident_name: incident.name,
        update,
        counts,
        total,
        recipients: listed.items.iter().map(Recipient::of).collect(),
        number,
        pages: ((listed.total + PER_PAGE - 1) / PER_PAGE).max(1),
    };
    frame::html(&frame, &view)
}

/// `POST /dashboard/pages/{page_id}/deliveries/redrive`: sends the dead
/// deliveries of the update named in the form again, as
/// `POST /v1/pages/{page_id}/deliveries/redrive` does with their ids.
pub async fn redrive(
    mut at: AtPage<Editor>,
    form: Posted<Vec<(String, String)>>,
) -> Result<HttpResponse, ApiError> {
    let form = form.into_inner()?;
    let incident: IncidentId = path_id(field(&form, "incident_id").unwrap_or_default())?;
    let update: IncidentUpdateId = path_id(field(&form, "update_id").unwrap_or_default())?;
    incident_on_page(&mut at.tx, at.page.id, incident).await?;
    at.tx.incident_update(incident, update).await?;
    let filter = DeliveryFilter {
        incident_update: Some(update),
        statuses: vec![DeliveryStatus::Dead],
        ..DeliveryFilter::default()
    };
    let query = ListQuery {
        limit: 1000,
        ..ListQuery::all()
    };
    let (dead, _, _) = read_log(&mut at.tx, at.page.id, &query, &filter).await?;
    let ids: Vec<DeliveryId> = dead.items.iter().map(|d| d.id).collect();
    // No ids would mean every dead delivery of the page: only this update's.
    let redriven = if ids.is_empty() {
        Vec::new()
    } else {
        redrive_dead(&at.member, &mut at.tx, at.page.id, &ids).await?
    };
    at.tx.commit().await?;
    Ok(frame::done(
        &format!(
            "/dashboard/pages/{}/incidents/{incident}/incident_updates/{update}/deliveries",
            at.page.id
        ),
        &format!("{} dead deliveries sent again.", redriven.len()),
    ))
}
