//! The ordered chain of policies: any deny is a deny, else any ask is an ask, else allow.
//! Abstentions are set aside; a chain in which every policy abstains denies.

use crate::action::{Action, hex};
use crate::config::{LimitsConfig, PolicySpec};
use crate::decision::{ChainDecision, PolicyRef, Verdict};
use crate::engine::Runtime;
use crate::error::Error;
use crate::interface::{InterfaceVersion, PolicyVerdict, Prepared};
use crate::policy::{Policy, PolicyDecision, World};
use crate::tokens::{Operation, Token};
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// A loaded policy's identity, for audit records and `gavel inspect`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyInfo {
    /// Its name in the chain.
    pub name: String,
    /// SHA-256 of its component.
    pub digest: String,
    /// The world it implements.
    pub world: World,
    /// The `gavel:policy` version it was built against.
    pub interface: InterfaceVersion,
}

pub(crate) struct Chain {
    policies: Vec<Policy>,
    /// `name@sha256:digest` of every policy, for audit records.
    digests: Vec<String>,
    /// `sha256:` over every policy's name, component digest, interface version and
    /// configuration, in order: the fingerprint of the policy package in force.
    chain_digest: String,
}

impl Chain {
    /// Load every policy of `specs`, in order, each under its limits over the host's `base`.
    /// Any failure fails the whole chain. The caller has validated the configuration.
    pub(crate) fn load(
        runtime: &Arc<Runtime>,
        specs: &[PolicySpec],
        base: &LimitsConfig,
    ) -> Result<Self, Error> {
        let mut policies = Vec::with_capacity(specs.len());
        let mut package = Sha256::new();
        for spec in specs {
            let bytes = spec.component_bytes()?;
            let json = spec.config_json()?;
            let limits = spec.limits(base);
            let policy = Policy::load(Arc::clone(runtime), &spec.name, &bytes, &json, limits)?;
            for part in [
                policy.name(),
                policy.digest(),
                policy.version().as_str(),
                json.as_str(),
            ] {
                package.update(part.as_bytes());
                package.update([0u8]);
            }
            policies.push(policy);
        }
        let digests = policies
            .iter()
            .map(|p| format!("{}@sha256:{}", p.name(), p.digest()))
            .collect();
        Ok(Self {
            policies,
            digests,
            chain_digest: format!("sha256:{}", hex(&package.finalize())),
        })
    }

    /// `name@sha256:digest` of every policy, in order.
    pub(crate) fn digests(&self) -> &[String] {
        &self.digests
    }

    /// The digest of the whole chain (policies, versions and configurations).
    pub(crate) fn chain_digest(&self) -> &str {
        &self.chain_digest
    }

    pub(crate) fn info(&self) -> Vec<PolicyInfo> {
        self.policies
            .iter()
            .map(|p| PolicyInfo {
                name: p.name().to_owned(),
                digest: p.digest().to_owned(),
                world: p.world(),
                interface: p.version(),
            })
            .collect()
    }

    /// Run the chain. A deny stops it: later policies cannot loosen a deny.
    pub(crate) fn decide(&self, action: &Action) -> ChainDecision {
        let prepared = Prepared::new(action);
        let mut asked: Vec<(&Policy, PolicyDecision)> = Vec::new();
        let mut last_allow = None;
        let mut abstained = Vec::new();
        for policy in &self.policies {
            let d = policy.decide(&prepared);
            match d.verdict {
                PolicyVerdict::Deny => return conclude(action, Verdict::Deny, vec![(policy, d)]),
                PolicyVerdict::Ask => asked.push((policy, d)),
                PolicyVerdict::Allow => last_allow = Some((policy, d)),
                PolicyVerdict::Abstain => abstained.push(policy.name()),
            }
        }
        if !asked.is_empty() {
            return conclude(action, Verdict::Ask, asked);
        }
        if let Some(allowed) = last_allow {
            return conclude(action, Verdict::Allow, vec![allowed]);
        }
        // Nobody decided: `load` refuses an empty chain, so every policy abstained.
        let reason = if abstained.is_empty() {
            "no policy is loaded".to_owned()
        } else {
            format!(
                "no policy governs `{}` actions: every policy in the chain abstained ({})",
                action.kind(),
                abstained.join(", ")
            )
        };
        let effect = action.default_effect();
        ChainDecision {
            verdict: Verdict::Deny,
            reason,
            policy: Arc::from(""),
            rule_id: None,
            suggestions: Vec::new(),
            failure: None,
            effect,
            risk: effect.default_risk(),
            approval_timeout_ms: None,
            policy_refs: Vec::new(),
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

/// The chain's decision from the policies behind it (the first of them decided).
fn conclude(
    action: &Action,
    verdict: Verdict,
    behind: Vec<(&Policy, PolicyDecision)>,
) -> ChainDecision {
    let effect = behind
        .iter()
        .find_map(|(_, d)| d.effect)
        .unwrap_or_else(|| action.default_effect());
    let risk = behind
        .iter()
        .filter_map(|(_, d)| d.risk)
        .max()
        .unwrap_or_else(|| effect.default_risk());
    let approval_timeout_ms = behind
        .iter()
        .filter_map(|(_, d)| d.approval_timeout_ms)
        .min();
    // Only an approval record needs them; allow and deny stay allocation-light.
    let policy_refs = if verdict == Verdict::Ask {
        behind
            .iter()
            .map(|(p, d)| PolicyRef {
                policy: p.name().to_owned(),
                digest: format!("sha256:{}", p.digest()),
                rule: d.rule_id.clone(),
            })
            .collect()
    } else {
        Vec::new()
    };
    let mut suggestions = Vec::new();
    let mut first = None;
    for (policy, mut d) in behind {
        suggestions.append(&mut d.suggestions);
        if first.is_none() {
            first = Some((policy, d));
        }
    }
    let Some((policy, d)) = first else {
        // Callers always pass the deciding policy; answer fail-closed all the same.
        return ChainDecision {
            verdict: Verdict::Deny,
            reason: "no policy decided".into(),
            policy: Arc::from(""),
            rule_id: None,
            suggestions: Vec::new(),
            failure: None,
            effect,
            risk,
            approval_timeout_ms: None,
            policy_refs: Vec::new(),
        };
    };
    let name = policy.name();
    let reason = if d.failure.is_some() {
        d.reason
    } else {
        let what = if d.reason.is_empty() {
            format!("{verdict:?}").to_lowercase()
        } else {
            d.reason
        };
        match &d.rule_id {
            Some(rule) => format!("{what} (policy `{name}`, rule `{rule}`)"),
            None => format!("{what} (policy `{name}`)"),
        }
    };
    ChainDecision {
        verdict,
        reason,
        policy: policy.name_arc(),
        rule_id: d.rule_id,
        suggestions,
        failure: d.failure,
        effect,
        risk,
        approval_timeout_ms,
        policy_refs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::action::fixtures::exec;
    use crate::config::HostConfig;

    /// A chain of `default-action` policies, each `(name, verdict)`.
    fn chain(links: &[(&str, &str)]) -> Chain {
        let config = HostConfig {
            policies: links
                .iter()
                .map(|(name, verdict)| {
                    let mut spec = PolicySpec::builtin("default-action")
                        .with_config(serde_json::json!({ "action": verdict }));
                    spec.name = (*name).into();
                    spec
                })
                .collect(),
            compile_cache: false,
            ..HostConfig::default()
        };
        let runtime = Arc::new(Runtime::new(&config.engine_options()).unwrap());
        Chain::load(&runtime, &config.policies, &config.limits).unwrap()
    }

    #[test]
    fn a_deny_anywhere_wins_and_names_its_policy() {
        let d = chain(&[
            ("open", "allow"),
            ("ask", "pending_hitl"),
            ("closed", "deny"),
        ])
        .decide(&exec("rm", &["-rf", "/tmp/x"]));
        assert_eq!(d.verdict, Verdict::Deny);
        assert_eq!(&*d.policy, "closed");
        assert!(d.policy_refs.is_empty(), "only an ask lists the askers");
    }

    #[test]
    fn an_ask_beats_allows_and_lists_every_asker_with_its_digest() {
        let c = chain(&[
            ("first", "pending_hitl"),
            ("open", "allow"),
            ("second", "pending_hitl"),
        ]);
        let d = c.decide(&exec("rm", &["-rf", "/tmp/x"]));
        assert_eq!(d.verdict, Verdict::Ask);
        assert_eq!(&*d.policy, "first");
        let askers: Vec<_> = d.policy_refs.iter().map(|r| r.policy.as_str()).collect();
        assert_eq!(askers, ["first", "second"]);
        let digest = d.policy_refs[0].digest.strip_prefix("sha256:").unwrap();
        assert!(c.digests()[0].ends_with(digest));
    }

    #[test]
    fn the_chain_digest_covers_configuration_and_order() {
        let a = chain(&[("x", "allow"), ("y", "deny")]);
        let same = chain(&[("x", "allow"), ("y", "deny")]);
        let configured = chain(&[("x", "allow"), ("y", "pending_hitl")]);
        let swapped = chain(&[("y", "deny"), ("x", "allow")]);
        assert_eq!(a.chain_digest(), same.chain_digest());
        assert_ne!(a.chain_digest(), configured.chain_digest());
        assert_ne!(a.chain_digest(), swapped.chain_digest());
        assert_eq!(a.info().len(), 2);
    }
}
