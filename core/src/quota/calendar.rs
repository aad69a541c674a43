//! UTC calendar arithmetic for the monthly request budget (no chrono: the core stays small).
//!
//! Days are counted from the Unix epoch (1970-01-01 = day 0) in the proleptic Gregorian
//! calendar, using Howard Hinnant's `civil_from_days` / `days_from_civil` algorithms, which
//! are exact for every representable day (they work in 400-year eras of 146,097 days).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

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
        for bad in ["2025-13", "2025-00", "2025-1", "25-01", "2025/01", "", "abcd-ef", "2025-+1"] {
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
