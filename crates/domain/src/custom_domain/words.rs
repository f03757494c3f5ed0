//! A custom domain's state and last check, in words for the tenant's
//! dashboard: where it stands, what the last check found, and what happens
//! next. The words follow the rules of [`DomainState::after_check`] (the
//! grace period, the pending period), so they live beside them.

use time::{Duration, OffsetDateTime, UtcOffset};

use super::{CheckRules, DomainState};
use crate::status::{DomainCheckError, DomainStatus};

/// A time as the dashboard writes it in a sentence: `2026-12-06 19:57 UTC`.
#[must_use]
pub fn utc_minute(at: OffsetDateTime) -> String {
    let at = at.to_offset(UtcOffset::UTC);
    format!("{} {:02}:{:02} UTC", at.date(), at.hour(), at.minute())
}

/// A length of whole days or hours: `3 days`, `1 day`, `12 hours`.
#[must_use]
pub fn duration_words(d: Duration) -> String {
    let hours = d.whole_hours();
    match (hours / 24, hours % 24) {
        (1, 0) => "1 day".to_owned(),
        (days, 0) => format!("{days} days"),
        _ if hours == 1 => "1 hour".to_owned(),
        _ => format!("{hours} hours"),
    }
}

impl DomainCheckError {
    /// What a failed check found, as a short sentence; `cname_target` is
    /// the name the CNAME must point to, `cname_seen` the name it pointed to
    /// instead, when the check kept it.
    #[must_use]
    pub fn finding(self, cname_target: &str, cname_seen: Option<&str>) -> String {
        match self {
            Self::TxtMissing => "TXT record not found".to_owned(),
            Self::TxtMismatch => {
                "TXT record found, but it does not carry this domain's token".to_owned()
            }
            Self::CnameMissing => "CNAME record not found".to_owned(),
            Self::CnameMismatch => match cname_seen {
                Some(seen) => format!("CNAME points to {seen}, not to {cname_target}"),
                None => format!("CNAME points elsewhere, not to {cname_target}"),
            },
            Self::DnsError => "The name servers did not answer".to_owned(),
        }
    }
}

/// A domain's state in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateInWords {
    /// Where it stands, in a line ("Waiting for the TXT record").
    pub headline: String,
    /// What the last check found (`None` before the first check).
    pub last_check: Option<String>,
    /// What happens next, and what the tenant can do.
    pub next: String,
}

impl DomainState {
    /// Where the domain stands, what its last check found and what happens
    /// next, by `rules`; `cname_target` is the name the CNAME must point to,
    /// `cname_seen` where the last check found it pointing instead (kept
    /// beside the state, which stays `Copy`).
    #[must_use]
    pub fn in_words(
        &self,
        rules: CheckRules,
        cname_target: &str,
        cname_seen: Option<&str>,
    ) -> StateInWords {
        let grace = duration_words(rules.grace);
        let last_check = self.last_checked_at.map(|_| {
            self.last_error.map_or_else(
                || "Both records found and right".to_owned(),
                |e| e.finding(cname_target, cname_seen),
            )
        });
        let (headline, next) = match self.status() {
            DomainStatus::Pending => {
                let waiting_for = match self.last_error {
                    Some(DomainCheckError::CnameMissing | DomainCheckError::CnameMismatch) => {
                        "Waiting for the CNAME record"
                    }
                    Some(DomainCheckError::DnsError) => "Waiting for the name servers to answer",
                    _ => "Waiting for the TXT record",
                };
                let deadline = self.expires_at(rules.pending).map_or_else(
                    || "until both are found".to_owned(),
                    |at| format!("until both are found or until {}", utc_minute(at)),
                );
                (
                    waiting_for.to_owned(),
                    format!(
                        "Create both records below. Checks run {deadline}; a claim not \
                         verified by then expires. The page is not served on this \
                         hostname until a check passes."
                    ),
                )
            }
            DomainStatus::Verified => (
                "Verified — certificate issued on first visit".to_owned(),
                format!(
                    "The page is served on this hostname. Checks keep running: if the \
                     records stop checking out, the page is still served for {grace}, \
                     then stops."
                ),
            ),
            DomainStatus::Failing => {
                let since = self.failing_since.unwrap_or(OffsetDateTime::UNIX_EPOCH);
                (
                    format!(
                        "Failing since {}, stops routing on {}",
                        utc_minute(since),
                        utc_minute(since + rules.grace)
                    ),
                    format!(
                        "The page is still served through the grace period ({grace}). \
                         Fix the records, then check now: a passing check clears the \
                         failure."
                    ),
                )
            }
            DomainStatus::Stopped => (
                format!(
                    "Stopped on {}: no longer served",
                    utc_minute(self.stopped_at.unwrap_or(OffsetDateTime::UNIX_EPOCH))
                ),
                "Its records failed for longer than the grace period. Fix them, then \
                 check now: a passing check serves the page here again."
                    .to_owned(),
            ),
            DomainStatus::Taken => (
                "Taken: another account verified this hostname first".to_owned(),
                DomainStatus::Taken.explanation().to_owned(),
            ),
            DomainStatus::Expired => (
                format!(
                    "Expired on {}, not verified in time",
                    utc_minute(self.expired_at.unwrap_or(OffsetDateTime::UNIX_EPOCH))
                ),
                "It is no longer checked. Create the records, then check now to renew it."
                    .to_owned(),
            ),
        };
        StateInWords {
            headline,
            last_check,
            next,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const RULES: CheckRules = CheckRules {
        grace: Duration::days(3),
        pending: Duration::days(7),
    };

    #[test]
    fn each_finding_says_what_the_check_saw() {
        assert_eq!(
            DomainCheckError::TxtMissing.finding("pages.example.net", None),
            "TXT record not found"
        );
        assert_eq!(
            DomainCheckError::CnameMismatch.finding("pages.example.net", None),
            "CNAME points elsewhere, not to pages.example.net"
        );
        assert_eq!(
            DomainCheckError::CnameMismatch.finding("pages.example.net", Some("old.example.org")),
            "CNAME points to old.example.org, not to pages.example.net"
        );
        assert_eq!(
            DomainCheckError::CnameMissing.finding("pages.example.net", Some("old.example.org")),
            "CNAME record not found",
            "a name seen belongs to a mismatch only"
        );
        for e in DomainCheckError::ALL {
            assert!(!e.finding("t.example", None).is_empty());
        }
    }

    #[test]
    fn a_pending_domain_waits_for_the_record_its_last_check_missed() {
        let added = datetime!(2026-12-01 10:00 UTC);
        let never = DomainState {
            pending_since: Some(added),
            ..DomainState::default()
        };
        let w = never.in_words(RULES, "t.example", None);
        assert_eq!(w.headline, "Waiting for the TXT record");
        assert_eq!(w.last_check, None);
        assert!(w.next.contains("2026-12-08 10:00 UTC"), "{}", w.next);

        let no_cname = never.after_check(
            Err(DomainCheckError::CnameMissing),
            added + Duration::minutes(1),
            RULES,
            false,
        );
        let w = no_cname.in_words(RULES, "t.example", None);
        assert_eq!(w.headline, "Waiting for the CNAME record");
        assert_eq!(w.last_check.as_deref(), Some("CNAME record not found"));
    }

    #[test]
    fn a_cname_pointing_elsewhere_is_said_with_where_it_points() {
        let added = datetime!(2026-12-01 10:00 UTC);
        let state = DomainState {
            pending_since: Some(added),
            ..DomainState::default()
        }
        .after_check(
            Err(DomainCheckError::CnameMismatch),
            added + Duration::minutes(1),
            RULES,
            false,
        );
        let w = state.in_words(RULES, "t.example", Some("elsewhere.test"));
        assert_eq!(w.headline, "Waiting for the CNAME record");
        assert_eq!(
            w.last_check.as_deref(),
            Some("CNAME points to elsewhere.test, not to t.example")
        );
        // Checked before the name was kept: today's words.
        assert_eq!(
            state
                .in_words(RULES, "t.example", None)
                .last_check
                .as_deref(),
            Some("CNAME points elsewhere, not to t.example")
        );
    }

    #[test]
    fn a_verified_domain_then_failing_says_when_it_stops() {
        let at = datetime!(2026-12-01 10:00 UTC);
        let verified = DomainState::default().after_check(Ok(()), at, RULES, false);
        let w = verified.in_words(RULES, "t.example", None);
        assert_eq!(w.headline, "Verified — certificate issued on first visit");
        assert_eq!(
            w.last_check.as_deref(),
            Some("Both records found and right")
        );
        assert!(w.next.contains("3 days"), "{}", w.next);

        let failing = verified.after_check(
            Err(DomainCheckError::TxtMissing),
            datetime!(2026-12-02 08:30 UTC),
            RULES,
            false,
        );
        let w = failing.in_words(RULES, "t.example", None);
        assert_eq!(
            w.headline,
            "Failing since 2026-12-02 08:30 UTC, stops routing on 2026-12-05 08:30 UTC"
        );
        assert_eq!(w.last_check.as_deref(), Some("TXT record not found"));

        let stopped = failing.after_check(
            Err(DomainCheckError::TxtMissing),
            datetime!(2026-12-05 09:00 UTC),
            RULES,
            false,
        );
        assert_eq!(
            stopped.in_words(RULES, "t.example", None).headline,
            "Stopped on 2026-12-05 09:00 UTC: no longer served"
        );
    }

    #[test]
    fn lengths_are_said_in_days_or_hours() {
        assert_eq!(duration_words(Duration::days(1)), "1 day");
        assert_eq!(duration_words(Duration::days(3)), "3 days");
        assert_eq!(duration_words(Duration::hours(1)), "1 hour");
        assert_eq!(duration_words(Duration::hours(30)), "30 hours");
    }
}
