//! `POST /api/rider`: the only way rider (fitness) data reaches storage through the API.
//!
//! The body is the rider document as the page scrubbed it on the device (keyless: ids
//! dropped, raw GPS never leaves the device). The server scrubs it again under the policy's
//! incoming rule with `KOMPASS_PSEUDONYM_KEY` (every pseudonym-shaped value from outside is
//! dropped, whatever the device missed is dropped, the `user_hash` is the keyed pseudonym of
//! the token's user), names it `fitness_data_{UTC timestamp}.json` and stores it through the
//! storage manager's save, like `kompass rider save`. The user comes from the token only.
//!
//! An optional `x-kompass-sha256` header (hex) is checked against the body, so a truncated or
//! altered upload is refused rather than stored.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use kompass_core::inventory::Sha256Digest;
use serde::Serialize;

use super::auth::User;
use super::{ApiError, Shared};
use crate::manager::{now_ms, sha256};
use crate::rider::{self, RiderError, RiderSaved, Riders};

/// The header that carries the SHA-256 (hex) of the body the client sent.
pub const SHA256_HEADER: &str = "x-kompass-sha256";

/// `POST /api/rider` answer: the rider `save` shape plus what the server's scrub removed
/// (paths into the body; for its owner, never stored).
#[derive(Debug, Serialize)]
pub struct RiderAnswer {
    /// Where and how it was stored, its name and summary, the `user_hash`.
    #[serde(flatten)]
    pub saved: RiderSaved,
    /// What the server's scrub removed from the body.
    pub removed: Vec<String>,
}

fn rider_error(e: RiderError) -> ApiError {
    let message = e.to_string();
    match e {
        RiderError::MissingKey(_) | RiderError::BadKey(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "no_pseudonym_key",
            "this server cannot store rider data: its operator must set KOMPASS_PSEUDONYM_KEY",
        ),
        RiderError::NotStored(_) | RiderError::Scrub(_) => {
            ApiError::bad_request("not_rider_data", message)
        }
        RiderError::Crowded { .. } => {
            ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too_many_saves", message)
        }
        RiderError::Manager(m) => m.into(),
        _ => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "rider_error", message),
    }
}

/// `POST /api/rider`.
pub async fn save(
    State(app): State<Shared>,
    User(user): User,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<RiderAnswer>), ApiError> {
    // Refuse before reading a byte when the server could not store it anyway.
    let key = rider::pseudonym_key(app.manager.config()).map_err(rider_error)?;
    let limit = app.manager.config().limits.max_file_bytes;
    let bytes = axum::body::to_bytes(body, usize::try_from(limit).unwrap_or(usize::MAX))
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "file_too_large",
                format!(
                    "the rider data is over the {limit}-byte file size limit (S3_MAX_FILE_SIZE_MB): scrub it on the device first, or send fewer activities"
                ),
            )
        })?;
    if let Some(claimed) = headers.get(SHA256_HEADER) {
        let claimed = claimed.to_str().ok().and_then(|v| Sha256Digest::from_hex(v.trim()).ok());
        if claimed.map(|d| d.0) != Some(sha256(&bytes)) {
            return Err(ApiError::bad_request(
                "sha256_mismatch",
                format!(
                    "the body's SHA-256 differs from {SHA256_HEADER}: send the exact bytes that were hashed"
                ),
            ));
        }
    }
    let _admission = app.admission.lock().await;
    let riders = Riders::new(&app.manager).map_err(rider_error)?;
    let saved = riders.save_incoming(&user, &bytes, &key, now_ms()).await.map_err(rider_error)?;
    let removed = saved.report.removed.clone();
    Ok((StatusCode::CREATED, Json(RiderAnswer { saved, removed })))
}
