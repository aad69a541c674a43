//! kompass: the IO side of KOMpass storage. The core decides; this crate does.

pub mod aws_profile;
pub mod bigbuf;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod env;
pub mod journal;
pub mod manager;
pub mod migrate;
pub mod report;
pub mod rider;
pub mod serve;
pub mod state;
pub mod statedb;
pub mod store;
