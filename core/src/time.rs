//! The one time type of the core: a reading of the UTC clock in Unix milliseconds.
//!
//! The core never reads a clock; callers pass `now` as a [`UnixMs`]. Signed, so a clock set
//! before 1970 or a file dated before it is still a time, not an error.

use std::fmt;

use serde::{Deserialize, Serialize};

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
        crate::presign::rfc3339_utc(self.as_secs())
    }
}

impl fmt::Display for UnixMs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.rfc3339())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
