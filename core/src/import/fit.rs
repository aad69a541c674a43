//! FIT activity files (fitparser, one message at a time): `record` messages become samples;
//! positions, device serial numbers and names are counted and dropped.

use fitparser::Value;
use fitparser::de::{DecodeOption, FitObject, FitStreamProcessor};
use fitparser::profile::MesgNum;

use super::{RemovedTally, Track, format_f64, tally};

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
    let mut buffer = bytes;
    let mut positions = 0u64;
    let mut other_positions = 0u64;
    let mut serials = 0u64;
    let mut names = 0u64;
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
                continue;
            }
            FitObject::DataMessage(m) => m,
            FitObject::Header(_) | FitObject::DefinitionMessage(_) => continue,
        };
        let record = processor.decode_message(message).map_err(|e| cut_short(&e.to_string()))?;
        let is_record = record.kind() == MesgNum::Record;
        if is_record {
            if track.len() >= max_samples {
                return Err(format!("it has more than {max_samples} samples"));
            }
            track.push_empty();
        }
        let mut has_position = false;
        for field in record.fields() {
            let name = field.name();
            if name.ends_with("_lat") || name.ends_with("_long") {
                if is_record {
                    has_position = true;
                } else if name.ends_with("_lat") {
                    other_positions += 1;
                }
                continue;
            }
            if name == "serial_number" {
                serials += 1;
                continue;
            }
            if matches!(name, "product_name" | "descriptor" | "friendly_name" | "wkt_name") {
                names += 1;
                continue;
            }
            if !is_record {
                continue;
            }
            let value = field.value();
            match name {
                "timestamp" => {
                    if let (Value::Timestamp(t), Some(slot)) = (value, track.time.last_mut()) {
                        *slot = Some(t.timestamp() as f64);
                    }
                }
                "distance" => Track::set(&mut track.distance, number(value)),
                "enhanced_altitude" | "altitude" => Track::set(&mut track.altitude, number(value)),
                "heart_rate" => Track::set(&mut track.heartrate, number(value)),
                "power" => Track::set(&mut track.watts, number(value)),
                "cadence" => Track::set(&mut track.cadence, number(value)),
                "enhanced_speed" | "speed" => Track::set(&mut track.speed, number(value)),
                "temperature" => Track::set(&mut track.temp, number(value)),
                _ => {}
            }
        }
        if has_position {
            positions += 1;
        }
    }
    tally(removed, "GPS points", "activity files: record position_lat/position_long", positions);
    tally(
        removed,
        "GPS positions of laps and sessions",
        "activity files: lap, session start/end positions",
        other_positions,
    );
    tally(
        removed,
        "device serial numbers",
        "activity files: file_id, device_info serial_number",
        serials,
    );
    tally(removed, "device names", "activity files: device_info product_name", names);
    if track.len() == 0 {
        return Err("it holds no samples".into());
    }
    Ok(track)
}

fn cut_short(e: &str) -> String {
    let _ = e;
    "it is cut short or damaged (not a complete FIT file)".into()
}

/// A numeric FIT value as JSON number text; `None` for anything else.
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
