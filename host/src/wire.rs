//! The wire contract: one JSON object per line in, one per line out. Field names and spellings
//! are fixed by existing clients (`firma-run`, `firma token`); see the README's wire section.

use crate::action::{Action, Connect, Header, HttpRequest, LocalExec, ToolCall, Upgrade};
use crate::answer::{Decided, Found, Managed, Queried};
use crate::decision::Verdict;
use crate::tokens::{Operation, Outcome};
use serde::{Deserialize, Serialize};

/// Longest request line accepted, counting its newline (firma's limit): 65,535 bytes and a
/// `\n` are served; 65,536 and a `\n` close the connection unanswered.
pub const MAX_LINE: usize = 64 * 1024;

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

/// Why a line is not a request; each maps to the answer the contract prescribes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestError {
    /// Not JSON, not an object, no `action`, or a decide request missing a field: a `deny`
    /// whose reason starts with `malformed request:`.
    Malformed(String),
    /// An action nobody handles (another `local.exec.*` included): a `deny` naming it.
    UnknownAction(String),
    /// A management line without a `token_id` string: `unsupported_action`.
    UnsupportedManagement(String),
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

impl RequestError {
    /// The answer to `line`, which failed to parse with this error: the contract's answer,
    /// plus, for a line naming a network action or a tool call, the body its client must
    /// answer with (API-shaped, as no action could be read from the line).
    pub fn response_to(&self, line: &[u8]) -> Response {
        let mut response = self.response();
        if let (Response::Decide(d), Some(kind)) = (&mut response, body_kind_of(line)) {
            d.attach_denial(kind, None, crate::decision::DenyCode::MalformedRequest);
        }
        response
    }

    /// The answer the contract prescribes for this error.
    pub fn response(&self) -> Response {
        match self {
            RequestError::Malformed(why) => {
                Response::Decide(DecideResponse::deny(format!("malformed request: {why}")))
            }
            // firma's exact wording: scripts written against it match on it.
            RequestError::UnknownAction(action) => {
                Response::Decide(DecideResponse::deny(format!("unknown action '{action}'")))
            }
            RequestError::UnsupportedManagement(why) => {
                Response::Manage(ManageResponse::new(Outcome::UnsupportedAction, why.clone()))
            }
        }
    }
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    action: Option<std::borrow::Cow<'a, str>>,
}

#[derive(Deserialize)]
struct LocalExecLine {
    executable: String,
    #[serde(default)]
    args: Vec<String>,
    sandbox_id: String,
    session_id: String,
    #[serde(default)]
    agent_id: Option<String>,
    profile: String,
    hitl_mode: String,
    #[serde(default)]
    request_fingerprint: Option<String>,
    #[serde(default)]
    approval_token: Option<String>,
}

#[derive(Deserialize)]
struct ToolCallLine {
    tool: String,
    #[serde(default)]
    arg: String,
    sandbox_id: String,
    session_id: String,
    #[serde(default)]
    agent_id: Option<String>,
    #[serde(default)]
    project: Option<String>,
    #[serde(default)]
    project_root: Option<String>,
    #[serde(default)]
    cwd: Option<String>,
    #[serde(default)]
    request_fingerprint: Option<String>,
    #[serde(default)]
    approval_token: Option<String>,
}

#[derive(Deserialize)]
struct HttpRequestLine {
    method: String,
    #[serde(default)]
    scheme: Option<String>,
    host: String,
    #[serde(default)]
    port: Option<u16>,
    path: String,
    #[serde(default)]
    query: Option<String>,
    #[serde(default)]
    headers: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    body_size: Option<u64>,
    sandbox_id: String,
    session_id: String,
    #[serde(default)]
    agent_id: Option<String>,
    #[serde(default)]
    request_fingerprint: Option<String>,
    #[serde(default)]
    approval_token: Option<String>,
}

/// A `connect` or `upgrade` line: the action's own fields as named on the wire, plus a retry's.
#[derive(Deserialize)]
struct NetworkLine<T> {
    #[serde(flatten)]
    action: T,
    #[serde(default)]
    request_fingerprint: Option<String>,
    #[serde(default)]
    approval_token: Option<String>,
}

#[derive(Deserialize)]
struct ListLine {
    #[serde(default)]
    management_token: Option<crate::auth::ManagementToken>,
}

#[derive(Deserialize)]
struct ManageLine {
    token_id: Option<String>,
    #[serde(default)]
    management_token: Option<crate::auth::ManagementToken>,
}

/// Parse one request line (without its newline). A NUL anywhere, or a control character in
/// a name, an id, a host, a token or a fingerprint, makes the request malformed.
pub fn parse_request(line: &[u8]) -> Result<Request, RequestError> {
    let request = parse_line(line)?;
    match &request {
        Request::Decide(r) => {
            let kind = r.action.kind();
            crate::normalize::fields(&r.action)
                .and_then(|()| {
                    let token = r.approval_token.as_deref().unwrap_or_default();
                    crate::normalize::no_control("approval_token", token)
                })
                .and_then(|()| {
                    let fingerprint = r.request_fingerprint.as_deref().unwrap_or_default();
                    crate::normalize::no_control("request_fingerprint", fingerprint)
                })
                .map_err(|why| RequestError::Malformed(format!("{kind}: {why}")))?;
        }
        Request::Manage(ManageRequest { token_id, .. })
        | Request::Query(QueryRequest {
            query: Query::Show(token_id),
            ..
        }) => {
            crate::normalize::no_control("token_id", token_id)
                .map_err(RequestError::UnsupportedManagement)?;
        }
        Request::Query(QueryRequest {
            query: Query::List, ..
        })
        | Request::Watch(_) => {}
    }
    Ok(request)
}

/// Parse one request line into its request, before the character checks.
fn parse_line(line: &[u8]) -> Result<Request, RequestError> {
    if line.len() > MAX_LINE {
        return Err(RequestError::Malformed(format!(
            "the line is {} bytes, over the {MAX_LINE}-byte limit",
            line.len()
        )));
    }
    let envelope: Envelope<'_> = serde_json::from_slice(line).map_err(|e| {
        RequestError::Malformed(if e.is_data() {
            "expected a JSON object with an `action` field".to_owned()
        } else {
            format!("not JSON: {e}")
        })
    })?;
    let Some(action) = envelope.action else {
        return Err(RequestError::Malformed("missing field `action`".into()));
    };
    let malformed = |e: serde_json::Error| RequestError::Malformed(format!("{action}: {e}"));
    match action.as_ref() {
        "local.exec" => {
            let l: LocalExecLine = serde_json::from_slice(line).map_err(malformed)?;
            Ok(Request::Decide(DecideRequest {
                action: Action::LocalExec(LocalExec {
                    executable: l.executable,
                    args: l.args,
                    session_id: l.session_id,
                    sandbox_id: l.sandbox_id,
                    agent_id: l.agent_id,
                    profile: l.profile,
                    hitl_mode: l.hitl_mode,
                }),
                request_fingerprint: l.request_fingerprint,
                approval_token: l.approval_token,
            }))
        }
        "tool.call" => {
            let l: ToolCallLine = serde_json::from_slice(line).map_err(malformed)?;
            Ok(Request::Decide(DecideRequest {
                action: Action::ToolCall(ToolCall {
                    tool: l.tool,
                    arg: l.arg,
                    session_id: l.session_id,
                    sandbox_id: l.sandbox_id,
                    agent_id: l.agent_id,
                    project_id: l.project,
                    project_root: l.project_root,
                    cwd: l.cwd,
                }),
                request_fingerprint: l.request_fingerprint,
                approval_token: l.approval_token,
            }))
        }
        "http.request" => {
            let l: HttpRequestLine = serde_json::from_slice(line).map_err(malformed)?;
            let scheme = l.scheme.unwrap_or_else(|| "https".into());
            let port = match l.port {
                Some(port) => port,
                None if scheme.eq_ignore_ascii_case("http") => 80,
                None => 443,
            };
            let request = Action::HttpRequest(HttpRequest {
                method: l.method,
                scheme,
                host: l.host,
                port,
                path: l.path,
                query: l.query,
                headers: l
                    .headers
                    .into_iter()
                    .map(|(name, value)| Header { name, value })
                    .collect(),
                body_size: l.body_size,
                session_id: l.session_id,
                sandbox_id: l.sandbox_id,
                agent_id: l.agent_id,
            });
            network(&action, request, l.request_fingerprint, l.approval_token)
        }
        "connect" => {
            let l: NetworkLine<Connect> = serde_json::from_slice(line).map_err(malformed)?;
            let request = Action::Connect(l.action);
            network(&action, request, l.request_fingerprint, l.approval_token)
        }
        "upgrade" => {
            let l: NetworkLine<Upgrade> = serde_json::from_slice(line).map_err(malformed)?;
            let request = Action::Upgrade(l.action);
            network(&action, request, l.request_fingerprint, l.approval_token)
        }
        "local.exec.approve" | "local.exec.revoke" => {
            let operation = if action == "local.exec.approve" {
                Operation::Approve
            } else {
                Operation::Revoke
            };
            let l: ManageLine = serde_json::from_slice(line).map_err(|e| {
                RequestError::UnsupportedManagement(format!("malformed {action} request: {e}"))
            })?;
            match l.token_id {
                Some(token_id) => Ok(Request::Manage(ManageRequest {
                    operation,
                    token_id,
                    management_token: l.management_token,
                })),
                None => Err(RequestError::UnsupportedManagement(format!(
                    "{action} needs a `token_id` field naming the token"
                ))),
            }
        }
        "local.exec.list" => {
            let l: ListLine = serde_json::from_slice(line).map_err(|e| {
                RequestError::UnsupportedManagement(format!("malformed {action} request: {e}"))
            })?;
            Ok(Request::Query(QueryRequest {
                query: Query::List,
                management_token: l.management_token,
            }))
        }
        "watch" => {
            let l: ListLine = serde_json::from_slice(line).map_err(|e| {
                RequestError::UnsupportedManagement(format!("malformed {action} request: {e}"))
            })?;
            Ok(Request::Watch(WatchRequest {
                management_token: l.management_token,
            }))
        }
        "local.exec.show" => {
            let l: ManageLine = serde_json::from_slice(line).map_err(|e| {
                RequestError::UnsupportedManagement(format!("malformed {action} request: {e}"))
            })?;
            match l.token_id {
                Some(token_id) => Ok(Request::Query(QueryRequest {
                    query: Query::Show(token_id),
                    management_token: l.management_token,
                })),
                None => Err(RequestError::UnsupportedManagement(format!(
                    "{action} needs a `token_id` field naming the token"
                ))),
            }
        }
        other => Err(RequestError::UnknownAction(other.to_owned())),
    }
}

/// A network request, given its one spelling (or refused as malformed, naming the action).
fn network(
    action: &str,
    request: Action,
    request_fingerprint: Option<String>,
    approval_token: Option<String>,
) -> Result<Request, RequestError> {
    let action = crate::normalize::action(request)
        .map_err(|why| RequestError::Malformed(format!("{action}: {why}")))?;
    Ok(Request::Decide(DecideRequest {
        action,
        request_fingerprint,
        approval_token,
    }))
}

/// Whether a wire action's denials carry a `body` (and, API-shaped, a `status`).
fn carries_body(kind: &str) -> bool {
    matches!(kind, "tool.call" | "http.request" | "connect" | "upgrade")
}

/// The `action` a line names, if it is one whose denials carry a body: so that a malformed
/// network request is still answered in the shape its client expects.
fn body_kind_of(line: &[u8]) -> Option<&'static str> {
    let envelope: Envelope<'_> = serde_json::from_slice(line).ok()?;
    match envelope.action.as_deref()? {
        "tool.call" => Some("tool.call"),
        "http.request" => Some("http.request"),
        "connect" => Some("connect"),
        "upgrade" => Some("upgrade"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason_of(line: &str) -> String {
        match parse_request(line.as_bytes()).unwrap_err().response() {
            Response::Decide(d) => {
                assert_eq!(d.decision, WireDecision::Deny);
                d.reason.unwrap()
            }
            Response::Manage(m) => {
                assert_eq!(m.outcome, Outcome::UnsupportedAction);
                m.reason.unwrap()
            }
            Response::Query(q) => panic!("unexpected query answer {q:?}"),
        }
    }

    #[test]
    fn malformed_lines_are_denied_with_the_contract_phrase() {
        for line in [
            "not json",
            "[1,2]",
            "{}",
            "{\"action\": 5}",
            "{\"action\":\"local.exec\"}",
        ] {
            let reason = reason_of(line);
            assert!(reason.starts_with("malformed request:"), "{line}: {reason}");
        }
        let reason = reason_of(
            r#"{"action":"local.exec","sandbox_id":"s","session_id":"x","profile":"p","hitl_mode":"h"}"#,
        );
        assert!(reason.contains("executable"), "{reason}");
    }

    #[test]
    fn unknown_actions_are_named() {
        assert!(reason_of(r#"{"action":"launch.missiles"}"#).contains("launch.missiles"));
    }

    #[test]
    fn management_without_token_is_unsupported_and_other_local_exec_actions_unknown() {
        assert!(reason_of(r#"{"action":"local.exec.approve"}"#).contains("token_id"));
        let Response::Decide(d) =
            parse_request(br#"{"action":"local.exec.delete","token_id":"t"}"#)
                .unwrap_err()
                .response()
        else {
            panic!("an unknown local.exec.* action must get a governance deny")
        };
        assert_eq!(
            d.reason.as_deref(),
            Some("unknown action 'local.exec.delete'")
        );
    }

    #[test]
    fn an_empty_token_id_is_a_request_for_no_token() {
        let r = parse_request(br#"{"action":"local.exec.revoke","token_id":""}"#).unwrap();
        assert!(matches!(r, Request::Manage(m) if m.token_id.is_empty()));
    }

    #[test]
    fn unknown_fields_are_ignored_and_args_default_to_empty() {
        let r = parse_request(br#"{"action":"local.exec","executable":"ls","sandbox_id":"s","session_id":"x","profile":"p","hitl_mode":"h","extra":{"a":1}}"#).unwrap();
        let Request::Decide(d) = r else {
            panic!("not a decide request")
        };
        let Action::LocalExec(e) = d.action else {
            panic!("not local.exec")
        };
        assert!(e.args.is_empty());
    }

    #[test]
    fn a_management_token_is_parsed_and_never_debug_printed() {
        let r = parse_request(
            br#"{"action":"local.exec.approve","token_id":"t","management_token":"s3cret"}"#,
        )
        .unwrap();
        let Request::Manage(m) = &r else {
            panic!("not a management request")
        };
        assert!(m.management_token.as_ref().unwrap().matches("s3cret"));
        assert!(!format!("{r:?}").contains("s3cret"));
    }

    #[test]
    fn oversized_lines_are_malformed() {
        let line = vec![b' '; MAX_LINE + 1];
        assert!(matches!(
            parse_request(&line),
            Err(RequestError::Malformed(_))
        ));
    }

    #[test]
    fn empty_fields_are_omitted_from_answers() {
        let r = Response::Decide(DecideResponse {
            reason: None,
            ..DecideResponse::new(WireDecision::Allow, "")
        });
        assert_eq!(r.to_line(), r#"{"decision":"allow"}"#);
        let m = Response::Manage(ManageResponse {
            outcome: Outcome::AlreadyConsumed,
            reason: None,
        });
        assert_eq!(m.to_line(), r#"{"outcome":"already_consumed"}"#);
    }
}

/// One line read from a stream by [`read_line`].
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A whole line, without its newline (a last line without one counts too).
    Complete(Vec<u8>),
    /// A line longer than [`MAX_LINE`] with its newline; it was read up to its newline and
    /// discarded.
    TooLong,
    /// The stream ended.
    Eof,
}

/// Read one newline-terminated line, never buffering more than [`MAX_LINE`] bytes of it.
pub async fn read_line<R>(reader: &mut R, buf: &mut Vec<u8>) -> std::io::Result<Line>
where
    R: tokio::io::AsyncBufRead + Unpin,
{
    use tokio::io::AsyncBufReadExt;
    buf.clear();
    let mut too_long = false;
    loop {
        let chunk = reader.fill_buf().await?;
        if chunk.is_empty() {
            return Ok(match (too_long, buf.is_empty()) {
                (true, _) => Line::TooLong,
                (false, true) => Line::Eof,
                (false, false) => Line::Complete(std::mem::take(buf)),
            });
        }
        let (part, done) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (&chunk[..i], Some(i + 1)),
            None => (chunk, None),
        };
        if !too_long {
            // The limit counts the newline, as firma's does.
            let newline = usize::from(done.is_some());
            if buf.len() + part.len() + newline > MAX_LINE {
                too_long = true;
                buf.clear();
            } else {
                buf.extend_from_slice(part);
            }
        }
        let used = done.unwrap_or(chunk.len());
        reader.consume(used);
        if done.is_some() {
            if too_long {
                return Ok(Line::TooLong);
            }
            if buf.last() == Some(&b'\r') {
                buf.pop();
            }
            return Ok(Line::Complete(std::mem::take(buf)));
        }
    }
}

#[cfg(test)]
mod read_line_tests {
    use super::*;

    #[tokio::test]
    async fn lines_are_split_and_capped() {
        let mut input = Vec::new();
        input.extend_from_slice(b"first\n");
        input.extend(std::iter::repeat_n(b'x', MAX_LINE + 10));
        input.extend_from_slice(b"\nlast");
        let mut reader = tokio::io::BufReader::new(&input[..]);
        let mut buf = Vec::new();
        assert_eq!(
            read_line(&mut reader, &mut buf).await.unwrap(),
            Line::Complete(b"first".to_vec())
        );
        assert_eq!(
            read_line(&mut reader, &mut buf).await.unwrap(),
            Line::TooLong
        );
        assert_eq!(
            read_line(&mut reader, &mut buf).await.unwrap(),
            Line::Complete(b"last".to_vec())
        );
        assert_eq!(read_line(&mut reader, &mut buf).await.unwrap(), Line::Eof);
    }

    #[tokio::test]
    async fn the_limit_counts_the_newline() {
        let mut buf = Vec::new();
        // (content length, newline?, fits); a tiny buffer splits every line across chunks.
        for (len, newline, fits) in [
            (MAX_LINE - 1, true, true),
            (MAX_LINE, true, false),
            (MAX_LINE, false, true),
            (MAX_LINE + 1, false, false),
        ] {
            for capacity in [7, 8192] {
                let mut input = vec![b'x'; len];
                if newline {
                    input.push(b'\n');
                }
                let mut reader = tokio::io::BufReader::with_capacity(capacity, &input[..]);
                let got = read_line(&mut reader, &mut buf).await.unwrap();
                let want = if fits {
                    Line::Complete(vec![b'x'; len])
                } else {
                    Line::TooLong
                };
                assert_eq!(
                    got, want,
                    "{len} bytes, newline {newline}, capacity {capacity}"
                );
            }
        }
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
