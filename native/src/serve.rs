//! `kompass serve`: the browser page (www/ with its wasm package) and the API it calls.
//!
//! API (JSON; every route but the upload needs `Authorization: Bearer TOKEN`, a token from
//! `kompass token`; the user always comes from the token, never from the path or the body):
//! - `POST /api/presign {type, name, size, sha256}`: admission (file size limit, quota, FIFO
//!   cleanup), then an upload URL bound to `users/{user}/{type}/{name}`, the exact size, the
//!   exact SHA-256 and an expiry. With S3 enabled it is a SigV4 presigned S3 URL (the browser
//!   PUTs straight to the bucket); otherwise it is this server's `PUT /api/upload/{grant}`.
//!   Routes only: type `fitness` is refused (`rider_route`), on every backend.
//! - `POST /api/rider` (body: the rider document, scrubbed on the device): the server scrubs
//!   it again with the pseudonym key and stores it as `fitness_data_{timestamp}.json` (see
//!   [`rider`]).
//! - `PUT /api/upload/{grant}`: the local twin of a presigned URL. The grant is an HMAC-signed
//!   capability (see [`upload`]); the body must have the granted length and SHA-256.
//! - `GET /api/usage`: the user's usage per data type against the quota, with alert levels.
//! - `GET /api/files[?type=routes|fitness]`: the user's stored files, newest first, from the
//!   cached inventory (no LIST per call; the user's unconfirmed grants are checked with a HEAD).
//! - `GET /api/files/{type}/{name}`: the bytes of one of the user's files ([`file`]).
//! - `DELETE /api/files/{type}/{name}`: `{key, deleted_from}`.
//! - `GET /api/rider/history`: the user's rider data saves with summaries ([`account`]).
//! - `GET /api/export`: a zip of every file of the user with `manifest.json`.
//! - `GET /api/me`: `{"user"}`; `DELETE /api/me {"confirm": "<user id>"}`: erases every
//!   trace of the user.
//! - `GET /metrics` (bearer `KOMPASS_METRICS_TOKEN`), `GET /healthz`, `GET /readyz` ([`ops`]).
//! - `POST /api/confirm {type, name}`: the page reports a finished upload; one HEAD checks it,
//!   then its reservation is released and the cleanup it calls for runs (a grant deletes
//!   nothing). 409 `not_uploaded` when it is not there.
//! - `GET /api/allowance`: a signed, short-lived statement of the bytes and uploads the user
//!   may still spend, for the edge presigner.
//!
//! Every presign is admitted by the core's one decision and reserves its bytes. Refusals by
//! the monthly request budget are 429 `budget_spent` with `retry_at` and `Retry-After`; a
//! token over its rate is 429 `rate_limited` with `Retry-After`.
//!
//! Uploads through a URL store exactly the bytes whose SHA-256 was granted, unscrubbed, so
//! they are for routes only. Rider data is stored only by the server, scrubbed with the
//! pseudonym key ([`kompass_core::scrub::POLICY`] says so for every path).

pub mod account;
pub mod auth;
pub mod file;
pub mod jobs;
pub mod limit;
pub mod ops;
pub mod rider;
pub mod routes;
pub mod upload;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use kompass_core::admission::Limit;
use kompass_core::presign::{Credentials, S3Target};
use serde_json::json;
use tower_http::services::ServeDir;

use crate::manager::{Manager, ManagerError};

/// How long an upload URL (presigned or granted) stays valid.
pub const UPLOAD_EXPIRY_SECS: u64 = 900;

/// The signing facts for presigned S3 URLs.
#[derive(Debug, Clone)]
pub struct S3Signing {
    /// The bucket.
    pub target: S3Target,
    /// The credentials that sign.
    pub credentials: Credentials,
}

/// Everything a request handler needs; shared by all requests.
pub struct App {
    /// Storage.
    pub manager: Manager,
    /// The secret that verifies API tokens and signs upload grants.
    secret: Vec<u8>,
    /// S3 signing, when S3 is enabled.
    pub s3: Option<S3Signing>,
    /// The page's directory.
    pub www: PathBuf,
    /// Admission and the save or grant that follows it run one at a time, so two uploads
    /// cannot both pass a quota that only one of them fits.
    pub admission: tokio::sync::Mutex<()>,
    /// Prometheus metrics ([`ops`]).
    pub metrics: ops::Metrics,
    /// The bearer secret of `/metrics` (`KOMPASS_METRICS_TOKEN`); `None` turns it off.
    pub metrics_token: Option<String>,
    /// Per-token rate limits on the API.
    pub limiter: limit::RateLimiter,
}

impl App {
    /// Wires storage, the server secret (at least 32 bytes) and the page directory together.
    pub fn new(manager: Manager, secret: &[u8], www: PathBuf) -> Self {
        let s3 = manager.config().s3.as_ref().zip(manager.s3()).map(|(cfg, store)| S3Signing {
            target: store.target().clone(),
            credentials: cfg.signing_credentials(),
        });
        App {
            manager,
            secret: secret.to_vec(),
            s3,
            www,
            admission: tokio::sync::Mutex::new(()),
            metrics: ops::Metrics::default(),
            metrics_token: None,
            limiter: limit::RateLimiter::default(),
        }
    }

    /// The server secret.
    pub(crate) fn secret(&self) -> &[u8] {
        &self.secret
    }
}

/// The shared application state.
pub type Shared = Arc<App>;

/// The current time in unix seconds.
pub fn unix_now() -> u64 {
    crate::clock::now().as_secs()
}

/// An API failure: an HTTP status and a JSON body `{"error": message, "code": ..., ...}`.
#[derive(Debug)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// A stable machine-readable code.
    pub code: &'static str,
    /// What is wrong and what to do, for people.
    pub message: String,
    /// Extra fields merged into the body (e.g. the refusal's numbers).
    pub detail: Option<serde_json::Value>,
}

impl ApiError {
    /// An error without extra fields.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into(), detail: None }
    }

    /// A 400 for input that cannot be used.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }
}

impl From<ManagerError> for ApiError {
    fn from(e: ManagerError) -> Self {
        let message = e.to_string();
        match e {
            ManagerError::Key(_) => ApiError::bad_request("invalid_key", message),
            ManagerError::Refused(r) => {
                let (status, code) = match r.limit() {
                    Limit::FileSize => (StatusCode::PAYLOAD_TOO_LARGE, "refused"),
                    // Requests, not bytes: the same upload fits once the budget resets.
                    Limit::PutBudget | Limit::GetBudget => {
                        (StatusCode::TOO_MANY_REQUESTS, "budget_spent")
                    }
                    Limit::UserQuota | Limit::Bucket => {
                        (StatusCode::INSUFFICIENT_STORAGE, "refused")
                    }
                };
                let mut detail = json!({
                    "refusal": serde_json::to_value(&r).unwrap_or_default(),
                    "limit": r.limit(),
                });
                if let Some(at) = r.retry_at() {
                    detail["retry_at"] = json!(at.rfc3339());
                    detail["retry_after_secs"] =
                        json!(at.as_secs().saturating_sub(unix_now()).max(1));
                }
                ApiError { status, code, message, detail: Some(detail) }
            }
            ManagerError::NotUploaded { .. } => {
                ApiError::new(StatusCode::CONFLICT, "not_uploaded", message)
            }
            ManagerError::NotFound { .. } => {
                ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
            }
            ManagerError::S3(ref s) if s.is_outage() => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "storage_unavailable", message)
            }
            ManagerError::S3(_) => ApiError::new(StatusCode::BAD_GATEWAY, "storage_error", message),
            // Rider data the policy would still change: refused before anything was stored.
            ManagerError::NotScrubbed(_) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "not_scrubbed", message)
            }
            ManagerError::MissingPseudonymKey(_) | ManagerError::BadPseudonymKey(_) => {
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "no_pseudonym_key",
                    "this server cannot store rider data: its operator must set KOMPASS_PSEUDONYM_KEY",
                )
            }
            // Local and state database errors name server paths: they go to the log only.
            _ => {
                tracing::error!("storage error: {message}");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "storage_error",
                    "the server could not complete this storage operation; its operator can find why in the server log",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!("{} {}: {}", self.status.as_u16(), self.code, self.message);
        }
        let mut body = json!({ "error": self.message, "code": self.code });
        if let (Some(serde_json::Value::Object(extra)), Some(obj)) =
            (self.detail, body.as_object_mut())
        {
            obj.extend(extra);
        }
        // A 429 says when to come back, as a header too.
        let retry_after = body.get("retry_after_secs").and_then(serde_json::Value::as_u64);
        let mut res = (self.status, axum::Json(body)).into_response();
        if let Some(secs) = retry_after.filter(|_| self.status == StatusCode::TOO_MANY_REQUESTS)
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            res.headers_mut().insert(header::RETRY_AFTER, v);
        }
        if self.status == StatusCode::UNAUTHORIZED {
            res.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(r#"Bearer realm="kompass", error="invalid_token""#),
            );
        }
        res
    }
}

/// Where the page is: `KOMPASS_WWW_DIR`, else `www/` in the working directory, else the
/// repository's `www/` next to this crate (a development build run from anywhere).
pub fn find_www(configured: Option<&str>) -> Result<PathBuf, String> {
    let candidates: Vec<PathBuf> = match configured {
        Some(dir) => vec![PathBuf::from(dir)],
        None => vec![PathBuf::from("www"), Path::new(env!("CARGO_MANIFEST_DIR")).join("../www")],
    };
    candidates.iter().find(|d| d.join("index.html").is_file()).cloned().ok_or_else(|| {
        format!(
            "cannot find the page (no index.html in {}): run kompass serve from the repository root or set KOMPASS_WWW_DIR to the www directory",
            candidates.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(" or ")
        )
    })
}

/// `scheme://host[:port]` of a URL, for the page's Content-Security-Policy.
fn origin_of(url: &str) -> Option<&str> {
    let rest_at = url.find("://")? + 3;
    let end = url[rest_at..].find('/').map_or(url.len(), |i| rest_at + i);
    Some(&url[..end])
}

/// The page's Content-Security-Policy: its own scripts and wasm, API calls to itself, and
/// uploads to the bucket when S3 is enabled. Nothing inline, no framing.
fn content_security_policy(app: &App) -> String {
    let s3 = app.s3.as_ref().map(|s| s.target.bucket_url());
    let connect = match s3.as_deref().and_then(origin_of) {
        Some(origin) => format!("'self' {origin}"),
        None => "'self'".to_owned(),
    };
    format!(
        "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self' data:; \
         connect-src {connect}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
}

/// Security headers on every answer; API answers are never cached. Logs each request
/// without the upload grant (a bearer capability until it expires).
async fn headers(State(app): State<Shared>, req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let api = path.starts_with("/api/");
    let shown =
        if path.starts_with("/api/upload/") { "/api/upload/{grant}" } else { path.as_str() };
    let shown = shown.to_owned();
    // The route's pattern, never the raw path: no names or grants in metric labels.
    let route = req.extensions().get::<axum::extract::MatchedPath>().map_or_else(
        || if api { "/api/unknown" } else { "static" }.to_owned(),
        |p| p.as_str().to_owned(),
    );
    let mut res = next.run(req).await;
    tracing::info!("{method} {shown} {}", res.status().as_u16());
    app.metrics.http_request(method.as_str(), &route, res.status().as_u16());
    let h = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&content_security_policy(&app)) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if api {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    } else {
        // The page and its wasm change with every build: revalidate instead of guessing.
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    }
    res
}

/// Unknown API routes answer JSON, not the page.
async fn api_not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no_such_route",
        "no such API route: see the API list in the README",
    )
}

/// 429 with `Retry-After` once a bearer token is over its rate (see [`limit`]); requests
/// without a token pass (they are refused by authentication, or carry a signed grant).
async fn rate_limit(State(app): State<Shared>, req: Request, next: Next) -> Response {
    if let Some(auth) = req.headers().get(header::AUTHORIZATION)
        && let Err(wait) = app.limiter.take(auth.as_bytes(), std::time::Instant::now())
    {
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        let mut res = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!(
                "too many requests with this token (at most {} at once, {} a second): try again in {secs} s",
                limit::BURST,
                limit::PER_SECOND
            ),
        )
        .into_response();
        if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
            res.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return res;
    }
    next.run(req).await
}

/// The whole application: API routes, then the page's static files.
pub fn router(app: Shared) -> Router {
    let api = Router::new()
        .route("/presign", post(routes::presign))
        // Reads its body itself, bounded by the file size limit.
        .route("/rider", post(rider::save).layer(DefaultBodyLimit::disable()))
        .route("/confirm", post(routes::confirm))
        .route("/allowance", get(routes::allowance))
        .route("/usage", get(routes::usage))
        .route("/files", get(routes::files))
        .route("/files/{type}/{name}", get(file::download).delete(file::delete))
        .route("/rider/history", get(account::history))
        .route("/export", get(account::export))
        .route("/me", get(account::me).delete(account::erase_me))
        // The upload reads its body itself, bounded by the granted size.
        .route("/upload/{grant}", put(upload::upload).layer(DefaultBodyLimit::disable()))
        .fallback(api_not_found)
        .layer(middleware::from_fn_with_state(app.clone(), rate_limit));
    Router::new()
        .nest("/api", api)
        .route("/metrics", get(ops::metrics))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .fallback_service(ServeDir::new(&app.www).append_index_html_on_directories(true))
        .layer(middleware::from_fn_with_state(app.clone(), headers))
        .with_state(app)
}

#[cfg(test)]
mod tests {
    use super::{ApiError, origin_of};
    use crate::manager::ManagerError;
    use crate::store::local::io_error;

    #[test]
    fn a_local_storage_error_is_answered_without_its_path() {
        let path = std::path::Path::new("/srv/kompass-data/routes/alice/r1.json");
        for kind in [std::io::ErrorKind::PermissionDenied, std::io::ErrorKind::Other] {
            let local = io_error("write", path, std::io::Error::from(kind));
            assert!(local.to_string().contains("kompass-data"), "the log keeps the path");
            let api = ApiError::from(ManagerError::Local(local));
            assert_eq!((api.status.as_u16(), api.code), (500, "storage_error"));
            assert!(!api.message.contains("kompass-data"), "{}", api.message);
            assert!(api.detail.is_none());
        }
    }

    #[test]
    fn origins() {
        assert_eq!(origin_of("http://127.0.0.1:8333/kompass-test"), Some("http://127.0.0.1:8333"));
        assert_eq!(
            origin_of("https://b.s3.us-east-1.amazonaws.com"),
            Some("https://b.s3.us-east-1.amazonaws.com")
        );
        assert_eq!(origin_of("no scheme"), None);
    }
}
