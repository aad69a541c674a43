//! The report in the two pieces a JS caller builds it from cheaply: its fields as a small JSON
//! text, and its removed paths as one text, one path per line.
//!
//! A report can list hundreds of thousands of paths. Written as JSON they are escaped byte by
//! byte and parsed string by string; as lines they are copied once and split once (the wasm
//! layer's `scrub` does this; its result is the same as `JSON.parse` of the whole report).
//! The rare path that holds a line end shows as one line too many, and the caller then builds
//! the list path by path.

use serde::Serialize;

use super::ScrubReport;

/// The separator of [`ScrubReport::removed_lines`].
pub const REMOVED_LINE_END: char = '\n';

/// [`ScrubReport`] with an empty `removed`, borrowed: the same fields in the same order.
#[derive(Serialize)]
struct Head<'a> {
    version: &'a str,
    key_id: Option<&'a str>,
    user_hash: Option<&'a str>,
    removed: [&'a str; 0],
    removed_count: usize,
    activities_kept: usize,
    activities_removed: usize,
    input_bytes: usize,
    output_bytes: usize,
}

impl ScrubReport {
    /// The report as JSON text, as `serde_json` writes it, but with `"removed":[]`: the paths
    /// come separately from [`ScrubReport::removed_lines`].
    pub fn head_json(&self) -> String {
        let head = Head {
            version: &self.version,
            key_id: self.key_id.as_deref(),
            user_hash: self.user_hash.as_deref(),
            removed: [],
            removed_count: self.removed_count,
            activities_kept: self.activities_kept,
            activities_removed: self.activities_removed,
            input_bytes: self.input_bytes,
            output_bytes: self.output_bytes,
        };
        // Strings, integers and `None`: nothing here can fail to serialise.
        serde_json::to_string(&head).unwrap_or_default()
    }

    /// The removed paths, joined by [`REMOVED_LINE_END`] (none after the last; no paths, no
    /// text). Split at that character, it gives back `removed` exactly when it gives
    /// `removed.len()` pieces: a key name may hold a line end, and then it gives more.
    pub fn removed_lines(&self) -> String {
        let mut out = String::with_capacity(self.removed.iter().map(|p| p.len() + 1).sum());
        for (i, path) in self.removed.iter().enumerate() {
            if i > 0 {
                out.push(REMOVED_LINE_END);
            }
            out.push_str(path);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scrub::{PseudonymKey, scrub, scrub_keyless};

    fn report(removed: &[&str]) -> ScrubReport {
        ScrubReport {
            version: crate::scrub::SCRUB_VERSION.to_owned(),
            key_id: Some("k1".to_owned()),
            user_hash: Some("k1:ab".to_owned()),
            removed: removed.iter().map(|p| (*p).to_owned()).collect(),
            removed_count: removed.len(),
            activities_kept: 3,
            activities_removed: 1,
            input_bytes: 100,
            output_bytes: 40,
        }
    }

    /// The lines split as a caller splits them: `None` when they do not give the paths back.
    fn split(r: &ScrubReport) -> Option<Vec<String>> {
        let lines = r.removed_lines();
        let removed: Vec<String> = match r.removed.len() {
            0 => vec![],
            _ => lines.split(REMOVED_LINE_END).map(str::to_owned).collect(),
        };
        (removed.len() == r.removed.len()).then_some(removed)
    }

    /// The head and the lines put back together are the report, as serde_json writes it.
    fn reassembled(r: &ScrubReport) -> Option<serde_json::Value> {
        let mut head: serde_json::Value = serde_json::from_str(&r.head_json()).unwrap();
        head["removed"] = split(r)?.into();
        Some(head)
    }

    #[test]
    fn head_and_lines_make_the_report_with_its_fields_in_order() {
        for r in [
            report(&[]),
            report(&["/a"]),
            report(&["/basic_info/firstname", "/activities/0/map", "/x~1y", "/\"q\"\\", "/é\t"]),
            ScrubReport { key_id: None, user_hash: None, ..report(&["/basic_info/id"]) },
        ] {
            let whole = serde_json::to_value(&r).unwrap();
            assert_eq!(reassembled(&r).unwrap(), whole);
            // Field order too: the text with the paths spliced back in is serde_json's text.
            let spliced = r.head_json().replace(
                "\"removed\":[]",
                &format!("\"removed\":{}", serde_json::to_string(&r.removed).unwrap()),
            );
            assert_eq!(spliced, serde_json::to_string(&r).unwrap());
        }
    }

    #[test]
    fn a_path_holding_the_separator_splits_into_more_lines_than_paths() {
        assert_eq!(report(&["/a", "/b"]).removed_lines(), "/a\n/b");
        assert_eq!(report(&["/a"]).removed_lines(), "/a");
        assert_eq!(report(&[]).removed_lines(), "");
        assert_eq!(split(&report(&["/a", "/b"])), Some(vec!["/a".to_owned(), "/b".to_owned()]));
        for paths in [&["/a", "/b\nc"][..], &["/a\n"], &["\n"], &["/a", "\n", "/b"]] {
            assert_eq!(split(&report(paths)), None, "{paths:?}");
        }
    }

    #[test]
    fn a_scrub_report_splits_back_into_its_paths() {
        let key = PseudonymKey::new("k1", b"a-report-test-secret-0123").unwrap();
        let input = br#"{"basic_info": {"id": 7, "firstname": "A", "a\nb": 1, "c/d~": 2},
                         "activities": [{"id": 1, "name": "x", "distance": 1.5}]}"#;
        let keyed = scrub(input, &key).unwrap().report;
        // A key name with a line break: the lines do not give the paths back.
        assert!(keyed.removed.iter().any(|p| p.contains('\n')));
        assert_eq!(split(&keyed), None);
        let plain = br#"{"basic_info": {"id": 7, "firstname": "A", "c/d~": 2},
                         "activities": [{"id": 1, "name": "x", "distance": 1.5}]}"#;
        for r in [scrub(plain, &key).unwrap().report, scrub_keyless(plain).unwrap().report] {
            assert!(r.removed.len() >= 2, "{:?}", r.removed);
            assert_eq!(reassembled(&r).unwrap(), serde_json::to_value(&r).unwrap());
        }
    }
}
