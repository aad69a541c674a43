//! The data directory's state in one SQLite database, `{data_dir}/.kompass/state.sqlite3`:
//! the cached S3 inventory, the reservations (granted uploads not yet seen stored), the
//! monthly request ledger and the pending-sync journal ([`crate::journal`]).
//!
//! WAL mode, so readers never wait for a writer. An admission is one `BEGIN IMMEDIATE`
//! transaction: gather the facts, let the core decide, record the reservation and charge the
//! ledger, commit. SQLite lets one such transaction run at a time across every process and
//! thread on the data directory, so concurrent writers see each other's reservations and
//! cannot both pass a quota only one of them fits. Grants arriving together share one such
//! transaction, committed with the WAL synced ([`StateDb::write_synced`]; see
//! `Manager::admit_many`): a grant's reservation and charges survive a power cut.
//!
//! On first open, the JSON state of earlier versions (`requests.json`,
//! `s3-inventory.json`) is imported; the JSON files are left where they are. The old
//! JSON-lines journal (`pending-sync.jsonl`) is imported too and renamed aside
//! ([`crate::journal`]). A database that is not SQLite (damaged) or stays locked gives a clear
//! error and is never rewritten; nothing is imported or renamed then.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kompass_core::admission::{Reservation, StoredObject};
use kompass_core::key::{ObjectKey, UserId};
use kompass_core::quota::{RequestKind, RequestLedger, YearMonth};
use kompass_core::time::UnixMs;
use rusqlite::{Connection, ErrorCode, OptionalExtension, TransactionBehavior, params};
use thiserror::Error;

use crate::journal::{PendingEntry, parse_sha256};
use crate::manager::inventory::InventoryCache;
use crate::state::{OnCorrupt, StateFile};
use crate::store::local::{STATE_DIR, create_dirs};

/// The database's file name inside the state directory.
pub const STATE_DB_FILE: &str = "state.sqlite3";

/// How long a writer waits for another's transaction before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Why the state database cannot be used. Nothing in it was changed.
#[derive(Debug, Error)]
pub enum StateError {
    /// The file is not a SQLite database, or its pages are damaged.
    #[error(
        "the state database {path} is damaged ({detail}); nothing was changed. Move it aside and run again: the inventory cache is rebuilt from S3, reservations expire on their own, the request ledger is re-imported from .kompass/requests.json if present (otherwise it restarts at 0 for this month), and saves that were queued for sync are still on local disk, where `kompass migrate` uploads them"
    )]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// SQLite's description.
        detail: String,
    },
    /// Another process held the database longer than the busy timeout.
    #[error(
        "the state database {path} stayed locked by another kompass process for {secs} s; nothing was changed. Try again once it finishes (check for a stuck `kompass` process)",
        secs = BUSY_TIMEOUT.as_secs()
    )]
    Locked {
        /// The database file.
        path: PathBuf,
    },
    /// Any other SQLite failure (disk full, permissions).
    #[error("the state database {path} failed: {detail}")]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// SQLite's description.
        detail: String,
    },
    /// The state directory could not be created or the JSON state read.
    #[error(transparent)]
    Local(#[from] crate::store::local::LocalError),
}

impl StateError {
    fn from_sqlite(path: &Path, e: rusqlite::Error) -> Self {
        let path = path.to_path_buf();
        match e.sqlite_error_code() {
            Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => {
                StateError::Corrupt { path, detail: e.to_string() }
            }
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
                StateError::Locked { path }
            }
            _ => StateError::Sqlite { path, detail: e.to_string() },
        }
    }
}

/// Data type recorded for objects outside the key layout.
const FOREIGN: &str = "";

/// The state database of one data directory.
pub struct StateDb {
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl std::fmt::Debug for StateDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateDb").field("path", &self.path).finish()
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS objects (
    key TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    last_modified_ms INTEGER NOT NULL,
    owner TEXT,
    data_type TEXT NOT NULL,
    -- When this row was written: a listing that started later replaces it, an older one not.
    recorded_at_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS objects_owner ON objects(owner);
-- The bucket's total, kept by triggers, so an admission reads it in O(1), not by a scan.
CREATE TABLE IF NOT EXISTS totals (id INTEGER PRIMARY KEY CHECK (id = 1), bytes INTEGER NOT NULL);
INSERT OR IGNORE INTO totals(id, bytes) SELECT 1, COALESCE(SUM(size), 0) FROM objects;
CREATE TRIGGER IF NOT EXISTS objects_insert AFTER INSERT ON objects
    BEGIN UPDATE totals SET bytes = bytes + NEW.size WHERE id = 1; END;
CREATE TRIGGER IF NOT EXISTS objects_delete AFTER DELETE ON objects
    BEGIN UPDATE totals SET bytes = bytes - OLD.size WHERE id = 1; END;
CREATE TRIGGER IF NOT EXISTS objects_update AFTER UPDATE OF size ON objects
    BEGIN UPDATE totals SET bytes = bytes - OLD.size + NEW.size WHERE id = 1; END;
-- The local data directory's index, kept like the S3 cache (same columns), so a local save
-- reads its facts here instead of walking the directory.
CREATE TABLE IF NOT EXISTS local_objects (
    key TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    last_modified_ms INTEGER NOT NULL,
    owner TEXT,
    data_type TEXT NOT NULL,
    recorded_at_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS local_objects_owner ON local_objects(owner, data_type);
CREATE TABLE IF NOT EXISTS local_totals (id INTEGER PRIMARY KEY CHECK (id = 1), bytes INTEGER NOT NULL);
INSERT OR IGNORE INTO local_totals(id, bytes) SELECT 1, COALESCE(SUM(size), 0) FROM local_objects;
CREATE TRIGGER IF NOT EXISTS local_objects_insert AFTER INSERT ON local_objects
    BEGIN UPDATE local_totals SET bytes = bytes + NEW.size WHERE id = 1; END;
CREATE TRIGGER IF NOT EXISTS local_objects_delete AFTER DELETE ON local_objects
    BEGIN UPDATE local_totals SET bytes = bytes - OLD.size WHERE id = 1; END;
CREATE TRIGGER IF NOT EXISTS local_objects_update AFTER UPDATE OF size ON local_objects
    BEGIN UPDATE local_totals SET bytes = bytes - OLD.size + NEW.size WHERE id = 1; END;
-- Each indexed directory (relative path, '' for the root) and its modification time (ns) when
-- it was last read: a directory whose time moved is read again, and only that one.
CREATE TABLE IF NOT EXISTS local_dirs (path TEXT PRIMARY KEY, mtime_ns INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS reservations (
    key TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    granted_at_ms INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS ledger (
    month TEXT PRIMARY KEY,
    put_class INTEGER NOT NULL,
    get_class INTEGER NOT NULL,
    free INTEGER NOT NULL
);
-- The pending-sync journal: one row per key, the latest record winning; `seq` orders the
-- winners by when they were recorded (oldest first).
CREATE TABLE IF NOT EXISTS pending_sync (
    key TEXT PRIMARY KEY,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    recorded_at_ms INTEGER NOT NULL,
    seq INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS pending_sync_seq ON pending_sync(seq);
";

impl StateDb {
    /// Opens (creating if needed) the database of `data_dir`, importing JSON state once.
    pub fn open(data_dir: &Path) -> Result<Self, StateError> {
        let dir = create_dirs(data_dir, &[STATE_DIR])?;
        let path = dir.join(STATE_DB_FILE);
        let sql = |e| StateError::from_sqlite(&path, e);
        let conn = Connection::open(&path).map_err(sql)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(sql)?;
        // An admission alone runs about 20 distinct statements: keep them all compiled.
        conn.set_prepared_statement_cache_capacity(64);
        // The first statement that reads the header tells a damaged file apart.
        enable_wal(&conn).map_err(sql)?;
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(sql)?;
        // A deleted row's bytes are overwritten, not left in free pages: an erased user's
        // keys must not be recoverable from the file.
        conn.pragma_update(None, "secure_delete", "ON").map_err(sql)?;
        conn.execute_batch(SCHEMA).map_err(sql)?;
        let db = StateDb { path, conn: Mutex::new(conn) };
        db.import_json(data_dir)?;
        crate::journal::import_jsonl(&db, data_dir)?;
        Ok(db)
    }

    /// Makes this connection's commits durable on power loss too (`synchronous=FULL`: the
    /// WAL is synced at each commit), for records that must not be lost, like the journal's.
    pub fn set_durable(&self) -> Result<(), StateError> {
        let conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        conn.pragma_update(None, "synchronous", "FULL").map_err(|e| self.err(e))
    }

    /// Copies the WAL into the database and empties it, so rows deleted since (an erase)
    /// survive in neither file. Best effort: a reader holding an old snapshot keeps the WAL.
    pub fn checkpoint(&self) -> Result<(), StateError> {
        let conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())).map_err(|e| self.err(e))
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` in one `BEGIN IMMEDIATE` transaction (the admission lock), committing when it
    /// returns `Ok`.
    pub fn write<R, E>(&self, f: impl FnOnce(&Tx<'_>) -> Result<R, E>) -> Result<R, E>
    where
        E: From<StateError>,
    {
        let mut conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        self.transact(&mut conn, f)
    }

    /// One `BEGIN IMMEDIATE` transaction on `conn`, committed when `f` returns `Ok`.
    fn transact<R, E>(
        &self,
        conn: &mut Connection,
        f: impl FnOnce(&Tx<'_>) -> Result<R, E>,
    ) -> Result<R, E>
    where
        E: From<StateError>,
    {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| E::from(self.err(e)))?;
        let out = f(&Tx::new(&tx, &self.path))?;
        tx.commit().map_err(|e| E::from(self.err(e)))?;
        Ok(out)
    }

    /// Like [`StateDb::write`], but the commit is on disk before this returns, whatever the
    /// connection's setting (`synchronous=FULL` for this transaction: the WAL is synced at
    /// commit). For records whose loss on a power cut would let a limit be passed: an
    /// admission that hands out a grant (its reservation and request charges).
    pub fn write_synced<R, E>(&self, f: impl FnOnce(&Tx<'_>) -> Result<R, E>) -> Result<R, E>
    where
        E: From<StateError>,
    {
        let mut conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        let was: i64 = conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .map_err(|e| E::from(self.err(e)))?;
        // 2 is FULL, 3 EXTRA: already synced at commit.
        let raise = was < 2;
        if raise {
            conn.pragma_update(None, "synchronous", "FULL").map_err(|e| E::from(self.err(e)))?;
        }
        let out = self.transact(&mut conn, f);
        if raise {
            conn.pragma_update(None, "synchronous", was).map_err(|e| E::from(self.err(e)))?;
        }
        out
    }

    /// Runs `f` in a read transaction (a consistent snapshot; never waits for writers).
    pub fn read<R, E>(&self, f: impl FnOnce(&Tx<'_>) -> Result<R, E>) -> Result<R, E>
    where
        E: From<StateError>,
    {
        let mut conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Deferred)
            .map_err(|e| E::from(self.err(e)))?;
        let out = f(&Tx::new(&tx, &self.path))?;
        tx.commit().map_err(|e| E::from(self.err(e)))?;
        Ok(out)
    }

    fn err(&self, e: rusqlite::Error) -> StateError {
        StateError::from_sqlite(&self.path, e)
    }

    fn import_json(&self, data_dir: &Path) -> Result<(), StateError> {
        self.write(|tx| {
            if tx.meta("imported_json")?.is_some() {
                return Ok(());
            }
            // A damaged JSON file is skipped (it was a cache, or is kept for the operator).
            let ledger: StateFile<Option<RequestLedger>> =
                StateFile::open(data_dir, "requests", OnCorrupt::StartFresh)?;
            if let Some(l) = ledger.load()? {
                tx.add_to_ledger(&l)?;
            }
            let cache: StateFile<InventoryCache> =
                StateFile::open(data_dir, "s3-inventory", OnCorrupt::StartFresh)?;
            let c = cache.load()?;
            if !c.bucket.is_empty() {
                let objects: Vec<(String, u64, i64)> = c
                    .objects
                    .iter()
                    .map(|(k, v)| (k.clone(), v.size, v.last_modified_ms))
                    .collect();
                let at = UnixMs(c.refreshed_at_ms);
                tx.replace_inventory(&c.bucket, at, at, &objects)?;
            }
            tx.set_meta("imported_json", "1")?;
            Ok::<(), StateError>(())
        })
    }
}

/// Switches the database to WAL (a no-op once it is). On a new file SQLite does this as a
/// write on top of a read, an upgrade its busy handler never retries: a process that opens
/// the file while another is creating it would fail at once. It waits here, as for any lock.
fn enable_wal(conn: &Connection) -> rusqlite::Result<()> {
    let deadline = Instant::now() + BUSY_TIMEOUT;
    let mut pause = Duration::from_millis(1);
    loop {
        match conn.pragma_update(None, "journal_mode", "WAL") {
            Err(e)
                if e.sqlite_error_code() == Some(ErrorCode::DatabaseBusy)
                    && Instant::now() < deadline =>
            {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            done => return done,
        }
    }
}

/// One transaction on the state database. Its object methods work on the S3 inventory cache;
/// [`Tx::local`] gives the same methods on the local data directory's index.
pub struct Tx<'a> {
    tx: &'a rusqlite::Transaction<'a>,
    path: &'a Path,
    objects: &'static str,
    totals: &'static str,
}

impl<'a> Tx<'a> {
    fn new(tx: &'a rusqlite::Transaction<'a>, path: &'a Path) -> Self {
        Tx { tx, path, objects: "objects", totals: "totals" }
    }

    /// The same transaction, its object methods on the local data directory's index.
    pub fn local(&self) -> Tx<'a> {
        Tx { tx: self.tx, path: self.path, objects: "local_objects", totals: "local_totals" }
    }
}

/// See [`Tx::change_stamp`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChangeStamp {
    version: i64,
    changes: u64,
}

/// The stored objects an admission looks at, and what it leaves out.
#[derive(Debug, Clone, Default)]
pub struct StoredFacts {
    /// Objects in the key layout (all of them, or one owner's).
    pub objects: Vec<StoredObject>,
    /// Bytes of every other object (outside the layout, or another owner's when only one
    /// owner's were loaded).
    pub unlisted_bytes: u64,
}

impl Tx<'_> {
    fn err(&self, e: rusqlite::Error) -> StateError {
        StateError::from_sqlite(self.path, e)
    }

    /// Runs `f` inside a savepoint of this transaction: its changes are kept when it returns
    /// `Ok` and undone when it returns `Err`, while the transaction goes on (one job of a batch
    /// fails alone). The outer error is the savepoint's own failure: the transaction is then
    /// in an unknown state and must not be committed.
    pub fn savepoint<R, E>(
        &self,
        f: impl FnOnce(&Tx<'_>) -> Result<R, E>,
    ) -> Result<Result<R, E>, StateError> {
        let run = |sql: &str| {
            self.tx
                .prepare_cached(sql)
                .and_then(|mut s| s.execute([]))
                .map(drop)
                .map_err(|e| self.err(e))
        };
        run("SAVEPOINT job")?;
        let out = f(self);
        match out {
            Ok(_) => run("RELEASE job")?,
            Err(_) => {
                run("ROLLBACK TO job")?;
                run("RELEASE job")?;
            }
        }
        Ok(out)
    }

    /// `sql` with `{o}` and `{t}` naming this view's objects and totals tables.
    fn sql(&self, sql: &str) -> String {
        sql.replace("{o}", self.objects).replace("{t}", self.totals)
    }

    /// Forgets every object of `owner` (global data for `None`) and `data_type`.
    pub fn remove_scope(&self, owner: Option<&UserId>, data_type: &str) -> Result<(), StateError> {
        let n = match owner {
            Some(u) => self
                .tx
                .prepare_cached(&self.sql("DELETE FROM {o} WHERE owner = ?1 AND data_type = ?2"))
                .and_then(|mut s| s.execute([u.as_str(), data_type])),
            None => self
                .tx
                .prepare_cached(&self.sql("DELETE FROM {o} WHERE owner IS NULL AND data_type = ?1"))
                .and_then(|mut s| s.execute([data_type])),
        };
        n.map(drop).map_err(|e| self.err(e))
    }

    /// Forgets every object of `data_type`, whoever owns it.
    pub fn remove_type(&self, data_type: &str) -> Result<(), StateError> {
        self.tx
            .execute(&self.sql("DELETE FROM {o} WHERE data_type = ?1"), [data_type])
            .map(drop)
            .map_err(|e| self.err(e))
    }

    /// Forgets every object (before a rebuild).
    pub fn remove_all(&self) -> Result<(), StateError> {
        self.tx.execute(&self.sql("DELETE FROM {o}"), []).map(drop).map_err(|e| self.err(e))
    }

    /// The recorded modification time of an indexed local directory.
    pub fn local_dir(&self, path: &str) -> Result<Option<i64>, StateError> {
        self.tx
            .prepare_cached("SELECT mtime_ns FROM local_dirs WHERE path = ?1")
            .and_then(|mut s| s.query_row([path], |r| r.get(0)).optional())
            .map_err(|e| self.err(e))
    }

    /// Every indexed local directory and its recorded modification time.
    pub fn local_dirs(&self) -> Result<Vec<(String, i64)>, StateError> {
        let mut stmt = self
            .tx
            .prepare_cached("SELECT path, mtime_ns FROM local_dirs ORDER BY path")
            .map_err(|e| self.err(e))?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(|it| it.collect())
            .map_err(|e| self.err(e))
    }

    /// Records (`Some`) or forgets (`None`) an indexed local directory's modification time.
    pub fn set_local_dir(&self, path: &str, mtime_ns: Option<i64>) -> Result<(), StateError> {
        let r = match mtime_ns {
            Some(m) => self
                .tx
                .prepare_cached(
                    "INSERT INTO local_dirs(path, mtime_ns) VALUES (?1, ?2)
                     ON CONFLICT(path) DO UPDATE SET mtime_ns = ?2",
                )
                .and_then(|mut s| s.execute(params![path, m])),
            None => self
                .tx
                .prepare_cached("DELETE FROM local_dirs WHERE path = ?1 OR path LIKE ?2")
                .and_then(|mut s| s.execute(params![path, format!("{path}/%")])),
        };
        r.map(drop).map_err(|e| self.err(e))
    }

    /// Forgets every indexed local directory (before a rebuild).
    pub fn clear_local_dirs(&self) -> Result<(), StateError> {
        self.tx.execute("DELETE FROM local_dirs", []).map(drop).map_err(|e| self.err(e))
    }

    /// A meta value.
    pub fn meta(&self, name: &str) -> Result<Option<String>, StateError> {
        self.tx
            .prepare_cached("SELECT value FROM meta WHERE name = ?1")
            .and_then(|mut s| s.query_row([name], |r| r.get(0)))
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Sets a meta value.
    pub fn set_meta(&self, name: &str, value: &str) -> Result<(), StateError> {
        self.tx
            .execute("INSERT INTO meta(name, value) VALUES (?1, ?2) ON CONFLICT(name) DO UPDATE SET value = ?2", [name, value])
            .map(drop)
            .map_err(|e| self.err(e))
    }

    /// Which bucket the inventory describes and when it was last filled by a full listing.
    pub fn inventory_meta(&self) -> Result<Option<(String, UnixMs)>, StateError> {
        let bucket = self.meta("inventory_bucket")?;
        let at = self.meta("inventory_refreshed_at_ms")?.and_then(|v| v.parse::<i64>().ok());
        Ok(bucket.zip(at).map(|(b, t)| (b, UnixMs(t))))
    }

    /// Replaces the inventory with a full listing of `bucket` that started at `started` and
    /// whose answer came at `finished`.
    ///
    /// A row recorded before `started` and not listed is gone. Rows written since (by writers
    /// whose store finished while the listing ran) stay. Listed rows are stamped `finished`:
    /// the server read the bucket at some moment between the two, so a listing that started
    /// before `finished` may have read it earlier, before the object was stored, and must not
    /// delete it (concurrent listings end in any order). A row the listing has and a writer
    /// deleted meanwhile comes back until the next listing (counted, never lost: the safe
    /// side for quotas).
    pub fn replace_inventory(
        &self,
        bucket: &str,
        started: UnixMs,
        finished: UnixMs,
        objects: &[(String, u64, i64)],
    ) -> Result<(), StateError> {
        self.tx
            .execute(&self.sql("DELETE FROM {o} WHERE recorded_at_ms < ?1"), [started.as_i64()])
            .map_err(|e| self.err(e))?;
        for (key, size, lm) in objects {
            self.insert_object(key, *size, UnixMs(*lm), finished, false)?;
        }
        // A key listed as written since its grant is stored: its reservation has done its
        // work. An older version listed (an overwrite not yet uploaded) leaves it counting.
        // S3 gives whole seconds, so a version of the grant's own second counts as written
        // since.
        self.tx
            .execute(
                &self.sql(
                    "DELETE FROM reservations WHERE EXISTS (SELECT 1 FROM {o} o
                     WHERE o.key = reservations.key AND o.last_modified_ms + 1000 > reservations.granted_at_ms)",
                ),
                [],
            )
            .map_err(|e| self.err(e))?;
        self.set_meta("inventory_bucket", bucket)?;
        self.set_meta("inventory_refreshed_at_ms", &started.as_i64().to_string())
    }

    /// Records a stored object (replacing any record of its key), modified at `at`.
    pub fn put_object(&self, key: &ObjectKey, size: u64, at: UnixMs) -> Result<(), StateError> {
        let now = UnixMs(crate::manager::now_ms());
        self.insert_object(&key.s3_key(), size, at, now, true)
    }

    fn insert_object(
        &self,
        key: &str,
        size: u64,
        at: UnixMs,
        recorded: UnixMs,
        replace: bool,
    ) -> Result<(), StateError> {
        let (owner, data_type) = match ObjectKey::from_s3_key(key) {
            Ok(k) => (k.owner().map(|u| u.as_str().to_owned()), k.data_type().as_str().to_owned()),
            Err(_) => (None, FOREIGN.to_owned()),
        };
        let sql = if replace {
            "INSERT INTO {o}(key, size, last_modified_ms, owner, data_type, recorded_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT(key) DO UPDATE SET size = ?2, last_modified_ms = ?3, owner = ?4, data_type = ?5, recorded_at_ms = ?6"
        } else {
            "INSERT INTO {o}(key, size, last_modified_ms, owner, data_type, recorded_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT(key) DO NOTHING"
        };
        self.tx
            .prepare_cached(&self.sql(sql))
            .and_then(|mut s| {
                s.execute(params![
                    key,
                    size as i64,
                    at.as_i64(),
                    owner,
                    data_type,
                    recorded.as_i64()
                ])
            })
            .map(drop)
            .map_err(|e| self.err(e))
    }

    /// Forgets a stored object.
    pub fn remove_object(&self, key: &str) -> Result<(), StateError> {
        self.tx
            .prepare_cached(&self.sql("DELETE FROM {o} WHERE key = ?1"))
            .and_then(|mut s| s.execute([key]))
            .map(drop)
            .map_err(|e| self.err(e))
    }

    /// Size and last modification of one recorded object.
    pub fn object(&self, key: &ObjectKey) -> Result<Option<(u64, UnixMs)>, StateError> {
        self.tx
            .prepare_cached(&self.sql("SELECT size, last_modified_ms FROM {o} WHERE key = ?1"))
            .and_then(|mut s| {
                s.query_row([key.s3_key()], |r| Ok((r.get::<_, i64>(0)? as u64, UnixMs(r.get(1)?))))
                    .optional()
            })
            .map_err(|e| self.err(e))
    }

    /// Total bytes recorded (every object), kept by triggers.
    pub fn bucket_bytes(&self) -> Result<u64, StateError> {
        // Cached: an admission reads it once or twice per decision.
        self.tx
            .prepare_cached(&self.sql("SELECT bytes FROM {t} WHERE id = 1"))
            .and_then(|mut s| s.query_row([], |r| r.get::<_, i64>(0)))
            .map(|v| v as u64)
            .map_err(|e| self.err(e))
    }

    /// The stored objects of `owner` (global data for `None`) as typed facts; every other
    /// object's bytes are unlisted.
    pub fn owner_facts(&self, owner: Option<&UserId>) -> Result<StoredFacts, StateError> {
        let total = self.bucket_bytes()?;
        let rows = match owner {
            Some(u) => self.rows("SELECT key, size, last_modified_ms FROM {o} WHERE owner = ?1", Some(u.as_str()))?,
            None => self.rows("SELECT key, size, last_modified_ms FROM {o} WHERE owner IS NULL AND data_type != ''", None)?,
        };
        let listed: u64 = rows.iter().map(|o| o.size).sum();
        Ok(StoredFacts { objects: rows, unlisted_bytes: total.saturating_sub(listed) })
    }

    /// Every stored object in the key layout; foreign objects' bytes are unlisted.
    pub fn all_facts(&self) -> Result<StoredFacts, StateError> {
        let total = self.bucket_bytes()?;
        let rows =
            self.rows("SELECT key, size, last_modified_ms FROM {o} WHERE data_type != ''", None)?;
        let listed: u64 = rows.iter().map(|o| o.size).sum();
        Ok(StoredFacts { objects: rows, unlisted_bytes: total.saturating_sub(listed) })
    }

    /// Every recorded object, foreign ones included: `(key, size, last modified)`.
    pub fn all_objects(&self) -> Result<Vec<(String, u64, i64)>, StateError> {
        let mut stmt = self
            .tx
            .prepare_cached(&self.sql("SELECT key, size, last_modified_ms FROM {o} ORDER BY key"))
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64, r.get::<_, i64>(2)?))
            })
            .and_then(|it| it.collect::<Result<Vec<_>, _>>())
            .map_err(|e| self.err(e))?;
        Ok(rows)
    }

    fn rows(&self, sql: &str, arg: Option<&str>) -> Result<Vec<StoredObject>, StateError> {
        let mut stmt = self.tx.prepare_cached(&self.sql(sql)).map_err(|e| self.err(e))?;
        let map = |r: &rusqlite::Row<'_>| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
        };
        let raw: Vec<(String, i64, i64)> = match arg {
            Some(a) => stmt.query_map([a], map).and_then(|it| it.collect()),
            None => stmt.query_map([], map).and_then(|it| it.collect()),
        }
        .map_err(|e| self.err(e))?;
        Ok(raw
            .into_iter()
            .filter_map(|(k, size, lm)| {
                ObjectKey::from_s3_key(&k).ok().map(|key| StoredObject {
                    key,
                    size: size as u64,
                    last_modified: UnixMs(lm),
                })
            })
            .collect())
    }

    /// Live reservations at `now`; expired ones are deleted on the way.
    pub fn reservations(&self, now: UnixMs) -> Result<Vec<Reservation>, StateError> {
        self.expire_reservations(now)?;
        let mut stmt = self
            .tx
            .prepare_cached("SELECT key, size, granted_at_ms, expires_at_ms FROM reservations")
            .map_err(|e| self.err(e))?;
        let raw: Vec<(String, i64, i64, i64)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .and_then(|it| it.collect())
            .map_err(|e| self.err(e))?;
        Ok(raw
            .into_iter()
            .filter_map(|(k, size, g, x)| {
                ObjectKey::from_s3_key(&k).ok().map(|key| Reservation {
                    key,
                    size: size as u64,
                    granted_at: UnixMs(g),
                    expires_at: UnixMs(x),
                })
            })
            .collect())
    }

    /// Forgets the reservations expired at `now`; how many there were.
    pub fn expire_reservations(&self, now: UnixMs) -> Result<usize, StateError> {
        self.tx
            .prepare_cached("DELETE FROM reservations WHERE expires_at_ms <= ?1")
            .and_then(|mut s| s.execute([now.as_i64()]))
            .map_err(|e| self.err(e))
    }

    /// Where the database stands, as this connection sees it: equal stamps taken inside two
    /// write transactions mean nothing was changed in between, by another connection
    /// (`PRAGMA data_version`) or by this one (rows changed, even if rolled back). Take it
    /// inside a write transaction, after this transaction's last change.
    pub fn change_stamp(&self) -> Result<ChangeStamp, StateError> {
        let version: i64 = self
            .tx
            .prepare_cached("PRAGMA data_version")
            .and_then(|mut s| s.query_row([], |r| r.get(0)))
            .map_err(|e| self.err(e))?;
        Ok(ChangeStamp { version, changes: self.tx.total_changes() })
    }

    /// One live reservation, if any.
    pub fn reservation(
        &self,
        key: &ObjectKey,
        now: UnixMs,
    ) -> Result<Option<Reservation>, StateError> {
        Ok(self.reservations(now)?.into_iter().find(|r| r.key == *key))
    }

    /// Records a reservation (replacing one at the same key).
    pub fn reserve(&self, r: &Reservation) -> Result<(), StateError> {
        self.tx
            .prepare_cached(
                "INSERT INTO reservations(key, size, granted_at_ms, expires_at_ms) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(key) DO UPDATE SET size = ?2, granted_at_ms = ?3, expires_at_ms = ?4",
            )
            .and_then(|mut s| s.execute(params![r.key.s3_key(), r.size as i64, r.granted_at.as_i64(), r.expires_at.as_i64()]))
            .map(drop)
            .map_err(|e| self.err(e))
    }

    /// Runs `sql`, a DELETE of the rows of one key (`?1`).
    fn delete_key(&self, sql: &str, key: &ObjectKey) -> Result<(), StateError> {
        self.tx
            .prepare_cached(sql)
            .and_then(|mut s| s.execute([key.s3_key()]))
            .map(drop)
            .map_err(|e| self.err(e))
    }

    /// Drops the reservation of `key` (stored, or given up).
    pub fn release(&self, key: &ObjectKey) -> Result<(), StateError> {
        self.delete_key("DELETE FROM reservations WHERE key = ?1", key)
    }

    /// Queues a save for sync, replacing an earlier record of its key (and moving it last).
    pub fn queue(&self, e: &PendingEntry) -> Result<(), StateError> {
        self.tx
            .prepare_cached(
                "INSERT INTO pending_sync(key, sha256, size, recorded_at_ms, seq)
                 VALUES (?1, ?2, ?3, ?4, (SELECT COALESCE(MAX(seq), 0) + 1 FROM pending_sync))
                 ON CONFLICT(key) DO UPDATE SET sha256 = ?2, size = ?3, recorded_at_ms = ?4,
                     seq = (SELECT COALESCE(MAX(seq), 0) + 1 FROM pending_sync)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    e.key.s3_key(),
                    hex::encode(e.sha256),
                    e.size as i64,
                    e.recorded_at_ms as i64
                ])
            })
            .map(drop)
            .map_err(|e| self.err(e))
    }

    /// The saves queued for sync, oldest first. A row that no longer reads (edited by hand)
    /// is logged and left in place.
    pub fn pending(&self) -> Result<Vec<PendingEntry>, StateError> {
        let mut stmt = self
            .tx
            .prepare_cached(
                "SELECT key, sha256, size, recorded_at_ms FROM pending_sync ORDER BY seq",
            )
            .map_err(|e| self.err(e))?;
        let raw: Vec<(String, String, i64, i64)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .and_then(|it| it.collect())
            .map_err(|e| self.err(e))?;
        Ok(raw
            .into_iter()
            .filter_map(|(k, sha, size, at)| {
                let entry = ObjectKey::from_s3_key(&k).map_err(|e| e.to_string()).and_then(|key| {
                    Ok(PendingEntry {
                        key,
                        sha256: parse_sha256(&sha)?,
                        size: size as u64,
                        recorded_at_ms: at as u64,
                    })
                });
                entry
                    .map_err(|why| {
                        tracing::warn!(
                            "{}: skipped the pending-sync row {k:?}: {why}",
                            self.path.display()
                        )
                    })
                    .ok()
            })
            .collect())
    }

    /// How many saves are queued for sync.
    pub fn pending_count(&self) -> Result<usize, StateError> {
        self.tx
            .query_row("SELECT COUNT(*) FROM pending_sync", [], |r| r.get::<_, i64>(0))
            .map(|n| n as usize)
            .map_err(|e| self.err(e))
    }

    /// Forgets the queued record of `key`, whatever it says.
    pub fn unqueue(&self, key: &ObjectKey) -> Result<(), StateError> {
        self.delete_key("DELETE FROM pending_sync WHERE key = ?1", key)
    }

    /// Forgets the queued record of `e.key` only if it is still `e` (a newer save of the key
    /// keeps its own record).
    pub fn unqueue_entry(&self, e: &PendingEntry) -> Result<(), StateError> {
        self.tx
            .prepare_cached(
                "DELETE FROM pending_sync WHERE key = ?1 AND sha256 = ?2 AND size = ?3 AND recorded_at_ms = ?4",
            )
            .and_then(|mut s| {
                s.execute(params![
                    e.key.s3_key(),
                    hex::encode(e.sha256),
                    e.size as i64,
                    e.recorded_at_ms as i64
                ])
            })
            .map(drop)
            .map_err(|e| self.err(e))
    }

    /// The ledger of the month of `now` (empty when nothing was counted yet).
    pub fn ledger(&self, now: UnixMs) -> Result<RequestLedger, StateError> {
        let month = YearMonth::from_unix_ms(now.as_u64());
        let row: Option<(i64, i64, i64)> = self
            .tx
            .prepare_cached("SELECT put_class, get_class, free FROM ledger WHERE month = ?1")
            .and_then(|mut s| {
                s.query_row([month.to_string()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .optional()
            })
            .map_err(|e| self.err(e))?;
        let mut l = RequestLedger::new(month);
        if let Some((p, g, f)) = row {
            (l.put_class, l.get_class, l.free) = (p as u64, g as u64, f as u64);
        }
        Ok(l)
    }

    /// Adds `count` requests of `kind` made at `at` to the ledger.
    pub fn charge(&self, kind: RequestKind, count: u64, at: UnixMs) -> Result<(), StateError> {
        if count == 0 {
            return Ok(());
        }
        let mut l = RequestLedger::starting_at(at.as_u64());
        l.record_many(kind, count, at.as_u64());
        self.add_to_ledger(&l)
    }

    fn add_to_ledger(&self, l: &RequestLedger) -> Result<(), StateError> {
        self.tx
            .prepare_cached(
                "INSERT INTO ledger(month, put_class, get_class, free) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(month) DO UPDATE SET put_class = put_class + ?2, get_class = get_class + ?3, free = free + ?4",
            )
            .and_then(|mut s| s.execute(params![l.month.to_string(), l.put_class as i64, l.get_class as i64, l.free as i64]))
            .map(drop)
            .map_err(|e| self.err(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> ObjectKey {
        ObjectKey::parse_parts(Some("alice"), "routes", name).unwrap()
    }

    /// Reserves `size` bytes at alice's key `a`, granted at `granted_at`, never expiring.
    fn reserve_a(db: &StateDb, size: u64, granted_at: UnixMs) {
        let r = Reservation { key: key("a"), size, granted_at, expires_at: UnixMs(i64::MAX) };
        db.write(|tx| tx.reserve(&r)).unwrap();
    }

    /// A new database is switched to WAL in a write on top of a read, which SQLite never
    /// retries on its own: a process that loses that race to another must wait for it, as
    /// for any other lock, and not fail at once.
    #[test]
    fn opening_waits_for_another_process_that_is_creating_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join(STATE_DIR);
        std::fs::create_dir(&state).unwrap();
        // The other process has begun writing the new file, still in rollback mode.
        let other = Connection::open(state.join(STATE_DB_FILE)).unwrap();
        other.execute_batch("BEGIN IMMEDIATE; CREATE TABLE t(x);").unwrap();
        let opening = std::thread::spawn({
            let data = dir.path().to_path_buf();
            move || StateDb::open(&data).map(drop)
        });
        std::thread::sleep(Duration::from_millis(300));
        other.execute_batch("COMMIT").unwrap();
        opening.join().unwrap().unwrap();
        // The header says WAL: any connection that reads it now uses the WAL.
        let header = std::fs::read(state.join(STATE_DB_FILE)).unwrap();
        assert_eq!(header[18..20], [2, 2], "read and write versions 2 mean WAL");
    }

    #[test]
    fn reservations_expire_and_are_replaced_per_key() {
        let dir = tempfile::tempdir().unwrap();
        let db = StateDb::open(dir.path()).unwrap();
        let r =
            Reservation { key: key("a"), size: 5, granted_at: UnixMs(0), expires_at: UnixMs(100) };
        db.write(|tx| tx.reserve(&r)).unwrap();
        db.write(|tx| tx.reserve(&Reservation { size: 7, ..r.clone() })).unwrap();
        let live = db.write(|tx| tx.reservations(UnixMs(99))).unwrap();
        assert_eq!(live.len(), 1);
        assert_eq!(live[0].size, 7);
        assert!(db.write(|tx| tx.reservations(UnixMs(100))).unwrap().is_empty());
    }

    #[test]
    fn ledger_adds_up_per_month_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let march = UnixMs(1_773_144_000_000);
        {
            let db = StateDb::open(dir.path()).unwrap();
            db.write(|tx| {
                tx.charge(RequestKind::Put, 3, march)?;
                tx.charge(RequestKind::List, 2, march)?;
                tx.charge(RequestKind::Head, 4, march)
            })
            .unwrap();
        }
        let db = StateDb::open(dir.path()).unwrap();
        let l = db.read(|tx| tx.ledger(march)).unwrap();
        assert_eq!((l.put_class, l.get_class), (5, 4));
        let april = UnixMs(march.0 + 31 * 86_400_000);
        assert_eq!(db.read(|tx| tx.ledger(april)).unwrap().put_class, 0);
    }

    #[test]
    fn owner_facts_leave_the_others_unlisted_and_listing_clears_reservations() {
        let dir = tempfile::tempdir().unwrap();
        let db = StateDb::open(dir.path()).unwrap();
        reserve_a(&db, 5, UnixMs(0));
        let objects = vec![
            ("users/alice/routes/a".to_owned(), 10, 1),
            ("users/bob/routes/b".to_owned(), 20, 2),
            ("not a layout key".to_owned(), 40, 3),
        ];
        db.write(|tx| tx.replace_inventory("b", UnixMs(5), UnixMs(6), &objects)).unwrap();
        let f = db.read(|tx| tx.owner_facts(Some(&UserId::new("alice").unwrap()))).unwrap();
        assert_eq!(f.objects.len(), 1);
        assert_eq!(f.unlisted_bytes, 60);
        let all = db.read(|tx| tx.all_facts()).unwrap();
        assert_eq!((all.objects.len(), all.unlisted_bytes), (2, 40));
        assert!(
            db.write(|tx| tx.reservations(UnixMs(0))).unwrap().is_empty(),
            "listed, so no longer reserved"
        );
        assert_eq!(db.read(|tx| tx.inventory_meta()).unwrap(), Some(("b".to_owned(), UnixMs(5))));
    }

    #[test]
    fn listings_that_end_out_of_order_keep_what_the_later_answer_saw() {
        // Two processes list while a third stores `a`: A's listing starts first but the
        // server reads the bucket for it after `a` is stored; B's starts later, is read before,
        // and its answer is applied last. `a` was seen stored: it must stay counted.
        let dir = tempfile::tempdir().unwrap();
        let db = StateDb::open(dir.path()).unwrap();
        let alice = UserId::new("alice").unwrap();
        reserve_a(&db, 10, UnixMs(1_000));
        let listed = vec![("users/alice/routes/a".to_owned(), 10, 2_000)];
        db.write(|tx| tx.replace_inventory("b", UnixMs(1_500), UnixMs(3_000), &listed)).unwrap();
        db.write(|tx| tx.replace_inventory("b", UnixMs(1_600), UnixMs(1_700), &[])).unwrap();
        let counted = |db: &StateDb| {
            let stored = db.read(|tx| tx.owner_facts(Some(&alice))).unwrap().objects.len();
            let reserved = db.write(|tx| tx.reservations(UnixMs(4_000))).unwrap().len();
            (stored, reserved)
        };
        assert_eq!(counted(&db), (1, 0), "stored, and its reservation done");
        // A listing that starts after the first answer and lacks `a`: deleted since.
        db.write(|tx| tx.replace_inventory("b", UnixMs(3_500), UnixMs(3_600), &[])).unwrap();
        assert_eq!(counted(&db), (0, 0));
    }

    #[test]
    fn an_older_version_listed_leaves_the_overwrites_reservation_counting() {
        let dir = tempfile::tempdir().unwrap();
        let db = StateDb::open(dir.path()).unwrap();
        reserve_a(&db, 50, UnixMs(10_000));
        let old = vec![("users/alice/routes/a".to_owned(), 5, 2_000)];
        db.write(|tx| tx.replace_inventory("b", UnixMs(11_000), UnixMs(11_100), &old)).unwrap();
        let live = db.write(|tx| tx.reservations(UnixMs(12_000))).unwrap();
        assert_eq!(live.len(), 1, "the 50-byte upload is not stored yet");
        // S3's whole seconds: the new version may read as written in the grant's second.
        let new = vec![("users/alice/routes/a".to_owned(), 50, 9_001)];
        db.write(|tx| tx.replace_inventory("b", UnixMs(12_000), UnixMs(12_100), &new)).unwrap();
        assert!(db.write(|tx| tx.reservations(UnixMs(12_000))).unwrap().is_empty());
    }

    #[test]
    fn the_bucket_total_follows_every_write() {
        let dir = tempfile::tempdir().unwrap();
        let db = StateDb::open(dir.path()).unwrap();
        let objects = vec![("users/alice/routes/a".to_owned(), 10, 1), ("other".to_owned(), 40, 3)];
        db.write(|tx| tx.replace_inventory("b", UnixMs(5), UnixMs(6), &objects)).unwrap();
        assert_eq!(db.read(|tx| tx.bucket_bytes()).unwrap(), 50);
        db.write(|tx| tx.put_object(&key("a"), 15, UnixMs(9))).unwrap();
        db.write(|tx| tx.put_object(&key("b"), 5, UnixMs(9))).unwrap();
        assert_eq!(db.read(|tx| tx.bucket_bytes()).unwrap(), 60);
        db.write(|tx| tx.remove_object("other")).unwrap();
        assert_eq!(db.read(|tx| tx.bucket_bytes()).unwrap(), 20);
        let sum: u64 = db.read(|tx| tx.all_objects()).unwrap().iter().map(|o| o.1).sum();
        assert_eq!(sum, 20);
    }

    #[test]
    fn a_damaged_file_is_reported_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join(STATE_DIR);
        std::fs::create_dir_all(&state).unwrap();
        let junk = b"this is not a database, but it is someone's data".repeat(100);
        std::fs::write(state.join(STATE_DB_FILE), &junk).unwrap();
        let e = StateDb::open(dir.path()).unwrap_err();
        assert!(matches!(e, StateError::Corrupt { .. }), "{e}");
        assert!(e.to_string().contains("Move it aside"), "{e}");
        assert_eq!(std::fs::read(state.join(STATE_DB_FILE)).unwrap(), junk);
    }

    #[test]
    fn json_state_is_imported_once() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join(STATE_DIR);
        std::fs::create_dir_all(&state).unwrap();
        std::fs::write(
            state.join("requests.json"),
            r#"{"month":"2026-03","put_class":1234,"get_class":5,"free":1}"#,
        )
        .unwrap();
        std::fs::write(
            state.join("s3-inventory.json"),
            r#"{"bucket":"http://s3/b","refreshed_at_ms":7,"objects":{"users/alice/routes/a":{"size":3,"last_modified_ms":1}}}"#,
        )
        .unwrap();
        let march = UnixMs(1_773_144_000_000);
        {
            let db = StateDb::open(dir.path()).unwrap();
            assert_eq!(db.read(|tx| tx.ledger(march)).unwrap().put_class, 1234);
            assert_eq!(db.read(|tx| tx.all_objects()).unwrap().len(), 1);
        }
        // Reopening does not import again (no double counting).
        let db = StateDb::open(dir.path()).unwrap();
        assert_eq!(db.read(|tx| tx.ledger(march)).unwrap().put_class, 1234);
        assert!(state.join("requests.json").exists(), "the JSON is kept");
    }
}
