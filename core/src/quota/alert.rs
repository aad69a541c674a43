//! Alert levels from usage against a limit.
//!
//! Levels are reached *at* their percentage (usage × 100 ≥ percent × limit), computed in
//! integers so that exactly 70 % of 100 MiB is "cleanup" and one byte less is "normal":
//! - `critical` at 90 % and above (including over the limit),
//! - `warning` at 80 %,
//! - `cleanup` at the configurable cleanup threshold (default 70 %),
//! - `normal` below all of them, and always for empty storage.
//!
//! The most severe level that applies wins: with a threshold of 95 %, 92 % usage is
//! `critical` although cleanup is not yet due; [`cleanup_due`] answers that separately.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::size::ByteSize;

/// Usage at or above this percentage of a limit is a warning.
pub const WARNING_PERCENT: u8 = 80;
/// Usage at or above this percentage of a limit is critical.
pub const CRITICAL_PERCENT: u8 = 90;

/// How close usage is to its limit, from least to most severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertLevel {
    /// Below every threshold.
    Normal,
    /// At or above the cleanup threshold: FIFO cleanup is due.
    Cleanup,
    /// At or above 80 %.
    Warning,
    /// At or above 90 %, or over the limit.
    Critical,
}

impl AlertLevel {
    /// The snake_case name, as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertLevel::Normal => "normal",
            AlertLevel::Cleanup => "cleanup",
            AlertLevel::Warning => "warning",
            AlertLevel::Critical => "critical",
        }
    }
}

impl fmt::Display for AlertLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether `used` has reached `percent` % of `limit` (exact integer arithmetic).
pub(crate) fn reached(used: u64, limit: u64, percent: u8) -> bool {
    u128::from(used) * 100 >= u128::from(percent) * u128::from(limit)
}

/// The level of `used` against `limit`; `cleanup_threshold` is `None` where cleanup does not
/// apply (the request budget).
pub(crate) fn level(used: u64, limit: u64, cleanup_threshold: Option<u8>) -> AlertLevel {
    if used == 0 {
        AlertLevel::Normal
    } else if reached(used, limit, CRITICAL_PERCENT) {
        AlertLevel::Critical
    } else if reached(used, limit, WARNING_PERCENT) {
        AlertLevel::Warning
    } else if cleanup_threshold.is_some_and(|p| reached(used, limit, p)) {
        AlertLevel::Cleanup
    } else {
        AlertLevel::Normal
    }
}

/// The storage alert level of `used` bytes against `limit` with the cleanup threshold in %.
pub fn alert_level(used: u64, limit: u64, cleanup_threshold_percent: u8) -> AlertLevel {
    level(used, limit, Some(cleanup_threshold_percent))
}

/// Whether FIFO cleanup is due: usage is at or above the threshold (never for empty storage).
pub fn cleanup_due(used: u64, limit: u64, cleanup_threshold_percent: u8) -> bool {
    used > 0 && reached(used, limit, cleanup_threshold_percent)
}

/// Percentage of `limit` used, for display. A zero limit counts as full once anything is
/// stored (100.0) and as empty otherwise (0.0), so the value is always finite.
pub fn percent_used(used: u64, limit: u64) -> f64 {
    match (used, limit) {
        (0, _) => 0.0,
        (_, 0) => 100.0,
        _ => used as f64 * 100.0 / limit as f64,
    }
}

/// Usage of one scope (a user, the bucket) against its limit, ready to print or serialize.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct UsageStatus {
    /// Bytes stored.
    pub used: u64,
    /// The limit in bytes.
    pub limit: u64,
    /// `used` as a percentage of `limit` (see [`percent_used`]).
    pub percent: f64,
    /// The alert level.
    pub level: AlertLevel,
    /// Whether FIFO cleanup is due.
    pub cleanup_due: bool,
}

impl UsageStatus {
    /// Computes the status of `used` bytes against `limit` with a cleanup threshold in %.
    pub fn new(used: u64, limit: u64, cleanup_threshold_percent: u8) -> Self {
        UsageStatus {
            used,
            limit,
            percent: percent_used(used, limit),
            level: alert_level(used, limit, cleanup_threshold_percent),
            cleanup_due: cleanup_due(used, limit, cleanup_threshold_percent),
        }
    }
}

impl fmt::Display for UsageStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} of {} used ({:.1}%): {}",
            ByteSize(self.used),
            ByteSize(self.limit),
            self.percent,
            self.level
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quota::MIB;
    use proptest::prelude::*;

    #[test]
    fn levels_at_their_exact_boundaries() {
        let limit = 1000u64;
        assert_eq!(alert_level(0, limit, 70), AlertLevel::Normal);
        assert_eq!(alert_level(699, limit, 70), AlertLevel::Normal);
        assert_eq!(alert_level(700, limit, 70), AlertLevel::Cleanup);
        assert_eq!(alert_level(799, limit, 70), AlertLevel::Cleanup);
        assert_eq!(alert_level(800, limit, 70), AlertLevel::Warning);
        assert_eq!(alert_level(899, limit, 70), AlertLevel::Warning);
        assert_eq!(alert_level(900, limit, 70), AlertLevel::Critical);
        assert_eq!(alert_level(1000, limit, 70), AlertLevel::Critical);
        assert_eq!(alert_level(5000, limit, 70), AlertLevel::Critical);
    }

    #[test]
    fn boundaries_are_exact_for_limits_not_divisible_by_100() {
        // 70 % of 100 MiB is 73,400,320 bytes exactly; 70 % of 1001 bytes is 700.7.
        let limit = 100 * MIB;
        assert_eq!(alert_level(73_400_319, limit, 70), AlertLevel::Normal);
        assert_eq!(alert_level(73_400_320, limit, 70), AlertLevel::Cleanup);
        assert_eq!(alert_level(700, 1001, 70), AlertLevel::Normal);
        assert_eq!(alert_level(701, 1001, 70), AlertLevel::Cleanup);
    }

    #[test]
    fn configurable_threshold() {
        assert_eq!(alert_level(500, 1000, 50), AlertLevel::Cleanup);
        assert_eq!(alert_level(499, 1000, 50), AlertLevel::Normal);
        // A threshold above the warning level: warning comes first, cleanup not yet due.
        assert_eq!(alert_level(850, 1000, 95), AlertLevel::Warning);
        assert!(!cleanup_due(850, 1000, 95));
        assert_eq!(alert_level(920, 1000, 95), AlertLevel::Critical);
        assert!(!cleanup_due(920, 1000, 95));
        assert!(cleanup_due(950, 1000, 95));
        assert_eq!(alert_level(999, 1000, 100), AlertLevel::Critical);
        assert!(!cleanup_due(999, 1000, 100));
        assert!(cleanup_due(1000, 1000, 100));
    }

    #[test]
    fn zero_usage_and_zero_limit() {
        assert_eq!(alert_level(0, 0, 70), AlertLevel::Normal);
        assert_eq!(alert_level(1, 0, 70), AlertLevel::Critical);
        assert!(!cleanup_due(0, 0, 70));
        assert!(!cleanup_due(0, 1000, 0));
        assert_eq!(percent_used(0, 0), 0.0);
        assert_eq!(percent_used(5, 0), 100.0);
        assert_eq!(percent_used(250, 1000), 25.0);
        assert_eq!(percent_used(u64::MAX, u64::MAX), 100.0);
    }

    #[test]
    fn serde_and_display_are_snake_case() {
        for (level, name) in [
            (AlertLevel::Normal, "normal"),
            (AlertLevel::Cleanup, "cleanup"),
            (AlertLevel::Warning, "warning"),
            (AlertLevel::Critical, "critical"),
        ] {
            assert_eq!(level.to_string(), name);
            assert_eq!(serde_json::to_string(&level).unwrap(), format!("\"{name}\""));
            assert_eq!(serde_json::from_str::<AlertLevel>(&format!("\"{name}\"")).unwrap(), level);
        }
        assert!(AlertLevel::Normal < AlertLevel::Cleanup);
        assert!(AlertLevel::Warning < AlertLevel::Critical);
    }

    #[test]
    fn usage_status_reports_everything() {
        let s = UsageStatus::new(75 * MIB, 100 * MIB, 70);
        assert_eq!(s.level, AlertLevel::Cleanup);
        assert!(s.cleanup_due);
        assert_eq!(s.percent, 75.0);
        assert_eq!(s.to_string(), "75 MiB of 100 MiB used (75.0%): cleanup");
        let json = serde_json::to_value(s).unwrap();
        assert_eq!(json["level"], "cleanup");
        assert_eq!(json["cleanup_due"], true);
        assert_eq!(json["used"], 75 * MIB);
    }

    proptest! {
        #[test]
        fn level_never_decreases_as_usage_grows(a in 0u64..10_000, b in 0u64..10_000, limit in 0u64..10_000, p in 0u8..=120) {
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            prop_assert!(alert_level(lo, limit, p) <= alert_level(hi, limit, p));
            prop_assert!(!cleanup_due(lo, limit, p) || cleanup_due(hi, limit, p));
        }

        #[test]
        fn level_agrees_with_float_percent_away_from_boundaries(used in 1u64..1_000_000, limit in 1u64..1_000_000) {
            let pct = used as f64 * 100.0 / limit as f64;
            let expected = if pct >= 90.0 { AlertLevel::Critical }
                else if pct >= 80.0 { AlertLevel::Warning }
                else if pct >= 70.0 { AlertLevel::Cleanup }
                else { AlertLevel::Normal };
            let near_boundary = [70.0, 80.0, 90.0].iter().any(|b: &f64| (pct - b).abs() < 1e-9);
            prop_assume!(!near_boundary);
            prop_assert_eq!(alert_level(used, limit, 70), expected);
        }
    }
}
