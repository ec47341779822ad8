//! Gavel: a host runtime for sandboxed WebAssembly policy plugins.
//!
//! A [`PolicyHost`] loads an ordered chain of policy components (each a `.wasm` file built
//! against the `gavel:policy` WIT package, or a bundled [`builtin`] policy), answers requests
//! with `allow`, `deny` or `pending_hitl`, and runs the approval-token lifecycle in a
//! [`tokens::TokenStore`]. A [`Sidecar`] runs the whole service `gavel serve` runs.
//!
//! ```no_run
//! # async fn demo() -> Result<(), gavel_host::Error> {
//! use gavel_host::{HostConfig, Operator, PolicyHost, PolicySpec};
//!
//! let config = HostConfig {
//!     policies: vec![PolicySpec::builtin("default-action")
//!         .with_config(serde_json::json!({"action": "pending_hitl"}))],
//!     ..HostConfig::default()
//! };
//! let host = PolicyHost::builder(&config).build()?; // tokens in memory
//! let line = br#"{"action":"local.exec","executable":"ls","sandbox_id":"sbx","session_id":"s","profile":"p","hitl_mode":"async_token"}"#;
//! let answer = host.handle_line(line, Operator::default()).await;
//! println!("{}", answer.to_line()); // {"decision":"pending_hitl", "approval_token": ...}
//! # Ok(()) }
//! ```
//!
//! # The public API
//!
//! At the root: [`PolicyHost`] (built by [`HostBuilder`]) and the caller it answers
//! ([`Operator`], [`ManagementToken`]); its configuration ([`HostConfig`], [`PolicySpec`]); the
//! whole service ([`Sidecar`]); [`Error`]; what is decided ([`Action`], [`Verdict`]); time
//! ([`Clock`], [`SystemClock`], [`ManualClock`]). Everything else is in one module per concept:
//! [`action`] (the kinds of request), [`decision`] (what a chain concludes: classes,
//! suggestions, codes), [`config`] (the rest of the configuration), [`wire`] (the JSON
//! contract), [`tokens`] (tokens and their stores), [`intercept`] (the interceptor adapters),
//! [`audit`], [`events`] (token changes as they happen), [`server`] (the sockets alone),
//! [`inspect`] (what a component is) and [`builtin`] (the bundled policies).
//!
//! # Layout
//!
//! A request reads in one direction, and no module reaches back up (held by the test
//! `tests/all/layout.rs`: no import cycle, nothing imports `intercept`, the leaves stay leaves):
//!
//! ```text
//! server (sockets, framing, roles)       intercept (HTTP, CONNECT, upgrade, tool adapters)
//!    \                                       /
//!     wire::parse_request ─> PolicyHost::handle ─> flow::{decide, manage, query}
//!                                                 ├─> chain ─> policy / engine / interface
//!                                                 └─> tokens (issue, redeem, apply; stores)
//!     wire::render_* <─ answer ─> records (audit record, approval record), metrics
//! ```
//!
//! - **Where a request enters:** [`PolicyHost::handle`], the one dispatcher
//!   ([`PolicyHost::handle_line`] parses a line with [`wire::parse_request`] first). The socket
//!   server calls it for every line; the interceptor methods ([`PolicyHost::intercept`]) and
//!   [`PolicyHost::decide`] run the same decide flow and render its answer their own way.
//! - **Where a decision is made:** `flow/decide.rs` (fresh: the chain; retry: the token),
//!   `flow/manage.rs` (an operator's change: the policies' veto, then the change) and
//!   `flow/query.rs`; each returns one answer value (`answer.rs`), built once, which `host.rs`
//!   audits and counts once (`records.rs`, `metrics.rs`) and [`wire`] renders, attaching
//!   denial bodies (`denial.rs`) in that one place (an interceptor's [`intercept::Interception`]
//!   is rendered from the same answer).
//! - **Where a policy runs:** `chain.rs` orders the policies; `policy.rs` runs one in a bounded
//!   instance with a deadline and a memory cap, on the engine of `engine.rs`, through the WIT
//!   versions of `interface.rs` (bindings private in `bindings.rs`); `pool.rs` shares the
//!   threads policy calls run on fairly between connections.
//! - **Where a token changes state:** only in [`tokens`]: `issue` creates it,
//!   [`tokens::redeem`] and [`tokens::apply`] are the contract's table, which every
//!   [`tokens::TokenStore`] calls under its own lock or transaction. The host announces each
//!   change on the [`events`] bus, from the answer, once it is recorded (lapsed tokens: by
//!   [`PolicyHost::prune`]).
//! - **The whole sidecar:** [`Sidecar`] (`sidecar.rs`) runs the host behind the sockets with the
//!   store, audit writer, metrics endpoint (`/metrics`, `/healthz`) and hot reload.
//! - **Saved project rules:** `projects.rs` merges a policy's `projects_dir` into its
//!   configuration (`config.rs` asks it, and watches what it lists).
//! - **Vocabulary** every layer shares, importing nothing above it: [`action`], [`decision`],
//!   `denial.rs`, `clock.rs`, `error.rs`; [`config`] parses and validates.

// The public API: the root types below, and these modules, one concept each.
pub mod action;
pub mod audit;
pub mod builtin;
pub mod config;
pub mod decision;
pub mod events;
pub mod inspect;
pub mod intercept;
pub mod server;
pub mod tokens;
pub mod wire;

mod answer;
mod auth;
mod bindings;
mod chain;
mod clock;
mod denial;
mod engine;
mod error;
mod files;
mod flow;
mod host;
mod interface;
mod metrics;
mod normalize;
mod policy;
mod pool;
mod projects;
mod records;
mod redact;
mod sidecar;

pub use action::Action;
pub use auth::ManagementToken;
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{HostConfig, PolicySpec};
pub use decision::Verdict;
pub use error::Error;
pub use host::{HostBuilder, Operator, PolicyHost};
pub use sidecar::Sidecar;

/// Where the build script put the guest components, test guests included: for this
/// workspace's integration tests (`crates/gavel-cli`), not an API.
#[doc(hidden)]
pub const GUEST_DIR: &str = env!("GAVEL_GUEST_DIR");

/// The README's Rust examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
