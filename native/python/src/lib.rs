//! `kompass_storage._native`: the Python host adapter over the `kompass` storage manager.
//!
//! A thin translation layer, like the wasm crate: every call goes to the same public entry
//! points the `kompass` CLI commands use (`Manager::save`/`load`/`list`/`delete`,
//! `migrate::migrate`, `Riders::save`/`load`/`history`), so admission, scrubbing and migration
//! are the native crate's, never re-implemented here. Results cross as the CLI's JSON shapes
//! (the Python side parses them); errors become typed Python exceptions.
//!
//! The GIL is released around every call that does IO (`Python::detach`), and one manager
//! serves any number of Python threads: the manager is `Sync` and the tokio runtime is
//! multi-threaded, so concurrent `block_on`s from several threads are allowed.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::sync::Mutex;

use kompass::env::EnvError;
use kompass::manager::{Backend, Manager, ManagerError, now_ms};
use kompass::migrate::{self, MigrateError, Options};
use kompass::report::{self, StorageFacts, TypeUsage};
use kompass::rider::{RiderError, Riders};
use kompass_core::key::{DataType, FileName, KeyError, ObjectKey, UserId};
use kompass_core::quota::UsageStatus;
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use serde::Serialize;

create_exception!(
    kompass_storage,
    StorageError,
    PyException,
    "Base class of every kompass_storage error."
);
create_exception!(
    kompass_storage,
    LimitExceeded,
    StorageError,
    "Refused by a limit (file size, user quota, bucket limit); nothing was stored or deleted."
);
create_exception!(kompass_storage, NotFound, StorageError, "Nothing is stored under that name.");
create_exception!(
    kompass_storage,
    InvalidName,
    StorageError,
    "A user id, data type or file name was rejected (it could escape its prefix, or is malformed)."
);
create_exception!(
    kompass_storage,
    InvalidData,
    StorageError,
    "The data cannot be stored as given (e.g. rider data that is not a Strava export)."
);
create_exception!(
    kompass_storage,
    ConfigError,
    StorageError,
    "The configuration (environment, .env) is invalid or lacks what the call needs."
);
create_exception!(
    kompass_storage,
    StorageUnavailable,
    StorageError,
    "A storage backend could not be reached."
);

fn key_error(e: KeyError) -> PyErr {
    InvalidName::new_err(e.to_string())
}

fn manager_error(e: ManagerError) -> PyErr {
    let msg = e.to_string();
    match e {
        ManagerError::Key(_) => InvalidName::new_err(msg),
        ManagerError::Refused(_) => LimitExceeded::new_err(msg),
        ManagerError::NotFound { .. } => NotFound::new_err(msg),
        ManagerError::S3(ref s3) if s3.is_outage() => StorageUnavailable::new_err(msg),
        ManagerError::S3Disabled | ManagerError::Policy(_) => ConfigError::new_err(msg),
        // The core policy's rule for fitness data: only a document the keyed scrub leaves
        // unchanged is stored. The message names the CLI; a Python caller gets its own way.
        ManagerError::NotScrubbed(_) => InvalidData::new_err(format!(
            "{msg}. From Python, store rider data with RiderDataProcessor.save_rider_data, which removes PII first"
        )),
        ManagerError::MissingPseudonymKey(_) | ManagerError::BadPseudonymKey(_) => {
            ConfigError::new_err(msg)
        }
        _ => StorageError::new_err(msg),
    }
}

fn rider_error(e: RiderError) -> PyErr {
    let msg = e.to_string();
    match e {
        RiderError::Manager(m) => manager_error(m),
        RiderError::MissingKey(_) | RiderError::BadKey(_) => ConfigError::new_err(msg),
        RiderError::Scrub(_) | RiderError::NotStored(_) | RiderError::Import(_) => {
            InvalidData::new_err(msg)
        }
        RiderError::NoData { .. } => NotFound::new_err(msg),
        RiderError::Unreachable(_) => StorageUnavailable::new_err(msg),
        RiderError::Crowded { .. } => LimitExceeded::new_err(msg),
        RiderError::Unreadable(_) => StorageError::new_err(msg),
    }
}

fn env_error(e: EnvError) -> PyErr {
    ConfigError::new_err(e.to_string())
}

fn migrate_error(e: MigrateError) -> PyErr {
    let msg = e.to_string();
    match e {
        MigrateError::Manager(m) => manager_error(m),
        MigrateError::Survey(_) => StorageUnavailable::new_err(msg),
        MigrateError::Concurrency(_) | MigrateError::Plan(_) => StorageError::new_err(msg),
    }
}

fn to_json<T: Serialize>(value: &T) -> PyResult<String> {
    serde_json::to_string(value)
        .map_err(|e| StorageError::new_err(format!("could not encode a result: {e}")))
}

fn user_id(user: &str) -> PyResult<UserId> {
    UserId::new(user).map_err(key_error)
}

/// `kompass storage info` for Python: `kompass status`'s facts and what the Python side adds.
#[derive(Serialize)]
struct StorageInfo {
    #[serde(flatten)]
    facts: StorageFacts,
    s3_enabled: bool,
    /// S3 is enabled and its inventory could be read now (or is cached and fresh).
    s3_available: bool,
    local_available: bool,
    config: kompass_core::config::RedactedConfig,
}

/// One user's usage against the user quota: `report::UserQuotaUsage` under the Python API's names.
#[derive(Serialize)]
struct UserUsageReport<'a> {
    user_id: &'a str,
    /// Which inventory: S3 when enabled and reachable, else the local data directory.
    backend: Backend,
    total_bytes: u64,
    file_count: u64,
    by_data_type: &'a BTreeMap<String, TypeUsage>,
    quota_bytes: u64,
    percent_used: f64,
    status: UsageStatus,
    s3_error: Option<&'a str>,
}

/// What `rider_import` returns: the `kompass rider import --json` shape.
#[derive(Serialize)]
struct ImportOutput {
    /// The save, as `rider_save` returns it; absent in a dry run.
    #[serde(skip_serializing_if = "Option::is_none")]
    saved: Option<kompass::rider::RiderSaved>,
    /// The document that would be stored (dry run only).
    #[serde(skip_serializing_if = "Option::is_none")]
    document: Option<serde_json::Value>,
    /// What the import kept, removed and skipped.
    import: kompass_core::import::ImportReport,
}

/// The storage manager, its runtime, and nothing else: all policy is the native crate's.
#[pyclass(frozen, module = "kompass_storage._native")]
struct NativeManager {
    manager: Manager,
    runtime: tokio::runtime::Runtime,
}

impl NativeManager {
    /// Runs a future on the runtime with the GIL released.
    fn run<T: Send, F: Future<Output = T> + Send>(&self, py: Python<'_>, f: F) -> T {
        py.detach(|| self.runtime.block_on(f))
    }
}

#[pymethods]
impl NativeManager {
    /// Reads the configuration (environment, then `.env` in the working directory; the
    /// environment wins) as the CLI does, and opens the data directory and the S3 client.
    #[new]
    #[pyo3(signature = (data_dir=None))]
    fn new(py: Python<'_>, data_dir: Option<std::path::PathBuf>) -> PyResult<Self> {
        py.detach(|| {
            let config = kompass::env::load(data_dir.as_deref()).map_err(env_error)?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("kompass-storage")
                .enable_all()
                .build()
                .map_err(|e| {
                    StorageError::new_err(format!("could not start the async runtime: {e}"))
                })?;
            let manager = {
                let _guard = runtime.enter();
                Manager::open(config).map_err(manager_error)?
            };
            Ok(NativeManager { manager, runtime })
        })
    }

    /// Stores `data` (overwriting); the `save` JSON shape.
    #[pyo3(signature = (user, data_type, name, data))]
    fn save(
        &self,
        py: Python<'_>,
        user: Option<&str>,
        data_type: &str,
        name: &str,
        data: &[u8],
    ) -> PyResult<String> {
        let key = ObjectKey::parse_parts(user, data_type, name).map_err(key_error)?;
        // Fitness data passes the core policy's rule in the manager's save (NotScrubbed).
        let saved = self.run(py, self.manager.save(&key, data)).map_err(manager_error)?;
        to_json(&saved)
    }

    /// The stored bytes (the newest copy); `NotFound` when absent.
    #[pyo3(signature = (user, data_type, name))]
    fn load<'py>(
        &self,
        py: Python<'py>,
        user: Option<&str>,
        data_type: &str,
        name: &str,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let key = ObjectKey::parse_parts(user, data_type, name).map_err(key_error)?;
        let (bytes, _) = self.run(py, self.manager.load(&key)).map_err(manager_error)?;
        Ok(PyBytes::new(py, &bytes))
    }

    /// One owner's files of one type, newest first; the `list` JSON shape.
    #[pyo3(signature = (user, data_type))]
    fn list(&self, py: Python<'_>, user: Option<&str>, data_type: &str) -> PyResult<String> {
        let owner = user.map(user_id).transpose()?;
        let dt: DataType = data_type.parse().map_err(key_error)?;
        // The core's scope rule (fitness has an owner; models and training_data none), as the CLI.
        let probe = FileName::new("scope-check").map_err(key_error)?;
        ObjectKey::new(owner.clone(), dt, probe).map_err(key_error)?;
        let items = self.run(py, self.manager.list(owner.as_ref(), dt)).map_err(manager_error)?;
        to_json(&items)
    }

    /// Deletes everywhere; the backends it was deleted from. `NotFound` when it was nowhere.
    #[pyo3(signature = (user, data_type, name))]
    fn delete(
        &self,
        py: Python<'_>,
        user: Option<&str>,
        data_type: &str,
        name: &str,
    ) -> PyResult<Vec<String>> {
        let key = ObjectKey::parse_parts(user, data_type, name).map_err(key_error)?;
        let from = self.run(py, self.manager.delete(&key)).map_err(manager_error)?;
        Ok(from
            .into_iter()
            .map(|b| match b {
                Backend::S3 => "s3".to_owned(),
                Backend::Local => "local".to_owned(),
            })
            .collect())
    }

    /// The backends, what they hold and the configuration (secrets redacted), as JSON.
    fn info(&self, py: Python<'_>) -> PyResult<String> {
        let m = &self.manager;
        let facts = self.run(py, report::storage_facts(m)).map_err(manager_error)?;
        to_json(&StorageInfo {
            s3_enabled: m.s3().is_some(),
            s3_available: facts.s3_files.is_some(),
            local_available: true,
            config: m.config().redacted_view(),
            facts,
        })
    }

    /// One user's usage against the quota, from the S3 inventory (cached) or local disk.
    fn usage(&self, py: Python<'_>, user: &str) -> PyResult<String> {
        let user = user_id(user)?;
        let facts =
            self.run(py, report::user_usage(&self.manager, &user)).map_err(manager_error)?;
        let u = &facts.usage;
        to_json(&UserUsageReport {
            user_id: user.as_str(),
            backend: facts.backend,
            total_bytes: u.bytes,
            file_count: u.files,
            by_data_type: &u.by_type,
            quota_bytes: u.status.limit,
            percent_used: u.status.percent,
            status: u.status,
            s3_error: facts.s3_error.as_deref(),
        })
    }

    /// Local data to S3, verified before any local copy goes; the `migrate --json` report.
    #[pyo3(signature = (user=None, dry_run=false))]
    fn migrate(&self, py: Python<'_>, user: Option<&str>, dry_run: bool) -> PyResult<String> {
        let user = user.map(user_id).transpose()?;
        self.manager.require_s3().map_err(manager_error)?;
        let opts = Options { user, dry_run, ..Options::default() };
        let progress = indicatif::ProgressBar::hidden();
        let report = self
            .run(py, migrate::migrate(&self.manager, &opts, &progress))
            .map_err(migrate_error)?;
        to_json(&report)
    }

    /// Scrubs rider data with the configured pseudonym key and stores it; the saved summary.
    fn rider_save(&self, py: Python<'_>, user: &str, data: &[u8]) -> PyResult<String> {
        let user = user_id(user)?;
        let key = kompass::rider::pseudonym_key(self.manager.config()).map_err(rider_error)?;
        let saved = self
            .run(py, async { Riders::new(&self.manager)?.save(&user, data, &key, now_ms()).await });
        to_json(&saved.map_err(rider_error)?)
    }

    /// Imports Strava's bulk export ZIP at `path` and stores it as `user`'s rider data, through
    /// the same library calls as `kompass rider import` (`rider::import_export`, then
    /// `Riders::save_import`); with `dry_run` nothing is stored and the document is returned.
    /// The whole import runs with the GIL released.
    #[pyo3(signature = (path, user=None, dry_run=false))]
    fn rider_import(
        &self,
        py: Python<'_>,
        path: std::path::PathBuf,
        user: Option<&str>,
        dry_run: bool,
    ) -> PyResult<String> {
        let user = user.map(user_id).transpose()?;
        // As the CLI: the user and the key are checked before the archive is read.
        let key = match (&user, dry_run) {
            (Some(_), false) => {
                Some(kompass::rider::pseudonym_key(self.manager.config()).map_err(rider_error)?)
            }
            (None, false) => {
                return Err(InvalidName::new_err(
                    "importing a Strava export needs a user id (or dry_run=True); nothing was stored",
                ));
            }
            (_, true) => None,
        };
        let out = py.detach(|| {
            let archive = std::fs::read(&path).map_err(|e| {
                InvalidData::new_err(format!(
                    "the Strava export {} cannot be read: {e}",
                    path.display()
                ))
            })?;
            let imported = kompass::rider::import_export(&archive).map_err(rider_error)?;
            drop(archive);
            match (user, key) {
                (Some(user), Some(key)) => {
                    let (saved, report) = self
                        .runtime
                        .block_on(async {
                            Riders::new(&self.manager)?
                                .save_import(&user, imported, &key, now_ms())
                                .await
                        })
                        .map_err(rider_error)?;
                    Ok::<_, PyErr>(ImportOutput {
                        saved: Some(saved),
                        document: None,
                        import: report,
                    })
                }
                _ => {
                    let document = serde_json::from_str(&imported.document).map_err(|e| {
                        StorageError::new_err(format!("the imported document is not JSON: {e}"))
                    })?;
                    Ok(ImportOutput {
                        saved: None,
                        document: Some(document),
                        import: imported.report,
                    })
                }
            }
        })?;
        to_json(&out)
    }

    /// A stored rider document (`name`, or the newest); `NotFound` when there is none.
    #[pyo3(signature = (user, name=None))]
    fn rider_load<'py>(
        &self,
        py: Python<'py>,
        user: &str,
        name: Option<&str>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let user = user_id(user)?;
        let loaded = self.run(py, async { Riders::new(&self.manager)?.load(&user, name).await });
        Ok(PyBytes::new(py, &loaded.map_err(rider_error)?.bytes))
    }

    /// Every rider data save of `user`, newest first, with its summary.
    fn rider_history(&self, py: Python<'_>, user: &str) -> PyResult<String> {
        let user = user_id(user)?;
        let history = self.run(py, async { Riders::new(&self.manager)?.history(&user).await });
        to_json(&history.map_err(rider_error)?)
    }
}

/// Log records from the native crate (`tracing`), waiting for Python's `logging`.
static LOG: Mutex<VecDeque<(u8, String, String)>> = Mutex::new(VecDeque::new());
/// Records kept when nobody drains them: the oldest are dropped beyond this.
const LOG_CAPACITY: usize = 1000;

/// A `tracing` layer that queues events for Python: the event may happen on a runtime thread
/// that must not take the GIL, so the Python side drains the queue after each call.
struct QueueLayer;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for QueueLayer {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        struct Fields(String);
        impl tracing::field::Visit for Fields {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if !self.0.is_empty() {
                    self.0.push(' ');
                }
                if field.name() == "message" {
                    let _ = write!(self.0, "{value:?}");
                } else {
                    let _ = write!(self.0, "{}={value:?}", field.name());
                }
            }
            fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
                if field.name() == "message" {
                    if !self.0.is_empty() {
                        self.0.push(' ');
                    }
                    self.0.push_str(value);
                } else {
                    self.record_debug(field, &value);
                }
            }
        }
        let meta = event.metadata();
        // Python's logging levels.
        let level = match *meta.level() {
            tracing::Level::ERROR => 40,
            tracing::Level::WARN => 30,
            tracing::Level::INFO => 20,
            _ => 10,
        };
        let mut fields = Fields(String::new());
        event.record(&mut fields);
        let mut q = LOG.lock().unwrap_or_else(|e| e.into_inner());
        if q.len() >= LOG_CAPACITY {
            q.pop_front();
        }
        q.push_back((level, meta.target().to_owned(), fields.0));
    }
}

/// The native log records since the last call, oldest first: `(level, target, message)`.
#[pyfunction]
fn drain_log() -> Vec<(u8, String, String)> {
    LOG.lock().unwrap_or_else(|e| e.into_inner()).drain(..).collect()
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt;
    // INFO and up: Python's logging configuration decides what is shown. Another global
    // subscriber (an embedding program's) wins; then these records are not forwarded.
    let subscriber = tracing_subscriber::registry()
        .with(QueueLayer.with_filter(tracing_subscriber::filter::LevelFilter::INFO));
    let _ = tracing::subscriber::set_global_default(subscriber);

    let py = m.py();
    m.add_class::<NativeManager>()?;
    m.add_function(wrap_pyfunction!(drain_log, m)?)?;
    m.add("StorageError", py.get_type::<StorageError>())?;
    m.add("LimitExceeded", py.get_type::<LimitExceeded>())?;
    m.add("NotFound", py.get_type::<NotFound>())?;
    m.add("InvalidName", py.get_type::<InvalidName>())?;
    m.add("InvalidData", py.get_type::<InvalidData>())?;
    m.add("ConfigError", py.get_type::<ConfigError>())?;
    m.add("StorageUnavailable", py.get_type::<StorageUnavailable>())?;
    Ok(())
}
