//! The policy author's toolkit, as an author uses it: `gavel new` -> `gavel build` ->
//! `gavel test` on the generated crate; `gavel inspect` on every bundled policy and on a
//! component with a forbidden import; `gavel test` failing with exit 1; `gavel bench`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Instant;

fn gavel(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gavel"))
        .args(args)
        .current_dir(dir)
        // The scaffold's dependencies build once into this test target, not once per run.
        .env(
            "CARGO_TARGET_DIR",
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("scaffold-target"),
        )
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn new_build_test_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let o = gavel(&["new", "lint-guard"], dir.path());
    assert!(o.status.success(), "{}", text(&o));
    let o = gavel(&["build", "lint-guard"], dir.path());
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("loads under this host"), "{}", text(&o));
    let o = gavel(&["test", "lint-guard/fixtures"], dir.path());
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim().lines().last(),
        Some("6 passed, 0 failed")
    );
    eprintln!("gavel new -> build -> test took {:?}", started.elapsed());

    // The template decomposes command lines with the SDK's sound shell parser: `ls && rm -rf x`
    // is judged as two programs (denied, `rm` being denied), and what it cannot decompose asks;
    // neither is allowed as "`ls`".
    let requests = dir.path().join("requests.jsonl");
    let line = |arg: &str| {
        serde_json::json!({"action": "tool.call", "tool": "run_command", "arg": arg,
            "sandbox_id": "sbx", "session_id": "s"})
        .to_string()
    };
    std::fs::write(
        &requests,
        [line("ls && rm -rf x"), line("ls `rm -rf x`")].join("\n") + "\n",
    )
    .unwrap();
    let o = gavel(
        &[
            "eval",
            "--policy",
            "lint-guard/lint-guard.wasm",
            "--policy-config",
            r#"{"deny": ["rm"]}"#,
            "--request",
            "requests.jsonl",
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{}", text(&o));
    let answers: Vec<Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(answers[0]["decision"], "deny", "{answers:?}");
    assert_eq!(answers[1]["decision"], "pending_hitl", "{answers:?}");

    let o = gavel(
        &["inspect", "--json", "lint-guard/lint-guard.wasm"],
        dir.path(),
    );
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["name"], "lint-guard");
    assert_eq!(v["version"], "0.1.0"); // the new policy's own crate version
    assert_eq!(v["world"], "decide-policy");
    assert_eq!(v["loads"], "ok");

    // An existing component or core module is checked and re-encoded too.
    let o = gavel(
        &["build", "lint-guard/lint-guard.wasm", "--out", "again.wasm"],
        dir.path(),
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(dir.path().join("again.wasm").exists());

    // A fixture that fails: one line per failing case, the summary, exit 1.
    let fixture = dir.path().join("lint-guard/fixtures/lint-guard.json");
    let broken = std::fs::read_to_string(&fixture).unwrap().replacen(
        r#""expect": {"decision": "allow"}"#,
        r#""expect": {"decision": "deny"}"#,
        1,
    );
    std::fs::write(&fixture, broken).unwrap();
    let o = gavel(&["test", "lint-guard/fixtures"], dir.path());
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("FAIL") && out.contains("ls is allowed: expected decision deny, got allow"),
        "{out}"
    );
    assert_eq!(out.trim().lines().last(), Some("5 passed, 1 failed"));
    let o = gavel(
        &["test", "--filter", "rm", "--json", "lint-guard/fixtures"],
        dir.path(),
    );
    let last: Value = serde_json::from_str(
        String::from_utf8_lossy(&o.stdout)
            .trim()
            .lines()
            .last()
            .unwrap(),
    )
    .unwrap();
    assert_eq!((&last["passed"], &last["failed"]), (&1.into(), &0.into()));
    assert_eq!(
        last["decided_by"]["lint-guard"].as_object().unwrap().len(),
        1
    );

    // Inside the crate, no path: the fixtures run on the current component, and an edited
    // source is rebuilt first rather than testing a stale `.wasm`.
    let krate = dir.path().join("lint-guard");
    let o = gavel(&["test", "-v"], &krate);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(!text(&o).contains("rebuilding"), "{}", text(&o));
    assert!(
        text(&o).contains("ok   fixtures/lint-guard.json: "),
        "{}",
        text(&o)
    );
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let lib = krate.join("src/lib.rs");
    let source = std::fs::read_to_string(&lib).unwrap() + "\n// edited\n";
    std::fs::write(&lib, source).unwrap();
    let o = gavel(&["test"], &krate);
    assert!(
        text(&o).contains("sources changed; rebuilding"),
        "{}",
        text(&o)
    );
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim().lines().last(),
        Some("5 passed, 1 failed")
    );
}

#[test]
fn inspect_reports_every_bundled_policy() {
    let dir = tempfile::tempdir().unwrap();
    for (name, world, manage) in [
        ("default-action", "decide-policy", false),
        ("command-rules", "policy", true),
    ] {
        let o = gavel(
            &["inspect", "--json", &format!("builtin:{name}")],
            dir.path(),
        );
        assert!(o.status.success(), "{}", text(&o));
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["name"], name);
        assert_eq!(v["world"], world);
        assert_eq!(v["package_version"], "0.2.0");
        assert_eq!(v["exports_manage"], manage);
        assert_eq!(v["loads"], "ok");
        assert_eq!(v["sha256"].as_str().unwrap().len(), 64);
        assert!(
            v["imports"]
                .as_array()
                .unwrap()
                .iter()
                .all(|i| i.as_str().unwrap().starts_with("gavel:policy/"))
        );
    }
}

#[test]
fn inspect_shows_a_forbidden_import() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.wasm");
    std::fs::write(
        &bad,
        wat::parse_str(r#"(component (import "evil:backdoor/api@1.0.0" (instance)))"#).unwrap(),
    )
    .unwrap();
    let o = gavel(&["inspect", "bad.wasm"], dir.path());
    assert_eq!(o.status.code(), Some(1));
    let out = text(&o);
    assert!(
        out.contains("imports:        evil:backdoor/api@1.0.0"),
        "{out}"
    );
    assert!(
        out.contains("loads:          no") && out.contains("which Gavel does not provide"),
        "{out}"
    );
}

#[test]
fn bundled_fixtures_pass() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let o = gavel(
        &[
            "test",
            "tests/fixtures/commands.json",
            "guest-policies/default-action/fixtures",
            "guest-policies/command-rules/fixtures",
        ],
        &root,
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains(" passed, 0 failed"),
        "{}",
        text(&o)
    );
}

#[test]
fn bench_reports_rate_and_percentiles() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("req.json"),
        r#"{"action":"tool.call","tool":"run_command","arg":"git status","sandbox_id":"b","session_id":"s"}"#,
    )
    .unwrap();
    let o = gavel(
        &[
            "bench",
            "builtin:command-rules",
            "--request",
            "req.json",
            "--policy-config",
            r#"{"global":{"allow":["run_command(git status *)"]}}"#,
            "-n",
            "2000",
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{}", text(&o));
    let out = text(&o);
    assert!(
        out.contains("(pooled instances)")
            && out.contains("verdict:    allow\n")
            && out.contains("p99"),
        "{out}"
    );
}
