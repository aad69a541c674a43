//! Scrub speed against a serde_json round trip (parse to `Value`, serialize) of the same bytes.
//!
//! Goal: scrubbing costs at most 1.5× the round trip. Run with
//! `cargo bench -p kompass-core --features corpus --bench scrub`.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use kompass_core::scrub::{PseudonymKey, corpus, scrub};

fn bench_scrub(c: &mut Criterion) {
    let key = PseudonymKey::new("k1", b"bench-secret-0123456789").expect("valid key");
    let mut group = c.benchmark_group("scrub");
    for activities in [1usize, 100, 5000] {
        let input = corpus::generate(activities, 42);
        group.throughput(Throughput::Bytes(input.len() as u64));
        if activities >= 5000 {
            group.sample_size(10);
        }
        group.bench_with_input(BenchmarkId::new("scrub", activities), &input, |b, input| {
            b.iter(|| scrub(black_box(input.as_bytes()), &key).expect("corpus scrubs"))
        });
        group.bench_with_input(
            BenchmarkId::new("serde_json_value_round_trip", activities),
            &input,
            |b, input| {
                b.iter(|| {
                    let value: serde_json::Value =
                        serde_json::from_slice(black_box(input.as_bytes()))
                            .expect("corpus is JSON");
                    serde_json::to_string(&value).expect("serializes")
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, bench_scrub);
criterion_main!(benches);
