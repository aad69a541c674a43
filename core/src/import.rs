//! Strava's bulk export ("Download your data"): the ZIP a rider gets from Strava, read into the
//! scrubbed rider document the rest of the system stores.
//!
//! Bytes in, a document and a report out: no IO, so the same code runs in the page's wasm and
//! natively. The archive is read entry by entry; only `profile.csv`, `activities.csv` and the
//! activity files it names (GPX, TCX, FIT, each possibly gzipped) are decompressed, one at a
//! time, each within [`ImportLimits`]. Everything else (media, clubs, gear, messages, routes,
//! comments, ...) is dropped unread and counted.
//!
//! The document is built in Strava API shape (what `scrub` reads) and passed through
//! [`crate::scrub::scrub_keyless`], the same allow-list the JSON path uses: so the importer can
//! never keep more than the scrub policy does (altitude and temperature streams, for example,
//! are written and then dropped as long as the policy drops them), and the server's keyed scrub
//! of the result changes nothing but the pseudonyms it adds.
//!
//! Memory is bounded by the largest activity plus the document, not by the archive: each
//! activity file is decompressed, parsed into compact series (one text buffer per series, a
//! time is 8 bytes) and its bytes dropped; the activity is then written, scrubbed on its own
//! and appended to the document, in `activities.csv` order (the scrubber filters each activity
//! alone, so this is byte for byte the scrub of the whole document at once). The archive itself
//! is read through [`import_strava_export_from`]'s reader, entry by entry.
//!
//! Kept: the athlete's sex and weight; per activity the UTC start, sport, commute flag and the
//! performance metrics of `activities.csv` (their text copied byte for byte when it is a JSON
//! number); per activity file every recorded sample of time, distance, heart rate, power,
//! cadence, speed (and altitude and temperature, if the policy keeps them), never a position.
//! The [`ImportReport`] says in plain words what kind of thing was removed and how much
//! ("342,118 GPS points", "12 activity titles"), never a removed value or a file name.

mod csvread;
mod fit;
mod time;
mod xml;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::io::{Cursor, Read, Seek};

use serde::Serialize;

use crate::scrub::{self, ScrubError};

/// Bounds on what an archive may make the importer decompress and hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportLimits {
    /// Entries in the archive's directory.
    pub max_entries: usize,
    /// Decompressed bytes of one entry read (an activity file after `.gz` too, a CSV file).
    pub max_entry_bytes: u64,
    /// Decompressed bytes of all entries read together.
    pub max_total_bytes: u64,
    /// Decompressed / compressed size of an entry above 1 MiB: more is a zip bomb.
    pub max_ratio: u64,
    /// Samples of one activity (two weeks at one per second).
    pub max_samples: usize,
    /// Rows of `activities.csv`.
    pub max_activities: usize,
}

impl Default for ImportLimits {
    fn default() -> Self {
        ImportLimits {
            max_entries: 200_000,
            max_entry_bytes: 128 << 20,
            max_total_bytes: 8 << 30,
            max_ratio: 200,
            max_samples: 1_209_600,
            max_activities: 200_000,
        }
    }
}

/// How far an import has come, for a progress bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Progress {
    /// Archive entries looked at so far.
    pub entries_done: usize,
    /// Entries in the archive.
    pub entries_total: usize,
    /// Compressed bytes of the entries looked at so far.
    pub bytes_done: u64,
    /// Size of the archive.
    pub bytes_total: u64,
}

/// What was removed: a kind of thing and how many, in plain words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Removed {
    /// The kind, plural (`"GPS points"`).
    pub kind: String,
    /// How many.
    pub count: u64,
    /// Both in words: `"342,118 GPS points"`.
    pub text: String,
    /// Where they were, by place in the export (`activities.csv: Activity Name`), never by
    /// value or file name.
    pub paths: Vec<String>,
}

/// An archive entry that was not imported although it should have been, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    /// Why, in words (`"an activity file is cut short"`).
    pub reason: String,
    /// How many entries for that reason.
    pub count: u64,
}

/// What an import kept, removed and skipped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    /// The scrub rules applied ([`scrub::SCRUB_VERSION`]).
    pub version: String,
    /// Activities in the document.
    pub activities: usize,
    /// Activities with streams from their activity file.
    pub activities_with_streams: usize,
    /// Samples kept (per activity, the length of its streams), over all activities.
    pub samples: u64,
    /// What was removed, by kind, largest first.
    pub removed: Vec<Removed>,
    /// Entries skipped, by reason.
    pub skipped: Vec<Skipped>,
    /// Archive entries.
    pub entries: usize,
    /// Archive size in bytes.
    pub archive_bytes: u64,
    /// Decompressed bytes read.
    pub expanded_bytes: u64,
    /// The largest single decompressed entry held at once.
    pub largest_entry_bytes: u64,
    /// Size of the document in bytes.
    pub output_bytes: usize,
}

/// An imported export: the scrubbed document (compact JSON, ids dropped: the server adds the
/// pseudonyms) and the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    /// The scrubbed rider document.
    pub document: String,
    /// What was kept, removed and skipped.
    pub report: ImportReport,
}

/// An imported export whose document is held in chunks of at most [`CHUNK_BYTES`] (an
/// activity longer than that is a chunk of its own), for a caller that hands the document on
/// rather than keeping it whole: in wasm, one `String` grown by doubling holds up to twice the
/// document while it grows (and wasm memory never shrinks back), where chunks hold it once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedChunks {
    /// The scrubbed rider document: these chunks, in order, are [`Imported::document`]'s bytes.
    pub chunks: Vec<Vec<u8>>,
    /// What was kept, removed and skipped.
    pub report: ImportReport,
}

impl ImportedChunks {
    /// The SHA-256 of the document (what the page sends as `x-kompass-sha256`).
    pub fn sha256(&self) -> crate::inventory::Sha256Digest {
        use sha2::Digest as _;
        let mut h = sha2::Sha256::new();
        for c in &self.chunks {
            h.update(c);
        }
        crate::inventory::Sha256Digest(h.finalize().into())
    }
}

/// The size of [`ImportedChunks`]' chunks.
pub const CHUNK_BYTES: usize = 4 << 20;

/// Where the document is written as the archive is read.
trait Sink: Default {
    fn push_str(&mut self, s: &str);
    fn len(&self) -> usize;
}

impl Sink for String {
    fn push_str(&mut self, s: &str) {
        String::push_str(self, s);
    }
    fn len(&self) -> usize {
        String::len(self)
    }
}

/// The document in chunks of [`CHUNK_BYTES`], each allocated once at its full size.
#[derive(Default)]
struct Chunks {
    chunks: Vec<Vec<u8>>,
    len: usize,
}

impl Sink for Chunks {
    fn push_str(&mut self, s: &str) {
        let bytes = s.as_bytes();
        self.len += bytes.len();
        if let Some(last) = self.chunks.last_mut()
            && last.capacity() - last.len() >= bytes.len()
        {
            last.extend_from_slice(bytes);
        } else if bytes.len() >= CHUNK_BYTES {
            self.chunks.push(bytes.to_vec());
        } else {
            let mut chunk = Vec::with_capacity(CHUNK_BYTES);
            chunk.extend_from_slice(bytes);
            self.chunks.push(chunk);
        }
    }
    fn len(&self) -> usize {
        self.len
    }
}

/// Why an archive could not be imported. Nothing is returned then.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    /// Not a ZIP archive, or a damaged one.
    #[error(
        "this is not a readable ZIP archive ({0}); choose the ZIP file Strava sent (export_*.zip)"
    )]
    NotZip(String),
    /// A ZIP, but without `activities.csv`.
    #[error(
        "the archive has no activities.csv, so it is not a Strava bulk export; choose the ZIP from Strava's \"Download or Delete Your Account\" page"
    )]
    NotStravaExport,
    /// `activities.csv` cannot be read.
    #[error("activities.csv cannot be read: {0}")]
    BadActivities(String),
    /// A limit of [`ImportLimits`] was passed.
    #[error("the archive was refused: {0}")]
    Refused(String),
    /// The built document was refused by the scrubber: a bug here.
    #[error("the imported document could not be scrubbed ({0}); this is a bug in the importer")]
    Scrub(#[from] ScrubError),
    /// The scrubbed activities could not be joined into one document: a bug here.
    #[error("the imported document could not be assembled; this is a bug in the importer")]
    Assembly,
}

/// Imports a Strava bulk export ZIP with the default limits and no progress reports.
pub fn import_strava_export(archive: &[u8]) -> Result<Imported, ImportError> {
    import_strava_export_with(archive, &ImportLimits::default(), &mut |_| {})
}

/// Imports a Strava bulk export ZIP within `limits`, calling `progress` after each entry.
pub fn import_strava_export_with(
    archive: &[u8],
    limits: &ImportLimits,
    progress: &mut dyn FnMut(Progress),
) -> Result<Imported, ImportError> {
    import_strava_export_from(Cursor::new(archive), archive.len() as u64, limits, progress)
}

/// Imports a Strava bulk export ZIP read from `reader` (`archive_bytes` long), within `limits`,
/// calling `progress` after each entry. The archive is read entry by entry, so a caller that
/// passes a file (natively) or a reader over memory it owns never has the importer hold it.
pub fn import_strava_export_from<R: Read + Seek>(
    reader: R,
    archive_bytes: u64,
    limits: &ImportLimits,
    progress: &mut dyn FnMut(Progress),
) -> Result<Imported, ImportError> {
    let (document, report) = import_into::<R, String>(reader, archive_bytes, limits, progress)?;
    Ok(Imported { document, report })
}

/// [`import_strava_export_from`], the document in chunks ([`ImportedChunks`]): the same bytes.
pub fn import_strava_export_chunks_from<R: Read + Seek>(
    reader: R,
    archive_bytes: u64,
    limits: &ImportLimits,
    progress: &mut dyn FnMut(Progress),
) -> Result<ImportedChunks, ImportError> {
    let (document, report) = import_into::<R, Chunks>(reader, archive_bytes, limits, progress)?;
    Ok(ImportedChunks { chunks: document.chunks, report })
}

fn import_into<R: Read + Seek, S: Sink>(
    reader: R,
    archive_bytes: u64,
    limits: &ImportLimits,
    progress: &mut dyn FnMut(Progress),
) -> Result<(S, ImportReport), ImportError> {
    let mut zip = zip::ZipArchive::new(reader).map_err(|e| ImportError::NotZip(e.to_string()))?;
    let total = zip.len();
    if total > limits.max_entries {
        return Err(ImportError::Refused(format!(
            "it has {total} entries, more than the {} a Strava export can have",
            limits.max_entries
        )));
    }
    let mut run = Run {
        limits: *limits,
        removed: BTreeMap::new(),
        skipped: BTreeMap::new(),
        expanded: 0,
        largest: 0,
        with_streams: 0,
        samples: 0,
    };

    // Entry names, once, with whether each is safe; activities.csv and profile.csv first.
    let mut names = Vec::with_capacity(total);
    for i in 0..total {
        let entry = zip.by_index_raw(i).map_err(|e| ImportError::NotZip(e.to_string()))?;
        let (name, safe) = match entry.name() {
            Ok(n) => (n.into_owned(), entry.enclosed_name().is_some()),
            Err(_) => (String::from_utf8_lossy(entry.name_raw()).into_owned(), false),
        };
        // Never written to disk here, but a name that climbs out is not Strava's: skip it.
        let safe = safe
            && !name.contains('\\')
            && !name.starts_with('/')
            && !name.split('/').any(|part| part == ".." || part.contains(':'));
        names.push((name, safe, entry.compressed_size()));
    }
    let find =
        |wanted: &str| names.iter().position(|(n, safe, _)| *safe && strip_root(n) == wanted);
    let csv_index = find("activities.csv").ok_or(ImportError::NotStravaExport)?;
    let profile_index = find("profile.csv");
    let csv_bytes = run.read_entry(&mut zip, csv_index)?.map_err(ImportError::BadActivities)?;
    let activities = csvread::activities(&csv_bytes, limits.max_activities, &mut run.removed)
        .map_err(ImportError::BadActivities)?;
    drop(csv_bytes);
    let athlete = match profile_index {
        Some(i) => match run.read_entry(&mut zip, i)? {
            Ok(bytes) => csvread::profile(&bytes, &mut run.removed),
            Err(reason) => {
                run.skip(format!("the profile could not be read: {reason}"));
                csvread::Athlete::default()
            }
        },
        None => csvread::Athlete::default(),
    };
    let mut doc = Document::<S>::start(&athlete, activities)?;

    // Activity files by their path in the archive.
    let mut by_file: HashMap<String, usize> = HashMap::new();
    for (i, a) in doc.activities.iter().enumerate() {
        if let Some(f) = &a.filename {
            by_file.insert(f.clone(), i);
        }
    }

    let mut bytes_done = 0u64;
    for (i, (name, safe, compressed)) in names.iter().enumerate() {
        bytes_done += compressed;
        if i != csv_index && Some(i) != profile_index {
            if !safe {
                run.skip(
                    "an entry with an unsafe name (../ or an absolute path) was skipped".into(),
                );
            } else if name.ends_with('/') {
                // A directory: nothing in it.
            } else if let Some(&a) = by_file.get(strip_root(name)) {
                if doc.activities[a].file_done {
                    run.skip(
                        "an activity file was in the archive twice; the first copy was used".into(),
                    );
                } else {
                    let track = run.activity_file(&mut zip, i, strip_root(name))?;
                    doc.file_read(a, track, &mut run)?;
                }
            } else {
                run.count_dropped_file(strip_root(name));
            }
        }
        progress(Progress {
            entries_done: i + 1,
            entries_total: total,
            bytes_done,
            bytes_total: archive_bytes,
        });
    }
    let missing = doc.finish(&mut run)?;
    for _ in 0..missing {
        run.skip("an activity file named in activities.csv is missing from the archive".into());
    }
    let activity_count = doc.activities.len();
    let document = doc.out;
    let output_bytes = document.len();

    let mut removed: Vec<Removed> = run
        .removed
        .into_iter()
        .map(|(kind, (count, paths))| Removed {
            text: format!("{} {}", thousands(count), kind),
            kind,
            count,
            paths: paths.into_iter().collect(),
        })
        .collect();
    removed.sort_by(|a, b| b.count.cmp(&a.count).then(a.kind.cmp(&b.kind)));
    Ok((
        document,
        ImportReport {
            version: scrub::SCRUB_VERSION.to_owned(),
            activities: activity_count,
            activities_with_streams: run.with_streams,
            samples: run.samples,
            removed,
            skipped: run
                .skipped
                .into_iter()
                .map(|(reason, count)| Skipped { reason, count })
                .collect(),
            entries: total,
            archive_bytes,
            expanded_bytes: run.expanded,
            largest_entry_bytes: run.largest,
            output_bytes,
        },
    ))
}

/// Removed things by kind: count and the places they were found.
pub(crate) type RemovedTally = BTreeMap<String, (u64, std::collections::BTreeSet<String>)>;

/// Adds `n` removed things of `kind` found at `path`.
pub(crate) fn tally(removed: &mut RemovedTally, kind: &str, path: &str, n: u64) {
    if n == 0 {
        return;
    }
    let e = removed.entry(kind.to_owned()).or_default();
    e.0 += n;
    e.1.insert(path.to_owned());
}

struct Run {
    limits: ImportLimits,
    removed: RemovedTally,
    skipped: BTreeMap<String, u64>,
    expanded: u64,
    largest: u64,
    with_streams: usize,
    samples: u64,
}

impl Run {
    fn count(&mut self, kind: &str, path: &str, n: u64) {
        tally(&mut self.removed, kind, path, n);
    }

    fn skip(&mut self, reason: String) {
        *self.skipped.entry(reason).or_default() += 1;
    }

    /// Decompresses entry `i` within the limits: `Ok(Err(reason))` for an entry to skip,
    /// `Err` when the whole archive must be refused.
    fn read_entry<R: Read + Seek>(
        &mut self,
        zip: &mut zip::ZipArchive<R>,
        i: usize,
    ) -> Result<Result<Vec<u8>, String>, ImportError> {
        let mut entry = match zip.by_index(i) {
            Ok(e) => e,
            Err(e) => return Ok(Err(format!("it cannot be read ({e})"))),
        };
        let compressed = entry.compressed_size();
        let bytes = self.bounded_read(&mut entry, compressed);
        Ok(bytes)
    }

    /// Reads all of `reader` (decompressing), refusing more than the entry limit, the ratio
    /// limit against `compressed`, or the total limit.
    fn bounded_read(&mut self, reader: &mut dyn Read, compressed: u64) -> Result<Vec<u8>, String> {
        let cap = self.limits.max_entry_bytes;
        let mut out = Vec::new();
        let mut buf = vec![0u8; 64 << 10];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => return Err(format!("it is damaged ({e})")),
            };
            out.extend_from_slice(&buf[..n]);
            let len = out.len() as u64;
            if len > cap {
                return Err(format!("it expands to more than {} MiB", cap >> 20));
            }
            if len > (1 << 20) && len / compressed.max(1) > self.limits.max_ratio {
                return Err(format!(
                    "it expands more than {} times (a zip bomb?)",
                    self.limits.max_ratio
                ));
            }
            if self.expanded + len > self.limits.max_total_bytes {
                return Err(format!(
                    "the archive expands to more than {} GiB in all",
                    self.limits.max_total_bytes >> 30
                ));
            }
        }
        self.expanded += out.len() as u64;
        self.largest = self.largest.max(out.len() as u64);
        Ok(out)
    }

    /// Reads an activity file into its samples, or skips it with a reason (`None`). Its
    /// decompressed bytes are dropped before this returns: only the compact series are kept.
    fn activity_file<R: Read + Seek>(
        &mut self,
        zip: &mut zip::ZipArchive<R>,
        i: usize,
        name: &str,
    ) -> Result<Option<Track>, ImportError> {
        let lower = name.to_ascii_lowercase();
        let (base, gz) = match lower.strip_suffix(".gz") {
            Some(b) => (b, true),
            None => (lower.as_str(), false),
        };
        let format = if base.ends_with(".fit") {
            Format::Fit
        } else if base.ends_with(".gpx") {
            Format::Gpx
        } else if base.ends_with(".tcx") {
            Format::Tcx
        } else {
            self.skip("an activity file of an unknown format was skipped".into());
            return Ok(None);
        };
        let mut bytes = match self.read_entry(zip, i)? {
            Ok(b) => b,
            Err(reason) => {
                self.skip(format!("an activity file was skipped: {reason}"));
                return Ok(None);
            }
        };
        if gz {
            let compressed = bytes.len() as u64;
            let mut dec = flate2::read::GzDecoder::new(&bytes[..]);
            match self.bounded_read(&mut dec, compressed) {
                Ok(b) => bytes = b,
                Err(reason) => {
                    self.skip(format!("a gzipped activity file was skipped: {reason}"));
                    return Ok(None);
                }
            }
        }
        let parsed = match format {
            Format::Fit => fit::read(&bytes, self.limits.max_samples, &mut self.removed),
            Format::Gpx => xml::read_gpx(&bytes, self.limits.max_samples, &mut self.removed),
            Format::Tcx => xml::read_tcx(&bytes, self.limits.max_samples, &mut self.removed),
        };
        drop(bytes);
        match parsed {
            Ok(track) => Ok(Some(track)),
            Err(reason) => {
                self.skip(format!("an activity file was skipped: {reason}"));
                Ok(None)
            }
        }
    }

    /// Counts an entry that is not imported, by what kind of thing it holds.
    fn count_dropped_file(&mut self, name: &str) {
        let lower = name.to_ascii_lowercase();
        let top = lower.split('/').next().unwrap_or("");
        let (kind, path) = match top {
            "media" => ("photos and videos", "media/"),
            "routes" => ("routes", "routes/"),
            "activities" => ("activity files not listed in activities.csv", "activities/"),
            "messaging" | "messages" => ("files of messages", "messaging/"),
            "comments.csv" => ("files of comments", "comments.csv"),
            "clubs.csv" | "clubs" => ("files of clubs", "clubs.csv"),
            "followers.csv" | "following.csv" | "blocks.csv" | "contacts.csv" => {
                ("files of followers and contacts", "followers.csv, following.csv, ...")
            }
            "bikes.csv" | "shoes.csv" | "components.csv" => {
                ("files of gear", "bikes.csv, shoes.csv, ...")
            }
            _ => ("other files", "other files"),
        };
        self.count(kind, path, 1);
    }
}

#[derive(Clone, Copy)]
enum Format {
    Fit,
    Gpx,
    Tcx,
}

/// Some exports nest everything under one folder (`export_12345/activities.csv`).
fn strip_root(name: &str) -> &str {
    match name.split_once('/') {
        Some((first, rest)) if first.starts_with("export_") => rest,
        _ => name,
    }
}

/// The scrubbed document, written as the archive is read: each activity is built in Strava API
/// shape and passed through the scrubber as soon as its file is read, and is appended in
/// `activities.csv` order (one that comes early waits, scrubbed, for those before it). The
/// result is byte for byte the keyless scrub of the whole document at once: the scrubber
/// filters each element of `activities` on its own.
struct Document<S> {
    /// The document so far: the athlete block and the activities up to `next`.
    out: S,
    /// What follows the activities (`],"anonymization":{...}}`).
    tail: String,
    activities: Vec<csvread::Activity>,
    /// Scrubbed activities read ahead of their turn.
    ready: Vec<Option<String>>,
    /// The first activity not yet in `out`.
    next: usize,
}

/// How a one-activity document scrubs: `{"activities":[` + the activity + [`Document::tail`].
const ONE_ACTIVITY: &str = "{\"activities\":[";

impl<S: Sink> Document<S> {
    fn start(
        athlete: &csvread::Athlete,
        activities: Vec<csvread::Activity>,
    ) -> Result<Self, ImportError> {
        let mut head = String::from("{\"athlete\":");
        write_athlete(&mut head, athlete);
        head.push_str(",\"activities\":[]}");
        let mut out = scrub::scrub_keyless(head.as_bytes())?.document;
        let empty = scrub::scrub_keyless(b"{\"activities\":[]}")?.document;
        let tail = empty.strip_prefix(ONE_ACTIVITY).ok_or(ImportError::Assembly)?.to_owned();
        // The scrubbed head ends with the same tail: cut it off, keeping `[`.
        if !out.ends_with(&tail) {
            return Err(ImportError::Assembly);
        }
        out.truncate(out.len() - tail.len());
        let ready = activities.iter().map(|_| None).collect();
        let mut sink = S::default();
        sink.push_str(&out);
        Ok(Document { out: sink, tail, activities, ready, next: 0 })
    }

    /// Activity `a`'s file was read (`Some`) or skipped (`None`).
    fn file_read(
        &mut self,
        a: usize,
        track: Option<Track>,
        run: &mut Run,
    ) -> Result<(), ImportError> {
        self.activities[a].file_done = true;
        if let Some(track) = track {
            run.with_streams += 1;
            run.samples += track.len() as u64;
            self.ready[a] = Some(self.scrubbed(a, Some(&track), run)?);
        }
        self.flush(run)
    }

    /// Appends the activities whose turn has come and that are done.
    fn flush(&mut self, run: &mut Run) -> Result<(), ImportError> {
        while let Some(a) = self.activities.get(self.next) {
            if a.filename.is_some() && !a.file_done {
                break;
            }
            let json = match self.ready[self.next].take() {
                Some(json) => json,
                None => self.scrubbed(self.next, None, run)?,
            };
            if self.next > 0 {
                self.out.push_str(",");
            }
            self.out.push_str(&json);
            self.next += 1;
        }
        Ok(())
    }

    /// Appends the rest (activities whose file never came, without streams) and the tail;
    /// returns how many files were missing.
    fn finish(&mut self, run: &mut Run) -> Result<usize, ImportError> {
        let mut missing = 0;
        for a in &mut self.activities {
            if a.filename.is_some() && !a.file_done {
                a.file_done = true;
                missing += 1;
            }
        }
        self.flush(run)?;
        self.out.push_str(&self.tail);
        Ok(missing)
    }

    /// Activity `a` (with its samples), scrubbed alone; streams the policy drops (altitude,
    /// temperature) are counted as removed samples.
    fn scrubbed(
        &self,
        a: usize,
        track: Option<&Track>,
        run: &mut Run,
    ) -> Result<String, ImportError> {
        let mut raw = String::from(ONE_ACTIVITY);
        write_activity(&mut raw, &self.activities[a], track);
        raw.push_str("]}");
        let scrubbed = scrub::scrub_keyless(raw.as_bytes())?;
        drop(raw);
        let samples = track.map_or(0, |t| t.len() as u64);
        for path in &scrubbed.report.removed {
            // "/activities/0/streams/{type}": the whole stream, i.e. that activity's samples.
            if let Some(stream) = path.strip_prefix("/activities/0/streams/")
                && !stream.contains('/')
            {
                let kind = match stream {
                    "altitude" => "altitude samples",
                    "temp" => "temperature samples",
                    _ => "other samples",
                };
                run.count(kind, "activity files: samples", samples);
            }
        }
        let mut json = scrubbed.document;
        if !json.starts_with(ONE_ACTIVITY) || !json.ends_with(&self.tail) {
            return Err(ImportError::Assembly);
        }
        json.truncate(json.len() - self.tail.len());
        json.drain(..ONE_ACTIVITY.len());
        Ok(json)
    }
}

/// A series of one activity file: every sample as JSON number text (or `null`), joined by
/// commas, in one buffer; written lazily, so a series that is never set costs nothing.
#[derive(Debug, Default, Clone, PartialEq)]
struct Series {
    text: String,
    /// Samples written to `text` (those after it are `null`).
    filled: usize,
    /// Where the last written sample's text starts.
    last: usize,
    /// Whether the last written sample is `null`.
    last_null: bool,
    /// Samples that are not `null`.
    values: usize,
}

impl Series {
    /// Makes sample `n - 1` the last one written (padding with `null`).
    fn reach(&mut self, n: usize) {
        if self.filled >= n {
            return;
        }
        while self.filled < n {
            if self.filled > 0 {
                self.text.push(',');
            }
            self.last = self.text.len();
            self.text.push_str("null");
            self.filled += 1;
        }
        self.last_null = true;
    }

    fn put(&mut self, n: usize, value: &str) {
        if n == 0 {
            return;
        }
        self.reach(n);
        if self.last_null {
            self.values += 1;
        }
        self.text.truncate(self.last);
        self.text.push_str(value);
        self.last_null = false;
    }

    fn clear(&mut self, n: usize) {
        if n == 0 || self.filled < n || self.last_null {
            return;
        }
        self.values -= 1;
        self.text.truncate(self.last);
        self.text.push_str("null");
        self.last_null = true;
    }
}

/// The series of an activity file besides time, in the order they are written out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slot {
    /// Metres since the start.
    Distance,
    Altitude,
    Heartrate,
    Watts,
    Cadence,
    /// Metres per second.
    Speed,
    Temp,
}

/// Stream names, by [`Slot`].
const STREAM_NAMES: [&str; 7] =
    ["distance", "altitude", "heartrate", "watts", "cadence", "velocity_smooth", "temp"];

/// One activity file's samples, aligned: index `i` of every series is sample `i`. Compact: a
/// time is 8 bytes, another value its JSON text and a comma.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Track {
    /// Unix seconds; NaN where a sample has no time.
    time: Vec<f64>,
    series: [Series; 7],
}

impl Track {
    pub(crate) fn len(&self) -> usize {
        self.time.len()
    }

    /// Adds an empty sample to every series.
    pub(crate) fn push_empty(&mut self) {
        self.time.push(f64::NAN);
    }

    /// The last sample's time.
    pub(crate) fn set_time(&mut self, t: f64) {
        if let Some(slot) = self.time.last_mut() {
            *slot = t;
        }
    }

    pub(crate) fn clear_time(&mut self) {
        self.set_time(f64::NAN);
    }

    /// The last sample's value of a series, from JSON number text.
    pub(crate) fn set_json(&mut self, slot: Slot, json: &str) {
        let n = self.len();
        self.series[slot as usize].put(n, json);
    }

    /// The last sample's value of a series, from text that denotes a number (copied byte for
    /// byte when it is a JSON number, see [`json_number`]); anything else leaves it as it was.
    pub(crate) fn set_text(&mut self, slot: Slot, text: &str) {
        let t = text.trim();
        if is_json_number(t) && t.parse::<f64>().is_ok_and(f64::is_finite) {
            self.set_json(slot, t);
        } else if let Some(v) = json_number(t) {
            self.set_json(slot, &v);
        }
    }

    /// The last sample's value of a series, a number.
    pub(crate) fn set_number(&mut self, slot: Slot, v: f64) {
        if v.is_finite() {
            self.set_json(slot, &format_f64(v));
        }
    }

    /// The first sample's time (Unix seconds).
    #[cfg(test)]
    pub(crate) fn first_time(&self) -> Option<f64> {
        self.time.first().copied().filter(|t| !t.is_nan())
    }

    /// Empties the last sample's value of a series.
    pub(crate) fn clear(&mut self, slot: Slot) {
        let n = self.len();
        self.series[slot as usize].clear(n);
    }
}

/// The JSON number text of `text`: itself when it already is one (so a value is copied byte
/// for byte), else the shortest form of the number it denotes; `None` for anything else.
pub(crate) fn json_number(text: &str) -> Option<String> {
    let t = text.trim();
    let v: f64 = t.parse().ok()?;
    if !v.is_finite() {
        return None;
    }
    if is_json_number(t) { Some(t.to_owned()) } else { Some(format_f64(v)) }
}

/// The shortest text that reads back as `v` (an integer without a fraction).
pub(crate) fn format_f64(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        serde_json::Number::from_f64(v).map_or_else(|| "null".into(), |n| n.to_string())
    }
}

fn is_json_number(t: &str) -> bool {
    let b = t.as_bytes();
    let mut i = 0;
    if b.first() == Some(&b'-') {
        i += 1;
    }
    let int_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let int_len = i - int_start;
    if int_len == 0 || (int_len > 1 && b[int_start] == b'0') {
        return false;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let s = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == s {
            return false;
        }
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        let s = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == s {
            return false;
        }
    }
    i == b.len()
}

/// `1234567` as `1,234,567`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The athlete block in Strava API shape, for the scrubber.
fn write_athlete(out: &mut String, athlete: &csvread::Athlete) {
    out.push('{');
    let mut first = true;
    let mut member = |out: &mut String, k: &str, v: &str| {
        if !std::mem::take(&mut first) {
            out.push(',');
        }
        out.push('"');
        out.push_str(k);
        out.push_str("\":");
        out.push_str(v);
    };
    if let Some(sex) = &athlete.sex {
        member(out, "sex", &json_string(sex));
    }
    if let Some(w) = &athlete.weight {
        member(out, "weight", w);
    }
    out.push('}');
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "null".into())
}

/// An activity in Strava API shape, for the scrubber.
fn write_activity(out: &mut String, a: &csvread::Activity, track: Option<&Track>) {
    out.push('{');
    let mut first = true;
    let mut member = |out: &mut String, k: &str| {
        if !std::mem::take(&mut first) {
            out.push(',');
        }
        out.push('"');
        out.push_str(k);
        out.push_str("\":");
    };
    if let Some(d) = &a.start_date {
        member(out, "start_date");
        out.push_str(&json_string(d));
    }
    if let Some(t) = &a.sport {
        member(out, "type");
        out.push_str(&json_string(t));
        member(out, "sport_type");
        out.push_str(&json_string(t));
    }
    if let Some(c) = a.commute {
        member(out, "commute");
        out.push_str(if c { "true" } else { "false" });
    }
    for (k, v) in &a.metrics {
        member(out, k);
        out.push_str(v);
    }
    if let Some(track) = track {
        member(out, "streams");
        write_streams(out, track);
    }
    out.push('}');
}

fn write_streams(out: &mut String, t: &Track) {
    out.push('{');
    let mut first = true;
    let n = t.len();
    let mut stream = |out: &mut String, name: &str, data: &mut dyn FnMut(&mut String)| {
        if !std::mem::take(&mut first) {
            out.push(',');
        }
        out.push('"');
        out.push_str(name);
        out.push_str("\":{\"data\":[");
        data(out);
        out.push_str("],\"series_type\":\"time\",\"original_size\":");
        out.push_str(&n.to_string());
        out.push_str(",\"resolution\":\"high\"}");
    };
    if let Some(t0) = t.time.iter().copied().find(|v| !v.is_nan()) {
        stream(out, "time", &mut |out| {
            for (i, v) in t.time.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                if v.is_nan() {
                    out.push_str("null");
                } else {
                    out.push_str(&format_f64(v - t0));
                }
            }
        });
    }
    for (name, series) in STREAM_NAMES.iter().zip(&t.series) {
        if series.values > 0 {
            stream(out, name, &mut |out| {
                out.push_str(&series.text);
                for i in series.filled..n {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str("null");
                }
            });
        }
    }
    out.push('}');
}

/// The importer's parsers one by one, for the fuzz targets (fuzz/fuzz_targets/import.rs):
/// each returns the samples read or why the input was refused.
#[doc(hidden)]
pub mod fuzzing {
    use super::{RemovedTally, csvread, fit, xml};

    /// A GPX file's sample count.
    pub fn gpx(bytes: &[u8]) -> Result<usize, String> {
        xml::read_gpx(bytes, 1 << 20, &mut RemovedTally::new()).map(|t| t.len())
    }

    /// A TCX file's sample count.
    pub fn tcx(bytes: &[u8]) -> Result<usize, String> {
        xml::read_tcx(bytes, 1 << 20, &mut RemovedTally::new()).map(|t| t.len())
    }

    /// A FIT file's sample count.
    pub fn fit(bytes: &[u8]) -> Result<usize, String> {
        fit::read(bytes, 1 << 20, &mut RemovedTally::new()).map(|t| t.len())
    }

    /// `activities.csv`'s row count.
    pub fn activities_csv(bytes: &[u8]) -> Result<usize, String> {
        csvread::activities(bytes, 1 << 20, &mut RemovedTally::new()).map(|a| a.len())
    }
}
