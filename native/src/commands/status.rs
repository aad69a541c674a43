//! status, config: what is configured, whether it works, and the bucket settings it needs.

use serde::Serialize;

use super::output::human_bytes;
use super::{CliError, Output, open_manager};
use crate::cli::{Cli, ConfigArgs};
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
