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
//! Unknown keys are refused (a misspelled `"confg"` would silently test an unconfigured
//! policy); `about` (a file) and `why` (a case) are free-text comments.
//!
//! Without a path, inside a policy crate (`Cargo.toml` and `fixtures/`), the crate is rebuilt
//! first when a source is newer than its component, then `fixtures/` runs.

use anyhow::{Context, bail};
use gavel_host::wire::{Request, Response, parse_request};
use gavel_host::{HostConfig, ManualClock, Operator, PolicyHost, PolicySpec, config::PolicyLimits};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::SystemTime;

/// What `gavel test` runs.
pub struct TestArgs {
    /// Fixture files, or directories of them (`*.json`). Empty, inside a policy crate:
    /// rebuild it if its sources changed, then run `fixtures/`.
    pub paths: Vec<PathBuf>,
    /// Run only cases whose name contains this.
    pub filter: Option<String>,
    /// Print every case, passed or failed.
    pub verbose: bool,
}

/// A fixture file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Fixture {
    /// A free-text description.
    #[serde(default, rename = "about")]
    _about: Option<Value>,
    policy: Option<String>,
    config: Option<Value>,
    config_file: Option<PathBuf>,
    /// A command-rules corpus: its rules configure `builtin:command-rules`.
    rules: Option<Value>,
    #[serde(default)]
    wasi: bool,
    limits: Option<PolicyLimits>,
    cases: Vec<Case>,
}

/// One case: a request and its expectation, a list of steps, or a command.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: Option<String>,
    /// A free-text reason for the case.
    #[serde(default, rename = "why")]
    _why: Option<Value>,
    request: Option<Value>,
    #[serde(default)]
    expect: Value,
    steps: Option<Vec<Step>>,
    #[serde(alias = "cmd")]
    command: Option<String>,
}

/// A step of a case: a request and its expectation, or a clock move.
#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct Step {
    request: Option<Value>,
    #[serde(default)]
    expect: Value,
    advance_ms: Option<u64>,
}

struct Outcome {
    file: String,
    case: String,
    failure: Option<String>,
}

/// Which rules decided, per policy, and the configured rules of rule policies, per file.
#[derive(Default)]
struct Tally {
    decided: BTreeMap<String, BTreeMap<String, usize>>,
    /// The fixture file being run, and the rules that decided in each file.
    file: String,
    decided_in: BTreeMap<String, std::collections::BTreeSet<String>>,
    /// `(file, rules)` of every file whose policy is a bundled rule policy.
    configured: Vec<(String, Vec<String>)>,
}

/// Run the fixtures, print failures (every case with `verbose`) and `N passed, N failed`, as
/// text or JSON; exit code 1 when a case fails.
pub fn run(args: TestArgs, json_out: bool) -> anyhow::Result<ExitCode> {
    let paths = if args.paths.is_empty() {
        vec![policy_crate_fixtures()?]
    } else {
        args.paths.clone()
    };
    let mut files = Vec::new();
    for p in &paths {
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
    let mut tally = Tally::default();
    for file in &files {
        outcomes.extend(rt.block_on(run_file(file, args.filter.as_deref(), &mut tally))?);
    }
    let failed = outcomes.iter().filter(|o| o.failure.is_some()).count();
    let passed = outcomes.len() - failed;
    for o in &outcomes {
        if json_out {
            println!(
                "{}",
                json!({"file": o.file, "case": o.case, "passed": o.failure.is_none(), "failure": o.failure})
            );
        } else if let Some(f) = &o.failure {
            println!("FAIL {}: {}: {f}", o.file, o.case);
        } else if args.verbose {
            println!("ok   {}: {}", o.file, o.case);
        }
    }
    let never = tally.never_decided();
    if json_out {
        let never: BTreeMap<&str, &Vec<String>> =
            never.iter().map(|(f, r)| (f.as_str(), r)).collect();
        println!(
            "{}",
            json!({"passed": passed, "failed": failed, "decided_by": tally.decided, "never_decided": never})
        );
    } else {
        tally.print(&never);
        println!("{passed} passed, {failed} failed");
    }
    if outcomes.is_empty() {
        // A run that checks nothing must not look like a run that passed.
        match &args.filter {
            Some(f) => eprintln!("gavel: no case matches `--filter {f}`"),
            None => eprintln!("gavel: the fixtures hold no cases"),
        }
        return Ok(ExitCode::from(1));
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

impl Tally {
    /// Per file with a rule policy, its configured rules that never decided a case.
    fn never_decided(&self) -> Vec<(String, Vec<String>)> {
        self.configured
            .iter()
            .map(|(file, rules)| {
                let decided = self.decided_in.get(file);
                let never: Vec<String> = rules
                    .iter()
                    .filter(|r| decided.is_none_or(|d| !d.contains(*r)))
                    .cloned()
                    .collect();
                (file.clone(), never)
            })
            .filter(|(_, never)| !never.is_empty())
            .collect()
    }

    fn print(&self, never: &[(String, Vec<String>)]) {
        for (policy, rules) in &self.decided {
            let list: Vec<String> = rules.iter().map(|(r, n)| format!("{r} ({n})")).collect();
            println!("decided by {policy}: {}", list.join(", "));
        }
        for (file, rules) in never {
            println!(
                "never decided in {file}: {}",
                rules
                    .iter()
                    .map(|r| format!("`{r}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
}

/// `fixtures/` of the policy crate in the current directory, after rebuilding its component
/// if any source is newer (a stale `.wasm` would test yesterday's policy).
fn policy_crate_fixtures() -> anyhow::Result<PathBuf> {
    let dir = Path::new(".");
    let fixtures = PathBuf::from("fixtures");
    if !dir.join("Cargo.toml").is_file() || !fixtures.is_dir() {
        bail!(
            "no fixtures given, and this directory is not a policy crate (`Cargo.toml` and \
             `fixtures/`); run `gavel test FIXTURES...`"
        );
    }
    let out = crate::build::crate_output(dir)?;
    let built = std::fs::metadata(&out).and_then(|m| m.modified()).ok();
    let newest = newest_source(dir)?;
    if built.is_none_or(|b| newest.is_some_and(|n| n > b)) {
        eprintln!("gavel: sources changed; rebuilding {}", out.display());
        crate::build::build(dir.to_owned(), None)?;
    }
    Ok(fixtures)
}

/// The latest modification time of `Cargo.toml`, `Cargo.lock` and everything under `src/`.
fn newest_source(dir: &Path) -> anyhow::Result<Option<SystemTime>> {
    let mut newest = None;
    let mut pending = vec![dir.join("src")];
    let mut seen = |path: &Path| {
        if let Ok(t) = std::fs::metadata(path).and_then(|m| m.modified()) {
            newest = newest.max(Some(t));
        }
    };
    seen(&dir.join("Cargo.toml"));
    seen(&dir.join("Cargo.lock"));
    while let Some(d) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries {
            let path = entry
                .with_context(|| format!("cannot read `{}`", d.display()))?
                .path();
            if path.is_dir() {
                pending.push(path);
            } else {
                seen(&path);
            }
        }
    }
    Ok(newest)
}

/// The rules a rule policy is configured with, as its decisions name them: command-rules rule
/// texts, http-rules rule ids.
fn configured_rules(policy: &str, config: &Value) -> Option<Vec<String>> {
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect()
    };
    let mut rules = Vec::new();
    match policy {
        "builtin:command-rules" => {
            let mut scopes = vec![&config["global"], &config["local"]];
            scopes.extend(
                config["projects"]
                    .as_object()
                    .into_iter()
                    .flat_map(|p| p.values()),
            );
            for scope in scopes {
                for kind in ["allow", "ask", "deny"] {
                    rules.extend(strings(&scope[kind]));
                }
            }
        }
        "builtin:http-rules" => {
            for list in ["requests", "connect", "upgrade"] {
                rules.extend(
                    config[list]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|r| r["id"].as_str().map(str::to_owned)),
                );
            }
        }
        _ => return None,
    }
    rules.sort();
    rules.dedup();
    Some(rules)
}

async fn run_file(
    file: &Path,
    filter: Option<&str>,
    tally: &mut Tally,
) -> anyhow::Result<Vec<Outcome>> {
    let shown = file.display().to_string();
    let text = std::fs::read_to_string(file).with_context(|| format!("cannot read `{shown}`"))?;
    let fixture: Fixture = serde_json::from_str(&text)
        .map_err(|e| anyhow::anyhow!("`{shown}` is not a fixture file: {e}"))?;
    let base = file.parent().unwrap_or(Path::new("."));
    let (policy, config) = match (fixture.policy, fixture.rules) {
        (Some(policy), None) => (policy, fixture.config),
        // A command-rules corpus: its rules configure builtin:command-rules.
        (None, Some(rules)) if fixture.config.is_none() => {
            ("builtin:command-rules".to_owned(), Some(rules))
        }
        (None, None) => {
            bail!("`{shown}`: `policy` must name a `.wasm` file or `builtin:NAME`")
        }
        _ => bail!("`{shown}`: give either `policy` (and `config`) or a corpus's `rules`"),
    };
    let mut spec = match policy.strip_prefix("builtin:") {
        Some(_) => PolicySpec::parse(&policy),
        None => PolicySpec::file(base.join(&policy)),
    };
    spec.config = config;
    if let Some(cf) = &fixture.config_file {
        spec.config_file = Some(base.join(cf));
    }
    spec.wasi = fixture.wasi;
    if let Some(limits) = fixture.limits {
        spec.limits = limits;
    }
    let effective = match (&spec.config, &spec.config_file) {
        (Some(c), _) => Some(c.clone()),
        (None, Some(path)) => std::fs::read_to_string(path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok()),
        (None, None) => None,
    };
    if let Some(rules) = configured_rules(&policy, &effective.unwrap_or(Value::Null)) {
        tally.configured.push((shown.clone(), rules));
    }
    tally.file.clone_from(&shown);
    let config = HostConfig {
        policies: vec![spec],
        // Fixtures are judged one after another in one session: no bound on pending asks.
        max_pending_per_session: usize::MAX,
        max_pending: usize::MAX,
        ..HostConfig::default()
    };
    let clock = ManualClock::new(1_700_000_000_000);
    let host = PolicyHost::with_clock(
        &config,
        Arc::new(gavel_host::tokens::MemoryStore::new()),
        Arc::new(clock.clone()),
    )
    .with_context(|| format!("`{shown}`: the policy does not load"))?;
    let mut outcomes = Vec::new();
    if fixture.cases.is_empty() && filter.is_none() {
        outcomes.push(Outcome {
            file: shown.clone(),
            case: "(no cases)".into(),
            failure: Some("the file holds no cases".into()),
        });
    }
    for (i, case) in fixture.cases.iter().enumerate() {
        let name = case
            .name
            .clone()
            .or_else(|| case.command.clone())
            .unwrap_or_else(|| format!("case {}", i + 1));
        if filter.is_some_and(|f| !name.contains(f)) {
            continue;
        }
        let failure = run_case(&host, &clock, case, tally).await.err();
        outcomes.push(Outcome {
            file: shown.clone(),
            case: name,
            failure,
        });
    }
    Ok(outcomes)
}

/// Run one case; `Err` says what differed.
async fn run_case(
    host: &PolicyHost,
    clock: &ManualClock,
    case: &Case,
    tally: &mut Tally,
) -> Result<(), String> {
    if let Some(cmd) = &case.command {
        let allowed: Vec<String> = match &case.expect {
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
            record(host, &request, tally);
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
    let steps: Vec<Step> = match (&case.steps, &case.request) {
        (Some(steps), None) => steps.clone(),
        (None, Some(request)) => vec![Step {
            request: Some(request.clone()),
            expect: case.expect.clone(),
            advance_ms: None,
        }],
        _ => return Err("a case has one of `request`, `steps` and `command`".into()),
    };
    let mut token: Option<String> = None;
    for (n, step) in steps.iter().enumerate() {
        let at = if steps.len() > 1 {
            format!("step {}: ", n + 1)
        } else {
            String::new()
        };
        if let Some(ms) = step.advance_ms {
            clock.advance(ms);
            continue;
        }
        let request = substitute(
            step.request.as_ref().unwrap_or(&Value::Null),
            token.as_deref(),
        );
        if !request.is_object() {
            return Err(format!("{at}`request` must be a JSON object"));
        }
        record(host, &request, tally);
        let answer = send(host, &request).await?;
        if let Some(t) = answer["approval_token"].as_str() {
            token = Some(t.to_owned());
        }
        check(host, &request, &answer, &step.expect)
            .await
            .map_err(|e| format!("{at}{e}"))?;
    }
    Ok(())
}

/// Count the rule that decides a fresh governance request (a retry runs no policy).
fn record(host: &PolicyHost, request: &Value, tally: &mut Tally) {
    if request.get("approval_token").is_some() {
        return;
    }
    if let Ok(Request::Decide(d)) = parse_request(request.to_string().as_bytes()) {
        let decision = host.evaluate(&d.action);
        let rule = decision.rule_id.unwrap_or_else(|| "(no rule)".to_owned());
        tally
            .decided_in
            .entry(tally.file.clone())
            .or_default()
            .insert(rule.clone());
        *tally
            .decided
            // An empty name: no policy governed it (every one abstained).
            .entry(if decision.policy.is_empty() {
                "(no policy)".to_owned()
            } else {
                decision.policy.to_string()
            })
            .or_default()
            .entry(rule)
            .or_default() += 1;
    }
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
