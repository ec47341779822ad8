//! The actions a policy decides, in Gavel's own types (the WIT bindings stay in `policy`).

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

/// Everything a policy may be asked to decide.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Action {
    /// A process start.
    LocalExec(LocalExec),
    /// A tool call.
    ToolCall(ToolCall),
}

impl Action {
    /// The session the action belongs to.
    pub fn session_id(&self) -> &str {
        match self {
            Action::LocalExec(e) => &e.session_id,
            Action::ToolCall(t) => &t.session_id,
        }
    }

    /// The sandbox the action comes from.
    pub fn sandbox_id(&self) -> &str {
        match self {
            Action::LocalExec(e) => &e.sandbox_id,
            Action::ToolCall(t) => &t.sandbox_id,
        }
    }

    /// The agent that asks, if known.
    pub fn agent_id(&self) -> Option<&str> {
        match self {
            Action::LocalExec(e) => e.agent_id.as_deref(),
            Action::ToolCall(t) => t.agent_id.as_deref(),
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
        }
        field(self.session_id());
        field(self.sandbox_id());
        if let Some(agent) = self.agent_id() {
            h.update(agent.as_bytes());
        }
        hex(&h.finalize())
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
        }
    }
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
    fn hex_is_lowercase() {
        assert_eq!(hex(&[0x00, 0xab, 0xff]), "00abff");
    }
}
