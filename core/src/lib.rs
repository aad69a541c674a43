//! kompass-core: the pure decision layer of KOMpass storage.
//!
//! Every module takes facts (an inventory, usage, a clock reading, credentials) and returns
//! decisions (a cleanup plan, an admission verdict, a signed URL, a scrubbed document).
//! Nothing here touches a file, a socket, a clock or a random number generator, so the same
//! code runs natively, in the browser and on an edge runtime.

pub mod admission;
pub mod config;
pub mod fifo;
#[cfg(feature = "import")]
pub mod import;
pub mod inventory;
pub mod key;
pub mod migrate;
pub mod presign;
pub mod quota;
pub mod rider;
pub mod scrub;
pub mod time;
pub mod token;
