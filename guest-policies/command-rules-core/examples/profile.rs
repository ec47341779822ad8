//! Where the native time of one evaluation goes: decomposition alone, then the whole decision.
//! `cargo run --release -p command-rules-core --example profile`
use command_rules_core::{Policy, Request, decompose};
use std::time::Instant;

const COMPOUND: &str = "git status --short && npm run build -- --watch=false | grep -v warning; ls -la src && echo done";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut allow: Vec<String> = ["git status *", "npm run *", "grep *", "ls *", "echo *"]
        .iter()
        .map(|p| format!("run_command({p})"))
        .collect();
    let mut deny = vec!["run_command(rm *)".to_owned()];
    let mut ask = Vec::new();
    for i in 0..194 {
        let r = format!("run_command(tool{i} sub{i} *)");
        match i % 3 {
            0 => allow.push(r),
            1 => ask.push(r),
            _ => deny.push(r),
        }
    }
    let config = serde_json::json!({"global": {"allow": allow, "ask": ask, "deny": deny}});
    let policy = Policy::from_json(&config.to_string())?;
    let n = 200_000;
    let t = Instant::now();
    for _ in 0..n {
        std::hint::black_box(decompose(std::hint::black_box(COMPOUND)));
    }
    println!(
        "decompose: {:.2} us",
        t.elapsed().as_secs_f64() * 1e6 / n as f64
    );
    let t = Instant::now();
    for _ in 0..n {
        std::hint::black_box(policy.evaluate(&Request::tool(
            "run_command",
            std::hint::black_box(COMPOUND),
        )));
    }
    println!(
        "evaluate:  {:.2} us",
        t.elapsed().as_secs_f64() * 1e6 / n as f64
    );
    // The distribution of single decisions, for the median and p99.
    let mut one: Vec<f64> = (0..50_000)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(policy.evaluate(&Request::tool(
                "run_command",
                std::hint::black_box(COMPOUND),
            )));
            t.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    one.sort_by(f64::total_cmp);
    println!(
        "evaluate one at a time: median {:.2} us, p99 {:.2} us",
        one[one.len() / 2],
        one[one.len() * 99 / 100]
    );
    Ok(())
}
