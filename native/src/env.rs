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
    #[error("the configuration has problems:\n{0}")]
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

/// The merged variables: `.env` from `dir`, the process environment, and a data-dir override.
pub fn variables(dir: &Path, data_dir: Option<&Path>) -> Result<BTreeMap<String, String>, EnvError> {
    let path = dir.join(".env");
    let dotenv = match std::fs::read_to_string(&path) {
        Ok(text) => parse_dotenv(&text)
            .map_err(|source| EnvError::Dotenv { path: path.display().to_string(), source })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(source) => return Err(EnvError::DotenvIo { path: path.display().to_string(), source }),
    };
    let mut vars = merge_env(dotenv, environment()?);
    if let Some(d) = data_dir {
        vars.insert("DATA_DIRECTORY".into(), d.display().to_string());
    }
    Ok(vars)
}

/// Reads and validates the configuration for the working directory.
pub fn load(data_dir: Option<&Path>) -> Result<Config, EnvError> {
    let cwd = std::env::current_dir().unwrap_or_else(|_| ".".into());
    let vars = variables(&cwd, data_dir)?;
    Ok(Config::from_env_map(&vars)?)
}
