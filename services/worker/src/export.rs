//! Page export: every public page's documents, published to S3-compatible
//! object storage (`SNAPSHOT_BUCKET_URL`), so that a page outlives the
//! platform (see `docs/page-export.md`).
//!
//! ```text
//! page_changes ──(nudge / poll)──► reader (one worker at a time) ──► export-page jobs
//!                                                                     │ render as the api does
//!                                                                     ▼
//!                                      <prefix>/<host>/index.html, /history, /api/v2/…, …
//! ```
//!
//! - **What**: the documents an anonymous reader gets from the api, links
//!   from `/` (as on the page's own host), rendered by the api's own code
//!   (`heliograph_api::public_pages`), so the bytes are the api's bytes; each
//!   object carries the api's `Content-Type` and `Cache-Control`. Members'
//!   views (private components) are never rendered here.
//! - **Where**: under the page's platform host (`<slug>.<base domain>`) and
//!   each verified custom domain, so that a CDN or a proxy can map
//!   `Host` + path to a key; a manifest per page (`_heliograph/pages/<id>.json`)
//!   says which hosts it was published under, so the copies of a host the
//!   page no longer has, or of a deleted page, can be deleted.
//! - **When**: the triggers log every change to `page_changes`; after a
//!   nudge on the page-changes channel (or every [`POLL_INTERVAL`]) one
//!   worker at a time (a short lease in Redis) reads what changed since the
//!   cursor kept in Redis and queues one `export-page` job per page. A job is
//!   retried with backoff, in its own queue: a failing bucket holds back no
//!   notification and no other page. A cursor older than [`CURSOR_MAX_AGE`]
//!   (the worker down longer than `page_changes` is kept), or none, queues
//!   every page and every page the bucket holds a manifest of.
//! - **Order**: a job reads the change log's head before it reads the page,
//!   and after publishing looks whether the page changed since; if so it
//!   publishes again. Whichever job writes last thus writes the newest
//!   state, without a lock held across the uploads.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use futures::{StreamExt as _, TryStreamExt as _};
use heliograph_api::public_pages::{
    Doc, PUBLIC_CACHE_CONTROL, canonical_url, read_public_page, render_public,
};
use heliograph_domain::PageId;
use heliograph_runtime::{SettingError, Settings};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::{
    Attribute, AttributeValue, Attributes, ClientOptions, ObjectStore, ObjectStoreExt as _,
    PutOptions, PutPayload, RetryConfig,
};
use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::{Context, Error, ExportPage, ExportSweep};

/// How often the change log is read without a nudge.
pub const POLL_INTERVAL: Duration = Duration::from_secs(5);

/// A cursor last moved longer ago than this may have missed changes that
/// `page_changes` no longer holds (it keeps an hour): every page is queued.
pub const CURSOR_MAX_AGE: Duration = Duration::from_secs(30 * 60);

/// How long the reader's lease lasts if its holder dies holding it.
const LEASE: Duration = Duration::from_secs(10);

/// Where pages are exported to (`SNAPSHOT_BUCKET_URL` and the `AWS_*` settings).
#[derive(Clone)]
pub struct ExportConfig {
    /// The bucket.
    pub bucket: String,
    /// The key prefix, without slashes at either end (may be empty).
    pub prefix: String,
    /// `AWS_ENDPOINT_URL`: an S3-compatible server's URL (none: AWS).
    pub endpoint: Option<String>,
    /// `AWS_REGION` (default `us-east-1`).
    pub region: String,
    /// `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` (none: the instance's
    /// or container's role).
    pub keys: Option<(SecretString, SecretString)>,
    /// `AWS_SESSION_TOKEN`, with temporary keys.
    pub session_token: Option<SecretString>,
}

impl std::fmt::Debug for ExportConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The keys are never printed.
        f.debug_struct("ExportConfig")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

impl ExportConfig {
    /// The settings, or `None` when `SNAPSHOT_BUCKET_URL` is unset or empty
    /// (export off, the default).
    pub fn from_settings(s: &Settings) -> Result<Option<Self>, SettingError> {
        let raw = s.or("SNAPSHOT_BUCKET_URL", "");
        let raw = raw.trim();
        if raw.is_empty() {
            return Ok(None);
        }
        let (bucket, prefix) = parse_bucket_url(raw).ok_or_else(|| {
            SettingError::new("SNAPSHOT_BUCKET_URL", "must be s3://<bucket>[/<prefix>]")
        })?;
        let endpoint = {
            let e = s.or("AWS_ENDPOINT_URL", "");
            let e = e.trim().trim_end_matches('/');
            if e.is_empty() {
                None
            } else {
                let url = url::Url::parse(e)
                    .map_err(|_| SettingError::new("AWS_ENDPOINT_URL", "must be an http(s) URL"))?;
                if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
                    return Err(SettingError::new(
                        "AWS_ENDPOINT_URL",
                        "must be an http(s) URL",
                    ));
                }
                Some(e.to_owned())
            }
        };
        let region = s.or("AWS_REGION", "us-east-1").trim().to_owned();
        if region.is_empty() {
            return Err(SettingError::new("AWS_REGION", "must not be empty"));
        }
        let id = s.or("AWS_ACCESS_KEY_ID", "");
        let key = s.or("AWS_SECRET_ACCESS_KEY", "");
        let keys = match (id.trim().is_empty(), key.trim().is_empty()) {
            (true, true) => None,
            (false, false) => Some((SecretString::from(id), SecretString::from(key))),
            _ => {
                return Err(SettingError::new(
                    "AWS_SECRET_ACCESS_KEY",
                    "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are set together or not at all",
                ));
            }
        };
        let token = s.or("AWS_SESSION_TOKEN", "");
        Ok(Some(Self {
            bucket,
            prefix,
            endpoint,
            region,
            keys,
            session_token: (!token.trim().is_empty()).then(|| SecretString::from(token)),
        }))
    }
}

/// `s3://bucket/some/prefix/` → (`bucket`, `some/prefix`).
fn parse_bucket_url(raw: &str) -> Option<(String, String)> {
    let rest = raw.strip_prefix("s3://")?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    // S3's bucket naming rules, in short: what a URL's host may hold.
    let valid_bucket = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
    let prefix = prefix.trim_matches('/');
    let valid_prefix = prefix.is_empty()
        || (prefix
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
            && !prefix.contains(['?', '#', '\\']));
    (valid_bucket && valid_prefix).then(|| (bucket.to_owned(), prefix.to_owned()))
}

/// The exporter a worker holds when export is on.
pub struct PageExport {
    store: Arc<AmazonS3>,
    prefix: String,
    redis: redis::Client,
    namespace: String,
}

/// What a page was last published under.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Manifest {
    hosts: BTreeSet<String>,
}

impl PageExport {
    /// The client `config` describes (no request is made).
    pub fn new(
        config: &ExportConfig,
        redis_url: &SecretString,
        namespace: &str,
    ) -> anyhow::Result<Self> {
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&config.bucket)
            .with_region(&config.region)
            .with_client_options(
                ClientOptions::new()
                    .with_timeout(Duration::from_secs(20))
                    .with_connect_timeout(Duration::from_secs(5)),
            )
            // A few quick retries here; the job's own backoff does the rest.
            .with_retry(RetryConfig {
                max_retries: 2,
                retry_timeout: Duration::from_secs(15),
                ..RetryConfig::default()
            });
        if let Some(endpoint) = &config.endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"));
        }
        if let Some((id, key)) = &config.keys {
            builder = builder
                .with_access_key_id(id.expose_secret())
                .with_secret_access_key(key.expose_secret());
        }
        if let Some(token) = &config.session_token {
            builder = builder.with_token(token.expose_secret());
        }
        let store = builder
            .build()
            .context("SNAPSHOT_BUCKET_URL: the bucket's settings are refused")?;
        let redis =
            redis::Client::open(redis_url.expose_secret()).context("REDIS_URL: is malformed")?;
        Ok(Self {
            store: Arc::new(store),
            prefix: config.prefix.clone(),
            redis,
            namespace: namespace.to_owned(),
        })
    }

    fn key(&self, rest: &str) -> Path {
        if self.prefix.is_empty() {
            Path::from(rest)
        } else {
            Path::from(format!("{}/{rest}", self.prefix))
        }
    }

    fn manifest_key(&self, page: PageId) -> Path {
        self.key(&format!("_heliograph/pages/{page}.json"))
    }

    async fn manifest(&self, page: PageId) -> anyhow::Result<Manifest> {
        match self.store.get(&self.manifest_key(page)).await {
            Ok(got) => {
                let bytes = got
                    .bytes()
                    .await
                    .context("Failed to read a page's manifest")?;
                // One that does not parse is rewritten whole by this publish.
                Ok(serde_json::from_slice(&bytes).unwrap_or_default())
            }
            Err(object_store::Error::NotFound { .. }) => Ok(Manifest::default()),
            Err(e) => Err(anyhow::Error::new(e).context("Failed to read a page's manifest")),
        }
    }

    /// Deletes every object under `host`.
    async fn delete_host(&self, host: &str) -> anyhow::Result<()> {
        let prefix = self.key(host);
        let listed = self
            .store
            .list(Some(&prefix))
            .map_ok(|m| m.location)
            .boxed();
        self.store
            .delete_stream(listed)
            .try_collect::<Vec<_>>()
            .await
            .with_context(|| format!("Failed to delete the copies under {host}"))?;
        Ok(())
    }

    /// The pages whose manifests the bucket holds.
    async fn manifested_pages(&self) -> anyhow::Result<Vec<PageId>> {
        let prefix = self.key("_heliograph/pages");
        let metas: Vec<_> = self
            .store
            .list(Some(&prefix))
            .try_collect()
            .await
            .context("Failed to list the bucket's page manifests")?;
        Ok(metas
            .iter()
            .filter_map(|m| {
                m.location
                    .filename()?
                    .strip_suffix(".json")?
                    .parse::<uuid::Uuid>()
                    .ok()
            })
            .map(PageId::from)
            .collect())
    }
}

/// The key of `doc` under a host: its path, `index.html` for the page itself.
#[must_use]
pub fn doc_key(doc: Doc) -> &'static str {
    match doc {
        Doc::Page => "index.html",
        other => other.path().trim_start_matches('/'),
    }
}

/// Publishes one page (or deletes what it no longer has), again as long as
/// it changed while being published. Idempotent.
pub(crate) async fn handle(job: ExportPage, ctx: Context) -> Result<(), Error> {
    let Some(export) = ctx.export.as_ref() else {
        return Ok(());
    };
    for _ in 0..3 {
        let head = ctx.store.page_changes_head().await?;
        publish(&ctx, export, job.page_id)
            .await
            .map_err(Error::Transient)?;
        let (changed, _) = ctx.store.page_changes_since(head).await?;
        if !changed.contains(&job.page_id) {
            return Ok(());
        }
    }
    // Changing faster than it publishes: the next job takes it from here.
    ctx.queues.push(job).await?;
    Ok(())
}

/// Every page there is, by id.
async fn every_page(ctx: &Context) -> Result<Vec<PageId>, heliograph_store::StoreError> {
    Ok(ctx
        .store
        .page_routes()
        .await?
        .iter()
        .map(|r| r.page_id)
        .collect())
}

/// Queues an export of every page the bucket holds a manifest of that is
/// no longer in the database (so that its objects are deleted). Idempotent.
pub(crate) async fn sweep(ctx: Context) -> Result<(), Error> {
    let Some(export) = ctx.export.as_ref() else {
        return Ok(());
    };
    let held = export.manifested_pages().await.map_err(Error::Transient)?;
    let live: BTreeSet<PageId> = every_page(&ctx).await?.into_iter().collect();
    let gone: Vec<PageId> = held.into_iter().filter(|p| !live.contains(p)).collect();
    ctx.queues
        .push_all(gone.into_iter().map(|page_id| ExportPage { page_id }))
        .await?;
    Ok(())
}

async fn publish(ctx: &Context, export: &PageExport, page: PageId) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let before = export.manifest(page).await?;
    let route = ctx
        .store
        .page_routes()
        .await?
        .into_iter()
        .find(|r| r.page_id == page);
    let public = match &route {
        Some(r) => {
            let mut domains: Vec<String> = ctx
                .store
                .routable_domains()
                .await?
                .into_iter()
                .filter(|d| d.page_id == page)
                .map(|d| d.hostname.to_string())
                .collect();
            domains.sort();
            let canonical = domains.first().map(|h| canonical_url(h));
            read_public_page(&ctx.store, &ctx.urls, canonical, r.tenant_id, page)
                .await?
                .map(|p| (p, domains))
        }
        None => None,
    };
    let Some((public, domains)) = public else {
        // Deleted: everything it had goes.
        for host in &before.hosts {
            export.delete_host(host).await?;
        }
        match export.store.delete(&export.manifest_key(page)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => {
                return Err(anyhow::Error::new(e).context("Failed to delete a page's manifest"));
            }
        }
        tracing::info!(page.id = %page, hosts = before.hosts.len(), "exported page deleted");
        return Ok(());
    };
    let mut hosts = BTreeSet::new();
    hosts.insert(format!(
        "{}.{}",
        public.data.page.slug,
        ctx.urls.base_host()
    ));
    hosts.extend(domains);
    // Rendered once, as a snapshot renders them for its own host: the same
    // bytes serve every host of the page (their links are from `/`).
    let docs = tokio::task::spawn_blocking(move || {
        Doc::ALL
            .iter()
            .map(|doc| {
                let body = render_public(&public, *doc)?;
                Ok((*doc, Bytes::from(body)))
            })
            .collect::<anyhow::Result<Vec<_>>>()
    })
    .await
    .context("the render task panicked")??;
    let mut puts = Vec::with_capacity(hosts.len() * docs.len());
    for host in &hosts {
        for (doc, body) in &docs {
            let key = export.key(&format!("{host}/{}", doc_key(*doc)));
            let mut attributes = Attributes::new();
            attributes.insert(
                Attribute::ContentType,
                AttributeValue::from(doc.content_type()),
            );
            attributes.insert(
                Attribute::CacheControl,
                AttributeValue::from(PUBLIC_CACHE_CONTROL),
            );
            let body = PutPayload::from_bytes(body.clone());
            let store = Arc::clone(&export.store);
            puts.push(async move {
                store
                    .put_opts(&key, body, PutOptions::from(attributes))
                    .await
                    .with_context(|| format!("Failed to publish {key}"))
            });
        }
    }
    futures::stream::iter(puts)
        .buffer_unordered(4)
        .try_collect::<Vec<_>>()
        .await?;
    for gone in before.hosts.difference(&hosts) {
        export.delete_host(gone).await?;
    }
    let manifest = serde_json::to_vec(&Manifest {
        hosts: hosts.clone(),
    })
    .context("Failed to write a page's manifest")?;
    export
        .store
        .put(&export.manifest_key(page), PutPayload::from(manifest))
        .await
        .context("Failed to write a page's manifest")?;
    tracing::info!(
        page.id = %page,
        hosts = hosts.len(),
        objects = hosts.len() * docs.len(),
        duration_ms = started.elapsed().as_secs_f64() * 1000.0,
        "page exported"
    );
    Ok(())
}

/// Reads page changes when nudged (or every [`POLL_INTERVAL`]) and queues
/// an export of each page changed, until `shutdown`.
pub(crate) async fn run(ctx: Context, shutdown: CancellationToken) {
    let Some(export) = ctx.export.clone() else {
        return;
    };
    let nudged = Arc::new(tokio::sync::Notify::new());
    tokio::spawn(listen(
        export.redis.clone(),
        ctx.queues.page_changes_channel(),
        Arc::clone(&nudged),
        shutdown.clone(),
    ));
    let mut conn = None;
    loop {
        let wait = match queue_changes(&ctx, &export, &mut conn).await {
            Ok(true) => POLL_INTERVAL,
            // Another worker is reading: look again shortly, so a nudge it
            // may have read too early is not left to the poll.
            Ok(false) => Duration::from_millis(250),
            Err(e) => {
                conn = None;
                tracing::warn!(
                    error = format!("{e:#}"),
                    "page changes not queued for export; retrying"
                );
                Duration::from_secs(1)
            }
        };
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = nudged.notified() => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// Subscribes to the page-changes channel, reconnecting while Redis is away.
async fn listen(
    client: redis::Client,
    channel: String,
    nudged: Arc<tokio::sync::Notify>,
    shutdown: CancellationToken,
) {
    loop {
        let subscribed = async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(&channel).await?;
            redis::RedisResult::Ok(pubsub)
        };
        let pubsub = tokio::select! {
            () = shutdown.cancelled() => return,
            r = subscribed => r,
        };
        if let Ok(mut pubsub) = pubsub {
            nudged.notify_one();
            let mut messages = pubsub.on_message();
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    m = messages.next() => match m {
                        Some(_) => nudged.notify_one(),
                        None => break,
                    },
                }
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// Under the reader's lease: queues an export of every page changed since
/// the cursor and moves it. `Ok(false)`: another worker holds the lease.
async fn queue_changes(
    ctx: &Context,
    export: &PageExport,
    conn: &mut Option<redis::aio::MultiplexedConnection>,
) -> anyhow::Result<bool> {
    use redis::AsyncCommands as _;
    let c = match conn {
        Some(c) => c,
        None => conn.insert(
            export
                .redis
                .get_multiplexed_async_connection()
                .await
                .context("Failed to connect to Redis")?,
        ),
    };
    let lease_key = format!("{}:page-export:lease", export.namespace);
    let cursor_key = format!("{}:page-export:cursor", export.namespace);
    let token = uuid::Uuid::new_v4().to_string();
    let taken: Option<String> = redis::cmd("SET")
        .arg(&lease_key)
        .arg(&token)
        .arg("NX")
        .arg("PX")
        .arg(u64::try_from(LEASE.as_millis()).unwrap_or(10_000))
        .query_async(c)
        .await?;
    if taken.is_none() {
        return Ok(false);
    }
    let outcome = async {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let cursor: Option<String> = c.get(&cursor_key).await?;
        let cursor = cursor.and_then(|v| {
            let (seq, at) = v.split_once(' ')?;
            Some((seq.parse::<i64>().ok()?, at.parse::<i64>().ok()?))
        });
        let max_age = i64::try_from(CURSOR_MAX_AGE.as_secs()).unwrap_or(i64::MAX);
        let (pages, newest) = match cursor {
            Some((seq, at)) if now - at <= max_age => ctx.store.page_changes_since(seq).await?,
            _ => {
                // No cursor, or one too old to trust: every page, and (a job
                // of its own, retried while the bucket fails) every page the
                // bucket still holds that was deleted meanwhile.
                let head = ctx.store.page_changes_head().await?;
                let pages = every_page(ctx).await?;
                tracing::info!(pages = pages.len(), "exporting every page");
                ctx.queues.push(ExportSweep {}).await?;
                (pages, head)
            }
        };
        ctx.queues
            .push_all(pages.iter().map(|page_id| ExportPage { page_id: *page_id }))
            .await?;
        let _: () = c.set(&cursor_key, format!("{newest} {now}")).await?;
        anyhow::Ok(())
    }
    .await;
    // Released only if still ours (it may have lapsed and been taken).
    let released: redis::RedisResult<i64> = redis::Script::new(
        "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end",
    )
    .key(&lease_key)
    .arg(&token)
    .invoke_async(c)
    .await;
    outcome?;
    released?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_urls_name_a_bucket_and_an_optional_prefix() {
        assert_eq!(
            parse_bucket_url("s3://pages"),
            Some(("pages".into(), String::new()))
        );
        assert_eq!(
            parse_bucket_url("s3://pages/status/copies/"),
            Some(("pages".into(), "status/copies".into()))
        );
        assert_eq!(parse_bucket_url("https://pages"), None);
        assert_eq!(parse_bucket_url("s3://Pages"), None);
        assert_eq!(parse_bucket_url("s3://pages/a/../b"), None);
        assert_eq!(parse_bucket_url("s3://pages/a//b"), None);
    }

    #[test]
    fn each_document_has_its_own_key_under_a_host() {
        let keys: BTreeSet<&str> = Doc::ALL.iter().map(|d| doc_key(*d)).collect();
        assert_eq!(keys.len(), Doc::ALL.len());
        assert_eq!(doc_key(Doc::Page), "index.html");
        assert_eq!(doc_key(Doc::Summary), "api/v2/summary.json");
        assert_eq!(doc_key(Doc::History), "history");
    }
}
