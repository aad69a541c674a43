//! The pending-sync journal: saves that landed locally because S3 was unreachable, so the
//! next run (or `kompass migrate`) uploads them.
//!
//! `{data_dir}/.kompass/pending-sync.jsonl`, append-only JSON lines
//! `{"key": s3 key, "sha256": hex, "size": n, "recorded_at_ms": n}`, fsync'd on append. A crash
//! mid-append leaves a torn last line: readers skip and report it, the next append cuts it off.
//! Every read-modify-write holds an advisory lock on `pending-sync.lock` (a separate file,
//! because completing rewrites the journal by atomic rename).

use std::collections::{HashMap, HashSet};
use std::fs::{self, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use kompass_core::key::ObjectKey;
use serde::{Deserialize, Serialize};

use crate::store::local::{
    FileLock, LocalError, STATE_DIR, create_dirs, find_file, io_error, lock, sync_dir, write_atomic,
};

/// The journal's file name inside the state directory.
pub const JOURNAL_FILE: &str = "pending-sync.jsonl";
/// The lock file guarding the journal.
pub const JOURNAL_LOCK_FILE: &str = "pending-sync.lock";

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

/// A journal line that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLine {
    /// 1-based line number.
    pub line: usize,
    /// Whether it is an unterminated last line: the trace of a crash during an append.
    pub torn: bool,
    /// What is wrong with it.
    pub reason: String,
}

/// What the journal holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JournalContents {
    /// Pending saves, one per key (the latest record wins), oldest first.
    pub entries: Vec<PendingEntry>,
    /// Lines skipped, for the caller to report.
    pub bad_lines: Vec<BadLine>,
}

/// The on-disk form of one record.
#[derive(Serialize, Deserialize)]
struct Line {
    key: String,
    sha256: String,
    size: u64,
    recorded_at_ms: u64,
}

impl Line {
    fn from_entry(e: &PendingEntry) -> Self {
        Line {
            key: e.key.s3_key(),
            sha256: hex::encode(e.sha256),
            size: e.size,
            recorded_at_ms: e.recorded_at_ms,
        }
    }

    fn into_entry(self) -> Result<PendingEntry, String> {
        let key = ObjectKey::from_s3_key(&self.key).map_err(|e| e.to_string())?;
        let mut sha256 = [0u8; 32];
        hex::decode_to_slice(&self.sha256, &mut sha256)
            .map_err(|e| format!("sha256 is not 64 hex digits: {e}"))?;
        Ok(PendingEntry { key, sha256, size: self.size, recorded_at_ms: self.recorded_at_ms })
    }
}

fn parse_line(bytes: &[u8]) -> Result<PendingEntry, String> {
    let line: Line = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    line.into_entry()
}

fn encode_line(e: &PendingEntry) -> Vec<u8> {
    let mut out = serde_json::to_vec(&Line::from_entry(e)).expect("a journal line always encodes");
    out.push(b'\n');
    out
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

/// One entry per key, the latest record winning, in the order the winners were recorded.
fn dedup_latest(entries: Vec<PendingEntry>) -> Vec<PendingEntry> {
    let last: HashMap<&ObjectKey, usize> =
        entries.iter().enumerate().map(|(i, e)| (&e.key, i)).collect();
    let keep: HashSet<usize> = last.into_values().collect();
    entries.iter().enumerate().filter(|(i, _)| keep.contains(i)).map(|(_, e)| e.clone()).collect()
}

/// The pending-sync journal of one data directory.
#[derive(Debug, Clone)]
pub struct Journal {
    root: PathBuf,
    path: PathBuf,
    lock_path: PathBuf,
}

impl Journal {
    /// The journal of `data_dir`; nothing is created until the first record.
    pub fn open(data_dir: impl Into<PathBuf>) -> Result<Self, LocalError> {
        let root = data_dir.into();
        let dir = root.join(STATE_DIR);
        // Refuse a linked state directory up front rather than on the first save.
        if let Ok(m) = fs::symlink_metadata(&dir)
            && m.file_type().is_symlink()
        {
            return Err(LocalError::Symlink { path: dir });
        }
        Ok(Journal { path: dir.join(JOURNAL_FILE), lock_path: dir.join(JOURNAL_LOCK_FILE), root })
    }

    /// The journal file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records that `key` (`size` bytes, `sha256`) was saved locally and still needs uploading.
    pub fn record(
        &self,
        key: &ObjectKey,
        size: u64,
        sha256: &[u8; 32],
        now_ms: u64,
    ) -> Result<(), LocalError> {
        let dir = create_dirs(&self.root, &[STATE_DIR])?;
        let _lock = lock(&self.lock_path, true)?;
        if let Ok(m) = fs::symlink_metadata(&self.path)
            && m.file_type().is_symlink()
        {
            return Err(LocalError::Symlink { path: self.path.clone() });
        }
        let existed = self.path.exists();
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&self.path)
            .map_err(|e| self.io("open", e))?;
        self.mend_tail(&mut file)?;
        let entry =
            PendingEntry { key: key.clone(), sha256: *sha256, size, recorded_at_ms: now_ms };
        file.write_all(&encode_line(&entry)).map_err(|e| self.io("append to", e))?;
        file.sync_data().map_err(|e| self.io("flush to disk", e))?;
        if !existed {
            sync_dir(&dir)?;
        }
        Ok(())
    }

    /// Makes sure the next append starts a line: a torn last line from a crash is cut off (it
    /// was never acknowledged); a complete record that only lacks its newline gets one.
    fn mend_tail(&self, file: &mut fs::File) -> Result<(), LocalError> {
        let len = file.metadata().map_err(|e| self.io("inspect", e))?.len();
        if len == 0 {
            return Ok(());
        }
        let mut last = [0u8; 1];
        file.seek(SeekFrom::End(-1))
            .and_then(|_| file.read_exact(&mut last))
            .map_err(|e| self.io("read", e))?;
        if last[0] == b'\n' {
            return Ok(());
        }
        let mut bytes = Vec::new();
        file.seek(SeekFrom::Start(0))
            .and_then(|_| file.read_to_end(&mut bytes))
            .map_err(|e| self.io("read", e))?;
        let start = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        if parse_line(&bytes[start..]).is_ok() {
            file.write_all(b"\n").map_err(|e| self.io("append to", e))?;
        } else {
            tracing::warn!(
                "{}: dropping a torn last line ({} bytes) left by an interrupted save",
                self.path.display(),
                bytes.len() - start
            );
            file.set_len(start as u64).map_err(|e| self.io("truncate", e))?;
        }
        Ok(())
    }

    /// Everything in the journal, with unreadable lines listed rather than fatal.
    pub fn read(&self) -> Result<JournalContents, LocalError> {
        if find_file(&self.root, &[STATE_DIR, JOURNAL_FILE])?.is_none() {
            return Ok(JournalContents::default());
        }
        let _lock = lock(&self.lock_path, false)?;
        self.read_locked()
    }

    fn read_locked(&self) -> Result<JournalContents, LocalError> {
        let bytes = match fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(JournalContents::default()),
            Err(e) => return Err(self.io("read", e)),
        };
        let (entries, bad_lines) = parse_all(&bytes);
        Ok(JournalContents { entries: dedup_latest(entries), bad_lines })
    }

    /// Saves still waiting for upload, one per key (latest wins), oldest first. Unreadable
    /// lines are logged; use [`Journal::read`] to get them.
    pub fn pending(&self) -> Result<Vec<PendingEntry>, LocalError> {
        let contents = self.read()?;
        for bad in &contents.bad_lines {
            let what =
                if bad.torn { "torn last line (interrupted save)" } else { "unreadable line" };
            tracing::warn!("{}:{}: skipped {what}: {}", self.path.display(), bad.line, bad.reason);
        }
        Ok(contents.entries)
    }

    /// Whether nothing is waiting for upload.
    pub fn is_empty(&self) -> Result<bool, LocalError> {
        Ok(self.pending()?.is_empty())
    }

    /// Forgets every record of `keys`, whatever was recorded for them.
    pub fn complete(&self, keys: &[ObjectKey]) -> Result<(), LocalError> {
        let done: HashSet<&ObjectKey> = keys.iter().collect();
        self.rewrite(|entries| entries.retain(|e| !done.contains(&e.key)))
    }

    /// Forgets each uploaded entry and any older record of its key, but keeps a record made
    /// since it was read: a save recorded while the upload ran still needs its own upload.
    pub fn complete_entries(&self, uploaded: &[PendingEntry]) -> Result<(), LocalError> {
        self.rewrite(|entries| {
            for done in uploaded {
                let Some(upto) = entries.iter().rposition(|e| e == done) else { continue };
                let mut i = 0;
                entries.retain(|e| {
                    let drop = i <= upto && e.key == done.key;
                    i += 1;
                    !drop
                });
            }
        })
    }

    /// Rewrites the journal atomically, under the lock, with `edit` applied to its records.
    /// Unreadable lines are dropped (and logged); an empty journal is removed.
    fn rewrite(&self, edit: impl FnOnce(&mut Vec<PendingEntry>)) -> Result<(), LocalError> {
        if find_file(&self.root, &[STATE_DIR, JOURNAL_FILE])?.is_none() {
            return Ok(());
        }
        let _lock: FileLock = lock(&self.lock_path, true)?;
        let bytes = match fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(self.io("read", e)),
        };
        let (mut entries, bad) = parse_all(&bytes);
        for b in &bad {
            tracing::warn!(
                "{}:{}: dropping unreadable line: {}",
                self.path.display(),
                b.line,
                b.reason
            );
        }
        edit(&mut entries);
        let entries = dedup_latest(entries);
        if entries.is_empty() {
            match fs::remove_file(&self.path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(self.io("remove", e)),
            }
            return sync_dir(&self.root.join(STATE_DIR));
        }
        let out: Vec<u8> = entries.iter().flat_map(encode_line).collect();
        write_atomic(&self.path, &out)
    }

    fn io(&self, op: &'static str, e: io::Error) -> LocalError {
        io_error(op, &self.path, e)
    }
}
