//! Crash-safe file primitives: atomic replace, directory creation without following links,
//! advisory locks and streaming checksums. Shared by the store, the journal and state files.

use std::ffi::OsStr;
use std::fs::{self, File, Metadata, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

use super::error::{LocalError, io_error};

/// Marks a temporary file: `.{name}.tmp-{pid}-{counter}`. Valid object names never start
/// with a dot, so a temp file can never be mistaken for an object.
const TEMP_MARK: &str = ".tmp-";

/// Longest part of the target name kept in a temp name, so the temp name stays under the
/// 255-byte file-name limit even for a 255-byte target.
const TEMP_NAME_KEEP: usize = 200;

/// Makes temp names unique between threads of one process (the pid separates processes).
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Whether a directory entry name is one of our temporary files.
pub fn is_temp_name(name: &str) -> bool {
    name.starts_with('.') && name.contains(TEMP_MARK)
}

fn temp_name(target: &OsStr) -> String {
    let target = target.to_string_lossy();
    let mut cut = target.len().min(TEMP_NAME_KEEP);
    while !target.is_char_boundary(cut) {
        cut -= 1;
    }
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(".{}{TEMP_MARK}{}-{n}", &target[..cut], std::process::id())
}

/// Below this size a written file's pages stay cached (small files are read again soon).
const DROP_CACHE_FROM: usize = 1 << 20;

/// After a large file is on disk, gives its page-cache pages back. Why: a server storing
/// uploads keeps every file, so each write otherwise takes fresh pages from the kernel, and
/// taking fresh pages (reclaim, or a VM's lazily backed memory) measured 70–120 ms per 32 MiB
/// write here against 9 ms when the pages are recycled. The data is already durable (called
/// after fsync), so this only affects caching; a failure is harmless and ignored.
fn drop_cached(file: &File, len: usize) {
    #[cfg(target_os = "linux")]
    if len >= DROP_CACHE_FROM {
        use std::os::fd::AsRawFd as _;
        // SAFETY: a plain syscall on an open descriptor we own; no memory is passed.
        unsafe {
            libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, len);
}

/// Replaces `path` with `bytes` atomically: a crash at any point leaves either the old file or
/// the new one, never a torn one.
///
/// Writes a temp file in the same directory, fsyncs it, renames it over the target and
/// fsyncs the directory so the rename itself is durable. The parent directory must exist.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), LocalError> {
    let (name, dir) = split_target(path)?;
    let (tmp, file) = create_temp(dir, name)?;
    let result = fill_and_rename(file, &tmp, path, bytes);
    if result.is_err() {
        // Best effort: the temp file is invisible to listings anyway and can be swept.
        let _ = fs::remove_file(&tmp);
    }
    result?;
    sync_dir(dir)
}

/// Creates `path` with `bytes` atomically, unless something of that name exists: then
/// `Ok(false)` and nothing changes.
///
/// Like [`write_atomic`], but the temp file is hard-linked into place, which fails when the
/// name is taken (a rename would replace it), so two writers can never overwrite each other.
pub fn write_new(path: &Path, bytes: &[u8]) -> Result<bool, LocalError> {
    let (name, dir) = split_target(path)?;
    let (tmp, mut file) = create_temp(dir, name)?;
    let result = (|| {
        file.write_all(bytes).map_err(|e| io_error("write", &tmp, e))?;
        file.sync_all().map_err(|e| io_error("flush to disk", &tmp, e))?;
        drop_cached(&file, bytes.len());
        match fs::hard_link(&tmp, path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(io_error("link into place", path, e)),
        }
    })();
    // Linked or not, the temp name goes (the target keeps the content); a leftover would only
    // be swept later, so a failure here is not worth failing the write for.
    let _ = fs::remove_file(&tmp);
    if result? {
        sync_dir(dir)?;
        return Ok(true);
    }
    Ok(false)
}

/// The file name and the directory of a write target.
fn split_target(path: &Path) -> Result<(&OsStr, &Path), LocalError> {
    let name = path.file_name().ok_or_else(|| LocalError::Conflict {
        op: "write",
        path: path.to_path_buf(),
        detail: "the path does not end in a file name".into(),
    })?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    Ok((name, dir))
}

/// A new temp file beside `name` in `dir`. `create_new` never clobbers: a name left by a
/// crashed process with a recycled pid is simply skipped.
fn create_temp(dir: &Path, name: &OsStr) -> Result<(PathBuf, File), LocalError> {
    loop {
        let tmp = dir.join(temp_name(name));
        match OpenOptions::new().write(true).create_new(true).open(&tmp) {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io_error("create a temporary file", &tmp, e)),
        }
    }
}

fn fill_and_rename(
    mut file: File,
    tmp: &Path,
    path: &Path,
    bytes: &[u8],
) -> Result<(), LocalError> {
    file.write_all(bytes).map_err(|e| io_error("write", tmp, e))?;
    file.sync_all().map_err(|e| io_error("flush to disk", tmp, e))?;
    drop_cached(&file, bytes.len());
    drop(file);
    rename_into_place(tmp, path)
}

/// Renames a finished temp file over its target, explaining a directory in the way.
fn rename_into_place(tmp: &Path, path: &Path) -> Result<(), LocalError> {
    fs::rename(tmp, path).map_err(|e| match e.kind() {
        io::ErrorKind::IsADirectory | io::ErrorKind::DirectoryNotEmpty => LocalError::Conflict {
            op: "write",
            path: path.to_path_buf(),
            detail: "a directory of that name is in the way (for routes it may be a user's \
                     folder); choose another file name"
                .into(),
        },
        _ => io_error("rename into place", path, e),
    })
}

/// Written bytes after which [`TempFile::write`] asks the kernel to start writing them to
/// disk, so the final fsync waits only for the tail (the disk works while bytes still arrive).
const WRITEBACK_EVERY: u64 = 8 << 20;

/// A temp file beside its target, filled piece by piece (a streamed upload), then fsynced and
/// renamed over the target. Dropped before that, it is removed: an interrupted or refused
/// write leaves nothing behind and never touches the target.
#[derive(Debug)]
pub struct TempFile {
    tmp: PathBuf,
    file: File,
    written: u64,
    /// Bytes already handed to writeback.
    flushed: u64,
    synced: bool,
    persisted: bool,
}

impl TempFile {
    /// A new, empty temp file in the directory of `target` (which must exist).
    pub fn beside(target: &Path) -> Result<Self, LocalError> {
        let (name, dir) = split_target(target)?;
        let (tmp, file) = create_temp(dir, name)?;
        Ok(TempFile { tmp, file, written: 0, flushed: 0, synced: false, persisted: false })
    }

    /// Appends `bytes`.
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), LocalError> {
        self.file.write_all(bytes).map_err(|e| io_error("write", &self.tmp, e))?;
        self.written += bytes.len() as u64;
        self.synced = false;
        if self.written - self.flushed >= WRITEBACK_EVERY {
            self.start_writeback();
        }
        Ok(())
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.written
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.written == 0
    }

    /// The bytes written so far, read back.
    pub fn read_back(&self) -> Result<Vec<u8>, LocalError> {
        fs::read(&self.tmp).map_err(|e| io_error("read", &self.tmp, e))
    }

    /// Starts writing what is not yet on its way to disk, without waiting (Linux; elsewhere
    /// the fsync does it all). A hint: a failure shows up at the fsync.
    fn start_writeback(&mut self) {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd as _;
            let (from, len) = (self.flushed, self.written - self.flushed);
            if let (Ok(from), Ok(len)) = (i64::try_from(from), i64::try_from(len)) {
                // SAFETY: a plain syscall on an open descriptor we own; no memory is passed.
                unsafe {
                    libc::sync_file_range(
                        self.file.as_raw_fd(),
                        from,
                        len,
                        libc::SYNC_FILE_RANGE_WRITE,
                    );
                }
            }
        }
        self.flushed = self.written;
    }

    /// Makes the written bytes durable (fsync), then gives their page cache back.
    pub fn sync(&mut self) -> Result<(), LocalError> {
        if !self.synced {
            self.file.sync_all().map_err(|e| io_error("flush to disk", &self.tmp, e))?;
            drop_cached(&self.file, usize::try_from(self.written).unwrap_or(usize::MAX));
            self.synced = true;
        }
        Ok(())
    }

    /// Makes the written bytes durable (fsync) like [`TempFile::sync`], but leaves giving their
    /// page cache back to the caller ([`CachedPages::release`]), so that can happen off the
    /// path to the answer.
    pub fn sync_keep_cache(&mut self) -> Result<CachedPages, LocalError> {
        self.file.sync_all().map_err(|e| io_error("flush to disk", &self.tmp, e))?;
        self.synced = true;
        let len = usize::try_from(self.written).unwrap_or(usize::MAX);
        Ok(CachedPages { file: self.file.try_clone().ok(), len })
    }

    /// Syncs, then renames the file over `target` (in the same directory). The directory
    /// itself is not synced: the caller does that once the rename is final.
    pub fn persist(mut self, target: &Path) -> Result<(), LocalError> {
        self.sync()?;
        rename_into_place(&self.tmp, target)?;
        self.persisted = true;
        Ok(())
    }
}

/// The page cache of a file already made durable ([`TempFile::sync_keep_cache`]).
#[derive(Debug)]
pub struct CachedPages {
    /// A second handle on the file (none if the descriptor could not be duplicated).
    file: Option<File>,
    len: usize,
}

impl CachedPages {
    /// Gives the pages back (see [`drop_cached`]).
    pub fn release(self) {
        if let Some(file) = &self.file {
            drop_cached(file, self.len);
        }
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.persisted {
            // Best effort: a leftover is invisible to listings and swept later.
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// Makes a directory's entries (creations, renames, removals) durable.
pub fn sync_dir(dir: &Path) -> Result<(), LocalError> {
    #[cfg(unix)]
    {
        let d = File::open(dir).map_err(|e| io_error("open directory", dir, e))?;
        d.sync_all().map_err(|e| io_error("flush directory to disk", dir, e))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// The SHA-256 of a file, read in chunks so large files do not fill memory.
pub fn sha256_file(path: &Path) -> Result<[u8; 32], LocalError> {
    let mut file = File::open(path).map_err(|e| io_error("read", path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_error("read", path, e)),
        };
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().into())
}

/// Walks `segments` below `root` without following links: `Ok(Some)` when the last one is a
/// regular file, `Ok(None)` when it is missing or not a file, `Err(Symlink)` when any step is a
/// symbolic link.
pub(crate) fn find_file(
    root: &Path,
    segments: &[&str],
) -> Result<Option<(PathBuf, Metadata)>, LocalError> {
    let mut path = root.to_path_buf();
    for (i, seg) in segments.iter().enumerate() {
        path.push(seg);
        let meta = match fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e)
                if matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(io_error("inspect", &path, e)),
        };
        if meta.file_type().is_symlink() {
            return Err(LocalError::Symlink { path });
        }
        if i + 1 == segments.len() {
            return Ok(meta.is_file().then_some((path, meta)));
        }
        if !meta.is_dir() {
            return Ok(None);
        }
    }
    Ok(None)
}

/// Like [`find_file`] for a directory: `Ok(Some(path))` when every step is a real directory.
pub(crate) fn find_dir(root: &Path, segments: &[&str]) -> Result<Option<PathBuf>, LocalError> {
    let mut path = root.to_path_buf();
    for seg in segments {
        path.push(seg);
        match fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_symlink() => return Err(LocalError::Symlink { path }),
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Ok(None),
            Err(e)
                if matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(io_error("inspect", &path, e)),
        }
    }
    Ok(Some(path))
}

/// Creates `segments` below `root` (and `root` itself) as real directories, refusing links
/// below `root`, and fsyncs each parent that gained an entry so the new directory survives a
/// crash. Returns the deepest directory.
pub(crate) fn create_dirs(root: &Path, segments: &[&str]) -> Result<PathBuf, LocalError> {
    // The data directory itself is configuration: it may be (or sit under) a link.
    if !root.is_dir() {
        fs::create_dir_all(root).map_err(|e| io_error("create the data directory", root, e))?;
    }
    let mut path = root.to_path_buf();
    for seg in segments {
        let parent = path.clone();
        path.push(seg);
        match fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_symlink() => return Err(LocalError::Symlink { path }),
            Ok(m) if m.is_dir() => continue,
            Ok(_) => {
                return Err(LocalError::Conflict {
                    op: "create directory",
                    path,
                    detail: "a file of that name is in the way (for routes it may be an \
                             anonymous route named like this user); move or rename it"
                        .into(),
                });
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error("inspect", &path, e)),
        }
        match fs::create_dir(&path) {
            Ok(()) => sync_dir(&parent)?,
            // Another writer created it between our look and our create: fine if it is a
            // real directory.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let m = fs::symlink_metadata(&path).map_err(|e| io_error("inspect", &path, e))?;
                if m.file_type().is_symlink() {
                    return Err(LocalError::Symlink { path });
                }
                if !m.is_dir() {
                    return Err(LocalError::Conflict {
                        op: "create directory",
                        path,
                        detail: "a file of that name is in the way; move or rename it".into(),
                    });
                }
            }
            Err(e) => return Err(io_error("create directory", &path, e)),
        }
    }
    Ok(path)
}

/// An advisory lock held on a lock file until dropped (closing the file releases it).
#[derive(Debug)]
pub(crate) struct FileLock {
    _file: File,
}

/// Takes an advisory lock on `path` (created if missing), waiting for other holders.
///
/// Lock files are never replaced, unlike the data files they guard: a lock on a file that an
/// atomic rename later swaps out would guard nothing.
pub(crate) fn lock(path: &Path, exclusive: bool) -> Result<FileLock, LocalError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| io_error("open the lock file", path, e))?;
    if exclusive { file.lock() } else { file.lock_shared() }
        .map_err(|e| io_error("lock", path, e))?;
    Ok(FileLock { _file: file })
}

/// Milliseconds since the Unix epoch of a file's modification time (0 if unknown).
pub(crate) fn modified_ms(meta: &Metadata) -> u64 {
    meta.modified().map_or(0, |t| kompass_core::time::UnixMs::from_system_time(t).as_u64())
}
