//! GPX and TCX activity files: one sample per `trkpt` / `Trackpoint`, positions counted and
//! dropped. quick-xml expands no entities; a file that declares a DTD is refused outright, so no
//! entity trick (billion laughs, external entities) gets anywhere.

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

use super::{RemovedTally, Slot as Series, Track, tally, time};

/// Nesting deeper than this is not an activity file.
const MAX_DEPTH: usize = 64;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Gpx,
    Tcx,
}

pub(crate) fn read_gpx(
    bytes: &[u8],
    max_samples: usize,
    removed: &mut RemovedTally,
) -> Result<Track, String> {
    read(bytes, Kind::Gpx, max_samples, removed)
}

pub(crate) fn read_tcx(
    bytes: &[u8],
    max_samples: usize,
    removed: &mut RemovedTally,
) -> Result<Track, String> {
    read(bytes, Kind::Tcx, max_samples, removed)
}

/// Which series an element's text fills, inside a sample.
#[derive(Clone, Copy)]
enum Slot {
    Time,
    Distance,
    Altitude,
    Heartrate,
    Watts,
    Cadence,
    Speed,
    Temp,
}

fn slot(kind: Kind, name: &str, parent: &str) -> Option<Slot> {
    Some(match (kind, name) {
        (Kind::Gpx, "time") | (Kind::Tcx, "Time") => Slot::Time,
        (Kind::Gpx, "ele") | (Kind::Tcx, "AltitudeMeters") => Slot::Altitude,
        (Kind::Tcx, "DistanceMeters") => Slot::Distance,
        (Kind::Gpx, "hr") => Slot::Heartrate,
        (Kind::Tcx, "Value") if parent == "HeartRateBpm" => Slot::Heartrate,
        (Kind::Gpx, "cad") | (Kind::Tcx, "Cadence") => Slot::Cadence,
        (Kind::Gpx, "power") | (Kind::Tcx, "Watts") => Slot::Watts,
        (Kind::Gpx, "speed") | (Kind::Tcx, "Speed") => Slot::Speed,
        (Kind::Gpx, "atemp") | (Kind::Gpx, "temp") => Slot::Temp,
        _ => return None,
    })
}

/// What a dropped element outside the samples is, for the report.
fn dropped_kind(kind: Kind, name: &str, parent: &str) -> Option<(&'static str, &'static str)> {
    Some(match (kind, name) {
        (Kind::Gpx, "name") => ("names inside activity files", "activity files: name"),
        (Kind::Gpx, "desc" | "cmt") => {
            ("descriptions inside activity files", "activity files: desc")
        }
        (Kind::Gpx, "author" | "email" | "link") => {
            ("author details inside activity files", "activity files: metadata")
        }
        (Kind::Tcx, "Notes") => ("descriptions inside activity files", "activity files: Notes"),
        (Kind::Tcx, "Name") if parent == "Creator" || parent == "Author" => {
            ("device names", "activity files: Creator")
        }
        (Kind::Tcx, "UnitId") => ("device serial numbers", "activity files: Creator/UnitId"),
        _ => return None,
    })
}

fn read(
    bytes: &[u8],
    kind: Kind,
    max_samples: usize,
    removed: &mut RemovedTally,
) -> Result<Track, String> {
    let mut reader = Reader::from_reader(bytes);
    reader.config_mut().trim_text(true);
    let mut track = Track::default();
    let mut route = Route::default();
    let mut stack: Vec<String> = Vec::new();
    let mut in_point = false;
    let point: &str = if kind == Kind::Gpx { "trkpt" } else { "Trackpoint" };
    loop {
        let event = reader.read_event().map_err(|e| format!("it is not valid XML ({e})"))?;
        match event {
            Event::DocType(_) => {
                return Err(
                    "it declares a DTD (entity declarations are not accepted in activity files)"
                        .into(),
                );
            }
            Event::Start(e) => {
                let name = e.local_name().as_ref().to_owned();
                if stack.len() >= MAX_DEPTH {
                    return Err(format!("it nests elements deeper than {MAX_DEPTH}"));
                }
                open(
                    &e,
                    &name,
                    kind,
                    point,
                    &mut in_point,
                    &mut track,
                    &mut route,
                    max_samples,
                    removed,
                )?;
                stack.push(name);
            }
            Event::Empty(e) => {
                let name = e.local_name().as_ref().to_owned();
                let mut inside = in_point;
                open(
                    &e,
                    &name,
                    kind,
                    point,
                    &mut inside,
                    &mut track,
                    &mut route,
                    max_samples,
                    removed,
                )?;
            }
            Event::End(_) => {
                if let Some(name) = stack.pop()
                    && name == point
                {
                    in_point = false;
                }
            }
            Event::Text(t) => {
                let Some(name) = stack.last() else { continue };
                let parent = stack.len().checked_sub(2).map_or("", |i| stack[i].as_str());
                if in_point {
                    if let Some(s) = slot(kind, name, parent) {
                        let text: &str = &t;
                        fill(&mut track, s, text);
                    }
                } else if let Some((what, path)) = dropped_kind(kind, name, parent) {
                    tally(removed, what, path, 1);
                }
            }
            Event::GeneralRef(_) => {
                // Numbers and times never hold entity references: a sample with one is unknown.
                if in_point && let Some(name) = stack.last() {
                    let parent = stack.len().checked_sub(2).map_or("", |i| stack[i].as_str());
                    if let Some(s) = slot(kind, name, parent) {
                        clear(&mut track, s);
                    }
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if track.len() == 0 {
        return Err("it holds no samples".into());
    }
    Ok(track)
}

/// Distance along a GPX track: the great-circle (haversine) distance between consecutive
/// positions, summed, in metres rounded to centimetres like a FIT file's `distance`.
#[derive(Default)]
struct Route {
    last: Option<(f64, f64)>,
    metres: f64,
}

/// The mean Earth radius (IUGG), metres.
const EARTH_RADIUS_M: f64 = 6_371_008.8;

impl Route {
    /// The distance at a point with position `at` (latitude, longitude in degrees); `None`
    /// for a point without a valid one.
    fn to(&mut self, at: Option<(f64, f64)>) -> Option<f64> {
        let (lat, lon) = at?;
        if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
            return None;
        }
        if let Some(last) = self.last {
            self.metres += haversine(last, (lat, lon));
        }
        self.last = Some((lat, lon));
        Some((self.metres * 100.0).round() / 100.0)
    }
}

/// Metres between two positions (degrees) on a sphere of the Earth's mean radius.
pub(crate) fn haversine(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (la1, la2) = (a.0.to_radians(), b.0.to_radians());
    let dlat = la2 - la1;
    let dlon = (b.1 - a.1).to_radians();
    let h = (dlat / 2.0).sin().powi(2) + la1.cos() * la2.cos() * (dlon / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * h.sqrt().min(1.0).asin()
}

#[allow(clippy::too_many_arguments)]
fn open(
    e: &BytesStart<'_>,
    name: &str,
    kind: Kind,
    point: &str,
    in_point: &mut bool,
    track: &mut Track,
    route: &mut Route,
    max_samples: usize,
    removed: &mut RemovedTally,
) -> Result<(), String> {
    if name == point {
        if track.len() >= max_samples {
            return Err(format!("it has more than {max_samples} samples"));
        }
        track.push_empty();
        *in_point = true;
        if kind == Kind::Gpx {
            let (mut lat, mut lon, mut has_position) = (None, None, false);
            for a in e.attributes().flatten() {
                let value = || a.value.trim().parse::<f64>().ok();
                match a.key.local_name().as_ref() {
                    "lat" => (lat, has_position) = (value(), true),
                    "lon" => (lon, has_position) = (value(), true),
                    _ => {}
                }
            }
            if has_position {
                tally(removed, "GPS points", "activity files: trkpt lat/lon", 1);
            }
            // GPX has no distance: it is summed from the positions before they are dropped.
            if let Some(d) = route.to(lat.zip(lon)) {
                track.set_number(Series::Distance, d);
            }
        }
    } else if kind == Kind::Tcx && name == "Position" && *in_point {
        tally(removed, "GPS points", "activity files: Trackpoint/Position", 1);
    } else if kind == Kind::Gpx && name == "wpt" {
        tally(removed, "waypoints", "activity files: wpt", 1);
    } else if kind == Kind::Gpx
        && name == "gpx"
        && e.attributes().flatten().any(|a| a.key.local_name().as_ref() == "creator")
    {
        tally(removed, "device names", "activity files: gpx creator", 1);
    }
    Ok(())
}

fn series(s: Slot) -> Series {
    match s {
        Slot::Time => unreachable!("time is not a text series"),
        Slot::Distance => Series::Distance,
        Slot::Altitude => Series::Altitude,
        Slot::Heartrate => Series::Heartrate,
        Slot::Watts => Series::Watts,
        Slot::Cadence => Series::Cadence,
        Slot::Speed => Series::Speed,
        Slot::Temp => Series::Temp,
    }
}

fn fill(track: &mut Track, s: Slot, text: &str) {
    match s {
        Slot::Time => {
            if let Some(t) = time::iso8601(text) {
                track.set_time(t);
            }
        }
        _ => track.set_text(series(s), text),
    }
}

fn clear(track: &mut Track, s: Slot) {
    match s {
        Slot::Time => track.clear_time(),
        _ => track.clear(series(s)),
    }
}
