//! Uptime arithmetic, from a component's status history.
//!
//! The formula (documented for tenants in `docs/uptime.md` once the endpoint
//! exists):
//!
//! ```text
//! considered = range ∩ [component start, …)  −  maintenance windows  −  time under_maintenance
//! down       = major_outage time × 1  +  partial_outage time × partial weight   (degraded counts as up)
//! uptime %   = 100 × (1 − down / considered)
//! ```
//!
//! The partial-outage weight is a page setting (default 0.3). Times are
//! counted in milliseconds.

use time::OffsetDateTime;

use crate::ComponentStatus;

/// How much of a moment in a status counts as down.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UptimeWeights {
    /// The share of partial-outage time counted as down, in `[0, 1]`.
    pub partial_outage: f64,
}

impl Default for UptimeWeights {
    fn default() -> Self {
        Self {
            partial_outage: 0.3,
        }
    }
}

/// A component's status over time: `initial` from `since` (when the
/// component started to exist), then each change, in time order.
#[derive(Debug, Clone)]
pub struct StatusHistory {
    /// When the component started to exist.
    pub since: OffsetDateTime,
    /// Its status then.
    pub initial: ComponentStatus,
    /// Each later change: when, and to what.
    pub changes: Vec<(OffsetDateTime, ComponentStatus)>,
}

/// The arithmetic of one range, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UptimeTotals {
    /// Time that counts: the range while the component existed, less maintenance.
    pub considered_ms: i64,
    /// Time in major outage (within the considered time).
    pub major_outage_ms: i64,
    /// Time in partial outage (within the considered time).
    pub partial_outage_ms: i64,
    /// Time in degraded performance (within the considered time).
    pub degraded_ms: i64,
    /// Time left out for maintenance (windows or status).
    pub maintenance_ms: i64,
}

impl UptimeTotals {
    /// The uptime percentage, or `None` when no time counted (a component
    /// younger than the range's end, or a range all maintenance).
    #[must_use]
    pub fn percentage(&self, weights: UptimeWeights) -> Option<f64> {
        if self.considered_ms <= 0 {
            return None;
        }
        #[expect(
            clippy::cast_precision_loss,
            reason = "milliseconds of a year fit an f64 exactly"
        )]
        let down = self.major_outage_ms as f64
            + self.partial_outage_ms as f64 * weights.partial_outage.clamp(0.0, 1.0);
        #[expect(clippy::cast_precision_loss, reason = "as above")]
        let considered = self.considered_ms as f64;
        Some((100.0 * (1.0 - down / considered)).clamp(0.0, 100.0))
    }
}

fn ms(d: time::Duration) -> i64 {
    i64::try_from(d.whole_milliseconds()).unwrap_or(i64::MAX)
}

/// Merges overlapping or touching windows; drops empty ones.
fn merged(windows: &[(OffsetDateTime, OffsetDateTime)]) -> Vec<(OffsetDateTime, OffsetDateTime)> {
    let mut sorted: Vec<_> = windows.iter().copied().filter(|(a, b)| a < b).collect();
    sorted.sort();
    let mut out: Vec<(OffsetDateTime, OffsetDateTime)> = Vec::with_capacity(sorted.len());
    for (a, b) in sorted {
        match out.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

/// How much of `[a, b)` the (merged) windows cover, in milliseconds.
fn covered(
    a: OffsetDateTime,
    b: OffsetDateTime,
    windows: &[(OffsetDateTime, OffsetDateTime)],
) -> i64 {
    windows
        .iter()
        .map(|(wa, wb)| {
            let (s, e) = ((*wa).max(a), (*wb).min(b));
            if s < e { ms(e - s) } else { 0 }
        })
        .sum()
}

/// The totals of `history` over `[start, end)`, leaving out `maintenance` windows.
#[must_use]
pub fn uptime_totals(
    history: &StatusHistory,
    start: OffsetDateTime,
    end: OffsetDateTime,
    maintenance: &[(OffsetDateTime, OffsetDateTime)],
) -> UptimeTotals {
    let windows = merged(maintenance);
    let mut totals = UptimeTotals::default();
    // Segments: each status from its moment to the next change.
    let mut points: Vec<(OffsetDateTime, ComponentStatus)> = vec![(history.since, history.initial)];
    points.extend(
        history
            .changes
            .iter()
            .copied()
            .filter(|(t, _)| *t >= history.since),
    );
    points.sort_by_key(|(t, _)| *t);
    for (i, (from, status)) in points.iter().enumerate() {
        let to = points.get(i + 1).map_or(end, |(t, _)| *t);
        let (a, b) = ((*from).max(start), to.min(end));
        if a >= b {
            continue;
        }
        let length = ms(b - a);
        let in_windows = covered(a, b, &windows);
        if *status == ComponentStatus::UnderMaintenance {
            totals.maintenance_ms += length;
            continue;
        }
        totals.maintenance_ms += in_windows;
        let counted = length - in_windows;
        totals.considered_ms += counted;
        match status {
            ComponentStatus::MajorOutage => totals.major_outage_ms += counted,
            ComponentStatus::PartialOutage => totals.partial_outage_ms += counted,
            ComponentStatus::DegradedPerformance => totals.degraded_ms += counted,
            ComponentStatus::Operational | ComponentStatus::UnderMaintenance => {}
        }
    }
    totals
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use time::Duration;
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2026-11-01 00:00 UTC);

    fn at(minutes: i64) -> OffsetDateTime {
        T0 + Duration::minutes(minutes)
    }

    fn history(changes: &[(i64, ComponentStatus)]) -> StatusHistory {
        StatusHistory {
            since: T0,
            initial: ComponentStatus::Operational,
            changes: changes.iter().map(|(m, s)| (at(*m), *s)).collect(),
        }
    }

    #[test]
    fn an_hour_of_major_outage_in_a_day_is_95_8_percent() {
        let h = history(&[
            (600, ComponentStatus::MajorOutage),
            (660, ComponentStatus::Operational),
        ]);
        let t = uptime_totals(&h, T0, at(24 * 60), &[]);
        assert_eq!(t.major_outage_ms, 3_600_000);
        let p = t.percentage(UptimeWeights::default()).unwrap();
        assert!((p - 100.0 * (1.0 - 1.0 / 24.0)).abs() < 1e-9, "{p}");
    }

    #[test]
    fn partial_outage_counts_by_its_weight_and_degraded_counts_as_up() {
        let h = history(&[
            (0, ComponentStatus::PartialOutage),
            (600, ComponentStatus::DegradedPerformance),
        ]);
        let t = uptime_totals(&h, T0, at(1200), &[]);
        assert_eq!(t.percentage(UptimeWeights::default()), Some(85.0));
        assert_eq!(
            t.percentage(UptimeWeights {
                partial_outage: 1.0
            }),
            Some(50.0)
        );
        assert_eq!(
            t.percentage(UptimeWeights {
                partial_outage: 0.0
            }),
            Some(100.0)
        );
    }

    #[test]
    fn maintenance_windows_and_status_are_left_out() {
        let h = history(&[
            (0, ComponentStatus::MajorOutage),
            (60, ComponentStatus::UnderMaintenance),
            (120, ComponentStatus::Operational),
        ]);
        // The outage hour falls in a maintenance window; the second hour is under maintenance.
        let t = uptime_totals(&h, T0, at(240), &[(at(0), at(60))]);
        assert_eq!(t.considered_ms, 2 * 3_600_000);
        assert_eq!(t.maintenance_ms, 2 * 3_600_000);
        assert_eq!(t.percentage(UptimeWeights::default()), Some(100.0));
    }

    #[test]
    fn a_component_younger_than_the_range_counts_from_its_start() {
        let h = StatusHistory {
            since: at(720),
            initial: ComponentStatus::MajorOutage,
            changes: vec![(at(780), ComponentStatus::Operational)],
        };
        let t = uptime_totals(&h, T0, at(1440), &[]);
        assert_eq!(t.considered_ms, 12 * 3_600_000);
        assert_eq!(t.major_outage_ms, 3_600_000);
        assert!(
            uptime_totals(&h, T0, at(600), &[])
                .percentage(UptimeWeights::default())
                .is_none()
        );
    }

    fn any_status() -> impl Strategy<Value = ComponentStatus> {
        prop::sample::select(ComponentStatus::ALL.to_vec())
    }

    prop_compose! {
        fn any_history()(
            initial in any_status(),
            since in 0i64..2000,
            changes in prop::collection::vec((0i64..4000, any_status()), 0..20),
        ) -> StatusHistory {
            // A component changes only once it exists.
            let mut changes: Vec<_> = changes.into_iter().map(|(m, s)| (at(since + m), s)).collect();
            changes.sort_by_key(|(t, _)| *t);
            StatusHistory { since: at(since), initial, changes }
        }
    }

    prop_compose! {
        fn any_windows()(w in prop::collection::vec((0i64..4000, 0i64..600), 0..6))
            -> Vec<(OffsetDateTime, OffsetDateTime)> {
            w.into_iter().map(|(a, len)| (at(a), at(a + len))).collect()
        }
    }

    proptest! {
        #[test]
        fn uptime_is_a_percentage(h in any_history(), w in any_windows(), s in 0i64..4000, len in 1i64..4000, weight in 0.0f64..1.0) {
            let t = uptime_totals(&h, at(s), at(s + len), &w);
            if let Some(p) = t.percentage(UptimeWeights { partial_outage: weight }) {
                prop_assert!((0.0..=100.0).contains(&p));
            }
            prop_assert!(t.considered_ms + t.maintenance_ms <= len * 60_000);
            prop_assert!(t.major_outage_ms + t.partial_outage_ms + t.degraded_ms <= t.considered_ms);
        }

        #[test]
        fn totals_add_up_across_a_split_of_the_range(h in any_history(), w in any_windows(), s in 0i64..2000, a in 1i64..2000, b in 1i64..2000) {
            let (start, mid, end) = (at(s), at(s + a), at(s + a + b));
            let whole = uptime_totals(&h, start, end, &w);
            let left = uptime_totals(&h, start, mid, &w);
            let right = uptime_totals(&h, mid, end, &w);
            prop_assert_eq!(whole.considered_ms, left.considered_ms + right.considered_ms);
            prop_assert_eq!(whole.major_outage_ms, left.major_outage_ms + right.major_outage_ms);
            prop_assert_eq!(whole.partial_outage_ms, left.partial_outage_ms + right.partial_outage_ms);
            prop_assert_eq!(whole.maintenance_ms, left.maintenance_ms + right.maintenance_ms);
        }

        #[test]
        fn overlapping_maintenance_windows_count_once(h in any_history(), w in any_windows(), s in 0i64..2000, len in 1i64..2000) {
            let mut twice = w.clone();
            twice.extend(w.iter().copied());
            prop_assert_eq!(
                uptime_totals(&h, at(s), at(s + len), &w),
                uptime_totals(&h, at(s), at(s + len), &twice)
            );
        }

        #[test]
        fn repeating_a_status_changes_nothing(h in any_history(), s in 0i64..2000, len in 1i64..2000, at_minute in 0i64..4000) {
            let mut repeated = h.clone();
            let status_then = std::iter::once((h.since, h.initial))
                .chain(h.changes.iter().copied())
                .rfind(|(t, _)| *t <= at(at_minute))
                .map(|(_, st)| st);
            if let Some(st) = status_then {
                repeated.changes.push((at(at_minute), st));
                repeated.changes.sort_by_key(|(t, _)| *t);
                prop_assert_eq!(
                    uptime_totals(&h, at(s), at(s + len), &[]),
                    uptime_totals(&repeated, at(s), at(s + len), &[])
                );
            }
        }
    }
}
