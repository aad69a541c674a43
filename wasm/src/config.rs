//! The configuration, from an environment object such as a worker's `env`: validated by the
//! core, every problem reported at once. Secrets stay inside the module: `Config` signs and
//! verifies with them, and its JSON form shows them only as set or unset.

use std::collections::BTreeMap;

use kompass_core::admission::allowance::{Allowance, Spent, edge_admit};
use kompass_core::config;
use kompass_core::key::UserId;
use kompass_core::presign::{Credentials, S3Target};
use wasm_bindgen::prelude::*;

use crate::error::{js_error, to_js};
use crate::{presign, token};

#[wasm_bindgen(typescript_custom_section)]
const TS_CONFIG: &str = r#"
/** One configuration problem: the variable, its value (never a secret's), what is wrong, the fix. */
export interface ConfigProblem {
  variable: string;
  value: string | null;
  kind: "missing" | "not_bool" | "not_number" | "not_whole_number" | "not_positive" | "out_of_range" | "too_short" | "malformed";
  problem: string;
  fix: string;
}

/** What the edge has granted on one account (an allowance, or a user without one). */
export interface Spent { bytes: number; puts: number }

/** The edge's decision: admitted with the account's new `spent`, or refused with a reason. */
export type EdgeVerdict =
  | { admitted: true; spent: Spent }
  | { admitted: false; reason: "file_too_large" | "over_allowance" | "no_puts_left" | "not_yours"; message: string };

/** Thrown by `new Config(env)`: `message` lists every problem, `problems` has them as data. */
export interface ConfigError extends Error {
  name: "ConfigError";
  problems: ConfigProblem[];
}
"#;

/// A validated configuration (the spec's environment variables).
///
/// ```js
/// const config = new Config(env);        // throws a ConfigError listing every problem
/// config.limits.max_file_bytes;          // S3_MAX_FILE_SIZE_MB in bytes
/// const { user } = config.verifyToken(bearer, Date.now());
/// const put = config.presignPut({ key, size, sha256, expires_secs: 300 }, Date.now());
/// JSON.stringify(config);                // secrets shown as "set"/"unset"
/// ```
#[wasm_bindgen]
pub struct Config {
    inner: config::Config,
}

#[wasm_bindgen]
impl Config {
    /// Parses `env`, an object of variable names to values: strings, and numbers and booleans
    /// as they print; other values (a worker's KV or service bindings) are ignored. Throws a `ConfigError` with every problem.
    #[wasm_bindgen(constructor)]
    pub fn new(env: &js_sys::Object) -> Result<Config, JsValue> {
        let mut vars = BTreeMap::new();
        for entry in js_sys::Object::entries(env).iter() {
            let entry: js_sys::Array = entry.into();
            let (name, value) = (entry.get(0), entry.get(1));
            // wrangler.toml `[vars]` may hold numbers and booleans: read them as they print.
            let text = match (value.as_string(), value.as_f64(), value.as_bool()) {
                (Some(text), _, _) => text,
                (None, Some(number), _) => number.to_string(),
                (None, None, Some(flag)) => flag.to_string(),
                _ => continue,
            };
            if let Some(name) = name.as_string() {
                vars.insert(name, text);
            }
        }
        let inner = config::Config::from_env_map(&vars).map_err(|errors| {
            let error = js_error("ConfigError", &errors);
            // The problems as data too; their values never include a secret.
            if let Ok(problems) = to_js(&errors.problems) {
                let _ = js_sys::Reflect::set(&error, &"problems".into(), &problems);
            }
            error
        })?;
        Ok(Config { inner })
    }

    /// Upload limits in bytes and the cleanup threshold, for `precheck`.
    #[wasm_bindgen(getter, unchecked_return_type = "Limits")]
    pub fn limits(&self) -> Result<JsValue, JsValue> {
        to_js(&self.inner.limits)
    }

    /// Whether S3 storage is enabled and configured.
    #[wasm_bindgen(getter, js_name = s3Enabled)]
    pub fn s3_enabled(&self) -> bool {
        self.inner.s3_enabled()
    }

    /// The configuration with secrets shown as "set"/"unset" (what `kompass config --json` prints).
    #[wasm_bindgen(js_name = toJSON)]
    pub fn to_json(&self) -> Result<JsValue, JsValue> {
        to_js(&self.inner.redacted_view())
    }

    /// `verifyToken` with `KOMPASS_SERVER_SECRET`; a `ConfigError` when it is not set.
    #[wasm_bindgen(js_name = verifyToken, unchecked_return_type = "TokenClaims")]
    pub fn verify_token(
        &self,
        token: &str,
        #[wasm_bindgen(js_name = nowMs)] now_ms: f64,
    ) -> Result<JsValue, JsValue> {
        let secret = self.inner.server_secret().map_err(|e| js_error("ConfigError", e))?;
        token::verify(token, secret.expose_bytes(), now_ms)
    }

    /// Which account the edge charges an upload to: the allowance's (`"allowance:{id}"`,
    /// after checking its signature, user and expiry) or, without one, the user's
    /// (`"user:{user}"`). Throws a `TokenError` for a forged, altered or expired allowance.
    #[wasm_bindgen(js_name = edgeAccount)]
    pub fn edge_account(
        &self,
        user: &str,
        allowance: Option<String>,
        #[wasm_bindgen(js_name = nowMs)] now_ms: f64,
    ) -> Result<String, JsValue> {
        Ok(match self.open_allowance(allowance.as_deref(), now_ms)? {
            Some(a) => format!("allowance:{}", a.id),
            None => format!("user:{user}"),
        })
    }

    /// The edge's admission (the core's `edge_admit`): may `user` be granted `size` bytes,
    /// given what this instance already granted on the same account (`spent`, from
    /// `edgeAccount`)? Only the signed allowance and the limits are trusted; without an
    /// allowance, at most the user quota per instance. Never throws for a refusal.
    #[wasm_bindgen(js_name = edgeAdmit, unchecked_return_type = "EdgeVerdict")]
    pub fn edge_admit(
        &self,
        user: &str,
        size: f64,
        allowance: Option<String>,
        #[wasm_bindgen(unchecked_param_type = "Spent")] spent: JsValue,
        #[wasm_bindgen(js_name = nowMs)] now_ms: f64,
    ) -> Result<JsValue, JsValue> {
        let user = UserId::new(user).map_err(|e| js_error("TypeError", e))?;
        let size = crate::time::unix_ms(size)?;
        let spent: Spent = crate::error::from_js("spent", spent)?;
        let allowance = self.open_allowance(allowance.as_deref(), now_ms)?;
        match edge_admit(&user, size, allowance.as_ref(), spent, &self.inner.limits) {
            Ok(spent) => to_js(&serde_json::json!({ "admitted": true, "spent": spent })),
            Err(r) => {
                let mut v = serde_json::to_value(&r).map_err(|e| js_error("Error", e))?;
                v["admitted"] = false.into();
                v["message"] = r.to_string().into();
                to_js(&v)
            }
        }
    }

    /// `presignPut` with the configured bucket and credentials; a `ConfigError` without S3.
    #[wasm_bindgen(js_name = presignPut, unchecked_return_type = "Presigned")]
    pub fn presign_put(
        &self,
        #[wasm_bindgen(unchecked_param_type = "PutRequest")] request: JsValue,
        #[wasm_bindgen(js_name = nowMs)] now_ms: f64,
    ) -> Result<JsValue, JsValue> {
        let (target, creds) = self.s3()?;
        presign::put(&target, &creds, request, now_ms)
    }

    /// `presignGet` with the configured bucket and credentials; a `ConfigError` without S3.
    #[wasm_bindgen(js_name = presignGet, unchecked_return_type = "Presigned")]
    pub fn presign_get(
        &self,
        #[wasm_bindgen(unchecked_param_type = "GetRequest")] request: JsValue,
        #[wasm_bindgen(js_name = nowMs)] now_ms: f64,
    ) -> Result<JsValue, JsValue> {
        let (target, creds) = self.s3()?;
        presign::get(&target, &creds, request, now_ms)
    }
}

impl Config {
    fn open_allowance(
        &self,
        sealed: Option<&str>,
        now_ms: f64,
    ) -> Result<Option<Allowance>, JsValue> {
        let Some(sealed) = sealed else { return Ok(None) };
        let secret = self.inner.server_secret().map_err(|e| js_error("ConfigError", e))?;
        let now = crate::time::now(now_ms)?;
        Allowance::open(sealed, secret.expose_bytes(), now)
            .map(Some)
            .map_err(|e| js_error("TokenError", e))
    }

    /// The configured bucket as the signer's target and credentials.
    fn s3(&self) -> Result<(S3Target, Credentials), JsValue> {
        let s3 = self.inner.s3.as_ref().ok_or_else(|| {
            js_error(
                "ConfigError",
                "S3 storage is not enabled: set S3_STORAGE_ENABLED=true with AWS_S3_BUCKET, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
            )
        })?;
        let target = s3.target().map_err(|e| js_error("ConfigError", e))?;
        Ok((target, s3.signing_credentials()))
    }
}
