//! A PostgreSQL database of a test's own, reached through the roles
//! production uses (README § Database roles): the schema's owner migrates
//! it, the api and worker under test log in as the serving role, which owns
//! nothing, and the server's superuser looks at every tenant's rows for the
//! test's assertions. The roles come from `deploy/postgres-roles.sql`, the
//! file operators run, so the tests try that file too.
//!
//! It creates and drops the database only: the caller applies the migrations,
//! and no Heliograph code is called from here.

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection};

/// The roles' definitions, as operators and `deploy/dev` apply them.
pub const ROLES_SQL: &str = include_str!("../../../deploy/postgres-roles.sql");

/// The schema's owner (migrations).
pub const OWNER_ROLE: &str = "heliograph_owner";

/// The login role the api and the worker serve as.
pub const SERVE_ROLE: &str = "heliograph_serve";

/// A fresh, empty database owned by [`OWNER_ROLE`], on a server whose
/// superuser's URL the test gives. The caller applies the migrations (with
/// [`TestPostgres::owner_url`]); [`TestPostgres::drop_now`] removes it.
#[derive(Debug, Clone)]
pub struct TestPostgres {
    /// Its name, `hg_test_<uuid>`.
    pub name: String,
    server_url: String,
    database: PgConnectOptions,
}

impl TestPostgres {
    /// Makes the roles (once per server; parallel tests take turns) and a
    /// database `hg_test_<uuid>` owned by [`OWNER_ROLE`].
    ///
    /// # Panics
    /// When `server_url` is not a superuser's URL of a reachable server.
    pub async fn create(server_url: &str) -> Self {
        let options: PgConnectOptions = server_url
            .parse()
            .expect("the test server's URL is a PostgreSQL URL");
        let name = format!("hg_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = Self::admin(&options).await;
        sqlx::raw_sql(ROLES_SQL)
            .execute(&mut admin)
            .await
            .expect("deploy/postgres-roles.sql runs (as a superuser)");
        // The name is our own hg_test_<uuid>, never input.
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            r#"create database "{name}" owner {OWNER_ROLE}"#
        )))
        .execute(&mut admin)
        .await
        .expect("the test database is created");
        admin.close().await.ok();
        Self {
            database: options.clone().database(&name),
            name,
            server_url: server_url.to_owned(),
        }
    }

    /// The server's superuser on this database: sees and writes every
    /// tenant's rows (row-level security binds no superuser).
    #[must_use]
    pub fn admin_url(&self) -> String {
        self.database.to_url_lossy().to_string()
    }

    /// The schema's owner on this database: for the migrations.
    #[must_use]
    pub fn owner_url(&self) -> String {
        self.as_role(OWNER_ROLE)
    }

    /// The serving role on this database: what the api and worker connect as.
    #[must_use]
    pub fn app_url(&self) -> String {
        self.as_role(SERVE_ROLE)
    }

    /// This database, logged in as `role`: same server, no password (the
    /// test server trusts loopback; the superuser's password, if the test
    /// server's URL has one, is not the other roles').
    #[must_use]
    pub fn as_role(&self, role: &str) -> String {
        let mut options = PgConnectOptions::new_without_pgpass()
            .host(self.database.get_host())
            .port(self.database.get_port())
            .ssl_mode(self.database.get_ssl_mode())
            .username(role)
            .database(&self.name);
        if let Some(socket) = self.database.get_socket() {
            options = options.socket(socket);
        }
        options.to_url_lossy().to_string()
    }

    /// Drops the database, closing whatever is connected to it.
    ///
    /// # Panics
    /// When the server cannot be reached.
    pub async fn drop_now(&self) {
        let options: PgConnectOptions = self
            .server_url
            .parse()
            .expect("the test server's URL is a PostgreSQL URL");
        let mut admin = Self::admin(&options).await;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            r#"drop database if exists "{}" with (force)"#,
            self.name
        )))
        .execute(&mut admin)
        .await
        .expect("the test database is dropped");
        admin.close().await.ok();
    }

    async fn admin(options: &PgConnectOptions) -> PgConnection {
        options
            .connect()
            .await
            .expect("the test PostgreSQL server is reachable")
    }
}
