//! The floor for `kompass scrub` (bench/scrub_process.py): a whole process that reads a file
//! and validates it as JSON, once, building nothing (`serde::de::IgnoredAny`). No scrub can
//! do less than this: read every byte and check the JSON grammar. Exits 1 on invalid JSON.
//!
//! `cargo bench -p kompass-core --bench scrub_floor -- FILE` (the bench harness passes
//! `--bench` too; it is ignored).

use serde::de::IgnoredAny;

fn main() {
    let Some(path) = std::env::args().skip(1).find(|a| !a.starts_with("--")) else {
        eprintln!("usage: scrub_floor FILE");
        std::process::exit(2);
    };
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("cannot read {path}: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = serde_json::from_slice::<IgnoredAny>(&bytes) {
        eprintln!("{path}: not JSON: {e}");
        std::process::exit(1);
    }
}
