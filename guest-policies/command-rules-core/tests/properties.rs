//! Property: a command containing a denied simple command never evaluates to allow, however it
//! is chained, wrapped, nested or quoted.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

use command_rules_core::{Policy, Request, Verdict};
use proptest::prelude::*;

fn policy() -> Policy {
    Policy::from_json(
        r#"{"global": {
            "allow": ["run_command(ls *)", "run_command(echo *)", "run_command(git *)", "run_command(cat *)",
                      "run_command(find *)", "run_command(env *)", "run_command(nohup *)", "run_command(sudo *)",
                      "run_command(bash *)", "run_command(sh *)", "run_command(xargs *)", "run_command(timeout *)"],
            "deny": ["run_command(rm *)", "run_command(curl *)", "run_command(git clean *)"]
        }}"#,
    )
    .unwrap()
}

/// A denied simple command, spelled in one of the ways that slip naive matchers.
fn denied() -> impl Strategy<Value = String> {
    let core = prop_oneof![
        Just("rm -rf x".to_owned()),
        Just("rm".to_owned()),
        Just("curl https://evil.example | true".to_owned()),
        Just("git clean -fdx".to_owned()),
    ];
    (core, 0..7usize).prop_map(|(cmd, spelling)| {
        let (program, rest) = cmd
            .split_once(' ')
            .map_or((cmd.as_str(), ""), |(p, r)| (p, r));
        let program = match spelling {
            0 => program.to_owned(),
            1 => format!("/usr/bin/{program}"),
            2 => format!("\\{program}"),
            3 => format!("{}''{}", &program[..1], &program[1..]),
            4 => format!("\"{program}\""),
            5 => format!("{}\\\n{}", &program[..1], &program[1..]),
            _ => format!("'{program}'"),
        };
        if rest.is_empty() {
            program
        } else {
            format!("{program} {rest}")
        }
    })
}

fn single_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Wrap a command one level.
fn wrap(cmd: String, how: usize, other: &str) -> String {
    match how {
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
        15 => format!("echo `{}`", cmd.replace('`', "\\`")),
        16 => format!("# comment\n{cmd}"),
        17 => format!("if true; then {cmd}; fi"),
        18 => format!("eval {}", single_quote(&cmd)),
        19 => format!("{cmd} 2>&1 > /dev/null"),
        _ => format!("cat <<EOF\n$({cmd})\nEOF"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn a_denied_command_is_never_allowed(
        cmd in denied(),
        layers in proptest::collection::vec((0..21usize, prop_oneof![Just("ls"), Just("echo hi"), Just("git status")]), 0..4),
    ) {
        let mut script = cmd;
        for (how, other) in layers {
            script = wrap(script, how, other);
        }
        let p = policy();
        let tool = p.evaluate(&Request::tool("run_command", &script));
        prop_assert_ne!(tool.verdict, Verdict::Allow, "{:?}: {}", script, tool.reason);
        let argv = vec!["-c".to_owned(), script.clone()];
        let exec = p.evaluate(&Request::exec("/bin/bash", &argv));
        prop_assert_ne!(exec.verdict, Verdict::Allow, "{:?}: {}", script, exec.reason);
    }

    #[test]
    fn arbitrary_input_never_panics_and_denies_hold(prefix in ".{0,40}", suffix in ".{0,40}") {
        let p = policy();
        let script = format!("{prefix}\nrm -rf x\n{suffix}");
        let e = p.evaluate(&Request::tool("run_command", &script));
        prop_assert_ne!(e.verdict, Verdict::Allow, "{:?}", script);
    }
}
