//! API tokens: `kompass serve` and the edge presigner learn the caller's user from a token
//! signed with `KOMPASS_SERVER_SECRET`, never from the request body.

use kompass_core::token;
use serde::Serialize;
use wasm_bindgen::prelude::*;

use crate::error::{js_error, to_js};
use crate::time::unix_secs;

#[wasm_bindgen(typescript_custom_section)]
const TS_CLAIMS: &str = r#"
/** What a valid API token says. */
export interface TokenClaims {
  /** The user the token acts for. */
  user: string;
  /** Unix seconds at which the token stops being valid. */
  expires_at: number;
}
"#;

#[derive(Serialize)]
struct Claims {
    user: String,
    expires_at: u64,
}

/// Checks `token` against `secret` at `nowMs` and returns who it is for. Throws a
/// `TokenError` when it is malformed, altered, minted with another secret or expired, or when
/// the secret is too short to verify safely.
///
/// ```js
/// const { user } = verifyToken(bearer, env.KOMPASS_SERVER_SECRET, Date.now());
/// ```
#[wasm_bindgen(js_name = verifyToken, unchecked_return_type = "TokenClaims")]
pub fn verify_token(
    token: &str,
    secret: &str,
    #[wasm_bindgen(js_name = nowMs)] now_ms: f64,
) -> Result<JsValue, JsValue> {
    verify(token, secret.as_bytes(), now_ms)
}

/// [`verify_token`] with the secret as bytes (also used by `Config`).
pub(crate) fn verify(token: &str, secret: &[u8], now_ms: f64) -> Result<JsValue, JsValue> {
    let claims =
        token::verify(token, secret, unix_secs(now_ms)?).map_err(|e| js_error("TokenError", e))?;
    to_js(&Claims { user: claims.user, expires_at: claims.expires_at })
}

/// Mints a token for `user` valid until `expiresAt` (unix seconds), signed with `secret`
/// (at least 32 random bytes). For servers and tests: a secret never belongs in a browser.
///
/// ```js
/// const token = mintToken("rider-42", Math.floor(Date.now() / 1000) + 3600, secret);
/// ```
#[wasm_bindgen(js_name = mintToken)]
pub fn mint_token(
    user: &str,
    #[wasm_bindgen(js_name = expiresAt)] expires_at: f64,
    secret: &str,
) -> Result<String, JsValue> {
    if !(expires_at.is_finite() && expires_at >= 0.0 && expires_at.fract() == 0.0) {
        return Err(js_error(
            "RangeError",
            format!("expiresAt must be whole unix seconds, got {expires_at}"),
        ));
    }
    Ok(token::mint(user, expires_at as u64, secret.as_bytes()))
}
