//! The host's configuration: a TOML file (`gavel.toml`) or the same structure built in code.
//! Keys nothing reads are rejected, naming the key, so a typo never silently weakens a policy.

use crate::decision::FailureKind;
use crate::engine::EngineOptions;
use crate::error::Error;
use crate::policy::Limits;
use crate::tokens::{StoreConfig, StoreKind};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

// The value types of configuration keys, named here, their one public home.
pub use crate::interface::UnknownActions;
pub use crate::policy::Isolation;
pub use crate::projects::PERMISSIONS_FILE;

/// Everything a [`PolicyHost`](crate::PolicyHost) is built from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostConfig {
    /// The governance socket `gavel serve` listens on (default `$XDG_RUNTIME_DIR/gavel/exec.sock`,
    /// else `./gavel.sock`).
    #[serde(default)]
    pub socket: Option<PathBuf>,
    /// A separate socket for approve, revoke, list and show; when set, the governance socket
    /// refuses them (so an agent that reaches the launcher's socket cannot approve itself).
    #[serde(default)]
    pub management_socket: Option<PathBuf>,
    /// UIDs besides the server's own admitted on the management socket.
    #[serde(default)]
    pub management_uids: Vec<u32>,
    /// When set, approve, revoke, list and show must carry this secret in their
    /// `management_token` field (newer firma clients send it); `Debug` never shows it.
    #[serde(default)]
    pub management_token: Option<crate::auth::ManagementToken>,
    /// As `management_token`, read from this file (trailing newlines dropped) once, when the
    /// host is built; a reload does not re-read it.
    #[serde(default)]
    pub management_token_file: Option<PathBuf>,
    /// Connections served at once per socket; more wait to be accepted.
    #[serde(default = "defaults::max_connections")]
    pub max_connections: usize,
    /// A client that sends nothing for this long is disconnected.
    #[serde(default = "defaults::idle_timeout_ms")]
    pub idle_timeout_ms: u64,
    /// A client that has not taken an answer within this long (it stopped reading) is
    /// disconnected, so it cannot hold a connection slot or stall shutdown.
    #[serde(default = "defaults::write_timeout_ms")]
    pub write_timeout_ms: u64,
    /// How long shutdown waits for open connections to finish, at most.
    #[serde(default = "defaults::drain_timeout_ms")]
    pub drain_timeout_ms: u64,
    /// Policy calls that run at once, off the async workers (0: one per CPU).
    #[serde(default)]
    pub policy_threads: usize,
    /// Live pending approval tokens one session may hold; a request that would issue one more
    /// is denied.
    #[serde(default = "defaults::max_pending_per_session")]
    pub max_pending_per_session: usize,
    /// Live pending approval tokens all sessions together may hold.
    #[serde(default = "defaults::max_pending")]
    pub max_pending: usize,
    /// Append one JSON line per decision and management operation here.
    #[serde(default)]
    pub audit_log: Option<PathBuf>,
    /// `deny` (default): an answer whose record cannot be written is a deny; `continue`: answer
    /// anyway and log the failure.
    #[serde(default)]
    pub audit_failure: crate::audit::AuditFailure,
    /// Replace request arguments by their count in audit and approval records.
    #[serde(default)]
    pub audit_redact_args: bool,
    /// Serve Prometheus metrics at `http://ADDR/metrics`.
    #[serde(default)]
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// How long `gavel serve` lets the configuration and policy files settle after a change
    /// before it reloads, in ms (0: reload only on SIGHUP).
    #[serde(default = "defaults::watch_ms")]
    pub watch_ms: u64,
    /// How long an issued approval token stays usable.
    #[serde(default = "defaults::token_ttl_ms")]
    pub token_ttl_ms: u64,
    /// How long a client should wait before retrying a `pending_hitl` request.
    #[serde(default = "defaults::retry_after_ms")]
    pub retry_after_ms: u64,
    /// How long an expired token stays on record, so a late retry hears "expired".
    #[serde(default = "defaults::token_grace_ms")]
    pub token_grace_ms: u64,
    /// How often `gavel serve` forgets tokens past their grace window, in ms.
    #[serde(default = "defaults::prune_interval_ms")]
    pub prune_interval_ms: u64,
    /// When set, requests naming any other sandbox are denied.
    #[serde(default)]
    pub expected_sandbox_id: Option<String>,
    /// Where compiled policies are cached; default `$XDG_CACHE_HOME/gavel/compiled`.
    #[serde(default)]
    pub cache_dir: Option<PathBuf>,
    /// Whether compiled policies are cached on disk at all.
    #[serde(default = "defaults::yes")]
    pub compile_cache: bool,
    /// Bounds on every call into a policy.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// Where approval tokens are kept.
    #[serde(default)]
    pub store: StoreConfig,
    /// The ordered policy chain; at least one.
    #[serde(default, rename = "policy")]
    pub policies: Vec<PolicySpec>,
}

impl Default for HostConfig {
    fn default() -> Self {
        Self {
            socket: None,
            management_socket: None,
            management_uids: Vec::new(),
            management_token: None,
            management_token_file: None,
            max_connections: defaults::max_connections(),
            idle_timeout_ms: defaults::idle_timeout_ms(),
            write_timeout_ms: defaults::write_timeout_ms(),
            drain_timeout_ms: defaults::drain_timeout_ms(),
            policy_threads: 0,
            max_pending_per_session: defaults::max_pending_per_session(),
            max_pending: defaults::max_pending(),
            audit_log: None,
            audit_failure: crate::audit::AuditFailure::default(),
            audit_redact_args: false,
            metrics_addr: None,
            watch_ms: defaults::watch_ms(),
            token_ttl_ms: defaults::token_ttl_ms(),
            retry_after_ms: defaults::retry_after_ms(),
            token_grace_ms: defaults::token_grace_ms(),
            prune_interval_ms: defaults::prune_interval_ms(),
            expected_sandbox_id: None,
            cache_dir: None,
            compile_cache: true,
            limits: LimitsConfig::default(),
            store: StoreConfig::default(),
            policies: Vec::new(),
        }
    }
}

mod defaults {
    pub(super) fn max_connections() -> usize {
        1024
    }
    pub(super) fn idle_timeout_ms() -> u64 {
        10_000
    }
    pub(super) fn write_timeout_ms() -> u64 {
        2_000
    }
    pub(super) fn drain_timeout_ms() -> u64 {
        5_000
    }
    pub(super) fn max_pending_per_session() -> usize {
        100
    }
    pub(super) fn max_pending() -> usize {
        2_000
    }
    pub(super) fn watch_ms() -> u64 {
        1000
    }
    pub(super) fn yes() -> bool {
        true
    }
    pub(super) fn token_ttl_ms() -> u64 {
        300_000
    }
    pub(super) fn retry_after_ms() -> u64 {
        500
    }
    pub(super) fn token_grace_ms() -> u64 {
        300_000
    }
    pub(super) fn prune_interval_ms() -> u64 {
        60_000
    }
    pub(super) fn deadline_ms() -> u64 {
        100
    }
    pub(super) fn memory_mib() -> u64 {
        32
    }
    pub(super) fn max_stack_kib() -> u64 {
        512
    }
    pub(super) fn max_uses() -> u32 {
        10_000
    }
}

/// `[limits]`: bounds on every call into a policy; a policy may override them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Wall-clock budget of one call, in milliseconds.
    #[serde(default = "defaults::deadline_ms")]
    pub deadline_ms: u64,
    /// Linear memory a policy may grow to, in MiB.
    #[serde(default = "defaults::memory_mib")]
    pub memory_mib: u64,
    /// Wasm stack per call, in KiB (engine-wide).
    #[serde(default = "defaults::max_stack_kib")]
    pub max_stack_kib: u64,
    /// `pooled` (reuse instances) or `per-decision` (a fresh instance every time).
    #[serde(default)]
    pub isolation: Isolation,
    /// A pooled instance is retired after this many calls.
    #[serde(default = "defaults::max_uses")]
    pub max_uses: u32,
    /// Use wasmtime's pooling allocator (engine-wide).
    #[serde(default = "defaults::yes")]
    pub pooling: bool,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            deadline_ms: defaults::deadline_ms(),
            memory_mib: defaults::memory_mib(),
            max_stack_kib: defaults::max_stack_kib(),
            isolation: Isolation::default(),
            max_uses: defaults::max_uses(),
            pooling: true,
        }
    }
}

/// Per-policy overrides of `[limits]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyLimits {
    /// Overrides `limits.deadline_ms`.
    pub deadline_ms: Option<u64>,
    /// Overrides `limits.memory_mib`.
    pub memory_mib: Option<u64>,
    /// Overrides `limits.isolation`.
    pub isolation: Option<Isolation>,
}

impl HostConfig {
    /// Open the configured token store (`default` when `[store] kind` is not set); see
    /// [`tokens::open`](crate::tokens::open).
    pub async fn open_store(
        &self,
        default: StoreKind,
    ) -> Result<std::sync::Arc<dyn crate::tokens::TokenStore>, Error> {
        crate::tokens::open(&self.store, default, self.token_grace_ms, || {
            self.default_state_dir()
        })
        .await
    }

    /// `$XDG_STATE_HOME/gavel`, else `~/.local/state/gavel`, else the socket's directory.
    pub fn default_state_dir(&self) -> PathBuf {
        if let Some(dir) = std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()) {
            return PathBuf::from(dir).join("gavel");
        }
        if let Some(home) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
            return PathBuf::from(home).join(".local/state/gavel");
        }
        let socket = self.socket_path();
        socket
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_owned()
    }
}

/// `[[policy]]`: one link of the chain.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySpec {
    /// Names the policy in reasons, logs and audit records.
    pub name: String,
    /// A component file (relative paths are relative to the configuration file).
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// A bundled policy, for example `default-action`.
    #[serde(default)]
    pub builtin: Option<String>,
    /// Expected SHA-256 of the component (lowercase hex); a mismatch refuses to load.
    #[serde(default)]
    pub sha256: Option<String>,
    /// The policy's configuration, handed to it as JSON.
    #[serde(default)]
    pub config: Option<serde_json::Value>,
    /// A JSON file holding the policy's configuration instead.
    #[serde(default)]
    pub config_file: Option<PathBuf>,
    /// A directory of saved project rules (`gavel allow-for-project` writes them): each
    /// `ID/permissions.json` in it is merged into the configuration as `projects.ID`, at load
    /// and on every reload.
    #[serde(default)]
    pub projects_dir: Option<PathBuf>,
    /// Overrides of `[limits]` for this policy.
    #[serde(default)]
    pub limits: PolicyLimits,
    /// Satisfy the policy's WASI imports (componentize-py, componentize-js output) with an
    /// empty sandbox: no files, network, environment or arguments; stdout/stderr to the log.
    #[serde(default)]
    pub wasi: bool,
    /// What the host answers for this policy on actions its `gavel:policy` version cannot
    /// represent (HTTP, CONNECT and upgrade for a 0.1.0 policy): `deny` (the default) or
    /// `abstain`.
    #[serde(default)]
    pub unknown_actions: UnknownActions,
}

impl PolicySpec {
    /// A bundled policy named after itself, with no configuration.
    pub fn builtin(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            path: None,
            builtin: Some(name.to_owned()),
            sha256: None,
            config: None,
            config_file: None,
            projects_dir: None,
            limits: PolicyLimits::default(),
            wasi: false,
            unknown_actions: UnknownActions::Deny,
        }
    }

    /// A policy from a component file, named after the file.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        let name = path
            .file_stem()
            .map_or_else(|| "policy".into(), |s| s.to_string_lossy().into_owned());
        Self {
            name,
            path: Some(path),
            builtin: None,
            ..Self::builtin("")
        }
    }

    /// Parse `builtin:NAME` or a path.
    pub fn parse(source: &str) -> Self {
        match source.strip_prefix("builtin:") {
            Some(name) => Self::builtin(name),
            None => Self::file(source),
        }
    }

    /// Set the configuration.
    pub fn with_config(mut self, config: serde_json::Value) -> Self {
        self.config = Some(config);
        self
    }

    /// The component's bytes, checked against the pin if one is set.
    pub(crate) fn component_bytes(&self) -> Result<std::borrow::Cow<'static, [u8]>, Error> {
        let bytes = match (&self.builtin, &self.path) {
            (Some(name), None) => match crate::builtin::lookup(name) {
                Some(bytes) => std::borrow::Cow::Borrowed(bytes),
                None => {
                    let known: Vec<_> = crate::builtin::names()
                        .map(|n| format!("`builtin:{n}`"))
                        .collect();
                    return Err(Error::config(format!(
                        "policy `{}`: there is no bundled policy `{name}`; bundled: {}",
                        self.name,
                        known.join(", ")
                    )));
                }
            },
            // Name the policy and the key: a bare "cannot access" does not say whose file it is.
            (None, Some(path)) => std::borrow::Cow::Owned(read_file(path).map_err(|e| {
                Error::policy(
                    &self.name,
                    FailureKind::Unreadable,
                    format!("policy `{}`: `path`: {e}", self.name),
                )
                .with_source(e)
            })?),
            _ => {
                return Err(Error::config(format!(
                    "policy `{}` must set exactly one of `path` and `builtin`",
                    self.name
                )));
            }
        };
        if let Some(pin) = &self.sha256 {
            use sha2::{Digest, Sha256};
            let actual = crate::action::hex(&Sha256::digest(&bytes));
            if !pin.eq_ignore_ascii_case(&actual) {
                return Err(Error::policy(
                    &self.name,
                    FailureKind::Pinned,
                    format!(
                        "policy `{}` does not match its pinned sha256: expected `{pin}`, the file has \
                     `{actual}`; refusing to load it",
                        self.name
                    ),
                ));
            }
        }
        Ok(bytes)
    }

    /// The configuration as JSON text (`{}` when none is set), with the saved project rules of
    /// `projects_dir` merged in.
    pub(crate) fn config_json(&self) -> Result<String, Error> {
        let mut value = match (&self.config, &self.config_file) {
            (Some(_), Some(_)) => {
                return Err(Error::config(format!(
                    "policy `{}` sets both `config` and `config_file`; keep one",
                    self.name
                )));
            }
            (Some(value), None) => value.clone(),
            (None, Some(path)) => {
                let text = read_file(path).map_err(|e| {
                    Error::policy(
                        &self.name,
                        FailureKind::Unreadable,
                        format!("policy `{}`: `config_file`: {e}", self.name),
                    )
                    .with_source(e)
                })?;
                serde_json::from_slice(&text).map_err(|e| {
                    Error::config(format!(
                        "policy `{}`: `{}` is not JSON: {e}",
                        self.name,
                        path.display()
                    ))
                })?
            }
            (None, None) => serde_json::Value::Object(serde_json::Map::new()),
        };
        if let Some(dir) = &self.projects_dir {
            crate::projects::merge_saved(&mut value, dir, &self.name)?;
        }
        Ok(value.to_string())
    }

    /// The effective limits: `[limits]` with this policy's overrides.
    pub(crate) fn limits(&self, base: &LimitsConfig) -> Limits {
        Limits {
            deadline: Duration::from_millis(self.limits.deadline_ms.unwrap_or(base.deadline_ms)),
            memory_bytes: usize::try_from(self.limits.memory_mib.unwrap_or(base.memory_mib))
                .unwrap_or(usize::MAX / (1 << 20))
                .saturating_mul(1 << 20),
            isolation: self.limits.isolation.unwrap_or(base.isolation),
            max_uses: base.max_uses,
            wasi: self.wasi,
            unknown_actions: self.unknown_actions,
        }
    }
}

impl HostConfig {
    /// Read a TOML configuration file; relative paths in it are relative to its directory.
    pub fn from_file(path: &Path) -> Result<Self, Error> {
        let text = read_file(path)?;
        let text = String::from_utf8(text)
            .map_err(|_| Error::config(format!("`{}` is not UTF-8 text", path.display())))?;
        let mut config = Self::from_toml(&text)
            .map_err(|e| Error::config(format!("`{}`: {e}", path.display())))?;
        let base = path.parent().unwrap_or(Path::new("."));
        config.resolve_paths(base);
        Ok(config)
    }

    /// Parse TOML text (paths are left as written).
    pub fn from_toml(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.message().to_owned() + &location(text, e.span()))
    }

    fn resolve_paths(&mut self, base: &Path) {
        let resolve = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        for path in [
            &mut self.cache_dir,
            &mut self.socket,
            &mut self.management_socket,
            &mut self.management_token_file,
            &mut self.audit_log,
            &mut self.store.path,
        ]
        .into_iter()
        .flatten()
        {
            resolve(path);
        }
        for policy in &mut self.policies {
            if let Some(p) = &mut policy.path {
                resolve(p);
            }
            if let Some(p) = &mut policy.config_file {
                resolve(p);
            }
            if let Some(p) = &mut policy.projects_dir {
                resolve(p);
            }
        }
    }

    /// Every file the chain is built from: policy components, configuration files, and the
    /// projects directories with their saved rules.
    pub fn watched_files(&self) -> Vec<PathBuf> {
        self.policies
            .iter()
            .flat_map(|p| {
                let saved = p.projects_dir.as_deref().map(crate::projects::watched);
                p.path
                    .iter()
                    .chain(p.config_file.iter())
                    .cloned()
                    .chain(saved.into_iter().flatten())
            })
            .collect()
    }

    /// The governance socket: as configured, else `$XDG_RUNTIME_DIR/gavel/exec.sock`, else
    /// `./gavel.sock`.
    pub fn socket_path(&self) -> PathBuf {
        if let Some(p) = &self.socket {
            return p.clone();
        }
        match std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
            Some(dir) => PathBuf::from(dir).join("gavel").join("exec.sock"),
            None => PathBuf::from("gavel.sock"),
        }
    }

    /// Check what serde cannot: the chain is not empty, names are unique, values are sane.
    pub fn validate(&self) -> Result<(), Error> {
        if self.policies.is_empty() {
            return Err(Error::config(
                "the policy chain is empty; add at least one `[[policy]]`",
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for p in &self.policies {
            if p.name.trim().is_empty() {
                return Err(Error::config_key("name", "a policy has an empty `name`"));
            }
            if !seen.insert(p.name.as_str()) {
                return Err(Error::config_key(
                    "name",
                    format!("two policies are named `{}`", p.name),
                ));
            }
            if let Some(pin) = &p.sha256
                && (pin.len() != 64 || !pin.bytes().all(|b| b.is_ascii_hexdigit()))
            {
                return Err(Error::config_key(
                    "sha256",
                    format!(
                        "policy `{}`: `sha256` must be 64 hex digits, got `{pin}`",
                        p.name
                    ),
                ));
            }
            let deadline = p.limits.deadline_ms.unwrap_or(self.limits.deadline_ms);
            if deadline == 0 || deadline > 60_000 {
                return Err(Error::config_key(
                    "limits.deadline_ms",
                    format!(
                        "policy `{}`: a deadline of {deadline} ms is outside 1..=60000",
                        p.name
                    ),
                ));
            }
            let memory = p.limits.memory_mib.unwrap_or(self.limits.memory_mib);
            if memory == 0 || memory > 4096 {
                return Err(Error::config_key(
                    "limits.memory_mib",
                    format!(
                        "policy `{}`: a memory limit of {memory} MiB is outside 1..=4096",
                        p.name
                    ),
                ));
            }
        }
        if self.token_ttl_ms == 0 {
            return Err(Error::config_key(
                "token_ttl_ms",
                "`token_ttl_ms` must be at least 1",
            ));
        }
        if self.limits.max_stack_kib < 64 || self.limits.max_stack_kib > 8192 {
            return Err(Error::config_key(
                "limits.max_stack_kib",
                format!(
                    "`limits.max_stack_kib` = {} is outside 64..=8192",
                    self.limits.max_stack_kib
                ),
            ));
        }
        if self.prune_interval_ms == 0 {
            return Err(Error::config_key(
                "prune_interval_ms",
                "`prune_interval_ms` must be at least 1",
            ));
        }
        if self.max_connections == 0 {
            return Err(Error::config_key(
                "max_connections",
                "`max_connections` must be at least 1",
            ));
        }
        if self.idle_timeout_ms == 0 {
            return Err(Error::config_key(
                "idle_timeout_ms",
                "`idle_timeout_ms` must be at least 1",
            ));
        }
        for (key, value) in [
            ("write_timeout_ms", self.write_timeout_ms),
            ("drain_timeout_ms", self.drain_timeout_ms),
            (
                "max_pending_per_session",
                self.max_pending_per_session as u64,
            ),
            ("max_pending", self.max_pending as u64),
        ] {
            if value == 0 {
                return Err(Error::config_key(
                    key,
                    format!("`{key}` must be at least 1"),
                ));
            }
        }
        if self.socket.is_some() && self.socket == self.management_socket {
            return Err(Error::config_key(
                "management_socket",
                "`socket` and `management_socket` must be different paths",
            ));
        }
        if self.management_token.is_some() && self.management_token_file.is_some() {
            return Err(Error::config_key(
                "management_token",
                "set `management_token` or `management_token_file`, not both",
            ));
        }
        if self.management_token.as_ref().is_some_and(|t| t.is_empty()) {
            return Err(Error::config_key(
                "management_token",
                "`management_token` is empty",
            ));
        }
        if self.limits.max_uses == 0 {
            return Err(Error::config_key(
                "limits.max_uses",
                "`limits.max_uses` must be at least 1",
            ));
        }
        Ok(())
    }

    /// The management token in force: `management_token`, or the contents of
    /// `management_token_file` with trailing newlines dropped. Errors name the file, never
    /// its contents.
    pub fn resolve_management_token(&self) -> Result<Option<crate::auth::ManagementToken>, Error> {
        if let Some(token) = &self.management_token {
            return Ok(Some(token.clone()));
        }
        let Some(path) = &self.management_token_file else {
            return Ok(None);
        };
        let text = String::from_utf8(read_file(path)?).map_err(|_| {
            Error::config_key(
                "management_token_file",
                format!(
                    "`management_token_file` `{}` is not UTF-8 text",
                    path.display()
                ),
            )
        })?;
        let secret = text.trim_end_matches(['\n', '\r']);
        if secret.is_empty() {
            return Err(Error::config_key(
                "management_token_file",
                format!("`management_token_file` `{}` is empty", path.display()),
            ));
        }
        Ok(Some(crate::auth::ManagementToken::new(secret)))
    }

    pub(crate) fn engine_options(&self) -> EngineOptions {
        EngineOptions {
            cache_dir: if self.compile_cache {
                self.cache_dir
                    .clone()
                    .or_else(crate::engine::default_cache_dir)
            } else {
                None
            },
            max_stack_bytes: usize::try_from(self.limits.max_stack_kib).unwrap_or(512) * 1024,
            pooling: self.limits.pooling,
        }
    }
}

/// ` (line N, column M)` for a byte span of `text`.
fn location(text: &str, span: Option<std::ops::Range<usize>>) -> String {
    let Some(span) = span else {
        return String::new();
    };
    let before = &text[..span.start.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    format!(" (line {line}, column {column})")
}

/// Read a whole file through a capability handle on its directory.
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>, Error> {
    let io = |source| Error::Io {
        path: path.to_owned(),
        source,
    };
    let (dir, name) = crate::files::open_parent(path).map_err(io)?;
    dir.read(name).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_rejected_by_name() {
        let err = HostConfig::from_toml("token_ttl_ms = 5\nsokcet = \"x\"\n").unwrap_err();
        assert!(err.contains("sokcet"), "{err}");
        assert!(err.contains("line 2"), "{err}");
        let err = HostConfig::from_toml("[[policy]]\nname = \"a\"\nbuiltin = \"x\"\npth = \"y\"\n")
            .unwrap_err();
        assert!(err.contains("pth"), "{err}");
    }

    #[test]
    fn a_full_config_parses() {
        let c = HostConfig::from_toml(
            r#"
            token_ttl_ms = 1000
            retry_after_ms = 20
            expected_sandbox_id = "sbx_1"
            [limits]
            deadline_ms = 50
            memory_mib = 16
            isolation = "per-decision"
            [store]
            kind = "memory"
            [[policy]]
            name = "first"
            builtin = "default-action"
            config = { action = "deny" }
            [[policy]]
            name = "second"
            path = "p.wasm"
            sha256 = "00"
            limits = { deadline_ms = 10 }
            "#,
        )
        .unwrap();
        assert_eq!(c.policies.len(), 2);
        assert_eq!(c.policies[0].config_json().unwrap(), r#"{"action":"deny"}"#);
        let l = c.policies[1].limits(&c.limits);
        assert_eq!(l.deadline, Duration::from_millis(10));
        assert_eq!(l.memory_bytes, 16 << 20);
        assert_eq!(l.isolation, Isolation::PerDecision);
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("64 hex digits")
        );
    }

    #[test]
    fn an_empty_chain_is_a_configuration_error() {
        let err = HostConfig::default().validate().unwrap_err().to_string();
        assert!(err.contains("policy chain is empty"), "{err}");
    }
}
