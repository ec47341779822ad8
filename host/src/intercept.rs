//! The interceptor API: what an HTTP proxy, a CONNECT proxy, a WebSocket gateway or an agent's
//! tool loop calls before it lets a call through, and the bodies it answers a refused call with.
//!
//! Every call runs the same decision flow as the socket (policy chain, approval tokens, audit,
//! metrics) and returns an [`Interception`]: allow, deny with a denial context, or pending with
//! a token. A denial's context comes from the action: a tool call is denied in the tool shape
//! (the agent loop goes on with a tool result); an HTTP request, CONNECT or upgrade, or a call
//! that could not be understood at all, in the API shape (HTTP 403, a terminal failure). The
//! body shapes are documented in `docs/interceptors.md`.

use crate::action::{Action, Connect, HttpRequest, ToolCall, Upgrade};
use crate::host::{Operator, PolicyHost};
use crate::wire::{DecideRequest, WireDecision};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The HTTP status of an API-shaped denial.
pub const DENY_STATUS: u16 = 403;

/// Why a call was refused, as a stable code agents and dashboards can branch on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DenyCode {
    /// A policy denied it (or no policy governs this kind of action).
    PolicyDenied,
    /// A policy failed (trapped, timed out, ran out of memory, answered garbage); failing is
    /// denying.
    PolicyFailed,
    /// The approval token presented is unknown, used, revoked, expired or for another request.
    ApprovalInvalid,
    /// The request could not be understood.
    MalformedRequest,
    /// The request came from a sandbox this host does not serve.
    SandboxMismatch,
    /// Something the answer depends on (token store, audit log) is unavailable.
    Unavailable,
}

impl DenyCode {
    /// The code as it appears in bodies.
    pub fn as_str(self) -> &'static str {
        match self {
            DenyCode::PolicyDenied => "policy_denied",
            DenyCode::PolicyFailed => "policy_failed",
            DenyCode::ApprovalInvalid => "approval_invalid",
            DenyCode::MalformedRequest => "malformed_request",
            DenyCode::SandboxMismatch => "sandbox_mismatch",
            DenyCode::Unavailable => "unavailable",
        }
    }
}

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

/// What an interceptor should do with a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Interception {
    /// Let it through.
    Allow {
        /// Why, naming the policy and rule (or the approval) that allowed it.
        reason: String,
    },
    /// Refuse it, answering with `body` (and, in the API context, HTTP 403).
    Deny {
        /// A stable code for the cause.
        code: DenyCode,
        /// The human-readable reason.
        detail: String,
        /// The shape of the answer.
        context: DenialContext,
        /// The canonical JSON body to answer with, already rendered for `context`.
        body: Vec<u8>,
    },
    /// Hold it until a human approves; retry with the token after `retry_after_ms`.
    Pending {
        /// The single-use approval token.
        approval_token: String,
        /// When to retry.
        retry_after_ms: u64,
        /// Why a human must approve.
        reason: String,
    },
}

impl Interception {
    /// The HTTP status an HTTP-facing interceptor answers a denial with: 403 in the API
    /// context; `None` otherwise.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            Interception::Deny {
                context: DenialContext::Api,
                ..
            } => Some(DENY_STATUS),
            _ => None,
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

fn to_bytes(value: &Value) -> Vec<u8> {
    // A `Value` of strings, numbers and booleans always serializes.
    serde_json::to_vec(value).unwrap_or_default()
}

impl PolicyHost {
    /// Decide an HTTP request an interceptor holds; `approval_token` on a retry after
    /// `Pending`.
    pub async fn decide_http(
        &self,
        request: HttpRequest,
        approval_token: Option<String>,
    ) -> Interception {
        self.intercept(Action::HttpRequest(request), approval_token)
            .await
    }

    /// Decide a CONNECT tunnel before it is established.
    pub async fn decide_connect(
        &self,
        request: Connect,
        approval_token: Option<String>,
    ) -> Interception {
        self.intercept(Action::Connect(request), approval_token)
            .await
    }

    /// Decide an HTTP upgrade (for example a WebSocket handshake) before it is relayed.
    pub async fn decide_upgrade(
        &self,
        request: Upgrade,
        approval_token: Option<String>,
    ) -> Interception {
        self.intercept(Action::Upgrade(request), approval_token)
            .await
    }

    /// Decide a tool call before the tool runs.
    pub async fn decide_tool_call(
        &self,
        request: ToolCall,
        approval_token: Option<String>,
    ) -> Interception {
        self.intercept(Action::ToolCall(request), approval_token)
            .await
    }

    /// Decide any action as an interceptor: the socket's decision flow (chain, tokens, audit,
    /// metrics), answered as an [`Interception`].
    /// The action is first given its one spelling, as the socket gives it (host lowercased, IP
    /// addresses canonical, method uppercased, ...); one that cannot be is denied as malformed.
    pub async fn intercept(&self, action: Action, approval_token: Option<String>) -> Interception {
        let action = match crate::normalize::action(action) {
            Ok(action) => action,
            Err(why) => {
                let code = DenyCode::MalformedRequest;
                let detail = format!("malformed request: {why}");
                return Interception::Deny {
                    code,
                    context: DenialContext::Api,
                    body: to_bytes(&deny_body(code, &detail)),
                    detail,
                };
            }
        };
        let request = DecideRequest {
            action,
            request_fingerprint: None,
            approval_token,
        };
        let (response, code) = self.decide_coded(&request, Operator::default()).await;
        let reason = response.reason.unwrap_or_default();
        // The decision flow already rendered the body for the kinds that carry one.
        let rendered = response.body;
        match response.decision {
            WireDecision::Allow => Interception::Allow { reason },
            WireDecision::PendingHitl => Interception::Pending {
                approval_token: response.approval_token.unwrap_or_default(),
                retry_after_ms: response.retry_after_ms.unwrap_or_default(),
                reason,
            },
            WireDecision::Deny => {
                let code = code.unwrap_or(DenyCode::PolicyDenied);
                let action = Some(&request.action);
                let body = rendered.unwrap_or_else(|| body_for(action, code, &reason));
                Interception::Deny {
                    code,
                    context: denial_context(action),
                    body: to_bytes(&body),
                    detail: reason,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let tool = Action::ToolCall(ToolCall {
            tool: "t".into(),
            arg: String::new(),
            session_id: "s".into(),
            sandbox_id: "b".into(),
            agent_id: None,
            project_id: None,
            project_root: None,
            cwd: None,
        });
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
