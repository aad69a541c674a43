//! The pending-sync journal: saves that landed locally because S3 was unreachable (or the
//! month's request budget was spent), so the next save, `kompass sync`, `kompass serve` or
//! `kompass migrate` uploads them.
//!
//! A table of the state database (`pending_sync` in `{data_dir}/.kompass/state.sqlite3`, see
//! [`crate::statedb`]): one row per key, the latest record winning, in the order the winners
//! were recorded. Each record is one transaction, committed with `synchronous=FULL` on the
//! journal's own connection (a queued save survives a power cut, as the fsync'd JSON lines
//! did), and concurrent writers in any number of processes queue without losing a record.
//!
//! Earlier versions kept the journal as JSON lines in `.kompass/pending-sync.jsonl`. The first
//! open of the database imports that file in one transaction, marked with the file's SHA-256
//! (so a crash before the rename never imports it twice), then renames it aside to
//! `pending-sync.jsonl.imported-{unix ms}`: kept for the operator, never deleted silently.
//! Unreadable lines (a torn last line from a crash) are logged and stay in that file.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use kompass_core::key::{ObjectKey, UserId};
use serde::{Deserialize, Serialize};

use crate::statedb::{StateDb, StateError};
use crate::store::local::{LocalError, STATE_DIR, io_error, sync_dir, write_atomic};

/// The file earlier versions kept the journal in, imported on first open.
pub const JOURNAL_FILE: &str = "pending-sync.jsonl";
/// What an imported [`JOURNAL_FILE`] is renamed to start with (`…imported-{unix ms}`).
pub const IMPORTED_PREFIX: &str = "pending-sync.jsonl.imported-";

/// A save waiting to be uploaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingEntry {
    /// The object saved.
    pub key: ObjectKey,
    /// SHA-256 of the content saved.
    pub sha256: [u8; 32],
    /// Size of the content saved, in bytes.
    pub size: u64,
    /// When it was recorded, milliseconds since the Unix epoch.
    pub recorded_at_ms: u64,
}

/// A line of an old JSON-lines journal that could not be imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLine {
    /// 1-based line number.
    pub line: usize,
    /// Whether it is an unterminated last line: the trace of a crash during an append.
    pub torn: bool,
    /// What is wrong with it.
    pub reason: String,
}

/// What importing an old JSON-lines journal did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Imported {
    /// Records imported (every readable line; later lines of a key win).
    pub records: usize,
    /// Lines skipped; they stay in the renamed file.
    pub bad_lines: Vec<BadLine>,
    /// Where the old file now is.
    pub renamed_to: Option<PathBuf>,
}

/// The on-disk form of one record of the old JSON-lines journal.
#[derive(Serialize, Deserialize)]
struct Line {
    key: String,
    sha256: String,
    size: u64,
    recorded_at_ms: u64,
}

fn parse_line(bytes: &[u8]) -> Result<PendingEntry, String> {
    let line: Line = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    let key = ObjectKey::from_s3_key(&line.key).map_err(|e| e.to_string())?;
    let sha256 = parse_sha256(&line.sha256)?;
    Ok(PendingEntry { key, sha256, size: line.size, recorded_at_ms: line.recorded_at_ms })
}

/// A hex SHA-256 as the journal stores it.
pub(crate) fn parse_sha256(hex_digest: &str) -> Result<[u8; 32], String> {
    let mut sha256 = [0u8; 32];
    hex::decode_to_slice(hex_digest, &mut sha256)
        .map_err(|e| format!("sha256 is not 64 hex digits: {e}"))?;
    Ok(sha256)
}

/// Every readable record in file order, and the lines that are not.
fn parse_all(bytes: &[u8]) -> (Vec<PendingEntry>, Vec<BadLine>) {
    let mut entries = Vec::new();
    let mut bad = Vec::new();
    let mut lines: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
    // A file ending in a newline splits into a final empty piece: not a line.
    let terminated = lines.last().is_some_and(|l| l.is_empty());
    if terminated {
        lines.pop();
    }
    let count = lines.len();
    for (i, raw) in lines.into_iter().enumerate() {
        if raw.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match parse_line(raw) {
            Ok(e) => entries.push(e),
            Err(reason) => {
                bad.push(BadLine { line: i + 1, torn: !terminated && i + 1 == count, reason })
            }
        }
    }
    (entries, bad)
}

/// Imports `{data_dir}/.kompass/pending-sync.jsonl` into `db`, once, and renames it aside.
/// Called by [`StateDb::open`]; a no-op when there is no such file.
pub(crate) fn import_jsonl(db: &StateDb, data_dir: &Path) -> Result<Imported, StateError> {
    let dir = data_dir.join(STATE_DIR);
    let path = dir.join(JOURNAL_FILE);
    match fs::symlink_metadata(&path) {
        Ok(m) if m.file_type().is_symlink() => {
            return Err(LocalError::Symlink { path }.into());
        }
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Imported::default()),
        Err(e) => return Err(io_error("inspect", &path, e).into()),
    }
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        // Another process imported and renamed it meanwhile.
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Imported::default()),
        Err(e) => return Err(io_error("read", &path, e).into()),
    };
    let digest = hex::encode(crate::manager::sha256(&bytes));
    let (entries, bad_lines) = parse_all(&bytes);
    let records = db.write(|tx| {
        // Imported already, by a run that stopped before the rename (or another process).
        if tx.meta("journal_jsonl_imported")?.as_deref() == Some(digest.as_str()) {
            return Ok::<_, StateError>(0);
        }
        for e in &entries {
            tx.queue(e)?;
        }
        tx.set_meta("journal_jsonl_imported", &digest)?;
        Ok(entries.len())
    })?;
    for b in &bad_lines {
        let what = if b.torn { "torn last line (interrupted save)" } else { "unreadable line" };
        tracing::warn!("{}:{}: not imported, {what}: {}", path.display(), b.line, b.reason);
    }
    let aside = dir.join(format!("{IMPORTED_PREFIX}{}", crate::manager::now_ms().max(0)));
    let renamed_to = match fs::rename(&path, &aside) {
        Ok(()) => {
            sync_dir(&dir)?;
            tracing::info!(
                "imported {records} pending-sync record(s) from {} into {}; the old file is kept as {}",
                path.display(),
                db.path().display(),
                aside.display()
            );
            Some(aside)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(io_error("rename aside", &path, e).into()),
    };
    Ok(Imported { records, bad_lines, renamed_to })
}

/// The imported (renamed-aside) old journals of `data_dir`.
fn imported_files(data_dir: &Path) -> Result<Vec<PathBuf>, LocalError> {
    let dir = data_dir.join(STATE_DIR);
    let rd = match fs::read_dir(&dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_error("list", &dir, e)),
    };
    let mut out = Vec::new();
    for e in rd {
        let e = e.map_err(|e| io_error("list", &dir, e))?;
        if e.file_name().to_str().is_some_and(|n| n.starts_with(IMPORTED_PREFIX))
            && e.file_type().map_err(|err| io_error("inspect", &e.path(), err))?.is_file()
        {
            out.push(e.path());
        }
    }
    out.sort();
    Ok(out)
}

/// The pending-sync journal of one data directory.
#[derive(Debug)]
pub struct Journal {
    root: PathBuf,
    db: StateDb,
}

impl Journal {
    /// The journal of `data_dir`: opens (creating if needed) its state database, importing an
    /// old JSON-lines journal once. A damaged or locked database is an error that names it;
    /// nothing is changed then.
    pub fn open(data_dir: impl AsRef<Path>) -> Result<Self, StateError> {
        let root = data_dir.as_ref().to_path_buf();
        let db = StateDb::open(&root)?;
        // A queued save must survive a power cut: the journal's commits are synced.
        db.set_durable()?;
        Ok(Journal { root, db })
    }

    /// The database file the journal lives in.
    pub fn path(&self) -> &Path {
        self.db.path()
    }

    /// Records that `key` (`size` bytes, `sha256`) was saved locally and still needs
    /// uploading; replaces an earlier record of the same key.
    pub fn record(
        &self,
        key: &ObjectKey,
        size: u64,
        sha256: &[u8; 32],
        now_ms: u64,
    ) -> Result<(), StateError> {
        let entry =
            PendingEntry { key: key.clone(), sha256: *sha256, size, recorded_at_ms: now_ms };
        self.db.write(|tx| tx.queue(&entry))
    }

    /// Saves still waiting for upload, one per key (latest wins), oldest first.
    pub fn pending(&self) -> Result<Vec<PendingEntry>, StateError> {
        self.db.read(|tx| tx.pending())
    }

    /// How many saves wait for upload (without reading them).
    pub fn count(&self) -> Result<usize, StateError> {
        self.db.read(|tx| tx.pending_count())
    }

    /// Whether nothing is waiting for upload.
    pub fn is_empty(&self) -> Result<bool, StateError> {
        Ok(self.count()? == 0)
    }

    /// Forgets every record of `keys`, whatever was recorded for them.
    pub fn complete(&self, keys: &[ObjectKey]) -> Result<(), StateError> {
        self.db.write(|tx| keys.iter().try_for_each(|k| tx.unqueue(k)))
    }

    /// Forgets each uploaded entry, but keeps a record made since it was read: a save
    /// recorded while the upload ran still needs its own upload.
    pub fn complete_entries(&self, uploaded: &[PendingEntry]) -> Result<(), StateError> {
        self.db.write(|tx| uploaded.iter().try_for_each(|e| tx.unqueue_entry(e)))
    }

    /// Removes `user`'s lines from the old journals kept aside after their import (an erase
    /// leaves no trace of the user); returns how many lines went. Other lines, unreadable
    /// ones included, are kept.
    pub fn forget_imported(&self, user: &UserId) -> Result<usize, LocalError> {
        let mut removed = 0;
        for path in imported_files(&self.root)? {
            let bytes = fs::read(&path).map_err(|e| io_error("read", &path, e))?;
            let mut kept = Vec::with_capacity(bytes.len());
            let mut dropped = 0;
            for raw in bytes.split_inclusive(|b| *b == b'\n') {
                let line = raw.strip_suffix(b"\n").unwrap_or(raw);
                let theirs = parse_line(line).is_ok_and(|e| e.key.owner() == Some(user))
                    // An unreadable line that still names the user's prefix goes too.
                    || contains(line, format!("users/{}/", user.as_str()).as_bytes());
                if theirs {
                    dropped += 1;
                } else {
                    kept.extend_from_slice(raw);
                }
            }
            if dropped > 0 {
                write_atomic(&path, &kept)?;
                removed += dropped;
            }
        }
        Ok(removed)
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}
