//! Liveness and readiness.
//!
//! Also `/metrics`. These probes only report: they change nothing and restart
//! nothing.

use std::time::Duration;

use actix_web::{HttpResponse, web};
use serde::Serialize;

use crate::startup::AppState;

/// How long readiness waits for PostgreSQL (a connection and `select 1`).
const DATABASE_CHECK_TIMEOUT: Duration = Duration::from_secs(2);
/// How long readiness waits for Redis' `PING`: longer than a request's
/// budget, so that a busy Redis does not take the replica out of rotation.
const REDIS_CHECK_TIMEOUT: Duration = Duration::from_secs(1);

/// `{"status": "ok"}`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Health {
    /// Always `ok`.
    status: &'static str,
}

/// Whether the API can serve, and which dependency fails if not.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Readiness {
    /// `ready` or `unavailable`.
    status: &'static str,
    checks: ReadinessChecks,
}

/// Each dependency: `ok` or `unavailable`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ReadinessChecks {
    database: &'static str,
    redis: &'static str,
}

/// The process is alive.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "health",
    operation_id = "healthz",
    responses((status = 200, description = "Alive.", body = Health)),
)]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok" })
}

/// PostgreSQL and Redis both answer.
///
/// 503 names the one that does not. Both are asked at once, each within its
/// own bound, so a frozen dependency delays the answer by 2 s at most.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "health",
    operation_id = "readyz",
    responses(
        (status = 200, description = "Ready.", body = Readiness),
        (status = 503, description = "A dependency does not answer; `checks` says which.", body = Readiness),
    ),
)]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let mut conn = state.redis.clone();
    let ping = redis::cmd("PING");
    let (database, redis) = tokio::join!(
        tokio::time::timeout(DATABASE_CHECK_TIMEOUT, state.store.ping()),
        tokio::time::timeout(REDIS_CHECK_TIMEOUT, ping.query_async::<String>(&mut conn)),
    );
    let database = matches!(database, Ok(Ok(())));
    let redis = matches!(redis, Ok(Ok(_)));
    let word = |ok: bool| if ok { "ok" } else { "unavailable" };
    let body = Readiness {
        status: if database && redis {
            "ready"
        } else {
            "unavailable"
        },
        checks: ReadinessChecks {
            database: word(database),
            redis: word(redis),
        },
    };
    if database && redis {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// `GET /metrics`: Prometheus text. Counters of this process only; no
/// tenant data. Served on `ADMIN_ADDR` when set (and then not on
/// `BIND_ADDR`); keep it off the public internet either way.
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    use std::fmt::Write as _;
    use std::sync::atomic::Ordering;
    let stats = &state.pages.stats;
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    };
    metric(
        "heliograph_db_connection_acquisitions_total",
        "counter",
        "Connections handed out by the database pool (every query takes one).",
        state.store.acquisitions(),
    );
    let memory = state.pages.memory();
    metric(
        "heliograph_rate_limit_local_decisions_total",
        "counter",
        "Rate limit decisions taken in this process because Redis did not answer within REDIS_TIMEOUT_MS.",
        state.limiter.local_decisions(),
    );
    metric(
        "heliograph_page_snapshots",
        "gauge",
        "Public page snapshots held in memory.",
        memory.snapshots as u64,
    );
    metric(
        "heliograph_page_snapshot_bytes",
        "gauge",
        "Bytes the snapshots held hold: documents (gzipped; plain where served so) and an estimate of their data (PAGE_CACHE_MAX_MB at most, but for the page being served).",
        memory.snapshot_bytes as u64,
    );
    metric(
        "heliograph_page_memo_entries",
        "gauge",
        "Incident pages rendered on request and kept (PAGE_CACHE_MEMO_PER_PAGE per page at most).",
        memory.memo.entries as u64,
    );
    metric(
        "heliograph_page_memo_bytes",
        "gauge",
        "Bytes of the incident pages kept (PAGE_CACHE_MEMO_MAX_MB at most).",
        memory.memo.bytes as u64,
    );
    metric(
        "heliograph_page_memo_evictions_total",
        "counter",
        "Incident pages dropped to keep within the memo's bounds.",
        state.pages.memo_evictions(),
    );
    metric(
        "heliograph_page_snapshot_builds_total",
        "counter",
        "Public page snapshots built.",
        stats.builds.load(Ordering::Relaxed),
    );
    metric(
        "heliograph_page_snapshot_build_failures_total",
        "counter",
        "Public page snapshot builds that failed (the previous snapshot kept serving).",
        stats.build_failures.load(Ordering::Relaxed),
    );
    metric(
        "heliograph_page_snapshot_build_microseconds_total",
        "counter",
        "Time spent building public page snapshots (reading and rendering), in microseconds.",
        stats.build_micros.load(Ordering::Relaxed),
    );
    metric(
        "heliograph_page_snapshot_evictions_total",
        "counter",
        "Public page snapshots dropped to keep within PAGE_CACHE_MAX_MB (rebuilt when next read).",
        stats.evictions.load(Ordering::Relaxed),
    );
    metric(
        "heliograph_page_fast_answers_total",
        "counter",
        "Public page requests answered by the fast path, ahead of the middleware stack.",
        stats.fast_answers.load(Ordering::Relaxed),
    );
    metric(
        "heliograph_page_change_reads_total",
        "counter",
        "Reads of which public pages changed (on a nudge and every poll interval), failed ones included.",
        stats.change_reads.load(Ordering::Relaxed),
    );
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(out)
}
