//! Crash-safe local writes: a child `kompass save` of a large file to local storage is
//! SIGKILLed at random moments, over and over. The promise: the stored file is always the old
//! content or the new one, never a mix, a truncation or an empty file; leftovers of killed
//! writes are invisible to reads and listings, and can be swept.

use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime};

use crate::support::reliability::{Rng, json, kompass, scale, seed, show};
use kompass::store::local::{LocalStore, is_temp_name};
use kompass_core::key::ObjectKey;

/// The size of each version: large enough that a write takes a while (and `S3_MAX_FILE_SIZE_MB`
/// allows it).
const SIZE: usize = 24 * 1024 * 1024;

/// Version `v`: every 8-byte word holds `v` and its position, so any mix of two versions, a
/// shift or a truncation has another SHA-256.
fn version(v: u64) -> Vec<u8> {
    let mut out = vec![0u8; SIZE];
    for (i, word) in out.chunks_exact_mut(8).enumerate() {
        word.copy_from_slice(&(v << 40 ^ i as u64).to_le_bytes());
    }
    out
}

/// Which version a file holds, by its first word (the check against that version's bytes
/// follows), for messages.
fn version_of(bytes: &[u8]) -> Option<u64> {
    bytes.get(..8).map(|w| u64::from_le_bytes(w.try_into().unwrap()) >> 40)
}

#[test]
fn a_killed_writer_leaves_the_old_or_the_new_file_never_a_torn_one() {
    const TEST: &str = "a_killed_writer_leaves_the_old_or_the_new_file";
    let kills = scale(30, 300);
    let mut rng = Rng::new(seed(TEST));
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let key = ObjectKey::parse_parts(Some("crash-rider"), "routes", "big.json").unwrap();
    let target = data.join("routes/crash-rider/big.json");
    let src = dir.path().join("src.bin");
    let save = |src: &std::path::Path| {
        let mut cmd = kompass(
            dir.path(),
            None,
            &[],
            &["--json", "save", "--user", "crash-rider", "--type", "routes", "--name", "big.json"],
        );
        cmd.arg(src).stdout(Stdio::piped()).stderr(Stdio::piped());
        cmd
    };

    // Version 0, saved without interruption; its duration bounds the kill moments.
    let v0 = version(0);
    std::fs::write(&src, &v0).unwrap();
    let started = Instant::now();
    let out = save(&src).spawn().unwrap().wait_with_output().unwrap();
    let full = started.elapsed();
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(json(&out)["backend"], "local");
    let mut current = 0u64;
    let mut current_body = v0;

    let (mut old, mut new, mut mid_write, mut total_leftovers) = (0, 0, 0, 0);
    let window_us = (full.as_micros() as u64 * 12 / 10).max(1);
    for v in 1..=kills as u64 {
        let body = version(v);
        std::fs::write(&src, &body).unwrap();
        let mut child = save(&src).spawn().unwrap();
        std::thread::sleep(Duration::from_micros(rng.below(window_us)));
        let temp_seen = temp_files(&data).len();
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();

        let got = std::fs::read(&target).expect("the file exists after every kill");
        if got == current_body {
            old += 1;
        } else if got == body {
            new += 1;
            current = v;
            current_body = body;
        } else {
            panic!(
                "kill {v}: the file is torn: {} bytes starting like version {:?}, expected version {current} (old) or {v} (new)",
                got.len(),
                version_of(&got)
            );
        }
        if temp_seen > 0 && status.code().is_none() {
            mid_write += 1;
        }
        // The leftovers are invisible: a read and a listing see the one file.
        let load = kompass(
            dir.path(),
            None,
            &[],
            &["load", "--user", "crash-rider", "--type", "routes", "--name", "big.json"],
        )
        .output()
        .unwrap();
        assert!(load.status.success(), "{}", show(&load));
        assert!(load.stdout == got, "kill {v}: load returns the stored file");
        let list = kompass(
            dir.path(),
            None,
            &[],
            &["--json", "list", "--user", "crash-rider", "--type", "routes"],
        )
        .output()
        .unwrap();
        let listed = json(&list);
        assert_eq!(listed.as_array().map(Vec::len), Some(1), "kill {v}: one file listed: {listed}");
        assert_eq!(listed[0]["size"], SIZE, "kill {v}");

        // Every 10 kills (and at the end), sweeping removes the leftovers, and only them.
        if v % 10 == 0 || v == kills as u64 {
            let leftovers = temp_files(&data);
            let swept =
                LocalStore::new(&data).sweep_temp_files(Duration::ZERO, SystemTime::now()).unwrap();
            assert_eq!(swept.len(), leftovers.len(), "kill {v}: every leftover is swept");
            assert!(temp_files(&data).is_empty());
            let got = LocalStore::new(&data).get(&key).unwrap();
            assert!(
                got == current_body,
                "kill {v}: the swept directory holds the last complete version ({current})"
            );
            total_leftovers += swept.len();
        }
    }

    eprintln!(
        "RESULT crash-local: {kills} SIGKILLs of `kompass save` ({} MiB file, a full save takes {full:.0?}; kills spread over 0-{:.0?}): {old} left the old file, {new} the new one, 0 torn; {mid_write} kills caught a temp file in flight; {} leftover temp files, all invisible to load/list, all swept",
        SIZE / (1024 * 1024),
        Duration::from_micros(window_us),
        total_leftovers
    );
}

/// Temp files of interrupted writes below `dir`.
fn temp_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                stack.push(e.path());
            } else if is_temp_name(&e.file_name().to_string_lossy()) {
                out.push(e.path());
            }
        }
    }
    out
}
