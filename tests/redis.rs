//! The Redis token store against a real `redis-server` (started here on a free loopback port
//! in a temporary directory, stopped after): the conformance suite, a fleet of two sidecars
//! sharing one Redis, and failing closed while Redis is down, then resuming by itself.
//!
//! These need `redis-server` on the PATH (Debian: `apt-get install redis-server`), so they are
//! ignored by the everyday `cargo test`; run them with
//! `cargo test --workspace --test redis -- --ignored` (`.ci/run` does).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

mod common;

use common::*;
use gavel_host::tokens::{RedisStore, TokenStore};
use serde_json::json;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A `redis-server` of our own; stopped on drop.
struct Redis {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Redis {
    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Self::start_on(port)
    }

    fn start_on(port: u16) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect(
                "redis-server must be installed for these tests (apt-get install redis-server)",
            );
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self {
            child,
            port,
            _dir: dir,
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server; run with --ignored"]
async fn redis_store_conformance() {
    let redis = Redis::start();
    let url = redis.url();
    let n = std::sync::atomic::AtomicUsize::new(0);
    conformance::suite(|| {
        // A fresh key prefix is a fresh, empty store on the same server.
        let prefix = format!("t{}:", n.fetch_add(1, std::sync::atomic::Ordering::SeqCst));
        let url = url.clone();
        async move {
            Arc::new(RedisStore::connect(&url, &prefix, 500).await.unwrap()) as Arc<dyn TokenStore>
        }
    })
    .await;
}

#[test]
#[ignore = "needs redis-server; run with --ignored"]
fn redis_store_follows_the_model() {
    use proptest::prelude::*;
    let redis = Redis::start();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let n = std::sync::atomic::AtomicUsize::new(0);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 64,
        ..ProptestConfig::default()
    });
    runner
        .run(&model::ops(), |ops| {
            let prefix = format!("m{}:", n.fetch_add(1, std::sync::atomic::Ordering::SeqCst));
            let store = rt
                .block_on(RedisStore::connect(&redis.url(), &prefix, 500))
                .unwrap();
            rt.block_on(model::check(&store, &ops))
                .map_err(proptest::test_runner::TestCaseError::fail)
        })
        .unwrap();
}

/// A `gavel serve` with its own sockets on the shared Redis; killed on drop.
struct Sidecar {
    child: Child,
    socket: std::path::PathBuf,
    management: std::path::PathBuf,
}

impl Sidecar {
    fn start(dir: &Path, name: &str, url: &str) -> Self {
        let config = dir.join(format!("{name}.toml"));
        std::fs::write(
            &config,
            format!(
                "socket = \"{name}.sock\"\nmanagement_socket = \"{name}-manage.sock\"\n\
                 [store]\nkind = \"redis\"\nurl = \"{url}\"\nprefix = \"fleet:\"\n\
                 [[policy]]\nname = \"ask\"\nbuiltin = \"default-action\"\n"
            ),
        )
        .unwrap();
        let child = spawn_serve(&config);
        Self {
            child,
            socket: dir.join(format!("{name}.sock")),
            management: dir.join(format!("{name}-manage.sock")),
        }
    }
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
#[ignore = "needs redis-server; run with --ignored"]
fn a_fleet_agrees_on_every_token() {
    let redis = Redis::start();
    let dir = tempfile::tempdir().unwrap();
    let a = Sidecar::start(dir.path(), "a", &redis.url());
    let b = Sidecar::start(dir.path(), "b", &redis.url());
    let req = exec("make", &["deploy"]);

    // Issue on A, approve through B, consume on A, replay on B: denied.
    let t = ask_socket(&a.socket, &req)["approval_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        ask_socket(
            &b.management,
            &json!({"action": "local.exec.approve", "token_id": t})
        )["outcome"],
        "ok"
    );
    let retry = with(req.clone(), "approval_token", json!(t));
    assert_eq!(ask_socket(&a.socket, &retry)["decision"], "allow");
    let replay = ask_socket(&b.socket, &retry);
    assert!(
        replay["reason"]
            .as_str()
            .unwrap()
            .contains("already consumed"),
        "{replay}"
    );

    // 64 concurrent retries spread across both sidecars: exactly one allow.
    let t = ask_socket(&b.socket, &req)["approval_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        ask_socket(
            &a.management,
            &json!({"action": "local.exec.approve", "token_id": t})
        )["outcome"],
        "ok"
    );
    let retry = with(req, "approval_token", json!(t));
    let barrier = Arc::new(std::sync::Barrier::new(64));
    let threads: Vec<_> = (0..64)
        .map(|i| {
            let socket = if i % 2 == 0 {
                a.socket.clone()
            } else {
                b.socket.clone()
            };
            let (retry, barrier) = (retry.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                ask_socket(&socket, &retry)["decision"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
        })
        .collect();
    let answers: Vec<String> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(
        answers.iter().filter(|d| *d == "allow").count(),
        1,
        "{answers:?}"
    );
    assert_eq!(
        answers.iter().filter(|d| *d == "deny").count(),
        63,
        "{answers:?}"
    );
}

#[test]
#[ignore = "needs redis-server; run with --ignored"]
fn redis_down_fails_closed_and_serving_resumes_when_it_is_back() {
    let redis = Redis::start();
    let port = redis.port;
    let dir = tempfile::tempdir().unwrap();
    let side = Sidecar::start(dir.path(), "a", &redis.url());
    let req = exec("make", &["deploy"]);
    assert_eq!(ask_socket(&side.socket, &req)["decision"], "pending_hitl");

    drop(redis); // Redis stops mid-run.
    let fresh = ask_socket(&side.socket, &req);
    assert_eq!(fresh["decision"], "deny");
    assert!(
        fresh["reason"]
            .as_str()
            .unwrap()
            .contains("token store unavailable"),
        "{fresh}"
    );
    let retry = ask_socket(
        &side.socket,
        &with(req.clone(), "approval_token", json!("t")),
    );
    assert!(
        retry["reason"]
            .as_str()
            .unwrap()
            .contains("token store unavailable"),
        "{retry}"
    );
    let manage = ask_socket(
        &side.management,
        &json!({"action": "local.exec.approve", "token_id": "t"}),
    );
    assert_eq!(manage["outcome"], "denied");
    assert!(
        manage["reason"]
            .as_str()
            .unwrap()
            .contains("token store unavailable"),
        "{manage}"
    );

    // Redis comes back (empty, on the same port): serving resumes without a restart.
    let _redis = Redis::start_on(port);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if ask_socket(&side.socket, &req)["decision"] == "pending_hitl" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "serving did not resume after Redis came back"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
