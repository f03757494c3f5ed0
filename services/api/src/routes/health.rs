//! Liveness and readiness.

use std::time::Duration;

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::startup::AppState;

const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// `GET /healthz`: the process is alive.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// `GET /readyz`: PostgreSQL and Redis both answer; 503 naming the one that does not.
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let database = matches!(
        tokio::time::timeout(CHECK_TIMEOUT, state.store.ping()).await,
        Ok(Ok(()))
    );
    let mut conn = state.redis.clone();
    let redis = matches!(
        tokio::time::timeout(
            CHECK_TIMEOUT,
            redis::cmd("PING").query_async::<String>(&mut conn)
        )
        .await,
        Ok(Ok(_))
    );
    let word = |ok: bool| if ok { "ok" } else { "unavailable" };
    let body = json!({
        "status": if database && redis { "ready" } else { "unavailable" },
        "checks": { "database": word(database), "redis": word(redis) },
    });
    if database && redis {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
