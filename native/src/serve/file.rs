//! One stored file of the signed-in user: `GET` (download) and `DELETE`
//! `/api/files/{type}/{name}`. The user is the token's; the path only names the type and the
//! file, and both are validated by the core before they reach a key or a path.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use kompass_core::key::ObjectKey;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Serialize;

use super::auth::User;
use super::{ApiError, Shared};
use crate::manager::{Backend, ManagerError};

/// The user's key for `{type}/{name}`; 400 for a bad type or name, or a type a user cannot
/// own (`models`, `training_data`).
pub fn user_key(
    user: &kompass_core::key::UserId,
    data_type: &str,
    name: &str,
) -> Result<ObjectKey, ApiError> {
    ObjectKey::parse_parts(Some(user.as_str()), data_type, name)
        .map_err(|e| ManagerError::Key(e).into())
}

/// `Content-Disposition: attachment` with the name percent-encoded (RFC 6266 / 5987), so no
/// quote or byte of the name can break the header.
fn attachment(name: &str) -> HeaderValue {
    let encoded = utf8_percent_encode(name, NON_ALPHANUMERIC).to_string();
    HeaderValue::from_str(&format!("attachment; filename*=UTF-8''{encoded}"))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}

/// `GET /api/files/{type}/{name}`: the bytes of the newest copy.
pub async fn download(
    State(app): State<Shared>,
    User(user): User,
    Path((data_type, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let key = user_key(&user, &data_type, &name)?;
    let (bytes, backend) = app.manager.load(&key).await?;
    let content_type = if key.name().as_str().ends_with(".json") {
        "application/json"
    } else {
        "application/octet-stream"
    };
    let mut res = Body::from(bytes).into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CONTENT_DISPOSITION, attachment(key.name().as_str()));
    h.insert(
        "x-kompass-backend",
        HeaderValue::from_static(if backend == Backend::S3 { "s3" } else { "local" }),
    );
    Ok(res)
}

/// `DELETE /api/files/{type}/{name}` answer.
#[derive(Debug, Serialize)]
pub struct Deleted {
    /// The object key.
    pub key: String,
    /// Where copies were removed.
    pub deleted_from: Vec<Backend>,
}

/// `DELETE /api/files/{type}/{name}`: every copy; 404 when there was none.
pub async fn delete(
    State(app): State<Shared>,
    User(user): User,
    Path((data_type, name)): Path<(String, String)>,
) -> Result<Json<Deleted>, ApiError> {
    let key = user_key(&user, &data_type, &name)?;
    // Not while an admission for this installation is deciding on the usage it saw.
    let _admission = app.admission.lock().await;
    let deleted_from = app.manager.delete(&key).await?;
    Ok(Json(Deleted { key: key.s3_key(), deleted_from }))
}
