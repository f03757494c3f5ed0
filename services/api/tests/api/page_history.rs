//! A page with a year of history: its uptime is read in a constant number
//! of queries (not one per component), from the window the page shows, and
//! gives exactly what reading each component's whole history gave.

use heliograph_domain::uptime::daily_uptime;
use heliograph_domain::uptime_request::status_history;
use heliograph_domain::{PageId, TenantId, day_bounds, local_date};
use reqwest::StatusCode;
use time::OffsetDateTime;

use crate::helpers::{Tenant, TestApp};

/// Adds `components` components to the tenant's page, `changes` status
/// changes over the last year and `incidents` incidents and maintenances,
/// with `load-tests/page-history.sql` (what `load-tests/page-rebuild` loads).
pub(crate) async fn load_history(
    app: &TestApp,
    t: &Tenant,
    components: u32,
    changes: u32,
    incidents: u32,
) {
    let mut conn = app.admin.acquire().await.unwrap();
    for (name, value) in [
        ("bench.tenant_id", t.tenant_id.clone()),
        ("bench.page_id", t.page_id.clone()),
        ("bench.components", components.to_string()),
        ("bench.changes", changes.to_string()),
        ("bench.incidents", incidents.to_string()),
    ] {
        sqlx::query("select set_config($1, $2, false)")
            .bind(name)
            .bind(value)
            .execute(&mut *conn)
            .await
            .unwrap();
    }
    sqlx::raw_sql(include_str!("../../../../load-tests/page-history.sql"))
        .execute(&mut *conn)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_year_of_history_gives_the_uptime_of_the_per_component_reads() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    load_history(&app, &t, 50, 10_000, 1_000).await;
    let tenant: TenantId = t.tenant_id.parse().unwrap();
    let page: PageId = t.page_id.parse().unwrap();
    let now = OffsetDateTime::now_utc();
    let mut tx = app.store.tenant_tx(tenant).await.unwrap();
    let zone = tx.page(page).await.unwrap().time_zone;
    let last = local_date(now, &zone);
    // The public page's 90 bars, and the longest series the API gives.
    for days in [90_i64, 366] {
        let first = last - time::Duration::days(days - 1);
        let (from, _) = day_bounds(first, &zone);
        let together = tx.page_histories(page, from, now).await.unwrap();
        assert_eq!(together.len(), 50);
        let (mut maintained, mut outages) = (0, 0);
        for h in &together {
            // What the snapshot read before: each component's whole history.
            let alone = tx.component_history(h.component.id, now).await.unwrap();
            assert_eq!(alone.component, h.component);
            assert!(h.changes.len() <= alone.changes.len());
            let mut windows = h.maintenance.clone();
            let mut windows_alone = alone.maintenance.clone();
            windows.sort();
            windows_alone.sort();
            assert_eq!(windows, windows_alone);
            maintained += usize::from(!windows.is_empty());
            let series = |changes| {
                daily_uptime(
                    &status_history(&h.component, changes, &zone),
                    &zone,
                    first,
                    last,
                    &h.maintenance,
                    now,
                )
            };
            let (read_now, read_before) = (series(&h.changes), series(&alone.changes));
            assert_eq!(read_now.len(), usize::try_from(days).unwrap());
            assert_eq!(
                read_now, read_before,
                "{} over {days} days",
                h.component.name
            );
            outages += read_now
                .iter()
                .filter(|d| d.totals.major_outage_ms > 0)
                .count();
        }
        assert!(maintained > 0, "some components had maintenance windows");
        // Days with outages, so the comparison compared something.
        assert!(outages > 50 * 10, "{outages} days with a major outage");
    }
    tx.commit().await.unwrap();
    // The page renders with it all.
    let summary = app
        .get(&format!("/status/{}/api/v2/summary.json", t.slug), None)
        .await;
    assert_eq!(summary.status(), StatusCode::OK);
    let summary: serde_json::Value = summary.json().await.unwrap();
    assert_eq!(summary["components"].as_array().unwrap().len(), 50);
    let page = app.get(&format!("/status/{}/", t.slug), None).await;
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("Service 50"));
    app.finish().await;
}
