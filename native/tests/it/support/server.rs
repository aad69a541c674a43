//! An S3 server (SeaweedFS, SigV4 on) of one test's own, through `scripts/s3-server.sh`, on a
//! free block of ports with its own state directory: the test may SIGKILL and restart it
//! without disturbing the shared test server.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::S3Env;

/// Ports the script uses: the S3 port and the 9 after it.
const PORTS_PER_SERVER: u16 = 10;
/// Where our servers' port blocks start (the shared test servers use 8333 and nearby).
const FIRST_PORT: u16 = 24_000;
/// How many blocks to try.
const BLOCKS: u16 = 500;

/// Serializes port picking and start-up between the tests of one binary.
static START: Mutex<()> = Mutex::new(());

/// A SeaweedFS server owned by one test; stopped (and its data removed) when dropped.
pub struct OwnServer {
    /// The settings to reach it.
    pub env: S3Env,
    /// Its S3 port.
    pub port: u16,
    state: tempfile::TempDir,
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn block_free(base: u16) -> bool {
    // A connect that succeeds means someone listens; a bind that fails means it is taken.
    (base..base + PORTS_PER_SERVER).all(|p| {
        TcpStream::connect_timeout(&([127, 0, 0, 1], p).into(), Duration::from_millis(50)).is_err()
            && TcpListener::bind(("127.0.0.1", p)).is_ok()
    })
}

fn listening(port: u16) -> bool {
    TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(100)).is_ok()
}

impl OwnServer {
    /// Starts a fresh, empty server; panics with the script's output when it cannot.
    pub fn start(test: &str) -> OwnServer {
        let _guard = START.lock().unwrap_or_else(|e| e.into_inner());
        let offset = (std::process::id() as u16).wrapping_mul(7) % BLOCKS;
        let port = (0..BLOCKS)
            .map(|i| FIRST_PORT + ((offset + i * 37) % BLOCKS) * PORTS_PER_SERVER)
            .find(|&p| block_free(p))
            .expect("no free block of 10 ports for a test S3 server in 24000-28999");
        let state = tempfile::Builder::new().prefix("kompass-s3-own-").tempdir().unwrap();
        let server = OwnServer {
            env: S3Env {
                endpoint: format!("http://127.0.0.1:{port}"),
                region: "us-east-1".into(),
                bucket: "kompass-test".into(),
                access_key_id: String::new(),
                secret_access_key: String::new(),
            },
            port,
            state,
        };
        server.script("start", false, test);
        let mut server = server;
        let (key, secret) = super::identity("test");
        server.env.access_key_id = key;
        server.env.secret_access_key = secret;
        server.wait_ready(test);
        server
    }

    fn script(&self, action: &str, keep_data: bool, test: &str) {
        let out = Command::new("bash")
            .arg(repo().join("scripts/s3-server.sh"))
            .arg(action)
            .env("KOMPASS_S3_PORT", self.port.to_string())
            .env("KOMPASS_S3_STATE", self.state.path())
            .env("KOMPASS_S3_KEEP_DATA", if keep_data { "1" } else { "0" })
            .output()
            .expect("bash runs scripts/s3-server.sh");
        assert!(
            out.status.success(),
            "{test}: scripts/s3-server.sh {action} failed (is SeaweedFS installed? run \
             scripts/install.sh s3):\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Waits until the bucket answers a signed LIST (`weed mini` creates it a moment after it
    /// reports healthy) and, when it holds objects, a GET of the first one (after a restart
    /// the volumes load a moment after the filer answers).
    fn wait_ready(&self, test: &str) {
        // On a thread of its own: the caller may be inside an async runtime.
        std::thread::scope(|s| s.spawn(|| self.wait_ready_blocking(test)).join().unwrap());
    }

    fn wait_ready_blocking(&self, test: &str) {
        let store = super::reliability::store(&self.env);
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let started = Instant::now();
        loop {
            let attempt = async {
                let page = store.list_page("", None).await?;
                if let Some(first) = page.objects.first() {
                    store.get(&first.key).await?;
                }
                Ok::<(), kompass::store::s3::S3Error>(())
            };
            match rt.block_on(attempt) {
                Ok(()) => return,
                Err(e) if started.elapsed() > Duration::from_secs(60) => {
                    panic!(
                        "{test}: the test S3 server on port {} never became ready: {e}",
                        self.port
                    )
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// The server's process id, from its pid file.
    pub fn pid(&self) -> u32 {
        let text = std::fs::read_to_string(self.state.path().join("weed.pid")).expect("weed.pid");
        text.trim().parse().expect("a pid in weed.pid")
    }

    /// SIGKILLs the server and waits until its port is closed.
    pub fn kill9(&self) {
        let pid = self.pid();
        let status = Command::new("kill").args(["-9", &pid.to_string()]).status().unwrap();
        assert!(status.success(), "kill -9 {pid} failed");
        let started = Instant::now();
        while listening(self.port) {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "port {} still open after SIGKILL",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts the server again on the same data (after [`OwnServer::kill9`]).
    pub fn restart(&self, test: &str) {
        self.script("start", true, test);
        self.wait_ready(test);
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(repo().join("scripts/s3-server.sh"))
            .arg("stop")
            .env("KOMPASS_S3_PORT", self.port.to_string())
            .env("KOMPASS_S3_STATE", self.state.path())
            .output();
    }
}
