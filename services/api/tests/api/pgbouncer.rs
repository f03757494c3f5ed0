//! The store behind PgBouncer in transaction-pooling mode
//! (`DATABASE_POOLER=transaction`, docs/pgbouncer.md): with one server
//! connection shared by every client, whatever a client leaves on it the
//! next one meets, so a leak shows every time. The end-to-end and isolation
//! tests that run through it are in `notifications` and `isolation`.

use std::time::Duration;

use heliograph_domain::TenantId;
use heliograph_store::{PoolSettings, Pooler, Store};
use heliograph_testkit::ScratchPgBouncer;
use sqlx::{Connection as _, PgConnection, Row as _};

use crate::helpers::TestDatabase;

async fn store(url: &str, pooler: Pooler, statement_timeout: Duration, size: u32) -> Store {
    Store::connect_with(
        url,
        PoolSettings {
            statement_timeout,
            pooler,
            ..PoolSettings::new(size)
        },
    )
    .await
    .expect("the store connects through PgBouncer")
}

/// The statement timeout another client's transaction meets.
async fn neighbours_timeout(neighbour: &mut PgConnection) -> String {
    sqlx::raw_sql("show statement_timeout")
        .fetch_one(neighbour)
        .await
        .expect("the neighbour reads its setting")
        .get(0)
}

#[tokio::test]
async fn through_one_shared_server_connection_settings_stay_with_the_transaction_that_made_them() {
    let db = TestDatabase::create().await;
    let bouncer = ScratchPgBouncer::start(&db.admin_url, 1);
    let url = bouncer.url_for(&db.url);
    // Another client of the same pool: simple queries only (`raw_sql`), so
    // it shares the server connection without preparing anything on it.
    let mut neighbour = PgConnection::connect(&url).await.expect("a raw client");

    // The leak itself: a session setting (what the store used to make on
    // every connection, and still does without a transaction pooler) stays
    // on the server connection for whoever comes next.
    // Budgets of a second, not less: the store's own check of its role at
    // connect runs under them too, and must pass on a loaded machine.
    let session = store(&url, Pooler::None, Duration::from_secs(1), 1).await;
    assert_eq!(
        neighbours_timeout(&mut neighbour).await,
        "1s",
        "a session-level statement_timeout reaches other clients of the pooler"
    );
    session.pool().close().await;
    sqlx::raw_sql("set statement_timeout = '5min'")
        .execute(&mut neighbour)
        .await
        .expect("the neighbour sets its own");

    // With DATABASE_POOLER=transaction the timeout is the transaction's
    // own: enforced for its client, invisible to the others.
    let short = store(&url, Pooler::Transaction, Duration::from_secs(1), 1).await;
    let long = store(&url, Pooler::Transaction, Duration::from_secs(60), 1).await;
    let cancelled = sqlx::query("select pg_sleep(30)")
        .execute(short.pool())
        .await
        .expect_err("the short budget cancels a long statement");
    assert_eq!(
        cancelled
            .as_database_error()
            .and_then(|e| e.code())
            .as_deref(),
        Some("57014"),
        "cancelled by statement_timeout: {cancelled}"
    );
    let (slept, budget): (String, String) =
        sqlx::query_as("select pg_sleep(0.3)::text, current_setting('statement_timeout')")
            .fetch_one(long.pool())
            .await
            .expect("the long budget lets it run");
    assert_eq!((slept.as_str(), budget.as_str()), ("", "1min"));
    let mut tx = long.pool().begin().await.expect("a transaction");
    let budget: String = sqlx::query_scalar("select current_setting('statement_timeout')")
        .fetch_one(&mut *tx)
        .await
        .expect("read in the transaction");
    tx.commit().await.expect("commits");
    assert_eq!(
        budget, "1min",
        "a transaction of the store carries its budget"
    );
    assert_eq!(
        neighbours_timeout(&mut neighbour).await,
        "5min",
        "neither store left its statement_timeout on the shared connection"
    );

    // The tenant is transaction-local too: after the store's tenant
    // transaction, the next client on that server connection has none.
    short
        .tenant_tx(TenantId::new())
        .await
        .expect("a tenant transaction")
        .commit()
        .await
        .expect("it commits");
    let tenant: String =
        sqlx::raw_sql("select coalesce(current_setting('app.tenant_id', true), '')")
            .fetch_one(&mut neighbour)
            .await
            .expect("the neighbour reads the tenant setting")
            .get(0);
    assert_eq!(tenant, "", "no tenant is left on the shared connection");

    neighbour.close().await.expect("closes");
    short.pool().close().await;
    long.pool().close().await;
    drop(bouncer);
    db.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_tasks_share_two_server_connections_when_the_store_knows_the_pooler_is_transactional()
{
    const TASKS: usize = 32;
    const QUERIES: i64 = 25;
    let db = TestDatabase::create().await;
    let bouncer = ScratchPgBouncer::start(&db.admin_url, 2);
    let url = bouncer.url_for(&db.url);

    let pooled = store(&url, Pooler::Transaction, Duration::from_secs(30), 16).await;
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let store = pooled.clone();
            tokio::spawn(async move {
                let task = i64::try_from(task).expect("few tasks");
                for n in 0..QUERIES {
                    // Statements of different shapes and parameters, so a
                    // Bind that reached another client's statement would
                    // fail or answer wrongly.
                    let (sum, text): (i64, String) = if n % 2 == 0 {
                        sqlx::query_as("select $1::int8 + $2::int8, $3::text")
                            .bind(task)
                            .bind(n)
                            .bind(format!("{task}/{n}"))
                            .fetch_one(store.pool())
                            .await
                            .expect("an even query answers")
                    } else {
                        sqlx::query_as("select $2::int8 + $1::int8, $1::text || '/' || $2::text")
                            .bind(task)
                            .bind(n)
                            .fetch_one(store.pool())
                            .await
                            .expect("an odd query answers")
                    };
                    assert_eq!((sum, text), (task + n, format!("{task}/{n}")));
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("every task's queries answered rightly");
    }
    pooled.pool().close().await;

    // Without DATABASE_POOLER=transaction, sqlx names and keeps its
    // statements per client connection (as on every connection of a pool
    // with its statement cache on): the second client to prepare its first
    // statement on the one server connection finds the first's there.
    let bouncer_of_one = ScratchPgBouncer::start(&db.admin_url, 1);
    let url = bouncer_of_one.url_for(&db.url);
    let mut first = PgConnection::connect(&url).await.expect("a client");
    let mut second = PgConnection::connect(&url).await.expect("another client");
    let one: i64 = sqlx::query_scalar("select $1::int8")
        .bind(1_i64)
        .fetch_one(&mut first)
        .await
        .expect("the first client's statement runs");
    assert_eq!(one, 1);
    let clash = sqlx::query_scalar::<_, i64>("select $1::int8")
        .bind(2_i64)
        .fetch_one(&mut second)
        .await
        .expect_err("the second client's named statement clashes with the first's");
    assert_eq!(
        clash.as_database_error().and_then(|e| e.code()).as_deref(),
        Some("42P05"),
        "prepared statement already exists: {clash}"
    );
    first.close().await.expect("closes");
    second.close().await.expect("closes");
    drop((bouncer, bouncer_of_one));
    db.drop_now().await;
}

#[tokio::test]
async fn behind_a_transaction_pooler_the_relay_listens_only_through_its_own_url() {
    let db = TestDatabase::create().await;
    let bouncer = ScratchPgBouncer::start(&db.admin_url, 1);
    let pooled = store(
        &bouncer.url_for(&db.url),
        Pooler::Transaction,
        Duration::from_secs(30),
        2,
    )
    .await;
    // A LISTEN through the pooler would sit on a server connection other
    // clients are lent: the store does not make one, and the relay polls.
    assert!(
        pooled
            .listen_outbox()
            .await
            .expect("no connection is needed")
            .is_none(),
        "no LISTEN through a transaction pooler"
    );
    let mut listener = pooled
        .with_listen_url(Some(&db.url))
        .listen_outbox()
        .await
        .expect("LISTEN on PostgreSQL itself")
        .expect("a listener, given a URL");
    let mut admin = PgConnection::connect(&db.admin_url)
        .await
        .expect("the superuser connects");
    sqlx::raw_sql("notify heliograph_outbox")
        .execute(&mut admin)
        .await
        .expect("a notification is sent");
    tokio::time::timeout(Duration::from_secs(60), listener.recv())
        .await
        .expect("the notification arrives (a deadline for a hung test)")
        .expect("the listener's connection holds");
    admin.close().await.expect("closes");
    drop(listener);
    drop(bouncer);
    db.drop_now().await;
}
