//! Printing results: JSON on stdout for programs (`--json`), text for people.

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
