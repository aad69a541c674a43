//! What the storage holds and how full it is, gathered once for every surface that reports it:
//! `kompass status` and the Python binding's `info` share [`storage_facts`]; `kompass monitor`
//! and the Python binding's `usage` share [`UserQuotaUsage`] and [`s3_inventory_if_enabled`].
//! Each surface serialises these typed shapes (with fields of its own beside them, or under
//! its own names) instead of assembling the figures itself.

use std::collections::BTreeMap;

use kompass_core::inventory::{ObjectInfo, UserUsage, usage};
use kompass_core::key::UserId;
use kompass_core::quota::{UsageStatus, percent_used};
use serde::Serialize;

use crate::manager::{Backend, Manager, ManagerError};

/// The backends and what they hold: the figures `kompass status` and the Python `info` report.
#[derive(Debug, Clone, Serialize)]
pub struct StorageFacts {
    /// S3 first when enabled, then local.
    pub backends: Vec<Backend>,
    pub preferred_backend: Backend,
    pub bucket: Option<String>,
    pub endpoint: Option<String>,
    pub data_directory: String,
    pub local_files: usize,
    pub local_bytes: u64,
    /// `None` when S3 is not enabled or could not be listed.
    pub s3_files: Option<usize>,
    pub s3_bytes: Option<u64>,
    /// Why S3 could not be listed, when it is enabled.
    pub s3_error: Option<String>,
    /// Saves waiting in the pending-sync journal for S3.
    pub pending_sync: usize,
    /// The S3 error was an outage (unreachable), not a refusal: the figures are degraded.
    #[serde(skip)]
    pub s3_outage: bool,
}

/// Gathers [`StorageFacts`]: the local inventory, the S3 inventory (the cache while fresh)
/// and the journal. An S3 failure is a fact in the result, not an error.
pub async fn storage_facts(m: &Manager) -> Result<StorageFacts, ManagerError> {
    let local = m.local_inventory()?;
    let mut facts = StorageFacts {
        backends: vec![Backend::Local],
        preferred_backend: m.preferred_backend(),
        bucket: m.config().s3.as_ref().map(|s| s.bucket.clone()),
        endpoint: m.config().s3.as_ref().and_then(|s| s.endpoint.as_ref().map(|e| e.url())),
        data_directory: m.config().data_directory.clone(),
        local_files: local.len(),
        local_bytes: local.iter().map(|o| o.size).sum(),
        s3_files: None,
        s3_bytes: None,
        s3_error: None,
        pending_sync: m.journal().pending()?.len(),
        s3_outage: false,
    };
    if m.s3().is_some() {
        facts.backends.insert(0, Backend::S3);
    }
    match s3_inventory_if_enabled(m, false).await {
        Ok(Some(inv)) => {
            facts.s3_files = Some(inv.len());
            facts.s3_bytes = Some(inv.iter().map(|o| o.size).sum());
        }
        Ok(None) => {}
        Err(e) => {
            facts.s3_outage = matches!(&e, ManagerError::S3(s) if s.is_outage());
            facts.s3_error = Some(e.to_string());
        }
    }
    Ok(facts)
}

/// The S3 inventory when S3 is enabled (`force_refresh` lists the bucket even when the cache
/// is fresh); `Ok(None)` without S3.
pub async fn s3_inventory_if_enabled(
    m: &Manager,
    force_refresh: bool,
) -> Result<Option<Vec<ObjectInfo>>, ManagerError> {
    match m.s3() {
        Some(_) => m.s3_inventory(force_refresh).await.map(Some),
        None => Ok(None),
    }
}

/// One data type of one user against the user quota.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TypeUsage {
    pub bytes: u64,
    pub files: u64,
    /// Percent of the user quota.
    pub percent_of_quota: f64,
}

/// One user's usage against the user quota, per data type and in total.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UserQuotaUsage {
    pub bytes: u64,
    pub files: u64,
    pub by_type: BTreeMap<String, TypeUsage>,
    /// The total against the quota: percent, alert level, whether cleanup is due.
    pub status: UsageStatus,
}

impl UserQuotaUsage {
    /// `u` (from the core's [`usage`]) against `quota_bytes` with the cleanup threshold.
    pub fn new(u: UserUsage, quota_bytes: u64, cleanup_threshold_percent: u8) -> Self {
        let by_type = u
            .by_type
            .into_iter()
            .map(|(t, tally)| {
                let percent_of_quota = percent_used(tally.bytes, quota_bytes);
                (t, TypeUsage { bytes: tally.bytes, files: tally.files, percent_of_quota })
            })
            .collect();
        UserQuotaUsage {
            bytes: u.bytes,
            files: u.files,
            by_type,
            status: UsageStatus::new(u.bytes, quota_bytes, cleanup_threshold_percent),
        }
    }
}

/// One user's usage, and where it was read.
#[derive(Debug, Clone)]
pub struct UserUsageFacts {
    /// S3 when enabled and its inventory could be read (the cache while fresh), else local.
    pub backend: Backend,
    pub usage: UserQuotaUsage,
    /// Why S3 could not be read, when it is enabled.
    pub s3_error: Option<String>,
}

/// `user`'s usage against the configured user quota (the Python binding's `usage`).
pub async fn user_usage(m: &Manager, user: &UserId) -> Result<UserUsageFacts, ManagerError> {
    let (backend, inventory, s3_error) = match s3_inventory_if_enabled(m, false).await {
        Ok(Some(inv)) => (Backend::S3, inv, None),
        Ok(None) => (Backend::Local, m.local_inventory()?, None),
        Err(e) => (Backend::Local, m.local_inventory()?, Some(e.to_string())),
    };
    let limits = &m.config().limits;
    let u = usage(&inventory).users.remove(user.as_str()).unwrap_or_default();
    Ok(UserUsageFacts {
        backend,
        usage: UserQuotaUsage::new(u, limits.max_user_bytes, limits.cleanup_threshold_percent),
        s3_error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use kompass_core::inventory::Tally;
    use kompass_core::quota::AlertLevel;

    #[test]
    fn a_users_usage_is_set_against_the_quota_per_type_and_in_total() {
        let mut by_type = BTreeMap::new();
        by_type.insert("routes".to_owned(), Tally { bytes: 300, files: 3 });
        by_type.insert("fitness".to_owned(), Tally { bytes: 500, files: 1 });
        let u = UserQuotaUsage::new(UserUsage { bytes: 800, files: 4, by_type }, 1000, 70);
        assert_eq!((u.bytes, u.files), (800, 4));
        assert_eq!(u.by_type["routes"], TypeUsage { bytes: 300, files: 3, percent_of_quota: 30.0 });
        assert_eq!(u.by_type["fitness"].percent_of_quota, 50.0);
        assert_eq!((u.status.used, u.status.limit, u.status.percent), (800, 1000, 80.0));
        assert!(u.status.cleanup_due, "80 % is past the 70 % threshold");
        assert_ne!(u.status.level, AlertLevel::Normal);
    }
}
