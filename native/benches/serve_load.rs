//! A load client for `kompass serve` (driven by bench/serve_load.py): N concurrent clients on
//! loopback send one kind of request as fast as answers come back, for a bounded time and a
//! bounded number of requests, and print one JSON line with requests/s and latency
//! percentiles.
//!
//! `cargo bench -p kompass --bench serve_load -- --base http://127.0.0.1:PORT --token TOKEN
//!  [--token TOKEN2 ...] [--clients 32] [--seconds 5] [--max-requests 500000] ROUTE`
//!
//! With several `--token`s, presign client `c` uses token `c % N` (several users, each with
//! its own reservations); everything else uses the first.
//!
//! ROUTE is `get:/PATH` (a GET with the token, e.g. `get:/api/usage` or `get:/healthz`),
//! `presign` (`POST /api/presign` for a small routes file: admission, then a grant) or
//! `upload:BYTES:COUNT` (one client: COUNT times presign, then `PUT` BYTES bytes to the granted
//! URL; only the PUTs are timed, and the line adds `bytes` and `mb_per_s`).
//!
//! Only loopback addresses are accepted as `--base`: this is a load generator.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

struct Args {
    base: String,
    token: String,
    /// Every `--token` given, the first being `token`.
    tokens: Vec<String>,
    clients: usize,
    seconds: f64,
    max_requests: u64,
    route: String,
}

fn args() -> Args {
    let mut a = Args {
        base: String::new(),
        token: String::new(),
        tokens: Vec::new(),
        clients: 32,
        seconds: 5.0,
        max_requests: 500_000,
        route: String::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(x) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| panic!("{x} needs a value"));
        match x.as_str() {
            "--base" => a.base = val(),
            "--token" => a.tokens.push(val()),
            "--clients" => a.clients = val().parse().expect("--clients N"),
            "--seconds" => a.seconds = val().parse().expect("--seconds S"),
            "--max-requests" => a.max_requests = val().parse().expect("--max-requests N"),
            "--bench" => {}
            r if !r.starts_with("--") => a.route = r.to_owned(),
            other => panic!("unknown argument {other}"),
        }
    }
    let host =
        a.base.strip_prefix("http://").and_then(|h| h.split([':', '/']).next()).unwrap_or("");
    assert!(
        matches!(host, "localhost" | "[") || host.starts_with("127."),
        "--base must be a loopback http:// address, not {:?}",
        a.base
    );
    assert!(!a.route.is_empty(), "name a ROUTE: get:/PATH, presign or upload:BYTES:COUNT");
    assert!(!a.tokens.is_empty(), "give --token TOKEN");
    a.token = a.tokens[0].clone();
    a
}

/// One request's outcome: its latency and HTTP status (0 when it failed to complete).
type Sample = (Duration, u16);

fn presign_body(name: &str, size: u64, sha256: &str) -> String {
    format!(r#"{{"type":"routes","name":"{name}","size":{size},"sha256":"{sha256}"}}"#)
}

/// POST /api/presign with the first token; the grant URL on success.
async fn presign(
    client: &reqwest::Client,
    a: &Args,
    name: &str,
    size: u64,
    sha: &str,
) -> (u16, Option<String>) {
    let (status, body) = presign_answer(client, a, &a.token, name, size, sha).await;
    let url = body
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v["url"].as_str().map(str::to_owned));
    (status, url)
}

/// POST /api/presign with `token`: the status and the body, read whole but not parsed (the
/// load phase reads every answer as it reads `/healthz`'s: parsing is the client's cost, not
/// the server's, and the two share the CPUs).
async fn presign_answer(
    client: &reqwest::Client,
    a: &Args,
    token: &str,
    name: &str,
    size: u64,
    sha: &str,
) -> (u16, Option<bytes::Bytes>) {
    let res = client
        .post(format!("{}/api/presign", a.base))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(presign_body(name, size, sha))
        .send()
        .await;
    let Ok(res) = res else { return (0, None) };
    let status = res.status().as_u16();
    match res.bytes().await {
        Ok(body) => (status, Some(body)),
        Err(_) => (0, None),
    }
}

async fn load(a: Arc<Args>) -> serde_json::Value {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(a.clients)
        .build()
        .expect("an HTTP client");
    let issued = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs_f64(a.seconds);
    let started = Instant::now();
    let tasks: Vec<_> = (0..a.clients)
        .map(|c| {
            let (a, client, issued) = (a.clone(), client.clone(), issued.clone());
            tokio::spawn(async move {
                let sha = hex::encode(Sha256::digest(b"load"));
                let mut samples: Vec<Sample> = Vec::new();
                while Instant::now() < deadline
                    && issued.fetch_add(1, Ordering::Relaxed) < a.max_requests
                {
                    let t = Instant::now();
                    let status = if a.route == "presign" {
                        let name = format!("load-{c}-{}.json", samples.len() % 64);
                        let token = &a.tokens[c % a.tokens.len()];
                        presign_answer(&client, &a, token, &name, 1024, &sha).await.0
                    } else {
                        let path = a.route.strip_prefix("get:").expect("get:/PATH");
                        match client
                            .get(format!("{}{path}", a.base))
                            .bearer_auth(&a.token)
                            .send()
                            .await
                        {
                            Ok(r) => {
                                let s = r.status().as_u16();
                                if r.bytes().await.is_ok() { s } else { 0 }
                            }
                            Err(_) => 0,
                        }
                    };
                    samples.push((t.elapsed(), status));
                }
                samples
            })
        })
        .collect();
    let mut all: Vec<Sample> = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("a client task"));
    }
    let seconds = started.elapsed().as_secs_f64();
    summary(&a, all, seconds)
}

fn summary(a: &Args, mut all: Vec<Sample>, seconds: f64) -> serde_json::Value {
    let mut statuses = BTreeMap::new();
    for (_, s) in &all {
        *statuses.entry(s.to_string()).or_insert(0u64) += 1;
    }
    let ok = all.iter().filter(|(_, s)| (200..300).contains(s)).count();
    all.sort_by_key(|(d, _)| *d);
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .map_or(0.0, |(d, _)| d.as_secs_f64() * 1e6)
    };
    serde_json::json!({
        "route": a.route,
        "clients": a.clients,
        "requests": all.len(),
        "ok": ok,
        "statuses": statuses,
        "seconds": seconds,
        "rps": ok as f64 / seconds,
        "p50_us": pct(0.50),
        "p90_us": pct(0.90),
        "p99_us": pct(0.99),
        "max_us": pct(1.0),
    })
}

/// One client: presign, then PUT the bytes to the grant, COUNT times; only the PUTs are timed.
async fn upload(a: Arc<Args>, bytes: usize, count: usize) -> serde_json::Value {
    let client = reqwest::Client::new();
    // Incompressible, deterministic bytes (a counter through SHA-256).
    let mut body = Vec::with_capacity(bytes + 32);
    let mut i = 0u64;
    while body.len() < bytes {
        body.extend_from_slice(&Sha256::digest(i.to_le_bytes()));
        i += 1;
    }
    body.truncate(bytes);
    let body = bytes::Bytes::from(body);
    let sha = hex::encode(Sha256::digest(&body));
    let sha_b64 = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&body))
    };
    let run = std::process::id();
    let mut samples: Vec<Sample> = Vec::new();
    for n in 0..count {
        let name = format!("upload-{run}-{n}.bin");
        let (status, url) = presign(&client, &a, &name, bytes as u64, &sha).await;
        let Some(url) = url else {
            panic!("presign for the upload answered {status}");
        };
        let t = Instant::now();
        let res = client
            .put(format!("{}{url}", a.base))
            .header("x-amz-checksum-sha256", &sha_b64)
            .body(body.clone())
            .send()
            .await;
        let status = match res {
            Ok(r) => {
                let s = r.status().as_u16();
                if r.bytes().await.is_ok() { s } else { 0 }
            }
            Err(_) => 0,
        };
        samples.push((t.elapsed(), status));
    }
    let put_seconds: f64 = samples.iter().map(|(d, _)| d.as_secs_f64()).sum();
    let mut v = summary(&a, samples.clone(), put_seconds);
    let ok = samples.iter().filter(|(_, s)| (200..300).contains(s)).count();
    v["bytes"] = serde_json::json!(bytes);
    v["count"] = serde_json::json!(count);
    v["per_upload_s"] = samples.iter().map(|(d, _)| d.as_secs_f64()).collect::<Vec<_>>().into();
    v["mb_per_s"] = serde_json::json!((ok * bytes) as f64 / 1e6 / put_seconds);
    v
}

fn main() {
    let a = Arc::new(args());
    let rt = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let line = if let Some(spec) = a.route.strip_prefix("upload:") {
        let (bytes, count) = spec.split_once(':').expect("upload:BYTES:COUNT");
        let bytes = bytes.parse().expect("upload:BYTES:COUNT");
        let count = count.parse().expect("upload:BYTES:COUNT");
        rt.block_on(upload(a.clone(), bytes, count))
    } else {
        rt.block_on(load(a.clone()))
    };
    println!("{line}");
}
