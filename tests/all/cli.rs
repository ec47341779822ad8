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

/// Wait until `request` (sent with `--config gavel.toml` in `d`) is answered with `decision`.
fn answered(d: &Path, request: &str, decision: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let o = run(d, &["request", request, "--config", "gavel.toml"]);
        assert!(o.status.success(), "{}", stderr(&o));
        let answer: Value = serde_json::from_str(&stdout(&o)).unwrap();
        if answer["decision"] == decision || Instant::now() > deadline {
            return answer;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn exec(executable: &str, args: &[&str]) -> String {
    serde_json::json!({"action": "local.exec", "executable": executable, "args": args,
        "sandbox_id": "sbx", "session_id": "s", "profile": "web", "hitl_mode": "async_token"})
    .to_string()
}

#[test]
fn saved_project_rules_take_effect_without_a_restart_under_the_global_deny() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("gavel.toml"),
        r#"
socket = "exec.sock"
management_socket = "manage.sock"
audit_log = "audit.jsonl"
watch_ms = 50

[store]
kind = "memory"

[[policy]]
name = "rules"
builtin = "command-rules"
config = { global = { deny = ["run_command(rm *)"] } }
projects_dir = "projects"
"#,
    )
    .unwrap();
    let server = serve(d);
    let build = exec("npm", &["run", "build"]);
    let asked = answered(d, &build, "pending_hitl");
    assert_eq!(asked["decision"], "pending_hitl", "{asked}");
    let token = asked["approval_token"].as_str().unwrap();

    // The operator finds the suggestion on the token and saves it for project `web` (the
    // request's profile).
    let o = run(
        d,
        &["token", "show", token, "--json", "--config", "gavel.toml"],
    );
    let shown: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let rule = shown["token"]["suggestions"][0][0]["rule"]
        .as_str()
        .unwrap_or_else(|| panic!("{shown}"))
        .to_owned();
    for rule in [rule.as_str(), "run_command(rm *)"] {
        let o = run(
            d,
            &[
                "allow-for-project",
                "--project-dir",
                "projects",
                "--project",
                "web",
                rule,
            ],
        );
        assert!(o.status.success(), "{}", stderr(&o));
    }
    // Picked up by the running server: the same command is now allowed.
    let allowed = answered(d, &build, "allow");
    assert_eq!(allowed["decision"], "allow", "{allowed}");
    // A project's allow never lifts a global deny.
    let rm = answered(d, &exec("rm", &["-rf", "x"]), "deny");
    assert_eq!(rm["decision"], "deny", "{rm}");
    // Another project has no saved rules: still asked.
    let other = exec("npm", &["run", "build"]).replace("\"web\"", "\"api\"");
    assert_eq!(
        answered(d, &other, "pending_hitl")["decision"],
        "pending_hitl"
    );

    // An agent approving its own request on the governance socket: refused, and audited.
    let approve = serde_json::json!({"action": "local.exec.approve", "token_id": token});
    let o = run(
        d,
        &["request", &approve.to_string(), "--socket", "exec.sock"],
    );
    let refused: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(refused["outcome"], "unsupported_action", "{refused}");
    drop(server);
    let audit = std::fs::read_to_string(d.join("audit.jsonl")).unwrap();
    let record: Value = audit
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|r| r["action"] == "local.exec.approve")
        .unwrap_or_else(|| panic!("{audit}"));
    assert_eq!(record["verdict"], "unsupported_action", "{record}");
    assert_eq!(record["token_id"], token, "{record}");
    assert!(record["peer_uid"].is_u64(), "{record}");
}

/// A running `gavel token watch`: its stdout lines arrive on a channel.
struct Watching {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Drop for Watching {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Watching {
    fn start(d: &Path, json: bool) -> Self {
        let mut cmd = gavel(d);
        cmd.args(["token", "watch", "--config", "gavel.toml"]);
        if json {
            cmd.arg("--json");
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Subscribed once it says so: events before that are not its to see.
        let mut err = BufReader::new(child.stderr.take().unwrap());
        let mut first = String::new();
        err.read_line(&mut first).unwrap();
        assert!(first.starts_with("watching token events"), "{first}");
        let out = BufReader::new(child.stdout.take().unwrap());
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Self { child, lines }
    }

    fn next(&self) -> String {
        self.lines
            .recv_timeout(Duration::from_secs(30))
            .expect("an event line")
    }
}

#[test]
fn token_watch_streams_a_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("gavel.toml"), CONFIG).unwrap();
    let server = serve(d);
    let json = Watching::start(d, true);
    let human = Watching::start(d, false);

    let o = run(d, &["request", REQUEST, "--config", "gavel.toml"]);
    let pending: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let token = pending["approval_token"].as_str().unwrap();
    let o = run(
        d,
        &["token", "approve", "--yes", token, "--config", "gavel.toml"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let mut retry: Value = serde_json::from_str(REQUEST).unwrap();
    retry["approval_token"] = token.into();
    let o = run(
        d,
        &["request", &retry.to_string(), "--config", "gavel.toml"],
    );
    assert!(
        stdout(&o).contains(r#""decision":"allow""#),
        "{}",
        stdout(&o)
    );

    for kind in ["issued", "approved", "consumed"] {
        let line = json.next();
        let event: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(event["kind"], kind, "{line}");
        assert_eq!(event["token_id"], token, "{line}");
        assert_eq!(event["session_id"], "s", "{line}");
        assert_eq!(event["sandbox_id"], "sbx", "{line}");
        assert_eq!(event["summary"], "make deploy", "{line}");
        assert!(event["time_ms"].is_u64(), "{line}");

        // `2026-11-29T08:01:02Z  issued    ID  make deploy  (session s, sandbox sbx)`
        let line = human.next();
        let (time, rest) = line.split_once("  ").unwrap();
        assert!(
            time.len() == 20 && time.ends_with('Z') && &time[10..11] == "T",
            "{line}"
        );
        assert!(rest.starts_with(kind) && rest.contains(token), "{line}");
        assert!(
            rest.ends_with("make deploy  (session s, sandbox sbx)"),
            "{line}"
        );
    }

    // Watching is management: the governance socket refuses it while management has its own.
    let o = run(
        d,
        &["request", r#"{"action":"watch"}"#, "--socket", "exec.sock"],
    );
    assert!(stdout(&o).contains("unsupported_action"), "{}", stdout(&o));
    drop(server);
}
