//! The ordered chain of policies: any deny is a deny, else any ask is an ask, else allow.

use crate::action::Action;
use crate::config::HostConfig;
use crate::decision::{SuggestionGroup, Verdict};
use crate::engine::Runtime;
use crate::error::Error;
use crate::policy::{Policy, PolicyDecision, World, to_wit};
use crate::tokens::{Operation, Token};
use std::sync::Arc;

/// What the chain concluded, and who decided it.
#[derive(Debug, Clone)]
pub struct ChainDecision {
    /// The verdict.
    pub verdict: Verdict,
    /// Why, naming the policy (and rule) that decided.
    pub reason: String,
    /// The policy that decided: the first that denied, else the first that asked, else the last.
    pub policy: Arc<str>,
    /// The rule that decided, if the policy named one.
    pub rule_id: Option<String>,
    /// Suggestions from every policy that asked.
    pub suggestions: Vec<SuggestionGroup>,
    /// The kind of failure when the deciding policy failed (a failure is always a deny).
    pub failure: Option<&'static str>,
}

/// A loaded policy's identity, for audit records and `gavel inspect`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyInfo {
    /// Its name in the chain.
    pub name: String,
    /// SHA-256 of its component.
    pub digest: String,
    /// The world it implements.
    pub world: World,
}

pub(crate) struct Chain {
    policies: Vec<Policy>,
    /// `name@sha256:digest` of every policy, for audit records.
    digests: Vec<String>,
}

impl Chain {
    /// Load every policy of the configuration, in order. Any failure fails the whole chain.
    pub(crate) fn load(runtime: &Arc<Runtime>, config: &HostConfig) -> Result<Self, Error> {
        config.validate()?;
        let mut policies = Vec::with_capacity(config.policies.len());
        for spec in &config.policies {
            let bytes = spec.component_bytes()?;
            let json = spec.config_json()?;
            let limits = spec.limits(&config.limits);
            policies.push(Policy::load(
                Arc::clone(runtime),
                &spec.name,
                &bytes,
                &json,
                limits,
            )?);
        }
        let digests = policies
            .iter()
            .map(|p| format!("{}@sha256:{}", p.name(), p.digest()))
            .collect();
        Ok(Self { policies, digests })
    }

    /// `name@sha256:digest` of every policy, in order.
    pub(crate) fn digests(&self) -> &[String] {
        &self.digests
    }

    pub(crate) fn info(&self) -> Vec<PolicyInfo> {
        self.policies
            .iter()
            .map(|p| PolicyInfo {
                name: p.name().to_owned(),
                digest: p.digest().to_owned(),
                world: p.world(),
            })
            .collect()
    }

    /// Run the chain. A deny stops it: later policies cannot loosen a deny.
    pub(crate) fn decide(&self, action: &Action) -> ChainDecision {
        let action = to_wit(action);
        let mut asked: Option<(&Policy, PolicyDecision)> = None;
        let mut suggestions = Vec::new();
        let mut last = None;
        for policy in &self.policies {
            let mut d = policy.decide(&action);
            match d.verdict {
                Verdict::Deny => return conclude(policy, d),
                Verdict::Ask => {
                    suggestions.append(&mut d.suggestions);
                    if asked.is_none() {
                        asked = Some((policy, d));
                    }
                }
                Verdict::Allow => last = Some((policy, d)),
            }
        }
        match (asked, last) {
            (Some((policy, d)), _) => {
                let mut c = conclude(policy, d);
                c.suggestions = suggestions;
                c
            }
            (None, Some((policy, d))) => conclude(policy, d),
            // `load` refuses an empty chain; answer fail-closed all the same.
            (None, None) => ChainDecision {
                verdict: Verdict::Deny,
                reason: "no policy is loaded".into(),
                policy: Arc::from(""),
                rule_id: None,
                suggestions: Vec::new(),
                failure: None,
            },
        }
    }

    /// Ask every policy with a `manage` hook; the first veto (or failure) wins.
    pub(crate) fn manage(
        &self,
        op: Operation,
        token: &Token,
        operator_uid: Option<u32>,
    ) -> Result<(), String> {
        self.policies
            .iter()
            .try_for_each(|p| p.manage(op, token, operator_uid))
    }
}

fn conclude(policy: &Policy, d: PolicyDecision) -> ChainDecision {
    let name = policy.name();
    let reason = if d.failure.is_some() {
        d.reason
    } else {
        let what = if d.reason.is_empty() {
            format!("{:?}", d.verdict).to_lowercase()
        } else {
            d.reason
        };
        match &d.rule_id {
            Some(rule) => format!("{what} (policy `{name}`, rule `{rule}`)"),
            None => format!("{what} (policy `{name}`)"),
        }
    };
    ChainDecision {
        verdict: d.verdict,
        reason,
        policy: policy.name_arc(),
        rule_id: d.rule_id,
        suggestions: d.suggestions,
        failure: d.failure,
    }
}
