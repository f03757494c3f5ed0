//! Public pages from memory: a per-page snapshot of rendered bytes.
//!
//! A status page is read hardest exactly when everything else is failing, so
//! no visitor's request reaches PostgreSQL once a page is warm:
//!
//! - **Routing** (`<slug>.<base domain>`, `/status/<slug>/`, later verified
//!   custom domains) is a table held in memory, so an unknown host or slug is
//!   a 404 without a query, whatever the request carries.
//! - **Content** is a [`Snapshot`] per page: every document (HTML, the eight
//!   v2 JSON documents, feeds, badge, widget) rendered once, with its ETag.
//!   Query strings and headers select nothing but the document, so none can
//!   bypass it. Incident pages are rendered on first request from the
//!   snapshot's data and kept in a bounded memo ([`memo`]); an id the
//!   snapshot does not hold leaves nothing behind.
//! - **Freshness**: triggers append every change to a page's public content
//!   to `page_changes` (whoever wrote it). After a change, the api (and the
//!   worker) publish a nudge on Redis; every replica then reads what changed
//!   since the seq it has seen (one indexed query), rebuilds those snapshots
//!   and swaps them in. The same read runs on a timer, so a lost nudge, or a
//!   Redis outage, delays a page by at most the poll interval.
//! - **Failure**: a rebuild that fails keeps the old snapshot, which is
//!   served (stale) until one succeeds — with PostgreSQL or Redis down, warm
//!   pages keep answering 200. Only a page never built needs the database.
//!
//! Members of the page's tenant, signed in on the platform host, get the
//! HTML with private components: rendered per request from the snapshot's
//! data (their session is checked in the database, as every session is), and
//! never cached by anyone (`private, no-store`).
//!
//! The file is long (over 700 lines) because the cache, its freshness loop
//! and its failure handling share one state and one lock order; splitting
//! them would spread that invariant over several files. The bounded memo of
//! incident pages, which has no such tie, is its own module.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use actix_web::web::Bytes;
use anyhow::Context;
use heliograph_domain::uptime::UptimeWeights;
use heliograph_domain::{PageId, PageRoute, PublicUrls, TenantId};
use heliograph_store::Store;
use heliograph_web::{Audience, IncidentList, MaintenanceList, PublicPage, UptimeDay};
use redis::AsyncCommands;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use crate::routes::uptime::page_days;

mod memo;

use memo::Memo;
pub use memo::{MemoLimits, MemoUse};

/// A document of a page, as its path names it (under the page's root).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Doc {
    /// `/`
    Page,
    /// `/history`
    History,
    /// `/api/v2/summary.json`
    Summary,
    /// `/api/v2/status.json`
    Status,
    /// `/api/v2/components.json`
    Components,
    /// `/api/v2/incidents.json`
    Incidents,
    /// `/api/v2/incidents/unresolved.json`
    Unresolved,
    /// `/api/v2/scheduled-maintenances.json`
    Maintenances,
    /// `/api/v2/scheduled-maintenances/upcoming.json`
    Upcoming,
    /// `/api/v2/scheduled-maintenances/active.json`
    Active,
    /// `/history.rss`
    Rss,
    /// `/history.atom`
    Atom,
    /// `/badge.svg`
    Badge,
    /// `/embed` (the widget's iframe)
    Embed,
    /// `/embed.js` (the widget's script)
    EmbedScript,
}

impl Doc {
    /// Every document, for building a snapshot.
    const ALL: [Self; 15] = [
        Self::Page,
        Self::History,
        Self::Summary,
        Self::Status,
        Self::Components,
        Self::Incidents,
        Self::Unresolved,
        Self::Maintenances,
        Self::Upcoming,
        Self::Active,
        Self::Rss,
        Self::Atom,
        Self::Badge,
        Self::Embed,
        Self::EmbedScript,
    ];

    /// The document a path under a page's root names (`""` or `/` is the page).
    #[must_use]
    pub fn from_path(path: &str) -> Option<Self> {
        Some(match path.trim_end_matches('/') {
            "" | "/index.html" => Self::Page,
            "/history" => Self::History,
            "/api/v2/summary.json" => Self::Summary,
            "/api/v2/status.json" => Self::Status,
            "/api/v2/components.json" => Self::Components,
            "/api/v2/incidents.json" => Self::Incidents,
            "/api/v2/incidents/unresolved.json" => Self::Unresolved,
            "/api/v2/scheduled-maintenances.json" => Self::Maintenances,
            "/api/v2/scheduled-maintenances/upcoming.json" => Self::Upcoming,
            "/api/v2/scheduled-maintenances/active.json" => Self::Active,
            "/history.rss" => Self::Rss,
            "/history.atom" => Self::Atom,
            "/badge.svg" => Self::Badge,
            "/embed" => Self::Embed,
            "/embed.js" => Self::EmbedScript,
            _ => return None,
        })
    }

    /// Whether it is HTML that links to the page's other documents (so it
    /// depends on the base path it is served under, and has a members' view).
    const fn is_html_page(self) -> bool {
        matches!(self, Self::Page | Self::History)
    }

    const fn content_type(self) -> &'static str {
        match self {
            Self::Page | Self::History | Self::Embed => "text/html; charset=utf-8",
            Self::Rss => "application/rss+xml; charset=utf-8",
            Self::Atom => "application/atom+xml; charset=utf-8",
            Self::Badge => "image/svg+xml",
            Self::EmbedScript => "text/javascript; charset=utf-8",
            _ => "application/json",
        }
    }

    /// The Content-Security-Policy it is sent with: no scripts anywhere (the
    /// pages need none), styles inline, images only the tenant's logo
    /// (https), forms only to the page itself; only the widget may be framed.
    pub const fn content_security_policy(self) -> &'static str {
        match self {
            Self::Page | Self::History => {
                "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; \
                 form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
            }
            Self::Embed => {
                "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors *; base-uri 'none'"
            }
            _ => "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        }
    }

    /// Whether other sites' scripts may read it (the v2 JSON, feeds, badge).
    pub const fn cross_origin(self) -> bool {
        !matches!(self, Self::Page | Self::History | Self::Embed)
    }
}

/// Where the page's own links point: its root on its own host, or
/// `/status/<slug>` on the platform host.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Base {
    /// `<slug>.<base domain>` or a custom domain: links from `/`.
    Host,
    /// The platform host: links from `/status/<slug>`.
    Path,
}

/// A document ready to send.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// The bytes.
    pub body: Bytes,
    /// A strong validator, quoted: the same bytes have the same ETag on every replica.
    pub etag: String,
    /// The same bytes gzipped once (for documents worth it), and their ETag:
    /// a stampede of browsers costs no compression.
    pub gzip: Option<(Bytes, String)>,
    /// Its media type.
    pub content_type: &'static str,
}

/// Documents smaller than this are sent as they are.
const GZIP_FROM_BYTES: usize = 1024;

fn gzip(body: &[u8]) -> Option<Bytes> {
    use std::io::Write as _;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(body).ok()?;
    encoder.finish().ok().map(Bytes::from)
}

impl Rendered {
    fn new(body: impl Into<Bytes>, content_type: &'static str) -> Self {
        let body = body.into();
        let digest = Sha256::digest(&body);
        let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
        let gzip = (body.len() >= GZIP_FROM_BYTES)
            .then(|| gzip(&body))
            .flatten()
            .map(|gz| (gz, format!("\"{hex}-gz\"")));
        Self {
            body,
            etag: format!("\"{hex}\""),
            gzip,
            content_type,
        }
    }
}

/// One page's public face at one moment.
pub struct Snapshot {
    /// Whose page.
    pub tenant_id: TenantId,
    /// Which page.
    pub page_id: PageId,
    /// Which build of it: every snapshot built in this process has its own.
    generation: u64,
    /// What it was rendered from (members' views and incident pages render from it).
    pub page: Arc<PublicPage>,
    docs: HashMap<(Doc, Base), Rendered>,
    /// `/status/<slug>`, as the page's slug is spelled (whatever a request spelled).
    path_prefix: String,
    /// The documents' bytes, gzipped copies included.
    bytes: usize,
}

impl Snapshot {
    fn build(
        tenant_id: TenantId,
        page_id: PageId,
        generation: u64,
        page: PublicPage,
        slug_base: &str,
    ) -> anyhow::Result<Self> {
        let mut docs = HashMap::new();
        for doc in Doc::ALL {
            for base in [Base::Host, Base::Path] {
                if base == Base::Path && !doc.is_html_page() {
                    continue;
                }
                let prefix = match base {
                    Base::Host => "",
                    Base::Path => slug_base,
                };
                let body = render(&page, doc, Audience::Public, prefix)?;
                docs.insert((doc, base), Rendered::new(body, doc.content_type()));
            }
        }
        let bytes = docs.values().map(memo::weight).sum();
        Ok(Self {
            tenant_id,
            page_id,
            generation,
            page: Arc::new(page),
            docs,
            path_prefix: slug_base.to_owned(),
            bytes,
        })
    }

    /// A document for anonymous visitors.
    #[must_use]
    pub fn doc(&self, doc: Doc, base: &Base) -> Option<&Rendered> {
        let base = if doc.is_html_page() {
            base
        } else {
            &Base::Host
        };
        self.docs.get(&(doc, base.clone()))
    }
}

/// Renders one document.
pub fn render(
    page: &PublicPage,
    doc: Doc,
    audience: Audience,
    prefix: &str,
) -> anyhow::Result<String> {
    let json = |v: serde_json::Result<String>| v.context("Failed to serialise a v2 document");
    Ok(match doc {
        Doc::Page => heliograph_web::render_page(page, audience, prefix)?,
        Doc::History => heliograph_web::render_history(page, audience, prefix)?,
        Doc::Summary => json(serde_json::to_string(&heliograph_web::summary(page)))?,
        Doc::Status => json(serde_json::to_string(&heliograph_web::status_doc(page)))?,
        Doc::Components => json(serde_json::to_string(&heliograph_web::components_doc(page)))?,
        Doc::Incidents => json(serde_json::to_string(&heliograph_web::incidents_doc(
            page,
            IncidentList::Recent,
        )))?,
        Doc::Unresolved => json(serde_json::to_string(&heliograph_web::incidents_doc(
            page,
            IncidentList::Unresolved,
        )))?,
        Doc::Maintenances => json(serde_json::to_string(&heliograph_web::maintenances_doc(
            page,
            MaintenanceList::Recent,
        )))?,
        Doc::Upcoming => json(serde_json::to_string(&heliograph_web::maintenances_doc(
            page,
            MaintenanceList::Upcoming,
        )))?,
        Doc::Active => json(serde_json::to_string(&heliograph_web::maintenances_doc(
            page,
            MaintenanceList::Active,
        )))?,
        Doc::Rss => heliograph_web::rss(page),
        Doc::Atom => heliograph_web::atom(page),
        Doc::Badge => heliograph_web::badge(page),
        Doc::Embed => heliograph_web::embed(page)?,
        Doc::EmbedScript => heliograph_web::embed_script(page),
    })
}

/// Where pages live: by slug, and by verified custom domain.
#[derive(Debug, Default)]
struct Routes {
    by_slug: HashMap<String, (TenantId, PageId)>,
    by_host: HashMap<String, (TenantId, PageId)>,
    /// Each page's tenant.
    tenant_of: HashMap<PageId, TenantId>,
    /// The address a page calls its own: its first verified custom domain.
    canonical: HashMap<PageId, String>,
}

/// A page: its tenant and its id.
pub type PageKey = (TenantId, PageId);

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct CacheStats {
    /// Snapshots built.
    pub builds: AtomicU64,
    /// Builds that failed (the old snapshot, if any, kept serving).
    pub build_failures: AtomicU64,
    /// Reads of `page_changes` finished, whether they succeeded or not (each
    /// takes one database connection, whatever it finds).
    pub change_reads: AtomicU64,
}

/// Settings of the public pages' cache.
#[derive(Debug, Clone)]
pub struct CacheSettings {
    /// The Redis channel replicas nudge each other on.
    pub channel: String,
    /// How often `page_changes` is read without a nudge.
    pub poll_interval: Duration,
    /// The bounds of what is rendered on request and kept (incident pages).
    pub memo: MemoLimits,
}

/// What the public pages hold in memory now, for `/metrics` and the tests:
/// nothing in it may grow with what requests name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PagesMemory {
    /// Snapshots held (one per page read since start).
    pub snapshots: usize,
    /// Their documents' bytes.
    pub snapshot_bytes: usize,
    /// The memo of documents rendered on request.
    pub memo: MemoUse,
    /// Pages being built now.
    pub building: usize,
    /// Routes held: slugs and verified custom domains (from the database only).
    pub routes: usize,
}

/// The public pages of every tenant, in memory. One per process, shared by
/// every worker thread.
pub struct PublicPages {
    store: Store,
    urls: PublicUrls,
    /// Subscribes to nudges (a subscription needs a connection of its own).
    redis: redis::Client,
    /// Publishes nudges: the api's shared, self-reconnecting connection.
    publisher: redis::aio::ConnectionManager,
    settings: CacheSettings,
    routes: RwLock<Arc<Routes>>,
    snapshots: RwLock<HashMap<PageId, Arc<Snapshot>>>,
    /// Incident pages rendered on request, bounded.
    memo: Memo,
    /// The generation of the next snapshot built.
    generation: AtomicU64,
    /// Pages whose snapshot is being (re)built, so a stampede builds once;
    /// and those of them that changed meanwhile, so the build runs again.
    building: Mutex<Building>,
    /// Wakes a build's waiters.
    built: tokio::sync::Notify,
    /// The newest `page_changes` seq applied.
    seq: AtomicI64,
    /// Wakes the change reader at once (a nudge from elsewhere).
    nudge: tokio::sync::Notify,
    /// Held while changes are applied.
    applying: tokio::sync::Mutex<()>,
    /// Counters.
    pub stats: CacheStats,
}

/// See [`PublicPages::building`].
#[derive(Debug, Default)]
struct Building {
    now: HashSet<PageId>,
    changed: HashSet<PageId>,
}

/// What [`PublicPages::get`] answers.
pub enum Lookup {
    /// The page's snapshot.
    Found(Arc<Snapshot>),
    /// No page has that slug or host.
    NoSuchPage,
    /// The page exists but has never been built, and building failed now.
    Unavailable,
}

impl PublicPages {
    /// Loads the routing table (the database must answer once, at start).
    pub async fn start(
        store: Store,
        urls: PublicUrls,
        redis: redis::Client,
        publisher: redis::aio::ConnectionManager,
        settings: CacheSettings,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Arc<Self>> {
        let head = store
            .page_changes_head()
            .await
            .context("Failed to read page_changes")?;
        let pages = Arc::new(Self {
            store,
            urls,
            redis,
            publisher,
            memo: Memo::new(settings.memo),
            generation: AtomicU64::new(1),
            settings,
            routes: RwLock::new(Arc::new(Routes::default())),
            snapshots: RwLock::new(HashMap::new()),
            building: Mutex::new(Building::default()),
            built: tokio::sync::Notify::new(),
            seq: AtomicI64::new(head),
            nudge: tokio::sync::Notify::new(),
            applying: tokio::sync::Mutex::new(()),
            stats: CacheStats::default(),
        });
        pages
            .reload_routes()
            .await
            .context("Failed to load the pages' routes")?;
        tokio::spawn(Arc::clone(&pages).read_changes(shutdown.clone()));
        tokio::spawn(Arc::clone(&pages).listen(shutdown));
        Ok(pages)
    }

    async fn reload_routes(&self) -> anyhow::Result<()> {
        let pages: Vec<PageRoute> = self.store.page_routes().await?;
        let mut domains = self.store.routable_domains().await?;
        domains.sort_by(|a, b| a.hostname.as_str().cmp(b.hostname.as_str()));
        let mut routes = Routes::default();
        for r in pages {
            routes.tenant_of.insert(r.page_id, r.tenant_id);
            routes
                .by_slug
                .insert(r.slug.to_string(), (r.tenant_id, r.page_id));
        }
        for d in domains {
            routes
                .canonical
                .entry(d.page_id)
                .or_insert_with(|| format!("https://{}", d.hostname));
            routes
                .by_host
                .insert(d.hostname.to_string(), (d.tenant_id, d.page_id));
        }
        *self
            .routes
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(routes);
        Ok(())
    }

    fn routes(&self) -> Arc<Routes> {
        Arc::clone(
            &self
                .routes
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// The page a slug names, from memory.
    #[must_use]
    pub fn route_by_slug(&self, slug: &str) -> Option<PageKey> {
        self.routes()
            .by_slug
            .get(&slug.to_ascii_lowercase())
            .copied()
    }

    /// The page a verified custom domain names (a port, if any, ignored), from memory.
    #[must_use]
    pub fn route_by_host(&self, host: &str) -> Option<PageKey> {
        let host = host.rsplit_once(':').map_or(host, |(name, port)| {
            if port.chars().all(|c| c.is_ascii_digit()) {
                name
            } else {
                host
            }
        });
        self.routes()
            .by_host
            .get(host.trim_end_matches('.').to_ascii_lowercase().as_str())
            .copied()
    }

    fn cached(&self, page: PageId) -> Option<Arc<Snapshot>> {
        self.snapshots
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&page)
            .cloned()
    }

    /// An incident's page for anonymous visitors: from the memo, or rendered
    /// from the snapshot's data and kept (within the memo's bounds); `None`,
    /// keeping nothing, when the snapshot does not hold that incident.
    pub fn incident(&self, snapshot: &Snapshot, id: uuid::Uuid, base: &Base) -> Option<Rendered> {
        let key = (id, base.clone());
        if let Some(r) = self.memo.get(snapshot.page_id, snapshot.generation, &key) {
            return Some(r);
        }
        let prefix = match base {
            Base::Host => "",
            Base::Path => snapshot.path_prefix.as_str(),
        };
        let html = heliograph_web::render_incident(&snapshot.page, Audience::Public, prefix, id)
            .ok()
            .flatten()?;
        let rendered = Rendered::new(html, "text/html; charset=utf-8");
        self.memo
            .insert(snapshot.page_id, snapshot.generation, key, rendered.clone());
        Some(rendered)
    }

    /// The snapshot of a page: from memory when built; otherwise built now
    /// (once, however many ask at the same time).
    pub async fn get(&self, route: Option<PageKey>) -> Lookup {
        let Some((tenant, page)) = route else {
            return Lookup::NoSuchPage;
        };
        if let Some(snapshot) = self.cached(page) {
            return Lookup::Found(snapshot);
        }
        loop {
            let waiting = self.built.notified();
            if self.claim(page) {
                let outcome = self.build_while_changing(tenant, page).await;
                return match (outcome, self.cached(page)) {
                    (_, Some(s)) => Lookup::Found(s),
                    (Err(_), None) => Lookup::Unavailable,
                    (Ok(()), None) => Lookup::NoSuchPage,
                };
            }
            // Another request builds it; wait for that, then look again.
            let _ = tokio::time::timeout(Duration::from_secs(10), waiting).await;
            if let Some(snapshot) = self.cached(page) {
                return Lookup::Found(snapshot);
            }
        }
    }

    /// Builds a claimed page, again as long as changes arrived during the
    /// build (so a snapshot never ends up older than a change it missed);
    /// then releases it.
    async fn build_while_changing(&self, tenant: TenantId, page: PageId) -> anyhow::Result<()> {
        let outcome = loop {
            let outcome = self.rebuild(tenant, page).await;
            let mut building = self.building_lock();
            if outcome.is_err() || !building.changed.remove(&page) {
                building.now.remove(&page);
                break outcome;
            }
        };
        self.built.notify_waiters();
        outcome
    }

    fn building_lock(&self) -> std::sync::MutexGuard<'_, Building> {
        self.building
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn claim(&self, page: PageId) -> bool {
        self.building_lock().now.insert(page)
    }

    /// Reads the page and swaps in a new snapshot; on failure the old one stays.
    async fn rebuild(&self, tenant: TenantId, page: PageId) -> anyhow::Result<()> {
        let outcome = self.read_and_render(tenant, page).await;
        match outcome {
            Ok(Some(snapshot)) => {
                self.stats.builds.fetch_add(1, Ordering::Relaxed);
                let generation = snapshot.generation;
                self.snapshots
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .insert(page, Arc::new(snapshot));
                // What older snapshots rendered on request goes with them.
                self.memo.forget_older(&page, generation);
                Ok(())
            }
            Ok(None) => {
                // Deleted: forget it.
                self.forget(&page);
                Ok(())
            }
            Err(e) => {
                self.stats.build_failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(page.id = %page, error = %format!("{e:#}"), "page snapshot not rebuilt; the previous one stays");
                Err(e)
            }
        }
    }

    async fn read_and_render(
        &self,
        tenant: TenantId,
        page: PageId,
    ) -> anyhow::Result<Option<Snapshot>> {
        let now = OffsetDateTime::now_utc();
        let mut tx = self.store.tenant_tx(tenant).await?;
        let data = match tx.page_data(page).await {
            Ok(data) => data,
            Err(heliograph_store::StoreError::NotFound) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let days = page_days(&mut tx, &data.page, heliograph_web::UPTIME_DAYS, now)
            .await
            .map_err(|e| anyhow::anyhow!("Failed to read the uptime history: {e:?}"))?;
        tx.commit().await?;
        let weights = UptimeWeights {
            partial_outage: data.page.uptime_partial_weight,
        };
        let uptime = days
            .into_iter()
            .map(|(component, days)| {
                let bars = days
                    .into_iter()
                    .map(|d| UptimeDay {
                        date: d.date,
                        percentage: d.totals.percentage(weights),
                        major_outage_s: d.totals.major_outage_ms / 1000,
                        partial_outage_s: d.totals.partial_outage_ms / 1000,
                    })
                    .collect();
                (component.id, bars)
            })
            .collect();
        let slug = data.page.slug.clone();
        let url = self
            .routes()
            .canonical
            .get(&page)
            .cloned()
            .unwrap_or_else(|| self.urls.page_url(slug.as_str()));
        let public = PublicPage {
            url,
            data,
            uptime,
            as_of: now,
        };
        let generation = self.generation.fetch_add(1, Ordering::Relaxed);
        let render = tokio::task::spawn_blocking(move || {
            Snapshot::build(tenant, page, generation, public, &format!("/status/{slug}"))
        });
        Ok(Some(render.await.context("the render task panicked")??))
    }

    /// After a change made here: apply it before answering (so whoever made
    /// it reads it back from this replica), and nudge the other replicas in
    /// the background (Redis being slow or away never delays an answer).
    pub async fn changed(self: &Arc<Self>) {
        if let Err(e) = self.apply_changes().await {
            tracing::warn!(error = %format!("{e:#}"), "page changes not applied; the reader retries");
            self.nudge.notify_one();
        }
        let pages = Arc::clone(self);
        tokio::spawn(async move {
            let mut conn = pages.publisher.clone();
            let sent: redis::RedisResult<i64> =
                conn.publish(&pages.settings.channel, "changed").await;
            if let Err(e) = sent {
                tracing::warn!(error = %e, "could not nudge the other replicas; they will poll");
            }
        });
    }

    /// Applies page changes: when nudged, and every poll interval.
    async fn read_changes(self: Arc<Self>, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = self.nudge.notified() => {}
                () = tokio::time::sleep(self.settings.poll_interval) => {}
            }
            if let Err(e) = self.apply_changes().await {
                tracing::warn!(error = %format!("{e:#}"), "page changes not read; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                self.nudge.notify_one();
            }
        }
    }

    /// Reads what changed since the last seq and rebuilds those snapshots;
    /// one at a time, so concurrent callers do not race on the seq.
    async fn apply_changes(&self) -> anyhow::Result<()> {
        let _one = self.applying.lock().await;
        let since = self.seq.load(Ordering::Acquire);
        let read = self.store.page_changes_since(since).await;
        self.stats.change_reads.fetch_add(1, Ordering::Relaxed);
        let (pages, newest) = read?;
        tracing::debug!(since, newest, pages = pages.len(), "page changes read");
        if pages.is_empty() {
            return Ok(());
        }
        // Slugs may have changed, or pages appeared: the table is small.
        self.reload_routes().await?;
        let mut failed = false;
        let routes = self.routes();
        for page in pages {
            let Some(tenant) = routes.tenant_of.get(&page).copied() else {
                self.forget(&page);
                continue;
            };
            {
                let mut building = self.building_lock();
                if building.now.contains(&page) {
                    // A build is under way and may have read the old data.
                    building.changed.insert(page);
                    continue;
                }
            }
            // Only pages someone has read are kept warm.
            if self.cached(page).is_none() || !self.claim(page) {
                continue;
            }
            failed |= self.build_while_changing(tenant, page).await.is_err();
        }
        if failed {
            anyhow::bail!("some page snapshots were not rebuilt");
        }
        self.seq.store(newest, Ordering::Release);
        Ok(())
    }

    /// Listens for nudges on Redis, reconnecting while Redis is away.
    async fn listen(self: Arc<Self>, shutdown: CancellationToken) {
        use futures::StreamExt as _;
        let mut backoff = Duration::from_millis(200);
        loop {
            let subscribed = async {
                let mut pubsub = self.redis.get_async_pubsub().await?;
                pubsub.subscribe(&self.settings.channel).await?;
                redis::RedisResult::Ok(pubsub)
            };
            let pubsub = tokio::select! {
                () = shutdown.cancelled() => return,
                r = subscribed => r,
            };
            match pubsub {
                Ok(mut pubsub) => {
                    backoff = Duration::from_millis(200);
                    // Anything missed while away is in page_changes.
                    self.nudge.notify_one();
                    let mut messages = pubsub.on_message();
                    loop {
                        tokio::select! {
                            () = shutdown.cancelled() => return,
                            m = messages.next() => match m {
                                Some(_) => {
                                    tracing::debug!("nudged");
                                    self.nudge.notify_one();
                                }
                                None => break,
                            },
                        }
                    }
                    tracing::warn!("lost the Redis subscription; reconnecting");
                }
                Err(e) => {
                    tracing::debug!(error = %e, "Redis subscription failed; retrying");
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }

    /// Drops a page's snapshot and what was rendered from it.
    fn forget(&self, page: &PageId) {
        self.snapshots
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(page);
        self.memo.forget(page);
    }

    /// How many snapshots are held.
    #[must_use]
    pub fn snapshot_count(&self) -> usize {
        self.snapshots
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    /// What is held in memory now.
    #[must_use]
    pub fn memory(&self) -> PagesMemory {
        let (snapshots, snapshot_bytes) = {
            let held = self
                .snapshots
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            (held.len(), held.values().map(|s| s.bytes).sum())
        };
        let building = self.building_lock();
        let building = building.now.len() + building.changed.len();
        let routes = self.routes();
        PagesMemory {
            snapshots,
            snapshot_bytes,
            memo: self.memo.usage(),
            building,
            routes: routes.by_slug.len() + routes.by_host.len(),
        }
    }

    /// Connections the process' database pool has handed out, ever (every
    /// query takes one; also on `/metrics`).
    #[must_use]
    pub fn database_acquisitions(&self) -> u64 {
        self.store.acquisitions()
    }

    /// Incident pages evicted from the memo by its bounds since start.
    #[must_use]
    pub fn memo_evictions(&self) -> u64 {
        self.memo.evictions()
    }
}
