//! Rider data (the spec's `save_rider_data`, `load_rider_data`, `get_rider_data_history`): a
//! Strava export, scrubbed of PII by the core, stored as the rider's fitness data under a
//! timestamped name that never replaces an earlier save, and summarised for the history.
//! Names and summaries are the core's ([`kompass_core::rider`]; the page uses the same code).
//!
//! **Names.** `fitness_data_{YYYYmmdd_HHMMSS}.json`, the UTC second of the save. Another save
//! in the same second gets `_2`, then `_3`, ...: each name is claimed with a create-only write
//! ([`Manager::save_new`]), so two writers, even two processes, never overwrite each other.
//!
//! **Summary** of a stored document ([`summarize`]):
//! - `activity_count`: the records in `activities` (or, when it is absent, `recent_activities`:
//!   both hold the same records, so they are not added up);
//! - `has_power_data`: some activity reports power, i.e. a positive `average_watts`,
//!   `weighted_average_watts` or `max_watts`;
//! - `completeness`: the fraction of the four sections of a rider document that are present
//!   and non-empty (an object or array with at least one member): the athlete (`basic_info`
//!   or `athlete`), the activities (`activities` or `recent_activities`), `stats` and `zones`.
//!   1.0 is a full export, 0.25 for instance activities alone; `sections` names those present;
//! - `pii_removed`: the document carries the scrubber's anonymization block (a file stored
//!   with plain `kompass save --type fitness` does not).
//!
//! Summaries cost a GET per stored file, so they are cached in the state file
//! `rider-summaries` and reused while the file's backend, size and modification time match.

use std::collections::BTreeMap;

use kompass_core::config::{Config, MissingSecret};
use kompass_core::import::{self, ImportError, ImportLimits, ImportReport, Imported};
use kompass_core::key::{DataType, FileName, ObjectKey, UserId};
pub use kompass_core::rider::{
    MAX_SAVES_PER_SECOND, NAME_PREFIX, SECTIONS, SaveStamp, Summary, parse_save_name, save_name,
    stamp, summarize,
};
use kompass_core::scrub::{self, PseudonymKey, PseudonymKeyError, ScrubError, ScrubReport};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::manager::{Backend, Listed, Manager, ManagerError, SaveOutcome, rfc3339_ms};
use crate::state::{OnCorrupt, StateFile};

/// Why a rider data operation failed.
#[derive(Debug, Error)]
pub enum RiderError {
    /// `KOMPASS_PSEUDONYM_KEY` is not set.
    #[error(transparent)]
    MissingKey(#[from] MissingSecret),
    /// The configured key or key id is not accepted by the scrubber.
    #[error("KOMPASS_PSEUDONYM_KEY / KOMPASS_PSEUDONYM_KEY_ID cannot be used: {0}")]
    BadKey(#[from] PseudonymKeyError),
    /// The input is not rider data.
    #[error(transparent)]
    Scrub(#[from] ScrubError),
    /// The input to a save is not rider data; nothing was stored.
    #[error("{0}; nothing was stored")]
    NotStored(ScrubError),
    /// The scrubbed document could not be read back: a scrubber bug, so it is not stored.
    #[error(
        "the scrubbed document is not a JSON object ({0}); this is a bug in the scrubber, and nothing was stored"
    )]
    Unreadable(serde_json::Error),
    /// Storage failed.
    #[error(transparent)]
    Manager(#[from] ManagerError),
    /// The user has no rider data.
    #[error(
        "no rider data is stored for user {user}: save some with `kompass rider save --user {user} FILE`"
    )]
    NoData {
        /// The user.
        user: String,
    },
    /// A Strava bulk export ZIP that cannot be imported; nothing was stored.
    #[error(transparent)]
    Import(#[from] ImportError),
    /// S3 is configured but unreachable and nothing local answers: not "no rider data".
    #[error("S3 is configured but unreachable, and no local copy of this rider's data exists: {0}")]
    Unreachable(String),
    /// Every name of that second is taken.
    #[error(
        "user {user} already has {MAX_SAVES_PER_SECOND} rider data saves stamped {stamp}; nothing was stored: wait a second and save again"
    )]
    Crowded {
        /// The user.
        user: String,
        /// The second, `YYYYmmdd_HHMMSS`.
        stamp: String,
    },
}

/// The scrubber's key from the configuration; [`RiderError::MissingKey`] without one.
pub fn pseudonym_key(config: &Config) -> Result<PseudonymKey, RiderError> {
    let k = config.pseudonym_key()?;
    Ok(PseudonymKey::new(k.id, k.key.expose_bytes())?)
}

/// Reads Strava's bulk export ZIP with the default limits ([`ImportLimits::default`]): the
/// document [`Riders::import`] stores and what was kept, removed and skipped. `kompass rider
/// import` (also with --dry-run) and the Python package call this, so they read alike.
pub fn import_export(archive: &[u8]) -> Result<Imported, RiderError> {
    Ok(import::import_strava_export_with(archive, &ImportLimits::default(), &mut |_| {})?)
}

/// [`import_export`] of an archive read from `reader` (`len` bytes) entry by entry, so the
/// archive is never held whole (`kompass rider import FILE`).
pub fn import_export_from<R: std::io::Read + std::io::Seek>(
    reader: R,
    len: u64,
) -> Result<Imported, RiderError> {
    Ok(import::import_strava_export_from(reader, len, &ImportLimits::default(), &mut |_| {})?)
}

/// A rider data save that was stored.
#[derive(Debug, Clone, Serialize)]
pub struct RiderSaved {
    /// Where and how it was stored (the `save` JSON shape).
    #[serde(flatten)]
    pub outcome: SaveOutcome,
    /// The file name (for `rider load --name`).
    pub name: String,
    /// The save's second, RFC 3339 UTC.
    pub saved_at: String,
    /// What the stored document holds.
    #[serde(flatten)]
    pub summary: Summary,
    /// What the scrubber removed (paths into the input; shown to its owner, never stored).
    #[serde(skip)]
    pub report: ScrubReport,
    /// The rider's pseudonym, when the data had an athlete id.
    pub user_hash: Option<String>,
    /// How many paths the scrubber removed.
    pub removed_count: usize,
}

/// A stored rider data file, from a listing.
#[derive(Debug, Clone, Serialize)]
pub struct Save {
    /// Name, key, size, last modification and backend.
    #[serde(flatten)]
    pub listed: Listed,
    /// The save's second from its name, or the file's last modification for other names.
    pub saved_at: String,
    #[serde(skip)]
    seq: u32,
}

/// A loaded rider data file.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// Its file name.
    pub name: String,
    /// Its object key.
    pub key: String,
    /// Where it was read from.
    pub backend: Backend,
    /// The stored document.
    pub bytes: Vec<u8>,
}

/// One entry of a rider's history.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryEntry {
    /// The stored file.
    #[serde(flatten)]
    pub save: Save,
    /// What it holds.
    #[serde(flatten)]
    pub summary: Summary,
    /// Why it could not be summarised (not JSON, not an object); the summary is then empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// Cached summaries by object key.
#[derive(Debug, Default, Serialize, Deserialize)]
struct SummaryCache {
    entries: BTreeMap<String, CachedSummary>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct CachedSummary {
    /// Backend, size and modification time of the copy summarised.
    copy: String,
    summary: Summary,
}

fn copy_id(l: &Listed) -> String {
    format!("{}|{}|{}", l.backend, l.size, l.last_modified)
}

/// How many cached rider summaries describe keys under `prefix` (for an erase's dry run).
pub fn summary_keys(manager: &Manager, prefix: &str) -> Result<usize, ManagerError> {
    let file: StateFile<SummaryCache> =
        StateFile::open(manager.local().root(), "rider-summaries", OnCorrupt::StartFresh)?;
    Ok(file.load()?.entries.keys().filter(|k| k.starts_with(prefix)).count())
}

/// Drops the cached rider summaries of keys under `prefix` (an erased user); how many.
pub fn forget_summaries(manager: &Manager, prefix: &str) -> Result<usize, ManagerError> {
    let file: StateFile<SummaryCache> =
        StateFile::open(manager.local().root(), "rider-summaries", OnCorrupt::StartFresh)?;
    Ok(file.update(|c| {
        let n = c.entries.len();
        c.entries.retain(|k, _| !k.starts_with(prefix));
        n - c.entries.len()
    })?)
}

/// Rider data operations on top of a [`Manager`].
pub struct Riders<'a> {
    manager: &'a Manager,
    summaries: StateFile<SummaryCache>,
}

impl<'a> Riders<'a> {
    /// Rider data in `manager`'s storage.
    pub fn new(manager: &'a Manager) -> Result<Self, RiderError> {
        let summaries =
            StateFile::open(manager.local().root(), "rider-summaries", OnCorrupt::StartFresh)
                .map_err(ManagerError::from)?;
        Ok(Riders { manager, summaries })
    }

    /// Scrubs `input` with `key` and stores it as `user`'s fitness data, named for `now_ms`.
    /// Nothing is stored when scrubbing fails; an earlier save is never replaced.
    pub async fn save(
        &self,
        user: &UserId,
        input: &[u8],
        key: &PseudonymKey,
        now_ms: i64,
    ) -> Result<RiderSaved, RiderError> {
        let scrubbed = scrub::scrub(input, key).map_err(RiderError::NotStored)?;
        self.store(user, scrubbed, now_ms).await
    }

    /// Stores an imported Strava bulk export ([`import_export`]) as [`Riders::save`] stores
    /// rider data (keyed scrub, timestamped name); the save and the import's report.
    pub async fn save_import(
        &self,
        user: &UserId,
        imported: Imported,
        key: &PseudonymKey,
        now_ms: i64,
    ) -> Result<(RiderSaved, ImportReport), RiderError> {
        let saved = self.save(user, imported.document.as_bytes(), key, now_ms).await?;
        Ok((saved, imported.report))
    }

    /// Like [`Riders::save`], for rider data that reached the server from outside (the
    /// page's upload, already scrubbed keyless on the device): scrubbed again under the
    /// policy's incoming rule ([`scrub::scrub_incoming`]), so every pseudonym-shaped value in
    /// it is dropped and the `user_hash` is the pseudonym of `user`, the token's user.
    pub async fn save_incoming(
        &self,
        user: &UserId,
        input: &[u8],
        key: &PseudonymKey,
        now_ms: i64,
    ) -> Result<RiderSaved, RiderError> {
        let scrubbed =
            scrub::scrub_incoming(input, key, user.as_str()).map_err(RiderError::NotStored)?;
        self.store(user, scrubbed, now_ms).await
    }

    /// Stores a scrubbed document as `user`'s fitness data through the manager's save path.
    async fn store(
        &self,
        user: &UserId,
        scrubbed: scrub::Scrubbed,
        now_ms: i64,
    ) -> Result<RiderSaved, RiderError> {
        let document = scrubbed.document.as_bytes();
        let summary = summarize(document).map_err(RiderError::Unreadable)?;
        let stamp = stamp(now_ms);
        for seq in 1..=MAX_SAVES_PER_SECOND {
            let name = save_name(&stamp, seq);
            let object = ObjectKey::new(
                Some(user.clone()),
                DataType::Fitness,
                FileName::new(&name).map_err(ManagerError::Key)?,
            )
            .map_err(ManagerError::Key)?;
            match self.manager.save_new(&object, document).await {
                Ok(outcome) => {
                    let saved_at = parse_save_name(&name)
                        .map(|s| s.saved_at)
                        .unwrap_or_else(|| rfc3339_ms(now_ms));
                    return Ok(RiderSaved {
                        outcome,
                        name,
                        saved_at,
                        summary,
                        user_hash: scrubbed.report.user_hash.clone(),
                        removed_count: scrubbed.report.removed_count,
                        report: scrubbed.report,
                    });
                }
                Err(ManagerError::Exists { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(RiderError::Crowded { user: user.to_string(), stamp })
    }

    /// `user`'s stored fitness files, newest save first.
    pub async fn saves(&self, user: &UserId) -> Result<Vec<Save>, RiderError> {
        Ok(self.saves_checked(user).await?.0)
    }

    /// Like [`Riders::saves`], and why S3's saves are missing when S3 is configured but could
    /// not be listed (the local copies only: a degraded answer).
    pub async fn saves_checked(
        &self,
        user: &UserId,
    ) -> Result<(Vec<Save>, Option<String>), RiderError> {
        let (listed, degraded) = self.manager.list_checked(Some(user), DataType::Fitness).await?;
        let mut saves: Vec<Save> = listed
            .into_iter()
            .map(|listed| {
                let (saved_at, seq) = match parse_save_name(&listed.name) {
                    Some(s) => (s.saved_at, s.seq),
                    None => (listed.last_modified.clone(), 0),
                };
                Save { listed, saved_at, seq }
            })
            .collect();
        // RFC 3339 UTC strings of one format sort chronologically.
        saves.sort_by(|a, b| {
            (&b.saved_at, b.seq)
                .cmp(&(&a.saved_at, a.seq))
                .then_with(|| a.listed.name.cmp(&b.listed.name))
        });
        Ok((saves, degraded))
    }

    /// The save called `name`, or the newest one.
    pub async fn load(&self, user: &UserId, name: Option<&str>) -> Result<Loaded, RiderError> {
        Ok(self.load_checked(user, name).await?.0)
    }

    /// Like [`Riders::load`], and why S3 could not be asked when S3 is configured but was
    /// unreachable (the save read is a local copy, maybe not the newest: a degraded answer).
    /// With nothing local to read it fails with S3's outage, never "no rider data".
    pub async fn load_checked(
        &self,
        user: &UserId,
        name: Option<&str>,
    ) -> Result<(Loaded, Option<String>), RiderError> {
        let mut degraded = None;
        let name = match name {
            Some(n) => n.to_owned(),
            None => {
                let (saves, listing) = self.saves_checked(user).await?;
                match (saves.into_iter().next(), listing) {
                    (Some(s), listing) => {
                        degraded = listing;
                        s.listed.name
                    }
                    (None, Some(why)) => return Err(RiderError::Unreachable(why)),
                    (None, None) => return Err(RiderError::NoData { user: user.to_string() }),
                }
            }
        };
        let key = fitness_key(user, &name)?;
        let (bytes, backend, read) = self.manager.load_checked(&key).await?;
        Ok((Loaded { name, key: key.s3_key(), backend, bytes }, degraded.or(read)))
    }

    /// Every save of `user`, newest first, each with its summary.
    pub async fn history(&self, user: &UserId) -> Result<Vec<HistoryEntry>, RiderError> {
        Ok(self.history_checked(user).await?.0)
    }

    /// Like [`Riders::history`], and why S3's saves are missing when S3 is configured but
    /// could not be listed (the local saves only: a degraded answer).
    pub async fn history_checked(
        &self,
        user: &UserId,
    ) -> Result<(Vec<HistoryEntry>, Option<String>), RiderError> {
        let (saves, degraded) = self.saves_checked(user).await?;
        let cache = self.summaries.load().map_err(ManagerError::from)?;
        let mut fresh: BTreeMap<String, CachedSummary> = BTreeMap::new();
        let mut out = Vec::with_capacity(saves.len());
        for save in saves {
            let copy = copy_id(&save.listed);
            if let Some(c) = cache.entries.get(&save.listed.key).filter(|c| c.copy == copy) {
                fresh.insert(save.listed.key.clone(), c.clone());
                out.push(HistoryEntry { summary: c.summary.clone(), save, problem: None });
                continue;
            }
            let key = fitness_key(user, &save.listed.name)?;
            let bytes = match self.manager.load(&key).await {
                Ok((bytes, _)) => bytes,
                // Deleted since the listing: it is no longer history.
                Err(ManagerError::NotFound { .. }) => continue,
                Err(e) => return Err(e.into()),
            };
            match summarize(&bytes) {
                Ok(summary) => {
                    fresh.insert(
                        save.listed.key.clone(),
                        CachedSummary { copy, summary: summary.clone() },
                    );
                    out.push(HistoryEntry { save, summary, problem: None });
                }
                Err(e) => out.push(HistoryEntry {
                    save,
                    summary: Summary {
                        activity_count: 0,
                        has_power_data: false,
                        completeness: 0.0,
                        sections: Vec::new(),
                        pii_removed: false,
                    },
                    problem: Some(format!("not a rider document: {e}")),
                }),
            }
        }
        // Keep the cache to what this user's listing holds now (other users' entries stay).
        let prefix = kompass_core::key::type_prefix(Some(user), DataType::Fitness);
        self.summaries
            .update(|c| {
                c.entries.retain(|k, _| !k.starts_with(&prefix));
                c.entries.extend(fresh);
            })
            .map_err(ManagerError::from)?;
        Ok((out, degraded))
    }
}

fn fitness_key(user: &UserId, name: &str) -> Result<ObjectKey, RiderError> {
    let name = FileName::new(name).map_err(ManagerError::Key)?;
    Ok(ObjectKey::new(Some(user.clone()), DataType::Fitness, name).map_err(ManagerError::Key)?)
}
