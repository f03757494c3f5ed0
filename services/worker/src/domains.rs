//! Custom domain checks: does `_heliograph.<host>` carry the domain's token
//! in a TXT record, and does `<host>` point at the platform with a CNAME?
//!
//! A check runs when the API asks for one (a `VerifyDomain` job, relayed
//! from the domain's row) and from the worker's clock: a new domain at once,
//! a pending one every [`PENDING_CHECK_INTERVAL`] through its first day, any
//! other every `DOMAIN_RECHECK_MINUTES`, and a pending one whose pending
//! period (`DOMAIN_PENDING_DAYS`) just ended once more (it expires unless
//! that check passes). What an outcome changes is
//! `heliograph_domain::DomainState::after_check`. A domain that stops is
//! announced to the tenant's owners and admins by email, once; so is a
//! claim taken because another tenant verified the hostname first. Taken
//! and expired claims are not checked.
//!
//! The CNAME must name the target itself. A chain through a name of the
//! tenant's, CNAME flattening at the apex, or A/AAAA records copying the
//! target's addresses are not accepted: none of them shows that requests
//! will keep reaching the platform when its addresses change.

use std::net::SocketAddr;
use std::time::Duration;

use heliograph_domain::custom_domain::txt_record_name;
use heliograph_domain::{
    CheckRules, CustomDomains, DomainCheckError, DomainId, EmailAddress, Hostname, TenantId,
};
use heliograph_notify::{DomainStoppedEmail, DomainTakenEmail, EmailMessage, SendError};
use heliograph_store::{DomainNotice, DomainNoticeKind, StoreError};
use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig};
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::{Resolver, TokioResolver};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::{Context, Error, VerifyDomain};

/// How often the clock checks a domain added in the last day and not yet
/// verified: often, so a tenant who just created the records sees it soon.
pub const PENDING_CHECK_INTERVAL: Duration = Duration::from_secs(300);

/// How long one DNS query may take before it counts as unanswered.
pub const DNS_TIMEOUT: Duration = Duration::from_secs(5);

/// How many domains one clock tick checks at once.
const CHECKS_AT_ONCE: usize = 8;

/// Domains one clock tick takes at most; the next tick takes the rest.
const TICK_BATCH: i64 = 200;

/// What custom domain checks need. Built once; cheap to share.
pub struct DomainChecks {
    /// Asks DNS.
    pub dns: DnsChecker,
    /// The CNAME target, and the platform's own names.
    pub policy: CustomDomains,
    /// How often a verified, failing or stopped domain is checked again.
    pub recheck: Duration,
    /// How long a verified domain may fail before it stops routing.
    pub grace: Duration,
    /// How long a claim may stay pending before it expires.
    pub pending_period: Duration,
}

impl DomainChecks {
    /// The rules checks are recorded by.
    fn rules(&self) -> CheckRules {
        let days = |d: Duration| time::Duration::try_from(d).unwrap_or(time::Duration::MAX);
        CheckRules {
            grace: days(self.grace),
            pending: days(self.pending_period),
        }
    }
}

/// A DNS stub resolver asking one name server (or the system's), without a cache.
#[derive(Clone)]
pub struct DnsChecker {
    resolver: TokioResolver,
    timeout: Duration,
}

impl std::fmt::Debug for DnsChecker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsChecker")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl DnsChecker {
    /// A checker asking `nameserver` (over UDP, and TCP for long answers),
    /// or the name servers of the system's `/etc/resolv.conf`; each query
    /// gives up after `timeout`.
    pub fn new(nameserver: Option<SocketAddr>, timeout: Duration) -> Result<Self, NetError> {
        let mut builder = match nameserver {
            Some(addr) => {
                let mut server = NameServerConfig::udp_and_tcp(addr.ip());
                for connection in &mut server.connections {
                    connection.port = addr.port();
                }
                Resolver::builder_with_config(
                    ResolverConfig::from_name_servers(vec![server]),
                    TokioRuntimeProvider::default(),
                )
            }
            None => TokioResolver::builder_tokio()?,
        };
        let options = builder.options_mut();
        // A check must see the records as they are now, not as a cache
        // remembers them: a tenant fixes a record and asks again at once.
        options.cache_size = 0;
        options.timeout = timeout;
        options.attempts = 2;
        options.use_hosts_file = ResolveHosts::Never;
        Ok(Self {
            resolver: builder.build()?,
            timeout,
        })
    }

    /// Checks `hostname`'s records: the TXT record first (whose name it is),
    /// then the CNAME (where it points). Resolver errors become the stable
    /// codes of [`DomainCheckError`]; their text is not kept. A CNAME that
    /// points elsewhere comes with the name it points to, for the tenant.
    pub async fn check(&self, hostname: &str, token: &str, target: &Hostname) -> Checked {
        // Both queries, each with its retries, and some slack; never longer.
        let deadline = self.timeout * 5;
        tokio::time::timeout(deadline, self.check_records(hostname, token, target))
            .await
            .unwrap_or(Checked {
                outcome: Err(DomainCheckError::DnsError),
                cname_seen: None,
            })
    }

    async fn check_records(&self, hostname: &str, token: &str, target: &Hostname) -> Checked {
        match self.records_outcome(hostname, token, target).await {
            Ok(()) => Checked {
                outcome: Ok(()),
                cname_seen: None,
            },
            Err((error, cname_seen)) => Checked {
                outcome: Err(error),
                cname_seen,
            },
        }
    }

    /// The TXT record, then the CNAME; a failure carries the name the CNAME
    /// pointed to when that is what failed.
    async fn records_outcome(
        &self,
        hostname: &str,
        token: &str,
        target: &Hostname,
    ) -> Result<(), (DomainCheckError, Option<String>)> {
        let no_name = |e: DomainCheckError| (e, None);
        let txt_name = format!("{}.", txt_record_name(hostname));
        let values: Vec<String> = self
            .answers(&txt_name, RecordType::TXT, false)
            .await
            .map_err(no_name)?
            .into_iter()
            .filter_map(|data| match data {
                // One record may be split into several strings of 255 bytes at most.
                RData::TXT(txt) => Some(
                    txt.txt_data
                        .iter()
                        .map(|part| String::from_utf8_lossy(part))
                        .collect::<String>(),
                ),
                _ => None,
            })
            .collect();
        if values.is_empty() {
            return Err(no_name(DomainCheckError::TxtMissing));
        }
        if !values.iter().any(|v| v.trim() == token) {
            return Err(no_name(DomainCheckError::TxtMismatch));
        }
        let owner = format!("{hostname}.");
        let cname = self
            .answers(&owner, RecordType::CNAME, true)
            .await
            .map_err(no_name)?
            .into_iter()
            .find_map(|data| match data {
                RData::CNAME(name) => Some(normalise(&name.0.to_ascii())),
                _ => None,
            });
        match cname {
            None => Err(no_name(DomainCheckError::CnameMissing)),
            Some(points_at) if points_at == target.as_str() => Ok(()),
            Some(points_at) => Err((DomainCheckError::CnameMismatch, Some(points_at))),
        }
    }

    /// The records of `record_type` answered for `name`: all of them, or
    /// with `owned`, only those whose owner is `name` itself (a TXT query may
    /// be answered through a CNAME, as a tenant may delegate the record; the
    /// CNAME query is about the hostname's own record).
    async fn answers(
        &self,
        name: &str,
        record_type: RecordType,
        owned: bool,
    ) -> Result<Vec<RData>, DomainCheckError> {
        match self.resolver.lookup(name, record_type).await {
            Ok(lookup) => Ok(lookup
                .answers()
                .iter()
                .filter(|r| r.record_type() == record_type)
                .filter(|r| !owned || normalise(&r.name.to_ascii()) == normalise(name))
                .map(|r| r.data.clone())
                .collect()),
            Err(e) if e.is_no_records_found() => Ok(Vec::new()),
            Err(_) => Err(DomainCheckError::DnsError),
        }
    }
}

/// What a check of a domain's records found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// Whether both records check out, or what was wrong.
    pub outcome: Result<(), DomainCheckError>,
    /// Where the hostname's CNAME points, when it points elsewhere than
    /// the target (`None` with any other outcome).
    pub cname_seen: Option<String>,
}

/// A DNS name as hostnames are stored: lower-case, without the final dot.
fn normalise(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// Idempotent: re-reads the domain, checks its records, and records the
/// outcome under the row's lock, dropping it if a check begun later was
/// recorded meanwhile; telling the tenant of a stop is marked done in the
/// same transaction as the sending, so a repeat sends nothing more.
pub async fn handle(job: VerifyDomain, ctx: Context) -> Result<(), Error> {
    check_domain(
        &ctx,
        job.tenant_id,
        job.domain_id,
        OffsetDateTime::now_utc(),
    )
    .await
}

/// Checks one domain as of `now` (the clock's time: tests drive it) and
/// records the outcome; then tells the owners and admins of every claim
/// this check took (another tenant's claim of a hostname it verified), and,
/// if this domain stopped or was taken and its tenant was not told yet,
/// tells them. A claim that is over (taken, expired) is not checked. A
/// domain deleted meanwhile is no work. Idempotent, as [`handle`] says.
#[tracing::instrument(name = "domain check", skip_all, fields(tenant.id = %tenant, domain.id = %id))]
pub async fn check_domain(
    ctx: &Context,
    tenant: TenantId,
    id: DomainId,
    now: OffsetDateTime,
) -> Result<(), Error> {
    let mut tx = ctx.store.tenant_tx(tenant).await?;
    let domain = match tx.domain_by_id(id).await {
        Ok(domain) => domain,
        Err(StoreError::NotFound) => return Ok(()),
        Err(err) => return Err(err.into()),
    };
    // No lock is held over the lookups: they may take seconds.
    tx.commit().await?;
    if !domain.state.is_over() {
        let checks = &ctx.domains;
        let checked = checks
            .dns
            .check(
                domain.hostname.as_str(),
                &domain.token,
                checks.policy.cname_target(),
            )
            .await;
        let mut tx = ctx.store.tenant_tx(tenant).await?;
        let recorded = tx
            .record_domain_check(
                id,
                now,
                checked.outcome,
                checked.cname_seen.as_deref(),
                checks.rules(),
            )
            .await?;
        tx.commit().await?;
        if let Some(recorded) = recorded {
            let before = domain.state.status();
            let status = recorded.domain.state.status();
            let error = recorded
                .domain
                .state
                .last_error
                .map(DomainCheckError::as_str);
            if before == status {
                tracing::debug!(tenant.id = %tenant, domain.id = %id, domain.status = %status, error, "domain checked");
            } else {
                tracing::info!(tenant.id = %tenant, domain.id = %id, domain.status = %status, was = %before, error, "domain status changed");
                // The trigger logged it if routing changed; this makes the api see it now.
                if let Err(err) = ctx.queues.nudge_page_changes().await {
                    tracing::warn!(error = %err, "could not nudge the public pages; they will poll");
                }
            }
            // Another tenant's failure to hear of it must not fail this
            // check: each claim taken stays due for the clock until told.
            for (other_tenant, other) in recorded.taken {
                tracing::info!(tenant.id = %other_tenant, domain.id = %other, by = %id, "domain claim taken");
                if let Err(err) = tell(ctx, other_tenant, other, DomainNoticeKind::Taken).await {
                    tracing::warn!(tenant.id = %other_tenant, domain.id = %other, error = %err, "domain taken notice not sent yet");
                }
            }
        }
    }
    tell(ctx, tenant, id, DomainNoticeKind::Stopped).await?;
    tell(ctx, tenant, id, DomainNoticeKind::Taken).await
}

/// Emails the tenant's owners and admins that a domain stopped routing, or
/// that another account verified its hostname first (`kind`), if that
/// happened and they were not told yet.
///
/// Each gets one email with a Message-ID derived from the domain, the event
/// and the person. If the server refuses one address for good, that one is
/// skipped; if sending fails for a while, nothing is marked and the whole
/// notice is sent again later (the same Message-IDs let mail clients fold
/// a repeat).
async fn tell(
    ctx: &Context,
    tenant: TenantId,
    id: DomainId,
    kind: DomainNoticeKind,
) -> Result<(), Error> {
    let mut tx = ctx.store.tenant_tx(tenant).await?;
    let outcome = tx
        .send_domain_notice(id, kind, |notice| async move {
            let (message, event_at) = notice_email(ctx, &notice, kind)?;
            for (user, address) in &notice.recipients {
                let Ok(to) = EmailAddress::parse("email", address) else {
                    tracing::warn!(tenant.id = %tenant, domain.id = %id, user.id = %user, "skipping an unusable address");
                    continue;
                };
                let message_id = notice_message_id(kind, id, event_at, *user);
                match ctx.mailer.send(message_id, &to, &message).await {
                    Ok(()) => {}
                    Err(e) if e.is_transient() => return Err(e),
                    Err(e) => {
                        tracing::warn!(tenant.id = %tenant, domain.id = %id, user.id = %user, error = %e.redacted(), "domain notice refused");
                    }
                }
            }
            tracing::info!(tenant.id = %tenant, domain.id = %id, notice = ?kind, recipients = notice.recipients.len(), "domain notice sent");
            Ok(())
        })
        .await?;
    tx.commit().await?;
    outcome?;
    Ok(())
}

/// The email of a notice, and when what it tells of happened.
fn notice_email(
    ctx: &Context,
    notice: &DomainNotice,
    kind: DomainNoticeKind,
) -> Result<(EmailMessage, OffsetDateTime), SendError> {
    let rendered = match kind {
        DomainNoticeKind::Stopped => stop_email(ctx, notice).render(),
        DomainNoticeKind::Taken => taken_email(ctx, notice).render(),
    };
    let message = rendered.map_err(|e| SendError::Permanent(e.to_string()))?;
    let state = &notice.domain.state;
    let at = match kind {
        DomainNoticeKind::Stopped => state.stopped_at,
        DomainNoticeKind::Taken => state.taken_at,
    };
    Ok((message, at.unwrap_or(OffsetDateTime::UNIX_EPOCH)))
}

/// "2026-11-22 14:05 UTC".
fn when(t: Option<OffsetDateTime>) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    t.and_then(|t| t.to_offset(time::UtcOffset::UTC).format(format).ok())
        .unwrap_or_default()
}

fn taken_email(ctx: &Context, notice: &DomainNotice) -> DomainTakenEmail {
    let d = &notice.domain;
    DomainTakenEmail {
        hostname: d.hostname.to_string(),
        page_name: notice.page_name.clone(),
        taken_at: when(d.state.taken_at),
        txt_name: txt_record_name(d.hostname.as_str()),
        grace: duration_label(ctx.domains.grace),
    }
}

fn stop_email(ctx: &Context, notice: &DomainNotice) -> DomainStoppedEmail {
    let d = &notice.domain;
    let failing_since = when(d.state.failing_since);
    DomainStoppedEmail {
        hostname: d.hostname.to_string(),
        page_name: notice.page_name.clone(),
        explanation: d
            .state
            .last_error
            .unwrap_or(DomainCheckError::DnsError)
            .explanation()
            .to_owned(),
        failing_since,
        grace: duration_label(ctx.domains.grace),
        cname_target: ctx.domains.policy.cname_target().to_string(),
        txt_name: txt_record_name(d.hostname.as_str()),
        token: d.token.clone(),
        verify_url: format!(
            "{}/v1/pages/{}/domains/{}/verify",
            ctx.urls.origin(),
            d.page_id,
            d.id
        ),
    }
}

/// "3 days", "1 day", "36 hours".
fn duration_label(d: Duration) -> String {
    let hours = d.as_secs() / 3600;
    match (hours / 24, hours % 24) {
        (1, 0) => "1 day".to_owned(),
        (days, 0) => format!("{days} days"),
        _ if hours == 1 => "1 hour".to_owned(),
        _ => format!("{hours} hours"),
    }
}

/// A Message-ID seed, the same for every send of one notice (of one stop,
/// or of one taking) to one person.
fn notice_message_id(
    kind: DomainNoticeKind,
    domain: DomainId,
    event_at: OffsetDateTime,
    user: uuid::Uuid,
) -> uuid::Uuid {
    let label: &[u8] = match kind {
        DomainNoticeKind::Stopped => b"domain-stopped:",
        DomainNoticeKind::Taken => b"domain-taken:",
    };
    let digest = Sha256::new()
        .chain_update(label)
        .chain_update(domain.as_uuid().as_bytes())
        .chain_update(event_at.unix_timestamp_nanos().to_be_bytes())
        .chain_update(user.as_bytes())
        .finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Uuid::from_bytes(bytes)
}

/// Checks the domains due at `now`, a few at once, each in transactions of
/// its own (one tenant's failure holds back no other). Safe on several
/// workers at once: the store hands each due domain to one clock for ten
/// minutes. Answers how many it checked.
pub async fn tick_domains(ctx: &Context, now: OffsetDateTime) -> anyhow::Result<usize> {
    use anyhow::Context as _;
    use futures::StreamExt as _;
    let due = ctx
        .store
        .due_domains(
            now,
            ctx.domains.recheck,
            PENDING_CHECK_INTERVAL,
            ctx.domains.pending_period,
            TICK_BATCH,
        )
        .await
        .context("Failed to list the domains due for a check")?;
    let checked = due.len();
    futures::stream::iter(due)
        .for_each_concurrent(CHECKS_AT_ONCE, |(tenant, id)| async move {
            if let Err(err) = check_domain(ctx, tenant, id, now).await {
                tracing::warn!(tenant.id = %tenant, domain.id = %id, error = %err, "domain check failed");
            }
        })
        .await;
    Ok(checked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_name_server_that_does_not_answer_is_a_dns_error_soon() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap();
        let checker = DnsChecker::new(Some(closed), Duration::from_millis(200)).unwrap();
        let target = Hostname::parse("t", "pages.example.test").unwrap();
        let started = std::time::Instant::now();
        let outcome = checker.check("status.example.test", "token", &target).await;
        assert_eq!(outcome.outcome, Err(DomainCheckError::DnsError));
        assert_eq!(outcome.cname_seen, None);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn durations_read_as_days_or_hours() {
        assert_eq!(duration_label(Duration::from_secs(3 * 86_400)), "3 days");
        assert_eq!(duration_label(Duration::from_secs(86_400)), "1 day");
        assert_eq!(duration_label(Duration::from_secs(36 * 3600)), "36 hours");
    }

    #[test]
    fn a_stop_notice_keeps_its_message_id_per_person_and_stop() {
        let stop_message_id = |d, t, u| notice_message_id(DomainNoticeKind::Stopped, d, t, u);
        let domain = DomainId::new();
        let (a, b) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
        let t = OffsetDateTime::UNIX_EPOCH;
        assert_eq!(stop_message_id(domain, t, a), stop_message_id(domain, t, a));
        assert_ne!(stop_message_id(domain, t, a), stop_message_id(domain, t, b));
        let later = t + time::Duration::days(9);
        assert_ne!(
            stop_message_id(domain, t, a),
            stop_message_id(domain, later, a)
        );
        assert_ne!(
            stop_message_id(domain, t, a),
            notice_message_id(DomainNoticeKind::Taken, domain, t, a),
            "a taking is another message than a stop"
        );
    }
}
