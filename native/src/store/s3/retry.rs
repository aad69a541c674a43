//! When to try a request again, and how long to wait first: bounded retries with exponential
//! backoff and full jitter, only for failures that another attempt can fix.

use std::time::Duration;

/// Whether an HTTP answer is transient: 5xx (but not 501, which will not change), 429 and
/// 503 SlowDown (throttling), and 409 ConditionalRequestConflict, which AWS documents as
/// "retry the upload" for a conditional write that raced another. Every other 4xx is final.
pub(crate) fn retriable_status(status: u16, code: Option<&str>) -> bool {
    match status {
        501 => false,
        500..=599 | 429 => true,
        409 => code == Some("ConditionalRequestConflict"),
        _ => false,
    }
}

/// Exponential backoff with full jitter: before retry `n` (0-based) wait a uniform random
/// time in `[0, min(cap, base * 2^n)]`, so clients that failed together do not retry together.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    base: Duration,
    cap: Duration,
    rng: fastrand::Rng,
}

impl Backoff {
    /// A backoff seeded from fastrand's thread-local generator, so concurrent requests draw
    /// different delays.
    pub(crate) fn new(base: Duration, cap: Duration) -> Self {
        Self { base, cap, rng: fastrand::Rng::new() }
    }

    /// A backoff with a fixed seed (deterministic delays).
    #[cfg(test)]
    pub(crate) fn with_seed(base: Duration, cap: Duration, seed: u64) -> Self {
        Self { base, cap, rng: fastrand::Rng::with_seed(seed) }
    }

    /// The ceiling of the delay before retry `n`: `min(cap, base * 2^n)`.
    pub(crate) fn ceiling(&self, retry: u32) -> Duration {
        let factor = 1u32 << retry.min(20);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// The delay before retry `n`: uniform in `[0, ceiling(n)]`.
    pub(crate) fn delay(&mut self, retry: u32) -> Duration {
        let ceiling = self.ceiling(retry).as_nanos().min(u128::from(u64::MAX - 1)) as u64;
        Duration::from_nanos(self.rng.u64(0..=ceiling))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_transient_statuses_are_retried() {
        for status in [500, 502, 503, 504, 429] {
            assert!(retriable_status(status, None), "{status}");
        }
        assert!(retriable_status(503, Some("SlowDown")));
        assert!(retriable_status(409, Some("ConditionalRequestConflict")));
        for status in [400, 401, 403, 404, 405, 409, 411, 412, 416, 501, 200, 204, 301] {
            assert!(!retriable_status(status, None), "{status}");
        }
        assert!(!retriable_status(409, Some("BucketAlreadyExists")));
        assert!(!retriable_status(403, Some("SignatureDoesNotMatch")));
    }

    #[test]
    fn delays_stay_under_the_exponential_ceiling_and_the_cap() {
        let base = Duration::from_millis(100);
        let cap = Duration::from_secs(2);
        let mut b = Backoff::with_seed(base, cap, 42);
        assert_eq!(b.ceiling(0), Duration::from_millis(100));
        assert_eq!(b.ceiling(1), Duration::from_millis(200));
        assert_eq!(b.ceiling(3), Duration::from_millis(800));
        assert_eq!(b.ceiling(5), cap);
        assert_eq!(b.ceiling(u32::MAX), cap);
        for retry in 0..10 {
            for _ in 0..200 {
                assert!(b.delay(retry) <= b.ceiling(retry));
            }
        }
    }

    #[test]
    fn delays_are_jittered_across_the_whole_range() {
        // Full jitter: draws spread over [0, ceiling], not clustered at the top.
        let ceiling = Duration::from_millis(1000);
        let mut b = Backoff::with_seed(ceiling, ceiling, 7);
        let draws: Vec<Duration> = (0..1000).map(|_| b.delay(0)).collect();
        let low = draws.iter().filter(|d| **d < ceiling / 4).count();
        let high = draws.iter().filter(|d| **d > ceiling * 3 / 4).count();
        assert!(low > 150 && high > 150, "low {low}, high {high}");
        let distinct: std::collections::HashSet<_> = draws.iter().collect();
        assert!(distinct.len() > 990);
    }

    #[test]
    fn clock_seeded_backoffs_differ() {
        let base = Duration::from_secs(1);
        let mut a = Backoff::new(base, base);
        let mut b = Backoff::new(base, base);
        let da: Vec<_> = (0..4).map(|_| a.delay(0)).collect();
        let db: Vec<_> = (0..4).map(|_| b.delay(0)).collect();
        assert_ne!(da, db);
    }

    #[test]
    fn zero_base_means_no_wait() {
        let mut b = Backoff::with_seed(Duration::ZERO, Duration::from_secs(1), 1);
        assert_eq!(b.delay(3), Duration::ZERO);
    }
}
