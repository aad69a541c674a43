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
//! "hmac-sha256"}`. Scrubbing a scrubbed document with the same key gives the same document.
//!
//! What is kept, what a pseudonym may look like and what each path into storage does with
//! rider data is stated once, in [`policy::POLICY`]. A pseudonym-shaped value in the input
//! (`{key id}:{64 hex}`) is kept only under the configured key's id ([`scrub`]); a keyless
//! scrub ([`scrub_keyless`]) and the server's scrub of data from outside ([`scrub_incoming`])
//! drop and report every one, since neither can tell a pseudonym from a smuggled name or an
//! unkeyed hash of the athlete id.
//!
//! The [`ScrubReport`] lists every removed path as a JSON pointer into the input, in document
//! order (a removed subtree once, at its top). Unknown key names appear in it verbatim, so the
//! report is for the data's owner (shown next to the upload), not for storage.

mod allow;
mod filter;
pub mod policy;
mod pseudonym;
mod report;

#[cfg(any(test, feature = "corpus"))]
pub mod corpus;

#[cfg(test)]
mod tests;

use serde::Serialize;

pub use policy::{POLICY, Policy, PseudonymRule, RiderHandling, RiderPath, USE_RIDER_SAVE};
pub use pseudonym::{MAX_KEY_ID_BYTES, MIN_SECRET_BYTES, PseudonymKey, PseudonymKeyError};
pub use report::REMOVED_LINE_END;

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
        let hint = if ["NaN", "Infinity", "-Infinity"].iter().any(|bad| rest.starts_with(bad)) {
            " (NaN and Infinity are not JSON: write null instead, e.g. json.dump(..., allow_nan=False) after replacing them)"
        } else {
            ""
        };
        ScrubError::NotJson { line, column, message: err.to_string(), hint }
    }
}

/// The byte offset of serde_json's 1-based (line, column) position of a character.
fn byte_offset(input: &str, line: usize, column: usize) -> Option<usize> {
    let line_start =
        if line <= 1 { 0 } else { input.match_indices('\n').nth(line - 2).map(|(i, _)| i + 1)? };
    Some(line_start + column.checked_sub(1)?)
}

/// Removes PII from rider data (UTF-8 JSON bytes), pseudonymizing ids with `key`.
///
/// Pseudonyms already in the input are kept only when written under `key`'s id (a document
/// this system scrubbed before); any other pseudonym-shaped value is dropped and reported.
/// Returns the scrubbed document and a report, or an error when the input is not JSON or not
/// an object or array (see the [module documentation](self) for the accepted shapes).
pub fn scrub(input: &[u8], key: &PseudonymKey) -> Result<Scrubbed, ScrubError> {
    scrub_with(input, Some(key), PseudonymRule::KeepUnder(key.key_id()), None)
}

/// Removes PII without a pseudonym key: athlete and activity ids, and every pseudonym-shaped
/// value, are dropped instead of pseudonymized. For the browser, which must never hold the
/// key; the server scrubs again with the key when it stores rider data.
pub fn scrub_keyless(input: &[u8]) -> Result<Scrubbed, ScrubError> {
    scrub_with(input, None, PseudonymRule::DropAll, None)
}

/// The server's scrub of rider data that reaches it from outside (the page's upload):
/// activity ids are pseudonymized with `key`; every pseudonym-shaped value and the athlete id
/// are dropped and reported, since the server can vouch for neither; the athlete block's
/// `user_hash` is the pseudonym of `user`, the authenticated user the data is stored for
/// ([`PseudonymKey::user_pseudonym`]). A document without an athlete block gets
/// `"athlete": {"user_hash": ...}`.
pub fn scrub_incoming(
    input: &[u8],
    key: &PseudonymKey,
    user: &str,
) -> Result<Scrubbed, ScrubError> {
    let subject = key.user_pseudonym(user);
    scrub_with(input, Some(key), PseudonymRule::DropAll, Some(&subject))
}

/// Why a path that stores only scrubbed rider data ([`RiderHandling::StoreIfScrubbed`])
/// refuses a document. Neither variant repeats any of the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotScrubbed {
    /// The input is not rider data at all.
    #[error("{0}; nothing was stored: {USE_RIDER_SAVE}")]
    Unscrubbable(ScrubError),
    /// The keyed scrub would change the document: it holds PII, fields the policy drops,
    /// pseudonyms under another key id, or is not in the scrubber's output form.
    #[error(
        "the rider data is not scrubbed under the current policy ({version}, key id {key_id}): \
         scrubbing would {what}; nothing was stored: {USE_RIDER_SAVE}"
    )]
    WouldChange {
        /// The scrub rules applied.
        version: &'static str,
        /// The configured key's id.
        key_id: String,
        /// How many paths the scrub would remove (the anonymization block, always rewritten,
        /// not counted).
        removed_count: usize,
        /// What the scrub would do, for people (counts only, never input text).
        what: String,
    },
}

/// The rule of [`RiderHandling::StoreIfScrubbed`]: `input` may be stored as given only when
/// the keyed scrub under the current policy returns it unchanged, byte for byte: a document
/// this system scrubbed with `key` (pseudonyms only under `key`'s id). Anything else, raw
/// exports and documents scrubbed under another key id or an older policy included, is
/// refused.
pub fn check_scrubbed(input: &[u8], key: &PseudonymKey) -> Result<(), NotScrubbed> {
    let out = scrub(input, key).map_err(NotScrubbed::Unscrubbable)?;
    if out.document.as_bytes() == input {
        return Ok(());
    }
    // The input's own anonymization block is always replaced (and reported): not a finding.
    let n = out.report.removed.iter().filter(|p| *p != "/anonymization").count();
    let what = if n == 0 {
        "rewrite it (it is not in the scrubber's compact output form)".to_owned()
    } else {
        format!("remove {n} field{}", if n == 1 { "" } else { "s" })
    };
    Err(NotScrubbed::WouldChange {
        version: SCRUB_VERSION,
        key_id: key.key_id().to_owned(),
        removed_count: n,
        what,
    })
}

/// The same scrub as [`scrub`] (with a key) or [`scrub_keyless`] (without), for callers that
/// show no list of removed paths: the document is identical and `report.removed_count` is
/// exact, but `report.removed` is left empty, which saves building a string per removed path.
pub fn scrub_counting(input: &[u8], key: Option<&PseudonymKey>) -> Result<Scrubbed, ScrubError> {
    scrub_counting_into(input, key, String::new())
}

/// [`scrub_counting`], writing the document into `out`: it is cleared and its allocation
/// kept (grown if it is too small), so the caller decides how the output's memory is
/// backed, e.g. by huge pages (`kompass scrub`). [`Scrubbed::document`] is `out`. An empty
/// `out` is given the capacity [`scrub_counting`] would give it.
pub fn scrub_counting_into(
    input: &[u8],
    key: Option<&PseudonymKey>,
    out: String,
) -> Result<Scrubbed, ScrubError> {
    match key {
        Some(k) => {
            scrub_paths(input, Some(k), PseudonymRule::KeepUnder(k.key_id()), None, false, out)
        }
        None => scrub_paths(input, None, PseudonymRule::DropAll, None, false, out),
    }
}

fn scrub_with(
    input: &[u8],
    key: Option<&PseudonymKey>,
    pseudonyms: PseudonymRule<'_>,
    subject: Option<&str>,
) -> Result<Scrubbed, ScrubError> {
    scrub_paths(input, key, pseudonyms, subject, true, String::new())
}

fn scrub_paths(
    input: &[u8],
    key: Option<&PseudonymKey>,
    pseudonyms: PseudonymRule<'_>,
    subject: Option<&str>,
    list: bool,
    out: String,
) -> Result<Scrubbed, ScrubError> {
    let input = input.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(input);
    let text =
        std::str::from_utf8(input).map_err(|e| ScrubError::NotUtf8 { offset: e.valid_up_to() })?;
    let (filter, root) = filter::run(text, key, pseudonyms, subject, list, out)
        .map_err(|e| ScrubError::from_json(&e, text))?;
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
    Ok(Scrubbed { document: filter.out, report })
}
