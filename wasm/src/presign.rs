//! Presigned S3 URLs for the edge: a PUT that accepts only the exact bytes that passed the
//! precheck (size and SHA-256 are signed), and a GET to read an object back. The
//! credentials and the clock reading are arguments; nothing here keeps them.

use std::time::Duration;

use kompass_core::inventory::Sha256Digest;
use kompass_core::presign::{self, Credentials, S3Target};
use serde::Deserialize;
use wasm_bindgen::prelude::*;

use crate::error::{from_js, js_error, to_js};
use crate::time::system_time;

#[wasm_bindgen(typescript_custom_section)]
const TS_PRESIGN: &str = r#"
/** The bucket to sign for and the credentials to sign with (from the edge's environment). */
export interface S3Access {
  /** An S3-compatible endpoint such as "http://127.0.0.1:8333" (path-style); omit for AWS. */
  endpoint?: string | null;
  /** The signing region, e.g. "us-east-1". */
  region: string;
  bucket: string;
  access_key_id: string;
  secret_access_key: string;
  session_token?: string | null;
}

/** What to presign a PUT for. */
export interface PutRequest {
  /** The object key, e.g. from objectKey(). */
  key: string;
  /** The exact body size in bytes. */
  size: number;
  /** The body's SHA-256 as 64 hex characters. */
  sha256: string;
  /** Seconds the URL stays valid (1 to 604800). */
  expires_secs: number;
  /** A content type to bind (sent back as a header to set). */
  content_type?: string | null;
}

/** What to presign a GET for. */
export interface GetRequest {
  key: string;
  expires_secs: number;
}

/** A presigned request: send `method` to `url` with exactly these `headers`. */
export interface Presigned {
  url: string;
  method: "PUT" | "GET";
  /** Lower-case header names. A browser sets content-length itself from the body. */
  headers: Record<string, string>;
  key: string;
  /** RFC 3339 UTC, e.g. "2026-11-28T12:00:00Z". */
  expires_at: string;
}
"#;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct S3Access {
    #[serde(default)]
    endpoint: Option<String>,
    region: String,
    bucket: String,
    access_key_id: String,
    secret_access_key: String,
    #[serde(default)]
    session_token: Option<String>,
}

impl S3Access {
    fn into_parts(self) -> Result<(S3Target, Credentials), JsValue> {
        let target = S3Target::new(self.endpoint, self.region, self.bucket)
            .map_err(|e| js_error("PresignError", e))?;
        let mut creds = Credentials::new(self.access_key_id, self.secret_access_key);
        if let Some(token) = self.session_token {
            creds = creds.with_session_token(token);
        }
        Ok((target, creds))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PutRequest {
    key: String,
    size: u64,
    sha256: String,
    expires_secs: u64,
    #[serde(default)]
    content_type: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GetRequest {
    key: String,
    expires_secs: u64,
}

/// Presigns a PUT that S3 accepts only with a body of `request.size` bytes whose SHA-256 is
/// `request.sha256`. Throws a `PresignError` for a bad key, expiry, bucket, endpoint or
/// credentials, and a `TypeError` for a malformed argument.
///
/// ```js
/// const put = presignPut(s3, { key, size: bytes.length, sha256: hex, expires_secs: 300 }, Date.now());
/// await fetch(put.url, { method: put.method, headers: put.headers, body: bytes });
/// ```
#[wasm_bindgen(js_name = presignPut, unchecked_return_type = "Presigned")]
pub fn presign_put(
    #[wasm_bindgen(unchecked_param_type = "S3Access")] s3: JsValue,
    #[wasm_bindgen(unchecked_param_type = "PutRequest")] request: JsValue,
    #[wasm_bindgen(js_name = nowMs)] now_ms: f64,
) -> Result<JsValue, JsValue> {
    let (target, creds) = from_js::<S3Access>("s3", s3)?.into_parts()?;
    put(&target, &creds, request, now_ms)
}

/// Presigns a GET of `request.key`.
///
/// ```js
/// const get = presignGet(s3, { key, expires_secs: 60 }, Date.now());
/// const body = await (await fetch(get.url)).arrayBuffer();
/// ```
#[wasm_bindgen(js_name = presignGet, unchecked_return_type = "Presigned")]
pub fn presign_get(
    #[wasm_bindgen(unchecked_param_type = "S3Access")] s3: JsValue,
    #[wasm_bindgen(unchecked_param_type = "GetRequest")] request: JsValue,
    #[wasm_bindgen(js_name = nowMs)] now_ms: f64,
) -> Result<JsValue, JsValue> {
    let (target, creds) = from_js::<S3Access>("s3", s3)?.into_parts()?;
    get(&target, &creds, request, now_ms)
}

/// [`presign_put`] with a validated target and credentials (also used by `Config`).
pub(crate) fn put(
    target: &S3Target,
    creds: &Credentials,
    request: JsValue,
    now_ms: f64,
) -> Result<JsValue, JsValue> {
    let request: PutRequest = from_js("request", request)?;
    let sha256 =
        Sha256Digest::from_hex(&request.sha256).map_err(|e| js_error("PresignError", e))?;
    let presigned = presign::presign_put(
        target,
        &request.key,
        request.size,
        sha256.0,
        creds,
        system_time(now_ms)?,
        Duration::from_secs(request.expires_secs),
        request.content_type.as_deref(),
    )
    .map_err(|e| js_error("PresignError", e))?;
    to_js(&presigned)
}

/// [`presign_get`] with a validated target and credentials (also used by `Config`).
pub(crate) fn get(
    target: &S3Target,
    creds: &Credentials,
    request: JsValue,
    now_ms: f64,
) -> Result<JsValue, JsValue> {
    let request: GetRequest = from_js("request", request)?;
    let presigned = presign::presign_get(
        target,
        &request.key,
        creds,
        system_time(now_ms)?,
        Duration::from_secs(request.expires_secs),
    )
    .map_err(|e| js_error("PresignError", e))?;
    to_js(&presigned)
}
