//! The JSON API: presign (admission, then an upload URL), usage, files.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use kompass_core::fifo::Deletion;
use kompass_core::inventory::{ObjectInfo, Sha256Digest};
use kompass_core::key::{DataType, ObjectKey};
use kompass_core::quota::{CurrentUsage, Limits, UsageStatus, alert_level, percent_used};
use serde::{Deserialize, Serialize};

use super::auth::User;
use super::upload::Grant;
use super::{ApiError, Shared, UPLOAD_EXPIRY_SECS, unix_now};
use crate::manager::{Backend, Listed, ManagerError};
use crate::store::Scope;
use kompass_core::admission::StoredObject;
use kompass_core::time::UnixMs;

/// The data types a user may upload and list (`models` and `training_data` are global).
const USER_TYPES: [DataType; 2] = [DataType::Routes, DataType::Fitness];

/// `POST /api/presign` body. There is no user field: the user is the token's.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PresignRequest {
    /// `routes` or `fitness`.
    #[serde(rename = "type")]
    pub data_type: String,
    /// The file name.
    pub name: String,
    /// The exact size in bytes.
    pub size: u64,
    /// The SHA-256 of the bytes, hex.
    pub sha256: String,
}

/// `POST /api/presign` answer: the `presign` JSON shape plus where the upload lands.
#[derive(Debug, Serialize)]
pub struct PresignAnswer {
    /// Where to PUT: an S3 URL, or this server's `/api/upload/{grant}` (relative).
    pub url: String,
    /// Always `PUT`.
    pub method: &'static str,
    /// Headers to send with exactly these values (a browser sets `content-length` itself).
    pub headers: BTreeMap<String, String>,
    /// The object key.
    pub key: String,
    /// When the URL stops working, RFC 3339 UTC.
    pub expires_at: String,
    /// Where the upload lands.
    pub backend: Backend,
    /// Always empty now: a grant deletes nothing; cleanup runs when the upload is confirmed.
    /// (Kept for compatibility.)
    pub cleanup: Vec<Deletion>,
    /// Where to `POST {type, name}` once the upload finished, so its cleanup runs and its
    /// reservation is released.
    pub confirm: &'static str,
}

fn json_rejection(e: JsonRejection) -> ApiError {
    ApiError::bad_request(
        "bad_request",
        format!(
            "{}; send JSON {{\"type\", \"name\", \"size\", \"sha256\"}} (the user comes from the token)",
            e.body_text()
        ),
    )
}

/// `POST /api/presign`.
pub async fn presign(
    State(app): State<Shared>,
    User(user): User,
    body: Result<Json<PresignRequest>, JsonRejection>,
) -> Result<Json<PresignAnswer>, ApiError> {
    let Json(req) = body.map_err(json_rejection)?;
    let key = ObjectKey::parse_parts(Some(user.as_str()), &req.data_type, &req.name)
        .map_err(ManagerError::Key)?;
    // The policy: no upload URL is ever issued for rider data, whatever the backend.
    if key.data_type() == DataType::Fitness {
        return Err(ApiError::bad_request(
            "rider_route",
            kompass_core::scrub::policy::USE_RIDER_ROUTE,
        ));
    }
    let sha = Sha256Digest::from_hex(&req.sha256)
        .map_err(|e| ApiError::bad_request("bad_sha256", e.to_string()))?;
    let expires_at = unix_now() + UPLOAD_EXPIRY_SECS;

    // Admission reserves the bytes (and charges the PUT); nothing is deleted until the upload
    // is confirmed stored (`POST /api/confirm`, or the next listing that sees it).
    let granted = app.manager.grant(&key, req.size, UnixMs::from_secs(expires_at)).await?;
    let s3_key = key.s3_key();
    let mut headers = BTreeMap::new();
    headers.insert("content-length".to_owned(), req.size.to_string());
    headers.insert("x-amz-checksum-sha256".to_owned(), sha.to_base64());
    match (granted.backend, &app.s3) {
        (Backend::S3, Some(s3)) => {
            let signed = kompass_core::presign::presign_put(
                &s3.target,
                &s3_key,
                req.size,
                sha.0,
                &s3.credentials,
                crate::clock::now().to_system_time(),
                Duration::from_secs(UPLOAD_EXPIRY_SECS),
                None,
            )
            .map_err(|e| {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "presign_failed", e.to_string())
            })?;
            Ok(Json(PresignAnswer {
                url: signed.url,
                method: "PUT",
                headers: signed.headers,
                key: s3_key,
                expires_at: signed.expires_at,
                backend: Backend::S3,
                cleanup: Vec::new(),
                confirm: CONFIRM_ROUTE,
            }))
        }
        // Local storage (or S3 unreachable: the save then lands locally and is queued).
        _ => {
            let grant = Grant { key: s3_key.clone(), size: req.size, sha256: sha.0, expires_at };
            Ok(Json(PresignAnswer {
                url: format!("/api/upload/{}", grant.sign(app.secret())),
                method: "PUT",
                headers,
                key: s3_key,
                expires_at: kompass_core::time::rfc3339_utc(expires_at),
                backend: Backend::Local,
                cleanup: Vec::new(),
                confirm: CONFIRM_ROUTE,
            }))
        }
    }
}

/// Where the page reports a finished upload.
const CONFIRM_ROUTE: &str = "/api/confirm";

/// `POST /api/confirm` body: which of the token user's uploads finished.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfirmRequest {
    /// `routes` or `fitness`.
    #[serde(rename = "type")]
    pub data_type: String,
    /// The file name.
    pub name: String,
}

/// `POST /api/confirm`: the page says an upload finished; the server checks it with one HEAD,
/// records it, drops its reservation and runs the cleanup it calls for.
pub async fn confirm(
    State(app): State<Shared>,
    User(user): User,
    body: Result<Json<ConfirmRequest>, JsonRejection>,
) -> Result<Json<crate::manager::Confirmed>, ApiError> {
    let Json(req) = body.map_err(|e| {
        ApiError::bad_request(
            "bad_request",
            format!("{}; send JSON {{\"type\", \"name\"}}", e.body_text()),
        )
    })?;
    let key = ObjectKey::parse_parts(Some(user.as_str()), &req.data_type, &req.name)
        .map_err(ManagerError::Key)?;
    Ok(Json(app.manager.confirm(&key).await?))
}

/// Bytes and files of one data type.
#[derive(Debug, Serialize)]
pub struct TypeUsage {
    /// The data type.
    #[serde(rename = "type")]
    pub data_type: DataType,
    /// Bytes stored.
    pub bytes: u64,
    /// Files stored.
    pub files: usize,
    /// Percent of the user quota.
    pub percent: f64,
    /// Alert level of these bytes against the quota.
    pub level: kompass_core::quota::AlertLevel,
}

/// `GET /api/usage` answer.
#[derive(Debug, Serialize)]
pub struct UsageAnswer {
    /// The token's user.
    pub user: String,
    /// Which backend these numbers describe (where uploads go).
    pub backend: Backend,
    /// The limits (the page's wasm precheck takes them as they are).
    pub limits: Limits,
    /// Whether FIFO cleanup may free room for an upload over the quota.
    pub auto_cleanup: bool,
    /// Usage before the next upload (the page's wasm precheck takes it as it is).
    pub usage: CurrentUsage,
    /// The user's total against the quota.
    pub quota: UsageStatus,
    /// Per data type.
    pub types: Vec<TypeUsage>,
    /// Of the user's bytes, those reserved by granted uploads not yet confirmed stored (they
    /// stop counting when their URL expires unused).
    pub reserved_bytes: u64,
    /// Set when S3 could not be reached and the numbers are local disk's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// `GET /api/usage`.
pub async fn usage(
    State(app): State<Shared>,
    User(user): User,
) -> Result<Json<UsageAnswer>, ApiError> {
    let m = &app.manager;
    let (backend, inventory, note): (Backend, Vec<ObjectInfo>, Option<String>) = match m.s3() {
        Some(_) => match m.s3_inventory(false).await {
            Ok(inv) => (Backend::S3, inv, None),
            Err(ManagerError::S3(e)) if e.is_outage() => (
                Backend::Local,
                m.local_inventory()?,
                Some(format!("S3 is unreachable, showing local storage: {e}")),
            ),
            Err(e) => return Err(e.into()),
        },
        None => (Backend::Local, m.local_inventory()?, None),
    };
    // Granted uploads count at once: the next admission sees them, so the page does too.
    let now = UnixMs(crate::manager::now_ms());
    let reservations = m.state().write(|tx| tx.reservations(now)).map_err(ManagerError::from)?;
    let mut inventory = inventory;
    let mut reserved_bytes = 0;
    for r in reservations {
        let key = r.key.s3_key();
        if r.key.owner() == Some(&user) {
            reserved_bytes += r.size;
        }
        match inventory.iter_mut().find(|o| o.key == key) {
            Some(o) => o.size = o.size.max(r.size),
            None => inventory.push(crate::manager::inventory::object_info(
                &key,
                r.size,
                now.as_i64(),
                None,
            )),
        }
    }
    let limits = m.config().limits;
    let totals = kompass_core::inventory::usage(&inventory);
    let mine = totals.users.get(user.as_str()).cloned().unwrap_or_default();
    let usage = CurrentUsage { user_bytes: mine.bytes, bucket_bytes: totals.bucket.bytes };
    let types = USER_TYPES
        .iter()
        .map(|t| {
            let of_type = mine.by_type.get(t.as_str()).copied().unwrap_or_default();
            TypeUsage {
                data_type: *t,
                bytes: of_type.bytes,
                files: of_type.files as usize,
                percent: percent_used(of_type.bytes, limits.max_user_bytes),
                level: alert_level(
                    of_type.bytes,
                    limits.max_user_bytes,
                    limits.cleanup_threshold_percent,
                ),
            }
        })
        .collect();
    Ok(Json(UsageAnswer {
        user: user.to_string(),
        backend,
        limits,
        auto_cleanup: m.config().auto_cleanup,
        usage,
        quota: UsageStatus::new(
            usage.user_bytes,
            limits.max_user_bytes,
            limits.cleanup_threshold_percent,
        ),
        types,
        reserved_bytes,
        note,
    }))
}

/// `GET /api/files` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilesQuery {
    /// `routes` or `fitness`; both when absent.
    #[serde(rename = "type")]
    pub data_type: Option<String>,
}

/// One stored file: the `list` JSON shape ([`Listed`], the manager's view of a stored
/// object's record) plus its data type.
#[derive(Debug, Serialize)]
pub struct FileEntry {
    /// The data type.
    #[serde(rename = "type")]
    pub data_type: DataType,
    /// Name, key, size, last modification and backend, as `kompass list --json` has them.
    #[serde(flatten)]
    pub file: Listed,
}

/// `GET /api/files[?type=T]`: the user's files, the newest copy of each (local disk or S3),
/// newest first. With S3 it answers from the cached inventory: no LIST per call (the free
/// tier's PUT-class requests are scarce); a stale cache costs one LIST for everyone.
pub async fn files(
    State(app): State<Shared>,
    User(user): User,
    query: Result<Query<FilesQuery>, QueryRejection>,
) -> Result<Json<Vec<FileEntry>>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request("bad_request", e.body_text()))?;
    let types: Vec<DataType> = match q.data_type.as_deref() {
        None | Some("") => USER_TYPES.to_vec(),
        Some(t) => {
            let t: DataType = t.parse().map_err(ManagerError::Key)?;
            if !t.allows_user() {
                return Err(ApiError::bad_request(
                    "global_type",
                    format!("{t} data is global, not a user's: ask for type routes or fitness"),
                ));
            }
            vec![t]
        }
    };
    let m = &app.manager;
    let mut newest: BTreeMap<ObjectKey, (StoredObject, Backend)> = BTreeMap::new();
    for t in &types {
        for o in m.local().records(Scope::Type(Some(&user), *t)).map_err(ManagerError::from)? {
            newest.insert(o.key.clone(), (o, Backend::Local));
        }
    }
    if m.s3().is_some() {
        // From the cached inventory: no LIST per call (the cache refreshes when stale, and
        // every write of this installation keeps it current).
        // Uploads granted to this user and not yet confirmed: one HEAD each tells whether
        // they landed (the page may not have confirmed them).
        let confirmed = m.confirm_pending(&user).await;
        let objects = match confirmed.and(m.s3_owner_objects(&user).await) {
            Ok(o) => o,
            Err(ManagerError::S3(e)) if e.is_outage() => {
                tracing::warn!("S3 unreachable, listing local copies only: {e}");
                Vec::new()
            }
            Err(e) => return Err(e.into()),
        };
        for o in objects {
            if !types.contains(&o.key.data_type()) {
                continue;
            }
            // A local copy newer than S3's (a save queued for sync) is the one to show.
            if newest.get(&o.key).is_some_and(|(l, _)| l.last_modified > o.last_modified) {
                continue;
            }
            newest.insert(o.key.clone(), (o, Backend::S3));
        }
    }
    let mut copies: Vec<(StoredObject, Backend)> = newest.into_values().collect();
    copies.sort_by(|(a, _), (b, _)| {
        b.last_modified.cmp(&a.last_modified).then_with(|| a.key.name().cmp(b.key.name()))
    });
    let out = copies
        .iter()
        .map(|(o, b)| FileEntry { data_type: o.key.data_type(), file: Listed::new(o, *b) })
        .collect();
    Ok(Json(out))
}

/// `GET /api/allowance` answer: what the edge presigner may grant this user, signed.
#[derive(Debug, Serialize)]
pub struct AllowanceAnswer {
    /// The sealed allowance: forward it to the edge as `allowance`.
    pub allowance: String,
    /// Bytes the user may still upload through the edge.
    pub bytes: u64,
    /// Uploads the user may still start through the edge.
    pub puts: u64,
    /// When it expires, RFC 3339 UTC.
    pub expires_at: String,
}

/// `GET /api/allowance`: a short-lived, signed statement of what the token's user may still
/// spend, for the edge presigner (which has no inventory of its own).
pub async fn allowance(
    State(app): State<Shared>,
    User(user): User,
) -> Result<Json<AllowanceAnswer>, ApiError> {
    let (a, sealed) = app.manager.allowance(&user, app.secret()).await?;
    Ok(Json(AllowanceAnswer {
        allowance: sealed,
        bytes: a.bytes,
        puts: a.puts,
        expires_at: a.expires_at.rfc3339(),
    }))
}
