//! Saving an upload that was streamed into a temp file in its key's folder (the server's
//! upload route), so a large body is never held in memory: admission for its real size, then
//! the rename into place, then the cleanup admission planned. Refused or failed, the temp file
//! is removed and nothing stored changes; nothing is deleted before the upload is stored.

use kompass_core::admission::{PlannedDeletion, Refusal};
use kompass_core::fifo::Deletion;
use kompass_core::key::DataType;

use super::{Backend, Manager, ManagerError, SaveOutcome};
use crate::store::Store;
use crate::store::local::PendingPut;

impl<R: Store> Manager<R> {
    /// Refuses `size` when it is over the file size limit (before anything is read, written
    /// or asked).
    pub fn check_file_size(&self, size: u64) -> Result<(), ManagerError> {
        self.config
            .limits
            .check_file_size(size)
            .map_err(|r| ManagerError::Refused(Refusal::Size(r)))
    }

    /// Stores the bytes written to `put` (see [`crate::store::local::LocalStore::begin_put`])
    /// under its key: [`Manager::save`]'s rules (file size limit, rider data policy,
    /// admission, cleanup after the store) without a copy in memory when S3 is disabled.
    /// With S3 enabled the bytes are read back and saved by [`Manager::save`] (to the bucket,
    /// or queued locally while it cannot take them).
    pub async fn save_written(&self, put: PendingPut) -> Result<SaveOutcome, ManagerError> {
        let key = put.key().clone();
        let size = put.len();
        self.check_file_size(size)?;
        if self.s3.is_some() {
            let bytes = put.read_back()?;
            drop(put);
            return self.save(&key, &bytes).await;
        }
        if key.data_type() == DataType::Fitness {
            self.check_rider_data(&put.read_back()?)?;
        }
        // Asked before the rename: until then the bytes are an invisible temp file.
        let admitted = self.admit_and_store_local(&key, size, || {
            let meta = self.local.finish_put(put)?;
            self.index_local(&key, &meta)
        })?;
        let planned: Vec<Deletion> =
            admitted.cleanup.iter().map(PlannedDeletion::to_fifo).collect();
        // The upload is stored: a cleanup that fails is logged, not returned (as in S3), and
        // the next admission plans it again.
        let cleaned = match self.delete_planned_local(&planned) {
            Ok(()) => planned,
            Err(e) => {
                tracing::warn!(
                    "cleanup after the upload did not finish, the next save retries it: {e}"
                );
                Vec::new()
            }
        };
        Ok(SaveOutcome {
            backend: Backend::Local,
            key: key.s3_key(),
            bytes: size,
            cleaned,
            pending_sync: None,
        })
    }
}
