//! Running `kompass serve` from tests: the command with a clean environment, the page URL it
//! prints when it is ready, and user tokens for the tests' server secret.

use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

/// The server secret of the serve tests (`KOMPASS_SERVER_SECRET`).
pub const SERVER_SECRET: &str = "4f1c0e8a9b2d3c4e5f60718293a4b5c6d7e8f90112233445566778899aabbccd";

/// Now, in unix seconds.
pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// A token for `user`, valid for ten minutes, signed with [`SERVER_SECRET`].
pub fn token(user: &str) -> String {
    kompass_core::token::mint(user, unix_now() + 600, SERVER_SECRET.as_bytes())
}

/// `kompass serve --addr 127.0.0.1:0` run in `dir` (a temp dir: no `.env` is read) with only
/// PATH, the page's files and `DATA_DIRECTORY=data` in its environment; standard input
/// closed, standard output piped (it prints the page URL there). The caller adds the rest.
pub fn command(dir: &Path, data: &Path) -> Command {
    let www = Path::new(env!("CARGO_MANIFEST_DIR")).join("../www");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kompass"));
    cmd.args(["serve", "--addr", "127.0.0.1:0"])
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("DATA_DIRECTORY", data)
        .env("KOMPASS_WWW_DIR", &www)
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    cmd
}

/// Reads the server's standard output up to the page URL (`http://…/#token=…`) it prints
/// once it listens, appending every line read to `printed`; `None` when the output ends first.
pub fn page_url<B: BufRead>(lines: &mut std::io::Lines<B>, printed: &mut String) -> Option<String> {
    for line in lines {
        let line = line.ok()?;
        printed.push_str(&line);
        printed.push('\n');
        if line.starts_with("http://") && line.contains("/#token=") {
            return Some(line);
        }
    }
    None
}

/// A running `kompass serve`, killed on drop.
pub struct Running {
    child: Child,
    /// `http://host:port`.
    pub base: String,
}

impl Running {
    /// Spawns `cmd` (from [`command`]) and waits for the page URL it prints once it listens.
    pub fn spawn(mut cmd: Command) -> Running {
        let mut child = cmd.spawn().expect("the kompass binary starts");
        let stdout = child.stdout.take().expect("standard output piped");
        let mut printed = String::new();
        let page = page_url(&mut std::io::BufReader::new(stdout).lines(), &mut printed);
        let Some(page) = page else {
            let _ = child.kill();
            panic!("serve printed no page URL:\n{printed}");
        };
        let base = page.split("/#").next().unwrap_or_default().to_owned();
        Running { child, base }
    }

    /// `host:port`.
    pub fn host(&self) -> &str {
        self.base.strip_prefix("http://").unwrap_or(&self.base)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
