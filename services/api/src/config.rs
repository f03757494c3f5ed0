//! The API's settings, read once at start (see README § Configuration).

use std::net::SocketAddr;

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
    /// Redis URL (`REDIS_URL`).
    pub redis_url: SecretString,
    /// Listen address (`BIND_ADDR`, default `127.0.0.1:8080`; port 0 picks one).
    pub bind_addr: SocketAddr,
    /// Platform origin and page host names (`PUBLIC_URL`, `BASE_DOMAIN`).
    pub urls: PublicUrls,
    /// Custom domains' CNAME target and the platform's own names
    /// (`CUSTOM_DOMAIN_CNAME_TARGET`, default `pages.<base domain>`).
    pub custom_domains: CustomDomains,
    /// How long a claimed custom domain may wait for verification, and how
    /// many may wait per tenant (`DOMAIN_PENDING_DAYS`, default 7;
    /// `DOMAIN_PENDING_LIMIT`, default 5).
    pub domain_claims: PendingClaims,
    /// HS256 key of session tokens, at least 32 bytes (`JWT_SECRET`).
    pub jwt_secret: SecretString,
    /// Key that signs account links, shared with the worker (`LINK_SECRET`, ≥ 32 bytes).
    pub link_secret: SecretString,
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
    /// The Redis channel replicas (and workers) nudge each other on about
    /// page changes: `<QUEUE_NAMESPACE>:page-changes`, as the worker names it.
    pub page_changes_channel: String,
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
        Ok(Self {
            custom_domains: s.custom_domains(&urls)?,
            domain_claims: s.pending_claims()?,
            database_url: s.secret("DATABASE_URL")?,
            database_max_connections: s.parsed_or("DATABASE_MAX_CONNECTIONS", 10)?,
            redis_url: s.secret("REDIS_URL")?,
            bind_addr: s.parsed_or("BIND_ADDR", SocketAddr::from(([127, 0, 0, 1], 8080)))?,
            urls,
            jwt_secret,
            link_secret,
            access_token_ttl_minutes,
            session_ttl_hours,
            trust_proxy_headers: s.parsed_or("TRUST_PROXY_HEADERS", false)?,
            log_format: s.log_format()?,
            page_cache_poll: std::time::Duration::from_secs(page_cache_poll),
            page_changes_channel: heliograph_jobs::page_changes_channel(
                &s.or("QUEUE_NAMESPACE", "heliograph"),
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: [(&str, &str); 4] = [
        ("DATABASE_URL", "postgres://localhost/x"),
        ("REDIS_URL", "redis://localhost"),
        ("JWT_SECRET", "0123456789abcdef0123456789abcdef"),
        ("LINK_SECRET", "fedcba9876543210fedcba9876543210"),
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
        assert_eq!(c.urls.page_url("acme"), "http://acme.localhost:8080");
    }

    #[test]
    fn each_bad_setting_is_named() {
        let cases: [(&[(&str, &str)], &str); 5] = [
            (&[("BIND_ADDR", "nowhere")], "BIND_ADDR"),
            (&[("PUBLIC_URL", "ftp://x")], "PUBLIC_URL"),
            (&[("JWT_SECRET", "short")], "JWT_SECRET"),
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
        let missing = ApiConfig::from_settings(&Settings::from_pairs(
            BASE.into_iter().filter(|(k, _)| *k != "DATABASE_URL"),
        ));
        assert_eq!(missing.unwrap_err().name, "DATABASE_URL");
    }
}
