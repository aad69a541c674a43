//! Native scrub times for the wasm comparison (`bench/wasm.sh`): writes the corpus that the
//! Node script `bench/wasm/scrub.mjs` scrubs through the wasm package, and times the native
//! scrub of the same bytes with the same iteration scheme, so the two times can be divided.
//!
//! `cargo bench -p kompass-core --features corpus --bench scrub_timing -- --out DIR`
//! writes `DIR/corpus-{n}.json` (n = 1, 100, 5000; `--sizes 1,100` for others) and prints one
//! JSON line per size (`--keyless`: the keyless scrub, as the browser runs it, ids dropped): `{"activities", "input_bytes", "output_bytes", "median_ns", "min_ns",
//! "cpu_median_ns", "cpu_min_ns", "samples", "batch"}`; `--write-only` writes the files and
//! times nothing (bench/scrub_process.py). Criterion is not used here because the
//! Node side cannot use it: the scheme below is simple enough to write twice, identically.
//!
//! The scheme (keep it in step with `bench/wasm/scrub.mjs`): run for 800 ms to warm up (the
//! wasm side needs it: V8 moves hot functions to its optimising compiler in that time, see
//! there), then until 200 ms more have passed (at least 3 runs) to estimate one run's time;
//! then take 21 samples, each a
//! batch of runs lasting about 25 ms (at least one run); a sample's time is its elapsed time
//! divided by the batch size. Report the median sample (and the fastest), in wall-clock time
//! and in the process's CPU time (user + system; Node's `process.cpuUsage()` on the other
//! side): on a machine shared with other work the second leaves out the time spent waiting
//! for a CPU.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use kompass_core::scrub::{PseudonymKey, corpus, scrub, scrub_keyless};

const WARM_UP: Duration = Duration::from_millis(800);
const ESTIMATE: Duration = Duration::from_millis(200);
const MIN_ESTIMATE_RUNS: u32 = 3;
const SAMPLE: Duration = Duration::from_millis(25);
const SAMPLES: usize = 21;

/// The key the wasm side uses too (`{key_id: "k1", secret: "bench-secret-0123456789"}`).
const KEY_ID: &str = "k1";
const SECRET: &[u8] = b"bench-secret-0123456789";
/// The corpus seed, as in the criterion bench.
const SEED: u64 = 42;

struct Args {
    out: Option<PathBuf>,
    sizes: Vec<usize>,
    keyless: bool,
    /// Only write the corpus files (for bench/scrub_process.py), time nothing.
    write_only: bool,
}

fn args() -> Args {
    let mut out = None;
    let mut sizes = vec![1, 100, 5000];
    let mut keyless = false;
    let mut write_only = false;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--out" => out = it.next().map(PathBuf::from),
            "--keyless" => keyless = true,
            "--write-only" => write_only = true,
            "--sizes" => {
                sizes = it
                    .next()
                    .unwrap_or_default()
                    .split(',')
                    .map(|s| {
                        s.trim().parse().unwrap_or_else(|_| {
                            panic!("--sizes takes activity counts such as 1,100,5000, not {s:?}")
                        })
                    })
                    .collect();
            }
            // `cargo bench` passes `--bench`; criterion-style filters are not used here.
            _ => {}
        }
    }
    Args { out, sizes, keyless, write_only }
}

/// The process's CPU time so far (user + system), in ns. std has no CPU clock, and this one
/// call does not warrant a dependency: POSIX `clock_gettime(CLOCK_PROCESS_CPUTIME_ID)`.
#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
fn cpu_ns() -> u64 {
    #[repr(C)]
    struct Timespec {
        tv_sec: i64,
        tv_nsec: i64,
    }
    const CLOCK_PROCESS_CPUTIME_ID: i32 = 2;
    unsafe extern "C" {
        fn clock_gettime(clock: i32, ts: *mut Timespec) -> i32;
    }
    let mut ts = Timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec (two 64-bit fields on 64-bit Linux).
    let rc = unsafe { clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_PROCESS_CPUTIME_ID) failed");
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Elsewhere the CPU-time figures are 0 and only the wall-clock ones count.
#[cfg(not(all(target_os = "linux", target_pointer_width = "64")))]
fn cpu_ns() -> u64 {
    0
}

/// Per-run times of the samples: median and fastest, wall-clock and on-CPU.
struct Measured {
    median: f64,
    min: f64,
    cpu_median: f64,
    cpu_min: f64,
    batch: u64,
}

/// Times `run` per the scheme.
fn measure(mut run: impl FnMut()) -> Measured {
    let warm_up = Instant::now();
    while warm_up.elapsed() < WARM_UP {
        run();
    }
    let start = Instant::now();
    let mut runs = 0u32;
    while runs < MIN_ESTIMATE_RUNS || start.elapsed() < ESTIMATE {
        run();
        runs += 1;
    }
    let one = start.elapsed().as_secs_f64() / f64::from(runs);
    let batch = ((SAMPLE.as_secs_f64() / one).round() as u64).max(1);
    let (mut wall, mut cpu): (Vec<f64>, Vec<f64>) = (0..SAMPLES)
        .map(|_| {
            let c = cpu_ns();
            let t = Instant::now();
            for _ in 0..batch {
                run();
            }
            let elapsed = t.elapsed().as_secs_f64() * 1e9;
            let on_cpu = cpu_ns().saturating_sub(c) as f64;
            (elapsed / batch as f64, on_cpu / batch as f64)
        })
        .unzip();
    wall.sort_by(f64::total_cmp);
    cpu.sort_by(f64::total_cmp);
    Measured {
        median: wall[SAMPLES / 2],
        min: wall[0],
        cpu_median: cpu[SAMPLES / 2],
        cpu_min: cpu[0],
        batch,
    }
}

fn main() {
    let args = args();
    // The key is set up in each run, as the wasm export sets it up from its `key` argument
    // in each call: both sides time the same work.
    let run = |input: &[u8]| match args.keyless {
        false => scrub(input, &PseudonymKey::new(KEY_ID, SECRET).expect("the bench key is valid")),
        true => scrub_keyless(input),
    };
    let mode = if args.keyless { "keyless" } else { "keyed" };
    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    }
    for &n in &args.sizes {
        let input = corpus::generate(n, SEED);
        if let Some(dir) = &args.out {
            let path = dir.join(format!("corpus-{n}.json"));
            std::fs::write(&path, &input)
                .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        }
        if args.write_only {
            continue;
        }
        let output_bytes = run(input.as_bytes()).expect("the corpus scrubs").document.len();
        let m = measure(|| {
            black_box(run(black_box(input.as_bytes())).expect("the corpus scrubs"));
        });
        println!(
            "{{\"mode\":\"{mode}\",\"activities\":{n},\"input_bytes\":{},\"output_bytes\":{output_bytes},\"median_ns\":{:.0},\"min_ns\":{:.0},\"cpu_median_ns\":{:.0},\"cpu_min_ns\":{:.0},\"samples\":{SAMPLES},\"batch\":{}}}",
            input.len(),
            m.median,
            m.min,
            m.cpu_median,
            m.cpu_min,
            m.batch
        );
    }
}
