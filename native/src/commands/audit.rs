//! `kompass scrub --audit [--user U] [--fix [--dry-run]]`: the operator's check after a
//! policy change or a bug fix. Reads every stored fitness object (local disk and S3, the
//! newest copy of each), scrubs it again with the configured key under the current policy,
//! and lists those the policy would still change. With `--fix` each is re-scrubbed in place
//! through the storage manager's save (admission included); `--dry-run` shows the plan.
//!
//! S3 requests are counted against the monthly free-tier budget before they are sent: an
//! object whose GET or PUT would go over it is left for next month and reported `deferred`.

use kompass_core::key::{DataType, ObjectKey, UserId};
use kompass_core::quota::{RequestBudget, RequestKind};
use kompass_core::scrub;
use serde::Serialize;

use super::output::human_bytes;
use super::{CliError, Output, open_manager};
use crate::cli::{Cli, ScrubArgs};
use crate::manager::{Backend, Manager, ManagerError};
use crate::rider::{self, RiderError};

/// What the audit did with one stored object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Listed: the policy would change it (no `--fix`).
    Listed,
    /// `--fix --dry-run`: it would be re-scrubbed in place.
    WouldFix,
    /// Re-scrubbed in place.
    Fixed,
    /// Left for later: the request budget does not allow its GET or PUT this month.
    Deferred,
    /// Not rider data at all (not JSON, not an object): it cannot be scrubbed, only deleted.
    CannotScrub,
}

/// One stored object the current policy would change.
#[derive(Debug, Serialize)]
pub struct Finding {
    /// The object key.
    pub key: String,
    /// Where the audited copy is.
    pub backend: Option<Backend>,
    /// Its size in bytes.
    pub size: u64,
    /// Paths the policy removes from it (JSON pointers into the stored document).
    pub removed: Vec<String>,
    /// Size after re-scrubbing.
    pub scrubbed_bytes: Option<u64>,
    /// What was done.
    pub action: Action,
    /// Why, for `deferred` and `cannot_scrub`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `kompass scrub --audit` JSON.
#[derive(Debug, Serialize)]
pub struct Audit {
    /// The scrub rules applied.
    pub version: &'static str,
    /// The configured key's id (pseudonyms under any other are dropped).
    pub key_id: String,
    /// Fitness objects read.
    pub checked: usize,
    /// Those the policy leaves as they are.
    pub clean: usize,
    /// Those it would change, and what was done with each.
    pub findings: Vec<Finding>,
    /// Objects re-scrubbed in place.
    pub fixed: usize,
    /// Whether this was `--fix --dry-run`.
    pub dry_run: bool,
}

/// The fitness object keys stored anywhere (local disk and S3), optionally of one user.
async fn stored_fitness(m: &Manager, user: Option<&UserId>) -> Result<Vec<ObjectKey>, CliError> {
    let mut keys = std::collections::BTreeSet::new();
    let mut inventory = m.local_inventory()?;
    if m.s3().is_some() {
        inventory.extend(m.s3_inventory(true).await?);
    }
    for o in inventory {
        let Ok(k) = ObjectKey::from_s3_key(&o.key) else { continue };
        if k.data_type() == DataType::Fitness && user.is_none_or(|u| k.owner() == Some(u)) {
            keys.insert(k);
        }
    }
    Ok(keys.into_iter().collect())
}

/// Whether the month's budget allows one more request of `kind` (always, without S3).
fn budget_allows(m: &Manager, kind: RequestKind) -> Result<bool, CliError> {
    if m.s3().is_none() {
        return Ok(true);
    }
    Ok(m.ledger()?.allows(kind, 1, &RequestBudget::FREE_TIER))
}

/// `kompass scrub --audit`.
pub async fn audit(cli: &Cli, args: &ScrubArgs, out: &Output) -> Result<(), CliError> {
    if args.file.is_some() {
        return Err(CliError::Usage(
            "--audit reads the stored fitness data, not a file: drop the file argument".into(),
        ));
    }
    if args.dry_run && !args.fix {
        return Err(CliError::Usage(
            "--dry-run goes with --fix (plain --audit changes nothing)".into(),
        ));
    }
    let m = open_manager(cli)?;
    let key = rider::pseudonym_key(m.config()).map_err(|e| match e {
        RiderError::MissingKey(_) | RiderError::BadKey(_) => {
            CliError::Usage(format!("{e}: the audit scrubs with the key that stores rider data"))
        }
        e => CliError::Rider(e),
    })?;
    let user = args.user.as_deref().map(UserId::new).transpose().map_err(ManagerError::Key)?;
    let keys = stored_fitness(&m, user.as_ref()).await?;
    let mut report = Audit {
        version: scrub::SCRUB_VERSION,
        key_id: key.key_id().to_owned(),
        checked: 0,
        clean: 0,
        findings: Vec::new(),
        fixed: 0,
        dry_run: args.dry_run,
    };
    for object in keys {
        if !budget_allows(&m, RequestKind::Get)? {
            report.findings.push(Finding {
                key: object.s3_key(),
                backend: None,
                size: 0,
                removed: Vec::new(),
                scrubbed_bytes: None,
                action: Action::Deferred,
                reason: Some("the month's GET-class request budget is used up: run the audit again next month".into()),
            });
            continue;
        }
        let loaded = m.load(&object).await;
        m.record_requests()?;
        let (bytes, backend) = match loaded {
            Ok(b) => b,
            // Deleted since the listing.
            Err(ManagerError::NotFound { .. }) => continue,
            Err(e) => return Err(e.into()),
        };
        report.checked += 1;
        let scrubbed = match scrub::scrub(&bytes, &key) {
            Ok(s) => s,
            Err(e) => {
                report.findings.push(Finding {
                    key: object.s3_key(),
                    backend: Some(backend),
                    size: bytes.len() as u64,
                    removed: vec![String::new()],
                    scrubbed_bytes: None,
                    action: Action::CannotScrub,
                    reason: Some(format!(
                        "{e}; delete it with `kompass delete --user {} --type fitness --name {}`",
                        object.owner().map(UserId::as_str).unwrap_or_default(),
                        object.name()
                    )),
                });
                continue;
            }
        };
        if scrubbed.document.as_bytes() == bytes.as_slice() {
            report.clean += 1;
            continue;
        }
        let mut finding = Finding {
            key: object.s3_key(),
            backend: Some(backend),
            size: bytes.len() as u64,
            removed: scrubbed.report.removed.clone(),
            scrubbed_bytes: Some(scrubbed.document.len() as u64),
            action: Action::Listed,
            reason: None,
        };
        if args.fix && args.dry_run {
            finding.action = Action::WouldFix;
        } else if args.fix {
            if budget_allows(&m, RequestKind::Put)? {
                m.save(&object, scrubbed.document.as_bytes()).await?;
                m.record_requests()?;
                finding.action = Action::Fixed;
                report.fixed += 1;
            } else {
                finding.action = Action::Deferred;
                finding.reason = Some(
                    "the month's PUT-class request budget is used up: run --fix again next month"
                        .into(),
                );
            }
        }
        report.findings.push(finding);
    }
    out.print(&report, || text(&report));
    Ok(())
}

fn text(r: &Audit) -> String {
    let mut s = format!(
        "checked {} stored fitness object{} under {} (key {}): {} clean, {} the policy would change",
        r.checked,
        if r.checked == 1 { "" } else { "s" },
        r.version,
        r.key_id,
        r.clean,
        r.findings.len()
    );
    for f in &r.findings {
        let what = match f.action {
            Action::Listed => "would change",
            Action::WouldFix => "would be re-scrubbed",
            Action::Fixed => "re-scrubbed",
            Action::Deferred => "deferred",
            Action::CannotScrub => "cannot be scrubbed",
        };
        s.push_str(&format!("\n  {} ({}): {what}", f.key, human_bytes(f.size)));
        if !f.removed.is_empty() && f.action != Action::CannotScrub {
            s.push_str(&format!(", removes {}", f.removed.join(", ")));
        }
        if let Some(why) = &f.reason {
            s.push_str(&format!(" ({why})"));
        }
    }
    if !r.findings.is_empty() && r.fixed == 0 && !r.dry_run {
        s.push_str("\nre-scrub them in place with --fix (try --fix --dry-run first)");
    }
    s
}
