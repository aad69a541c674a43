//! [`Store`] for the local data directory: the typed face of [`LocalStore`].

use kompass_core::admission::StoredObject;
use kompass_core::key::{DataType, ObjectKey};
use kompass_core::time::UnixMs;

use super::local::{Entry, LocalMeta, LocalStore};
use super::{Backend, Listing, PutMode, Scope, Store, StoreError, sort_by_key};

impl LocalMeta {
    /// The core's record of the object stored as this file under `key`.
    pub fn record(&self, key: &ObjectKey) -> StoredObject {
        StoredObject {
            key: key.clone(),
            size: self.size,
            last_modified: UnixMs(self.last_modified_ms as i64),
        }
    }
}

impl Entry {
    /// The core's record of this object.
    pub fn record(&self) -> StoredObject {
        StoredObject {
            key: self.key.clone(),
            size: self.size,
            last_modified: UnixMs(self.last_modified_ms as i64),
        }
    }
}

impl LocalStore {
    /// The records in `scope`, sorted by key (a walk of the directories in scope only).
    pub fn records(&self, scope: Scope<'_>) -> Result<Vec<StoredObject>, StoreError> {
        let entries: Vec<Entry> = match scope {
            Scope::All => self.inventory()?.entries,
            Scope::Type(owner, t) => self.list(owner, t)?,
            Scope::Owner(owner) => {
                let mut all = Vec::new();
                for t in DataType::ALL {
                    let allowed = if owner.is_some() { t.allows_user() } else { t.allows_global() };
                    if allowed {
                        all.extend(self.list(owner, t)?);
                    }
                }
                all
            }
        };
        let mut out: Vec<StoredObject> = entries.iter().map(Entry::record).collect();
        sort_by_key(&mut out);
        Ok(out)
    }
}

impl Store for LocalStore {
    fn backend(&self) -> Backend {
        Backend::Local
    }

    fn id(&self) -> String {
        self.root().display().to_string()
    }

    async fn put(
        &self,
        key: &ObjectKey,
        bytes: &[u8],
        mode: PutMode,
    ) -> Result<StoredObject, StoreError> {
        let meta = match mode {
            PutMode::Overwrite => LocalStore::put(self, key, bytes)?,
            PutMode::CreateOnly => match self.put_new(key, bytes)? {
                Some(m) => m,
                None => {
                    return Err(StoreError::Exists { key: key.s3_key(), backend: Backend::Local });
                }
            },
        };
        Ok(meta.record(key))
    }

    async fn get(&self, key: &ObjectKey) -> Result<Vec<u8>, StoreError> {
        Ok(LocalStore::get(self, key)?)
    }

    async fn head(&self, key: &ObjectKey) -> Result<Option<StoredObject>, StoreError> {
        Ok(LocalStore::head(self, key)?.map(|m| m.record(key)))
    }

    async fn list(&self, scope: Scope<'_>) -> Result<Listing, StoreError> {
        Ok(Listing { objects: self.records(scope)?, foreign: Vec::new() })
    }

    async fn delete(&self, key: &ObjectKey) -> Result<(), StoreError> {
        LocalStore::delete(self, key)?;
        Ok(())
    }
}
