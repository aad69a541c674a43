//! [`Store`] for an S3 bucket: the typed face of the [`S3Store`] client. Keys become strings
//! only here, at the request.

use kompass_core::admission::StoredObject;
use kompass_core::key::{DataType, ObjectKey, type_prefix, user_prefix};
use kompass_core::time::UnixMs;

use super::s3::{ObjectMeta, PutMode, RequestCounts, S3Error, S3Store};
use super::{Backend, Listing, Scope, Store, StoreError, sort_by_key};

impl ObjectMeta {
    /// The core's record of this object, when its key is in the layout.
    pub fn record(&self) -> Option<StoredObject> {
        ObjectKey::from_s3_key(&self.key).ok().map(|key| StoredObject {
            key,
            size: self.size,
            last_modified: UnixMs(self.last_modified_ms as i64),
        })
    }
}

impl From<S3Error> for StoreError {
    fn from(e: S3Error) -> Self {
        match e {
            S3Error::PreconditionFailed { key } => StoreError::Exists { key, backend: Backend::S3 },
            S3Error::NotFound { key } => StoreError::NotFound { key, backend: Backend::S3 },
            e => StoreError::S3(e),
        }
    }
}

/// The S3 prefixes that cover `scope` (fewer keys listed than the whole bucket).
fn prefixes(scope: Scope<'_>) -> Vec<String> {
    match scope {
        Scope::All => vec![String::new()],
        Scope::Owner(Some(u)) => vec![user_prefix(u)],
        Scope::Owner(None) => DataType::ALL
            .into_iter()
            .filter(|t| t.allows_global())
            .map(|t| type_prefix(None, t))
            .collect(),
        Scope::Type(owner, t) => vec![type_prefix(owner, t)],
    }
}

impl Store for S3Store {
    fn backend(&self) -> Backend {
        Backend::S3
    }

    fn id(&self) -> String {
        self.target().bucket_url()
    }

    async fn put(
        &self,
        key: &ObjectKey,
        bytes: &[u8],
        mode: PutMode,
    ) -> Result<StoredObject, StoreError> {
        let digest = crate::manager::sha256(bytes);
        S3Store::put(self, &key.s3_key(), bytes.to_vec(), digest, mode).await?;
        // S3 sets the time; ours is within the request's round trip of it.
        Ok(StoredObject {
            key: key.clone(),
            size: bytes.len() as u64,
            last_modified: UnixMs(crate::manager::now_ms()),
        })
    }

    async fn get(&self, key: &ObjectKey) -> Result<Vec<u8>, StoreError> {
        Ok(S3Store::get(self, &key.s3_key()).await?)
    }

    async fn head(&self, key: &ObjectKey) -> Result<Option<StoredObject>, StoreError> {
        Ok(S3Store::head(self, &key.s3_key()).await?.map(|m| StoredObject {
            key: key.clone(),
            size: m.size,
            last_modified: UnixMs(m.last_modified_ms as i64),
        }))
    }

    async fn list(&self, scope: Scope<'_>) -> Result<Listing, StoreError> {
        let mut out = Listing::default();
        for prefix in prefixes(scope) {
            for m in S3Store::list(self, &prefix).await? {
                match m.record() {
                    // Deeper keys under a prefix (`users/u/routes/x/y`) are not in the scope.
                    Some(o) if scope.contains(&o.key) => out.objects.push(o),
                    Some(_) => {}
                    None if scope == Scope::All => {
                        let at = UnixMs(m.last_modified_ms as i64);
                        out.foreign.push((m.key, m.size, at));
                    }
                    None => {}
                }
            }
        }
        sort_by_key(&mut out.objects);
        Ok(out)
    }

    async fn delete(&self, key: &ObjectKey) -> Result<(), StoreError> {
        Ok(S3Store::delete(self, &key.s3_key()).await?)
    }

    fn requests(&self) -> RequestCounts {
        self.counts()
    }
}
