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
//! - **Serving**: the answers' headers are serialised ahead of requests
//!   ([`HeaderBlock`]: the ETag per snapshot, the rest per kind of
//!   document), and `routes::public::fast_path` answers a held page's
//!   documents ahead of the middleware stack, with one span in
//!   `FAST_PATH_SPAN_ONE_IN` requests instead of one each.
//! - **Memory**: a warm page keeps what it serves, compressed once: each
//!   document gzipped (plain only under 1 KiB), the plain bytes of a larger
//!   one derived from the gzip on the first request that refuses gzip and
//!   kept from then on ([`Stored`]); its data for incident pages, without
//!   the uptime bars (already in the HTML; a member's view reads them
//!   afresh). A ten-component page holds about 50 KiB. All snapshots
//!   together hold at most `PAGE_CACHE_MAX_MB`: past it, those of the pages
//!   read least recently are dropped (by a clock that moves only when a
//!   different page is read, so a hot page costs no shared write) and
//!   rebuilt when next read. The page being served is never dropped for
//!   room, so a budget smaller than one page still serves that page.
//! - **Freshness**: triggers append every change to a page's public content
//!   to `page_changes` (whoever wrote it). After a change, the api (and the
//!   worker) publish a nudge on Redis; every replica then reads what changed
//!   since the seq it has seen (one indexed query), rebuilds those snapshots
//!   and swaps them in. The same read runs on a timer, so a lost nudge, or a
//!   Redis outage, delays a page by at most the poll interval. A rebuild
//!   reads the uptime of all of a page's components in three queries, and
//!   of the window shown only, so a year of history costs what a week does.
//! - **Failure**: a rebuild that fails keeps the old snapshot, which is
//!   served (stale) until one succeeds — with PostgreSQL or Redis down, warm
//!   pages keep answering 200. Only a page not held (never built, or
//!   dropped for room) needs the database.
//!
//! Members of the page's tenant, signed in on the platform host, get the
//! HTML with private components: rendered per request from data read
//! afresh (their session is checked in the database, as every session is),
//! and never cached by anyone (`private, no-store`).
//!
//! The file is long (over 700 lines) because the cache, its freshness loop,
//! its budget and its failure handling share one state and one lock order;
//! splitting them would spread that invariant over several files. The
//! bounded memo of incident pages, which has no such tie, is its own module.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::web::Bytes;
use anyhow::Context;
use heliograph_domain::uptime::UptimeWeights;
use heliograph_domain::{PageData, PageId, PageRoute, PublicUrls, TenantId};
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
    /// Every document, for building a snapshot (and for exporting one).
    pub const ALL: [Self; 15] = [
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

    /// The path that names it under a page's root (the first that
    /// [`Doc::from_path`] reads as it).
    #[must_use]
    pub const fn path(self) -> &'static str {
        match self {
            Self::Page => "/",
            Self::History => "/history",
            Self::Summary => "/api/v2/summary.json",
            Self::Status => "/api/v2/status.json",
            Self::Components => "/api/v2/components.json",
            Self::Incidents => "/api/v2/incidents.json",
            Self::Unresolved => "/api/v2/incidents/unresolved.json",
            Self::Maintenances => "/api/v2/scheduled-maintenances.json",
            Self::Upcoming => "/api/v2/scheduled-maintenances/upcoming.json",
            Self::Active => "/api/v2/scheduled-maintenances/active.json",
            Self::Rss => "/history.rss",
            Self::Atom => "/history.atom",
            Self::Badge => "/badge.svg",
            Self::Embed => "/embed",
            Self::EmbedScript => "/embed.js",
        }
    }

    /// Whether it is HTML that links to the page's other documents (so it
    /// depends on the base path it is served under, and has a members' view).
    const fn is_html_page(self) -> bool {
        matches!(self, Self::Page | Self::History)
    }

    /// Its media type.
    #[must_use]
    pub const fn content_type(self) -> &'static str {
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

/// A document ready to send (an incident's page, rendered on request and
/// kept by the [`memo`]).
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
    // zlib's default level: on pages' HTML within a few percent of the best
    // level's size, in a fraction of its time (a rebuild compresses every
    // document, and a page with fifty components has a large one).
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(body).ok()?;
    // Copied to its exact size: the encoder's buffer has grown by doubling,
    // and what is kept for hours should not carry that slack.
    encoder.finish().ok().map(|gz| Bytes::copy_from_slice(&gz))
}

fn gunzip(gz: &[u8]) -> Option<Bytes> {
    use std::io::Read as _;
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(gz)
        .read_to_end(&mut plain)
        .ok()?;
    Some(Bytes::from(plain))
}

/// The quoted ETag of these bytes: the first 96 bits of their SHA-256.
fn etag_of(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

impl Rendered {
    fn new(body: impl Into<Bytes>, content_type: &'static str) -> Self {
        let body = body.into();
        let etag = etag_of(&body);
        let gzip = (body.len() >= GZIP_FROM_BYTES)
            .then(|| gzip(&body))
            .flatten()
            .map(|gz| (gz, format!("{}-gz\"", etag.trim_end_matches('"'))));
        Self {
            body,
            etag,
            gzip,
            content_type,
        }
    }
}

/// `Cache-Control` of every public document: short enough that a change
/// shows within seconds; stale copies cover a burst
/// (`stale-while-revalidate`) and an outage of ours (`stale-if-error`).
pub const PUBLIC_CACHE_CONTROL: &str =
    "public, max-age=10, stale-while-revalidate=30, stale-if-error=86400";

/// The headers of one answer, serialised ahead of any request: the
/// document's validator, per snapshot, and the headers its kind of document
/// always has, once per process. A request copies them (each value a
/// reference count or a static), it formats none.
#[derive(Debug)]
pub struct HeaderBlock {
    /// The validator `If-None-Match` is compared with, quoted.
    pub etag: HeaderValue,
    common: &'static CommonHeaders,
}

/// The headers every answer of a kind of document carries but its `ETag`:
/// those of a 304 first, then `Content-Type`.
#[derive(Debug)]
struct CommonHeaders {
    headers: Box<[(HeaderName, HeaderValue)]>,
    /// How many of `headers` a 304 sends (all but `Content-Type`).
    not_modified: usize,
}

impl CommonHeaders {
    fn new(doc: Doc, gzipped: bool) -> Self {
        use actix_web::http::header;
        let mut headers = vec![
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static(PUBLIC_CACHE_CONTROL),
            ),
            (header::VARY, HeaderValue::from_static("Accept-Encoding")),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(doc.content_security_policy()),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("strict-origin-when-cross-origin"),
            ),
        ];
        if doc.cross_origin() {
            headers.push((
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*"),
            ));
        } else {
            // A member's view of the same URL must never be served from a shared cache.
            headers.push((header::VARY, HeaderValue::from_static("Cookie")));
        }
        if gzipped {
            headers.push((header::CONTENT_ENCODING, HeaderValue::from_static("gzip")));
        }
        let not_modified = headers.len();
        headers.push((
            header::CONTENT_TYPE,
            HeaderValue::from_static(doc.content_type()),
        ));
        Self {
            headers: headers.into_boxed_slice(),
            not_modified,
        }
    }

    /// Those of every kind of document, built once.
    fn of(doc: Doc, gzipped: bool) -> &'static Self {
        static ALL: std::sync::OnceLock<HashMap<(Doc, bool), CommonHeaders>> =
            std::sync::OnceLock::new();
        let all = ALL.get_or_init(|| {
            Doc::ALL
                .iter()
                .flat_map(|doc| [false, true].map(|gz| ((*doc, gz), Self::new(*doc, gz))))
                .collect()
        });
        &all[&(doc, gzipped)]
    }
}

impl HeaderBlock {
    fn new(doc: Doc, etag: &str, gzipped: bool) -> Self {
        Self {
            etag: HeaderValue::from_str(etag).unwrap_or(HeaderValue::from_static("\"\"")),
            common: CommonHeaders::of(doc, gzipped),
        }
    }

    /// Adds the headers of a 200, or of a 304 (`not_modified`), to `out`.
    pub fn write(&self, out: &mut actix_web::http::header::HeaderMap, not_modified: bool) {
        let common = &self.common.headers;
        let common = if not_modified {
            &common[..self.common.not_modified]
        } else {
            &common[..]
        };
        out.reserve(common.len() + 2);
        out.append(actix_web::http::header::ETAG, self.etag.clone());
        for (name, value) in common {
            out.append(name.clone(), value.clone());
        }
    }
}

/// A document as a snapshot keeps it: gzipped once when worth it (and then
/// only gzipped: browsers and CDNs take it so), the plain bytes derived
/// from that on the first request that refuses gzip and kept from then on
/// (what is served is worth keeping); its answers' headers serialised once.
#[derive(Debug)]
pub struct Stored {
    /// The gzipped bytes (documents from [`GZIP_FROM_BYTES`]).
    pub gzip: Option<Bytes>,
    /// The plain bytes: from the build for small documents; for the others
    /// once a request has needed them (see [`PublicPages::plain`]).
    plain: std::sync::OnceLock<Bytes>,
    /// The headers of the plain answer.
    pub plain_headers: HeaderBlock,
    /// The headers of the gzipped answer.
    pub gzip_headers: Option<HeaderBlock>,
}

/// Bookkeeping of a stored document beyond its bytes: its entry in the
/// snapshot's map (with the map's spare room) and its two validators' text.
const STORED_OVERHEAD: usize = std::mem::size_of::<((Doc, Base), Stored)>() * 8 / 7 + 2 * 48;

impl Stored {
    fn new(doc: Doc, body: &[u8]) -> Self {
        let etag = etag_of(body);
        let gz = (body.len() >= GZIP_FROM_BYTES)
            .then(|| gzip(body))
            .flatten();
        let plain = std::sync::OnceLock::new();
        if gz.is_none() {
            let _ = plain.set(Bytes::copy_from_slice(body));
        }
        let gzip_headers = gz
            .as_ref()
            .map(|_| HeaderBlock::new(doc, &format!("{}-gz\"", etag.trim_end_matches('"')), true));
        Self {
            gzip: gz,
            plain,
            plain_headers: HeaderBlock::new(doc, &etag, false),
            gzip_headers,
        }
    }

    /// The bytes held now.
    fn weight(&self) -> usize {
        self.gzip.as_ref().map_or(0, Bytes::len)
            + self.plain.get().map_or(0, Bytes::len)
            + STORED_OVERHEAD
    }

    /// The plain bytes, if held.
    #[must_use]
    pub fn plain_if_held(&self) -> Option<&Bytes> {
        self.plain.get()
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
    /// What it was rendered from, less the uptime bars (which only the
    /// HTML drew, already rendered; members' views read them afresh) and
    /// the history (of which `history_ids` is kept): active incidents'
    /// pages render from it.
    pub page: Arc<PublicPage>,
    /// The incidents and maintenances of the page's history, sorted: the
    /// past incidents whose pages exist.
    history_ids: Vec<uuid::Uuid>,
    /// Every document, its links from `/` (as on the page's own host).
    docs: HashMap<Doc, Stored>,
    /// The HTML pages' copies with links from `/status/<slug>`, derived on
    /// first request (see [`PublicPages::doc`]).
    path_copies: HashMap<Doc, PathCopy>,
    /// `/status/<slug>`, as the page's slug is spelled (whatever a request spelled).
    path_prefix: String,
    /// What it holds, in bytes: documents, plain copies derived since,
    /// and an estimate of `page`.
    bytes: AtomicUsize,
    /// When it was last read, on the [`PublicPages`]' clock (least recently
    /// read goes first when the cache is full).
    last_read: AtomicU64,
    /// How long its documents took to render, and to compress, added over
    /// the build's threads (for the log).
    took: (Duration, Duration),
}

/// An HTML page's copy for the platform host, whose links begin with
/// `/status/<slug>`: the page's own copy with that prefix inserted where the
/// build marked its links. Most pages are read under one base only, so the
/// other is made when first asked for, once (not on every rebuild), and
/// kept with the snapshot.
struct PathCopy {
    /// Byte offsets into the own copy where a link begins.
    marks: Vec<u32>,
    stored: std::sync::OnceLock<Stored>,
}

/// Bookkeeping of a [`PathCopy`] beyond its marks, rounded up.
const PATH_COPY_OVERHEAD: usize = 128;

/// What one of a build's threads made: documents (with the marks of the
/// HTML pages' links), and the time it took to render and to compress them.
type BuiltHalf = (Vec<(Doc, Stored, Option<Vec<u32>>)>, Duration, Duration);

/// Bookkeeping of a snapshot beyond its documents and data, rounded up.
const SNAPSHOT_OVERHEAD: usize = 1024;

/// An estimate of what a page's data holds in memory: its structures and
/// their text (HTML-free, so short). An estimate is enough: it bounds the
/// cache within a few percent, and costs no allocator hooks.
fn data_weight(data: &PageData) -> usize {
    use heliograph_domain::{AffectedComponent, Incident, IncidentUpdate};
    use std::mem::size_of;
    let incident = |(i, updates): &(Incident, Vec<IncidentUpdate>)| {
        size_of::<Incident>()
            + i.name.len()
            + i.postmortem_body.as_ref().map_or(0, String::len)
            + i.component_ids.len() * 16
            + 64 // metadata, mostly empty
            + updates
                .iter()
                .map(|u| {
                    size_of::<IncidentUpdate>()
                        + u.body.len()
                        + u.affected_components
                            .iter()
                            .map(|a| size_of::<AffectedComponent>() + a.name.len())
                            .sum::<usize>()
                })
                .sum::<usize>()
    };
    size_of::<PageData>()
        + 2048 // the page's own text: name, branding, links
        + data.groups.len() * (size_of::<heliograph_domain::ComponentGroup>() + 64)
        + data
            .components
            .iter()
            .map(|c| {
                size_of::<heliograph_domain::Component>()
                    + c.name.len()
                    + c.description.as_ref().map_or(0, String::len)
            })
            .sum::<usize>()
        + data.active_incidents.iter().map(incident).sum::<usize>()
        + data.history.iter().map(incident).sum::<usize>()
}

impl Snapshot {
    fn build(
        tenant_id: TenantId,
        page_id: PageId,
        generation: u64,
        mut page: PublicPage,
        slug_base: &str,
    ) -> anyhow::Result<Self> {
        // Every document once, with its links from `/`. The HTML pages are
        // rendered with a marker where their links begin, so that their
        // `/status/<slug>` copies can be derived without rendering again
        // (see `PathCopy`). The page's own HTML (by far the largest) on one
        // thread, everything else on the other.
        let marker = format!("hg{}", uuid::Uuid::new_v4().simple());
        let (big, rest): (Vec<Doc>, Vec<Doc>) = Doc::ALL.iter().partition(|d| **d == Doc::Page);
        let build_half = |half: &[Doc]| -> anyhow::Result<BuiltHalf> {
            let (mut rendering, mut compressing) = (Duration::ZERO, Duration::ZERO);
            let mut built = Vec::with_capacity(half.len());
            for doc in half {
                let started = std::time::Instant::now();
                let (body, marks) = if doc.is_html_page() {
                    let (body, marks) =
                        unmark(&render(&page, *doc, Audience::Public, &marker)?, &marker);
                    (body, Some(marks))
                } else {
                    (render(&page, *doc, Audience::Public, "")?, None)
                };
                let rendered = std::time::Instant::now();
                built.push((*doc, Stored::new(*doc, body.as_bytes()), marks));
                rendering += rendered - started;
                compressing += rendered.elapsed();
            }
            Ok((built, rendering, compressing))
        };
        // On two threads: a page with fifty components renders and
        // compresses a megabyte, and a change should show in tens of
        // milliseconds, not a hundred.
        let (one, other) = std::thread::scope(|scope| {
            let other = scope.spawn(|| build_half(&rest));
            let one = build_half(&big);
            (one, other.join())
        });
        let other = other.map_err(|_| anyhow::anyhow!("a render thread panicked"))?;
        let (mut docs, mut path_copies) = (HashMap::new(), HashMap::new());
        let (mut rendering, mut compressing) = (Duration::ZERO, Duration::ZERO);
        for (built, r, c) in [one?, other?] {
            for (doc, stored, marks) in built {
                docs.insert(doc, stored);
                if let Some(marks) = marks {
                    path_copies.insert(
                        doc,
                        PathCopy {
                            marks,
                            stored: std::sync::OnceLock::new(),
                        },
                    );
                }
            }
            rendering += r;
            compressing += c;
        }
        // The bars are in the HTML now; nothing served later draws them
        // from here (a member's view reads them afresh). Nor the history:
        // past incidents' pages are read from the database when asked for
        // (see `PublicPages::incident`); their ids say which exist.
        page.uptime = HashMap::new();
        let mut history_ids: Vec<uuid::Uuid> = std::mem::take(&mut page.data.history)
            .iter()
            .map(|(i, _)| i.id.as_uuid())
            .collect();
        history_ids.sort_unstable();
        history_ids.shrink_to_fit();
        let bytes = docs.values().map(Stored::weight).sum::<usize>()
            + history_ids.len() * 16
            + path_copies
                .values()
                .map(|c| c.marks.len() * 4 + PATH_COPY_OVERHEAD)
                .sum::<usize>()
            + data_weight(&page.data)
            + page.url.len()
            + slug_base.len()
            + SNAPSHOT_OVERHEAD;
        Ok(Self {
            tenant_id,
            page_id,
            generation,
            page: Arc::new(page),
            history_ids,
            docs,
            path_copies,
            path_prefix: slug_base.to_owned(),
            bytes: AtomicUsize::new(bytes),
            last_read: AtomicU64::new(0),
            took: (rendering, compressing),
        })
    }

    /// What it holds now, in bytes (an estimate for its data; exact for its
    /// documents).
    #[must_use]
    pub fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }
}

/// `marked` without `marker`, and where each marker was (byte offsets into
/// what is answered).
fn unmark(marked: &str, marker: &str) -> (String, Vec<u32>) {
    let mut body = String::with_capacity(marked.len());
    let mut marks = Vec::new();
    for (i, piece) in marked.split(marker).enumerate() {
        if i > 0 {
            marks.push(u32::try_from(body.len()).unwrap_or(u32::MAX));
        }
        body.push_str(piece);
    }
    (body, marks)
}

/// `body` with `prefix` inserted at each of `marks` (as [`unmark`] found them).
fn insert_at_marks(body: &[u8], marks: &[u32], prefix: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + marks.len() * prefix.len());
    let mut at = 0;
    for &mark in marks {
        let mark = usize::try_from(mark)
            .unwrap_or(usize::MAX)
            .clamp(at, body.len());
        out.extend_from_slice(&body[at..mark]);
        out.extend_from_slice(prefix.as_bytes());
        at = mark;
    }
    out.extend_from_slice(&body[at..]);
    out
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

/// The address a page calls its own when it has a verified custom domain
/// (its first, by name).
#[must_use]
pub fn canonical_url(hostname: &str) -> String {
    format!("https://{hostname}")
}

/// A page's public data as of now, uptime bars included, from the database
/// (`None`: no such page); its own address `canonical` when it has one,
/// else its platform address. What snapshots are rendered from, and what
/// the worker's page export renders.
pub async fn read_public_page(
    store: &Store,
    urls: &PublicUrls,
    canonical: Option<String>,
    tenant: TenantId,
    page: PageId,
) -> anyhow::Result<Option<PublicPage>> {
    let now = OffsetDateTime::now_utc();
    let mut tx = store.tenant_tx(tenant).await?;
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
    let url = canonical.unwrap_or_else(|| urls.page_url(slug.as_str()));
    Ok(Some(PublicPage {
        url,
        data,
        uptime,
        as_of: now,
    }))
}

/// Renders one document as a snapshot holds it: for the anonymous reader
/// (never a member's view), links from `/` (as on the page's own host).
pub fn render_public(page: &PublicPage, doc: Doc) -> anyhow::Result<String> {
    render(page, doc, Audience::Public, "")
}

/// The name in lower case, copied only when it has capitals (names in
/// requests seldom do: a page's hottest path allocates nothing here).
pub fn lowercase(name: &str) -> std::borrow::Cow<'_, str> {
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        std::borrow::Cow::Owned(name.to_ascii_lowercase())
    } else {
        std::borrow::Cow::Borrowed(name)
    }
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
    /// Time spent building snapshots (reading and rendering), in microseconds.
    pub build_micros: AtomicU64,
    /// Snapshots dropped to keep within `PAGE_CACHE_MAX_MB`.
    pub evictions: AtomicU64,
    /// Requests answered by the fast path (see `routes::public::fast_path`).
    pub fast_answers: AtomicU64,
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
    /// The bytes all snapshots may hold together (`PAGE_CACHE_MAX_MB`).
    pub max_bytes: usize,
}

/// What the public pages hold in memory now, for `/metrics` and the tests:
/// nothing in it may grow with what requests name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PagesMemory {
    /// Snapshots held (one per page read recently enough, within
    /// `PAGE_CACHE_MAX_MB`).
    pub snapshots: usize,
    /// What they hold: their documents' bytes (gzipped, plain where
    /// served so), and an estimate of their data.
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
    /// What the snapshots hold together, in bytes (see [`Snapshot::bytes`]);
    /// changed only under the `snapshots` lock, so it never runs behind a
    /// snapshot dropped meanwhile.
    held: AtomicUsize,
    /// The clock snapshots' reads are ordered by: it moves when a snapshot
    /// is read that was not the last one read (see [`PublicPages::touch`]).
    clock: AtomicU64,
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
            held: AtomicUsize::new(0),
            clock: AtomicU64::new(0),
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
                .or_insert_with(|| canonical_url(d.hostname.as_str()));
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
        self.routes().by_slug.get(lowercase(slug).as_ref()).copied()
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
            .get(lowercase(host.trim_end_matches('.')).as_ref())
            .copied()
    }

    /// The snapshot held for a page, if any; nothing is built (the fast
    /// path asks this, and leaves a page not held to the general path).
    #[must_use]
    pub fn cached(&self, page: PageId) -> Option<Arc<Snapshot>> {
        self.snapshots
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&page)
            .cloned()
    }

    /// Marks a snapshot read now. The clock moves only when the snapshot
    /// read is not the one read last: a page read a million times in a
    /// row costs a load and a compare each time, and no shared write.
    pub fn touch(&self, snapshot: &Snapshot) {
        let now = self.clock.load(Ordering::Relaxed);
        if snapshot.last_read.load(Ordering::Relaxed) != now {
            let moved = self.clock.fetch_add(1, Ordering::Relaxed) + 1;
            snapshot.last_read.store(moved, Ordering::Relaxed);
        }
    }

    /// A stored document's plain bytes: held, or derived from its gzipped
    /// copy now and kept (a client that refuses gzip once will again), the
    /// snapshot's weight growing by them.
    #[must_use]
    pub fn plain(&self, snapshot: &Snapshot, stored: &Stored) -> Bytes {
        if let Some(plain) = stored.plain.get() {
            return plain.clone();
        }
        let derived = stored.gzip.as_deref().and_then(gunzip).unwrap_or_default();
        let mut added = false;
        let plain = stored
            .plain
            .get_or_init(|| {
                added = true;
                derived
            })
            .clone();
        if added {
            self.grew(snapshot, plain.len());
        }
        plain
    }

    /// A document of `snapshot` for anonymous visitors, its links from `base`.
    /// An HTML page's `/status/<slug>` copy is derived from its own copy the
    /// first time it is asked for, and kept (the snapshot's weight growing).
    #[must_use]
    pub fn doc<'s>(&self, snapshot: &'s Snapshot, doc: Doc, base: &Base) -> Option<&'s Stored> {
        let own = snapshot.docs.get(&doc)?;
        let copy = match base {
            Base::Path => snapshot.path_copies.get(&doc),
            Base::Host => None,
        };
        let Some(copy) = copy else {
            return Some(own);
        };
        if let Some(stored) = copy.stored.get() {
            return Some(stored);
        }
        let mut added = 0;
        let stored = copy.stored.get_or_init(|| {
            let body = own
                .plain
                .get()
                .cloned()
                .or_else(|| own.gzip.as_deref().and_then(gunzip))
                .unwrap_or_default();
            let stored = Stored::new(
                doc,
                &insert_at_marks(&body, &copy.marks, &snapshot.path_prefix),
            );
            added = stored.weight();
            stored
        });
        if added > 0 {
            self.grew(snapshot, added);
        }
        Some(stored)
    }

    /// Counts `n` bytes more held by `snapshot`, and in the total while it
    /// is the one held; makes room if that went past the budget.
    fn grew(&self, snapshot: &Snapshot, n: usize) {
        // Under the map's lock, as every change to what is held: the
        // snapshot cannot be dropped (and its weight subtracted) between its
        // growth and the total's.
        let held = {
            let map = self
                .snapshots
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            snapshot.bytes.fetch_add(n, Ordering::Relaxed);
            let held = map
                .get(&snapshot.page_id)
                .is_some_and(|s| std::ptr::eq(Arc::as_ptr(s), snapshot));
            if held {
                self.held.fetch_add(n, Ordering::Relaxed);
            }
            held
        };
        if held {
            self.make_room(snapshot.page_id);
        }
    }

    /// Drops the snapshots read least recently until those held fit
    /// `PAGE_CACHE_MAX_MB`, but never `keep` (the one just built or grown,
    /// which a request is about to serve): a budget smaller than one page
    /// holds that one page. It drops down to seven eighths of the budget, so
    /// that a full cache sorts its pages once per several builds, not per build.
    fn make_room(&self, keep: PageId) {
        let max = self.settings.max_bytes;
        if self.held.load(Ordering::Relaxed) <= max {
            return;
        }
        let target = max - max / 8;
        let mut dropped = Vec::new();
        {
            let mut held = self
                .snapshots
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let mut by_age: Vec<(u64, PageId)> = held
                .values()
                .filter(|s| s.page_id != keep)
                .map(|s| (s.last_read.load(Ordering::Relaxed), s.page_id))
                .collect();
            by_age.sort_unstable();
            for (_, page) in by_age {
                if self.held.load(Ordering::Relaxed) <= target {
                    break;
                }
                if let Some(s) = held.remove(&page) {
                    self.held.fetch_sub(s.bytes(), Ordering::Relaxed);
                    dropped.push(page);
                }
            }
        }
        self.stats
            .evictions
            .fetch_add(dropped.len() as u64, Ordering::Relaxed);
        for page in &dropped {
            self.memo.forget(page);
        }
        if !dropped.is_empty() {
            tracing::debug!(
                dropped = dropped.len(),
                "page snapshots dropped to fit PAGE_CACHE_MAX_MB"
            );
        }
    }

    /// An incident's page for anonymous visitors: from the memo, or rendered
    /// and kept (within the memo's bounds); `Ok(None)`, keeping nothing and
    /// asking nobody, when the snapshot holds no such incident. An active
    /// incident renders from the snapshot's data; a past one from the
    /// database (a snapshot keeps only its id), so it fails while the
    /// database does, where an active one does not.
    pub async fn incident(
        &self,
        snapshot: &Snapshot,
        id: uuid::Uuid,
        base: &Base,
    ) -> Result<Option<Rendered>, heliograph_store::StoreError> {
        let key = (id, base.clone());
        if let Some(r) = self.memo.get(snapshot.page_id, snapshot.generation, &key) {
            return Ok(Some(r));
        }
        let prefix = match base {
            Base::Host => "",
            Base::Path => snapshot.path_prefix.as_str(),
        };
        let active = snapshot
            .page
            .data
            .active_incidents
            .iter()
            .any(|(i, _)| i.id.as_uuid() == id);
        let html = if active {
            heliograph_web::render_incident(&snapshot.page, Audience::Public, prefix, id)
        } else if snapshot.history_ids.binary_search(&id).is_ok() {
            let Some(page) = self.past_incident(snapshot, id).await? else {
                return Ok(None);
            };
            heliograph_web::render_incident(&page, Audience::Public, prefix, id)
        } else {
            return Ok(None);
        };
        let Some(html) = html.ok().flatten() else {
            return Ok(None);
        };
        let rendered = Rendered::new(html, "text/html; charset=utf-8");
        self.memo
            .insert(snapshot.page_id, snapshot.generation, key, rendered.clone());
        Ok(Some(rendered))
    }

    /// The snapshot's page with one past incident as its history, read now.
    async fn past_incident(
        &self,
        snapshot: &Snapshot,
        id: uuid::Uuid,
    ) -> Result<Option<PublicPage>, heliograph_store::StoreError> {
        let mut tx = self.store.tenant_tx(snapshot.tenant_id).await?;
        let incident = match tx.incident(id.into()).await {
            Ok(incident) => incident,
            Err(heliograph_store::StoreError::NotFound) => return Ok(None),
            Err(e) => return Err(e),
        };
        let updates = tx.incident_updates(&[incident.id]).await?;
        tx.commit().await?;
        if incident.page_id != snapshot.page_id {
            return Ok(None);
        }
        let mut page = PublicPage::clone(&snapshot.page);
        page.data.history = vec![(incident, updates)];
        Ok(Some(page))
    }

    /// The snapshot of a page: from memory when built; otherwise built now
    /// (once, however many ask at the same time).
    pub async fn get(&self, route: Option<PageKey>) -> Lookup {
        let Some((tenant, page)) = route else {
            return Lookup::NoSuchPage;
        };
        if let Some(snapshot) = self.cached(page) {
            self.touch(&snapshot);
            return Lookup::Found(snapshot);
        }
        loop {
            let waiting = self.built.notified();
            if self.claim(page) {
                // What was built answers, even if the cache, full, has
                // dropped it again by now.
                return match self.build_while_changing(tenant, page).await {
                    Ok(Some(s)) => Lookup::Found(s),
                    Ok(None) => Lookup::NoSuchPage,
                    Err(_) => self.cached(page).map_or(Lookup::Unavailable, Lookup::Found),
                };
            }
            // Another request builds it; wait for that, then look again.
            let _ = tokio::time::timeout(Duration::from_secs(10), waiting).await;
            if let Some(snapshot) = self.cached(page) {
                self.touch(&snapshot);
                return Lookup::Found(snapshot);
            }
        }
    }

    /// Builds a claimed page, again as long as changes arrived during the
    /// build (so a snapshot never ends up older than a change it missed);
    /// then releases it.
    async fn build_while_changing(
        &self,
        tenant: TenantId,
        page: PageId,
    ) -> anyhow::Result<Option<Arc<Snapshot>>> {
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

    /// Reads the page and swaps in a new snapshot (answered); on failure
    /// the old one stays. `None`: the page is gone.
    async fn rebuild(
        &self,
        tenant: TenantId,
        page: PageId,
    ) -> anyhow::Result<Option<Arc<Snapshot>>> {
        let started = std::time::Instant::now();
        let outcome = self.read_and_render(tenant, page).await;
        self.stats.build_micros.fetch_add(
            u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        match outcome {
            Ok(Some(snapshot)) => {
                self.stats.builds.fetch_add(1, Ordering::Relaxed);
                let generation = snapshot.generation;
                let snapshot = Arc::new(snapshot);
                // Read now, as far as the cache's order goes.
                snapshot.last_read.store(
                    self.clock.fetch_add(1, Ordering::Relaxed) + 1,
                    Ordering::Relaxed,
                );
                {
                    let mut map = self
                        .snapshots
                        .write()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    self.held.fetch_add(snapshot.bytes(), Ordering::Relaxed);
                    if let Some(old) = map.insert(page, Arc::clone(&snapshot)) {
                        self.held.fetch_sub(old.bytes(), Ordering::Relaxed);
                    }
                }
                // What older snapshots rendered on request goes with them.
                self.memo.forget_older(&page, generation);
                self.make_room(page);
                Ok(Some(snapshot))
            }
            Ok(None) => {
                // Deleted: forget it.
                self.forget(&page);
                Ok(None)
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
        let started = std::time::Instant::now();
        let Some(public) = self.read_public(tenant, page).await? else {
            return Ok(None);
        };
        let read = started.elapsed();
        let slug = public.data.page.slug.clone();
        let generation = self.generation.fetch_add(1, Ordering::Relaxed);
        let render = tokio::task::spawn_blocking(move || {
            Snapshot::build(tenant, page, generation, public, &format!("/status/{slug}"))
        });
        let snapshot = render.await.context("the render task panicked")??;
        tracing::debug!(
            page.id = %page,
            read_ms = read.as_secs_f64() * 1000.0,
            render_ms = snapshot.took.0.as_secs_f64() * 1000.0,
            gzip_ms = snapshot.took.1.as_secs_f64() * 1000.0,
            bytes = snapshot.bytes(),
            "page snapshot built"
        );
        Ok(Some(snapshot))
    }

    /// A page's public data as of now, uptime bars included, from the
    /// database (`None`: no such page). Snapshots are rendered from it, and
    /// members' views, which draw the bars a snapshot no longer holds.
    pub async fn read_public(
        &self,
        tenant: TenantId,
        page: PageId,
    ) -> anyhow::Result<Option<PublicPage>> {
        let canonical = self.routes().canonical.get(&page).cloned();
        read_public_page(&self.store, &self.urls, canonical, tenant, page).await
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
        {
            let mut map = self
                .snapshots
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(old) = map.remove(page) {
                self.held.fetch_sub(old.bytes(), Ordering::Relaxed);
            }
        }
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
            (held.len(), held.values().map(|s| s.bytes()).sum())
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
