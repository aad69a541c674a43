//! `kompass scrub`: rider data in, the scrubbed document out, and what was removed.

use std::io::Write;

use kompass_core::scrub::{self, ScrubReport};

use super::{CliError, Output, read_input};
use crate::cli::{Cli, ScrubArgs};
use crate::rider::{self, RiderError};

/// `kompass scrub`: the scrubbed document on stdout; with `--report`, the removed paths on
/// stderr (or, with `--json`, `{"document": ..., "report": ...}` on stdout).
pub fn scrub(cli: &Cli, args: &ScrubArgs, out: &Output) -> Result<(), CliError> {
    let config = crate::env::load(cli.data_dir.as_deref())?;
    let key = match rider::pseudonym_key(&config) {
        Ok(k) => Some(k),
        // Scrubbing stores nothing, so it works without the key: ids are then dropped
        // (the anonymization block says "pseudonym": "none").
        Err(RiderError::MissingKey(_)) => {
            eprintln!(
                "note: KOMPASS_PSEUDONYM_KEY is not set, so athlete and activity ids are dropped, not pseudonymised"
            );
            None
        }
        Err(e) => return Err(e.into()),
    };
    let input = read_input(args.file.as_deref())?;
    let scrubbed = match (&key, args.report) {
        (Some(key), true) => scrub::scrub(&input, key),
        (None, true) => scrub::scrub_keyless(&input),
        // Without --report no path is shown: only count them (the document is the same).
        // The document is written into a buffer advised for huge pages (crate::bigbuf), with
        // room for the newline below; the output is about a third of a Strava export.
        (key, false) => scrub::scrub_counting_into(
            &input,
            key.as_ref(),
            crate::bigbuf::string_with_capacity(input.len() / 2 + 1),
        ),
    }
    .map_err(RiderError::from)?;
    drop(input);
    let mut text = if args.report && out.is_json() {
        let report = serde_json::to_string(&scrubbed.report)
            .map_err(|e| CliError::Other(format!("could not encode the report as JSON: {e}")))?;
        // The document is already JSON: embedded as is, not parsed and written again.
        format!("{{\"document\":{},\"report\":{report}}}", scrubbed.document)
    } else {
        scrubbed.document
    };
    // With the newline at its end, stdout's line buffering finds it at once instead of
    // searching the whole document for one (a large document's buffer grows in place).
    text.push('\n');
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| CliError::Other(format!("could not write to standard output: {e}")))?;
    if args.report && !out.is_json() {
        eprint!("{}", report_text(&scrubbed.report));
    }
    Ok(())
}

/// The report for people: a summary line, then one removed path a line.
pub fn report_text(r: &ScrubReport) -> String {
    let mut s = format!(
        "removed {} path{} ({}, key {}; {} activit{} kept, {} removed; {} -> {} bytes)\n",
        r.removed_count,
        if r.removed_count == 1 { "" } else { "s" },
        r.version,
        r.key_id.as_deref().unwrap_or("none: ids dropped"),
        r.activities_kept,
        if r.activities_kept == 1 { "y" } else { "ies" },
        r.activities_removed,
        r.input_bytes,
        r.output_bytes,
    );
    for p in &r.removed {
        s.push_str("  ");
        s.push_str(p);
        s.push('\n');
    }
    s
}
