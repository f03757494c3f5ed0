//! The delivery log: a page's outbox events and what became of each
//! notification they caused (`/v1/pages/{page_id}/events`, `…/deliveries`
//! and the per-event, per-incident and per-update views), and the redrive
//! of dead letters.
//!
//! Reading needs a viewer, redriving an editor. Every query is scoped to the
//! page (and so to the tenant): an event, incident, update or delivery of
//! another page, another tenant's included, is a 404.

use std::collections::BTreeMap;

use actix_web::{HttpRequest, HttpResponse, web};
/// A delivery's status, as `status` takes it (the document names it here).
pub use heliograph_domain::DeliveryStatus;
use heliograph_domain::{
    Channel, DeliveryAttempt, DeliveryId, DeliveryRecord, EventId, FieldError, IncidentId,
    IncidentUpdateId, PageId,
};
use heliograph_store::{DeliveryFilter, EventSummary, ListQuery, Listed, TenantTx};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use super::incidents::incident_on_page;
use super::path_id;
use super::subscribers::ids_in;
use crate::error::ApiError;
use crate::input::{Input, ListParams, PagingParams, page_headers, paginated};
use crate::openapi::{
    BadRequest, Forbidden, NotFound, TooManyRequests, Unauthorized, UnsupportedMediaType,
    ValidationFailed,
};
use crate::page_scope::{AtPage, Editor, Viewer};
use crate::startup::AppState;

/// Deliveries per status.
#[derive(Debug, Default, Clone, Copy, Serialize, utoipa::ToSchema)]
pub struct DeliveryCounts {
    /// Waiting to be sent (or being sent).
    pub(crate) pending: i64,
    /// Sent.
    pub(crate) sent: i64,
    /// Failed, to be tried again at `next_attempt_at`.
    pub(crate) failed: i64,
    /// Given up: out of attempts, or refused for good. Redrive sends them again.
    pub(crate) dead: i64,
    /// Not sent: the subscriber left before it went out.
    pub(crate) skipped: i64,
}

impl DeliveryCounts {
    fn add(&mut self, status: DeliveryStatus, n: i64) {
        match status {
            DeliveryStatus::Pending => self.pending += n,
            DeliveryStatus::Sent => self.sent += n,
            DeliveryStatus::Failed => self.failed += n,
            DeliveryStatus::Dead => self.dead += n,
            DeliveryStatus::Skipped => self.skipped += n,
        }
    }
}

/// An outbox event with how its deliveries stand.
#[derive(Serialize, utoipa::ToSchema)]
pub struct EventResponse {
    id: Uuid,
    /// `incident.created`, `component.updated`, `subscription.confirmation`, …
    #[schema(value_type = crate::openapi::EventKind)]
    kind: String,
    /// The ids it concerns (`incident_id`, `incident_update_id`,
    /// `component_id`, `subscriber_id`, `delivery_ids`, …); never an address.
    #[schema(value_type = Object)]
    payload: serde_json::Value,
    created_at: String,
    /// When every delivery of it existed; null while fan-out runs.
    fanned_out_at: Option<String>,
    /// Its deliveries per status.
    counts: DeliveryCounts,
}

fn event_response(e: &EventSummary) -> EventResponse {
    EventResponse {
        id: e.id.as_uuid(),
        kind: e.kind.clone(),
        payload: e.payload.0.clone(),
        created_at: heliograph_web::timestamp(e.created_at),
        fanned_out_at: e.fanned_out_at.map(heliograph_web::timestamp),
        counts: DeliveryCounts {
            pending: e.pending,
            sent: e.sent,
            failed: e.failed,
            dead: e.dead,
            skipped: e.skipped,
        },
    }
}

/// A page's events, newest first (viewer).
#[utoipa::path(
    get,
    path = "/v1/pages/{page_id}/events",
    tag = "deliveries",
    operation_id = "list_events",
    security(("bearer" = []), ("oauth" = []), ("cookie" = [])),
    params(("page_id" = Uuid, Path, description = "The page's id."), PagingParams),
    responses(
        crate::openapi::EventList,
        Unauthorized, NotFound, ValidationFailed, TooManyRequests,
    ),
)]
pub async fn events(
    at: AtPage<Viewer>,
    state: web::Data<AppState>,
    req: HttpRequest,
    params: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    let page = at.id();
    let AtPage { mut tx, .. } = at;
    let query = params.plain_query()?;
    if query.q.is_some() {
        return Err(no_search());
    }
    let listed = tx.list_events(page, query.limit, query.offset).await?;
    tx.commit().await?;
    Ok(paginated(
        &req,
        state.urls.origin(),
        &query,
        listed,
        event_response,
    ))
}

fn no_search() -> ApiError {
    ApiError::field(FieldError::new(
        "q",
        "invalid",
        "this list has no text to search",
    ))
}

/// The delivery log's filter beyond `status`: `channel`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ChannelFilter {
    /// Keep only these channels (comma-separated): `email`, `sms`,
    /// `webhook`, `slack`, `teams`.
    #[param(value_type = Option<Vec<Channel>>, style = Form, explode = false)]
    channel: Option<String>,
}

/// The store's filter and slice for a log request: `status` from the list
/// parameters (comma-separated), `channel` from [`ChannelFilter`].
fn log_query(
    params: &ListParams,
    channels: &ChannelFilter,
) -> Result<(ListQuery, DeliveryFilter), ApiError> {
    let query = params.query(str::parse::<DeliveryStatus>, DeliveryStatus::as_str);
    let mut fields = Vec::new();
    let mut wanted = Vec::new();
    for raw in channels
        .channel
        .as_deref()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        match raw.parse::<Channel>() {
            Ok(c) => wanted.push(c),
            Err(e) => fields.push(FieldError::new("channel", "invalid", e.to_string())),
        }
    }
    let query = match query {
        Ok(q) if fields.is_empty() => q,
        Ok(_) => return Err(ApiError::Validation(fields)),
        Err(ApiError::Validation(mut first)) => {
            first.extend(fields);
            return Err(ApiError::Validation(first));
        }
        Err(e) => return Err(e),
    };
    if query.q.is_some() {
        return Err(no_search());
    }
    let filter = DeliveryFilter {
        // Parsed already: the query keeps their stored forms.
        statuses: query
            .statuses
            .iter()
            .filter_map(|s| s.parse().ok())
            .collect(),
        channels: wanted,
        ..DeliveryFilter::default()
    };
    Ok((query, filter))
}

/// One notification to one subscriber over one channel.
#[derive(Serialize, utoipa::ToSchema)]
pub struct DeliveryResponse {
    id: Uuid,
    /// The event it announces.
    event_id: Uuid,
    /// That event's kind.
    #[schema(value_type = crate::openapi::EventKind)]
    event_kind: String,
    /// The recipient.
    subscriber_id: Uuid,
    channel: Channel,
    /// Where it goes: the subscriber's address, number or URL.
    target: Option<String>,
    /// `pending`, `sent`, `failed` (to be retried), `dead` or `skipped`.
    status: DeliveryStatus,
    /// Attempts made (the successful one included).
    attempts: i32,
    /// Why the last attempt failed.
    last_error: Option<String>,
    last_attempt_at: Option<String>,
    /// When a failed delivery is tried again.
    next_attempt_at: Option<String>,
    sent_at: Option<String>,
    created_at: String,
}

fn delivery_response(d: &DeliveryRecord) -> DeliveryResponse {
    DeliveryResponse {
        id: d.id.as_uuid(),
        event_id: d.event_id.as_uuid(),
        event_kind: d.event_kind.clone(),
        subscriber_id: d.subscriber_id.as_uuid(),
        channel: d.channel,
        target: d.target.as_deref().map(|t| d.channel.shown_target(t)),
        status: d.status,
        attempts: d.attempts,
        last_error: d.last_error.clone(),
        last_attempt_at: d.last_attempt_at.map(heliograph_web::timestamp),
        next_attempt_at: d.next_attempt_at.map(heliograph_web::timestamp),
        sent_at: d.sent_at.map(heliograph_web::timestamp),
        created_at: heliograph_web::timestamp(d.created_at),
    }
}

/// One page of a delivery log, with counts over all of it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct DeliveryLog {
    /// Every delivery the filter keeps (not only this page of them), per status.
    counts: DeliveryCounts,
    /// The same per channel (every channel, zeros included).
    by_channel: BTreeMap<String, DeliveryCounts>,
    /// This page of them, oldest first.
    deliveries: Vec<DeliveryResponse>,
}

/// Reads the log `filter` keeps and answers it, with the pagination headers.
async fn answer_log(
    mut tx: TenantTx,
    state: &AppState,
    req: &HttpRequest,
    page: PageId,
    query: &ListQuery,
    filter: &DeliveryFilter,
) -> Result<HttpResponse, ApiError> {
    let (listed, counts, by_channel) = read_log(&mut tx, page, query, filter).await?;
    tx.commit().await?;
    Ok(
        page_headers(req, state.urls.origin(), query, listed.total).json(DeliveryLog {
            counts,
            by_channel,
            deliveries: listed.items.iter().map(delivery_response).collect(),
        }),
    )
}

/// One slice of the deliveries `filter` keeps, with their counts per
/// status over all of them, and the same per channel (every channel, zeros
/// included): what the REST log answers and the dashboard's delivery proof
/// shows.
pub(crate) async fn read_log(
    tx: &mut TenantTx,
    page: PageId,
    query: &ListQuery,
    filter: &DeliveryFilter,
) -> Result<
    (
        Listed<DeliveryRecord>,
        DeliveryCounts,
        BTreeMap<String, DeliveryCounts>,
    ),
    ApiError,
> {
    let listed = tx
        .list_deliveries(page, filter, query.limit, query.offset)
        .await?;
    let counted = tx.count_deliveries(page, filter).await?;
    let mut counts = DeliveryCounts::default();
    let mut by_channel: BTreeMap<String, DeliveryCounts> = Channel::ALL
        .iter()
        .map(|c| (c.as_str().to_owned(), DeliveryCounts::default()))
        .collect();
    for &(status, channel, n) in &counted {
        counts.add(status, n);
        by_channel
            .entry(channel.as_str().to_owned())
            .or_default()
            .add(status, n);
    }
    Ok((listed, counts, by_channel))
}

/// A page's deliveries (viewer); `?status=dead` is the dead-letter list.
#[utoipa::path(
    get,
    path = "/v1/pages/{page_id}/deliveries",
    tag = "deliveries",
    operation_id = "list_deliveries",
    security(("bearer" = []), ("oauth" = []), ("cookie" = [])),
    params(("page_id" = Uuid, Path, description = "The page's id."), PagingParams, ChannelFilter,
        ("status" = Option<Vec<DeliveryStatus>>, Query, style = Form, explode = false,
            description = "Keep only these statuses (comma-separated)."),),
    responses(
        (status = 200, description = "The deliveries, with counts and the pagination headers of a list.", body = DeliveryLog),
        Unauthorized, NotFound, ValidationFailed, TooManyRequests,
    ),
)]
pub async fn list(
    at: AtPage<Viewer>,
    state: web::Data<AppState>,
    req: HttpRequest,
    params: web::Query<ListParams>,
    channels: web::Query<ChannelFilter>,
) -> Result<HttpResponse, ApiError> {
    let page = at.id();
    let AtPage { tx, .. } = at;
    let (query, filter) = log_query(&params, &channels)?;
    answer_log(tx, &state, &req, page, &query, &filter).await
}

/// The deliveries of one event (viewer).
#[utoipa::path(
    get,
    path = "/v1/pages/{page_id}/events/{id}/deliveries",
    tag = "deliveries",
    operation_id = "list_event_deliveries",
    security(("bearer" = []), ("oauth" = []), ("cookie" = [])),
    params(
        ("page_id" = Uuid, Path, description = "The page's id."),
        ("id" = Uuid, Path, description = "The event's id."),
        PagingParams, ChannelFilter,
        ("status" = Option<Vec<DeliveryStatus>>, Query, style = Form, explode = false,
            description = "Keep only these statuses (comma-separated)."),
    ),
    responses(
        (status = 200, description = "The event's deliveries, with counts.", body = DeliveryLog),
        Unauthorized, NotFound, ValidationFailed, TooManyRequests,
    ),
)]
pub async fn event_deliveries(
    at: AtPage<Viewer>,
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    params: web::Query<ListParams>,
    channels: web::Query<ChannelFilter>,
) -> Result<HttpResponse, ApiError> {
    let page = at.id();
    let AtPage { mut tx, .. } = at;
    let event: EventId = path_id(&path.1)?;
    let (query, mut filter) = log_query(&params, &channels)?;
    tx.event_on_page(page, event).await?;
    filter.event = Some(event);
    answer_log(tx, &state, &req, page, &query, &filter).await
}

/// The deliveries of every event of one incident (viewer).
#[utoipa::path(
    get,
    path = "/v1/pages/{page_id}/incidents/{id}/deliveries",
    tag = "deliveries",
    operation_id = "list_incident_deliveries",
    security(("bearer" = []), ("oauth" = []), ("cookie" = [])),
    params(
        ("page_id" = Uuid, Path, description = "The page's id."),
        ("id" = Uuid, Path, description = "The incident's id."),
        PagingParams, ChannelFilter,
        ("status" = Option<Vec<DeliveryStatus>>, Query, style = Form, explode = false,
            description = "Keep only these statuses (comma-separated)."),
    ),
    responses(
        (status = 200, description = "The incident's deliveries, with counts.", body = DeliveryLog),
        Unauthorized, NotFound, ValidationFailed, TooManyRequests,
    ),
)]
pub async fn incident_deliveries(
    at: AtPage<Viewer>,
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    params: web::Query<ListParams>,
    channels: web::Query<ChannelFilter>,
) -> Result<HttpResponse, ApiError> {
    let page = at.id();
    let AtPage { mut tx, .. } = at;
    let incident: IncidentId = path_id(&path.1)?;
    let (query, mut filter) = log_query(&params, &channels)?;
    incident_on_page(&mut tx, page, incident).await?;
    filter.incident = Some(incident);
    answer_log(tx, &state, &req, page, &query, &filter).await
}

/// The deliveries of the events of one incident update (viewer): who was
/// told of it, and how that went.
#[utoipa::path(
    get,
    path = "/v1/pages/{page_id}/incidents/{id}/incident_updates/{update_id}/deliveries",
    tag = "deliveries",
    operation_id = "list_incident_update_deliveries",
    security(("bearer" = []), ("oauth" = []), ("cookie" = [])),
    params(
        ("page_id" = Uuid, Path, description = "The page's id."),
        ("id" = Uuid, Path, description = "The incident's id."),
        ("update_id" = Uuid, Path, description = "The update's id."),
        PagingParams, ChannelFilter,
        ("status" = Option<Vec<DeliveryStatus>>, Query, style = Form, explode = false,
            description = "Keep only these statuses (comma-separated)."),
    ),
    responses(
        (status = 200, description = "The update's deliveries, with counts.", body = DeliveryLog),
        Unauthorized, NotFound, ValidationFailed, TooManyRequests,
    ),
)]
pub async fn update_deliveries(
    at: AtPage<Viewer>,
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String, String)>,
    params: web::Query<ListParams>,
    channels: web::Query<ChannelFilter>,
) -> Result<HttpResponse, ApiError> {
    let page = at.id();
    let AtPage { mut tx, .. } = at;
    let incident: IncidentId = path_id(&path.1)?;
    let update: IncidentUpdateId = path_id(&path.2)?;
    let (query, mut filter) = log_query(&params, &channels)?;
    incident_on_page(&mut tx, page, incident).await?;
    tx.incident_update(incident, update).await?;
    filter.incident_update = Some(update);
    answer_log(tx, &state, &req, page, &query, &filter).await
}

/// A failed attempt of a delivery.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AttemptResponse {
    /// Its number, from 1.
    attempt: i32,
    at: String,
    /// Why it failed.
    error: String,
    /// When the next attempt was due; null when the delivery died of it.
    retry_at: Option<String>,
}

/// One delivery with the log of its failed attempts.
#[derive(Serialize, utoipa::ToSchema)]
pub struct DeliveryDetail {
    id: Uuid,
    event_id: Uuid,
    #[schema(value_type = crate::openapi::EventKind)]
    event_kind: String,
    subscriber_id: Uuid,
    channel: Channel,
    target: Option<String>,
    status: DeliveryStatus,
    /// Attempts made (the successful one included); a redrive starts it
    /// over, while the failed attempts stay in `attempts`.
    attempt_count: i32,
    last_error: Option<String>,
    last_attempt_at: Option<String>,
    next_attempt_at: Option<String>,
    sent_at: Option<String>,
    created_at: String,
    /// Every failed attempt, oldest first (a successful one is `sent_at`).
    attempts: Vec<AttemptResponse>,
}

fn detail(d: &DeliveryRecord, attempts: &[DeliveryAttempt]) -> DeliveryDetail {
    let r = delivery_response(d);
    DeliveryDetail {
        id: r.id,
        event_id: r.event_id,
        event_kind: r.event_kind,
        subscriber_id: r.subscriber_id,
        channel: r.channel,
        target: r.target,
        status: r.status,
        attempt_count: r.attempts,
        last_error: r.last_error,
        last_attempt_at: r.last_attempt_at,
        next_attempt_at: r.next_attempt_at,
        sent_at: r.sent_at,
        created_at: r.created_at,
        attempts: attempts
            .iter()
            .map(|a| AttemptResponse {
                attempt: a.attempt,
                at: heliograph_web::timestamp(a.at),
                error: a.error.clone(),
                retry_at: a.retry_at.map(heliograph_web::timestamp),
            })
            .collect(),
    }
}

/// One delivery, with its failed attempts (viewer).
#[utoipa::path(
    get,
    path = "/v1/pages/{page_id}/deliveries/{id}",
    tag = "deliveries",
    operation_id = "get_delivery",
    security(("bearer" = []), ("oauth" = []), ("cookie" = [])),
    params(
        ("page_id" = Uuid, Path, description = "The page's id."),
        ("id" = Uuid, Path, description = "The delivery's id."),
    ),
    responses(
        (status = 200, description = "The delivery.", body = DeliveryDetail),
        Unauthorized, NotFound, TooManyRequests,
    ),
)]
pub async fn get(
    at: AtPage<Viewer>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let page = at.id();
    let AtPage { mut tx, .. } = at;
    let id: DeliveryId = path_id(&path.1)?;
    let (record, attempts) = tx.delivery_on_page(page, id).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(detail(&record, &attempts)))
}

/// `{"deliveries": [ids]}`.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct RedriveBody {
    /// Dead deliveries to send again, at most 1,000; empty or absent: every
    /// dead delivery of the page, the oldest 1,000 first.
    deliveries: Option<Vec<String>>,
}

/// `{"redriven": [ids]}`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Redriven {
    /// The deliveries now pending again (those named that were not dead, or
    /// not of this page, are left as they are).
    redriven: Vec<Uuid>,
}

/// Most deliveries one redrive takes.
const REDRIVE_LIMIT: i64 = 1000;

/// Sends dead deliveries again (editor): each goes back to `pending` with
/// its attempts counted from zero (its failed attempts stay in the log) and
/// is queued through the outbox (a `deliveries.redriven` event).
#[utoipa::path(
    post,
    path = "/v1/pages/{page_id}/deliveries/redrive",
    tag = "deliveries",
    operation_id = "redrive_deliveries",
    security(("bearer" = []), ("oauth" = []), ("cookie" = [])),
    params(("page_id" = Uuid, Path, description = "The page's id.")),
    request_body(content(
        (RedriveBody = "application/json"),
        (RedriveBody = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 200, description = "The deliveries redriven.", body = Redriven),
        BadRequest, Unauthorized, Forbidden, NotFound, UnsupportedMediaType, ValidationFailed,
        TooManyRequests,
    ),
)]
pub async fn redrive(
    at: AtPage<Editor>,
    body: Input<RedriveBody>,
) -> Result<HttpResponse, ApiError> {
    let page = at.id();
    let AtPage { member, mut tx, .. } = at;
    let ids: Vec<DeliveryId> = ids_in("deliveries", body.0.deliveries)?;
    let redriven = redrive_dead(&member, &mut tx, page, &ids).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(Redriven { redriven }))
}

/// Sends the dead deliveries `ids` of `page` again (every dead one of the
/// page, the oldest 1,000, when `ids` is empty), with the audit entry; the
/// caller commits. Shared by `POST /v1/pages/{page_id}/deliveries/redrive`
/// and the dashboard's "Redrive dead" button.
pub(crate) async fn redrive_dead(
    member: &crate::auth::Member,
    tx: &mut TenantTx,
    page: PageId,
    ids: &[DeliveryId],
) -> Result<Vec<Uuid>, ApiError> {
    let redriven = tx.redrive_deliveries(page, ids, REDRIVE_LIMIT).await?;
    let redriven: Vec<Uuid> = redriven.iter().map(DeliveryId::as_uuid).collect();
    if !redriven.is_empty() {
        tx.audit(&member.audit(
            "deliveries.redriven",
            "page",
            page.as_uuid(),
            json!({"count": redriven.len(), "deliveries": redriven}),
        ))
        .await?;
    }
    Ok(redriven)
}
