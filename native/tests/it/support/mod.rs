//! The set-up the integration tests share: the S3 test server's settings, unique key
//! prefixes, and a scripted fake HTTP server for failures a real server will not produce;
//! driving the binary (`cli`), the reliability tests' pieces (`reliability`), an S3 server of
//! a test's own (`server`) and a fault-injecting proxy (`proxy`).

pub mod cli;
pub mod proxy;
pub mod reliability;
pub mod serve;
pub mod server;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kompass::store::s3::{S3Options, S3Store};
use kompass_core::presign::{Credentials, S3Target};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The S3 test server's settings, from the environment `scripts/s3-server.sh env` prints.
#[derive(Debug, Clone)]
pub struct S3Env {
    pub endpoint: String,
    pub region: String,
    pub bucket: String,
    pub access_key_id: String,
    pub secret_access_key: String,
}

/// How many listing pages (1,000 keys each) the shared bucket spans, as a lock. The modules'
/// tests run side by side in one process: a test that puts more than a page into the bucket
/// holds it exclusively, and a test whose request counts assume the whole bucket lists in one
/// request holds it shared, so the two never overlap (as they did not when each file was a
/// test binary of its own, run one after the other).
pub static BUCKET_PAGES: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// The test server's settings; `None` (with a note on stderr) only when KOMPASS_SKIP_S3=1.
/// Panics with what to do when they are missing: a test that needs S3 must not pass silently.
pub fn s3_env(test: &str) -> Option<S3Env> {
    if std::env::var("KOMPASS_SKIP_S3").as_deref() == Ok("1") {
        eprintln!("SKIPPED {test}: KOMPASS_SKIP_S3=1 (no S3 test server)");
        return None;
    }
    let var = |name: &str| {
        std::env::var(name).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| {
            panic!(
                "{name} is not set: test {test} needs the S3 test server. Run \
                 `scripts/s3-server.sh start` and `set -a; . <(scripts/s3-server.sh env); set +a` \
                 before `cargo test`, or set KOMPASS_SKIP_S3=1 to skip the S3 tests"
            )
        })
    };
    Some(S3Env {
        // Required, so these tests never run against real AWS by accident.
        endpoint: var("AWS_ENDPOINT_URL"),
        region: std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".to_owned()),
        bucket: var("AWS_S3_BUCKET"),
        access_key_id: var("AWS_ACCESS_KEY_ID"),
        secret_access_key: var("AWS_SECRET_ACCESS_KEY"),
    })
}

impl S3Env {
    /// The variables that point kompass at this server, with S3 storage on.
    pub fn vars(&self) -> [(&'static str, &str); 6] {
        [
            ("S3_STORAGE_ENABLED", "true"),
            ("AWS_ENDPOINT_URL", self.endpoint.as_str()),
            ("AWS_REGION", self.region.as_str()),
            ("AWS_S3_BUCKET", self.bucket.as_str()),
            ("AWS_ACCESS_KEY_ID", self.access_key_id.as_str()),
            ("AWS_SECRET_ACCESS_KEY", self.secret_access_key.as_str()),
        ]
    }

    /// The bucket read directly, with the S3 client's default options: the independent path
    /// tests check kompass's results by.
    pub fn store(&self) -> S3Store {
        self.store_with(S3Options::default())
    }

    /// The bucket read directly, with `opts`.
    pub fn store_with(&self, opts: S3Options) -> S3Store {
        let target =
            S3Target::new(Some(self.endpoint.clone()), self.region.clone(), &self.bucket).unwrap();
        S3Store::new(target, Credentials::new(&self.access_key_id, &self.secret_access_key), opts)
            .unwrap()
    }
}

/// The keys under `prefix`, sorted.
pub async fn keys(s3: &S3Store, prefix: &str) -> Vec<String> {
    let mut k: Vec<String> = s3.list(prefix).await.unwrap().into_iter().map(|m| m.key).collect();
    k.sort();
    k
}

/// A configuration for an in-process [`kompass::manager::Manager`]: data in `data_dir`, S3 at
/// `env` (or local only), plus `vars` (limits, cleanup settings).
pub fn manager_config(
    data_dir: &Path,
    env: Option<&S3Env>,
    vars: &[(&str, &str)],
) -> kompass_core::config::Config {
    let mut map = BTreeMap::new();
    map.insert("DATA_DIRECTORY".to_owned(), data_dir.display().to_string());
    if let Some(env) = env {
        for (k, v) in env.vars() {
            map.insert(k.to_owned(), v.to_owned());
        }
    }
    for (k, v) in vars {
        map.insert((*k).to_owned(), (*v).to_owned());
    }
    kompass_core::config::Config::from_env_map(&map)
        .unwrap_or_else(|e| panic!("test configuration: {e}"))
}

/// A user id (or name part) no other test or run uses: `{tag}-{pid}-{nanos}-{n}`.
pub fn uid(tag: &str) -> String {
    static SEQ: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    format!("{tag}-{}-{nanos}-{}", std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed))
}

/// The credentials `(access key id, secret)` of identity `name` in tests/s3/identities.json
/// (or the file KOMPASS_S3_IDENTITIES names).
pub fn identity(name: &str) -> (String, String) {
    let path = std::env::var("KOMPASS_S3_IDENTITIES")
        .unwrap_or_else(|_| format!("{}/../tests/s3/identities.json", env!("CARGO_MANIFEST_DIR")));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read the S3 identities file {path}: {e}"));
    let doc: serde_json::Value = serde_json::from_str(&text).expect("identities.json is JSON");
    let ids = doc["identities"].as_array().expect("an identities array");
    let id = ids
        .iter()
        .find(|i| i["name"] == name)
        .unwrap_or_else(|| panic!("no identity {name:?} in {path}"));
    let cred = &id["credentials"][0];
    (cred["accessKey"].as_str().unwrap().to_owned(), cred["secretKey"].as_str().unwrap().to_owned())
}

/// A key prefix no other test (or earlier run) uses, so tests run in parallel on one bucket.
pub fn unique_prefix(test: &str) -> String {
    static SEQ: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    format!("it/{test}/{}-{nanos}-{seq}/", std::process::id())
}

/// A loopback port with nothing listening on it.
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    port
}

/// What the fake server does with one request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// Answer with this status, headers and body.
    Answer { status: u16, headers: Vec<(String, String)>, body: String },
    /// Read the request, then hold the connection open without answering.
    Hang,
    /// Read the request, then close the connection without answering.
    Close,
}

impl Reply {
    /// An S3 error answer with an `<Error>` document.
    pub fn s3_error(status: u16, code: &str) -> Self {
        Self::Answer {
            status,
            headers: vec![("content-type".into(), "application/xml".into())],
            body: format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code>\
                 <Message>scripted {code}</Message><RequestId>1</RequestId></Error>"
            ),
        }
    }

    /// An answer with headers and a body.
    pub fn ok(headers: &[(&str, &str)], body: &str) -> Self {
        Self::Answer {
            status: 200,
            headers: headers.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
            body: body.to_owned(),
        }
    }
}

/// One request the fake server received.
#[derive(Debug, Clone)]
pub struct Received {
    /// e.g. `PUT /kompass-test/a%20b HTTP/1.1`
    pub request_line: String,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Received {
    /// The value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// A loopback HTTP/1.1 server that answers requests from a script, in order (the last reply
/// repeats), one request per connection. It checks no signatures.
pub struct FakeServer {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    received: Arc<Mutex<Vec<Received>>>,
}

impl FakeServer {
    /// Starts the server on a free port.
    pub async fn start(script: Vec<Reply>) -> Self {
        assert!(!script.is_empty());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let received = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(script);
        let next = Arc::new(AtomicUsize::new(0));
        let log = received.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (script, next, log) = (script.clone(), next.clone(), log.clone());
                tokio::spawn(async move {
                    serve(stream, &script, &next, &log).await;
                });
            }
        });
        Self { url, received }
    }

    /// The requests received so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

async fn serve(
    mut stream: TcpStream,
    script: &[Reply],
    next: &AtomicUsize,
    log: &Mutex<Vec<Received>>,
) {
    let Some(request) = read_request(&mut stream).await else {
        return;
    };
    log.lock().unwrap().push(request);
    let n = next.fetch_add(1, Ordering::SeqCst);
    match &script[n.min(script.len() - 1)] {
        Reply::Hang => tokio::time::sleep(Duration::from_secs(120)).await,
        Reply::Close => {}
        Reply::Answer { status, headers, body } => {
            let mut out = format!(
                "HTTP/1.1 {status} Scripted\r\nconnection: close\r\ncontent-length: {}\r\n",
                body.len()
            );
            for (k, v) in headers {
                out.push_str(&format!("{k}: {v}\r\n"));
            }
            out.push_str("\r\n");
            out.push_str(body);
            let _ = stream.write_all(out.as_bytes()).await;
            let _ = stream.shutdown().await;
        }
    }
}

async fn read_request(stream: &mut TcpStream) -> Option<Received> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let request_line = lines.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(Received { request_line, headers, body })
}
