//! `builtin:command-rules`: the command-rules library (`command-rules-core`) as a policy.
//!
//! A local-exec request is judged as `run_command` over its argv (a shell with `-c` has its
//! script decomposed), with the request's `profile` naming the project whose rules apply. A
//! tool call is judged by its tool: `run_command` decomposes its command line, file tools match
//! their path, other tools their argument; its `project_id`, `project_root` and `cwd` apply.
//! The `manage` hook vetoes approving a token whose request matches a `never_approve` rule.

use command_rules_core::{Config, Evaluation, Policy as Rules, Request, Verdict as RuleVerdict};
use gavel_policy_sdk::{
    Action, Decision, ManagementAction, ManagementRequest, ManagementVerdict, Policy, PolicyError,
    Suggestion, SuggestionGroup, Verdict,
};

struct CommandRules {
    rules: Rules,
}

/// The command-rules request for an action; `None` for network actions, which these rules do
/// not govern (the policy abstains on them, leaving them to a policy such as `http-rules`).
fn request(action: &Action) -> Option<Request<'_>> {
    match action {
        Action::LocalExec(e) => Some(Request::exec(&e.executable, &e.args).project(Some(&e.profile))),
        Action::ToolCall(t) => Some(
            Request::tool(&t.tool, &t.arg)
                .project(t.project_id.as_deref())
                .location(t.project_root.as_deref(), t.cwd.as_deref()),
        ),
        Action::HttpRequest(_) | Action::Connect(_) | Action::Upgrade(_) => None,
    }
}

fn decision(e: Evaluation) -> Decision {
    Decision {
        verdict: match e.verdict {
            RuleVerdict::Allow => Verdict::Allow,
            RuleVerdict::Ask => Verdict::Ask,
            RuleVerdict::Deny => Verdict::Deny,
        },
        reason: Some(e.reason),
        rule_id: e.rule,
        suggestions: e
            .suggestions
            .into_iter()
            .map(|g| SuggestionGroup {
                subject: g.subject,
                rules: g.rules.into_iter().map(|s| Suggestion { rule: s.rule, label: s.label }).collect(),
            })
            .collect(),
        effect: None,
        risk: None,
        approval_timeout_ms: None,
    }
}

impl Policy for CommandRules {
    type Config = Config;

    fn new(config: Config) -> Result<Self, String> {
        Rules::new(config).map(|rules| Self { rules }).map_err(|e| e.to_string())
    }

    fn decide(&self, action: &Action) -> Result<Decision, PolicyError> {
        Ok(match request(action) {
            Some(request) => decision(self.rules.evaluate(&request)),
            None => Decision::abstain(format!("command rules do not govern `{}` actions", action.kind())),
        })
    }

    fn manage(&self, m: &ManagementRequest) -> ManagementVerdict {
        if m.action != ManagementAction::Approve {
            return ManagementVerdict::Permit;
        }
        let Some(request) = request(&m.token.request) else {
            return ManagementVerdict::Permit;
        };
        match self.rules.never_approve(&request) {
            Some(rule) => ManagementVerdict::Veto(format!("the never_approve rule `{rule}` forbids approving this request")),
            None => ManagementVerdict::Permit,
        }
    }
}

gavel_policy_sdk::export_policy!(CommandRules);
