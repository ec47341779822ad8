//! The `gavel test` fixture files (`guest-policies/http-rules/fixtures/*.json`) and this crate's
//! corpus (`tests/corpus.json`, in the same format), run natively through the library.
//!
//! Wire requests are normalized the way the host does it (method and protocol case, host case and
//! trailing dot, default scheme and port). Steps the policy alone cannot answer are skipped:
//! management requests, retries carrying an `approval_token`, clock advances, and the actions the
//! policy abstains on (`local.exec`, `tool.call`; the host denies those when nothing governs them).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use http_rules_core::{Connect, HttpRequest, Policy, Request, Upgrade, Verdict};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn fixture_files() -> Vec<PathBuf> {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(here.join("../http-rules/fixtures"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files.push(here.join("tests/corpus.json"));
    files
}

fn verdict(v: &str) -> Verdict {
    match v {
        "allow" => Verdict::Allow,
        "ask" | "pending_hitl" => Verdict::Ask,
        "deny" => Verdict::Deny,
        other => panic!("unknown decision {other}"),
    }
}

/// Owned copies of a wire request's fields, normalized as the host does.
struct Wire {
    action: String,
    method: String,
    scheme: String,
    host: String,
    port: u16,
    path: String,
    protocol: String,
}

fn wire(request: &Value) -> Wire {
    let s = |k: &str| request[k].as_str().unwrap_or("").to_owned();
    let scheme = request["scheme"]
        .as_str()
        .unwrap_or("https")
        .to_ascii_lowercase();
    let default_port = if scheme == "http" { 80 } else { 443 };
    let host = s("host").to_ascii_lowercase();
    Wire {
        action: s("action"),
        method: s("method").to_ascii_uppercase(),
        port: request["port"]
            .as_u64()
            .map_or(default_port, |p| u16::try_from(p).unwrap()),
        scheme,
        host: host.strip_suffix('.').unwrap_or(&host).to_owned(),
        path: s("path"),
        protocol: s("protocol").to_ascii_lowercase(),
    }
}

/// Check one step; `None` when it was skipped.
fn check(policy: &Policy, request: &Value, expect: &Value) -> Option<Result<(), String>> {
    if request.get("approval_token").is_some() {
        return None;
    }
    let w = wire(request);
    let r = match w.action.as_str() {
        "http.request" => Request::Http(HttpRequest {
            method: &w.method,
            scheme: &w.scheme,
            host: &w.host,
            port: w.port,
            path: &w.path,
        }),
        "connect" => Request::Connect(Connect {
            host: &w.host,
            port: w.port,
        }),
        "upgrade" => Request::Upgrade(Upgrade {
            host: &w.host,
            path: &w.path,
            protocol: &w.protocol,
        }),
        _ => return None,
    };
    let e = policy.evaluate(&r);
    let mut problems = Vec::new();
    if let Some(d) = expect["decision"].as_str()
        && e.verdict != verdict(d)
    {
        problems.push(format!("expected {d}, got {:?}", e.verdict));
    }
    if let Some(rule) = expect["rule"].as_str()
        && e.rule != rule
    {
        problems.push(format!("expected rule `{rule}`, got `{}`", e.rule));
    }
    if let Some(reason) = expect["reason"].as_str()
        && !e.reason.contains(reason)
    {
        problems.push(format!("expected a reason containing `{reason}`"));
    }
    Some(if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("{} ({})", problems.join("; "), e.reason))
    })
}

#[test]
fn every_fixture_case_holds_natively() {
    let mut failures = Vec::new();
    let mut checked = 0;
    for file in fixture_files() {
        let shown = file.file_name().unwrap().to_string_lossy().into_owned();
        let fixture: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap())
            .unwrap_or_else(|e| panic!("{shown} is not JSON: {e}"));
        assert_eq!(fixture["policy"], "builtin:http-rules", "{shown}");
        let policy = Policy::from_json(&fixture["config"].to_string())
            .unwrap_or_else(|e| panic!("{shown}: {e}"));
        for case in fixture["cases"].as_array().unwrap() {
            let name = case["name"].as_str().unwrap_or("(unnamed)");
            let steps: Vec<(&Value, &Value)> = match case.get("steps") {
                Some(steps) => steps
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| (&s["request"], &s["expect"]))
                    .collect(),
                None => vec![(&case["request"], &case["expect"])],
            };
            for (n, (request, expect)) in steps.into_iter().enumerate() {
                match check(&policy, request, expect) {
                    None => {}
                    Some(Ok(())) => checked += 1,
                    Some(Err(e)) => failures.push(format!("{shown}: {name} (step {}): {e}", n + 1)),
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(checked >= 100, "only {checked} steps were checked");
    println!("{checked} fixture steps checked");
}
