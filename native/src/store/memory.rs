//! An in-memory [`Store`] (a `BTreeMap`) for unit tests of the manager: same contract as the
//! local and S3 stores, with a clock the test sets, request counts, and an outage switch.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use kompass_core::admission::StoredObject;
use kompass_core::key::ObjectKey;
use kompass_core::time::UnixMs;

use super::s3::RequestCounts;
use super::{Backend, Listing, PutMode, Scope, Store, StoreError};

/// Objects in a map, ordered by key.
#[derive(Debug)]
pub struct MemoryStore {
    backend: Backend,
    objects: Mutex<BTreeMap<ObjectKey, (Vec<u8>, UnixMs)>>,
    counts: Mutex<RequestCounts>,
    clock: AtomicI64,
    down: AtomicBool,
}

impl MemoryStore {
    /// An empty store that reports itself as `backend`; its clock starts at 1.
    pub fn new(backend: Backend) -> Self {
        MemoryStore {
            backend,
            objects: Mutex::default(),
            counts: Mutex::default(),
            clock: AtomicI64::new(1),
            down: AtomicBool::new(false),
        }
    }

    /// Sets the time the next writes are stamped with.
    pub fn set_time(&self, at: UnixMs) {
        self.clock.store(at.0, Ordering::SeqCst);
    }

    /// Makes every operation fail as an outage (`true`) or work again.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// The keys stored, in order.
    pub fn keys(&self) -> Vec<ObjectKey> {
        self.map().keys().cloned().collect()
    }

    fn map(&self) -> std::sync::MutexGuard<'_, BTreeMap<ObjectKey, (Vec<u8>, UnixMs)>> {
        self.objects.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn count(&self, f: impl FnOnce(&mut RequestCounts)) {
        f(&mut self.counts.lock().unwrap_or_else(|e| e.into_inner()));
    }

    fn up(&self) -> Result<(), StoreError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(StoreError::Unreachable {
                backend: self.backend,
                detail: "the in-memory store is switched off".into(),
            });
        }
        Ok(())
    }

    fn record(key: &ObjectKey, (bytes, at): &(Vec<u8>, UnixMs)) -> StoredObject {
        StoredObject { key: key.clone(), size: bytes.len() as u64, last_modified: *at }
    }
}

impl Store for MemoryStore {
    fn backend(&self) -> Backend {
        self.backend
    }

    fn id(&self) -> String {
        format!("memory:{:p}", self)
    }

    async fn put(
        &self,
        key: &ObjectKey,
        bytes: &[u8],
        mode: PutMode,
    ) -> Result<StoredObject, StoreError> {
        self.up()?;
        self.count(|c| c.put += 1);
        let mut map = self.map();
        if mode == PutMode::CreateOnly && map.contains_key(key) {
            return Err(StoreError::Exists { key: key.s3_key(), backend: self.backend });
        }
        let value = (bytes.to_vec(), UnixMs(self.clock.load(Ordering::SeqCst)));
        let record = Self::record(key, &value);
        map.insert(key.clone(), value);
        Ok(record)
    }

    async fn get(&self, key: &ObjectKey) -> Result<Vec<u8>, StoreError> {
        self.up()?;
        self.count(|c| c.get += 1);
        self.map()
            .get(key)
            .map(|(b, _)| b.clone())
            .ok_or_else(|| StoreError::NotFound { key: key.s3_key(), backend: self.backend })
    }

    async fn head(&self, key: &ObjectKey) -> Result<Option<StoredObject>, StoreError> {
        self.up()?;
        self.count(|c| c.head += 1);
        Ok(self.map().get(key).map(|v| Self::record(key, v)))
    }

    async fn list(&self, scope: Scope<'_>) -> Result<Listing, StoreError> {
        self.up()?;
        self.count(|c| c.list += 1);
        let mut objects: Vec<StoredObject> = self
            .map()
            .iter()
            .filter(|(k, _)| scope.contains(k))
            .map(|(k, v)| Self::record(k, v))
            .collect();
        super::sort_by_key(&mut objects);
        Ok(Listing { objects, foreign: Vec::new() })
    }

    async fn delete(&self, key: &ObjectKey) -> Result<(), StoreError> {
        self.up()?;
        self.count(|c| c.delete += 1);
        self.map().remove(key);
        Ok(())
    }

    fn requests(&self) -> RequestCounts {
        *self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }
}
