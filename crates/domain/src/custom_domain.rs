//! Custom domains: a tenant's own hostname (`status.example.com`) showing
//! one of its pages.
//!
//! The tenant proves the name is theirs with a TXT record
//! `_heliograph.<host>` carrying a random token, and points it at the
//! platform with a CNAME to the platform's target. The worker checks both
//! records, first when the domain is added and then periodically. This
//! module holds the rules: what a hostname may be, and how the outcome of a
//! check moves a domain between pending, verified, failing and stopped.
//!
//! Claims, and why nobody can squat a name: adding a hostname holds nothing.
//! Several tenants may claim the same hostname while none has verified it;
//! the first whose check passes holds it (only a verified claim routes, and
//! the database allows one verified claim per hostname), and every other
//! claim of it is then `taken` (its owners are told). A claim that is not
//! verified within the pending period expires, and a tenant may hold only
//! so many pending claims at once ([`PendingClaims`]). A holder keeps the
//! name while it routes, through failing checks; once it has stopped, a new
//! claim may be added and verified, and takes the name from it.
//!
//! The file is long (over 700 lines) because half of it is the table of
//! tests that walks every check outcome through every state; the rules
//! themselves are the first 450 lines.

use std::fmt;
use std::net::IpAddr;

use serde::Serialize;
use time::{Duration, OffsetDateTime};

use crate::status::{DomainCheckError, DomainStatus};
use crate::urls::PublicUrls;
use crate::validate::FieldError;

mod words;
pub use words::{StateInWords, duration_words, utc_minute};

/// The label in front of the hostname that carries the TXT record.
pub const TXT_LABEL: &str = "_heliograph";

/// The name of the TXT record that proves `hostname` is the tenant's.
#[must_use]
pub fn txt_record_name(hostname: &str) -> String {
    format!("{TXT_LABEL}.{hostname}")
}

/// A DNS host name: lower-case ASCII, no trailing dot, at least two labels
/// of 1–63 letters, digits and inner hyphens, not an IP address.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Hostname(String);

impl Hostname {
    /// The longest hostname accepted. DNS allows names of 253 characters;
    /// this leaves room for `_heliograph.` in front, so the TXT record's
    /// name is a valid name too.
    pub const MAX_LEN: usize = 253 - TXT_LABEL.len() - 1;

    /// Parses a hostname given in the field `field`: trimmed, lower-cased,
    /// one trailing dot (a fully qualified name) dropped. Internationalised
    /// names must come in their ASCII (punycode, `xn--…`) form: converting
    /// them here would need the IDNA tables, and a tenant's DNS provider
    /// shows the punycode form anyway.
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, FieldError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(FieldError::new(field, "blank", "must not be blank"));
        }
        if !trimmed.is_ascii() {
            return Err(FieldError::new(
                field,
                "not_ascii",
                "must be ASCII: write an internationalised name in its punycode form (xn--…)",
            ));
        }
        let lower = trimmed.to_ascii_lowercase();
        let name = lower.strip_suffix('.').unwrap_or(&lower);
        let bare = name
            .strip_prefix('[')
            .and_then(|n| n.strip_suffix(']'))
            .unwrap_or(name);
        if bare.parse::<IpAddr>().is_ok() {
            return Err(FieldError::new(
                field,
                "ip_address",
                "must be a host name, not an IP address",
            ));
        }
        if name.len() > Self::MAX_LEN {
            return Err(FieldError::new(
                field,
                "too_long",
                format!("must be at most {} characters", Self::MAX_LEN),
            ));
        }
        let labels: Vec<&str> = name.split('.').collect();
        if labels.len() < 2 {
            return Err(FieldError::new(
                field,
                "invalid",
                "must have at least two labels, as in status.example.com",
            ));
        }
        for label in &labels {
            let ok = (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-');
            if !ok {
                return Err(FieldError::new(
                    field,
                    "invalid",
                    "each label must be 1 to 63 letters, digits and inner hyphens",
                ));
            }
        }
        // No top-level domain is numeric; such a name is an address in disguise.
        if labels
            .last()
            .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(FieldError::new(
                field,
                "invalid",
                "the last label must not be all digits",
            ));
        }
        Ok(Self(name.to_owned()))
    }

    /// The hostname.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name of the TXT record that proves ownership: `_heliograph.<host>`.
    #[must_use]
    pub fn txt_name(&self) -> String {
        txt_record_name(&self.0)
    }

    /// Whether this is `domain` or a name under it.
    #[must_use]
    pub fn is_within(&self, domain: &str) -> bool {
        self.0 == domain
            || self
                .0
                .strip_suffix(domain)
                .is_some_and(|head| head.ends_with('.'))
    }
}

impl fmt::Display for Hostname {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What custom domains need to know about the platform: the CNAME target
/// tenants point their hostnames at, and the names that are the
/// platform's own and so can never be a tenant's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomDomains {
    cname_target: Hostname,
    platform: Vec<String>,
}

impl CustomDomains {
    /// The policy for a platform at `urls` whose custom domains point at `cname_target`.
    #[must_use]
    pub fn new(urls: &PublicUrls, cname_target: Hostname) -> Self {
        let mut platform = vec![
            urls.base_host().to_ascii_lowercase(),
            urls.origin_host().to_ascii_lowercase(),
            cname_target.as_str().to_owned(),
        ];
        platform.sort();
        platform.dedup();
        Self {
            cname_target,
            platform,
        }
    }

    /// The CNAME target.
    #[must_use]
    pub fn cname_target(&self) -> &Hostname {
        &self.cname_target
    }

    /// A tenant's hostname, given in the field `field`: valid, and neither
    /// the platform's base domain, its origin's host, the CNAME target, nor
    /// a name under any of them (those route to the platform already, and
    /// letting a tenant claim one would let it shadow another's page).
    pub fn parse_hostname(&self, field: &'static str, raw: &str) -> Result<Hostname, FieldError> {
        let host = Hostname::parse(field, raw)?;
        if self.platform.iter().any(|p| host.is_within(p)) {
            return Err(FieldError::new(
                field,
                "reserved",
                "belongs to the platform; use a hostname of your own",
            ));
        }
        Ok(host)
    }
}

/// How long a claim may stay pending, and how many a tenant may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingClaims {
    /// A claim not verified this long after it was added (or renewed) expires.
    pub expire_after: Duration,
    /// How many pending claims a tenant may have at once.
    pub per_tenant: usize,
}

impl PendingClaims {
    /// Pending claims expire after a week; five at once per tenant.
    pub const DEFAULT: Self = Self {
        expire_after: Duration::days(7),
        per_tenant: 5,
    };

    /// Whether a tenant whose claims are `claims` may add (or renew) one
    /// more at `now`: fewer than the limit still pending.
    pub fn admit<'a>(
        &self,
        claims: impl IntoIterator<Item = &'a DomainState>,
        now: OffsetDateTime,
    ) -> Result<(), ClaimRefusal> {
        let pending = claims
            .into_iter()
            .filter(|c| c.is_pending_at(now, self.expire_after))
            .count();
        if pending < self.per_tenant {
            Ok(())
        } else {
            Err(ClaimRefusal::PendingLimit)
        }
    }
}

/// Why a claim of a hostname cannot be made or renewed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ClaimRefusal {
    /// A verified claim holds the hostname (it routes).
    #[error("the hostname is verified for another page")]
    Held,
    /// Another claim of the hostname was verified first; this one is over.
    #[error("another claim of the hostname was verified first")]
    Taken,
    /// The tenant has as many pending claims as it may.
    #[error("too many domains pending verification")]
    PendingLimit,
}

/// Whether a hostname whose claims are `claims` is held: one of them routes.
pub fn is_held<'a>(claims: impl IntoIterator<Item = &'a DomainState>) -> bool {
    claims.into_iter().any(DomainState::routes)
}

/// The rules a check's outcome is recorded by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckRules {
    /// How long a verified domain may fail before it stops routing.
    pub grace: Duration,
    /// How long a claim may stay pending before it expires.
    pub pending: Duration,
}

/// The verification state of a custom domain, as its row records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DomainState {
    /// Since when it waits for verification: when it was added, or renewed
    /// after it expired. `None`: no deadline.
    pub pending_since: Option<OffsetDateTime>,
    /// When a check first passed.
    pub verified_at: Option<OffsetDateTime>,
    /// When the last check recorded began.
    pub last_checked_at: Option<OffsetDateTime>,
    /// Since when a verified domain fails its checks.
    pub failing_since: Option<OffsetDateTime>,
    /// Why the last check failed.
    pub last_error: Option<DomainCheckError>,
    /// When it stopped routing, after failing for the whole grace period.
    pub stopped_at: Option<OffsetDateTime>,
    /// When another claim of the hostname was verified, ending this one.
    pub taken_at: Option<OffsetDateTime>,
    /// When it expired, not verified within the pending period.
    pub expired_at: Option<OffsetDateTime>,
}

impl DomainState {
    /// Where the domain stands.
    #[must_use]
    pub const fn status(&self) -> DomainStatus {
        if self.taken_at.is_some() {
            DomainStatus::Taken
        } else if self.expired_at.is_some() {
            DomainStatus::Expired
        } else if self.stopped_at.is_some() {
            DomainStatus::Stopped
        } else if self.verified_at.is_none() {
            DomainStatus::Pending
        } else if self.failing_since.is_some() {
            DomainStatus::Failing
        } else {
            DomainStatus::Verified
        }
    }

    /// Whether requests for the hostname reach the page: once verified, and
    /// through the grace period of failing checks, until it is stopped (or
    /// taken, once stopped, by a claim verified after it).
    #[must_use]
    pub const fn routes(&self) -> bool {
        self.verified_at.is_some() && self.stopped_at.is_none() && self.taken_at.is_none()
    }

    /// Whether the claim is over, taken or expired: checks no longer run
    /// and change nothing.
    #[must_use]
    pub const fn is_over(&self) -> bool {
        self.taken_at.is_some() || self.expired_at.is_some()
    }

    /// When a pending claim expires unless verified first (`None` for any
    /// other, or one without a deadline).
    #[must_use]
    pub fn expires_at(&self, pending: Duration) -> Option<OffsetDateTime> {
        if self.verified_at.is_some() || self.is_over() {
            return None;
        }
        self.pending_since.map(|since| since + pending)
    }

    /// Whether it is a pending claim at `now`: not verified, not over, and
    /// within its pending period (one past it no longer counts, even before
    /// a check records its expiry).
    #[must_use]
    pub fn is_pending_at(&self, now: OffsetDateTime, pending: Duration) -> bool {
        self.verified_at.is_none()
            && !self.is_over()
            && self
                .expires_at(pending)
                .is_none_or(|deadline| now < deadline)
    }

    /// The state when another claim of the same hostname is verified at
    /// `at`: a pending or stopped claim is taken; one that routes is not
    /// (the name is its, and no other claim can be verified while it
    /// routes), nor one that is over already (an expired claim stays
    /// expired; renewed, its next passing check finds the name held).
    #[must_use]
    pub fn taken(self, at: OffsetDateTime) -> Self {
        if self.routes() || self.is_over() {
            return self;
        }
        Self {
            taken_at: Some(at),
            ..self
        }
    }

    /// The state when the tenant asks for a check at `at`: an expired claim
    /// is renewed (pending again, with a new pending period: the caller
    /// counts it against the tenant's limit); a taken one is refused; any
    /// other is unchanged.
    pub fn renewed(self, at: OffsetDateTime) -> Result<Self, ClaimRefusal> {
        if self.taken_at.is_some() {
            return Err(ClaimRefusal::Taken);
        }
        if self.expired_at.is_none() {
            return Ok(self);
        }
        Ok(Self {
            pending_since: Some(at),
            expired_at: None,
            ..self
        })
    }

    /// Whether a check that began at `started` is older than the last one
    /// recorded. Checks run on several workers and take a while; a slow one
    /// finishing late must not overwrite what a newer one found.
    #[must_use]
    pub fn is_newer_than(&self, started: OffsetDateTime) -> bool {
        self.last_checked_at.is_some_and(|last| last > started)
    }

    /// The state after a check that began at `at` with `outcome`, by
    /// `rules`; `held_elsewhere` says whether another claim of the hostname
    /// routes.
    ///
    /// - A claim that is over (taken, expired) stays as it is.
    /// - A pass while another claim holds the hostname takes this one: the
    ///   first verified wins.
    /// - Otherwise a pass verifies the domain (keeping the first
    ///   `verified_at`) and clears any failure, a stop included: a stopped
    ///   domain whose records are right again routes again.
    /// - A failure of a domain never verified only records the reason: it
    ///   is pending, not failing; once its pending period is over, it expires.
    /// - A failure of a verified domain starts (or continues) its failing
    ///   period; once that has lasted the grace period, the domain stops.
    #[must_use]
    pub fn after_check(
        self,
        outcome: Result<(), DomainCheckError>,
        at: OffsetDateTime,
        rules: CheckRules,
        held_elsewhere: bool,
    ) -> Self {
        if self.is_over() {
            return self;
        }
        match outcome {
            Ok(()) if held_elsewhere => Self {
                last_checked_at: Some(at),
                last_error: None,
                ..self.taken(at)
            },
            Ok(()) => Self {
                verified_at: Some(self.verified_at.unwrap_or(at)),
                last_checked_at: Some(at),
                failing_since: None,
                last_error: None,
                stopped_at: None,
                ..self
            },
            Err(error) if self.verified_at.is_none() => Self {
                last_checked_at: Some(at),
                last_error: Some(error),
                expired_at: self
                    .expires_at(rules.pending)
                    .is_some_and(|deadline| at >= deadline)
                    .then_some(at),
                ..self
            },
            Err(error) => {
                let since = self.failing_since.unwrap_or(at);
                Self {
                    last_checked_at: Some(at),
                    failing_since: Some(since),
                    last_error: Some(error),
                    stopped_at: self
                        .stopped_at
                        .or_else(|| (at - since >= rules.grace).then_some(at)),
                    ..self
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(raw: &str) -> Result<String, &'static str> {
        Hostname::parse("hostname", raw)
            .map(|h| h.0)
            .map_err(|e| e.code)
    }

    #[test]
    fn hostnames_are_lower_cased_without_the_trailing_dot() {
        assert_eq!(
            code(" Status.Example.COM. "),
            Ok("status.example.com".into())
        );
        assert_eq!(
            code("xn--bcher-kva.example"),
            Ok("xn--bcher-kva.example".into())
        );
        assert_eq!(code("a-1.b2.io"), Ok("a-1.b2.io".into()));
        let longest = format!("{}.io", vec!["a".repeat(63); 3].join("."));
        assert!(longest.len() <= Hostname::MAX_LEN);
        assert!(code(&longest).is_ok());
    }

    #[test]
    fn malformed_hostnames_are_refused_with_a_reason() {
        for (raw, expected) in [
            ("", "blank"),
            ("   ", "blank"),
            ("bücher.example", "not_ascii"),
            ("192.0.2.1", "ip_address"),
            ("2001:db8::1", "ip_address"),
            ("[2001:db8::1]", "ip_address"),
            ("localhost", "invalid"),
            ("status..example.com", "invalid"),
            ("-status.example.com", "invalid"),
            ("status-.example.com", "invalid"),
            ("status_page.example.com", "invalid"),
            ("*.example.com", "invalid"),
            ("https://status.example.com", "invalid"),
            ("status.example.com/", "invalid"),
            ("status.example.com:443", "invalid"),
            ("1.2.3.999", "invalid"),
            ("example.com..", "invalid"),
        ] {
            assert_eq!(code(raw), Err(expected), "{raw:?}");
        }
        assert_eq!(
            code(&format!("{}.example.com", "a".repeat(64))),
            Err("invalid")
        );
        let long = format!("{}.io", vec!["a".repeat(60); 4].join("."));
        assert_eq!(code(&long), Err("too_long"));
    }

    #[test]
    fn the_platforms_own_names_are_reserved() {
        let urls =
            PublicUrls::new("https://app.heliograph.example", Some("heliograph.page")).unwrap();
        let target = Hostname::parse("t", "edge.heliograph.net").unwrap();
        let policy = CustomDomains::new(&urls, target);
        for raw in [
            "heliograph.page",
            "acme.heliograph.page",
            "app.heliograph.example",
            "edge.heliograph.net",
            "x.edge.heliograph.net",
        ] {
            assert_eq!(
                policy.parse_hostname("hostname", raw).map_err(|e| e.code),
                Err("reserved"),
                "{raw}"
            );
        }
        for raw in [
            "notheliograph.page",
            "heliograph.example",
            "status.acme.com",
        ] {
            assert!(policy.parse_hostname("hostname", raw).is_ok(), "{raw}");
        }
        assert_eq!(policy.cname_target().as_str(), "edge.heliograph.net");
    }

    #[test]
    fn the_txt_record_sits_under_the_hostname() {
        let h = Hostname::parse("h", "status.acme.com").unwrap();
        assert_eq!(h.txt_name(), "_heliograph.status.acme.com");
        assert!(h.is_within("acme.com"));
        assert!(!h.is_within("cme.com"));
    }

    const GRACE: Duration = Duration::days(3);
    const RULES: CheckRules = CheckRules {
        grace: GRACE,
        pending: Duration::days(7),
    };

    fn at(hours: i64) -> OffsetDateTime {
        OffsetDateTime::UNIX_EPOCH + Duration::hours(hours)
    }

    #[test]
    fn a_domain_goes_from_pending_to_verified_to_failing_to_stopped_and_back() {
        let fail = Err(DomainCheckError::TxtMismatch);
        let d = DomainState::default();
        assert_eq!(d.status(), DomainStatus::Pending);

        let d = d.after_check(Err(DomainCheckError::TxtMissing), at(0), RULES, false);
        assert_eq!(
            d.status(),
            DomainStatus::Pending,
            "a new domain is not failing"
        );
        assert_eq!(d.failing_since, None);
        assert_eq!(d.last_error, Some(DomainCheckError::TxtMissing));
        assert!(!d.routes());

        let d = d.after_check(Ok(()), at(1), RULES, false);
        assert_eq!(d.status(), DomainStatus::Verified);
        assert_eq!((d.verified_at, d.last_error), (Some(at(1)), None));
        assert!(d.routes());

        let d = d.after_check(fail, at(10), RULES, false);
        assert_eq!(d.status(), DomainStatus::Failing);
        assert!(d.routes(), "it routes through the grace period");
        let d = d.after_check(fail, at(10 + 71), RULES, false);
        assert_eq!(d.failing_since, Some(at(10)), "kept from the first failure");
        assert_eq!(d.status(), DomainStatus::Failing);

        let d = d.after_check(fail, at(10 + 72), RULES, false);
        assert_eq!(d.status(), DomainStatus::Stopped);
        assert_eq!(d.stopped_at, Some(at(82)));
        assert!(!d.routes());
        let d = d.after_check(fail, at(100), RULES, false);
        assert_eq!(d.stopped_at, Some(at(82)), "stopped once");

        let d = d.after_check(Ok(()), at(200), RULES, false);
        assert_eq!(
            d.status(),
            DomainStatus::Verified,
            "right records route again"
        );
        assert_eq!(d.verified_at, Some(at(1)));
        assert_eq!((d.failing_since, d.stopped_at), (None, None));
    }

    #[test]
    fn a_late_check_does_not_overwrite_a_newer_one() {
        let d = DomainState::default().after_check(Ok(()), at(5), RULES, false);
        assert!(d.is_newer_than(at(4)));
        assert!(!d.is_newer_than(at(5)));
        assert!(!DomainState::default().is_newer_than(at(0)));
    }

    fn pending_from(hours: i64) -> DomainState {
        DomainState {
            pending_since: Some(at(hours)),
            ..DomainState::default()
        }
    }

    #[test]
    fn a_claim_not_verified_within_its_pending_period_expires_at_its_next_failing_check() {
        let fail = Err(DomainCheckError::TxtMissing);
        let d = pending_from(0);
        assert_eq!(d.expires_at(RULES.pending), Some(at(7 * 24)));
        let d = d.after_check(fail, at(7 * 24 - 1), RULES, false);
        assert_eq!(d.status(), DomainStatus::Pending, "not yet");
        assert!(d.is_pending_at(at(7 * 24 - 1), RULES.pending));
        assert!(
            !d.is_pending_at(at(7 * 24), RULES.pending),
            "past its deadline it no longer counts, even before a check says so"
        );

        let d = d.after_check(fail, at(7 * 24), RULES, false);
        assert_eq!(d.status(), DomainStatus::Expired);
        assert_eq!(d.expired_at, Some(at(7 * 24)));
        assert!(d.is_over() && !d.routes());
        assert_eq!(d.expires_at(RULES.pending), None);
        let later = d.after_check(Ok(()), at(8 * 24), RULES, false);
        assert_eq!(later, d, "an expired claim is no longer checked");

        // A pass at the deadline still verifies: the records are right.
        let late = pending_from(0).after_check(Ok(()), at(7 * 24 + 5), RULES, false);
        assert_eq!(late.status(), DomainStatus::Verified);
        // A verified domain never expires, failing or not.
        let failing = late.after_check(fail, at(30 * 24), RULES, false);
        assert_eq!(failing.status(), DomainStatus::Failing);
    }

    #[test]
    fn the_first_claim_verified_wins_and_every_other_is_taken() {
        let (mine, theirs) = (pending_from(0), pending_from(1));
        let winner = theirs.after_check(Ok(()), at(2), RULES, false);
        assert!(winner.routes());
        let others = [mine];
        assert!(!is_held(&others), "pending claims hold nothing");
        assert!(is_held(&[mine, winner]));

        // The winner takes the other claims when it is verified…
        let taken = mine.taken(at(2));
        assert_eq!(taken.status(), DomainStatus::Taken);
        assert_eq!(taken.taken_at, Some(at(2)));
        assert!(taken.is_over());
        // …and a claim whose check passes while another holds the name is taken too.
        let late = mine.after_check(Ok(()), at(3), RULES, true);
        assert_eq!(late.status(), DomainStatus::Taken);
        assert_eq!(
            (late.verified_at, late.last_checked_at),
            (None, Some(at(3)))
        );
        assert_eq!(
            late.after_check(Ok(()), at(9), RULES, false),
            late,
            "taken for good"
        );

        // A holder that routes is never taken; one that stopped is.
        assert_eq!(winner.taken(at(5)), winner);
        let fail = Err(DomainCheckError::CnameMismatch);
        let stopped = winner.after_check(fail, at(10), RULES, false).after_check(
            fail,
            at(10 + 72),
            RULES,
            false,
        );
        assert_eq!(stopped.status(), DomainStatus::Stopped);
        let displaced = stopped.taken(at(100));
        assert_eq!(displaced.status(), DomainStatus::Taken);
        assert!(!displaced.routes());
    }

    #[test]
    fn a_tenant_may_have_only_so_many_pending_claims_and_expired_ones_do_not_count() {
        let claims = PendingClaims {
            expire_after: Duration::days(7),
            per_tenant: 2,
        };
        let now = at(24);
        let verified = pending_from(0).after_check(Ok(()), at(1), RULES, false);
        let one = [pending_from(0), verified];
        assert_eq!(
            claims.admit(&one, now),
            Ok(()),
            "verified domains do not count"
        );
        let two = [pending_from(0), pending_from(5), verified];
        assert_eq!(claims.admit(&two, now), Err(ClaimRefusal::PendingLimit));
        let expired = pending_from(0).after_check(
            Err(DomainCheckError::TxtMissing),
            at(7 * 24),
            RULES,
            false,
        );
        let taken = pending_from(0).taken(at(3));
        assert_eq!(
            claims.admit(&[pending_from(5), expired, taken], now),
            Ok(())
        );
        // Past its deadline a claim is released at once.
        assert_eq!(claims.admit(&two, at(7 * 24 + 1)), Ok(()));
    }

    #[test]
    fn asking_for_a_check_renews_an_expired_claim_but_not_a_taken_one() {
        let expired =
            pending_from(0).after_check(Err(DomainCheckError::TxtMissing), at(200), RULES, false);
        let renewed = expired.renewed(at(300)).unwrap();
        assert_eq!(renewed.status(), DomainStatus::Pending);
        assert_eq!(renewed.pending_since, Some(at(300)));
        assert_eq!(renewed.expires_at(RULES.pending), Some(at(300 + 7 * 24)));
        let pending = pending_from(0);
        assert_eq!(pending.renewed(at(5)), Ok(pending), "nothing to renew");
        assert_eq!(
            pending.taken(at(1)).renewed(at(5)),
            Err(ClaimRefusal::Taken)
        );
    }
}
