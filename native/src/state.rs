//! Small JSON state files in `{data_dir}/.kompass/` (the monthly request ledger, the S3
//! inventory cache): written atomically, read-modify-written under an advisory file lock so
//! several processes (and threads) do not lose each other's updates.

use std::fs;
use std::io;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use kompass_core::key::FileName;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::store::local::{
    LocalError, STATE_DIR, create_dirs, find_file, io_error, lock, write_atomic,
};

/// What to do with a state file that cannot be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnCorrupt {
    /// Refuse with [`LocalError::Corrupt`]: for state that must not be lost silently (a ledger).
    Fail,
    /// Warn and start from the default: for caches that can be rebuilt.
    StartFresh,
}

/// A typed JSON state file `{data_dir}/.kompass/{name}.json`, with `{name}.lock` beside it.
#[derive(Debug, Clone)]
pub struct StateFile<T> {
    root: PathBuf,
    file_name: String,
    path: PathBuf,
    lock_path: PathBuf,
    on_corrupt: OnCorrupt,
    _value: PhantomData<fn() -> T>,
}

impl<T: Serialize + DeserializeOwned + Default> StateFile<T> {
    /// The state file `name` (e.g. `request-ledger`) of `data_dir`; nothing is created until
    /// the first save.
    pub fn open(
        data_dir: impl Into<PathBuf>,
        name: &str,
        on_corrupt: OnCorrupt,
    ) -> Result<Self, LocalError> {
        let root = data_dir.into();
        let file_name = FileName::new(&format!("{name}.json"))?.as_str().to_owned();
        let lock_name = FileName::new(&format!("{name}.lock"))?;
        let dir = root.join(STATE_DIR);
        Ok(StateFile {
            path: dir.join(&file_name),
            lock_path: dir.join(lock_name.as_str()),
            file_name,
            root,
            on_corrupt,
            _value: PhantomData,
        })
    }

    /// The state file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The stored value, or the default when there is none yet.
    pub fn load(&self) -> Result<T, LocalError> {
        if find_file(&self.root, &[STATE_DIR, &self.file_name])?.is_none() {
            return Ok(T::default());
        }
        let _lock = lock(&self.lock_path, false)?;
        Ok(self.load_locked()?.0)
    }

    /// Replaces the stored value.
    pub fn save(&self, value: &T) -> Result<(), LocalError> {
        create_dirs(&self.root, &[STATE_DIR])?;
        let _lock = lock(&self.lock_path, true)?;
        self.save_locked(value)
    }

    /// Loads, applies `f`, and saves (unless nothing changed), all under one exclusive lock, so
    /// concurrent updates from other processes or threads are not lost. Returns what `f`
    /// returns.
    pub fn update<R>(&self, f: impl FnOnce(&mut T) -> R) -> Result<R, LocalError> {
        create_dirs(&self.root, &[STATE_DIR])?;
        let _lock = lock(&self.lock_path, true)?;
        let (mut value, was_corrupt) = self.load_locked()?;
        let before = self.encode(&value)?;
        let out = f(&mut value);
        let after = self.encode(&value)?;
        if before != after || was_corrupt {
            write_atomic(&self.path, &after)?;
        }
        Ok(out)
    }

    /// The stored value (default when absent), and whether a corrupt file was replaced by the
    /// default (so the next save must overwrite it even if nothing else changes).
    fn load_locked(&self) -> Result<(T, bool), LocalError> {
        // Checked again under the lock: the file may have been replaced by a link meanwhile.
        if find_file(&self.root, &[STATE_DIR, &self.file_name])?.is_none() {
            return Ok((T::default(), false));
        }
        let bytes = match fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((T::default(), false)),
            Err(e) => return Err(io_error("read", &self.path, e)),
        };
        match serde_json::from_slice(&bytes) {
            Ok(v) => Ok((v, false)),
            Err(e) => match self.on_corrupt {
                OnCorrupt::Fail => Err(LocalError::Corrupt {
                    path: self.path.clone(),
                    detail: e.to_string(),
                    hint: "move it aside and run again to start a fresh one (its contents \
                           will be lost), or restore it from a backup"
                        .into(),
                }),
                OnCorrupt::StartFresh => {
                    tracing::warn!(
                        "{} is corrupt ({e}); starting afresh, it will be rebuilt",
                        self.path.display()
                    );
                    Ok((T::default(), true))
                }
            },
        }
    }

    fn save_locked(&self, value: &T) -> Result<(), LocalError> {
        write_atomic(&self.path, &self.encode(value)?)
    }

    fn encode(&self, value: &T) -> Result<Vec<u8>, LocalError> {
        let mut bytes = serde_json::to_vec_pretty(value).map_err(|e| LocalError::Corrupt {
            path: self.path.clone(),
            detail: format!("the value cannot be written as JSON: {e}"),
            hint: "this is a bug in kompass; please report it".into(),
        })?;
        bytes.push(b'\n');
        Ok(bytes)
    }
}
