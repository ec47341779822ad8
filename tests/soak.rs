//! Soak: 100,000 socket requests from 64 clients over loopback Unix sockets (tool calls, HTTP
//! requests, CONNECTs and upgrades through a command-rules + http-rules chain), 5% of them
//! malformed, oversized, truncated mid-line or silent, with operators approving and revoking
//! while the tokens (of commands and of HTTP writes) are being retried. Zero lost or duplicated answers, zero double
//! consumption, and the server's memory flat after warm-up. Bounded: it stops by itself.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

mod common;

use common::*;
use gavel_host::server::Server;
use gavel_host::{PolicyHost, PolicySpec};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const TOTAL: usize = 100_000;
const CLIENTS: usize = 64;

/// A tiny deterministic generator, so a failure can be replayed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

#[derive(Default)]
struct Tally {
    sent: AtomicUsize,
    answered: AtomicUsize,
    hostile: AtomicUsize,
    allows_per_token: Mutex<HashMap<String, usize>>,
    /// Recently issued tokens with the request each was issued for.
    tokens: Mutex<Vec<(String, Value)>>,
}

/// One misbehaving connection of the four kinds; none may get (or need) an answer.
fn hostile(socket: &Path, rng: &mut Rng) {
    let Ok(mut c) = UnixStream::connect(socket) else {
        return;
    };
    match rng.next() % 3 {
        0 => {
            let _ = c.write_all(&vec![b'x'; 70 * 1024]);
            let _ = c.write_all(b"\n");
        }
        1 => {
            let _ = c.write_all(br#"{"action":"local.exec","execu"#);
        }
        _ => std::thread::sleep(Duration::from_millis(rng.next() % 20)),
    }
    // Dropping the connection here: the server must carry on.
}

fn client(socket: &Path, id: usize, share: usize, tally: &Tally) {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (id as u64 + 1));
    let stream = UnixStream::connect(socket).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    let operator = id.is_multiple_of(8);
    let call = |cmd: &str| json!({"action": "tool.call", "tool": "run_command", "arg": cmd, "sandbox_id": "b", "session_id": "s"});
    for i in 0..share {
        if rng.chance(5) {
            if rng.chance(50) {
                // Malformed, on the persistent connection: it is answered with a deny.
                writeln!(writer, "{{not json").unwrap();
                let mut a = String::new();
                reader.read_line(&mut a).unwrap();
                assert!(a.contains("malformed request"), "{a}");
                tally.sent.fetch_add(1, Ordering::Relaxed);
                tally.answered.fetch_add(1, Ordering::Relaxed);
            } else {
                hostile(socket, &mut rng);
                tally.hostile.fetch_add(1, Ordering::Relaxed);
            }
            continue;
        }
        let roll = rng.next() % 100;
        let recent = |rng: &mut Rng| {
            let tokens = tally.tokens.lock().unwrap();
            (!tokens.is_empty()).then(|| tokens[(rng.next() as usize) % tokens.len()].clone())
        };
        let request = if operator {
            match recent(&mut rng) {
                // Approvals and revocations race with each other and with the retries.
                Some((t, _)) => {
                    let action = if rng.chance(70) {
                        "local.exec.approve"
                    } else {
                        "local.exec.revoke"
                    };
                    json!({"action": action, "token_id": t})
                }
                None => call("ls -la"),
            }
        } else if roll < 3 {
            call(&format!("make t{}", rng.next() % 1000))
        } else if roll < 15 {
            match recent(&mut rng) {
                Some((t, fresh)) => {
                    let mut r = fresh;
                    r["approval_token"] = json!(t);
                    r
                }
                None => call("ls -la"),
            }
        } else if roll < 18 {
            // An HTTP write asks a human; its token joins the retried working set.
            json!({"action": "http.request", "method": "POST", "host": "api.example.com",
                   "path": format!("/items/{}", rng.next() % 1000), "headers": {"authorization": "Bearer s3cr3t"},
                   "sandbox_id": "b", "session_id": "s"})
        } else if roll < 30 {
            match rng.next() % 3 {
                0 => json!({"action": "http.request", "method": "GET", "host": "api.example.com",
                            "path": "/items", "query": "page=2", "sandbox_id": "b", "session_id": "s"}),
                1 => json!({"action": "connect", "host": "registry.npmjs.org", "port": 443,
                            "sandbox_id": "b", "session_id": "s"}),
                _ => json!({"action": "upgrade", "host": "chat.example.com", "path": "/ws",
                            "protocol": "websocket", "sandbox_id": "b", "session_id": "s"}),
            }
        } else {
            call("ls -la")
        };
        writeln!(writer, "{request}").unwrap();
        tally.sent.fetch_add(1, Ordering::Relaxed);
        let mut answer = String::new();
        reader.read_line(&mut answer).unwrap();
        let v: Value = serde_json::from_str(&answer)
            .unwrap_or_else(|e| panic!("client {id} request {i}: {e}: {answer:?}"));
        tally.answered.fetch_add(1, Ordering::Relaxed);
        if let Some(t) = v["approval_token"].as_str()
            && request["approval_token"].is_null()
        {
            let mut tokens = tally.tokens.lock().unwrap();
            tokens.push((t.to_owned(), request.clone()));
            // A working set: older tokens are simply no longer retried.
            if tokens.len() > 256 {
                tokens.remove(0);
            }
        }
        if v["decision"] == "allow"
            && let Some(t) = request["approval_token"].as_str()
        {
            *tally
                .allows_per_token
                .lock()
                .unwrap()
                .entry(t.to_owned())
                .or_default() += 1;
        }
    }
}

#[test]
fn one_hundred_thousand_requests_with_hostile_clients_and_racing_operators() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut c =
        config(vec![
            PolicySpec::builtin("command-rules")
                .with_config(json!({"global": {"allow": ["run_command(ls *)"]}})),
            PolicySpec::builtin("http-rules").with_config(json!({
                "requests": [
                    {"id": "read", "verdict": "allow", "methods": ["GET"], "hosts": ["api.example.com"]},
                    {"id": "write", "verdict": "ask", "methods": ["POST"], "hosts": ["api.example.com"]}
                ],
                "connect": [{"id": "npm", "verdict": "allow", "hosts": ["registry.npmjs.org"]}],
                "upgrade": [{"id": "chat", "verdict": "deny", "hosts": ["chat.example.com"]}]
            })),
        ]);
    c.socket = Some(dir.path().join("soak.sock"));
    c.idle_timeout_ms = 500;
    // Short-lived tokens, pruned often: the token population stays bounded, so memory can too.
    c.token_ttl_ms = 1000;
    c.token_grace_ms = 500;
    c.prune_interval_ms = 250;
    c.max_connections = 256;
    let (socket, stop, server) = rt.block_on(async {
        let host = PolicyHost::new(&c, Arc::new(gavel_host::tokens::MemoryStore::new())).unwrap();
        let server = Server::bind(host, &c).unwrap();
        let socket = server.socket().to_owned();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async {
            let _ = stopped.await;
        }));
        (socket, stop, task)
    });

    let run = |total: usize, tally: &Arc<Tally>| {
        let threads: Vec<_> = (0..CLIENTS)
            .map(|id| {
                let (socket, tally) = (socket.clone(), tally.clone());
                std::thread::spawn(move || client(&socket, id, total / CLIENTS, &tally))
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
    };
    // Warm-up, then the measured run.
    let warm = Arc::new(Tally::default());
    run(10_000, &warm);
    let rss_warm = rss_kib();
    let tally = Arc::new(Tally::default());
    run(TOTAL, &tally);
    let rss_end = rss_kib();

    let sent = tally.sent.load(Ordering::Relaxed);
    let answered = tally.answered.load(Ordering::Relaxed);
    let hostile = tally.hostile.load(Ordering::Relaxed);
    eprintln!(
        "soak: {sent} requests answered {answered}, {hostile} hostile connections, RSS {rss_warm} -> {rss_end} KiB"
    );
    assert_eq!(sent + hostile, TOTAL / CLIENTS * CLIENTS);
    assert_eq!(answered, sent, "every request got exactly one answer");
    assert!(hostile > 1000, "{hostile}");
    let doubles: Vec<_> = tally
        .allows_per_token
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(t, n)| (t.clone(), *n))
        .collect();
    assert!(
        doubles.is_empty(),
        "tokens consumed more than once: {doubles:?}"
    );
    assert!(
        !tally.allows_per_token.lock().unwrap().is_empty(),
        "some approved tokens were consumed"
    );
    assert!(
        rss_end <= rss_warm + rss_warm / 10,
        "RSS grew from {rss_warm} to {rss_end} KiB"
    );

    let _ = stop.send(());
    rt.block_on(server).unwrap().unwrap();
}
