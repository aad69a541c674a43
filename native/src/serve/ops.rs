//! Operations endpoints: `GET /metrics` (Prometheus text), `GET /healthz`, `GET /readyz`.
//!
//! `/metrics` needs `Authorization: Bearer $KOMPASS_METRICS_TOKEN` (a secret of its own, so a
//! scraper never holds a user token and a user token never reads the metrics); without the
//! variable the endpoint answers 404. The facts are gathered at scrape time: S3 requests by
//! operation and outcome (from the S3 client's counters), this month's request budget from
//! the ledger, bytes and objects per scope from the cached inventory (no LIST while the cache
//! is fresh), pending-sync entries, cleanup deletions, and HTTP requests by route and status
//! (counted by the server's middleware).
//!
//! `/readyz` checks that the data directory's state can be read and that the S3 endpoint
//! accepts a TCP connection; it sends no S3 request, so a probe every few seconds costs none
//! of the free tier's monthly requests.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::{ApiError, Shared};
use crate::manager::{Backend, CLEANUP_DELETIONS, ManagerError};

/// The variable holding the bearer secret of `/metrics`.
pub const METRICS_TOKEN_VAR: &str = "KOMPASS_METRICS_TOKEN";

type Labels = Vec<(String, String)>;

/// Facts read at scrape time.
#[derive(Debug, Default)]
struct Snapshot {
    s3_requests: Vec<(Labels, u64)>,
    budget_used: Vec<(Labels, u64)>,
    budget_left: Vec<(Labels, u64)>,
    stored_bytes: Vec<(Labels, u64)>,
    stored_objects: Vec<(Labels, u64)>,
    pending_sync: u64,
    cleanup_deletions: u64,
    s3_degraded: bool,
}

#[derive(Debug)]
struct SnapshotCollector(Arc<Mutex<Snapshot>>);

/// One metric family of constant samples, counters or gauges (`rows`: each sample's labels
/// and value).
fn family(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    kind: MetricType,
    rows: &[(Labels, u64)],
) -> std::fmt::Result {
    let mut family = enc.encode_descriptor(name, help, None, kind)?;
    for (labels, v) in rows {
        let sample = family.encode_family(labels)?;
        match kind {
            MetricType::Counter => ConstCounter::new(*v).encode(sample)?,
            _ => ConstGauge::new(*v as i64).encode(sample)?,
        }
    }
    Ok(())
}

impl Collector for SnapshotCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> std::fmt::Result {
        let s = self.0.lock().unwrap_or_else(|e| e.into_inner());
        family(
            &mut enc,
            "kompass_s3_requests",
            "S3 requests by operation and final outcome (after retries)",
            MetricType::Counter,
            &s.s3_requests,
        )?;
        family(
            &mut enc,
            "kompass_request_budget_used",
            "S3 requests counted this month by billing class",
            MetricType::Gauge,
            &s.budget_used,
        )?;
        family(
            &mut enc,
            "kompass_request_budget_left",
            "S3 free-tier requests left this month by billing class",
            MetricType::Gauge,
            &s.budget_left,
        )?;
        family(
            &mut enc,
            "kompass_stored_bytes",
            "Bytes stored per scope (bucket, data type, user)",
            MetricType::Gauge,
            &s.stored_bytes,
        )?;
        family(
            &mut enc,
            "kompass_stored_objects",
            "Objects stored per scope (bucket, data type, user)",
            MetricType::Gauge,
            &s.stored_objects,
        )?;
        family(
            &mut enc,
            "kompass_pending_sync_entries",
            "Saves waiting in the pending-sync journal",
            MetricType::Gauge,
            &[(Vec::new(), s.pending_sync)],
        )?;
        family(
            &mut enc,
            "kompass_cleanup_deletions",
            "Objects deleted by FIFO cleanup since start",
            MetricType::Counter,
            &[(Vec::new(), s.cleanup_deletions)],
        )?;
        family(
            &mut enc,
            "kompass_s3_degraded",
            "1 when S3 is configured but could not be read at the last scrape",
            MetricType::Gauge,
            &[(Vec::new(), u64::from(s.s3_degraded))],
        )?;
        Ok(())
    }
}

/// The server's metrics: a registry with the HTTP counters and the scrape-time facts.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    http: Family<Labels, Counter>,
    snapshot: Arc<Mutex<Snapshot>>,
    /// One scrape at a time refreshes the snapshot and encodes it.
    scrape: tokio::sync::Mutex<()>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let http = Family::<Labels, Counter>::default();
        registry.register(
            "kompass_http_requests",
            "HTTP requests by route and status",
            http.clone(),
        );
        let snapshot = Arc::new(Mutex::new(Snapshot::default()));
        registry.register_collector(Box::new(SnapshotCollector(snapshot.clone())));
        Metrics { registry, http, snapshot, scrape: tokio::sync::Mutex::new(()) }
    }
}

impl Metrics {
    /// Counts one HTTP answer; `route` is the route's pattern, never the raw path (no user
    /// names or grants in labels).
    pub fn http_request(&self, method: &str, route: &str, status: u16) {
        self.http
            .get_or_create(&vec![
                ("method".to_owned(), method.to_owned()),
                ("route".to_owned(), route.to_owned()),
                ("status".to_owned(), status.to_string()),
            ])
            .inc();
    }
}

fn l(pairs: &[(&str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

/// Whether `given` equals `expected`, comparing digests so the time taken says nothing.
fn same_secret(given: &str, expected: &str) -> bool {
    Sha256::digest(given.as_bytes()) == Sha256::digest(expected.as_bytes())
}

async fn refresh(app: &Shared) -> Result<(), ManagerError> {
    let m = &app.manager;
    let mut s = Snapshot::default();
    let (backend, inventory) = match m.s3() {
        Some(_) => match m.s3_inventory(false).await {
            Ok(inv) => (Backend::S3, inv),
            Err(ManagerError::S3(e)) if e.is_outage() => {
                s.s3_degraded = true;
                (Backend::Local, m.local_inventory()?)
            }
            Err(e) => return Err(e),
        },
        None => (Backend::Local, m.local_inventory()?),
    };
    let backend = if backend == Backend::S3 { "s3" } else { "local" };
    let mut scopes: BTreeMap<Labels, (u64, u64)> = BTreeMap::new();
    for o in &inventory {
        let mut add = |labels: Labels| {
            let e = scopes.entry(labels).or_default();
            e.0 += o.size;
            e.1 += 1;
        };
        add(l(&[("backend", backend), ("scope", "bucket")]));
        add(l(&[("backend", backend), ("scope", "data_type"), ("data_type", &o.data_type)]));
        if let Some(u) = &o.user {
            add(l(&[("backend", backend), ("scope", "user"), ("user", u)]));
        }
    }
    scopes.entry(l(&[("backend", backend), ("scope", "bucket")])).or_default();
    for (labels, (bytes, objects)) in scopes {
        s.stored_bytes.push((labels.clone(), bytes));
        s.stored_objects.push((labels, objects));
    }
    // Read last: the inventory above may have sent a request.
    if let Some(s3) = m.s3() {
        s.s3_requests = s3
            .outcomes()
            .into_iter()
            .map(|o| (l(&[("op", o.op), ("outcome", o.outcome)]), o.count))
            .collect();
    }
    let ledger = m.ledger()?;
    let left = ledger.remaining();
    s.budget_used = vec![
        (l(&[("class", "put")]), ledger.put_class),
        (l(&[("class", "get")]), ledger.get_class),
    ];
    s.budget_left =
        vec![(l(&[("class", "put")]), left.put_class), (l(&[("class", "get")]), left.get_class)];
    s.pending_sync = m.journal().pending()?.len() as u64;
    s.cleanup_deletions = CLEANUP_DELETIONS.load(Ordering::Relaxed);
    *app.metrics.snapshot.lock().unwrap_or_else(|e| e.into_inner()) = s;
    Ok(())
}

/// `GET /metrics`.
pub async fn metrics(State(app): State<Shared>, headers: HeaderMap) -> Result<Response, ApiError> {
    let Some(expected) = app.metrics_token.as_deref() else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "metrics_disabled",
            format!(
                "metrics are off: set {METRICS_TOKEN_VAR} on the server and send it as a bearer token"
            ),
        ));
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim());
    if !given.is_some_and(|g| same_secret(g, expected)) {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            format!("send `Authorization: Bearer` with the value of {METRICS_TOKEN_VAR}"),
        ));
    }
    let _one = app.metrics.scrape.lock().await;
    refresh(&app).await?;
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &app.metrics.registry).map_err(|e| {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "metrics_failed", e.to_string())
    })?;
    let mut res = text.into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    Ok(res)
}

/// `GET /healthz`: the process is up and answering.
pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// `GET /readyz`: 200 when the data directory's state reads and S3 (if configured) accepts a
/// connection; 503 with the failing check otherwise.
pub async fn readyz(State(app): State<Shared>) -> Response {
    let mut checks = serde_json::Map::new();
    let mut ready = true;
    match app
        .manager
        .journal()
        .pending()
        .map_err(ManagerError::from)
        .and_then(|_| app.manager.ledger())
    {
        Ok(_) => {
            checks.insert("data_directory".into(), json!("ok"));
        }
        Err(e) => {
            ready = false;
            // No server paths in answers: the reason's kind only.
            tracing::warn!("readyz: the data directory is not usable: {e}");
            checks.insert(
                "data_directory".into(),
                json!("the data directory's state cannot be read (see the server log)"),
            );
        }
    }
    if let Some(s3) = app.manager.s3() {
        let url = reqwest::Url::parse(&s3.target().bucket_url()).ok();
        let addr = url
            .as_ref()
            .and_then(|u| Some(format!("{}:{}", u.host_str()?, u.port_or_known_default()?)));
        let ok = match addr {
            Some(a) => matches!(
                tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(a))
                    .await,
                Ok(Ok(_))
            ),
            None => false,
        };
        ready &= ok;
        checks.insert(
            "s3".into(),
            json!(if ok { "ok" } else { "the S3 endpoint does not accept connections" }),
        );
    }
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(json!({ "ready": ready, "checks": checks }))).into_response()
}
