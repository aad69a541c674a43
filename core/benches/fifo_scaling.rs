//! How cleanup planning scales from 100k to 1M objects, measured so that a shared machine's
//! changing load hits both sizes alike: the sizes alternate within each of 11 rounds (criterion,
//! in `fifo.rs`, measures one size after the other, minutes apart), and each plan's time is
//! taken on the wall clock and as the process's CPU time (which leaves out waiting for a CPU).
//!
//! `cargo bench -p kompass-core --bench fifo_scaling` prints one JSON line per input order
//! (`random`, as `fifo.rs`'s `plan_bucket`; `listing`, as its `plan_bucket_listing`) with the
//! median time per plan at each size and the ratios, and one for `fifo.rs`'s `scan` floor (a
//! pass that reads what a plan reads and decides nothing) measured the same way. Goal:
//! time(1M) / time(100k) ≤ 12.
//!
//! The inventories are `fifo.rs`'s (same generator, same seed, same limits): keep them in step.
//!
//! For a profiler: `--once N [TIMES]` plans over N objects (random order) once (or TIMES
//! times) and exits, e.g.
//! `valgrind --tool=callgrind --cache-sim=yes --toggle-collect='kompass_core::fifo::plan_bucket*'
//! target/release/deps/fifo_scaling-HASH --once 1000000`.

use std::hint::black_box;
use std::time::Instant;

use kompass_core::fifo::{Capacity, Policy, plan_bucket};
use kompass_core::inventory::ObjectInfo;

#[path = "support/inventory.rs"]
mod support;
use support::{inventory, listing_order};

const ROUNDS: usize = 11;
/// Plans per timed batch at 100k, so that a batch takes about as long as one plan at 1M.
const SMALL_BATCH: usize = 10;

/// The process's CPU time so far (user + system), in ns: POSIX
/// `clock_gettime(CLOCK_PROCESS_CPUTIME_ID)` (std has no CPU clock).
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

/// One input: its objects and the limits `fifo.rs` gives that size.
struct Case {
    objects: Vec<ObjectInfo>,
    limits: Capacity,
}

impl Case {
    fn new(objects: Vec<ObjectInfo>) -> Self {
        let total: u64 = objects.iter().map(|o| o.size).sum();
        let limits = Capacity { user_quota_bytes: 100 * 1024 * 1024, bucket_bytes: total / 2 };
        Case { objects, limits }
    }

    /// Wall-clock and CPU ns per run over a batch of `batch` runs of `job` (each result
    /// dropped, as in criterion's `iter`).
    fn time<R>(&self, batch: usize, job: impl Fn(&Case) -> R) -> (f64, f64) {
        let c = cpu_ns();
        let t = Instant::now();
        for _ in 0..batch {
            drop(black_box(job(black_box(self))));
        }
        let wall = t.elapsed().as_secs_f64() * 1e9;
        let cpu = cpu_ns().saturating_sub(c) as f64;
        (wall / batch as f64, cpu / batch as f64)
    }
}

/// `fifo.rs`'s floor: reads every field a plan reads, touching each string's heap bytes once.
fn scan(inv: &[ObjectInfo]) -> u64 {
    let first = |s: &str| s.as_bytes().first().copied().unwrap_or(0) as u64;
    inv.iter()
        .map(|o| {
            o.size
                ^ o.last_modified_ms as u64
                ^ first(&o.key)
                ^ o.key.as_bytes().last().copied().unwrap_or(0) as u64
                ^ o.user.as_deref().map_or(0, first)
                ^ first(&o.data_type)
        })
        .fold(0, u64::wrapping_add)
}

/// Times `job` at both sizes, alternating for [`ROUNDS`] rounds, and prints the JSON line.
fn compare<R>(label: &str, small: &Case, large: &Case, job: impl Fn(&Case) -> R) {
    // Warm-up: the allocator and the caches.
    small.time(SMALL_BATCH, &job);
    large.time(1, &job);
    let (mut sw, mut sc, mut lw, mut lc, mut rw, mut rc) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    for _ in 0..ROUNDS {
        let (w1, c1) = small.time(SMALL_BATCH, &job);
        let (w2, c2) = large.time(1, &job);
        sw.push(w1);
        sc.push(c1);
        lw.push(w2);
        lc.push(c2);
        rw.push(w2 / w1);
        rc.push(c2 / c1);
    }
    let (sw, sc, lw, lc) = (median(sw), median(sc), median(lw), median(lc));
    println!(
        "{{\"order\":\"{label}\",\"rounds\":{ROUNDS},\"wall_ns_100k\":{sw:.0},\"wall_ns_1m\":{lw:.0},\"cpu_ns_100k\":{sc:.0},\"cpu_ns_1m\":{lc:.0},\"ratio_cpu\":{:.3},\"ratio_wall\":{:.3},\"ratio_cpu_per_round_median\":{:.3},\"ratio_wall_per_round_median\":{:.3}}}",
        lc / sc,
        lw / sw,
        median(rc),
        median(rw)
    );
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn main() {
    let policy = Policy::default();
    let now = 1_700_000_000_000 + 400 * 24 * 3600 * 1000;
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--once") {
        let n = args.get(i + 1).and_then(|n| n.parse().ok()).expect("--once takes an object count");
        let times = args.get(i + 2).and_then(|n| n.parse().ok()).unwrap_or(1);
        let case = Case::new(inventory(n));
        let (wall, _) =
            case.time(times, |c| plan_bucket(&c.objects, &policy, &c.limits, now).unwrap());
        eprintln!("{times} plan(s) over {n} objects: {:.1} ms each", wall / 1e6);
        return;
    }
    for order in ["random", "listing"] {
        let make = |n| {
            let inv = inventory(n);
            Case::new(if order == "listing" { listing_order(inv) } else { inv })
        };
        let (small, large) = (make(100_000), make(1_000_000));
        compare(order, &small, &large, |c| {
            plan_bucket(&c.objects, &policy, &c.limits, now).unwrap()
        });
        if order == "random" {
            compare("scan", &small, &large, |c| scan(&c.objects));
        }
    }
}
