//! status, config, token, presign: what is configured and the credentials it hands out.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kompass_core::inventory::Sha256Digest;
use kompass_core::presign::presign_put;
use serde::Serialize;

use super::data::object_key;
use super::output::human_bytes;
use super::{CliError, Output, open_manager};
use crate::cli::{Cli, ConfigArgs, PresignArgs, TokenArgs};
use crate::env::EnvError;
use crate::manager::ManagerError;

/// The smallest IAM policy kompass needs on its bucket.
pub fn iam_policy(bucket: &str) -> serde_json::Value {
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "KompassListBucket",
                "Effect": "Allow",
                "Action": ["s3:ListBucket"],
                "Resource": format!("arn:aws:s3:::{bucket}")
            },
            {
                "Sid": "KompassObjects",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                "Resource": format!("arn:aws:s3:::{bucket}/*")
            }
        ]
    })
}

#[derive(Serialize)]
struct Status {
    #[serde(flatten)]
    facts: crate::report::StorageFacts,
    /// S3 is configured but unreachable: the S3 figures are missing, not zero (exit 5).
    degraded: bool,
    /// Why, when degraded.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

/// `kompass status`.
pub async fn status(cli: &Cli, out: &Output) -> Result<(), CliError> {
    let m = open_manager(cli)?;
    let facts = crate::report::storage_facts(&m).await?;
    let reason = match (&facts.s3_error, facts.s3_outage) {
        (Some(e), true) => Some(format!("S3 is configured but unreachable: {e}")),
        _ => None,
    };
    let st = Status { degraded: reason.is_some(), reason, facts };
    out.print(&st, || {
        let st = &st.facts;
        let mut s = format!(
            "preferred backend: {}\nlocal: {} ({} files, {})",
            st.preferred_backend,
            st.data_directory,
            st.local_files,
            human_bytes(st.local_bytes)
        );
        if let Some(b) = &st.bucket {
            s.push_str(&format!("\nS3: bucket {b}"));
            if let Some(e) = &st.endpoint {
                s.push_str(&format!(" at {e}"));
            }
            match (&st.s3_files, &st.s3_bytes, &st.s3_error) {
                (Some(n), Some(bytes), _) => {
                    s.push_str(&format!(" ({n} files, {})", human_bytes(*bytes)))
                }
                (_, _, Some(e)) => s.push_str(&format!("\n  unavailable: {e}")),
                _ => {}
            }
        } else {
            s.push_str("\nS3: not enabled (set S3_STORAGE_ENABLED=true to use a bucket)");
        }
        if st.pending_sync > 0 {
            s.push_str(&format!(
                "\n{} save(s) wait for S3 in the pending-sync journal: run `kompass migrate`",
                st.pending_sync
            ));
        }
        s
    });
    match st.reason {
        Some(reason) => Err(CliError::Degraded(reason)),
        None => Ok(()),
    }
}

#[derive(Serialize)]
struct ConfigReport {
    valid: bool,
    config: Option<kompass_core::config::RedactedConfig>,
    problems: Vec<kompass_core::config::ConfigProblem>,
    s3_access: Option<String>,
    iam_policy: Option<serde_json::Value>,
    /// Where each variable's value came from (`environment`, `.env`, `profile P in FILE`,
    /// `--data-dir`); never a value.
    sources: std::collections::BTreeMap<String, String>,
    /// Variables that look like kompass's but are not read, with the closest known name.
    unknown_variables: Vec<crate::env::UnknownVariable>,
}

/// The bucket CORS configuration the page needs: the browser PUTs presigned uploads (with
/// the signed checksum header) and GETs nothing else from the bucket.
pub fn bucket_cors(origin: &str) -> serde_json::Value {
    serde_json::json!({
        "CORSRules": [{
            "AllowedOrigins": [origin],
            "AllowedMethods": ["PUT"],
            "AllowedHeaders": ["content-type", "x-amz-checksum-sha256", "x-amz-content-sha256", "x-amz-date", "x-amz-sdk-checksum-algorithm"],
            "ExposeHeaders": ["ETag"],
            "MaxAgeSeconds": 3000
        }]
    })
}

/// The lifecycle rule kompass expects: multipart uploads left incomplete (which count toward
/// the bucket's storage) are aborted after a day. FIFO cleanup, not expiry, removes data.
pub fn bucket_lifecycle() -> serde_json::Value {
    serde_json::json!({
        "Rules": [{
            "ID": "kompass-abort-incomplete-multipart",
            "Status": "Enabled",
            "Filter": { "Prefix": "" },
            "AbortIncompleteMultipartUpload": { "DaysAfterInitiation": 1 }
        }]
    })
}

/// `kompass config`: the configuration with secrets redacted, every problem, a live S3 check.
pub async fn config(cli: &Cli, args: &ConfigArgs, out: &Output) -> Result<(), CliError> {
    if let Some(origin) = &args.bucket_cors {
        let origin = origin.trim_end_matches('/');
        if !(origin.starts_with("https://") || origin.starts_with("http://"))
            || origin.matches('/').count() != 2
        {
            return Err(CliError::Usage(format!(
                "--bucket-cors needs the page's origin, scheme://host[:port] (e.g. https://kompass.example.org), not {origin:?}"
            )));
        }
        let cors = bucket_cors(origin);
        out.print(&cors, || serde_json::to_string_pretty(&cors).unwrap_or_default());
        return Ok(());
    }
    if args.bucket_lifecycle {
        let l = bucket_lifecycle();
        out.print(&l, || serde_json::to_string_pretty(&l).unwrap_or_default());
        return Ok(());
    }
    let loaded = crate::env::load(cli.data_dir.as_deref());
    let cwd = std::env::current_dir().unwrap_or_else(|_| ".".into());
    let (names, sources) = match crate::env::variables_with_sources(&cwd, cli.data_dir.as_deref()) {
        Ok((vars, sources)) => (vars.keys().cloned().collect::<Vec<_>>(), sources),
        Err(_) => (Vec::new(), Default::default()),
    };
    let known: Vec<&str> = kompass_core::config::vars::ALL
        .iter()
        .chain(crate::env::NATIVE_VARS)
        .chain(kompass_core::config::budget_vars::ALL.iter())
        .copied()
        .collect();
    let sources: std::collections::BTreeMap<String, String> =
        sources.into_iter().filter(|(k, _)| known.contains(&k.as_str())).collect();
    let unknown_variables = crate::env::unknown_variables(names.iter());
    let mut report = ConfigReport {
        valid: false,
        config: None,
        problems: Vec::new(),
        s3_access: None,
        iam_policy: None,
        sources,
        unknown_variables,
    };
    let mut failure = None;
    match loaded {
        Ok(cfg) => {
            report.valid = true;
            report.config = Some(cfg.redacted_view());
            if let Some(s3) = &cfg.s3 {
                if args.iam_policy {
                    report.iam_policy = Some(iam_policy(&s3.bucket));
                }
                if !args.offline {
                    let m = crate::manager::Manager::open(cfg.clone())?;
                    let check = m.require_s3()?.check_access().await;
                    m.record_requests()?;
                    match check {
                        Ok(()) => report.s3_access = Some("ok".into()),
                        Err(e) => {
                            report.s3_access = Some(e.to_string());
                            failure = Some(CliError::Manager(ManagerError::S3(e)));
                        }
                    }
                }
            } else if args.iam_policy {
                failure = Some(CliError::Usage(
                    "--iam-policy needs AWS_S3_BUCKET and S3_STORAGE_ENABLED=true".into(),
                ));
            }
        }
        Err(EnvError::Config(errors)) => {
            report.problems = errors.problems.clone();
            failure = Some(CliError::Env(EnvError::Config(errors)));
        }
        Err(e) => return Err(e.into()),
    }
    // The report is printed even when something is wrong: it is the diagnosis.
    if out.is_json() || failure.is_none() {
        out.print(&report, || {
            let mut s = report.config.as_ref().map(|c| c.to_string()).unwrap_or_default();
            if !report.sources.is_empty() {
                s.push_str("\nwhere the values came from (unlisted: defaults):");
                for (k, v) in &report.sources {
                    s.push_str(&format!("\n  {k}: {v}"));
                }
            }
            if let Some(a) = &report.s3_access {
                s.push_str(&format!("\nS3 access check: {a}"));
            }
            if let Some(p) = &report.iam_policy {
                s.push_str(&format!(
                    "\nminimal IAM policy for the bucket:\n{}",
                    serde_json::to_string_pretty(p).unwrap_or_default()
                ));
            }
            s
        });
    } else if let Some(c) = &report.config {
        super::output::write_stdout(&c.to_string());
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// `kompass token`.
pub fn token(cli: &Cli, args: &TokenArgs, out: &Output) -> Result<(), CliError> {
    let user = kompass_core::key::UserId::new(&args.user).map_err(ManagerError::Key)?;
    let cfg = crate::env::load(cli.data_dir.as_deref())?;
    // A missing or weak secret is a configuration problem (exit 2), like any other.
    let secret = cfg.server_secret().map_err(|e| CliError::Usage(e.to_string()))?;
    if args.expires == 0 {
        return Err(CliError::Usage("--expires must be at least 1 second".into()));
    }
    let expires_at = unix_now().saturating_add(args.expires);
    let token = kompass_core::token::mint(user.as_str(), expires_at, secret.expose_bytes());
    let expires_at = kompass_core::presign::rfc3339_utc(expires_at);
    out.print(
        &serde_json::json!({ "token": token, "user": user, "expires_at": expires_at }),
        || token.clone(),
    );
    Ok(())
}

/// `kompass presign`: admission like every upload (the grant reserves its bytes and charges
/// the request budget; nothing is deleted until it is confirmed), then the URL.
pub async fn presign(cli: &Cli, args: &PresignArgs, out: &Output) -> Result<(), CliError> {
    let key = object_key(&args.target)?;
    let sha = Sha256Digest::from_hex(&args.sha256)
        .map_err(|e| CliError::Usage(format!("--sha256: {e}")))?;
    let m = open_manager(cli)?;
    let limit = m.config().limits.max_file_bytes;
    if args.size > limit {
        return Err(ManagerError::Refused(kompass_core::admission::Refusal::Size(
            kompass_core::quota::Refusal::FileTooLarge { size: args.size, limit },
        ))
        .into());
    }
    let s3 = m.require_s3()?;
    let expires = kompass_core::time::UnixMs(crate::manager::now_ms())
        .plus_ms(args.expires.saturating_mul(1000));
    m.grant(&key, args.size, expires).await?;
    let cfg = m.config().s3.as_ref().ok_or(ManagerError::S3Disabled)?;
    let creds = cfg.signing_credentials();
    let signed = presign_put(
        s3.target(),
        &key.s3_key(),
        args.size,
        sha.0,
        &creds,
        SystemTime::now(),
        Duration::from_secs(args.expires),
        None,
    )
    .map_err(|e| CliError::Usage(e.to_string()))?;
    out.print(&signed, || {
        let mut s = format!("{} {}", signed.method, signed.url);
        for (k, v) in &signed.headers {
            s.push_str(&format!("\n  {k}: {v}"));
        }
        s.push_str(&format!("\nexpires at {}", signed.expires_at));
        s
    });
    Ok(())
}
