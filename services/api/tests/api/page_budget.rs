//! What a warm page holds, and the bound on what all of them hold: a page
//! keeps its documents gzipped (plain bytes only once a request needed
//! them), and the snapshots of the pages read least recently are dropped
//! past `PAGE_CACHE_MAX_MB`, then rebuilt when read again.
//!
//! Each test reads through a replica of its own that hears of no change, so
//! that what its pages hold comes from the requests alone.

use std::sync::Arc;

use heliograph_api::PageServing;
use heliograph_api::public_pages::PublicPages;
use reqwest::StatusCode;
use uuid::Uuid;

use crate::helpers::{Tenant, TestApp};
use crate::page_cache::{self, DOCUMENTS, populate};

/// Another api on the test's database, holding at most `max_bytes` of
/// snapshots, that hears of no change.
async fn quiet_replica(app: &TestApp, max_bytes: usize) -> (String, Arc<PublicPages>) {
    page_cache::quiet_replica(
        app,
        |_| {},
        PageServing {
            max_bytes,
            ..PageServing::default()
        },
    )
    .await
}

/// Reads every document of the page as a browser does (gzip taken), by
/// path and by host; answers the ETag of its summary.
async fn read_like_a_browser(client: &reqwest::Client, address: &str, t: &Tenant) -> String {
    let host = format!("{}.heliograph.test", t.slug);
    let mut summary_etag = String::new();
    for path in DOCUMENTS {
        for (url, host) in [
            (format!("{address}/status/{}{path}", t.slug), None),
            (format!("{address}{path}"), Some(host.as_str())),
        ] {
            let mut request = client
                .get(&url)
                .header("accept-encoding", "gzip, deflate, br");
            if let Some(host) = host {
                request = request.header("host", host);
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{url}");
            if path == "/api/v2/summary.json" {
                summary_etag = response.headers()["etag"].to_str().unwrap().to_owned();
            }
        }
    }
    summary_etag
}

#[tokio::test]
async fn a_warm_ten_component_page_holds_at_most_64_kib_and_plain_bytes_only_once_asked() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    // Two of populate's components, eight more: ten; and
    // incidents open, resolved, upcoming and under way.
    populate(&app, &t).await;
    for n in 0..8 {
        app.component(&t, &format!("Service {n}")).await;
    }
    let (address, pages) = quiet_replica(&app, 256 << 20).await;
    let client = reqwest::Client::new();
    read_like_a_browser(&client, &address, &t).await;
    let (_, page) = pages.route_by_slug(&t.slug).unwrap();
    let snapshot = pages.cached(page).expect("the page is held");
    let warm = snapshot.bytes();
    println!("a warm ten-component page holds {warm} bytes");
    assert_eq!(snapshot.page.data.components.len(), 10);
    assert!(warm <= 64 << 10, "a warm page holds {warm} bytes");
    assert_eq!(pages.memory().snapshot_bytes, warm);

    // A client that refuses gzip gets the plain bytes, derived once and kept.
    let url = format!("{address}/status/{}/", t.slug);
    let plain = client.get(&url).send().await.unwrap();
    assert!(plain.headers().get("content-encoding").is_none());
    let plain = plain.bytes().await.unwrap();
    assert_eq!(snapshot.bytes(), warm + plain.len());
    let again = client
        .get(&url)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(again, plain);
    assert_eq!(snapshot.bytes(), warm + plain.len(), "kept once");
    assert_eq!(pages.memory().snapshot_bytes, warm + plain.len());
    app.finish().await;
}

/// A snapshot keeps its active incidents' data, and of its history only the
/// ids: a past incident's page is read from the database when first asked
/// for, then kept; an id the page never had costs nothing.
#[tokio::test]
async fn a_past_incidents_page_is_read_when_asked_for_and_the_snapshot_keeps_only_its_id() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let w = populate(&app, &t).await;
    let (address, pages) = quiet_replica(&app, 256 << 20).await;
    let client = reqwest::Client::new();
    let get = async |path: String| {
        let response = client.get(format!("{address}{path}")).send().await.unwrap();
        (response.status(), response.text().await.unwrap())
    };
    let root = format!("/status/{}", t.slug);
    assert_eq!(get(format!("{root}/")).await.0, StatusCode::OK);
    let (_, page) = pages.route_by_slug(&t.slug).unwrap();
    let snapshot = pages.cached(page).expect("the page is held");
    assert!(
        snapshot.page.data.history.is_empty(),
        "no history data held"
    );
    assert!(!snapshot.page.data.active_incidents.is_empty());

    let read = pages.database_acquisitions();
    let (status, body) = get(format!("{root}/incidents/{}", w.resolved)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body.contains(" blip</h1>") || body.contains(" blip<"),
        "the past incident's page"
    );
    assert!(
        pages.database_acquisitions() > read,
        "read from the database"
    );
    let read = pages.database_acquisitions();
    assert_eq!(
        get(format!("{root}/incidents/{}", w.resolved)).await.1,
        body
    );
    assert_eq!(
        get(format!("{root}/incidents/{}", w.open)).await.0,
        StatusCode::OK
    );
    let (status, _) = get(format!("{root}/incidents/{}", Uuid::new_v4())).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        pages.database_acquisitions(),
        read,
        "kept once read; an active incident and an unknown id need no query"
    );
    app.finish().await;
}

/// A page's HTML is rendered once per build, with its links from `/`; the
/// copy for the platform host (links from `/status/<slug>`) is derived when
/// first asked for, and is byte for byte what rendering it gives.
#[tokio::test]
async fn a_pages_status_path_copy_is_made_when_first_read_and_is_what_rendering_it_gives() {
    use heliograph_api::public_pages::{Doc, render};
    use heliograph_web::Audience;
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    // Components whose status never changes and incidents that touch none:
    // nothing on the page moves with the clock, so a render made later
    // gives the same bytes.
    app.component(&t, "API").await;
    app.component(&t, "Dashboard").await;
    for (name, status) in [("Slow logins", "investigating"), ("Old news", "resolved")] {
        let (code, body) = app
            .post(
                &format!("/v1/pages/{}/incidents", t.page_id),
                Some(&t.token),
                &serde_json::json!({"incident": {"name": name, "status": status, "body": "Noted."}}),
            )
            .await;
        assert_eq!(code, StatusCode::CREATED, "{body}");
    }
    let (address, pages) = quiet_replica(&app, 256 << 20).await;
    let client = reqwest::Client::new();
    let host = format!("{}.heliograph.test", t.slug);
    let get = async |url: String, host: Option<&str>| {
        let mut request = client.get(&url);
        if let Some(host) = host {
            request = request.header("host", host);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{url}");
        response.bytes().await.unwrap()
    };
    for path in ["/", "/history"] {
        get(format!("{address}{path}"), Some(&host)).await;
    }
    let (tenant, page) = pages.route_by_slug(&t.slug).unwrap();
    let snapshot = pages.cached(page).expect("the page is held");
    let own = snapshot.bytes();
    let prefix = format!("/status/{}", t.slug);
    let data = pages
        .read_public(tenant, page)
        .await
        .unwrap()
        .expect("the page");
    for (path, doc) in [("/", Doc::Page), ("/history", Doc::History)] {
        let before = snapshot.bytes();
        let copy = get(format!("{address}{prefix}{path}"), None).await;
        assert!(snapshot.bytes() > before, "{path}: the copy is made now");
        let rendered = render(&data, doc, Audience::Public, &prefix).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&copy),
            rendered,
            "{path}: the derived copy is the rendered one"
        );
        assert!(
            rendered.contains(&format!("href=\"{prefix}/")),
            "{path}: its links"
        );
        let held = snapshot.bytes();
        assert_eq!(get(format!("{address}{prefix}{path}"), None).await, copy);
        assert_eq!(snapshot.bytes(), held, "{path}: made once");
    }
    assert!(snapshot.bytes() > own);
    assert_eq!(pages.memory().snapshot_bytes, snapshot.bytes());
    app.finish().await;
}

#[tokio::test]
async fn past_its_budget_the_cache_drops_the_page_read_least_recently_and_rebuilds_it_when_read() {
    let app = TestApp::spawn().await;
    let (a, b, c) = (app.signup().await, app.signup().await, app.signup().await);
    // What one such page holds, read as browsers read it.
    let (measure, measured) = quiet_replica(&app, 256 << 20).await;
    let client = reqwest::Client::new();
    read_like_a_browser(&client, &measure, &a).await;
    let one = measured.memory().snapshot_bytes;
    // Room for two and a half pages.
    let (address, pages) = quiet_replica(&app, one * 5 / 2).await;
    let held = |t: &Tenant| {
        pages
            .cached(pages.route_by_slug(&t.slug).unwrap().1)
            .is_some()
    };
    let builds = || {
        pages
            .stats
            .builds
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    let evictions = || {
        pages
            .stats
            .evictions
            .load(std::sync::atomic::Ordering::Relaxed)
    };

    let a_etag = read_like_a_browser(&client, &address, &a).await;
    read_like_a_browser(&client, &address, &b).await;
    // a is read again: b is now the page read least recently.
    read_like_a_browser(&client, &address, &a).await;
    assert_eq!((builds(), evictions()), (2, 0));
    read_like_a_browser(&client, &address, &c).await;
    assert_eq!((builds(), evictions()), (3, 1));
    assert!(
        held(&a) && held(&c) && !held(&b),
        "b was read least recently"
    );
    let memory = pages.memory();
    assert_eq!(memory.snapshots, 2);
    assert!(memory.snapshot_bytes <= one * 5 / 2, "{memory:?}");

    // b, read again, is rebuilt; a is now the page read least recently.
    read_like_a_browser(&client, &address, &b).await;
    assert_eq!((builds(), evictions()), (4, 2));
    assert!(held(&b) && held(&c) && !held(&a));
    // And a comes back the same as it was.
    assert_eq!(read_like_a_browser(&client, &address, &a).await, a_etag);
    assert_eq!(builds(), 5);
    assert!(pages.memory().snapshot_bytes <= one * 5 / 2);

    // A budget smaller than one page still serves that page (and holds it alone).
    let (tiny, tiny_pages) = quiet_replica(&app, 1).await;
    read_like_a_browser(&client, &tiny, &a).await;
    read_like_a_browser(&client, &tiny, &b).await;
    assert_eq!(tiny_pages.memory().snapshots, 1);
    app.finish().await;
}
