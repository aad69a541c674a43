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

/// Token buckets, one per credential.
#[derive(Debug)]
pub struct RateLimiter {
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
        RateLimiter { burst, per_second, buckets: Mutex::new(HashMap::new()) }
    }

    /// Takes one request for `credential` at `now`: `Err(wait)` when over the limit.
    pub fn take(&self, credential: &[u8], now: Instant) -> Result<(), Duration> {
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
