//! When to try a failed delivery again.

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
