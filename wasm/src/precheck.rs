//! Upload precheck. `precheckAllowance`: the page's, through the core's admission decision on
//! the allowance its server signed (`GET /api/allowance`), the one fact the page may trust.
//! `precheck`: the quota arithmetic on usage the caller reports; the edge uses it only to be
//! stricter than its own admission (a reported usage never admits more).

use kompass_core::admission::allowance::{self, Allowance, EdgeRefusal};
use kompass_core::quota::{self, CurrentUsage, Freeable, Limits, UploadRequest, Verdict};
use kompass_core::time::UnixMs;
use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;

use crate::error::{from_js, js_error, to_js};

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

/** The page's precheck against a server-signed allowance: admitted with what would be left,
 *  or refused with the core's reason (`left`: bytes the allowance has left) and message. */
export type AllowanceVerdict =
  | { admitted: true; bytes_left: number; puts_left: number; expires_at: number }
  | { admitted: false; reason: "file_too_large"; size: number; limit: number; message: string }
  | { admitted: false; reason: "over_allowance"; size: number; left: number; message: string }
  | { admitted: false; reason: "no_puts_left" | "not_yours"; message: string }
  | { admitted: false; reason: "expired"; expired_at: number; message: string };

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

/// The page's precheck of an upload of `size` bytes (the core's
/// `admission::allowance::precheck`): what the edge decides on the first use of `allowance`,
/// the sealed string `GET /api/allowance` answered, which the page forwards to the edge. The
/// page holds no secret, so the allowance is read without its signature check (the server
/// and the edge check it); `limits` gives the per-file limit. Never throws for a refusal; an
/// expired allowance is the refusal `"expired"` (fetch a fresh one). Throws a `TokenError`
/// when `allowance` is not an allowance, a `TypeError`/`RangeError` for a malformed argument.
///
/// ```js
/// const { allowance } = await api('/api/allowance');
/// const v = precheckAllowance(file.size, allowance, usage.limits, Date.now());
/// if (!v.admitted) showError(v.message);           // e.g. v.reason === "over_allowance"
/// ```
#[wasm_bindgen(js_name = precheckAllowance, unchecked_return_type = "AllowanceVerdict")]
pub fn precheck_allowance(
    size: f64,
    allowance: &str,
    #[wasm_bindgen(unchecked_param_type = "Limits")] limits: JsValue,
    #[wasm_bindgen(js_name = nowMs)] now_ms: f64,
) -> Result<JsValue, JsValue> {
    let size = crate::time::unix_ms(size).map_err(|_| {
        js_error("RangeError", format!("size must be a whole number of bytes, got {size}"))
    })?;
    let now = UnixMs(crate::time::unix_ms(now_ms)? as i64);
    let limits: Limits = from_js("limits", limits)?;
    let a = Allowance::read_unverified(allowance).map_err(|e| js_error("TokenError", e))?;
    match allowance::precheck(size, &a, &limits, now) {
        Ok(spent) => to_js(&Admitted {
            admitted: true,
            bytes_left: a.bytes.saturating_sub(spent.bytes),
            expires_at: a.expires_at,
            puts_left: a.puts.saturating_sub(spent.puts),
        }),
        Err(r) => to_js(&Refused { admitted: false, message: r.to_string(), refusal: &r }),
    }
}

// Typed rather than built as a `serde_json::Value`: the same objects without the `Value`
// map, serializer and indexing code in the page's module (bench/notes.md).

/// `AllowanceVerdict` when admitted.
#[derive(Serialize)]
struct Admitted {
    admitted: bool,
    bytes_left: u64,
    expires_at: UnixMs,
    puts_left: u64,
}

/// `AllowanceVerdict` when refused: the core's refusal, its message.
#[derive(Serialize)]
struct Refused<'a> {
    admitted: bool,
    message: String,
    #[serde(flatten)]
    refusal: &'a EdgeRefusal,
}
