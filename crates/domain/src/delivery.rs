//! Deliveries: one notification to one subscriber over one channel, its
//! status, and what each attempt makes of it.
//!
//! This module owns the delivery lifecycle (pending → sent, failed and due
//! again, dead, or skipped) and the subscriber's run of dead deliveries that
//! quarantines it. It does not own the retry schedules (the channels' senders
//! define those and hand them in as a function), nor how rows are stored.

use std::time::Duration;

use time::OffsetDateTime;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::UnknownVariant;
use crate::status::wire_enum;
use crate::{Channel, DeliveryId, EventId, SubscriberId};

wire_enum!(
    /// Where a delivery stands.
    DeliveryStatus {
        /// Waiting to be sent (or being sent).
        Pending => "pending",
        /// Sent.
        Sent => "sent",
        /// Failed, to be tried again at `next_attempt_at`.
        Failed => "failed",
        /// Given up: out of attempts, or refused for good. A redrive sends it again.
        Dead => "dead",
        /// Not sent, and never will be: the subscriber left before it went out,
        /// or there was nothing to send on its channel.
        Skipped => "skipped",
    }
);

impl DeliveryStatus {
    /// The statuses a worker may still send a delivery in (when it is due).
    pub const SENDABLE: &'static [Self] = &[Self::Pending, Self::Failed];

    /// Whether a worker may still send a delivery in this status.
    #[must_use]
    pub const fn is_sendable(self) -> bool {
        matches!(self, Self::Pending | Self::Failed)
    }

    /// Whether a redrive gives a delivery in this status a fresh start.
    #[must_use]
    pub const fn is_redrivable(self) -> bool {
        matches!(self, Self::Dead)
    }
}

/// One row of the delivery log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRecord {
    /// The delivery.
    pub id: DeliveryId,
    /// The event it announces.
    pub event_id: EventId,
    /// The event's kind, as stored (`incident.created`, …).
    pub event_kind: String,
    /// The recipient.
    pub subscriber_id: SubscriberId,
    /// Channel.
    pub channel: Channel,
    /// Where it goes: the address, number or URL (for Slack and Teams, what
    /// answers may show of it).
    pub target: Option<String>,
    /// Where it stands.
    pub status: DeliveryStatus,
    /// Attempts made.
    pub attempts: i32,
    /// The last failure, if any.
    pub last_error: Option<String>,
    /// When the last attempt was made.
    pub last_attempt_at: Option<OffsetDateTime>,
    /// When it is due again (failed ones).
    pub next_attempt_at: Option<OffsetDateTime>,
    /// When it was sent.
    pub sent_at: Option<OffsetDateTime>,
    /// When it was created.
    pub created_at: OffsetDateTime,
}

/// A failed attempt of a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryAttempt {
    /// Its number, from 1.
    pub attempt: i32,
    /// When it was made.
    pub at: OffsetDateTime,
    /// Why it failed.
    pub error: String,
    /// When the next attempt was scheduled (none when it died).
    pub retry_at: Option<OffsetDateTime>,
}

/// What one attempt to send a delivery came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// The receiver took it.
    Sent,
    /// It did not go out.
    Failed {
        /// Whether a later attempt may succeed.
        transient: bool,
        /// What to record (no address, number, URL or secret in it).
        error: String,
        /// How long the receiver asked us to wait.
        retry_after: Option<Duration>,
    },
    /// Not sent, and never will be, for the reason given.
    Skipped(&'static str),
    /// The target said it wants nothing more (an endpoint's HTTP 410, a
    /// number's STOP), for the reason given.
    Gone(&'static str),
}

/// What the store records after an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryStep {
    /// Sent: the subscriber's run of dead deliveries ends.
    Sent,
    /// Failed, due again after `retry_in`.
    Retry {
        /// Why it failed.
        error: String,
        /// How long until the next attempt.
        retry_in: Duration,
    },
    /// Failed for good: no attempt is left, or a later one cannot succeed.
    Dead {
        /// Why it failed.
        error: String,
    },
    /// Not sent, for `reason`; with `unsubscribe`, the subscriber is also
    /// unsubscribed (its target said it is gone).
    Skipped {
        /// Why.
        reason: &'static str,
        /// Whether the subscription ends too.
        unsubscribe: bool,
    },
}

impl DeliveryStep {
    /// The status the delivery is left in.
    #[must_use]
    pub const fn status(&self) -> DeliveryStatus {
        match self {
            Self::Sent => DeliveryStatus::Sent,
            Self::Retry { .. } => DeliveryStatus::Failed,
            Self::Dead { .. } => DeliveryStatus::Dead,
            Self::Skipped { .. } => DeliveryStatus::Skipped,
        }
    }

    /// How long until the next attempt, when there is one.
    #[must_use]
    pub const fn retry_in(&self) -> Option<Duration> {
        match self {
            Self::Retry { retry_in, .. } => Some(*retry_in),
            _ => None,
        }
    }
}

/// The step after an attempt with `outcome`, `attempts_before` attempts
/// having been made before it. `schedule` is the channel's retry schedule:
/// given the attempts made (this one included) and the receiver's
/// `Retry-After`, the delay before the next attempt, or `None` when no
/// attempt is left.
///
/// - A send is recorded as sent.
/// - A transient failure is tried again on the schedule; once the schedule
///   is out of attempts, the delivery is dead.
/// - A permanent failure is dead at once, whatever the schedule says.
/// - A skip is recorded with its reason; a target that is gone also ends
///   the subscription.
#[must_use]
pub fn after_attempt(
    attempts_before: i32,
    outcome: AttemptOutcome,
    schedule: impl FnOnce(usize, Option<Duration>) -> Option<Duration>,
) -> DeliveryStep {
    match outcome {
        AttemptOutcome::Sent => DeliveryStep::Sent,
        AttemptOutcome::Skipped(reason) => DeliveryStep::Skipped {
            reason,
            unsubscribe: false,
        },
        AttemptOutcome::Gone(reason) => DeliveryStep::Skipped {
            reason,
            unsubscribe: true,
        },
        AttemptOutcome::Failed {
            transient,
            error,
            retry_after,
        } => {
            let attempts_made = usize::try_from(attempts_before).unwrap_or(0) + 1;
            match transient
                .then(|| schedule(attempts_made, retry_after))
                .flatten()
            {
                Some(retry_in) => DeliveryStep::Retry { error, retry_in },
                None => DeliveryStep::Dead { error },
            }
        }
    }
}

/// Deliveries dying this many times in a row quarantine their subscriber.
pub const QUARANTINE_AFTER: i32 = 3;

/// A subscriber's record of failing deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeliveryHealth {
    /// Deliveries that died in a row, since the last one sent.
    pub dead_streak: i32,
    /// When deliveries to the subscriber were suspended for failing.
    pub quarantined_at: Option<OffsetDateTime>,
}

impl DeliveryHealth {
    /// After a delivery to the subscriber was sent: the run of dead ones ends
    /// (a quarantine stays until the team lifts it).
    #[must_use]
    pub const fn after_sent(self) -> Self {
        Self {
            dead_streak: 0,
            ..self
        }
    }

    /// After a delivery to the subscriber died at `at`: the run grows, and
    /// reaching [`QUARANTINE_AFTER`] quarantines the subscriber (once: an
    /// earlier quarantine keeps its time).
    #[must_use]
    pub fn after_dead(self, at: OffsetDateTime) -> Self {
        let dead_streak = self.dead_streak.saturating_add(1);
        Self {
            dead_streak,
            quarantined_at: self
                .quarantined_at
                .or_else(|| (dead_streak >= QUARANTINE_AFTER).then_some(at)),
        }
    }

    /// Whether going from `self` to `after` put the subscriber in quarantine.
    #[must_use]
    pub const fn quarantines(&self, after: &Self) -> bool {
        self.quarantined_at.is_none() && after.quarantined_at.is_some()
    }

    /// After the team lifted the quarantine: a fresh start.
    #[must_use]
    pub const fn reactivated(self) -> Self {
        Self {
            dead_streak: 0,
            quarantined_at: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const AT: OffsetDateTime = datetime!(2026-03-01 12:00 UTC);

    fn schedule(
        delays: &'static [u64],
    ) -> impl FnOnce(usize, Option<Duration>) -> Option<Duration> {
        move |made, asked| {
            let planned = Duration::from_secs(*delays.get(made - 1)?);
            Some(planned.max(asked.unwrap_or_default()))
        }
    }

    fn failed(transient: bool) -> AttemptOutcome {
        AttemptOutcome::Failed {
            transient,
            error: "HTTP 503".to_owned(),
            retry_after: None,
        }
    }

    #[test]
    fn statuses_keep_their_stored_forms() {
        let forms: Vec<_> = DeliveryStatus::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(forms, ["pending", "sent", "failed", "dead", "skipped"]);
        assert_eq!("dead".parse(), Ok(DeliveryStatus::Dead));
        let err = "lost".parse::<DeliveryStatus>().unwrap_err();
        assert_eq!(err.allowed, "pending, sent, failed, dead, skipped");
    }

    #[test]
    fn only_pending_and_failed_deliveries_are_sent_and_only_dead_ones_redriven() {
        for s in DeliveryStatus::ALL {
            assert_eq!(s.is_sendable(), DeliveryStatus::SENDABLE.contains(s));
            assert_eq!(s.is_redrivable(), *s == DeliveryStatus::Dead);
        }
    }

    #[test]
    fn a_send_is_sent() {
        let step = after_attempt(2, AttemptOutcome::Sent, schedule(&[10]));
        assert_eq!(step, DeliveryStep::Sent);
        assert_eq!(step.status(), DeliveryStatus::Sent);
    }

    #[test]
    fn a_transient_failure_retries_on_the_schedule_until_it_runs_out() {
        let first = after_attempt(0, failed(true), schedule(&[10, 60]));
        assert_eq!(first.status(), DeliveryStatus::Failed);
        assert_eq!(first.retry_in(), Some(Duration::from_secs(10)));
        let second = after_attempt(1, failed(true), schedule(&[10, 60]));
        assert_eq!(second.retry_in(), Some(Duration::from_secs(60)));
        let last = after_attempt(2, failed(true), schedule(&[10, 60]));
        assert_eq!(
            last,
            DeliveryStep::Dead {
                error: "HTTP 503".to_owned()
            }
        );
    }

    #[test]
    fn a_receivers_retry_after_is_handed_to_the_schedule() {
        let outcome = AttemptOutcome::Failed {
            transient: true,
            error: "HTTP 429".to_owned(),
            retry_after: Some(Duration::from_secs(120)),
        };
        let step = after_attempt(0, outcome, schedule(&[10]));
        assert_eq!(step.retry_in(), Some(Duration::from_secs(120)));
    }

    #[test]
    fn a_permanent_failure_is_dead_at_once() {
        let step = after_attempt(0, failed(false), |_, _| {
            unreachable!("a permanent failure never asks the schedule")
        });
        assert_eq!(step.status(), DeliveryStatus::Dead);
        assert_eq!(step.retry_in(), None);
    }

    #[test]
    fn a_skip_is_skipped_and_a_gone_target_also_unsubscribes() {
        assert_eq!(
            after_attempt(0, AttemptOutcome::Skipped("left"), schedule(&[])),
            DeliveryStep::Skipped {
                reason: "left",
                unsubscribe: false
            }
        );
        let gone = after_attempt(0, AttemptOutcome::Gone("410"), schedule(&[]));
        assert_eq!(
            gone,
            DeliveryStep::Skipped {
                reason: "410",
                unsubscribe: true
            }
        );
        assert_eq!(gone.status(), DeliveryStatus::Skipped);
    }

    #[test]
    fn the_third_death_in_a_row_quarantines_once() {
        let healthy = DeliveryHealth::default();
        let one = healthy.after_dead(AT);
        let two = one.after_dead(AT);
        assert_eq!(two.quarantined_at, None);
        assert!(!one.quarantines(&two));
        let three = two.after_dead(AT);
        assert_eq!(three.quarantined_at, Some(AT));
        assert!(two.quarantines(&three));
        let later = datetime!(2026-03-02 00:00 UTC);
        let four = three.after_dead(later);
        assert_eq!(
            four.quarantined_at,
            Some(AT),
            "the first quarantine keeps its time"
        );
        assert!(!three.quarantines(&four));
    }

    #[test]
    fn a_send_ends_the_run_but_not_the_quarantine() {
        let run = DeliveryHealth::default().after_dead(AT).after_dead(AT);
        assert_eq!(run.after_sent().dead_streak, 0);
        let after = run.after_sent().after_dead(AT).after_dead(AT);
        assert_eq!(after.quarantined_at, None, "the run started over");
        let quarantined = run.after_dead(AT);
        assert_eq!(quarantined.after_sent().quarantined_at, Some(AT));
        assert_eq!(quarantined.reactivated(), DeliveryHealth::default());
    }
}
