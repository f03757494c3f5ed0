//! Tenant isolation enforced by PostgreSQL itself (row-level security), under
//! the application's own database role.
//!
//! The catalog's side (policies on every table, the roles) is
//! `database_roles`'.

use reqwest::StatusCode;
use secrecy::ExposeSecret;
use serde_json::json;
use sqlx::{Connection, PgConnection, Row};

use crate::helpers::{Infra, Tenant, TestApp, unique_email};

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

/// Gives tenant `t` rows in every table of [`TENANT_TABLES`] and more,
/// through the API (groups, which have no endpoint, as the superuser).
async fn populate(app: &TestApp, t: &Tenant) {
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
        &json!({"incident": {"name": "Down", "components": {api.clone(): "major_outage"}}}),
    )
    .await;
    app.post(
        &format!("/v1/pages/{}/domains", t.page_id),
        Some(&t.token),
        &json!({"domain": {"hostname": format!("{}.customer.test", t.slug)}}),
    )
    .await;
    app.post(
        &format!("/v1/pages/{}/incident_templates", t.page_id),
        Some(&t.token),
        &json!({"template": {"name": "API down", "title": "The API is down", "component_ids": [api]}}),
    )
    .await;
    let replayable = app
        .client
        .post(app.url(&format!("/v1/pages/{}/incidents", t.page_id)))
        .bearer_auth(&t.token)
        .header("idempotency-key", "isolation-1")
        .json(&json!({"incident": {"name": "Slow"}}))
        .send()
        .await
        .expect("the API answers");
    assert_eq!(replayable.status(), StatusCode::CREATED);
    sqlx::query(
        "insert into component_groups (id, tenant_id, page_id, name, position)
         values (gen_random_uuid(), $1::uuid, $2::uuid, 'Group', 1)",
    )
    .bind(&t.tenant_id)
    .bind(&t.page_id)
    .execute(&app.admin)
    .await
    .unwrap();
}

#[tokio::test]
async fn without_a_tenant_setting_the_application_sees_no_rows() {
    without_a_tenant_setting_the_application_sees_no_rows_on(Infra::default()).await;
}

/// Through a transaction pooler the serving role's statements share server connections with the api's tenant transactions: none of their tenant settings is left behind.
#[tokio::test]
async fn without_a_tenant_setting_the_application_sees_no_rows_through_pgbouncer_in_transaction_mode()
 {
    without_a_tenant_setting_the_application_sees_no_rows_on(Infra {
        pgbouncer: true,
        ..Infra::default()
    })
    .await;
}

async fn without_a_tenant_setting_the_application_sees_no_rows_on(infra: Infra) {
    let app = TestApp::spawn_on(infra).await;
    let a = app.signup().await;
    let b = app.signup().await;
    for t in [&a, &b] {
        populate(&app, t).await;
    }
    app.drain().await;

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
    with_one_tenant_set_the_other_tenants_rows_are_invisible_and_unwritable_on(Infra::default())
        .await;
}

/// The same, with the api and the worker behind PgBouncer in transaction mode.
#[tokio::test]
async fn with_one_tenant_set_the_other_tenants_rows_are_invisible_and_unwritable_through_pgbouncer_in_transaction_mode()
 {
    with_one_tenant_set_the_other_tenants_rows_are_invisible_and_unwritable_on(Infra {
        pgbouncer: true,
        ..Infra::default()
    })
    .await;
}

async fn with_one_tenant_set_the_other_tenants_rows_are_invisible_and_unwritable_on(infra: Infra) {
    let app = TestApp::spawn_on(infra).await;
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

/// Every table with a `tenant_id` column, and `tenants` itself, from the
/// catalog (so tables added later are in), each with the column that names
/// its tenant; names quoted by the server.
async fn tenant_tables(app: &TestApp) -> Vec<(String, &'static str)> {
    let names: Vec<(String, bool)> = sqlx::query_as(
        "select quote_ident(c.relname), c.relname = 'tenants'
           from pg_class c
          where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p')
            and (c.relname = 'tenants'
                 or exists (select from pg_attribute a
                             where a.attrelid = c.oid and a.attname = 'tenant_id' and not a.attisdropped))
          order by 1",
    )
    .fetch_all(&app.admin)
    .await
    .unwrap();
    names
        .into_iter()
        .map(|(name, is_tenants)| (name, if is_tenants { "id" } else { "tenant_id" }))
        .collect()
}

/// For each table: how many rows of tenant `of` the session `conn` sees,
/// and how many of any other tenant.
async fn visible(
    conn: &mut PgConnection,
    tables: &[(String, &'static str)],
    of: &str,
) -> Vec<(String, i64, i64)> {
    let mut seen = Vec::new();
    for (table, key) in tables {
        // Identifiers from the catalog, quoted by quote_ident; the tenant is bound.
        let sql = format!(
            "select count(*) filter (where {key} = $1::uuid), count(*) filter (where {key} <> $1::uuid)
               from (select * from {table}) as t"
        );
        let (own, others): (i64, i64) = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(of)
            .fetch_one(&mut *conn)
            .await
            .unwrap_or_else(|e| panic!("{table}: {e}"));
        seen.push((table.clone(), own, others));
    }
    seen
}

/// The SQLSTATE of a statement that must fail.
async fn refused(conn: &mut PgConnection, sql: &'static str) -> String {
    let err = sqlx::raw_sql(sql).execute(&mut *conn).await.expect_err(sql);
    err.as_database_error()
        .and_then(|e| e.code())
        .map(|c| c.into_owned())
        .unwrap_or_else(|| panic!("{sql}: not a database error: {err}"))
}

#[tokio::test]
async fn a_raw_session_of_the_serving_role_reads_no_other_tenants_rows_and_cannot_become_the_owner()
{
    let app = TestApp::spawn().await;
    let a = app.signup().await;
    let b = app.signup().await;
    for t in [&a, &b] {
        populate(&app, t).await;
    }
    app.drain().await;
    let tables = tenant_tables(&app).await;
    let names: Vec<&str> = tables.iter().map(|(t, _)| t.as_str()).collect();
    for table in TENANT_TABLES {
        assert!(names.contains(table), "{table} is a tenant table");
    }
    // What is there, as the superuser sees it: both tenants have rows in
    // every table the API fills, so an empty answer below means "hidden".
    let mut admin = PgConnection::connect(&app.db.admin_url).await.unwrap();
    let everything = visible(&mut admin, &tables, &a.tenant_id).await;
    for (table, own, others) in &everything {
        if TENANT_TABLES.contains(&table.as_str())
            || [
                "incident_templates",
                "incident_template_components",
                "idempotency_keys",
            ]
            .contains(&table.as_str())
        {
            assert!(*own > 0 && *others > 0, "{table} has rows of A and of B");
        }
    }

    // The session the processes open: DATABASE_URL, raw SQL, no store.
    let url = app.config.database_url.expose_secret().to_owned();
    let mut conn = PgConnection::connect(&url).await.unwrap();
    let (user, session, superuser_name): (String, String, String) = sqlx::query_as(
        "select current_user::text, session_user::text,
                (select quote_ident(rolname) from pg_roles where rolsuper order by oid limit 1)",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(user, heliograph_testkit::SERVE_ROLE);
    assert_eq!(session, user);

    // No tenant set: nothing at all.
    for (table, own, others) in visible(&mut conn, &tables, &a.tenant_id).await {
        assert_eq!((own, others), (0, 0), "{table} without a tenant setting");
    }

    // A's setting, for the session: A's rows, all of them, and none of B's.
    sqlx::query("select set_config('app.tenant_id', $1, false)")
        .bind(&a.tenant_id)
        .execute(&mut conn)
        .await
        .unwrap();
    let as_a = visible(&mut conn, &tables, &a.tenant_id).await;
    for ((table, own, others), (_, all_own, _)) in as_a.iter().zip(&everything) {
        assert_eq!(
            *others, 0,
            "{table} shows another tenant's rows under A's setting"
        );
        assert_eq!(own, all_own, "{table} shows A all of A's rows");
    }

    // RESET ROLE leads back to the login role, which is still not the owner.
    sqlx::raw_sql("reset role")
        .execute(&mut conn)
        .await
        .unwrap();
    let (user,): (String,) = sqlx::query_as("select current_user::text")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(user, heliograph_testkit::SERVE_ROLE);
    for (table, _, others) in visible(&mut conn, &tables, &a.tenant_id).await {
        assert_eq!(others, 0, "{table} after RESET ROLE");
    }

    // No way up: not to the owner, the definer or a superuser; not by
    // turning row security off; not by lifting the tables' policies.
    for sql in [
        "set role heliograph_owner",
        "set role heliograph_definer",
        "set session authorization heliograph_owner",
    ] {
        assert_eq!(refused(&mut conn, sql).await, "42501", "{sql}");
    }
    let up = format!("set role {}", superuser_name);
    let err = sqlx::raw_sql(sqlx::AssertSqlSafe(up.clone()))
        .execute(&mut conn)
        .await
        .expect_err("a superuser is out of reach");
    assert_eq!(
        err.as_database_error().and_then(|e| e.code()).as_deref(),
        Some("42501"),
        "{up}"
    );
    for sql in [
        "alter table pages no force row level security",
        "alter table pages disable row level security",
        "drop policy tenant_isolation on pages",
    ] {
        assert_eq!(refused(&mut conn, sql).await, "42501", "{sql}");
    }
    sqlx::raw_sql("set row_security = off")
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        refused(&mut conn, "select count(*) from pages").await,
        "42501",
        "with row_security off, a query RLS would filter fails rather than seeing all"
    );
    conn.close().await.unwrap();

    // Should a process be misconfigured to log in as the schema's owner, the
    // forced row-level security binds it too.
    let mut owner = PgConnection::connect(&app.db.owner_url).await.unwrap();
    for (table, own, others) in visible(&mut owner, &tables, &a.tenant_id).await {
        assert_eq!(
            (own, others),
            (0, 0),
            "{table}, as the owner without a tenant setting"
        );
    }
    sqlx::query("select set_config('app.tenant_id', $1, false)")
        .bind(&a.tenant_id)
        .execute(&mut owner)
        .await
        .unwrap();
    for (table, _, others) in visible(&mut owner, &tables, &a.tenant_id).await {
        assert_eq!(others, 0, "{table}, as the owner under A's setting");
    }
    owner.close().await.unwrap();
    admin.close().await.unwrap();
    app.finish().await;
}
