//! Printing results: JSON on stdout for programs (`--json`), text for people, and a spinner on
//! stderr while people wait.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

/// Where and how a command prints its result.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    json: bool,
}

impl Output {
    /// JSON when `json` is set, text otherwise.
    pub fn new(json: bool) -> Self {
        Output { json }
    }

    /// Whether programs are reading.
    pub fn is_json(&self) -> bool {
        self.json
    }

    /// Prints `value` as JSON, or the text that `text` renders.
    pub fn print<T: Serialize>(&self, value: &T, text: impl FnOnce() -> String) {
        if self.json {
            match serde_json::to_string_pretty(value) {
                Ok(s) => write_stdout(&s),
                Err(e) => eprintln!("error: could not encode the result as JSON: {e}"),
            }
        } else {
            let t = text();
            if !t.is_empty() {
                write_stdout(t.trim_end());
            }
        }
    }
}

/// Writes a line to standard output. A reader that went away (`kompass list | head -1`) is
/// not worth a panic (which `println!` would be) nor a message; other failures are reported.
pub fn write_stdout(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{line}").and_then(|()| out.flush())
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        eprintln!("error: could not write to standard output: {e}");
    }
}

/// Bytes for people: `1.5 MiB`.
pub fn human_bytes(bytes: u64) -> String {
    kompass_core::fifo::human_bytes(bytes)
}

/// A spinner on stderr while a bucket is listed: only on a terminal and without `--json`.
pub fn spinner(out: &Output, message: &'static str) -> Option<ProgressBar> {
    if out.is_json() || !std::io::stderr().is_terminal() {
        return None;
    }
    let s = ProgressBar::new_spinner();
    s.set_message(message);
    s.enable_steady_tick(Duration::from_millis(120));
    Some(s)
}

/// A progress bar on stderr over `len` steps: only on a terminal and without `--json`.
pub fn progress_bar(out: &Output, len: u64, message: &'static str) -> Option<ProgressBar> {
    if out.is_json() || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} ({eta})") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(message);
    Some(bar)
}
