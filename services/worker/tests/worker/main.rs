//! The worker binary as a process: it refuses to start on bad configuration
//! with one line naming the setting; it survives faults (`faults`), stops
//! cleanly (`shutdown`) and keeps to the plans' monthly limits
//! (`plan_limits`), publishes pages to a bucket (`export`), and shares the
//! work with another worker behind api replicas and a load balancer
//! (`replicas`). Its jobs are exercised in-process, with the API, in
//! `services/api/tests/api/`.

mod export;
mod faults;
mod frozen;
mod plan_limits;
mod replicas;
mod shutdown;
mod world;

use std::net::TcpListener;
use std::process::Command;

use heliograph_store::Store;
use heliograph_testkit::TestPostgres;

fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("a local address").port()
}

#[tokio::test]
async fn a_bad_setting_stops_the_worker_with_one_line_naming_it() {
    let server_url = std::env::var("TEST_DATABASE_URL")
        .or_else(|_| std::env::var("DATABASE_URL"))
        .expect("TEST_DATABASE_URL is set: run the tests with `deploy/dev test`");
    let db = TestPostgres::create(&server_url).await;
    Store::migrate(&db.owner_url())
        .await
        .expect("migrations apply as the schema's owner");
    let good = [
        ("DATABASE_URL", db.app_url()),
        (
            "REDIS_URL",
            std::env::var("REDIS_URL").expect("REDIS_URL is set"),
        ),
        ("SMTP_URL", "smtp://127.0.0.1:1025".to_owned()),
        ("LINK_SECRET", "fedcba9876543210fedcba9876543210".to_owned()),
        (
            "SECRETS_KEY",
            "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=".to_owned(),
        ),
    ];
    let superuser = server_url
        .parse::<sqlx::postgres::PgConnectOptions>()
        .expect("a PostgreSQL URL")
        .get_username()
        .to_owned();
    let refused_superuser = format!("DATABASE_URL: refused: the role {superuser:?} is a superuser");
    let cases: [(&str, Option<String>, &str); 9] = [
        ("SMTP_URL", None, "configuration: SMTP_URL is not set"),
        (
            "SMTP_URL",
            Some("gopher://mail".into()),
            "SMTP_URL: is malformed",
        ),
        (
            "WORKER_CONCURRENCY",
            Some("lots".into()),
            "configuration: WORKER_CONCURRENCY is malformed",
        ),
        (
            "DATABASE_URL",
            Some(format!("postgres://postgres@127.0.0.1:{}/x", closed_port())),
            "DATABASE_URL: cannot connect to PostgreSQL",
        ),
        ("DATABASE_URL", Some(db.admin_url()), &refused_superuser),
        (
            "DATABASE_URL",
            Some(db.owner_url()),
            "DATABASE_URL: refused: the role \"heliograph_owner\" can act as heliograph_owner",
        ),
        (
            "REDIS_URL",
            Some(format!("redis://127.0.0.1:{}", closed_port())),
            "REDIS_URL: cannot connect to Redis",
        ),
        (
            "DATABASE_POOLER",
            Some("statement".into()),
            "configuration: DATABASE_POOLER is malformed",
        ),
        (
            "DATABASE_LISTEN_URL",
            Some(format!("postgres://postgres@127.0.0.1:{}/x", closed_port())),
            "DATABASE_LISTEN_URL: cannot LISTEN there",
        ),
    ];
    for (name, value, expected) in cases {
        let mut command = Command::new(env!("CARGO_BIN_EXE_heliograph-worker"));
        command.env_clear();
        for (k, v) in &good {
            if *k != name {
                command.env(k, v);
            }
        }
        if let Some(v) = &value {
            command.env(name, v);
        }
        let output = command.output().expect("the binary runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{expected}");
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert!(
            stderr.starts_with(&format!("heliograph-worker: {expected}")),
            "{stderr:?} should name {expected:?}"
        );
    }
    db.drop_now().await;
}
