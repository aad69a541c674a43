//! Saving an upload that was streamed into a temp file in its key's folder (the server's
//! upload route), so a large body is never held in memory: admission for its real size, then
//! the rename into place, then the cleanup admission planned. Refused or failed, the temp file
//! is removed and nothing stored changes; nothing is deleted before the upload is stored.

use kompass_core::admission::{PlannedDeletion, Refusal, Upload, Via};
use kompass_core::fifo::Deletion;
use kompass_core::key::DataType;

use super::{Backend, Manager, ManagerError, SaveOutcome};
use crate::store::Store;
use crate::store::local::PendingPut;

impl<R: Store> Manager<R> {
    /// Refuses `size` when it is over the file size limit (before anything is read, written
    /// or asked).
    pub fn check_file_size(&self, size: u64) -> Result<(), ManagerError> {
        let limit = self.config.limits.max_file_bytes;
        if size > limit {
            return Err(ManagerError::Refused(Refusal::Size(
                kompass_core::quota::Refusal::FileTooLarge { size, limit },
            )));
        }
        Ok(())
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
        let upload = Upload { key: key.clone(), size, via: Via::Direct };
        // Asked before the rename: until then the bytes are an invisible temp file.
        let admitted =
            self.admit(&upload, Backend::Local)?.into_result().map_err(ManagerError::Refused)?;
        let stored = self.local.finish_put(put).map_err(ManagerError::from).and_then(|meta| {
            let rec = meta.record(&key);
            self.state.write(|tx| tx.local().put_object(&key, rec.size, rec.last_modified))?;
            Ok(())
        });
        self.state.write(|tx| tx.release(&key))?;
        stored?;
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
