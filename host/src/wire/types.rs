//! The request and answer types of the contract, with their wire spellings.

use super::*;

/// A request to decide an action, fresh or a retry with a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecideRequest {
    /// What is asked.
    pub action: Action,
    /// The client's own fingerprint of the request; on a retry it must match the server's.
    pub request_fingerprint: Option<String>,
    /// Present on a retry after `pending_hitl`.
    pub approval_token: Option<String>,
}

/// An operator's request to approve or revoke a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManageRequest {
    /// Approve or revoke.
    pub operation: Operation,
    /// The token (empty answers `not_found`, as in firma).
    pub token_id: String,
    /// The operator's management token, when the client sent one.
    pub management_token: Option<crate::auth::ManagementToken>,
}

/// A management query with the credential it came with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryRequest {
    /// What is asked.
    pub query: Query,
    /// The operator's management token, when the client sent one.
    pub management_token: Option<crate::auth::ManagementToken>,
}

impl From<Query> for QueryRequest {
    fn from(query: Query) -> Self {
        Self {
            query,
            management_token: None,
        }
    }
}

/// A request to stream token events (Gavel addition: `{"action": "watch"}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchRequest {
    /// The operator's management token, when the client sent one.
    pub management_token: Option<crate::auth::ManagementToken>,
}

/// A management query (Gavel addition): list live tokens, or show one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    /// `local.exec.list`: pending and approved tokens.
    List,
    /// `local.exec.show` with `token_id`.
    Show(String),
}

/// One parsed request line.
#[derive(Debug, Clone, PartialEq, Eq)]
#[expect(
    clippy::large_enum_variant,
    reason = "lives on the stack for one request; boxing would add an allocation per decision"
)]
pub enum Request {
    /// `local.exec` or `tool.call`.
    Decide(DecideRequest),
    /// `local.exec.approve` or `local.exec.revoke`.
    Manage(ManageRequest),
    /// `local.exec.list` or `local.exec.show`.
    Query(QueryRequest),
    /// `watch`: the connection becomes a stream of token events, one line each.
    Watch(WatchRequest),
}

/// The `decision` values of a governance response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WireDecision {
    /// Run it.
    Allow,
    /// Do not run it.
    Deny,
    /// Wait for a human; retry with the token.
    PendingHitl,
}

/// A governance answer. Empty fields are omitted, as the contract requires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecideResponse {
    /// The answer.
    pub decision: WireDecision,
    /// Why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The token to retry with (`pending_hitl` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_token: Option<String>,
    /// When to retry (`pending_hitl` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
    /// Gavel addition, on `tool.call` and network answers only (never on `local.exec`): rules
    /// that would allow this next time, one group per subcommand.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub suggestions: Vec<Vec<WireSuggestion>>,
    /// Gavel addition, on denials of `http.request`, `connect` and `upgrade`: the HTTP status
    /// the client should answer with (403).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Gavel addition, on denials of `http.request`, `connect`, `upgrade` and `tool.call`: the
    /// body the client should answer with (see `docs/interceptors.md`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<serde_json::Value>,
}

/// One suggested rule on the wire (the host's [`Suggestion`](crate::decision::Suggestion)).
pub type WireSuggestion = crate::decision::Suggestion;

impl DecideResponse {
    /// A `deny` with a reason.
    pub fn deny(reason: impl Into<String>) -> Self {
        Self::new(WireDecision::Deny, reason)
    }

    /// An answer with a decision and a reason, nothing else.
    pub fn new(decision: WireDecision, reason: impl Into<String>) -> Self {
        Self {
            decision,
            reason: Some(reason.into()),
            approval_token: None,
            retry_after_ms: None,
            suggestions: Vec::new(),
            status: None,
            body: None,
        }
    }

    /// Attach the body (and status) a client of `kind` should answer a denial with. `local.exec`
    /// answers keep the contract's exact shape and get none.
    pub(crate) fn attach_denial(
        &mut self,
        kind: &str,
        action: Option<&Action>,
        code: crate::decision::DenyCode,
    ) {
        if self.decision != WireDecision::Deny || !carries_body(kind) {
            return;
        }
        let detail = self.reason.as_deref().unwrap_or_default();
        if crate::denial::denial_context(action) == crate::denial::DenialContext::Api {
            self.status = Some(crate::denial::DENY_STATUS);
        }
        self.body = Some(crate::denial::body_for(action, code, detail));
    }
}

/// A management answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManageResponse {
    /// The outcome.
    pub outcome: Outcome,
    /// Why, when there is something to say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl ManageResponse {
    /// An outcome with a reason.
    pub fn new(outcome: Outcome, reason: impl Into<String>) -> Self {
        Self {
            outcome,
            reason: Some(reason.into()),
        }
    }
}

/// An approval-request record: what an operator sees of a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalRecord {
    /// The token.
    pub token_id: String,
    /// Its state.
    pub state: crate::tokens::TokenState,
    /// When it was issued (ms since the Unix epoch).
    pub created_at_ms: u64,
    /// When it stops being usable.
    pub expires_at_ms: u64,
    /// The time a human was given to decide: from issue to expiry, in milliseconds (the
    /// asking policy's approval timeout, capped at the host's token lifetime).
    pub timeout_ms: u64,
    /// Milliseconds left before it expires (0 once expired).
    pub remaining_ms: u64,
    /// `local.exec`, `tool.call`, `http.request`, `connect` or `upgrade`.
    pub action: String,
    /// The command line, tool call or request with secrets masked (`***`) by the redaction
    /// rules of `docs/redaction.md`; with `audit_redact_args`, arguments are left out entirely.
    pub summary: String,
    /// What the action does: `read`, `write`, `execute`, `network` or `destructive`.
    pub effect_class: crate::decision::EffectClass,
    /// How risky it is: `low`, `medium`, `high` or `critical`.
    pub risk_class: crate::decision::RiskClass,
    /// The session.
    pub session_id: String,
    /// The sandbox.
    pub sandbox_id: String,
    /// The agent, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// The request's fingerprint.
    pub fingerprint: String,
    /// The policy that asked for a human.
    pub policy: String,
    /// The rule that asked, if named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// Why it asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What an operator may do now: `approve`, `revoke` (empty once the token is final).
    pub allowed_decisions: Vec<String>,
    /// The policies that asked for a human, with their component digests and rules.
    pub policy_refs: Vec<crate::decision::PolicyRef>,
    /// `sha256:` digest of the policy chain in force when the token was issued (every policy's
    /// name, component, interface version and configuration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain_digest: Option<String>,
    /// Whether that chain is still the one in force.
    pub chain_current: bool,
    /// Rules that would allow this next time, one group per subcommand (a `local.exec` answer
    /// cannot carry them, so the operator finds them here).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub suggestions: Vec<Vec<WireSuggestion>>,
}

/// The answer to a management query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueryResponse {
    /// `ok`, `not_found`, or `denied` when the store cannot be reached.
    pub outcome: Outcome,
    /// Why, when not ok.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// `local.exec.list`: the live tokens, oldest first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<Vec<ApprovalRecord>>,
    /// `local.exec.show`: the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<ApprovalRecord>,
}

/// Any answer line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Response {
    /// To a decide request (or a line that was not a request).
    Decide(DecideResponse),
    /// To a management request.
    Manage(ManageResponse),
    /// To a management query (rare, and large: boxed).
    Query(Box<QueryResponse>),
}

impl Response {
    /// The JSON line, without its newline.
    pub fn to_line(&self) -> String {
        // Serializing these plain structs cannot fail; fall back to a fixed deny regardless.
        serde_json::to_string(self).unwrap_or_else(|_| {
            r#"{"decision":"deny","reason":"internal error: could not encode the answer"}"#.into()
        })
    }
}

/// Whether a wire action's denials carry a `body` (and, API-shaped, a `status`).
pub(super) fn carries_body(kind: &str) -> bool {
    matches!(kind, "tool.call" | "http.request" | "connect" | "upgrade")
}
