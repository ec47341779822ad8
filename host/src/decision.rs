//! The host's vocabulary: verdicts, classes, suggestions, policy references and deny codes.
//! A leaf: it names things every layer speaks of and imports nothing from the crate.

use serde::{Deserialize, Serialize};

/// What a policy (or the chain) concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Let it run.
    Allow,
    /// Do not let it run.
    Deny,
    /// A human must approve it first.
    Ask,
}

/// One rule a human could save to stop being asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suggestion {
    /// The rule text, for example `run_command(npm run *)`.
    pub rule: String,
    /// A short label for a menu.
    pub label: String,
}

/// Suggestions for one part of a compound command, most specific first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuggestionGroup {
    /// The part of the command the group is about.
    pub subject: String,
    /// The rules, most specific first.
    pub rules: Vec<Suggestion>,
}

/// What an action does to the world, for the human who approves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EffectClass {
    /// Reads or lists; changes nothing.
    Read,
    /// Creates or changes state that can be changed back.
    Write,
    /// Runs code.
    Execute,
    /// Opens a channel to another system (a tunnel, a socket).
    Network,
    /// Deletes or changes state that cannot be changed back.
    Destructive,
}

impl EffectClass {
    /// The class's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            EffectClass::Read => "read",
            EffectClass::Write => "write",
            EffectClass::Execute => "execute",
            EffectClass::Network => "network",
            EffectClass::Destructive => "destructive",
        }
    }

    /// The risk assumed when no policy names one: reading is low, changing or reaching out is
    /// medium, running code is high, and what cannot be undone is critical.
    pub fn default_risk(self) -> RiskClass {
        match self {
            EffectClass::Read => RiskClass::Low,
            EffectClass::Write | EffectClass::Network => RiskClass::Medium,
            EffectClass::Execute => RiskClass::High,
            EffectClass::Destructive => RiskClass::Critical,
        }
    }
}

/// How much harm an action could do if it is the wrong thing to do; ordered, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RiskClass {
    /// Little harm.
    Low,
    /// Some harm, recoverable.
    Medium,
    /// Serious harm.
    High,
    /// Irreversible or wide-reaching harm.
    Critical,
}

impl RiskClass {
    /// The class's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            RiskClass::Low => "low",
            RiskClass::Medium => "medium",
            RiskClass::High => "high",
            RiskClass::Critical => "critical",
        }
    }
}

/// A reference to a policy behind a decision, as approval records carry it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyRef {
    /// The policy's name in the chain.
    pub policy: String,
    /// `sha256:` and the SHA-256 of its component.
    pub digest: String,
    /// The rule it named, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
}

/// Why a call was refused, as a stable code agents and dashboards can branch on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DenyCode {
    /// A policy denied it (or no policy governs this kind of action).
    PolicyDenied,
    /// A policy failed (trapped, timed out, ran out of memory, answered garbage); failing is
    /// denying.
    PolicyFailed,
    /// The approval token presented is unknown, used, revoked, expired or for another request.
    ApprovalInvalid,
    /// The request could not be understood.
    MalformedRequest,
    /// The request came from a sandbox this host does not serve.
    SandboxMismatch,
    /// Something the answer depends on (token store, audit log) is unavailable.
    Unavailable,
}

impl DenyCode {
    /// The code as it appears in bodies.
    pub fn as_str(self) -> &'static str {
        match self {
            DenyCode::PolicyDenied => "policy_denied",
            DenyCode::PolicyFailed => "policy_failed",
            DenyCode::ApprovalInvalid => "approval_invalid",
            DenyCode::MalformedRequest => "malformed_request",
            DenyCode::SandboxMismatch => "sandbox_mismatch",
            DenyCode::Unavailable => "unavailable",
        }
    }
}

/// What went wrong with a policy: while it was loaded (an [`Error::Policy`](crate::Error)), or
/// while it decided (a deny that names it, counted in the metrics by [`FailureKind::as_str`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailureKind {
    /// Its component or configuration file could not be read.
    Unreadable,
    /// Its component does not match the `sha256` it is pinned to.
    Pinned,
    /// It is not a component Gavel can run: not a component, wrong imports or exports, or it
    /// cannot be linked.
    Invalid,
    /// An instance could not be created or its `init` failed (a configuration it rejects).
    Instantiate,
    /// A call ran past its deadline.
    Deadline,
    /// A call ran into the memory limit.
    Memory,
    /// A call overflowed its stack.
    Stack,
    /// A call trapped (or its thread failed).
    Trap,
    /// The policy answered with an error instead of a decision.
    Error,
    /// The policy's answer was over the host's size limits.
    Oversized,
}

impl FailureKind {
    /// The kind's name in metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Unreadable => "unreadable",
            FailureKind::Pinned => "pinned",
            FailureKind::Invalid => "invalid",
            FailureKind::Instantiate => "instantiate",
            FailureKind::Deadline => "deadline",
            FailureKind::Memory => "memory",
            FailureKind::Stack => "stack",
            FailureKind::Trap => "trap",
            FailureKind::Error => "error",
            FailureKind::Oversized => "oversized",
        }
    }
}

/// What the chain concluded, and who decided it.
#[derive(Debug, Clone)]
pub struct ChainDecision {
    /// The verdict.
    pub verdict: Verdict,
    /// Why, naming the policy (and rule) that decided.
    pub reason: String,
    /// The policy that decided: the first that denied, else the first that asked, else the last
    /// that allowed.
    pub policy: std::sync::Arc<str>,
    /// The rule that decided, if the policy named one.
    pub rule_id: Option<String>,
    /// Suggestions from every policy that asked.
    pub suggestions: Vec<SuggestionGroup>,
    /// The kind of failure when the deciding policy failed (a failure is always a deny).
    pub failure: Option<FailureKind>,
    /// What the action does: the deciding policy's class, else derived from the action.
    pub effect: EffectClass,
    /// How risky it is: the highest any deciding or asking policy named, else the effect's
    /// default risk.
    pub risk: RiskClass,
    /// For an ask: the shortest approval timeout any asking policy set.
    pub approval_timeout_ms: Option<u64>,
    /// For an ask: every policy that asked, for the approval record (empty otherwise; `policy`
    /// names the one that decided).
    pub policy_refs: Vec<PolicyRef>,
}
