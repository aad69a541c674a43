//! The signed-in user's whole account: rider history, an export of every file, and erasure
//! (`DELETE /api/me`, confirmed by `{"confirm": "<the user id>"}` in the body).

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::auth::User;
use super::{ApiError, Shared};
use crate::manager::account::{EraseReport, ExportError};
use crate::rider::{HistoryEntry, RiderError, Riders};

fn rider_error(e: RiderError) -> ApiError {
    match e {
        RiderError::Manager(m) => m.into(),
        other => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "rider_error", other.to_string()),
    }
}

/// `GET /api/rider/history`: the user's rider data saves, newest first, each with a summary
/// (the `kompass rider history --json` shape).
pub async fn history(
    State(app): State<Shared>,
    User(user): User,
) -> Result<Json<Vec<HistoryEntry>>, ApiError> {
    let riders = Riders::new(&app.manager).map_err(rider_error)?;
    Ok(Json(riders.history(&user).await.map_err(rider_error)?))
}

/// `GET /api/export`: a zip of every file of the user (`{type}/{name}`) with `manifest.json`.
/// 503 while S3 is configured but unreachable: never a zip that silently lacks S3's files.
pub async fn export(State(app): State<Shared>, User(user): User) -> Result<Response, ApiError> {
    let mut zip = std::io::Cursor::new(Vec::new());
    app.manager.export_user(&user, &mut zip).await?;
    let mut res = Body::from(zip.into_inner()).into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/zip"));
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"kompass-export.zip\""),
    );
    Ok(res)
}

/// `GET /api/me`: who the token is for (the page shows it and asks for it to confirm an
/// erase).
pub async fn me(User(user): User) -> Json<serde_json::Value> {
    Json(json!({ "user": user.as_str() }))
}

/// `DELETE /api/me` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EraseRequest {
    /// Must be the signed-in user's id: a deliberate act, not a stray request.
    pub confirm: String,
}

/// `DELETE /api/me`: erases every trace of the user. 200 with the erase report when nothing
/// is left; 503 `erase_incomplete` with the report (`remaining`) when S3 failed part way.
pub async fn erase_me(
    State(app): State<Shared>,
    User(user): User,
    body: Result<Json<EraseRequest>, JsonRejection>,
) -> Result<Json<EraseReport>, ApiError> {
    let confirmed = matches!(&body, Ok(Json(r)) if r.confirm == user.as_str());
    if !confirmed {
        return Err(ApiError::bad_request(
            "confirmation_required",
            "erasing every file of your account cannot be undone: send {\"confirm\": \"<your user id>\"} to confirm",
        ));
    }
    let _admission = app.admission.lock().await;
    let report = app.manager.erase_user(&user, false).await.map_err(ApiError::from)?;
    if report.degraded || !report.complete {
        let message = report.reason.clone().unwrap_or_else(|| "the erase is not finished".into());
        return Err(ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "erase_incomplete",
            message: format!("{message}; try again later"),
            detail: Some(json!({ "report": report })),
        });
    }
    Ok(Json(report))
}

impl From<ExportError> for ApiError {
    fn from(e: ExportError) -> Self {
        match e {
            ExportError::Manager(m) => m.into(),
            other => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "export_failed", other.to_string())
            }
        }
    }
}
