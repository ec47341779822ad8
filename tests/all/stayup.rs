//! Staying up under hostile clients and hostile input (issue 18): clients that never read,
//! slow decisions, NUL and control characters, overlong reasons, floods of pending tokens, and
//! secrets in approval summaries.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

use crate::common;

use common::*;
use gavel_host::wire::{Query, WireDecision};
use gavel_host::{HostConfig, PolicySpec};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

/// `builtin:command-rules` with these global rules.
fn command_rules(allow: &[&str], deny: &[&str]) -> PolicySpec {
    let wrap =
        |r: &[&str]| -> Vec<String> { r.iter().map(|r| format!("run_command({r})")).collect() };
    PolicySpec::builtin("command-rules").with_config(json!({
        "global": { "allow": wrap(allow), "deny": wrap(deny) }
    }))
}

// ---------------------------------------------------------------------------------------------
// NUL and control characters (item 6)
// ---------------------------------------------------------------------------------------------

/// A NUL moved across an argument boundary must not redeem a token approved for another argv,
/// and must not slip past command-rules; names and ids take no control character, while
/// arguments keep tab, newline and CR.
#[tokio::test]
async fn nul_and_control_characters_are_malformed() {
    let h = harness(&config(vec![default_action("pending_hitl")]));
    let approved = exec("git", &["push", "--dry-run", "origin"]);
    let token = h.issue(&approved).await;
    assert!(
        h.manage("local.exec.approve", &token).await.outcome == gavel_host::tokens::Outcome::Ok
    );
    let moved = with(
        with(
            exec("git", &[]),
            "args",
            json!(["push\u{0}--dry-run", "origin"]),
        ),
        "approval_token",
        json!(token),
    );
    let reason = denied(&h.decide(&moved).await).to_owned();
    assert!(reason.starts_with("malformed request:"), "{reason}");
    assert!(reason.contains("NUL"), "{reason}");
    // The token was not spent on the forgery: the real request still redeems it.
    let real = with(approved, "approval_token", json!(token));
    assert_eq!(h.decide(&real).await.decision, WireDecision::Allow);

    let rules = harness(&config(vec![command_rules(&["git *"], &["git push *"])]));
    let split = with(exec("git", &[]), "args", json!(["push\u{0}", "origin"]));
    let reason = denied(&rules.decide(&split).await).to_owned();
    assert!(reason.starts_with("malformed request:"), "{reason}");
    assert_eq!(
        rules.decide(&exec("git", &["status"])).await.decision,
        WireDecision::Allow
    );

    // Control characters in names and ids; NUL in any text field.
    let bad = [
        with(exec("ls", &[]), "executable", json!("ls\u{1b}[2J")),
        with(exec("ls", &[]), "executable", json!("ls\n")),
        with(exec("ls", &[]), "session_id", json!("sess\u{0}1")),
        with(exec("ls", &[]), "sandbox_id", json!("sbx\t1")),
        with(exec("ls", &[]), "agent_id", json!("agent\u{7f}")),
        with(exec("ls", &[]), "approval_token", json!("tok\u{0}")),
        json!({"action": "tool.call", "tool": "run\u{0}command", "arg": "ls",
               "session_id": "s", "sandbox_id": "b"}),
        json!({"action": "tool.call", "tool": "run_command", "arg": "ls\u{0} -la",
               "session_id": "s", "sandbox_id": "b"}),
        json!({"action": "http.request", "method": "GET", "host": "example.com",
               "path": "/", "headers": {"x-a": "b\u{0}"}, "session_id": "s", "sandbox_id": "b"}),
        json!({"action": "connect", "host": "example.com", "port": 443,
               "session_id": "s\u{85}", "sandbox_id": "b"}),
    ];
    for line in bad {
        let r = h.decide(&line).await;
        let reason = denied(&r);
        assert!(reason.starts_with("malformed request:"), "{line}: {reason}");
    }
    // Arguments and command text keep tab, newline and CR: the policies judge them.
    let multi_line = with(exec("sh", &[]), "args", json!(["-c", "a\tb\r\nc"]));
    assert_eq!(
        h.decide(&multi_line).await.decision,
        WireDecision::PendingHitl
    );
    let tool = json!({"action": "tool.call", "tool": "run_command", "arg": "echo a\necho\tb",
                      "session_id": "s", "sandbox_id": "b"});
    assert_eq!(h.decide(&tool).await.decision, WireDecision::PendingHitl);
    // A management request naming a token with a NUL is refused, not looked up.
    let r = h
        .manage("local.exec.revoke", &format!("{token}\u{0}"))
        .await;
    assert_eq!(
        r.outcome,
        gavel_host::tokens::Outcome::UnsupportedAction,
        "{r:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Overlong reasons and suggestions (item 10)
// ---------------------------------------------------------------------------------------------

/// A reason is display text: command-rules quotes the command, and a 10 KiB command it allows
/// is allowed, its reason cut with a marker. A 10 MiB reason on a deny is cut the same way.
#[tokio::test]
async fn a_long_reason_never_changes_the_verdict() {
    let h = harness(&config(vec![command_rules(&["git *"], &["rm *"])]));
    let paths: Vec<String> = (0..500)
        .map(|i| format!("src/module_{i:04}/file.rs"))
        .collect();
    let mut args = vec!["add".to_owned()];
    args.extend(paths);
    assert!(args.iter().map(String::len).sum::<usize>() > 10 << 10);
    let line = with(exec("git", &[]), "args", json!(args));
    let r = h.decide(&line).await;
    assert_eq!(r.decision, WireDecision::Allow, "{r:?}");
    let reason = r.reason.unwrap_or_default();
    // command-rules elides the command itself ("[N characters cut]"); the host would cut
    // what a policy does not ("[... N bytes cut]").
    assert!(reason.contains(" cut]"), "{reason}");
    assert!(reason.len() < 4096 + 200, "{}", reason.len());

    let mut spec = misbehave("bad", json!({"decide": "huge-reason"}));
    // Writing 10 MiB takes time on a loaded machine; this case is about size.
    spec.limits.deadline_ms = Some(5000);
    let huge = harness(&config(vec![spec]));
    let r = huge.decide(&exec("ls", &[])).await;
    let reason = denied(&r);
    assert!(reason.contains("bytes cut]"), "{reason}");
    assert!(!reason.contains("oversized"), "{reason}");
    assert!(reason.len() < 4096 + 200, "{}", reason.len());

    // 100,000 suggestions are dropped with a log line; the ask stays an ask.
    let mut spec = misbehave("many", json!({"decide": "many-suggestions"}));
    spec.limits.deadline_ms = Some(5000);
    let many = harness(&config(vec![spec]));
    let r = many.decide(&exec("ls", &[])).await;
    assert_eq!(r.decision, WireDecision::PendingHitl, "{r:?}");
    assert!(r.suggestions.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Bounded pending tokens
// ---------------------------------------------------------------------------------------------

fn bounded(per_session: usize, all: usize) -> HostConfig {
    let mut c = HostConfig::from_toml(&format!(
        "max_pending_per_session = {per_session}\nmax_pending = {all}\n"
    ))
    .unwrap();
    c.policies = vec![default_action("pending_hitl")];
    c
}

#[tokio::test]
async fn pending_tokens_are_bounded_per_session_and_in_all() {
    let h = harness(&bounded(3, 5));
    let mut mine = Vec::new();
    for i in 0..3 {
        mine.push(h.issue(&exec("make", &[&format!("t{i}")])).await);
    }
    let r = h.decide(&exec("make", &["t3"])).await;
    let reason = denied(&r).to_owned();
    assert!(reason.contains("`max_pending_per_session`"), "{reason}");
    assert!(r.approval_token.is_none());
    // Another session has room until the server-wide bound.
    let other = |i: usize| {
        with(
            exec("make", &[&format!("o{i}")]),
            "session_id",
            json!("sess_2"),
        )
    };
    h.issue(&other(0)).await;
    h.issue(&other(1)).await;
    let reason = denied(&h.decide(&other(2)).await).to_owned();
    assert!(reason.contains("`max_pending`"), "{reason}");
    // A revoked, approved or expired token no longer counts.
    h.manage("local.exec.revoke", &mine[0]).await;
    h.manage("local.exec.approve", &mine[1]).await;
    h.issue(&exec("make", &["t4"])).await;
    h.issue(&other(3)).await;
    h.clock.advance(24 * 3600 * 1000);
    for i in 0..3 {
        h.issue(&exec("make", &[&format!("late{i}")])).await;
    }
    // The list stays as small as the bound.
    let listed = h.host.query(&Query::List).await.tokens.unwrap();
    assert!(listed.len() <= 5, "{}", listed.len());
    // Zero is refused at start.
    let e = HostConfig::from_toml("max_pending = 0\n").and_then(|mut c| {
        c.policies = vec![default_action("allow")];
        c.validate().map_err(|e| e.to_string())
    });
    assert!(e.unwrap_err().contains("`max_pending` must be at least 1"));
}

// ---------------------------------------------------------------------------------------------
// Secret shapes in approval summaries (redaction near miss)
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn secret_shapes_are_masked_in_approval_records() {
    let corpus: Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/secret_shapes.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let default_secret = corpus["secret"].as_str().unwrap();
    let cases = corpus["cases"].as_array().unwrap();
    let h = harness(&config(vec![default_action("pending_hitl")]));
    let ids = json!({"session_id": "sess_1", "sandbox_id": "sbx_1"});
    let mut leaks = Vec::new();
    for case in cases {
        let secret = case["secret"].as_str().unwrap_or(default_secret);
        let fill = |v: &Value| -> Value {
            serde_json::from_str(&v.to_string().replace("{s}", secret)).unwrap()
        };
        let mut line = if let Some(text) = case.get("text") {
            json!({"action": "tool.call", "tool": "run_command", "arg": fill(text)})
        } else if let Some(http) = case.get("http") {
            let mut l = json!({"action": "http.request", "method": "GET", "host": "api.example.com",
                               "path": "/v1"});
            for (k, v) in fill(http).as_object().unwrap() {
                l[k] = v.clone();
            }
            l
        } else {
            json!({"action": "local.exec", "executable": case["executable"],
                   "args": fill(&case["args"]), "profile": "default", "hitl_mode": "async_token"})
        };
        for (k, v) in ids.as_object().unwrap() {
            line[k] = v.clone();
        }
        let token = h.issue(&line).await;
        let record = h.host.query(&Query::Show(token)).await.token.unwrap();
        let shown = serde_json::to_string(&record).unwrap();
        if shown.contains(secret) {
            leaks.push(format!("{}: {}", case["shape"], record.summary));
        }
    }
    println!(
        "secret shapes masked: {} of {}",
        cases.len() - leaks.len(),
        cases.len()
    );
    assert!(cases.len() >= 42, "{}", cases.len());
    assert!(
        leaks.is_empty(),
        "{} leak:\n{}",
        leaks.len(),
        leaks.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// Clients that never read, and shutdown (item 1)
// ---------------------------------------------------------------------------------------------

/// Raise this process's open-file limit to its hard limit (the test opens over 1,024 sockets).
fn raise_fd_limit() {
    let _ = std::process::Command::new("prlimit")
        .args([
            "--pid",
            &std::process::id().to_string(),
            "--nofile=unlimited:",
        ])
        .status();
    let hard = std::process::Command::new("sh")
        .args(["-c", "ulimit -Hn"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    if !hard.is_empty() {
        let _ = std::process::Command::new("prlimit")
            .args([
                "--pid",
                &std::process::id().to_string(),
                &format!("--nofile={hard}:"),
            ])
            .status();
    }
}

/// `gavel serve` on `config` (written to DIR/gavel.toml), its open-file limit raised so it can
/// hold 1,024 connections. `GAVEL_BIN` overrides the binary (to compare with another build).
fn serve(dir: &Path, config: &str) -> std::process::Child {
    std::fs::write(dir.join("gavel.toml"), config).unwrap();
    let bin = std::env::var("GAVEL_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_gavel").into());
    let mut command = std::process::Command::new("sh");
    command
        .arg("-c")
        .arg(format!(
            "ulimit -n $(ulimit -Hn) 2>/dev/null; exec '{}' serve --config '{}'",
            bin,
            dir.join("gavel.toml").display()
        ))
        .stderr(std::process::Stdio::null());
    spawn_until_listening(command)
}

/// Connections that pipeline requests and never read take every connection slot (their
/// answers fill the socket buffer, then the server's write blocks). A normal client must still
/// get its answer promptly, and SIGTERM must stop the real binary within a bound.
///
/// The slots are 128 here, not the default 1,024: filling 1,024 socket buffers (about 200 MiB of
/// answers) takes a debug build on a loaded 2-core machine about 30 s, which is the machine, not
/// the property under test. `GAVEL_HOGS=1024` (with `GAVEL_BIN` pointing at a release build)
/// runs the issue's full scenario.
#[test]
fn a_client_that_never_reads_stalls_no_one_and_does_not_block_shutdown() {
    raise_fd_limit();
    let dir = tempfile::tempdir().unwrap();
    let slots: usize = std::env::var("GAVEL_HOGS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(128);
    let mut child = serve(
        dir.path(),
        &format!(
            "socket = \"exec.sock\"\nmax_connections = {slots}\n[store]\nkind = \"memory\"\n[[policy]]\nname = \"p\"\nbuiltin = \"default-action\"\nconfig = {{ action = \"pending_hitl\" }}\n"
        ),
    );
    let socket = dir.path().join("exec.sock");
    // Cheap to answer (malformed), and 400 answers overflow the socket's send buffer.
    let flood = "x\n".repeat(400);
    let mut hogs = Vec::new();
    for _ in 0..slots {
        let mut c = UnixStream::connect(&socket).unwrap();
        c.set_nonblocking(true).unwrap();
        let mut sent = 0;
        while sent < flood.len() {
            match c.write(&flood.as_bytes()[sent..]) {
                Ok(n) => sent += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(_) => break,
            }
        }
        hogs.push(c);
    }
    // Let the server take and stall on them.
    std::thread::sleep(Duration::from_millis(1000));
    let asked = Instant::now();
    let answer = std::thread::spawn({
        let socket = socket.clone();
        move || {
            let mut c = UnixStream::connect(&socket).unwrap();
            c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            writeln!(c, "{}", exec("ls", &[])).unwrap();
            let mut a = String::new();
            BufReader::new(c).read_line(&mut a).map(|_| a)
        }
    })
    .join()
    .unwrap();
    let waited = asked.elapsed();
    let answer = answer.expect("a normal client gets an answer");
    assert!(answer.contains("pending_hitl"), "{answer}");
    // The write timeout is 2 s by default; a loaded machine gets wide margins.
    assert!(
        waited < Duration::from_secs(15),
        "answered after {waited:?}"
    );
    println!(
        "a normal client was answered after {waited:?} beside {slots} clients that never read"
    );

    // More hogs arrive; SIGTERM must still stop the server within its drain bound.
    for _ in 0..64 {
        if let Ok(mut c) = UnixStream::connect(&socket) {
            let _ = c.set_nonblocking(true);
            let _ = c.write(flood.as_bytes());
            hogs.push(c);
        }
    }
    let term = Instant::now();
    let pid = child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("gavel serve did not stop within 30 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stopped = term.elapsed();
    assert!(status.success(), "{status:?}");
    // Drain time is 5 s by default, writes are bounded by 2 s.
    assert!(
        stopped < Duration::from_secs(15),
        "stopped after {stopped:?}"
    );
    println!("SIGTERM stopped gavel serve after {stopped:?} with the hogs connected");
    assert!(!socket.exists());
    drop(hogs);
}

// ---------------------------------------------------------------------------------------------
// Slow decisions (item 2)
// ---------------------------------------------------------------------------------------------

/// Median of a sample, in ms.
fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Four clients sending a 60 KB `eval eval ... ls` (about 60 ms each through command-rules)
/// must not stall a light client's decisions, nor the management socket.
#[test]
fn slow_decisions_do_not_stall_others_or_the_operators() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = serve(
        dir.path(),
        "socket = \"exec.sock\"\nmanagement_socket = \"manage.sock\"\n[store]\nkind = \"memory\"\n[[policy]]\nname = \"rules\"\nbuiltin = \"command-rules\"\nconfig = { global = { allow = [\"run_command(ls *)\", \"run_command(ls)\"], deny = [\"run_command(eval *)\"] } }\nlimits = { deadline_ms = 2000 }\n",
    );
    let socket = dir.path().join("exec.sock");
    let manage = dir.path().join("manage.sock");
    let slow = json!({"action": "tool.call", "tool": "run_command",
                      "arg": format!("{}ls", "eval ".repeat(12_000)),
                      "session_id": "slow", "sandbox_id": "sbx_1"});
    let light = exec("ls", &[]);
    // How long one slow decision takes here, alone.
    let t = Instant::now();
    let a = ask_socket(&socket, &slow);
    let alone = t.elapsed();
    assert!(a["decision"].is_string(), "{a}");

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let senders: Vec<_> = (0..4)
        .map(|_| {
            let (socket, slow, stop) = (socket.clone(), slow.clone(), stop.clone());
            std::thread::spawn(move || {
                let c = UnixStream::connect(&socket).unwrap();
                let mut w = c.try_clone().unwrap();
                let mut r = BufReader::new(c);
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    writeln!(w, "{slow}").unwrap();
                    let mut a = String::new();
                    r.read_line(&mut a).unwrap();
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let timed = |socket: &Path, line: &Value, n: usize| -> Vec<Duration> {
        let c = UnixStream::connect(socket).unwrap();
        let mut w = c.try_clone().unwrap();
        let mut r = BufReader::new(c);
        (0..n)
            .map(|_| {
                let t = Instant::now();
                writeln!(w, "{line}").unwrap();
                let mut a = String::new();
                r.read_line(&mut a).unwrap();
                assert!(!a.is_empty());
                let took = t.elapsed();
                std::thread::sleep(Duration::from_millis(5));
                took
            })
            .collect()
    };
    let decisions = median(timed(&socket, &light, 15));
    let listing = median(timed(&manage, &json!({"action": "local.exec.list"}), 15));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for s in senders {
        s.join().unwrap();
    }
    println!(
        "one slow decision alone: {alone:?}; beside 4 slow senders, median light decision \
         {decisions:?}, median management list {listing:?}"
    );
    // Management never waits for a policy; a light decision waits at most for a slot to free
    // (one slow call), not for every queued slow call.
    assert!(listing < alone / 10, "{listing:?} vs {alone:?}");
    assert!(
        decisions < alone.max(Duration::from_millis(20)) * 2,
        "{decisions:?} vs {alone:?}"
    );
    let _ = child.kill();
    let _ = child.wait();
}
