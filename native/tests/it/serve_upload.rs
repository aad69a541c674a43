//! `PUT /api/upload/{grant}` streams the body into a temp file in the key's folder: what an
//! attacker or a broken client can do to that path. The real binary on a free port with a
//! temp data directory; every check looks at the data directory itself.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::serve::{self, SERVER_SECRET as SECRET, token, unix_now};
use kompass::serve::upload::Grant;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A running `kompass serve` on a temp data directory.
struct Server {
    run: serve::Running,
    data: PathBuf,
    _dir: tempfile::TempDir,
}

fn start(vars: &[(&str, &str)]) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut cmd = serve::command(dir.path(), &data);
    cmd.env("KOMPASS_SERVER_SECRET", SECRET).stderr(Stdio::null());
    for (k, v) in vars {
        cmd.env(k, v);
    }
    Server { run: serve::Running::spawn(cmd), data, _dir: dir }
}

impl Server {
    fn base(&self) -> String {
        self.run.base.clone()
    }

    /// Presigns `bytes` as alice's `routes/{name}`; returns the upload path.
    async fn grant(&self, name: &str, bytes: &[u8]) -> String {
        let res = reqwest::Client::new()
            .post(format!("{}/api/presign", self.base()))
            .bearer_auth(token("alice"))
            .header("content-type", "application/json")
            .body(
                json!({"type": "routes", "name": name, "size": bytes.len(),
                       "sha256": hex::encode(Sha256::digest(bytes))})
                .to_string(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "presign {name}");
        let body: Value = serde_json::from_slice(&res.bytes().await.unwrap()).unwrap();
        body["url"].as_str().unwrap().to_owned()
    }

    /// PUTs `bytes` with a matching Content-Length; status and JSON body.
    async fn put(&self, path: &str, bytes: &[u8]) -> (u16, Value, String) {
        let res = reqwest::Client::new()
            .put(format!("{}{path}", self.base()))
            .body(bytes.to_vec())
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null), text)
    }

    /// alice's routes folder.
    fn folder(&self) -> PathBuf {
        self.data.join("routes").join("alice")
    }

    /// Every name in alice's routes folder, temp files included, sorted.
    fn names(&self) -> Vec<String> {
        names_in(&self.folder())
    }

    fn stored(&self, name: &str) -> Option<Vec<u8>> {
        std::fs::read(self.folder().join(name)).ok()
    }
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    names.sort();
    names
}

fn temp_names(dir: &Path) -> Vec<String> {
    names_in(dir).into_iter().filter(|n| kompass::store::local::is_temp_name(n)).collect()
}

/// Waits up to 10 s for `cond`.
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Sends a PUT's head declaring `length` bytes; the caller writes the body.
async fn put_head(host: &str, path: &str, length: usize) -> TcpStream {
    let mut stream = TcpStream::connect(host).await.unwrap();
    let head = format!("PUT {path} HTTP/1.1\r\nhost: {host}\r\ncontent-length: {length}\r\n\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    stream
}

/// Reads what the server answers until it closes (or 10 s pass); the raw text.
async fn read_all(stream: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

fn incompressible(n: usize, seed: u8) -> Vec<u8> {
    let mut out = Vec::with_capacity(n + 32);
    let mut i = 0u64;
    while out.len() < n {
        out.extend_from_slice(&Sha256::digest([&[seed][..], &i.to_le_bytes()].concat()));
        i += 1;
    }
    out.truncate(n);
    out
}

#[tokio::test]
async fn a_body_longer_than_declared_is_cut_off_at_the_declared_length() {
    let s = start(&[]);
    let granted = incompressible(3 << 20, 1);
    let path = s.grant("long.bin", &granted).await;

    // Content-Length says the granted size; 2 MiB more follow. The server reads exactly the
    // declared bytes as the body (the rest is not a body of this request) and stores them.
    let mut stream = put_head(s.run.host(), &path, granted.len()).await;
    stream.write_all(&granted).await.unwrap();
    let _ = stream.write_all(&incompressible(2 << 20, 2)).await;
    let answer = read_all(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 201"), "{}", &answer[..answer.len().min(300)]);
    assert_eq!(s.stored("long.bin").as_deref(), Some(granted.as_slice()));
    assert_eq!(s.names(), ["long.bin"]);

    // The same with other bytes first: refused on the digest; the stored copy stays, no temp
    // file is left, and the extra bytes are written nowhere.
    let mut stream = put_head(s.run.host(), &path, granted.len()).await;
    let mut other = granted.clone();
    other[1 << 20] ^= 1;
    stream.write_all(&other).await.unwrap();
    let _ = stream.write_all(&incompressible(2 << 20, 3)).await;
    let answer = read_all(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{}", &answer[..answer.len().min(300)]);
    assert!(answer.contains("sha256_mismatch"), "{answer}");
    assert_eq!(s.stored("long.bin").as_deref(), Some(granted.as_slice()));
    assert_eq!(s.names(), ["long.bin"]);
    let total: u64 = walk(&s.data).iter().map(|p| p.metadata().unwrap().len()).sum();
    assert!(total < granted.len() as u64 + (1 << 20), "only the one copy is on disk: {total}");
}

#[tokio::test]
async fn uploads_of_every_shape_are_stored_byte_for_byte() {
    // The route copies the body into chunks (256 KiB) that are written and reused (kept for
    // the next upload): sizes on and around the chunk edges, more chunks than one upload keeps
    // in flight, one after another and two at once, must each land exactly as sent.
    let s = start(&[("S3_MAX_FILE_SIZE_MB", "16"), ("S3_MAX_USER_STORAGE_MB", "200")]);
    const MIB: usize = 1 << 20;
    let sizes = [1, 4095, MIB - 1, MIB, MIB + 1, 3 * MIB, 9 * MIB + 12_345];
    for (i, &n) in sizes.iter().enumerate() {
        let bytes = incompressible(n, i as u8);
        let name = format!("shape-{n}.bin");
        let path = s.grant(&name, &bytes).await;
        let (status, _, text) = s.put(&path, &bytes).await;
        assert_eq!(status, 201, "{n} bytes: {text}");
        assert!(s.stored(&name) == Some(bytes), "{n} bytes stored differently");
    }
    let a = incompressible(7 * MIB + 3, 100);
    let b = incompressible(8 * MIB - 5, 101);
    let (pa, pb) = (s.grant("twin-a.bin", &a).await, s.grant("twin-b.bin", &b).await);
    let ((sa, _, ta), (sb, _, tb)) = tokio::join!(s.put(&pa, &a), s.put(&pb, &b));
    assert_eq!((sa, sb), (201, 201), "{ta} {tb}");
    assert!(s.stored("twin-a.bin") == Some(a), "twin a stored differently");
    assert!(s.stored("twin-b.bin") == Some(b), "twin b stored differently");
    assert_eq!(temp_names(&s.folder()), Vec::<String>::new());
}

/// Every file below `dir` (the state directory included).
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() { out.extend(walk(&p)) } else { out.push(p) }
    }
    out
}

#[tokio::test]
async fn a_client_that_disconnects_mid_body_leaves_nothing_and_deletes_nothing() {
    // A 3 MiB quota, cleanup at 70 %, keep 1 file: a third 1 MiB file, once stored, makes the
    // cleanup remove the oldest.
    let s = start(&[("S3_MAX_USER_STORAGE_MB", "3"), ("S3_MIN_FILES_TO_KEEP", "1")]);
    let r1 = incompressible(1 << 20, 1);
    let r2 = incompressible(1 << 20, 2);
    for (name, bytes) in [("r1.bin", &r1), ("r2.bin", &r2)] {
        let path = s.grant(name, bytes).await;
        let (status, body, _) = s.put(&path, bytes).await;
        assert_eq!(status, 201, "{body}");
        // Distinct modification times, so "oldest" is well defined.
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }

    // A new file and an overwrite of r2, each cut off half way: the body was being written
    // into the folder (its temp file shows), and once the client is gone the temp file is
    // removed, nothing is stored and nothing stored is deleted or changed.
    let r3 = incompressible(1 << 20, 3);
    let r2_new = incompressible(1 << 20, 4);
    for (name, bytes) in [("r3.bin", &r3), ("r2.bin", &r2_new)] {
        let path = s.grant(name, bytes).await;
        let mut stream = put_head(s.run.host(), &path, bytes.len()).await;
        stream.write_all(&bytes[..bytes.len() / 2]).await.unwrap();
        let folder = s.folder();
        eventually("the upload's temp file", || temp_names(&folder).len() == 1).await;
        drop(stream);
        eventually("the temp file to go", || temp_names(&folder).is_empty()).await;
        assert_eq!(s.names(), ["r1.bin", "r2.bin"], "after the cut-off {name}");
        assert_eq!(s.stored("r1.bin").as_deref(), Some(r1.as_slice()));
        assert_eq!(s.stored("r2.bin").as_deref(), Some(r2.as_slice()));
    }

    // The server is fine, and the quota set-up is one that deletes: the whole r3 is stored
    // and the cleanup removes r1.
    let path = s.grant("r3.bin", &r3).await;
    let (status, body, _) = s.put(&path, &r3).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["cleaned"][0]["key"], "users/alice/routes/r1.bin", "{body}");
    assert_eq!(s.names(), ["r2.bin", "r3.bin"]);
}

#[tokio::test]
async fn a_refused_upload_leaves_no_temp_file_and_no_server_path() {
    // 1 MiB per file; a 1.5 MiB quota; no cleanup, so the quota is a hard limit.
    let s = start(&[
        ("S3_MAX_FILE_SIZE_MB", "1"),
        ("S3_MAX_USER_STORAGE_MB", "1.5"),
        ("S3_AUTO_CLEANUP_ENABLED", "false"),
    ]);
    let one = incompressible(1 << 20, 1);
    let path = s.grant("one.bin", &one).await;
    assert_eq!(s.put(&path, &one).await.0, 201);

    // A grant issued before the quota filled (signed with the server's secret: its
    // reservation is gone, as after a restart that lost it): the body is streamed, then
    // admission at the end refuses it; nothing of it stays.
    let two = incompressible(900_000, 2);
    let grant = |name: &str, bytes: &[u8]| Grant {
        key: format!("users/alice/routes/{name}"),
        size: bytes.len() as u64,
        sha256: Sha256::digest(bytes).into(),
        expires_at: unix_now() + 600,
    };
    let path = format!("/api/upload/{}", grant("two.bin", &two).sign(SECRET.as_bytes()));
    let (status, body, _) = s.put(&path, &two).await;
    assert_eq!((status, body["code"].as_str()), (507, Some("refused")), "{body}");
    assert_eq!(body["refusal"]["reason"], "user_quota_exceeded", "{body}");
    assert_eq!(s.names(), ["one.bin"]);

    // A grant over the file size limit: refused before anything is written.
    let big = incompressible((1 << 20) + 1, 3);
    let path = format!("/api/upload/{}", grant("big.bin", &big).sign(SECRET.as_bytes()));
    let (status, body, _) = s.put(&path, &big).await;
    assert_eq!((status, body["code"].as_str()), (413, Some("refused")), "{body}");
    assert_eq!(body["refusal"]["reason"], "file_too_large", "{body}");
    assert_eq!(s.names(), ["one.bin"]);

    // A directory in the way of the name: refused before a byte is written; the answer says
    // what is wrong without the server's paths.
    let small = b"{\"small\":1}".to_vec();
    std::fs::create_dir(s.folder().join("small.json")).unwrap();
    let path = s.grant("small.json", &small).await;
    let (status, body, text) = s.put(&path, &small).await;
    assert_eq!((status, body["code"].as_str()), (409, Some("conflict")), "{body}");
    let data = s.data.display().to_string();
    assert!(!text.contains(&data) && !text.contains("/alice/"), "no server paths: {text}");
    assert_eq!(s.names(), ["one.bin", "small.json"]);
    assert!(s.folder().join("small.json").is_dir());
}

/// Gives `path` a modification time `age` ago.
fn age_file(path: &Path, age: Duration) {
    let file = std::fs::File::options().write(true).open(path).unwrap();
    file.set_modified(std::time::SystemTime::now() - age).unwrap();
}

#[tokio::test]
async fn serve_removes_old_temp_files_left_by_a_crash_and_keeps_young_ones() {
    // Temp files as an interrupted write leaves them, written before the server starts.
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("data").join("routes").join("alice");
    std::fs::create_dir_all(&folder).unwrap();
    let old = folder.join(".r1.bin.tmp-4242-0");
    let young = folder.join(".r2.bin.tmp-4242-1");
    std::fs::write(&old, b"half an upload").unwrap();
    std::fs::write(&young, b"a write in progress").unwrap();
    std::fs::write(folder.join("kept.json"), b"{}").unwrap();
    age_file(&old, Duration::from_secs(2 * 60 * 60));
    assert!(kompass::store::local::is_temp_name(".r1.bin.tmp-4242-0"));

    let data = dir.path().join("data");
    let mut cmd = serve::command(dir.path(), &data);
    cmd.env("KOMPASS_SERVER_SECRET", SECRET).stderr(Stdio::null());
    let s = Server { run: serve::Running::spawn(cmd), data, _dir: dir };

    eventually("the old temp file is swept", || !old.exists()).await;
    assert!(young.exists(), "a young temp file may be a write in progress");
    assert_eq!(s.names(), [".r2.bin.tmp-4242-1", "kept.json"]);
}

#[tokio::test]
async fn a_replayed_grant_streams_again_but_never_passes_the_quota_or_leaves_temp_files() {
    // 1 MiB per file; a 1.5 MiB quota; no cleanup, so the quota is a hard limit.
    let s = start(&[
        ("S3_MAX_FILE_SIZE_MB", "1"),
        ("S3_MAX_USER_STORAGE_MB", "1.5"),
        ("S3_AUTO_CLEANUP_ENABLED", "false"),
    ]);
    let one = incompressible(700_000, 7);
    let path = s.grant("one.bin", &one).await;
    assert_eq!(s.put(&path, &one).await.0, 201);

    // The same grant, replayed four times at once: the same bytes to the same (signed) name,
    // each admitted again as an overwrite; the file stays whole and no temp file is left.
    let (a, b, c, d) = tokio::join!(
        s.put(&path, &one),
        s.put(&path, &one),
        s.put(&path, &one),
        s.put(&path, &one)
    );
    for (status, body, _) in [a, b, c, d] {
        assert_eq!(status, 201, "{body}");
    }
    assert_eq!(s.names(), ["one.bin"]);
    assert_eq!(s.stored("one.bin").as_deref(), Some(&one[..]));

    // The replays did not inflate or lose usage: a second file fits, a third does not.
    let two = incompressible(700_000, 8);
    let path2 = s.grant("two.bin", &two).await;
    assert_eq!(s.put(&path2, &two).await.0, 201);
    let three = incompressible(700_000, 9);
    let grant = Grant {
        key: "users/alice/routes/three.bin".into(),
        size: three.len() as u64,
        sha256: Sha256::digest(&three).into(),
        expires_at: unix_now() + 600,
    };
    let path3 = format!("/api/upload/{}", grant.sign(SECRET.as_bytes()));
    let (status, body, _) = s.put(&path3, &three).await;
    assert_eq!((status, body["code"].as_str()), (507, Some("refused")), "{body}");
    // And the first grant replayed once more still only overwrites its own file.
    assert_eq!(s.put(&path, &one).await.0, 201);
    assert_eq!(s.names(), ["one.bin", "two.bin"]);
}
