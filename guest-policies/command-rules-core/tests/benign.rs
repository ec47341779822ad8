//! Benign commands keep flowing: of the commands coding agents run (`tests/benign.json`), with
//! rules that allow their programs, at least 95% are answered `allow`, as a tool call and as
//! `bash -c` alike. The rest are printed with the reason (run with `--nocapture` to see them).

use command_rules_core::{Config, Policy, Request, Verdict};

#[test]
fn at_least_95_percent_of_benign_commands_are_allowed() {
    let text = include_str!("benign.json");
    let corpus: serde_json::Value = serde_json::from_str(text).unwrap();
    let config: Config = serde_json::from_value(corpus["rules"].clone()).unwrap();
    let policy = Policy::new(config).unwrap();
    let commands: Vec<String> = serde_json::from_value(corpus["commands"].clone()).unwrap();
    assert!(
        commands.len() >= 300,
        "the corpus has {} commands",
        commands.len()
    );

    let mut allowed = 0;
    let mut rest = Vec::new();
    for cmd in &commands {
        let tool = policy.evaluate(&Request::tool("run_command", cmd));
        let argv = ["-c".to_owned(), cmd.clone()];
        let exec = policy.evaluate(&Request::exec("/bin/bash", &argv));
        // The two forms must agree: the shell is only the transport.
        assert_eq!(
            tool.verdict, exec.verdict,
            "{cmd:?}: {} / {}",
            tool.reason, exec.reason
        );
        if tool.verdict == Verdict::Allow {
            allowed += 1;
        } else {
            rest.push(format!("{:?} {cmd:?}: {}", tool.verdict, tool.reason));
        }
    }
    let share = allowed as f64 / commands.len() as f64;
    println!(
        "benign: {allowed} of {} allowed ({:.1}%); the rest:",
        commands.len(),
        share * 100.0
    );
    for line in &rest {
        println!("  {line}");
    }
    assert!(share >= 0.95, "only {:.1}% allowed", share * 100.0);
}
