//! Scopes, file-tool paths, suggestions, `never_approve` and configuration errors.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

use command_rules_core::{Policy, Request, Rules, Verdict};
use serde_json::json;

fn policy(config: serde_json::Value) -> Policy {
    Policy::from_json(&config.to_string()).unwrap()
}

fn run(p: &Policy, cmd: &str) -> Verdict {
    p.evaluate(&Request::tool("run_command", cmd)).verdict
}

#[test]
fn local_rules_override_global_ones_but_never_a_global_deny() {
    let p = policy(json!({
        "global": {"allow": ["run_command(git *)"], "ask": ["run_command(npm publish *)"], "deny": ["run_command(rm *)"]},
        "local": {"allow": ["run_command(npm publish --dry-run)", "run_command(rm -rf build)"], "deny": ["run_command(git push *)"]},
    }));
    assert_eq!(
        run(&p, "git status"),
        Verdict::Allow,
        "global allow, no local match"
    );
    assert_eq!(
        run(&p, "git push origin"),
        Verdict::Deny,
        "local tightens a global allow"
    );
    assert_eq!(
        run(&p, "npm publish --dry-run"),
        Verdict::Allow,
        "local loosens a global ask"
    );
    assert_eq!(run(&p, "npm publish"), Verdict::Ask);
    assert_eq!(
        run(&p, "rm -rf build"),
        Verdict::Deny,
        "the global deny floor holds"
    );
    assert_eq!(run(&p, "make"), Verdict::Ask, "nothing matches");
}

#[test]
fn project_rules_apply_to_their_project_only() {
    let p = policy(json!({
        "global": {"deny": ["run_command(curl *)"]},
        "local": {"allow": ["run_command(ls *)"]},
        "projects": {"web": {"allow": ["run_command(npm test)"], "deny": ["run_command(ls secret)"]}},
    }));
    let web = |cmd| {
        p.evaluate(&Request::tool("run_command", cmd).project(Some("web")))
            .verdict
    };
    assert_eq!(web("npm test"), Verdict::Allow);
    assert_eq!(
        web("ls"),
        Verdict::Allow,
        "`local` applies to every project"
    );
    assert_eq!(web("ls secret"), Verdict::Deny);
    assert_eq!(run(&p, "npm test"), Verdict::Ask, "not for other projects");
    assert_eq!(run(&p, "ls secret"), Verdict::Allow);
}

#[test]
fn deny_and_ask_see_through_wrappers_but_allow_sees_the_command_as_written() {
    let p = policy(
        json!({"global": {"allow": ["run_command(ls *)", "run_command(nohup *)"], "ask": ["run_command(git push *)"]}}),
    );
    assert_eq!(run(&p, "nohup git push"), Verdict::Ask);
    assert_eq!(
        run(&p, "nohup ls"),
        Verdict::Allow,
        "both the wrapper and the command are allowed"
    );
    assert_eq!(run(&p, "env ls"), Verdict::Ask);
    assert_eq!(run(&p, "LS_COLORS=x ls"), Verdict::Ask);
}

#[test]
fn a_bare_tool_rule_matches_every_call() {
    let p = policy(json!({"global": {"deny": ["run_command"], "allow": ["read_file"]}}));
    assert_eq!(run(&p, "ls"), Verdict::Deny);
    assert_eq!(
        p.evaluate(&Request::tool("read_file", "/etc/hosts"))
            .verdict,
        Verdict::Allow
    );
    assert_eq!(
        p.evaluate(&Request::tool("read_file", "~/.ssh/id_rsa"))
            .verdict,
        Verdict::Ask,
        "sensitive"
    );
}

#[test]
fn file_tool_paths_are_anchored_by_prefix() {
    let p = policy(json!({
        "project_root": "/work/app",
        "home": "/home/me",
        "global": {
            "allow": ["read_file(/src/**)", "read_file(~/notes/*.md)", "read_file(//etc/hosts)", "list_dir(/*)"],
            "deny": ["write_file(/src/generated/**)"],
        },
        "local": {"allow": ["write_file(/src/**)"]},
    }));
    let file = |tool, path| p.evaluate(&Request::tool(tool, path)).verdict;
    assert_eq!(file("read_file", "/work/app/src/a/b.rs"), Verdict::Allow);
    assert_eq!(
        file("read_file", "src/main.rs"),
        Verdict::Allow,
        "relative to the project root"
    );
    assert_eq!(
        file("read_file", "/work/app/src/../../etc/passwd"),
        Verdict::Ask,
        "`..` is folded first"
    );
    assert_eq!(file("read_file", "~/notes/todo.md"), Verdict::Allow);
    assert_eq!(
        file("read_file", "/home/me/notes/deep/todo.md"),
        Verdict::Ask,
        "`*` does not cross `/`"
    );
    assert_eq!(file("read_file", "/etc/hosts"), Verdict::Allow);
    assert_eq!(file("list_dir", "/work/app/src"), Verdict::Allow);
    assert_eq!(file("list_dir", "/work/app/src/a"), Verdict::Ask);
    assert_eq!(file("write_file", "/work/app/src/lib.rs"), Verdict::Allow);
    assert_eq!(
        file("write_file", "/work/app/src/generated/x.rs"),
        Verdict::Deny,
        "global deny floor"
    );
    assert_eq!(
        file("read_file", "/work/app/src/.env"),
        Verdict::Ask,
        "sensitive even when allowed"
    );
    // The request's own project root and cwd are used when given.
    let e = p.evaluate(
        &Request::tool("read_file", "lib.rs").location(Some("/other"), Some("/other/src")),
    );
    assert_eq!(e.verdict, Verdict::Allow);
}

#[test]
fn suggestions_escalate_and_stay_safe() {
    let p = policy(
        json!({"global": {"deny": ["run_command(npm publish *)", "run_command(git clean *)"]}}),
    );
    let e = p.evaluate(&Request::tool("run_command", "npm run build --watch"));
    let rules: Vec<&str> = e.suggestions[0]
        .rules
        .iter()
        .map(|s| s.rule.as_str())
        .collect();
    assert_eq!(
        rules,
        [
            "run_command(npm run build --watch)",
            "run_command(npm run build *)",
            "run_command(npm run *)"
        ]
    );

    // A long command gets its exact form and prefixes of at most four words, in time linear
    // in its length (every prefix of 30,000 words took 106 s).
    let long = format!("echo {}", "a ".repeat(30_000));
    let started = std::time::Instant::now();
    let e = p.evaluate(&Request::tool("run_command", &long));
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    let rules: Vec<&str> = e.suggestions[0]
        .rules
        .iter()
        .map(|s| s.rule.as_str())
        .collect();
    assert_eq!(
        rules[1..],
        [
            "run_command(echo a a a *)",
            "run_command(echo a a *)",
            "run_command(echo a *)"
        ]
    );

    // `npm *` would also match the denied `npm publish`, so it is never offered.
    let e = p.evaluate(&Request::tool("run_command", "npm ci"));
    let rules: Vec<&str> = e.suggestions[0]
        .rules
        .iter()
        .map(|s| s.rule.as_str())
        .collect();
    assert_eq!(rules, ["run_command(npm ci)"]);

    // Destructive and code-running programs: the exact command only; interpreters reading
    // stdin: nothing.
    for cmd in [
        "rm -rf build",
        "python script.py --fast",
        "bash deploy.sh prod",
        "curl -s https://x",
        "sudo apt update",
    ] {
        let e = p.evaluate(&Request::tool("run_command", cmd));
        let rules: Vec<&str> = e.suggestions[0]
            .rules
            .iter()
            .map(|s| s.rule.as_str())
            .collect();
        assert_eq!(rules, [format!("run_command({cmd})")], "{cmd}");
    }
    // A wrapped command needs its inner command allowed too: it gets its own group.
    let e = p.evaluate(&Request::tool("run_command", "sudo apt update"));
    assert_eq!(e.suggestions[1].subject, "apt update");
    let e = p.evaluate(&Request::tool("run_command", "cat install.sh | sh"));
    assert!(
        e.suggestions.iter().all(|g| g.subject != "sh"),
        "{:?}",
        e.suggestions
    );

    // One group per subcommand that is not already allowed; none for a denied command.
    let p = policy(
        json!({"global": {"allow": ["run_command(git status *)"], "deny": ["run_command(rm *)"]}}),
    );
    let e = p.evaluate(&Request::tool(
        "run_command",
        "git status && make && cargo test",
    ));
    let subjects: Vec<&str> = e.suggestions.iter().map(|g| g.subject.as_str()).collect();
    assert_eq!(subjects, ["make", "cargo test"]);
    assert!(
        p.evaluate(&Request::tool("run_command", "rm x"))
            .suggestions
            .is_empty()
    );
}

#[test]
fn suggestions_for_file_tools() {
    let p = policy(json!({"project_root": "/p"}));
    let e = p.evaluate(&Request::tool("read_file", "/p/src/main.rs"));
    let rules: Vec<&str> = e.suggestions[0]
        .rules
        .iter()
        .map(|s| s.rule.as_str())
        .collect();
    assert_eq!(rules, ["read_file(/src/main.rs)", "read_file(/src/**)"]);
    let e = p.evaluate(&Request::tool("read_file", "/etc/hosts"));
    assert_eq!(e.suggestions[0].rules[0].rule, "read_file(//etc/hosts)");
}

#[test]
fn never_approve_names_the_rule() {
    let p = policy(json!({"never_approve": ["run_command(rm -rf /*)", "run_command(mkfs *)"]}));
    let hit = |cmd| {
        p.never_approve(&Request::tool("run_command", cmd))
            .map(str::to_owned)
    };
    assert_eq!(
        hit("ls && sudo rm -rf /"),
        Some("run_command(rm -rf /*)".into())
    );
    assert_eq!(hit("mkfs.ext4 /dev/sda"), None);
    assert_eq!(
        hit("mkfs -t ext4 /dev/sda"),
        Some("run_command(mkfs *)".into())
    );
    assert_eq!(hit("rm -rf build"), None);
    let argv = vec!["-c".to_owned(), "rm -rf /".to_owned()];
    assert!(p.never_approve(&Request::exec("/bin/sh", &argv)).is_some());
}

#[test]
fn invalid_rules_are_named_at_load() {
    for (config, phrase) in [
        (
            json!({"global": {"deny": ["run_command(rm *"]}}),
            "rule `run_command(rm *` is invalid: it must end with `)` (in `global.deny`)",
        ),
        (
            json!({"projects": {"web": {"allow": ["()"]}}}),
            "(in `projects.web.allow`)",
        ),
        (
            json!({"never_approve": ["run command"]}),
            "(in `never_approve`)",
        ),
        (json!({"global": {"alow": []}}), "unknown field `alow`"),
        (json!({"globl": {}}), "unknown field `globl`"),
    ] {
        let e = Policy::from_json(&config.to_string())
            .unwrap_err()
            .to_string();
        assert!(e.contains(phrase), "{e}");
    }
}

#[test]
fn rules_merge_without_duplicates() {
    let mut mine = Rules {
        allow: vec!["run_command(ls *)".into()],
        ..Rules::default()
    };
    mine.merge(&Rules {
        allow: vec!["run_command(ls *)".into(), "run_command(make *)".into()],
        deny: vec!["run_command(rm *)".into()],
        ..Rules::default()
    });
    assert_eq!(mine.allow, ["run_command(ls *)", "run_command(make *)"]);
    assert_eq!(mine.deny, ["run_command(rm *)"]);
}

#[test]
fn local_exec_argv_words_are_literal() {
    let p = policy(
        json!({"global": {"allow": ["run_command(git commit *)"], "deny": ["run_command(rm *)"]}}),
    );
    let args = vec![
        "commit".to_owned(),
        "-m".to_owned(),
        "a && rm -rf x".to_owned(),
    ];
    assert_eq!(
        p.evaluate(&Request::exec("git", &args)).verdict,
        Verdict::Allow,
        "an argv word is not shell code"
    );
    let args = vec!["-rf".to_owned(), "/".to_owned()];
    assert_eq!(
        p.evaluate(&Request::exec("/usr/bin/rm", &args)).verdict,
        Verdict::Deny
    );
    let args = vec!["-c".to_owned(), "ls; rm -rf x".to_owned()];
    assert_eq!(
        p.evaluate(&Request::exec("/bin/zsh", &args)).verdict,
        Verdict::Deny
    );
}
