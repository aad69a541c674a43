//! The Strava bulk-export importer on arbitrary bytes: the first byte picks the parser (the
//! whole ZIP importer, GPX, TCX, FIT, activities.csv), the rest is its input. Beyond "no panic,
//! no hang, no unbounded allocation", an imported document must be a fixed point of the
//! keyless scrub (so it holds nothing the scrub policy drops) and carry no position.
#![no_main]

use kompass_core::import::{ImportLimits, fuzzing, import_strava_export_with};
use kompass_core::scrub::scrub_keyless;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, input)) = data.split_first() else { return };
    match which % 5 {
        0 => {
            // Small limits: the fuzzer's memory limit must not be what stops a zip bomb.
            let limits = ImportLimits {
                max_entry_bytes: 8 << 20,
                max_total_bytes: 32 << 20,
                max_samples: 100_000,
                ..ImportLimits::default()
            };
            let mut entries = 0usize;
            if let Ok(out) = import_strava_export_with(input, &limits, &mut |p| entries = p.entries_done) {
                let again = scrub_keyless(out.document.as_bytes()).expect("the document scrubs");
                assert_eq!(again.document, out.document, "the document is a scrub fixed point");
                for never in ["latlng", "\"lat\"", "\"lon\"", "position"] {
                    assert!(!out.document.contains(never), "{never} in the document");
                }
                assert_eq!(entries, out.report.entries);
            }
        }
        1 => drop(fuzzing::gpx(input)),
        2 => drop(fuzzing::tcx(input)),
        3 => drop(fuzzing::fit(input)),
        _ => drop(fuzzing::activities_csv(input)),
    }
});
