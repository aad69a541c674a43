//! Parsers for single values: booleans, sizes, whole numbers, endpoint URLs, bucket names,
//! regions. Each returns the [`ProblemKind`] on failure; the caller adds the variable and fix.

use std::fmt;

use super::problem::ProblemKind;

/// Parses `true/false/1/0/yes/no`, case-insensitively.
pub(crate) fn parse_bool(value: &str) -> Result<bool, ProblemKind> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(ProblemKind::NotBool),
    }
}

/// Parses a positive decimal amount of `unit` bytes (e.g. `4.5` GiB) into whole bytes,
/// rounding down so a limit never exceeds what was asked. `max_units` bounds the value.
pub(crate) fn parse_size(value: &str, unit: u64, max_units: f64) -> Result<u64, ProblemKind> {
    // f64's parser also takes "inf", "NaN" and exponents; accept plain decimals only, so that
    // what the user wrote is what they get.
    let plain = !value.is_empty()
        && value.chars().all(|c| c.is_ascii_digit() || c == '.' || c == '-' || c == '+')
        && value.chars().filter(|&c| c == '.').count() <= 1
        && value.chars().any(|c| c.is_ascii_digit());
    let number: f64 = if plain {
        value.parse().map_err(|_| ProblemKind::NotNumber)?
    } else {
        return Err(ProblemKind::NotNumber);
    };
    if !number.is_finite() {
        return Err(ProblemKind::NotNumber);
    }
    if number <= 0.0 {
        return Err(ProblemKind::NotPositive);
    }
    if number > max_units {
        return Err(ProblemKind::OutOfRange {
            min: "more than 0".into(),
            max: trim_float(max_units),
        });
    }
    let bytes = (number * unit as f64).floor();
    if bytes < 1.0 {
        return Err(ProblemKind::NotPositive);
    }
    Ok(bytes as u64)
}

/// `5120` rather than `5120.0`, `4.5` as is.
fn trim_float(x: f64) -> String {
    if x.fract() == 0.0 { format!("{}", x as u64) } else { format!("{x}") }
}

/// Parses a whole number in `min..=max`.
pub(crate) fn parse_whole(value: &str, min: u64, max: u64) -> Result<u64, ProblemKind> {
    let digits = value.strip_prefix('+').unwrap_or(value);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        // All digits: either in range, or too large for any integer type.
        return match digits.parse::<u64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(ProblemKind::OutOfRange { min: min.to_string(), max: max.to_string() }),
        };
    }
    match value.parse::<f64>() {
        Ok(x) if x.is_finite() && x.fract() == 0.0 => {
            // A negative whole number, or one written like "5.0".
            if x < min as f64 || x > max as f64 {
                Err(ProblemKind::OutOfRange { min: min.to_string(), max: max.to_string() })
            } else {
                Err(ProblemKind::NotWholeNumber)
            }
        }
        Ok(x) if x.is_finite() => Err(ProblemKind::NotWholeNumber),
        _ => Err(ProblemKind::NotNumber),
    }
}

/// `http` or `https`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    /// Plain HTTP (a local S3-compatible server).
    Http,
    /// HTTPS.
    Https,
}

/// A validated S3-compatible endpoint: `http(s)://host[:port]`, nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    scheme: Scheme,
    host: String,
    port: Option<u16>,
}

impl Endpoint {
    /// Parses `http(s)://host[:port]` (an optional trailing `/` is allowed). The host is a DNS
    /// name, an IPv4 address or a bracketed IPv6 address; user info, paths, queries and
    /// fragments are rejected (they would be silently dropped or break request signing).
    pub fn parse(value: &str) -> Result<Endpoint, String> {
        let lower = value.to_ascii_lowercase();
        let (scheme, rest) = if let Some(r) = lower.strip_prefix("https://") {
            (Scheme::Https, r)
        } else if let Some(r) = lower.strip_prefix("http://") {
            (Scheme::Http, r)
        } else {
            return Err("it must start with http:// or https://".into());
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains('/') {
            return Err("it must not have a path; give only scheme, host and port".into());
        }
        if authority.contains(['?', '#']) {
            return Err("it must not have a query or fragment".into());
        }
        if authority.contains('@') {
            return Err("it must not contain user info; credentials go in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY".into());
        }
        let (host, port) = split_host_port(authority)?;
        validate_host(host)?;
        Ok(Endpoint { scheme, host: host.to_string(), port })
    }

    /// The scheme.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The host (lowercase; IPv6 in brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The explicit port, if any.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// `host` or `host:port`, as sent in the `Host` header.
    pub fn authority(&self) -> String {
        match self.port {
            Some(p) => format!("{}:{p}", self.host),
            None => self.host.clone(),
        }
    }

    /// The URL without a trailing slash, e.g. `http://127.0.0.1:8333`.
    pub fn url(&self) -> String {
        let scheme = match self.scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
        };
        format!("{scheme}://{}", self.authority())
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url())
    }
}

fn split_host_port(authority: &str) -> Result<(&str, Option<u16>), String> {
    let (host, port) = if authority.starts_with('[') {
        let end = authority.find(']').ok_or("the IPv6 address is missing its closing ']'")?;
        let (host, after) = authority.split_at(end + 1);
        match after {
            "" => (host, None),
            p if p.starts_with(':') => (host, Some(&p[1..])),
            _ => return Err("unexpected text after the IPv6 address".into()),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 && p.bytes().all(|b| b.is_ascii_digit()) => Some(n),
            _ => return Err(format!("the port {p:?} is not a number from 1 to 65535")),
        },
    };
    Ok((host, port))
}

fn validate_host(host: &str) -> Result<(), String> {
    if host.is_empty() {
        return Err("the host is missing".into());
    }
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return if inner.parse::<core::net::Ipv6Addr>().is_ok() {
            Ok(())
        } else {
            Err("the bracketed host is not an IPv6 address".into())
        };
    }
    if host.len() > 253 {
        return Err("the host name is longer than 253 characters".into());
    }
    // DNS names (underscores allowed: container names such as `seaweed_s3` use them).
    for label in host.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            return Err(format!("the host {host:?} is not a valid host name or IP address"));
        }
    }
    Ok(())
}

/// Checks an S3 bucket name against the AWS naming rules.
pub(crate) fn validate_bucket(name: &str) -> Result<(), String> {
    if !(3..=63).contains(&name.len()) {
        return Err(format!("it is {} characters long; bucket names have 3 to 63", name.len()));
    }
    if !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
    {
        return Err("bucket names use only lowercase letters, digits, '.' and '-'".into());
    }
    let first = name.as_bytes()[0];
    let last = name.as_bytes()[name.len() - 1];
    if !first.is_ascii_alphanumeric() || !last.is_ascii_alphanumeric() {
        return Err("bucket names start and end with a letter or digit".into());
    }
    if name.contains("..") || name.contains(".-") || name.contains("-.") {
        return Err("bucket names have no '..', '.-' or '-.'".into());
    }
    if name.parse::<core::net::Ipv4Addr>().is_ok() {
        return Err("bucket names must not look like an IP address".into());
    }
    Ok(())
}

/// Checks a region name: ASCII letters, digits, `-` and `_`, at most 64 characters (AWS
/// regions such as `eu-west-1`, and the free-form names S3-compatible servers use, e.g. `garage`).
pub(crate) fn validate_region(region: &str) -> Result<(), String> {
    if region.len() > 64 {
        return Err("it is longer than 64 characters".into());
    }
    if !region.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        return Err("regions use only letters, digits, '-' and '_' (e.g. us-east-1)".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans() {
        for t in ["true", "TRUE", "True", "1", "yes", "YES", "Yes"] {
            assert_eq!(parse_bool(t), Ok(true), "{t}");
        }
        for f in ["false", "FALSE", "0", "no", "No"] {
            assert_eq!(parse_bool(f), Ok(false), "{f}");
        }
        for bad in ["ture", "on", "off", "y", "n", "2", "-1", "t", "enabled"] {
            assert_eq!(parse_bool(bad), Err(ProblemKind::NotBool), "{bad}");
        }
    }

    #[test]
    fn sizes() {
        const MIB: u64 = 1024 * 1024;
        assert_eq!(parse_size("50", MIB, 1e6), Ok(50 * MIB));
        assert_eq!(parse_size("0.5", MIB, 1e6), Ok(MIB / 2));
        assert_eq!(parse_size("4.5", 1024 * MIB, 1e6), Ok(4_831_838_208));
        assert_eq!(parse_size("+2", MIB, 1e6), Ok(2 * MIB));
        assert_eq!(parse_size(".5", MIB, 1e6), Ok(MIB / 2));
        // Rounded down: 0.1 MiB is 104,857.6 bytes.
        assert_eq!(parse_size("0.1", MIB, 1e6), Ok(104_857));
        assert_eq!(parse_size("0", MIB, 1e6), Err(ProblemKind::NotPositive));
        assert_eq!(parse_size("-1", MIB, 1e6), Err(ProblemKind::NotPositive));
        assert_eq!(parse_size("-0", MIB, 1e6), Err(ProblemKind::NotPositive));
        assert_eq!(parse_size("0.0000000001", MIB, 1e6), Err(ProblemKind::NotPositive));
        for bad in ["abc", "NaN", "inf", "-inf", "1e3", "50MB", "5,5", "", ".", "1.2.3", "--1"] {
            assert_eq!(parse_size(bad, MIB, 1e6), Err(ProblemKind::NotNumber), "{bad}");
        }
        assert!(matches!(parse_size("5121", MIB, 5120.0), Err(ProblemKind::OutOfRange { .. })));
        assert_eq!(parse_size("5120", MIB, 5120.0), Ok(5120 * MIB));
    }

    #[test]
    fn whole_numbers() {
        assert_eq!(parse_whole("70", 1, 100), Ok(70));
        assert_eq!(parse_whole("+70", 1, 100), Ok(70));
        assert_eq!(parse_whole("100", 1, 100), Ok(100));
        assert_eq!(parse_whole("1", 1, 100), Ok(1));
        let range = ProblemKind::OutOfRange { min: "1".into(), max: "100".into() };
        assert_eq!(parse_whole("0", 1, 100), Err(range.clone()));
        assert_eq!(parse_whole("101", 1, 100), Err(range.clone()));
        assert_eq!(parse_whole("-5", 1, 100), Err(range.clone()));
        assert_eq!(parse_whole("99999999999999999999999", 1, 100), Err(range));
        assert_eq!(parse_whole("70.5", 1, 100), Err(ProblemKind::NotWholeNumber));
        assert_eq!(parse_whole("70.0", 1, 100), Err(ProblemKind::NotWholeNumber));
        assert_eq!(parse_whole("seventy", 1, 100), Err(ProblemKind::NotNumber));
        assert_eq!(parse_whole("NaN", 1, 100), Err(ProblemKind::NotNumber));
        assert_eq!(parse_whole("", 1, 100), Err(ProblemKind::NotNumber));
    }

    #[test]
    fn endpoints() {
        let e = Endpoint::parse("http://127.0.0.1:8333").unwrap();
        assert_eq!((e.scheme(), e.host(), e.port()), (Scheme::Http, "127.0.0.1", Some(8333)));
        assert_eq!(e.url(), "http://127.0.0.1:8333");
        let e = Endpoint::parse("HTTPS://S3.Example.COM/").unwrap();
        assert_eq!(e.url(), "https://s3.example.com");
        assert_eq!(e.port(), None);
        let e = Endpoint::parse("http://[::1]:9000").unwrap();
        assert_eq!((e.host(), e.port()), ("[::1]", Some(9000)));
        assert_eq!(e.authority(), "[::1]:9000");
        assert!(Endpoint::parse("http://localhost").is_ok());
        assert!(Endpoint::parse("http://seaweed_s3:8333").is_ok());
        for bad in [
            "localhost:9000",
            "ftp://host",
            "http://",
            "http://:9000",
            "http://host:0",
            "http://host:65536",
            "http://host:abc",
            "http://host:+80",
            "http://host/bucket",
            "http://host?x=1",
            "http://host#frag",
            "http://user:pw@host",
            "http://-bad-.com",
            "http://a..b",
            "http://[::1",
            "http://[zz]:1",
            "http://[::1]x",
            "http://ho st",
            "s3.amazonaws.com",
        ] {
            assert!(Endpoint::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn buckets() {
        for ok in ["kompass-data", "abc", "a.b.c", "bucket123", &"a".repeat(63)] {
            assert_eq!(validate_bucket(ok), Ok(()), "{ok}");
        }
        for bad in [
            "ab",
            "My-Bucket",
            "under_score",
            "-start",
            "end-",
            "a..b",
            "a.-b",
            "192.168.1.1",
            &"a".repeat(64),
            "sp ace",
        ] {
            assert!(validate_bucket(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn regions() {
        for ok in ["us-east-1", "eu-central-2", "garage", "local_region"] {
            assert_eq!(validate_region(ok), Ok(()), "{ok}");
        }
        for bad in ["us east 1", "eu/west", "ré", &"a".repeat(65)] {
            assert!(validate_region(bad).is_err(), "{bad} accepted");
        }
    }
}
