//! Issue 9's two numbers, measured in one run against the S3 server named by the AWS_*
//! environment (`scripts/s3-server.sh env`):
//!
//! 1. saves/s with 10,000 objects in the cached inventory ÷ saves/s with an empty one (target
//!    ≥ 0.8): a save's admission reads the owner's objects and the bucket total, not the
//!    whole inventory. Rounds alternate between the two data directories so load drifts hit
//!    both alike.
//! 2. requests per migrated file (target 1.0): one PUT, and a HEAD only when S3 does not echo
//!    the checksum it verified.
//!
//! 3. the same ratio in local mode (no S3): 10,000 files of 200 other users on disk. A local
//!    save reads its facts from the state database's index of the data directory, checking
//!    only the uploader's folders, not walking the directory.
//!
//! `cargo bench -p kompass --bench admission [-- SAVES_PER_ROUND ROUNDS FILES]`
//! (`-- local ...` runs the local part only, with no S3 server needed).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kompass::manager::Manager;
use kompass_core::config::Config;
use kompass_core::key::ObjectKey;
use kompass_core::time::UnixMs;

fn local_config(data: &std::path::Path) -> Config {
    let mut map: BTreeMap<String, String> = BTreeMap::new();
    map.insert("DATA_DIRECTORY".into(), data.display().to_string());
    Config::from_env_map(&map).unwrap()
}

/// Local mode: saves/s with 10,000 files on disk ÷ saves/s with none.
async fn local_ratio(dir: &std::path::Path, per_round: usize, rounds: usize, stamp: u32) {
    let (empty_dir, big_dir) = (dir.join("local-empty"), dir.join("local-big"));
    for i in 0..10_000 {
        let folder = big_dir.join("routes").join(format!("bench-other-{}", i % 200));
        if i < 200 {
            std::fs::create_dir_all(&folder).unwrap();
        }
        std::fs::write(folder.join(format!("f{i}.json")), [b'x'; 2048]).unwrap();
    }
    let empty = Manager::open(local_config(&empty_dir)).unwrap();
    let big = Manager::open(local_config(&big_dir)).unwrap();
    let inventory = big.local().inventory().unwrap().entries.len();
    // The first save builds the index (one walk); rounds measure the steady state.
    round(&empty, "bench-warm", 0, 1).await;
    round(&big, "bench-warm", 0, 1).await;
    let (mut t_empty, mut t_big) = (Duration::ZERO, Duration::ZERO);
    for r in 0..rounds {
        t_empty += round(&empty, &format!("bench-e-{stamp}"), r, per_round).await;
        t_big += round(&big, &format!("bench-b-{stamp}"), r, per_round).await;
    }
    let saves = (per_round * rounds) as f64;
    let (rate_empty, rate_big) = (saves / t_empty.as_secs_f64(), saves / t_big.as_secs_f64());
    println!("local saves/s, empty data directory: {rate_empty:.1}");
    println!("local saves/s, {inventory}-file data directory: {rate_big:.1}");
    println!("RESULT local_saves_ratio {:.3} (target >= 0.8)", rate_big / rate_empty);
}

fn config(data: &std::path::Path) -> Config {
    let mut map: BTreeMap<String, String> = BTreeMap::new();
    for k in [
        "AWS_ENDPOINT_URL",
        "AWS_REGION",
        "AWS_S3_BUCKET",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
    ] {
        let v = std::env::var(k).unwrap_or_else(|_| {
            panic!("{k} is not set: start scripts/s3-server.sh and export its env")
        });
        map.insert(k.to_owned(), v);
    }
    map.insert("S3_STORAGE_ENABLED".into(), "true".into());
    map.insert("DATA_DIRECTORY".into(), data.display().to_string());
    map.insert("KOMPASS_REQUEST_BUDGET".into(), "off".into());
    Config::from_env_map(&map).unwrap()
}

async fn round(m: &Manager, user: &str, round: usize, n: usize) -> Duration {
    let body = vec![b'x'; 2048];
    let started = Instant::now();
    for i in 0..n {
        let key =
            ObjectKey::parse_parts(Some(user), "routes", &format!("r{round}-{i}.json")).unwrap();
        m.save(&key, &body).await.unwrap();
    }
    started.elapsed()
}

#[tokio::main]
async fn main() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let (per_round, rounds, files) = (
        args.first().copied().unwrap_or(40),
        args.get(1).copied().unwrap_or(5),
        args.get(2).copied().unwrap_or(200),
    );
    let stamp = std::process::id();
    let dir = tempfile::tempdir().unwrap();
    let local_only = std::env::args().any(|a| a == "local");
    local_ratio(dir.path(), per_round, rounds, stamp).await;
    if local_only {
        return;
    }
    let (empty_dir, big_dir) = (dir.path().join("empty"), dir.path().join("big"));
    let empty = Manager::open(config(&empty_dir)).unwrap();
    let big = Manager::open(config(&big_dir)).unwrap();
    // Both fresh from a listing of the bucket; then 10,000 more objects of 200 other users in
    // the big one's cached inventory (what a listing of a busy bucket would give).
    empty.refresh_inventory(true).await.unwrap();
    big.refresh_inventory(true).await.unwrap();
    let bucket = big.s3().unwrap().target().bucket_url();
    let now = UnixMs(kompass::manager::now_ms());
    big.state()
        .write(|tx| {
            let mut rows = tx.all_objects()?;
            rows.extend((0..10_000).map(|i| {
                (format!("users/bench-other-{}/routes/f{i}.json", i % 200), 2048, now.as_i64() - i)
            }));
            tx.replace_inventory(&bucket, now, now, &rows)
        })
        .unwrap();
    let inventory = big.state().read(|tx| tx.all_objects()).unwrap().len();
    let (mut t_empty, mut t_big) = (Duration::ZERO, Duration::ZERO);
    for r in 0..rounds {
        t_empty += round(&empty, &format!("bench-e-{stamp}"), r, per_round).await;
        t_big += round(&big, &format!("bench-b-{stamp}"), r, per_round).await;
    }
    let saves = (per_round * rounds) as f64;
    let (rate_empty, rate_big) = (saves / t_empty.as_secs_f64(), saves / t_big.as_secs_f64());
    println!("saves/s, empty inventory: {rate_empty:.1}");
    println!("saves/s, {inventory}-object inventory: {rate_big:.1}");
    println!("RESULT saves_ratio {:.3} (target >= 0.8)", rate_big / rate_empty);

    // Migrate: FILES local files of one user, then requests per file.
    let mig_dir = dir.path().join("migrate");
    let user = format!("bench-m-{stamp}");
    let folder = mig_dir.join("routes").join(&user);
    std::fs::create_dir_all(&folder).unwrap();
    for i in 0..files {
        std::fs::write(folder.join(format!("m{i}.json")), format!("[{i}]")).unwrap();
    }
    let m = Manager::open(config(&mig_dir)).unwrap();
    let opts = kompass::migrate::Options {
        user: Some(kompass_core::key::UserId::new(&user).unwrap()),
        ..kompass::migrate::Options::default()
    };
    let report =
        kompass::migrate::migrate(&m, &opts, &indicatif::ProgressBar::hidden()).await.unwrap();
    let r = report.requests;
    let moved = report.summary.migrated.max(1) as f64;
    println!(
        "migrate {} files: {} PUT, {} HEAD, {} LIST, {} GET",
        report.summary.migrated, r.put, r.head, r.list, r.get
    );
    println!(
        "RESULT migrate_requests_per_file {:.3} (PUT+HEAD per file; target 1.0)",
        (r.put + r.head) as f64 / moved
    );
}
