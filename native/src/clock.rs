//! The native clock: the one place that reads the system time and turns it into the core's
//! [`UnixMs`] (the core never reads a clock).

use std::time::SystemTime;

use kompass_core::time::UnixMs;

/// The current time.
pub fn now() -> UnixMs {
    UnixMs::from_system_time(SystemTime::now())
}
