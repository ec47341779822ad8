//! The integration tests, one binary (wasmtime's `tests/all` style): wasmtime and the host are
//! linked once, not once per file. One module per area; `common` holds the shared helpers.
//!
//! Kept as binaries of their own: `redis` (needs a real redis-server, run with `--ignored`),
//! `isolated` and `soak` (they measure the process's resident memory, so they need the process
//! to themselves).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

#[path = "../common/mod.rs"]
mod common;

mod cli;
mod command_rules;
mod disk;
mod eval_cli;
mod firma;
mod guests;
mod layout;
mod network;
mod server;
mod stayup;
mod stores;
mod tokens;
mod toolkit;
