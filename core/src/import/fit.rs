//! FIT activity files: fitparser reads the bytes into raw messages (field number → base-type
//! value, one message at a time); the fields kept are decoded here, by the FIT profile's field
//! numbers, scales and offsets. fitparser's own decoder is not used for them: it turns every
//! `date_time` field into a `chrono::DateTime<Local>`, which reads `TZ` and the machine's zone
//! file, IO the pure core must not do. A FIT timestamp is a u32 of seconds since the FIT epoch
//! (1989-12-31T00:00:00Z), always UTC here. `record` messages become samples; positions,
//! device serial numbers and names are counted and dropped.

use std::collections::HashMap;

use fitparser::Value;
use fitparser::de::{DecodeOption, FitDataMessage, FitObject, FitStreamProcessor};

use super::{RemovedTally, Slot, Track, format_f64, tally};

/// 1989-12-31T00:00:00Z in Unix seconds.
const FIT_EPOCH: i64 = 631_065_600;
/// The `timestamp` field of every message.
const TIMESTAMP: u8 = 253;
const RECORD: u16 = 20;
const FIELD_DESCRIPTION: u16 = 206;

/// What a field outside `record` is, for the report.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Other {
    /// A latitude (its longitude is not counted again).
    Latitude,
    Longitude,
    Serial,
    Name,
}

/// The FIT profile's fields (message, field number) named `*_lat`, `*_long`, `serial_number`,
/// `product_name`, `descriptor`, `friendly_name` or `wkt_name`, outside `record`.
const OTHER_FIELDS: &[(u16, u8, Other)] = &[
    (0, 3, Other::Serial),       // file_id.serial_number
    (0, 8, Other::Name),         // file_id.product_name
    (3, 0, Other::Name),         // user_profile.friendly_name
    (18, 3, Other::Latitude),    // session.start_position_lat
    (18, 4, Other::Longitude),   // session.start_position_long
    (18, 29, Other::Latitude),   // session.nec_lat
    (18, 30, Other::Longitude),  // session.nec_long
    (18, 31, Other::Latitude),   // session.swc_lat
    (18, 32, Other::Longitude),  // session.swc_long
    (18, 38, Other::Latitude),   // session.end_position_lat
    (18, 39, Other::Longitude),  // session.end_position_long
    (19, 3, Other::Latitude),    // lap.start_position_lat
    (19, 4, Other::Longitude),   // lap.start_position_long
    (19, 5, Other::Latitude),    // lap.end_position_lat
    (19, 6, Other::Longitude),   // lap.end_position_long
    (23, 3, Other::Serial),      // device_info.serial_number
    (23, 19, Other::Name),       // device_info.descriptor
    (23, 27, Other::Name),       // device_info.product_name
    (26, 8, Other::Name),        // workout.wkt_name
    (28, 2, Other::Serial),      // schedule.serial_number
    (32, 2, Other::Latitude),    // course_point.position_lat
    (32, 3, Other::Longitude),   // course_point.position_long
    (72, 3, Other::Serial),      // training_file.serial_number
    (128, 10, Other::Latitude),  // weather_conditions.observed_location_lat
    (128, 11, Other::Longitude), // weather_conditions.observed_location_long
    (142, 3, Other::Latitude),   // segment_lap.start_position_lat
    (142, 4, Other::Longitude),  // segment_lap.start_position_long
    (142, 5, Other::Latitude),   // segment_lap.end_position_lat
    (142, 6, Other::Longitude),  // segment_lap.end_position_long
    (142, 25, Other::Latitude),  // segment_lap.nec_lat
    (142, 26, Other::Longitude), // segment_lap.nec_long
    (142, 27, Other::Latitude),  // segment_lap.swc_lat
    (142, 28, Other::Longitude), // segment_lap.swc_long
    (150, 1, Other::Latitude),   // segment_point.position_lat
    (150, 2, Other::Longitude),  // segment_point.position_long
    (160, 1, Other::Latitude),   // gps_metadata.position_lat
    (160, 2, Other::Longitude),  // gps_metadata.position_long
    (202, 10, Other::Name),      // exd_data_concept_configuration.descriptor
    (285, 5, Other::Latitude),   // jump.position_lat
    (285, 6, Other::Longitude),  // jump.position_long
    (312, 21, Other::Latitude),  // split.start_position_lat
    (312, 22, Other::Longitude), // split.start_position_long
    (312, 23, Other::Latitude),  // split.end_position_lat
    (312, 24, Other::Longitude), // split.end_position_long
    (317, 0, Other::Latitude),   // climb_pro.position_lat
    (317, 1, Other::Longitude),  // climb_pro.position_long
];

/// What a developer field's name makes it, like a profile field of that name.
fn by_name(name: &str) -> Option<Other> {
    if name.ends_with("_lat") {
        Some(Other::Latitude)
    } else if name.ends_with("_long") {
        Some(Other::Longitude)
    } else if name == "serial_number" {
        Some(Other::Serial)
    } else if matches!(name, "product_name" | "descriptor" | "friendly_name" | "wkt_name") {
        Some(Other::Name)
    } else {
        None
    }
}

/// The FIT SDK's accumulation of a field that wraps at `mask` (compressed distance).
#[derive(Default)]
struct Accumulator {
    last: Option<u64>,
    total: u64,
}

impl Accumulator {
    fn add(&mut self, raw: u64, mask: u64) -> u64 {
        self.total = match self.last {
            None => raw,
            Some(last) => self.total + (raw.wrapping_sub(last) & mask),
        };
        self.last = Some(raw);
        self.total
    }
}

/// What is read across messages: reset with the decoder at the end of each chained FIT file.
#[derive(Default)]
struct State {
    /// The last full timestamp (FIT seconds), for compressed-timestamp headers.
    base: i64,
    /// Developer fields' names, from `field_description` messages.
    developer_names: HashMap<(u8, u8), String>,
    distance: Accumulator,
}

#[derive(Default)]
struct Counts {
    positions: u64,
    other_positions: u64,
    serials: u64,
    names: u64,
}

pub(crate) fn read(
    bytes: &[u8],
    max_samples: usize,
    removed: &mut RemovedTally,
) -> Result<Track, String> {
    let mut processor = FitStreamProcessor::new();
    // Some head units write a wrong data checksum; a cut-short file still fails to parse.
    processor.add_option(DecodeOption::SkipDataCrcValidation);
    processor.add_option(DecodeOption::DropUnknownFields);
    let mut track = Track::default();
    let mut state = State::default();
    let mut counts = Counts::default();
    let mut buffer = bytes;
    while !buffer.is_empty() {
        let (rest, object) =
            processor.deserialize_next(buffer).map_err(|e| cut_short(&e.to_string()))?;
        if rest.len() >= buffer.len() {
            return Err("it is damaged (the FIT parser made no progress)".into());
        }
        buffer = rest;
        let message = match object {
            FitObject::Crc(_) => {
                processor.reset();
                state = State::default();
                continue;
            }
            FitObject::DataMessage(m) => m,
            FitObject::Header(_) | FitObject::DefinitionMessage(_) => continue,
        };
        let mesg = message.global_message_number();
        if let Some(t) = message.fields().get(&TIMESTAMP) {
            state.base = as_i64(t).unwrap_or(0);
        }
        let time = message.time_offset().map(|offset| {
            state.base = advance(state.base, offset);
            state.base
        });
        let is_record = mesg == RECORD;
        let mut has_position = false;
        for &(dev, num) in message.developer_fields().keys() {
            match state.developer_names.get(&(dev, num)).and_then(|n| by_name(n)) {
                Some(Other::Latitude | Other::Longitude) if is_record => has_position = true,
                Some(Other::Latitude) => counts.other_positions += 1,
                Some(Other::Serial) => counts.serials += 1,
                Some(Other::Name) => counts.names += 1,
                _ => {}
            }
        }
        if is_record {
            if track.len() >= max_samples {
                return Err(format!("it has more than {max_samples} samples"));
            }
            track.push_empty();
            let fields = message.fields();
            if fields.contains_key(&0) || fields.contains_key(&1) {
                has_position = true;
            }
            if has_position {
                counts.positions += 1;
            }
            record(fields, time, &mut state, &mut track);
            continue;
        }
        for &(m, field, other) in OTHER_FIELDS {
            if m == mesg && message.fields().contains_key(&field) {
                match other {
                    Other::Latitude => counts.other_positions += 1,
                    Other::Longitude => {}
                    Other::Serial => counts.serials += 1,
                    Other::Name => counts.names += 1,
                }
            }
        }
        if mesg == FIELD_DESCRIPTION {
            describe(&mut processor, message, &mut state)?;
        }
    }
    tally(
        removed,
        "GPS points",
        "activity files: record position_lat/position_long",
        counts.positions,
    );
    tally(
        removed,
        "GPS positions of laps and sessions",
        "activity files: lap, session start/end positions",
        counts.other_positions,
    );
    tally(
        removed,
        "device serial numbers",
        "activity files: file_id, device_info serial_number",
        counts.serials,
    );
    tally(removed, "device names", "activity files: device_info product_name", counts.names);
    if track.len() == 0 {
        return Err("it holds no samples".into());
    }
    Ok(track)
}

/// A developer field's description: its name is kept for the report, and fitparser's decoder
/// learns its base type (its parser needs that to read the field in later messages). A
/// `field_description` has no `date_time` field; the timestamp and a compressed-timestamp
/// header, which would go through the local time zone, are kept from the decoder.
fn describe(
    processor: &mut FitStreamProcessor,
    mut message: FitDataMessage,
    state: &mut State,
) -> Result<(), String> {
    let fields = message.fields();
    let key = (fields.get(&0).and_then(as_i64), fields.get(&1).and_then(as_i64));
    if let ((Some(dev), Some(num)), Some(Value::String(name))) = (key, fields.get(&3))
        && let (Ok(dev), Ok(num)) = (u8::try_from(dev), u8::try_from(num))
    {
        state.developer_names.insert((dev, num), name.clone());
    }
    if message.time_offset().is_some() {
        return Ok(());
    }
    message.fields_mut().remove(&TIMESTAMP);
    processor.decode_message(message).map_err(|e| cut_short(&e.to_string()))?;
    Ok(())
}

/// A compressed-timestamp header's 5-bit offset applied to the last full timestamp (FIT SDK).
fn advance(base: i64, offset: u8) -> i64 {
    let offset = i64::from(offset & 31);
    let mut t = (base & !31) + offset;
    if offset < (base & 31) {
        t += 32;
    }
    t
}

/// A `record` message's values (FIT profile: field number, scale, offset) into the last sample.
fn record(fields: &HashMap<u8, Value>, time: Option<i64>, state: &mut State, track: &mut Track) {
    let time = time.or_else(|| fields.get(&TIMESTAMP).map(|v| as_i64(v).unwrap_or(0)));
    if let Some(t) = time {
        track.set_time((t + FIT_EPOCH) as f64);
    }
    let mut put = |slot: Slot, text: Option<String>| {
        if let Some(text) = text {
            track.set_json(slot, &text);
        }
    };
    // compressed_speed_distance (8): 12 bits of speed (1/100 m/s), 12 of distance (1/16 m,
    // accumulated), from head units that predate the full fields.
    let compressed = fields.get(&8).and_then(bytes_le).map(|b| {
        let bits =
            b.iter().take(3).enumerate().fold(0u64, |acc, (i, &x)| acc | u64::from(x) << (8 * i));
        (bits & 0xFFF, (bits >> 12) & 0xFFF)
    });
    // The enhanced fields (73, 78) are the same quantities with more range: they win.
    let altitude = fields.get(&78).or_else(|| fields.get(&2));
    put(Slot::Altitude, altitude.and_then(|v| scaled(v, 5.0, 500.0)));
    put(Slot::Heartrate, fields.get(&3).and_then(number));
    put(Slot::Cadence, fields.get(&4).and_then(number));
    match (fields.get(&5), compressed) {
        (Some(v), _) => put(Slot::Distance, scaled(v, 100.0, 0.0)),
        (None, Some((_, d))) => {
            let total = state.distance.add(d, 0xFFF);
            put(Slot::Distance, finite(total as f64 / 16.0));
        }
        (None, None) => {}
    }
    match (fields.get(&73).or_else(|| fields.get(&6)), compressed) {
        (Some(v), _) => put(Slot::Speed, scaled(v, 1000.0, 0.0)),
        (None, Some((s, _))) => put(Slot::Speed, finite(s as f64 / 100.0)),
        (None, None) => {}
    }
    put(Slot::Watts, fields.get(&7).and_then(number));
    put(Slot::Temp, fields.get(&13).and_then(number));
}

fn cut_short(e: &str) -> String {
    let _ = e;
    "it is cut short or damaged (not a complete FIT file)".into()
}

fn as_i64(v: &Value) -> Option<i64> {
    Some(match v {
        Value::SInt8(n) => i64::from(*n),
        Value::UInt8(n) | Value::UInt8z(n) | Value::Byte(n) | Value::Enum(n) => i64::from(*n),
        Value::SInt16(n) => i64::from(*n),
        Value::UInt16(n) | Value::UInt16z(n) => i64::from(*n),
        Value::SInt32(n) => i64::from(*n),
        Value::UInt32(n) | Value::UInt32z(n) => i64::from(*n),
        Value::SInt64(n) => *n,
        Value::UInt64(n) | Value::UInt64z(n) => i64::try_from(*n).ok()?,
        _ => return None,
    })
}

fn as_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Float32(f) => Some(f64::from(*f)),
        Value::Float64(f) => Some(*f),
        Value::UInt64(n) | Value::UInt64z(n) => Some(*n as f64),
        other => as_i64(other).map(|n| n as f64),
    }
}

/// The bytes of a byte-array field, little end first.
fn bytes_le(v: &Value) -> Option<Vec<u8>> {
    match v {
        Value::Array(items) => items
            .iter()
            .map(|i| match i {
                Value::Byte(b) | Value::UInt8(b) => Some(*b),
                _ => None,
            })
            .collect(),
        _ => None,
    }
}

fn finite(v: f64) -> Option<String> {
    v.is_finite().then(|| format_f64(v))
}

/// A value with the profile's scale and offset, as fitparser computes it (`raw / scale -
/// offset`), as JSON number text.
fn scaled(v: &Value, scale: f64, offset: f64) -> Option<String> {
    finite(as_f64(v)? / scale - offset)
}

/// An unscaled numeric FIT value as JSON number text; `None` for anything else.
fn number(v: &Value) -> Option<String> {
    Some(match v {
        Value::SInt8(n) => n.to_string(),
        Value::UInt8(n) | Value::UInt8z(n) | Value::Byte(n) => n.to_string(),
        Value::SInt16(n) => n.to_string(),
        Value::UInt16(n) | Value::UInt16z(n) => n.to_string(),
        Value::SInt32(n) => n.to_string(),
        Value::UInt32(n) | Value::UInt32z(n) => n.to_string(),
        Value::SInt64(n) => n.to_string(),
        Value::UInt64(n) | Value::UInt64z(n) => n.to_string(),
        Value::Float32(f) if f.is_finite() => format_f64(f64::from(*f)),
        Value::Float64(f) if f.is_finite() => format_f64(*f),
        _ => return None,
    })
}
