//! firma's own tests as a conformance suite: every scenario the firma sidecar's handler, token
//! store, endpoint and mediator tests assert (and the `firma token` command's exchange), replayed
//! against Gavel over a real Unix socket, speaking as the real clients do. The tests were written
//! here from the facts of firma's (`Firma-AI/openfirma`); none of its code is copied.
//!
//! The launcher client below is firma-run's exchange: connect, 500 ms read and write timeouts,
//! two writes (the JSON, then `\n`), one `read_line`, and a parse into exactly four fields with
//! unknown fields rejected: an answer with any other field fails the test as it fails the
//! launcher.
//!
//! Ported scenarios (firma test -> Gavel test here):
//!
//! | firma test | Gavel test |
//! |---|---|
//! | handler `allow_policy_allows` | `decisions_per_default_action` |
//! | handler `deny_policy_denies` | `decisions_per_default_action` |
//! | handler `pending_hitl_issues_token` | `decisions_per_default_action` |
//! | handler `token_retry_pending_until_approved` | `approve_flow` |
//! | handler `token_retry_succeeds_once_after_approval` | `approve_flow` |
//! | handler `token_replay_denied` | `approve_flow` |
//! | handler `revoked_token_denied` | `revoke_flow` |
//! | handler `token_context_mismatch_denied` | `retries_that_do_not_match_are_denied` |
//! | handler `client_fingerprint_mismatch_denied` | `retries_that_do_not_match_are_denied` |
//! | handler `unknown_action_denied` | `dispatch_by_action` |
//! | handler `management_approve_ok` | `approve_flow` |
//! | handler `management_revoke_ok` | `revoke_flow` |
//! | handler `management_approve_not_found` | `management_outcomes_per_token_state` |
//! | handler `management_unsupported_action` | `dispatch_by_action` (on the wire: a deny) |
//! | handler `decide` sandbox binding (no test of its own) | `a_bound_sandbox_denies_others` |
//! | handler `compute_fingerprint` / mediator `compute_request_fingerprint` | `fingerprints_on_firmas_fixtures` |
//! | token_store `pending_token_not_consumable_without_approval` | `approve_flow` |
//! | token_store `approved_token_consumed_once` | `approve_flow` |
//! | token_store `approve_is_idempotent` | `approve_flow` |
//! | token_store `revoked_pending_token_denied` | `revoke_flow` |
//! | token_store `revoked_approved_token_denied` | `revoke_flow` |
//! | token_store `revoke_is_idempotent` | `revoke_flow` |
//! | token_store `revoke_consumed_token_returns_already_consumed` | `management_outcomes_per_token_state` |
//! | token_store `approve_consumed_token_returns_already_consumed` | `management_outcomes_per_token_state` |
//! | token_store `approve_revoked_token_returns_already_revoked` | `management_outcomes_per_token_state` |
//! | token_store `unknown_token_rejected` | `retries_that_do_not_match_are_denied` |
//! | token_store `unknown_token_approve_returns_not_found` | `management_outcomes_per_token_state` |
//! | token_store `unknown_token_revoke_returns_not_found` | `management_outcomes_per_token_state` |
//! | token_store `expired_token_rejected` | `ttl_grace_and_prune` |
//! | token_store `fingerprint_mismatch_rejected` | `retries_that_do_not_match_are_denied` |
//! | token_store `session_mismatch_rejected` | `retries_that_do_not_match_are_denied` |
//! | token_store `sandbox_mismatch_rejected` | `retries_that_do_not_match_are_denied` |
//! | token_store `agent_mismatch_rejected` | `retries_that_do_not_match_are_denied` |
//! | token_store `token_without_agent_id_validates_without_agent` | `retries_that_do_not_match_are_denied` |
//! | token_store `prune_removes_fully_expired_records` | `ttl_grace_and_prune` |
//! | token_store `prune_retains_live_tokens` | `ttl_grace_and_prune` |
//! | token_store `approve` (approved: `Ok`, no expiry check) | `management_outcomes_per_token_state` |
//! | endpoint `endpoint_allow_policy` | `decisions_per_default_action` |
//! | endpoint `endpoint_deny_policy` | `decisions_per_default_action` |
//! | endpoint `endpoint_hitl_full_approve_roundtrip` | `approve_flow` |
//! | endpoint `endpoint_hitl_revoke_roundtrip` | `revoke_flow` |
//! | endpoint `endpoint_management_rejects_missing_token` | `a_configured_management_token_is_required` |
//! | endpoint `endpoint_management_rejects_wrong_token` | `a_configured_management_token_is_required` |
//! | endpoint `handle_connection`: 64 KiB limit counting `\n` | `the_64_kib_limit_counts_the_newline` |
//! | endpoint `handle_connection`: empty line closes | `a_blank_line_closes_at_once` |
//! | endpoint `handle_connection`: malformed and unknown actions | `dispatch_by_action` |
//! | endpoint `validate_peer_uid` | `a_peer_of_another_uid_gets_no_answer` |
//! | endpoint `run`: stale socket removed, mode 0600, removed on shutdown | `socket_hygiene` |
//! | mediator `send_and_receive` (two writes, one `read_line`, 500 ms) | `the_launchers_byte_exchange` |
//! | mediator `MediatorResponse` (`deny_unknown_fields`) | every test; `every_bundled_policy_answers_in_firmas_shape` |
//! | mediator `mediator_allow_decision_is_accepted` | `decisions_per_default_action` |
//! | mediator `mediator_deny_decision_blocks_execution` | `decisions_per_default_action` |
//! | mediator `mediator_sync_wait_pending_hitl_fails_closed` | `the_launcher_loop` |
//! | mediator `mediator_async_token_retries_until_approved` | `the_launcher_loop` |
//! | mediator `mediator_async_token_times_out_fail_closed` | `the_launcher_loop` |
//! | `firma token` (`send_management`, management token) | `gavel_token_sends_the_management_token` |
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

use crate::common;

use common::{START, default_action};
use gavel_host::server::Server;
use gavel_host::tokens::MemoryStore;
use gavel_host::{HostConfig, ManagementToken, ManualClock, PolicyHost, PolicySpec};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// firma-run's answer type: these four fields and no other (`deny_unknown_fields`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LauncherResponse {
    decision: String,
    reason: Option<String>,
    approval_token: Option<String>,
    retry_after_ms: Option<u64>,
}

/// firma-run's read and write timeout on the governance socket.
const LAUNCHER_TIMEOUT: Duration = Duration::from_millis(500);

/// firma's handler fixture sandbox id.
const FIRMA_SANDBOX: &str = "sbx_01j0000000e008000000000001";

/// A launcher request, with firma-run's fields.
#[derive(Clone, Debug)]
struct Exec {
    executable: String,
    args: Vec<String>,
    sandbox_id: String,
    session_id: String,
    agent_id: Option<String>,
    hitl_mode: &'static str,
    /// `None`: the launcher's own fingerprint of the request.
    fingerprint: Option<String>,
    approval_token: Option<String>,
}

impl Exec {
    /// firma's handler fixture: `/usr/bin/python3 script.py`, `sess_1`, `agent_1`.
    fn handler_fixture() -> Self {
        Self {
            executable: "/usr/bin/python3".into(),
            args: vec!["script.py".into()],
            sandbox_id: FIRMA_SANDBOX.into(),
            session_id: "sess_1".into(),
            agent_id: Some("agent_1".into()),
            hitl_mode: "async_token",
            fingerprint: None,
            approval_token: None,
        }
    }

    /// firma's endpoint fixture: `/usr/bin/env` without arguments.
    fn endpoint_fixture() -> Self {
        Self {
            executable: "/usr/bin/env".into(),
            args: Vec::new(),
            ..Self::handler_fixture()
        }
    }

    fn command(executable: &str, args: &[&str]) -> Self {
        Self {
            executable: executable.into(),
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            ..Self::handler_fixture()
        }
    }

    fn retry(&self, token: &str) -> Self {
        Self {
            approval_token: Some(token.to_owned()),
            ..self.clone()
        }
    }

    /// What firma-run computes: SHA-256 over the executable, NUL, each arg and NUL, the
    /// session, NUL, the sandbox, NUL, then the agent if any; lowercase hex.
    fn launcher_fingerprint(&self) -> String {
        let mut h = Sha256::new();
        h.update(self.executable.as_bytes());
        h.update(b"\0");
        for a in &self.args {
            h.update(a.as_bytes());
            h.update(b"\0");
        }
        h.update(self.session_id.as_bytes());
        h.update(b"\0");
        h.update(self.sandbox_id.as_bytes());
        h.update(b"\0");
        if let Some(agent) = &self.agent_id {
            h.update(agent.as_bytes());
        }
        h.finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    }

    /// The JSON firma-run writes: its fields in its order, `agent_id` and `approval_token`
    /// only when present, `request_fingerprint` always.
    fn line(&self) -> String {
        let mut v = serde_json::Map::new();
        v.insert("action".into(), json!("local.exec"));
        v.insert("executable".into(), json!(self.executable));
        v.insert("args".into(), json!(self.args));
        v.insert("sandbox_id".into(), json!(self.sandbox_id));
        v.insert("session_id".into(), json!(self.session_id));
        if let Some(agent) = &self.agent_id {
            v.insert("agent_id".into(), json!(agent));
        }
        v.insert("profile".into(), json!("generic"));
        v.insert("hitl_mode".into(), json!(self.hitl_mode));
        let fp = self
            .fingerprint
            .clone()
            .unwrap_or_else(|| self.launcher_fingerprint());
        v.insert("request_fingerprint".into(), json!(fp));
        if let Some(t) = &self.approval_token {
            v.insert("approval_token".into(), json!(t));
        }
        Value::Object(v).to_string()
    }
}

/// firma-run's `send_and_receive` over a Unix socket: two writes, one `read_line`, trimmed,
/// an empty answer an error, then the strict parse.
fn launcher_exchange(socket: &Path, line: &str) -> Result<LauncherResponse, String> {
    let stream = UnixStream::connect(socket).map_err(|e| format!("unavailable: {e}"))?;
    stream
        .set_read_timeout(Some(LAUNCHER_TIMEOUT))
        .map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(Some(LAUNCHER_TIMEOUT))
        .map_err(|e| e.to_string())?;
    let mut w = &stream;
    w.write_all(line.as_bytes())
        .and_then(|()| w.write_all(b"\n"))
        .and_then(|()| w.flush())
        .map_err(|e| format!("request failed: {e}"))?;
    let mut answer = String::new();
    BufReader::new(&stream)
        .read_line(&mut answer)
        .map_err(|e| format!("response failed: {e}"))?;
    let trimmed = answer.trim();
    if trimmed.is_empty() {
        return Err("empty response".into());
    }
    serde_json::from_str(trimmed).map_err(|e| format!("invalid response payload: {e}: {trimmed}"))
}

/// The launcher's exchange for a request that must succeed.
fn launch(socket: &Path, exec: &Exec) -> LauncherResponse {
    launcher_exchange(socket, &exec.line()).unwrap_or_else(|e| panic!("{exec:?}: {e}"))
}

fn deny_reason(r: &LauncherResponse) -> &str {
    assert_eq!(r.decision, "deny", "{r:?}");
    r.reason.as_deref().unwrap_or("")
}

fn pending_token(r: &LauncherResponse) -> String {
    assert_eq!(r.decision, "pending_hitl", "{r:?}");
    assert!(r.retry_after_ms.is_some(), "{r:?}");
    r.approval_token
        .clone()
        .expect("pending_hitl carries a token")
}

/// The `firma token` exchange: one write of JSON and `\n`, one line back, as JSON.
fn operator(socket: &Path, request: Value) -> Value {
    let mut s = UnixStream::connect(socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(format!("{request}\n").as_bytes()).unwrap();
    let line = BufReader::new(&s).lines().next().unwrap().unwrap();
    serde_json::from_str(&line).unwrap()
}

fn manage(socket: &Path, action: &str, token: &str) -> Value {
    operator(socket, json!({"action": action, "token_id": token}))
}

/// `gavel serve`'s server, in this process on its own runtime, on a manual clock.
struct Sidecar {
    dir: tempfile::TempDir,
    socket: PathBuf,
    management: Option<PathBuf>,
    clock: ManualClock,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Sidecar {
    fn start(policies: Vec<PolicySpec>) -> Self {
        Self::with(policies, |_| {})
    }

    fn with(policies: Vec<PolicySpec>, tweak: impl FnOnce(&mut HostConfig)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = HostConfig {
            policies,
            socket: Some(dir.path().join("exec.sock")),
            ..HostConfig::default()
        };
        tweak(&mut config);
        let clock = ManualClock::new(START);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let mut builder = PolicyHost::builder(&config)
            .store(Arc::new(MemoryStore::new()))
            .clock(Arc::new(clock.clone()));
        if let Some(path) = &config.audit_log {
            // Deny mode: a record is on disk before its answer is sent.
            let (log, _writer) =
                gavel_host::audit::AuditLog::open(path, config.audit_failure).unwrap();
            builder = builder.audit(log);
        }
        let host = builder.build().unwrap();
        let server = {
            let _entered = runtime.enter();
            Server::bind(host.clone(), &config).unwrap()
        };
        let socket = server.socket().to_owned();
        let management = server.management_socket().map(Path::to_owned);
        let (stop, task) = {
            let _entered = runtime.enter();
            common::run_in_background(server)
        };
        Self {
            dir,
            socket,
            management,
            clock,
            stop: Some(stop),
            task: Some(task),
            runtime: Some(runtime),
        }
    }

    /// The socket operators use: the management socket if split, else the governance one.
    fn operator_socket(&self) -> &Path {
        self.management.as_deref().unwrap_or(&self.socket)
    }

    fn shutdown(&mut self) {
        if let (Some(stop), Some(task), Some(runtime)) =
            (self.stop.take(), self.task.take(), self.runtime.take())
        {
            let _ = stop.send(());
            runtime.block_on(task).unwrap();
        }
    }
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[test]
fn decisions_per_default_action() {
    for (action, want) in [
        ("allow", "allow"),
        ("deny", "deny"),
        ("pending_hitl", "pending_hitl"),
    ] {
        let s = Sidecar::start(vec![default_action(action)]);
        for exec in [Exec::handler_fixture(), Exec::endpoint_fixture()] {
            let r = launch(&s.socket, &exec);
            assert_eq!(r.decision, want, "{action}: {r:?}");
            assert!(r.reason.is_some(), "every answer says why: {r:?}");
            if want == "pending_hitl" {
                pending_token(&r);
                assert_eq!(r.retry_after_ms, Some(500), "firma's default retry");
            } else {
                assert_eq!(
                    (&r.approval_token, r.retry_after_ms),
                    (&None, None),
                    "{r:?}"
                );
            }
        }
    }
}

#[test]
fn approve_flow() {
    let s = Sidecar::start(vec![default_action("pending_hitl")]);
    let fresh = Exec::endpoint_fixture();
    let token = pending_token(&launch(&s.socket, &fresh));
    let retry = fresh.retry(&token);
    // Pending: not consumable, the same token back.
    let again = launch(&s.socket, &retry);
    assert_eq!(pending_token(&again), token);
    // Approve, and approve again: both ok (idempotent).
    for _ in 0..2 {
        assert_eq!(
            manage(&s.socket, "local.exec.approve", &token),
            json!({"outcome": "ok"})
        );
    }
    // One allow, then the replay is denied.
    let allowed = launch(&s.socket, &retry);
    assert_eq!(allowed.decision, "allow", "{allowed:?}");
    assert_eq!(
        (allowed.approval_token, allowed.retry_after_ms),
        (None, None)
    );
    assert!(deny_reason(&launch(&s.socket, &retry)).contains("already consumed"));
}

#[test]
fn revoke_flow() {
    let s = Sidecar::start(vec![default_action("pending_hitl")]);
    let fresh = Exec::handler_fixture();
    // A pending token revoked (twice: idempotent) is denied "revoked".
    let pending = pending_token(&launch(&s.socket, &fresh));
    for _ in 0..2 {
        assert_eq!(
            manage(&s.socket, "local.exec.revoke", &pending),
            json!({"outcome": "ok"})
        );
    }
    assert!(deny_reason(&launch(&s.socket, &fresh.retry(&pending))).contains("revoked"));
    // An approved token revoked is denied "revoked" too.
    let approved = pending_token(&launch(&s.socket, &fresh));
    assert_eq!(
        manage(&s.socket, "local.exec.approve", &approved)["outcome"],
        "ok"
    );
    assert_eq!(
        manage(&s.socket, "local.exec.revoke", &approved)["outcome"],
        "ok"
    );
    assert!(deny_reason(&launch(&s.socket, &fresh.retry(&approved))).contains("revoked"));
}

#[test]
fn management_outcomes_per_token_state() {
    let s = Sidecar::with(vec![default_action("pending_hitl")], |c| {
        c.token_ttl_ms = 60_000;
    });
    let fresh = Exec::handler_fixture();
    let issue = || pending_token(&launch(&s.socket, &fresh));
    let outcome = |action: &str, token: &str| -> Value {
        let v = manage(&s.socket, action, token);
        // `firma token` reads `outcome` and `reason`; nothing else is sent.
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert!(
            keys.iter().all(|k| *k == "outcome" || *k == "reason"),
            "{v}"
        );
        v
    };
    let approve = "local.exec.approve";
    let revoke = "local.exec.revoke";

    // consumed: both already_consumed.
    let consumed = issue();
    outcome(approve, &consumed);
    assert_eq!(launch(&s.socket, &fresh.retry(&consumed)).decision, "allow");
    assert_eq!(outcome(approve, &consumed)["outcome"], "already_consumed");
    assert_eq!(outcome(revoke, &consumed)["outcome"], "already_consumed");
    // revoked: approve already_revoked.
    let revoked = issue();
    outcome(revoke, &revoked);
    assert_eq!(outcome(approve, &revoked)["outcome"], "already_revoked");
    // unknown, and empty: not_found "token not found".
    for action in [approve, revoke] {
        assert_eq!(outcome(action, "no-such-token")["outcome"], "not_found");
        assert_eq!(
            outcome(action, ""),
            json!({"outcome": "not_found", "reason": "token not found"})
        );
    }
    // Past the TTL: a pending token is expired for both; an approved one approves `ok`
    // (idempotent, no expiry check) and its retry is denied "expired".
    let pending = issue();
    let approved = issue();
    let approved_then_revoked = issue();
    outcome(approve, &approved);
    outcome(approve, &approved_then_revoked);
    s.clock.advance(60_000);
    assert_eq!(outcome(approve, &pending)["outcome"], "expired");
    assert_eq!(outcome(revoke, &pending)["outcome"], "expired");
    assert_eq!(outcome(approve, &approved), json!({"outcome": "ok"}));
    assert!(deny_reason(&launch(&s.socket, &fresh.retry(&approved))).contains("expired"));
    assert_eq!(outcome(approve, &approved)["outcome"], "expired");
    assert_eq!(
        outcome(revoke, &approved_then_revoked)["outcome"],
        "expired"
    );
    assert_eq!(
        outcome(approve, &approved_then_revoked)["outcome"],
        "expired"
    );
}

#[test]
fn retries_that_do_not_match_are_denied() {
    let s = Sidecar::start(vec![default_action("pending_hitl")]);
    let fresh = Exec::handler_fixture();
    let token = pending_token(&launch(&s.socket, &fresh));
    manage(&s.socket, "local.exec.approve", &token);
    let retry = fresh.retry(&token);
    let right = retry.launcher_fingerprint();
    let cases: Vec<(&str, Exec, &str)> = vec![
        (
            "a client fingerprint that is not the request's",
            Exec {
                fingerprint: Some("deadbeef".into()),
                ..retry.clone()
            },
            "fingerprint mismatch",
        ),
        (
            "the right digest in uppercase hex (firma compares exactly)",
            Exec {
                fingerprint: Some(right.to_uppercase()),
                ..retry.clone()
            },
            "fingerprint mismatch",
        ),
        (
            "another command",
            Exec {
                args: vec!["other.py".into()],
                ..retry.clone()
            },
            "fingerprint mismatch",
        ),
        (
            "another session",
            Exec {
                session_id: "sess_WRONG".into(),
                ..retry.clone()
            },
            "mismatch",
        ),
        (
            "another sandbox",
            Exec {
                sandbox_id: "sbx_01j0000000e008000000000002".into(),
                ..retry.clone()
            },
            "mismatch",
        ),
        (
            "another agent",
            Exec {
                agent_id: Some("agent_WRONG".into()),
                ..retry.clone()
            },
            "mismatch",
        ),
        (
            "an unknown token",
            fresh.retry("no-such-token"),
            "not found",
        ),
    ];
    for (what, exec, phrase) in cases {
        let r = launch(&s.socket, &exec);
        assert!(deny_reason(&r).contains(phrase), "{what}: {r:?}");
    }
    // None of them consumed the approval: the request itself still runs, once.
    assert_eq!(launch(&s.socket, &retry).decision, "allow");

    // A token issued without an agent is redeemed without one.
    let anonymous = Exec {
        agent_id: None,
        ..Exec::handler_fixture()
    };
    let t = pending_token(&launch(&s.socket, &anonymous));
    manage(&s.socket, "local.exec.approve", &t);
    assert_eq!(launch(&s.socket, &anonymous.retry(&t)).decision, "allow");

    // The same fingerprint from another context: an empty agent adds nothing to the digest,
    // yet a token bound to agent "" is not redeemed by a request without one.
    let empty_agent = Exec {
        agent_id: Some(String::new()),
        ..Exec::handler_fixture()
    };
    let t = pending_token(&launch(&s.socket, &empty_agent));
    manage(&s.socket, "local.exec.approve", &t);
    let r = launch(&s.socket, &anonymous.retry(&t));
    assert!(deny_reason(&r).contains("context mismatch"), "{r:?}");
}

#[test]
fn a_bound_sandbox_denies_others() {
    let s = Sidecar::with(vec![default_action("allow")], |c| {
        c.expected_sandbox_id = Some(FIRMA_SANDBOX.into());
    });
    assert_eq!(
        launch(&s.socket, &Exec::handler_fixture()).decision,
        "allow"
    );
    let other = Exec {
        sandbox_id: "sbx_01j0000000e008000000000002".into(),
        ..Exec::handler_fixture()
    };
    assert!(deny_reason(&launch(&s.socket, &other)).contains("sandbox"));
}

#[test]
fn fingerprints_on_firmas_fixtures() {
    // The digests were computed with `printf '...' | sha256sum`, independently of both sides.
    let cases = [
        (
            Exec::handler_fixture(),
            "3efe98fe831b407c3c01236b5c9ec6a0e720107c659526b4c306380dc19623a0",
        ),
        (
            Exec::endpoint_fixture(),
            "4d2dc8f5a2be8c8028f6166ce17d9ac362faeb65352a30c681546e28ae54318d",
        ),
        (
            Exec {
                sandbox_id: "sbx_1".into(),
                ..Exec::handler_fixture()
            },
            "0fc8534d1295e50b8513d4ffd45ee82416ad0969eee621aa8bdfcff6c4406141",
        ),
        (
            Exec {
                executable: "/bin/echo".into(),
                args: Vec::new(),
                session_id: "sess".into(),
                sandbox_id: "sbx_1".into(),
                agent_id: None,
                ..Exec::handler_fixture()
            },
            "c2510de29d5e7d40c33cb5da079a0c3cb4e45cb045e9ac23c4e59bfee72ddf33",
        ),
    ];
    let s = Sidecar::start(vec![default_action("pending_hitl")]);
    for (exec, digest) in cases {
        assert_eq!(exec.launcher_fingerprint(), digest, "the test's own digest");
        let token = pending_token(&launch(&s.socket, &exec));
        let shown = operator(
            &s.socket,
            json!({"action": "local.exec.show", "token_id": token}),
        );
        assert_eq!(shown["token"]["fingerprint"], digest, "{exec:?}");
        // The launcher sends its digest on the retry; the server agrees with it.
        assert_eq!(
            pending_token(&launch(&s.socket, &exec.retry(&token))),
            token
        );
    }
}

#[test]
fn ttl_grace_and_prune() {
    // firma's numbers: a 60 s TTL, a 5 minute grace window; the pruner ticks quickly here so
    // the test need not wait for firma's 60 s.
    let s = Sidecar::with(vec![default_action("pending_hitl")], |c| {
        c.token_ttl_ms = 60_000;
        c.token_grace_ms = 300_000;
        c.prune_interval_ms = 20;
    });
    let fresh = Exec::handler_fixture();
    let old = pending_token(&launch(&s.socket, &fresh));
    s.clock.advance(59_999);
    assert_eq!(pending_token(&launch(&s.socket, &fresh.retry(&old))), old);
    s.clock.advance(1);
    assert!(deny_reason(&launch(&s.socket, &fresh.retry(&old))).contains("expired"));
    // Within the grace window a late retry still hears "expired", and the pruner keeps it.
    s.clock.advance(299_999);
    std::thread::sleep(Duration::from_millis(200));
    assert!(deny_reason(&launch(&s.socket, &fresh.retry(&old))).contains("expired"));
    // A live token issued now survives every prune.
    let live = pending_token(&launch(&s.socket, &fresh));
    // Past the grace window the pruner forgets the old record: "not found".
    s.clock.advance(1);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = launch(&s.socket, &fresh.retry(&old));
        if deny_reason(&r).contains("not found") {
            break;
        }
        assert!(deny_reason(&r).contains("expired"), "{r:?}");
        assert!(Instant::now() < deadline, "the pruner never ran");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(pending_token(&launch(&s.socket, &fresh.retry(&live))), live);
}

#[test]
fn dispatch_by_action() {
    let s = Sidecar::start(vec![default_action("allow")]);
    // Unknown actions, `local.exec.*` ones included, are governance denials naming the action.
    for action in ["network.connect", "local.exec.delete"] {
        let line = json!({"action": action, "token_id": "tok"}).to_string();
        let r = launcher_exchange(&s.socket, &line).unwrap();
        assert_eq!(
            (r.decision.as_str(), r.reason.as_deref()),
            ("deny", Some(format!("unknown action '{action}'").as_str()))
        );
    }
    // Not JSON, no action, or a governance request missing a field: "malformed request:".
    for line in [
        "not json",
        "{}",
        r#"{"executable":"/bin/ls"}"#,
        r#"{"action":"local.exec","executable":"/bin/ls"}"#,
    ] {
        let r = launcher_exchange(&s.socket, line).unwrap();
        assert!(
            deny_reason(&r).starts_with("malformed request:"),
            "{line}: {r:?}"
        );
    }
    // A management request without `token_id`: unsupported_action.
    assert_eq!(
        operator(&s.socket, json!({"action": "local.exec.approve"}))["outcome"],
        "unsupported_action"
    );
}

/// A `local.exec` line of exactly `len` bytes (before its newline), padded in an unknown field.
fn padded_line(len: usize) -> String {
    let base = Exec::endpoint_fixture().line();
    let head = &base[..base.len() - 1];
    let pad = len - head.len() - r#","pad":""}"#.len();
    let line = format!(r#"{head},"pad":"{}"}}"#, "x".repeat(pad));
    assert_eq!(line.len(), len);
    line
}

#[test]
fn the_64_kib_limit_counts_the_newline() {
    let s = Sidecar::start(vec![default_action("allow")]);
    // 65,535 bytes and a newline: served.
    let r = launcher_exchange(&s.socket, &padded_line(65_535)).unwrap();
    assert_eq!(r.decision, "allow");
    // 65,536 bytes and a newline: closed, nothing answered.
    let err = launcher_exchange(&s.socket, &padded_line(65_536)).unwrap_err();
    assert!(
        err.contains("empty response") || err.contains("response failed"),
        "{err}"
    );
    let mut c = UnixStream::connect(&s.socket).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = c.write_all(format!("{}\n", padded_line(65_536)).as_bytes());
    let mut rest = Vec::new();
    let _ = c.read_to_end(&mut rest);
    assert!(rest.is_empty(), "an oversized line gets no answer");
}

#[test]
fn a_blank_line_closes_at_once() {
    // The idle timeout stays at its 10 s default: the close must not be the idle one.
    let s = Sidecar::start(vec![default_action("allow")]);
    for blank in ["\n", "\r\n", "   \t\n"] {
        let mut c = UnixStream::connect(&s.socket).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
        let started = Instant::now();
        c.write_all(blank.as_bytes()).unwrap();
        let mut rest = Vec::new();
        c.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty(), "{blank:?} got an answer");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{blank:?}: closed after {:?}",
            started.elapsed()
        );
    }
}

#[test]
fn the_launchers_byte_exchange() {
    let s = Sidecar::start(vec![default_action("allow")]);
    // The JSON and its newline arrive as two writes, here with a pause between them: nothing
    // is answered before the newline, then exactly one line, within the launcher's 500 ms.
    let mut c = UnixStream::connect(&s.socket).unwrap();
    c.set_read_timeout(Some(Duration::from_millis(150)))
        .unwrap();
    c.write_all(Exec::handler_fixture().line().as_bytes())
        .unwrap();
    let mut early = [0u8; 1];
    let before = c.read(&mut early);
    assert!(before.is_err(), "answered before the newline: {before:?}");
    c.set_read_timeout(Some(LAUNCHER_TIMEOUT)).unwrap();
    c.write_all(b"\n").unwrap();
    let mut reader = BufReader::new(&c);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert!(
        line.ends_with('\n') && line.matches('\n').count() == 1,
        "{line:?}"
    );
    let r: LauncherResponse = serde_json::from_str(line.trim()).unwrap();
    assert_eq!(r.decision, "allow");
    // The exact bytes: the four fields at most, in firma's order.
    assert!(
        line.starts_with(r#"{"decision":"allow","reason":"#),
        "{line:?}"
    );
    // The launcher's own helper, as a whole: a fresh connection per request.
    for _ in 0..3 {
        assert_eq!(
            launch(&s.socket, &Exec::endpoint_fixture()).decision,
            "allow"
        );
    }
}

#[test]
fn socket_hygiene() {
    let mut s = Sidecar::start(vec![default_action("allow")]);
    let mode = std::fs::metadata(&s.socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // A stale socket file (its server gone) is removed before binding.
    let stale = s.dir.path().join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    let second = Sidecar::with(vec![default_action("deny")], |c| {
        c.socket = Some(stale.clone());
    });
    assert_eq!(launch(&stale, &Exec::handler_fixture()).decision, "deny");
    drop(second);
    assert!(!stale.exists(), "the socket file is removed on shutdown");
    s.shutdown();
    assert!(!s.socket.exists(), "the socket file is removed on shutdown");
}

#[test]
fn a_peer_of_another_uid_gets_no_answer() {
    // Only root can run a client as another user; CI runs as root.
    let me = std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
        .unwrap_or(1);
    if me != 0 || !Path::new("/usr/bin/perl").exists() {
        eprintln!("skipped: needs root and /usr/bin/perl to connect as another UID");
        return;
    }
    let s = Sidecar::start(vec![default_action("allow")]);
    // Let the other user reach the socket, so it is SO_PEERCRED that refuses it.
    std::fs::set_permissions(s.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&s.socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    use std::os::unix::process::CommandExt;
    let script = r#"use IO::Socket::UNIX; $SIG{PIPE} = "IGNORE"; my $s = IO::Socket::UNIX->new(Peer => $ARGV[0]) or die "connect: $!";
        print $s "$ARGV[1]\n"; my $a = <$s>; print defined $a ? "ANSWER $a" : "NO ANSWER\n";"#;
    for line in [
        Exec::handler_fixture().line(),
        json!({"action": "local.exec.approve", "token_id": "t"}).to_string(),
    ] {
        let out = std::process::Command::new("/usr/bin/perl")
            .args(["-e", script])
            .arg(&s.socket)
            .arg(line)
            .uid(65534)
            .gid(65534)
            .current_dir("/")
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "NO ANSWER",
            "{out:?}"
        );
    }
    // The owner is still served.
    assert_eq!(
        launch(&s.socket, &Exec::handler_fixture()).decision,
        "allow"
    );
}

#[test]
fn the_launcher_loop() {
    /// firma-run's `enforce_local_command_governance`: loop until allow or deny; on
    /// `pending_hitl` fail closed in `sync_wait`, else sleep `retry_after_ms` and retry with
    /// the token, unless that would pass the deadline. Returns the lines sent.
    fn enforce(
        socket: &Path,
        exec: &Exec,
        max_wait: Duration,
        mut on_pending: impl FnMut(&str),
    ) -> (Result<(), String>, Vec<String>) {
        let deadline = Instant::now() + max_wait;
        let mut sent = Vec::new();
        let mut request = exec.clone();
        loop {
            let line = request.line();
            sent.push(line.clone());
            let r = match launcher_exchange(socket, &line) {
                Ok(r) => r,
                Err(e) => return (Err(e), sent),
            };
            match r.decision.as_str() {
                "allow" => return (Ok(()), sent),
                "deny" => return (Err(format!("denied: {r:?}")), sent),
                "pending_hitl" if exec.hitl_mode == "sync_wait" => {
                    return (
                        Err("approval required (sync_wait mode fail-closed)".into()),
                        sent,
                    );
                }
                "pending_hitl" => {
                    let Some(token) = r.approval_token.filter(|t| !t.trim().is_empty()) else {
                        return (Err("missing approval_token".into()), sent);
                    };
                    let wait = Duration::from_millis(r.retry_after_ms.unwrap_or(500));
                    if Instant::now() + wait >= deadline {
                        return (Err("exceeded hitl_max_wait_ms (fail-closed)".into()), sent);
                    }
                    on_pending(&token);
                    std::thread::sleep(wait);
                    request = exec.retry(&token);
                }
                other => return (Err(format!("unsupported decision '{other}'")), sent),
            }
        }
    }

    let s = Sidecar::with(vec![default_action("pending_hitl")], |c| {
        c.retry_after_ms = 50;
    });
    // async_token: the operator approves on the first pending answer; the launcher's first
    // request carries no token, the next carries the one it was given, and it is allowed.
    let operator_socket = s.operator_socket().to_owned();
    let mut approved = false;
    let (result, sent) = enforce(
        &s.socket,
        &Exec::handler_fixture(),
        Duration::from_secs(20),
        |token| {
            if !approved {
                assert_eq!(
                    manage(&operator_socket, "local.exec.approve", token)["outcome"],
                    "ok"
                );
                approved = true;
            }
        },
    );
    assert_eq!(result, Ok(()));
    assert_eq!(sent.len(), 2, "{sent:?}");
    let first: Value = serde_json::from_str(&sent[0]).unwrap();
    let second: Value = serde_json::from_str(&sent[1]).unwrap();
    assert!(first.get("approval_token").is_none());
    assert!(second["approval_token"].is_string());

    // Nobody approves: the wait passes `hitl_max_wait_ms` and the launcher fails closed.
    let (result, _) = enforce(
        &s.socket,
        &Exec::handler_fixture(),
        Duration::from_millis(60),
        |_| {},
    );
    assert!(result.unwrap_err().contains("hitl_max_wait_ms"));

    // sync_wait: a pending answer fails closed at once.
    let sync = Exec {
        hitl_mode: "sync_wait",
        ..Exec::handler_fixture()
    };
    let (result, sent) = enforce(&s.socket, &sync, Duration::from_secs(5), |_| {});
    assert!(result.unwrap_err().contains("fail-closed"));
    assert_eq!(sent.len(), 1);
}

const SECRET: &str = "endpoint-test-mgmt-token";

#[test]
fn a_configured_management_token_is_required() {
    let audit_dir = tempfile::tempdir().unwrap();
    let audit = audit_dir.path().join("audit.jsonl");
    let s = Sidecar::with(vec![default_action("pending_hitl")], |c| {
        c.management_token = Some(ManagementToken::new(SECRET));
        c.audit_log = Some(audit.clone());
    });
    let fresh = Exec::endpoint_fixture();
    let token = pending_token(&launch(&s.socket, &fresh));
    let refused = |request: Value| {
        let v = operator(&s.socket, request);
        assert_eq!(v["outcome"], "unauthorized", "{v}");
        assert!(v["reason"].is_string(), "{v}");
        assert!(!v.to_string().contains(SECRET));
    };
    // A same-UID process without the token (the agent) cannot approve, revoke, list or show.
    for wrong in [None, Some("wrong-token"), Some(""), Some(&SECRET[1..])] {
        for action in ["local.exec.approve", "local.exec.revoke", "local.exec.show"] {
            let mut request = json!({"action": action, "token_id": token});
            if let Some(w) = wrong {
                request["management_token"] = json!(w);
            }
            refused(request);
        }
        let mut list = json!({"action": "local.exec.list"});
        if let Some(w) = wrong {
            list["management_token"] = json!(w);
        }
        refused(list);
    }
    // The token is still pending: the refused approvals released nothing.
    assert_eq!(
        pending_token(&launch(&s.socket, &fresh.retry(&token))),
        token
    );
    // The operator, with the token, can.
    let with = |action: &str| {
        operator(
            &s.socket,
            json!({"action": action, "token_id": token, "management_token": SECRET}),
        )
    };
    assert_eq!(with("local.exec.show")["token"]["state"], "pending");
    assert_eq!(
        operator(
            &s.socket,
            json!({"action": "local.exec.list", "management_token": SECRET})
        )["tokens"][0]["token_id"],
        token.as_str()
    );
    assert_eq!(with("local.exec.approve"), json!({"outcome": "ok"}));
    assert_eq!(launch(&s.socket, &fresh.retry(&token)).decision, "allow");
    drop(s);
    // Every refusal is audited; the secret is in no record.
    let log = std::fs::read_to_string(&audit).unwrap();
    assert!(!log.contains(SECRET), "the secret reached the audit log");
    let refusals: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|r| r["verdict"] == "unauthorized")
        .collect();
    assert_eq!(refusals.len(), 16, "{log}");
    for action in [
        "local.exec.approve",
        "local.exec.revoke",
        "local.exec.show",
        "local.exec.list",
    ] {
        assert_eq!(
            refusals.iter().filter(|r| r["action"] == action).count(),
            4,
            "{action}"
        );
    }
}

#[test]
fn the_management_token_composes_with_a_split_socket() {
    let s = Sidecar::with(vec![default_action("pending_hitl")], |c| {
        c.management_token = Some(ManagementToken::new(SECRET));
        c.management_socket = Some(c.socket.clone().unwrap().with_file_name("manage.sock"));
    });
    let management = s.management.clone().unwrap();
    let token = pending_token(&launch(&s.socket, &Exec::handler_fixture()));
    // The governance socket refuses management even with the right token.
    let v = operator(
        &s.socket,
        json!({"action": "local.exec.approve", "token_id": token, "management_token": SECRET}),
    );
    assert_eq!(v["outcome"], "unsupported_action");
    // The management socket wants the token too.
    assert_eq!(
        manage(&management, "local.exec.approve", &token)["outcome"],
        "unauthorized"
    );
    let v = operator(
        &management,
        json!({"action": "local.exec.approve", "token_id": token, "management_token": SECRET}),
    );
    assert_eq!(v, json!({"outcome": "ok"}));
}

/// Start `gavel serve` on `config`, its log on stderr captured at the most verbose level.
fn serve_binary(config: &Path, log: &Path) -> std::process::Child {
    let mut command = common::serve_command(config);
    command
        .env("RUST_LOG", "trace")
        .stderr(std::fs::File::create(log).unwrap());
    common::spawn_until_listening(command)
}

#[test]
fn gavel_token_sends_the_management_token() {
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("management.token");
    // Written as an operator would, with a trailing newline (dropped when read).
    std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
    let config = dir.path().join("gavel.toml");
    std::fs::write(
        &config,
        format!(
            "socket = \"exec.sock\"\nmanagement_token_file = \"{}\"\n\
             [store]\npath = \"state\"\n\
             [[policy]]\nname = \"ask\"\nbuiltin = \"default-action\"\nconfig = {{ action = \"pending_hitl\" }}\n",
            secret_file.display()
        ),
    )
    .unwrap();
    let log = dir.path().join("serve.log");
    let mut child = serve_binary(&config, &log);
    let socket = dir.path().join("exec.sock");
    let issue = || pending_token(&launch(&socket, &Exec::handler_fixture()));
    let gavel_token = |args: &[&str], env: Option<&str>| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_gavel"));
        // `--socket` belongs to `gavel token` itself, before the subcommand.
        cmd.arg("token").arg("--socket").arg(&socket).args(args);
        cmd.env_remove("GAVEL_MANAGEMENT_TOKEN")
            .env_remove("GAVEL_SOCKET");
        if let Some(e) = env {
            cmd.env("GAVEL_MANAGEMENT_TOKEN", e);
        }
        cmd.output().unwrap()
    };
    // Without a token: refused, exit 1, and the message says why without the secret.
    let t = issue();
    let out = gavel_token(&["approve", "--yes", &t], None);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unauthorized"), "{stderr}");
    // From the environment, the flag, or the server's own configuration file.
    let out = gavel_token(&["approve", "--yes", &t], Some(SECRET));
    assert!(out.status.success(), "{out:?}");
    let t = issue();
    let out = gavel_token(&["revoke", &t, "--management-token", SECRET], None);
    assert!(out.status.success(), "{out:?}");
    let t = issue();
    let config_arg = config.to_str().unwrap();
    let out = gavel_token(&["approve", "--yes", &t, "--config", config_arg], None);
    assert!(out.status.success(), "{out:?}");
    let out = gavel_token(&["list", "--config", config_arg, "--json"], None);
    assert!(out.status.success(), "{out:?}");
    // A wrong one from the environment: refused, and its value is not echoed.
    let out = gavel_token(&["list"], Some("not-the-secret"));
    assert_eq!(out.status.code(), Some(1));
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !all.contains("not-the-secret") && !all.contains(SECRET),
        "{all}"
    );
    // The server never logs the secret, even at trace level.
    stop_with_sigterm(&mut child);
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        !logged.contains(SECRET),
        "the secret reached the server's log"
    );
    assert!(!logged.contains("not-the-secret"));
}

/// Stop a child `gavel serve` with SIGTERM (through `kill`, so this test needs no libc).
fn stop_with_sigterm(child: &mut std::process::Child) {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "gavel serve did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn every_bundled_policy_answers_in_firmas_shape() {
    let command_rules = |config: Value| PolicySpec::builtin("command-rules").with_config(config);
    let rules = json!({"global": {
        "allow": ["run_command(git status *)", "run_command(ls *)"],
        "deny": ["run_command(rm -rf *)", "run_command(curl *)"],
    }});
    let chains: Vec<(&str, Vec<PolicySpec>)> = vec![
        ("default-action allow", vec![default_action("allow")]),
        ("default-action deny", vec![default_action("deny")]),
        (
            "default-action pending_hitl",
            vec![default_action("pending_hitl")],
        ),
        ("command-rules", vec![command_rules(rules.clone())]),
        (
            "command-rules without rules",
            vec![command_rules(json!({}))],
        ),
        ("http-rules alone", vec![PolicySpec::builtin("http-rules")]),
        (
            "http-rules then default-action",
            vec![
                PolicySpec::builtin("http-rules"),
                default_action("pending_hitl"),
            ],
        ),
        (
            "command-rules then default-action",
            vec![command_rules(rules), default_action("allow")],
        ),
    ];
    let commands: Vec<Exec> = vec![
        Exec::command("/usr/bin/git", &["status", "--short"]),
        Exec::command("/bin/ls", &["-la"]),
        Exec::command("/bin/rm", &["-rf", "/"]),
        Exec::command("/usr/bin/curl", &["https://example.com"]),
        Exec::command("/usr/bin/npm", &["run", "build"]),
        Exec::command("/bin/bash", &["-c", "git status && npm run build --watch"]),
        Exec::command("/bin/sh", &["-c", "echo 'unbalanced"]),
        Exec::command("/usr/bin/env", &[]),
    ];
    let mut seen = std::collections::BTreeMap::<String, usize>::new();
    for (name, chain) in chains {
        let s = Sidecar::start(chain);
        for exec in &commands {
            let r = launch(&s.socket, exec);
            *seen.entry(r.decision.clone()).or_default() += 1;
            if r.decision != "pending_hitl" {
                continue;
            }
            // Every retry path of a token must parse too: pending, allow, replay, revoked,
            // mismatch, unknown.
            let token = pending_token(&r);
            let retry = exec.retry(&token);
            assert_eq!(launch(&s.socket, &retry).decision, "pending_hitl", "{name}");
            let shown = operator(
                &s.socket,
                json!({"action": "local.exec.show", "token_id": token}),
            );
            assert_eq!(shown["outcome"], "ok", "{name}: {shown}");
            if shown["token"]["policy"] == "command-rules" && exec.executable == "/usr/bin/npm" {
                // The suggestions the answer cannot carry are on the approval record.
                let first = &shown["token"]["suggestions"][0][0]["rule"];
                assert!(first.is_string(), "{name}: {shown}");
            }
            let vetoed_or_ok = manage(&s.socket, "local.exec.approve", &token);
            if vetoed_or_ok["outcome"] == "ok" {
                assert_eq!(launch(&s.socket, &retry).decision, "allow", "{name}");
                deny_reason(&launch(&s.socket, &retry));
            }
            let other = Exec {
                args: vec!["changed".into()],
                ..retry.clone()
            };
            deny_reason(&launch(&s.socket, &other));
            let t2 = pending_token(&launch(&s.socket, exec));
            manage(&s.socket, "local.exec.revoke", &t2);
            deny_reason(&launch(&s.socket, &exec.retry(&t2)));
            deny_reason(&launch(&s.socket, &exec.retry("no-such-token")));
        }
        // Malformed and unknown lines answer in the same shape.
        for line in [
            "not json",
            r#"{"action":"local.exec"}"#,
            r#"{"action":"x.y"}"#,
        ] {
            let r = launcher_exchange(&s.socket, line).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(r.decision, "deny");
        }
    }
    for decision in ["allow", "deny", "pending_hitl"] {
        assert!(
            seen.get(decision).copied().unwrap_or(0) > 0,
            "no `{decision}` in the sweep: {seen:?}"
        );
    }
}
