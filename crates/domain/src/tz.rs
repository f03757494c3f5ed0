//! IANA time zones, for the calendar days a page shows.
//!
//! A page's daily uptime bars are calendar days where its readers are, so a
//! day's bounds depend on the page's zone: a day is 23 or 25 hours long when
//! the clocks change, and in a few zones it does not start at midnight.
//!
//! Public types stay those of the `time` crate, like the rest of the crate;
//! `jiff` is used only inside this module, for its time-zone database. That
//! database is bundled into the binary, so a day's bounds do not depend on the
//! host's `/usr/share/zoneinfo` and cannot change while the process runs.

use std::fmt;

use jiff::tz::TimeZone;
use serde::Serialize;
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, UtcOffset};

use crate::FieldError;

/// A time zone of the IANA database, by name (`Europe/Berlin`,
/// `America/New_York`, `Etc/UTC`), spelled as the database spells it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct TimeZoneName(String);

impl TimeZoneName {
    /// Parses a zone name given in the field `field`.
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, FieldError> {
        let s = raw.trim();
        let invalid = || {
            FieldError::new(
                field,
                "invalid",
                "is not an IANA time zone, e.g. Europe/Berlin",
            )
        };
        if s.is_empty() {
            return Err(invalid());
        }
        let zone = TimeZone::get(s).map_err(|_| invalid())?;
        // jiff answers `Etc/Unknown` (CLDR's "no zone") with a placeholder
        // zone; a page needs a real one.
        if zone.is_unknown() {
            return Err(invalid());
        }
        // The lookup ignores case; keeping the database's spelling makes
        // equal zones compare equal and show the same everywhere.
        Ok(Self(zone.iana_name().unwrap_or(s).to_owned()))
    }

    /// `Etc/UTC`, the zone of a page that has not chosen one.
    #[must_use]
    pub fn utc() -> Self {
        Self("Etc/UTC".to_owned())
    }

    /// The zone's name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The zone's rules.
    pub(crate) fn rules(&self) -> TimeZone {
        // The name was found in the bundled database when parsed, and that
        // database cannot change, so this lookup succeeds; UTC only spares
        // callers a `Result` that can never be an error.
        TimeZone::get(&self.0).unwrap_or(TimeZone::UTC)
    }
}

impl fmt::Display for TimeZoneName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The UTC instants where `date` starts and ends in `zone`, as `[start, end)`.
///
/// A day is 24 hours long except when the clocks change (23 or 25 hours in
/// most zones). Where midnight does not exist (the clocks jump from 00:00),
/// the day starts at the first instant that does. The end of a day is the
/// start of the next, so consecutive days tile time with no gap or overlap.
#[must_use]
pub fn day_bounds(date: Date, zone: &TimeZoneName) -> (OffsetDateTime, OffsetDateTime) {
    bounds(date, &zone.rules())
}

/// The calendar date in `zone` at the instant `at`.
#[must_use]
pub fn local_date(at: OffsetDateTime, zone: &TimeZoneName) -> Date {
    date_at(at, &zone.rules())
}

/// The offset from UTC in `zone` at the instant `at`, and the abbreviation
/// the time-zone database gives it (`EST`, `CEST`, `IST`; some zones have
/// only numeric ones, such as `-03`), for showing a time to people.
#[must_use]
pub fn offset_at(at: OffsetDateTime, zone: &TimeZoneName) -> (UtcOffset, String) {
    let Ok(ts) = jiff::Timestamp::from_nanosecond(at.unix_timestamp_nanos()) else {
        // Only instants near the ends of the calendar (years ±9999) are
        // outside jiff's range.
        return (UtcOffset::UTC, "UTC".to_owned());
    };
    let rules = zone.rules();
    let info = rules.to_offset_info(ts);
    let offset = UtcOffset::from_whole_seconds(info.offset().seconds()).unwrap_or(UtcOffset::UTC);
    (offset, info.abbreviation().to_owned())
}

/// The instant a wall-clock time `local` names in `zone`, for a time a
/// person typed in the zone of their page.
///
/// When the clocks go back, a local time happens twice: the earlier instant
/// is taken (a window starts no later than the person could have meant).
/// When they go forward, a local time never happens: it is refused in
/// `field`, saying so, rather than moved to a time nobody typed.
pub fn local_to_utc(
    field: &'static str,
    local: PrimitiveDateTime,
    zone: &TimeZoneName,
) -> Result<OffsetDateTime, FieldError> {
    let invalid = || FieldError::new(field, "invalid", "is not a time that can be placed");
    let civil = to_civil(local.date())
        .and_then(|d| {
            jiff::civil::Time::new(
                i8::try_from(local.hour()).ok()?,
                i8::try_from(local.minute()).ok()?,
                i8::try_from(local.second()).ok()?,
                0,
            )
            .ok()
            .map(|t| d.to_datetime(t))
        })
        .ok_or_else(invalid)?;
    let ambiguous = zone.rules().to_ambiguous_timestamp(civil);
    if let jiff::tz::AmbiguousOffset::Gap { .. } = ambiguous.offset() {
        return Err(FieldError::new(
            field,
            "nonexistent",
            format!(
                "does not exist in {zone}: the clocks skip this time when they change; choose a time outside the change"
            ),
        ));
    }
    let ts = ambiguous.earlier().map_err(|_| invalid())?;
    OffsetDateTime::from_unix_timestamp_nanos(ts.as_nanosecond()).map_err(|_| invalid())
}

/// The wall-clock time in `zone` at the instant `at`.
#[must_use]
pub fn utc_to_local(at: OffsetDateTime, zone: &TimeZoneName) -> PrimitiveDateTime {
    let (offset, _) = offset_at(at, zone);
    let local = at.checked_to_offset(offset).unwrap_or(at);
    PrimitiveDateTime::new(local.date(), local.time())
}

/// [`day_bounds`], for callers that looked the zone up once for many days.
pub(crate) fn bounds(date: Date, zone: &TimeZone) -> (OffsetDateTime, OffsetDateTime) {
    let end = date.next_day().map_or_else(
        || PrimitiveDateTime::MAX.assume_utc(),
        |next| start_of(next, zone),
    );
    (start_of(date, zone), end)
}

/// [`local_date`], for callers that looked the zone up once.
pub(crate) fn date_at(at: OffsetDateTime, zone: &TimeZone) -> Date {
    jiff::Timestamp::from_nanosecond(at.unix_timestamp_nanos())
        .ok()
        .and_then(|ts| from_civil(zone.to_datetime(ts).date()))
        // Only instants within a day of the ends of the calendar (years
        // ±9999) are outside jiff's range; their UTC date is close enough.
        .unwrap_or_else(|| at.checked_to_offset(UtcOffset::UTC).unwrap_or(at).date())
}

/// The first instant of `date` in `zone`.
fn start_of(date: Date, zone: &TimeZone) -> OffsetDateTime {
    to_civil(date)
        // `to_zoned` resolves a midnight that falls in a gap to the instant
        // right after the gap: the first one of the day that exists.
        .and_then(|d| d.to_zoned(zone.clone()).ok())
        .and_then(|z| OffsetDateTime::from_unix_timestamp_nanos(z.timestamp().as_nanosecond()).ok())
        // Only dates at the ends of the calendar (years ±9999) cannot be
        // placed in a zone; UTC midnight keeps days in order there.
        .unwrap_or_else(|| date.midnight().assume_utc())
}

fn to_civil(date: Date) -> Option<jiff::civil::Date> {
    jiff::civil::Date::new(
        i16::try_from(date.year()).ok()?,
        i8::try_from(u8::from(date.month())).ok()?,
        i8::try_from(date.day()).ok()?,
    )
    .ok()
}

fn from_civil(date: jiff::civil::Date) -> Option<Date> {
    Date::from_calendar_date(
        i32::from(date.year()),
        Month::try_from(u8::try_from(date.month()).ok()?).ok()?,
        u8::try_from(date.day()).ok()?,
    )
    .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use time::Duration;
    use time::macros::{date, datetime};

    fn zone(name: &str) -> TimeZoneName {
        TimeZoneName::parse("time_zone", name).unwrap()
    }

    #[test]
    fn berlin_days_are_23_and_25_hours_long_when_the_clocks_change() {
        let berlin = zone("Europe/Berlin");
        let (start, end) = day_bounds(date!(2026 - 03 - 29), &berlin);
        assert_eq!(start, datetime!(2026-03-28 23:00 UTC));
        assert_eq!(end - start, Duration::hours(23));
        let (start, end) = day_bounds(date!(2026 - 10 - 25), &berlin);
        assert_eq!(start, datetime!(2026-10-24 22:00 UTC));
        assert_eq!(end - start, Duration::hours(25));
        let (start, end) = day_bounds(date!(2026 - 07 - 01), &berlin);
        assert_eq!(end - start, Duration::hours(24));
    }

    #[test]
    fn a_new_york_day_starts_at_five_utc_in_winter() {
        let (start, end) = day_bounds(date!(2026 - 01 - 15), &zone("America/New_York"));
        assert_eq!(start, datetime!(2026-01-15 05:00 UTC));
        assert_eq!(end, datetime!(2026-01-16 05:00 UTC));
    }

    #[test]
    fn a_utc_day_runs_from_midnight_to_midnight() {
        let (start, end) = day_bounds(date!(2026 - 03 - 29), &TimeZoneName::utc());
        assert_eq!(start, datetime!(2026-03-29 00:00 UTC));
        assert_eq!(end, datetime!(2026-03-30 00:00 UTC));
    }

    #[test]
    fn a_day_without_a_midnight_starts_at_the_first_instant_that_exists() {
        // Havana moved its clocks from 00:00 to 01:00 on 2025-03-09.
        let (start, end) = day_bounds(date!(2025 - 03 - 09), &zone("America/Havana"));
        assert_eq!(start, datetime!(2025-03-09 05:00 UTC));
        assert_eq!(end - start, Duration::hours(23));
    }

    #[test]
    fn half_past_eleven_utc_is_already_the_next_day_in_berlin() {
        let berlin = zone("Europe/Berlin");
        assert_eq!(
            local_date(datetime!(2026-11-01 23:30 UTC), &berlin),
            date!(2026 - 11 - 02)
        );
        assert_eq!(
            local_date(datetime!(2026-11-01 22:30 UTC), &berlin),
            date!(2026 - 11 - 01)
        );
        // The offset an instant is given in does not matter, only the instant.
        assert_eq!(
            local_date(datetime!(2026-11-01 18:30 -05:00), &berlin),
            date!(2026 - 11 - 02)
        );
    }

    #[test]
    fn new_york_is_est_in_winter_and_edt_in_summer() {
        let ny = zone("America/New_York");
        let (offset, abbreviation) = offset_at(datetime!(2026-01-15 12:00 UTC), &ny);
        assert_eq!((offset.whole_hours(), abbreviation.as_str()), (-5, "EST"));
        let (offset, abbreviation) = offset_at(datetime!(2026-07-15 12:00 UTC), &ny);
        assert_eq!((offset.whole_hours(), abbreviation.as_str()), (-4, "EDT"));
        let (offset, abbreviation) =
            offset_at(datetime!(2026-07-15 12:00 UTC), &TimeZoneName::utc());
        assert_eq!((offset, abbreviation.as_str()), (UtcOffset::UTC, "UTC"));
    }

    #[test]
    fn zone_names_are_trimmed_and_spelled_as_the_database_spells_them() {
        assert_eq!(zone(" Europe/Berlin ").as_str(), "Europe/Berlin");
        assert_eq!(zone("europe/berlin").as_str(), "Europe/Berlin");
        assert_eq!(zone("Etc/UTC"), TimeZoneName::utc());
        assert_eq!(TimeZoneName::utc().to_string(), "Etc/UTC");
        assert_eq!(
            serde_json::to_string(&zone("Asia/Kolkata")).ok(),
            Some("\"Asia/Kolkata\"".to_owned())
        );
    }

    #[test]
    fn unknown_zone_names_are_refused() {
        for bad in [
            "",
            "   ",
            "Europe/Berlinn",
            "Mars/Olympus_Mons",
            "Etc/Unknown",
            "+02:00",
            "CET-1CEST,M3.5.0,M10.5.0/3",
            "../../etc/passwd",
            "/usr/share/zoneinfo/Europe/Berlin",
        ] {
            let err = TimeZoneName::parse("time_zone", bad).unwrap_err();
            assert_eq!((err.field, err.code), ("time_zone", "invalid"), "{bad:?}");
            assert_eq!(err.message, "is not an IANA time zone, e.g. Europe/Berlin");
        }
    }

    #[test]
    fn a_paris_wall_clock_time_is_placed_by_the_offset_of_its_date() {
        let paris = zone("Europe/Paris");
        assert_eq!(
            local_to_utc("t", datetime!(2026-07-15 10:00), &paris).unwrap(),
            datetime!(2026-07-15 08:00 UTC)
        );
        assert_eq!(
            local_to_utc("t", datetime!(2026-01-15 10:00), &paris).unwrap(),
            datetime!(2026-01-15 09:00 UTC)
        );
        assert_eq!(
            local_to_utc("t", datetime!(2026-01-15 10:00), &TimeZoneName::utc()).unwrap(),
            datetime!(2026-01-15 10:00 UTC)
        );
    }

    #[test]
    fn a_time_that_happens_twice_is_the_earlier_one() {
        // Paris goes from 03:00 CEST back to 02:00 CET on 2026-10-25.
        let paris = zone("Europe/Paris");
        assert_eq!(
            local_to_utc("t", datetime!(2026-10-25 02:30), &paris).unwrap(),
            datetime!(2026-10-25 00:30 UTC)
        );
    }

    #[test]
    fn a_time_the_clocks_skip_is_refused_saying_so() {
        // Paris goes from 02:00 CET to 03:00 CEST on 2026-03-29.
        let paris = zone("Europe/Paris");
        let err = local_to_utc("scheduled_for", datetime!(2026-03-29 02:30), &paris).unwrap_err();
        assert_eq!((err.field, err.code), ("scheduled_for", "nonexistent"));
        assert!(
            err.message.contains("does not exist in Europe/Paris"),
            "{}",
            err.message
        );
        assert_eq!(
            local_to_utc("t", datetime!(2026-03-29 03:00), &paris).unwrap(),
            datetime!(2026-03-29 01:00 UTC)
        );
    }

    #[test]
    fn an_instant_reads_back_as_the_wall_clock_time_it_was_typed_as() {
        let ny = zone("America/New_York");
        let at = local_to_utc("t", datetime!(2026-07-04 09:15), &ny).unwrap();
        assert_eq!(at, datetime!(2026-07-04 13:15 UTC));
        assert_eq!(utc_to_local(at, &ny), datetime!(2026-07-04 09:15));
    }

    proptest! {
        #[test]
        fn a_day_holds_exactly_the_instants_whose_local_date_it_is(
            name in prop::sample::select(vec![
                "Etc/UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata",
                "Australia/Lord_Howe", "Pacific/Chatham", "America/Havana",
            ]),
            day in 0i64..1500,
        ) {
            let zone = zone(name);
            let date = date!(2024 - 01 - 01) + Duration::days(day);
            let (start, end) = day_bounds(date, &zone);
            prop_assert!(end - start >= Duration::hours(22) && end - start <= Duration::hours(26));
            prop_assert_eq!(local_date(start, &zone), date);
            prop_assert_eq!(local_date(end - Duration::nanoseconds(1), &zone), date);
            prop_assert_eq!(local_date(end, &zone), date.next_day().unwrap());
            prop_assert_eq!(day_bounds(date.next_day().unwrap(), &zone).0, end);
        }
    }
}
