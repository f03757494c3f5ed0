//! Page export against a real S3-compatible server (moto's server mode): the
//! published objects are the api's answers, byte for byte, with its
//! `Content-Type` and `Cache-Control`; private components never leave; what
//! a page no longer has is deleted; nothing is published without the
//! setting; a failing bucket is retried and holds back no notification; a
//! change made while no worker runs is published by the next one.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::TryStreamExt as _;
use heliograph_api::public_pages::{Doc, PUBLIC_CACHE_CONTROL};
use heliograph_testkit::MotoServer;
use heliograph_worker::export::doc_key;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::{Attribute, ObjectStore, ObjectStoreExt as _};
use serde_json::json;
use uuid::Uuid;

use crate::world::{World, until};

const BUCKET: &str = "pages";
const PREFIX: &str = "export";

/// Creates the bucket (moto takes unsigned requests) and answers a client of it.
async fn bucket(moto: &MotoServer) -> AmazonS3 {
    let created = reqwest::Client::new()
        .put(format!("{}/{BUCKET}", moto.url()))
        .send()
        .await
        .expect("moto answers");
    assert!(created.status().is_success(), "the bucket is created");
    AmazonS3Builder::new()
        .with_bucket_name(BUCKET)
        .with_endpoint(moto.url())
        .with_allow_http(true)
        .with_region("us-east-1")
        .with_access_key_id("test")
        .with_secret_access_key("test")
        .build()
        .expect("an S3 client")
}

/// The worker's settings that turn export on, against `moto`.
fn export_on(moto: &MotoServer) -> Vec<(&'static str, String)> {
    vec![
        ("SNAPSHOT_BUCKET_URL", format!("s3://{BUCKET}/{PREFIX}")),
        ("AWS_ENDPOINT_URL", moto.url()),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_ACCESS_KEY_ID", "test".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "test".to_owned()),
        // The export job's retries are logged at warn.
        ("RUST_LOG", "warn".to_owned()),
    ]
}

/// Every object in the bucket: its bytes by key.
async fn objects(s3: &AmazonS3) -> BTreeMap<String, Vec<u8>> {
    let metas: Vec<_> = s3.list(None).try_collect().await.unwrap_or_default();
    let mut out = BTreeMap::new();
    for meta in metas {
        if let Ok(got) = s3.get(&meta.location).await
            && let Ok(bytes) = got.bytes().await
        {
            out.insert(meta.location.to_string(), bytes.to_vec());
        }
    }
    out
}

/// The text of the object at `key`, if there is one.
async fn text(s3: &AmazonS3, key: &str) -> Option<String> {
    let got = s3.get(&Path::from(key)).await.ok()?;
    String::from_utf8(got.bytes().await.ok()?.to_vec()).ok()
}

/// Caddy running `deploy/failover.caddy` in front of an api that is down
/// (a closed port), the bucket on `moto` (through a site of its own that
/// marks requests as S3's for moto).
struct FailoverCaddy {
    child: std::process::Child,
    dir: std::path::PathBuf,
    port: u16,
}

impl FailoverCaddy {
    fn start(moto: &MotoServer) -> Self {
        let caddy = std::env::var_os("CADDY_BIN").map_or_else(
            || std::path::PathBuf::from("caddy"),
            std::path::PathBuf::from,
        );
        let free = || {
            std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map(|a| a.port())
                .expect("a free port")
        };
        let (port, down, shim) = (free(), free(), free());
        let deploy = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy");
        let dir = std::env::temp_dir().join(format!("hg-failover-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("a temporary folder");
        let config = dir.join("Caddyfile");
        std::fs::write(
            &config,
            format!(
                "{{\n\tadmin off\n\tauto_https off\n\tstorage file_system {dir}\n}}\n\
                 import {failover}\n\
                 http://:{port} {{\n\treverse_proxy 127.0.0.1:{down}\n\timport page_failover\n}}\n\
                 http://:{shim} {{\n\treverse_proxy {moto} {{\n\t\theader_up Authorization \"{scope}\"\n\t}}\n}}\n",
                dir = dir.display(),
                failover = deploy.join("failover.caddy").display(),
                moto = moto.url(),
                // moto's server guesses the service of an unsigned request
                // from its path, and guesses wrong for a bucket's object: an
                // (unchecked) S3 signature's scope tells it. What a public
                // bucket answers an anonymous GET, moto answers this.
                scope = "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/s3/aws4_request, \
                         SignedHeaders=host, Signature=0",
            ),
        )
        .expect("the Caddyfile is written");
        let child = std::process::Command::new(&caddy)
            .args(["run", "--adapter", "caddyfile", "--config"])
            .arg(&config)
            .env("SNAPSHOT_ORIGIN", format!("http://127.0.0.1:{shim}"))
            .env("SNAPSHOT_PATH", format!("/{BUCKET}/{PREFIX}"))
            .env("HOME", &dir)
            .env("XDG_DATA_HOME", &dir)
            .env("XDG_CONFIG_HOME", &dir)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "caddy ({}) does not run: {e}; set CADDY_BIN (deploy/dev test does)",
                    caddy.display()
                )
            });
        Self { child, dir, port }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for FailoverCaddy {
    fn drop(&mut self) {
        drop(self.child.kill());
        drop(self.child.wait());
        drop(std::fs::remove_dir_all(&self.dir));
    }
}

async fn slug_of(world: &World, page_id: &str) -> String {
    sqlx::query_scalar("select slug from pages where id = $1::uuid")
        .bind(page_id)
        .fetch_one(&world.admin)
        .await
        .expect("the page's slug")
}

#[tokio::test]
async fn every_page_change_is_published_as_the_api_serves_it_and_what_a_page_loses_is_deleted() {
    let world = World::start().await;
    let moto = tokio::task::spawn_blocking(MotoServer::start)
        .await
        .expect("moto starts");
    let s3 = bucket(&moto).await;
    let t = world.signup().await;
    let slug = slug_of(&world, &t.page_id).await;
    let api = world.component(&t, "Public API").await;
    let (status, _) = world
        .call(
            reqwest::Method::POST,
            &format!("/v1/pages/{}/components", t.page_id),
            &t.token,
            Some(&json!({"component": {"name": "Hidden Ledger Backend", "visibility": "private"}})),
        )
        .await;
    assert!(status.is_success(), "the private component is created");
    // A verified custom domain, as a passed DNS check leaves it.
    let custom = format!(
        "status-{}.example.com",
        &Uuid::new_v4().simple().to_string()[..8]
    );
    sqlx::query(
        "insert into domains (id, tenant_id, page_id, hostname, token, verified_at) \
         values ($1, $2::uuid, $3::uuid, $4, 'token', now())",
    )
    .bind(Uuid::new_v4())
    .bind(&t.tenant_id)
    .bind(&t.page_id)
    .bind(&custom)
    .execute(&world.admin)
    .await
    .expect("the domain is inserted");
    world.queues.nudge_page_changes().await.expect("nudged");

    let settings = export_on(&moto);
    let settings: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let worker = world.worker(&settings);
    let (status, _) = world
        .call(
            reqwest::Method::POST,
            &format!("/v1/pages/{}/incidents", t.page_id),
            &t.token,
            Some(&json!({"incident": {
                "name": "Slow dashboards", "status": "investigating", "body": "Looking into it.",
                // Not an outage: the uptime shown stays the same as time passes,
                // so the api's rendering and the worker's can be compared.
                "components": {api.as_str(): "degraded_performance"},
            }})),
        )
        .await;
    assert!(status.is_success(), "the incident is opened");

    // (a) Published under both hosts, with the incident in it.
    let hosts = [format!("{slug}.heliograph.test"), custom.clone()];
    for host in &hosts {
        let key = format!("{PREFIX}/{host}/api/v2/incidents/unresolved.json");
        until(
            "the page is published with the incident",
            Duration::from_secs(60),
            async || {
                text(&s3, &key)
                    .await
                    .is_some_and(|t| t.contains("Slow dashboards"))
            },
        )
        .await;
    }
    // Every object equals the api's answer to an anonymous reader on that host.
    for host in &hosts {
        for doc in Doc::ALL {
            let answer = world
                .client
                .get(world.url(doc.path()))
                .header("Host", host)
                .send()
                .await
                .expect("the api answers");
            assert_eq!(answer.status(), 200, "{host}{}", doc.path());
            let header = |name: &str| {
                answer
                    .headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            let (content_type, cache_control) = (header("content-type"), header("cache-control"));
            let body = answer.bytes().await.expect("a body");
            let key = Path::from(format!("{PREFIX}/{host}/{}", doc_key(doc)));
            let object = s3.get(&key).await.expect("the document is published");
            let attributes = object.attributes.clone();
            let published = object.bytes().await.expect("its bytes");
            assert!(
                published == body,
                "{host}{}: the published bytes are the api's",
                doc.path()
            );
            assert_eq!(
                attributes.get(&Attribute::ContentType).map(|v| v.as_ref()),
                content_type.as_deref(),
                "{key}"
            );
            assert_eq!(
                attributes.get(&Attribute::CacheControl).map(|v| v.as_ref()),
                cache_control.as_deref(),
                "{key}"
            );
            assert_eq!(cache_control.as_deref(), Some(PUBLIC_CACHE_CONTROL));
        }
    }

    // With the api down, Caddy with deploy/failover.caddy answers from the bucket.
    let caddy = FailoverCaddy::start(&moto);
    for doc in [Doc::Page, Doc::History, Doc::Summary, Doc::Badge] {
        let key = Path::from(format!("{PREFIX}/{}/{}", hosts[0], doc_key(doc)));
        let published = s3
            .get(&key)
            .await
            .expect("published")
            .bytes()
            .await
            .expect("bytes");
        let mut answer = None;
        until(
            "Caddy answers from the bucket",
            Duration::from_secs(30),
            async || {
                answer = reqwest::Client::new()
                    .get(format!("{}{}", caddy.url(), doc.path()))
                    .header("Host", &hosts[0])
                    .send()
                    .await
                    .ok()
                    .filter(|r| r.status() == 200);
                answer.is_some()
            },
        )
        .await;
        let answer = answer.expect("an answer");
        assert_eq!(
            answer
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some(doc.content_type()),
            "{}",
            doc.path()
        );
        assert_eq!(
            answer
                .headers()
                .get("cache-control")
                .and_then(|v| v.to_str().ok()),
            Some(PUBLIC_CACHE_CONTROL)
        );
        assert!(
            answer.bytes().await.expect("a body") == published,
            "{}",
            doc.path()
        );
    }
    drop(caddy);

    // (b) The private component is in no published object.
    let all = objects(&s3).await;
    assert!(all.len() >= 2 * Doc::ALL.len(), "{:?}", all.keys());
    for (key, bytes) in &all {
        assert!(
            !String::from_utf8_lossy(bytes).contains("Hidden Ledger"),
            "{key} holds the private component"
        );
    }

    // (c) A custom domain removed: its copies go, the platform host's stay.
    sqlx::query("delete from domains where hostname = $1")
        .bind(&custom)
        .execute(&world.admin)
        .await
        .expect("the domain is deleted");
    world.queues.nudge_page_changes().await.expect("nudged");
    let custom_prefix = format!("{PREFIX}/{custom}/");
    until(
        "the removed domain's copies are deleted",
        Duration::from_secs(60),
        async || {
            !objects(&s3)
                .await
                .keys()
                .any(|k| k.starts_with(&custom_prefix))
        },
    )
    .await;
    assert!(
        text(&s3, &format!("{PREFIX}/{}/index.html", hosts[0]))
            .await
            .is_some(),
        "the platform host's copy stays"
    );
    // A page deleted: all of its objects go.
    sqlx::query("delete from pages where id = $1::uuid")
        .bind(&t.page_id)
        .execute(&world.admin)
        .await
        .expect("the page is deleted");
    world.queues.nudge_page_changes().await.expect("nudged");
    until(
        "the deleted page's objects are deleted",
        Duration::from_secs(60),
        async || objects(&s3).await.is_empty(),
    )
    .await;
    drop(worker);
    world.finish().await;
}

#[tokio::test]
async fn nothing_is_published_without_the_setting_and_a_failing_bucket_holds_back_no_notification()
{
    let world = World::start().await;
    let mut moto = tokio::task::spawn_blocking(MotoServer::start)
        .await
        .expect("moto starts");
    let s3 = bucket(&moto).await;
    let t = world.signup().await;
    let slug = slug_of(&world, &t.page_id).await;
    let api = world.component(&t, "API").await;
    let subscribers = world.email_subscribers(&t, 2).await;

    // (d) Off by default: the S3 settings alone publish nothing.
    let mut settings = export_on(&moto);
    settings.retain(|(k, _)| *k != "SNAPSHOT_BUCKET_URL");
    let settings: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let worker = world.worker(&settings);
    let (status, _) = world.open_incident(&t, &api, "First outage").await;
    assert!(status.is_success());
    until(
        "the first incident's emails arrive",
        Duration::from_secs(60),
        async || world.heard(&subscribers).len() == subscribers.len(),
    )
    .await;
    assert!(objects(&s3).await.is_empty(), "nothing is published");
    worker.kill();

    // (e) The bucket down: the export fails and is retried; the
    // notifications go out all the same.
    moto.stop();
    let settings = export_on(&moto);
    let settings: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let worker = world.worker(&settings);
    let (status, _) = world.open_incident(&t, &api, "Second outage").await;
    assert!(status.is_success());
    until(
        "the second incident's emails arrive",
        Duration::from_secs(60),
        async || world.heard(&subscribers).values().all(|m| m.len() >= 2),
    )
    .await;
    until(
        "the failed export is to be retried",
        Duration::from_secs(60),
        async || {
            // The export job's first step reads the page's manifest.
            worker.logged("Failed to read a page's manifest") > 0 && worker.logged("will retry") > 0
        },
    )
    .await;
    moto.restart();
    let s3 = bucket(&moto).await;
    let key = format!("{PREFIX}/{slug}.heliograph.test/api/v2/incidents/unresolved.json");
    until(
        "a retry publishes the page",
        Duration::from_secs(120),
        async || {
            text(&s3, &key)
                .await
                .is_some_and(|t| t.contains("Second outage"))
        },
    )
    .await;

    // A change while no worker runs is published by the next one to start
    // (from the cursor the last one left).
    worker.kill();
    let (status, _) = world.open_incident(&t, &api, "Third outage").await;
    assert!(status.is_success());
    let worker = world.worker(&settings);
    until(
        "the next worker publishes the change",
        Duration::from_secs(60),
        async || {
            text(&s3, &key)
                .await
                .is_some_and(|t| t.contains("Third outage"))
        },
    )
    .await;
    drop(worker);
    world.finish().await;
}
