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

/// How long the index of other owners' local directories is trusted before a save checks
/// every indexed directory again (the uploader's own directories are checked on every save).
pub const LOCAL_FULL_CHECK_MS: i64 = 60 * 1000;

/// The local data directory's index in the state database (`Tx::local`), kept in step with
/// the directory without walking it: each indexed directory's modification time is recorded
/// when it is read, and a directory whose time moved (a file added, replaced or removed in it,
/// by kompass or by anyone else) is read again — that one only. A missing index, or one of
/// another directory, is rebuilt by one walk.
///
/// Bound: a file written by another program into another owner's folder is counted after at
/// most [`LOCAL_FULL_CHECK_MS`], or at once when an admission needs the whole inventory.
pub mod local_index {
    use std::path::Path;

    use kompass_core::key::{DataType, UserId};
    use kompass_core::time::UnixMs;

    use crate::statedb::{StateError, Tx};
    use crate::store::local::LocalStore;
    use crate::store::{Scope, StoreError};

    /// Why the index could not be brought up to date.
    #[derive(Debug, thiserror::Error)]
    pub enum IndexError {
        /// The state database failed.
        #[error(transparent)]
        State(#[from] StateError),
        /// The data directory could not be read.
        #[error(transparent)]
        Store(#[from] StoreError),
    }

    /// Which directories to check.
    #[derive(Debug, Clone, Copy)]
    pub enum Check<'a> {
        /// The root, the type folders and the folders of this owner (`None`: global data).
        Owner(Option<&'a UserId>),
        /// Only the folders of this owner: the rest of [`Check::Owner`] (the index's root, the
        /// type folders, the periodic full check) was done earlier in the same transaction,
        /// for another owner of a batch.
        OwnerFolders(&'a UserId),
        /// Every indexed directory.
        All,
    }

    /// A directory's modification time in ns; `None` when it is missing or not a directory
    /// (a link is never followed, so it reads as missing).
    fn mtime_ns(path: &Path) -> Option<i64> {
        let m = std::fs::symlink_metadata(path).ok().filter(|m| m.is_dir())?;
        let t = m.modified().ok()?.duration_since(std::time::UNIX_EPOCH).ok()?;
        i64::try_from(t.as_nanos()).ok()
    }

    /// Brings the index up to date for `check`; rebuilds it when it is missing or describes
    /// another directory.
    pub fn refresh(
        local: &LocalStore,
        tx: &Tx<'_>,
        check: Check<'_>,
        now: UnixMs,
    ) -> Result<(), IndexError> {
        if let Check::OwnerFolders(u) = check {
            return reread_changed(local, tx, owner_dirs(u));
        }
        let id = local.root().display().to_string();
        let built = tx.meta("local_index_root")?;
        if built.as_deref() != Some(id.as_str()) {
            tx.local().remove_all()?;
            tx.clear_local_dirs()?;
            reread(local, tx, "")?;
            tx.set_meta("local_index_root", &id)?;
            tx.set_meta("local_index_checked_ms", &now.as_i64().to_string())?;
            return Ok(());
        }
        let last_full = tx.meta("local_index_checked_ms")?.and_then(|v| v.parse::<i64>().ok());
        let full = matches!(check, Check::All)
            || last_full
                .is_none_or(|t| now.as_i64().saturating_sub(t) >= super::LOCAL_FULL_CHECK_MS);
        let mut dirs: Vec<String> = vec![String::new()];
        dirs.extend(DataType::ALL.iter().map(|t| t.as_str().to_owned()));
        if full {
            dirs.extend(tx.local_dirs()?.into_iter().map(|(p, _)| p));
            tx.set_meta("local_index_checked_ms", &now.as_i64().to_string())?;
        } else if let Check::Owner(Some(u)) = check {
            dirs.extend(owner_dirs(u));
        }
        dirs.sort();
        dirs.dedup();
        // Parents first: a folder read again records its children, which then compare equal.
        reread_changed(local, tx, dirs)
    }

    /// The folders of `user`'s data, one per data type that has per-user folders.
    fn owner_dirs(user: &UserId) -> impl Iterator<Item = String> + '_ {
        DataType::ALL.iter().filter(|t| t.allows_user()).map(move |t| format!("{t}/{user}"))
    }

    /// Reads again each of `dirs` whose modification time differs from the index's.
    fn reread_changed(
        local: &LocalStore,
        tx: &Tx<'_>,
        dirs: impl IntoIterator<Item = String>,
    ) -> Result<(), IndexError> {
        for rel in dirs {
            if mtime_ns(&local.root().join(&rel)) != tx.local_dir(&rel)? {
                reread(local, tx, &rel)?;
            }
        }
        Ok(())
    }

    /// Reads one directory again: its own files and any child folder not indexed yet (or
    /// gone). The time is taken before the read, so a change during it is seen next time.
    fn reread(local: &LocalStore, tx: &Tx<'_>, rel: &str) -> Result<(), IndexError> {
        let path = local.root().join(rel);
        let mtime = mtime_ns(&path);
        let parts: Vec<&str> = if rel.is_empty() { vec![] } else { rel.split('/').collect() };
        match parts.as_slice() {
            [] => {
                if mtime.is_none() {
                    tx.local().remove_all()?;
                    tx.clear_local_dirs()?;
                    return Ok(());
                }
                tx.set_local_dir("", mtime)?;
                // Legacy routes at the root are anonymous routes.
                scope(local, tx, None, DataType::Routes)?;
                for t in DataType::ALL {
                    let known = tx.local_dir(t.as_str())?;
                    if known.is_none() || mtime_ns(&local.root().join(t.as_str())).is_none() {
                        reread(local, tx, t.as_str())?;
                    }
                }
            }
            [t] => {
                let Ok(t) = t.parse::<DataType>() else { return Ok(()) };
                if mtime.is_none() {
                    tx.set_local_dir(rel, None)?;
                    tx.local().remove_type(t.as_str())?;
                    if t == DataType::Routes {
                        scope(local, tx, None, t)?; // the legacy root routes stay
                    }
                    return Ok(());
                }
                tx.set_local_dir(rel, mtime)?;
                if t.allows_global() {
                    scope(local, tx, None, t)?;
                }
                if t.allows_user() {
                    let mut present = Vec::new();
                    let rd = std::fs::read_dir(&path).map_err(|e| {
                        StoreError::Local(crate::store::local::io_error("list", &path, e))
                    })?;
                    for e in rd.flatten() {
                        let is_dir = e.file_type().is_ok_and(|f| f.is_dir());
                        if let (true, Ok(name)) = (is_dir, e.file_name().into_string())
                            && UserId::new(&name).is_ok()
                        {
                            present.push(format!("{t}/{name}"));
                        }
                    }
                    for (known, _) in tx.local_dirs()? {
                        if known.starts_with(&format!("{t}/")) && !present.contains(&known) {
                            reread(local, tx, &known)?;
                        }
                    }
                    for p in present {
                        if tx.local_dir(&p)?.is_none() {
                            reread(local, tx, &p)?;
                        }
                    }
                }
            }
            [t, u] => {
                let (Ok(t), Ok(u)) = (t.parse::<DataType>(), UserId::new(u)) else {
                    return Ok(());
                };
                tx.set_local_dir(rel, mtime)?;
                if mtime.is_none() {
                    tx.local().remove_scope(Some(&u), t.as_str())?;
                } else {
                    scope(local, tx, Some(&u), t)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Replaces the index rows of one (owner, type) with what the directory holds.
    fn scope(
        local: &LocalStore,
        tx: &Tx<'_>,
        owner: Option<&UserId>,
        t: DataType,
    ) -> Result<(), IndexError> {
        let objects = local.records(Scope::Type(owner, t))?;
        let view = tx.local();
        view.remove_scope(owner, t.as_str())?;
        for o in &objects {
            view.put_object(&o.key, o.size, o.last_modified)?;
        }
        Ok(())
    }
}
