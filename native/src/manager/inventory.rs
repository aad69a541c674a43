//! The cached S3 inventory: what the bucket holds, refreshed rarely, so that a save costs one
//! PUT and not a LIST per save (the free tier allows 2,000 PUT-class requests a month).

use std::collections::BTreeMap;

use kompass_core::inventory::ObjectInfo;
use kompass_core::key::ObjectKey;
use serde::{Deserialize, Serialize};

/// How long a cached inventory is trusted before a save refreshes it with a LIST.
///
/// Four refreshes a day cost at most about 120 LIST requests a month per page of keys. The
/// cache is updated by every save and delete of this installation, so it only misses writes
/// made by other writers; explicit commands (list, cleanup, monitor, migrate) always refresh.
pub const INVENTORY_TTL_MS: i64 = 6 * 60 * 60 * 1000;

/// Data type given to objects outside the key layout: counted in the bucket, never cleaned.
pub const FOREIGN_TYPE: &str = "other";

/// One cached object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cached {
    /// Size in bytes.
    pub size: u64,
    /// Last modification, unix ms.
    pub last_modified_ms: i64,
}

/// The bucket's objects as last seen, keyed by object key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventoryCache {
    /// Which bucket this describes (endpoint and bucket), so a changed config is not trusted.
    pub bucket: String,
    /// When the cache was last filled from a full listing; 0 = never.
    pub refreshed_at_ms: i64,
    /// The objects.
    pub objects: BTreeMap<String, Cached>,
}

impl InventoryCache {
    /// Whether the cache describes `bucket` and is younger than the TTL at `now_ms`.
    pub fn is_fresh(&self, bucket: &str, now_ms: i64) -> bool {
        self.bucket == bucket
            && self.refreshed_at_ms > 0
            && now_ms.saturating_sub(self.refreshed_at_ms) < INVENTORY_TTL_MS
    }

    /// The cache as the core's inventory facts.
    pub fn to_objects(&self) -> Vec<ObjectInfo> {
        self.objects.iter().map(|(k, c)| object_info(k, c.size, c.last_modified_ms, None)).collect()
    }
}

/// An inventory fact for a key: owner and data type from the layout, or a foreign object.
pub fn object_info(
    key: &str,
    size: u64,
    last_modified_ms: i64,
    sha256: Option<[u8; 32]>,
) -> ObjectInfo {
    let (user, data_type) = match ObjectKey::from_s3_key(key) {
        Ok(k) => (k.owner().map(|u| u.to_string()), k.data_type().as_str().to_owned()),
        Err(_) => (None, FOREIGN_TYPE.to_owned()),
    };
    ObjectInfo {
        key: key.to_owned(),
        size,
        last_modified_ms,
        sha256: sha256.map(kompass_core::inventory::Sha256Digest),
        user,
        data_type,
    }
}
