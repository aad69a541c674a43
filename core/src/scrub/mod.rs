//! PII removal for rider data (athlete, activities, stats, zones) before it is stored.
//!
//! [`scrub`] keeps what the allow-list (`scrub/allow.rs`) names and drops everything else, at any
//! depth: a field Strava adds tomorrow is dropped until someone decides it is safe. A value of
//! the wrong shape for a known field is dropped too; the scrubber never returns input it does
//! not understand. The athlete id and activity ids are replaced by keyed pseudonyms
//! (HMAC-SHA256, see [`PseudonymKey`]); names, free text, GPS, polylines, location, time zone,
//! devices, photos, gear, segment efforts and laps are removed. Kept numbers are copied byte
//! for byte, so they round-trip exactly.
//!
//! Filtering happens while parsing: dropped subtrees are skipped, never built, so a scrub
//! costs less than parsing the same bytes into a `serde_json::Value` and writing them back.
//!
//! Accepted input, as UTF-8 JSON (a leading byte-order mark is ignored):
//! - a rider document: an object with `basic_info` or `athlete`, `activities` or
//!   `recent_activities`, `stats`, `zones`, and KOMpass's computed `fitness_metrics`,
//!   `power_analysis`, `training_load`; any other top-level key is dropped and reported;
//! - a bare array of activities (Strava's `GET /athlete/activities`), written out as
//!   `{"activities": [...], "anonymization": {...}}`. A bare athlete object is read as a rider
//!   document, so wrap it as `{"athlete": {...}}` first.
//!
//! The output is compact JSON: kept members in input order, `id` replaced in place by
//! `user_hash` (athlete) or `activity_hash` (activity), and a last top-level member
//! `"anonymization": {"pii_removed": true, "version": SCRUB_VERSION, "key_id": ..., "pseudonym":
//! "hmac-sha256"}`. Scrubbing a scrubbed document gives the same document.
//!
//! The [`ScrubReport`] lists every removed path as a JSON pointer into the input, in document
//! order (a removed subtree once, at its top). Unknown key names appear in it verbatim, so the
//! report is for the data's owner (shown next to the upload), not for storage.

mod allow;
mod filter;
mod pseudonym;

#[cfg(any(test, feature = "corpus"))]
pub mod corpus;

#[cfg(test)]
mod tests;

use serde::Serialize;

pub use pseudonym::{MAX_KEY_ID_BYTES, MIN_SECRET_BYTES, PseudonymKey, PseudonymKeyError};

/// The version of the scrub rules, written into every anonymization block and report.
pub const SCRUB_VERSION: &str = "kompass-scrub/1";

/// A scrubbed document and what was removed from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scrubbed {
    /// The scrubbed document as compact JSON.
    pub document: String,
    /// What was removed and kept.
    pub report: ScrubReport,
}

impl Scrubbed {
    /// The scrubbed document as a `serde_json::Value` (parses [`Scrubbed::document`]).
    pub fn to_value(&self) -> serde_json::Result<serde_json::Value> {
        serde_json::from_str(&self.document)
    }
}

/// What a scrub removed and kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScrubReport {
    /// The scrub rules applied ([`SCRUB_VERSION`]).
    pub version: String,
    /// The id of the pseudonym key used; `None` for a keyless scrub (ids dropped).
    pub key_id: Option<String>,
    /// The athlete's pseudonym, when the input held an athlete id (or an earlier pseudonym).
    pub user_hash: Option<String>,
    /// Every removed path, a JSON pointer into the input, in document order (empty from
    /// [`scrub_counting`]).
    pub removed: Vec<String>,
    /// How many paths were removed (`removed.len()`, but for [`scrub_counting`]).
    pub removed_count: usize,
    /// Activities kept.
    pub activities_kept: usize,
    /// Activities removed because they were not objects.
    pub activities_removed: usize,
    /// Size of the input in bytes.
    pub input_bytes: usize,
    /// Size of the scrubbed document in bytes.
    pub output_bytes: usize,
}

/// Why input could not be scrubbed. Nothing is returned in that case: never the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScrubError {
    /// The input is not UTF-8 text.
    #[error(
        "the rider data is not UTF-8 text (invalid byte at offset {offset}); \
         provide the Strava export as JSON"
    )]
    NotUtf8 {
        /// Byte offset of the first invalid byte.
        offset: usize,
    },
    /// The input is not JSON.
    #[error("the rider data is not valid JSON: {message}{hint}; provide the Strava export as JSON")]
    NotJson {
        /// Line of the error (1-based).
        line: usize,
        /// Column of the error (1-based).
        column: usize,
        /// What the parser found.
        message: String,
        /// Advice for a known cause, or empty.
        hint: &'static str,
    },
    /// The input is JSON, but neither an object nor an array.
    #[error(
        "the rider data is a JSON {found}, not a rider document; expected an object such as \
         {{\"basic_info\": {{...}}, \"activities\": [...]}} or an array of activities"
    )]
    NotADocument {
        /// The kind of JSON value found (`string`, `number`, ...).
        found: &'static str,
    },
}

impl ScrubError {
    fn from_json(err: &serde_json::Error, input: &str) -> Self {
        let (line, column) = (err.line(), err.column());
        // Python's json.dump writes NaN and Infinity, which JSON does not allow.
        let at = byte_offset(input, line, column);
        let rest = at.and_then(|at| input.get(at..)).unwrap_or("");
        let hint = if ["NaN", "Infinity", "-Infinity"]
            .iter()
            .any(|bad| rest.starts_with(bad))
        {
            " (NaN and Infinity are not JSON: write null instead, e.g. json.dump(..., allow_nan=False) after replacing them)"
        } else {
            ""
        };
        ScrubError::NotJson {
            line,
            column,
            message: err.to_string(),
            hint,
        }
    }
}

/// The byte offset of serde_json's 1-based (line, column) position of a character.
fn byte_offset(input: &str, line: usize, column: usize) -> Option<usize> {
    let line_start = if line <= 1 {
        0
    } else {
        input
            .match_indices('\n')
            .nth(line - 2)
            .map(|(i, _)| i + 1)?
    };
    Some(line_start + column.checked_sub(1)?)
}

/// Removes PII from rider data (UTF-8 JSON bytes), pseudonymizing ids with `key`.
///
/// Returns the scrubbed document and a report, or an error when the input is not JSON or not
/// an object or array (see the [module documentation](self) for the accepted shapes).
pub fn scrub(input: &[u8], key: &PseudonymKey) -> Result<Scrubbed, ScrubError> {
    scrub_with(input, Some(key))
}

/// Removes PII without a pseudonym key: athlete and activity ids are dropped instead of
/// pseudonymized. For the browser, which must never hold the key; the server scrubs again
/// with the key when it stores rider data.
pub fn scrub_keyless(input: &[u8]) -> Result<Scrubbed, ScrubError> {
    scrub_with(input, None)
}

/// The same scrub as [`scrub`] (with a key) or [`scrub_keyless`] (without), for callers that
/// show no list of removed paths: the document is identical and `report.removed_count` is
/// exact, but `report.removed` is left empty, which saves building a string per removed path.
pub fn scrub_counting(input: &[u8], key: Option<&PseudonymKey>) -> Result<Scrubbed, ScrubError> {
    scrub_paths(input, key, false)
}

fn scrub_with(input: &[u8], key: Option<&PseudonymKey>) -> Result<Scrubbed, ScrubError> {
    scrub_paths(input, key, true)
}

fn scrub_paths(
    input: &[u8],
    key: Option<&PseudonymKey>,
    list: bool,
) -> Result<Scrubbed, ScrubError> {
    let input = input.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(input);
    let text = std::str::from_utf8(input).map_err(|e| ScrubError::NotUtf8 {
        offset: e.valid_up_to(),
    })?;
    let (filter, root) = filter::run(text, key, list).map_err(|e| ScrubError::from_json(&e, text))?;
    if let filter::Root::Other(found) = root {
        return Err(ScrubError::NotADocument { found });
    }
    let report = ScrubReport {
        version: SCRUB_VERSION.to_owned(),
        key_id: key.map(|k| k.key_id().to_owned()),
        user_hash: filter.user_hash,
        removed_count: filter.removed_count,
        removed: filter.removed,
        activities_kept: filter.activities_kept,
        activities_removed: filter.activities_removed,
        input_bytes: input.len(),
        output_bytes: filter.out.len(),
    };
    Ok(Scrubbed {
        document: filter.out,
        report,
    })
}
