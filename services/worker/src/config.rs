//! The worker's settings, read once at start (see README § Configuration).
//!
//! Reading and checking values in general is `heliograph-runtime`'s; this
//! module says which settings the worker has and their defaults.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use heliograph_auth::SecretsKeyring;
use heliograph_billing::Billing;
use heliograph_domain::{CustomDomains, PhoneNumber, PublicUrls};
use heliograph_notify::{AllowedTargets, Guard, RetryPolicy, SmtpSettings};
use heliograph_runtime::{LogFormat, SettingError, Settings};
use lettre::message::Mailbox;
use secrecy::SecretString;

/// Everything the worker needs to start.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// PostgreSQL URL (`DATABASE_URL`).
    pub database_url: SecretString,
    /// Pool size (`DATABASE_MAX_CONNECTIONS`, default 10).
    pub database_max_connections: u32,
    /// How long a job waits for a pooled connection, including opening one
    /// and checking an idle one answers (`DATABASE_ACQUIRE_TIMEOUT_MS`,
    /// default 5000); past it the job fails transiently and is retried.
    pub database_acquire_timeout: Duration,
    /// PostgreSQL's `statement_timeout` on the worker's connections
    /// (`DATABASE_STATEMENT_TIMEOUT_MS`, default 30000).
    pub database_statement_timeout: Duration,
    /// What stands between the worker and PostgreSQL (`DATABASE_POOLER`:
    /// `none`, the default, or `transaction` behind PgBouncer's transaction
    /// pooling; see `heliograph_store::Pooler`).
    pub database_pooler: heliograph_store::Pooler,
    /// Where the outbox relay's `LISTEN` connects behind a transaction
    /// pooler (`DATABASE_LISTEN_URL`: PostgreSQL itself, or the pooler in
    /// session mode); unset there, the relay polls every
    /// `OUTBOX_POLL_INTERVAL_MS`.
    pub database_listen_url: Option<SecretString>,
    /// Redis URL (`REDIS_URL`).
    pub redis_url: SecretString,
    /// Key prefix of every queue (`QUEUE_NAMESPACE`, default `heliograph`).
    pub queue_namespace: String,
    /// SMTP server, `smtp://user:pass@host:port` or `smtps://…` (`SMTP_URL`).
    pub smtp_url: SecretString,
    /// How SMTP sessions are shared: sessions in use at once per worker
    /// process (`SMTP_POOL_SIZE`, default 2) and messages each carries
    /// before it is closed (`SMTP_MAX_MESSAGES_PER_SESSION`, default 100).
    pub smtp: SmtpSettings,
    /// Sender of notification emails (`EMAIL_FROM`).
    pub email_from: Mailbox,
    /// Platform and page URLs, for links in notifications (`PUBLIC_URL`, `BASE_DOMAIN`).
    pub urls: PublicUrls,
    /// Key that signs account links, shared with the API (`LINK_SECRET`, ≥ 32 bytes).
    pub link_secret: SecretString,
    /// The key ring secrets at rest are sealed with (`SECRETS_KEY`, shared
    /// with the API): deliveries open webhook signing secrets and Slack and
    /// Teams URLs with it.
    pub secrets: Arc<SecretsKeyring>,
    /// Jobs run at once per queue (`WORKER_CONCURRENCY`, default 8).
    pub concurrency: usize,
    /// Outbox poll interval when no notification arrives (`OUTBOX_POLL_INTERVAL_MS`, default 1000).
    pub outbox_poll_interval: Duration,
    /// Log format (`LOG_FORMAT`).
    pub log_format: LogFormat,
    /// How long before a maintenance window subscribers are reminded
    /// (`MAINTENANCE_REMINDER_MINUTES`, default 60).
    pub maintenance_reminder: Duration,
    /// Custom domains' CNAME target and the platform's own names
    /// (`CUSTOM_DOMAIN_CNAME_TARGET`, default `pages.<base domain>`).
    pub custom_domains: CustomDomains,
    /// The name server custom domain checks ask (`DNS_NAMESERVER`, `ip` or
    /// `ip:port`); `None`: those of the system's `/etc/resolv.conf`.
    pub dns_nameserver: Option<SocketAddr>,
    /// How often a verified, failing or stopped domain is checked again
    /// (`DOMAIN_RECHECK_MINUTES`, default 360).
    pub domain_recheck: Duration,
    /// How long a verified domain may fail its checks before it stops
    /// routing and its tenant is told (`DOMAIN_GRACE_DAYS`, default 3).
    pub domain_grace: Duration,
    /// How long a claimed domain may stay unverified before it expires
    /// (`DOMAIN_PENDING_DAYS`, default 7).
    pub domain_pending_period: Duration,
    /// Webhook, Slack and Teams receivers and the SMS provider.
    pub channels: ChannelConfig,
    /// `METRICS_ADDR` (default `127.0.0.1:9464`; `off`: none): where
    /// `GET /metrics` answers.
    pub metrics_addr: Option<SocketAddr>,
    /// How often the records of finished jobs are purged from Redis and
    /// stalled work is swept (`JANITOR_INTERVAL_SECONDS`, default 60).
    pub janitor_interval: Duration,
    /// Billing, read as the API reads it (`BILLING`, default off;
    /// `PLANS_FILE`; `BILLING_GRACE_DAYS`; `STRIPE_*`): with it on,
    /// deliveries keep to the plan's `texts_per_month` and
    /// `emails_per_month`, owners are emailed when payments fail, and
    /// subscriptions are reconciled with Stripe every hour.
    pub billing: Billing,
    /// Page export (`SNAPSHOT_BUCKET_URL`, `AWS_ENDPOINT_URL`, `AWS_REGION`,
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`);
    /// `None` (the default): off.
    pub export: Option<crate::export::ExportConfig>,
}

/// Settings of the non-email channels.
#[derive(Debug, Clone)]
pub struct ChannelConfig {
    /// `WEBHOOK_ALLOW_LOOPBACK` / `WEBHOOK_ALLOW_PRIVATE` (default false):
    /// whether webhooks may reach loopback and private addresses. Link-local
    /// and cloud metadata addresses are never allowed.
    pub allow: AllowedTargets,
    /// `WEBHOOK_TIMEOUT_SECONDS` (default 15).
    pub webhook_timeout: Duration,
    /// `WEBHOOK_RETRY_SCHEDULE` (default `5s,5m,30m,2h,5h,10h,10h`; the first attempt is immediate).
    pub webhook_retry: RetryPolicy,
    /// `EMAIL_RETRY_SCHEDULE` (default `10s,1m,5m,30m,2h`).
    pub email_retry: RetryPolicy,
    /// `SMS_RETRY_SCHEDULE` (default `10s,1m,5m,30m`).
    pub sms_retry: RetryPolicy,
    /// `SMS_PROVIDER_URL` (a Twilio-compatible Messages API, e.g.
    /// `https://api.twilio.com`), with `SMS_ACCOUNT_SID`, `SMS_AUTH_TOKEN`
    /// and `SMS_FROM`; none: SMS deliveries fail, saying so.
    pub sms: Option<SmsConfig>,
    /// `SMS_MONTHLY_BUDGET` (default 1000): texts per tenant per month,
    /// unless the tenant has a budget of its own.
    pub sms_monthly_budget: i32,
    /// `SMS_CONFIRMATION_MONTHLY_BUDGET` (default 100): confirmation codes
    /// per tenant per month, apart from the texts above, unless the tenant
    /// has a budget of its own.
    pub sms_confirmation_monthly_budget: i32,
    /// The platform's hourly limits on confirmation codes.
    pub sms_velocity: SmsVelocity,
    /// `WEBHOOK_DOCS_URL`: where webhook payloads are documented (sent in each one).
    pub webhook_docs_url: String,
}

/// How many confirmation codes may be texted in an hour, across every
/// tenant and worker (counted in Redis): anyone can ask for one, so they
/// are what an SMS pumping attack drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SmsVelocity {
    /// `SMS_RANGE_DIGITS` (default 3): the trailing digits that make a
    /// number range (3: the 1,000 numbers `+1415555 0000`–`0999` are one).
    pub range_digits: usize,
    /// `SMS_CONFIRMATIONS_PER_RANGE` (default 10): codes an hour to the
    /// numbers of one range, platform-wide (ranges being walked).
    pub per_range: u64,
    /// `SMS_CONFIRMATIONS_PER_PAGE` (default 30): codes an hour for one page.
    pub per_page: u64,
}

impl SmsVelocity {
    /// The window the limits count over.
    pub const WINDOW: Duration = Duration::from_secs(3600);
}

impl Default for SmsVelocity {
    fn default() -> Self {
        Self {
            range_digits: 3,
            per_range: 10,
            per_page: 30,
        }
    }
}

/// A Twilio-compatible SMS provider.
#[derive(Debug, Clone)]
pub struct SmsConfig {
    /// Base URL.
    pub url: String,
    /// Account SID.
    pub account_sid: String,
    /// Auth token.
    pub auth_token: SecretString,
    /// The sending number.
    pub from: PhoneNumber,
}

fn schedule(
    s: &Settings,
    name: &'static str,
    default: RetryPolicy,
) -> Result<RetryPolicy, SettingError> {
    let raw = s.or(name, "");
    if raw.trim().is_empty() {
        return Ok(default);
    }
    RetryPolicy::parse(&raw).ok_or_else(|| {
        SettingError::new(
            name,
            "must be delays separated by commas, each with a unit: 5s,5m,30m,2h",
        )
    })
}

impl ChannelConfig {
    fn from_settings(s: &Settings, urls: &PublicUrls) -> Result<Self, SettingError> {
        let timeout: u64 = s.parsed_or("WEBHOOK_TIMEOUT_SECONDS", 15)?;
        if !(1..=60).contains(&timeout) {
            return Err(SettingError::new(
                "WEBHOOK_TIMEOUT_SECONDS",
                "must be between 1 and 60",
            ));
        }
        let budget: i32 = s.parsed_or("SMS_MONTHLY_BUDGET", 1000)?;
        if budget < 0 {
            return Err(SettingError::new(
                "SMS_MONTHLY_BUDGET",
                "must not be negative",
            ));
        }
        let confirmation_budget: i32 = s.parsed_or("SMS_CONFIRMATION_MONTHLY_BUDGET", 100)?;
        if confirmation_budget < 0 {
            return Err(SettingError::new(
                "SMS_CONFIRMATION_MONTHLY_BUDGET",
                "must not be negative",
            ));
        }
        let defaults = SmsVelocity::default();
        let range_digits: usize = s.parsed_or("SMS_RANGE_DIGITS", defaults.range_digits)?;
        if range_digits > 6 {
            return Err(SettingError::new(
                "SMS_RANGE_DIGITS",
                "must be between 0 and 6",
            ));
        }
        let sms_velocity = SmsVelocity {
            range_digits,
            per_range: s.parsed_or("SMS_CONFIRMATIONS_PER_RANGE", defaults.per_range)?,
            per_page: s.parsed_or("SMS_CONFIRMATIONS_PER_PAGE", defaults.per_page)?,
        };
        let sms_url = s.or("SMS_PROVIDER_URL", "");
        let sms = if sms_url.trim().is_empty() {
            None
        } else {
            // The operator's own URL: loopback and private addresses are
            // fine, metadata, link-local and reserved ones never are.
            Guard::new(AllowedTargets::OPERATOR)
                .check_url(sms_url.trim())
                .map_err(|e| SettingError::new("SMS_PROVIDER_URL", format!("is refused: {e}")))?;
            let from = s.required("SMS_FROM")?;
            Some(SmsConfig {
                url: sms_url.trim().to_owned(),
                account_sid: s.required("SMS_ACCOUNT_SID")?,
                auth_token: s.secret("SMS_AUTH_TOKEN")?,
                from: PhoneNumber::parse("SMS_FROM", &from)
                    .map_err(|_| SettingError::new("SMS_FROM", "must be a number in E.164 form"))?,
            })
        };
        Ok(Self {
            allow: AllowedTargets {
                loopback: s.parsed_or("WEBHOOK_ALLOW_LOOPBACK", false)?,
                private: s.parsed_or("WEBHOOK_ALLOW_PRIVATE", false)?,
            },
            webhook_timeout: Duration::from_secs(timeout),
            webhook_retry: schedule(s, "WEBHOOK_RETRY_SCHEDULE", RetryPolicy::webhook())?,
            email_retry: schedule(s, "EMAIL_RETRY_SCHEDULE", RetryPolicy::email())?,
            sms_retry: schedule(s, "SMS_RETRY_SCHEDULE", RetryPolicy::sms())?,
            sms,
            sms_monthly_budget: budget,
            sms_confirmation_monthly_budget: confirmation_budget,
            sms_velocity,
            webhook_docs_url: s.or("WEBHOOK_DOCS_URL", &format!("{}/v1/docs/", urls.origin())),
        })
    }
}

impl WorkerConfig {
    /// Reads and validates the settings.
    pub fn from_settings(s: &Settings) -> Result<Self, SettingError> {
        let email_from: Mailbox = s.parsed_or(
            "EMAIL_FROM",
            Mailbox::new(
                Some("Heliograph".to_owned()),
                "notifications@heliograph.localhost"
                    .parse()
                    .map_err(|_| SettingError::new("EMAIL_FROM", "default is invalid"))?,
            ),
        )?;
        let concurrency: usize = s.parsed_or("WORKER_CONCURRENCY", 8)?;
        if !(1..=1024).contains(&concurrency) {
            return Err(SettingError::new(
                "WORKER_CONCURRENCY",
                "must be between 1 and 1024",
            ));
        }
        let smtp_pool_size: usize = s.parsed_or("SMTP_POOL_SIZE", 2)?;
        if !(1..=256).contains(&smtp_pool_size) {
            return Err(SettingError::new(
                "SMTP_POOL_SIZE",
                "must be between 1 and 256",
            ));
        }
        let smtp_per_session: usize = s.parsed_or("SMTP_MAX_MESSAGES_PER_SESSION", 100)?;
        if !(1..=100_000).contains(&smtp_per_session) {
            return Err(SettingError::new(
                "SMTP_MAX_MESSAGES_PER_SESSION",
                "must be between 1 and 100000",
            ));
        }
        let poll_ms: u64 = s.parsed_or("OUTBOX_POLL_INTERVAL_MS", 1000)?;
        if !(50..=60_000).contains(&poll_ms) {
            return Err(SettingError::new(
                "OUTBOX_POLL_INTERVAL_MS",
                "must be between 50 and 60000",
            ));
        }
        let janitor_seconds: u64 = s.parsed_or("JANITOR_INTERVAL_SECONDS", 60)?;
        if !(1..=3600).contains(&janitor_seconds) {
            return Err(SettingError::new(
                "JANITOR_INTERVAL_SECONDS",
                "must be between 1 and 3600",
            ));
        }
        let reminder_minutes: u64 = s.parsed_or("MAINTENANCE_REMINDER_MINUTES", 60)?;
        if !(1..=10_080).contains(&reminder_minutes) {
            return Err(SettingError::new(
                "MAINTENANCE_REMINDER_MINUTES",
                "must be between 1 and 10080 (a week)",
            ));
        }
        let recheck_minutes: u64 = s.parsed_or("DOMAIN_RECHECK_MINUTES", 360)?;
        if !(5..=10_080).contains(&recheck_minutes) {
            return Err(SettingError::new(
                "DOMAIN_RECHECK_MINUTES",
                "must be between 5 and 10080 (a week)",
            ));
        }
        let grace_days: u64 = s.parsed_or("DOMAIN_GRACE_DAYS", 3)?;
        if !(1..=60).contains(&grace_days) {
            return Err(SettingError::new(
                "DOMAIN_GRACE_DAYS",
                "must be between 1 and 60",
            ));
        }
        let acquire_ms: u64 = s.parsed_or("DATABASE_ACQUIRE_TIMEOUT_MS", 5000)?;
        if !(100..=60_000).contains(&acquire_ms) {
            return Err(SettingError::new(
                "DATABASE_ACQUIRE_TIMEOUT_MS",
                "must be between 100 and 60000",
            ));
        }
        let statement_ms: u64 = s.parsed_or("DATABASE_STATEMENT_TIMEOUT_MS", 30_000)?;
        if !(100..=3_600_000).contains(&statement_ms) {
            return Err(SettingError::new(
                "DATABASE_STATEMENT_TIMEOUT_MS",
                "must be between 100 and 3600000",
            ));
        }
        let urls = s.public_urls()?;
        let smtp_url = s.secret("SMTP_URL")?;
        let link_secret = s.secret("LINK_SECRET")?;
        if secrecy::ExposeSecret::expose_secret(&link_secret).len() < 32 {
            return Err(SettingError::new(
                "LINK_SECRET",
                "must be at least 32 bytes",
            ));
        }
        let secrets = SecretsKeyring::parse(secrecy::ExposeSecret::expose_secret(
            &s.secret("SECRETS_KEY")?,
        ))
        .map(Arc::new)
        .map_err(|e| SettingError::new("SECRETS_KEY", format!("is malformed: {e}")))?;
        Ok(Self {
            database_url: s.secret("DATABASE_URL")?,
            database_max_connections: s.parsed_or("DATABASE_MAX_CONNECTIONS", 10)?,
            database_acquire_timeout: Duration::from_millis(acquire_ms),
            database_statement_timeout: Duration::from_millis(statement_ms),
            database_pooler: s.parsed_or("DATABASE_POOLER", heliograph_store::Pooler::None)?,
            database_listen_url: Some(s.or("DATABASE_LISTEN_URL", ""))
                .filter(|url| !url.trim().is_empty())
                .map(SecretString::from),
            redis_url: s.secret("REDIS_URL")?,
            queue_namespace: s.or("QUEUE_NAMESPACE", "heliograph"),
            smtp_url,
            smtp: SmtpSettings {
                pool_size: smtp_pool_size,
                max_messages_per_session: smtp_per_session,
                timeout: SmtpSettings::default().timeout,
            },
            email_from,
            custom_domains: s.custom_domains(&urls)?,
            link_secret,
            secrets,
            concurrency,
            outbox_poll_interval: Duration::from_millis(poll_ms),
            log_format: s.log_format()?,
            maintenance_reminder: Duration::from_secs(reminder_minutes * 60),
            dns_nameserver: nameserver(s)?,
            urls: urls.clone(),
            domain_recheck: Duration::from_secs(recheck_minutes * 60),
            domain_grace: Duration::from_secs(grace_days * 86_400),
            domain_pending_period: Duration::from_secs(
                u64::try_from(s.pending_claims()?.expire_after.whole_seconds()).unwrap_or(0),
            ),
            channels: ChannelConfig::from_settings(s, &urls)?,
            metrics_addr: metrics_addr(s)?,
            janitor_interval: Duration::from_secs(janitor_seconds),
            billing: Billing::from_settings(s)?,
            export: crate::export::ExportConfig::from_settings(s)?,
        })
    }
}

/// `METRICS_ADDR`: where `/metrics` is served, or `off`. (An empty value
/// means unset, as for every setting, and so the default.)
fn metrics_addr(s: &Settings) -> Result<Option<SocketAddr>, SettingError> {
    let raw = s.or("METRICS_ADDR", "127.0.0.1:9464");
    let raw = raw.trim();
    if raw.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    raw.parse().map(Some).map_err(|_| {
        SettingError::new(
            "METRICS_ADDR",
            "must be an address and port (127.0.0.1:9464), or `off`",
        )
    })
}

/// `DNS_NAMESERVER`: `ip:port`, or an address alone for port 53 (IPv6 with
/// a port in brackets: `[2001:db8::53]:5353`).
fn nameserver(s: &Settings) -> Result<Option<SocketAddr>, SettingError> {
    let raw = s.or("DNS_NAMESERVER", "");
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    raw.parse::<SocketAddr>()
        .or_else(|_| raw.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
        .map(Some)
        .map_err(|_| {
            SettingError::new(
                "DNS_NAMESERVER",
                "must be an IP address with an optional port (127.0.0.1:5353)",
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: [(&str, &str); 5] = [
        ("DATABASE_URL", "postgres://localhost/x"),
        ("REDIS_URL", "redis://localhost"),
        ("SMTP_URL", "smtp://localhost:1025"),
        ("LINK_SECRET", "0123456789abcdef0123456789abcdef"),
        (
            "SECRETS_KEY",
            "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        ),
    ];

    #[test]
    fn defaults_are_usable() {
        let c = WorkerConfig::from_settings(&Settings::from_pairs(BASE)).unwrap();
        assert_eq!(c.concurrency, 8);
        assert_eq!(c.smtp.pool_size, 2);
        assert_eq!(c.smtp.max_messages_per_session, 100);
        assert_eq!(
            c.email_from.email.to_string(),
            "notifications@heliograph.localhost"
        );
        assert_eq!(c.dns_nameserver, None, "the system's resolv.conf");
        assert_eq!(c.domain_recheck, Duration::from_secs(6 * 3600));
        assert_eq!(c.domain_grace, Duration::from_secs(3 * 86_400));
        assert_eq!(c.domain_pending_period, Duration::from_secs(7 * 86_400));
        assert_eq!(c.custom_domains.cname_target().as_str(), "pages.localhost");
        assert_eq!(c.metrics_addr, Some("127.0.0.1:9464".parse().unwrap()));
        assert_eq!(c.janitor_interval, Duration::from_secs(60));
        assert_eq!(c.channels.sms_confirmation_monthly_budget, 100);
        assert_eq!(c.channels.sms_velocity, SmsVelocity::default());
        assert!(!c.billing.is_on(), "billing is off unless turned on");
    }

    #[test]
    fn metrics_can_be_turned_off() {
        let s = Settings::from_pairs(BASE.into_iter().chain([("METRICS_ADDR", "off")]));
        assert_eq!(WorkerConfig::from_settings(&s).unwrap().metrics_addr, None);
    }

    #[test]
    fn the_name_server_takes_an_address_with_or_without_a_port() {
        for (raw, expected) in [
            ("127.0.0.1:5353", "127.0.0.1:5353"),
            ("192.0.2.53", "192.0.2.53:53"),
            ("[2001:db8::53]:5353", "[2001:db8::53]:5353"),
            ("2001:db8::53", "[2001:db8::53]:53"),
        ] {
            let s = Settings::from_pairs(BASE.into_iter().chain([("DNS_NAMESERVER", raw)]));
            let c = WorkerConfig::from_settings(&s).unwrap();
            assert_eq!(c.dns_nameserver.unwrap().to_string(), expected, "{raw}");
        }
    }

    #[test]
    fn each_bad_setting_is_named() {
        for (name, value) in [
            ("EMAIL_FROM", "not an address"),
            ("WORKER_CONCURRENCY", "0"),
            ("SMTP_POOL_SIZE", "0"),
            ("SMTP_MAX_MESSAGES_PER_SESSION", "none"),
            ("OUTBOX_POLL_INTERVAL_MS", "soon"),
            ("DATABASE_POOLER", "statement"),
            ("BASE_DOMAIN", "a/b"),
            ("DNS_NAMESERVER", "ns1.example.com"),
            ("DOMAIN_RECHECK_MINUTES", "1"),
            ("DOMAIN_GRACE_DAYS", "0"),
            ("DOMAIN_PENDING_DAYS", "0"),
            ("CUSTOM_DOMAIN_CNAME_TARGET", "nodot"),
            ("METRICS_ADDR", "9464"),
            ("JANITOR_INTERVAL_SECONDS", "0"),
            ("SECRETS_KEY", "k1:too-short"),
            ("SMS_CONFIRMATION_MONTHLY_BUDGET", "-1"),
            ("SMS_RANGE_DIGITS", "7"),
            ("SMS_CONFIRMATIONS_PER_RANGE", "many"),
            ("SMS_CONFIRMATIONS_PER_PAGE", "-3"),
            ("BILLING", "yes"),
        ] {
            let s = Settings::from_pairs(BASE.into_iter().chain([(name, value)]));
            assert_eq!(WorkerConfig::from_settings(&s).unwrap_err().name, name);
        }
        for required in ["SMTP_URL", "SECRETS_KEY"] {
            let s = Settings::from_pairs(BASE.into_iter().filter(|(k, _)| *k != required));
            assert_eq!(WorkerConfig::from_settings(&s).unwrap_err().name, required);
        }
    }

    #[test]
    fn an_sms_provider_at_a_metadata_or_reserved_address_is_refused_at_start() {
        let sms = |url: &'static str| {
            Settings::from_pairs(BASE.into_iter().chain([
                ("SMS_PROVIDER_URL", url),
                ("SMS_ACCOUNT_SID", "AC0"),
                ("SMS_AUTH_TOKEN", "secret"),
                ("SMS_FROM", "+15005550006"),
            ]))
        };
        for url in [
            "http://169.254.169.254",
            "http://[fd00:ec2::254]/",
            "http://0x64646464/",
            "https://[::ffff:169.254.170.2]",
            "ftp://sms.example.com",
        ] {
            let err = WorkerConfig::from_settings(&sms(url)).unwrap_err();
            assert_eq!(err.name, "SMS_PROVIDER_URL", "{url}");
        }
        // The operator's own network is the operator's business.
        for url in [
            "https://api.twilio.com",
            "http://127.0.0.1:9000",
            "http://10.0.0.5/",
        ] {
            assert!(WorkerConfig::from_settings(&sms(url)).is_ok(), "{url}");
        }
    }
}
