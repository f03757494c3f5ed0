//! The pool's liveness check (`PoolSettings::ping_after_idle`), seen on the
//! wire: a loopback proxy between the pool and PostgreSQL counts the round
//! trips the pool makes. The worker's pool pings only a connection that
//! rested; the API's pings before every use (its 503 budget rests on it).
//! (sqlx itself pings each connection as it is given back, whatever the
//! settings: that one is after the caller has its answer.)

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use heliograph_store::{PoolSettings, Store};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions as _, Connection as _, PgConnection};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use crate::helpers::TestDatabase;

/// Who spoke last on a proxied connection, and how many times the client
/// spoke after the server (or first): the round trips it made.
#[derive(Default)]
struct Turns {
    client_last: bool,
    round_trips: u64,
}

/// A TCP proxy on loopback in front of the test's PostgreSQL server.
struct CountingProxy {
    addr: std::net::SocketAddr,
    turns: Arc<Mutex<Turns>>,
    accept: tokio::task::JoinHandle<()>,
}

impl CountingProxy {
    async fn start(upstream: (String, u16)) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let addr = listener.local_addr().expect("an address");
        let turns = Arc::new(Mutex::new(Turns::default()));
        let shared = Arc::clone(&turns);
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let server = TcpStream::connect(upstream.clone())
                    .await
                    .expect("PostgreSQL answers");
                tokio::spawn(pump(client, server, Arc::clone(&shared)));
            }
        });
        Self {
            addr,
            turns,
            accept,
        }
    }

    fn round_trips(&self) -> u64 {
        self.turns
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .round_trips
    }

    fn reset(&self) {
        let mut turns = self.turns.lock().unwrap_or_else(PoisonError::into_inner);
        turns.round_trips = 0;
        turns.client_last = false;
    }
}

impl Drop for CountingProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Copies both ways until either side closes, counting the client's turns.
async fn pump(client: TcpStream, server: TcpStream, turns: Arc<Mutex<Turns>>) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let upstream_turns = Arc::clone(&turns);
    let up = async move {
        let mut buf = vec![0; 64 * 1024];
        while let Ok(n @ 1..) = client_read.read(&mut buf).await {
            {
                let mut t = upstream_turns
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                if !t.client_last {
                    t.round_trips += 1;
                    t.client_last = true;
                }
            }
            if server_write.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
    };
    let down = async move {
        let mut buf = vec![0; 64 * 1024];
        while let Ok(n @ 1..) = server_read.read(&mut buf).await {
            turns
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .client_last = false;
            if client_write.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
    };
    tokio::select! {
        () = up => {}
        () = down => {}
    }
}

/// The test database's serving-role URL, with the proxy's port.
fn through(proxy: &CountingProxy, db: &TestDatabase) -> String {
    let options: PgConnectOptions = db.url.parse().expect("a PostgreSQL URL");
    options
        .host("127.0.0.1")
        .port(proxy.addr.port())
        .to_url_lossy()
        .to_string()
}

fn upstream(db: &TestDatabase) -> (String, u16) {
    let options: PgConnectOptions = db.url.parse().expect("a PostgreSQL URL");
    (options.get_host().to_owned(), options.get_port())
}

/// One connection, warmed (its statement prepared), then `n` uses: the
/// round trips those uses took.
async fn round_trips_of(settings: PoolSettings, db: &TestDatabase, n: u64) -> u64 {
    let proxy = CountingProxy::start(upstream(db)).await;
    let store = Store::connect_with(&through(&proxy, db), settings)
        .await
        .expect("the pool connects through the proxy");
    store.ping().await.expect("a first query");
    proxy.reset();
    for _ in 0..n {
        store.ping().await.expect("a query");
    }
    let trips = proxy.round_trips();
    store.pool().close().await;
    trips
}

#[tokio::test]
async fn a_pool_in_steady_use_pings_only_when_told_to_ping_before_every_use() {
    const USES: u64 = 20;
    let db = TestDatabase::create().await;
    let one = PoolSettings::new(1);
    let eager = round_trips_of(one, &db, USES).await;
    let rested = round_trips_of(
        PoolSettings {
            ping_after_idle: Some(Duration::from_secs(10)),
            ..one
        },
        &db,
        USES,
    )
    .await;
    // sqlx pings every connection as it comes back to the pool (its
    // `return_to_pool`, unconditionally): after the caller has its answer,
    // so off the caller's path, but a round trip all the same.
    assert_eq!(
        rested,
        2 * USES,
        "pinging only after a rest: the query, and sqlx's ping on release"
    );
    assert_eq!(
        eager,
        3 * USES,
        "pinging before every use too: one round trip more a use"
    );
    db.drop_now().await;
}

#[tokio::test]
async fn a_connection_that_rested_is_checked_first_and_replaced_when_the_server_closed_it() {
    const REST: Duration = Duration::from_millis(5);
    let db = TestDatabase::create().await;
    let store = Store::connect_with(
        &db.url,
        PoolSettings {
            ping_after_idle: Some(REST),
            ..PoolSettings::new(1)
        },
    )
    .await
    .expect("the pool connects");
    let pid: i32 = sqlx::query_scalar("select pg_backend_pid()")
        .fetch_one(store.pool())
        .await
        .expect("the pooled connection's backend");
    // The server closes the pooled connection (a restart, a failover, an
    // idle timeout in between would do the same).
    let mut admin = PgConnection::connect(&db.admin_url)
        .await
        .expect("a superuser");
    let terminated: bool = sqlx::query_scalar("select pg_terminate_backend($1)")
        .bind(pid)
        .fetch_one(&mut admin)
        .await
        .expect("the backend is told to go");
    assert!(terminated, "the pooled connection's backend is terminated");
    let gone = loop {
        let alive: bool =
            sqlx::query_scalar("select exists (select from pg_stat_activity where pid = $1)")
                .bind(pid)
                .fetch_one(&mut admin)
                .await
                .expect("the server's view");
        if !alive {
            break Instant::now();
        }
        tokio::task::yield_now().await;
    };
    // Rested: counted from the backend's end, which comes after the pool
    // took the connection back (sqlx's ping on release, after the caller's
    // answer, would have found it dead otherwise, and dropped it).
    while gone.elapsed() <= REST {
        tokio::task::yield_now().await;
    }
    // The caller never sees the dead connection: the check before handing
    // it out finds it gone, and a new one serves.
    let now: i32 = sqlx::query_scalar("select pg_backend_pid()")
        .fetch_one(store.pool())
        .await
        .expect("a rested connection the server closed is replaced, not handed out");
    assert_ne!(now, pid, "a new connection");
    store.pool().close().await;
    drop(admin.close().await);
    db.drop_now().await;
}
