//! Tenant isolation enforced by PostgreSQL itself (row-level security), under
//! the application's own database role.

use serde_json::json;
use sqlx::Row;

use crate::helpers::{TestApp, unique_email};

/// Every table that holds tenant-owned rows.
const TENANT_TABLES: &[&str] = &[
    "tenants",
    "memberships",
    "pages",
    "component_groups",
    "components",
    "component_status_changes",
    "incidents",
    "incident_components",
    "incident_updates",
    "incident_update_components",
    "subscribers",
    "subscriber_components",
    "outbox",
    "deliveries",
    "sessions",
    "api_keys",
    "audit_log",
    "invitations",
    "domains",
];

#[tokio::test]
async fn without_a_tenant_setting_the_application_sees_no_rows() {
    let app = TestApp::spawn().await;
    let a = app.signup().await;
    let b = app.signup().await;
    for t in [&a, &b] {
        app.post(
            "/v1/api-keys",
            Some(&t.token),
            &json!({"api_key": {"name": "ci"}}),
        )
        .await;
        app.post(
            "/v1/invitations",
            Some(&t.token),
            &json!({"invitation": {"email": unique_email("team"), "role": "viewer"}}),
        )
        .await;
        let api = app.component(t, "API").await;
        app.post(
            &format!("/v1/pages/{}/subscribers", t.page_id),
            Some(&t.token),
            &json!({"subscriber": {"email": unique_email("iso"), "components": [api.clone()], "skip_confirmation_notification": true}}),
        )
        .await;
        app.post(
            &format!("/v1/pages/{}/incidents", t.page_id),
            Some(&t.token),
            &json!({"incident": {"name": "Down", "components": {api: "major_outage"}}}),
        )
        .await;
        app.post(
            &format!("/v1/pages/{}/domains", t.page_id),
            Some(&t.token),
            &json!({"domain": {"hostname": format!("{}.customer.test", t.slug)}}),
        )
        .await;
    }
    app.drain().await;
    // Groups have no endpoint yet: one each, written as the owner.
    sqlx::query(
        "insert into component_groups (id, tenant_id, page_id, name, position)
         select gen_random_uuid(), tenant_id, id, 'Group', 1 from pages",
    )
    .execute(&app.admin)
    .await
    .unwrap();

    // The application's role is neither the tables' owner nor able to bypass RLS.
    let row = sqlx::query(
        "select r.rolsuper, r.rolbypassrls, (select tableowner from pg_tables where tablename = 'pages') = current_user
           from pg_roles r where r.rolname = current_user",
    )
    .fetch_one(app.store.pool())
    .await
    .unwrap();
    assert_eq!(
        (
            row.get::<bool, _>(0),
            row.get::<bool, _>(1),
            row.get::<bool, _>(2)
        ),
        (false, false, false)
    );

    for table in TENANT_TABLES {
        let sql = format!("select count(*) from {table}");
        let (owner_sees,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
            .fetch_one(&app.admin)
            .await
            .unwrap();
        assert!(
            owner_sees >= 2,
            "{table} has rows of both tenants ({owner_sees})"
        );
        let (app_sees,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .fetch_one(app.store.pool())
            .await
            .unwrap();
        assert_eq!(app_sees, 0, "{table} shows rows without a tenant setting");
    }
    app.finish().await;
}

#[tokio::test]
async fn with_one_tenant_set_the_other_tenants_rows_are_invisible_and_unwritable() {
    let app = TestApp::spawn().await;
    let a = app.signup().await;
    let b = app.signup().await;
    let b_component = app.component(&b, "B's API").await;
    app.component(&a, "A's API").await;

    let mut tx = app.store.pool().begin().await.unwrap();
    sqlx::query("select set_config('app.tenant_id', $1, true)")
        .bind(&a.tenant_id)
        .execute(&mut *tx)
        .await
        .unwrap();
    let names: Vec<(String,)> = sqlx::query_as("select name from components")
        .fetch_all(&mut *tx)
        .await
        .unwrap();
    assert_eq!(names, [("A's API".to_owned(),)]);
    let updated = sqlx::query("update components set status = 'major_outage' where id = $1::uuid")
        .bind(&b_component)
        .execute(&mut *tx)
        .await
        .unwrap();
    assert_eq!(
        updated.rows_affected(),
        0,
        "B's component cannot be changed from A"
    );
    let insert = sqlx::query(
        "insert into components (id, tenant_id, page_id, name, position)
         values (gen_random_uuid(), $1::uuid, $2::uuid, 'Planted', 99)",
    )
    .bind(&b.tenant_id)
    .bind(&b.page_id)
    .execute(&mut *tx)
    .await;
    assert!(
        insert.is_err(),
        "a row for B cannot be written under A's setting"
    );
    tx.rollback().await.unwrap();
    let (status,): (String,) = sqlx::query_as("select status from components where id = $1::uuid")
        .bind(&b_component)
        .fetch_one(&app.admin)
        .await
        .unwrap();
    assert_eq!(status, "operational");
    app.finish().await;
}
