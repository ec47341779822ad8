//! Denials as clients see them: the denial context of an action, and the canonical deny, tool
//! and abort bodies (documented in `docs/interceptors.md`). A leaf: the wire renderer and the
//! interceptor adapter both draw on it.

use crate::action::Action;
use crate::decision::DenyCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The HTTP status of an API-shaped denial.
pub const DENY_STATUS: u16 = 403;

/// The shape a denial must take for the transport it came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DenialContext {
    /// A tool call: the agent loop continues; the body is a structured tool result.
    Tool,
    /// An API call (HTTP, CONNECT, upgrade, or anything not understood): a terminal failure;
    /// the body is the canonical deny JSON, sent with HTTP 403.
    Api,
}

/// Why a call a policy approved was given up before the target answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AbortReason {
    /// The connector to the target exceeded its timeout.
    ConnectorTimeout,
    /// The connection to the target could not be made.
    ConnectionFailed,
    /// The target closed the connection before answering.
    UpstreamClosed,
    /// The approval behind the call was revoked while it was in flight.
    ApprovalRevoked,
}

impl AbortReason {
    /// The code as it appears in bodies.
    pub fn as_str(self) -> &'static str {
        match self {
            AbortReason::ConnectorTimeout => "connector_timeout",
            AbortReason::ConnectionFailed => "connection_failed",
            AbortReason::UpstreamClosed => "upstream_closed",
            AbortReason::ApprovalRevoked => "approval_revoked",
        }
    }
}

/// The denial context of an action: tool calls are tool-shaped; HTTP, CONNECT, upgrade, a
/// process start, and no action at all (a request that could not be normalized) are API-shaped,
/// the fail-closed shape: a tool result for something that was not a tool call would hide the
/// failure from the caller.
pub fn denial_context(action: Option<&Action>) -> DenialContext {
    match action {
        Some(Action::ToolCall(_)) => DenialContext::Tool,
        _ => DenialContext::Api,
    }
}

/// The canonical API deny body (sent with HTTP 403):
/// `{"denied":true,"reason":CODE,"detail":TEXT,"status":403}`.
pub fn deny_body_json(code: DenyCode, detail: &str) -> Vec<u8> {
    to_bytes(&deny_body(code, detail))
}

/// The canonical tool denial: a tool result the agent reads like any other, naming the action
/// class (the effect class: `read`, `write`, `execute`, `network`, `destructive`) and the tool.
pub fn tool_denial_body_json(
    code: DenyCode,
    detail: &str,
    action_class: &str,
    tool: &str,
) -> Vec<u8> {
    to_bytes(&tool_denial_body(code, detail, action_class, tool))
}

/// The canonical abort body for a call that was approved but not completed:
/// `{"aborted":true,"reason":CODE,"detail":TEXT}`. Agents tell it from a denial by `aborted`.
pub fn abort_body_json(reason: AbortReason, detail: &str) -> Vec<u8> {
    to_bytes(&json!({
        "aborted": true,
        "reason": reason.as_str(),
        "detail": detail,
    }))
}

pub(crate) fn deny_body(code: DenyCode, detail: &str) -> Value {
    json!({
        "denied": true,
        "reason": code.as_str(),
        "detail": detail,
        "status": DENY_STATUS,
    })
}

pub(crate) fn tool_denial_body(
    code: DenyCode,
    detail: &str,
    action_class: &str,
    tool: &str,
) -> Value {
    json!({
        "type": "tool_result",
        "is_error": true,
        "denied": true,
        "tool": tool,
        "action_class": action_class,
        "reason": code.as_str(),
        "content": format!("Gavel denied the {action_class} tool call `{tool}`: {detail}"),
    })
}

/// The body for a denial of `action` (or of a request that named no usable action).
pub(crate) fn body_for(action: Option<&Action>, code: DenyCode, detail: &str) -> Value {
    match action {
        Some(a @ Action::ToolCall(t)) => {
            tool_denial_body(code, detail, a.default_effect().as_str(), &t.tool)
        }
        _ => deny_body(code, detail),
    }
}

pub(crate) fn to_bytes(value: &Value) -> Vec<u8> {
    // A `Value` of strings, numbers and booleans always serializes.
    serde_json::to_vec(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::action::Connect;

    #[test]
    fn bodies_have_their_documented_shapes() {
        let deny: Value = serde_json::from_slice(&deny_body_json(DenyCode::PolicyDenied, "no"))
            .unwrap_or_default();
        assert_eq!(
            deny,
            json!({"denied": true, "reason": "policy_denied", "detail": "no", "status": 403})
        );
        let abort: Value =
            serde_json::from_slice(&abort_body_json(AbortReason::ConnectorTimeout, "slow"))
                .unwrap_or_default();
        assert_eq!(
            abort,
            json!({"aborted": true, "reason": "connector_timeout", "detail": "slow"})
        );
        let tool: Value = serde_json::from_slice(&tool_denial_body_json(
            DenyCode::ApprovalInvalid,
            "expired",
            "execute",
            "run_command",
        ))
        .unwrap_or_default();
        assert_eq!(tool["type"], "tool_result");
        assert_eq!(tool["is_error"], true);
        assert_eq!(tool["tool"], "run_command");
        assert_eq!(tool["action_class"], "execute");
        assert_eq!(tool["reason"], "approval_invalid");
        assert!(tool.get("aborted").is_none() && tool.get("status").is_none());
    }

    #[test]
    fn only_tool_calls_get_the_tool_shape() {
        assert_eq!(denial_context(None), DenialContext::Api);
        let tool = crate::action::fixtures::tool("t");
        assert_eq!(denial_context(Some(&tool)), DenialContext::Tool);
        let connect = Action::Connect(Connect {
            host: "h".into(),
            port: 443,
            session_id: "s".into(),
            sandbox_id: "b".into(),
            agent_id: None,
        });
        assert_eq!(denial_context(Some(&connect)), DenialContext::Api);
    }
}
