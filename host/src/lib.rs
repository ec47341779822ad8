//! Gavel: a host runtime for sandboxed WebAssembly policy plugins.
//!
//! A [`PolicyHost`] loads an ordered chain of policy components (each a `.wasm` file built
//! against the `gavel:policy` WIT package, or a bundled `builtin:` policy), answers
//! [`wire`] requests with `allow`, `deny` or `pending_hitl`, and runs the approval-token
//! lifecycle in a [`tokens::TokenStore`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), gavel_host::Error> {
//! use gavel_host::{HostConfig, Operator, PolicyHost, PolicySpec, tokens::MemoryStore};
//! use std::sync::Arc;
//!
//! let config = HostConfig {
//!     policies: vec![PolicySpec::builtin("default-action")
//!         .with_config(serde_json::json!({"action": "pending_hitl"}))],
//!     ..HostConfig::default()
//! };
//! let host = PolicyHost::new(&config, Arc::new(MemoryStore::new()))?;
//! let line = br#"{"action":"local.exec","executable":"ls","sandbox_id":"sbx","session_id":"s","profile":"p","hitl_mode":"async_token"}"#;
//! let answer = host.handle_line(line, Operator::default()).await;
//! println!("{}", answer.to_line()); // {"decision":"pending_hitl", "approval_token": ...}
//! # Ok(()) }
//! ```
//!
//! # Layout
//!
//! A request reads in one direction, and no module reaches back up:
//!
//! ```text
//! server (sockets, framing, roles)      intercept (HTTP, CONNECT, upgrade, tool adapters)
//!    \                                      /
//!     wire::parse_request ─> PolicyHost::handle ─> flow::{decide, manage, query}
//!                                                 ├─> chain ─> policy / engine / interface
//!                                                 └─> tokens (issue, redeem, apply; stores)
//!     wire::render <─ answer ─> records (audit record, approval record), metrics
//! ```
//!
//! - **Where a request enters:** [`PolicyHost::handle`] (parsed requests) and
//!   [`PolicyHost::handle_line`] (a line: [`wire::parse_request`], then `handle`). The socket
//!   server calls the same dispatcher; the interceptor methods ([`PolicyHost::intercept`]) run
//!   the same decide flow.
//! - **Where a decision is made:** `flow/decide.rs` (fresh: the chain; retry: the token),
//!   `flow/manage.rs` (an operator's change: the policies' veto, then the change) and
//!   `flow/query.rs`; each returns one answer value (`answer.rs`), which the host audits and
//!   counts once (`records.rs`, `metrics.rs`) and [`wire`] renders, attaching denial bodies
//!   (`denial.rs`) in that one place.
//! - **Where a policy runs:** `chain.rs` orders the policies; `policy.rs` runs one in a bounded
//!   instance with a deadline and a memory cap, on the engine of `engine.rs`, through the WIT
//!   versions of `interface.rs` (bindings private in `bindings.rs`).
//! - **Where a token changes state:** only in [`tokens`]: `issue` creates it, [`tokens::redeem`]
//!   and [`tokens::apply`] are the contract's table, which every [`tokens::TokenStore`] calls
//!   under its own lock or transaction. The change is announced on the [`events`] bus by the
//!   host alone, from the answer, once it is recorded (lapsed tokens: by
//!   [`PolicyHost::prune`]); `events.rs` is a leaf.
//! - **The whole sidecar:** [`Sidecar`] (`sidecar.rs`) runs the host behind the sockets with
//!   the store, audit writer, metrics endpoint and hot reload, as `gavel serve` does.
//! - **Saved project rules:** `projects.rs` merges a policy's `projects_dir` into its
//!   configuration (`config.rs` asks it, and watches what it lists).
//! - **Vocabulary** every layer shares, importing nothing above it: `action.rs` (the actions),
//!   `decision.rs` (verdicts, classes, suggestions, [`PolicyRef`], [`DenyCode`](intercept::DenyCode),
//!   [`FailureKind`]), `denial.rs`, `clock.rs`, `error.rs`; `config.rs` parses and validates.

mod action;
mod answer;
pub mod audit;
mod auth;
mod bindings;
mod builtin;
mod chain;
mod clock;
mod config;
mod decision;
mod denial;
mod engine;
mod error;
pub mod events;
pub mod files;
mod flow;
mod host;
mod inspect;
pub mod intercept;
mod interface;
mod metrics;
mod normalize;
mod policy;
mod pool;
mod projects;
mod records;
mod redact;
pub mod server;
mod sidecar;
pub mod tokens;
pub mod wire;

pub use action::{Action, Connect, Header, HttpRequest, LocalExec, ToolCall, Upgrade};
pub use auth::ManagementToken;
pub use builtin::{builtin_component, builtin_names};
pub use chain::{ChainDecision, PolicyInfo};
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{HostConfig, LimitsConfig, PolicyLimits, PolicySpec};
pub use decision::{
    EffectClass, FailureKind, PolicyRef, RiskClass, Suggestion, SuggestionGroup, Verdict,
};
pub use engine::default_cache_dir;
pub use error::Error;
pub use host::{HostBuilder, Operator, PolicyHost};
pub use inspect::{Inspection, inspect};
pub use interface::{InterfaceVersion, UnknownActions};
pub use metrics::Metrics;
pub use policy::{Isolation, Limits, World};
pub use projects::PERMISSIONS_FILE;
pub use sidecar::{Sidecar, shutdown_signal};
pub use tokens::{StoreConfig, StoreKind};

/// Where the build script put the guest components, test guests included: for this
/// workspace's integration tests (`crates/gavel-cli`), not an API.
#[doc(hidden)]
pub const GUEST_DIR: &str = env!("GAVEL_GUEST_DIR");

/// The README's Rust examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
