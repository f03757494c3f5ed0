//! The public pages' memory does not grow with what requests name: unknown
//! incident ids, hosts, slugs and paths, odd query strings and
//! `Accept-Encoding` values leave nothing behind, and what is kept per URL
//! (incident pages, rendered on request) stays within its bounds.
//!
//! Each test measures a replica of its own that hears of no change (a
//! nudge channel of its own, an hour-long poll), so that whatever its pages
//! hold, or ask the database, after it has served them once comes from the
//! requests alone.

use std::sync::Arc;
use std::time::Instant;

use futures::{FutureExt as _, StreamExt as _};
use heliograph_api::PageServing;
use heliograph_api::public_pages::{Base, Lookup, MemoLimits, PublicPages};
use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::{BASE_DOMAIN, Tenant, TestApp};
use crate::page_cache::{self, metric_in, metrics_text, populate};

/// The memo's bounds by default (`PAGE_CACHE_MEMO_PER_PAGE`, `PAGE_CACHE_MEMO_MAX_MB`).
const DEFAULT_MEMO: MemoLimits = MemoLimits {
    per_page: 256,
    max_bytes: 64 << 20,
};

/// Another api on the test's database, with these memo bounds, that hears
/// of no change.
async fn quiet_replica(app: &TestApp, memo: MemoLimits) -> (String, Arc<PublicPages>) {
    page_cache::quiet_replica(app, |c| c.page_memo = memo, PageServing::default()).await
}

#[tokio::test]
async fn a_million_unknown_incident_ids_hosts_and_slugs_leave_the_pages_memory_where_it_was() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let w = populate(&app, &t).await;
    let (_, pages) = quiet_replica(&app, DEFAULT_MEMO).await;
    let Lookup::Found(snapshot) = pages.get(pages.route_by_slug(&t.slug)).await else {
        panic!("the page builds");
    };
    // What is worth keeping is kept: the page's own incidents, by both bases.
    for id in [&w.open, &w.resolved] {
        for base in [Base::Host, Base::Path] {
            assert!(
                pages
                    .incident(&snapshot, id.parse().unwrap(), &base)
                    .await
                    .unwrap()
                    .is_some()
            );
        }
    }
    let before = pages.memory();
    assert_eq!(before.memo.entries, 4, "{before:?}");
    assert!(before.memo.bytes > 0);
    let queries = pages.database_acquisitions();

    // The function the handler calls, a million times, each with an id of
    // its own (what `GET /incidents/<random uuid>` does, by host and by path).
    let n: u32 = 1_000_000;
    let started = Instant::now();
    for i in 0..n {
        let base = if i % 2 == 0 { Base::Host } else { Base::Path };
        let unknown = pages.incident(&snapshot, Uuid::new_v4(), &base);
        assert!(matches!(unknown.now_or_never(), Some(Ok(None))));
    }
    let ids_took = started.elapsed();
    let after_ids = pages.memory();

    // Unknown page sub-domains, slugs, custom domains (also Caddy's TLS
    // question) — each a name of its own — as the handlers resolve them.
    let started = Instant::now();
    for _ in 0..n {
        let name = Uuid::new_v4().simple().to_string();
        let host = format!("{name}.{BASE_DOMAIN}");
        let slug = app.config.urls.slug_for_host(&host).expect("a page host");
        let by_slug = pages.route_by_slug(slug);
        assert!(by_slug.is_none());
        assert!(matches!(
            pages.get(by_slug).now_or_never(),
            Some(Lookup::NoSuchPage)
        ));
        assert!(
            pages
                .route_by_host(&format!("{name}.example.com"))
                .is_none()
        );
    }
    let names_took = started.elapsed();
    let after = pages.memory();
    println!(
        "{n} unknown incident ids in {ids_took:?}, {n}×3 unknown names in {names_took:?}; \
         memory before {before:?}, after the ids {after_ids:?}, after the names {after:?}; \
         database connections taken: {}",
        pages.database_acquisitions() - queries
    );
    assert_eq!(after_ids, before, "unknown incident ids were kept");
    assert_eq!(after, before, "unknown names were kept");
    assert_eq!(pages.database_acquisitions(), queries);
    app.finish().await;
}

/// What `/metrics` says the pages hold, and the database connections taken.
async fn memory_metrics(client: &reqwest::Client, address: &str) -> [(&'static str, u64); 5] {
    let text = metrics_text(client, address).await;
    [
        "heliograph_db_connection_acquisitions_total",
        "heliograph_page_snapshots",
        "heliograph_page_snapshot_bytes",
        "heliograph_page_memo_entries",
        "heliograph_page_memo_bytes",
    ]
    .map(|name| (name, metric_in(&text, name)))
}

#[tokio::test]
async fn thousands_of_odd_requests_over_http_leave_the_pages_memory_and_the_database_alone() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let w = populate(&app, &t).await;
    let (replica, _) = quiet_replica(&app, DEFAULT_MEMO).await;
    let page_host = format!("{}.{BASE_DOMAIN}", t.slug);
    let client = &app.client;
    let get = |path: String, host: Option<String>, encoding: Option<String>| {
        let mut request = client.get(format!("{replica}{path}"));
        if let Some(host) = host {
            request = request.header(reqwest::header::HOST, host);
        }
        if let Some(encoding) = encoding {
            request = request.header(reqwest::header::ACCEPT_ENCODING, encoding);
        }
        async move { request.send().await.unwrap().status() }
    };
    // Served once: the page, and its two incidents by path and by host.
    let root = format!("/status/{}", t.slug);
    assert_eq!(
        get(format!("{root}/api/v2/summary.json"), None, None).await,
        StatusCode::OK
    );
    for id in [&w.open, &w.resolved] {
        assert_eq!(
            get(format!("{root}/incidents/{id}"), None, None).await,
            StatusCode::OK
        );
        assert_eq!(
            get(format!("/incidents/{id}"), Some(page_host.clone()), None).await,
            StatusCode::OK
        );
    }
    let before = memory_metrics(client, &replica).await;
    assert_eq!(before[3].1, 4, "{before:?}");

    let n = 4000;
    let started = Instant::now();
    let statuses: Vec<(usize, StatusCode, StatusCode)> = futures::stream::iter(0..n)
        .map(|i| {
            let r = Uuid::new_v4().simple().to_string();
            let odd = format!("gzip;q=0.{}, x-{r};q=1, *;q={}", i % 10, i % 2);
            let (path, host, encoding, expected) = match i % 10 {
                0 => (
                    format!("{root}/incidents/{r}"),
                    None,
                    None,
                    StatusCode::NOT_FOUND,
                ),
                1 => (
                    format!("/incidents/{}", Uuid::new_v4()),
                    Some(page_host.clone()),
                    Some(odd),
                    StatusCode::NOT_FOUND,
                ),
                2 => (
                    format!("{root}/incidents/{}/?{r}", Uuid::new_v4()),
                    None,
                    None,
                    StatusCode::NOT_FOUND,
                ),
                3 => (
                    format!("{root}/{r}/api/v2/summary.json"),
                    None,
                    None,
                    StatusCode::NOT_FOUND,
                ),
                4 => (
                    format!("/?{r}={r}&_={i}"),
                    Some(page_host.clone()),
                    Some(odd),
                    StatusCode::OK,
                ),
                5 => (
                    "/".to_owned(),
                    Some(format!("{r}.{BASE_DOMAIN}")),
                    None,
                    StatusCode::NOT_FOUND,
                ),
                6 => (
                    format!("/incidents/{}", w.open),
                    Some(format!("{r}.example.com")),
                    None,
                    StatusCode::NOT_FOUND,
                ),
                7 => (
                    format!("/status/{r}/incidents/{}", w.open),
                    None,
                    None,
                    StatusCode::NOT_FOUND,
                ),
                8 => (
                    format!("/internal/tls/ask?domain={r}.example.com"),
                    None,
                    None,
                    StatusCode::NOT_FOUND,
                ),
                _ => (
                    format!(
                        "/status/{}/incidents/{}?{r}",
                        t.slug.to_uppercase(),
                        w.resolved
                    ),
                    None,
                    Some(odd),
                    StatusCode::OK,
                ),
            };
            let answer = get(path, host, encoding);
            async move { (i, expected, answer.await) }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    let took = started.elapsed();
    for (i, expected, status) in statuses {
        assert_eq!(status, expected, "request {i} (kind {})", i % 10);
    }
    let after = memory_metrics(client, &replica).await;
    println!("{n} odd requests over HTTP in {took:?}; /metrics before {before:?}, after {after:?}");
    assert_eq!(after, before);
    app.finish().await;
}

/// Opens an incident named `name` on `t`'s page; answers its id.
async fn open_incident(app: &TestApp, t: &Tenant, name: &str) -> String {
    let (status, body) = app
        .post(
            &format!("/v1/pages/{}/incidents", t.page_id),
            Some(&t.token),
            &json!({"incident": {"name": name, "status": "investigating", "body": "Looking."}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

/// GETs an incident's page by path; answers whether it is the incident's.
async fn shows(client: &reqwest::Client, replica: &str, t: &Tenant, id: &str, name: &str) -> bool {
    let response = client
        .get(format!("{replica}/status/{}/incidents/{id}", t.slug))
        .send()
        .await
        .unwrap();
    response.status() == StatusCode::OK && response.text().await.unwrap().contains(name)
}

#[tokio::test]
async fn the_incident_page_memo_keeps_within_its_bounds_per_page_and_in_all() {
    let app = TestApp::spawn().await;
    let mut incidents = Vec::new();
    let tenants = [app.signup().await, app.signup().await];
    for (k, t) in tenants.iter().enumerate() {
        for n in 0..3 {
            let name = format!("Incident {n} of page {k}");
            incidents.push((k, open_incident(&app, t, &name).await, name));
        }
    }
    let client = &app.client;

    // What each one weighs, on a replica with room for all.
    let (roomy, pages) = quiet_replica(&app, DEFAULT_MEMO).await;
    let mut weights = Vec::new();
    for (k, id, name) in &incidents {
        let before = pages.memory().memo.bytes;
        assert!(shows(client, &roomy, &tenants[*k], id, name).await);
        weights.push(pages.memory().memo.bytes - before);
    }
    assert_eq!(pages.memory().memo.entries, 6);
    assert_eq!(pages.memo_evictions(), 0);

    // Two per page: the one read least recently goes, and is rendered again
    // when asked for.
    let (tight, pages) = quiet_replica(
        &app,
        MemoLimits {
            per_page: 2,
            max_bytes: 64 << 20,
        },
    )
    .await;
    for (k, id, name) in incidents.iter().take(3) {
        assert!(shows(client, &tight, &tenants[*k], id, name).await);
    }
    assert_eq!(pages.memory().memo.entries, 2);
    assert_eq!(pages.memo_evictions(), 1);
    let (k, id, name) = &incidents[0];
    assert!(shows(client, &tight, &tenants[*k], id, name).await);
    assert_eq!(pages.memory().memo.entries, 2);
    assert_eq!(pages.memo_evictions(), 2);

    // Room for three of the lightest in all: never more, whichever page.
    let budget = 3 * weights.iter().min().unwrap();
    let (small, pages) = quiet_replica(
        &app,
        MemoLimits {
            per_page: 2,
            max_bytes: budget,
        },
    )
    .await;
    for round in 0..2 {
        for (k, id, name) in &incidents {
            assert!(shows(client, &small, &tenants[*k], id, name).await);
            let memory = pages.memory();
            assert!(
                memory.memo.bytes <= budget && memory.memo.entries <= 3,
                "round {round}: {memory:?} over {budget} bytes"
            );
        }
    }
    let memory = pages.memory();
    assert!(
        memory.memo.entries >= 1 && memory.memo.pages <= 2,
        "{memory:?}"
    );
    // The first round read six documents none of which was kept yet.
    assert!(
        pages.memo_evictions() >= 6 - memory.memo.entries as u64,
        "{} evictions",
        pages.memo_evictions()
    );
    println!("weights {weights:?}, budget {budget}, at the end {memory:?}");
    app.finish().await;
}
