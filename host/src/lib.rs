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
//! Where things happen: a request enters at [`PolicyHost::handle_line`] (parsed by
//! [`wire::parse_request`]); policies run in `policy.rs` (one instance pool per policy, chained
//! in `chain.rs`); tokens change state only in [`tokens::redeem`] and [`tokens::apply`].
//! [`Sidecar`] runs all of it behind the sockets, as `gavel serve` does.

mod action;
pub mod audit;
mod auth;
mod bindings;
mod builtin;
mod chain;
mod clock;
pub mod componentize;
mod config;
mod decision;
mod engine;
mod error;
pub mod files;
mod host;
mod inspect;
pub mod intercept;
mod interface;
mod metrics;
mod normalize;
mod policy;
mod pool;
mod redact;
pub mod server;
mod sidecar;
pub mod tokens;
pub mod wire;

pub use action::{Action, Connect, Header, HttpRequest, LocalExec, ToolCall, Upgrade};
pub use auth::ManagementToken;
pub use builtin::{builtin_component, builtin_names};
pub use chain::{ChainDecision, PolicyInfo, PolicyRef};
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{HostConfig, LimitsConfig, PolicyLimits, PolicySpec, StoreConfig, StoreKind};
pub use decision::{EffectClass, RiskClass, Suggestion, SuggestionGroup, Verdict};
pub use engine::default_cache_dir;
pub use error::Error;
pub use host::{HostBuilder, Operator, PolicyHost};
pub use inspect::{Inspection, inspect};
pub use interface::{InterfaceVersion, UnknownActions};
pub use metrics::Metrics;
pub use policy::{Isolation, Limits, World};
pub use sidecar::{Sidecar, shutdown_signal};

/// Where the build script put the guest components, test guests included: for this
/// workspace's integration tests (`crates/gavel-cli`), not an API.
#[doc(hidden)]
pub const GUEST_DIR: &str = env!("GAVEL_GUEST_DIR");

/// The README's Rust examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
