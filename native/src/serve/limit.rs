//! Per-token rate limits for the API: a token bucket per bearer token, so one client cannot
//! spend the month's request budget (or the server's time) for everyone. Over the limit the
//! answer is 429 with `Retry-After`.
//!
//! Buckets are keyed by a SHA-256 of the `Authorization` header, never the token itself.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// Requests a token may make at once.
pub const BURST: f64 = 300.0;
/// Requests a token may make per second, sustained.
pub const PER_SECOND: f64 = 20.0;
/// Buckets kept before full ones are dropped.
const MAX_BUCKETS: usize = 10_000;
/// `RATE` or `RATE,BURST` (requests per second per token, and at once), or `off`.
pub const RATE_LIMIT_VAR: &str = "KOMPASS_API_RATE_LIMIT";

/// Token buckets, one per credential.
#[derive(Debug)]
pub struct RateLimiter {
    /// `false` with `KOMPASS_API_RATE_LIMIT=off` (a server behind its own limiter, a benchmark).
    on: bool,
    burst: f64,
    per_second: f64,
    buckets: Mutex<HashMap<[u8; 32], (f64, Instant)>>,
}

impl Default for RateLimiter {
    fn default() -> Self {
        RateLimiter::new(BURST, PER_SECOND)
    }
}

impl RateLimiter {
    /// A limiter allowing `burst` requests at once and `per_second` sustained.
    pub fn new(burst: f64, per_second: f64) -> Self {
        RateLimiter { on: true, burst, per_second, buckets: Mutex::new(HashMap::new()) }
    }

    /// The limiter `KOMPASS_API_RATE_LIMIT` asks for (the default when unset): `off`, `RATE`
    /// (the burst stays 300, or the rate when higher) or `RATE,BURST`.
    pub fn from_setting(value: Option<&str>) -> Result<Self, String> {
        let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) else {
            return Ok(RateLimiter::default());
        };
        if v.eq_ignore_ascii_case("off") {
            return Ok(RateLimiter { on: false, ..RateLimiter::default() });
        }
        let bad = || {
            format!(
                "{RATE_LIMIT_VAR}={v}: expected `off`, a rate in requests per second per token \
                 (e.g. `20`), or `RATE,BURST` (e.g. `20,300`), both positive"
            )
        };
        let num = |s: &str| s.trim().parse::<f64>().ok().filter(|n| n.is_finite() && *n > 0.0);
        let (rate, burst) = match v.split_once(',') {
            Some((r, b)) => (num(r).ok_or_else(bad)?, num(b).ok_or_else(bad)?),
            None => {
                let r = num(v).ok_or_else(bad)?;
                (r, BURST.max(r))
            }
        };
        if burst < 1.0 {
            return Err(bad());
        }
        Ok(RateLimiter::new(burst, rate))
    }

    /// Takes one request for `credential` at `now`: `Err(wait)` when over the limit.
    pub fn take(&self, credential: &[u8], now: Instant) -> Result<(), Duration> {
        if !self.on {
            return Ok(());
        }
        let id: [u8; 32] = Sha256::digest(credential).into();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= MAX_BUCKETS {
            let (burst, rate) = (self.burst, self.per_second);
            buckets.retain(|_, (tokens, at)| {
                *tokens + now.duration_since(*at).as_secs_f64() * rate < burst
            });
        }
        let (tokens, at) = buckets.entry(id).or_insert((self.burst, now));
        let refilled = (*tokens
            + now.saturating_duration_since(*at).as_secs_f64() * self.per_second)
            .min(self.burst);
        *at = now;
        if refilled >= 1.0 {
            *tokens = refilled - 1.0;
            Ok(())
        } else {
            *tokens = refilled;
            Err(Duration::from_secs_f64((1.0 - refilled) / self.per_second))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_setting_turns_the_limit_off_or_sets_it_and_refuses_nonsense() {
        let t0 = Instant::now();
        let off = RateLimiter::from_setting(Some("off")).unwrap();
        assert!((0..10_000).all(|_| off.take(b"Bearer a", t0).is_ok()));
        let tight = RateLimiter::from_setting(Some(" 1,2 ")).unwrap();
        assert!(tight.take(b"Bearer a", t0).is_ok() && tight.take(b"Bearer a", t0).is_ok());
        assert!(tight.take(b"Bearer a", t0).is_err(), "a burst of 2");
        let rate_only = RateLimiter::from_setting(Some("5")).unwrap();
        assert_eq!((rate_only.per_second, rate_only.burst), (5.0, BURST));
        let unset = RateLimiter::from_setting(None).unwrap();
        assert_eq!((unset.per_second, unset.burst), (PER_SECOND, BURST));
        for bad in ["0", "-1", "fast", "1,0", "1,x", "NaN", "inf"] {
            let e = RateLimiter::from_setting(Some(bad)).unwrap_err();
            assert!(e.contains(RATE_LIMIT_VAR), "{bad}: {e}");
        }
    }

    #[test]
    fn burst_then_refill_per_token() {
        let l = RateLimiter::new(3.0, 1.0);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(l.take(b"Bearer a", t0).is_ok());
        }
        let wait = l.take(b"Bearer a", t0).unwrap_err();
        assert!(wait > Duration::from_millis(900) && wait <= Duration::from_secs(1), "{wait:?}");
        // Another token has its own bucket.
        assert!(l.take(b"Bearer b", t0).is_ok());
        // A second later one more request fits.
        assert!(l.take(b"Bearer a", t0 + Duration::from_secs(1)).is_ok());
        assert!(l.take(b"Bearer a", t0 + Duration::from_secs(1)).is_err());
    }
}
