//! The API's settings, read once at start (see README § Configuration).
//!
//! Reading and checking values in general is `heliograph-runtime`'s; this
//! module says which settings the API has and their defaults.

use std::net::SocketAddr;
use std::sync::Arc;

use heliograph_auth::SecretsKeyring;
use heliograph_domain::{CustomDomains, PendingClaims, PublicUrls};
use heliograph_runtime::{LogFormat, SettingError, Settings};
use secrecy::SecretString;

/// Everything the API needs to start.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// PostgreSQL URL (`DATABASE_URL`).
    pub database_url: SecretString,
    /// Pool size per replica (`DATABASE_MAX_CONNECTIONS`, default 10).
    pub database_max_connections: u32,
    /// What stands between the api and PostgreSQL (`DATABASE_POOLER`:
    /// `none`, the default, or `transaction` behind PgBouncer's transaction
    /// pooling; see `heliograph_store::Pooler`).
    pub database_pooler: heliograph_store::Pooler,
    /// Redis URL (`REDIS_URL`).
    pub redis_url: SecretString,
    /// Listen address (`BIND_ADDR`, default `127.0.0.1:8080`; port 0 picks one).
    pub bind_addr: SocketAddr,
    /// Where the operators' endpoints (`/metrics`, `/internal/*`) are served
    /// instead of `bind_addr` (`ADMIN_ADDR`, default none: on `bind_addr`).
    pub admin_addr: Option<SocketAddr>,
    /// Platform origin and page host names (`PUBLIC_URL`, `BASE_DOMAIN`).
    pub urls: PublicUrls,
    /// Custom domains' CNAME target and the platform's own names
    /// (`CUSTOM_DOMAIN_CNAME_TARGET`, default `pages.<base domain>`).
    pub custom_domains: CustomDomains,
    /// How long a claimed custom domain may wait for verification, and how
    /// many may wait per tenant (`DOMAIN_PENDING_DAYS`, default 7;
    /// `DOMAIN_PENDING_LIMIT`, default 5).
    pub domain_claims: PendingClaims,
    /// How long a verified custom domain keeps routing through failing
    /// checks, as the worker applies it (`DOMAIN_GRACE_DAYS`, default 3):
    /// the dashboard says when a failing domain stops.
    pub domain_grace: time::Duration,
    /// Plans and their limits (`BILLING`, `PLANS_FILE`, `BILLING_GRACE_DAYS`;
    /// off by default: no limits).
    pub billing: heliograph_billing::Billing,
    /// HS256 key of session tokens, at least 32 bytes (`JWT_SECRET`).
    pub jwt_secret: SecretString,
    /// Key that signs account links, shared with the worker (`LINK_SECRET`, ≥ 32 bytes).
    pub link_secret: SecretString,
    /// The key ring that seals secrets at rest (`SECRETS_KEY`, shared with
    /// the worker): webhook signing secrets, Slack and Teams URLs.
    pub secrets: Arc<SecretsKeyring>,
    /// Access token lifetime (`ACCESS_TOKEN_TTL_MINUTES`, default 15).
    pub access_token_ttl_minutes: i64,
    /// Session lifetime, over which tokens can be refreshed (`SESSION_TTL_HOURS`, default 168).
    pub session_ttl_hours: u64,
    /// Whether `Forwarded`/`X-Forwarded-For` name the client
    /// (`TRUST_PROXY_HEADERS`, default false: only behind a proxy that sets them).
    pub trust_proxy_headers: bool,
    /// Log format (`LOG_FORMAT`: `text` or `json`).
    pub log_format: LogFormat,
    /// How often each replica reads which public pages changed, when Redis
    /// brings no news (`PAGE_CACHE_POLL_SECONDS`, default 5).
    pub page_cache_poll: std::time::Duration,
    /// Incident pages each replica keeps per page and in all, once rendered
    /// (`PAGE_CACHE_MEMO_PER_PAGE`, default 256; `PAGE_CACHE_MEMO_MAX_MB`, default 64).
    pub page_memo: crate::public_pages::MemoLimits,
    /// How the page snapshots are held and served (`PAGE_CACHE_MAX_MB`,
    /// `PAGE_FAST_PATH`).
    pub page_serving: PageServing,
    /// The Redis channel replicas (and workers) nudge each other on about
    /// page changes: `<QUEUE_NAMESPACE>:page-changes`, as the worker names it.
    pub page_changes_channel: String,
    /// How long a request may wait on PostgreSQL and Redis.
    pub timeouts: Timeouts,
}

/// How long a request waits on a dependency that does not answer (frozen,
/// partitioned, overloaded) before the API answers without it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Waiting for a pooled PostgreSQL connection, including opening one and
    /// checking an idle one answers (`DATABASE_ACQUIRE_TIMEOUT_MS`, default
    /// 2000); past it, 503 `database_unavailable`.
    pub database_acquire: std::time::Duration,
    /// PostgreSQL's `statement_timeout` on the API's connections
    /// (`DATABASE_STATEMENT_TIMEOUT_MS`, default 10000).
    pub database_statement: std::time::Duration,
    /// Each Redis call on a request's path: the rate limiter's count
    /// (`REDIS_TIMEOUT_MS`, default 100); past it, the limit is counted in
    /// this process instead.
    pub redis: std::time::Duration,
    /// A `/v1` request still unanswered after this is answered 503
    /// `database_unavailable` (`REQUEST_TIMEOUT_MS`, default 15000): what
    /// ends a wait on a connection that stopped answering while in use.
    pub request: std::time::Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            database_acquire: std::time::Duration::from_millis(2000),
            database_statement: std::time::Duration::from_millis(10_000),
            redis: std::time::Duration::from_millis(100),
            request: std::time::Duration::from_millis(15_000),
        }
    }
}

impl Timeouts {
    fn from_settings(s: &Settings) -> Result<Self, SettingError> {
        let defaults = Self::default();
        let millis = |name: &'static str,
                      default: std::time::Duration,
                      range: std::ops::RangeInclusive<u64>|
         -> Result<std::time::Duration, SettingError> {
            let ms: u64 =
                s.parsed_or(name, u64::try_from(default.as_millis()).unwrap_or(u64::MAX))?;
            if !range.contains(&ms) {
                return Err(SettingError::new(
                    name,
                    format!("must be between {} and {}", range.start(), range.end()),
                ));
            }
            Ok(std::time::Duration::from_millis(ms))
        };
        Ok(Self {
            database_acquire: millis(
                "DATABASE_ACQUIRE_TIMEOUT_MS",
                defaults.database_acquire,
                100..=60_000,
            )?,
            database_statement: millis(
                "DATABASE_STATEMENT_TIMEOUT_MS",
                defaults.database_statement,
                100..=3_600_000,
            )?,
            redis: millis("REDIS_TIMEOUT_MS", defaults.redis, 10..=10_000)?,
            request: millis("REQUEST_TIMEOUT_MS", defaults.request, 1000..=600_000)?,
        })
    }
}

/// How the public pages are held and served ([`ApiConfig::page_serving`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageServing {
    /// The bytes each replica keeps of page snapshots in all
    /// (`PAGE_CACHE_MAX_MB`, default 256): past it, the snapshots of the
    /// pages read least recently are dropped, and rebuilt when next read.
    pub max_bytes: usize,
    /// Whether page documents are answered ahead of the middleware stack
    /// (`PAGE_FAST_PATH`, default true). Off, every request takes the
    /// general path (the same answers, a span each): for comparison, and a
    /// way back.
    pub fast_path: bool,
}

impl Default for PageServing {
    fn default() -> Self {
        Self {
            max_bytes: 256 << 20,
            fast_path: true,
        }
    }
}

impl PageServing {
    /// Reads `PAGE_CACHE_MAX_MB` and `PAGE_FAST_PATH`.
    pub fn from_settings(s: &Settings) -> Result<Self, SettingError> {
        let max_mb = s.parsed_or("PAGE_CACHE_MAX_MB", 256_usize)?;
        if max_mb > 1 << 20 {
            return Err(SettingError::new(
                "PAGE_CACHE_MAX_MB",
                "must be between 0 and 1048576",
            ));
        }
        Ok(Self {
            max_bytes: max_mb << 20,
            fast_path: s.parsed_or("PAGE_FAST_PATH", true)?,
        })
    }
}

impl ApiConfig {
    /// Reads and validates the settings.
    pub fn from_settings(s: &Settings) -> Result<Self, SettingError> {
        let urls = s.public_urls()?;
        let jwt_secret = s.secret("JWT_SECRET")?;
        if secrecy::ExposeSecret::expose_secret(&jwt_secret).len() < 32 {
            return Err(SettingError::new("JWT_SECRET", "must be at least 32 bytes"));
        }
        let link_secret = s.secret("LINK_SECRET")?;
        if secrecy::ExposeSecret::expose_secret(&link_secret).len() < 32 {
            return Err(SettingError::new(
                "LINK_SECRET",
                "must be at least 32 bytes",
            ));
        }
        let secrets = secrets_keyring(s)?;
        let access_token_ttl_minutes = s.parsed_or("ACCESS_TOKEN_TTL_MINUTES", 15_i64)?;
        if !(1..=60).contains(&access_token_ttl_minutes) {
            return Err(SettingError::new(
                "ACCESS_TOKEN_TTL_MINUTES",
                "must be between 1 and 60",
            ));
        }
        let session_ttl_hours = s.parsed_or("SESSION_TTL_HOURS", 168_u64)?;
        if !(1..=24 * 90).contains(&session_ttl_hours) {
            return Err(SettingError::new(
                "SESSION_TTL_HOURS",
                "must be between 1 and 2160",
            ));
        }
        let page_cache_poll = s.parsed_or("PAGE_CACHE_POLL_SECONDS", 5_u64)?;
        if !(1..=3600).contains(&page_cache_poll) {
            return Err(SettingError::new(
                "PAGE_CACHE_POLL_SECONDS",
                "must be between 1 and 3600",
            ));
        }
        let memo_per_page = s.parsed_or("PAGE_CACHE_MEMO_PER_PAGE", 256_usize)?;
        if memo_per_page > 100_000 {
            return Err(SettingError::new(
                "PAGE_CACHE_MEMO_PER_PAGE",
                "must be between 0 and 100000",
            ));
        }
        let memo_max_mb = s.parsed_or("PAGE_CACHE_MEMO_MAX_MB", 64_usize)?;
        if memo_max_mb > 1 << 20 {
            return Err(SettingError::new(
                "PAGE_CACHE_MEMO_MAX_MB",
                "must be between 0 and 1048576",
            ));
        }
        Ok(Self {
            custom_domains: s.custom_domains(&urls)?,
            domain_claims: s.pending_claims()?,
            domain_grace: domain_grace(s)?,
            billing: heliograph_billing::Billing::from_settings(s)?,
            database_url: s.secret("DATABASE_URL")?,
            database_max_connections: s.parsed_or("DATABASE_MAX_CONNECTIONS", 10)?,
            database_pooler: s.parsed_or("DATABASE_POOLER", heliograph_store::Pooler::None)?,
            redis_url: s.secret("REDIS_URL")?,
            bind_addr: s.parsed_or("BIND_ADDR", SocketAddr::from(([127, 0, 0, 1], 8080)))?,
            admin_addr: admin_addr(s)?,
            urls,
            jwt_secret,
            link_secret,
            secrets,
            access_token_ttl_minutes,
            session_ttl_hours,
            trust_proxy_headers: s.parsed_or("TRUST_PROXY_HEADERS", false)?,
            log_format: s.log_format()?,
            page_cache_poll: std::time::Duration::from_secs(page_cache_poll),
            page_memo: crate::public_pages::MemoLimits {
                per_page: memo_per_page,
                max_bytes: memo_max_mb << 20,
            },
            page_serving: PageServing::from_settings(s)?,
            page_changes_channel: heliograph_jobs::page_changes_channel(
                &s.or("QUEUE_NAMESPACE", "heliograph"),
            ),
            timeouts: Timeouts::from_settings(s)?,
        })
    }
}

/// `ADMIN_ADDR`: an address and port, or unset (an empty value is unset).
fn admin_addr(s: &Settings) -> Result<Option<SocketAddr>, SettingError> {
    let raw = s.or("ADMIN_ADDR", "");
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    raw.parse().map(Some).map_err(|_| {
        SettingError::new(
            "ADMIN_ADDR",
            "must be an address and port (127.0.0.1:9465), or unset",
        )
    })
}

/// `SECRETS_KEY`: required wherever secrets are sealed or opened (`deploy/dev
/// up` sets a development key, as it does `JWT_SECRET`).
pub fn secrets_keyring(s: &Settings) -> Result<Arc<SecretsKeyring>, SettingError> {
    let spec = s.secret("SECRETS_KEY")?;
    SecretsKeyring::parse(secrecy::ExposeSecret::expose_secret(&spec))
        .map(Arc::new)
        .map_err(|e| SettingError::new("SECRETS_KEY", format!("is malformed: {e}")))
}

/// `DOMAIN_GRACE_DAYS`, read as the worker reads it (1 to 60, default 3).
fn domain_grace(s: &Settings) -> Result<time::Duration, SettingError> {
    let days: u16 = s.parsed_or("DOMAIN_GRACE_DAYS", 3)?;
    if !(1..=60).contains(&days) {
        return Err(SettingError::new(
            "DOMAIN_GRACE_DAYS",
            "must be between 1 and 60",
        ));
    }
    Ok(time::Duration::days(i64::from(days)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: [(&str, &str); 5] = [
        ("DATABASE_URL", "postgres://localhost/x"),
        ("REDIS_URL", "redis://localhost"),
        ("JWT_SECRET", "0123456789abcdef0123456789abcdef"),
        ("LINK_SECRET", "fedcba9876543210fedcba9876543210"),
        (
            "SECRETS_KEY",
            "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        ),
    ];

    fn with(extra: &[(&'static str, &'static str)]) -> Result<ApiConfig, SettingError> {
        ApiConfig::from_settings(&Settings::from_pairs(
            BASE.iter().copied().chain(extra.iter().copied()),
        ))
    }

    #[test]
    fn defaults_fill_everything_but_the_secrets_and_urls() {
        let c = with(&[]).unwrap();
        assert_eq!(c.bind_addr.port(), 8080);
        assert_eq!(c.admin_addr, None);
        assert_eq!(c.page_memo.per_page, 256);
        assert_eq!(c.page_memo.max_bytes, 64 << 20);
        let pages = PageServing::from_settings(&Settings::from_pairs([])).unwrap();
        assert_eq!(pages, PageServing::default());
        assert_eq!(pages.max_bytes, 256 << 20);
        assert!(pages.fast_path);
        let c = with(&[
            ("ADMIN_ADDR", "127.0.0.1:9465"),
            ("PAGE_CACHE_MEMO_PER_PAGE", "10"),
            ("PAGE_CACHE_MEMO_MAX_MB", "2"),
        ])
        .unwrap();
        assert_eq!(c.admin_addr, Some("127.0.0.1:9465".parse().unwrap()));
        assert_eq!(c.page_memo.per_page, 10);
        assert_eq!(c.page_memo.max_bytes, 2 << 20);
        assert_eq!(c.urls.page_url("acme"), "http://acme.localhost:8080");
        assert_eq!(c.timeouts, Timeouts::default());
        assert_eq!(c.timeouts.redis, std::time::Duration::from_millis(100));
        assert_eq!(c.database_pooler, heliograph_store::Pooler::None);
        let c = with(&[("DATABASE_POOLER", "transaction")]).unwrap();
        assert_eq!(c.database_pooler, heliograph_store::Pooler::Transaction);
    }

    #[test]
    fn each_bad_setting_is_named() {
        let cases: [(&[(&str, &str)], &str); 13] = [
            (&[("REDIS_TIMEOUT_MS", "0")], "REDIS_TIMEOUT_MS"),
            (&[("DATABASE_POOLER", "statement")], "DATABASE_POOLER"),
            (
                &[("DATABASE_ACQUIRE_TIMEOUT_MS", "soon")],
                "DATABASE_ACQUIRE_TIMEOUT_MS",
            ),
            (&[("REQUEST_TIMEOUT_MS", "999")], "REQUEST_TIMEOUT_MS"),
            (&[("BIND_ADDR", "nowhere")], "BIND_ADDR"),
            (&[("ADMIN_ADDR", "localhost")], "ADMIN_ADDR"),
            (
                &[("PAGE_CACHE_MEMO_PER_PAGE", "-1")],
                "PAGE_CACHE_MEMO_PER_PAGE",
            ),
            (
                &[("PAGE_CACHE_MEMO_MAX_MB", "99999999")],
                "PAGE_CACHE_MEMO_MAX_MB",
            ),
            (&[("PUBLIC_URL", "ftp://x")], "PUBLIC_URL"),
            (&[("JWT_SECRET", "short")], "JWT_SECRET"),
            (&[("SECRETS_KEY", "k1:c2hvcnQ=")], "SECRETS_KEY"),
            (
                &[("ACCESS_TOKEN_TTL_MINUTES", "0")],
                "ACCESS_TOKEN_TTL_MINUTES",
            ),
            (
                &[("CUSTOM_DOMAIN_CNAME_TARGET", "not a host")],
                "CUSTOM_DOMAIN_CNAME_TARGET",
            ),
        ];
        for (extra, name) in cases {
            assert_eq!(with(extra).unwrap_err().name, name);
        }
        for (name, value) in [
            ("PAGE_CACHE_MAX_MB", "99999999"),
            ("PAGE_FAST_PATH", "sometimes"),
        ] {
            let pages = PageServing::from_settings(&Settings::from_pairs([(name, value)]));
            assert_eq!(pages.unwrap_err().name, name);
        }
        for required in ["DATABASE_URL", "SECRETS_KEY"] {
            let missing = ApiConfig::from_settings(&Settings::from_pairs(
                BASE.into_iter().filter(|(k, _)| *k != required),
            ));
            assert_eq!(missing.unwrap_err().name, required);
        }
    }
}
