//! Upload precheck: may a file be stored, given usage and limits, and must cleanup run
//! first? The page asks before uploading; the edge asks before presigning.

use kompass_core::quota::{self, CurrentUsage, Freeable, Limits, UploadRequest, Verdict};
use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;

use crate::error::{from_js, to_js};

#[wasm_bindgen(typescript_custom_section)]
const TS_PRECHECK: &str = r#"
/** The upload being considered. Other fields (name, type) are ignored. */
export interface FileMeta {
  /** Size in bytes. */
  size: number;
  /** The owning user; absent or null for global data (counts against the bucket only). */
  user?: string | null;
  /** Bytes of an existing object at the same key that the upload overwrites (default 0). */
  replaces?: number;
}

/** Usage before the upload, in bytes. */
export interface Usage { user_bytes: number; bucket_bytes: number }

/** Upload limits in bytes (Config.limits gives them from the environment). */
export interface Limits {
  max_file_bytes: number;
  max_user_bytes: number;
  max_bucket_bytes: number;
  cleanup_threshold_percent: number;
}

/** Bytes cleanup could free (default: none, i.e. "does it fit as things are?"). */
export interface Freeable { user_bytes: number; bucket_bytes: number }

export interface ScopeNeed { required_bytes: number; target_bytes: number }
export interface CleanupNeed { user: ScopeNeed; bucket: ScopeNeed }

export type Refusal =
  | { reason: "file_too_large"; size: number; limit: number }
  | { reason: "user_quota_exceeded"; user: string; size: number; projected: number; limit: number; freeable: number }
  | { reason: "bucket_full"; size: number; projected: number; limit: number; freeable: number };

/** The decision on an upload; `message` says what is wrong and what to do when refused. */
export type PrecheckVerdict =
  | { verdict: "admit"; admitted: true }
  | ({ verdict: "admit_cleanup_due"; admitted: true } & CleanupNeed)
  | ({ verdict: "admit_after_cleanup"; admitted: true } & CleanupNeed)
  | ({ verdict: "refuse"; admitted: false; message: string } & Refusal);
"#;

#[derive(Deserialize)]
struct FileMeta {
    size: u64,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    replaces: u64,
}

#[derive(Serialize)]
struct Checked<'a> {
    #[serde(flatten)]
    verdict: &'a Verdict,
    admitted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
}

/// Decides whether a file of `fileMeta.size` bytes may be stored: the per-file limit first,
/// then the user quota and the bucket limit, with `freeable` bytes that cleanup could free
/// (none when omitted). Never throws for a refusal: a refused upload is a verdict with its
/// `reason` and `message`; a malformed argument is a `TypeError`.
///
/// ```js
/// const v = precheck({ size: file.size, user }, { user_bytes, bucket_bytes }, limits);
/// if (!v.admitted) showError(v.message);           // e.g. v.reason === "file_too_large"
/// ```
#[wasm_bindgen(unchecked_return_type = "PrecheckVerdict")]
pub fn precheck(
    #[wasm_bindgen(js_name = fileMeta, unchecked_param_type = "FileMeta")] file_meta: JsValue,
    #[wasm_bindgen(unchecked_param_type = "Usage")] usage: JsValue,
    #[wasm_bindgen(unchecked_param_type = "Limits")] limits: JsValue,
    #[wasm_bindgen(unchecked_optional_param_type = "Freeable")] freeable: Option<JsValue>,
) -> Result<JsValue, JsValue> {
    let file: FileMeta = from_js("fileMeta", file_meta)?;
    let usage: CurrentUsage = from_js("usage", usage)?;
    let limits: Limits = from_js("limits", limits)?;
    let freeable: Freeable = match freeable {
        Some(freeable) => from_js("freeable", freeable)?,
        None => Freeable::NONE,
    };
    let upload = UploadRequest::new(file.size, file.user.as_deref()).replacing(file.replaces);
    let verdict = quota::admit(&upload, &usage, &limits, &freeable);
    to_js(&Checked {
        verdict: &verdict,
        admitted: verdict.is_admitted(),
        message: verdict.refusal().map(ToString::to_string),
    })
}
