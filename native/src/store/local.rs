//! The local data directory: one file per object, laid out as the spec says, written
//! atomically, never following a symbolic link below the data directory.
//!
//! Layout (paths come only from [`ObjectKey::local_segments`]):
//! `{data_dir}/{data_type}/{user_id}/{name}` for user data, `{data_dir}/{data_type}/{name}` for
//! global data, and routes saved by the original app at the root as
//! `{data_dir}/{YYYYmmdd_HHMMSS}_{name}.json`, read as anonymous routes. Kompass's own files
//! live in `{data_dir}/.kompass/`.

mod error;
mod fsio;
mod legacy;

use std::fmt;
use std::fs::{self, FileType, Metadata};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use kompass_core::key::{DataType, KeyError, ObjectKey, UserId};

pub use error::LocalError;
pub use fsio::{
    CachedPages, TempFile, is_temp_name, sha256_file, sync_dir, write_atomic, write_new,
};
pub(crate) use fsio::{create_dirs, find_file, lock};
pub use legacy::is_legacy_route_name;

pub(crate) use error::io_error;
use fsio::{find_dir, modified_ms};

/// The directory below the data directory that holds kompass's own state (journal, ledgers,
/// caches). Never listed as data.
pub const STATE_DIR: &str = ".kompass";

/// Size, modification time and location of a stored object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalMeta {
    /// Size in bytes.
    pub size: u64,
    /// Last modification, milliseconds since the Unix epoch.
    pub last_modified_ms: u64,
    /// The file holding it.
    pub path: PathBuf,
}

/// One stored object, as found by a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The object's key.
    pub key: ObjectKey,
    /// Size in bytes.
    pub size: u64,
    /// Last modification, milliseconds since the Unix epoch.
    pub last_modified_ms: u64,
    /// The file holding it.
    pub path: PathBuf,
    /// Whether it is a route the original app saved at the data directory root.
    pub legacy: bool,
}

/// Why a file or directory in the data directory is not part of the inventory.
#[derive(Debug)]
pub enum SkipReason {
    /// Its name (or its folder's) is not a valid user id or file name for its place.
    InvalidName(KeyError),
    /// Its name is not valid UTF-8.
    NotUtf8,
    /// A symbolic link: never followed.
    Symlink,
    /// Neither a regular file nor a directory (a socket, pipe or device).
    NotRegular,
    /// A directory where only files belong.
    UnexpectedDirectory,
    /// A file where a directory belongs.
    ExpectedDirectory,
    /// A legacy root route hidden by a newer `routes/{name}` of the same name.
    ShadowedLegacy {
        /// The file that wins.
        by: PathBuf,
    },
    /// The directory could not be read.
    Unreadable(String),
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::InvalidName(e) => write!(f, "{e}"),
            SkipReason::NotUtf8 => f.write_str("the name is not valid UTF-8"),
            SkipReason::Symlink => f.write_str("a symbolic link (never followed)"),
            SkipReason::NotRegular => f.write_str("not a regular file or directory"),
            SkipReason::UnexpectedDirectory => {
                f.write_str("a directory where the layout has only files")
            }
            SkipReason::ExpectedDirectory => f.write_str("a file where the layout has a directory"),
            SkipReason::ShadowedLegacy { by } => {
                write!(f, "a legacy route hidden by {} of the same name", by.display())
            }
            SkipReason::Unreadable(e) => write!(f, "cannot be read: {e}"),
        }
    }
}

/// A path left out of a listing, and why, so a caller can report it.
#[derive(Debug)]
pub struct Skipped {
    /// The path left out.
    pub path: PathBuf,
    /// Why.
    pub reason: SkipReason,
}

impl fmt::Display for Skipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.reason)
    }
}

/// Everything in the data directory: the objects, what was left out and leftover temp files.
#[derive(Debug, Default)]
pub struct Inventory {
    /// Every object, sorted by S3 key (the order S3 lists in, so inventories line up).
    pub entries: Vec<Entry>,
    /// Paths left out, with the reason.
    pub skipped: Vec<Skipped>,
    /// Temporary files left by interrupted writes (see [`LocalStore::sweep_temp_files`]).
    pub temp_files: Vec<PathBuf>,
}

/// The local data directory.
#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    /// A store rooted at `data_dir`; nothing is created until the first write.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        LocalStore { root: data_dir.into() }
    }

    /// The data directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where kompass keeps its own state.
    pub fn state_dir(&self) -> PathBuf {
        self.root.join(STATE_DIR)
    }

    /// Where `key` is written (legacy root files are only read, never written).
    pub fn path_of(&self, key: &ObjectKey) -> PathBuf {
        key.local_segments().iter().fold(self.root.clone(), |p, s| p.join(s))
    }

    /// Stores `bytes` under `key`, atomically replacing any previous content.
    ///
    /// A legacy root file of the same key is removed afterwards: the new content supersedes
    /// it, and leaving it would resurrect the old content on delete.
    pub fn put(&self, key: &ObjectKey, bytes: &[u8]) -> Result<LocalMeta, LocalError> {
        let path = self.writable_path(key)?;
        write_atomic(&path, bytes)?;
        self.after_put(key, path)
    }

    /// Starts storing `key` from pieces (a streamed upload): a temp file in the key's folder,
    /// so the final rename stays within one directory. Nothing stored changes until
    /// [`LocalStore::finish_put`]; a [`PendingPut`] dropped before that removes its temp file.
    pub fn begin_put(&self, key: &ObjectKey) -> Result<PendingPut, LocalError> {
        let path = self.writable_path(key)?;
        let temp = TempFile::beside(&path)?;
        Ok(PendingPut { key: key.clone(), path, temp })
    }

    /// Stores what `put` holds under its key, atomically replacing any previous content, like
    /// [`LocalStore::put`]: fsync, rename into place, directory fsync.
    pub fn finish_put(&self, put: PendingPut) -> Result<LocalMeta, LocalError> {
        let PendingPut { key, path, temp } = put;
        // Looked at again: something may have been put in the way while the bytes arrived.
        check_target(&path)?;
        temp.persist(&path)?;
        if let Some(dir) = path.parent() {
            sync_dir(dir)?;
        }
        self.after_put(&key, path)
    }

    /// Where `key` is written, its folders created; refuses a link or a directory in the way.
    fn writable_path(&self, key: &ObjectKey) -> Result<PathBuf, LocalError> {
        let segments = key.local_segments();
        let (name, dirs) = segments.split_last().expect("a key has at least two segments");
        let dir = create_dirs(&self.root, dirs)?;
        let path = dir.join(name);
        check_target(&path)?;
        Ok(path)
    }

    /// After `key` was written to `path`: its superseded legacy copy goes; its metadata.
    fn after_put(&self, key: &ObjectKey, path: PathBuf) -> Result<LocalMeta, LocalError> {
        if let Some(legacy) = self.legacy_segments(key) {
            // Best effort: the save itself succeeded, and the layout's copy already hides the
            // legacy one from reads; `delete` retries the removal.
            if let Err(e) = self.remove_legacy(&legacy) {
                tracing::warn!("saved {key}, but could not remove its legacy copy: {e}");
            }
        }
        let meta = fs::symlink_metadata(&path).map_err(|e| io_error("inspect", &path, e))?;
        Ok(LocalMeta { size: meta.len(), last_modified_ms: modified_ms(&meta), path })
    }

    /// Stores `bytes` under `key` only if nothing is stored there yet (a legacy copy counts):
    /// `Ok(None)` when the key is taken. Atomic like [`LocalStore::put`], and never replaces a
    /// file another writer created meanwhile (see [`write_new`]).
    pub fn put_new(&self, key: &ObjectKey, bytes: &[u8]) -> Result<Option<LocalMeta>, LocalError> {
        if self.head(key)?.is_some() {
            return Ok(None);
        }
        let segments = key.local_segments();
        let (name, dirs) = segments.split_last().expect("a key has at least two segments");
        let dir = create_dirs(&self.root, dirs)?;
        let path = dir.join(name);
        if !write_new(&path, bytes)? {
            return Ok(None);
        }
        let meta = fs::symlink_metadata(&path).map_err(|e| io_error("inspect", &path, e))?;
        Ok(Some(LocalMeta { size: meta.len(), last_modified_ms: modified_ms(&meta), path }))
    }

    /// The content stored under `key`; [`LocalError::NotFound`] when there is none.
    pub fn get(&self, key: &ObjectKey) -> Result<Vec<u8>, LocalError> {
        let Some((path, _, _)) = self.locate(key)? else {
            return Err(self.not_found(key));
        };
        fs::read(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => self.not_found(key),
            _ => io_error("read", &path, e),
        })
    }

    /// Size and modification time of `key`, or `None` when it is not stored.
    pub fn head(&self, key: &ObjectKey) -> Result<Option<LocalMeta>, LocalError> {
        Ok(self.locate(key)?.map(|(path, meta, _)| LocalMeta {
            size: meta.len(),
            last_modified_ms: modified_ms(&meta),
            path,
        }))
    }

    /// Removes `key` (and a legacy root copy of it); `false` when nothing was stored.
    pub fn delete(&self, key: &ObjectKey) -> Result<bool, LocalError> {
        let mut removed = false;
        let mut candidates = vec![key.local_segments()];
        candidates.extend(self.legacy_segments(key));
        for segments in candidates {
            let Some((path, _)) = find_file(&self.root, &segments)? else { continue };
            match fs::remove_file(&path) {
                Ok(()) => removed = true,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_error("delete", &path, e)),
            }
            if let Some(dir) = path.parent() {
                sync_dir(dir)?;
            }
        }
        Ok(removed)
    }

    /// The SHA-256 of the content stored under `key`.
    pub fn sha256(&self, key: &ObjectKey) -> Result<[u8; 32], LocalError> {
        let Some((path, _, _)) = self.locate(key)? else {
            return Err(self.not_found(key));
        };
        sha256_file(&path)
    }

    /// The objects of one owner (`None`: global data) and data type, newest first, ties by
    /// name. Anonymous routes include legacy root routes. Unlisted oddities are logged; use
    /// [`LocalStore::inventory`] to get them.
    pub fn list(
        &self,
        owner: Option<&UserId>,
        data_type: DataType,
    ) -> Result<Vec<Entry>, LocalError> {
        data_type.check_scope(owner)?;
        let mut scan = Scan { strict: true, ..Scan::default() };
        match owner {
            Some(user) => {
                if let Some(dir) = find_dir(&self.root, &[data_type.as_str(), user.as_str()])? {
                    scan.user_dir(data_type, user, &dir)?;
                }
            }
            None => {
                if let Some(dir) = find_dir(&self.root, &[data_type.as_str()])? {
                    scan.type_dir(data_type, &dir, false)?;
                }
                if data_type == DataType::Routes {
                    scan.root(&self.root, false)?;
                }
            }
        }
        let Inventory { mut entries, skipped, .. } = scan.finish();
        for s in &skipped {
            tracing::warn!("not listed: {s}");
        }
        entries.sort_by(|a, b| {
            b.last_modified_ms.cmp(&a.last_modified_ms).then_with(|| a.key.name().cmp(b.key.name()))
        });
        Ok(entries)
    }

    /// Every object in the data directory (all data types, users and global data, legacy
    /// routes), with whatever was left out and why. An absent data directory is empty.
    pub fn inventory(&self) -> Result<Inventory, LocalError> {
        let mut scan = Scan::default();
        if !scan.root(&self.root, true)? {
            return Ok(Inventory::default());
        }
        let mut inv = scan.finish();
        inv.entries.sort_by_cached_key(|e| e.key.s3_key());
        Ok(inv)
    }

    /// Removes temp files left by interrupted writes that are older than `older_than` at
    /// `now` (younger ones may belong to a write in progress). Returns what was removed.
    pub fn sweep_temp_files(
        &self,
        older_than: Duration,
        now: SystemTime,
    ) -> Result<Vec<PathBuf>, LocalError> {
        let mut temps = self.inventory()?.temp_files;
        if let Some(dir) = find_dir(&self.root, &[STATE_DIR])? {
            let mut scan = Scan::default();
            scan.children(&dir).map_err(|e| io_error("list", &dir, e))?;
            temps.extend(scan.temp_files);
        }
        let mut removed = Vec::new();
        for path in temps {
            let Ok(meta) = fs::symlink_metadata(&path) else { continue };
            let age = meta.modified().ok().and_then(|m| now.duration_since(m).ok());
            if age.is_some_and(|a| a >= older_than) {
                match fs::remove_file(&path) {
                    Ok(()) => removed.push(path),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io_error("remove the temporary file", &path, e)),
                }
            }
        }
        Ok(removed)
    }

    /// The file holding `key`: the layout's path, or for an anonymous route with a legacy
    /// name the root file when the layout's path holds nothing.
    fn locate(&self, key: &ObjectKey) -> Result<Option<(PathBuf, Metadata, bool)>, LocalError> {
        if let Some((p, m)) = find_file(&self.root, &key.local_segments())? {
            return Ok(Some((p, m, false)));
        }
        match self.legacy_segments(key) {
            Some(segments) => Ok(find_file(&self.root, &segments)?.map(|(p, m)| (p, m, true))),
            None => Ok(None),
        }
    }

    /// The root-level path segments of `key`'s legacy copy, if it can have one.
    fn legacy_segments<'k>(&self, key: &'k ObjectKey) -> Option<Vec<&'k str>> {
        let eligible = key.owner().is_none()
            && key.data_type() == DataType::Routes
            && is_legacy_route_name(key.name().as_str());
        eligible.then(|| vec![key.name().as_str()])
    }

    fn remove_legacy(&self, segments: &[&str]) -> Result<(), LocalError> {
        if let Some((old, _)) = find_file(&self.root, segments)? {
            fs::remove_file(&old)
                .map_err(|e| io_error("remove the superseded legacy route", &old, e))?;
            sync_dir(&self.root)?;
        }
        Ok(())
    }

    fn not_found(&self, key: &ObjectKey) -> LocalError {
        LocalError::NotFound { key: key.s3_key(), path: self.path_of(key) }
    }
}

/// An object being written piece by piece into its folder ([`LocalStore::begin_put`]); stored
/// by [`LocalStore::finish_put`]. Dropped before that, its temp file is removed.
#[derive(Debug)]
pub struct PendingPut {
    key: ObjectKey,
    path: PathBuf,
    temp: TempFile,
}

impl PendingPut {
    /// The key it will be stored under.
    pub fn key(&self) -> &ObjectKey {
        &self.key
    }

    /// Appends `bytes`.
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), LocalError> {
        self.temp.write(bytes)
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.temp.len()
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.temp.is_empty()
    }

    /// Makes the bytes durable now (otherwise [`LocalStore::finish_put`] does), so the wait
    /// can happen on the writing thread, before admission.
    pub fn sync(&mut self) -> Result<(), LocalError> {
        self.temp.sync()
    }

    /// Makes the bytes durable now like [`PendingPut::sync`], leaving the page cache to be
    /// given back by the caller once it has handed the upload on.
    pub fn sync_keep_cache(&mut self) -> Result<CachedPages, LocalError> {
        self.temp.sync_keep_cache()
    }

    /// The bytes written so far, read back (for checks that need the content).
    pub fn read_back(&self) -> Result<Vec<u8>, LocalError> {
        self.temp.read_back()
    }
}

/// Refuses to write over a symbolic link or a directory.
fn check_target(path: &Path) -> Result<(), LocalError> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => Err(LocalError::Symlink { path: path.to_owned() }),
        Ok(m) if m.is_dir() => Err(LocalError::Conflict {
            op: "write",
            path: path.to_owned(),
            detail: "a directory of that name is in the way (for routes it may be a user's \
                     folder); choose another file name"
                .into(),
        }),
        _ => Ok(()),
    }
}

/// One directory entry worth looking at.
enum Item {
    File { name: String, path: PathBuf, meta: Metadata },
    Dir { name: String, path: PathBuf },
}

/// A walk over (part of) the data directory, collecting entries and oddities.
#[derive(Default)]
struct Scan {
    /// Fail on an unreadable directory (a listing) instead of reporting it (an inventory).
    strict: bool,
    entries: Vec<Entry>,
    skipped: Vec<Skipped>,
    temp_files: Vec<PathBuf>,
}

impl Scan {
    fn skip(&mut self, path: PathBuf, reason: SkipReason) {
        self.skipped.push(Skipped { path, reason });
    }

    /// The files and directories in `dir`; links, odd file types, bad names and temp files
    /// are recorded instead of returned.
    fn children(&mut self, dir: &Path) -> io::Result<Vec<Item>> {
        let mut items = Vec::new();
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let path = entry.path();
            let Ok(name) = entry.file_name().into_string() else {
                self.skip(path, SkipReason::NotUtf8);
                continue;
            };
            // file_type() does not follow links, so a link is seen as a link.
            let Ok(ft) = entry.file_type() else { continue };
            match classify(ft) {
                Kind::Link => self.skip(path, SkipReason::Symlink),
                Kind::Other => self.skip(path, SkipReason::NotRegular),
                Kind::Dir => items.push(Item::Dir { name, path }),
                Kind::File if is_temp_name(&name) => self.temp_files.push(path),
                Kind::File => match entry.metadata() {
                    Ok(meta) => items.push(Item::File { name, path, meta }),
                    // Removed between read_dir and stat: it is simply gone.
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => self.skip(path, SkipReason::Unreadable(e.to_string())),
                },
            }
        }
        Ok(items)
    }

    fn add(&mut self, key: ObjectKey, path: PathBuf, meta: &Metadata, legacy: bool) {
        self.entries.push(Entry {
            key,
            size: meta.len(),
            last_modified_ms: modified_ms(meta),
            path,
            legacy,
        });
    }

    /// Walks the data directory root: the data-type folders when `all_types`, and legacy
    /// routes. Anything else at the root is not ours and is left alone. Returns `false` when
    /// the data directory does not exist.
    fn root(&mut self, root: &Path, all_types: bool) -> Result<bool, LocalError> {
        let entries = match fs::read_dir(root) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(io_error("list", root, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| io_error("list", root, e))?;
            let Ok(name) = entry.file_name().into_string() else { continue };
            let path = entry.path();
            let Ok(ft) = entry.file_type() else { continue };
            if let Ok(data_type) = name.parse::<DataType>() {
                if !all_types {
                    continue;
                }
                match classify(ft) {
                    Kind::Dir => self.type_dir(data_type, &path, true)?,
                    Kind::Link => self.skip(path, SkipReason::Symlink),
                    Kind::File | Kind::Other => self.skip(path, SkipReason::ExpectedDirectory),
                }
            } else if is_legacy_route_name(&name) {
                match classify(ft) {
                    Kind::File => {}
                    Kind::Link => {
                        self.skip(path, SkipReason::Symlink);
                        continue;
                    }
                    Kind::Other => {
                        self.skip(path, SkipReason::NotRegular);
                        continue;
                    }
                    Kind::Dir => continue,
                }
                let meta = match entry.metadata() {
                    Ok(m) => m,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => {
                        self.skip(path, SkipReason::Unreadable(e.to_string()));
                        continue;
                    }
                };
                match ObjectKey::parse_parts(None, DataType::Routes.as_str(), &name) {
                    Ok(key) => {
                        // The layout's copy wins over the legacy one, as in `get`.
                        let primary = root.join(DataType::Routes.as_str()).join(&name);
                        if fs::symlink_metadata(&primary).is_ok_and(|m| m.is_file()) {
                            self.skip(path, SkipReason::ShadowedLegacy { by: primary });
                        } else {
                            self.add(key, path, &meta, true);
                        }
                    }
                    Err(e) => self.skip(path, SkipReason::InvalidName(e)),
                }
            }
        }
        Ok(true)
    }

    /// Walks `{data_dir}/{data_type}`: its files are global objects; its folders are users
    /// (walked when `with_users`).
    fn type_dir(
        &mut self,
        data_type: DataType,
        dir: &Path,
        with_users: bool,
    ) -> Result<(), LocalError> {
        let items = match self.children(dir) {
            Ok(items) => items,
            Err(e) if self.strict => return Err(io_error("list", dir, e)),
            Err(e) => {
                self.skip(dir.to_path_buf(), SkipReason::Unreadable(e.to_string()));
                return Ok(());
            }
        };
        for item in items {
            match item {
                Item::File { name, path, meta } => {
                    match ObjectKey::from_local_segments(&[data_type.as_str(), &name]) {
                        Ok(key) => self.add(key, path, &meta, false),
                        Err(e) => self.skip(path, SkipReason::InvalidName(e)),
                    }
                }
                Item::Dir { .. } if !with_users => {}
                Item::Dir { path, .. } if !data_type.allows_user() => {
                    self.skip(path, SkipReason::UnexpectedDirectory);
                }
                Item::Dir { name, path } => match UserId::new(&name) {
                    Ok(user) => self.user_dir(data_type, &user, &path)?,
                    Err(e) => self.skip(path, SkipReason::InvalidName(e)),
                },
            }
        }
        Ok(())
    }

    /// Walks `{data_dir}/{data_type}/{user}`: files only.
    fn user_dir(
        &mut self,
        data_type: DataType,
        user: &UserId,
        dir: &Path,
    ) -> Result<(), LocalError> {
        let items = match self.children(dir) {
            Ok(items) => items,
            Err(e) if self.strict => return Err(io_error("list", dir, e)),
            Err(e) => {
                self.skip(dir.to_path_buf(), SkipReason::Unreadable(e.to_string()));
                return Ok(());
            }
        };
        for item in items {
            match item {
                Item::File { name, path, meta } => {
                    match ObjectKey::from_local_segments(&[
                        data_type.as_str(),
                        user.as_str(),
                        &name,
                    ]) {
                        Ok(key) => self.add(key, path, &meta, false),
                        Err(e) => self.skip(path, SkipReason::InvalidName(e)),
                    }
                }
                Item::Dir { path, .. } => self.skip(path, SkipReason::UnexpectedDirectory),
            }
        }
        Ok(())
    }

    fn finish(self) -> Inventory {
        Inventory { entries: self.entries, skipped: self.skipped, temp_files: self.temp_files }
    }
}

enum Kind {
    File,
    Dir,
    Link,
    Other,
}

fn classify(ft: FileType) -> Kind {
    if ft.is_symlink() {
        Kind::Link
    } else if ft.is_dir() {
        Kind::Dir
    } else if ft.is_file() {
        Kind::File
    } else {
        Kind::Other
    }
}
