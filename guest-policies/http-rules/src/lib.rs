//! `builtin:http-rules`: the http-rules library (`http-rules-core`) as a policy.
//!
//! `http.request`, `connect` and `upgrade` actions are decided by the configured rules (see
//! `docs/http-rules.md`); `local.exec` and `tool.call` actions are not governed here, so the
//! policy abstains on them.

use gavel_policy_sdk::{Action, Decision, EffectClass, Policy, PolicyError, RiskClass, Verdict};
use http_rules_core::{
    Config, Connect, Effect, Evaluation, HttpRequest, Policy as Rules, Request, Risk, Upgrade,
    Verdict as RuleVerdict,
};

struct HttpRules {
    rules: Rules,
}

/// The core request for an action; `None` for actions these rules do not govern.
fn request(action: &Action) -> Option<Request<'_>> {
    match action {
        Action::HttpRequest(r) => Some(Request::Http(HttpRequest {
            method: &r.method,
            scheme: &r.scheme,
            host: &r.host,
            port: r.port,
            path: &r.path,
        })),
        Action::Connect(c) => Some(Request::Connect(Connect {
            host: &c.host,
            port: c.port,
        })),
        Action::Upgrade(u) => Some(Request::Upgrade(Upgrade {
            host: &u.host,
            path: &u.path,
            protocol: &u.protocol,
        })),
        Action::LocalExec(_) | Action::ToolCall(_) => None,
    }
}

fn decision(e: Evaluation) -> Decision {
    let verdict = match e.verdict {
        RuleVerdict::Allow => Verdict::Allow,
        RuleVerdict::Ask => Verdict::Ask,
        RuleVerdict::Deny => Verdict::Deny,
    };
    let effect = match e.effect {
        Effect::Read => EffectClass::Read,
        Effect::Write => EffectClass::Write,
        Effect::Execute => EffectClass::Execute,
        Effect::Network => EffectClass::Network,
        Effect::Destructive => EffectClass::Destructive,
    };
    let mut d = Decision::new(verdict, e.reason)
        .with_rule(e.rule)
        .with_effect(effect);
    if let Some(risk) = e.risk {
        d = d.with_risk(match risk {
            Risk::Low => RiskClass::Low,
            Risk::Medium => RiskClass::Medium,
            Risk::High => RiskClass::High,
            Risk::Critical => RiskClass::Critical,
        });
    }
    if let Some(ms) = e.approval_timeout_ms {
        d = d.with_approval_timeout_ms(ms);
    }
    d
}

impl Policy for HttpRules {
    type Config = Config;

    fn new(config: Config) -> Result<Self, String> {
        Rules::new(config).map(|rules| Self { rules })
    }

    fn decide(&self, action: &Action) -> Result<Decision, PolicyError> {
        Ok(match request(action) {
            Some(request) => decision(self.rules.evaluate(&request)),
            None => Decision::abstain(format!(
                "http rules do not govern `{}` actions",
                action.kind()
            )),
        })
    }
}

gavel_policy_sdk::export_policy!(HttpRules);
