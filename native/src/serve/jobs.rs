//! `kompass serve`'s background jobs: scheduled FIFO cleanup and usage alerts.
//!
//! - Cleanup every `KOMPASS_CLEANUP_INTERVAL_SECS` (default 3600; `0` turns it off; always
//!   off when `S3_AUTO_CLEANUP_ENABLED=false`): the core's bucket plan, then a plan for each
//!   user at or over the cleanup threshold, carried out under the admission lock so no upload
//!   is admitted against usage that is about to change. It reads the cached inventory (a
//!   LIST only when the cache is stale), so it costs no request budget per tick.
//! - Alerts every `KOMPASS_ALERT_INTERVAL_SECS` (default 300): when a scope (the bucket or a
//!   user) crosses into a higher level (the cleanup threshold, 70 % by default; 80 %; 90 %)
//!   or the monthly PUT-class budget crosses 80 % or 100 %, one structured log line
//!   (`target: kompass::alert`) and, with `KOMPASS_ALERT_WEBHOOK` set, one JSON POST
//!   (`{"text", "scope", "level", "percent", "used", "limit"}`; `text` makes it a Slack
//!   incoming-webhook message). Once per crossing: a scope that stays high is not repeated;
//!   after it falls back below a level, crossing it again alerts again.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use kompass_core::fifo;
use kompass_core::quota::{AlertLevel, UsageStatus};
use serde::Serialize;

use super::Shared;
use crate::manager::{Backend, ManagerError, now_ms};

/// The jobs' settings, from the configuration variables.
#[derive(Debug, Clone)]
pub struct Jobs {
    /// Cleanup interval; `None` = off.
    pub cleanup_every: Option<Duration>,
    /// Alert check interval.
    pub alert_every: Duration,
    /// Where alerts are POSTed.
    pub webhook: Option<String>,
}

fn secs(vars: &BTreeMap<String, String>, name: &str, default: u64) -> u64 {
    match vars.get(name).map(|v| v.trim().parse::<u64>()) {
        None => default,
        Some(Ok(n)) => n,
        Some(Err(_)) => {
            eprintln!("warning: {name} is not a whole number of seconds; using {default}");
            default
        }
    }
}

impl Jobs {
    /// Reads `KOMPASS_CLEANUP_INTERVAL_SECS`, `KOMPASS_ALERT_INTERVAL_SECS` and
    /// `KOMPASS_ALERT_WEBHOOK`; cleanup is off when `auto_cleanup` is.
    pub fn from_vars(vars: &BTreeMap<String, String>, auto_cleanup: bool) -> Self {
        let cleanup = secs(vars, "KOMPASS_CLEANUP_INTERVAL_SECS", 3600);
        Jobs {
            cleanup_every: (auto_cleanup && cleanup > 0).then(|| Duration::from_secs(cleanup)),
            alert_every: Duration::from_secs(secs(vars, "KOMPASS_ALERT_INTERVAL_SECS", 300).max(1)),
            webhook: vars
                .get("KOMPASS_ALERT_WEBHOOK")
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty()),
        }
    }
}

/// One alert: a scope crossed into a higher level.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    /// `bucket`, `user:{id}` or `requests:put_class`.
    pub scope: String,
    /// The level entered.
    pub level: AlertLevel,
    /// Percent of the limit used.
    pub percent: f64,
    /// Bytes (or requests) used.
    pub used: u64,
    /// The limit.
    pub limit: u64,
    /// The message, for people and Slack.
    pub text: String,
}

/// The level each scope was last seen at; an alert fires when a scope's level rises.
#[derive(Debug, Default)]
pub struct Crossings {
    seen: BTreeMap<String, AlertLevel>,
}

impl Crossings {
    /// Records the current levels and returns the scopes that rose above their last level
    /// (scopes not reported are forgotten: at normal).
    pub fn update(&mut self, now: Vec<(String, AlertLevel, f64, u64, u64)>) -> Vec<Alert> {
        let mut alerts = Vec::new();
        let mut next = BTreeMap::new();
        for (scope, level, percent, used, limit) in now {
            let before = self.seen.get(&scope).copied().unwrap_or(AlertLevel::Normal);
            if level > before {
                alerts.push(Alert {
                    text: format!(
                        "kompass: {scope} is at {percent:.0}% ({level}): {used} of {limit}{}",
                        if scope.starts_with("requests:") {
                            " requests this month"
                        } else {
                            " bytes"
                        }
                    ),
                    scope: scope.clone(),
                    level,
                    percent,
                    used,
                    limit,
                });
            }
            if level > AlertLevel::Normal {
                next.insert(scope, level);
            }
        }
        self.seen = next;
        alerts
    }
}

/// The levels of every scope now: the bucket, each user, the PUT-class budget (warning at
/// 80 %, critical once exhausted).
async fn levels(app: &Shared) -> Result<Vec<(String, AlertLevel, f64, u64, u64)>, ManagerError> {
    let m = &app.manager;
    let inventory = match m.s3() {
        Some(_) => m.s3_inventory(false).await?,
        None => m.local_inventory()?,
    };
    let limits = m.fifo_limits();
    let threshold = m.config().limits.cleanup_threshold_percent;
    let mut users: BTreeMap<&str, u64> = BTreeMap::new();
    let mut bucket = 0u64;
    for o in &inventory {
        bucket += o.size;
        if let Some(u) = &o.user {
            *users.entry(u.as_str()).or_default() += o.size;
        }
    }
    let mut out = Vec::new();
    let b = UsageStatus::new(bucket, limits.bucket_bytes, threshold);
    out.push(("bucket".to_owned(), b.level, b.percent, bucket, limits.bucket_bytes));
    for (u, used) in users {
        let s = UsageStatus::new(used, limits.user_quota_bytes, threshold);
        out.push((format!("user:{u}"), s.level, s.percent, used, limits.user_quota_bytes));
    }
    if m.s3().is_some() {
        let put = m.ledger()?.budget_level().put_class;
        let level = if put.exhausted {
            AlertLevel::Critical
        } else if put.percent >= 80.0 {
            AlertLevel::Warning
        } else {
            AlertLevel::Normal
        };
        out.push(("requests:put_class".to_owned(), level, put.percent, put.used, put.limit));
    }
    Ok(out)
}

/// Logs and (with a webhook) POSTs one alert.
async fn send(client: &reqwest::Client, webhook: Option<&str>, alert: &Alert) {
    tracing::warn!(
        target: "kompass::alert",
        scope = %alert.scope,
        level = %alert.level,
        percent = alert.percent,
        used = alert.used,
        limit = alert.limit,
        "{}",
        alert.text
    );
    let Some(url) = webhook else { return };
    let body = serde_json::to_vec(alert).unwrap_or_default();
    match client.post(url).header("content-type", "application/json").body(body).send().await {
        Ok(r) if r.status().is_success() => {}
        Ok(r) => tracing::error!("alert webhook answered {}", r.status()),
        // The URL may hold a secret (Slack's do): never logged.
        Err(e) => tracing::error!("alert webhook failed: {}", e.without_url()),
    }
}

/// One scheduled cleanup: the bucket plan, then each user over the threshold.
async fn cleanup_once(app: &Shared) -> Result<usize, ManagerError> {
    let m = &app.manager;
    let _admission = app.admission.lock().await;
    let (backend, inventory) = match m.s3() {
        Some(_) => (Backend::S3, m.s3_inventory(false).await?),
        None => (Backend::Local, m.local_inventory()?),
    };
    let policy = m.policy();
    let limits = m.fifo_limits();
    let now = now_ms();
    let mut deletions = fifo::plan_bucket(&inventory, &policy, &limits, now)?.deletions;
    let mut taken: BTreeSet<String> = deletions.iter().map(|d| d.key.clone()).collect();
    let rest: Vec<_> = inventory.iter().filter(|o| !taken.contains(&o.key)).cloned().collect();
    let users: BTreeSet<&str> = rest.iter().filter_map(|o| o.user.as_deref()).collect();
    for u in users {
        for d in fifo::plan_user(&rest, u, &policy, &limits, now)?.deletions {
            if taken.insert(d.key.clone()) {
                deletions.push(d);
            }
        }
    }
    match backend {
        Backend::S3 => m.delete_planned_s3(&deletions).await?,
        Backend::Local => m.delete_planned_local(&deletions)?,
    }
    Ok(deletions.len())
}

/// Starts the jobs on the current runtime.
pub fn spawn(app: Shared, jobs: Jobs) {
    if let Some(every) = jobs.cleanup_every {
        let app = app.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                match cleanup_once(&app).await {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::info!(target: "kompass::cleanup", deleted = n, "scheduled cleanup deleted {n} file(s)")
                    }
                    Err(e) => {
                        tracing::warn!(target: "kompass::cleanup", "scheduled cleanup failed: {e}")
                    }
                }
            }
        });
    }
    tokio::spawn(async move {
        let client =
            reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap_or_default();
        let mut crossings = Crossings::default();
        let mut tick = tokio::time::interval(jobs.alert_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match levels(&app).await {
                Ok(now) => {
                    for alert in crossings.update(now) {
                        send(&client, jobs.webhook.as_deref(), &alert).await;
                    }
                }
                Err(e) => {
                    tracing::warn!(target: "kompass::alert", "usage could not be read for alerts: {e}")
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(level: AlertLevel) -> Vec<(String, AlertLevel, f64, u64, u64)> {
        vec![("user:a".into(), level, 0.0, 0, 100)]
    }

    #[test]
    fn once_per_crossing_not_per_tick() {
        let mut c = Crossings::default();
        assert!(c.update(at(AlertLevel::Normal)).is_empty());
        assert_eq!(c.update(at(AlertLevel::Cleanup)).len(), 1);
        assert!(c.update(at(AlertLevel::Cleanup)).is_empty(), "same level: no repeat");
        let up = c.update(at(AlertLevel::Critical));
        assert_eq!(up.len(), 1);
        assert_eq!(up[0].level, AlertLevel::Critical);
        assert!(c.update(at(AlertLevel::Warning)).is_empty(), "falling is not an alert");
        assert_eq!(c.update(at(AlertLevel::Critical)).len(), 1, "rising again is");
        assert!(c.update(Vec::new()).is_empty());
        assert_eq!(
            c.update(at(AlertLevel::Warning)).len(),
            1,
            "a scope that went away starts over"
        );
    }
}
