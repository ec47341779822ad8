//! `gavel test`: run fixture files against a policy.
//!
//! A fixture file (JSON) names the policy, its configuration, and cases:
//!
//! ```json
//! {"policy": "builtin:command-rules" | "path/relative/to/this/file.wasm",
//!  "config": {...},            // or "config_file": "rules.json"
//!  "wasi": false,              // true: run a WASI-importing policy in an empty sandbox
//!  "limits": {"memory_mib": 64, "deadline_ms": 100},
//!  "cases": [
//!    {"name": "...", "request": {...}, "expect": {"decision": "deny", "reason": "substring",
//!                                              "rule": "rule id", "suggestions": ["rule", ...],
//!                                              "effect": "write", "risk": "high", "status": 403,
//!                                              "body": {"reason": "policy_denied"}}},
//!    {"name": "...", "steps": [{"request": {...}, "expect": {...}}, ...]},
//!    {"name": "...", "command": "rm -rf x", "expect": "deny"}
//!  ]}
//! ```
//!
//! `expect.decision` is `allow`, `deny`, `pending_hitl` (or `ask`); management steps expect an
//! `outcome`. In a step, the string `"$token"` stands for the last approval token issued in the
//! case. `{"advance_ms": N}` as a step moves the clock. A `command` case runs the command as a
//! `run_command` tool call and as `/bin/bash -c` (expect a verdict or a list of them). A
//! command-rules corpus (`{"rules": ..., "cases": [{"cmd", "expect"}]}`) is a fixture too.

use anyhow::{Context, bail};
use gavel_host::wire::{Request, Response, parse_request};
use gavel_host::{HostConfig, ManualClock, Operator, PolicyHost, PolicySpec};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

#[derive(clap::Args)]
pub(crate) struct TestArgs {
    /// Fixture files, or directories of them (`*.json`).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Run only cases whose name contains this.
    #[arg(long)]
    filter: Option<String>,
    /// Print one JSON object per case and a summary object.
    #[arg(long)]
    json: bool,
}

struct Outcome {
    file: String,
    case: String,
    failure: Option<String>,
}

pub(crate) fn run(args: TestArgs) -> anyhow::Result<ExitCode> {
    let mut files = Vec::new();
    for p in &args.paths {
        if p.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(p)
                .with_context(|| format!("cannot read `{}`", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|x| x == "json"))
                .collect();
            found.sort();
            if found.is_empty() {
                bail!("`{}` holds no fixture files (`*.json`)", p.display());
            }
            files.extend(found);
        } else {
            files.push(p.clone());
        }
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut outcomes = Vec::new();
    for file in &files {
        outcomes.extend(rt.block_on(run_file(file, args.filter.as_deref()))?);
    }
    let failed = outcomes.iter().filter(|o| o.failure.is_some()).count();
    let passed = outcomes.len() - failed;
    for o in &outcomes {
        if args.json {
            println!(
                "{}",
                json!({"file": o.file, "case": o.case, "passed": o.failure.is_none(), "failure": o.failure})
            );
        } else if let Some(f) = &o.failure {
            println!("FAIL {}: {}: {f}", o.file, o.case);
        }
    }
    if args.json {
        println!("{}", json!({"passed": passed, "failed": failed}));
    } else {
        println!("{passed} passed, {failed} failed");
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

async fn run_file(file: &Path, filter: Option<&str>) -> anyhow::Result<Vec<Outcome>> {
    let shown = file.display().to_string();
    let text = std::fs::read_to_string(file).with_context(|| format!("cannot read `{shown}`"))?;
    let mut fixture: Value =
        serde_json::from_str(&text).with_context(|| format!("`{shown}` is not JSON"))?;
    let base = file.parent().unwrap_or(Path::new("."));
    if fixture.get("policy").is_none() && fixture.get("rules").is_some() {
        // A command-rules corpus: its rules configure builtin:command-rules.
        fixture["policy"] = json!("builtin:command-rules");
        fixture["config"] = fixture["rules"].clone();
    }
    let policy = fixture["policy"].as_str().with_context(|| {
        format!("`{shown}`: `policy` must name a `.wasm` file or `builtin:NAME`")
    })?;
    let mut spec = match policy.strip_prefix("builtin:") {
        Some(_) => PolicySpec::parse(policy),
        None => PolicySpec::file(base.join(policy)),
    };
    if let Some(config) = fixture.get("config") {
        spec.config = Some(config.clone());
    }
    if let Some(cf) = fixture.get("config_file").and_then(Value::as_str) {
        spec.config_file = Some(base.join(cf));
    }
    spec.wasi = fixture["wasi"].as_bool().unwrap_or(false);
    if let Some(limits) = fixture.get("limits") {
        spec.limits = serde_json::from_value(limits.clone()).with_context(|| {
            format!("`{shown}`: `limits` takes deadline_ms, memory_mib and isolation")
        })?;
    }
    let config = HostConfig {
        policies: vec![spec],
        ..HostConfig::default()
    };
    let clock = ManualClock::new(1_700_000_000_000);
    let host = PolicyHost::with_clock(
        &config,
        Arc::new(gavel_host::tokens::MemoryStore::new()),
        Arc::new(clock.clone()),
    )
    .with_context(|| format!("`{shown}`: the policy does not load"))?;
    let cases = fixture["cases"]
        .as_array()
        .with_context(|| format!("`{shown}`: `cases` must be a list"))?;
    let mut outcomes = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let name = case["name"]
            .as_str()
            .or(case["cmd"].as_str())
            .or(case["command"].as_str())
            .map_or_else(|| format!("case {}", i + 1), str::to_owned);
        if filter.is_some_and(|f| !name.contains(f)) {
            continue;
        }
        let failure = run_case(&host, &clock, case).await.err();
        outcomes.push(Outcome {
            file: shown.clone(),
            case: name,
            failure,
        });
    }
    Ok(outcomes)
}

/// Run one case; `Err` says what differed.
async fn run_case(host: &PolicyHost, clock: &ManualClock, case: &Value) -> Result<(), String> {
    if let Some(cmd) = case["command"].as_str().or(case["cmd"].as_str()) {
        let allowed: Vec<String> = match &case["expect"] {
            Value::String(s) => vec![wire_verdict(s)],
            Value::Array(a) => a
                .iter()
                .filter_map(Value::as_str)
                .map(wire_verdict)
                .collect(),
            _ => return Err("`expect` must be a verdict or a list of verdicts".into()),
        };
        let as_tool = json!({"action": "tool.call", "tool": "run_command", "arg": cmd, "sandbox_id": "sbx", "session_id": "s"});
        let as_exec = json!({"action": "local.exec", "executable": "/bin/bash", "args": ["-c", cmd], "sandbox_id": "sbx",
                             "session_id": "s", "profile": "default", "hitl_mode": "async_token"});
        for (how, request) in [("tool.call", as_tool), ("local.exec", as_exec)] {
            let answer = send(host, &request).await?;
            let got = answer["decision"].as_str().unwrap_or("").to_owned();
            if !allowed.contains(&got) {
                return Err(format!(
                    "as {how}: expected {}, got {got} ({})",
                    allowed.join(" or "),
                    answer["reason"].as_str().unwrap_or("")
                ));
            }
        }
        return Ok(());
    }
    let steps: Vec<Value> = match case.get("steps") {
        Some(Value::Array(steps)) => steps.clone(),
        Some(_) => return Err("`steps` must be a list".into()),
        None => vec![json!({"request": case["request"], "expect": case["expect"]})],
    };
    let mut token: Option<String> = None;
    for (n, step) in steps.iter().enumerate() {
        let at = if steps.len() > 1 {
            format!("step {}: ", n + 1)
        } else {
            String::new()
        };
        if let Some(ms) = step["advance_ms"].as_u64() {
            clock.advance(ms);
            continue;
        }
        let request = substitute(&step["request"], token.as_deref());
        if !request.is_object() {
            return Err(format!("{at}`request` must be a JSON object"));
        }
        let answer = send(host, &request).await?;
        if let Some(t) = answer["approval_token"].as_str() {
            token = Some(t.to_owned());
        }
        check(host, &request, &answer, &step["expect"])
            .await
            .map_err(|e| format!("{at}{e}"))?;
    }
    Ok(())
}

fn wire_verdict(v: &str) -> String {
    if v == "ask" {
        "pending_hitl".into()
    } else {
        v.to_owned()
    }
}

/// Replace every `"$token"` string with the last issued token.
fn substitute(v: &Value, token: Option<&str>) -> Value {
    match v {
        Value::String(s) if s == "$token" => json!(token.unwrap_or("no-token-issued-yet")),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), substitute(v, token)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(|v| substitute(v, token)).collect()),
        other => other.clone(),
    }
}

async fn send(host: &PolicyHost, request: &Value) -> Result<Value, String> {
    let answer: Response = host
        .handle_line(request.to_string().as_bytes(), Operator::default())
        .await;
    serde_json::from_str(&answer.to_line()).map_err(|e| e.to_string())
}

async fn check(
    host: &PolicyHost,
    request: &Value,
    answer: &Value,
    expect: &Value,
) -> Result<(), String> {
    let Some(expect) = expect.as_object() else {
        return Err("`expect` must be an object".into());
    };
    for (key, want) in expect {
        match key.as_str() {
            "decision" | "outcome" => {
                let want = want.as_str().map(wire_verdict).unwrap_or_default();
                let got = answer[key.as_str()].as_str().unwrap_or("");
                if got != want {
                    return Err(format!(
                        "expected {key} {want}, got {} ({})",
                        if got.is_empty() { "none" } else { got },
                        answer["reason"].as_str().unwrap_or("")
                    ));
                }
            }
            "reason" => {
                let want = want.as_str().unwrap_or("");
                let got = answer["reason"].as_str().unwrap_or("");
                if !got.contains(want) {
                    return Err(format!(
                        "expected a reason containing `{want}`, got `{got}`"
                    ));
                }
            }
            "rule" | "effect" | "risk" => {
                // The wire answer does not carry these: ask the chain directly.
                let Ok(Request::Decide(d)) = parse_request(request.to_string().as_bytes()) else {
                    return Err(format!("`{key}` applies to governance requests only"));
                };
                let decision = host.evaluate(&d.action);
                let got = match key.as_str() {
                    "rule" => decision.rule_id.unwrap_or_default(),
                    "effect" => decision.effect.as_str().to_owned(),
                    _ => decision.risk.as_str().to_owned(),
                };
                if Some(got.as_str()) != want.as_str() {
                    return Err(format!(
                        "expected {key} `{}`, got `{got}`",
                        want.as_str().unwrap_or("")
                    ));
                }
            }
            "status" => {
                if answer.get("status") != Some(want).filter(|w| !w.is_null()) {
                    return Err(format!(
                        "expected status {want}, got {}",
                        answer.get("status").unwrap_or(&Value::Null)
                    ));
                }
            }
            "body" => {
                let got = answer.get("body").unwrap_or(&Value::Null);
                if !contains(got, want) {
                    return Err(format!("expected a body containing {want}, got {got}"));
                }
            }
            "suggestions" => {
                let offered: Vec<&str> = answer["suggestions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .flat_map(|g| g.as_array().into_iter().flatten())
                    .filter_map(|s| s["rule"].as_str())
                    .collect();
                for rule in want
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                {
                    if !offered.contains(&rule) {
                        return Err(format!("expected the suggestion `{rule}`, got {offered:?}"));
                    }
                }
            }
            other => {
                return Err(format!(
                    "unknown expectation `{other}`; use decision, outcome, reason, rule, effect, \
                     risk, status, body or suggestions"
                ));
            }
        }
    }
    Ok(())
}

/// Whether `got` has every field of `want`, recursively (objects are compared key by key,
/// anything else exactly).
fn contains(got: &Value, want: &Value) -> bool {
    match (got, want) {
        (Value::Object(got), Value::Object(want)) => want
            .iter()
            .all(|(k, w)| got.get(k).is_some_and(|g| contains(g, w))),
        _ => got == want,
    }
}
