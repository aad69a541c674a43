//! Gathers the configuration facts: `.env` in the working directory, then the process
//! environment (which wins), then `--data-dir`; the core validates them.

use std::collections::BTreeMap;
use std::path::Path;

use kompass_core::config::{Config, ConfigErrors, DotenvError, merge_env, parse_dotenv, vars};
use thiserror::Error;

/// Why the configuration could not be read.
#[derive(Debug, Error)]
pub enum EnvError {
    /// `.env` exists but could not be read.
    #[error("could not read {path}: {source}. Fix its permissions or remove it")]
    DotenvIo {
        /// The file.
        path: String,
        /// The IO error.
        source: std::io::Error,
    },
    /// `.env` has malformed lines.
    #[error("{path}: {source}")]
    Dotenv {
        /// The file.
        path: String,
        /// Every bad line.
        source: DotenvError,
    },
    /// The values are invalid.
    #[error("{0}")]
    Config(#[from] ConfigErrors),
    /// A variable kompass reads holds bytes that are not UTF-8 text.
    #[error("the environment variable {name} is not valid UTF-8 text: set it to a UTF-8 value")]
    NotUnicode {
        /// The variable.
        name: String,
    },
}

/// The process environment as text. Other programs' variables that are not UTF-8 are none of
/// our business and are skipped (`std::env::vars` would panic on them); one of ours is an error.
fn environment() -> Result<Vec<(String, String)>, EnvError> {
    let mut out = Vec::new();
    for (name, value) in std::env::vars_os() {
        let Ok(name) = name.into_string() else { continue };
        match value.into_string() {
            Ok(value) => out.push((name, value)),
            Err(_) if vars::ALL.contains(&name.as_str()) => {
                return Err(EnvError::NotUnicode { name });
            }
            Err(_) => {}
        }
    }
    Ok(out)
}

/// The merged variables: `.env` from `dir`, the process environment, and a data-dir override,
/// with AWS settings filled in from the shared profile files where both leave them unset.
pub fn variables(
    dir: &Path,
    data_dir: Option<&Path>,
) -> Result<BTreeMap<String, String>, EnvError> {
    Ok(variables_with_sources(dir, data_dir)?.0)
}

/// Like [`variables`], with where each value came from (for `kompass config`).
pub fn variables_with_sources(
    dir: &Path,
    data_dir: Option<&Path>,
) -> Result<(BTreeMap<String, String>, crate::aws_profile::Sources), EnvError> {
    let path = dir.join(".env");
    let dotenv = match std::fs::read_to_string(&path) {
        Ok(text) => parse_dotenv(&text)
            .map_err(|source| EnvError::Dotenv { path: path.display().to_string(), source })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(source) => return Err(EnvError::DotenvIo { path: path.display().to_string(), source }),
    };
    let environment = environment()?;
    let env_names: Vec<String> = environment.iter().map(|(n, _)| n.clone()).collect();
    let mut vars = merge_env(dotenv, environment);
    warn_unknown(&vars);
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
    let mut sources = crate::aws_profile::apply(&mut vars, &env_names, home.as_deref());
    crate::store::s3::S3Options::configure(&vars);
    if let Some(d) = data_dir {
        vars.insert("DATA_DIRECTORY".into(), d.display().to_string());
        sources.insert("DATA_DIRECTORY".into(), "--data-dir".into());
    }
    Ok((vars, sources))
}

/// Variables the `kompass` binary (not the core) reads, and the test and benchmark scripts'
/// own: known, so never warned about.
pub const NATIVE_VARS: &[&str] = &[
    "KOMPASS_WWW_DIR",
    "KOMPASS_LOG",
    "KOMPASS_METRICS_TOKEN",
    "KOMPASS_API_RATE_LIMIT",
    "KOMPASS_ALERT_WEBHOOK",
    "KOMPASS_CLEANUP_INTERVAL_SECS",
    "KOMPASS_ALERT_INTERVAL_SECS",
    "KOMPASS_S3_CONNECT_TIMEOUT_SECS",
    "KOMPASS_S3_TIMEOUT_SECS",
    "KOMPASS_S3_DEADLINE_SECS",
    "KOMPASS_S3_RETRIES",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CONFIG_FILE",
    "AWS_DEFAULT_REGION",
    // scripts and tests
    "KOMPASS_S3_PORT",
    "KOMPASS_S3_STATE",
    "KOMPASS_S3_IDENTITIES",
    "KOMPASS_S3_KEEP_DATA",
    "KOMPASS_S3_METRICS_PORT",
    "KOMPASS_SKIP_S3",
    "KOMPASS_CACHE",
    "KOMPASS_SOAK",
    "KOMPASS_SOAK_FUZZ_SECS",
    "KOMPASS_RELIABILITY_SEED",
    "KOMPASS_S3S_ENDPOINT",
    "KOMPASS_S3S_BUCKET",
    "KOMPASS_BIN",
    "KOMPASS_BENCH_S3_PORT",
    "KOMPASS_BENCH_METRICS_PORT",
];

/// Edit distance between two names (for "did you mean").
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// A variable that looks like ours but is not read, with the closest known name.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UnknownVariable {
    /// The name as set.
    pub name: String,
    /// The closest variable kompass reads, when one is close.
    pub did_you_mean: Option<&'static str>,
}

/// `S3_*` and `KOMPASS_*` names that kompass does not read (the core's
/// `unrecognized_variables`, less the binary's own), and `AWS_*` names one or two edits away
/// from one it reads (other AWS tools' variables are none of our business).
pub fn unknown_variables<'a>(names: impl IntoIterator<Item = &'a String>) -> Vec<UnknownVariable> {
    let known: Vec<&'static str> = vars::ALL
        .iter()
        .chain(NATIVE_VARS)
        .chain(kompass_core::config::budget_vars::ALL.iter())
        .copied()
        .collect();
    let closest = |name: &str| known.iter().map(|k| (distance(name, k), *k)).min();
    let names: Vec<&String> = names.into_iter().collect();
    let mut out = Vec::new();
    for name in kompass_core::config::unrecognized_variables(names.iter().map(|n| n.as_str())) {
        if NATIVE_VARS.contains(&name) {
            continue;
        }
        let guess = closest(name).filter(|(d, _)| *d <= name.len() / 2).map(|(_, k)| k);
        out.push(UnknownVariable { name: name.to_owned(), did_you_mean: guess });
    }
    for name in names.iter().filter(|n| n.starts_with("AWS_") && !known.contains(&n.as_str())) {
        if let Some((d, k)) = closest(name)
            && d <= 2
        {
            out.push(UnknownVariable { name: (*name).clone(), did_you_mean: Some(k) });
        }
    }
    out
}

/// Warns once per process on stderr about each unknown variable.
fn warn_unknown(vars: &BTreeMap<String, String>) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        for u in unknown_variables(vars.keys()) {
            match u.did_you_mean {
                Some(k) => eprintln!(
                    "warning: {} is not a kompass variable and is ignored; did you mean {k}?",
                    u.name
                ),
                None => eprintln!(
                    "warning: {} is not a kompass variable and is ignored (see `kompass config`)",
                    u.name
                ),
            }
        }
    });
}

/// Reads and validates the configuration for the working directory.
pub fn load(data_dir: Option<&Path>) -> Result<Config, EnvError> {
    let cwd = std::env::current_dir().unwrap_or_else(|_| ".".into());
    let vars = variables(&cwd, data_dir)?;
    Ok(Config::from_env_map(&vars)?)
}
