//! Shared pieces of the reliability tests (`reliability_*`): the default-run and soak sizes, a
//! seeded random source, the `kompass` binary with a clean environment; an S3 server of the
//! test's own is in `super::server`, the fault-injecting TCP proxy in `super::proxy`.
//!
//! Every random choice comes from a seed printed on stderr; `KOMPASS_RELIABILITY_SEED=N`
//! replays the same choices (timings still vary: the server and the scheduler are real).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kompass::store::s3::{S3Options, S3Store};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::S3Env;

/// True for `make soak` (`KOMPASS_SOAK=1`): the long versions of every test.
pub fn soak() -> bool {
    std::env::var("KOMPASS_SOAK").as_deref() == Ok("1")
}

/// `default` in the default test run, `soak` under `make soak`.
pub fn scale(default: usize, soak_size: usize) -> usize {
    if soak() { soak_size } else { default }
}

/// True when S3 tests are to be skipped (`KOMPASS_SKIP_S3=1`), with a note on stderr.
pub fn skip_s3(test: &str) -> bool {
    if std::env::var("KOMPASS_SKIP_S3").as_deref() == Ok("1") {
        eprintln!("SKIPPED {test}: KOMPASS_SKIP_S3=1 (no S3 test server)");
        return true;
    }
    false
}

/// The seed for `test`: `KOMPASS_RELIABILITY_SEED` when set, else fresh; printed either way.
pub fn seed(test: &str) -> u64 {
    let seed = std::env::var("KOMPASS_RELIABILITY_SEED")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64
                ^ u64::from(std::process::id()).rotate_left(32)
        });
    eprintln!("{test}: seed {seed} (KOMPASS_RELIABILITY_SEED={seed} replays its choices)");
    seed
}

/// A small seeded random source (SplitMix64): enough for choosing faults and timings.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A source starting at `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// An independent stream for item `n` of this seed (connection n, writer n, ...).
    pub fn fork(&self, n: u64) -> Rng {
        let mut r = Rng(self.0 ^ n.wrapping_mul(0xA076_1D64_78BD_642F));
        r.next_u64();
        r
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }

    /// `n` random bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(n + 8);
        while out.len() < n {
            out.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        out.truncate(n);
        out
    }
}

/// SHA-256 of `bytes`.
pub fn sha(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// A token no other test (or earlier run) uses, for user ids and names.
pub fn token() -> String {
    static SEQ: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    format!(
        "{}-{}-{}",
        std::process::id(),
        nanos % 1_000_000_000_000,
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

/// A store on `env` that checks results independently of kompass's own manager.
pub fn store(env: &S3Env) -> S3Store {
    env.store_with(S3Options { retry_base_delay: Duration::from_millis(5), ..S3Options::default() })
}

/// `kompass --data-dir {dir}/data ARGS` run in `dir`, with nothing from the caller's
/// environment but PATH: HOME and TMPDIR point into `dir`, S3 is configured only when `env`
/// is given, and `vars` are added last.
pub fn kompass(dir: &Path, env: Option<&S3Env>, vars: &[(&str, &str)], args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kompass"));
    cmd.current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir.join("home"))
        .env("TMPDIR", dir.join("tmp"))
        .arg("--data-dir")
        .arg(dir.join("data"))
        .args(args);
    if let Some(env) = env {
        cmd.envs(env.vars());
    }
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd
}

/// Status and both streams, for assertion messages.
pub fn show(out: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Stdout parsed as JSON (panics with both streams when it is not).
pub fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}); {}", show(out)))
}

/// Every regular file below `dir` (relative paths with `/`), skipping kompass's state
/// directory and temp files, with its content. For counting while files come and go, see
/// [`count_files_below`].
pub fn files_below(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            // Files may vanish while we look (a migration removes local copies).
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                if name != ".kompass" {
                    stack.push(p);
                }
            } else if ft.is_file() && !kompass::store::local::is_temp_name(&name) {
                let rel = p.strip_prefix(dir).unwrap().to_string_lossy().replace('\\', "/");
                match std::fs::read(&p) {
                    Ok(body) => out.push((rel, body)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => panic!("cannot read {}: {e}", p.display()),
                }
            }
        }
    }
    out.sort();
    out
}

/// How many regular files are below `dir` (kompass's state directory and temp files aside).
pub fn count_files_below(dir: &Path) -> usize {
    let mut count = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                if name != ".kompass" {
                    stack.push(e.path());
                }
            } else if ft.is_file() && !kompass::store::local::is_temp_name(&name) {
                count += 1;
            }
        }
    }
    count
}

/// Every source file (S3 key → content) is still in the data directory, intact, or in the
/// bucket, intact (GET and SHA-256 against the source); every object under `prefixes` that
/// is a source key is whole, wherever else a copy is.
pub fn assert_nothing_lost(
    env: &S3Env,
    prefixes: &[String],
    data: &Path,
    source: &BTreeMap<String, Vec<u8>>,
    when: &str,
) {
    let local: BTreeMap<String, Vec<u8>> = files_below(data)
        .into_iter()
        .map(|(rel, body)| {
            let parts: Vec<&str> = rel.split('/').collect();
            let key = kompass_core::key::ObjectKey::from_local_segments(&parts).unwrap().s3_key();
            (key, body)
        })
        .collect();
    let s3 = store(env);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let mut listed: BTreeMap<String, u64> = BTreeMap::new();
    for p in prefixes {
        listed.extend(rt.block_on(s3.list(p)).unwrap().into_iter().map(|o| (o.key, o.size)));
    }
    let mut lost = Vec::new();
    let mut to_read = Vec::new();
    for (key, body) in source {
        if let Some(l) = local.get(key) {
            assert_eq!(sha(l), sha(body), "{when}: local copy of {key} changed");
        } else if !listed.contains_key(key) {
            lost.push(key.clone());
        }
        // Whether or not a local copy is left, an object in the bucket must be whole.
        if listed.contains_key(key) {
            to_read.push((key.clone(), sha(body)));
        }
    }
    assert!(
        lost.is_empty(),
        "{when}: {} files are neither local nor in S3: {:?}",
        lost.len(),
        &lost[..lost.len().min(10)]
    );
    let bad = rt.block_on(read_all(&s3, to_read, when));
    assert!(bad.is_empty(), "{when}: objects corrupt or unreadable in S3: {bad:#?}");
}

/// GETs every key (16 at a time) and compares its SHA-256; returns what differs or fails.
/// Right after a restart SeaweedFS may answer 500 for a moment while its volumes load: a
/// read is retried for up to 30 s (and each retry is logged) before it counts as failed.
pub async fn read_all(s3: &S3Store, items: Vec<(String, [u8; 32])>, when: &str) -> Vec<String> {
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(16));
    let mut set = tokio::task::JoinSet::new();
    for (key, want) in items {
        let (s3, gate, when) = (s3.clone(), gate.clone(), when.to_owned());
        set.spawn(async move {
            let _permit = gate.acquire_owned().await.unwrap();
            let started = Instant::now();
            loop {
                match s3.get(&key).await {
                    Ok(got) if sha(&got) == want => return None,
                    Ok(got) => return Some(format!("{key}: {} bytes of other content", got.len())),
                    Err(e) if started.elapsed() < Duration::from_secs(30) => {
                        eprintln!("{when}: GET {key} failed, retrying: {e}");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                    Err(e) => return Some(format!("{key}: {e}")),
                }
            }
        });
    }
    let mut bad = Vec::new();
    while let Some(r) = set.join_next().await {
        bad.extend(r.unwrap());
    }
    bad.sort();
    bad
}
