//! The clock reading every time-dependent call takes from its caller (`Date.now()`): the
//! core never reads a clock, and `SystemTime::now()` would panic on wasm32.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use wasm_bindgen::JsValue;

use crate::error::js_error;

/// Milliseconds since the Unix epoch (`Date.now()`) as a `SystemTime`.
pub(crate) fn system_time(now_ms: f64) -> Result<SystemTime, JsValue> {
    Ok(UNIX_EPOCH + Duration::from_millis(unix_ms(now_ms)?))
}

/// Checks a `Date.now()` value: a finite, non-negative number of milliseconds.
pub(crate) fn unix_ms(now_ms: f64) -> Result<u64, JsValue> {
    if now_ms.is_finite() && now_ms >= 0.0 && now_ms <= 9_007_199_254_740_991.0 {
        Ok(now_ms as u64)
    } else {
        Err(js_error(
            "RangeError",
            format!("nowMs must be milliseconds since 1970 such as Date.now(), got {now_ms}"),
        ))
    }
}

/// Whole seconds of a `Date.now()` value.
pub(crate) fn unix_secs(now_ms: f64) -> Result<u64, JsValue> {
    Ok(unix_ms(now_ms)? / 1000)
}
