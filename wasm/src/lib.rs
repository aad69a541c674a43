//! kompass-wasm: a thin wasm-bindgen layer over kompass-core for the browser page and the
//! edge presigner. Each module binds one core concept; none holds logic the core lacks.
//! JS function names are camelCase; the JSON shapes keep the core's (and the CLI's)
//! snake_case field names and are typed in the generated `.d.ts`.

mod cleanup;
#[cfg(feature = "edge")]
mod config;
mod error;
#[cfg(feature = "import")]
mod import;
mod key;
mod precheck;
#[cfg(feature = "edge")]
mod presign;
mod rider;
mod scrub;
mod time;
#[cfg(feature = "edge")]
mod token;

pub use cleanup::plan_cleanup;
#[cfg(feature = "edge")]
pub use config::Config;
#[cfg(feature = "import")]
pub use import::import_strava_export;
pub use key::object_key;
pub use precheck::{precheck, precheck_allowance};
#[cfg(feature = "edge")]
pub use presign::{presign_get, presign_put};
pub use rider::{parse_rider_name, rider_name, sha256_hex, summarize_rider};
pub use scrub::scrub;
#[cfg(feature = "edge")]
pub use token::{mint_token, verify_token};
