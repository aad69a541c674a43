use kompass_wasm::{mint_token, verify_token};
use wasm_bindgen_test::wasm_bindgen_test;

use super::{js_error, json};

const SECRET: &str = "0123456789abcdef0123456789abcdef";
/// 2027-01-15T08:00:00Z in milliseconds, as `Date.now()` gives it.
const NOW_MS: f64 = 1_800_000_000_000.0;
const NOW_S: f64 = 1_800_000_000.0;

#[wasm_bindgen_test]
fn a_minted_token_names_its_user_until_it_expires() {
    let token = mint_token("rider-42", NOW_S + 60.0, SECRET).unwrap();
    let claims = json(&verify_token(&token, SECRET, NOW_MS).unwrap());
    assert_eq!(claims, serde_json::json!({"user": "rider-42", "expires_at": 1_800_000_060u64}));
    // Valid through the last millisecond before the expiry second, not at it.
    assert!(verify_token(&token, SECRET, NOW_MS + 59_999.0).is_ok());
    let (name, message) = js_error(verify_token(&token, SECRET, NOW_MS + 60_000.0).unwrap_err());
    assert_eq!(name, "TokenError");
    assert!(message.contains("expired"), "{message}");
}

#[wasm_bindgen_test]
fn another_secret_or_an_altered_token_is_refused() {
    let token = mint_token("rider-42", NOW_S + 60.0, SECRET).unwrap();
    let (name, message) =
        js_error(verify_token(&token, "another-secret-of-enough-length!", NOW_MS).unwrap_err());
    assert_eq!(name, "TokenError");
    assert!(message.contains("signature"), "{message}");

    // Swap in another user's payload, keeping the signature.
    let other = mint_token("rider-43", NOW_S + 60.0, SECRET).unwrap();
    let forged =
        format!("{}.{}", other.split('.').next().unwrap(), token.split('.').nth(1).unwrap());
    let (_, message) = js_error(verify_token(&forged, SECRET, NOW_MS).unwrap_err());
    assert!(message.contains("signature"), "{message}");
}

#[wasm_bindgen_test]
fn a_short_secret_and_a_bad_clock_are_errors_with_reasons() {
    let token = mint_token("u", NOW_S + 60.0, "short").unwrap();
    let (name, message) = js_error(verify_token(&token, "short", NOW_MS).unwrap_err());
    assert_eq!(name, "TokenError");
    assert!(message.contains("KOMPASS_SERVER_SECRET"), "{message}");

    let (name, message) = js_error(verify_token(&token, SECRET, f64::NAN).unwrap_err());
    assert_eq!(name, "RangeError");
    assert!(message.contains("Date.now()"), "{message}");

    let (name, _) = js_error(mint_token("u", 1.5, SECRET).unwrap_err());
    assert_eq!(name, "RangeError");
}
