//! AWS credentials and settings in the order the AWS CLI uses: the environment (and `.env`)
//! first, then the profile `AWS_PROFILE` (default `default`) from the shared credentials file
//! (`AWS_SHARED_CREDENTIALS_FILE`, default `~/.aws/credentials`) and the config file
//! (`AWS_CONFIG_FILE`, default `~/.aws/config`), including the profile's `region` and
//! `endpoint_url`. The values found fill in the variables the core reads; where each came
//! from is kept for `kompass config` (never the secret itself).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Variables naming the profile and the files (read here, not by the core).
pub const PROFILE_VARS: [&str; 4] =
    ["AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE"];

/// Where each configuration variable's value came from: `environment`, `.env`, or
/// `profile NAME in FILE`.
pub type Sources = BTreeMap<String, String>;

/// One INI section: key (lower-cased) → value.
type Section = BTreeMap<String, String>;

/// One INI file: section name → section.
type Ini = BTreeMap<String, Section>;

/// Parses the AWS INI dialect: `[section]`, `key = value`, `#`/`;` comments. Nested
/// (indented) sub-settings such as `s3 =` blocks are skipped.
fn parse_ini(text: &str) -> Ini {
    let mut out = Ini::new();
    let mut section: Option<String> = None;
    for raw in text.lines() {
        if raw.starts_with([' ', '\t']) {
            continue; // a nested value of the previous key
        }
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = Some(name.trim().to_owned());
            out.entry(name.trim().to_owned()).or_default();
            continue;
        }
        if let (Some(s), Some((k, v))) = (&section, line.split_once('=')) {
            out.entry(s.clone())
                .or_default()
                .insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
    }
    out
}

fn read_ini(path: &Path) -> Option<Ini> {
    std::fs::read_to_string(path).ok().map(|t| parse_ini(&t))
}

fn home_path(
    vars: &BTreeMap<String, String>,
    home: Option<&Path>,
    var: &str,
    default: &str,
) -> Option<PathBuf> {
    match vars.get(var).filter(|v| !v.trim().is_empty()) {
        Some(p) => Some(match (p.strip_prefix("~/"), home) {
            (Some(rest), Some(h)) => h.join(rest),
            _ => PathBuf::from(p),
        }),
        None => home.map(|h| h.join(default)),
    }
}

/// Fills in AWS settings from the profile where the environment leaves them unset, and
/// returns where each value came from. `env_names` are the names set in the process
/// environment (the rest of `vars` came from `.env`).
pub fn apply(
    vars: &mut BTreeMap<String, String>,
    env_names: &[String],
    home: Option<&Path>,
) -> Sources {
    let mut sources = Sources::new();
    for name in vars.keys() {
        let from = if env_names.iter().any(|n| n == name) { "environment" } else { ".env" };
        sources.insert(name.clone(), from.to_owned());
    }
    let set = |vars: &BTreeMap<String, String>, k: &str| {
        vars.get(k).is_some_and(|v| !v.trim().is_empty())
    };
    let explicit = vars
        .get("AWS_PROFILE")
        .or_else(|| vars.get("AWS_DEFAULT_PROFILE"))
        .filter(|p| !p.trim().is_empty());
    let profile = explicit.cloned().unwrap_or_else(|| "default".to_owned());
    let creds_path = home_path(vars, home, "AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials");
    let config_path = home_path(vars, home, "AWS_CONFIG_FILE", ".aws/config");
    let creds = creds_path.as_deref().and_then(read_ini);
    let config = config_path.as_deref().and_then(read_ini);
    let config_section =
        if profile == "default" { "default".to_owned() } else { format!("profile {profile}") };
    let from_creds = creds.as_ref().and_then(|c| c.get(&profile));
    let from_config = config.as_ref().and_then(|c| c.get(&config_section));
    if explicit.is_some() && from_creds.is_none() && from_config.is_none() {
        tracing::warn!(
            "AWS_PROFILE={profile}: no [{profile}] in {} nor [{config_section}] in {}; it is not used",
            creds_path
                .as_deref()
                .map_or("(no credentials file)".into(), |p| p.display().to_string()),
            config_path.as_deref().map_or("(no config file)".into(), |p| p.display().to_string()),
        );
    }
    let fill = |vars: &mut BTreeMap<String, String>,
                sources: &mut Sources,
                var: &str,
                key: &str,
                config_first: bool| {
        let lookups: [(Option<&Section>, &Option<PathBuf>); 2] = if config_first {
            [(from_config, &config_path), (from_creds, &creds_path)]
        } else {
            [(from_creds, &creds_path), (from_config, &config_path)]
        };
        for (section, path) in lookups {
            if let (Some(v), Some(p)) = (section.and_then(|s| s.get(key)), path) {
                vars.insert(var.to_owned(), v.clone());
                sources.insert(var.to_owned(), format!("profile {profile} in {}", p.display()));
                return;
            }
        }
    };
    // Credentials come as a pair: the environment's pair wins whole, as in the AWS CLI.
    if !(set(vars, "AWS_ACCESS_KEY_ID") && set(vars, "AWS_SECRET_ACCESS_KEY")) {
        let has_pair = |s: Option<&BTreeMap<String, String>>| {
            s.is_some_and(|s| {
                s.contains_key("aws_access_key_id") && s.contains_key("aws_secret_access_key")
            })
        };
        if has_pair(from_creds) || has_pair(from_config) {
            vars.remove("AWS_SESSION_TOKEN");
            sources.remove("AWS_SESSION_TOKEN");
            fill(vars, &mut sources, "AWS_ACCESS_KEY_ID", "aws_access_key_id", false);
            fill(vars, &mut sources, "AWS_SECRET_ACCESS_KEY", "aws_secret_access_key", false);
            fill(vars, &mut sources, "AWS_SESSION_TOKEN", "aws_session_token", false);
        }
    }
    if !set(vars, "AWS_REGION") {
        if let Some(r) = vars.get("AWS_DEFAULT_REGION").filter(|v| !v.trim().is_empty()).cloned() {
            let from = sources.get("AWS_DEFAULT_REGION").cloned().unwrap_or_default();
            vars.insert("AWS_REGION".into(), r);
            sources.insert("AWS_REGION".into(), format!("AWS_DEFAULT_REGION ({from})"));
        } else {
            fill(vars, &mut sources, "AWS_REGION", "region", true);
        }
    }
    if !set(vars, "AWS_ENDPOINT_URL") {
        fill(vars, &mut sources, "AWS_ENDPOINT_URL", "endpoint_url", true);
    }
    sources
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(creds: &str, config: &str) -> (tempfile::TempDir, BTreeMap<String, String>) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("c"), creds).unwrap();
        std::fs::write(dir.path().join("k"), config).unwrap();
        let mut vars = BTreeMap::new();
        vars.insert(
            "AWS_SHARED_CREDENTIALS_FILE".into(),
            dir.path().join("c").display().to_string(),
        );
        vars.insert("AWS_CONFIG_FILE".into(), dir.path().join("k").display().to_string());
        (dir, vars)
    }

    const CREDS: &str = "[default]\naws_access_key_id = DEF\naws_secret_access_key = defsecret\n\n# work\n[work]\naws_access_key_id=WORK\naws_secret_access_key = worksecret\naws_session_token = tok\n";
    const CONFIG: &str = "[default]\nregion = eu-west-1\n[profile work]\nregion = eu-central-1\nendpoint_url = http://127.0.0.1:9\ns3 =\n  addressing_style = path\n";

    #[test]
    fn default_profile_fills_what_the_environment_leaves_unset() {
        let (_d, mut vars) = files(CREDS, CONFIG);
        let sources = apply(&mut vars, &[], None);
        assert_eq!(vars["AWS_ACCESS_KEY_ID"], "DEF");
        assert_eq!(vars["AWS_SECRET_ACCESS_KEY"], "defsecret");
        assert_eq!(vars["AWS_REGION"], "eu-west-1");
        assert!(!vars.contains_key("AWS_ENDPOINT_URL"));
        assert!(sources["AWS_ACCESS_KEY_ID"].starts_with("profile default in "));
        assert!(!sources.values().any(|s| s.contains("defsecret")), "sources never hold a secret");
    }

    #[test]
    fn named_profile_with_region_and_endpoint() {
        let (_d, mut vars) = files(CREDS, CONFIG);
        vars.insert("AWS_PROFILE".into(), "work".into());
        let sources = apply(&mut vars, &["AWS_PROFILE".into()], None);
        assert_eq!(vars["AWS_ACCESS_KEY_ID"], "WORK");
        assert_eq!(vars["AWS_SESSION_TOKEN"], "tok");
        assert_eq!(vars["AWS_REGION"], "eu-central-1");
        assert_eq!(vars["AWS_ENDPOINT_URL"], "http://127.0.0.1:9");
        assert!(sources["AWS_ENDPOINT_URL"].starts_with("profile work in "));
        assert_eq!(sources["AWS_PROFILE"], "environment");
    }

    #[test]
    fn the_environment_wins_as_a_pair() {
        let (_d, mut vars) = files(CREDS, CONFIG);
        vars.insert("AWS_ACCESS_KEY_ID".into(), "ENV".into());
        vars.insert("AWS_SECRET_ACCESS_KEY".into(), "envsecret".into());
        vars.insert("AWS_REGION".into(), "us-west-2".into());
        let sources = apply(&mut vars, &["AWS_ACCESS_KEY_ID".into()], None);
        assert_eq!(vars["AWS_ACCESS_KEY_ID"], "ENV");
        assert_eq!(vars["AWS_SECRET_ACCESS_KEY"], "envsecret");
        assert_eq!(vars["AWS_REGION"], "us-west-2");
        assert_eq!(sources["AWS_ACCESS_KEY_ID"], "environment");
        assert_eq!(sources["AWS_SECRET_ACCESS_KEY"], ".env");
        // Only a key id in the environment: the profile's pair is used whole.
        let (_d, mut vars) = files(CREDS, CONFIG);
        vars.insert("AWS_ACCESS_KEY_ID".into(), "ENV".into());
        apply(&mut vars, &[], None);
        assert_eq!(
            (vars["AWS_ACCESS_KEY_ID"].as_str(), vars["AWS_SECRET_ACCESS_KEY"].as_str()),
            ("DEF", "defsecret")
        );
    }

    #[test]
    fn missing_files_and_profiles_change_nothing() {
        let mut vars = BTreeMap::new();
        vars.insert("AWS_SHARED_CREDENTIALS_FILE".into(), "/nonexistent/c".into());
        vars.insert("AWS_PROFILE".into(), "nope".into());
        let before = vars.clone();
        apply(&mut vars, &[], Some(Path::new("/nonexistent-home")));
        assert_eq!(vars, before);
        let (_d, mut vars) = files(CREDS, CONFIG);
        vars.insert("AWS_PROFILE".into(), "absent".into());
        apply(&mut vars, &[], None);
        assert!(!vars.contains_key("AWS_ACCESS_KEY_ID"));
    }
}
