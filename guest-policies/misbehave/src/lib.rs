//! A guest that misbehaves on request, so the host's containment is tested against real
//! components. Configuration:
//! `{"decide": MODE, "manage": "permit" | "veto" | "trap" | "loop", "init": "ok" | "fail"}` where
//! MODE is `allow`, `deny`, `ask`, `abstain`, `ask-classified` (an ask that is destructive,
//! critical, with `"timeout_ms": N`), `error`, `trap`, `panic`, `loop`, `log-loop`, `grow`,
//! `recurse`, `huge-reason`, `many-suggestions` or `spin` (busy work for `"spin": N` iterations,
//! then allow).

use gavel_policy_sdk::{
    Action, Decision, EffectClass, LogLevel, ManagementRequest, ManagementVerdict, Policy,
    PolicyError, RiskClass, Suggestion, SuggestionGroup, Verdict,
};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default = "allow")]
    decide: String,
    #[serde(default = "permit")]
    manage: String,
    #[serde(default)]
    init: Option<String>,
    /// Iterations of busy work before answering `allow` in the `spin` mode.
    #[serde(default)]
    spin: u64,
    /// The approval timeout of the `ask-classified` mode (default 60 s).
    #[serde(default)]
    timeout_ms: Option<u64>,
}

fn allow() -> String {
    "allow".into()
}

fn permit() -> String {
    "permit".into()
}

struct Misbehave {
    config: Config,
}

#[inline(never)]
fn recurse(depth: u64, sink: &mut [u64; 64]) -> u64 {
    sink[(depth % 64) as usize] = depth;
    // Never true in practice: the stack overflows long before; it only makes the recursion finite.
    if depth == u64::MAX {
        return 0;
    }
    let below = recurse(depth + 1, sink);
    below.wrapping_add(sink[(depth % 7) as usize])
}

/// Spins until the host interrupts it; `black_box` keeps the optimizer from removing the loop.
fn spin() -> ! {
    let mut n: u64 = 0;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

#[inline(never)]
fn trap() -> ! {
    core::arch::wasm32::unreachable()
}

impl Policy for Misbehave {
    type Config = Config;

    fn new(config: Config) -> Result<Self, String> {
        if config.init.as_deref() == Some("fail") {
            return Err("`init` was told to fail".into());
        }
        Ok(Self { config })
    }

    fn decide(&self, _action: &Action) -> Result<Decision, PolicyError> {
        match self.config.decide.as_str() {
            "allow" => Ok(Decision::allow("misbehave allows").with_rule("misbehave-allow")),
            "spin" => {
                let mut n: u64 = 0;
                for i in 0..self.config.spin {
                    n = std::hint::black_box(n.wrapping_add(i));
                }
                Ok(Decision::allow(format!("spun {n}")).with_rule("misbehave-spin"))
            }
            "deny" => Ok(Decision::deny("misbehave denies").with_rule("misbehave-deny")),
            "ask" => Ok(Decision::ask("misbehave asks").with_rule("misbehave-ask")),
            "abstain" => Ok(Decision::abstain("misbehave abstains")),
            "ask-classified" => Ok(Decision::ask("misbehave asks, classified")
                .with_rule("misbehave-ask")
                .with_effect(EffectClass::Destructive)
                .with_risk(RiskClass::Critical)
                .with_approval_timeout_ms(self.config.timeout_ms.unwrap_or(60_000))),
            "error" => Err(PolicyError::Internal("misbehave returned an error".into())),
            "trap" => trap(),
            "panic" => panic!("misbehave panicked"),
            "loop" => spin(),
            "log-loop" => loop {
                gavel_policy_sdk::log(LogLevel::Info, "still looping");
            },
            "grow" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "recurse" => {
                let mut sink = [0u64; 64];
                let n = recurse(0, &mut sink);
                Ok(Decision::allow(format!("unreachable {n}")))
            }
            "huge-reason" => Ok(Decision::deny("x".repeat(10 << 20))),
            "many-suggestions" => Ok(Decision {
                verdict: Verdict::Ask,
                reason: Some("many suggestions".into()),
                rule_id: None,
                suggestions: vec![SuggestionGroup {
                    subject: "everything".into(),
                    rules: (0..100_000)
                        .map(|i| Suggestion {
                            rule: format!("run_command(x{i})"),
                            label: format!("allow x{i}"),
                        })
                        .collect(),
                }],
                effect: None,
                risk: None,
                approval_timeout_ms: None,
            }),
            other => Err(PolicyError::InvalidConfig(format!("unknown decide mode `{other}`"))),
        }
    }

    fn manage(&self, _request: &ManagementRequest) -> ManagementVerdict {
        match self.config.manage.as_str() {
            "veto" => ManagementVerdict::Veto("misbehave vetoes every management action".into()),
            "trap" => trap(),
            "loop" => spin(),
            _ => ManagementVerdict::Permit,
        }
    }
}

gavel_policy_sdk::export_policy!(Misbehave);
