//! The database's half of tenant isolation, read from the catalog (so that a
//! later migration that forgets it fails here), and the roles the processes
//! may and may not serve as (README § Database roles). What a session of the
//! serving role can see is in `isolation`.

use std::process::Command;

use heliograph_store::{Store, StoreError};
use heliograph_testkit::{ScratchPostgres, TestPostgres};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection};

use crate::helpers::TestDatabase;

/// One policy as the catalog has it: to whom, permissive, for which
/// commands, and its two conditions as PostgreSQL prints them.
type Policy = (Vec<String>, bool, String, Option<String>, Option<String>);

#[tokio::test]
async fn every_tenant_table_forces_row_level_security_under_a_tenant_policy() {
    let db = TestDatabase::create().await;
    let mut conn = PgConnection::connect(&db.admin_url).await.unwrap();
    // Every table with a tenant_id column, and tenants (its own id is the tenant).
    let tables: Vec<(String, bool, bool)> = sqlx::query_as(
        "select c.relname::text, c.relrowsecurity, c.relforcerowsecurity
           from pg_class c
          where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p')
            and (c.relname = 'tenants'
                 or exists (select from pg_attribute a
                             where a.attrelid = c.oid and a.attname = 'tenant_id' and not a.attisdropped))
          order by 1",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let names: Vec<&str> = tables.iter().map(|(name, ..)| name.as_str()).collect();
    for known in [
        "tenants",
        "pages",
        "components",
        "subscribers",
        "deliveries",
    ] {
        assert!(names.contains(&known), "{known} is among {names:?}");
    }
    let acting_definer = "(CURRENT_USER = 'heliograph_definer'::name)".to_owned();
    for (table, enabled, forced) in &tables {
        assert!(enabled, "{table}: row-level security is enabled");
        assert!(
            forced,
            "{table}: row-level security is forced (binds the owner too)"
        );
        let policies: Vec<Policy> = sqlx::query_as(
            "select array(select case when r = 0 then 'public' else r::regrole::text end
                            from unnest(p.polroles) as r),
                    p.polpermissive, p.polcmd::text,
                    pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid)
               from pg_policy p
              where p.polrelid = $1::regclass",
        )
        .bind(table)
        .fetch_all(&mut conn)
        .await
        .unwrap();
        let key = if table == "tenants" {
            "id"
        } else {
            "tenant_id"
        };
        let isolating = Some(format!("({key} = app_tenant())"));
        let tenant_policy = |(roles, permissive, cmd, using, check): &Policy| {
            *permissive
                && cmd == "*"
                && roles.iter().any(|r| r == "public" || r == "heliograph_app")
                && *using == isolating
                && (check.is_none() || *check == isolating)
        };
        let definer_policy = |(roles, permissive, cmd, using, check): &Policy| {
            *permissive
                && cmd == "*"
                && roles == &["heliograph_definer"]
                && using.as_ref() == Some(&acting_definer)
                && check.as_ref() == Some(&acting_definer)
        };
        assert!(
            policies.iter().any(tenant_policy),
            "{table}: a policy lets the application see and write only {isolating:?}: {policies:?}"
        );
        // Any other permissive policy would widen what the application, or
        // the owner, sees: only the definer's, while it acts, may.
        for policy in &policies {
            assert!(
                !policy.1 || tenant_policy(policy) || definer_policy(policy),
                "{table}: a policy opens rows to someone else: {policy:?}"
            );
        }
    }
    conn.close().await.unwrap();
    db.drop_now().await;
}

#[tokio::test]
async fn every_security_definer_function_runs_as_the_definer_with_pg_temp_last() {
    let db = TestDatabase::create().await;
    let mut conn = PgConnection::connect(&db.admin_url).await.unwrap();
    let functions: Vec<(String, String, Option<Vec<String>>, bool)> = sqlx::query_as(
        "select p.oid::regprocedure::text, pg_get_userbyid(p.proowner)::text, p.proconfig,
                exists (select from aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
                         where a.grantee = 0 and a.privilege_type = 'EXECUTE')
           from pg_proc p
          where p.pronamespace = 'public'::regnamespace and p.prosecdef
          order by 1",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert!(
        functions.len() >= 20,
        "the hg_* functions are found: {functions:?}"
    );
    for (function, owner, config, public_may_run) in &functions {
        assert_eq!(
            owner, "heliograph_definer",
            "{function} runs as the definer"
        );
        let path = config
            .iter()
            .flatten()
            .find_map(|setting| setting.strip_prefix("search_path="))
            .unwrap_or_else(|| panic!("{function} sets its search_path: {config:?}"));
        let schemas: Vec<&str> = path.split(',').map(str::trim).collect();
        assert_eq!(
            schemas,
            ["public", "pg_temp"],
            "{function}: its schema, then pg_temp, last"
        );
        assert!(!public_may_run, "{function} is not executable by PUBLIC");
    }
    conn.close().await.unwrap();
    db.drop_now().await;
}

/// Starts the api binary with `database_url` and otherwise good settings;
/// answers whether it failed, and its standard error.
fn serve_with(database_url: &str) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_heliograph-api"))
        .env_clear()
        .env("DATABASE_URL", database_url)
        .env(
            "REDIS_URL",
            std::env::var("REDIS_URL").expect("REDIS_URL is set"),
        )
        .env("JWT_SECRET", "0123456789abcdef0123456789abcdef")
        .env("LINK_SECRET", "fedcba9876543210fedcba9876543210")
        .env("SECRETS_KEY", crate::helpers::secrets_key())
        .env("BIND_ADDR", "127.0.0.1:0")
        .output()
        .expect("the binary runs");
    (
        !output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn the_api_refuses_to_serve_as_a_superuser_or_as_the_schemas_owner() {
    let db = TestDatabase::create().await;
    let superuser: (String,) = {
        let mut conn = PgConnection::connect(&db.admin_url).await.unwrap();
        let name = sqlx::query_as("select current_user::text")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
        name
    };
    let cases = [
        (
            db.admin_url.clone(),
            format!(
                "heliograph-api: DATABASE_URL: refused: the role {:?} is a superuser",
                superuser.0
            ),
        ),
        (
            db.owner_url.clone(),
            "heliograph-api: DATABASE_URL: refused: the role \"heliograph_owner\" can act as heliograph_owner, the owner of"
                .to_owned(),
        ),
    ];
    for (url, expected) in cases {
        let (failed, stderr) = serve_with(&url);
        assert!(failed, "{expected}");
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert!(
            stderr.starts_with(&expected),
            "{stderr:?} starts with {expected:?}"
        );
        assert!(
            stderr.contains("README § Database roles"),
            "says where to read on: {stderr}"
        );
    }
    db.drop_now().await;
}

#[tokio::test]
async fn migrate_runs_as_the_owner_named_by_migration_database_url_only() {
    let db = TestDatabase::create().await;
    let migrate = |vars: &[(&str, &str)]| {
        let output = Command::new(env!("CARGO_BIN_EXE_heliograph-api"))
            .arg("migrate")
            .env_clear()
            .envs(vars.iter().copied())
            .output()
            .expect("the binary runs");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    // DATABASE_URL alone is the serving role's: not for migrations.
    let (ok, stderr) = migrate(&[("DATABASE_URL", &db.url)]);
    assert!(!ok);
    assert!(
        stderr.starts_with("heliograph-api: configuration: MIGRATION_DATABASE_URL is not set"),
        "{stderr}"
    );
    let (ok, stderr) = migrate(&[("MIGRATION_DATABASE_URL", &db.owner_url)]);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("migrations applied"), "{stderr}");
    db.drop_now().await;
}

/// Runs `sql` as the cluster's superuser on `url`'s database.
async fn admin(url: &str, sql: &'static str) {
    let mut conn = PgConnection::connect(url).await.unwrap();
    sqlx::raw_sql(sql)
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    conn.close().await.unwrap();
}

/// The problem `Store::connect` names for `url`'s role, if it refuses it.
async fn refusal(url: &str) -> Option<String> {
    match Store::connect(url, 1).await {
        Ok(store) => {
            store.pool().close().await;
            None
        }
        Err(StoreError::UnfitRole { problem, .. }) => Some(problem),
        Err(other) => panic!("{url}: {other}"),
    }
}

#[tokio::test]
async fn on_a_fresh_cluster_the_migrations_make_the_definer_and_unfit_serving_roles_are_refused() {
    // A cluster of this test's own: roles are cluster-wide, and this test
    // makes some that no other test should meet.
    let pg = tokio::task::spawn_blocking(ScratchPostgres::start)
        .await
        .unwrap();
    let server = pg.url();
    // The least an operator can do: an owner with CREATEROLE and its
    // database; the migrations make heliograph_app and heliograph_definer.
    admin(&server, "create role heliograph_owner login createrole").await;
    // On its own: CREATE DATABASE cannot run in the implicit transaction of several statements.
    admin(&server, "create database hg_fresh owner heliograph_owner").await;
    let fresh: PgConnectOptions = server
        .parse::<PgConnectOptions>()
        .unwrap()
        .database("hg_fresh");
    let as_role = |role: &str| fresh.clone().username(role).to_url_lossy().to_string();
    Store::migrate(&as_role("heliograph_owner"))
        .await
        .expect("the owner applies every migration");
    admin(
        &as_role("postgres"),
        "create role fit login; grant heliograph_app to fit;
         create role owners_friend login; grant heliograph_app, heliograph_owner to owners_friend;
         create role definers_friend login; grant heliograph_app, heliograph_definer to definers_friend;
         create role outsider login;
         create role no_inherit login noinherit; grant heliograph_app to no_inherit;
         create role bypass login bypassrls; grant heliograph_app to bypass;
         create role owner_of_one login; grant heliograph_app to owner_of_one;
         create table stray (id int); alter table stray owner to owner_of_one;",
    )
    .await;
    assert_eq!(refusal(&as_role("fit")).await, None);
    let cases = [
        (
            "heliograph_owner",
            "can act as heliograph_owner, the owner of",
        ),
        ("owners_friend", "can act as heliograph_owner, the owner of"),
        (
            "definers_friend",
            "can act as heliograph_definer, the owner of function hg_",
        ),
        (
            "owner_of_one",
            "can act as owner_of_one, the owner of table stray",
        ),
        ("bypass", "has BYPASSRLS"),
        ("postgres", "is a superuser"),
        (
            "outsider",
            "lacks the privileges of heliograph_app: grant heliograph_app to outsider",
        ),
        ("no_inherit", "lacks the privileges of heliograph_app"),
    ];
    for (role, expected) in cases {
        let problem = refusal(&as_role(role))
            .await
            .unwrap_or_else(|| panic!("{role} is refused"));
        assert!(problem.starts_with(expected), "{role}: {problem:?}");
    }

    // The role file operators run, on top: changes nothing that works.
    let db = TestPostgres::create(&server).await;
    Store::migrate(&db.owner_url()).await.unwrap();
    assert_eq!(refusal(&db.app_url()).await, None);
    assert_eq!(refusal(&as_role("fit")).await, None);
}
