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
use crate::answer::Decided;
use crate::decision::Verdict;
use crate::denial::{body_for, deny_body, to_bytes};
use crate::host::{Operator, PolicyHost};
use crate::wire::DecideRequest;

use crate::decision::DenyCode;
pub use crate::denial::{
    AbortReason, DENY_STATUS, DenialContext, abort_body_json, denial_context, deny_body_json,
    tool_denial_body_json,
};

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
        let answer = self
            .decided(&request, Operator::default(), self.common_share())
            .await;
        interception(answer, &request.action)
    }
}

/// An interceptor's rendering of a decide flow's answer: the counterpart of the socket's
/// `wire::render_decision`, attaching the body a denial of `action` is answered with.
fn interception(answer: Decided, action: &Action) -> Interception {
    match answer.verdict {
        Verdict::Allow => Interception::Allow {
            reason: answer.reason,
        },
        Verdict::Ask => Interception::Pending {
            approval_token: answer.token_id.unwrap_or_default(),
            retry_after_ms: answer.retry_after_ms.unwrap_or_default(),
            reason: answer.reason,
        },
        Verdict::Deny => {
            let code = answer.deny_code().unwrap_or(DenyCode::PolicyDenied);
            let body = body_for(Some(action), code, &answer.reason);
            Interception::Deny {
                code,
                context: denial_context(Some(action)),
                body: to_bytes(&body),
                detail: answer.reason,
            }
        }
    }
}
