//! Uptime arithmetic, from a component's status history.
//!
//! The formula (documented for tenants in `docs/uptime.md`):
//!
//! ```text
//! considered = range ∩ [component start, …)  −  maintenance windows  −  time under_maintenance
//! down       = major_outage time × 1  +  partial_outage time × partial weight   (degraded counts as up)
//! uptime %   = 100 × (1 − down / considered)
//! ```
//!
//! The partial-outage weight is a page setting (default 0.3). Times are
//! counted in milliseconds.
//!
//! Daily figures ([`daily_uptime`]) are for calendar days in the page's time
//! zone (see [`crate::tz`]), so a day is 23 or 25 hours long when the clocks
//! change, and the days of a range add up to exactly the range. Nothing
//! counts after `now`: a future day, or the rest of today, is left out rather
//! than counted as up.
//!
//! A group's totals are the sum of its components' totals (`UptimeTotals`
//! implements `Add` and `Sum`), and its percentage is the formula applied to
//! that sum. Each component thus weighs by the time it counted: one that
//! existed for half the range weighs half, one under maintenance weighs
//! nothing. Averaging the components' percentages instead would let a
//! component added an hour ago count as much as one watched all month.
//!
//! The file passes 700 lines because more than half of it is tests: the
//! property tests that uptime is a percentage and that the days of a span
//! add up to the whole span, across both hemispheres' clock changes.

use std::iter::Sum;
use std::ops::Add;

use time::{Date, Duration, OffsetDateTime};

use crate::tz::{self, TimeZoneName};
use crate::{ComponentStatus, FieldError};

/// A range of time to compute uptime over, `[start, end)`: not empty, and at
/// most [`UptimeRange::MAX_LENGTH`] long, which bounds the work one request costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UptimeRange {
    start: OffsetDateTime,
    end: OffsetDateTime,
}

impl UptimeRange {
    /// The longest range: a year, a leap one included.
    pub const MAX_LENGTH: Duration = Duration::days(366);

    /// A range from `start` to `end`; errors name the field `end`.
    pub fn new(start: OffsetDateTime, end: OffsetDateTime) -> Result<Self, FieldError> {
        if end <= start {
            return Err(FieldError::new("end", "invalid", "must be after the start"));
        }
        if end - start > Self::MAX_LENGTH {
            return Err(FieldError::new(
                "end",
                "too_long",
                "a range spans at most a year",
            ));
        }
        Ok(Self { start, end })
    }

    /// Where the range starts (included).
    #[must_use]
    pub const fn start(&self) -> OffsetDateTime {
        self.start
    }

    /// Where the range ends (excluded).
    #[must_use]
    pub const fn end(&self) -> OffsetDateTime {
        self.end
    }
}

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

/// A maintenance as uptime reads it: when it started, when it ended (if it
/// has), the end of its window, and whether it ever went under way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaintenanceSpan {
    /// When it started (its `started_at`).
    pub started_at: OffsetDateTime,
    /// When it was completed, if it was.
    pub resolved_at: Option<OffsetDateTime>,
    /// The end of its scheduled window.
    pub scheduled_until: Option<OffsetDateTime>,
    /// Whether it ever went `in_progress`.
    pub began: bool,
}

impl MaintenanceSpan {
    /// The time it excludes from a component's uptime, as of `now`: none if
    /// it never began (one called off before its window excused nothing);
    /// else from its start to its completion, or — still open — to the end
    /// of its window or now, whichever is later.
    #[must_use]
    pub fn excused(&self, now: OffsetDateTime) -> Option<(OffsetDateTime, OffsetDateTime)> {
        if !self.began {
            return None;
        }
        let end = self
            .resolved_at
            .unwrap_or_else(|| self.scheduled_until.map_or(now, |until| until.max(now)));
        Some((self.started_at, end))
    }
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

/// Field-wise sum; this is how a group's uptime is computed. A group's totals
/// are the sum of its components' totals, so each component weighs by the time
/// it counted (see the module documentation).
impl Add for UptimeTotals {
    type Output = Self;

    fn add(self, other: Self) -> Self {
        // Saturating: a sum that overflowed would be a nonsense percentage,
        // but a panic would take the whole page down with it.
        Self {
            considered_ms: self.considered_ms.saturating_add(other.considered_ms),
            major_outage_ms: self.major_outage_ms.saturating_add(other.major_outage_ms),
            partial_outage_ms: self
                .partial_outage_ms
                .saturating_add(other.partial_outage_ms),
            degraded_ms: self.degraded_ms.saturating_add(other.degraded_ms),
            maintenance_ms: self.maintenance_ms.saturating_add(other.maintenance_ms),
        }
    }
}

/// The totals of a group, or of a range from its days: see [`Add`].
impl Sum for UptimeTotals {
    fn sum<I: Iterator<Item = Self>>(iter: I) -> Self {
        iter.fold(Self::default(), Add::add)
    }
}

/// As the owned `Sum`, for summing borrowed totals.
impl<'a> Sum<&'a Self> for UptimeTotals {
    fn sum<I: Iterator<Item = &'a Self>>(iter: I) -> Self {
        iter.copied().sum()
    }
}

/// One calendar day's uptime, in the page's time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayUptime {
    /// The day, in the page's time zone.
    pub date: Date,
    /// Its totals; `considered_ms == 0` for a day before the component
    /// existed or after `now`, whose percentage is therefore `None`.
    pub totals: UptimeTotals,
}

fn ms(d: Duration) -> i64 {
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
    Prepared::new(history, maintenance).totals(start, end)
}

/// The totals of each calendar day from `first` to `last` (inclusive) in
/// `zone`, leaving out `maintenance` windows and anything after `now`.
///
/// Days are in order, one per date; none when `last` is before `first`. A day
/// before the component existed, or after `now`, counts nothing
/// (`considered_ms == 0`), and today counts only up to `now`. The days' totals
/// add up to [`uptime_totals`] from the start of `first` to the end of `last`
/// (or `now`, if earlier).
#[must_use]
pub fn daily_uptime(
    history: &StatusHistory,
    zone: &TimeZoneName,
    first: Date,
    last: Date,
    maintenance: &[(OffsetDateTime, OffsetDateTime)],
    now: OffsetDateTime,
) -> Vec<DayUptime> {
    // Looked up and sorted once: a year's bars are 366 ranges over the same data.
    let rules = zone.rules();
    let prepared = Prepared::new(history, maintenance);
    let mut days = Vec::new();
    let mut date = Some(first).filter(|d| *d <= last);
    while let Some(d) = date {
        let (start, end) = tz::bounds(d, &rules);
        days.push(DayUptime {
            date: d,
            totals: prepared.totals(start, end.min(now)),
        });
        date = d.next_day().filter(|next| *next <= last);
    }
    days
}

/// A history and maintenance windows in the shape the arithmetic needs, so
/// many ranges can be counted over them without sorting again.
struct Prepared {
    /// Each status from its moment until the next point's, in time order;
    /// of points at the same moment, the last given is the one that holds.
    points: Vec<(OffsetDateTime, ComponentStatus)>,
    /// The maintenance windows, merged and in time order.
    windows: Vec<(OffsetDateTime, OffsetDateTime)>,
}

impl Prepared {
    fn new(history: &StatusHistory, maintenance: &[(OffsetDateTime, OffsetDateTime)]) -> Self {
        let mut points: Vec<(OffsetDateTime, ComponentStatus)> =
            vec![(history.since, history.initial)];
        points.extend(
            history
                .changes
                .iter()
                .copied()
                .filter(|(t, _)| *t >= history.since),
        );
        // Stable, so changes recorded at the same moment keep their order.
        points.sort_by_key(|(t, _)| *t);
        Self {
            points,
            windows: merged(maintenance),
        }
    }

    /// The totals over `[start, end)`; nothing when the range is empty.
    fn totals(&self, start: OffsetDateTime, end: OffsetDateTime) -> UptimeTotals {
        let mut totals = UptimeTotals::default();
        if start >= end {
            return totals;
        }
        // Skip the points wholly before the range: the first one that matters
        // is the last at or before `start`, the status in force when it begins.
        let skip = self
            .points
            .partition_point(|(t, _)| *t <= start)
            .saturating_sub(1);
        for (i, (from, status)) in self.points.iter().enumerate().skip(skip) {
            if *from >= end {
                break;
            }
            let to = self.points.get(i + 1).map_or(end, |(t, _)| *t);
            let (a, b) = ((*from).max(start), to.min(end));
            if a >= b {
                continue;
            }
            let length = ms(b - a);
            if *status == ComponentStatus::UnderMaintenance {
                totals.maintenance_ms += length;
                continue;
            }
            let in_windows = covered(a, b, &self.windows);
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
}

#[cfg(test)]
mod tests {

    use super::*;
    use proptest::prelude::*;
    use time::macros::{date, datetime};

    use crate::tz::day_bounds;

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

    fn zone(name: &str) -> TimeZoneName {
        TimeZoneName::parse("time_zone", name).unwrap()
    }

    fn ms_between(a: OffsetDateTime, b: OffsetDateTime) -> i64 {
        i64::try_from((b - a).whole_milliseconds()).unwrap()
    }

    #[test]
    fn an_uptime_range_ends_after_it_starts_and_spans_at_most_a_year() {
        let r = UptimeRange::new(T0, at(60)).unwrap();
        assert_eq!((r.start(), r.end()), (T0, at(60)));
        assert!(UptimeRange::new(T0, T0 + Duration::days(366)).is_ok());
        for (end, code) in [(T0, "invalid"), (at(-1), "invalid")] {
            let err = UptimeRange::new(T0, end).unwrap_err();
            assert_eq!((err.field, err.code), ("end", code));
        }
        let err =
            UptimeRange::new(T0, T0 + Duration::days(366) + Duration::milliseconds(1)).unwrap_err();
        assert_eq!((err.field, err.code), ("end", "too_long"));
        assert_eq!(err.message, "a range spans at most a year");
    }

    #[test]
    fn a_group_weighs_each_component_by_the_time_it_counted() {
        // Watched all day, with an hour of major outage…
        let old = uptime_totals(
            &history(&[
                (600, ComponentStatus::MajorOutage),
                (660, ComponentStatus::Operational),
            ]),
            T0,
            at(24 * 60),
            &[],
        );
        // …and added for the last hour, up all along.
        let new = uptime_totals(
            &StatusHistory {
                since: at(23 * 60),
                initial: ComponentStatus::Operational,
                changes: vec![],
            },
            T0,
            at(24 * 60),
            &[],
        );
        let group = old + new;
        assert_eq!(group.considered_ms, 25 * 3_600_000);
        assert_eq!(group.major_outage_ms, 3_600_000);
        // 96%, not the 97.9% an average of the two percentages would give.
        assert_eq!(group.percentage(UptimeWeights::default()), Some(96.0));
        assert_eq!([old, new].iter().sum::<UptimeTotals>(), group);
        assert_eq!([old, new].into_iter().sum::<UptimeTotals>(), group);
        assert_eq!(
            std::iter::empty::<UptimeTotals>().sum::<UptimeTotals>(),
            UptimeTotals::default()
        );
    }

    #[test]
    fn daily_uptime_counts_calendar_days_in_the_page_zone_up_to_now() {
        // New York leaves daylight saving time on 2026-11-01, a 25-hour day.
        // The component starts on 2026-10-31 at 20:00 local time; the outage
        // runs from 22:00 to 01:00 local, across midnight; now is 07:00 on
        // 2026-11-03.
        let h = history(&[
            (27 * 60, ComponentStatus::MajorOutage),
            (30 * 60, ComponentStatus::Operational),
        ]);
        let now = datetime!(2026-11-03 12:00 UTC);
        let days = daily_uptime(
            &h,
            &zone("America/New_York"),
            date!(2026 - 10 - 30),
            date!(2026 - 11 - 04),
            &[],
            now,
        );
        let hours = |d: &DayUptime| {
            (
                d.date,
                d.totals.considered_ms / 3_600_000,
                d.totals.major_outage_ms / 3_600_000,
            )
        };
        assert_eq!(
            days.iter().map(hours).collect::<Vec<_>>(),
            [
                (date!(2026 - 10 - 30), 0, 0),
                (date!(2026 - 10 - 31), 4, 0),
                (date!(2026 - 11 - 01), 25, 2),
                (date!(2026 - 11 - 02), 24, 1),
                (date!(2026 - 11 - 03), 7, 0),
                (date!(2026 - 11 - 04), 0, 0),
            ]
        );
        let weights = UptimeWeights::default();
        assert_eq!(days[0].totals.percentage(weights), None);
        assert_eq!(days[5].totals.percentage(weights), None);
        assert_eq!(days[4].totals.percentage(weights), Some(100.0));
    }

    #[test]
    fn no_days_are_counted_when_the_last_is_before_the_first() {
        let days = daily_uptime(
            &history(&[]),
            &TimeZoneName::utc(),
            date!(2026 - 11 - 02),
            date!(2026 - 11 - 01),
            &[],
            at(10_000),
        );
        assert!(days.is_empty());
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

    /// The zones the day-splitting properties run in: no clock changes, a
    /// one-hour change on either side of UTC, a half-hour offset, and a
    /// half-hour clock change.
    const ZONES: &[&str] = &[
        "Etc/UTC",
        "Europe/Berlin",
        "America/New_York",
        "Asia/Kolkata",
        "Australia/Lord_Howe",
    ];

    fn any_zone() -> impl Strategy<Value = TimeZoneName> {
        prop::sample::select(ZONES).prop_map(zone)
    }

    /// How many minutes of history the day properties draw from: a span of
    /// up to 40 days, and two days on either side of it.
    const SPAN_MINUTES: std::ops::Range<i64> = -2 * 1440..42 * 1440;

    prop_compose! {
        /// The first and last day of a span of 1 to 40 days in 2026, so
        /// spans cross the clock changes of both hemispheres.
        fn any_span()(start in 0i64..365, days in 1i64..=40) -> (Date, Date) {
            let first = date!(2026 - 01 - 01) + Duration::days(start);
            (first, first + Duration::days(days - 1))
        }
    }

    prop_compose! {
        /// Changes as minutes from an anchor, in no particular order, some
        /// of them at the same moment as another with a different status.
        fn any_changes()(
            changes in prop::collection::vec((SPAN_MINUTES, any_status()), 0..30),
            again in prop::collection::vec((any::<prop::sample::Index>(), any_status()), 0..6),
        )(
            changes in {
                let mut changes = changes;
                if !changes.is_empty() {
                    let repeats: Vec<_> = again
                        .iter()
                        .map(|(i, s)| (changes[i.index(changes.len())].0, *s))
                        .collect();
                    changes.extend(repeats);
                }
                Just(changes).prop_shuffle()
            }
        ) -> Vec<(i64, ComponentStatus)> {
            changes
        }
    }

    prop_compose! {
        fn any_span_windows()(w in prop::collection::vec((SPAN_MINUTES, 0i64..1500), 0..6))
            -> Vec<(i64, i64)> {
            w
        }
    }

    /// The history of a component that started `since` minutes after `anchor`.
    fn history_from(
        anchor: OffsetDateTime,
        initial: ComponentStatus,
        since: i64,
        changes: &[(i64, ComponentStatus)],
    ) -> StatusHistory {
        StatusHistory {
            since: anchor + Duration::minutes(since),
            initial,
            changes: changes
                .iter()
                .map(|(m, s)| (anchor + Duration::minutes(*m), *s))
                .collect(),
        }
    }

    fn windows_from(
        anchor: OffsetDateTime,
        windows: &[(i64, i64)],
    ) -> Vec<(OffsetDateTime, OffsetDateTime)> {
        windows
            .iter()
            .map(|(a, len)| {
                (
                    anchor + Duration::minutes(*a),
                    anchor + Duration::minutes(a + len),
                )
            })
            .collect()
    }

    proptest! {
        #[test]
        fn the_days_of_a_span_add_up_to_the_whole_span(
            zone in any_zone(),
            (first, last) in any_span(),
            initial in any_status(),
            since in SPAN_MINUTES,
            changes in any_changes(),
            w in any_span_windows(),
            now_minutes in -1440i64..42 * 1440,
            now_ms in 0i64..60_000,
        ) {
            let anchor = first.midnight().assume_utc();
            let h = history_from(anchor, initial, since, &changes);
            let w = windows_from(anchor, &w);
            let now = anchor + Duration::minutes(now_minutes) + Duration::milliseconds(now_ms);
            let days = daily_uptime(&h, &zone, first, last, &w, now);
            let dates: Vec<Date> = days.iter().map(|d| d.date).collect();
            let expected: Vec<Date> = (0..=(last - first).whole_days())
                .map(|i| first + Duration::days(i))
                .collect();
            prop_assert_eq!(dates, expected);
            let whole = uptime_totals(
                &h,
                day_bounds(first, &zone).0,
                day_bounds(last, &zone).1.min(now),
                &w,
            );
            prop_assert_eq!(days.iter().map(|d| d.totals).sum::<UptimeTotals>(), whole);
        }

        #[test]
        fn a_range_crossing_midnight_splits_across_two_days_that_add_up_to_it(
            zone in any_zone(),
            (first, _) in any_span(),
            // At most 23 hours either side, so the range stays within the two days.
            before in 1i64..=23 * 60 * 60,
            after in 1i64..=23 * 60 * 60,
        ) {
            let (day_start, midnight) = day_bounds(first, &zone);
            let (start, end) = (midnight - Duration::seconds(before), midnight + Duration::seconds(after));
            let now = midnight + Duration::days(3);
            let since = day_start - Duration::days(1);
            // The range as an outage…
            let outage = StatusHistory {
                since,
                initial: ComponentStatus::Operational,
                changes: vec![(start, ComponentStatus::MajorOutage), (end, ComponentStatus::Operational)],
            };
            let days = daily_uptime(&outage, &zone, first, first.next_day().unwrap(), &[], now);
            prop_assert_eq!(days.len(), 2);
            prop_assert_eq!(days[0].totals.major_outage_ms, before * 1000);
            prop_assert_eq!(days[1].totals.major_outage_ms, after * 1000);
            prop_assert_eq!(
                days[0].totals.major_outage_ms + days[1].totals.major_outage_ms,
                ms_between(start, end)
            );
            // …and as a maintenance window.
            let up = StatusHistory { since, initial: ComponentStatus::Operational, changes: vec![] };
            let days = daily_uptime(&up, &zone, first, first.next_day().unwrap(), &[(start, end)], now);
            prop_assert_eq!(days[0].totals.maintenance_ms, before * 1000);
            prop_assert_eq!(days[1].totals.maintenance_ms, after * 1000);
            for d in &days {
                let (s, e) = day_bounds(d.date, &zone);
                prop_assert_eq!(d.totals.considered_ms + d.totals.maintenance_ms, ms_between(s, e));
            }
        }

        #[test]
        fn a_component_younger_than_the_range_counts_only_from_its_start(
            zone in any_zone(),
            (first, last) in any_span(),
            initial in any_status(),
            since_seconds in 0i64..23 * 60 * 60,
            changes in any_changes(),
            w in any_span_windows(),
        ) {
            let (start, _) = day_bounds(first, &zone);
            let (_, end) = day_bounds(last, &zone);
            let range = UptimeRange::new(start, end).unwrap();
            // Within the span's first 23 hours per day, which lie inside it
            // however short its days are.
            let days_in_span = (last - first).whole_days() + 1;
            let since = range.start() + Duration::seconds(since_seconds * days_in_span);
            let anchor = first.midnight().assume_utc();
            let mut h = history_from(anchor, initial, 0, &changes);
            h.since = since;
            let w = windows_from(anchor, &w);
            let days = daily_uptime(&h, &zone, first, last, &w, range.end() + Duration::days(1));
            let total: UptimeTotals = days.iter().map(|d| d.totals).sum();
            prop_assert_eq!(total.considered_ms + total.maintenance_ms, ms_between(since, range.end()));
            prop_assert_eq!(total, uptime_totals(&h, range.start(), range.end(), &w));
            for d in &days {
                if day_bounds(d.date, &zone).1 <= since {
                    prop_assert_eq!(d.totals, UptimeTotals::default());
                    prop_assert_eq!(d.totals.percentage(UptimeWeights::default()), None);
                }
            }
        }

        #[test]
        fn daily_percentages_lie_between_0_and_100(
            zone in any_zone(),
            (first, last) in any_span(),
            initial in any_status(),
            since in SPAN_MINUTES,
            changes in any_changes(),
            w in any_span_windows(),
            now_minutes in -1440i64..42 * 1440,
            weight in 0.0f64..=1.0,
        ) {
            let anchor = first.midnight().assume_utc();
            let h = history_from(anchor, initial, since, &changes);
            let w = windows_from(anchor, &w);
            let now = anchor + Duration::minutes(now_minutes);
            for d in daily_uptime(&h, &zone, first, last, &w, now) {
                if let Some(p) = d.totals.percentage(UptimeWeights { partial_outage: weight }) {
                    prop_assert!((0.0..=100.0).contains(&p), "{p}");
                }
                let (s, e) = day_bounds(d.date, &zone);
                let length = if e.min(now) > s { ms_between(s, e.min(now)) } else { 0 };
                prop_assert!(d.totals.considered_ms + d.totals.maintenance_ms <= length);
                prop_assert!(d.totals.considered_ms >= 0 && d.totals.maintenance_ms >= 0);
            }
        }
    }

    #[test]
    fn a_maintenance_excuses_time_only_once_it_began_and_until_it_ended() {
        let start = datetime!(2026-01-01 10:00 UTC);
        let until = datetime!(2026-01-01 12:00 UTC);
        let now = datetime!(2026-01-01 11:00 UTC);
        let span = MaintenanceSpan {
            started_at: start,
            resolved_at: None,
            scheduled_until: Some(until),
            began: false,
        };
        assert_eq!(span.excused(now), None);
        let open = MaintenanceSpan {
            began: true,
            ..span
        };
        assert_eq!(open.excused(now), Some((start, until)));
        let late = datetime!(2026-01-01 13:00 UTC);
        assert_eq!(open.excused(late), Some((start, late)));
        let done = MaintenanceSpan {
            resolved_at: Some(datetime!(2026-01-01 10:30 UTC)),
            ..open
        };
        assert_eq!(
            done.excused(late),
            Some((start, datetime!(2026-01-01 10:30 UTC)))
        );
    }
}
