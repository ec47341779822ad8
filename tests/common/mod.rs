//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod conformance;
pub mod model;

use gavel_host::tokens::{MemoryStore, TokenStore};
use gavel_host::wire::{DecideResponse, ManageResponse, Response, WireDecision};
use gavel_host::{HostConfig, ManualClock, Operator, PolicyHost, PolicySpec};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;

/// Where build.rs put the guest components.
pub fn guest(name: &str) -> PathBuf {
    PathBuf::from(gavel_host::GUEST_DIR).join(format!("{name}.wasm"))
}

/// A `misbehave` policy spec with the given configuration.
pub fn misbehave(name: &str, config: Value) -> PolicySpec {
    let mut spec = PolicySpec::file(guest("misbehave")).with_config(config);
    spec.name = name.to_owned();
    spec
}

/// `builtin:default-action` answering `action`.
pub fn default_action(action: &str) -> PolicySpec {
    PolicySpec::builtin("default-action").with_config(json!({ "action": action }))
}

pub fn config(policies: Vec<PolicySpec>) -> HostConfig {
    HostConfig {
        policies,
        ..HostConfig::default()
    }
}

pub struct Harness {
    pub host: PolicyHost,
    pub clock: ManualClock,
    pub store: Arc<MemoryStore>,
}

pub const START: u64 = 1_700_000_000_000;

pub fn harness(config: &HostConfig) -> Harness {
    let clock = ManualClock::new(START);
    let store = Arc::new(MemoryStore::new());
    let host = PolicyHost::with_clock(
        config,
        store.clone() as Arc<dyn TokenStore>,
        Arc::new(clock.clone()),
    )
    .expect("host loads");
    Harness { host, clock, store }
}

/// A local.exec request line.
pub fn exec(executable: &str, args: &[&str]) -> Value {
    json!({
        "action": "local.exec",
        "executable": executable,
        "args": args,
        "sandbox_id": "sbx_1",
        "session_id": "sess_1",
        "agent_id": "agent_1",
        "profile": "default",
        "hitl_mode": "async_token",
    })
}

pub fn with(mut v: Value, key: &str, value: Value) -> Value {
    v[key] = value;
    v
}

impl Harness {
    pub async fn send(&self, line: &Value) -> Response {
        self.host
            .handle_line(line.to_string().as_bytes(), Operator::default())
            .await
    }

    pub async fn decide(&self, line: &Value) -> DecideResponse {
        match self.send(line).await {
            Response::Decide(d) => d,
            other => panic!("expected a governance answer, got {other:?}"),
        }
    }

    pub async fn manage(&self, action: &str, token: &str) -> ManageResponse {
        match self
            .send(&json!({"action": action, "token_id": token}))
            .await
        {
            Response::Manage(m) => m,
            other => panic!("expected a management answer, got {other:?}"),
        }
    }

    /// Issue a pending token for `line` and return its id.
    pub async fn issue(&self, line: &Value) -> String {
        let r = self.decide(line).await;
        assert_eq!(r.decision, WireDecision::PendingHitl, "{r:?}");
        r.approval_token.expect("pending_hitl carries a token")
    }
}

/// The reason of a deny, asserting it is one.
pub fn denied(r: &DecideResponse) -> &str {
    assert_eq!(r.decision, WireDecision::Deny, "{r:?}");
    r.reason.as_deref().unwrap_or("")
}

/// Send one line to a Unix socket on a fresh connection and read the answer.
pub fn ask_socket(socket: &std::path::Path, line: &Value) -> Value {
    use std::io::{BufRead, BufReader, Write};
    let mut c = std::os::unix::net::UnixStream::connect(socket).unwrap();
    writeln!(c, "{line}").unwrap();
    let mut a = String::new();
    BufReader::new(c).read_line(&mut a).unwrap();
    serde_json::from_str(&a).unwrap()
}

/// This process's resident memory, in KiB.
pub fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap()
}

/// Start `gavel serve --config CONFIG` and wait for its "listening on" banner.
pub fn spawn_serve(config: &std::path::Path) -> std::process::Child {
    spawn_until_listening(serve_command(config))
}

/// `gavel serve --config CONFIG`, its stderr discarded, not started yet.
pub fn serve_command(config: &std::path::Path) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_gavel"));
    command
        .args(["serve", "--config"])
        .arg(config)
        .stderr(std::process::Stdio::null());
    command
}

/// Spawn `command` (a `gavel serve`, however started) and wait for its "listening on" banner.
pub fn spawn_until_listening(mut command: std::process::Command) -> std::process::Child {
    use std::io::{BufRead, BufReader};
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut banner = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut banner)
        .unwrap();
    assert!(banner.contains("listening on"), "{banner}");
    child
}

/// Run a bound server on the current runtime until the returned sender fires (or drops).
pub fn run_in_background(
    server: gavel_host::server::Server,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        server
            .run(async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    (stop, task)
}
