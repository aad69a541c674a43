//! The clock reading every time-dependent call takes from its caller (`Date.now()`): the
//! core never reads a clock, and `SystemTime::now()` would panic on wasm32.

#[cfg(feature = "edge")]
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use wasm_bindgen::JsValue;

/// JS's `Number.MAX_SAFE_INTEGER`: the largest exact whole number of milliseconds.
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

use crate::error::js_error;

/// Milliseconds since the Unix epoch (`Date.now()`) as a `SystemTime`.
#[cfg(feature = "edge")]
pub(crate) fn system_time(now_ms: f64) -> Result<SystemTime, JsValue> {
    Ok(UNIX_EPOCH + Duration::from_millis(unix_ms(now_ms)?))
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

/// Whole seconds of a `Date.now()` value.
#[cfg(feature = "edge")]
pub(crate) fn unix_secs(now_ms: f64) -> Result<u64, JsValue> {
    Ok(unix_ms(now_ms)? / 1000)
}
