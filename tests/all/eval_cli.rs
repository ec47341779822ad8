//! `gavel eval` driven as a program drives it: line by line over pipes, and its exit codes.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

fn gavel() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gavel"));
    cmd.env("RUST_LOG", "error");
    cmd
}

const REQUEST: &str = r#"{"action":"local.exec","executable":"/bin/ls","args":["-la"],"sandbox_id":"sbx","session_id":"s","profile":"p","hitl_mode":"async_token"}"#;

#[test]
fn a_program_can_issue_approve_and_retry_line_by_line() {
    let mut child = gavel()
        .args(["eval", "--policy", "builtin:default-action"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut ask = |line: &str| -> Value {
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
        let mut answer = String::new();
        stdout.read_line(&mut answer).unwrap();
        serde_json::from_str(&answer).unwrap()
    };

    // Each answer arrives before the next request is written: the output is flushed per line.
    let pending = ask(REQUEST);
    assert_eq!(pending["decision"], "pending_hitl");
    let token = pending["approval_token"].as_str().unwrap().to_owned();
    let mut retry: Value = serde_json::from_str(REQUEST).unwrap();
    retry["approval_token"] = json!(token);
    assert_eq!(ask(&retry.to_string())["decision"], "pending_hitl");
    let approved = ask(&json!({"action": "local.exec.approve", "token_id": token}).to_string());
    assert_eq!(approved, json!({"outcome": "ok"}));
    assert_eq!(ask(&retry.to_string())["decision"], "allow");
    let replay = ask(&retry.to_string());
    assert_eq!(replay["decision"], "deny");
    assert!(
        replay["reason"]
            .as_str()
            .unwrap()
            .contains("already consumed")
    );
    let bad = ask("{oops");
    assert!(
        bad["reason"]
            .as_str()
            .unwrap()
            .starts_with("malformed request:")
    );

    drop(stdin);
    assert!(child.wait().unwrap().success());
}

#[test]
fn requests_from_a_file_with_a_configured_chain() {
    let dir = tempfile::tempdir().unwrap();
    let requests = dir.path().join("requests.jsonl");
    let long = format!(
        "{{\"action\":\"local.exec\",\"pad\":\"{}\"}}",
        "x".repeat(70_000)
    );
    std::fs::write(&requests, format!("{REQUEST}\n\n{long}\n{REQUEST}")).unwrap();
    let config = dir.path().join("gavel.toml");
    std::fs::write(
        &config,
        "[[policy]]\nname = \"first\"\nbuiltin = \"default-action\"\nconfig = { action = \"allow\" }\n\
         [[policy]]\nname = \"second\"\nbuiltin = \"default-action\"\nconfig_file = \"second.json\"\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("second.json"), r#"{"action": "deny"}"#).unwrap();
    let out = gavel()
        .args(["eval", "--config"])
        .arg(&config)
        .arg("--request")
        .arg(&requests)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines.len(),
        3,
        "blank lines are skipped, every other line is answered"
    );
    assert_eq!(lines[0]["decision"], "deny");
    assert!(
        lines[0]["reason"]
            .as_str()
            .unwrap()
            .contains("policy `second`")
    );
    assert!(
        lines[1]["reason"]
            .as_str()
            .unwrap()
            .contains("malformed request")
    );
    assert_eq!(lines[2]["decision"], "deny");
}

#[test]
fn policy_configs_pair_with_the_policy_before_them() {
    let mut child = gavel()
        .args([
            "eval",
            "--policy",
            "builtin:default-action",
            "--policy-config",
            r#"{"action":"allow"}"#,
        ])
        .args([
            "--policy",
            "builtin:default-action",
            "--policy-config",
            r#"{"action":"pending_hitl"}"#,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{REQUEST}").unwrap();
    let out = child.wait_with_output().unwrap();
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["decision"], "pending_hitl");
    assert!(
        answer["reason"]
            .as_str()
            .unwrap()
            .contains("policy `default-action#2`"),
        "{answer}"
    );
}

#[test]
fn usage_configuration_and_load_errors_exit_2_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let not_wasm = dir.path().join("policy.wasm");
    std::fs::write(&not_wasm, "hello").unwrap();
    let bad_toml = dir.path().join("gavel.toml");
    std::fs::write(
        &bad_toml,
        "[[policy]]\nname = \"x\"\nbuiltin = \"default-action\"\ncolour = 1\n",
    )
    .unwrap();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["--policy".into(), not_wasm.display().to_string()],
            "is not a WebAssembly component",
        ),
        (
            vec!["--policy".into(), "/no/such/file.wasm".into()],
            "cannot access `/no/such/file.wasm`",
        ),
        (
            vec!["--policy-config".into(), "{}".into()],
            "must follow the `--policy`",
        ),
        (
            vec![
                "--policy".into(),
                "builtin:default-action".into(),
                "--policy-config".into(),
                "{".into(),
            ],
            "is not JSON",
        ),
        (
            vec!["--config".into(), bad_toml.display().to_string()],
            "unknown field `colour`",
        ),
        (
            vec!["--request".into(), "/no/such/requests".into()],
            "cannot open request file",
        ),
    ];
    for (args, phrase) in cases {
        let out = gavel()
            .arg("eval")
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(phrase), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
    }
}
