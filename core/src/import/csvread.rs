//! `activities.csv` and `profile.csv`: the columns kept, by Strava's header names; every other
//! column is dropped and counted.

use super::{RemovedTally, json_number, tally, time};

/// The athlete traits kept from `profile.csv`.
#[derive(Debug, Default)]
pub(crate) struct Athlete {
    pub sex: Option<String>,
    pub weight: Option<String>,
}

/// One row of `activities.csv`, as kept.
#[derive(Debug, Default)]
pub(crate) struct Activity {
    pub start_date: Option<String>,
    pub sport: Option<String>,
    pub commute: Option<bool>,
    /// Strava API field name and JSON number text, in a fixed order.
    pub metrics: Vec<(&'static str, String)>,
    /// The activity file's path in the archive (internal: never written out).
    pub filename: Option<String>,
    /// The activity file was read or skipped (or found missing): the activity can be written.
    pub file_done: bool,
}

/// Metric columns and the Strava API field each becomes. Where Strava's header repeats a name
/// (`Distance` in km, then in metres), the last column of that name is the SI one and is used.
const METRICS: &[(&str, &str)] = &[
    ("Elapsed Time", "elapsed_time"),
    ("Moving Time", "moving_time"),
    ("Distance", "distance"),
    ("Max Speed", "max_speed"),
    ("Average Speed", "average_speed"),
    ("Elevation Gain", "total_elevation_gain"),
    ("Elevation Low", "elev_low"),
    ("Elevation High", "elev_high"),
    ("Average Cadence", "average_cadence"),
    ("Max Heart Rate", "max_heartrate"),
    ("Average Heart Rate", "average_heartrate"),
    ("Max Watts", "max_watts"),
    ("Average Watts", "average_watts"),
    ("Calories", "calories"),
    ("Relative Effort", "suffer_score"),
    ("Perceived Exertion", "perceived_exertion"),
    ("Weighted Average Power", "weighted_average_watts"),
];

/// Columns dropped with a kind of their own in the report; other columns are "other activity
/// details".
const NAMED_DROPS: &[(&str, &str)] = &[
    ("Activity ID", "activity ids"),
    ("Activity Name", "activity titles"),
    ("Activity Description", "activity descriptions"),
    ("Activity Private Note", "private notes"),
    ("Activity Gear", "gear names"),
    ("Bike", "gear names"),
    ("Gear", "gear names"),
    ("Media", "photo references"),
];

/// Columns read for their meaning but not written as such.
const USED: &[&str] = &["Activity Date", "Activity Type", "Commute", "Filename"];

fn reader(bytes: &[u8]) -> csv::Reader<&[u8]> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    csv::ReaderBuilder::new().flexible(true).has_headers(true).from_reader(bytes)
}

/// Reads `activities.csv` (at most `max` rows).
pub(crate) fn activities(
    bytes: &[u8],
    max: usize,
    removed: &mut RemovedTally,
) -> Result<Vec<Activity>, String> {
    let mut rdr = reader(bytes);
    let headers: Vec<String> = rdr
        .headers()
        .map_err(|e| format!("its header is unreadable ({e})"))?
        .iter()
        .map(|h| h.trim().to_owned())
        .collect();
    let last = |name: &str| headers.iter().rposition(|h| h == name);
    let first = |name: &str| headers.iter().position(|h| h == name);
    if first("Activity Date").is_none() {
        return Err("it has no \"Activity Date\" column".into());
    }
    let metric_cols: Vec<(usize, &'static str)> =
        METRICS.iter().filter_map(|(h, f)| last(h).map(|i| (i, *f))).collect();
    let date = first("Activity Date");
    let kind = first("Activity Type");
    let commute = first("Commute");
    let filename = first("Filename");
    let mut out = Vec::new();
    for (n, row) in rdr.records().enumerate() {
        let row = row.map_err(|e| format!("row {} is unreadable ({e})", n + 2))?;
        if n >= max {
            return Err(format!("it has more than {max} activities"));
        }
        let cell =
            |i: Option<usize>| i.and_then(|i| row.get(i)).map(str::trim).filter(|s| !s.is_empty());
        let mut a = Activity {
            start_date: cell(date).and_then(time::strava_csv_date),
            sport: cell(kind).map(sport_type),
            commute: cell(commute).and_then(|c| match c {
                "true" | "1" => Some(true),
                "false" | "0" => Some(false),
                _ => None,
            }),
            filename: cell(filename).map(str::to_owned),
            ..Activity::default()
        };
        if cell(date).is_some() && a.start_date.is_none() {
            tally(
                removed,
                "activity dates in an unknown format",
                "activities.csv: Activity Date",
                1,
            );
        }
        for &(i, field) in &metric_cols {
            if let Some(v) = cell(Some(i)).and_then(json_number) {
                a.metrics.push((field, v));
            }
        }
        // Everything else in the row is dropped: count it by kind.
        for (i, h) in headers.iter().enumerate() {
            let Some(v) = row.get(i).map(str::trim).filter(|s| !s.is_empty()) else {
                continue;
            };
            let _ = v;
            if metric_cols.iter().any(|(c, _)| *c == i) || USED.contains(&h.as_str()) {
                continue;
            }
            let kind = NAMED_DROPS
                .iter()
                .find(|(name, _)| name == h)
                .map_or("other activity details (weather, gear weights, ...)", |(_, k)| k);
            tally(removed, kind, &format!("activities.csv: {h}"), 1);
        }
        out.push(a);
    }
    Ok(out)
}

/// Strava's display type ("Virtual Ride", "E-Bike Ride") as its API name ("VirtualRide",
/// "EBikeRide"); the scrubber keeps only the names it knows.
fn sport_type(display: &str) -> String {
    display.chars().filter(|c| c.is_ascii_alphanumeric()).collect()
}

/// Reads `profile.csv`: sex and weight kept, every other field counted.
pub(crate) fn profile(bytes: &[u8], removed: &mut RemovedTally) -> Athlete {
    let mut rdr = reader(bytes);
    let Ok(headers) = rdr.headers().cloned() else {
        return Athlete::default();
    };
    let mut athlete = Athlete::default();
    if let Some(Ok(row)) = rdr.records().next() {
        for (h, v) in headers.iter().zip(row.iter()) {
            let (h, v) = (h.trim(), v.trim());
            if v.is_empty() {
                continue;
            }
            match h {
                "Sex" if matches!(v, "F" | "M") => athlete.sex = Some(v.to_owned()),
                "Weight" if json_number(v).is_some() => athlete.weight = json_number(v),
                _ => tally(
                    removed,
                    "profile details (name, e-mail, city, ...)",
                    &format!("profile.csv: {h}"),
                    1,
                ),
            }
        }
    }
    athlete
}
