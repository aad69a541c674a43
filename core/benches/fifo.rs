//! Cleanup planning over generated inventories of 10k, 100k and 1M objects.
//!
//! The inventory is shaped like a busy bucket: ~100 files per user of 1 KB–2 MB, so most users
//! are over the 70% threshold of a 100 MB quota, 5% global data, and a bucket limit low enough
//! that the bucket-wide phase runs too (about half the objects end up in the plan: the output
//! is as large as it gets). `plan_bucket` takes the objects in random order, the worst case;
//! `plan_bucket_listing` in key order with strings allocated in that order, as an S3 listing
//! or a directory walk delivers them. Planning should scale about linearly:
//! time(1M) / time(100k) ≤ 12.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use kompass_core::fifo::{Capacity, Policy, plan_bucket, plan_user};
use kompass_core::inventory::{ObjectInfo, usage};

#[path = "support/inventory.rs"]
mod support;
use support::{inventory, listing_order};

/// Reads every field a plan reads, touching each string's heap bytes once.
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

fn bench(c: &mut Criterion) {
    let policy = Policy::default();
    let now = 1_700_000_000_000 + 400 * 24 * 3600 * 1000;
    let mut group = c.benchmark_group("fifo");
    group.sample_size(10);
    for n in [10_000usize, 100_000, 1_000_000] {
        let inv = inventory(n);
        let total: u64 = inv.iter().map(|o| o.size).sum();
        let limits = Capacity { user_quota_bytes: 100 * 1024 * 1024, bucket_bytes: total / 2 };
        let plan = plan_bucket(&inv, &policy, &limits, now).unwrap();
        eprintln!(
            "fifo n={n}: bucket plan deletes {} objects, {} of {} bytes",
            plan.deletions.len(),
            plan.bytes_freed,
            total
        );
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::new("plan_bucket", n), &inv, |b, inv| {
            b.iter(|| plan_bucket(black_box(inv), &policy, &limits, now).unwrap())
        });
        let listed = listing_order(inv.clone());
        group.bench_with_input(BenchmarkId::new("plan_bucket_listing", n), &listed, |b, inv| {
            b.iter(|| plan_bucket(black_box(inv), &policy, &limits, now).unwrap())
        });
        drop(listed);
        group.bench_with_input(BenchmarkId::new("plan_user", n), &inv, |b, inv| {
            b.iter(|| plan_user(black_box(inv), "u000000", &policy, &limits, now).unwrap())
        });
        group.bench_with_input(BenchmarkId::new("usage", n), &inv, |b, inv| {
            b.iter(|| usage(black_box(inv)))
        });
        // The floor: one pass that reads what any plan must read of every object (its size,
        // age and the bytes of its key, user and data type), and decides nothing. How this
        // scales from 100k to 1M is the memory system's part of the plans' scaling.
        group.bench_with_input(BenchmarkId::new("scan", n), &inv, |b, inv| {
            b.iter(|| scan(black_box(inv)))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
