//! The two time formats of an export: `activities.csv`'s English UTC date and the ISO 8601
//! times of GPX and TCX.

const MONTHS: [&str; 12] =
    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// `May 1, 2024, 4:30:12 AM` (UTC, as Strava writes it) as `2024-05-01T04:30:12Z`.
pub(crate) fn strava_csv_date(s: &str) -> Option<String> {
    let mut parts = s.split(',').map(str::trim);
    let (month_day, year, clock) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let (month, day) = month_day.split_once(' ')?;
    let month = MONTHS.iter().position(|m| month.starts_with(m))? + 1;
    let day: u32 = day.trim().parse().ok()?;
    let year: u32 = year.parse().ok()?;
    let (hms, ampm) = clock.split_once(' ')?;
    let mut hms = hms.split(':').map(|p| p.parse::<u32>().ok());
    let (h, m, sec) = (hms.next()??, hms.next()??, hms.next()??);
    if hms.next().is_some() || !(1..=12).contains(&h) || m > 59 || sec > 60 {
        return None;
    }
    let h = match ampm.trim() {
        "AM" => h % 12,
        "PM" => h % 12 + 12,
        _ => return None,
    };
    if !(1..=31).contains(&day) || !(1000..=9999).contains(&year) {
        return None;
    }
    Some(format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{sec:02}Z"))
}

/// An ISO 8601 time (`2024-05-01T04:30:12Z`, `...12.5Z`, `...12+02:00`) as Unix seconds.
pub(crate) fn iso8601(s: &str) -> Option<f64> {
    let s = s.trim();
    let b = s.as_bytes();
    if b.len() < 19
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let t = s.get(r)?;
        t.bytes().all(|c| c.is_ascii_digit()).then(|| t.parse().ok())?
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut rest = &s[19..];
    let mut frac = 0.0;
    if let Some(r) = rest.strip_prefix('.') {
        let digits = r.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 9 {
            return None;
        }
        frac = format!("0.{}", &r[..digits]).parse().ok()?;
        rest = &r[digits..];
    }
    let offset = match rest {
        "" | "Z" => 0i64,
        _ => {
            let sign = match rest.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let z = &rest[1..];
            let (oh, om) = match z.len() {
                5 if z.as_bytes()[2] == b':' => (&z[0..2], &z[3..5]),
                4 => (&z[0..2], &z[2..4]),
                2 => (z, "00"),
                _ => return None,
            };
            let (oh, om): (i64, i64) = (oh.parse().ok()?, om.parse().ok()?);
            if oh > 23 || om > 59 {
                return None;
            }
            sign * (oh * 3600 + om * 60)
        }
    };
    let days = crate::time::days_from_civil(y as i64, mo as u8, d as u8);
    let secs = days * 86_400 + (h * 3600 + mi * 60 + sec) as i64 - offset;
    Some(secs as f64 + frac)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strava_dates_become_utc_timestamps() {
        assert_eq!(
            strava_csv_date("May 1, 2024, 4:30:12 AM").as_deref(),
            Some("2024-05-01T04:30:12Z")
        );
        assert_eq!(
            strava_csv_date("Dec 31, 2023, 12:05:00 PM").as_deref(),
            Some("2023-12-31T12:05:00Z")
        );
        assert_eq!(
            strava_csv_date("Jan 2, 2023, 12:00:01 AM").as_deref(),
            Some("2023-01-02T00:00:01Z")
        );
        for bad in [
            "",
            "May 1, 2024",
            "Foo 1, 2024, 4:30:12 AM",
            "May 1, 2024, 13:30:12 PM",
            "May 1, 2024, 4:30 AM",
        ] {
            assert_eq!(strava_csv_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn iso_times_are_unix_seconds() {
        assert_eq!(iso8601("1970-01-01T00:00:00Z"), Some(0.0));
        assert_eq!(iso8601("2024-05-01T04:30:12Z"), Some(1_714_537_812.0));
        assert_eq!(iso8601("2024-05-01T06:30:12+02:00"), Some(1_714_537_812.0));
        assert_eq!(iso8601("2024-05-01T04:30:12.250Z"), Some(1_714_537_812.25));
        for bad in [
            "",
            "2024-05-01",
            "2024-13-01T00:00:00Z",
            "2024-05-01T04:30:12+2",
            "2024-05-01T04:30:12.Z",
        ] {
            assert_eq!(iso8601(bad), None, "{bad}");
        }
    }
}
