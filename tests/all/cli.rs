//! The `gavel` command as an operator meets it in the first hour: the `serve` banner and its
//! start-up failures, flags where users put them, `check`, strict `test`, `token approve`
//! confirmation, one-line errors, and the small commands (`builtins`, `completions`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn gavel(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gavel"));
    cmd.current_dir(dir)
        .env("RUST_LOG", "error")
        .env_remove("GAVEL_SOCKET")
        .stdin(Stdio::null());
    cmd
}

fn run(dir: &Path, args: &[&str]) -> Output {
    gavel(dir).args(args).output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A running `gavel serve`, stopped with SIGTERM when dropped.
struct Served {
    child: Child,
    banner: Vec<String>,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// Start `gavel serve --config gavel.toml` in `dir` and read its banner up to the approve line.
fn serve(dir: &Path) -> Served {
    let mut child = gavel(dir)
        .args(["serve", "--config", "gavel.toml"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut banner = Vec::new();
    loop {
        let mut line = String::new();
        if out.read_line(&mut line).unwrap() == 0 {
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            panic!("gavel serve stopped: {banner:?} {err}");
        }
        let done = line.contains("approve with");
        banner.push(line.trim_end().to_owned());
        if done {
            break;
        }
    }
    Served { child, banner }
}

const CONFIG: &str = r#"
socket = "exec.sock"
management_socket = "manage.sock"
audit_log = "logs/not-yet/audit.jsonl"
metrics_addr = "127.0.0.1:0"
watch_ms = 0

[store]
kind = "memory"

[[policy]]
name = "ask"
builtin = "default-action"
"#;

const REQUEST: &str = r#"{"action":"local.exec","executable":"make","args":["deploy"],"sandbox_id":"sbx","session_id":"s","profile":"p","hitl_mode":"async_token"}"#;

fn http_get(addr: &str, path: &str) -> String {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nhost: x\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

#[test]
fn serve_banner_approval_from_the_config_and_health() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("gavel.toml"), CONFIG).unwrap();
    let server = serve(d);
    let banner = server.banner.join("\n");
    let canonical = d.canonicalize().unwrap();
    let within = |p: &str| {
        banner.contains(&d.join(p).display().to_string())
            || banner.contains(&canonical.join(p).display().to_string())
    };
    assert!(within("exec.sock") && within("manage.sock"), "{banner}");
    assert!(banner.contains("token store memory"), "{banner}");
    // The audit log's missing directory was created at start.
    assert!(within("logs/not-yet/audit.jsonl"), "{banner}");
    assert!(d.join("logs/not-yet").is_dir());
    let policy = server
        .banner
        .iter()
        .find(|l| l.contains("policy ask@sha256:"))
        .unwrap_or_else(|| panic!("{banner}"));
    let digest = policy.split("sha256:").nth(1).unwrap();
    assert!(
        digest[..64].bytes().all(|b| b.is_ascii_hexdigit()),
        "{policy}"
    );
    assert!(
        policy.ends_with("(decide-policy, gavel:policy@0.2.0)"),
        "{policy}"
    );
    assert!(banner.contains("gavel token --socket "), "{banner}");
    assert!(banner.contains("manage.sock approve ID"), "{banner}");

    // Metrics and health on the bound port the banner names.
    let url = server
        .banner
        .iter()
        .find_map(|l| l.split("metrics http://").nth(1))
        .unwrap_or_else(|| panic!("{banner}"));
    let addr = url.split('/').next().unwrap();
    let health = http_get(addr, "/healthz");
    assert!(
        health.starts_with("HTTP/1.1 200 OK") && health.ends_with("ok\n"),
        "{health}"
    );
    assert!(http_get(addr, "/metrics").contains("# EOF"));

    // `request` and `token` find their sockets in `--config`, given after the subcommand.
    let o = run(d, &["request", REQUEST, "--config", "gavel.toml"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let pending: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(pending["decision"], "pending_hitl");
    let token = pending["approval_token"].as_str().unwrap();

    let o = run(d, &["token", "list", "--config", "gavel.toml"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains(token), "{}", stdout(&o));
    assert!(stdout(&o).contains(" in 4m 5"), "{}", stdout(&o)); // e.g. `in 4m 59s`
    let o = run(d, &["token", "show", token, "--config", "gavel.toml"]);
    let shown = stdout(&o);
    let created = shown
        .lines()
        .find(|l| l.trim_start().starts_with("created_at_ms:"))
        .unwrap_or_else(|| panic!("{shown}"));
    // RFC 3339, not epoch milliseconds: `2026-11-29T04:25:38Z`.
    let time = created.split(": ").nth(1).unwrap();
    assert!(
        time.len() == 20 && time.ends_with('Z') && &time[10..11] == "T",
        "{created}"
    );

    // Approving from a script without `--yes`: refused, nothing approved.
    let o = run(d, &["token", "approve", token, "--config", "gavel.toml"]);
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    assert!(stderr(&o).contains("pass `--yes`"), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("make deploy"),
        "the record is shown first: {}",
        stdout(&o)
    );
    let mut retry: Value = serde_json::from_str(REQUEST).unwrap();
    retry["approval_token"] = token.into();
    let retry = retry.to_string();
    let o = run(d, &["request", &retry, "--config", "gavel.toml"]);
    assert!(stdout(&o).contains("pending_hitl"), "{}", stdout(&o));

    let o = run(
        d,
        &["token", "approve", "--yes", token, "--config", "gavel.toml"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("make deploy"), "{}", stdout(&o));
    assert!(
        stdout(&o).contains(&format!("approved {token}")),
        "{}",
        stdout(&o)
    );
    let o = run(d, &["request", &retry, "--config", "gavel.toml"]);
    assert!(
        stdout(&o).contains(r#""decision":"allow""#),
        "{}",
        stdout(&o)
    );

    // `--socket` after the subcommand, and the management socket refusing governance lines.
    let o = run(d, &["request", REQUEST, "--socket", "manage.sock"]);
    assert!(stdout(&o).contains("unsupported_action"), "{}", stdout(&o));
    drop(server);
    let audit = std::fs::read_to_string(d.join("logs/not-yet/audit.jsonl")).unwrap();
    assert!(audit.lines().count() >= 3, "{audit}");
}

#[test]
fn serve_fails_at_start_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    std::fs::write(
        d.join("gavel.toml"),
        format!("socket = \"exec.sock\"\nmetrics_addr = \"127.0.0.1:{port}\"\n[store]\nkind = \"memory\"\n[[policy]]\nname = \"a\"\nbuiltin = \"default-action\"\n"),
    )
    .unwrap();
    let started = Instant::now();
    let o = run(d, &["serve", "--config", "gavel.toml"]);
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    let err = stderr(&o);
    assert!(
        err.contains("`metrics_addr`") && err.contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
    assert!(!stdout(&o).contains("listening"), "{}", stdout(&o));
    assert!(started.elapsed() < Duration::from_secs(60));

    // An audit log under a regular file cannot be created.
    std::fs::write(d.join("plain"), "").unwrap();
    std::fs::write(
        d.join("gavel.toml"),
        "socket = \"exec.sock\"\naudit_log = \"plain/audit.jsonl\"\n[store]\nkind = \"memory\"\n[[policy]]\nname = \"a\"\nbuiltin = \"default-action\"\n",
    )
    .unwrap();
    let o = run(d, &["serve", "--config", "gavel.toml"]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("`audit_log`") && err.contains("plain"),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}

#[test]
fn global_flags_are_accepted_after_the_subcommand_and_refused_where_meaningless() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Before the fix, clap refused `--socket` here with a usage error and no hint.
    let o = run(d, &["token", "list", "--socket", "/nonexistent/gavel.sock"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("cannot connect to `/nonexistent/gavel.sock`"),
        "{}",
        stderr(&o)
    );
    let o = run(d, &["token", "--socket", "/nonexistent/b.sock", "list"]);
    assert!(stderr(&o).contains("/nonexistent/b.sock"), "{}", stderr(&o));
    let o = run(d, &["new", "x", "--json"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("`gavel new` does not take `--json`"),
        "{}",
        stderr(&o)
    );
    assert!(!d.join("x").exists());
    let o = run(
        d,
        &[
            "bench",
            "builtin:default-action",
            "--request",
            "r",
            "--config",
            "{}",
        ],
    );
    assert!(stderr(&o).contains("`--policy-config`"), "{}", stderr(&o));
    let o = run(d, &["eval", "--wasi"]);
    assert!(
        stderr(&o).contains("`--wasi` applies to `--policy`"),
        "{}",
        stderr(&o)
    );
    let o = gavel(d)
        .args(["eval", "--wasi", "--policy", "builtin:default-action"])
        .arg("--policy-config")
        .arg(r#"{"action":"allow"}"#)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            writeln!(c.stdin.take().unwrap(), "{REQUEST}")?;
            c.wait_with_output()
        })
        .unwrap();
    assert!(
        stdout(&o).contains(r#""decision":"allow""#),
        "{}",
        stdout(&o)
    );
}

#[test]
fn suggest_takes_the_command_with_its_flags() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(dir.path(), &["suggest", "npm", "run", "build", "--watch"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("run_command(npm run build --watch)"),
        "{}",
        stdout(&o)
    );
    let o = run(dir.path(), &["suggest", "--json", "npm", "test", "-x"]);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["verdict"], "ask");
}

#[test]
fn allow_for_project_creates_a_missing_directory() {
    let dir = tempfile::tempdir().unwrap();
    let projects = dir.path().join("fresh/projects");
    let o = gavel(dir.path())
        .args(["allow-for-project", "--project", "web", "--project-dir"])
        .arg(&projects)
        .arg("run_command(npm run *)")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let file = projects.join("web/permissions.json");
    assert!(
        stdout(&o).contains(&file.display().to_string()),
        "{}",
        stdout(&o)
    );
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    assert_eq!(saved["allow"][0], "run_command(npm run *)");
}

#[test]
fn check_reports_every_error_and_the_rules_that_cannot_work() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("rules.json"),
        r#"{"global": {"deny": ["run_comand(rm *)", "run_command(curl *)"],
                       "allow": ["run_command(curl *)", "run_command(ls && pwd)"]},
            "projects": {"web": {"allow": ["read_fil(/src/**)"]}}}"#,
    )
    .unwrap();
    std::fs::write(
        d.join("gavel.toml"),
        r#"
[[policy]]
name = "rules"
builtin = "command-rules"
config_file = "rules.json"

[[policy]]
name = "missing"
path = "nowhere.wasm"

[[policy]]
name = "slow"
builtin = "default-action"
limits = { deadline_ms = 0 }

[[policy]]
name = "badconfig"
builtin = "command-rules"
config = { global = { deny = ["run_command("] } }
"#,
    )
    .unwrap();
    let o = run(d, &["check", "--config", "gavel.toml"]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}{}", stderr(&o));
    let errors: Vec<&str> = out.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(errors.len(), 3, "{out}");
    assert!(
        errors[0].contains("gavel.toml: policy[1] `missing`: `path`: cannot access")
            && errors[0].contains("nowhere.wasm"),
        "{out}"
    );
    assert_eq!(errors[0].matches("No such file").count(), 1, "{out}");
    assert!(
        errors[1].contains("policy[2] `slow`") && errors[1].contains("deadline"),
        "{out}"
    );
    assert!(
        errors[2].contains("policy[3] `badconfig`") && errors[2].contains("run_command("),
        "{out}"
    );
    assert!(
        !out.contains("invalid configuration: invalid configuration"),
        "{out}"
    );
    let warning = |needle: &str| {
        out.lines()
            .any(|l| l.starts_with("warning: ") && l.contains("rules.json") && l.contains(needle))
    };
    assert!(
        warning("global.deny[0]: `run_comand(rm *)`: unknown tool `run_comand`"),
        "{out}"
    );
    assert!(warning("did you mean `run_command`?"), "{out}");
    assert!(
        warning("projects.web.allow[0]") && warning("`read_fil`"),
        "{out}"
    );
    assert!(
        warning("global.allow[0]") && warning("the same rule in `global.deny`"),
        "{out}"
    );
    assert!(
        warning("global.allow[1]") && warning("split at `&&`"),
        "{out}"
    );
    assert!(
        out.trim_end()
            .ends_with("4 policies checked: 3 errors, 4 warnings"),
        "{out}"
    );

    // JSON, and a clean configuration passes.
    let o = run(d, &["check", "--json", "--policy", "builtin:http-rules"]);
    assert!(o.status.success(), "{}", stdout(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["errors"], serde_json::json!([]));
    let o = run(d, &["check"]);
    assert!(stderr(&o).contains("nothing to check"), "{}", stderr(&o));
}

#[test]
fn test_is_strict_verbose_and_reports_rule_coverage() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("typo.json"),
        r#"{"policy": "builtin:default-action", "confg": {"action": "allow"}, "cases": []}"#,
    )
    .unwrap();
    let o = run(d, &["test", "typo.json"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("unknown field `confg`"),
        "{}",
        stderr(&o)
    );

    std::fs::write(
        d.join("empty.json"),
        r#"{"policy": "builtin:default-action", "cases": []}"#,
    )
    .unwrap();
    let o = run(d, &["test", "empty.json"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(stdout(&o).contains("0 passed, 1 failed"), "{}", stdout(&o));

    std::fs::write(
        d.join("rules.json"),
        r#"{"policy": "builtin:command-rules",
            "config": {"global": {"deny": ["run_command(rm *)"], "allow": ["run_command(ls *)", "run_command(make *)"]}},
            "cases": [{"command": "ls -la", "expect": "allow"}, {"command": "rm -rf x", "expect": "deny"},
                      {"command": "ls; rm y", "expect": "deny"}]}"#,
    )
    .unwrap();
    let o = run(d, &["test", "-v", "rules.json"]);
    let out = stdout(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("ok   rules.json: ls -la"), "{out}");
    assert!(
        out.contains("decided by command-rules: run_command(ls *) (2), run_command(rm *) (4)"),
        "{out}"
    );
    assert!(
        out.contains("never decided in rules.json: `run_command(make *)`"),
        "{out}"
    );
    let o = run(d, &["test", "--filter", "nothing-matches", "rules.json"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("no case matches"), "{}", stderr(&o));
    let o = run(d, &["test"]);
    assert!(stderr(&o).contains("not a policy crate"), "{}", stderr(&o));
}

#[test]
fn errors_are_one_line_with_the_os_error_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for args in [
        &["eval", "--config", "/no/such/gavel.toml"][..],
        &["inspect", "/no/such/policy.wasm"],
        &["suggest", "--policy-config", "@/no/such/rules.json", "ls"],
    ] {
        let o = run(d, args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert_eq!(
            err.matches("No such file or directory").count(),
            1,
            "{args:?}: {err}"
        );
        assert!(err.contains("/no/such/"), "{args:?}: {err}");
    }
}

#[test]
fn builtins_and_completions() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(dir.path(), &["builtins"]);
    assert!(o.status.success());
    for name in ["default-action", "command-rules", "http-rules"] {
        assert!(
            stdout(&o).contains(&format!("builtin:{name} ")),
            "{}",
            stdout(&o)
        );
    }
    let o = run(dir.path(), &["builtins", "--json"]);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 3);
    for shell in ["bash", "zsh", "fish"] {
        let o = run(dir.path(), &["completions", shell]);
        assert!(o.status.success(), "{shell}");
        let script = stdout(&o);
        assert!(
            script.contains("allow-for-project") && script.contains("--policy-config"),
            "{shell}"
        );
    }
}
