//! The soundness property of `builtin:command-rules` against real bash (issue 13), coverage
//! guided: **if the policy allows a command, bash ran only simple commands that the rules allow
//! as written.**
//!
//! The input is a command text: the raw bytes (first byte even), or assembled from fragments of
//! the allowed and denied commands and bash syntax (first byte odd; a byte of 128 or more stands
//! for the ASCII character of its low 7 bits, so any ASCII text is reachable this way too). It
//! is judged with the rules of `tests/fixtures/commands.json`, as a `run_command` tool call and
//! as `bash -c`. Only when one of them is `allow` does it run, in real bash, in the sandbox of
//! the bash-differential test (`guest-policies/command-rules-core/examples/bash_sandbox/mod.rs`,
//! built once per fuzz process): logging stand-ins for every program, a read-only chroot, a
//! fresh home on a tmpfs, `nobody`, no network. Every program it ran must be allowed as a
//! local-exec of its argument vector; anything else is a finding.
//!
//! Needs root (it exits with a message otherwise). Run:
//! `CARGO_TARGET_DIR=$HOME/.cache/gavel-target/fuzz cargo +nightly fuzz run bash_agrees`.
#![no_main]

#[path = "../../guest-policies/command-rules-core/examples/bash_sandbox/mod.rs"]
mod bash_sandbox;

use bash_sandbox::Sandbox;
use command_rules_core::{Config, Policy, Request, Verdict};
use libfuzzer_sys::fuzz_target;
use std::cell::RefCell;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

static POLICY: LazyLock<Policy> = LazyLock::new(|| {
    let corpus: serde_json::Value =
        serde_json::from_str(include_str!("../../tests/fixtures/commands.json"))
            .expect("the corpus is JSON");
    let config: Config =
        serde_json::from_value(corpus["rules"].clone()).expect("the corpus has rules");
    Policy::new(config).expect("the corpus rules are valid")
});

/// `GAVEL_BASH_AGREES_DRY=1`: judge only, run nothing in bash (to measure what bash costs).
static DRY: LazyLock<bool> = LazyLock::new(|| std::env::var_os("GAVEL_BASH_AGREES_DRY").is_some());

/// How long one allowed case may run in bash.
const CASE_TIMEOUT: Duration = Duration::from_secs(2);

struct State {
    sandbox: Sandbox,
    runs: u64,
    timeouts: u64,
    started: Instant,
}

thread_local! {
    // The sandbox's namespaces belong to the thread that built it.
    static STATE: RefCell<Option<State>> = const { RefCell::new(None) };
}

fn with_sandbox<T>(f: impl FnOnce(&mut State) -> T) -> T {
    STATE.with(|cell| {
        let mut state = cell.borrow_mut();
        let state = state.get_or_insert_with(|| {
            let dir = std::env::temp_dir().join("gavel-bash-agrees");
            match Sandbox::enter(&dir) {
                Ok(sandbox) => State {
                    sandbox,
                    runs: 0,
                    timeouts: 0,
                    started: Instant::now(),
                },
                Err(e) => {
                    eprintln!(
                        "bash_agrees: cannot build the bash sandbox: {e}\n\
                         bash_agrees: run as root on Linux (private mount namespaces); nothing was checked"
                    );
                    std::process::exit(2);
                }
            }
        });
        f(state)
    })
}

/// Pieces of commands: allowed and denied programs, and bash syntax around them.
const FRAGMENTS: &[&str] = &[
    "ls",
    "echo",
    "cat",
    "grep",
    "awk",
    "find",
    "head",
    "wc",
    "git status",
    "git log",
    "git diff",
    "npm run",
    "git commit",
    "rm",
    "curl",
    "git clean",
    "git push",
    "git reset --hard",
    "/bin/rm",
    "/usr/bin/rm",
    "touch",
    "sh",
    "env",
    "xargs",
    "sed",
    "perl",
    " ",
    " ",
    " ",
    "\t",
    "\n",
    ";",
    "&&",
    "||",
    "|",
    "|&",
    "&",
    "(",
    ")",
    "'",
    "'",
    "\"",
    "\"",
    "\\",
    "$",
    "$x",
    "${x}",
    "$HOME",
    "$0",
    "$_",
    "#",
    "*",
    "?",
    "~",
    "=",
    "x=1 ",
    "<",
    ">",
    ">/dev/null",
    "2>&1",
    "<f",
    "&>",
    "f",
    "y",
    "-la",
    "-n",
    "1",
    "-c",
    "-e",
    "-exec",
    "-delete",
    "-name",
    "{}",
    "\\;",
    "{",
    "}",
    "[",
    "]",
    "!",
    "`",
    "$(",
    "$((",
    "'{print $1}'",
    "system",
    "BEGIN{system(\"rm y\")}",
    "-",
    ".",
    "/",
    "x",
    "a",
    ",",
    ":",
    "%",
    "@",
    "+",
    "\\\n",
    "\r",
    "$'",
    "<<",
    "<(",
    "((",
    "notes.txt",
    "/dev/null",
    "/tmp",
    "..",
    "IFS",
    "PATH=.",
    "-f",
    "--",
    "-i",
    "e",
    "w",
];

fn command_text(data: &[u8]) -> Option<String> {
    let (&mode, rest) = data.split_first()?;
    if mode % 2 == 0 {
        return std::str::from_utf8(rest).ok().map(str::to_owned);
    }
    let mut text = String::new();
    for &b in rest {
        if b >= 128 {
            text.push(char::from(b & 0x7f));
        } else {
            text.push_str(FRAGMENTS[usize::from(b) % FRAGMENTS.len()]);
        }
    }
    Some(text)
}

fn allowed(request: &Request<'_>) -> bool {
    POLICY.evaluate(request).verdict == Verdict::Allow
}

fuzz_target!(
    init: {
        // Build the sandbox before the first input, so a machine that cannot run it says so at once.
        if !*DRY {
            with_sandbox(|_| ());
        }
    },
    |data: &[u8]| {
    let Some(cmd) = command_text(data) else {
        return;
    };
    let tool = allowed(&Request::tool("run_command", &cmd));
    let argv = ["-c".to_owned(), cmd.clone()];
    let exec = allowed(&Request::exec("/bin/bash", &argv));
    if !(tool || exec) || cmd.contains('\0') || *DRY {
        return;
    }
    let outcome = with_sandbox(|state| {
        state.runs += 1;
        if state.runs % 500 == 0 {
            let secs = state.started.elapsed().as_secs_f64();
            eprintln!(
                "bash_agrees: {} allowed commands run in bash ({:.0}/s, {} timed out)",
                state.runs,
                state.runs as f64 / secs,
                state.timeouts
            );
        }
        let outcome = state.sandbox.run(&cmd, CASE_TIMEOUT);
        if let Ok(o) = &outcome {
            state.timeouts += u64::from(o.timed_out);
        }
        outcome
    })
    .unwrap_or_else(|e| {
        eprintln!("bash_agrees: the sandbox failed: {e}");
        std::process::exit(2);
    });
    for argv in &outcome.ran {
        let (program, args) = argv
            .split_first()
            .map_or(("", &[][..]), |(p, a)| (p.as_str(), a));
        let e = POLICY.evaluate(&Request::exec(program, args));
        assert!(
            e.verdict == Verdict::Allow,
            "{cmd:?} was allowed (tool: {tool}, bash -c: {exec}) but bash ran {argv:?}, which the \
             rules do not allow ({:?}: {}); everything it ran: {:?}",
            e.verdict,
            e.reason,
            outcome.ran
        );
    }
}
);
