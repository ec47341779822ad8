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
