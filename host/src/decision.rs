//! Verdicts and suggestions, as the host reports them.

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
