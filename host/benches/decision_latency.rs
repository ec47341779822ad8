//! Latency of one in-process decision, as a sidecar embedding the library sees it:
//! `builtin:default-action` through `PolicyHost::decide` and `handle_line`, and
//! `builtin:command-rules` on a 5-part compound command against 200 rules, through the wasm
//! policy and through the same library called natively (the baseline), measured in one run;
//! likewise `builtin:http-rules` on an HTTP request against 100 rules.
//!
//! Also: a fresh instance per decision against pooled instances (with and without wasmtime's
//! pooling allocator), and loading a chain of 10 distinct policies cold (compiling) and from the
//! compiled-policy cache.
//!
//! Run: `cargo bench -p gavel-host --bench decision_latency [-- N] [--json FILE]`
//! (default N = 100000). Prints median, p99, p99.9 and max per scenario and the wasm / native
//! ratio; `--json` also writes every figure to FILE.

use command_rules_core::{Policy, Request as RulesRequest};
use gavel_host::tokens::MemoryStore;
use gavel_host::wire::{DecideRequest, Request, parse_request};
use gavel_host::{HostConfig, Operator, PolicyHost, PolicySpec};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

const EXEC_LINE: &[u8] = br#"{"action":"local.exec","executable":"/usr/bin/git","args":["status","--short"],"sandbox_id":"sbx_1","session_id":"sess_1","agent_id":"agent_1","profile":"default","hitl_mode":"async_token"}"#;

/// Five simple commands, all allowed by the rule set below.
const COMPOUND: &str = "git status --short && npm run build -- --watch=false | grep -v warning; ls -la src && echo done";

type Error = Box<dyn std::error::Error>;

/// 200 rules: the five that matter, buried among 195 others of each kind.
fn rules_200() -> serde_json::Value {
    let mut allow: Vec<String> = ["git status *", "npm run *", "grep *", "ls *", "echo *"]
        .iter()
        .map(|p| format!("run_command({p})"))
        .collect();
    let mut ask = Vec::new();
    let mut deny = vec![
        "run_command(rm *)".to_owned(),
        "run_command(curl *)".to_owned(),
    ];
    for i in 0..193 {
        let rule = format!("run_command(tool{i} sub{i} *)");
        match i % 3 {
            0 => allow.push(rule),
            1 => ask.push(rule),
            _ => deny.push(rule),
        }
    }
    assert_eq!(allow.len() + ask.len() + deny.len(), 200);
    json!({"global": {"allow": allow, "ask": ask, "deny": deny}})
}

/// 100 HTTP rules: 99 that do not match the benchmark request (other hosts, methods and
/// paths, of every verdict), then the allow rule that does.
fn http_rules_100() -> serde_json::Value {
    let mut rules: Vec<serde_json::Value> = (0..99)
        .map(|i| {
            let verdict = ["allow", "ask", "deny"][i % 3];
            json!({"id": format!("r{i}"), "verdict": verdict, "methods": ["POST", "PUT"],
                   "hosts": [format!("*.service{i}.example.com")], "paths": [format!("/v{i}/**")]})
        })
        .collect();
    rules.push(json!({"id": "gh-read", "verdict": "allow", "methods": ["GET", "HEAD"],
                      "hosts": ["api.github.com"], "ports": [443], "paths": ["/repos/*/*/pulls/**"]}));
    json!({"default": "deny", "requests": rules})
}

fn host(spec: PolicySpec) -> Result<PolicyHost, Error> {
    let config = HostConfig {
        policies: vec![spec],
        ..HostConfig::default()
    };
    Ok(PolicyHost::new(&config, Arc::new(MemoryStore::new()))?)
}

fn decide_request(line: &[u8]) -> Result<DecideRequest, Error> {
    match parse_request(line) {
        Ok(Request::Decide(r)) => Ok(r),
        _ => Err("the benchmark request does not parse".into()),
    }
}

struct Results(Vec<serde_json::Value>);

impl Results {
    fn add(&mut self, name: &str, samples: Vec<Duration>) -> (f64, f64) {
        let (median, p99) = report(name, samples.clone());
        let mut s = samples;
        s.sort_unstable();
        let at = |q: f64| s[((s.len() as f64 - 1.0) * q).round() as usize].as_secs_f64() * 1e6;
        self.0.push(json!({"name": name, "n": s.len(), "median_us": median, "p99_us": p99, "p999_us": at(0.999), "max_us": at(1.0)}));
        (median, p99)
    }
}

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: usize = args.iter().find_map(|a| a.parse().ok()).unwrap_or(100_000);
    let json_out = args
        .iter()
        .position(|a| a == "--json")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut results = Results(Vec::new());

    let default_allow =
        host(PolicySpec::builtin("default-action").with_config(json!({"action": "allow"})))?;
    let exec = decide_request(EXEC_LINE)?;
    let s = rt.block_on(sample(n, || default_allow.decide(&exec)));
    results.add("default-action: PolicyHost::decide", s);
    let s = rt.block_on(sample(n, || async {
        default_allow
            .handle_line(EXEC_LINE, Operator::default())
            .await
            .to_line()
    }));
    results.add("default-action: handle_line (parse+decide+encode)", s);

    let rules = rules_200();
    let native = Policy::from_json(&rules.to_string())?;
    let rules_host = host(PolicySpec::builtin("command-rules").with_config(rules.clone()))?;
    let mut ratios = Vec::new();
    for (label, cmd) in [
        ("simple command", "git status --short"),
        ("5-part compound", COMPOUND),
    ] {
        let line = json!({"action": "tool.call", "tool": "run_command", "arg": cmd, "sandbox_id": "b", "session_id": "s"});
        let request = decide_request(line.to_string().as_bytes())?;
        if rt.block_on(rules_host.decide(&request)).decision
            != gavel_host::wire::WireDecision::Allow
        {
            return Err(format!("`{cmd}` was expected to be allowed").into());
        }
        let wasm = rt.block_on(sample(n, || rules_host.decide(&request)));
        let native_s = rt.block_on(sample(n, || async {
            native.evaluate(&RulesRequest::tool("run_command", cmd))
        }));
        let w = results.add(
            &format!("command-rules, 200 rules, {label}: wasm (PolicyHost::decide)"),
            wasm,
        );
        let nat = results.add(
            &format!("command-rules, 200 rules, {label}: native library"),
            native_s,
        );
        println!(
            "  ratio wasm/native: median {:.2}x, p99 {:.2}x",
            w.0 / nat.0,
            w.1 / nat.1
        );
        ratios.push(json!({"name": label, "median_ratio": w.0 / nat.0, "p99_ratio": w.1 / nat.1}));
    }

    // http-rules: an HTTP request against 100 rules (the one that allows it listed last), through
    // the wasm policy and through http-rules-core natively.
    let http_rules = http_rules_100();
    let http_native = http_rules_core::Policy::from_json(&http_rules.to_string())?;
    let http_host = host(PolicySpec::builtin("http-rules").with_config(http_rules))?;
    let line = json!({"action": "http.request", "method": "GET", "host": "api.github.com",
                      "path": "/repos/gavel/gavel/pulls/42/files", "query": "page=2",
                      "headers": {"accept": "application/json"}, "sandbox_id": "b", "session_id": "s"});
    let request = decide_request(line.to_string().as_bytes())?;
    if rt.block_on(http_host.decide(&request)).decision != gavel_host::wire::WireDecision::Allow {
        return Err("the http-rules benchmark request was expected to be allowed".into());
    }
    let wasm = rt.block_on(sample(n, || http_host.decide(&request)));
    let native_request = http_rules_core::Request::Http(http_rules_core::HttpRequest {
        method: "GET",
        scheme: "https",
        host: "api.github.com",
        port: 443,
        path: "/repos/gavel/gavel/pulls/42/files",
    });
    let native_s = rt.block_on(sample(n, || async {
        http_native.evaluate(&native_request)
    }));
    let w = results.add("http-rules, 100 rules: wasm (PolicyHost::decide)", wasm);
    let nat = results.add("http-rules, 100 rules: native library", native_s);
    println!(
        "  ratio wasm/native: median {:.2}x, p99 {:.2}x",
        w.0 / nat.0,
        w.1 / nat.1
    );
    ratios.push(json!({"name": "http-rules 100 rules", "median_ratio": w.0 / nat.0, "p99_ratio": w.1 / nat.1}));

    // Instance modes: a fresh instance for every decision, with and without the pooling allocator.
    for pooling in [true, false] {
        for (label, spec) in [
            (
                "default-action",
                PolicySpec::builtin("default-action").with_config(json!({"action": "allow"})),
            ),
            (
                "command-rules 200 rules",
                PolicySpec::builtin("command-rules").with_config(rules.clone()),
            ),
        ] {
            let mut spec = spec;
            spec.limits.isolation = Some(gavel_host::config::Isolation::PerDecision);
            let mut config = HostConfig {
                policies: vec![spec],
                ..HostConfig::default()
            };
            config.limits.pooling = pooling;
            let h = PolicyHost::new(&config, Arc::new(MemoryStore::new()))?;
            let line = json!({"action": "tool.call", "tool": "run_command", "arg": "git status --short", "sandbox_id": "b", "session_id": "s"});
            let request = decide_request(line.to_string().as_bytes())?;
            let s = rt.block_on(sample(n / 10, || h.decide(&request)));
            let alloc = if pooling {
                "pooling allocator"
            } else {
                "on-demand allocator"
            };
            results.add(
                &format!("{label}: fresh instance per decision ({alloc})"),
                s,
            );
        }
    }

    // Policy load: ten distinct components (the bundled command-rules stamped with ten names),
    // compiled cold into an empty cache, then started again from that cache.
    let cache = tempfile::tempdir()?;
    let dir = tempfile::tempdir()?;
    let base = gavel_host::builtin::component("command-rules").ok_or("no builtin command-rules")?;
    let mut specs = Vec::new();
    for i in 0..10 {
        let meta = gavel_componentize::PolicyMeta {
            name: format!("rules-{i}"),
            version: None,
            description: None,
        };
        let bytes = gavel_componentize::componentize(base, Some(&meta))?;
        let path = dir.path().join(format!("rules-{i}.wasm"));
        std::fs::write(&path, bytes)?;
        let mut spec = PolicySpec::file(&path).with_config(rules.clone());
        spec.name = format!("rules-{i}");
        specs.push(spec);
    }
    let config = HostConfig {
        policies: specs,
        cache_dir: Some(cache.path().to_owned()),
        ..HostConfig::default()
    };
    let started = Instant::now();
    drop(PolicyHost::new(&config, Arc::new(MemoryStore::new()))?);
    let cold = started.elapsed();
    let mut warm = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        drop(PolicyHost::new(&config, Arc::new(MemoryStore::new()))?);
        warm.push(started.elapsed());
    }
    warm.sort_unstable();
    let per = |d: Duration| d.as_secs_f64() * 1e3 / 10.0;
    println!(
        "policy load, 10 policies: cold compile {:.1} ms per policy; from the compiled cache {:.2} ms per policy (median of 5)",
        per(cold),
        per(warm[2])
    );
    let load = json!({"policies": 10, "cold_ms_per_policy": per(cold), "cached_ms_per_policy": per(warm[2])});

    if let Some(path) = json_out {
        let out = json!({"decisions": results.0, "ratios": ratios, "load": load});
        std::fs::write(&path, serde_json::to_string_pretty(&out)?)?;
        println!("wrote {path}");
    }
    Ok(())
}

/// Time `n` calls after 10% of warm-up calls.
async fn sample<F, Fut, T>(n: usize, mut f: F) -> Vec<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    for _ in 0..n / 10 {
        std::hint::black_box(f().await);
    }
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let r = f().await;
        samples.push(t.elapsed());
        std::hint::black_box(r);
    }
    samples
}

/// Print a line; return (median, p99) in microseconds.
fn report(what: &str, mut samples: Vec<Duration>) -> (f64, f64) {
    samples.sort_unstable();
    let at =
        |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize].as_secs_f64() * 1e6;
    let (median, p99) = (at(0.5), at(0.99));
    println!(
        "{what}: n={} median={median:.2}us p99={p99:.2}us p99.9={:.2}us max={:.2}us",
        samples.len(),
        at(0.999),
        at(1.0)
    );
    (median, p99)
}
