//! What can go wrong on local disk, each with the path and what to do about it.

use std::io;
use std::path::{Path, PathBuf};

use kompass_core::key::KeyError;
use thiserror::Error;

/// An error from the local data directory, the pending-sync journal or a state file.
#[derive(Debug, Error)]
pub enum LocalError {
    /// The object is not stored locally.
    #[error(
        "{key} is not stored locally (looked for {path}); list what is stored with `kompass list`"
    )]
    NotFound {
        /// The object's S3-style key.
        key: String,
        /// Where it was looked for.
        path: PathBuf,
    },
    /// The operating system refused access.
    #[error(
        "permission denied to {op} {path}: check that kompass can read and write DATA_DIRECTORY \
         (owner and mode of the directory and of this file), or choose another with --data-dir"
    )]
    PermissionDenied {
        /// What kompass was doing.
        op: &'static str,
        /// The path it was doing it to.
        path: PathBuf,
    },
    /// The disk (or the user's disk quota) is full.
    #[error(
        "no space left to {op} {path}: free disk space, or point DATA_DIRECTORY (--data-dir) \
         at a disk with room"
    )]
    DiskFull {
        /// What kompass was doing.
        op: &'static str,
        /// The path it was doing it to.
        path: PathBuf,
    },
    /// The file system is mounted read-only.
    #[error(
        "cannot {op} {path}: the file system is read-only; point DATA_DIRECTORY (--data-dir) at \
         a writable directory"
    )]
    ReadOnly {
        /// What kompass was doing.
        op: &'static str,
        /// The path it was doing it to.
        path: PathBuf,
    },
    /// A symbolic link inside the data directory: never followed, so data cannot escape it.
    #[error(
        "refusing to follow the symbolic link {path}: kompass never follows links inside the \
         data directory; replace the link with a real directory or file"
    )]
    Symlink {
        /// The link.
        path: PathBuf,
    },
    /// Something of the wrong kind is in the way (a directory where a file belongs, or a file
    /// where a directory belongs).
    #[error("cannot {op} {path}: {detail}")]
    Conflict {
        /// What kompass was doing.
        op: &'static str,
        /// The path in the way.
        path: PathBuf,
        /// What is in the way and what to do.
        detail: String,
    },
    /// A journal or state file kompass wrote cannot be read back.
    #[error("{path} is corrupt ({detail}); {hint}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
        /// What to do.
        hint: String,
    },
    /// Any other I/O failure.
    #[error("cannot {op} {path}: {source}")]
    Io {
        /// What kompass was doing.
        op: &'static str,
        /// The path it was doing it to.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// A name or key is invalid.
    #[error(transparent)]
    Key(#[from] KeyError),
}

impl LocalError {
    /// Whether this says the object does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, LocalError::NotFound { .. })
    }
}

/// Classifies an I/O error so the message can say what to do.
pub(crate) fn io_error(op: &'static str, path: &Path, source: io::Error) -> LocalError {
    use io::ErrorKind as K;
    let path = path.to_path_buf();
    match source.kind() {
        K::PermissionDenied => LocalError::PermissionDenied { op, path },
        K::StorageFull | K::QuotaExceeded => LocalError::DiskFull { op, path },
        K::ReadOnlyFilesystem => LocalError::ReadOnly { op, path },
        _ => LocalError::Io { op, path, source },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_os_errors_and_says_what_to_do() {
        let p = Path::new("/data/routes/a.json");
        let e = io_error("write", p, io::Error::from(io::ErrorKind::PermissionDenied));
        assert!(matches!(e, LocalError::PermissionDenied { .. }), "{e:?}");
        let msg = e.to_string();
        assert!(msg.contains("/data/routes/a.json") && msg.contains("DATA_DIRECTORY"), "{msg}");

        #[cfg(target_os = "linux")]
        {
            // ENOSPC and EDQUOT, as the kernel reports them.
            for code in [28, 122] {
                let e = io_error("write", p, io::Error::from_raw_os_error(code));
                assert!(matches!(e, LocalError::DiskFull { .. }), "errno {code}: {e:?}");
                assert!(e.to_string().contains("free disk space"), "{e}");
            }
            // EROFS.
            let e = io_error("write", p, io::Error::from_raw_os_error(30));
            assert!(matches!(e, LocalError::ReadOnly { .. }), "{e:?}");
        }

        let e = io_error("read", p, io::Error::other("boom"));
        assert!(matches!(e, LocalError::Io { .. }), "{e:?}");
        assert!(e.to_string().contains("boom"), "{e}");
    }
}
