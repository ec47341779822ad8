//! Write a Gavel policy as one `impl` block.
//!
//! ```ignore
//! use gavel_policy_sdk::{Action, Decision, Policy, PolicyError};
//!
//! #[derive(serde::Deserialize, Default)]
//! struct Config { deny_everything: bool }
//!
//! struct MyPolicy { config: Config }
//!
//! impl Policy for MyPolicy {
//!     type Config = Config;
//!     fn new(config: Config) -> Result<Self, String> { Ok(Self { config }) }
//!     fn decide(&self, _action: &Action) -> Result<Decision, PolicyError> {
//!         Ok(if self.config.deny_everything { Decision::deny("told to") } else { Decision::allow("fine") })
//!     }
//! }
//! gavel_policy_sdk::export_policy!(MyPolicy);
//! ```
//!
//! The host calls `init` once per instance: the SDK reads `config()`, deserializes it into
//! `Policy::Config` and builds the policy then, so a bad configuration is reported when the policy
//! loads and no decision parses JSON. With the `manage` feature the policy also exports the
//! `manage` hook (world `policy`); without it, the world is `decide-policy`.
//!
//! A policy that judges command lines decomposes them with [`shell`] (see the `gavel new`
//! template): a command is allowed only when every simple command in it is.

#[cfg(feature = "manage")]
wit_bindgen::generate!({
    path: "../../wit/0.2.0",
    world: "policy",
    pub_export_macro: true,
    export_macro_name: "__export_world",
    default_bindings_module: "gavel_policy_sdk::bindings",
});

#[cfg(not(feature = "manage"))]
wit_bindgen::generate!({
    path: "../../wit/0.2.0",
    world: "decide-policy",
    pub_export_macro: true,
    export_macro_name: "__export_world",
    default_bindings_module: "gavel_policy_sdk::bindings",
});

/// The generated bindings; policies name them only through the `export_policy!` macro.
#[doc(hidden)]
pub mod bindings {
    pub use super::*;
}

pub use gavel::policy::host::LogLevel;
pub use gavel::policy::types::{
    Action, Connect, Decision, EffectClass, HttpHeader, HttpRequest, LocalExec, ManagementAction,
    ManagementRequest, ManagementVerdict, PolicyError, RiskClass, Suggestion, SuggestionGroup,
    TokenInfo, TokenState, ToolCall, Upgrade, Verdict,
};

/// The sound shell decomposition `builtin:command-rules` uses: [`shell::parse`] reads a command
/// line in a strict sub-language of bash and yields its simple commands exactly as bash would
/// run them, or refuses it with a reason. Judge every command it yields; when it refuses, ask a
/// human rather than allow (never split a command line on its first word: that allows
/// `ls && rm -rf x` as `ls`).
pub use gavel_shell as shell;

/// Write a line to the host's log.
pub fn log(level: LogLevel, message: &str) {
    gavel::policy::host::log(level, message);
}

/// The policy's configuration as JSON text, exactly as the host holds it.
pub fn raw_config() -> String {
    gavel::policy::host::config()
}

/// A policy: built once per instance from its configuration, then asked to decide.
pub trait Policy: Sized + Send + Sync + 'static {
    /// The configuration, deserialized from the host's JSON (`{}` when none was given).
    type Config: serde::de::DeserializeOwned;

    /// Build the policy; an `Err` is reported as an invalid configuration when the policy loads.
    fn new(config: Self::Config) -> Result<Self, String>;

    /// Decide one action. An `Err` becomes a `deny` naming the policy.
    fn decide(&self, action: &Action) -> Result<Decision, PolicyError>;

    /// Permit or veto an operator's approve or revoke. The default permits everything.
    fn manage(&self, request: &ManagementRequest) -> ManagementVerdict {
        let _ = request;
        ManagementVerdict::Permit
    }
}

impl Decision {
    /// A decision with this verdict and reason, no rule id and no suggestions.
    pub fn new(verdict: Verdict, reason: impl Into<String>) -> Self {
        Decision {
            verdict,
            reason: Some(reason.into()),
            rule_id: None,
            suggestions: Vec::new(),
            effect: None,
            risk: None,
            approval_timeout_ms: None,
        }
    }

    /// Abstain: this policy does not govern this kind of action, and the chain goes on
    /// without it. A chain in which every policy abstains denies.
    pub fn abstain(reason: impl Into<String>) -> Self {
        Self::new(Verdict::Abstain, reason)
    }

    /// Say what the action does (shown to the human who approves it).
    pub fn with_effect(mut self, effect: EffectClass) -> Self {
        self.effect = Some(effect);
        self
    }

    /// Say how risky the action is.
    pub fn with_risk(mut self, risk: RiskClass) -> Self {
        self.risk = Some(risk);
        self
    }

    /// For an `ask`: give a human this long to approve (the host caps it at its token lifetime).
    pub fn with_approval_timeout_ms(mut self, timeout_ms: u64) -> Self {
        self.approval_timeout_ms = Some(timeout_ms);
        self
    }

    /// Allow, with a reason.
    pub fn allow(reason: impl Into<String>) -> Self {
        Self::new(Verdict::Allow, reason)
    }

    /// Deny, with a reason.
    pub fn deny(reason: impl Into<String>) -> Self {
        Self::new(Verdict::Deny, reason)
    }

    /// Ask a human, with a reason.
    pub fn ask(reason: impl Into<String>) -> Self {
        Self::new(Verdict::Ask, reason)
    }

    /// Name the rule that decided.
    pub fn with_rule(mut self, rule_id: impl Into<String>) -> Self {
        self.rule_id = Some(rule_id.into());
        self
    }
}

impl Action {
    /// The session the action belongs to.
    pub fn session_id(&self) -> &str {
        match self {
            Action::LocalExec(e) => &e.session_id,
            Action::ToolCall(t) => &t.session_id,
            Action::HttpRequest(h) => &h.session_id,
            Action::Connect(c) => &c.session_id,
            Action::Upgrade(u) => &u.session_id,
        }
    }

    /// The sandbox the action comes from.
    pub fn sandbox_id(&self) -> &str {
        match self {
            Action::LocalExec(e) => &e.sandbox_id,
            Action::ToolCall(t) => &t.sandbox_id,
            Action::HttpRequest(h) => &h.sandbox_id,
            Action::Connect(c) => &c.sandbox_id,
            Action::Upgrade(u) => &u.sandbox_id,
        }
    }

    /// The wire name of the action's kind: `local.exec`, `tool.call`, `http.request`,
    /// `connect` or `upgrade`.
    pub fn kind(&self) -> &'static str {
        match self {
            Action::LocalExec(_) => "local.exec",
            Action::ToolCall(_) => "tool.call",
            Action::HttpRequest(_) => "http.request",
            Action::Connect(_) => "connect",
            Action::Upgrade(_) => "upgrade",
        }
    }
}

impl HttpRequest {
    /// The value of the first header named `name` (compared case-insensitively), if selected.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str())
    }
}

/// Parse the configuration and build `P`; what `init` runs.
#[doc(hidden)]
pub fn __build<P: Policy>() -> Result<P, PolicyError> {
    let text = raw_config();
    let text = if text.trim().is_empty() { "{}" } else { text.as_str() };
    let config: P::Config = serde_json::from_str(text)
        .map_err(|e| PolicyError::InvalidConfig(format!("configuration is not valid: {e}")))?;
    P::new(config).map_err(PolicyError::InvalidConfig)
}

/// Export a type implementing [`Policy`] as this component's policy.
#[macro_export]
macro_rules! export_policy {
    ($ty:ty) => {
        const _: () = {
            static STATE: ::std::sync::OnceLock<::core::result::Result<$ty, $crate::PolicyError>> =
                ::std::sync::OnceLock::new();

            fn state() -> ::core::result::Result<&'static $ty, $crate::PolicyError> {
                STATE
                    .get_or_init($crate::__build::<$ty>)
                    .as_ref()
                    .map_err(::core::clone::Clone::clone)
            }

            struct Exports;

            impl $crate::bindings::exports::gavel::policy::decide::Guest for Exports {
                fn init() -> ::core::result::Result<(), $crate::PolicyError> {
                    state().map(|_| ())
                }

                fn decide(
                    action: $crate::Action,
                ) -> ::core::result::Result<$crate::Decision, $crate::PolicyError> {
                    <$ty as $crate::Policy>::decide(state()?, &action)
                }
            }

            $crate::__export_manage!($ty, Exports, state);

            $crate::bindings::__export_world!(Exports);
        };
    };
}

#[cfg(feature = "manage")]
#[doc(hidden)]
#[macro_export]
macro_rules! __export_manage {
    ($ty:ty, $exports:ident, $state:ident) => {
        impl $crate::bindings::exports::gavel::policy::manage::Guest for $exports {
            fn manage(request: $crate::ManagementRequest) -> $crate::ManagementVerdict {
                match $state() {
                    Ok(policy) => <$ty as $crate::Policy>::manage(policy, &request),
                    Err(e) => $crate::ManagementVerdict::Veto(::std::format!(
                        "policy is not configured: {e:?}"
                    )),
                }
            }
        }
    };
}

#[cfg(not(feature = "manage"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __export_manage {
    ($ty:ty, $exports:ident, $state:ident) => {};
}
