//! An answer value (`crate::answer`) to its answer line: the one place a wire answer gets a
//! denial's body.

use super::*;

/// The answer line for a decide request about `action`: the one place a denial's body (and
/// status) is attached, and where a `local.exec` answer is kept to firma's four fields.
pub(crate) fn render_decision(answer: Decided, action: &Action) -> DecideResponse {
    let code = answer.deny_code();
    let asks = answer.verdict == Verdict::Ask;
    let mut response = DecideResponse {
        decision: match answer.verdict {
            Verdict::Allow => WireDecision::Allow,
            Verdict::Deny => WireDecision::Deny,
            Verdict::Ask => WireDecision::PendingHitl,
        },
        reason: Some(answer.reason),
        approval_token: answer.token_id.filter(|_| asks),
        retry_after_ms: answer.retry_after_ms.filter(|_| asks),
        // firma-run rejects any field beyond its four, and would fail closed.
        suggestions: if matches!(action, Action::LocalExec(_)) {
            Vec::new()
        } else {
            answer.suggestions
        },
        status: None,
        body: None,
    };
    if let Some(code) = code {
        response.attach_denial(action.kind(), Some(action), code);
    }
    response
}

/// The answer line for an approve or revoke.
pub(crate) fn render_management(answer: Managed) -> ManageResponse {
    ManageResponse {
        outcome: answer.outcome,
        reason: answer.reason,
    }
}

/// The answer line for `list` or `show`, each token shown as `approval` records it.
pub(crate) fn render_query(
    answer: Queried,
    approval: impl Fn(&crate::tokens::Token) -> ApprovalRecord,
) -> QueryResponse {
    let (tokens, token) = match answer.found {
        Found::Nothing => (None, None),
        Found::List(live) => (Some(live.iter().map(approval).collect()), None),
        Found::One(t) => (None, Some(approval(&t))),
    };
    QueryResponse {
        outcome: answer.outcome,
        reason: answer.reason,
        tokens,
        token,
    }
}

#[cfg(test)]
mod render_tests {
    use super::*;
    use crate::action::fixtures;
    use crate::decision::{DenyCode, Suggestion};

    fn exec() -> Action {
        fixtures::exec("ls", &[])
    }

    fn tool() -> Action {
        fixtures::tool("run_command")
    }

    fn with_suggestions(answer: Decided) -> Decided {
        Decided {
            suggestions: vec![vec![Suggestion {
                rule: "run_command(ls)".into(),
                label: "ls".into(),
            }]],
            ..answer
        }
    }

    #[test]
    fn a_local_exec_answer_keeps_firmas_four_fields() {
        let pending = with_suggestions(Decided::pending("t1".into(), 500, "ask"));
        let line = Response::Decide(render_decision(pending, &exec())).to_line();
        assert_eq!(
            line,
            r#"{"decision":"pending_hitl","reason":"ask","approval_token":"t1","retry_after_ms":500}"#
        );
        let deny = Decided::deny(DenyCode::PolicyFailed, "trapped");
        let line = Response::Decide(render_decision(deny, &exec())).to_line();
        assert_eq!(line, r#"{"decision":"deny","reason":"trapped"}"#);
    }

    #[test]
    fn a_tool_call_denial_carries_the_tool_body_and_suggestions_ride_on_asks() {
        let deny = Decided::deny(DenyCode::ApprovalInvalid, "approval token expired");
        let r = render_decision(deny, &tool());
        assert_eq!(r.status, None, "a tool denial is not an HTTP error");
        let body = r.body.unwrap();
        assert_eq!(body["type"], "tool_result");
        assert_eq!(body["reason"], "approval_invalid");
        assert_eq!(body["tool"], "run_command");

        let asked = render_decision(
            with_suggestions(Decided::pending("t".into(), 9, "a")),
            &tool(),
        );
        assert_eq!(asked.suggestions.len(), 1);
        assert!(asked.body.is_none());
    }

    #[test]
    fn a_retry_that_is_refused_does_not_echo_its_token() {
        let refused = Decided {
            token_id: Some("t1".into()),
            ..Decided::deny(DenyCode::ApprovalInvalid, "approval token revoked")
        };
        let r = render_decision(refused, &exec());
        assert_eq!(r.approval_token, None);
        assert_eq!(r.retry_after_ms, None);
    }

    #[test]
    fn a_policy_deny_without_a_code_reads_as_policy_denied() {
        let mut deny = Decided::deny(DenyCode::PolicyDenied, "no");
        deny.code = None;
        let body = render_decision(deny, &tool()).body.unwrap();
        assert_eq!(body["reason"], "policy_denied");
    }
}
