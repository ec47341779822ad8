//! What each token store adds to a decision: the latency of issuing a token (insert), approving
//! it (apply) and consuming it (redeem), per store. Redis is measured when `redis-server` is on
//! the PATH (a private one is started on a free loopback port).
//!
//! Run: `cargo bench -p gavel-host --bench store_latency [-- N]` (default N = 2000 tokens).

use gavel_host::tokens::{
    MemoryStore, Operation, Presented, RedisStore, SqliteStore, Synchronous, Token, TokenState,
    TokenStore,
};
use gavel_host::{Action, action::LocalExec};
use std::sync::Arc;
use std::time::{Duration, Instant};

type Error = Box<dyn std::error::Error>;

fn token(i: usize) -> Token {
    let action = Action::LocalExec(LocalExec {
        executable: "make".into(),
        args: vec![format!("target{i}")],
        session_id: "s".into(),
        sandbox_id: "b".into(),
        agent_id: None,
        profile: "p".into(),
        hitl_mode: "async_token".into(),
    });
    Token {
        id: format!("bench-{i}"),
        state: TokenState::Pending,
        fingerprint: action.fingerprint(),
        action,
        created_at_ms: 1,
        expires_at_ms: 3_600_000,
        policy: "p".into(),
        rule_id: None,
        reason: None,
        approval: Default::default(),
    }
}

fn main() -> Result<(), Error> {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(2000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let dir = tempfile::tempdir()?;
    let mut stores: Vec<(&str, Arc<dyn TokenStore>)> = vec![
        ("memory", Arc::new(MemoryStore::new())),
        (
            "sqlite (synchronous=full)",
            Arc::new(SqliteStore::open(
                &dir.path().join("full"),
                Synchronous::Full,
            )?),
        ),
        (
            "sqlite (synchronous=normal)",
            Arc::new(SqliteStore::open(
                &dir.path().join("normal"),
                Synchronous::Normal,
            )?),
        ),
    ];
    let redis = start_redis(dir.path());
    if let Some((_, port)) = &redis {
        let url = format!("redis://127.0.0.1:{port}/0");
        stores.push((
            "redis (loopback)",
            Arc::new(rt.block_on(RedisStore::connect(&url, "bench:", 1000))?),
        ));
    } else {
        println!("redis-server not found: Redis not measured");
    }
    for (name, store) in stores {
        let (issue, approve, consume) = rt.block_on(async {
            let (mut issue, mut approve, mut consume) = (Vec::new(), Vec::new(), Vec::new());
            for i in 0..n {
                let t = token(i);
                let started = Instant::now();
                store.insert(t.clone()).await?;
                issue.push(started.elapsed());
                let started = Instant::now();
                store.apply(&t.id, Operation::Approve, 2).await?;
                approve.push(started.elapsed());
                let presented = Presented {
                    fingerprint: &t.fingerprint,
                    action: &t.action,
                };
                let started = Instant::now();
                store.redeem(&t.id, &presented, 3).await?;
                consume.push(started.elapsed());
            }
            Ok::<_, gavel_host::tokens::StoreError>((issue, approve, consume))
        })?;
        println!(
            "{name}: issue {}, approve {}, consume {}",
            stats(issue),
            stats(approve),
            stats(consume)
        );
    }
    if let Some((mut child, _)) = redis {
        let _ = child.kill();
        let _ = child.wait();
    }
    Ok(())
}

fn stats(mut s: Vec<Duration>) -> String {
    s.sort_unstable();
    let at = |q: f64| s[((s.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1e6;
    format!("median {:.1}us p99 {:.1}us", at(0.5), at(0.99))
}

fn start_redis(dir: &std::path::Path) -> Option<(std::process::Child, u16)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let child = std::process::Command::new("redis-server")
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
        .arg(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Some((child, port))
}
