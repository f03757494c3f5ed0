//! A page's notifications on the dashboard: its recent events (incident
//! and maintenance updates, component changes, confirmations, pings),
//! newest first, each with its deliveries counted by state and, for an
//! incident update, a link to that update's delivery proof. Read through
//! the store query `GET /v1/pages/{page_id}/events` uses.

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use heliograph_domain::EventKind;
use heliograph_store::EventSummary;
use serde::Deserialize;

use super::frame::frame_at;
use super::frame::{self, Frame, Section};
use super::incidents::shown;
use crate::error::ApiError;
use crate::page_scope::{AtPage, Viewer};

/// Rows a page shows at once.
const PER_PAGE: i64 = 50;

/// One event's row.
struct Row {
    kind: &'static str,
    /// The incident, maintenance or component it was about.
    subject: Option<String>,
    stamp: String,
    when: String,
    /// `(label, count)` of each state it has deliveries in.
    counts: Vec<(&'static str, i64)>,
    /// Whether fan-out is still creating its deliveries.
    fanning: bool,
    /// The delivery proof of the incident update it announced.
    proof: Option<String>,
}

fn label(kind: Option<EventKind>) -> &'static str {
    match kind {
        Some(EventKind::IncidentCreated) => "Incident opened",
        Some(EventKind::IncidentUpdated) => "Incident updated",
        Some(EventKind::IncidentResolved) => "Incident resolved",
        Some(EventKind::MaintenanceScheduled) => "Maintenance scheduled",
        Some(EventKind::MaintenanceReminder) => "Maintenance reminder",
        Some(EventKind::MaintenanceStarted) => "Maintenance started",
        Some(EventKind::MaintenanceUpdated) => "Maintenance updated",
        Some(EventKind::MaintenanceCompleted) => "Maintenance completed",
        Some(EventKind::ComponentUpdated) => "Component changed",
        Some(EventKind::SubscriptionConfirmation) => "Subscription confirmation",
        Some(EventKind::SubscriptionPing) => "Test ping",
        Some(EventKind::DeliveriesRedriven) => "Dead deliveries sent again",
        None => "Other event",
    }
}

impl Row {
    fn of(page_id: &str, e: &EventSummary) -> Self {
        let id_of = |key: &str| e.payload.0.get(key).and_then(|v| v.as_str());
        let proof = id_of("incident_id")
            .zip(id_of("incident_update_id"))
            .map(|(incident, update)| {
                format!(
                    "/dashboard/pages/{page_id}/incidents/{incident}/incident_updates/{update}/deliveries"
                )
            });
        let counts = [
            ("sent", e.sent),
            ("pending", e.pending),
            ("failed, to retry", e.failed),
            ("dead", e.dead),
            ("skipped", e.skipped),
        ]
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .collect();
        Self {
            kind: label(EventKind::parse(&e.kind)),
            subject: e.subject.clone(),
            stamp: heliograph_web::timestamp(e.created_at),
            when: shown(e.created_at),
            counts,
            fanning: e.fanned_out_at.is_none(),
            proof,
        }
    }
}

/// The notifications page.
#[derive(Template)]
#[template(path = "dashboard/notifications/list.html")]
struct ListView {
    frame: Frame,
    page_id: String,
    rows: Vec<Row>,
    total: i64,
    number: i64,
    pages: i64,
}

/// `?page=N`.
#[derive(Deserialize)]
pub struct Params {
    page: Option<i64>,
}

/// `GET /dashboard/pages/{page_id}/notifications`: the page's events, 50
/// at a time, as `GET /v1/pages/{page_id}/events` lists them.
pub async fn list(
    req: HttpRequest,
    mut at: AtPage<Viewer>,
    params: web::Query<Params>,
) -> Result<HttpResponse, ApiError> {
    let number = params.page.unwrap_or(1).max(1);
    let listed = at
        .tx
        .list_events(at.page.id, PER_PAGE, (number - 1).saturating_mul(PER_PAGE))
        .await?;
    let frame = frame_at(&req, &mut at, Section::Notifications).await?;
    at.tx.commit().await?;
    let page_id = at.page.id.to_string();
    frame::html(
        &frame,
        &ListView {
            frame: frame.clone(),
            rows: listed.items.iter().map(|e| Row::of(&page_id, e)).collect(),
            page_id,
            total: listed.total,
            number,
            pages: ((listed.total + PER_PAGE - 1) / PER_PAGE).max(1),
        },
    )
}
