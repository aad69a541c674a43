//! The account routes of `kompass serve` as an attacker would try them: download, delete,
//! rider history, export and erase, each with another user's names, bad names, no token and
//! a wrong confirmation; then `/metrics` (its own secret, Prometheus text that moves with the
//! requests made), `/healthz` and `/readyz`. Local storage and SeaweedFS. Files are seeded
//! and checked through the CLI and the file system or the bucket, never only through the API.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::support::serve::{self, SERVER_SECRET as SECRET, token};
use crate::support::{self, uid};
use serde_json::{Value, json};

const METRICS: &str = "metrics-secret-7b1d93e2a0c44f5e";
const KEY: &str = "rider-test-key-0123456789abcdef-0123456789";

struct Server {
    run: serve::Running,
    data: PathBuf,
    dir: tempfile::TempDir,
    vars: Vec<(String, String)>,
    client: reqwest::Client,
}

fn start(vars: &[(&str, &str)]) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut all: Vec<(String, String)> = vec![
        ("KOMPASS_SERVER_SECRET".into(), SECRET.into()),
        ("KOMPASS_PSEUDONYM_KEY".into(), KEY.into()),
    ];
    all.extend(vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    let mut cmd = serve::command(dir.path(), &data);
    cmd.envs(all.iter().map(|(k, v)| (k, v))).stderr(Stdio::null());
    Server { run: serve::Running::spawn(cmd), data, dir, vars: all, client: reqwest::Client::new() }
}

struct Answer {
    status: u16,
    bytes: Vec<u8>,
    content_type: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes).unwrap_or(Value::Null)
    }
}

impl Server {
    /// The CLI on the server's data directory and configuration (an independent path).
    fn cli(&self, args: &[&str], stdin: Option<&[u8]>) -> (i32, Vec<u8>) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kompass"));
        cmd.arg("--data-dir")
            .arg(&self.data)
            .args(args)
            .current_dir(self.dir.path())
            .env_clear()
            .envs(self.vars.iter().map(|(k, v)| (k, v)))
            .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        if let Some(b) = stdin {
            std::io::Write::write_all(&mut child.stdin.take().unwrap(), b).unwrap();
        }
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "kompass {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        (0, out.stdout)
    }

    fn seed(&self, user: &str, name: &str, bytes: &[u8]) {
        self.cli(&["save", "--user", user, "--type", "routes", "--name", name, "-"], Some(bytes));
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        auth: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        let mut req = self.client.request(method, format!("{}{path}", self.run.base));
        if let Some(t) = auth {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b.to_string());
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let content_type = res
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        Answer { status, bytes: res.bytes().await.unwrap().to_vec(), content_type }
    }

    async fn get(&self, path: &str, auth: Option<&str>) -> Answer {
        self.call(reqwest::Method::GET, path, auth, None).await
    }

    async fn delete(&self, path: &str, auth: Option<&str>, body: Option<Value>) -> Answer {
        self.call(reqwest::Method::DELETE, path, auth, body).await
    }

    /// A file's bytes as the CLI loads them (S3 or local), `None` when it is gone.
    fn stored(&self, user: &str, name: &str) -> Option<Vec<u8>> {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kompass"));
        cmd.arg("--data-dir")
            .arg(&self.data)
            .args(["load", "--user", user, "--type", "routes", "--name", name])
            .current_dir(self.dir.path())
            .env_clear()
            .envs(self.vars.iter().map(|(k, v)| (k, v)));
        let out = cmd.output().unwrap();
        match out.status.code() {
            Some(0) => Some(out.stdout),
            Some(4) => None,
            other => panic!("load failed ({other:?}): {}", String::from_utf8_lossy(&out.stderr)),
        }
    }
}

fn unzip(bytes: &[u8]) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let mut out = std::collections::BTreeMap::new();
    for i in 0..zip.len() {
        let mut f = zip.by_index(i).unwrap();
        let mut b = Vec::new();
        f.read_to_end(&mut b).unwrap();
        out.insert(f.name().unwrap().to_string(), b);
    }
    out
}

/// Every route, every attack: the same checks on local storage and on S3.
/// Returns the two users, erased by now.
async fn account_routes_keep_users_apart(s: &Server) -> [String; 2] {
    let (alice, bob) = (uid("alice"), uid("bob"));
    let (ta, tb) = (token(&alice), token(&bob));
    let a1 = br#"{"route":"alice one"}"#.to_vec();
    let a2 = b"\x00\x01binary\xff".to_vec();
    s.seed(&alice, "a1.json", &a1);
    s.seed(&alice, "a2.gpx", &a2);
    s.seed(&bob, "b1.json", br#"{"route":"bob"}"#);
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/strava_export.json");
    s.cli(&["rider", "save", "--user", &alice, fixture.to_str().unwrap()], None);

    // Download: own files byte for byte; nothing of anyone else's.
    let got = s.get("/api/files/routes/a1.json", Some(&ta)).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.bytes, a1);
    assert_eq!(got.content_type, "application/json");
    let got = s.get("/api/files/routes/a2.gpx", Some(&ta)).await;
    assert_eq!((got.status, got.bytes.clone()), (200, a2.clone()));
    assert_eq!(
        s.get("/api/files/routes/a1.json", Some(&tb)).await.status,
        404,
        "bob's namespace has no a1.json"
    );
    assert_eq!(s.get("/api/files/routes/a1.json", None).await.status, 401);
    assert_eq!(s.get("/api/files/routes/a1.json", Some("forged.token")).await.status, 401);
    let attacks = [
        format!("/api/files/routes/..%2F..%2F{alice}%2Froutes%2Fa1.json"),
        format!("/api/files/routes/..%2F{alice}%2Fa1.json"),
        "/api/files/routes/..".to_owned(),
        "/api/files/routes/%2e%2e".to_owned(),
        "/api/files/routes/a1.json%00".to_owned(),
        format!("/api/files/routes/..%5C{alice}%5Ca1.json"),
        "/api/files/models/a1.json".to_owned(),
        "/api/files/users/a1.json".to_owned(),
        format!("/api/files/{alice}/a1.json"),
        "/api/files/routes/%E2%88%95etc%E2%88%95passwd".to_owned(),
    ];
    for path in &attacks {
        let a = s.get(path, Some(&tb)).await;
        assert!(
            matches!(a.status, 400 | 404),
            "{path}: {} {}",
            a.status,
            String::from_utf8_lossy(&a.bytes)
        );
        assert_ne!(a.bytes, a1, "{path} never yields alice's file");
        let body = String::from_utf8_lossy(&a.bytes);
        assert!(!body.contains(&s.data.display().to_string()), "no server paths in errors: {body}");
        let d = s.delete(path, Some(&tb), None).await;
        assert!(matches!(d.status, 400 | 404 | 405), "DELETE {path}: {}", d.status);
    }

    // Delete: bob cannot delete alice's file; alice can, and it is gone everywhere.
    assert_eq!(s.delete("/api/files/routes/a2.gpx", Some(&tb), None).await.status, 404);
    assert_eq!(s.delete("/api/files/routes/a2.gpx", None, None).await.status, 401);
    assert_eq!(s.stored(&alice, "a2.gpx"), Some(a2.clone()), "still there after bob's attempts");
    let d = s.delete("/api/files/routes/a2.gpx", Some(&ta), None).await;
    assert_eq!(d.status, 200, "{}", String::from_utf8_lossy(&d.bytes));
    assert_eq!(d.json()["key"], format!("users/{alice}/routes/a2.gpx"));
    assert_eq!(s.stored(&alice, "a2.gpx"), None);
    assert_eq!(s.delete("/api/files/routes/a2.gpx", Some(&ta), None).await.status, 404);

    // Rider history: alice sees her save; bob sees nothing of hers.
    let h = s.get("/api/rider/history", Some(&ta)).await;
    assert_eq!(h.status, 200);
    let entries = h.json();
    assert_eq!(entries.as_array().unwrap().len(), 1, "{entries:#}");
    assert!(entries[0]["name"].as_str().unwrap().starts_with("fitness_data_"));
    assert!(entries[0]["activity_count"].as_u64().unwrap() >= 1);
    assert_eq!(s.get("/api/rider/history", Some(&tb)).await.json(), json!([]));
    assert_eq!(s.get("/api/rider/history", None).await.status, 401);

    // Export: alice's files only, hashes in the manifest.
    let e = s.get("/api/export", Some(&ta)).await;
    assert_eq!(e.status, 200);
    assert_eq!(e.content_type, "application/zip");
    let zip = unzip(&e.bytes);
    assert_eq!(zip.get("routes/a1.json"), Some(&a1));
    assert!(zip.keys().any(|k| k.starts_with("fitness/fitness_data_")));
    assert!(!zip.keys().any(|k| k.contains("b1") || k.contains("a2")), "{:?}", zip.keys());
    let manifest: Value = serde_json::from_slice(&zip["manifest.json"]).unwrap();
    assert_eq!(manifest["user"], alice.as_str());
    for f in manifest["files"].as_array().unwrap() {
        let bytes = &zip[f["path"].as_str().unwrap()];
        assert_eq!(
            f["sha256"],
            kompass::manager::sha256(bytes).iter().map(|b| format!("{b:02x}")).collect::<String>()
        );
    }
    let eb = unzip(&s.get("/api/export", Some(&tb)).await.bytes);
    assert_eq!(
        eb.keys().cloned().collect::<Vec<_>>(),
        vec!["manifest.json".to_owned(), "routes/b1.json".to_owned()]
    );
    assert_eq!(s.get("/api/export", None).await.status, 401);

    // Erase: a confirmation is required and must name the token's own user.
    for body in [
        None,
        Some(json!({})),
        Some(json!({"confirm": bob})),
        Some(json!({"confirm": true})),
        Some(json!({"confirm": alice, "user": bob})),
    ] {
        let a = s.delete("/api/me", Some(&ta), body.clone()).await;
        assert_eq!(a.status, 400, "{body:?}");
        assert_eq!(a.json()["code"], "confirmation_required");
    }
    assert_eq!(s.delete("/api/me", None, Some(json!({"confirm": alice}))).await.status, 401);
    assert_eq!(s.stored(&alice, "a1.json"), Some(a1.clone()), "nothing erased by refused requests");
    // Bob confirming with alice's id erases nothing of alice's.
    assert_eq!(s.delete("/api/me", Some(&tb), Some(json!({"confirm": alice}))).await.status, 400);
    let r = s.delete("/api/me", Some(&ta), Some(json!({"confirm": alice}))).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.bytes));
    let report = r.json();
    assert_eq!(report["user"], alice.as_str());
    assert_eq!(report["complete"], true);
    assert!(report["removed"].as_array().unwrap().len() >= 2);
    assert_eq!(s.stored(&alice, "a1.json"), None);
    assert_eq!(s.get("/api/rider/history", Some(&ta)).await.json(), json!([]));
    assert_eq!(s.stored(&bob, "b1.json"), Some(br#"{"route":"bob"}"#.to_vec()), "bob untouched");
    // Idempotent.
    let again = s.delete("/api/me", Some(&ta), Some(json!({"confirm": alice}))).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.json()["removed"], json!([]));
    s.delete("/api/me", Some(&tb), Some(json!({"confirm": bob}))).await;
    [alice, bob]
}

#[tokio::test]
async fn account_routes_local() {
    let s = start(&[]);
    account_routes_keep_users_apart(&s).await;
}

#[tokio::test]
async fn account_routes_s3() {
    let Some(env) = support::s3_env("account_routes_s3") else { return };
    let s = start(&env.vars());
    let erased = account_routes_keep_users_apart(&s).await;
    // Independently: nothing is left under the users' prefixes in the bucket (the users by
    // name: other tests of this process leave users of their own, with the same pid).
    let all = env.store().list("users/").await.unwrap();
    assert!(
        !all.iter().any(|m| erased.iter().any(|u| m.key.starts_with(&format!("users/{u}/")))),
        "the erased users left objects behind"
    );
}

// ---- metrics, health -------------------------------------------------------------------

/// One sample: metric name, labels, value.
type Sample = (String, Vec<(String, String)>, f64);

/// Parses Prometheus/OpenMetrics text: every sample line `name{labels} value`, comments
/// `# TYPE/HELP/UNIT/EOF`, and the `# EOF` terminator. Panics on anything else.
fn parse_metrics(text: &str) -> Vec<Sample> {
    assert!(text.ends_with("# EOF\n"), "OpenMetrics text ends with # EOF");
    let mut out = Vec::new();
    for line in text.lines() {
        if let Some(c) = line.strip_prefix("# ") {
            assert!(
                ["TYPE ", "HELP ", "UNIT ", "EOF"].iter().any(|p| c.starts_with(p)),
                "bad comment: {line}"
            );
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("no value: {line}"));
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("bad value: {line}"));
        let (name, labels) = match series.split_once('{') {
            Some((n, rest)) => {
                let body =
                    rest.strip_suffix('}').unwrap_or_else(|| panic!("unclosed labels: {line}"));
                let mut labels = Vec::new();
                // Label values here never contain `",` (routes, users, statuses).
                for pair in body.split("\",").filter(|p| !p.is_empty()) {
                    let (k, v) =
                        pair.split_once("=\"").unwrap_or_else(|| panic!("bad label: {line}"));
                    labels.push((k.to_owned(), v.trim_end_matches('"').to_owned()));
                }
                (n, labels)
            }
            None => (series, Vec::new()),
        };
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad name: {line}"
        );
        out.push((name.to_owned(), labels, value));
    }
    out
}

fn sample(m: &[Sample], name: &str, want: &[(&str, &str)]) -> f64 {
    m.iter()
        .filter(|(n, labels, _)| {
            n == name && want.iter().all(|(k, v)| labels.iter().any(|(lk, lv)| lk == k && lv == v))
        })
        .map(|(_, _, v)| v)
        .sum()
}

async fn scrape(s: &Server) -> Vec<Sample> {
    let a = s.get("/metrics", Some(METRICS)).await;
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.bytes));
    parse_metrics(&String::from_utf8(a.bytes).unwrap())
}

#[tokio::test]
async fn metrics_need_their_own_secret_and_move_with_requests() {
    let off = start(&[]);
    assert_eq!(
        off.get("/metrics", Some(METRICS)).await.status,
        404,
        "off without KOMPASS_METRICS_TOKEN"
    );
    assert_eq!(off.get("/healthz", None).await.status, 200);
    assert_eq!(off.get("/readyz", None).await.json()["ready"], true);
    drop(off);

    let s = start(&[("KOMPASS_METRICS_TOKEN", METRICS)]);
    let alice = uid("alice");
    assert_eq!(s.get("/metrics", None).await.status, 401);
    assert_eq!(s.get("/metrics", Some("wrong")).await.status, 401);
    assert_eq!(
        s.get("/metrics", Some(&token(&alice))).await.status,
        401,
        "a user token is not the metrics secret"
    );

    s.seed(&alice, "m.json", b"{\"x\":1}");
    let route = [("route", "/api/files/{type}/{name}"), ("status", "200")];
    let before = scrape(&s).await;
    let b200 = sample(&before, "kompass_http_requests_total", &route);
    let b404 = sample(
        &before,
        "kompass_http_requests_total",
        &[("route", "/api/files/{type}/{name}"), ("status", "404")],
    );
    assert_eq!(
        sample(&before, "kompass_stored_objects", &[("scope", "user"), ("user", &alice)]),
        1.0
    );
    assert_eq!(
        sample(&before, "kompass_stored_bytes", &[("scope", "user"), ("user", &alice)]),
        7.0
    );
    assert_eq!(sample(&before, "kompass_request_budget_left", &[("class", "put")]), 2000.0);
    for _ in 0..3 {
        assert_eq!(s.get("/api/files/routes/m.json", Some(&token(&alice))).await.status, 200);
    }
    assert_eq!(s.get("/api/files/routes/none.json", Some(&token(&alice))).await.status, 404);
    let after = scrape(&s).await;
    assert_eq!(sample(&after, "kompass_http_requests_total", &route) - b200, 3.0);
    assert_eq!(
        sample(
            &after,
            "kompass_http_requests_total",
            &[("route", "/api/files/{type}/{name}"), ("status", "404")]
        ) - b404,
        1.0
    );
    assert!(
        !after.iter().any(|(_, labels, _)| labels
            .iter()
            .any(|(_, v)| v.contains("m.json") || v.contains("none.json"))),
        "labels carry route patterns, never file names"
    );
    assert!(
        sample(&after, "kompass_http_requests_total", &[("route", "/metrics"), ("status", "200")])
            >= 1.0
    );
    s.delete("/api/files/routes/m.json", Some(&token(&alice)), None).await;
    assert_eq!(
        sample(&scrape(&s).await, "kompass_stored_objects", &[("scope", "user"), ("user", &alice)]),
        0.0
    );
}

#[tokio::test]
async fn s3_metrics_count_requests_by_outcome_and_readyz_sees_a_dead_endpoint() {
    let Some(env) = support::s3_env("s3_metrics_count_requests") else { return };
    let s3 = |endpoint: &str| {
        vec![
            ("KOMPASS_METRICS_TOKEN".to_owned(), METRICS.to_owned()),
            ("S3_STORAGE_ENABLED".to_owned(), "true".to_owned()),
            ("AWS_ENDPOINT_URL".to_owned(), endpoint.to_owned()),
            ("AWS_REGION".to_owned(), env.region.clone()),
            ("AWS_S3_BUCKET".to_owned(), env.bucket.clone()),
            ("AWS_ACCESS_KEY_ID".to_owned(), env.access_key_id.clone()),
            ("AWS_SECRET_ACCESS_KEY".to_owned(), env.secret_access_key.clone()),
        ]
    };
    let vars = s3(&env.endpoint);
    let refs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let s = start(&refs);
    let alice = uid("alice");
    s.seed(&alice, "m.json", b"{}");
    let before = scrape(&s).await;
    let ok_get = sample(&before, "kompass_s3_requests_total", &[("op", "GET"), ("outcome", "ok")]);
    assert_eq!(s.get("/api/files/routes/m.json", Some(&token(&alice))).await.status, 200);
    let after = scrape(&s).await;
    assert_eq!(
        sample(&after, "kompass_s3_requests_total", &[("op", "GET"), ("outcome", "ok")]) - ok_get,
        1.0
    );
    assert!(sample(&after, "kompass_request_budget_used", &[("class", "get")]) >= 1.0);
    assert_eq!(s.get("/readyz", None).await.status, 200);
    s.delete("/api/me", Some(&token(&alice)), Some(json!({"confirm": alice}))).await;
    drop(s);

    let dead = s3(&format!("http://127.0.0.1:{}", support::closed_port()));
    let refs: Vec<(&str, &str)> = dead.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let d = start(&refs);
    assert_eq!(d.get("/healthz", None).await.status, 200, "the process is up");
    let r = d.get("/readyz", None).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["ready"], false);
    assert!(r.json()["checks"]["s3"].as_str().unwrap().contains("does not accept"));
    let m = scrape(&d).await;
    assert_eq!(sample(&m, "kompass_s3_degraded", &[]), 1.0, "the scrape says S3 could not be read");
    assert!(
        sample(&m, "kompass_s3_requests_total", &[("op", "LIST"), ("outcome", "unreachable")])
            >= 1.0
    );
}

// ---- background jobs -------------------------------------------------------------------

/// A local webhook receiver: records each POSTed JSON body, answers 200.
fn webhook() -> (String, std::sync::Arc<std::sync::Mutex<Vec<Value>>>) {
    use std::io::Write;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = got.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let body = loop {
                let n = conn.read(&mut chunk).unwrap_or(0);
                if n == 0 {
                    break None;
                }
                buf.extend_from_slice(&chunk[..n]);
                if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| {
                            l.strip_prefix("content-length:").map(|v| v.trim().parse().unwrap())
                        })
                        .unwrap_or(0);
                    if buf.len() >= end + 4 + len {
                        break Some(buf[end + 4..end + 4 + len].to_vec());
                    }
                }
            };
            if let Some(b) = body {
                seen.lock().unwrap().push(serde_json::from_slice(&b).unwrap_or(Value::Null));
            }
            let _ = conn
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
        }
    });
    (url, got)
}

/// Writes a file straight into the local layout (no admission, no cleanup on the way).
fn plant(s: &Server, user: &str, name: &str, kib: usize) {
    let dir = s.data.join("routes").join(user);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), vec![b'x'; kib * 1024]).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
}

fn alerts_for<'a>(got: &'a [Value], scope: &str) -> Vec<&'a Value> {
    got.iter().filter(|a| a["scope"] == scope).collect()
}

#[tokio::test]
async fn an_alert_fires_once_per_crossing_to_the_webhook() {
    let (hook, got) = webhook();
    let s = start(&[
        ("S3_MAX_USER_STORAGE_MB", "1"),
        ("S3_AUTO_CLEANUP_ENABLED", "false"),
        ("KOMPASS_ALERT_INTERVAL_SECS", "1"),
        ("KOMPASS_ALERT_WEBHOOK", &hook),
    ]);
    let u = uid("alerted");
    let scope = format!("user:{u}");
    plant(&s, &u, "a.bin", 750); // 73 %: the cleanup level
    tokio::time::sleep(std::time::Duration::from_millis(3500)).await;
    let first = alerts_for(&got.lock().unwrap(), &scope).into_iter().cloned().collect::<Vec<_>>();
    assert_eq!(first.len(), 1, "one alert for one crossing, over three ticks: {first:?}");
    assert_eq!(first[0]["level"], "cleanup");
    assert!(first[0]["text"].as_str().unwrap().contains(&u), "Slack-compatible text: {}", first[0]);
    plant(&s, &u, "b.bin", 200); // 92 %: critical
    tokio::time::sleep(std::time::Duration::from_millis(3500)).await;
    let all = got.lock().unwrap().clone();
    let mine = alerts_for(&all, &scope);
    assert_eq!(mine.len(), 2, "{mine:?}");
    assert_eq!(mine[1]["level"], "critical");
    assert!(mine[1]["percent"].as_f64().unwrap() > 90.0);
    // Other users are quiet.
    assert!(all.iter().all(|a| a["scope"] == scope.as_str() || a["scope"] == "bucket"), "{all:?}");
}

#[tokio::test]
async fn scheduled_cleanup_runs_only_when_auto_cleanup_is_on() {
    let off = start(&[
        ("S3_MAX_USER_STORAGE_MB", "1"),
        ("S3_AUTO_CLEANUP_ENABLED", "false"),
        ("KOMPASS_CLEANUP_INTERVAL_SECS", "1"),
    ]);
    let on = start(&[
        ("S3_MAX_USER_STORAGE_MB", "1"),
        ("KOMPASS_CLEANUP_INTERVAL_SECS", "1"),
        ("KOMPASS_METRICS_TOKEN", METRICS),
    ]);
    let u = uid("full");
    for s in [&off, &on] {
        for i in 0..7 {
            plant(s, &u, &format!("r{i}.bin"), 120); // 840 KiB of 1 MiB: over the 70 % threshold
        }
    }
    tokio::time::sleep(std::time::Duration::from_millis(3500)).await;
    let count = |s: &Server| std::fs::read_dir(s.data.join("routes").join(&u)).unwrap().count();
    assert_eq!(count(&off), 7, "auto-cleanup off: nothing deleted");
    let left = count(&on);
    assert!((5..7).contains(&left), "oldest deleted, min-keep 5 held: {left}");
    assert!(!on.data.join("routes").join(&u).join("r0.bin").exists(), "the oldest goes first");
    assert!(on.data.join("routes").join(&u).join("r6.bin").exists());
    let m = scrape(&on).await;
    assert_eq!(sample(&m, "kompass_cleanup_deletions_total", &[]), (7 - left) as f64);
}
