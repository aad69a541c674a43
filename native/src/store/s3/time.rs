//! The two date formats S3 answers with, as unix milliseconds: HTTP dates in headers
//! (`Last-Modified`) and ISO 8601 in ListObjectsV2 (`LastModified`).

/// Parses an IMF-fixdate such as `Wed, 21 Oct 2015 07:28:00 GMT` (the only HTTP-date form
/// S3 and compatible servers send).
pub(crate) fn parse_http_date(s: &str) -> Option<u64> {
    let rest = s.trim().split_once(", ")?.1;
    let mut parts = rest.split(' ');
    let day: u32 = parts.next()?.parse().ok()?;
    let month = match parts.next()? {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let year: i64 = parts.next()?.parse().ok()?;
    let (h, m, sec) = parse_hms(parts.next()?)?;
    if parts.next()? != "GMT" || parts.next().is_some() {
        return None;
    }
    to_unix_ms(year, month, day, h, m, sec, 0)
}

/// Parses `2009-10-12T17:50:30.000Z` (any number of fraction digits, or none; UTC only).
pub(crate) fn parse_iso8601(s: &str) -> Option<u64> {
    let s = s.trim();
    let s = s.strip_suffix('Z').or_else(|| s.strip_suffix("+00:00"))?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.split('-');
    let year: i64 = d.next()?.parse().ok()?;
    let month: u32 = d.next()?.parse().ok()?;
    let day: u32 = d.next()?.parse().ok()?;
    if d.next().is_some() {
        return None;
    }
    let (hms, fraction) = match time.split_once('.') {
        Some((hms, f)) => (hms, f),
        None => (time, ""),
    };
    if !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Milliseconds: the first three digits, padded.
    let ms = format!("{fraction:0<3}")[..3].parse::<u64>().ok()?;
    let (h, m, sec) = parse_hms(hms)?;
    to_unix_ms(year, month, day, h, m, sec, ms)
}

fn parse_hms(s: &str) -> Option<(u32, u32, u32)> {
    let mut t = s.split(':');
    let h = t.next()?.parse().ok()?;
    let m = t.next()?.parse().ok()?;
    let sec = t.next()?.parse().ok()?;
    if t.next().is_some() {
        return None;
    }
    Some((h, m, sec))
}

fn to_unix_ms(year: i64, month: u32, day: u32, h: u32, m: u32, s: u32, ms: u64) -> Option<u64> {
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    // 60 allows a leap second, which unix time folds into the next second.
    if h > 23 || m > 59 || s > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + i64::from(h * 3600 + m * 60 + s);
    u64::try_from(secs).ok().map(|secs| secs * 1000 + ms)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

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
