//! A deterministic, Strava-like rider export for benches and tests (feature `corpus`).
//!
//! [`generate`] is a pure function of its arguments: the same seed gives the same bytes on
//! every platform. The export is full of PII on purpose: athlete names, e-mail, city, bio and
//! clubs; activity names, descriptions and private notes, GPS start/end points, encoded
//! polylines, `latlng` and `altitude` streams, time zones, devices, gear, photos, segment
//! efforts with their segments, laps and splits. Next to it are the performance metrics,
//! stats, zones and KOMpass's computed blocks that a scrub must keep.

use serde_json::{Map, Value, json};

/// Generates a rider export with `activities` activities, deterministically from `seed`.
pub fn generate(activities: usize, seed: u64) -> String {
    let mut rng = Rng::new(seed);
    let athlete_id = 10_000_000 + rng.below(90_000_000);
    let first = rng.pick(FIRST_NAMES);
    let last = rng.pick(LAST_NAMES);
    let (city, state, country) = rng.pick(PLACES);
    let mut doc = Map::new();
    doc.insert(
        "basic_info".into(),
        athlete(&mut rng, athlete_id, first, last, (city, state, country)),
    );
    doc.insert("stats".into(), stats(&mut rng));
    doc.insert("zones".into(), zones(&mut rng));
    let list: Vec<Value> = (0..activities)
        .map(|i| activity(&mut rng, i, athlete_id, (first, last), (city, state, country)))
        .collect();
    doc.insert("activities".into(), Value::Array(list));
    doc.insert("fitness_metrics".into(), fitness_metrics(&mut rng, activities));
    doc.insert("power_analysis".into(), power_analysis(&mut rng));
    doc.insert("training_load".into(), training_load(&mut rng));
    doc.insert("fetch_timestamp".into(), json!("2024-06-30T21:15:42.123456"));
    Value::Object(doc).to_string()
}

/// xorshift64* seeded through splitmix64: tiny, deterministic, good enough for test data.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Rng((z ^ (z >> 31)) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// A float in `[lo, hi)` rounded to `decimals` places.
    fn float(&mut self, lo: f64, hi: f64, decimals: i32) -> f64 {
        let unit = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        let scale = 10f64.powi(decimals);
        ((lo + unit * (hi - lo)) * scale).round() / scale
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }

    /// An encoded-polyline-like string (characters 63..=126, as Google's encoding uses).
    fn polyline(&mut self, len: usize) -> String {
        (0..len).map(|_| char::from(63 + self.below(64) as u8)).collect()
    }

    fn hex(&mut self, len: usize) -> String {
        (0..len).map(|_| char::from(b"0123456789abcdef"[self.below(16) as usize])).collect()
    }
}

const FIRST_NAMES: &[&str] =
    &["John", "Åsa", "Mohammed", "Chloé", "Kenji", "Priya", "Søren", "María"];
const LAST_NAMES: &[&str] =
    &["Doe", "Lindqvist", "Haddad", "Dubois", "Tanaka", "Iyer", "Jørgensen", "García"];
const PLACES: &[(&str, &str, &str)] = &[
    ("San Francisco", "California", "United States"),
    ("Zürich", "Zürich", "Switzerland"),
    ("Girona", "Catalonia", "Spain"),
    ("Boulder", "Colorado", "United States"),
    ("København", "Hovedstaden", "Denmark"),
];
const ZONES_TZ: &[(&str, f64)] = &[
    ("(GMT-08:00) America/Los_Angeles", -25200.0),
    ("(GMT+01:00) Europe/Zurich", 7200.0),
    ("(GMT+01:00) Europe/Madrid", 7200.0),
    ("(GMT-07:00) America/Denver", -21600.0),
];
const SPORTS: &[(&str, &str)] = &[
    ("Ride", "Ride"),
    ("Ride", "GravelRide"),
    ("VirtualRide", "VirtualRide"),
    ("Ride", "MountainBikeRide"),
    ("Run", "Run"),
    ("Run", "TrailRun"),
];
const COMPANIONS: &[&str] =
    &["with Anna", "with the Tuesday club", "solo", "with Dad 🚴", "past Hauptstraße 12"];
const DEVICES: &[&str] = &["Garmin Edge 530", "Wahoo ELEMNT BOLT", "Zwift", "Strava iPhone App"];

fn athlete(rng: &mut Rng, id: u64, first: &str, last: &str, place: (&str, &str, &str)) -> Value {
    let bikes: Vec<Value> = (0..2)
        .map(|b| {
            json!({
                "id": format!("b{}", rng.below(10_000_000)),
                "primary": b == 0,
                "name": format!("{first}'s {}", ["Canyon Ultimate", "Specialized Diverge"][b]),
                "resource_state": 2,
                "distance": rng.float(1000.0, 40_000_000.0, 0),
            })
        })
        .collect();
    json!({
        "id": id,
        "username": format!("{}_{}", first.to_lowercase(), last.to_lowercase()),
        "resource_state": 3,
        "firstname": first,
        "lastname": last,
        "bio": format!("Riding around {} since 2012. Find me at the café on Main St.", place.0),
        "city": place.0,
        "state": place.1,
        "country": place.2,
        "sex": if rng.chance(50) { "M" } else { "F" },
        "premium": rng.chance(50),
        "summit": rng.chance(50),
        "created_at": "2012-03-04T05:06:07Z",
        "updated_at": "2024-06-01T10:11:12Z",
        "badge_type_id": 1,
        "weight": rng.float(50.0, 95.0, 1),
        "ftp": 150 + rng.below(200),
        "profile_medium": format!("https://dgalywyr863hv.cloudfront.net/pictures/athletes/{id}/medium.jpg"),
        "profile": format!("https://dgalywyr863hv.cloudfront.net/pictures/athletes/{id}/large.jpg"),
        "friend": null,
        "follower": null,
        "follower_count": rng.below(500),
        "friend_count": rng.below(500),
        "mutual_friend_count": 0,
        "athlete_type": 0,
        "date_preference": "%m/%d/%Y",
        "measurement_preference": "meters",
        "email": format!("{}.{}@example.com", first.to_lowercase(), last.to_lowercase()),
        "clubs": [{"id": rng.below(1_000_000), "name": format!("{} Velo Club", place.0), "city": place.0}],
        "bikes": bikes,
        "shoes": [],
    })
}

fn totals(rng: &mut Rng, count: u64) -> Value {
    json!({
        "count": count,
        "distance": rng.float(0.0, 50_000_000.0, 1),
        "moving_time": rng.below(2_000_000),
        "elapsed_time": rng.below(2_500_000),
        "elevation_gain": rng.float(0.0, 150_000.0, 1),
        "achievement_count": rng.below(3000),
    })
}

fn stats(rng: &mut Rng) -> Value {
    let mut stats = Map::new();
    for period in ["recent", "ytd", "all"] {
        for sport in ["ride", "run", "swim"] {
            let count = rng.below(500);
            stats.insert(format!("{period}_{sport}_totals"), totals(rng, count));
        }
    }
    stats.insert("biggest_ride_distance".into(), json!(rng.float(50_000.0, 300_000.0, 1)));
    stats.insert("biggest_climb_elevation_gain".into(), json!(rng.float(100.0, 3000.0, 1)));
    Value::Object(stats)
}

fn zone_ranges(rng: &mut Rng, n: usize, step: u64) -> Vec<Value> {
    let mut lo = 0;
    (0..n)
        .map(|i| {
            let hi = if i + 1 == n { -1 } else { (lo + step + rng.below(step)) as i64 };
            let zone = json!({"min": lo, "max": hi});
            lo = hi.max(0) as u64;
            zone
        })
        .collect()
}

fn zones(rng: &mut Rng) -> Value {
    json!({
        "heart_rate": {"custom_zones": rng.chance(30), "zones": zone_ranges(rng, 5, 20)},
        "power": {"zones": zone_ranges(rng, 7, 40)},
    })
}

fn series(rng: &mut Rng, n: usize, lo: f64, hi: f64, decimals: i32) -> Vec<Value> {
    (0..n).map(|_| json!(rng.float(lo, hi, decimals))).collect()
}

fn streams(rng: &mut Rng, n: usize, lat: f64, lng: f64, as_list: bool) -> Value {
    let latlng: Vec<Value> = (0..n)
        .map(|k| {
            json!([lat + k as f64 * 1e-4 + rng.float(0.0, 1e-4, 6), lng + rng.float(0.0, 1e-3, 6)])
        })
        .collect();
    let time: Vec<Value> = (0..n).map(|k| json!(k * 5)).collect();
    let moving: Vec<Value> = (0..n).map(|_| json!(rng.chance(95))).collect();
    let all = [
        ("latlng", Value::Array(latlng)),
        ("time", Value::Array(time)),
        ("distance", Value::Array(series(rng, n, 0.0, 100_000.0, 1))),
        ("altitude", Value::Array(series(rng, n, 0.0, 2500.0, 1))),
        ("velocity_smooth", Value::Array(series(rng, n, 0.0, 20.0, 1))),
        ("heartrate", Value::Array(series(rng, n, 90.0, 190.0, 0))),
        ("cadence", Value::Array(series(rng, n, 60.0, 110.0, 0))),
        ("watts", Value::Array(series(rng, n, 0.0, 600.0, 0))),
        ("temp", Value::Array(series(rng, n, 5.0, 35.0, 0))),
        ("moving", Value::Array(moving)),
        ("grade_smooth", Value::Array(series(rng, n, -12.0, 12.0, 1))),
    ];
    let stream = |data: Value| json!({"data": data, "series_type": "distance", "original_size": n, "resolution": "high"});
    if as_list {
        // Strava's default layout: a list of streams, each naming its type.
        let with_type = |(ty, data): (&str, Value)| {
            let mut entry = stream(data);
            entry["type"] = json!(ty);
            entry
        };
        Value::Array(all.into_iter().map(with_type).collect())
    } else {
        // `key_by_type=true`: an object keyed by stream type.
        Value::Object(all.into_iter().map(|(ty, data)| (ty.to_owned(), stream(data))).collect())
    }
}

fn activity(
    rng: &mut Rng,
    index: usize,
    athlete_id: u64,
    (first, last): (&str, &str),
    place: (&str, &str, &str),
) -> Value {
    let id = 10_000_000_000 + index as u64 * 1000 + rng.below(1000);
    let (sport, sport_type) = rng.pick(SPORTS);
    let (timezone, utc_offset) = rng.pick(ZONES_TZ);
    let companion = rng.pick(COMPANIONS);
    let lat = rng.float(37.0, 48.0, 6);
    let lng = rng.float(-123.0, 12.0, 6);
    let day = 1 + index % 28;
    let month = 1 + (index / 28) % 12;
    let hour = 5 + rng.below(14);
    let distance = rng.float(5000.0, 160_000.0, 1);
    let moving_time = 600 + rng.below(20_000);
    let samples = 16 + rng.below(32) as usize;
    let has_power = rng.chance(80);
    let watts = rng.float(120.0, 320.0, 1);
    let segment_efforts: Vec<Value> = (0..1 + rng.below(3))
        .map(|s| {
            json!({
                "id": id * 10 + s,
                "name": format!("{} climb #{s}", place.0),
                "elapsed_time": rng.below(1200),
                "start_date_local": format!("2024-{month:02}-{day:02}T{hour:02}:10:00Z"),
                "segment": {
                    "id": rng.below(30_000_000),
                    "name": format!("Hill above {}", place.0),
                    "start_latlng": [lat, lng],
                    "end_latlng": [lat + 0.01, lng + 0.01],
                    "city": place.0, "state": place.1, "country": place.2,
                    "private": false, "hazardous": false,
                },
                "athlete": {"id": athlete_id},
                "kom_rank": null, "pr_rank": 1,
            })
        })
        .collect();
    let laps: Vec<Value> = (0..1 + rng.below(4))
        .map(|l| {
            json!({
                "id": id * 100 + l, "name": format!("Lap {}", l + 1),
                "activity": {"id": id}, "athlete": {"id": athlete_id},
                "elapsed_time": rng.below(4000), "distance": rng.float(1000.0, 40_000.0, 1),
                "start_date_local": format!("2024-{month:02}-{day:02}T{hour:02}:00:00Z"),
                "start_index": 0, "end_index": samples,
                "average_watts": rng.float(100.0, 300.0, 1),
            })
        })
        .collect();
    let identity = json!({
        "resource_state": 2,
        "athlete": {"id": athlete_id, "resource_state": 1},
        "name": format!("{} {} {companion}", ["Morning", "Lunch", "Evening"][index % 3], sport),
        "description": format!("Great day out in {}! Thanks {first} {last}", place.0),
        "private_note": format!("Knee hurt near {}; call Dr. Weber +41 44 123 45 67", place.0),
        "distance": distance,
        "moving_time": moving_time,
        "elapsed_time": moving_time + rng.below(3600),
        "total_elevation_gain": rng.float(0.0, 3000.0, 1),
        "elev_high": rng.float(500.0, 2500.0, 1),
        "elev_low": rng.float(0.0, 500.0, 1),
        "type": sport,
        "sport_type": sport_type,
        "workout_type": if rng.chance(20) { json!(10) } else { Value::Null },
        "id": id,
        "upload_id": id + 7_000_000_000,
        "upload_id_str": (id + 7_000_000_000).to_string(),
        "external_id": format!("garmin_push_{}", rng.below(100_000_000_000)),
        "start_date": format!("2024-{month:02}-{day:02}T{hour:02}:00:00Z"),
        "start_date_local": format!("2024-{month:02}-{day:02}T{:02}:00:00Z", (hour + 2) % 24),
        "timezone": timezone,
        "utc_offset": utc_offset,
        "location_city": place.0,
        "location_state": place.1,
        "location_country": place.2,
    });
    let place_and_social = json!({
        "start_latlng": [lat, lng],
        "end_latlng": [lat + rng.float(-0.05, 0.05, 6), lng + rng.float(-0.05, 0.05, 6)],
        "achievement_count": rng.below(20),
        "kudos_count": rng.below(60),
        "comment_count": rng.below(5),
        "athlete_count": 1 + rng.below(6),
        "photo_count": 0,
        "total_photo_count": rng.below(4),
        "map": {
            "id": format!("a{id}"),
            "summary_polyline": rng.polyline(40 + samples),
            "polyline": rng.polyline(4 * samples),
            "resource_state": 3,
        },
        "trainer": sport == "VirtualRide",
        "commute": rng.chance(10),
        "manual": false,
        "private": rng.chance(10),
        "visibility": "everyone",
        "flagged": false,
        "gear_id": format!("b{}", rng.below(10_000_000)),
        "gear": {"id": "b123", "primary": true, "name": format!("{first}'s Canyon"), "distance": 1_234_567.0},
    });
    let more = json!({
        "average_speed": rng.float(4.0, 12.0, 3),
        "max_speed": rng.float(12.0, 22.0, 1),
        "average_cadence": rng.float(70.0, 100.0, 1),
        "has_heartrate": true,
        "average_heartrate": rng.float(110.0, 170.0, 1),
        "max_heartrate": 150 + rng.below(50),
        "heartrate_opt_out": false,
        "display_hide_heartrate_option": true,
        "pr_count": rng.below(5),
        "has_kudoed": false,
        "suffer_score": rng.below(300),
        "calories": rng.float(200.0, 4000.0, 1),
        "device_name": rng.pick(DEVICES),
        "embed_token": rng.hex(40),
        "photos": {
            "primary": {"id": null, "unique_id": rng.hex(32), "urls": {"600": format!("https://dgtzuqphqg23d.cloudfront.net/{}.jpg", rng.hex(20))}, "source": 1},
            "use_primary_photo": true,
            "count": 1,
        },
        "segment_efforts": segment_efforts,
        "laps": laps,
        "splits_metric": [{"distance": 1000.0, "elapsed_time": 200, "elevation_difference": 3.1, "split": 1}],
        "streams": streams(rng, samples, lat, lng, index % 2 == 1),
    });
    let power = if has_power {
        json!({
            "average_watts": watts,
            "max_watts": watts as u64 * 3,
            "weighted_average_watts": watts as u64 + 12,
            "kilojoules": rng.float(100.0, 4000.0, 1),
            "device_watts": true,
            "zones": [{
                "type": "power", "score": rng.below(400), "sensor_based": true, "points": 3,
                "custom_zones": false, "max": 999,
                "distribution_buckets": [{"min": 0, "max": 150, "time": rng.below(3000)}, {"min": 150, "max": 250, "time": rng.below(3000)}],
            }],
        })
    } else {
        json!({})
    };
    // Several literals: one would exceed the json! macro's recursion limit.
    let merged =
        [identity, place_and_social, more, power].into_iter().flat_map(|part| match part {
            Value::Object(fields) => fields,
            _ => Map::new(),
        });
    Value::Object(merged.collect())
}

fn fitness_metrics(rng: &mut Rng, activities: usize) -> Value {
    json!({
        "total_activities": activities,
        "activity_frequency": {"activities_per_week": rng.float(0.0, 10.0, 4), "riding_days_per_week": rng.float(0.0, 7.0, 4)},
        "total_distance_km": rng.float(0.0, 20_000.0, 3),
        "total_elevation_gain_m": rng.float(0.0, 200_000.0, 1),
        "average_power_watts": rng.float(100.0, 300.0, 6),
        "average_heartrate": rng.float(100.0, 170.0, 6),
        "fitness_trend": {"power_trend_direction": "improving", "power_trend_magnitude": rng.float(0.0, 1.0, 6)},
        "training_consistency": rng.float(0.0, 1.0, 6),
        "intensity_distribution": {"avg_heart_rate": rng.float(100.0, 170.0, 3), "hr_distribution": {"easy": 0.6, "moderate": 0.25, "hard": 0.15}},
    })
}

fn power_analysis(rng: &mut Rng) -> Value {
    json!({
        "lifetime_stats": {"total_rides": rng.below(3000), "total_distance_km": rng.float(0.0, 100_000.0, 3), "total_elevation_gain_m": rng.float(0.0, 1e6, 1), "total_moving_time_hours": rng.float(0.0, 5000.0, 3)},
        "recent_power_metrics": {
            "avg_power_last_30_days": rng.float(100.0, 300.0, 6),
            "max_power_last_30_days": rng.float(200.0, 400.0, 1),
            "power_trend": {"trend_direction": "declining", "trend_strength": rng.float(0.0, 1.0, 6)},
            "power_consistency": rng.float(0.0, 50.0, 6),
            "weighted_power_avg": rng.float(100.0, 300.0, 6),
        },
    })
}

fn training_load(rng: &mut Rng) -> Value {
    json!({
        "weekly_training_hours": {"avg_weekly_hours": rng.float(0.0, 20.0, 4), "max_weekly_hours": rng.float(0.0, 30.0, 4), "current_week_hours": rng.float(0.0, 20.0, 4)},
        "training_intensity_factor": rng.float(0.5, 1.5, 6),
        "recovery_metrics": {"avg_rest_days": rng.float(0.0, 3.0, 4), "max_rest_period": rng.below(14), "recovery_consistency": rng.float(0.0, 2.0, 4)},
        "training_stress_balance": {"acute_training_load": rng.below(50), "chronic_training_load": rng.float(0.0, 50.0, 2), "training_stress_balance": rng.float(-20.0, 20.0, 2)},
        "peak_training_period": {"peak_training_week": 1 + rng.below(52), "peak_weekly_hours": rng.float(0.0, 30.0, 4), "peak_weekly_distance": rng.float(0.0, 800.0, 3)},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_bytes_other_seed_other_bytes() {
        assert_eq!(generate(3, 7), generate(3, 7));
        assert_ne!(generate(3, 7), generate(3, 8));
    }

    #[test]
    fn has_the_requested_number_of_activities_full_of_pii() {
        let doc: Value = serde_json::from_str(&generate(5, 1)).unwrap();
        let activities = doc["activities"].as_array().unwrap();
        assert_eq!(activities.len(), 5);
        for a in activities {
            for key in [
                "name",
                "start_latlng",
                "map",
                "streams",
                "segment_efforts",
                "photos",
                "gear",
                "timezone",
            ] {
                assert!(a.get(key).is_some(), "activity lacks {key}");
            }
        }
        assert!(doc["basic_info"]["email"].as_str().unwrap().contains('@'));
        // Both stream layouts occur.
        assert!(activities[0]["streams"].is_object() && activities[1]["streams"].is_array());
    }
}
