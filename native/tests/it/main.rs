//! The native crate's integration tests: one test binary (links tokio, axum and reqwest once,
//! not once per file), one module per area, the shared set-up in `support`.
//!
//! Run one area with a filter on its module path, e.g. `cargo test -p kompass --test it cli_s3::`
//! or `cargo test -p kompass --test it reliability_` for every reliability test. The S3 tests
//! need the test server's settings in the environment (`scripts/s3-server.sh`; see `support`).
//!
//! Tests of every module run in one process, in parallel: none may change process-wide state
//! (environment variables, the working directory); a child process gets its own environment
//! through `Command::env` instead.

mod support;

mod account;
mod admission;
mod cli_local;
mod cli_s3;
mod local_store;
mod migrate;
mod ops_cli;
mod reliability_bad_input;
mod reliability_bad_input_http;
mod reliability_concurrency;
mod reliability_crash_local;
mod reliability_fault_proxy;
mod reliability_fuzz_regressions;
mod reliability_presign;
mod reliability_s3_kill;
mod rider;
mod s3_store;
mod serve;
mod serve_account;
mod serve_upload;
mod strava_import;
