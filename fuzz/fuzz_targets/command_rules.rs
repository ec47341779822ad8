//! The command decomposer and matcher. Two properties:
//! - any text is decided without a panic;
//! - a denied simple command (`rm -rf x`) built into a command line by the fuzzer's choice of
//!   chaining, nesting, wrapping and quoting is never allowed.
#![no_main]

use command_rules_core::{Policy, Request, Verdict};
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

static POLICY: LazyLock<Policy> = LazyLock::new(|| {
    Policy::from_json(
        r#"{"global": {
            "allow": ["run_command(ls *)", "run_command(echo *)", "run_command(git *)", "run_command(cat *)",
                      "run_command(env *)", "run_command(nohup *)", "run_command(sudo *)", "run_command(bash *)",
                      "run_command(sh *)", "run_command(xargs *)", "run_command(timeout *)", "run_command(find *)"],
            "deny": ["run_command(rm *)"]
        }}"#,
    )
    .expect("the fuzz policy is valid")
});

fn single_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Wrap `cmd` one level, as byte `b` chooses.
fn wrap(cmd: String, b: u8) -> String {
    let other = ["ls", "echo hi", "git status"][usize::from(b >> 5) % 3];
    match b % 20 {
        0 => format!("{other} && {cmd}"),
        1 => format!("{cmd}; {other}"),
        2 => format!("{other} | {cmd}"),
        3 => format!("{other} || {cmd}"),
        4 => format!("{other} &\n{cmd}"),
        5 => format!("({cmd})"),
        6 => format!("{{ {cmd}; }}"),
        7 => format!("FOO=bar {cmd}"),
        8 => format!("env -i A=1 {cmd}"),
        9 => format!("nohup {cmd}"),
        10 => format!("sudo -u root {cmd}"),
        11 => format!("timeout -s KILL 5 {cmd}"),
        12 => format!("bash -c {}", single_quote(&cmd)),
        13 => format!("sh -ec {}", single_quote(&cmd)),
        14 => format!("echo $({cmd})"),
        15 => format!("# c\n{cmd}"),
        16 => format!("if true; then {cmd}; fi"),
        17 => format!("eval {}", single_quote(&cmd)),
        18 => format!("{cmd} 2>&1 >/dev/null"),
        _ => format!("cat <<EOF\n$({cmd})\nEOF"),
    }
}

fuzz_target!(|data: &[u8]| {
    // Property 1: arbitrary text.
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = POLICY.evaluate(&Request::tool("run_command", text));
        let args = vec!["-c".to_owned(), text.to_owned()];
        let _ = POLICY.evaluate(&Request::exec("/bin/bash", &args));
    }
    // Property 2: a denied command, spelled and wrapped as the bytes say.
    let Some((&spelling, layers)) = data.split_first() else {
        return;
    };
    let program = ["rm", "/bin/rm", "\\rm", "r''m", "\"rm\"", "r\\\nm"][usize::from(spelling) % 6];
    let mut cmd = format!("{program} -rf x");
    for &b in layers.iter().take(6) {
        cmd = wrap(cmd, b);
    }
    let e = POLICY.evaluate(&Request::tool("run_command", &cmd));
    assert_ne!(
        e.verdict,
        Verdict::Allow,
        "{cmd:?} was allowed: {}",
        e.reason
    );
});
