//! When to try a failed delivery again.
//!
//! Only the policy (which answers are worth another try, and how long to
//! wait); scheduling the next try and counting attempts are the worker's and
//! the job queue's.

use std::time::Duration;

/// A retry schedule: the delay before each retry, in order. After the last
/// one, the delivery is dead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    delays: Vec<Duration>,
}

impl RetryPolicy {
    /// The email schedule: 10 s, 1 min, 5 min, 30 min, 2 h.
    #[must_use]
    pub fn email() -> Self {
        Self::new(
            [10, 60, 300, 1800, 7200]
                .into_iter()
                .map(Duration::from_secs)
                .collect(),
        )
    }

    /// The webhook schedule (the Standard Webhooks / Svix one): the first
    /// attempt at once, then retries after 5 s, 5 min, 30 min, 2 h, 5 h,
    /// 10 h and 10 h — about a day and a half before a delivery is dead.
    #[must_use]
    pub fn webhook() -> Self {
        Self::new(
            [5, 300, 1800, 7200, 18_000, 36_000, 36_000]
                .into_iter()
                .map(Duration::from_secs)
                .collect(),
        )
    }

    /// The SMS schedule: 10 s, 1 min, 5 min, 30 min. Short: a text that
    /// arrives hours late about an incident long resolved helps nobody, and
    /// each attempt may cost money.
    #[must_use]
    pub fn sms() -> Self {
        Self::new(
            [10, 60, 300, 1800]
                .into_iter()
                .map(Duration::from_secs)
                .collect(),
        )
    }

    /// A schedule written as delays separated by commas, each a number with
    /// a unit (`ms`, `s`, `m`, `h`): `5s,5m,30m,2h`. `None` when malformed
    /// or empty.
    #[must_use]
    pub fn parse(spec: &str) -> Option<Self> {
        let delays: Option<Vec<Duration>> = spec
            .split(',')
            .map(|d| {
                let d = d.trim();
                let split = d.find(|c: char| !c.is_ascii_digit())?;
                let (n, unit) = d.split_at(split);
                let n: u64 = n.parse().ok()?;
                match unit {
                    "ms" => Some(Duration::from_millis(n)),
                    "s" => Some(Duration::from_secs(n)),
                    "m" => Some(Duration::from_secs(n * 60)),
                    "h" => Some(Duration::from_secs(n * 3600)),
                    _ => None,
                }
            })
            .collect();
        delays.filter(|d| !d.is_empty()).map(Self::new)
    }

    /// A schedule with these delays.
    #[must_use]
    pub const fn new(delays: Vec<Duration>) -> Self {
        Self { delays }
    }

    /// How many attempts are made in all, the first included.
    #[must_use]
    pub fn max_attempts(&self) -> usize {
        self.delays.len() + 1
    }

    /// The delay before the next attempt after `attempts_made` failed ones,
    /// spread by `jitter` (a number in `[0, 1)`) over ±20 % so that retries of
    /// one outage do not arrive together; `None` when no attempt is left.
    #[must_use]
    pub fn next_delay(&self, attempts_made: usize, jitter: f64) -> Option<Duration> {
        let base = self.delays.get(attempts_made.checked_sub(1)?)?;
        let factor = 0.8 + 0.4 * jitter.clamp(0.0, 1.0);
        Some(base.mul_f64(factor))
    }
}

impl RetryPolicy {
    /// Like [`RetryPolicy::next_delay`], but never sooner than a receiver's
    /// `Retry-After` (capped at a day, so a receiver cannot park a delivery
    /// for ever); `None` when no attempt is left, whatever it asked.
    #[must_use]
    pub fn next_delay_honouring(
        &self,
        attempts_made: usize,
        jitter: f64,
        retry_after: Option<Duration>,
    ) -> Option<Duration> {
        let planned = self.next_delay(attempts_made, jitter)?;
        let asked = retry_after.unwrap_or_default().min(MAX_RETRY_AFTER);
        Some(planned.max(asked))
    }
}

/// The longest `Retry-After` honoured.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(86_400);

/// A `Retry-After` header's wait: delay-seconds, or an HTTP-date (a date
/// already past is no wait).
#[must_use]
pub fn parse_retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or_default())
}

/// What an HTTP answer to a webhook means for its delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpOutcome {
    /// 2xx: delivered.
    Delivered,
    /// 410 Gone: the receiver asks to be unsubscribed.
    Gone,
    /// Worth another attempt later: 408, 429, 5xx, a temporary redirect
    /// (redirects are not followed).
    Transient,
    /// Not worth retrying: any other 4xx, a permanent redirect.
    Permanent,
}

/// Classifies a webhook receiver's status code.
#[must_use]
pub const fn classify_status(status: u16) -> HttpOutcome {
    match status {
        200..=299 => HttpOutcome::Delivered,
        410 => HttpOutcome::Gone,
        408 | 429 | 500..=599 => HttpOutcome::Transient,
        301 | 308 => HttpOutcome::Permanent,
        300..=399 => HttpOutcome::Transient,
        _ => HttpOutcome::Permanent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schedule_parses_from_delays_with_units() {
        assert_eq!(
            RetryPolicy::parse("5s, 5m,30m,2h,500ms"),
            Some(RetryPolicy::new(vec![
                Duration::from_secs(5),
                Duration::from_secs(300),
                Duration::from_secs(1800),
                Duration::from_secs(7200),
                Duration::from_millis(500),
            ]))
        );
        for bad in ["", "5", "5d", "s", "5s,,5m", "-5s"] {
            assert_eq!(RetryPolicy::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn delays_follow_the_schedule_within_the_jitter_band() {
        let p = RetryPolicy::new(vec![Duration::from_secs(10), Duration::from_secs(100)]);
        assert_eq!(p.max_attempts(), 3);
        assert_eq!(p.next_delay(1, 0.5), Some(Duration::from_secs(10)));
        assert_eq!(p.next_delay(1, 0.0), Some(Duration::from_secs(8)));
        assert_eq!(p.next_delay(2, 1.0), Some(Duration::from_secs(120)));
    }

    #[test]
    fn no_delay_is_left_after_the_last_attempt() {
        let p = RetryPolicy::email();
        assert!(p.next_delay(5, 0.5).is_some());
        assert_eq!(p.next_delay(6, 0.5), None);
        assert_eq!(p.next_delay(0, 0.5), None);
    }

    #[test]
    fn webhooks_follow_the_standard_schedule() {
        let p = RetryPolicy::webhook();
        assert_eq!(p.max_attempts(), 8);
        let planned: Vec<u64> = (1..8)
            .map(|n| p.next_delay(n, 0.5).unwrap().as_secs())
            .collect();
        assert_eq!(planned, [5, 300, 1800, 7200, 18_000, 36_000, 36_000]);
        assert_eq!(p.next_delay(8, 0.5), None);
    }

    #[test]
    fn retry_after_is_honoured_up_to_a_day_and_never_revives_a_dead_delivery() {
        let p = RetryPolicy::webhook();
        let minute = Some(Duration::from_secs(60));
        assert_eq!(p.next_delay_honouring(1, 0.5, minute), minute);
        assert_eq!(
            p.next_delay_honouring(2, 0.5, minute),
            Some(Duration::from_secs(300)),
            "a shorter wait than planned changes nothing"
        );
        assert_eq!(
            p.next_delay_honouring(1, 0.5, Some(Duration::from_secs(10_000_000))),
            Some(MAX_RETRY_AFTER)
        );
        assert_eq!(p.next_delay_honouring(8, 0.5, minute), None);
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = std::time::UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(
            parse_retry_after(" 120 ", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:50:37 GMT", now),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn statuses_are_classified_into_delivered_gone_transient_and_permanent() {
        assert_eq!(classify_status(204), HttpOutcome::Delivered);
        assert_eq!(classify_status(410), HttpOutcome::Gone);
        for transient in [408, 429, 500, 502, 503, 302, 307] {
            assert_eq!(
                classify_status(transient),
                HttpOutcome::Transient,
                "{transient}"
            );
        }
        for permanent in [400, 401, 403, 404, 413, 422, 301, 308] {
            assert_eq!(
                classify_status(permanent),
                HttpOutcome::Permanent,
                "{permanent}"
            );
        }
    }
}
