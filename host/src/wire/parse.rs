//! A request line to a [`Request`], or the [`RequestError`] the contract answers it with.

use super::*;

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
