//! `gavel new`: scaffold a standalone policy crate that builds and passes `gavel test` as is.

use anyhow::{Context, bail};
use std::path::PathBuf;
use std::process::ExitCode;

/// The SDK and the WIT it is generated from, vendored into every new policy so it builds with
/// nothing but the Rust toolchain and crates.io.
const SDK_LIB: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../guest-policies/sdk/src/lib.rs"
));
/// The SDK's shell decomposition (`gavel_policy_sdk::shell`), vendored likewise.
const SHELL_LIB: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../guest-policies/shell/src/lib.rs"
));
const WIT: &[(&str, &str)] = &[
    (
        "types.wit",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../wit/0.2.0/types.wit"
        )),
    ),
    (
        "host.wit",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../wit/0.2.0/host.wit"
        )),
    ),
    (
        "decide.wit",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../wit/0.2.0/decide.wit"
        )),
    ),
    (
        "manage.wit",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../wit/0.2.0/manage.wit"
        )),
    ),
    (
        "worlds.wit",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../wit/0.2.0/worlds.wit"
        )),
    ),
];

/// Create the policy crate `name` in `dir` (default `./NAME`), which must be missing or empty.
pub fn create(name: String, dir: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let valid = !name.is_empty()
        && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !valid {
        bail!(
            "`{name}` is not a valid policy name: use letters, digits, `-` and `_`, starting with a letter"
        );
    }
    let dir = dir.unwrap_or_else(|| PathBuf::from(&name));
    if dir.exists()
        && dir
            .read_dir()
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        bail!(
            "`{}` already exists and is not empty; choose another --dir",
            dir.display()
        );
    }
    let files: Vec<(String, String)> = vec![
        ("Cargo.toml".into(), cargo_toml(&name)),
        ("rust-toolchain.toml".into(), TOOLCHAIN.into()),
        (".gitignore".into(), "/target\n*.wasm\n".into()),
        ("src/lib.rs".into(), POLICY.into()),
        (format!("fixtures/{name}.json"), fixture(&name)),
        ("README.md".into(), readme(&name)),
        ("sdk/Cargo.toml".into(), SDK_TOML.into()),
        (
            "sdk/src/lib.rs".into(),
            SDK_LIB.replace("../../wit/0.2.0", "wit/0.2.0"),
        ),
        ("shell/Cargo.toml".into(), SHELL_TOML.into()),
        ("shell/src/lib.rs".into(), SHELL_LIB.into()),
    ]
    .into_iter()
    .chain(
        WIT.iter()
            .map(|(f, text)| (format!("sdk/wit/0.2.0/{f}"), (*text).to_owned())),
    )
    .collect();
    let root = cap_std::fs::Dir::open_ambient_dir(
        {
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create `{}`", dir.display()))?;
            &dir
        },
        cap_std::ambient_authority(),
    )
    .with_context(|| format!("cannot open `{}`", dir.display()))?;
    for (path, text) in files {
        if let Some((parent, _)) = path.rsplit_once('/') {
            root.create_dir_all(parent)
                .with_context(|| format!("cannot create `{}/{parent}`", dir.display()))?;
        }
        root.write(&path, text)
            .with_context(|| format!("cannot write `{}/{path}`", dir.display()))?;
    }
    println!("created policy `{name}` in {}", dir.display());
    println!(
        "next: gavel build {0} && gavel test {0}/fixtures",
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn cargo_toml(name: &str) -> String {
    format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"
description = "A Gavel policy"

[lib]
crate-type = ["cdylib"]

[dependencies]
gavel-policy-sdk = {{ path = "sdk" }}
serde = {{ version = "1", features = ["derive"] }}

# A workspace of its own: this crate builds for wasm32 only.
[workspace]

[profile.release]
opt-level = 3
lto = true
codegen-units = 1
panic = "abort"
"#
    )
}

const TOOLCHAIN: &str = r#"[toolchain]
channel = "stable"
targets = ["wasm32-unknown-unknown"]
"#;

const SDK_TOML: &str = r#"[package]
name = "gavel-policy-sdk"
description = "Write a Gavel policy as one impl block (vendored by `gavel new`)"
version = "0.1.0"
edition = "2024"

[features]
manage = []

[dependencies]
gavel-shell = { path = "../shell" }
wit-bindgen = { version = "0.61", default-features = false, features = ["macros", "realloc", "std"] }
serde = { version = "1", default-features = false, features = ["derive", "alloc"] }
serde_json = { version = "1", default-features = false, features = ["alloc"] }
"#;

const SHELL_TOML: &str = r#"[package]
name = "gavel-shell"
description = "A sound shell decomposition (vendored by `gavel new`)"
version = "0.1.0"
edition = "2024"
"#;

const POLICY: &str = r#"//! A Gavel policy. `gavel build` turns it into a component; `gavel test fixtures` checks it.
//!
//! Configuration (JSON): `{"deny": ["rm", ...], "ask": ["sudo", ...]}`: programs to deny and to
//! ask a human about; everything else is allowed. A command line is judged by every program in
//! it, and one the shell parser cannot decompose asks.

use gavel_policy_sdk::shell::{self, Dialect};
use gavel_policy_sdk::{Action, Decision, Policy, PolicyError};
use serde::Deserialize;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default)]
    deny: Vec<String>,
    #[serde(default)]
    ask: Vec<String>,
}

struct MyPolicy {
    config: Config,
}

/// A program's base name: `/bin/rm` is `rm`.
fn base(program: &str) -> &str {
    program.rsplit('/').next().unwrap_or(program)
}

/// The programs a request would run, by base name; `None` for network actions (HTTP, CONNECT,
/// upgrade), which this policy leaves to others. A command line (a tool call's, or the script
/// of `sh -c` / `bash -c`) is decomposed by the SDK's sound shell parser, so `ls && rm -rf x`
/// runs `ls` and `rm`; one it cannot decompose (`ls $(rm x)`) is `Err` with the reason, and
/// must be asked about, never allowed.
fn programs(action: &Action) -> Option<Result<Vec<String>, String>> {
    let (script, dialect) = match action {
        Action::LocalExec(e) => match (base(&e.executable), e.args.as_slice()) {
            ("bash", [flag, script, ..]) if flag == "-c" => (script.as_str(), Dialect::Bash),
            ("sh", [flag, script, ..]) if flag == "-c" => (script.as_str(), Dialect::Posix),
            (program, _) => return Some(Ok(vec![program.to_owned()])),
        },
        Action::ToolCall(t) => (t.arg.as_str(), Dialect::Bash),
        Action::HttpRequest(_) | Action::Connect(_) | Action::Upgrade(_) => return None,
    };
    let commands = match shell::parse(script, dialect) {
        Ok(commands) => commands,
        Err(why) => return Some(Err(why)),
    };
    Some(
        commands
            .iter()
            .map(|command| match command.words.first() {
                Some(w) if !w.expands && !w.glob => Ok(base(&w.text).to_owned()),
                Some(w) => Err(format!("bash computes the program `{}`", w.text)),
                None => Err("a command without a program".to_owned()),
            })
            .collect(),
    )
}

impl Policy for MyPolicy {
    type Config = Config;

    fn new(config: Config) -> Result<Self, String> {
        Ok(Self { config })
    }

    fn decide(&self, action: &Action) -> Result<Decision, PolicyError> {
        let programs = match programs(action) {
            None => return Ok(Decision::abstain(format!("`{}` is not a command", action.kind()))),
            Some(Err(why)) => {
                return Ok(Decision::ask(format!("the command cannot be decomposed ({why}); a human must look"))
                    .with_rule("ask:not-decomposable".to_owned()));
            }
            Some(Ok(programs)) => programs,
        };
        // Every program the command runs is judged: one denied denies it all.
        if let Some(program) = programs.iter().find(|p| self.config.deny.contains(p)) {
            return Ok(Decision::deny(format!("`{program}` is denied")).with_rule(format!("deny:{program}")));
        }
        if let Some(program) = programs.iter().find(|p| self.config.ask.contains(p)) {
            return Ok(Decision::ask(format!("`{program}` needs a human")).with_rule(format!("ask:{program}")));
        }
        Ok(Decision::allow(format!("`{}` is allowed", programs.join("`, `"))))
    }
}

gavel_policy_sdk::export_policy!(MyPolicy);
"#;

fn fixture(name: &str) -> String {
    format!(
        r#"{{
  "policy": "../{name}.wasm",
  "config": {{"deny": ["rm"], "ask": ["sudo"]}},
  "cases": [
    {{"name": "ls is allowed",
     "request": {{"action": "local.exec", "executable": "/bin/ls", "args": ["-la"], "sandbox_id": "sbx", "session_id": "s", "profile": "p", "hitl_mode": "async_token"}},
     "expect": {{"decision": "allow"}}}},
    {{"name": "rm is denied",
     "request": {{"action": "local.exec", "executable": "/bin/rm", "args": ["-rf", "x"], "sandbox_id": "sbx", "session_id": "s", "profile": "p", "hitl_mode": "async_token"}},
     "expect": {{"decision": "deny", "reason": "is denied", "rule": "deny:rm"}}}},
    {{"name": "a command line is judged by every program in it",
     "request": {{"action": "tool.call", "tool": "run_command", "arg": "ls && rm -rf x", "sandbox_id": "sbx", "session_id": "s"}},
     "expect": {{"decision": "deny", "rule": "deny:rm"}}}},
    {{"name": "so is a shell's script",
     "request": {{"action": "local.exec", "executable": "/bin/bash", "args": ["-c", "ls; rm -rf x"], "sandbox_id": "sbx", "session_id": "s", "profile": "p", "hitl_mode": "async_token"}},
     "expect": {{"decision": "deny", "rule": "deny:rm"}}}},
    {{"name": "a command line that cannot be decomposed asks",
     "request": {{"action": "tool.call", "tool": "run_command", "arg": "ls $(rm -rf x)", "sandbox_id": "sbx", "session_id": "s"}},
     "expect": {{"decision": "pending_hitl", "rule": "ask:not-decomposable"}}}},
    {{"name": "sudo asks, an operator approves, the retry runs once",
     "steps": [
       {{"request": {{"action": "tool.call", "tool": "run_command", "arg": "sudo ls", "sandbox_id": "sbx", "session_id": "s"}},
        "expect": {{"decision": "pending_hitl", "rule": "ask:sudo"}}}},
       {{"request": {{"action": "local.exec.approve", "token_id": "$token"}}, "expect": {{"outcome": "ok"}}}},
       {{"request": {{"action": "tool.call", "tool": "run_command", "arg": "sudo ls", "sandbox_id": "sbx", "session_id": "s", "approval_token": "$token"}},
        "expect": {{"decision": "allow"}}}},
       {{"request": {{"action": "tool.call", "tool": "run_command", "arg": "sudo ls", "sandbox_id": "sbx", "session_id": "s", "approval_token": "$token"}},
        "expect": {{"decision": "deny", "reason": "already consumed"}}}}
     ]}}
  ]
}}
"#
    )
}

fn readme(name: &str) -> String {
    format!(
        "# {name}\n\nA Gavel policy.\n\n```sh\ngavel build .          # writes {name}.wasm\ngavel test fixtures    # runs the fixture cases\ngavel inspect {name}.wasm\n```\n\nShip it pinned: `[[policy]] path = \"{name}.wasm\"` with `sha256` = the digest `gavel inspect` prints.\n"
    )
}
