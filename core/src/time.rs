//! The one time module of the core: [`UnixMs`] (a reading of the UTC clock in Unix
//! milliseconds), its text forms (RFC 3339, HTTP-date) and the UTC calendar the monthly request
//! ledger counts in ([`YearMonth`]).
//!
//! The core never reads a clock; callers pass `now` as a [`UnixMs`]. HTTP-dates and RFC 3339
//! parsing are the `time` crate's (without `local-offset`: no clock, no local time zone, so it
//! builds for wasm32); RFC 3339 output is written from the civil calendar below. Month arithmetic uses its own civil-calendar functions because the ledger accepts
//! any `u64` millisecond, far beyond the `time` crate's ±9999 years.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::format_description::BorrowedFormatItem;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

/// Milliseconds since 1970-01-01T00:00:00Z.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct UnixMs(pub i64);

impl UnixMs {
    /// The epoch.
    pub const EPOCH: UnixMs = UnixMs(0);
    /// The latest representable time: "never" for expiries, "newest" for ordering.
    pub const MAX: UnixMs = UnixMs(i64::MAX);

    /// Milliseconds as a signed count.
    pub fn as_i64(self) -> i64 {
        self.0
    }

    /// Milliseconds clamped at 0, for APIs that count from the epoch (calendars, ledgers).
    pub fn as_u64(self) -> u64 {
        self.0.max(0) as u64
    }

    /// Whole seconds since the epoch, clamped at 0.
    pub fn as_secs(self) -> u64 {
        self.as_u64() / 1000
    }

    /// From whole seconds.
    pub fn from_secs(secs: u64) -> Self {
        UnixMs(i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX))
    }

    /// From an unsigned count of milliseconds (file times, S3 dates), saturating.
    pub fn from_ms(ms: u64) -> Self {
        UnixMs(i64::try_from(ms).unwrap_or(i64::MAX))
    }

    /// A `SystemTime` as milliseconds (negative before 1970, saturating). A conversion, not a
    /// clock reading: the drivers read the clock.
    pub fn from_system_time(t: SystemTime) -> Self {
        let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) => UnixMs(ms(d)),
            Err(e) => UnixMs(ms(e.duration()).saturating_neg()),
        }
    }

    /// This time as a `SystemTime` (what the SigV4 signer takes).
    pub fn to_system_time(self) -> SystemTime {
        let d = Duration::from_millis(self.0.unsigned_abs());
        if self.0 >= 0 { UNIX_EPOCH + d } else { UNIX_EPOCH - d }
    }

    /// This time plus `ms` milliseconds, saturating.
    pub fn plus_ms(self, ms: u64) -> Self {
        UnixMs(self.0.saturating_add(i64::try_from(ms).unwrap_or(i64::MAX)))
    }

    /// Milliseconds from `earlier` to `self`, 0 when `earlier` is not earlier.
    pub fn since(self, earlier: UnixMs) -> u64 {
        u64::try_from(self.0.saturating_sub(earlier.0)).unwrap_or(0)
    }

    /// RFC 3339 UTC to the second, e.g. `2026-01-01T00:00:00Z` (clamped at the epoch).
    pub fn rfc3339(self) -> String {
        rfc3339_utc(self.as_secs())
    }

    /// An HTTP-date (IMF-fixdate), e.g. `Sun, 06 Nov 1994 08:49:37 GMT` (clamped to the years
    /// 0000..=9999).
    pub fn http_date(self) -> String {
        let secs = self.0.div_euclid(1000).clamp(MIN_FORMATTED_SECS, MAX_FORMATTED_SECS as i64);
        format_secs(secs, IMF_FIXDATE)
    }

    /// Parses an IMF-fixdate such as `Wed, 21 Oct 2015 07:28:00 GMT` (the only HTTP-date form
    /// S3 and compatible servers send; RFC 850 and asctime dates are refused).
    pub fn parse_http_date(s: &str) -> Option<UnixMs> {
        let t = PrimitiveDateTime::parse(s.trim(), IMF_FIXDATE).ok()?.assume_utc();
        Some(UnixMs::from_offset_date_time(t))
    }

    /// Parses an RFC 3339 UTC time such as `2009-10-12T17:50:30.000Z` (any number of fraction
    /// digits, or none; `Z` or `+00:00`), as ListObjectsV2 writes `LastModified`. Fractions
    /// below a millisecond are cut off.
    pub fn parse_rfc3339(s: &str) -> Option<UnixMs> {
        let s = s.trim();
        // RFC 3339 allows a space or a lower-case `t`/`z`; S3 writes neither.
        if s.as_bytes().get(10) != Some(&b'T') || s.ends_with('z') {
            return None;
        }
        let t = OffsetDateTime::parse(s, &Rfc3339).ok()?;
        if !t.offset().is_utc() {
            return None;
        }
        Some(UnixMs::from_offset_date_time(t))
    }

    fn from_offset_date_time(t: OffsetDateTime) -> UnixMs {
        // Within ±9999 years, so the milliseconds fit an i64.
        UnixMs(t.unix_timestamp_nanos().div_euclid(1_000_000) as i64)
    }
}

impl fmt::Display for UnixMs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.rfc3339())
    }
}

/// The last second the text formats (and the SigV4 signer's date stamps) can write:
/// 9999-12-31T23:59:59Z.
pub const MAX_FORMATTED_SECS: u64 = 253_402_300_799;
/// The first second of the year 0000.
const MIN_FORMATTED_SECS: i64 = -62_167_219_200;

const IMF_FIXDATE: &[BorrowedFormatItem<'static>] = format_description!(
    "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
);

/// Formats unix seconds as RFC 3339 UTC, e.g. `2026-11-28T12:00:00Z` (clamped to the year
/// 9999).
///
/// Written with the core's civil calendar rather than the `time` crate's formatter: the page's
/// module (riderName, token and allowance messages) then carries no format-description
/// machinery, about 25 KB of wasm (bench/notes.md).
pub fn rfc3339_utc(unix_secs: u64) -> String {
    let secs = unix_secs.min(MAX_FORMATTED_SECS);
    let d = civil_from_days((secs / 86_400) as i64);
    let s = secs % 86_400;
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        d.year,
        d.month,
        d.day,
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// `secs` (within the years 0000..=9999) in `format`.
fn format_secs(secs: i64, format: &[BorrowedFormatItem<'_>]) -> String {
    OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| t.format(format).ok())
        // Unreachable: the callers clamp to the range the `time` crate represents.
        .unwrap_or_default()
}

/// Milliseconds in a UTC day (Unix time has no leap seconds).
pub const MS_PER_DAY: u64 = 86_400_000;

/// Days in one 400-year Gregorian era.
const DAYS_PER_ERA: i64 = 146_097;
/// Days from 0000-03-01 (the algorithm's origin) to 1970-01-01.
const EPOCH_SHIFT: i64 = 719_468;

/// A date in the proleptic Gregorian calendar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CivilDate {
    /// Year (astronomical: year 0 exists, 1 BC = 0).
    pub year: i64,
    /// Month, 1..=12.
    pub month: u8,
    /// Day of the month, 1..=31.
    pub day: u8,
}

/// Whether `year` has a 29 February.
pub fn is_leap_year(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

/// Number of days in `month` (1..=12) of `year`; 0 for an invalid month.
pub fn days_in_month(year: i64, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// The date of day `days` since 1970-01-01.
///
/// Howard Hinnant's `civil_from_days`: counting in 400-year eras of 146,097 days starting on
/// 0000-03-01 puts the leap day last in each year; exact for every `i64` day used here.
pub fn civil_from_days(days: i64) -> CivilDate {
    let z = days + EPOCH_SHIFT;
    let era = z.div_euclid(DAYS_PER_ERA);
    let doe = z.rem_euclid(DAYS_PER_ERA); // day of era, 0..=146096
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365; // year of era, 0..=399
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of year from 1 March, 0..=365
    let mp = (5 * doy + 2) / 153; // month from March, 0..=11
    let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let year = yoe + era * 400 + i64::from(month <= 2);
    CivilDate { year, month, day }
}

/// Days since 1970-01-01 of a date. The inverse of [`civil_from_days`] for valid dates.
pub fn days_from_civil(year: i64, month: u8, day: u8) -> i64 {
    let (month, day) = (i64::from(month), i64::from(day));
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * DAYS_PER_ERA + doe - EPOCH_SHIFT
}

/// The UTC date of a Unix time in milliseconds.
pub fn civil_from_unix_ms(at_unix_ms: u64) -> CivilDate {
    // u64::MAX / MS_PER_DAY is about 2.1e11, far inside i64.
    civil_from_days((at_unix_ms / MS_PER_DAY) as i64)
}

/// A calendar month in UTC; serialized as `"YYYY-MM"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct YearMonth {
    year: i32,
    month: u8,
}

/// A month that does not exist, or a string that is not `YYYY-MM`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum YearMonthError {
    /// Month outside 1..=12.
    #[error("month {0} does not exist; use 1..=12")]
    InvalidMonth(u8),
    /// Text that is not `YYYY-MM`.
    #[error("{0:?} is not a month; write it as YYYY-MM, e.g. 2025-01")]
    Malformed(String),
}

impl YearMonth {
    /// A month; `month` must be 1..=12.
    pub fn new(year: i32, month: u8) -> Result<Self, YearMonthError> {
        if (1..=12).contains(&month) {
            Ok(YearMonth { year, month })
        } else {
            Err(YearMonthError::InvalidMonth(month))
        }
    }

    /// The UTC month containing a Unix time in milliseconds.
    pub fn from_unix_ms(at_unix_ms: u64) -> Self {
        let d = civil_from_unix_ms(at_unix_ms);
        // The largest u64 millisecond value is in year ~584 million: it fits an i32.
        YearMonth { year: d.year as i32, month: d.month }
    }

    /// The year.
    pub fn year(self) -> i32 {
        self.year
    }

    /// The month, 1..=12.
    pub fn month(self) -> u8 {
        self.month
    }

    /// The following month.
    pub fn next(self) -> Self {
        if self.month == 12 {
            YearMonth { year: self.year + 1, month: 1 }
        } else {
            YearMonth { year: self.year, month: self.month + 1 }
        }
    }

    /// Unix time in milliseconds of the first instant of this month (negative before 1970;
    /// saturating beyond about ±292 million years, where i64 milliseconds end).
    pub fn start_unix_ms(self) -> i64 {
        days_from_civil(i64::from(self.year), self.month, 1).saturating_mul(MS_PER_DAY as i64)
    }

    /// Number of days in this month.
    pub fn days(self) -> u8 {
        days_in_month(i64::from(self.year), self.month)
    }
}

impl fmt::Display for YearMonth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

impl FromStr for YearMonth {
    type Err = YearMonthError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let malformed = || YearMonthError::Malformed(s.to_string());
        let (y, m) = s.rsplit_once('-').ok_or_else(malformed)?;
        if m.len() != 2 || y.len() < 4 || !m.bytes().all(|b| b.is_ascii_digit()) {
            return Err(malformed());
        }
        let year: i32 = y.parse().map_err(|_| malformed())?;
        let month: u8 = m.parse().map_err(|_| malformed())?;
        YearMonth::new(year, month)
    }
}

impl Serialize for YearMonth {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for YearMonth {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn arithmetic_saturates_and_clamps() {
        assert_eq!(UnixMs::MAX.plus_ms(5), UnixMs::MAX);
        assert_eq!(UnixMs(10).plus_ms(5), UnixMs(15));
        assert_eq!(UnixMs(-5).as_u64(), 0);
        assert_eq!(UnixMs(10).since(UnixMs(3)), 7);
        assert_eq!(UnixMs(3).since(UnixMs(10)), 0);
        assert_eq!(UnixMs::from_secs(2), UnixMs(2000));
        assert_eq!(UnixMs::from_secs(u64::MAX), UnixMs::MAX);
    }

    #[test]
    fn displays_as_rfc3339_and_serializes_as_a_number() {
        assert_eq!(UnixMs(1_767_225_600_000).to_string(), "2026-01-01T00:00:00Z");
        assert_eq!(serde_json::to_string(&UnixMs(42)).unwrap(), "42");
        assert_eq!(serde_json::from_str::<UnixMs>("-1").unwrap(), UnixMs(-1));
    }

    #[test]
    fn system_times_convert_both_ways() {
        let t = UNIX_EPOCH + Duration::from_millis(1_369_353_600_999);
        assert_eq!(UnixMs::from_system_time(t), UnixMs(1_369_353_600_999));
        assert_eq!(UnixMs(1_369_353_600_999).to_system_time(), t);
        let before = UNIX_EPOCH - Duration::from_millis(1500);
        assert_eq!(UnixMs::from_system_time(before), UnixMs(-1500));
        assert_eq!(UnixMs(-1500).to_system_time(), before);
        assert_eq!(UnixMs::from_ms(u64::MAX), UnixMs::MAX);
        assert_eq!(UnixMs::from_ms(7), UnixMs(7));
    }

    #[test]
    fn http_dates_format_and_parse_back() {
        assert_eq!(UnixMs(784_111_777_000).http_date(), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(UnixMs(0).http_date(), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(UnixMs::MAX.http_date(), "Fri, 31 Dec 9999 23:59:59 GMT");
        // Before 1970 is still a time here; the S3 client refuses it (see `http`).
        assert_eq!(
            UnixMs::parse_http_date("Thu, 06 Nov 1969 08:49:37 GMT"),
            Some(UnixMs(-4_806_623_000))
        );
    }

    #[test]
    fn rfc3339_clamps_beyond_the_year_9999() {
        assert_eq!(rfc3339_utc(u64::MAX), "9999-12-31T23:59:59Z");
        assert_eq!(UnixMs::MAX.to_string(), "9999-12-31T23:59:59Z");
        assert_eq!(UnixMs(-1).to_string(), "1970-01-01T00:00:00Z");
    }

    proptest! {
        #[test]
        fn http_dates_round_trip(secs in 0i64..=253_402_300_799) {
            let t = UnixMs(secs * 1000);
            prop_assert_eq!(UnixMs::parse_http_date(&t.http_date()), Some(t));
        }

        #[test]
        fn rfc3339_round_trips(secs in 0u64..=253_402_300_799) {
            let s = rfc3339_utc(secs);
            prop_assert_eq!(UnixMs::parse_rfc3339(&s), Some(UnixMs::from_secs(secs)));
        }
    }

    // Moved from presign/civil.rs.
    mod rfc3339_formatting {
        use super::*;

        #[test]
        fn known_instants() {
            // Values checked with `date -u -d @N +%Y-%m-%dT%H:%M:%SZ`.
            assert_eq!(rfc3339_utc(0), "1970-01-01T00:00:00Z");
            assert_eq!(rfc3339_utc(951_782_400), "2000-02-29T00:00:00Z");
            assert_eq!(rfc3339_utc(1_369_353_600), "2013-05-24T00:00:00Z");
            assert_eq!(rfc3339_utc(1_369_440_000), "2013-05-25T00:00:00Z");
            assert_eq!(rfc3339_utc(1_798_459_200), "2026-12-28T12:00:00Z");
            assert_eq!(rfc3339_utc(4_107_542_399), "2100-02-28T23:59:59Z");
            assert_eq!(rfc3339_utc(4_107_542_400), "2100-03-01T00:00:00Z");
            assert_eq!(rfc3339_utc(253_402_300_799), "9999-12-31T23:59:59Z");
        }

        /// A slow, obviously-correct reference: walk years and months from 1970.
        fn naive(unix_secs: u64) -> String {
            let leap =
                |y: u64| (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400);
            let mut days = unix_secs / 86_400;
            let mut year = 1970;
            loop {
                let len = if leap(year) { 366 } else { 365 };
                if days < len {
                    break;
                }
                days -= len;
                year += 1;
            }
            let lengths =
                [31, if leap(year) { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
            let mut month = 0;
            while days >= lengths[month] {
                days -= lengths[month];
                month += 1;
            }
            let s = unix_secs % 86_400;
            format!(
                "{year:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
                month + 1,
                days + 1,
                s / 3600,
                s / 60 % 60,
                s % 60
            )
        }

        proptest! {
            #[test]
            fn matches_the_naive_calendar(secs in 0u64..=253_402_300_799) {
                prop_assert_eq!(rfc3339_utc(secs), naive(secs));
            }
        }
    }

    // Moved from quota/calendar.rs.
    mod calendar {
        use super::*;

        fn date(year: i64, month: u8, day: u8) -> CivilDate {
            CivilDate { year, month, day }
        }

        #[test]
        fn known_days() {
            assert_eq!(civil_from_days(0), date(1970, 1, 1));
            assert_eq!(civil_from_days(-1), date(1969, 12, 31));
            assert_eq!(civil_from_days(59), date(1970, 3, 1)); // 1970 is not leap
            assert_eq!(civil_from_days(10_957), date(2000, 1, 1));
            assert_eq!(civil_from_days(11_016), date(2000, 2, 29)); // 2000 is leap (divisible by 400)
            assert_eq!(civil_from_days(19_782), date(2024, 2, 29));
            assert_eq!(civil_from_days(19_783), date(2024, 3, 1));
            assert_eq!(days_from_civil(1900, 3, 1) - days_from_civil(1900, 2, 28), 1); // 1900 not leap
            assert_eq!(days_from_civil(2100, 3, 1) - days_from_civil(2100, 2, 28), 1); // 2100 not leap
            assert_eq!(days_from_civil(2000, 3, 1) - days_from_civil(2000, 2, 28), 2);
        }

        #[test]
        fn known_unix_instants() {
            // 2025-01-31T23:59:59.999Z and the next millisecond.
            assert_eq!(civil_from_unix_ms(1_738_367_999_999), date(2025, 1, 31));
            assert_eq!(civil_from_unix_ms(1_738_368_000_000), date(2025, 2, 1));
            // 2024-12-31T23:59:59.999Z and 2025-01-01T00:00:00Z.
            assert_eq!(civil_from_unix_ms(1_735_689_599_999), date(2024, 12, 31));
            assert_eq!(civil_from_unix_ms(1_735_689_600_000), date(2025, 1, 1));
        }

        #[test]
        fn leap_year_rules() {
            assert!(is_leap_year(2024));
            assert!(is_leap_year(2000));
            assert!(!is_leap_year(1900));
            assert!(!is_leap_year(2100));
            assert!(!is_leap_year(2023));
            assert_eq!(days_in_month(2024, 2), 29);
            assert_eq!(days_in_month(2023, 2), 28);
            assert_eq!(days_in_month(2023, 4), 30);
            assert_eq!(days_in_month(2023, 13), 0);
        }

        #[test]
        fn year_month_parse_display_and_serde() {
            let ym: YearMonth = "2025-01".parse().unwrap();
            assert_eq!((ym.year(), ym.month()), (2025, 1));
            assert_eq!(ym.to_string(), "2025-01");
            assert_eq!(serde_json::to_string(&ym).unwrap(), "\"2025-01\"");
            assert_eq!(
                serde_json::from_str::<YearMonth>("\"1999-12\"").unwrap(),
                YearMonth::new(1999, 12).unwrap()
            );
            for bad in
                ["2025-13", "2025-00", "2025-1", "25-01", "2025/01", "", "abcd-ef", "2025-+1"]
            {
                assert!(bad.parse::<YearMonth>().is_err(), "{bad} parsed");
            }
            assert!(serde_json::from_str::<YearMonth>("\"2025-13\"").is_err());
            assert_eq!(YearMonth::new(2025, 0), Err(YearMonthError::InvalidMonth(0)));
        }

        #[test]
        fn next_month_crosses_years() {
            let dec = YearMonth::new(2024, 12).unwrap();
            assert_eq!(dec.next(), YearMonth::new(2025, 1).unwrap());
            assert_eq!(YearMonth::new(2024, 1).unwrap().next(), YearMonth::new(2024, 2).unwrap());
            assert!(dec < dec.next());
        }

        #[test]
        fn month_start_and_length() {
            let feb = YearMonth::new(2024, 2).unwrap();
            assert_eq!(feb.start_unix_ms(), 1_706_745_600_000);
            assert_eq!(feb.days(), 29);
            assert_eq!(feb.next().start_unix_ms() - feb.start_unix_ms(), 29 * MS_PER_DAY as i64);
            assert_eq!(YearMonth::new(1970, 1).unwrap().start_unix_ms(), 0);
            assert!(YearMonth::new(1969, 12).unwrap().start_unix_ms() < 0);
        }

        proptest! {
            #[test]
            fn days_round_trip(days in -1_000_000_000i64..1_000_000_000) {
                let d = civil_from_days(days);
                prop_assert!((1..=12).contains(&d.month));
                prop_assert!(d.day >= 1 && d.day <= days_in_month(d.year, d.month));
                prop_assert_eq!(days_from_civil(d.year, d.month, d.day), days);
            }

            #[test]
            fn consecutive_days_are_consecutive_dates(days in -1_000_000_000i64..1_000_000_000) {
                let a = civil_from_days(days);
                let b = civil_from_days(days + 1);
                if a.day < days_in_month(a.year, a.month) {
                    prop_assert_eq!(b, CivilDate { day: a.day + 1, ..a });
                } else if a.month < 12 {
                    prop_assert_eq!(b, CivilDate { year: a.year, month: a.month + 1, day: 1 });
                } else {
                    prop_assert_eq!(b, CivilDate { year: a.year + 1, month: 1, day: 1 });
                }
            }

            #[test]
            fn month_of_an_instant_contains_it(ms in 0u64..=6_000_000_000_000_000_000) {
                let ym = YearMonth::from_unix_ms(ms);
                prop_assert!(ym.start_unix_ms() as i128 <= ms as i128);
                prop_assert!((ms as i128) < ym.next().start_unix_ms() as i128);
            }
        }
    }

    // Moved from native/src/store/s3/time.rs: what the S3 client reads (before 1970 refused).
    mod s3_dates {
        use super::*;

        fn parse_http_date(s: &str) -> Option<u64> {
            UnixMs::parse_http_date(s).and_then(|t| u64::try_from(t.0).ok())
        }

        fn parse_iso8601(s: &str) -> Option<u64> {
            UnixMs::parse_rfc3339(s).and_then(|t| u64::try_from(t.0).ok())
        }

        #[test]
        fn http_dates() {
            // RFC 9110's example; 1994-11-06T08:49:37Z = 784111777.
            assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), Some(784_111_777_000));
            assert_eq!(parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT"), Some(1_445_412_480_000));
            assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
            assert_eq!(parse_http_date("Tue, 29 Feb 2028 23:59:59 GMT"), Some(1_835_481_599_000));
            for bad in [
                "",
                "Sun, 06 Nov 1994 08:49:37",
                "Sun, 06 Nov 1994 08:49:37 UTC",
                "Sun, 06 Foo 1994 08:49:37 GMT",
                "Sun, 31 Nov 1994 08:49:37 GMT",
                "Sun, 29 Feb 2027 08:49:37 GMT",
                "Sun, 06 Nov 1994 24:00:00 GMT",
                "Sunday, 06-Nov-94 08:49:37 GMT",
                "Sun, 06 Nov 1969 08:49:37 GMT",
            ] {
                assert_eq!(parse_http_date(bad), None, "{bad}");
            }
        }

        #[test]
        fn iso_dates() {
            assert_eq!(parse_iso8601("2009-10-12T17:50:30.000Z"), Some(1_255_369_830_000));
            assert_eq!(parse_iso8601("2009-10-12T17:50:30.5Z"), Some(1_255_369_830_500));
            assert_eq!(parse_iso8601("2009-10-12T17:50:30.123456789Z"), Some(1_255_369_830_123));
            assert_eq!(parse_iso8601("2009-10-12T17:50:30Z"), Some(1_255_369_830_000));
            assert_eq!(parse_iso8601("2009-10-12T17:50:30+00:00"), Some(1_255_369_830_000));
            for bad in [
                "2009-10-12T17:50:30",
                "2009-10-12 17:50:30Z",
                "2009-13-12T17:50:30Z",
                "2009-10-12T17:50:30.x1Z",
                "2009-10-12T17:50Z",
            ] {
                assert_eq!(parse_iso8601(bad), None, "{bad}");
            }
        }

        #[test]
        fn civil_days_agree_with_a_day_by_day_walk() {
            let mut days = 0i64;
            for year in 1970..2100 {
                for month in 1..=12 {
                    for day in 1..=days_in_month(year, month) {
                        assert_eq!(days_from_civil(year, month, day), days);
                        days += 1;
                    }
                }
            }
        }
    }
}
