//! What Gavel trusts on disk, and how it behaves when the disk fails: ownership and mode checks
//! (OpenSSH `StrictModes`), compiled-cache poisoning, a full audit filesystem (no torn record;
//! audit first, then state), token-store files deleted, replaced or corrupted while running, and
//! metrics that count without loading tokens.
//!
//! Ownership tests chown to a real other user (UID 65534) and a full disk is a real tmpfs; both
//! need root and are skipped, saying so, otherwise.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

use crate::common;

use common::*;
use gavel_host::audit::{AuditFailure, AuditLog};
use gavel_host::server::Server;
use gavel_host::tokens::{SqliteStore, Synchronous, TokenStore};
use gavel_host::wire::{ManageResponse, Response, WireDecision};
use gavel_host::{Operator, PolicyHost};
use serde_json::{Value, json};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Another real user: `nobody`.
const OTHER_UID: u32 = 65534;

/// This process's effective UID.
fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}

fn root() -> bool {
    euid() == 0
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn chown(path: &Path, uid: u32) {
    std::os::unix::fs::chown(path, Some(uid), None).unwrap();
}

/// `err` names `path` and says how to fix it.
fn names_path_and_fix(err: &str, path: &Path) {
    assert!(err.contains(&format!("`{}`", path.display())), "{err}");
    assert!(err.contains("chown") || err.contains("chmod"), "{err}");
}

/// The ways a directory or file can be another user's to change: (setup, what the error says).
/// The ownership row needs root; it is left out otherwise.
/// A named way to make a configured path unsafe.
type Setup = (&'static str, Box<dyn Fn(&Path)>);

fn unsafe_setups() -> Vec<Setup> {
    let world: Box<dyn Fn(&Path)> = Box::new(|p: &Path| chmod(p, 0o777));
    let group: Box<dyn Fn(&Path)> = Box::new(|p: &Path| chmod(p, 0o770));
    let mut setups = vec![("chmod go-w", world), ("chmod go-w", group)];
    if root() {
        let other: Box<dyn Fn(&Path)> = Box::new(|p: &Path| chown(p, OTHER_UID));
        setups.push(("owned by UID 65534", other));
    } else {
        eprintln!("skipped the other-owner case: needs root to chown to UID {OTHER_UID}");
    }
    setups
}

async fn start(
    config: &gavel_host::HostConfig,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let host = PolicyHost::new(config, Arc::new(gavel_host::tokens::MemoryStore::new())).unwrap();
    run_in_background(Server::bind(host, config).unwrap())
}

// Item 3: the socket's directory.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_directory_another_user_controls_is_refused() {
    for (says, make_unsafe) in unsafe_setups() {
        let dir = tempfile::tempdir().unwrap();
        let sockets = dir.path().join("run");
        std::fs::create_dir(&sockets).unwrap();
        make_unsafe(&sockets);
        let mut c = config(vec![default_action("allow")]);
        c.socket = Some(sockets.join("exec.sock"));
        let host = PolicyHost::new(&c, Arc::new(gavel_host::tokens::MemoryStore::new())).unwrap();
        let err = Server::bind(host, &c).err().expect("refused").to_string();
        assert!(err.contains(says), "{err}");
        names_path_and_fix(&err, &sockets);
        assert!(!sockets.join("exec.sock").exists(), "nothing was bound");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_never_unlinks_a_socket_that_is_not_ours() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("exec.sock");
    let mut c = config(vec![default_action("allow")]);
    c.socket = Some(socket.clone());
    let (stop, task) = start(&c).await;
    // Ours moved aside, another socket bound at the path.
    std::fs::rename(&socket, dir.path().join("moved.sock")).unwrap();
    let impostor = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let _ = stop.send(());
    task.await.unwrap();
    assert!(
        socket.exists(),
        "the other socket at the path was left alone"
    );
    drop(impostor);

    // And our own socket, where we bound it, is removed.
    std::fs::remove_file(&socket).unwrap();
    let (stop, task) = start(&c).await;
    assert!(socket.exists());
    let _ = stop.send(());
    task.await.unwrap();
    assert!(!socket.exists(), "our socket is removed on shutdown");
}

// Item 4: the token store.

#[test]
fn a_token_store_another_user_controls_is_refused() {
    for (says, make_unsafe) in unsafe_setups() {
        // The directory.
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        drop(SqliteStore::open(&state, Synchronous::Normal).unwrap());
        make_unsafe(&state);
        let err = SqliteStore::open(&state, Synchronous::Normal)
            .err()
            .expect("refused")
            .to_string();
        assert!(err.contains(says), "{err}");
        names_path_and_fix(&err, &state);
        // The database file, in a private directory.
        chmod(&state, 0o700);
        std::os::unix::fs::chown(&state, Some(euid()), None).unwrap();
        let db = state.join(gavel_host::tokens::DB_FILE);
        make_unsafe(&db);
        let err = SqliteStore::open(&state, Synchronous::Normal)
            .err()
            .expect("refused")
            .to_string();
        assert!(err.contains(says), "{err}");
        names_path_and_fix(&err, &db);
    }
}

/// The attack of issue 18: a row planted in `approved` state by the database's owner must not
/// turn a pending request into an allow. With the database another user's, the store does not
/// open at all, so the planted row is never read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_planted_approval_in_a_foreign_database_is_never_read() {
    if !root() {
        eprintln!("skipped: needs root to hand the database to UID {OTHER_UID}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let token = {
        let (host, _store) = sqlite_host(&state);
        issue_one(&host).await.unwrap()
    };
    let db = state.join(gavel_host::tokens::DB_FILE);
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute(
        "UPDATE tokens SET state = 'approved', body = replace(body, '\"pending\"', '\"approved\"')",
        [],
    )
    .unwrap();
    drop(conn);
    chown(&db, OTHER_UID);
    let err = SqliteStore::open(&state, Synchronous::Normal)
        .err()
        .expect("refused")
        .to_string();
    assert!(err.contains("owned by UID 65534"), "{err}");
    // Handed back, the row is what it says (the check is about who could have written it).
    chown(&db, euid());
    let (host, _store) = sqlite_host(&state);
    assert_eq!(state_of(&host, &token).await, "approved");
}

// Item 5: the compiled-policy cache.

fn commands_denying_rm() -> gavel_host::PolicySpec {
    gavel_host::PolicySpec::builtin("command-rules").with_config(
        json!({"global": {"deny": ["run_command(rm *)"], "allow": ["run_command(ls *)"]}}),
    )
}

fn rm() -> Value {
    json!({"action": "local.exec", "executable": "/bin/bash", "args": ["-c", "rm -rf /srv/data"],
           "sandbox_id": "sbx", "session_id": "s", "profile": "default", "hitl_mode": "async_token"})
}

fn cached_config(cache: &Path, policy: gavel_host::PolicySpec) -> gavel_host::HostConfig {
    let mut c = config(vec![policy]);
    c.cache_dir = Some(cache.to_owned());
    c.compile_cache = true;
    c
}

fn artifacts(cache: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .collect();
    found.sort();
    found
}

async fn decide_with(
    config: &gavel_host::HostConfig,
    line: &Value,
) -> gavel_host::wire::DecideResponse {
    let host = PolicyHost::new(config, Arc::new(gavel_host::tokens::MemoryStore::new()))
        .expect("host loads");
    match host
        .handle_line(line.to_string().as_bytes(), Operator::default())
        .await
    {
        Response::Decide(d) => d,
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poisoned_compiled_cache_is_recompiled_never_run() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("compiled");
    let commands = cached_config(&cache, commands_denying_rm());
    let allow_all = cached_config(&cache, default_action("allow"));
    assert_eq!(
        decide_with(&commands, &rm()).await.decision,
        WireDecision::Deny
    );
    let before: Vec<PathBuf> = artifacts(&cache);
    assert_eq!(
        decide_with(&allow_all, &rm()).await.decision,
        WireDecision::Allow
    );
    let all = artifacts(&cache);
    let commands_artifact = before[0].clone();
    let other = all
        .iter()
        .find(|p| **p != commands_artifact)
        .unwrap()
        .clone();
    assert_eq!(
        std::fs::metadata(&commands_artifact).unwrap().mode() & 0o777,
        0o600,
        "artifacts are written private"
    );
    let key = cache.join("artifacts.key");
    assert_eq!(std::fs::metadata(&key).unwrap().mode() & 0o777, 0o600);

    // Another policy's artifact copied over the pinned policy's: it must not run under its name.
    std::fs::copy(&other, &commands_artifact).unwrap();
    let r = decide_with(&commands, &rm()).await;
    assert_eq!(r.decision, WireDecision::Deny, "{r:?}");

    // Code overwritten (int3 everywhere past the header): no crash, recompiled.
    let mut bytes = std::fs::read(&commands_artifact).unwrap();
    let len = bytes.len();
    for b in &mut bytes[len / 4..len - 64] {
        *b = 0xCC;
    }
    std::fs::write(&commands_artifact, &bytes).unwrap();
    let r = decide_with(&commands, &rm()).await;
    assert_eq!(r.decision, WireDecision::Deny, "{r:?}");
    // Truncated to less than a MAC.
    std::fs::write(&commands_artifact, b"short").unwrap();
    assert_eq!(
        decide_with(&commands, &rm()).await.decision,
        WireDecision::Deny
    );
    // A rewritten artifact (it was replaced by a good one above) is used again.
    assert!(std::fs::metadata(&commands_artifact).unwrap().len() > 1000);

    for (says, make_unsafe) in unsafe_setups() {
        // An artifact another user may write, or owns, is not loaded (recompiled instead).
        std::fs::copy(&other, &commands_artifact).unwrap();
        make_unsafe(&commands_artifact);
        let r = decide_with(&commands, &rm()).await;
        assert_eq!(r.decision, WireDecision::Deny, "{says}: {r:?}");
        let _ = std::fs::remove_file(&commands_artifact);

        // A cache directory another user controls stops the host from starting.
        make_unsafe(&cache);
        let err = PolicyHost::new(&commands, Arc::new(gavel_host::tokens::MemoryStore::new()))
            .err()
            .expect("refused")
            .to_string();
        assert!(err.contains(says), "{err}");
        names_path_and_fix(&err, &cache);
        chmod(&cache, 0o700);
        std::os::unix::fs::chown(&cache, Some(euid()), None).unwrap();

        // So does a key another user could have read or written.
        make_unsafe(&key);
        let err = PolicyHost::new(&commands, Arc::new(gavel_host::tokens::MemoryStore::new()))
            .err()
            .expect("refused")
            .to_string();
        assert!(err.contains(&key.display().to_string()), "{err}");
        chmod(&key, 0o600);
        std::os::unix::fs::chown(&key, Some(euid()), None).unwrap();
    }
}

// Items 7 and 8: a full audit filesystem.

/// A small tmpfs mounted for the test, unmounted when dropped.
struct Tmpfs {
    _dir: tempfile::TempDir,
    mnt: PathBuf,
}

impl Tmpfs {
    fn mount(size: &str) -> Option<Self> {
        if !root() {
            eprintln!("skipped: needs root to mount a small tmpfs as a full disk");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let mnt = dir.path().join("mnt");
        std::fs::create_dir(&mnt).unwrap();
        let out = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(&mnt)
            .output()
            .unwrap();
        if !out.status.success() {
            eprintln!(
                "skipped: cannot mount a tmpfs here: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            return None;
        }
        Some(Self { _dir: dir, mnt })
    }

    /// Take every free byte; the returned file gives them back when removed.
    fn fill(&self) -> PathBuf {
        use std::io::Write;
        let filler = self.mnt.join("filler");
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&filler)
            .unwrap();
        let chunk = [0u8; 512];
        while f.write_all(&chunk).is_ok() {}
        filler
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.mnt).status();
    }
}

async fn manage(host: &PolicyHost, action: &str, token: &str) -> ManageResponse {
    match host
        .handle_line(
            json!({"action": action, "token_id": token})
                .to_string()
                .as_bytes(),
            Operator::default(),
        )
        .await
    {
        Response::Manage(m) => m,
        other => panic!("{other:?}"),
    }
}

async fn state_of(host: &PolicyHost, token: &str) -> String {
    let r = host
        .handle_line(
            json!({"action": "local.exec.show", "token_id": token})
                .to_string()
                .as_bytes(),
            Operator::default(),
        )
        .await
        .to_line();
    let v: Value = serde_json::from_str(&r).unwrap();
    v["token"]["state"].as_str().unwrap_or("?").to_owned()
}

/// Send audited no-ops (approvals of unknown tokens) until one cannot be recorded: the log's
/// last page is then full too. Returns the ids whose `not_found` answer was given.
async fn exhaust(host: &PolicyHost, tag: &str) -> Vec<String> {
    let mut answered = Vec::new();
    for i in 0..10_000 {
        let id = format!("{tag}-{i}");
        let r = manage(host, "local.exec.approve", &id).await;
        match r.outcome {
            gavel_host::tokens::Outcome::NotFound => answered.push(id),
            gavel_host::tokens::Outcome::Denied => {
                assert!(
                    r.reason
                        .as_deref()
                        .unwrap_or("")
                        .contains("could not be audited"),
                    "{r:?}"
                );
                return answered;
            }
            other => panic!("{other:?}"),
        }
    }
    panic!("the log never filled up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_audit_disk_leaves_log_and_store_in_step() {
    let Some(fs) = Tmpfs::mount("64k") else {
        return;
    };
    let log = fs.mnt.join("audit.jsonl");
    let (audit, writer) = AuditLog::open(&log, AuditFailure::Deny).unwrap();
    assert_eq!(
        std::fs::metadata(&log).unwrap().mode() & 0o777,
        0o600,
        "created private"
    );
    let host = PolicyHost::builder(&config(vec![default_action("pending_hitl")]))
        .audit(audit)
        .build()
        .unwrap();
    let request = exec("make", &["deploy"]);
    let token = match host
        .handle_line(request.to_string().as_bytes(), Operator::default())
        .await
    {
        Response::Decide(d) => d.approval_token.unwrap(),
        other => panic!("{other:?}"),
    };
    let retry = with(request.clone(), "approval_token", json!(token));
    let mut given = Vec::new();

    // Disk full: the approval is refused and not applied.
    let filler = fs.fill();
    given.extend(exhaust(&host, "a").await);
    let r = manage(&host, "local.exec.approve", &token).await;
    assert_eq!(r.outcome, gavel_host::tokens::Outcome::Denied, "{r:?}");
    assert!(
        r.reason.as_deref().unwrap().contains("nothing was changed"),
        "{r:?}"
    );
    assert_eq!(state_of(&host, &token).await, "pending");
    std::fs::remove_file(&filler).unwrap();
    let r = manage(&host, "local.exec.approve", &token).await;
    assert_eq!(r.outcome, gavel_host::tokens::Outcome::Ok, "{r:?}");
    assert_eq!(state_of(&host, &token).await, "approved");

    // Disk full: the retry is denied and the token stays approved (not consumed unrecorded).
    let filler = fs.fill();
    given.extend(exhaust(&host, "b").await);
    let r = host
        .handle_line(retry.to_string().as_bytes(), Operator::default())
        .await
        .to_line();
    let v: Value = serde_json::from_str(&r).unwrap();
    assert_eq!(v["decision"], "deny", "{v}");
    assert!(
        v["reason"]
            .as_str()
            .unwrap()
            .contains("could not be audited"),
        "{v}"
    );
    assert_eq!(state_of(&host, &token).await, "approved");
    std::fs::remove_file(&filler).unwrap();
    let r = host
        .handle_line(retry.to_string().as_bytes(), Operator::default())
        .await
        .to_line();
    let v: Value = serde_json::from_str(&r).unwrap();
    assert_eq!(v["decision"], "allow", "{v}");
    assert_eq!(state_of(&host, &token).await, "consumed");
    let r = manage(&host, "local.exec.approve", "after-recovery").await;
    assert_eq!(r.outcome, gavel_host::tokens::Outcome::NotFound, "{r:?}");
    given.push("after-recovery".into());

    drop(host);
    tokio::task::spawn_blocking(move || writer.finish())
        .await
        .unwrap();
    // Item 7: every line is a whole record; exactly the answers given are on record.
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.ends_with('\n'));
    let records: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("torn line {l:?}: {e}")))
        .collect();
    let not_found: Vec<String> = records
        .iter()
        .filter(|r| r["verdict"] == "not_found")
        .map(|r| r["token_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(not_found, given);
    assert_eq!(records.last().unwrap()["token_id"], "after-recovery");
    // Item 8: the token's life on record is the life it had.
    let life: Vec<&str> = records
        .iter()
        .filter(|r| r["token_id"] == token.as_str())
        .filter_map(|r| r["transition"].as_str())
        .collect();
    assert_eq!(life, ["issued", "approved", "consumed"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unfinished_record_left_by_a_crash_is_cut_off_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    std::fs::write(&log, "{\"whole\":1}\n{\"verdict\":\"al").unwrap();
    chmod(&log, 0o600);
    let (audit, writer) = AuditLog::open(&log, AuditFailure::Deny).unwrap();
    let host = PolicyHost::builder(&config(vec![default_action("allow")]))
        .audit(audit)
        .build()
        .unwrap();
    host.handle_line(exec("ls", &[]).to_string().as_bytes(), Operator::default())
        .await;
    drop(host);
    tokio::task::spawn_blocking(move || writer.finish())
        .await
        .unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert_eq!(lines[1]["verdict"], "allow");
}

#[test]
fn an_audit_log_another_user_controls_is_refused() {
    for (says, make_unsafe) in unsafe_setups() {
        let dir = tempfile::tempdir().unwrap();
        let logs = dir.path().join("logs");
        std::fs::create_dir(&logs).unwrap();
        let log = logs.join("audit.jsonl");
        drop(AuditLog::open(&log, AuditFailure::Deny).unwrap());
        make_unsafe(&log);
        let err = AuditLog::open(&log, AuditFailure::Deny)
            .err()
            .expect("refused")
            .to_string();
        assert!(err.contains(says), "{err}");
        names_path_and_fix(&err, &log);
        std::fs::remove_file(&log).unwrap();
        make_unsafe(&logs);
        let err = AuditLog::open(&log, AuditFailure::Deny)
            .err()
            .expect("refused")
            .to_string();
        assert!(err.contains(says), "{err}");
        names_path_and_fix(&err, &logs);
    }
}

// Item 9: the database file under a running server.

async fn issue_one(host: &PolicyHost) -> Result<String, String> {
    match host
        .handle_line(
            exec("make", &["deploy"]).to_string().as_bytes(),
            Operator::default(),
        )
        .await
    {
        Response::Decide(d) if d.decision == WireDecision::PendingHitl => {
            Ok(d.approval_token.unwrap())
        }
        Response::Decide(d) => Err(d.reason.unwrap_or_default()),
        other => panic!("{other:?}"),
    }
}

fn sqlite_host(state: &Path) -> (PolicyHost, Arc<SqliteStore>) {
    let store = Arc::new(SqliteStore::open(state, Synchronous::Normal).unwrap());
    // These tests issue hundreds of asks in one session.
    let mut config = config(vec![default_action("pending_hitl")]);
    config.max_pending_per_session = usize::MAX;
    config.max_pending = usize::MAX;
    let host = PolicyHost::new(&config, store.clone() as Arc<dyn TokenStore>).unwrap();
    (host, store)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_deleted_or_replaced_while_running_fails_closed() {
    for replace in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let (host, _store) = sqlite_host(&state);
        let token = issue_one(&host).await.unwrap();
        let db = state.join(gavel_host::tokens::DB_FILE);
        for f in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{f}", db.display()));
        }
        let says = if replace {
            // A second store creates a fresh database at the path.
            drop(SqliteStore::open(&state, Synchronous::Normal).unwrap());
            "replaced while running"
        } else {
            "deleted while running"
        };
        let err = issue_one(&host).await.unwrap_err();
        assert!(
            err.contains(says) && err.contains(&db.display().to_string()),
            "{err}"
        );
        // Every later call fails closed too, approvals included.
        let r = manage(&host, "local.exec.approve", &token).await;
        assert_eq!(r.outcome, gavel_host::tokens::Outcome::Denied, "{r:?}");
        assert!(r.reason.unwrap().contains(says));
        assert!(host.prune().await.is_err());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_database_is_refused_at_open_and_noticed_while_running() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    {
        let (host, _store) = sqlite_host(&state);
        for _ in 0..200 {
            issue_one(&host).await.unwrap();
        }
    }
    // Closed; checkpoint the log into the file. Now garble it while a server runs.
    let db = state.join(gavel_host::tokens::DB_FILE);
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .unwrap();
    let (host, store) = sqlite_host(&state);
    assert!(host.prune().await.is_ok());
    let mut bytes = std::fs::read(&db).unwrap();
    assert!(bytes.len() > 16 * 4096, "{} bytes", bytes.len());
    for b in &mut bytes[4096..12 * 4096] {
        *b = 0xA5;
    }
    std::fs::write(&db, &bytes).unwrap();
    let err = host.prune().await.unwrap_err().to_string();
    assert!(
        err.contains("corrupt") && err.contains(&db.display().to_string()),
        "{err}"
    );
    let err = issue_one(&host).await.unwrap_err();
    assert!(err.contains("corrupt"), "{err}");
    drop(host);
    drop(store);
    let err = SqliteStore::open(&state, Synchronous::Normal)
        .err()
        .expect("refused")
        .to_string();
    assert!(err.contains("corrupt"), "{err}");
}

// Item 11: metrics.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_without_loading_tokens_or_waiting_for_decisions() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let (host, store) = sqlite_host(&state);
    let a = issue_one(&host).await.unwrap();
    issue_one(&host).await.unwrap();
    assert_eq!(
        manage(&host, "local.exec.approve", &a).await.outcome,
        gavel_host::tokens::Outcome::Ok
    );
    let counts = host.token_counts().await.unwrap();
    assert_eq!((counts.pending, counts.approved), (1, 1));

    // A row no one can decode: listing fails on it, counting never reads it.
    let db = state.join(gavel_host::tokens::DB_FILE);
    let outside = rusqlite::Connection::open(&db).unwrap();
    outside
        .execute(
            "INSERT INTO tokens (id, state, created_at_ms, expires_at_ms, body) \
             VALUES ('x', 'pending', 0, ?1, 'not json')",
            [i64::MAX],
        )
        .unwrap();
    assert!(host.live_tokens().await.is_err());
    let counts = host.token_counts().await.unwrap();
    assert_eq!((counts.pending, counts.approved), (2, 1));

    // A writer that holds the database (another process sharing it) keeps the decision
    // connection waiting in its busy timeout (5 s); a scrape meanwhile answers from the read
    // connection at once.
    outside
        .execute_batch("BEGIN IMMEDIATE; DELETE FROM tokens WHERE id = 'x';")
        .unwrap();
    let waiting = tokio::spawn({
        let host = host.clone();
        async move { issue_one(&host).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let counts = store.counts(0).await.unwrap();
    let took = started.elapsed();
    assert_eq!(
        (counts.pending, counts.approved),
        (2, 1),
        "the open transaction is not seen"
    );
    assert!(
        took < Duration::from_millis(2500),
        "a scrape waited {took:?} behind a decision"
    );
    let still_waiting = !waiting.is_finished();
    outside.execute_batch("COMMIT;").unwrap();
    let issued = waiting.await.unwrap();
    assert!(
        still_waiting,
        "the decision should still wait for the writer, but answered {issued:?}"
    );
    assert!(issued.is_ok(), "{issued:?}");
}

// Near miss: metrics beyond loopback.

#[test]
fn metrics_on_a_non_loopback_address_are_warned_about() {
    use gavel_host::server::metrics_exposure;
    for (addr, warned) in [
        ("127.0.0.1:9464", false),
        ("[::1]:9464", false),
        ("0.0.0.0:9464", true),
        ("[::]:9464", true),
        ("10.1.2.3:9464", true),
    ] {
        let w = metrics_exposure(addr.parse().unwrap());
        assert_eq!(w.is_some(), warned, "{addr}: {w:?}");
        if let Some(w) = w {
            assert!(w.contains(addr) && w.contains("authentication"), "{w}");
        }
    }
}
