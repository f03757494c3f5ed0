//! Dependencies that hang rather than refuse: PostgreSQL and Redis servers of
//! the test's own, frozen with SIGSTOP (as a partition or an overloaded
//! server looks) and thawed again. Nothing is refused then; only our own time
//! budgets notice.
//!
//! Bounds here are conditions with a generous timeout, not benchmarks: each
//! is several times what the answer takes on a loaded machine, and a fraction
//! of what it took before the budgets (two 5 s Redis waits per API request;
//! a 5 s pool wait, then 500).

use std::future::Future;
use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use heliograph_api::Application;
use heliograph_testkit::{ScratchPostgres, ScratchRedis};
use redis::AsyncCommands;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Infra, TestApp, unique_ip};

/// What an API request may take while Redis is frozen: its budget is
/// 100 ms (`REDIS_TIMEOUT_MS`); before, a request waited 10 s.
const REDIS_FROZEN_BOUND: Duration = Duration::from_secs(3);

/// What a request may take to be refused while PostgreSQL is frozen: the
/// pool's acquire timeout is 2 s (`DATABASE_ACQUIRE_TIMEOUT_MS`).
const POSTGRES_FROZEN_BOUND: Duration = Duration::from_secs(10);

/// `fut`'s output, failing the test if it takes longer than `bound`.
async fn within<T>(
    what: impl std::fmt::Display,
    bound: Duration,
    fut: impl Future<Output = T>,
) -> T {
    let started = Instant::now();
    let out = tokio::time::timeout(bound, fut)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within {bound:?}"));
    eprintln!("{what}: answered in {:?}", started.elapsed());
    out
}

/// Sends a request from client address `ip`; answers status, `Retry-After` and body.
async fn call_from(
    app: &TestApp,
    base: &str,
    ip: &str,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> (StatusCode, Option<String>, Value) {
    let mut request = app
        .client
        .request(method, format!("{base}{path}"))
        .header("x-forwarded-for", ip);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.expect("the API answers");
    let status = response.status();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (
        status,
        retry_after,
        response.json().await.unwrap_or(Value::Null),
    )
}

/// The Redis key the API counts requests from `ip` under (its /64).
fn api_ip_key(ip: &str) -> String {
    let s = ip.parse::<Ipv6Addr>().expect("an IPv6 address").segments();
    format!(
        "heliograph:rl:api-ip:{:x}:{:x}:{:x}:{:x}::/64",
        s[0], s[1], s[2], s[3]
    )
}

fn incident(component: &str, name: &str) -> Value {
    json!({"incident": {
        "name": name, "status": "investigating", "body": "Looking into it.",
        "components": {component: "major_outage"},
    }})
}

#[tokio::test]
async fn with_redis_frozen_api_calls_answer_within_a_short_budget_and_limits_still_refuse() {
    let mut redis = ScratchRedis::start();
    let app = TestApp::spawn_on(Infra {
        redis_url: Some(redis.url()),
        ..Infra::default()
    })
    .await;
    let t = app.signup().await;
    let api = app.component(&t, "API").await;
    let root = format!("/status/{}", t.slug);
    let ip = unique_ip();
    let base = app.address.clone();
    assert_eq!(
        app.get(&format!("{root}/"), None).await.status(),
        StatusCode::OK
    );

    redis.freeze();
    let (status, _, body) = within(
        "opening an incident with Redis frozen",
        REDIS_FROZEN_BOUND,
        call_from(
            &app,
            &base,
            &ip,
            Method::POST,
            &format!("/v1/pages/{}/incidents", t.page_id),
            Some(&t.token),
            Some(&incident(&api, "Frozen cache")),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    for (method, path, body) in [
        (
            Method::GET,
            format!("/v1/pages/{}/incidents", t.page_id),
            None,
        ),
        (
            Method::PATCH,
            format!("/v1/pages/{}/components/{api}", t.page_id),
            Some(json!({"component": {"status": "partial_outage"}})),
        ),
        (Method::GET, "/v1/me".to_owned(), None),
    ] {
        let (status, _, answer) = within(
            &format!("{method} {path} with Redis frozen"),
            REDIS_FROZEN_BOUND,
            call_from(
                &app,
                &base,
                &ip,
                method.clone(),
                &path,
                Some(&t.token),
                body.as_ref(),
            ),
        )
        .await;
        assert!(status.is_success(), "{method} {path}: {status} {answer}");
    }
    // The change shows on this replica's public page: the nudge to the
    // others waits in the background.
    app.public_json(&format!("{root}/api/v2/summary.json"), None, |s| {
        s["components"][0]["status"] == "partial_outage"
    })
    .await;

    // The limits still hold, counted in this process: ten wrong passwords
    // from one address for one account, then 429.
    let attacker = unique_ip();
    let guess = json!({"email": t.email, "password": "guess-guess-guess"});
    let sign_in = |n: usize| {
        within(
            format!("sign-in guess {n} with Redis frozen"),
            REDIS_FROZEN_BOUND,
            call_from(
                &app,
                &base,
                &attacker,
                Method::POST,
                "/v1/sessions",
                None,
                Some(&guess),
            ),
        )
    };
    for n in 1..=10 {
        let (status, _, _) = sign_in(n).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "guess {n}");
    }
    let (status, retry_after, body) = sign_in(11).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"]["code"], "rate_limited");
    let wait: u64 = retry_after
        .expect("a Retry-After")
        .parse()
        .expect("whole seconds");
    assert!((1..=60).contains(&wait), "{wait}");

    let ready = within(
        "/readyz with Redis frozen",
        REDIS_FROZEN_BOUND,
        app.get("/readyz", None),
    )
    .await;
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let ready: Value = ready.json().await.unwrap();
    assert_eq!(ready["checks"]["redis"], "unavailable", "{ready}");
    assert_eq!(ready["checks"]["database"], "ok", "{ready}");

    redis.thaw();
    // Back without a restart: requests are counted in Redis again, one per
    // request (three in a row, so no late write from the frozen time counts).
    let mut conn = redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .expect("Redis answers after the thaw");
    let key = api_ip_key(&ip);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut in_a_row = 0;
    while in_a_row < 3 {
        assert!(
            Instant::now() < deadline,
            "requests are not counted in Redis again"
        );
        let before: Option<u64> = conn.get(&key).await.unwrap();
        let (status, _, body) = call_from(
            &app,
            &base,
            &ip,
            Method::GET,
            "/v1/me",
            Some(&t.token),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let after: Option<u64> = conn.get(&key).await.unwrap();
        in_a_row = if after == Some(before.unwrap_or(0) + 1) {
            in_a_row + 1
        } else {
            0
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ready = app.get("/readyz", None).await;
    assert_eq!(ready.status(), StatusCode::OK);
    app.finish().await;
    drop(redis);
}

#[tokio::test]
async fn with_postgres_frozen_management_calls_answer_503_database_unavailable_and_public_pages_answer_from_memory()
 {
    let pg = ScratchPostgres::start();
    let app = TestApp::spawn_on(Infra {
        postgres_admin_url: Some(pg.url()),
        ..Infra::default()
    })
    .await;
    let t = app.signup().await;
    let api = app.component(&t, "API").await;
    let root = format!("/status/{}", t.slug);
    let mut warm = Vec::new();
    for path in ["/", "/api/v2/summary.json"] {
        let response = app.get(&format!("{root}{path}"), None).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        warm.push((path, response.bytes().await.unwrap()));
    }
    let ip = unique_ip();
    let base = app.address.clone();

    pg.freeze();
    for (method, path, body) in [
        (
            Method::GET,
            format!("/v1/pages/{}/components", t.page_id),
            None,
        ),
        (
            Method::POST,
            format!("/v1/pages/{}/incidents", t.page_id),
            Some(incident(&api, "Frozen database")),
        ),
    ] {
        let (status, retry_after, answer) = within(
            &format!("{method} {path} with PostgreSQL frozen"),
            POSTGRES_FROZEN_BOUND,
            call_from(
                &app,
                &base,
                &ip,
                method.clone(),
                &path,
                Some(&t.token),
                body.as_ref(),
            ),
        )
        .await;
        assert_eq!(
            status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{method} {path}: {answer}"
        );
        assert_eq!(answer["error"]["code"], "database_unavailable", "{answer}");
        let wait: u64 = retry_after
            .expect("a Retry-After")
            .parse()
            .expect("whole seconds");
        assert!((1..=60).contains(&wait), "{wait}");
    }
    for (path, before) in &warm {
        let response = within(
            &format!("{path} with PostgreSQL frozen"),
            POSTGRES_FROZEN_BOUND,
            app.get(&format!("{root}{path}"), None),
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(&response.bytes().await.unwrap(), before, "{path}");
    }
    let ready = within(
        "/readyz with PostgreSQL frozen",
        POSTGRES_FROZEN_BOUND,
        app.get("/readyz", None),
    )
    .await;
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let ready: Value = ready.json().await.unwrap();
    assert_eq!(ready["checks"]["database"], "unavailable", "{ready}");

    pg.thaw();
    // Back without a restart: the next change goes through and shows.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, _, body) = call_from(
            &app,
            &base,
            &ip,
            Method::PATCH,
            &format!("/v1/pages/{}/components/{api}", t.page_id),
            Some(&t.token),
            Some(&json!({"component": {"status": "degraded_performance"}})),
        )
        .await;
        if status == StatusCode::OK {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the API works again after the thaw: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    app.public_json(&format!("{root}/api/v2/summary.json"), None, |s| {
        s["components"][0]["status"] == "degraded_performance"
    })
    .await;
    app.finish().await;
    drop(pg);
}

/// A request whose database work hangs past the pool's acquire (a
/// connection that froze while in use) is cut off at the request deadline.
#[tokio::test]
async fn a_request_stuck_on_a_frozen_database_is_answered_503_at_the_request_deadline() {
    let pg = ScratchPostgres::start();
    let app = TestApp::spawn_on(Infra {
        postgres_admin_url: Some(pg.url()),
        ..Infra::default()
    })
    .await;
    let t = app.signup().await;
    // A replica whose pool would wait a minute for a connection: only the
    // request deadline can end the wait.
    let mut config = app.config.clone();
    config.timeouts.database_acquire = Duration::from_secs(60);
    config.timeouts.request = Duration::from_secs(2);
    let replica = Application::build(&config)
        .await
        .expect("the replica starts");
    let base = format!("http://127.0.0.1:{}", replica.port());
    tokio::spawn(replica.run_until_stopped());
    let ip = unique_ip();
    let (status, _, body) = call_from(
        &app,
        &base,
        &ip,
        Method::GET,
        "/v1/me",
        Some(&t.token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    pg.freeze();
    let (status, retry_after, body) = within(
        "a request on a replica with a two-second deadline",
        POSTGRES_FROZEN_BOUND,
        call_from(
            &app,
            &base,
            &ip,
            Method::GET,
            "/v1/me",
            Some(&t.token),
            None,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"]["code"], "database_unavailable", "{body}");
    assert!(retry_after.is_some());

    pg.thaw();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, _, body) = call_from(
            &app,
            &base,
            &ip,
            Method::GET,
            "/v1/me",
            Some(&t.token),
            None,
        )
        .await;
        if status == StatusCode::OK {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the replica works again after the thaw: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    app.finish().await;
    drop(pg);
}
