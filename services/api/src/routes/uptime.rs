//! Uptime: per component and per group over a range (Statuspage's shape),
//! and the daily series the public page draws. The formula is in
//! docs/uptime.md and `heliograph_domain::uptime`.

use actix_web::{HttpResponse, web};
use heliograph_domain::uptime::{
    DayUptime, StatusHistory, UptimeRange, UptimeTotals, UptimeWeights, daily_uptime, uptime_totals,
};
use heliograph_domain::uptime_request::{
    group_history_start, history_start, requested_range, series_days, status_history,
};
use heliograph_domain::{
    Component, ComponentId, FieldError, GroupId, Page, TimeZoneName, day_bounds, local_date,
};
use heliograph_store::{ComponentHistory, TenantTx};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::path_id;
use crate::error::{ApiError, Fields};
use crate::openapi::{NotFound, TooManyRequests, Unauthorized, ValidationFailed};
use crate::page_scope::{AtPage, Viewer};

/// `start` and `end`: dates (`YYYY-MM-DD`, whole days in the page's time
/// zone, `end` included) or RFC 3339 instants.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RangeParams {
    /// A date (`YYYY-MM-DD`, from its start in the page's time zone) or an
    /// RFC 3339 time. Default: 90 days before `end`, or the component's
    /// start if later.
    #[param(schema_with = date_or_time)]
    start: Option<String>,
    /// A date (`YYYY-MM-DD`, to its end in the page's time zone) or an
    /// RFC 3339 time. Default: now.
    #[param(schema_with = date_or_time)]
    end: Option<String>,
}

/// The schema of `start` and `end`: a date or an RFC 3339 time.
fn date_or_time() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{AnyOfBuilder, KnownFormat, ObjectBuilder, SchemaFormat, Type};
    let string = |format| {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(format)))
    };
    AnyOfBuilder::new()
        .item(string(KnownFormat::Date))
        .item(string(KnownFormat::DateTime))
        .into()
}

/// Statuspage's component uptime object.
#[derive(Serialize, utoipa::ToSchema)]
pub struct UptimeResponse {
    id: String,
    name: String,
    range_start: String,
    range_end: String,
    /// Null when no time counted (all maintenance, or before the component existed).
    uptime_percentage: Option<f64>,
    /// Seconds in major outage.
    major_outage: i64,
    /// Seconds in partial outage.
    partial_outage: i64,
    /// Seconds in degraded performance (counted as up).
    degraded_performance: i64,
    /// Seconds left out for maintenance.
    under_maintenance: i64,
    warnings: Vec<String>,
    related_events: Vec<RelatedEvent>,
}

/// An incident or maintenance within the range.
#[derive(Serialize, utoipa::ToSchema)]
pub struct RelatedEvent {
    name: String,
    /// The incident's id.
    code: String,
}

fn bound(
    f: &mut Fields,
    field: &'static str,
    raw: &str,
    zone: &TimeZoneName,
    end: bool,
) -> Option<OffsetDateTime> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    if let Ok(date) = time::Date::parse(raw, format) {
        let (a, b) = day_bounds(date, zone);
        return Some(if end { b } else { a });
    }
    f.check(OffsetDateTime::parse(raw, &Rfc3339).map_err(|_| {
        FieldError::new(
            field,
            "invalid",
            "must be a date (YYYY-MM-DD) or an RFC 3339 time",
        )
    }))
}

/// The requested range, with warnings about what was adjusted.
fn range(
    params: &RangeParams,
    zone: &TimeZoneName,
    earliest: OffsetDateTime,
    now: OffsetDateTime,
) -> Result<(UptimeRange, Vec<String>), ApiError> {
    let mut f = Fields::default();
    let end = params
        .end
        .as_deref()
        .and_then(|e| bound(&mut f, "end", e, zone, true));
    let start = params
        .start
        .as_deref()
        .and_then(|s| bound(&mut f, "start", s, zone, false));
    f.finish()?;
    requested_range(start, end, earliest, now).map_err(ApiError::field)
}

/// A component's status history, as the uptime arithmetic takes it.
fn history_of(h: &ComponentHistory, zone: &TimeZoneName) -> StatusHistory {
    status_history(&h.component, &h.changes, zone)
}

fn seconds(ms: i64) -> i64 {
    ms / 1000
}

fn response(
    id: String,
    name: String,
    range: &UptimeRange,
    totals: &UptimeTotals,
    weights: UptimeWeights,
    warnings: Vec<String>,
    related: Vec<(uuid::Uuid, String)>,
) -> UptimeResponse {
    UptimeResponse {
        id,
        name,
        range_start: heliograph_web::timestamp(range.start()),
        range_end: heliograph_web::timestamp(range.end()),
        uptime_percentage: totals
            .percentage(weights)
            .map(|p| (p * 10_000.0).round() / 10_000.0),
        major_outage: seconds(totals.major_outage_ms),
        partial_outage: seconds(totals.partial_outage_ms),
        degraded_performance: seconds(totals.degraded_ms),
        under_maintenance: seconds(totals.maintenance_ms),
        warnings,
        related_events: related
            .into_iter()
            .map(|(code, name)| RelatedEvent {
                name,
                code: code.to_string(),
            })
            .collect(),
    }
}

async fn histories(
    tx: &mut TenantTx,
    ids: &[ComponentId],
    end: OffsetDateTime,
) -> Result<Vec<ComponentHistory>, ApiError> {
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        out.push(tx.component_history(*id, end).await?);
    }
    Ok(out)
}

/// Each component of `page` with its last `days` days (in the page's time
/// zone, oldest first, today up to `now`): what the daily series and the
/// public page's uptime bars show.
pub(crate) async fn page_days(
    tx: &mut TenantTx,
    page: &Page,
    days: u16,
    now: OffsetDateTime,
) -> Result<Vec<(Component, Vec<DayUptime>)>, ApiError> {
    let zone = page.time_zone.clone();
    let last = local_date(now, &zone);
    let first = last - time::Duration::days(i64::from(days) - 1);
    // One read for every component (not one per component), of the window
    // only: a rebuild costs the same with a year of history as with a week.
    let (from, _) = day_bounds(first, &zone);
    let hs = tx.page_histories(page.id, from, now).await?;
    Ok(hs
        .into_iter()
        .map(|h| {
            let days = daily_uptime(
                &history_of(&h, &zone),
                &zone,
                first,
                last,
                &h.maintenance,
                now,
            );
            (h.component, days)
        })
        .collect())
}

/// A component's uptime over a range (viewer).
///
/// The formula is in docs/uptime.md.
#[utoipa::path(
    get,
    path = "/v1/pages/{page_id}/components/{id}/uptime",
    tag = "uptime",
    operation_id = "get_component_uptime",
    security(("bearer" = []), ("oauth" = []), ("cookie" = [])),
    params(
        ("page_id" = uuid::Uuid, Path, description = "The page's id."),
        ("id" = uuid::Uuid, Path, description = "The component's id."),
        RangeParams,
    ),
    responses(
        (status = 200, description = "The uptime.", body = UptimeResponse),
        Unauthorized, NotFound, ValidationFailed, TooManyRequests,
    ),
)]
pub async fn component(
    at: AtPage<Viewer>,
    path: web::Path<(String, String)>,
    params: web::Query<RangeParams>,
) -> Result<HttpResponse, ApiError> {
    let AtPage { mut tx, page, .. } = at;
    let id: ComponentId = path_id(&path.1)?;
    let now = OffsetDateTime::now_utc();
    let h = tx.component_history(id, now).await?;
    if h.component.page_id != page.id {
        return Err(ApiError::NotFound);
    }
    let zone = page.time_zone.clone();
    let (range, warnings) = range(&params, &zone, history_start(&h.component, &zone), now)?;
    let related = tx.component_events(id, range.start(), range.end()).await?;
    tx.commit().await?;
    let totals = uptime_totals(
        &history_of(&h, &zone),
        range.start(),
        range.end(),
        &h.maintenance,
    );
    Ok(HttpResponse::Ok().json(response(
        h.component.id.to_string(),
        h.component.name.clone(),
        &range,
        &totals,
        UptimeWeights {
            partial_outage: page.uptime_partial_weight,
        },
        warnings,
        related,
    )))
}

/// A component group's uptime over a range (viewer).
///
/// The members' totals added up, so each weighs by the time it counted.
#[utoipa::path(
    get,
    path = "/v1/pages/{page_id}/component-groups/{id}/uptime",
    tag = "uptime",
    operation_id = "get_component_group_uptime",
    security(("bearer" = []), ("oauth" = []), ("cookie" = [])),
    params(
        ("page_id" = uuid::Uuid, Path, description = "The page's id."),
        ("id" = uuid::Uuid, Path, description = "The group's id."),
        RangeParams,
    ),
    responses(
        (status = 200, description = "The uptime.", body = UptimeResponse),
        Unauthorized, NotFound, ValidationFailed, TooManyRequests,
    ),
)]
pub async fn group(
    at: AtPage<Viewer>,
    path: web::Path<(String, String)>,
    params: web::Query<RangeParams>,
) -> Result<HttpResponse, ApiError> {
    let AtPage { mut tx, page, .. } = at;
    let id: GroupId = path_id(&path.1)?;
    let now = OffsetDateTime::now_utc();
    let g = tx.component_group(id).await?;
    if g.page_id != page.id {
        return Err(ApiError::NotFound);
    }
    let members = tx.group_members(id).await?;
    let hs = histories(&mut tx, &members, now).await?;
    let zone = page.time_zone.clone();
    let earliest = group_history_start(
        hs.iter().map(|h| history_start(&h.component, &zone)),
        g.created_at,
    );
    let (range, warnings) = range(&params, &zone, earliest, now)?;
    let mut related = Vec::new();
    for m in &members {
        for event in tx.component_events(*m, range.start(), range.end()).await? {
            if !related.contains(&event) {
                related.push(event);
            }
        }
    }
    tx.commit().await?;
    let totals: UptimeTotals = hs
        .iter()
        .map(|h| {
            uptime_totals(
                &history_of(h, &zone),
                range.start(),
                range.end(),
                &h.maintenance,
            )
        })
        .sum();
    Ok(HttpResponse::Ok().json(response(
        g.id.to_string(),
        g.name.clone(),
        &range,
        &totals,
        UptimeWeights {
            partial_outage: page.uptime_partial_weight,
        },
        warnings,
        related,
    )))
}

/// `days` of the daily series.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DaysParams {
    /// How many days back from today (in the page's time zone), 1 to 366; default 90.
    #[param(minimum = 1, maximum = 366)]
    days: Option<u16>,
}

/// One component's daily series.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ComponentDays {
    id: String,
    name: String,
    days: Vec<Day>,
}

/// One day of a component.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Day {
    /// `YYYY-MM-DD` in the page's time zone.
    date: String,
    /// Null when no time counted that day.
    uptime_percentage: Option<f64>,
    major_outage: i64,
    partial_outage: i64,
}

/// The daily series of every component of a page.
#[derive(Serialize, utoipa::ToSchema)]
pub struct DailyUptime {
    page_id: String,
    time_zone: String,
    components: Vec<ComponentDays>,
}

/// A page's daily uptime series (viewer).
///
/// Per component, one entry per day (90 by default), as the public page's
/// uptime bars show.
#[utoipa::path(
    get,
    path = "/v1/pages/{page_id}/uptime",
    tag = "uptime",
    operation_id = "get_page_uptime",
    security(("bearer" = []), ("oauth" = []), ("cookie" = [])),
    params(("page_id" = uuid::Uuid, Path, description = "The page's id."), DaysParams),
    responses(
        (status = 200, description = "The series.", body = DailyUptime),
        Unauthorized, NotFound, ValidationFailed, TooManyRequests,
    ),
)]
pub async fn daily(
    at: AtPage<Viewer>,
    params: web::Query<DaysParams>,
) -> Result<HttpResponse, ApiError> {
    let AtPage { mut tx, page, .. } = at;
    let days = series_days("days", params.days).map_err(ApiError::field)?;
    let now = OffsetDateTime::now_utc();
    let zone = page.time_zone.clone();
    let per_component = page_days(&mut tx, &page, days, now).await?;
    tx.commit().await?;
    let weights = UptimeWeights {
        partial_outage: page.uptime_partial_weight,
    };
    let components = per_component
        .into_iter()
        .map(|(component, days)| ComponentDays {
            id: component.id.to_string(),
            name: component.name,
            days: days
                .into_iter()
                .map(|d| Day {
                    date: d.date.to_string(),
                    uptime_percentage: d
                        .totals
                        .percentage(weights)
                        .map(|p| (p * 100.0).round() / 100.0),
                    major_outage: seconds(d.totals.major_outage_ms),
                    partial_outage: seconds(d.totals.partial_outage_ms),
                })
                .collect(),
        })
        .collect();
    Ok(HttpResponse::Ok().json(DailyUptime {
        page_id: page.id.to_string(),
        time_zone: zone.to_string(),
        components,
    }))
}
