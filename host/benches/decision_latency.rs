//! Latency of one in-process decision through `builtin:default-action`, as a sidecar embedding
//! the library sees it: `PolicyHost::decide` on a parsed request, and `handle_line` on the raw
//! JSON line (parse, decide, encode). Prints median, p99 and max over many decisions.
//!
//! Run: `cargo bench -p gavel-host --bench decision_latency [-- N]` (default N = 100000).

use gavel_host::tokens::MemoryStore;
use gavel_host::wire::{Request, parse_request};
use gavel_host::{HostConfig, Operator, PolicyHost, PolicySpec};
use std::sync::Arc;
use std::time::{Duration, Instant};

const LINE: &[u8] = br#"{"action":"local.exec","executable":"/usr/bin/git","args":["status","--short"],"sandbox_id":"sbx_1","session_id":"sess_1","agent_id":"agent_1","profile":"default","hitl_mode":"async_token"}"#;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(100_000);
    let config = HostConfig {
        policies: vec![
            PolicySpec::builtin("default-action")
                .with_config(serde_json::json!({"action": "allow"})),
        ],
        ..HostConfig::default()
    };
    let host = PolicyHost::new(&config, Arc::new(MemoryStore::new()))?;
    let Ok(Request::Decide(request)) = parse_request(LINE) else {
        return Err("the benchmark request does not parse".into());
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        // Warm up: instance pool, allocator, caches.
        for _ in 0..10_000 {
            host.decide(&request).await;
        }
        let mut samples = Vec::with_capacity(n);
        for _ in 0..n {
            let t = Instant::now();
            let r = host.decide(&request).await;
            samples.push(t.elapsed());
            std::hint::black_box(r);
        }
        report("PolicyHost::decide (default-action, allow)", &mut samples);

        samples.clear();
        for _ in 0..n {
            let t = Instant::now();
            let r = host.handle_line(LINE, Operator::default()).await.to_line();
            samples.push(t.elapsed());
            std::hint::black_box(r);
        }
        report(
            "PolicyHost::handle_line (parse + decide + encode)",
            &mut samples,
        );
    });
    Ok(())
}

fn report(what: &str, samples: &mut [Duration]) {
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "{what}: n={} median={:.2}us p99={:.2}us p99.9={:.2}us max={:.2}us",
        samples.len(),
        us(at(0.5)),
        us(at(0.99)),
        us(at(0.999)),
        us(at(1.0)),
    );
}
