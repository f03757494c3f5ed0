//! What an uptime question asks: the range a reader asked for, completed
//! and clamped as Statuspage does (with a warning for each adjustment), how
//! many days a daily series holds, and a component's status history as the
//! uptime arithmetic of [`crate::uptime`] takes it.
//!
//! Reading histories and answering in JSON are not here.

use time::{Date, Duration, OffsetDateTime};

use crate::uptime::{StatusHistory, UptimeRange};
use crate::{Component, ComponentStatus, FieldError, TimeZoneName, day_bounds};

/// How far back a range without a start reaches.
pub const DEFAULT_RANGE: Duration = Duration::days(90);

/// Days in a daily series when the reader names none.
pub const DEFAULT_DAYS: u16 = 90;

/// Most days a daily series holds.
pub const MAX_DAYS: u16 = 366;

/// The range to compute over, from the reader's `start` and `end` (either
/// may be missing), for something that exists since `earliest`, at `now`;
/// with a warning for each adjustment. A missing end is now, and an end in
/// the future becomes now; a missing start is [`DEFAULT_RANGE`] before the
/// end, but not before `earliest` (and at least a second before the end).
/// A start before `earliest` is kept, with a warning: time before it does
/// not count.
pub fn requested_range(
    start: Option<OffsetDateTime>,
    end: Option<OffsetDateTime>,
    earliest: OffsetDateTime,
    now: OffsetDateTime,
) -> Result<(UptimeRange, Vec<String>), FieldError> {
    let mut warnings = Vec::new();
    let mut end = end.unwrap_or(now);
    if end > now {
        end = now;
        warnings.push("end is in the future; the range ends now".to_owned());
    }
    let start = match start {
        Some(s) => {
            if s < earliest {
                warnings.push(
                    "start is before the component existed; time before that does not count"
                        .to_owned(),
                );
            }
            s
        }
        None => (end - DEFAULT_RANGE)
            .max(earliest)
            .min(end - Duration::SECOND),
    };
    Ok((UptimeRange::new(start, end)?, warnings))
}

/// The number of days of a daily series, as asked in `field`: from 1 to
/// [`MAX_DAYS`], [`DEFAULT_DAYS`] when not asked.
pub fn series_days(field: &'static str, days: Option<u16>) -> Result<u16, FieldError> {
    let days = days.unwrap_or(DEFAULT_DAYS);
    if (1..=MAX_DAYS).contains(&days) {
        Ok(days)
    } else {
        Err(FieldError::new(
            field,
            "invalid",
            format!("must be between 1 and {MAX_DAYS}"),
        ))
    }
}

/// When a component's history begins: the start of its start date in the
/// page's zone, or its creation when it has none.
#[must_use]
pub fn history_start(component: &Component, zone: &TimeZoneName) -> OffsetDateTime {
    component
        .start_date
        .map_or(component.created_at, |d: Date| day_bounds(d, zone).0)
}

/// A component's status history from its recorded changes (when, from
/// what, to what; oldest first): it begins at [`history_start`] in the
/// status the first change left, or in its current status when it never
/// changed.
#[must_use]
pub fn status_history(
    component: &Component,
    changes: &[(OffsetDateTime, ComponentStatus, ComponentStatus)],
    zone: &TimeZoneName,
) -> StatusHistory {
    StatusHistory {
        since: history_start(component, zone),
        initial: changes.first().map_or(component.status, |(_, old, _)| *old),
        changes: changes.iter().map(|(at, _, new)| (*at, *new)).collect(),
    }
}

/// When a group's history begins: with its earliest member's, or at its
/// creation when it has none.
#[must_use]
pub fn group_history_start(
    member_starts: impl IntoIterator<Item = OffsetDateTime>,
    created_at: OffsetDateTime,
) -> OffsetDateTime {
    member_starts.into_iter().min().unwrap_or(created_at)
}

#[cfg(test)]
mod tests {
    use time::macros::{date, datetime};

    use super::*;
    use crate::{ComponentId, PageId, Visibility};

    const NOW: OffsetDateTime = datetime!(2026-11-20 12:00 UTC);

    fn component(start_date: Option<Date>) -> Component {
        Component {
            id: ComponentId::new(),
            page_id: PageId::new(),
            group_id: None,
            name: "API".into(),
            description: None,
            status: ComponentStatus::PartialOutage,
            position: 1,
            showcase: true,
            only_show_if_degraded: false,
            start_date,
            visibility: Visibility::Public,
            created_at: datetime!(2026-01-05 09:30 UTC),
            updated_at: datetime!(2026-01-05 09:30 UTC),
        }
    }

    #[test]
    fn a_range_without_bounds_is_the_last_ninety_days() {
        let earliest = datetime!(2020-01-01 0:00 UTC);
        let (range, warnings) = requested_range(None, None, earliest, NOW).unwrap();
        assert_eq!(
            (range.start(), range.end()),
            (NOW - Duration::days(90), NOW)
        );
        assert!(warnings.is_empty());
    }

    #[test]
    fn a_range_without_a_start_begins_no_earlier_than_the_component() {
        let earliest = datetime!(2026-11-01 0:00 UTC);
        let (range, _) = requested_range(None, None, earliest, NOW).unwrap();
        assert_eq!(range.start(), earliest);
        // Created this very second: the range still spans a second.
        let (range, _) = requested_range(None, None, NOW, NOW).unwrap();
        assert_eq!(range.start(), NOW - Duration::SECOND);
    }

    #[test]
    fn an_end_in_the_future_ends_now_with_a_warning() {
        let earliest = datetime!(2020-01-01 0:00 UTC);
        let (range, warnings) =
            requested_range(None, Some(NOW + Duration::days(3)), earliest, NOW).unwrap();
        assert_eq!(range.end(), NOW);
        assert_eq!(warnings, ["end is in the future; the range ends now"]);
    }

    #[test]
    fn a_start_before_the_component_is_kept_with_a_warning() {
        let earliest = datetime!(2026-11-01 0:00 UTC);
        let start = datetime!(2026-10-01 0:00 UTC);
        let (range, warnings) = requested_range(Some(start), None, earliest, NOW).unwrap();
        assert_eq!(range.start(), start);
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].starts_with("start is before the component existed"));
    }

    #[test]
    fn a_start_after_the_end_is_refused() {
        let earliest = datetime!(2020-01-01 0:00 UTC);
        let end = datetime!(2026-11-01 0:00 UTC);
        assert!(requested_range(Some(end + Duration::DAY), Some(end), earliest, NOW).is_err());
    }

    #[test]
    fn a_series_holds_one_to_366_days_ninety_by_default() {
        assert_eq!(series_days("days", None), Ok(90));
        assert_eq!(series_days("days", Some(1)), Ok(1));
        assert_eq!(series_days("days", Some(366)), Ok(366));
        assert_eq!(series_days("days", Some(0)).unwrap_err().code, "invalid");
        assert_eq!(series_days("days", Some(367)).unwrap_err().field, "days");
    }

    #[test]
    fn a_history_begins_at_the_start_date_in_the_pages_zone_or_at_creation() {
        let berlin = TimeZoneName::parse("time_zone", "Europe/Berlin").unwrap();
        assert_eq!(
            history_start(&component(None), &berlin),
            datetime!(2026-01-05 09:30 UTC)
        );
        assert_eq!(
            history_start(&component(Some(date!(2026 - 01 - 01))), &berlin),
            datetime!(2025-12-31 23:00 UTC)
        );
    }

    #[test]
    fn a_history_starts_in_the_status_its_first_change_left() {
        let c = component(None);
        let zone = TimeZoneName::utc();
        let never = status_history(&c, &[], &zone);
        assert_eq!(never.initial, ComponentStatus::PartialOutage);
        assert!(never.changes.is_empty());
        let at = datetime!(2026-02-01 0:00 UTC);
        let changed = status_history(
            &c,
            &[(
                at,
                ComponentStatus::Operational,
                ComponentStatus::PartialOutage,
            )],
            &zone,
        );
        assert_eq!(changed.initial, ComponentStatus::Operational);
        assert_eq!(changed.changes, [(at, ComponentStatus::PartialOutage)]);
        assert_eq!(changed.since, c.created_at);
    }

    #[test]
    fn a_group_history_begins_with_its_earliest_member_or_at_creation() {
        let created = datetime!(2026-03-01 0:00 UTC);
        let a = datetime!(2026-02-01 0:00 UTC);
        let b = datetime!(2026-04-01 0:00 UTC);
        assert_eq!(group_history_start([b, a], created), a);
        assert_eq!(group_history_start([], created), created);
    }
}
