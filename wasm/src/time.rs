//! The clock reading every time-dependent call takes from its caller (`Date.now()`), checked
//! and turned into the core's `UnixMs`: the core never reads a clock, and `SystemTime::now()`
//! would panic on wasm32.

#[cfg(feature = "edge")]
use std::time::SystemTime;

use kompass_core::time::UnixMs;
use wasm_bindgen::JsValue;

use crate::error::js_error;

/// JS's `Number.MAX_SAFE_INTEGER`: the largest exact whole number of milliseconds.
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

/// A `Date.now()` value as the core's time.
pub(crate) fn now(now_ms: f64) -> Result<UnixMs, JsValue> {
    Ok(UnixMs::from_ms(unix_ms(now_ms)?))
}

/// A `Date.now()` value as the `SystemTime` the SigV4 signer takes.
#[cfg(feature = "edge")]
pub(crate) fn system_time(now_ms: f64) -> Result<SystemTime, JsValue> {
    Ok(now(now_ms)?.to_system_time())
}

/// Whole seconds of a `Date.now()` value.
#[cfg(feature = "edge")]
pub(crate) fn unix_secs(now_ms: f64) -> Result<u64, JsValue> {
    Ok(now(now_ms)?.as_secs())
}

/// Checks a `Date.now()` value: a finite, non-negative number of milliseconds.
pub(crate) fn unix_ms(now_ms: f64) -> Result<u64, JsValue> {
    // NaN and the infinities are outside the range too.
    if (0.0..=MAX_SAFE_INTEGER).contains(&now_ms) {
        Ok(now_ms as u64)
    } else {
        Err(js_error(
            "RangeError",
            format!("nowMs must be milliseconds since 1970 such as Date.now(), got {now_ms}"),
        ))
    }
}
