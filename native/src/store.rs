//! The two places data lives: a directory on local disk and an S3 bucket, behind one [`Store`]
//! trait keyed by the core's [`ObjectKey`] and answering with the core's [`StoredObject`].
//!
//! The manager asks a `Store` for facts and to carry out decisions; which store it is
//! (local disk, S3, or [`memory::MemoryStore`] in unit tests) changes where bytes go, never
//! what is decided.

pub mod local;
pub mod local_store;
pub mod memory;
pub mod s3;
pub mod s3_store;

use std::future::Future;

use kompass_core::admission::StoredObject;
use kompass_core::key::{DataType, ObjectKey, UserId};
use kompass_core::time::UnixMs;
use serde::Serialize;
use thiserror::Error;

use local::LocalError;
use s3::{RequestCounts, S3Error};

pub use s3::PutMode;

/// Where a piece of data was stored or found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// The S3 bucket.
    S3,
    /// The local data directory.
    Local,
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Backend::S3 => "S3",
            Backend::Local => "local storage",
        })
    }
}

/// Which stored objects a listing covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope<'a> {
    /// Every object.
    All,
    /// One owner's objects of every data type (`None`: global data).
    Owner(Option<&'a UserId>),
    /// One owner's objects of one data type (`None`: global data).
    Type(Option<&'a UserId>, DataType),
}

impl Scope<'_> {
    /// Whether `key` is in this scope.
    pub fn contains(&self, key: &ObjectKey) -> bool {
        match *self {
            Scope::All => true,
            Scope::Owner(o) => key.owner() == o,
            Scope::Type(o, t) => key.owner() == o && key.data_type() == t,
        }
    }
}

/// A listing: the objects in the key layout, and the ones outside it (a bucket may hold keys
/// kompass did not write; they count against the bucket and are never served or cleaned).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    /// Objects in the key layout, sorted by key.
    pub objects: Vec<StoredObject>,
    /// Objects outside the layout: `(raw key, size, last modified)`. Only a [`Scope::All`]
    /// listing has them.
    pub foreign: Vec<(String, u64, UnixMs)>,
}

/// Why a store operation failed.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The local data directory failed.
    #[error(transparent)]
    Local(#[from] LocalError),
    /// S3 failed.
    #[error(transparent)]
    S3(S3Error),
    /// A create-only put found the key taken; nothing was written.
    #[error("{key} already exists in {backend}")]
    Exists {
        /// The object key.
        key: String,
        /// Where.
        backend: Backend,
    },
    /// Nothing is stored under the key.
    #[error("{key} is not stored in {backend}")]
    NotFound {
        /// The object key.
        key: String,
        /// Where it was looked for.
        backend: Backend,
    },
    /// The store cannot be reached (an outage: falling back to local storage helps).
    #[error("{backend} is unreachable: {detail}")]
    Unreachable {
        /// Which store.
        backend: Backend,
        /// What happened.
        detail: String,
    },
}

impl StoreError {
    /// Whether the store is out of reach (so a save may land locally and queue).
    pub fn is_outage(&self) -> bool {
        match self {
            StoreError::S3(e) => e.is_outage(),
            StoreError::Unreachable { .. } => true,
            _ => false,
        }
    }

    /// Whether this says the object does not exist.
    pub fn is_not_found(&self) -> bool {
        match self {
            StoreError::NotFound { .. } => true,
            StoreError::Local(e) => e.is_not_found(),
            StoreError::S3(S3Error::NotFound { .. }) => true,
            _ => false,
        }
    }
}

/// A place objects are stored, keyed by [`ObjectKey`] (object_store style). Async because S3
/// is; the local store does its (short, blocking) file IO inside the future, as before.
pub trait Store: Send + Sync {
    /// Which backend this is.
    fn backend(&self) -> Backend;

    /// What this store is, for telling a cached inventory of it apart (endpoint and bucket,
    /// or the data directory).
    fn id(&self) -> String;

    /// Stores `bytes` under `key` (replacing, or only when the key is free:
    /// [`StoreError::Exists`]); the stored object's record.
    fn put(
        &self,
        key: &ObjectKey,
        bytes: &[u8],
        mode: PutMode,
    ) -> impl Future<Output = Result<StoredObject, StoreError>> + Send;

    /// The content stored under `key` ([`StoreError::is_not_found`] when there is none).
    fn get(&self, key: &ObjectKey) -> impl Future<Output = Result<Vec<u8>, StoreError>> + Send;

    /// The record of `key`, or `None` when nothing is stored there.
    fn head(
        &self,
        key: &ObjectKey,
    ) -> impl Future<Output = Result<Option<StoredObject>, StoreError>> + Send;

    /// The objects in `scope`, sorted by key.
    fn list(&self, scope: Scope<'_>) -> impl Future<Output = Result<Listing, StoreError>> + Send;

    /// Removes `key`; removing a missing object succeeds (as on S3).
    fn delete(&self, key: &ObjectKey) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Requests sent so far, for the free-tier ledger (stores that are not billed: zero).
    fn requests(&self) -> RequestCounts {
        RequestCounts::default()
    }
}

/// Sorts a listing's objects by key (the order S3 lists in, so listings line up).
pub(crate) fn sort_by_key(objects: &mut [StoredObject]) {
    objects.sort_by_cached_key(|o| o.key.s3_key());
}

#[cfg(test)]
mod contract_tests;
