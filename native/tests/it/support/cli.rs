//! Driving the real `kompass` binary from tests: a clean environment (only what the test sets),
//! a temp working directory (so no `.env` leaks in) and a temp data directory.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use tempfile::TempDir;

/// One `kompass` installation: its environment, working directory and data directory.
pub struct Kompass {
    dir: TempDir,
    data: PathBuf,
    env: BTreeMap<String, String>,
}

/// What one run of the binary did.
#[derive(Debug)]
pub struct Run {
    /// The command line, for messages.
    pub args: Vec<String>,
    /// The exit status (-1 when killed by a signal).
    pub code: i32,
    /// Standard output, raw.
    pub stdout: Vec<u8>,
    /// Standard error.
    pub stderr: String,
}

impl Kompass {
    /// An installation with an empty environment: local storage only, default limits.
    pub fn new() -> Self {
        let dir = TempDir::new().unwrap();
        let data = dir.path().join("saved_routes");
        Kompass { dir, data, env: BTreeMap::new() }
    }

    /// Sets an environment variable for every later run.
    pub fn set(&mut self, name: &str, value: &str) -> &mut Self {
        self.env.insert(name.to_owned(), value.to_owned());
        self
    }

    /// Another installation sharing this one's data directory with a changed environment.
    pub fn with(&self, overrides: &[(&str, &str)]) -> KompassView<'_> {
        let mut env = self.env.clone();
        for (k, v) in overrides {
            env.insert((*k).to_owned(), (*v).to_owned());
        }
        KompassView { base: self, env }
    }

    /// The data directory (`--data-dir`); it does not exist until something is written.
    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    /// The temp directory holding the data directory (and nothing else the binary should touch).
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// Runs `kompass --data-dir DATA ARGS...` with no standard input.
    pub fn run(&self, args: &[&str]) -> Run {
        run_with(&self.env, self.dir.path(), &self.data, args, None)
    }

    /// Runs with `stdin` as standard input.
    pub fn run_stdin(&self, args: &[&str], stdin: &[u8]) -> Run {
        run_with(&self.env, self.dir.path(), &self.data, args, Some(stdin))
    }
}

/// An installation's data directory seen with a different environment.
pub struct KompassView<'a> {
    base: &'a Kompass,
    env: BTreeMap<String, String>,
}

impl KompassView<'_> {
    /// Runs `kompass --data-dir DATA ARGS...` with no standard input.
    pub fn run(&self, args: &[&str]) -> Run {
        run_with(&self.env, self.base.dir.path(), &self.base.data, args, None)
    }

    /// Runs with `stdin` as standard input.
    pub fn run_stdin(&self, args: &[&str], stdin: &[u8]) -> Run {
        run_with(&self.env, self.base.dir.path(), &self.base.data, args, Some(stdin))
    }
}

fn run_with(
    env: &BTreeMap<String, String>,
    cwd: &Path,
    data: &Path,
    args: &[&str],
    stdin: Option<&[u8]>,
) -> Run {
    let mut all: Vec<String> = vec!["--data-dir".into(), data.display().to_string()];
    all.extend(args.iter().map(|a| (*a).to_owned()));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kompass"));
    cmd.env_clear()
        .envs(env)
        .current_dir(cwd)
        .args(&all)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("the kompass binary runs");
    if let Some(bytes) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        // A command that refuses its arguments exits without reading: a broken pipe is fine.
        if let Err(e) = pipe.write_all(bytes) {
            assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "writing stdin: {e}");
        }
    }
    let out = child.wait_with_output().unwrap();
    Run {
        args: all,
        code: out.status.code().unwrap_or(-1),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

impl Run {
    /// Standard output as text.
    pub fn out(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Both streams, for searching messages wherever they went.
    pub fn all_output(&self) -> String {
        format!("{}\n{}", self.out(), self.stderr)
    }

    /// Asserts success and returns the run.
    #[track_caller]
    pub fn ok(self) -> Self {
        assert_eq!(
            self.code,
            0,
            "kompass {:?} failed:\nstdout: {}\nstderr: {}",
            self.args,
            self.out(),
            self.stderr
        );
        self
    }

    /// Asserts the exit status and returns the run.
    #[track_caller]
    pub fn code(self, expected: i32) -> Self {
        assert_eq!(
            self.code,
            expected,
            "kompass {:?}: expected exit {expected}\nstdout: {}\nstderr: {}",
            self.args,
            self.out(),
            self.stderr
        );
        self
    }

    /// Standard output parsed as JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "kompass {:?}: stdout is not JSON ({e}):\n{}\nstderr: {}",
                self.args,
                self.out(),
                self.stderr
            )
        })
    }
}

/// Every regular file under `dir`, relative to it, skipping kompass's own state directory.
pub fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    for e in rd {
        let e = e.unwrap();
        let p = e.path();
        let ft = e.file_type().unwrap();
        if ft.is_dir() {
            if p.file_name().is_some_and(|n| n == ".kompass") {
                continue;
            }
            walk(root, &p, out);
        } else {
            out.push(p.strip_prefix(root).unwrap().to_string_lossy().into_owned());
        }
    }
}

/// Deterministic bytes of a given size (a JSON-ish text, so loads print readable content).
pub fn payload(tag: &str, size: usize) -> Vec<u8> {
    let mut v = format!("{{\"tag\":\"{tag}\",\"pad\":\"").into_bytes();
    while v.len() + 2 < size {
        v.push(b'a' + (v.len() % 26) as u8);
    }
    v.extend_from_slice(b"\"}");
    v.truncate(size);
    v
}

/// The pseudonym key the tests configure for rider (fitness) data.
pub const TEST_PSEUDONYM_KEY: &str = "cli-test-pseudonym-key-0123456789abcdef";
/// Its key id.
pub const TEST_PSEUDONYM_KEY_ID: &str = "kt1";

impl Kompass {
    /// Configures the test pseudonym key, without which no fitness data is stored.
    pub fn with_pseudonym_key(&mut self) -> &mut Self {
        self.set("KOMPASS_PSEUDONYM_KEY", TEST_PSEUDONYM_KEY)
            .set("KOMPASS_PSEUDONYM_KEY_ID", TEST_PSEUDONYM_KEY_ID)
    }
}

/// The test pseudonym key, as the scrubber takes it.
pub fn test_pseudonym_key() -> kompass_core::scrub::PseudonymKey {
    kompass_core::scrub::PseudonymKey::new(TEST_PSEUDONYM_KEY_ID, TEST_PSEUDONYM_KEY.as_bytes())
        .unwrap()
}

/// A rider document of exactly `size` bytes that `kompass save --type fitness` stores: a fixed
/// point of the keyed scrub with the test key (what `kompass rider save` would have written),
/// padded with activities holding only a distance, a field the policy keeps. `tag` sets the
/// first distance, so different tags give different documents. Panics when `size` is below the
/// smallest such document (about 150 bytes).
pub fn scrubbed_fitness_payload(tag: &str, size: usize) -> Vec<u8> {
    let key = test_pseudonym_key();
    // FNV-1a of the tag: a distance without a leading zero.
    let h = tag
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    let first = 1 + h % 1_000_000_000;
    let build = |items: usize, extra_digits: usize| {
        let mut doc =
            format!("{{\"activities\":[{{\"distance\":{first}{}}}", "0".repeat(extra_digits));
        for _ in 0..items {
            doc.push_str(",{\"distance\":0}");
        }
        doc.push_str("]}");
        kompass_core::scrub::scrub(doc.as_bytes(), &key).unwrap().document.into_bytes()
    };
    let base = build(0, 0).len();
    assert!(size >= base, "a scrubbed rider document has at least {base} bytes, not {size}");
    let item = ",{\"distance\":0}".len();
    let (items, extra) = ((size - base) / item, (size - base) % item);
    let doc = build(items, extra);
    assert_eq!(doc.len(), size);
    assert_eq!(
        kompass_core::scrub::check_scrubbed(&doc, &key),
        Ok(()),
        "a fixed point of the keyed scrub"
    );
    doc
}
