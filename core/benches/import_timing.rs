//! Native import of a Strava bulk export for bench/import.py: reads the archive named by
//! KOMPASS_IMPORT_BENCH_ARCHIVE, imports it 3 times and prints one JSON line with the fastest
//! wall time and the process's peak RSS (VmHWM), which includes the archive's own bytes.

use std::time::Instant;

use kompass_core::import::import_strava_export;

fn main() {
    let Some(path) = std::env::var_os("KOMPASS_IMPORT_BENCH_ARCHIVE") else {
        eprintln!(
            "import_timing: set KOMPASS_IMPORT_BENCH_ARCHIVE to an export ZIP (bench/import.py does)"
        );
        return;
    };
    let archive = std::fs::read(&path).expect("the archive reads");
    let mut best = f64::MAX;
    let mut report = None;
    for _ in 0..3 {
        let t = Instant::now();
        let out = import_strava_export(&archive).expect("the archive imports");
        best = best.min(t.elapsed().as_secs_f64());
        report = Some((out.report.activities, out.report.expanded_bytes, out.document.len()));
    }
    let (activities, expanded, document) = report.unwrap();
    let hwm_kb: u64 = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0);
    println!(
        "{{\"seconds\":{best},\"archive_bytes\":{},\"expanded_bytes\":{expanded},\"document_bytes\":{document},\"activities\":{activities},\"peak_rss_bytes\":{}}}",
        archive.len(),
        hwm_kb * 1024
    );
}
