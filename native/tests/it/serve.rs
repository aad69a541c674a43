//! `kompass serve` end to end through HTTP: the real binary on a free port with a temp data
//! directory. Checks go through an independent path (the file system, or the bucket listed
//! by the S3 store), never only through the API's own answers.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::Duration;

use crate::support;
use crate::support::serve::{self, SERVER_SECRET as SECRET, token, unix_now};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use kompass::serve::upload::Grant;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The pseudonym key every test server gets (rider data is stored only with one).
const PSEUDONYM_KEY: &str = "serve-test-pseudonym-key-0123456789";
const PSEUDONYM_KEY_ID: &str = "ks1";

fn pseudonym_key() -> kompass_core::scrub::PseudonymKey {
    kompass_core::scrub::PseudonymKey::new(PSEUDONYM_KEY_ID, PSEUDONYM_KEY.as_bytes()).unwrap()
}

fn sha_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A running `kompass serve`, stopped on drop.
struct Server {
    child: Child,
    base: String,
    page_url: String,
    data: PathBuf,
    _dir: tempfile::TempDir,
    client: reqwest::Client,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the binary in a temp dir (so no `.env` is read) with exactly `vars`, PATH and HOME.
fn start(vars: &[(&str, &str)]) -> Result<Server, String> {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut cmd = serve::command(dir.path(), &data);
    cmd.env("KOMPASS_PSEUDONYM_KEY", PSEUDONYM_KEY)
        .env("KOMPASS_PSEUDONYM_KEY_ID", PSEUDONYM_KEY_ID)
        .stderr(Stdio::piped());
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("the kompass binary starts");
    let stdout = child.stdout.take().unwrap();
    // Drained all along, so a chatty server never blocks on a full pipe.
    let mut stderr = child.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
        text
    });
    let mut printed = String::new();
    let Some(page_url) = serve::page_url(&mut BufReader::new(stdout).lines(), &mut printed) else {
        let status = child.wait().unwrap();
        let err = stderr.join().unwrap();
        return Err(format!("serve exited ({status}) without a page URL:\n{printed}\n{err}"));
    };
    let base = page_url.split("/#").next().unwrap().to_owned();
    Ok(Server { child, base, page_url, data, _dir: dir, client: reqwest::Client::new() })
}

fn local_server() -> Server {
    start(&[("KOMPASS_SERVER_SECRET", SECRET)]).unwrap()
}

/// An answer: status and JSON body (Null when the body is not JSON).
struct Answer {
    status: u16,
    body: Value,
    www_authenticate: Option<String>,
}

impl Server {
    async fn send(&self, req: reqwest::RequestBuilder) -> Answer {
        let res = req.send().await.expect("the server answers");
        let status = res.status().as_u16();
        let www_authenticate =
            res.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_owned());
        let bytes = res.bytes().await.unwrap();
        Answer {
            status,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            www_authenticate,
        }
    }

    async fn get(&self, path: &str, token: Option<&str>) -> Answer {
        let mut req = self.client.get(format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        self.send(req).await
    }

    async fn presign(&self, token: &str, body: Value) -> Answer {
        let req = self
            .client
            .post(format!("{}/api/presign", self.base))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body.to_string());
        self.send(req).await
    }

    /// Presigns `bytes` as `type`/`name` and returns the answer's body (asserting 200).
    async fn grant(&self, token: &str, data_type: &str, name: &str, bytes: &[u8]) -> Value {
        let a = self
            .presign(
                token,
                json!({"type": data_type, "name": name, "size": bytes.len(), "sha256": sha_hex(bytes)}),
            )
            .await;
        assert_eq!(a.status, 200, "{}", a.body);
        a.body
    }

    /// PUTs `bytes` to a (relative or absolute) upload URL with the given headers.
    async fn put(&self, url: &str, bytes: &[u8], headers: &[(&str, &str)]) -> Answer {
        let url = if url.starts_with('/') { format!("{}{url}", self.base) } else { url.to_owned() };
        let mut req = self.client.put(url).body(bytes.to_vec());
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        self.send(req).await
    }

    /// Presigns and uploads `bytes`; returns the key.
    async fn upload(&self, token: &str, data_type: &str, name: &str, bytes: &[u8]) -> String {
        let g = self.grant(token, data_type, name, bytes).await;
        let a = self.put(g["url"].as_str().unwrap(), bytes, &[]).await;
        assert_eq!(a.status, 201, "{}", a.body);
        g["key"].as_str().unwrap().to_owned()
    }

    /// `POST /api/rider` with `bytes` (and, when given, the `x-kompass-sha256` header).
    async fn rider(&self, token: &str, bytes: &[u8], sha256: Option<&str>) -> Answer {
        let mut req = self
            .client
            .post(format!("{}/api/rider", self.base))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(bytes.to_vec());
        if let Some(h) = sha256 {
            req = req.header("x-kompass-sha256", h);
        }
        self.send(req).await
    }

    fn stored(&self, data_type: &str, user: &str, name: &str) -> Option<Vec<u8>> {
        std::fs::read(self.data.join(data_type).join(user).join(name)).ok()
    }

    fn stored_names(&self, data_type: &str, user: &str) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.data.join(data_type).join(user))
            .map(|d| d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        names.sort();
        names
    }
}

fn grant_of(url: &str) -> &str {
    url.strip_prefix("/api/upload/").expect("a local upload URL")
}

// ------------------------------------------------------------------------------ auth

#[tokio::test]
async fn every_api_route_needs_a_valid_bearer_token() {
    let s = local_server();
    let other_secret = "0000000000000000000000000000000000000000000000000000000000000000";
    let cases: Vec<(&str, Option<String>, &str)> = vec![
        ("no header", None, "sign in"),
        ("garbage", Some("Bearer not-a-token".into()), "malformed"),
        (
            "other secret",
            Some(format!(
                "Bearer {}",
                kompass_core::token::mint("alice", unix_now() + 600, other_secret.as_bytes())
            )),
            "signature",
        ),
        (
            "expired",
            Some(format!(
                "Bearer {}",
                kompass_core::token::mint("alice", unix_now() - 1, SECRET.as_bytes())
            )),
            "expired",
        ),
        ("basic scheme", Some(format!("Basic {}", token("alice"))), "Bearer TOKEN"),
        (
            "bad user id",
            Some(format!(
                "Bearer {}",
                kompass_core::token::mint("../bob", unix_now() + 600, SECRET.as_bytes())
            )),
            "unusable user",
        ),
    ];
    for (what, header, says) in &cases {
        for (method, path) in [
            ("GET", "/api/usage"),
            ("GET", "/api/files"),
            ("POST", "/api/presign"),
            ("POST", "/api/rider"),
        ] {
            let mut req = match method {
                "GET" => s.client.get(format!("{}{path}", s.base)),
                _ => s
                    .client
                    .post(format!("{}{path}", s.base))
                    .header("content-type", "application/json")
                    .body(json!({"type": "fitness", "name": "a.json", "size": 1, "sha256": sha_hex(b"x")}).to_string()),
            };
            if let Some(h) = header {
                req = req.header("authorization", h);
            }
            let a = s.send(req).await;
            assert_eq!(a.status, 401, "{what} {method} {path}: {}", a.body);
            assert_eq!(a.body["code"], "unauthorized");
            let msg = a.body["error"].as_str().unwrap();
            assert!(msg.contains(says), "{what}: {msg}");
            assert!(a.www_authenticate.as_deref().unwrap().starts_with("Bearer"), "{what}");
        }
    }
    // Nothing was granted, so nothing was stored.
    assert!(!s.data.join("fitness").exists());
    // The same routes answer with a valid token.
    assert_eq!(s.get("/api/usage", Some(&token("alice"))).await.status, 200);
}

#[tokio::test]
async fn the_user_comes_from_the_token_only() {
    let s = local_server();
    let alice = token("alice");
    let bob = token("bob");
    // A body that names a user (or anything else unknown) is refused, not ignored.
    let a = s
        .presign(&alice, json!({"type": "fitness", "name": "a.json", "size": 2, "sha256": sha_hex(b"{}"), "user": "bob"}))
        .await;
    assert_eq!(a.status, 400, "{}", a.body);
    assert!(a.body["error"].as_str().unwrap().contains("user"), "{}", a.body);
    // Names that would leave the user's prefix are refused.
    for name in ["../bob/a.json", "..", "a/b.json", "a\\b.json", "a\u{2215}b.json", ""] {
        let a = s
            .presign(
                &alice,
                json!({"type": "fitness", "name": name, "size": 2, "sha256": sha_hex(b"{}")}),
            )
            .await;
        assert_eq!(a.status, 400, "{name:?}: {}", a.body);
        assert_eq!(a.body["code"], "invalid_key", "{name:?}");
    }
    // Global data types are not a user's to write.
    for t in ["models", "training_data", "nonsense"] {
        let a = s
            .presign(
                &alice,
                json!({"type": t, "name": "m.bin", "size": 2, "sha256": sha_hex(b"{}")}),
            )
            .await;
        assert_eq!(a.status, 400, "{t}: {}", a.body);
    }
    // A query naming a user is refused too.
    assert_eq!(s.get("/api/files?user=bob", Some(&alice)).await.status, 400);

    // A route of alice's lands under alice's prefix only.
    let doc = br#"{"activities":[{"distance":1}]}"#;
    let key = s.upload(&alice, "routes", "a.json", doc).await;
    assert_eq!(key, "users/alice/routes/a.json");
    assert_eq!(s.stored("routes", "alice", "a.json").as_deref(), Some(&doc[..]));
    assert!(!s.data.join("routes").join("bob").exists());

    // Bob sees none of it.
    let files = s.get("/api/files", Some(&bob)).await;
    assert_eq!(files.body, json!([]));
    let usage = s.get("/api/usage", Some(&bob)).await;
    assert_eq!(usage.body["user"], "bob");
    assert_eq!(usage.body["usage"]["user_bytes"], 0);
    assert_eq!(
        usage.body["usage"]["bucket_bytes"],
        doc.len(),
        "the bucket total counts alice's bytes"
    );
    let files = s.get("/api/files", Some(&alice)).await;
    assert_eq!(files.body.as_array().unwrap().len(), 1);
}

// ---------------------------------------------------------------------------- upload

#[tokio::test]
async fn the_upload_endpoint_takes_exactly_the_granted_bytes() {
    let s = local_server();
    let alice = token("alice");
    let bytes = br#"{"activities":[{"distance":1000.5}]}"#;
    let g = s.grant(&alice, "routes", "exact.json", bytes).await;
    assert_eq!(g["backend"], "local");
    assert_eq!(g["method"], "PUT");
    assert_eq!(g["key"], "users/alice/routes/exact.json");
    assert_eq!(g["headers"]["content-length"], bytes.len().to_string());
    let url = g["url"].as_str().unwrap();
    let checksum = g["headers"]["x-amz-checksum-sha256"].as_str().unwrap();

    // A body of another size.
    let mut longer = bytes.to_vec();
    longer.push(b' ');
    let a = s.put(url, &longer, &[]).await;
    assert_eq!((a.status, a.body["code"].as_str()), (400, Some("size_mismatch")), "{}", a.body);
    let a = s.put(url, &bytes[1..], &[]).await;
    assert_eq!((a.status, a.body["code"].as_str()), (400, Some("size_mismatch")), "{}", a.body);
    // Same size, other bytes (e.g. the unscrubbed document).
    let mut other = bytes.to_vec();
    other[20] ^= 1;
    let a = s.put(url, &other, &[]).await;
    assert_eq!((a.status, a.body["code"].as_str()), (400, Some("sha256_mismatch")), "{}", a.body);
    // The right bytes with a checksum header for other bytes.
    let wrong_checksum = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&other));
    let a = s.put(url, bytes, &[("x-amz-checksum-sha256", &wrong_checksum)]).await;
    assert_eq!((a.status, a.body["code"].as_str()), (400, Some("checksum_mismatch")), "{}", a.body);

    // An expired grant (signed with the server's own secret, so only the expiry is wrong).
    let expired = Grant {
        key: "users/alice/routes/exact.json".into(),
        size: bytes.len() as u64,
        sha256: Sha256::digest(bytes).into(),
        expires_at: unix_now() - 1,
    };
    let a = s.put(&format!("/api/upload/{}", expired.sign(SECRET.as_bytes())), bytes, &[]).await;
    assert_eq!((a.status, a.body["code"].as_str()), (403, Some("grant_expired")), "{}", a.body);

    // Tampered grants: another user's key under the old signature, a changed signature, a
    // grant from another secret.
    let (payload, tag) = grant_of(url).split_once('.').unwrap();
    let mut claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    claims["key"] = json!("users/bob/routes/exact.json");
    let forged = format!("{}.{tag}", URL_SAFE_NO_PAD.encode(claims.to_string()));
    let mut flipped = tag.to_owned().into_bytes();
    flipped[5] = if flipped[5] == b'A' { b'B' } else { b'A' };
    let flipped = format!("{payload}.{}", String::from_utf8(flipped).unwrap());
    let foreign = Grant { expires_at: unix_now() + 600, ..expired.clone() }
        .sign(b"another secret, long enough to be used...");
    for (what, g) in [
        ("forged key", forged),
        ("flipped signature", flipped),
        ("other secret", foreign),
        ("garbage", "xyz".into()),
    ] {
        let a = s.put(&format!("/api/upload/{g}"), bytes, &[]).await;
        assert_eq!(
            (a.status, a.body["code"].as_str()),
            (403, Some("grant_invalid")),
            "{what}: {}",
            a.body
        );
    }

    // No Content-Length (chunked): refused before reading.
    assert_eq!(raw_chunked_put(&s.base, url, bytes).await, 411);

    // None of that stored anything, for alice or bob.
    assert_eq!(s.stored_names("routes", "alice"), Vec::<String>::new());
    assert_eq!(s.stored_names("routes", "bob"), Vec::<String>::new());

    // The exact bytes, with the headers the answer gave, are stored as they are.
    let a = s.put(url, bytes, &[("x-amz-checksum-sha256", checksum)]).await;
    assert_eq!(a.status, 201, "{}", a.body);
    assert_eq!(a.body["backend"], "local");
    assert_eq!(a.body["key"], "users/alice/routes/exact.json");
    assert_eq!(a.body["bytes"], bytes.len());
    assert_eq!(s.stored("routes", "alice", "exact.json").as_deref(), Some(&bytes[..]));
}

/// A PUT with `Transfer-Encoding: chunked` and no Content-Length; returns the status.
async fn raw_chunked_put(base: &str, path: &str, body: &[u8]) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = base.strip_prefix("http://").unwrap();
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    let mut req = format!(
        "PUT {path} HTTP/1.1\r\nhost: {host}\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n{:x}\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    req.extend_from_slice(b"\r\n0\r\n\r\n");
    stream.write_all(&req).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let text = String::from_utf8_lossy(&answer);
    text.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {text}"))
}

// ---------------------------------------------------------------------------- limits

#[tokio::test]
async fn limits_are_enforced_at_presign_and_again_at_upload() {
    // 1 MiB per file; a 20 000-byte quota; no cleanup, so the quota is a hard limit.
    let s = start(&[
        ("KOMPASS_SERVER_SECRET", SECRET),
        ("S3_MAX_FILE_SIZE_MB", "1"),
        ("S3_MAX_USER_STORAGE_MB", "0.019073486328125"),
        ("S3_AUTO_CLEANUP_ENABLED", "false"),
    ])
    .unwrap();
    let alice = token("alice");
    let usage = s.get("/api/usage", Some(&alice)).await.body;
    assert_eq!(usage["limits"]["max_file_bytes"], 1 << 20);
    assert_eq!(usage["limits"]["max_user_bytes"], 20_000);
    assert_eq!(usage["auto_cleanup"], false);

    let a = s
        .presign(&alice, json!({"type": "routes", "name": "big.json", "size": (1 << 20) + 1, "sha256": sha_hex(b"x")}))
        .await;
    assert_eq!(a.status, 413, "{}", a.body);
    assert_eq!(a.body["refusal"]["reason"], "file_too_large");

    // Two grants that each fit, but not together: a grant reserves its bytes, so the second
    // is refused at presign, before any URL is handed out (issue 9: reservations).
    let first = vec![b'a'; 12_000];
    let second = vec![b'b'; 12_000];
    let g1 = s.grant(&alice, "routes", "one.json", &first).await;
    let a = s
        .presign(&alice, json!({"type": "routes", "name": "two.json", "size": second.len(), "sha256": sha_hex(&second)}))
        .await;
    assert_eq!(a.status, 507, "{}", a.body);
    assert_eq!(a.body["refusal"]["reason"], "user_quota_exceeded");
    assert_eq!(s.put(g1["url"].as_str().unwrap(), &first, &[]).await.status, 201);
    assert_eq!(s.stored_names("routes", "alice"), vec!["one.json".to_owned()]);
    // And a new presign over the quota is refused before any URL is handed out.
    let a = s
        .presign(
            &alice,
            json!({"type": "routes", "name": "three.json", "size": 9_000, "sha256": sha_hex(b"x")}),
        )
        .await;
    assert_eq!(a.status, 507, "{}", a.body);
    assert_eq!(a.body["refusal"]["user"], "alice");
    // Another user's quota is their own.
    assert_eq!(
        s.presign(
            &token("bob"),
            json!({"type": "routes", "name": "three.json", "size": 9_000, "sha256": sha_hex(b"x")})
        )
        .await
        .status,
        200
    );
}

#[tokio::test]
async fn cleanup_makes_room_oldest_first_when_enabled() {
    // A 3 000-byte quota, cleanup at 70 %, keep 1 file: the third 1 000-byte upload removes
    // the oldest file first.
    let s = start(&[
        ("KOMPASS_SERVER_SECRET", SECRET),
        ("S3_MAX_USER_STORAGE_MB", "0.00286102294921875"),
        ("S3_MIN_FILES_TO_KEEP", "1"),
    ])
    .unwrap();
    let alice = token("alice");
    for name in ["r1.json", "r2.json"] {
        s.upload(&alice, "routes", name, &[b'x'; 1000]).await;
        // Distinct modification times, so "oldest" is well defined.
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    // A grant deletes nothing (issue 9); the cleanup runs once the upload is stored.
    let g = s.grant(&alice, "routes", "r3.json", &[b'y'; 1000]).await;
    assert_eq!(g["cleanup"], json!([]), "{g}");
    assert_eq!(s.stored_names("routes", "alice"), ["r1.json", "r2.json"]);
    let put = s.put(g["url"].as_str().unwrap(), &[b'y'; 1000], &[]).await;
    assert_eq!(put.status, 201);
    let cleaned: Vec<&str> = put.body["cleaned"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["key"].as_str().unwrap())
        .collect();
    assert_eq!(cleaned, ["users/alice/routes/r1.json"], "{}", put.body);
    assert_eq!(s.stored_names("routes", "alice"), ["r2.json", "r3.json"]);
}

// ------------------------------------------------------------------- files and usage

#[tokio::test]
async fn files_and_usage_have_their_documented_shapes() {
    let s = local_server();
    let alice = token("alice");
    let usage = s.get("/api/usage", Some(&alice)).await;
    assert_eq!(usage.status, 200);
    assert_eq!(usage.body["quota"]["used"], 0);
    assert_eq!(usage.body["quota"]["level"], "normal");

    s.upload(&alice, "routes", "route.json", b"[1,2,3]").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // Rider data goes through the server's rider route, which names it.
    let a = s.rider(&alice, br#"{"activities":[]}"#, None).await;
    assert_eq!(a.status, 201, "{}", a.body);
    let name = a.body["name"].as_str().unwrap().to_owned();
    let doc = s.stored("fitness", "alice", &name).unwrap();

    let files = s.get("/api/files", Some(&alice)).await;
    assert_eq!(files.status, 200);
    let list = files.body.as_array().unwrap();
    assert_eq!(list.len(), 2);
    for f in list {
        let mut fields: Vec<&str> = f.as_object().unwrap().keys().map(String::as_str).collect();
        fields.sort();
        assert_eq!(fields, ["backend", "key", "last_modified", "name", "size", "type"], "{f}");
        assert_eq!(f["backend"], "local");
        assert!(f["last_modified"].as_str().unwrap().ends_with('Z'));
    }
    // Newest first.
    assert!(name.starts_with("fitness_data_"), "{name}");
    assert_eq!(list[0]["name"], name.as_str());
    assert_eq!(list[0]["type"], "fitness");
    assert_eq!(list[0]["key"], format!("users/alice/fitness/{name}"));
    assert_eq!(list[0]["size"], doc.len());
    assert_eq!(list[1]["name"], "route.json");
    assert_eq!(list[1]["type"], "routes");

    let routes = s.get("/api/files?type=routes", Some(&alice)).await.body;
    assert_eq!(routes.as_array().unwrap().len(), 1);
    assert_eq!(routes[0]["name"], "route.json");
    for bad in ["models", "training_data", "bogus"] {
        let a = s.get(&format!("/api/files?type={bad}"), Some(&alice)).await;
        assert_eq!(a.status, 400, "{bad}: {}", a.body);
    }

    let u = s.get("/api/usage", Some(&alice)).await.body;
    assert_eq!(u["user"], "alice");
    assert_eq!(u["backend"], "local");
    let used = b"[1,2,3]".len() + doc.len();
    assert_eq!(u["usage"], json!({"user_bytes": used, "bucket_bytes": used}));
    assert_eq!(u["quota"]["used"], used);
    assert_eq!(u["quota"]["limit"], 100 << 20);
    assert_eq!(u["quota"]["level"], "normal");
    assert_eq!(u["quota"]["cleanup_due"], false);
    assert_eq!(u["limits"]["cleanup_threshold_percent"], 70);
    let types = u["types"].as_array().unwrap();
    assert_eq!(types.len(), 2);
    assert_eq!(
        types[0],
        json!({"type": "routes", "bytes": 7, "files": 1, "percent": 7.0 * 100.0 / (100u64 << 20) as f64, "level": "normal"})
    );
    assert_eq!(types[1]["type"], "fitness");
    assert_eq!(types[1]["files"], 1);
}

#[tokio::test]
async fn usage_levels_follow_the_quota() {
    // A 10 000-byte quota: 8 500 bytes is "warning" (80 %), 9 500 "critical" (90 %).
    let s = start(&[
        ("KOMPASS_SERVER_SECRET", SECRET),
        ("S3_MAX_USER_STORAGE_MB", "0.0095367431640625"),
        ("S3_AUTO_CLEANUP_ENABLED", "false"),
    ])
    .unwrap();
    let alice = token("alice");
    // A rider document whose stored (server-scrubbed) form is exactly 8 500 bytes: the
    // distance's (fraction) digits are kept byte for byte, so their count sets the size.
    let doc =
        |digits: usize| format!("{{\"activities\":[{{\"distance\":1.0{}}}]}}", "0".repeat(digits));
    let stored_len = |d: usize| {
        kompass_core::scrub::scrub_incoming(doc(d).as_bytes(), &pseudonym_key(), "alice")
            .unwrap()
            .document
            .len()
    };
    let digits = 8500 - stored_len(0);
    assert_eq!(stored_len(digits), 8500);
    let a = s.rider(&alice, doc(digits).as_bytes(), None).await;
    assert_eq!((a.status, &a.body["bytes"]), (201, &json!(8500)), "{}", a.body);
    let u = s.get("/api/usage", Some(&alice)).await.body;
    assert_eq!(u["quota"]["level"], "warning", "{u}");
    assert_eq!(u["types"][1]["level"], "warning");
    assert_eq!(u["types"][0]["level"], "normal");
    s.upload(&alice, "routes", "b.json", &[b'2'; 1000]).await;
    let u = s.get("/api/usage", Some(&alice)).await.body;
    assert_eq!(u["quota"]["level"], "critical", "{u}");
    assert_eq!(u["types"][1]["level"], "warning", "fitness alone is still at 85 %");
}

// ----------------------------------------------------------------- start-up and page

#[tokio::test]
async fn start_up_prints_a_sign_in_link_for_the_dev_user() {
    let s = local_server();
    let (base, tok) = s.page_url.split_once("/#token=").unwrap();
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");
    let claims = kompass_core::token::verify(tok, SECRET.as_bytes(), unix_now()).unwrap();
    assert_eq!(claims.user, "dev-rider");
    assert!(claims.expires_at > unix_now() + 3600);
    assert_eq!(s.get("/api/usage", Some(tok)).await.body["user"], "dev-rider");

    // The page, with its security headers; unknown API routes answer JSON.
    let res = s.client.get(format!("{}/", s.base)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let csp = res.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(res.text().await.unwrap().contains("<title>KOMpass"));
    let a = s.get("/api/nope", Some(tok)).await;
    assert_eq!((a.status, a.body["code"].as_str()), (404, Some("no_such_route")));
    assert_eq!(s.get("/api/usage", Some(tok)).await.status, 200);
}

#[tokio::test]
async fn without_a_secret_local_serve_uses_an_ephemeral_one() {
    let s = start(&[]).unwrap();
    let tok = s.page_url.split_once("/#token=").unwrap().1;
    // Its own link works; a token minted with any fixed secret does not.
    assert_eq!(s.get("/api/usage", Some(tok)).await.status, 200);
    assert_eq!(s.get("/api/usage", Some(&token("dev-rider"))).await.status, 401);
}

#[test]
fn without_a_secret_s3_serve_refuses_to_start() {
    let err = match start(&[
        ("S3_STORAGE_ENABLED", "true"),
        ("AWS_S3_BUCKET", "kompass-bucket"),
        ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
        ("AWS_SECRET_ACCESS_KEY", "secret"),
        ("AWS_ENDPOINT_URL", &format!("http://127.0.0.1:{}", support::closed_port())),
    ]) {
        Ok(_) => panic!("serve started without KOMPASS_SERVER_SECRET while S3 is enabled"),
        Err(e) => e,
    };
    assert!(
        err.contains("exit status: 2") && err.contains("KOMPASS_SERVER_SECRET is not set"),
        "{err}"
    );
}

// ------------------------------------------------------------------------------- S3

#[tokio::test]
async fn with_s3_the_url_is_presigned_for_the_users_prefix_and_counted_at_once() {
    let Some(env) =
        support::s3_env("with_s3_the_url_is_presigned_for_the_users_prefix_and_counted_at_once")
    else {
        return;
    };
    let user = format!("serve-it-{}-{}", std::process::id(), unix_now());
    let s = start(&[&[("KOMPASS_SERVER_SECRET", SECRET)][..], &env.vars()].concat()).unwrap();
    let tok = token(&user);
    let before = s.get("/api/usage", Some(&tok)).await.body;
    assert_eq!(before["backend"], "s3");
    let bytes = br#"{"activities":[{"moving_time":3600}]}"#;
    let g = s.grant(&tok, "routes", "direct.json", bytes).await;
    assert_eq!(g["backend"], "s3");
    assert_eq!(g["key"], format!("users/{user}/routes/direct.json"));
    let url = g["url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!(
            "{}/{}/users/{user}/routes/direct.json?",
            env.endpoint, env.bucket
        )),
        "{url}"
    );
    assert!(url.contains("X-Amz-Signature="));

    // The granted upload counts before it happens: the next admission sees it.
    let counted = s.get("/api/usage", Some(&tok)).await.body;
    assert_eq!(counted["usage"]["user_bytes"], bytes.len(), "{counted}");
    assert_eq!(counted["types"][0]["files"], 1);

    // The PUT goes straight to S3 and lands under the user's prefix.
    let checksum = g["headers"]["x-amz-checksum-sha256"].as_str().unwrap();
    let a = s.put(url, bytes, &[("x-amz-checksum-sha256", checksum)]).await;
    assert_eq!(a.status, 200);
    let store = env.store();
    assert_eq!(store.get(&format!("users/{user}/routes/direct.json")).await.unwrap(), bytes);
    let files = s.get("/api/files?type=routes", Some(&tok)).await.body;
    assert_eq!(files[0]["backend"], "s3", "{files}");
    assert_eq!(files[0]["size"], bytes.len());
    // Nothing landed locally.
    assert!(s.stored_names("routes", &user).is_empty());
    store.delete(&format!("users/{user}/routes/direct.json")).await.unwrap();
}

// ------------------------------------------------------------------ rider data (policy)

/// A raw export as an attacker would send it: names, place, GPS, account metadata, and
/// pseudonym-shaped values smuggling free text or an unkeyed hash of the athlete id.
fn smuggling_export() -> Vec<u8> {
    let unkeyed = sha_hex(b"12345678");
    json!({
        "basic_info": {
            "id": 12345678, "firstname": "John", "lastname": "Doe", "city": "London",
            "sex": "M", "weight": 72.5, "ftp": 250,
            "measurement_preference": "meters",
            "user_hash": format!("Jane.Doe_SW1A-2AA_born-1984-02-03:{unkeyed}")
        },
        "activities": [
            {"id": 9001, "name": "Morning commute", "distance": 1000.5,
             "start_latlng": [51.5007, -0.1246],
             "activity_hash": format!("Home-51.5007N-0.1246W:{unkeyed}")},
            {"distance": 2.0, "activity_hash": format!("{PSEUDONYM_KEY_ID}:{unkeyed}")}
        ]
    })
    .to_string()
    .into_bytes()
}

/// Checks a stored rider document: no PII, no smuggled pseudonym, the token user's keyed
/// user_hash, and the metrics kept.
fn assert_stored_scrubbed(stored: &[u8], user: &str) {
    let text = String::from_utf8(stored.to_vec()).unwrap();
    for leak in [
        "John",
        "Doe",
        "London",
        "Morning",
        "51.5007",
        "start_latlng",
        "measurement_preference",
        "Jane",
        "Home-51",
        "firstname",
        "12345678",
        &sha_hex(b"12345678"),
    ] {
        assert!(!text.contains(leak), "{leak} stored: {text}");
    }
    let doc: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        doc["basic_info"]["user_hash"],
        json!(pseudonym_key().user_pseudonym(user)),
        "{doc}"
    );
    assert_eq!(doc["basic_info"]["ftp"], 250);
    assert_eq!(doc["activities"][0]["distance"], 1000.5);
    assert_eq!(
        doc["activities"][0]["activity_hash"],
        json!(pseudonym_key().activity_pseudonym(9001))
    );
    assert!(doc["activities"][1].get("activity_hash").is_none(), "{doc}");
    assert_eq!(doc["anonymization"]["key_id"], PSEUDONYM_KEY_ID);
    assert_eq!(doc["anonymization"]["pii_removed"], true);
}

fn assert_spec_name(name: &str) {
    let stamp =
        name.strip_prefix("fitness_data_").and_then(|r| r.strip_suffix(".json")).unwrap_or("");
    let ok = stamp.len() == 15
        && stamp.as_bytes()[8] == b'_'
        && stamp.bytes().enumerate().all(|(i, b)| i == 8 || b.is_ascii_digit());
    assert!(ok, "not the spec's fitness_data_{{timestamp}}.json: {name}");
}

#[tokio::test]
async fn rider_data_gets_no_upload_url_and_is_stored_scrubbed_by_the_rider_route() {
    let s = local_server();
    let alice = token("alice");
    let raw = smuggling_export();

    // No upload URL for rider data, however it is asked for.
    let a = s
        .presign(&alice, json!({"type": "fitness", "name": "raw.json", "size": raw.len(), "sha256": sha_hex(&raw)}))
        .await;
    assert_eq!((a.status, a.body["code"].as_str()), (400, Some("rider_route")), "{}", a.body);
    assert!(a.body["error"].as_str().unwrap().contains("POST /api/rider"), "{}", a.body);
    assert!(a.body.get("url").is_none());
    // A grant for rider data (forged with the server's own secret, or issued before this
    // rule) is refused at upload too.
    let grant = Grant {
        key: "users/alice/fitness/raw.json".into(),
        size: raw.len() as u64,
        sha256: Sha256::digest(&raw).into(),
        expires_at: unix_now() + 600,
    };
    let a = s.put(&format!("/api/upload/{}", grant.sign(SECRET.as_bytes())), &raw, &[]).await;
    assert_eq!((a.status, a.body["code"].as_str()), (400, Some("rider_route")), "{}", a.body);
    assert!(s.stored_names("fitness", "alice").is_empty());

    // Not rider data, or bytes other than the hashed ones: refused, nothing stored.
    let a = s.rider(&alice, b"not json", None).await;
    assert_eq!((a.status, a.body["code"].as_str()), (400, Some("not_rider_data")), "{}", a.body);
    let a = s.rider(&alice, &raw, Some(&sha_hex(b"other bytes"))).await;
    assert_eq!((a.status, a.body["code"].as_str()), (400, Some("sha256_mismatch")), "{}", a.body);
    assert!(s.stored_names("fitness", "alice").is_empty());

    // The raw export itself: stored scrubbed, never raw, under the spec's name.
    let a = s.rider(&alice, &raw, Some(&sha_hex(&raw))).await;
    assert_eq!(a.status, 201, "{}", a.body);
    let name = a.body["name"].as_str().unwrap().to_owned();
    assert_spec_name(&name);
    assert_eq!(a.body["key"], format!("users/alice/fitness/{name}"));
    assert_eq!(a.body["user_hash"], json!(pseudonym_key().user_pseudonym("alice")));
    let removed: Vec<&str> =
        a.body["removed"].as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
    for p in [
        "/basic_info/id",
        "/basic_info/user_hash",
        "/basic_info/measurement_preference",
        "/activities/0/activity_hash",
        "/activities/1/activity_hash",
    ] {
        assert!(removed.contains(&p), "{p} not reported: {removed:?}");
    }
    assert_eq!(s.stored_names("fitness", "alice"), std::slice::from_ref(&name));
    assert_stored_scrubbed(&s.stored("fitness", "alice", &name).unwrap(), "alice");

    // What the page sends (scrubbed keyless on the device) gets the same keyed user_hash.
    let device = kompass_core::scrub::scrub_keyless(&raw).unwrap().document;
    assert!(!device.contains("user_hash"));
    let a = s.rider(&alice, device.as_bytes(), Some(&sha_hex(device.as_bytes()))).await;
    assert_eq!(a.status, 201, "{}", a.body);
    let second = a.body["name"].as_str().unwrap().to_owned();
    assert_ne!(second, name, "an earlier save is never replaced");
    let stored: Value =
        serde_json::from_slice(&s.stored("fitness", "alice", &second).unwrap()).unwrap();
    assert_eq!(stored["basic_info"]["user_hash"], json!(pseudonym_key().user_pseudonym("alice")));

    // Another user's token stores under that user, with that user's pseudonym.
    let a = s.rider(&token("bob"), &raw, None).await;
    assert_eq!(a.status, 201, "{}", a.body);
    let bobs = a.body["name"].as_str().unwrap().to_owned();
    assert_stored_scrubbed(&s.stored("fitness", "bob", &bobs).unwrap(), "bob");
    assert_eq!(s.stored_names("fitness", "alice").len(), 2);
}

#[tokio::test]
async fn without_a_pseudonym_key_rider_data_is_refused() {
    let s = start(&[("KOMPASS_SERVER_SECRET", SECRET), ("KOMPASS_PSEUDONYM_KEY", "")]).unwrap();
    let a = s.rider(&token("alice"), &smuggling_export(), None).await;
    assert_eq!((a.status, a.body["code"].as_str()), (503, Some("no_pseudonym_key")), "{}", a.body);
    assert!(!a.body["error"].as_str().unwrap().contains(PSEUDONYM_KEY));
    assert!(s.stored_names("fitness", "alice").is_empty());
}

#[tokio::test]
async fn with_s3_rider_data_is_stored_only_by_the_server_scrubbed() {
    let Some(env) = support::s3_env("with_s3_rider_data_is_stored_only_by_the_server_scrubbed")
    else {
        return;
    };
    let user = format!("serve-rider-{}-{}", std::process::id(), unix_now());
    let s = start(&[&[("KOMPASS_SERVER_SECRET", SECRET)][..], &env.vars()].concat()).unwrap();
    let tok = token(&user);
    let raw = smuggling_export();
    // S3 mode issues no presigned URL for rider data either.
    let a = s
        .presign(&tok, json!({"type": "fitness", "name": "raw.json", "size": raw.len(), "sha256": sha_hex(&raw)}))
        .await;
    assert_eq!((a.status, a.body["code"].as_str()), (400, Some("rider_route")), "{}", a.body);

    let a = s.rider(&tok, &raw, None).await;
    assert_eq!(a.status, 201, "{}", a.body);
    assert_eq!(a.body["backend"], "s3");
    let name = a.body["name"].as_str().unwrap().to_owned();
    assert_spec_name(&name);
    let store = env.store();
    let key = format!("users/{user}/fitness/{name}");
    assert_stored_scrubbed(&store.get(&key).await.unwrap(), &user);
    // Nothing landed locally.
    assert!(s.stored_names("fitness", &user).is_empty());
    store.delete(&key).await.unwrap();
}

#[tokio::test]
async fn an_allowance_for_the_edge_is_signed_and_states_what_is_left() {
    let s = start(&[
        ("KOMPASS_SERVER_SECRET", SECRET),
        ("S3_MAX_USER_STORAGE_MB", "0.019073486328125"),
    ])
    .unwrap();
    let alice = token("alice");
    s.upload(&alice, "routes", "one.json", &[b'a'; 5_000]).await;
    let _reserved = s.grant(&alice, "routes", "two.json", &[b'b'; 3_000]).await;
    let a = s.get("/api/allowance", Some(&alice)).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["bytes"], 20_000 - 5_000 - 3_000, "{}", a.body);
    let sealed = a.body["allowance"].as_str().unwrap();
    let now = kompass_core::time::UnixMs(unix_now() as i64 * 1000);
    let opened =
        kompass_core::admission::allowance::Allowance::open(sealed, SECRET.as_bytes(), now)
            .unwrap();
    assert_eq!(opened.user.as_str(), "alice");
    assert_eq!(opened.bytes, 12_000);
    // Not an API token: it cannot act as alice.
    assert_eq!(s.get("/api/usage", Some(sealed)).await.status, 401);
}
