//! Rider data (the spec's `save_rider_data`, `load_rider_data`, `get_rider_data_history`): a
//! Strava export, scrubbed of PII by the core, stored as the rider's fitness data under a
//! timestamped name that never replaces an earlier save, and summarised for the history.
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
use std::fmt;

use kompass_core::config::{Config, MissingSecret};
use kompass_core::key::{DataType, FileName, ObjectKey, UserId};
use kompass_core::scrub::{self, PseudonymKey, PseudonymKeyError, ScrubError, ScrubReport};
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::manager::{Backend, Listed, Manager, ManagerError, SaveOutcome, rfc3339_ms};
use crate::state::{OnCorrupt, StateFile};

/// The start of every rider data file name.
pub const NAME_PREFIX: &str = "fitness_data_";

/// Saves in one second beyond which a save gives up (`_2` ... `_1000`): more means a runaway
/// loop, not a rider.
pub const MAX_SAVES_PER_SECOND: u32 = 1000;

/// The sections of a rider document that [`Summary::completeness`] counts.
pub const SECTIONS: [&str; 4] = ["athlete", "activities", "stats", "zones"];

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

/// The UTC second of `unix_ms` as `YYYYmmdd_HHMMSS`.
pub fn stamp(unix_ms: i64) -> String {
    // "2024-05-01T06:30:00Z" -> "20240501_063000"
    let t = kompass_core::presign::rfc3339_utc((unix_ms.max(0) / 1000) as u64);
    let (date, time) = t.split_once('T').unwrap_or((&t, ""));
    let keep = |s: &str| s.chars().filter(char::is_ascii_digit).collect::<String>();
    format!("{}_{}", keep(date), keep(time))
}

/// The file name of the `seq`-th save (from 1) stamped `stamp`.
pub fn save_name(stamp: &str, seq: u32) -> String {
    if seq <= 1 {
        format!("{NAME_PREFIX}{stamp}.json")
    } else {
        format!("{NAME_PREFIX}{stamp}_{seq}.json")
    }
}

/// When a rider data file was saved, read from its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaveStamp {
    /// The save's second, RFC 3339 UTC.
    pub saved_at: String,
    /// 1 for the first save of that second, 2 for `_2`, ...
    pub seq: u32,
}

/// Reads a name written by [`save_name`]; `None` for any other name.
pub fn parse_save_name(name: &str) -> Option<SaveStamp> {
    let rest = name.strip_prefix(NAME_PREFIX)?.strip_suffix(".json")?;
    let (date, rest) = rest.split_once('_')?;
    let (time, seq) = match rest.split_once('_') {
        Some((time, seq)) => {
            // Exactly what save_name writes: 2 and up, no leading zeros.
            if seq.starts_with('0') || !seq.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            (time, seq.parse::<u32>().ok().filter(|n| *n >= 2)?)
        }
        None => (rest, 1),
    };
    if date.len() != 8
        || time.len() != 6
        || !date.bytes().chain(time.bytes()).all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let num = |s: &str| s.parse::<u32>().unwrap_or(u32::MAX);
    let (month, day) = (num(&date[4..6]), num(&date[6..8]));
    let (h, m, s) = (num(&time[0..2]), num(&time[2..4]), num(&time[4..6]));
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || h > 23 || m > 59 || s > 59 {
        return None;
    }
    Some(SaveStamp {
        saved_at: format!(
            "{}-{}-{}T{}:{}:{}Z",
            &date[0..4],
            &date[4..6],
            &date[6..8],
            &time[0..2],
            &time[2..4],
            &time[4..6]
        ),
        seq,
    })
}

/// What a stored rider document holds (see the module documentation for the definitions).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Activity records.
    pub activity_count: usize,
    /// Whether some activity reports power.
    pub has_power_data: bool,
    /// Present sections / 4.
    pub completeness: f64,
    /// The sections present, from [`SECTIONS`].
    pub sections: Vec<String>,
    /// Whether the scrubber's anonymization block is there.
    pub pii_removed: bool,
}

/// Summarises a rider document; an error when it is not a JSON object.
///
/// Activities are read without building them (their streams can be large): only the three
/// power fields of each are looked at.
pub fn summarize(document: &[u8]) -> Result<Summary, serde_json::Error> {
    let doc: Shape = serde_json::from_slice(document)?;
    let activities = doc.activities.or(doc.recent_activities);
    let present = [
        doc.basic_info.is_some_and(|v| non_empty(&v)) || doc.athlete.is_some_and(|v| non_empty(&v)),
        activities.as_ref().is_some_and(|a| a.count > 0),
        doc.stats.is_some_and(|v| non_empty(&v)),
        doc.zones.is_some_and(|v| non_empty(&v)),
    ];
    let sections: Vec<String> =
        SECTIONS.iter().zip(present).filter(|(_, p)| *p).map(|(s, _)| (*s).to_owned()).collect();
    Ok(Summary {
        activity_count: activities.as_ref().map_or(0, |a| a.count),
        has_power_data: activities.as_ref().is_some_and(|a| a.power),
        completeness: sections.len() as f64 / SECTIONS.len() as f64,
        sections,
        pii_removed: doc
            .anonymization
            .is_some_and(|a| a.get("pii_removed") == Some(&serde_json::Value::Bool(true))),
    })
}

fn non_empty(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Object(m) => !m.is_empty(),
        serde_json::Value::Array(a) => !a.is_empty(),
        _ => false,
    }
}

/// The parts of a rider document a summary needs; the rest is skipped while parsing.
#[derive(Deserialize)]
struct Shape {
    basic_info: Option<serde_json::Value>,
    athlete: Option<serde_json::Value>,
    activities: Option<Activities>,
    recent_activities: Option<Activities>,
    stats: Option<serde_json::Value>,
    zones: Option<serde_json::Value>,
    anonymization: Option<serde_json::Value>,
}

/// An activity list, counted; anything but an array counts as no activities.
struct Activities {
    count: usize,
    power: bool,
}

/// Whether one activity reports power; anything but an object does not.
struct ActivityPower(bool);

/// The fields of an activity that report power.
const POWER_FIELDS: [&str; 3] = ["average_watts", "weighted_average_watts", "max_watts"];

/// Accepts any JSON value, so an odd shape gives an empty summary rather than no summary.
macro_rules! accept_scalars {
    ($value:expr) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($value)
        }
    };
}

impl<'de> Deserialize<'de> for Activities {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Activities;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of activities")
            }
            accept_scalars!(Activities { count: 0, power: false });
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Activities, A::Error> {
                let mut out = Activities { count: 0, power: false };
                while let Some(ActivityPower(power)) = seq.next_element()? {
                    out.count += 1;
                    out.power |= power;
                }
                Ok(out)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Activities, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Activities { count: 0, power: false })
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for ActivityPower {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ActivityPower;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an activity")
            }
            accept_scalars!(ActivityPower(false));
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ActivityPower, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(ActivityPower(false))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ActivityPower, A::Error> {
                let mut power = false;
                while let Some(k) = map.next_key::<String>()? {
                    if POWER_FIELDS.contains(&k.as_str()) {
                        let v: serde_json::Value = map.next_value()?;
                        power |= v.as_f64().is_some_and(|w| w > 0.0);
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(ActivityPower(power))
            }
        }
        d.deserialize_any(V)
    }
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
        let listed = self.manager.list(Some(user), DataType::Fitness).await?;
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
        Ok(saves)
    }

    /// The save called `name`, or the newest one.
    pub async fn load(&self, user: &UserId, name: Option<&str>) -> Result<Loaded, RiderError> {
        let name = match name {
            Some(n) => n.to_owned(),
            None => match self.saves(user).await?.into_iter().next() {
                Some(s) => s.listed.name,
                None => return Err(RiderError::NoData { user: user.to_string() }),
            },
        };
        let key = fitness_key(user, &name)?;
        let (bytes, backend) = self.manager.load(&key).await?;
        Ok(Loaded { name, key: key.s3_key(), backend, bytes })
    }

    /// Every save of `user`, newest first, each with its summary.
    pub async fn history(&self, user: &UserId) -> Result<Vec<HistoryEntry>, RiderError> {
        let saves = self.saves(user).await?;
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
        Ok(out)
    }
}

fn fitness_key(user: &UserId, name: &str) -> Result<ObjectKey, RiderError> {
    let name = FileName::new(name).map_err(ManagerError::Key)?;
    Ok(ObjectKey::new(Some(user.clone()), DataType::Fitness, name).map_err(ManagerError::Key)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_are_the_utc_second() {
        // 2024-05-01T06:30:00.999Z
        assert_eq!(stamp(1_714_545_000_999), "20240501_063000");
        assert_eq!(stamp(0), "19700101_000000");
        // Leap day, last second of the day.
        assert_eq!(stamp(1_709_251_199_000), "20240229_235959");
    }

    #[test]
    fn names_round_trip_and_only_ours_parse() {
        let s = stamp(1_714_545_000_000);
        assert_eq!(save_name(&s, 1), "fitness_data_20240501_063000.json");
        assert_eq!(save_name(&s, 2), "fitness_data_20240501_063000_2.json");
        for seq in [1, 2, 3, 10, 999] {
            let parsed = parse_save_name(&save_name(&s, seq)).unwrap();
            assert_eq!(parsed, SaveStamp { saved_at: "2024-05-01T06:30:00Z".into(), seq });
        }
        for bad in [
            "fitness_data_20240501_063000_1.json",
            "fitness_data_20240501_063000_02.json",
            "fitness_data_20240501_063000_x.json",
            "fitness_data_20241301_063000.json",
            "fitness_data_20240501_246000.json",
            "fitness_data_2024051_063000.json",
            "fitness_data_20240501_063000.txt",
            "my_ride.json",
        ] {
            assert_eq!(parse_save_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn summary_counts_sections_activities_and_power() {
        let doc = br#"{"basic_info":{"user_hash":"k1:00","ftp":250},
            "activities":[{"distance":1000,"average_watts":null},{"distance":2,"max_watts":0},{"weighted_average_watts":180.5}],
            "stats":{"all_ride_totals":{"count":3}},"zones":{},
            "anonymization":{"pii_removed":true}}"#;
        let s = summarize(doc).unwrap();
        assert_eq!(s.activity_count, 3);
        assert!(s.has_power_data);
        assert_eq!(s.sections, vec!["athlete", "activities", "stats"]);
        assert_eq!(s.completeness, 0.75);
        assert!(s.pii_removed);
    }

    #[test]
    fn summary_without_power_or_sections() {
        let s =
            summarize(br#"{"recent_activities":[{"average_watts":0},{"distance":5},7]}"#).unwrap();
        assert_eq!((s.activity_count, s.has_power_data, s.completeness), (3, false, 0.25));
        assert!(!s.pii_removed);
        let empty =
            summarize(br#"{"activities":[],"athlete":{},"stats":null,"zones":"x"}"#).unwrap();
        assert_eq!((empty.activity_count, empty.completeness), (0, 0.0));
        assert!(empty.sections.is_empty());
        assert!(summarize(b"[1,2]").is_err());
        assert!(summarize(b"not json").is_err());
    }

    #[test]
    fn activities_take_precedence_over_recent_activities() {
        let s = summarize(br#"{"activities":[{}],"recent_activities":[{},{}]}"#).unwrap();
        assert_eq!(s.activity_count, 1);
    }
}
