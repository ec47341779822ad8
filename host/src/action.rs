//! The actions a policy decides, in Gavel's own types (the WIT bindings stay in `policy`).

use crate::decision::EffectClass;
use serde::{Deserialize, Serialize};

/// A process start a sandbox launcher asks about (wire action `local.exec`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalExec {
    /// Path or name of the program.
    pub executable: String,
    /// Its arguments, without the program name.
    #[serde(default)]
    pub args: Vec<String>,
    /// The agent session that asks.
    pub session_id: String,
    /// The sandbox the process would start in.
    pub sandbox_id: String,
    /// The agent that asks, when the launcher knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// The sandbox profile.
    pub profile: String,
    /// How the launcher waits for a human, for example `async_token`.
    pub hitl_mode: String,
}

/// A tool call an agent asks about (wire action `tool.call`, a Gavel addition).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCall {
    /// Tool name, for example `run_command` or `read_file`.
    pub tool: String,
    /// The tool's argument: a command line, or a path for file tools.
    pub arg: String,
    /// The agent session that asks.
    pub session_id: String,
    /// The sandbox the tool would run in.
    pub sandbox_id: String,
    /// The agent that asks, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// The project the call belongs to, selecting project-scoped rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
    /// The project's root directory, for path rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_root: Option<String>,
    /// The working directory of the call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
}

/// One request header an interceptor chose to show policies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Lowercase name.
    pub name: String,
    /// The value as sent.
    pub value: String,
}

/// An agent's HTTP request, seen by an interceptor before it is sent (wire action
/// `http.request`). Built by the wire parser with the host lowercased, the method uppercased and
/// the port defaulted from the scheme.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpRequest {
    /// Uppercase, for example `GET`.
    pub method: String,
    /// `http` or `https`.
    pub scheme: String,
    /// Lowercase, without a trailing dot.
    pub host: String,
    /// The port.
    pub port: u16,
    /// As sent, starting with `/`.
    pub path: String,
    /// The query string without the `?`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// The headers the interceptor selected (from the wire: sorted by name, as a JSON object
    /// has no order).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<Header>,
    /// The body's length in bytes, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_size: Option<u64>,
    /// The agent session that asks.
    pub session_id: String,
    /// The sandbox the request comes from.
    pub sandbox_id: String,
    /// The agent that asks, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
}

/// A CONNECT tunnel an agent asks a proxy to open (wire action `connect`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connect {
    /// Lowercase, without a trailing dot.
    pub host: String,
    /// The port.
    pub port: u16,
    /// The agent session that asks.
    pub session_id: String,
    /// The sandbox the tunnel would start from.
    pub sandbox_id: String,
    /// The agent that asks, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
}

/// An HTTP upgrade, for example to a WebSocket (wire action `upgrade`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Upgrade {
    /// Lowercase, without a trailing dot.
    pub host: String,
    /// The request path, starting with `/`.
    pub path: String,
    /// The `Upgrade` header's protocol, lowercase, for example `websocket`.
    pub protocol: String,
    /// The agent session that asks.
    pub session_id: String,
    /// The sandbox the request comes from.
    pub sandbox_id: String,
    /// The agent that asks, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
}

/// Everything a policy may be asked to decide.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Action {
    /// A process start.
    LocalExec(LocalExec),
    /// A tool call.
    ToolCall(ToolCall),
    /// An HTTP request.
    HttpRequest(HttpRequest),
    /// A CONNECT tunnel.
    Connect(Connect),
    /// An HTTP upgrade.
    Upgrade(Upgrade),
}

impl Action {
    /// The wire name of the action's kind: `local.exec`, `tool.call`, `http.request`, `connect`
    /// or `upgrade`.
    pub fn kind(&self) -> &'static str {
        match self {
            Action::LocalExec(_) => "local.exec",
            Action::ToolCall(_) => "tool.call",
            Action::HttpRequest(_) => "http.request",
            Action::Connect(_) => "connect",
            Action::Upgrade(_) => "upgrade",
        }
    }

    /// The session the action belongs to.
    pub fn session_id(&self) -> &str {
        match self {
            Action::LocalExec(e) => &e.session_id,
            Action::ToolCall(t) => &t.session_id,
            Action::HttpRequest(h) => &h.session_id,
            Action::Connect(c) => &c.session_id,
            Action::Upgrade(u) => &u.session_id,
        }
    }

    /// The sandbox the action comes from.
    pub fn sandbox_id(&self) -> &str {
        match self {
            Action::LocalExec(e) => &e.sandbox_id,
            Action::ToolCall(t) => &t.sandbox_id,
            Action::HttpRequest(h) => &h.sandbox_id,
            Action::Connect(c) => &c.sandbox_id,
            Action::Upgrade(u) => &u.sandbox_id,
        }
    }

    /// The agent that asks, if known.
    pub fn agent_id(&self) -> Option<&str> {
        match self {
            Action::LocalExec(e) => e.agent_id.as_deref(),
            Action::ToolCall(t) => t.agent_id.as_deref(),
            Action::HttpRequest(h) => h.agent_id.as_deref(),
            Action::Connect(c) => c.agent_id.as_deref(),
            Action::Upgrade(u) => u.agent_id.as_deref(),
        }
    }

    /// The request fingerprint the contract defines: lowercase hex SHA-256 over the action's
    /// fields, each followed by a NUL byte, then the agent id (if any) with no NUL after it.
    pub fn fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        let mut field = |s: &str| {
            h.update(s.as_bytes());
            h.update([0u8]);
        };
        match self {
            Action::LocalExec(e) => {
                field(&e.executable);
                for arg in &e.args {
                    field(arg);
                }
            }
            Action::ToolCall(t) => {
                field(&t.tool);
                field(&t.arg);
            }
            // Gavel's network actions: the kind first, so a CONNECT and an upgrade to the same
            // host never share a fingerprint; then every field that changes what is sent. The
            // header list ends with an empty field so headers cannot shift into the body size.
            Action::HttpRequest(h) => {
                field("http.request");
                field(&h.method);
                field(&h.scheme);
                field(&h.host);
                field(&h.port.to_string());
                field(&h.path);
                field(&optional(h.query.as_deref()));
                for header in &h.headers {
                    field(&header.name);
                    field(&header.value);
                }
                field("");
                field(&optional(h.body_size.map(|n| n.to_string()).as_deref()));
            }
            Action::Connect(c) => {
                field("connect");
                field(&c.host);
                field(&c.port.to_string());
            }
            Action::Upgrade(u) => {
                field("upgrade");
                field(&u.host);
                field(&u.path);
                field(&u.protocol);
            }
        }
        field(self.session_id());
        field(self.sandbox_id());
        if let Some(agent) = self.agent_id() {
            h.update(agent.as_bytes());
        }
        hex(&h.finalize())
    }

    /// What the action does when no policy says: a process or an unknown tool executes; a tool
    /// named like a reader reads, like a writer writes, like a deleter destroys; an HTTP `GET`,
    /// `HEAD`, `OPTIONS` or `TRACE` reads, `DELETE` destroys, any other method writes; a tunnel or
    /// an upgrade opens a channel (network).
    pub fn default_effect(&self) -> EffectClass {
        match self {
            Action::LocalExec(_) => EffectClass::Execute,
            Action::ToolCall(t) => {
                // Every decision classifies its action: compare in place, without allocating.
                let starts = |prefixes: &[&str]| {
                    prefixes.iter().any(|p| {
                        t.tool
                            .get(..p.len())
                            .is_some_and(|head| head.eq_ignore_ascii_case(p))
                    })
                };
                if starts(&[
                    "read", "list", "get", "search", "grep", "glob", "view", "find",
                ]) {
                    EffectClass::Read
                } else if starts(&["delete", "remove", "rm", "drop"]) {
                    EffectClass::Destructive
                } else if starts(&[
                    "write", "edit", "create", "update", "patch", "move", "rename", "append",
                ]) {
                    EffectClass::Write
                } else {
                    EffectClass::Execute
                }
            }
            Action::HttpRequest(h) => match h.method.as_str() {
                "GET" | "HEAD" | "OPTIONS" | "TRACE" => EffectClass::Read,
                "DELETE" => EffectClass::Destructive,
                _ => EffectClass::Write,
            },
            Action::Connect(_) | Action::Upgrade(_) => EffectClass::Network,
        }
    }

    /// A one-line summary for logs and operators: the command line or the tool call.
    pub fn summary(&self) -> String {
        match self {
            Action::LocalExec(e) => {
                let mut s = e.executable.clone();
                for arg in &e.args {
                    s.push(' ');
                    s.push_str(arg);
                }
                s
            }
            Action::ToolCall(t) => format!("{}({})", t.tool, t.arg),
            Action::HttpRequest(h) => {
                let mut s = format!("{} {}", h.method, h.url());
                if !h.headers.is_empty() {
                    let headers: Vec<String> = h
                        .headers
                        .iter()
                        .map(|x| format!("{}: {}", x.name, x.value))
                        .collect();
                    s.push_str(&format!(" [{}]", headers.join(", ")));
                }
                if let Some(n) = h.body_size {
                    s.push_str(&format!(" ({n}-byte body)"));
                }
                s
            }
            Action::Connect(c) => format!("CONNECT {}:{}", c.host, c.port),
            Action::Upgrade(u) => format!("UPGRADE {} {}{}", u.protocol, u.host, u.path),
        }
    }
}

impl HttpRequest {
    /// The request's URL: scheme, host, the port when it is not the scheme's default, path
    /// and query.
    pub fn url(&self) -> String {
        let default_port = match self.scheme.as_str() {
            "http" => 80,
            _ => 443,
        };
        let mut url = format!("{}://{}", self.scheme, self.host);
        if self.port != default_port {
            url.push_str(&format!(":{}", self.port));
        }
        url.push_str(&self.path);
        if let Some(q) = &self.query {
            url.push('?');
            url.push_str(q);
        }
        url
    }
}

/// An optional field for a fingerprint: empty when absent, else `=` and the value, so that an
/// absent value and an empty one hash differently.
fn optional(value: Option<&str>) -> String {
    value.map_or_else(String::new, |v| format!("={v}"))
}

/// Lowercase hex of a byte string.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    fn exec(agent: Option<&str>) -> Action {
        Action::LocalExec(LocalExec {
            executable: "/usr/bin/python3".into(),
            args: vec!["script.py".into()],
            session_id: "sess_1".into(),
            sandbox_id: "sbx_1".into(),
            agent_id: agent.map(Into::into),
            profile: "default".into(),
            hitl_mode: "async_token".into(),
        })
    }

    #[test]
    fn fingerprint_matches_the_contract_example() {
        // sha256sum of the bytes `/usr/bin/python3\0script.py\0sess_1\0sbx_1\0agent_1`.
        assert_eq!(
            exec(Some("agent_1")).fingerprint(),
            "0fc8534d1295e50b8513d4ffd45ee82416ad0969eee621aa8bdfcff6c4406141"
        );
    }

    #[test]
    fn fingerprint_without_agent_ends_after_the_sandbox_nul() {
        assert_eq!(
            exec(None).fingerprint(),
            "0977fe2e970b471537f6eb032b581981bc65c3b23b0ce2821e1f8071389c8103"
        );
    }

    #[test]
    fn a_tool_is_classified_by_its_name_in_any_case() {
        let tool = |name: &str| fixtures::tool(name).default_effect();
        assert_eq!(tool("Read_File"), EffectClass::Read);
        assert_eq!(tool("write_file"), EffectClass::Write);
        assert_eq!(tool("DELETE_branch"), EffectClass::Destructive);
        assert_eq!(tool("run_command"), EffectClass::Execute);
        // A name whose first bytes are not a character boundary is simply not a match.
        assert_eq!(tool("éd"), EffectClass::Execute);
        assert_eq!(tool(""), EffectClass::Execute);
    }

    #[test]
    fn hex_is_lowercase() {
        assert_eq!(hex(&[0x00, 0xab, 0xff]), "00abff");
    }
}

/// Actions for unit tests elsewhere in the crate.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::{Action, LocalExec, ToolCall};

    /// `executable args...` in session `s` of sandbox `sbx`.
    pub(crate) fn exec(executable: &str, args: &[&str]) -> Action {
        Action::LocalExec(LocalExec {
            executable: executable.into(),
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            session_id: "s".into(),
            sandbox_id: "sbx".into(),
            agent_id: None,
            profile: "p".into(),
            hitl_mode: "async_token".into(),
        })
    }

    /// A call of `tool` with no argument, in session `s` of sandbox `sbx`.
    pub(crate) fn tool(tool: &str) -> Action {
        Action::ToolCall(ToolCall {
            tool: tool.into(),
            arg: String::new(),
            session_id: "s".into(),
            sandbox_id: "sbx".into(),
            agent_id: None,
            project_id: None,
            project_root: None,
            cwd: None,
        })
    }
}
