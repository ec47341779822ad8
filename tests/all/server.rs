//! The sidecar over real Unix sockets: the contract's flow and management table, one line per
//! connection and many, split sockets, hostile clients, socket hygiene, audit, reload under
//! traffic with a broken replacement, and a SIGTERM drain of the real binary.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

use crate::common;

use common::*;
use gavel_host::server::Server;
use gavel_host::{HostConfig, PolicyHost};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

struct Running {
    dir: tempfile::TempDir,
    socket: PathBuf,
    management: Option<PathBuf>,
    host: PolicyHost,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Running {
    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task.take().unwrap().await.unwrap();
        assert!(
            !self.socket.exists(),
            "the socket file is removed on shutdown"
        );
    }
}

async fn start(mut config: HostConfig, split: bool) -> Running {
    let dir = tempfile::tempdir().unwrap();
    config.socket = Some(dir.path().join("exec.sock"));
    if split {
        config.management_socket = Some(dir.path().join("manage.sock"));
    }
    let host = PolicyHost::new(
        &config,
        std::sync::Arc::new(gavel_host::tokens::MemoryStore::new()),
    )
    .unwrap();
    let server = Server::bind(host.clone(), &config).unwrap();
    let socket = server.socket().to_owned();
    let management = server.management_socket().map(Path::to_owned);
    let (stop, task) = run_in_background(server);
    Running {
        dir,
        socket,
        management,
        host,
        stop: Some(stop),
        task: Some(task),
    }
}

/// One request per connection, as the reference client does. Blocking I/O runs on a blocking
/// thread so the server's runtime keeps running.
async fn once(socket: &Path, line: Value) -> Value {
    let socket = socket.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut s = UnixStream::connect(&socket).unwrap();
        writeln!(s, "{line}").unwrap();
        let mut answer = String::new();
        BufReader::new(s).read_line(&mut answer).unwrap();
        serde_json::from_str(&answer).unwrap()
    })
    .await
    .unwrap()
}

/// Several lines on one connection; the answers in order.
async fn many(socket: &Path, lines: Vec<String>) -> Vec<Value> {
    let socket = socket.to_owned();
    tokio::task::spawn_blocking(move || {
        let s = UnixStream::connect(&socket).unwrap();
        let mut w = s.try_clone().unwrap();
        for l in &lines {
            // The server may already have closed (a blank line); later writes may fail.
            let _ = writeln!(w, "{l}");
        }
        let _ = w.shutdown(std::net::Shutdown::Write);
        let mut r = BufReader::new(s);
        // Every answer until the server closes (after the last line, or at a blank one).
        let mut answers = Vec::new();
        loop {
            let mut a = String::new();
            if r.read_line(&mut a).unwrap_or(0) == 0 {
                break answers;
            }
            answers.push(serde_json::from_str(&a).unwrap());
        }
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_contract_flow_one_request_per_connection() {
    let s = start(config(vec![default_action("pending_hitl")]), false).await;
    let req = exec("/usr/bin/make", &["build"]);
    let pending = once(&s.socket, req.clone()).await;
    assert_eq!(pending["decision"], "pending_hitl");
    assert_eq!(pending["retry_after_ms"], 500);
    let token = pending["approval_token"].as_str().unwrap().to_owned();
    let retry = with(req.clone(), "approval_token", json!(token));
    assert_eq!(
        once(&s.socket, retry.clone()).await["decision"],
        "pending_hitl"
    );
    assert_eq!(
        once(
            &s.socket,
            json!({"action": "local.exec.approve", "token_id": token})
        )
        .await,
        json!({"outcome": "ok"})
    );
    assert_eq!(once(&s.socket, retry.clone()).await["decision"], "allow");
    let replay = once(&s.socket, retry.clone()).await;
    assert!(
        replay["reason"]
            .as_str()
            .unwrap()
            .contains("already consumed")
    );
    for (action, outcome) in [
        ("local.exec.approve", "already_consumed"),
        ("local.exec.revoke", "already_consumed"),
    ] {
        assert_eq!(
            once(&s.socket, json!({"action": action, "token_id": token})).await["outcome"],
            outcome
        );
    }
    assert_eq!(
        once(
            &s.socket,
            json!({"action": "local.exec.revoke", "token_id": "nope"})
        )
        .await["outcome"],
        "not_found"
    );
    // A second token: revoke, then the management table's revoked row.
    let t2 = once(&s.socket, req.clone()).await["approval_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        once(
            &s.socket,
            json!({"action": "local.exec.revoke", "token_id": t2})
        )
        .await["outcome"],
        "ok"
    );
    assert_eq!(
        once(
            &s.socket,
            json!({"action": "local.exec.approve", "token_id": t2})
        )
        .await["outcome"],
        "already_revoked"
    );
    assert_eq!(
        once(
            &s.socket,
            json!({"action": "local.exec.revoke", "token_id": t2})
        )
        .await["outcome"],
        "ok"
    );
    let revoked = once(&s.socket, with(req, "approval_token", json!(t2))).await;
    assert!(revoked["reason"].as_str().unwrap().contains("revoked"));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_lines_on_one_connection_are_answered_in_order() {
    let s = start(config(vec![default_action("allow")]), false).await;
    let lines = vec![
        exec("ls", &[]).to_string(),
        "not json".to_owned(),
        json!({"action": "launch"}).to_string(),
        json!({"action": "local.exec.approve"}).to_string(),
        exec("ls", &["-la"]).to_string(),
        // firma closes on a blank line: nothing after it is read.
        "".to_owned(),
        exec("ls", &["-l"]).to_string(),
    ];
    let answers = many(&s.socket, lines).await;
    assert_eq!(answers[0]["decision"], "allow");
    assert!(
        answers[1]["reason"]
            .as_str()
            .unwrap()
            .starts_with("malformed request:")
    );
    assert_eq!(answers[2]["reason"], "unknown action 'launch'");
    assert_eq!(answers[3]["outcome"], "unsupported_action");
    assert_eq!(answers[4]["decision"], "allow");
    assert_eq!(answers.len(), 5, "nothing is answered after the blank line");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_sockets_keep_management_off_the_governance_socket() {
    let s = start(config(vec![default_action("pending_hitl")]), true).await;
    let management = s.management.clone().unwrap();
    let token = once(&s.socket, exec("ls", &[])).await["approval_token"]
        .as_str()
        .unwrap()
        .to_owned();
    for line in [
        json!({"action": "local.exec.approve", "token_id": token}),
        json!({"action": "local.exec.list"}),
    ] {
        let refused = once(&s.socket, line).await;
        assert_eq!(refused["outcome"], "unsupported_action");
        assert!(
            refused["reason"].as_str().unwrap().contains("manage.sock"),
            "{refused}"
        );
    }
    let refused = once(&management, exec("ls", &[])).await;
    assert_eq!(refused["outcome"], "unsupported_action");
    let listed = once(&management, json!({"action": "local.exec.list"})).await;
    let record = &listed["tokens"][0];
    assert_eq!(record["token_id"], token.as_str());
    assert_eq!(record["state"], "pending");
    assert_eq!(record["summary"], "ls");
    assert_eq!(record["allowed_decisions"], json!(["approve", "revoke"]));
    assert_eq!(record["policy"], "default-action");
    assert_eq!(
        once(
            &management,
            json!({"action": "local.exec.approve", "token_id": token})
        )
        .await["outcome"],
        "ok"
    );
    let shown = once(
        &management,
        json!({"action": "local.exec.show", "token_id": token}),
    )
    .await;
    assert_eq!(shown["token"]["state"], "approved");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_silent_clients_are_cut_off_without_disturbing_others() {
    let mut c = config(vec![default_action("allow")]);
    c.idle_timeout_ms = 300;
    let s = start(c, false).await;
    let socket = s.socket.clone();
    let (oversized, silent) = tokio::task::spawn_blocking(move || {
        // 70 KiB without a newline: the connection is closed, nothing is answered.
        let mut big = UnixStream::connect(&socket).unwrap();
        let _ = big.write_all(&vec![b'x'; 70 * 1024]);
        let _ = big.write_all(b"\n");
        let mut got = String::new();
        let _ = big.read_to_string(&mut got);
        // A client that sends nothing is disconnected after the idle timeout.
        let started = Instant::now();
        let mut quiet = UnixStream::connect(&socket).unwrap();
        let mut buf = [0u8; 1];
        let n = quiet.read(&mut buf).unwrap_or(0);
        (got, (n, started.elapsed()))
    })
    .await
    .unwrap();
    assert_eq!(oversized, "", "an oversized line gets no answer");
    assert_eq!(silent.0, 0);
    assert!(
        silent.1 >= Duration::from_millis(250) && silent.1 < Duration::from_secs(10),
        "{:?}",
        silent.1
    );
    // Meanwhile the server answers others.
    assert_eq!(once(&s.socket, exec("ls", &[])).await["decision"], "allow");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_files_are_private_and_stale_ones_are_replaced() {
    let s = start(config(vec![default_action("allow")]), false).await;
    let mode = std::fs::metadata(&s.socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // A live socket is not stolen by a second server.
    let mut c = config(vec![default_action("allow")]);
    c.socket = Some(s.socket.clone());
    let host = PolicyHost::new(
        &c,
        std::sync::Arc::new(gavel_host::tokens::MemoryStore::new()),
    )
    .unwrap();
    let err = Server::bind(host.clone(), &c).err().unwrap().to_string();
    assert!(err.contains("running server"), "{err}");
    // A file that is not a socket is never deleted.
    let plain = s.dir.path().join("plain");
    std::fs::write(&plain, "keep me").unwrap();
    c.socket = Some(plain.clone());
    let err = Server::bind(host.clone(), &c).err().unwrap().to_string();
    assert!(err.contains("not a socket"), "{err}");
    assert_eq!(std::fs::read_to_string(&plain).unwrap(), "keep me");
    // A stale socket (its server gone) is replaced.
    let stale = s.dir.path().join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    c.socket = Some(stale.clone());
    assert!(Server::bind(host, &c).is_ok());
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_of_another_uid_gets_no_answer() {
    // Only root can run a client as another user.
    let me = std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
        .unwrap_or(1);
    if me != 0 {
        eprintln!("skipped: needs root to connect as another UID");
        return;
    }
    let s = start(config(vec![default_action("allow")]), false).await;
    // Let the other user reach the socket, so it is SO_PEERCRED that refuses it.
    std::fs::set_permissions(s.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&s.socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    // The gavel binary lives under root's home, out of another user's reach; Debian's perl does not.
    if !Path::new("/usr/bin/perl").exists() {
        eprintln!("skipped: needs /usr/bin/perl to act as a client of another UID");
        s.stop().await;
        return;
    }
    let out = tokio::task::spawn_blocking({
        let socket = s.socket.clone();
        move || {
            use std::os::unix::process::CommandExt;
            let script = r#"use IO::Socket::UNIX; $SIG{PIPE} = "IGNORE"; my $s = IO::Socket::UNIX->new(Peer => $ARGV[0]) or die "connect: $!";
                print $s "$ARGV[1]\n"; my $a = <$s>; print defined $a ? "ANSWER $a" : "NO ANSWER\n";"#;
            std::process::Command::new("/usr/bin/perl")
                .args(["-e", script])
                .arg(&socket)
                .arg(exec("ls", &[]).to_string())
                .uid(65534)
                .gid(65534)
                .current_dir("/")
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.trim(), "NO ANSWER", "{out:?}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_decision_and_operation_is_audited() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let mut c = config(vec![default_action("pending_hitl")]);
    c.audit_redact_args = true;
    let (audit, writer) = gavel_host::audit::AuditLog::open(&log, Default::default()).unwrap();
    let host = PolicyHost::builder(&c).audit(audit).build().unwrap();
    let r = host
        .handle_line(
            exec("curl", &["-H", "Authorization: secret"])
                .to_string()
                .as_bytes(),
            Default::default(),
        )
        .await;
    let token = match r {
        gavel_host::wire::Response::Decide(d) => d.approval_token.unwrap(),
        other => panic!("{other:?}"),
    };
    host.handle_line(
        json!({"action": "local.exec.approve", "token_id": token})
            .to_string()
            .as_bytes(),
        Default::default(),
    )
    .await;
    drop(host);
    tokio::task::spawn_blocking(move || writer.finish())
        .await
        .unwrap();
    let lines: Vec<Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["verdict"], "pending_hitl");
    assert_eq!(lines[0]["transition"], "issued");
    assert_eq!(lines[0]["summary"], "curl [2 args redacted]");
    assert!(!lines[0].to_string().contains("secret"));
    assert!(
        lines[0]["policies"][0]
            .as_str()
            .unwrap()
            .starts_with("default-action@sha256:")
    );
    assert_eq!(lines[1]["action"], "local.exec.approve");
    assert_eq!(lines[1]["transition"], "approved");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_audit_log_that_cannot_be_written_fails_closed_or_not_as_configured() {
    for (mode, want) in [
        (gavel_host::audit::AuditFailure::Deny, "deny"),
        (gavel_host::audit::AuditFailure::Continue, "allow"),
    ] {
        // Writes to /dev/full fail with ENOSPC: a disk that is full.
        let (audit, _writer) =
            gavel_host::audit::AuditLog::open(Path::new("/dev/full"), mode).unwrap();
        let host = PolicyHost::builder(&config(vec![default_action("allow")]))
            .audit(audit)
            .build()
            .unwrap();
        let r = host
            .handle_line(exec("ls", &[]).to_string().as_bytes(), Default::default())
            .await
            .to_line();
        let v: Value = serde_json::from_str(&r).unwrap();
        assert_eq!(v["decision"], want, "{mode:?}: {v}");
        if want == "deny" {
            assert!(
                v["reason"]
                    .as_str()
                    .unwrap()
                    .contains("could not be audited"),
                "{v}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_reload_keeps_the_old_chain_serving_under_traffic() {
    let s = start(config(vec![default_action("allow")]), false).await;
    let socket = s.socket.clone();
    let traffic = tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let (mut allowed, mut denied, mut failed) = (0, 0, 0);
        while started.elapsed() < Duration::from_millis(1500) {
            let answer = (|| -> Option<Value> {
                let mut c = UnixStream::connect(&socket).ok()?;
                writeln!(c, "{}", exec("ls", &[])).ok()?;
                let mut a = String::new();
                BufReader::new(c).read_line(&mut a).ok()?;
                serde_json::from_str(&a).ok()
            })();
            match answer.as_ref().and_then(|v| v["decision"].as_str()) {
                Some("allow") => allowed += 1,
                Some("deny") => denied += 1,
                _ => failed += 1,
            }
        }
        (allowed, denied, failed)
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("policy.wasm");
    std::fs::write(&garbage, b"\0asm garbage").unwrap();
    let broken = config(vec![gavel_host::PolicySpec::file(&garbage)]);
    let host = s.host.clone();
    let err = tokio::task::spawn_blocking(move || host.reload(&broken))
        .await
        .unwrap()
        .unwrap_err()
        .to_string();
    assert!(err.contains("policy `policy`"), "{err}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let host = s.host.clone();
    let good = config(vec![default_action("deny")]);
    tokio::task::spawn_blocking(move || host.reload(&good))
        .await
        .unwrap()
        .unwrap();
    let (allowed, denied, failed) = traffic.await.unwrap();
    assert_eq!(failed, 0, "every request was answered");
    assert!(
        allowed > 10 && denied > 10,
        "allowed {allowed}, denied {denied}"
    );
    assert!(
        s.host
            .metrics_text()
            .contains(r#"gavel_reloads_total{result="failed"} 1"#)
    );
    s.stop().await;
}

/// The real binary: SIGHUP-free reload when a policy file changes, and SIGTERM draining a
/// request in flight.
#[test]
fn the_binary_reloads_on_file_change_and_drains_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.wasm");
    std::fs::copy(guest("misbehave"), &policy).unwrap();
    let write_config = |mode: &str| {
        std::fs::write(
            dir.path().join("gavel.toml"),
            format!(
                "socket = \"exec.sock\"\nwatch_ms = 100\n[store]\npath = \"state\"\n[[policy]]\nname = \"p\"\npath = \"policy.wasm\"\nconfig = {{ decide = \"{mode}\" }}\nlimits = {{ deadline_ms = 400 }}\n"
            ),
        )
        .unwrap();
    };
    write_config("allow");
    let mut child = spawn_serve(&dir.path().join("gavel.toml"));
    let socket = dir.path().join("exec.sock");
    let ask = |socket: &Path| -> Value {
        let mut c = UnixStream::connect(socket).unwrap();
        writeln!(c, "{}", exec("ls", &[])).unwrap();
        let mut a = String::new();
        BufReader::new(c).read_line(&mut a).unwrap();
        serde_json::from_str(&a).unwrap()
    };
    assert_eq!(ask(&socket)["decision"], "allow");

    // A garbage policy file: the reload fails, the old chain keeps answering.
    std::fs::write(&policy, b"not wasm at all").unwrap();
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(ask(&socket)["decision"], "allow");
    // A good file and a new configuration: reloaded.
    std::fs::copy(guest("misbehave"), &policy).unwrap();
    write_config("loop");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let a = ask(&socket);
        if a["decision"] == "deny" {
            assert!(
                a["reason"].as_str().unwrap().contains("400 ms deadline"),
                "{a}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "the new chain never took over");
        std::thread::sleep(Duration::from_millis(100));
    }

    // A request in flight (the looping policy takes its whole 400 ms), then SIGTERM: the
    // answer still arrives, the process exits cleanly, the socket file is gone.
    let mut c = UnixStream::connect(&socket).unwrap();
    writeln!(c, "{}", exec("ls", &[])).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let pid = child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let mut a = String::new();
    BufReader::new(c).read_line(&mut a).unwrap();
    let a: Value = serde_json::from_str(&a).unwrap();
    assert_eq!(a["decision"], "deny");
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(!socket.exists());
}
