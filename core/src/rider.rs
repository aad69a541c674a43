//! Rider data files: their names and what a stored rider document holds. Shared by the
//! server (which names and summarises what it stores) and the page (through the wasm crate),
//! so there is one definition of each.
//!
//! **Names.** `fitness_data_{YYYYmmdd_HHMMSS}.json`, the UTC second of the save. Another save
//! in the same second gets `_2`, then `_3`, ...
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
//! - `pii_removed`: the document carries the scrubber's anonymization block.

use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

/// The start of every rider data file name.
pub const NAME_PREFIX: &str = "fitness_data_";

/// Saves in one second beyond which a save gives up (`_2` ... `_1000`): more means a runaway
/// loop, not a rider.
pub const MAX_SAVES_PER_SECOND: u32 = 1000;

/// The sections of a rider document that [`Summary::completeness`] counts.
pub const SECTIONS: [&str; 4] = ["athlete", "activities", "stats", "zones"];

/// The UTC second of `unix_ms` as `YYYYmmdd_HHMMSS`.
pub fn stamp(unix_ms: i64) -> String {
    // "2024-05-01T06:30:00Z" -> "20240501_063000"
    let t = crate::time::UnixMs(unix_ms).rfc3339();
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
    let non_empty = |v: Option<NonEmpty>| v.is_some_and(|v| v.0);
    let present = [
        non_empty(doc.basic_info) || non_empty(doc.athlete),
        activities.as_ref().is_some_and(|a| a.count > 0),
        non_empty(doc.stats),
        non_empty(doc.zones),
    ];
    let sections: Vec<String> =
        SECTIONS.iter().zip(present).filter(|(_, p)| *p).map(|(s, _)| (*s).to_owned()).collect();
    Ok(Summary {
        activity_count: activities.as_ref().map_or(0, |a| a.count),
        has_power_data: activities.as_ref().is_some_and(|a| a.power),
        completeness: sections.len() as f64 / SECTIONS.len() as f64,
        sections,
        pii_removed: doc.anonymization.is_some_and(|a| a.0),
    })
}

/// The parts of a rider document a summary needs; the rest is skipped while parsing. The
/// sections are looked at, not built (no `serde_json::Value`: less work, and less code in the
/// page's wasm module).
#[derive(Deserialize)]
struct Shape {
    basic_info: Option<NonEmpty>,
    athlete: Option<NonEmpty>,
    activities: Option<Activities>,
    recent_activities: Option<Activities>,
    stats: Option<NonEmpty>,
    zones: Option<NonEmpty>,
    anonymization: Option<PiiRemoved>,
}

/// Whether a section is an object or array with at least one member.
struct NonEmpty(bool);

/// Whether an anonymization block says `"pii_removed": true` (the last such key, as a JSON
/// object read into a map would keep).
struct PiiRemoved(bool);

/// `true` only for the JSON value `true`.
struct IsTrue(bool);

/// A positive number; anything else is not.
struct Positive(bool);

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
                        power |= map.next_value::<Positive>()?.0;
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

impl<'de> Deserialize<'de> for NonEmpty {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = NonEmpty;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a section")
            }
            accept_scalars!(NonEmpty(false));
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<NonEmpty, A::Error> {
                let mut any = false;
                while seq.next_element::<IgnoredAny>()?.is_some() {
                    any = true;
                }
                Ok(NonEmpty(any))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<NonEmpty, A::Error> {
                let mut any = false;
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {
                    any = true;
                }
                Ok(NonEmpty(any))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for PiiRemoved {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = PiiRemoved;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an anonymization block")
            }
            accept_scalars!(PiiRemoved(false));
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<PiiRemoved, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(PiiRemoved(false))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<PiiRemoved, A::Error> {
                let mut removed = false;
                while let Some(k) = map.next_key::<String>()? {
                    if k == "pii_removed" {
                        removed = map.next_value::<IsTrue>()?.0;
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(PiiRemoved(removed))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for IsTrue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = IsTrue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a flag")
            }
            fn visit_bool<E: de::Error>(self, b: bool) -> Result<IsTrue, E> {
                Ok(IsTrue(b))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<IsTrue, E> {
                Ok(IsTrue(false))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<IsTrue, E> {
                Ok(IsTrue(false))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<IsTrue, E> {
                Ok(IsTrue(false))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<IsTrue, E> {
                Ok(IsTrue(false))
            }
            fn visit_unit<E: de::Error>(self) -> Result<IsTrue, E> {
                Ok(IsTrue(false))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<IsTrue, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(IsTrue(false))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<IsTrue, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(IsTrue(false))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Positive {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Positive;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number")
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Positive, E> {
                Ok(Positive(false))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Positive, E> {
                Ok(Positive(false))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Positive, E> {
                Ok(Positive(false))
            }
            fn visit_i64<E: de::Error>(self, w: i64) -> Result<Positive, E> {
                Ok(Positive(w > 0))
            }
            fn visit_u64<E: de::Error>(self, w: u64) -> Result<Positive, E> {
                Ok(Positive(w > 0))
            }
            fn visit_f64<E: de::Error>(self, w: f64) -> Result<Positive, E> {
                Ok(Positive(w > 0.0))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Positive, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Positive(false))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Positive, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Positive(false))
            }
        }
        d.deserialize_any(V)
    }
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
    fn only_a_true_flag_and_positive_numbers_count() {
        let pii = |block: &str| {
            summarize(format!(r#"{{"anonymization":{block}}}"#).as_bytes()).unwrap().pii_removed
        };
        assert!(pii(r#"{"version":"1","pii_removed":true,"nested":{"pii_removed":false}}"#));
        for block in [
            r#"{"pii_removed":"true"}"#,
            r#"{"pii_removed":1}"#,
            r#"{"pii_removed":{"pii_removed":true}}"#,
            r#"[{"pii_removed":true}]"#,
            r#"{"pii_removed":true,"pii_removed":false}"#,
            "true",
            "null",
        ] {
            assert!(!pii(block), "{block}");
        }
        let power = |activity: &str| {
            summarize(format!(r#"{{"activities":[{activity}]}}"#).as_bytes())
                .unwrap()
                .has_power_data
        };
        assert!(power(r#"{"max_watts":1}"#));
        assert!(power(r#"{"average_watts":0.5}"#));
        for activity in [
            r#"{"max_watts":-3}"#,
            r#"{"max_watts":"250"}"#,
            r#"{"max_watts":[250]}"#,
            r#"{"max_watts":{"value":250}}"#,
            r#"{"watts":250}"#,
        ] {
            assert!(!power(activity), "{activity}");
        }
        let sections = |doc: &str| summarize(doc.as_bytes()).unwrap().sections;
        assert_eq!(sections(r#"{"stats":[null],"zones":{"a":{}}}"#), vec!["stats", "zones"]);
        assert!(sections(r#"{"stats":[],"zones":0,"athlete":"x"}"#).is_empty());
        // Malformed JSON inside a section is still an error, not an empty section.
        assert!(summarize(br#"{"stats":{"a":[1,}}"#).is_err());
    }

    #[test]
    fn activities_take_precedence_over_recent_activities() {
        let s = summarize(br#"{"activities":[{}],"recent_activities":[{},{}]}"#).unwrap();
        assert_eq!(s.activity_count, 1);
    }
}
