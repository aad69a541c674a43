//! The facts a migration plan is made from: every local file in scope with its SHA-256, and
//! what S3 holds under the same keys (one LIST, then a HEAD for each key held on both sides).

use std::collections::HashSet;
use std::path::PathBuf;

use kompass_core::inventory::{ObjectInfo, Sha256Digest};
use kompass_core::key::{ObjectKey, UserId};

use super::bounded::for_each_bounded;
use super::report::NotMigrated;
use crate::manager::inventory::object_info;
use crate::store::local::{LocalError, LocalStore, sha256_file};
use crate::store::s3::{S3Error, S3Store};

/// One local file to migrate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalFile {
    /// Its key.
    pub key: ObjectKey,
    /// Its S3 key.
    pub s3_key: String,
    /// The file (for messages; reads and removals walk the layout again, refusing links).
    pub path: PathBuf,
    /// A route the original app saved at the data directory root.
    pub legacy: bool,
    /// Size in bytes.
    pub size: u64,
    /// Last modification, unix ms.
    pub last_modified_ms: u64,
    /// SHA-256 of the content when inventoried.
    pub sha256: [u8; 32],
}

impl LocalFile {
    /// Path segments below the data directory: the layout's, or the root file of a legacy route.
    pub fn segments(&self) -> Vec<&str> {
        if self.legacy { vec![self.key.name().as_str()] } else { self.key.local_segments() }
    }

    /// The file as an inventory fact for the core.
    pub fn info(&self) -> ObjectInfo {
        object_info(&self.s3_key, self.size, self.last_modified_ms as i64, Some(self.sha256))
    }
}

/// The local side: files in scope, and paths that are not data.
#[derive(Debug, Default)]
pub struct LocalFacts {
    /// Files in scope, sorted by S3 key.
    pub files: Vec<LocalFile>,
    /// Oddities left alone.
    pub not_migrated: Vec<NotMigrated>,
}

/// Whether `key` belongs to the migration's scope: one user's data, or everything.
pub fn in_scope(key: &ObjectKey, user: Option<&UserId>) -> bool {
    user.is_none_or(|u| key.owner() == Some(u))
}

/// Inventories the data directory and hashes every file in scope (`concurrency` at a time).
pub async fn local_files(
    local: &LocalStore,
    user: Option<&UserId>,
    concurrency: usize,
) -> Result<LocalFacts, LocalError> {
    let store = local.clone();
    let user_owned = user.cloned();
    let inv =
        tokio::task::spawn_blocking(move || store.inventory()).await.map_err(join_panic)??;
    let not_migrated = if user_owned.is_some() {
        Vec::new()
    } else {
        inv.skipped
            .iter()
            .map(|s| NotMigrated {
                path: s.path.display().to_string(),
                reason: s.reason.to_string(),
            })
            .collect()
    };
    let entries: Vec<_> =
        inv.entries.into_iter().filter(|e| in_scope(&e.key, user_owned.as_ref())).collect();
    let hashed = for_each_bounded(entries, concurrency, |e| async move {
        tokio::task::spawn_blocking(move || {
            // Gone since the inventory (deleted meanwhile): nothing to migrate.
            match sha256_file(&e.path) {
                Ok(sha) => Ok(Some(LocalFile {
                    s3_key: e.key.s3_key(),
                    key: e.key,
                    path: e.path,
                    legacy: e.legacy,
                    size: e.size,
                    last_modified_ms: e.last_modified_ms,
                    sha256: sha,
                })),
                Err(LocalError::NotFound { .. }) => Ok(None),
                Err(LocalError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    Ok(None)
                }
                Err(err) => Err(err),
            }
        })
        .await
        .map_err(join_panic)?
    })
    .await;
    let mut files = Vec::with_capacity(hashed.len());
    for h in hashed {
        files.extend(h?);
    }
    files.sort_by(|a, b| a.s3_key.cmp(&b.s3_key));
    Ok(LocalFacts { files, not_migrated })
}

/// Completes `remote` (a listing: sizes and ages, no checksums) for the keys also held
/// locally, with a HEAD each: the stored SHA-256 and fresh size and age. Objects gone since the
/// listing are dropped.
pub async fn remote_heads(
    s3: &S3Store,
    remote: Vec<ObjectInfo>,
    local: &[LocalFile],
    concurrency: usize,
) -> Result<Vec<ObjectInfo>, S3Error> {
    let local_keys: HashSet<&str> = local.iter().map(|f| f.s3_key.as_str()).collect();
    let (shared, mut out): (Vec<ObjectInfo>, Vec<ObjectInfo>) =
        remote.into_iter().partition(|o| local_keys.contains(o.key.as_str()));
    let checked = for_each_bounded(shared, concurrency, |mut o| {
        let s3 = s3.clone();
        async move {
            let Some(meta) = s3.head(&o.key).await? else { return Ok::<_, S3Error>(None) };
            o.size = meta.size;
            o.last_modified_ms = meta.last_modified_ms as i64;
            o.sha256 = meta.sha256.map(Sha256Digest);
            Ok(Some(o))
        }
    })
    .await;
    for c in checked {
        out.extend(c?);
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(out)
}

/// The SHA-256 of an object S3 keeps no checksum for (a foreign upload), by reading it; `None`
/// when it is gone.
pub async fn remote_hash(s3: &S3Store, key: &str) -> Result<Option<Sha256Digest>, S3Error> {
    match s3.get(key).await {
        Ok(bytes) => Ok(Some(Sha256Digest(crate::manager::sha256(&bytes)))),
        Err(S3Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

fn join_panic(e: tokio::task::JoinError) -> LocalError {
    match e.try_into_panic() {
        Ok(p) => std::panic::resume_unwind(p),
        Err(e) => LocalError::Io {
            op: "inventory",
            path: PathBuf::new(),
            source: std::io::Error::other(e.to_string()),
        },
    }
}
