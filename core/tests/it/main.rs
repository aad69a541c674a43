//! The core's integration tests: one test binary, one module per area (filter by module path,
//! e.g. `cargo test -p kompass-core --test it fifo_props::`).

mod config;
mod fifo_props;
mod key;
mod scrub;
