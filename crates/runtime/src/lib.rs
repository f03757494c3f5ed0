//! What both binaries need at start: settings read from the environment
//! (optionally a file) with one-line errors that name the setting, and
//! `tracing` set up for text or JSON logs.
//!
//! It knows neither binary's settings (each reads its own with these helpers)
//! and starts nothing else: no server, no pool, no queue.

use std::collections::HashMap;
use std::fmt::Display;
use std::path::Path;
use std::str::FromStr;

use heliograph_domain::{CustomDomains, Hostname, PendingClaims, PublicUrls};
use secrecy::SecretString;

/// A setting that is missing or malformed. Its `Display` is the one line an operator reads.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {name} {problem}")]
pub struct SettingError {
    /// The setting's name.
    pub name: &'static str,
    /// What is wrong with it (never its value: it may be a secret).
    pub problem: String,
}

impl SettingError {
    /// An error about `name`.
    pub fn new(name: &'static str, problem: impl Into<String>) -> Self {
        Self {
            name,
            problem: problem.into(),
        }
    }
}

/// Where settings come from: the process environment, over an optional
/// `KEY=VALUE` file named by `HELIOGRAPH_CONFIG_FILE`. The environment wins.
#[derive(Debug, Default)]
pub struct Settings {
    file: HashMap<String, String>,
    env: HashMap<String, String>,
}

impl Settings {
    /// Reads the environment and, if `HELIOGRAPH_CONFIG_FILE` is set, that file.
    pub fn from_env() -> Result<Self, SettingError> {
        let env: HashMap<String, String> = std::env::vars().collect();
        let file = match env.get("HELIOGRAPH_CONFIG_FILE") {
            Some(path) if !path.is_empty() => read_file(Path::new(path))?,
            _ => HashMap::new(),
        };
        Ok(Self { file, env })
    }

    /// Settings from explicit pairs (tests).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self {
            file: HashMap::new(),
            env: pairs
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        }
    }

    fn raw(&self, name: &str) -> Option<&str> {
        self.env
            .get(name)
            .or_else(|| self.file.get(name))
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }

    /// A required string.
    pub fn required(&self, name: &'static str) -> Result<String, SettingError> {
        self.raw(name)
            .map(str::to_owned)
            .ok_or_else(|| SettingError::new(name, "is not set"))
    }

    /// A required secret; never echoed in errors or logs.
    pub fn secret(&self, name: &'static str) -> Result<SecretString, SettingError> {
        self.required(name).map(SecretString::from)
    }

    /// An optional string with a default.
    #[must_use]
    pub fn or(&self, name: &'static str, default: &str) -> String {
        self.raw(name).unwrap_or(default).to_owned()
    }

    /// An optional value parsed with `FromStr`, with a default.
    pub fn parsed_or<T>(&self, name: &'static str, default: T) -> Result<T, SettingError>
    where
        T: FromStr,
        T::Err: Display,
    {
        match self.raw(name) {
            None => Ok(default),
            Some(v) => v
                .trim()
                .parse()
                .map_err(|e| SettingError::new(name, format!("is malformed: {e}"))),
        }
    }

    /// The platform origin (`PUBLIC_URL`, default `http://localhost:8080`) and
    /// the domain pages live under (`BASE_DOMAIN`, default the origin's host).
    pub fn public_urls(&self) -> Result<PublicUrls, SettingError> {
        let public_url = self.or("PUBLIC_URL", "http://localhost:8080");
        PublicUrls::new(&public_url, None)
            .map_err(|e| SettingError::new("PUBLIC_URL", format!("is malformed: {e}")))?;
        PublicUrls::new(&public_url, self.raw("BASE_DOMAIN"))
            .map_err(|e| SettingError::new("BASE_DOMAIN", format!("is malformed: {e}")))
    }

    /// Custom domains' settings: the host tenants point their CNAME records
    /// at (`CUSTOM_DOMAIN_CNAME_TARGET`, default `pages.<base domain>`),
    /// and the platform's own names, which tenants cannot claim.
    pub fn custom_domains(&self, urls: &PublicUrls) -> Result<CustomDomains, SettingError> {
        const NAME: &str = "CUSTOM_DOMAIN_CNAME_TARGET";
        let target = match self.raw(NAME) {
            Some(raw) => Hostname::parse(NAME, raw)
                .map_err(|e| SettingError::new(NAME, format!("is malformed: {}", e.message)))?,
            None => Hostname::parse(NAME, &format!("pages.{}", urls.base_host())).map_err(|e| {
                SettingError::new(
                    NAME,
                    format!(
                        "is not set, and pages.<BASE_DOMAIN> is not a host name ({})",
                        e.message
                    ),
                )
            })?,
        };
        Ok(CustomDomains::new(urls, target))
    }

    /// How long a custom domain may wait for verification
    /// (`DOMAIN_PENDING_DAYS`, 1–90, default 7) and how many may wait at
    /// once per tenant (`DOMAIN_PENDING_LIMIT`, 1–1000, default 5).
    pub fn pending_claims(&self) -> Result<PendingClaims, SettingError> {
        let days: u16 = self.parsed_or("DOMAIN_PENDING_DAYS", 7)?;
        if !(1..=90).contains(&days) {
            return Err(SettingError::new(
                "DOMAIN_PENDING_DAYS",
                "must be between 1 and 90",
            ));
        }
        let per_tenant: usize = self.parsed_or("DOMAIN_PENDING_LIMIT", 5)?;
        if !(1..=1000).contains(&per_tenant) {
            return Err(SettingError::new(
                "DOMAIN_PENDING_LIMIT",
                "must be between 1 and 1000",
            ));
        }
        Ok(PendingClaims {
            expire_after: time::Duration::days(i64::from(days)),
            per_tenant,
        })
    }

    /// The log format: `text` (default) or `json`.
    pub fn log_format(&self) -> Result<LogFormat, SettingError> {
        match self.or("LOG_FORMAT", "text").as_str() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err(SettingError::new("LOG_FORMAT", "must be `text` or `json`")),
        }
    }
}

fn read_file(path: &Path) -> Result<HashMap<String, String>, SettingError> {
    let iter = dotenvy::from_path_iter(path)
        .map_err(|e| SettingError::new("HELIOGRAPH_CONFIG_FILE", format!("cannot be read: {e}")))?;
    iter.map(|item| {
        item.map_err(|e| SettingError::new("HELIOGRAPH_CONFIG_FILE", format!("is malformed: {e}")))
    })
    .collect()
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log pipelines.
    Json,
}

/// Installs the global `tracing` subscriber, filtered by `RUST_LOG` (default `info`).
pub fn init_tracing(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
    };
    // A subscriber is already installed when tests start several apps in one process.
    drop(result);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_setting_is_named() {
        let s = Settings::from_pairs([]);
        assert_eq!(
            s.required("DATABASE_URL").unwrap_err().to_string(),
            "configuration: DATABASE_URL is not set"
        );
    }

    #[test]
    fn a_malformed_setting_is_named_with_the_reason() {
        let s = Settings::from_pairs([("WORKER_CONCURRENCY", "many")]);
        let err = s.parsed_or("WORKER_CONCURRENCY", 4_usize).unwrap_err();
        assert_eq!(
            err.to_string(),
            "configuration: WORKER_CONCURRENCY is malformed: invalid digit found in string"
        );
    }

    #[test]
    fn the_cname_target_defaults_to_a_host_under_the_base_domain() {
        let s = Settings::from_pairs([("BASE_DOMAIN", "status.example:8443")]);
        let urls = s.public_urls().unwrap();
        let domains = s.custom_domains(&urls).unwrap();
        assert_eq!(domains.cname_target().as_str(), "pages.status.example");
        let s = Settings::from_pairs([("CUSTOM_DOMAIN_CNAME_TARGET", "Edge.Example.NET.")]);
        let domains = s.custom_domains(&urls).unwrap();
        assert_eq!(domains.cname_target().as_str(), "edge.example.net");
        for bad in [
            ("CUSTOM_DOMAIN_CNAME_TARGET", "edge"),
            ("BASE_DOMAIN", "127.0.0.1:8080"),
        ] {
            let s = Settings::from_pairs([bad]);
            let urls = s.public_urls().unwrap();
            assert_eq!(
                s.custom_domains(&urls).unwrap_err().name,
                "CUSTOM_DOMAIN_CNAME_TARGET"
            );
        }
    }

    #[test]
    fn pending_domains_expire_after_a_week_and_five_may_wait_by_default() {
        let claims = Settings::from_pairs([]).pending_claims().unwrap();
        assert_eq!(claims, PendingClaims::DEFAULT);
        let s = Settings::from_pairs([("DOMAIN_PENDING_DAYS", "2"), ("DOMAIN_PENDING_LIMIT", "1")]);
        let claims = s.pending_claims().unwrap();
        assert_eq!(claims.expire_after, time::Duration::days(2));
        assert_eq!(claims.per_tenant, 1);
        for (name, value) in [
            ("DOMAIN_PENDING_DAYS", "0"),
            ("DOMAIN_PENDING_DAYS", "91"),
            ("DOMAIN_PENDING_LIMIT", "0"),
            ("DOMAIN_PENDING_LIMIT", "many"),
        ] {
            let s = Settings::from_pairs([(name, value)]);
            assert_eq!(s.pending_claims().unwrap_err().name, name, "{value}");
        }
    }

    #[test]
    fn blank_counts_as_unset_and_defaults_apply() {
        let s = Settings::from_pairs([("BIND_ADDR", "  ")]);
        assert_eq!(s.or("BIND_ADDR", "127.0.0.1:8080"), "127.0.0.1:8080");
        assert_eq!(s.parsed_or("N", 3_u32).unwrap(), 3);
    }

    #[test]
    fn the_environment_wins_over_the_file() {
        let dir = std::env::temp_dir().join(format!("hg-settings-{}", std::process::id()));
        std::fs::write(&dir, "A=from-file\nB=file-only\n").unwrap();
        let mut s = Settings::from_pairs([("A", "from-env")]);
        s.file = read_file(&dir).unwrap();
        std::fs::remove_file(&dir).unwrap();
        assert_eq!(s.required("A").unwrap(), "from-env");
        assert_eq!(s.required("B").unwrap(), "file-only");
    }
}
