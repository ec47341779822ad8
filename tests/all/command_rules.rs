//! `builtin:command-rules` through `gavel eval`: the whole decision corpus as local-exec
//! requests (`/bin/bash -c CMD`) and as `run_command` tool calls, answered by the wasm policy;
//! suggestions on the wire; the `never_approve` veto; configuration errors at load.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

use serde_json::{Value, json};
use std::io::Write;
use std::process::{Command, Stdio};

fn corpus() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/commands.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Run `gavel eval` with `builtin:command-rules` configured by `config` over `lines`.
fn eval(config: &Value, lines: &[Value]) -> (Vec<Value>, String, Option<i32>) {
    // The corpus is about verdicts, not time: a deadline that holds on a loaded machine (a
    // 200-path `git add` passed the default 100 ms there).
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rules.json"), config.to_string()).unwrap();
    std::fs::write(
        dir.path().join("gavel.toml"),
        format!(
            "[limits]\ndeadline_ms = 5000\n[[policy]]\nname = \"command-rules\"\n\
             builtin = \"command-rules\"\nconfig_file = \"{}\"\n",
            dir.path().join("rules.json").display()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_gavel"))
        .arg("eval")
        .arg("--config")
        .arg(dir.path().join("gavel.toml"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = String::new();
    for line in lines {
        input.push_str(&line.to_string());
        input.push('\n');
    }
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let answers = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (
        answers,
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code(),
    )
}

fn wire(expect: &str) -> &'static str {
    match expect {
        "allow" => "allow",
        "ask" => "pending_hitl",
        "deny" => "deny",
        other => panic!("unknown verdict {other}"),
    }
}

#[test]
fn the_corpus_holds_through_the_wasm_policy() {
    let corpus = corpus();
    let cases = corpus["cases"].as_array().unwrap();
    assert!(cases.len() >= 100, "the corpus has {} cases", cases.len());
    let mut lines = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let cmd = case["cmd"].as_str().unwrap();
        // A session per case: one session may hold only `max_pending_per_session` asks.
        let session = format!("s{i}");
        lines.push(json!({
            "action": "local.exec", "executable": "/bin/bash", "args": ["-c", cmd],
            "sandbox_id": "sbx", "session_id": session, "profile": "default", "hitl_mode": "async_token",
        }));
        lines.push(json!({"action": "tool.call", "tool": "run_command", "arg": cmd, "sandbox_id": "sbx", "session_id": session}));
    }
    let (answers, stderr, code) = eval(&corpus["rules"], &lines);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(answers.len(), lines.len());
    let mut failures = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let allowed: Vec<&str> = match &case["expect"] {
            Value::String(s) => vec![wire(s)],
            Value::Array(a) => a.iter().map(|v| wire(v.as_str().unwrap())).collect(),
            other => panic!("bad expect {other}"),
        };
        for (how, answer) in [
            ("local.exec", &answers[2 * i]),
            ("tool.call", &answers[2 * i + 1]),
        ] {
            let got = answer["decision"].as_str().unwrap();
            if !allowed.contains(&got) {
                failures.push(format!(
                    "{how} {:?}: expected {allowed:?}, got {answer}",
                    case["cmd"]
                ));
            }
            let reason = answer["reason"].as_str().unwrap_or("");
            assert!(reason.contains("policy `command-rules`"), "{answer}");
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn suggestions_ride_on_pending_answers() {
    let (answers, _, _) = eval(
        &json!({"global": {"allow": ["run_command(git status *)"]}}),
        &[
            json!({"action": "tool.call", "tool": "run_command", "arg": "git status && npm run build --watch", "sandbox_id": "b", "session_id": "s"}),
        ],
    );
    let a = &answers[0];
    assert_eq!(a["decision"], "pending_hitl");
    assert_eq!(
        a["suggestions"][0][0]["rule"],
        "run_command(npm run build --watch)"
    );
    assert_eq!(a["suggestions"][0][2]["rule"], "run_command(npm run *)");
    assert_eq!(
        a["suggestions"].as_array().unwrap().len(),
        1,
        "git status is allowed already"
    );
}

#[test]
fn never_approve_vetoes_the_operator() {
    let config = json!({"never_approve": ["run_command(rm -rf /*)"]});
    let mut child = Command::new(env!("CARGO_BIN_EXE_gavel"))
        .args([
            "eval",
            "--policy",
            "builtin:command-rules",
            "--policy-config",
        ])
        .arg(config.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut ask = |line: Value| -> Value {
        use std::io::BufRead;
        writeln!(stdin, "{line}").unwrap();
        let mut answer = String::new();
        stdout.read_line(&mut answer).unwrap();
        serde_json::from_str(&answer).unwrap()
    };
    let exec = |cmd: &str| {
        json!({"action": "local.exec", "executable": "/bin/sh", "args": ["-c", cmd], "sandbox_id": "b",
               "session_id": "s", "profile": "p", "hitl_mode": "async_token"})
    };
    let bad = ask(exec("sudo rm -rf /"));
    assert_eq!(bad["decision"], "pending_hitl");
    let vetoed = ask(json!({"action": "local.exec.approve", "token_id": bad["approval_token"]}));
    assert_eq!(vetoed["outcome"], "denied");
    assert!(
        vetoed["reason"]
            .as_str()
            .unwrap()
            .contains("never_approve rule `run_command(rm -rf /*)`"),
        "{vetoed}"
    );
    // Revoking it is still fine, and an ordinary request can be approved.
    assert_eq!(
        ask(json!({"action": "local.exec.revoke", "token_id": bad["approval_token"]}))["outcome"],
        "ok"
    );
    let fine = ask(exec("make"));
    assert_eq!(
        ask(json!({"action": "local.exec.approve", "token_id": fine["approval_token"]}))["outcome"],
        "ok"
    );
    drop(stdin);
    assert!(child.wait().unwrap().success());
}

#[test]
fn an_invalid_rule_fails_the_load_naming_it() {
    let (answers, stderr, code) = eval(&json!({"global": {"deny": ["run_command(rm *"]}}), &[]);
    assert!(answers.is_empty());
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("rule `run_command(rm *` is invalid"),
        "{stderr}"
    );
}

#[test]
fn gavel_suggest_and_allow_for_project() {
    let out = Command::new(env!("CARGO_BIN_EXE_gavel"))
        .args([
            "suggest",
            "--json",
            "--policy-config",
            r#"{"global":{"deny":["run_command(npm publish *)"]}}"#,
            "npm",
            "run",
            "build",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["verdict"], "ask");
    assert_eq!(v["suggestions"][0][1]["rule"], "run_command(npm run *)");

    let dir = tempfile::tempdir().unwrap();
    let save = |rules: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_gavel"))
            .args(["allow-for-project", "--project-dir"])
            .arg(dir.path())
            .args(["--project", "web"])
            .args(rules)
            .output()
            .unwrap()
    };
    assert!(save(&["run_command(npm run *)"]).status.success());
    assert!(
        save(&["run_command(npm run *)", "run_command(make *)"])
            .status
            .success()
    );
    let saved: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("web/permissions.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        saved,
        json!({"allow": ["run_command(npm run *)", "run_command(make *)"]})
    );
    let refused = save(&["run_command(ls"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("is invalid"));
}
