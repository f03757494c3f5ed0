//! The binary refuses to start on bad configuration, with one line naming the setting.
//!
//! Only refusals at start; what a started API does is every other module's.

use std::net::TcpListener;
use std::process::Command;

use crate::helpers::TestDatabase;

/// A loopback port with nothing listening on it.
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn start(env: &[(&str, String)]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_heliograph-api"))
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v.as_str())))
        .output()
        .expect("the binary runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Settings that start the API, on a migrated database (the application's
/// role, created by the migrations, must exist).
fn good_env(database_url: &str) -> Vec<(&'static str, String)> {
    vec![
        ("DATABASE_URL", database_url.to_owned()),
        (
            "REDIS_URL",
            std::env::var("REDIS_URL").expect("REDIS_URL is set"),
        ),
        ("JWT_SECRET", "0123456789abcdef0123456789abcdef".to_owned()),
        ("LINK_SECRET", "fedcba9876543210fedcba9876543210".to_owned()),
        ("SECRETS_KEY", crate::helpers::secrets_key()),
        ("BIND_ADDR", "127.0.0.1:0".to_owned()),
    ]
}

fn with(
    db: &TestDatabase,
    name: &'static str,
    value: Option<String>,
) -> Vec<(&'static str, String)> {
    let mut env: Vec<_> = good_env(&db.url)
        .into_iter()
        .filter(|(k, _)| *k != name)
        .collect();
    if let Some(v) = value {
        env.push((name, v));
    }
    env
}

#[tokio::test]
async fn a_bad_setting_stops_the_api_with_one_line_naming_it() {
    let db = TestDatabase::create().await;
    let cases = [
        (
            with(&db, "DATABASE_URL", None),
            "heliograph-api: configuration: DATABASE_URL is not set",
        ),
        (
            with(&db, "JWT_SECRET", Some("short".into())),
            "heliograph-api: configuration: JWT_SECRET must be at least 32 bytes",
        ),
        (
            with(&db, "SECRETS_KEY", None),
            "heliograph-api: configuration: SECRETS_KEY is not set",
        ),
        (
            with(&db, "SECRETS_KEY", Some("k1:c2hvcnQ=".into())),
            "heliograph-api: configuration: SECRETS_KEY is malformed: key `k1` must be 32 random bytes",
        ),
        (
            with(&db, "BIND_ADDR", Some("everywhere".into())),
            "heliograph-api: configuration: BIND_ADDR is malformed",
        ),
        (
            with(
                &db,
                "DATABASE_URL",
                Some(format!("postgres://postgres@127.0.0.1:{}/x", closed_port())),
            ),
            "heliograph-api: DATABASE_URL: cannot connect to PostgreSQL",
        ),
        (
            with(
                &db,
                "REDIS_URL",
                Some(format!("redis://127.0.0.1:{}", closed_port())),
            ),
            "heliograph-api: REDIS_URL: cannot connect to Redis",
        ),
    ];
    for (env, expected) in cases {
        let (ok, stderr) = start(&env);
        assert!(!ok, "{expected}");
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert!(
            stderr.starts_with(expected),
            "{stderr:?} should start with {expected:?}"
        );
    }
    db.drop_now().await;
}

#[tokio::test]
async fn logs_are_json_lines_when_asked() {
    let db = TestDatabase::create().await;
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;

    let mut env = good_env(&db.url);
    env.push(("LOG_FORMAT", "json".to_owned()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_heliograph-api"))
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v.as_str())))
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let stderr = child.stderr.take().expect("piped stderr");
    // Every line is a JSON object, up to and including the one announcing the port.
    let mut listening = None;
    for line in BufReader::new(stderr).lines().take(20) {
        let line = line.expect("readable stderr");
        let entry: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(
            entry["level"].is_string() && entry["timestamp"].is_string(),
            "{line}"
        );
        if entry["message"] == "heliograph-api listening" {
            listening = Some(entry);
            break;
        }
    }
    child.kill().ok();
    child.wait().ok();
    let entry = listening.expect("the API announced its port");
    assert_eq!(entry["level"], "INFO");
    assert!(entry["port"].as_u64().is_some_and(|p| p > 0));
    db.drop_now().await;
}
