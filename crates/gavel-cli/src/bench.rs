//! `gavel bench`: decisions per second and latency percentiles of one policy, in process.

use anyhow::Context;
use gavel_host::wire::{Request, parse_request};
use gavel_host::{
    HostConfig, PolicyHost, PolicySpec,
    config::{Isolation, PolicyLimits},
};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub(crate) struct BenchArgs {
    /// A `.wasm` file, or `builtin:NAME`.
    policy: String,
    /// A file holding one request line (`local.exec` or `tool.call`).
    #[arg(long)]
    request: PathBuf,
    /// The policy's configuration: JSON or `@FILE`.
    #[arg(long, value_name = "JSON|@FILE")]
    policy_config: Option<String>,
    /// How many decisions to time.
    #[arg(short, long, default_value_t = 100_000)]
    n: usize,
    /// `pooled` (reuse configured instances) or `per-decision` (a fresh instance each time).
    #[arg(long, default_value = "pooled")]
    isolation: String,
    /// Run a WASI-importing policy (componentize-py, componentize-js) in the empty WASI sandbox.
    #[arg(long)]
    wasi: bool,
    /// The policy's memory limit in MiB (default 32).
    #[arg(long)]
    memory_mib: Option<u64>,
}

pub(crate) fn run(args: BenchArgs, json: bool) -> anyhow::Result<ExitCode> {
    let mut spec = PolicySpec::parse(&args.policy);
    if let Some(c) = &args.policy_config {
        spec.config = Some(serde_json::from_str(&crate::read_json_arg(
            c,
            "--policy-config",
        )?)?);
    }
    let isolation = match args.isolation.as_str() {
        "pooled" => Isolation::Pooled,
        "per-decision" => Isolation::PerDecision,
        other => anyhow::bail!("`--isolation {other}`: use `pooled` or `per-decision`"),
    };
    spec.limits = PolicyLimits {
        isolation: Some(isolation),
        memory_mib: args.memory_mib,
        ..PolicyLimits::default()
    };
    spec.wasi = args.wasi;
    let line = std::fs::read_to_string(&args.request)
        .with_context(|| format!("cannot read `{}`", args.request.display()))?;
    let Ok(Request::Decide(request)) = parse_request(line.trim().as_bytes()) else {
        anyhow::bail!(
            "`{}` does not hold one `local.exec` or `tool.call` request line",
            args.request.display()
        );
    };
    let config = HostConfig {
        policies: vec![spec],
        ..HostConfig::default()
    };
    let host = PolicyHost::new(
        &config,
        std::sync::Arc::new(gavel_host::tokens::MemoryStore::new()),
    )?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (samples, wall, verdict) = rt.block_on(async {
        for _ in 0..(args.n / 10).max(1) {
            host.decide(&request).await;
        }
        let mut samples = Vec::with_capacity(args.n);
        let started = Instant::now();
        let mut last = None;
        for _ in 0..args.n {
            let t = Instant::now();
            let r = host.decide(&request).await;
            samples.push(t.elapsed());
            last = Some(r.decision);
        }
        (samples, started.elapsed(), last)
    });
    let mut samples = samples;
    samples.sort_unstable();
    let at = |q: f64| {
        samples
            .get(((samples.len().max(1) - 1) as f64 * q).round() as usize)
            .copied()
            .unwrap_or(Duration::ZERO)
    };
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    // The verdict as the wire spells it (`pending_hitl` for an ask).
    let verdict = verdict
        .and_then(|d| serde_json::to_value(d).ok())
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "none".to_owned());
    if json {
        let out = serde_json::json!({
            "policy": args.policy,
            "isolation": args.isolation,
            "verdict": verdict,
            "decisions": samples.len(),
            "seconds": wall.as_secs_f64(),
            "per_second": samples.len() as f64 / wall.as_secs_f64(),
            "latency_us": {"p50": us(at(0.5)), "p90": us(at(0.9)), "p99": us(at(0.99)),
                           "p99.9": us(at(0.999)), "max": us(at(1.0))},
        });
        println!("{out}");
        return Ok(ExitCode::SUCCESS);
    }
    println!("policy:     {} ({} instances)", args.policy, args.isolation);
    println!("verdict:    {verdict}");
    println!(
        "decisions:  {} in {:.2} s = {:.0}/s",
        samples.len(),
        wall.as_secs_f64(),
        samples.len() as f64 / wall.as_secs_f64()
    );
    println!(
        "latency:    p50 {:.2} us, p90 {:.2} us, p99 {:.2} us, p99.9 {:.2} us, max {:.2} us",
        us(at(0.5)),
        us(at(0.9)),
        us(at(0.99)),
        us(at(0.999)),
        us(at(1.0))
    );
    Ok(ExitCode::SUCCESS)
}
