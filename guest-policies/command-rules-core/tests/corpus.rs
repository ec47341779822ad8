//! The decision corpus (`tests/fixtures/commands.json`): every case, as a `run_command` tool call
//! and as a process start (`/bin/bash -c CMD`), through the library natively. The same corpus
//! runs through the wasm policy in the host's tests.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

use command_rules_core::{Policy, Request, Verdict};
use serde_json::Value;

fn corpus() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/commands.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn verdict(v: &str) -> Verdict {
    match v {
        "allow" => Verdict::Allow,
        "ask" => Verdict::Ask,
        "deny" => Verdict::Deny,
        other => panic!("unknown verdict {other}"),
    }
}

#[test]
fn every_corpus_case_holds_as_tool_call_and_as_exec() {
    let corpus = corpus();
    let policy = Policy::from_json(&corpus["rules"].to_string()).unwrap();
    let mut failures = Vec::new();
    let cases = corpus["cases"].as_array().unwrap();
    for case in cases {
        let cmd = case["cmd"].as_str().unwrap();
        let expect: Vec<Verdict> = match &case["expect"] {
            Value::String(s) => vec![verdict(s)],
            Value::Array(a) => a.iter().map(|v| verdict(v.as_str().unwrap())).collect(),
            other => panic!("bad expect {other}"),
        };
        let tool = policy.evaluate(&Request::tool("run_command", cmd));
        let argv = vec!["-c".to_owned(), cmd.to_owned()];
        let exec = policy.evaluate(&Request::exec("/bin/bash", &argv));
        for (how, e) in [("tool", &tool), ("exec", &exec)] {
            if !expect.contains(&e.verdict) {
                failures.push(format!(
                    "{how}: {cmd:?}: expected {expect:?}, got {:?} ({})",
                    e.verdict, e.reason
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
