//! The allow-list: every field the scrubber keeps, where, and what shape its value must have.
//!
//! Anything not listed here is dropped, at any depth, so a field Strava adds tomorrow fails
//! closed. Listed fields are performance data (power, heart rate, speed, cadence, distance,
//! time, elevation), athlete traits that matter for training (sex, weight, FTP), Strava's
//! athlete stats and zones, and KOMpass's computed blocks (`fitness_metrics`, `power_analysis`,
//! `training_load`). Deliberately absent, because they identify or locate a rider: names and
//! all free text, ids (replaced by keyed pseudonyms), GPS (`*_latlng`, `map` and its polylines,
//! `latlng` and `altitude` streams), `timezone`, `utc_offset`, `start_date_local`, location
//! fields, devices (`device_name`, `external_id`, `upload_id`), `embed_token`, photos, gear,
//! segment and best efforts, laps, splits, social graph and account metadata.
//!
//! Fields in each [`Object`] are sorted by name (binary search); tests check this.

use super::pseudonym::Domain;

/// What a field's value must be to be kept.
#[derive(Debug, Clone, Copy)]
pub(super) enum Node {
    /// A scalar checked by the [`Leaf`] rule.
    Leaf(Leaf),
    /// An object with its own allow-list.
    Object(&'static Object),
    /// An array of objects; elements that are not objects are removed.
    Records(&'static Object),
    /// An array of scalars (a time series); a sample of the wrong type becomes `null`, so the
    /// positions of the other samples, and their alignment with other series, are kept.
    Series(Leaf),
    /// Strava activity streams, keyed by type (`{"watts": {...}}`) or as a list
    /// (`[{"type": "watts", ...}]`); only the stream types in [`STREAM_TYPES`] are kept.
    Streams,
    /// A raw id, replaced by its keyed pseudonym under the field's output name.
    Pseudonym(Domain),
    /// A pseudonym written by an earlier scrub (`{key id}:{64 hex}`), kept as is when the
    /// policy's [`PseudonymRule`](super::policy::PseudonymRule) keeps it (only under the
    /// configured key id), so that scrubbing a scrubbed document changes nothing.
    KeptPseudonym(Domain),
}

impl Node {
    /// Whether the field writes a pseudonym (at most one per object).
    pub(super) fn is_pseudonym(self) -> bool {
        matches!(self, Node::Pseudonym(_) | Node::KeptPseudonym(_))
    }
}

/// Rules for scalar values. Every rule also accepts `null`, which reveals nothing.
#[derive(Debug, Clone, Copy)]
pub(super) enum Leaf {
    /// A JSON number, copied byte for byte.
    Number,
    /// `true` or `false`.
    Bool,
    /// One of a fixed set of strings (an enumeration such as the sport type).
    Enum(&'static [&'static str]),
    /// A UTC timestamp `YYYY-MM-DDTHH:MM:SS[.fff]Z`; other offsets reveal the time zone.
    UtcTimestamp,
}

impl Leaf {
    /// Whether the raw JSON text of a value satisfies this rule.
    pub(super) fn accepts(self, raw: &str) -> bool {
        if raw == "null" {
            return true;
        }
        match self {
            // A number too large for a double (`1e999`) is valid JSON text, but serde_json and
            // most readers refuse it, so a stored document holding one could not be read back.
            Leaf::Number => {
                plain_decimal(raw)
                    || (matches!(raw.as_bytes().first(), Some(b'-' | b'0'..=b'9'))
                        && raw.parse::<f64>().is_ok_and(f64::is_finite))
            }
            Leaf::Bool => raw == "true" || raw == "false",
            Leaf::Enum(values) => plain_string(raw).is_some_and(|s| one_of(values, s)),
            Leaf::UtcTimestamp => plain_string(raw).is_some_and(is_utc_timestamp),
        }
    }
}

/// `a` against `b` as `str::cmp` orders them, compared inline: the names and values of the
/// allow-list are short, and a `memcmp` call per comparison costs more than the loop.
#[inline]
pub(super) fn cmp_bytes(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    for (x, y) in a.iter().zip(b) {
        if x != y {
            return x.cmp(y);
        }
    }
    a.len().cmp(&b.len())
}

/// Whether `s` is one of `values` (sorted).
#[inline]
pub(super) fn one_of(values: &[&str], s: &str) -> bool {
    values.binary_search_by(|v| cmp_bytes(v.as_bytes(), s.as_bytes())).is_ok()
}

/// Whether `raw` is `-?[0-9]+(\.[0-9]+)?` in at most 300 bytes: always a finite double, so
/// the common case skips converting it (the full check above decides everything else).
pub(super) fn plain_decimal(raw: &str) -> bool {
    let b = raw.as_bytes();
    let b = b.strip_prefix(b"-").unwrap_or(b);
    if b.is_empty() || b.len() > 300 {
        return false;
    }
    let int = b.iter().take_while(|c| c.is_ascii_digit()).count();
    match &b[int..] {
        [] => int > 0,
        [b'.', frac @ ..] => int > 0 && !frac.is_empty() && frac.iter().all(u8::is_ascii_digit),
        _ => false,
    }
}

/// The contents of a raw JSON string without escapes, or `None` (escapes never occur in the
/// values we keep, so refusing them keeps the check simple and exact).
pub(super) fn plain_string(raw: &str) -> Option<&str> {
    let inner = raw.strip_prefix('"')?.strip_suffix('"')?;
    (!inner.contains('\\')).then_some(inner)
}

/// Whether `s` is `YYYY-MM-DDTHH:MM:SSZ`, optionally with fractional seconds.
fn is_utc_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |range: std::ops::Range<usize>| b[range].iter().all(u8::is_ascii_digit);
    if b.len() < 20 || b[b.len() - 1] != b'Z' {
        return false;
    }
    let fixed = digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19);
    let fraction = &b[19..b.len() - 1];
    fixed
        && (fraction.is_empty()
            || (fraction.len() >= 2
                && fraction[0] == b'.'
                && fraction[1..].iter().all(u8::is_ascii_digit)))
}

/// The id inside a raw id value (a non-negative integer, or a string of digits), or `None`.
pub(super) fn raw_id(raw: &str) -> Option<u64> {
    let digits = plain_string(raw).unwrap_or(raw);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// A field that is kept: its input name, the text that introduces it in the output
/// (`"name":`, which differs from the input name for pseudonymized ids) and its rule.
#[derive(Debug)]
pub(super) struct Field {
    pub(super) name: &'static str,
    pub(super) out_key: &'static str,
    pub(super) node: Node,
}

/// An object's allow-list.
#[derive(Debug)]
pub(super) struct Object {
    /// Allowed fields, sorted by `name`.
    pub(super) fields: &'static [Field],
    /// For each [`slot`] of a name: the index of the one field there, [`NO_FIELD`] or
    /// [`SHARED_SLOT`] (two fields: look them up by binary search). Built at compile time; a
    /// rider export's keys are looked up with one hash and at most one comparison.
    pub(super) slots: [u8; SLOTS],
}

/// The number of hash slots of an [`Object`].
pub(super) const SLOTS: usize = 128;
/// No allowed field hashes to this slot.
pub(super) const NO_FIELD: u8 = u8::MAX;
/// Two or more allowed fields hash to this slot.
pub(super) const SHARED_SLOT: u8 = u8::MAX - 1;

/// The hash slot of a key name: its length, first, middle and last bytes.
#[inline]
pub(super) const fn slot(name: &[u8]) -> usize {
    let len = name.len();
    if len == 0 {
        return 0;
    }
    let h = (len as u32).wrapping_mul(0x9E37_79B1)
        ^ (name[0] as u32).wrapping_mul(0x85EB_CA77)
        ^ (name[len / 2] as u32).wrapping_mul(0xC2B2_AE3D)
        ^ (name[len - 1] as u32).wrapping_mul(0x27D4_EB2F);
    (h.wrapping_mul(0x1656_67B1) >> 25) as usize % SLOTS
}

impl Object {
    /// An allow-list of fields sorted by name, with its slot table.
    const fn new(fields: &'static [Field]) -> Self {
        let mut slots = [NO_FIELD; SLOTS];
        let mut i = 0;
        while i < fields.len() {
            let s = slot(fields[i].name.as_bytes());
            slots[s] = if slots[s] == NO_FIELD { i as u8 } else { SHARED_SLOT };
            i += 1;
        }
        Object { fields, slots }
    }

    /// The index of the allowed field called `name`.
    pub(super) fn find(&self, name: &str) -> Option<usize> {
        self.fields.binary_search_by(|f| cmp_bytes(f.name.as_bytes(), name.as_bytes())).ok()
    }
}

/// Builds a sorted field list: `"name" => node` keeps the name, `"id" as "user_hash" => node`
/// renames it in the output.
macro_rules! fields {
    ($($name:literal $(as $out:literal)? => $node:expr),* $(,)?) => {
        &[$(Field { name: $name, out_key: fields!(@key $name $($out)?), node: $node }),*]
    };
    (@key $name:literal) => { concat!("\"", $name, "\":") };
    (@key $name:literal $out:literal) => { concat!("\"", $out, "\":") };
}

const NUM: Node = Node::Leaf(Leaf::Number);
const BOOL: Node = Node::Leaf(Leaf::Bool);

/// Strava's `ActivityType` and `SportType` values, sorted. A type Strava adds later is dropped
/// (fail closed) until it is listed here.
pub(super) const SPORTS: &[&str] = &[
    "AlpineSki",
    "BackcountrySki",
    "Badminton",
    "Canoeing",
    "Crossfit",
    "EBikeRide",
    "EMountainBikeRide",
    "Elliptical",
    "Golf",
    "GravelRide",
    "Handcycle",
    "HighIntensityIntervalTraining",
    "Hike",
    "IceSkate",
    "InlineSkate",
    "Kayaking",
    "Kitesurf",
    "MountainBikeRide",
    "NordicSki",
    "Padel",
    "Pickleball",
    "Pilates",
    "Racquetball",
    "Ride",
    "RockClimbing",
    "RollerSki",
    "Rowing",
    "Run",
    "Sail",
    "Skateboard",
    "Snowboard",
    "Snowshoe",
    "Soccer",
    "Squash",
    "StairStepper",
    "StandUpPaddling",
    "Surfing",
    "Swim",
    "TableTennis",
    "Tennis",
    "TrailRun",
    "Velomobile",
    "VirtualRide",
    "VirtualRow",
    "VirtualRun",
    "Walk",
    "WeightTraining",
    "Wheelchair",
    "Windsurf",
    "Workout",
    "Yoga",
];

/// Stream types that carry no location: not `latlng`, and not `altitude` or `grade_smooth`
/// (an elevation profile can be matched to a road), nor `temp`.
pub(super) const STREAM_TYPES: &[&str] =
    &["cadence", "distance", "heartrate", "moving", "time", "velocity_smooth", "watts"];

/// The sample rule of a stream type: `moving` is boolean, the others numeric.
pub(super) fn stream_sample(stream_type: &str) -> Leaf {
    if stream_type == "moving" { Leaf::Bool } else { Leaf::Number }
}

const SEX: Node = Node::Leaf(Leaf::Enum(&["F", "M"]));
const SPORT: Node = Node::Leaf(Leaf::Enum(SPORTS));
const TREND: Node = Node::Leaf(Leaf::Enum(&["declining", "improving"]));
const RESOLUTION: Node = Node::Leaf(Leaf::Enum(&["high", "low", "medium"]));
const SERIES_TYPE: Node = Node::Leaf(Leaf::Enum(&["distance", "time"]));
const ZONE_TYPE: Node = Node::Leaf(Leaf::Enum(&["heartrate", "power"]));

/// The rider document (top level): what KOMpass's rider data processor collects.
pub(super) static ROOT: Object = Object::new(fields! {
    "activities" => Node::Records(&ACTIVITY),
    "athlete" => Node::Object(&ATHLETE),
    "basic_info" => Node::Object(&ATHLETE),
    "fitness_metrics" => Node::Object(&FITNESS_METRICS),
    "power_analysis" => Node::Object(&POWER_ANALYSIS),
    "recent_activities" => Node::Records(&ACTIVITY),
    "stats" => Node::Object(&STATS),
    "training_load" => Node::Object(&TRAINING_LOAD),
    "zones" => Node::Object(&ATHLETE_ZONES),
});

/// The athlete (`basic_info` or `athlete`): the traits of [`POLICY`](super::policy::POLICY)'s
/// `athlete_kept` only; the id becomes the `user_hash`.
pub(super) static ATHLETE: Object = Object::new(fields! {
    "ftp" => NUM,
    "id" as "user_hash" => Node::Pseudonym(Domain::Athlete),
    "sex" => SEX,
    "user_hash" => Node::KeptPseudonym(Domain::Athlete),
    "weight" => NUM,
});

/// An activity: summary metrics, the UTC start, flags and counts; the id becomes the
/// `activity_hash`.
pub(super) static ACTIVITY: Object = Object::new(fields! {
    "achievement_count" => NUM,
    "activity_hash" => Node::KeptPseudonym(Domain::Activity),
    "athlete_count" => NUM,
    "average_cadence" => NUM,
    "average_heartrate" => NUM,
    "average_speed" => NUM,
    "average_watts" => NUM,
    "calories" => NUM,
    "comment_count" => NUM,
    "commute" => BOOL,
    "device_watts" => BOOL,
    "distance" => NUM,
    "elapsed_time" => NUM,
    "elev_high" => NUM,
    "elev_low" => NUM,
    "has_heartrate" => BOOL,
    "id" as "activity_hash" => Node::Pseudonym(Domain::Activity),
    "kilojoules" => NUM,
    "kudos_count" => NUM,
    "manual" => BOOL,
    "max_heartrate" => NUM,
    "max_speed" => NUM,
    "max_watts" => NUM,
    "moving_time" => NUM,
    "perceived_exertion" => NUM,
    "pr_count" => NUM,
    "sport_type" => SPORT,
    "start_date" => Node::Leaf(Leaf::UtcTimestamp),
    "streams" => Node::Streams,
    "suffer_score" => NUM,
    "total_elevation_gain" => NUM,
    "trainer" => BOOL,
    "type" => SPORT,
    "weighted_average_watts" => NUM,
    "workout_type" => NUM,
    "zones" => Node::Records(&ACTIVITY_ZONE),
});

/// Streams keyed by type (`key_by_type=true`).
pub(super) static STREAMS_BY_TYPE: Object = Object::new(fields! {
    "cadence" => Node::Object(&NUMERIC_STREAM),
    "distance" => Node::Object(&NUMERIC_STREAM),
    "heartrate" => Node::Object(&NUMERIC_STREAM),
    "moving" => Node::Object(&BOOLEAN_STREAM),
    "time" => Node::Object(&NUMERIC_STREAM),
    "velocity_smooth" => Node::Object(&NUMERIC_STREAM),
    "watts" => Node::Object(&NUMERIC_STREAM),
});

/// A stream with numeric samples.
pub(super) static NUMERIC_STREAM: Object = Object::new(fields! {
    "data" => Node::Series(Leaf::Number),
    "original_size" => NUM,
    "resolution" => RESOLUTION,
    "series_type" => SERIES_TYPE,
});

/// A stream with boolean samples (`moving`).
pub(super) static BOOLEAN_STREAM: Object = Object::new(fields! {
    "data" => Node::Series(Leaf::Bool),
    "original_size" => NUM,
    "resolution" => RESOLUTION,
    "series_type" => SERIES_TYPE,
});

/// An element of a stream list (`[{"type": ..., "data": ...}]`). The list filter buffers an
/// element's fields, because `data` may come before `type`; the `data` rule here is replaced
/// by [`stream_sample`] of the type.
pub(super) static STREAM_ENTRY: Object = Object::new(fields! {
    "data" => Node::Series(Leaf::Number),
    "original_size" => NUM,
    "resolution" => RESOLUTION,
    "series_type" => SERIES_TYPE,
    "type" => Node::Leaf(Leaf::Enum(STREAM_TYPES)),
});

/// An activity's time in zones (`GET /activities/{id}/zones`).
pub(super) static ACTIVITY_ZONE: Object = Object::new(fields! {
    "custom_zones" => BOOL,
    "distribution_buckets" => Node::Records(&BUCKET),
    "max" => NUM,
    "points" => NUM,
    "score" => NUM,
    "sensor_based" => BOOL,
    "type" => ZONE_TYPE,
});

/// A zone bucket with the time spent in it.
pub(super) static BUCKET: Object =
    Object::new(fields! { "max" => NUM, "min" => NUM, "time" => NUM });

/// The athlete's zones (`GET /athlete/zones`).
pub(super) static ATHLETE_ZONES: Object = Object::new(fields! {
    "heart_rate" => Node::Object(&ZONE_SET),
    "power" => Node::Object(&ZONE_SET),
});

/// Heart-rate or power zones.
pub(super) static ZONE_SET: Object = Object::new(fields! {
    "custom_zones" => BOOL,
    "distribution_buckets" => Node::Records(&BUCKET),
    "zones" => Node::Records(&ZONE_RANGE),
});

/// One zone's bounds.
pub(super) static ZONE_RANGE: Object = Object::new(fields! { "max" => NUM, "min" => NUM });

/// Strava's athlete stats (`GET /athletes/{id}/stats`).
pub(super) static STATS: Object = Object::new(fields! {
    "all_ride_totals" => Node::Object(&TOTALS),
    "all_run_totals" => Node::Object(&TOTALS),
    "all_swim_totals" => Node::Object(&TOTALS),
    "biggest_climb_elevation_gain" => NUM,
    "biggest_ride_distance" => NUM,
    "recent_ride_totals" => Node::Object(&TOTALS),
    "recent_run_totals" => Node::Object(&TOTALS),
    "recent_swim_totals" => Node::Object(&TOTALS),
    "ytd_ride_totals" => Node::Object(&TOTALS),
    "ytd_run_totals" => Node::Object(&TOTALS),
    "ytd_swim_totals" => Node::Object(&TOTALS),
});

/// Activity totals over a period.
pub(super) static TOTALS: Object = Object::new(fields! {
    "achievement_count" => NUM,
    "count" => NUM,
    "distance" => NUM,
    "elapsed_time" => NUM,
    "elevation_gain" => NUM,
    "moving_time" => NUM,
});

/// KOMpass's computed fitness metrics.
pub(super) static FITNESS_METRICS: Object = Object::new(fields! {
    "activity_frequency" => Node::Object(&ACTIVITY_FREQUENCY),
    "average_heartrate" => NUM,
    "average_power_watts" => NUM,
    "fitness_trend" => Node::Object(&FITNESS_TREND),
    "intensity_distribution" => Node::Object(&INTENSITY_DISTRIBUTION),
    "total_activities" => NUM,
    "total_distance_km" => NUM,
    "total_elevation_gain_m" => NUM,
    "training_consistency" => NUM,
});

static ACTIVITY_FREQUENCY: Object =
    Object::new(fields! { "activities_per_week" => NUM, "riding_days_per_week" => NUM });

static FITNESS_TREND: Object =
    Object::new(fields! { "power_trend_direction" => TREND, "power_trend_magnitude" => NUM });

static INTENSITY_DISTRIBUTION: Object = Object::new(
    fields! { "avg_heart_rate" => NUM, "hr_distribution" => Node::Object(&HR_DISTRIBUTION) },
);

static HR_DISTRIBUTION: Object =
    Object::new(fields! { "easy" => NUM, "hard" => NUM, "moderate" => NUM });

/// KOMpass's computed power analysis.
pub(super) static POWER_ANALYSIS: Object = Object::new(fields! {
    "lifetime_stats" => Node::Object(&LIFETIME_STATS),
    "recent_power_metrics" => Node::Object(&RECENT_POWER_METRICS),
});

static LIFETIME_STATS: Object = Object::new(fields! {
    "total_distance_km" => NUM,
    "total_elevation_gain_m" => NUM,
    "total_moving_time_hours" => NUM,
    "total_rides" => NUM,
});

static RECENT_POWER_METRICS: Object = Object::new(fields! {
    "avg_power_last_30_days" => NUM,
    "max_power_last_30_days" => NUM,
    "power_consistency" => NUM,
    "power_trend" => Node::Object(&POWER_TREND),
    "weighted_power_avg" => NUM,
});

static POWER_TREND: Object =
    Object::new(fields! { "trend_direction" => TREND, "trend_strength" => NUM });

/// KOMpass's computed training load.
pub(super) static TRAINING_LOAD: Object = Object::new(fields! {
    "peak_training_period" => Node::Object(&PEAK_TRAINING_PERIOD),
    "recovery_metrics" => Node::Object(&RECOVERY_METRICS),
    "training_intensity_factor" => NUM,
    "training_stress_balance" => Node::Object(&TRAINING_STRESS_BALANCE),
    "weekly_training_hours" => Node::Object(&WEEKLY_TRAINING_HOURS),
});

static PEAK_TRAINING_PERIOD: Object = Object::new(fields! {
    "peak_training_week" => NUM,
    "peak_weekly_distance" => NUM,
    "peak_weekly_hours" => NUM,
});

static RECOVERY_METRICS: Object = Object::new(
    fields! { "avg_rest_days" => NUM, "max_rest_period" => NUM, "recovery_consistency" => NUM },
);

static TRAINING_STRESS_BALANCE: Object = Object::new(fields! {
    "acute_training_load" => NUM,
    "chronic_training_load" => NUM,
    "training_stress_balance" => NUM,
});

static WEEKLY_TRAINING_HOURS: Object = Object::new(
    fields! { "avg_weekly_hours" => NUM, "current_week_hours" => NUM, "max_weekly_hours" => NUM },
);

/// Every object allow-list, for tests that check the lists' invariants.
#[cfg(test)]
pub(super) fn all_objects() -> Vec<(&'static str, &'static Object)> {
    vec![
        ("ROOT", &ROOT),
        ("ATHLETE", &ATHLETE),
        ("ACTIVITY", &ACTIVITY),
        ("STREAMS_BY_TYPE", &STREAMS_BY_TYPE),
        ("NUMERIC_STREAM", &NUMERIC_STREAM),
        ("BOOLEAN_STREAM", &BOOLEAN_STREAM),
        ("STREAM_ENTRY", &STREAM_ENTRY),
        ("ACTIVITY_ZONE", &ACTIVITY_ZONE),
        ("BUCKET", &BUCKET),
        ("ATHLETE_ZONES", &ATHLETE_ZONES),
        ("ZONE_SET", &ZONE_SET),
        ("ZONE_RANGE", &ZONE_RANGE),
        ("STATS", &STATS),
        ("TOTALS", &TOTALS),
        ("FITNESS_METRICS", &FITNESS_METRICS),
        ("ACTIVITY_FREQUENCY", &ACTIVITY_FREQUENCY),
        ("FITNESS_TREND", &FITNESS_TREND),
        ("INTENSITY_DISTRIBUTION", &INTENSITY_DISTRIBUTION),
        ("HR_DISTRIBUTION", &HR_DISTRIBUTION),
        ("POWER_ANALYSIS", &POWER_ANALYSIS),
        ("LIFETIME_STATS", &LIFETIME_STATS),
        ("RECENT_POWER_METRICS", &RECENT_POWER_METRICS),
        ("POWER_TREND", &POWER_TREND),
        ("TRAINING_LOAD", &TRAINING_LOAD),
        ("PEAK_TRAINING_PERIOD", &PEAK_TRAINING_PERIOD),
        ("RECOVERY_METRICS", &RECOVERY_METRICS),
        ("TRAINING_STRESS_BALANCE", &TRAINING_STRESS_BALANCE),
        ("WEEKLY_TRAINING_HOURS", &WEEKLY_TRAINING_HOURS),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_allow_list_is_sorted_unique_and_small_enough_for_the_seen_bitset() {
        for (what, obj) in all_objects() {
            let names: Vec<_> = obj.fields.iter().map(|f| f.name).collect();
            assert!(names.windows(2).all(|w| w[0] < w[1]), "{what} fields not sorted: {names:?}");
            assert!(obj.fields.len() < 63, "{what} has too many fields for the seen bitset");
            assert!(obj.fields.iter().filter(|f| f.node.is_pseudonym()).count() <= 2, "{what}");
        }
    }

    #[test]
    fn enumerations_are_sorted_for_binary_search() {
        let enums = all_objects().into_iter().flat_map(|(_, o)| o.fields.iter()).filter_map(|f| {
            match f.node {
                Node::Leaf(Leaf::Enum(values)) => Some(values),
                _ => None,
            }
        });
        for values in enums.chain([SPORTS, STREAM_TYPES]) {
            assert!(values.windows(2).all(|w| w[0] < w[1]), "not sorted: {values:?}");
        }
    }

    #[test]
    fn no_identifying_field_is_allowed_anywhere() {
        let forbidden = super::super::policy::POLICY.forbidden_keys;
        for (what, obj) in all_objects() {
            for f in obj.fields {
                // What the output holds: `id` is read, but written as a pseudonym's name.
                let written = f.out_key.trim_matches(|c| c == '"' || c == ':');
                // The top level may hold the athlete block; no other object may.
                let allowed_here = std::ptr::eq(obj, &ROOT) && written == "athlete";
                assert!(allowed_here || !forbidden.contains(&written), "{what} writes {written}");
                // A forbidden key is read only to be replaced by a pseudonym.
                assert!(
                    allowed_here || !forbidden.contains(&f.name) || f.node.is_pseudonym(),
                    "{what} allows {}",
                    f.name
                );
            }
        }
    }

    #[test]
    fn the_athlete_block_keeps_exactly_what_the_policy_says() {
        let policy = &super::super::policy::POLICY;
        let kept: Vec<&str> =
            ATHLETE.fields.iter().filter(|f| !f.node.is_pseudonym()).map(|f| f.name).collect();
        assert_eq!(kept, policy.athlete_kept);
        let pseudonyms: Vec<&str> =
            ATHLETE.fields.iter().filter(|f| f.node.is_pseudonym()).map(|f| f.out_key).collect();
        assert_eq!(pseudonyms, ["\"user_hash\":", "\"user_hash\":"]);
    }

    #[test]
    fn leaves_accept_only_their_shape() {
        assert!(Leaf::Number.accepts("-1.5e3") && Leaf::Number.accepts("null"));
        assert!(!Leaf::Number.accepts("\"200\"") && !Leaf::Number.accepts("true"));
        // Found by fuzzing: out of a double's range, so unreadable once stored.
        assert!(!Leaf::Number.accepts("1e999") && !Leaf::Number.accepts("-1e400"));
        assert!(Leaf::Number.accepts("1e-400") && Leaf::Number.accepts("18446744073709551616"));
        // The fast path for plain decimals agrees with converting them.
        for raw in ["0", "-0", "7", "-12.50", "1.", "-", "-.5", "1.2.3", "12a", &"9".repeat(300)] {
            let slow = matches!(raw.as_bytes().first(), Some(b'-' | b'0'..=b'9'))
                && raw.parse::<f64>().is_ok_and(f64::is_finite);
            assert_eq!(Leaf::Number.accepts(raw), slow, "{raw}");
        }
        assert!(!Leaf::Number.accepts(&"9".repeat(400)), "out of range without an exponent");
        assert!(Leaf::Bool.accepts("false") && !Leaf::Bool.accepts("0"));
        let sport = Leaf::Enum(SPORTS);
        assert!(sport.accepts("\"Ride\"") && !sport.accepts("\"John's Ride\""));
        assert!(!sport.accepts("\"Rid\\u0065\""), "escapes are refused");
        assert!(!sport.accepts("[\"Ride\"]"));
        let ts = Leaf::UtcTimestamp;
        assert!(
            ts.accepts("\"2024-05-01T06:30:00Z\"") && ts.accepts("\"2024-05-01T06:30:00.125Z\"")
        );
        for bad in [
            "\"2024-05-01T08:30:00+02:00\"",
            "\"2024-05-01T06:30:00\"",
            "\"2024-05-01\"",
            "\"2024-05-01T06:30:00.Z\"",
            "20240501",
        ] {
            assert!(!ts.accepts(bad), "{bad}");
        }
    }

    #[test]
    fn raw_ids_are_non_negative_integers_or_digit_strings() {
        assert_eq!(raw_id("123456789"), Some(123_456_789));
        assert_eq!(raw_id("\"123456789\""), Some(123_456_789));
        for bad in ["-1", "1.5", "1e9", "\"12a\"", "\"\"", "99999999999999999999999", "null", "{}"]
        {
            assert_eq!(raw_id(bad), None, "{bad}");
        }
    }
}

#[cfg(test)]
mod slot_tests {
    use super::*;

    #[test]
    fn cmp_bytes_orders_as_str_does() {
        let words = ["", "a", "aa", "ab", "b", "data", "type", "Ride", "\u{e9}", "z", "zz"];
        for a in words {
            for b in words {
                assert_eq!(cmp_bytes(a.as_bytes(), b.as_bytes()), a.cmp(b), "{a:?} {b:?}");
            }
        }
    }

    #[test]
    fn slot_tables_name_each_field_once_and_rarely_share_a_slot() {
        for (what, obj) in all_objects() {
            for (i, f) in obj.fields.iter().enumerate() {
                let s = obj.slots[slot(f.name.as_bytes())];
                assert!(usize::from(s) == i || s == SHARED_SLOT, "{what}.{}", f.name);
            }
            let shared = obj.slots.iter().filter(|&&s| s == SHARED_SLOT).count();
            // The activity's 36 fields are looked up for every member of every activity.
            assert!(shared <= 1.max(obj.fields.len() / 8), "{what}: {shared} shared slots");
        }
    }
}
