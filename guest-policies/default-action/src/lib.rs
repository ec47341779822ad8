//! `builtin:default-action`: every action gets the configured verdict.
//!
//! Configuration: `{"action": "allow" | "deny" | "pending_hitl"}`; the default is `pending_hitl`,
//! so a host started without configuration asks a human rather than allowing everything. It
//! decides every kind of action, network ones included.

use gavel_policy_sdk::{Action, Decision, Policy, PolicyError, Verdict};
use serde::Deserialize;

#[derive(Deserialize, Clone, Copy, Default)]
#[serde(rename_all = "snake_case")]
enum DefaultAction {
    Allow,
    Deny,
    #[default]
    PendingHitl,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default)]
    action: DefaultAction,
}

struct DefaultActionPolicy {
    decision: Decision,
}

impl Policy for DefaultActionPolicy {
    type Config = Config;

    fn new(config: Config) -> Result<Self, String> {
        let (verdict, reason) = match config.action {
            DefaultAction::Allow => (Verdict::Allow, "the default action is allow"),
            DefaultAction::Deny => (Verdict::Deny, "the default action is deny"),
            DefaultAction::PendingHitl => (Verdict::Ask, "the default action is to ask a human"),
        };
        Ok(Self {
            decision: Decision::new(verdict, reason).with_rule("default-action"),
        })
    }

    fn decide(&self, _action: &Action) -> Result<Decision, PolicyError> {
        Ok(self.decision.clone())
    }
}

gavel_policy_sdk::export_policy!(DefaultActionPolicy);
