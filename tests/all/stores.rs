//! The token-store conformance suite on the memory and SQLite stores, and the SQLite store's
//! durability: a `gavel serve` killed with SIGKILL loses no pending or approved token and never
//! lets a consumed one run again. (Redis: `tests/redis.rs`.)
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

use crate::common;

use common::*;
use gavel_host::tokens::{MemoryStore, SqliteStore, Synchronous, TokenStore};
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_conformance() {
    conformance::suite(|| async { Arc::new(MemoryStore::new()) as Arc<dyn TokenStore> }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_conformance() {
    let dirs = std::sync::Mutex::new(Vec::new());
    conformance::suite(|| {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("state"), Synchronous::Full).unwrap();
        dirs.lock().unwrap().push(dir);
        async move { Arc::new(store) as Arc<dyn TokenStore> }
    })
    .await;
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 200, ..Default::default() })]

    /// Random sequences of issue, retry, approve, revoke, expire and prune agree with the model.
    #[test]
    fn memory_store_follows_the_model(ops in model::ops()) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let store = MemoryStore::new();
        rt.block_on(model::check(&store, &ops)).map_err(proptest::test_runner::TestCaseError::fail)?;
    }

    #[test]
    fn sqlite_store_follows_the_model(ops in model::ops()) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path(), Synchronous::Normal).unwrap();
        rt.block_on(model::check(&store, &ops)).map_err(proptest::test_runner::TestCaseError::fail)?;
    }
}

#[test]
fn the_sqlite_store_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    SqliteStore::open(&state, Synchronous::Normal).unwrap();
    assert_eq!(
        std::fs::metadata(&state).unwrap().permissions().mode() & 0o777,
        0o700
    );
    let db = state.join(gavel_host::tokens::DB_FILE);
    assert_eq!(
        std::fs::metadata(&db).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

fn serve(dir: &Path) -> std::process::Child {
    spawn_serve(&dir.join("gavel.toml"))
}

#[test]
fn a_sigkilled_server_loses_no_token() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("gavel.toml"),
        "socket = \"exec.sock\"\n[store]\nkind = \"sqlite\"\npath = \"state\"\n[[policy]]\nname = \"ask\"\nbuiltin = \"default-action\"\n",
    )
    .unwrap();
    let socket = dir.path().join("exec.sock");
    let mut server = serve(dir.path());
    let request = |n: &str| exec("make", &[n]);
    let token = |n: &str, server_socket: &Path| {
        ask_socket(server_socket, &request(n))["approval_token"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let pending = token("pending", &socket);
    let approved = token("approved", &socket);
    let consumed = token("consumed", &socket);
    for t in [&approved, &consumed] {
        assert_eq!(
            ask_socket(
                &socket,
                &json!({"action": "local.exec.approve", "token_id": t})
            )["outcome"],
            "ok"
        );
    }
    let retry = |n: &str, t: &str| with(request(n), "approval_token", json!(t));
    assert_eq!(
        ask_socket(&socket, &retry("consumed", &consumed))["decision"],
        "allow"
    );

    server.kill().unwrap(); // SIGKILL: no shutdown, no flush.
    server.wait().unwrap();
    let mut server = serve(dir.path());
    let state = |t: &str| {
        ask_socket(
            &socket,
            &json!({"action": "local.exec.show", "token_id": t}),
        )["token"]["state"]
            .clone()
    };
    assert_eq!(state(&pending), "pending");
    assert_eq!(state(&approved), "approved");
    assert_eq!(state(&consumed), "consumed");
    let replay = ask_socket(&socket, &retry("consumed", &consumed));
    assert!(
        replay["reason"]
            .as_str()
            .unwrap()
            .contains("already consumed"),
        "{replay}"
    );
    assert_eq!(
        ask_socket(&socket, &retry("approved", &approved))["decision"],
        "allow"
    );
    assert_eq!(
        ask_socket(&socket, &retry("pending", &pending))["decision"],
        "pending_hitl"
    );
    server.kill().unwrap();
    server.wait().unwrap();
}

/// SIGKILL while answers are being written: every answer a client received is backed by the
/// store (its token is there after restart) and by the audit log (its record is on disk).
#[test]
fn sigkill_during_writes_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("gavel.toml"),
        "socket = \"exec.sock\"\nmax_pending_per_session = 1000000\nmax_pending = 1000000\naudit_log = \"audit.jsonl\"\n[store]\nkind = \"sqlite\"\npath = \"state\"\n\
         [[policy]]\nname = \"ask\"\nbuiltin = \"default-action\"\n",
    )
    .unwrap();
    let socket = dir.path().join("exec.sock");
    let mut server = serve(dir.path());
    let acknowledged = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (socket, acknowledged) = (socket.clone(), acknowledged.clone());
            std::thread::spawn(move || {
                use std::io::Write;
                let Ok(stream) = std::os::unix::net::UnixStream::connect(&socket) else {
                    return;
                };
                let mut writer = stream.try_clone().unwrap();
                let mut reader = BufReader::new(stream);
                for i in 0.. {
                    let line = exec("make", &[&format!("w{w}-{i}")]);
                    if writeln!(writer, "{line}").is_err() {
                        return;
                    }
                    let mut answer = String::new();
                    match reader.read_line(&mut answer) {
                        Ok(n) if n > 0 => {}
                        _ => return, // the server died mid-request: that answer was never given
                    }
                    let v: serde_json::Value = serde_json::from_str(&answer).unwrap();
                    acknowledged
                        .lock()
                        .unwrap()
                        .push(v["approval_token"].as_str().unwrap().to_owned());
                }
            })
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(700));
    server.kill().unwrap(); // SIGKILL while the four clients are mid-stream.
    server.wait().unwrap();
    for w in writers {
        w.join().unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() > 20,
        "only {} answers before the kill",
        acknowledged.len()
    );

    let audit = std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap();
    let mut server = serve(dir.path());
    for t in &acknowledged {
        let shown = ask_socket(
            &socket,
            &json!({"action": "local.exec.show", "token_id": t}),
        );
        assert_eq!(
            shown["token"]["state"], "pending",
            "token {t} was acknowledged but is gone: {shown}"
        );
        assert!(
            audit.contains(t.as_str()),
            "token {t} was acknowledged but has no audit record"
        );
    }
    eprintln!(
        "{} acknowledged answers survived SIGKILL",
        acknowledged.len()
    );
    server.kill().unwrap();
    server.wait().unwrap();
}
