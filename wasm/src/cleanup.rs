//! FIFO cleanup plans: which objects to delete, oldest first, and why. A plan is data: the
//! page shows it (a dry run), the server carries it out.

use kompass_core::fifo::{self, Capacity, Policy};
use kompass_core::inventory::ObjectInfo;
use serde::Deserialize;
use wasm_bindgen::prelude::*;

use crate::error::{from_js, js_error, to_js};

#[wasm_bindgen(typescript_custom_section)]
const TS_CLEANUP: &str = r#"
/** One stored object, as a store listing reports it. */
export interface ObjectInfo {
  /** "users/{user}/{type}/{name}" or "{type}/{name}". */
  key: string;
  size: number;
  /** Last modification, unix milliseconds UTC. */
  last_modified_ms: number;
  /** SHA-256 as 64 hex characters, when known. */
  sha256?: string | null;
  /** The owner; absent or null for global data. */
  user?: string | null;
  /** "routes" | "fitness" | "models" | "training_data". */
  data_type: string;
}

/** How eagerly to clean, against which limits, and (optionally) for one user only. */
export interface CleanupPolicy {
  /** Per-user quota in bytes. */
  user_quota_bytes: number;
  /** Bucket limit in bytes. */
  bucket_bytes: number;
  /** Cleanup starts at this percentage of a limit, 1..=100 (default 70). */
  threshold_percent?: number;
  /** Files kept per (user, data type), whatever the usage (default 5). */
  min_files_to_keep?: number;
  /** Files younger than this are never deleted (default: no minimum). */
  min_age_ms?: number | null;
  /** Plan for this user's files against the user quota only; absent: bucket-wide. */
  user?: string | null;
}

export type CleanupReason =
  | { scope: "user_quota"; user: string; data_type: string; group_files: number;
      used_bytes: number; limit_bytes: number; threshold_percent: number }
  | { scope: "bucket_limit"; user: string | null; data_type: string; group_files: number;
      used_bytes: number; limit_bytes: number; threshold_percent: number };

export interface Tally { bytes: number; files: number }

export interface ScopeUsage {
  bucket: Tally;
  global: Tally;
  users: Record<string, Tally>;
}

/** The decision: what to delete, oldest first, and usage before and after. */
export interface CleanupPlan {
  deletions: { key: string; size: number; last_modified_ms: number; reason: CleanupReason }[];
  bytes_freed: number;
  usage_before: ScopeUsage;
  usage_after: ScopeUsage;
}
"#;

#[derive(Deserialize)]
struct CleanupPolicy {
    #[serde(flatten)]
    policy: Policy,
    #[serde(flatten)]
    limits: Capacity,
    #[serde(default)]
    user: Option<String>,
}

/// Plans a cleanup of `inventory` at `nowMs`: for `policy.user` against the user quota, or
/// bucket-wide (every user, then the bucket limit). Throws a `PolicyError` for a threshold
/// outside 1..=100 and a `TypeError` for a malformed argument.
///
/// ```js
/// const plan = planCleanup(objects, { user_quota_bytes: 100 << 20, bucket_bytes: 4.5 * 2 ** 30,
///                                     min_files_to_keep: 5, user: "rider-42" }, Date.now());
/// for (const d of plan.deletions) console.log(d.key, d.reason.scope);
/// ```
#[wasm_bindgen(js_name = planCleanup, unchecked_return_type = "CleanupPlan")]
pub fn plan_cleanup(
    #[wasm_bindgen(unchecked_param_type = "ObjectInfo[]")] inventory: JsValue,
    #[wasm_bindgen(unchecked_param_type = "CleanupPolicy")] policy: JsValue,
    #[wasm_bindgen(js_name = nowMs)] now_ms: f64,
) -> Result<JsValue, JsValue> {
    let objects: Vec<ObjectInfo> = from_js("inventory", inventory)?;
    let CleanupPolicy { policy, limits, user } = from_js("policy", policy)?;
    let now_ms = crate::time::now(now_ms)?.as_i64();
    let plan = match user {
        Some(user) => fifo::plan_user(&objects, &user, &policy, &limits, now_ms),
        None => fifo::plan_bucket(&objects, &policy, &limits, now_ms),
    }
    .map_err(|e| js_error("PolicyError", e))?;
    to_js(&plan)
}
