//! `gavel check`: validate a configuration, load and configure every policy in its chain, and
//! lint command-rules rule lists; report every problem at once, naming the file and the key.

use gavel_host::tokens::MemoryStore;
use gavel_host::{HostConfig, PolicyHost, PolicySpec};
use serde_json::{Value, json};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(clap::Args)]
pub(crate) struct CheckArgs {
    /// Check this policy (a component path or `builtin:NAME`) instead of the configuration's
    /// chain. Repeat for a chain.
    #[arg(long = "policy", value_name = "PATH|builtin:NAME", action = clap::ArgAction::Append)]
    policies: Vec<String>,
    /// Configuration of the `--policy` before it: JSON text, or `@FILE`.
    #[arg(long = "policy-config", value_name = "JSON|@FILE", action = clap::ArgAction::Append)]
    policy_configs: Vec<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    Error,
    Warning,
}

/// One problem: where (file and key) and what.
struct Finding {
    level: Level,
    file: String,
    key: String,
    message: String,
}

#[derive(Default)]
struct Report {
    findings: Vec<Finding>,
}

impl Report {
    fn add(&mut self, level: Level, file: &str, key: &str, message: impl Into<String>) {
        let message = message.into();
        // One cause reported through several policies (a global limit) is listed once.
        if self
            .findings
            .iter()
            .any(|f| f.file == file && f.message == message)
        {
            return;
        }
        self.findings.push(Finding {
            level,
            file: file.to_owned(),
            key: key.to_owned(),
            message,
        });
    }
    fn count(&self, level: Level) -> usize {
        self.findings.iter().filter(|f| f.level == level).count()
    }
}

pub(crate) fn run(
    args: CheckArgs,
    config_path: Option<&Path>,
    json_out: bool,
    matches: Option<&clap::ArgMatches>,
) -> anyhow::Result<ExitCode> {
    if config_path.is_none() && args.policies.is_empty() {
        anyhow::bail!("nothing to check: give `--config gavel.toml` or `--policy ...`");
    }
    let mut report = Report::default();
    let shown =
        config_path.map_or_else(|| "(command line)".to_owned(), |p| p.display().to_string());
    let checked = check(&args, config_path, &shown, matches, &mut report);
    print(&report, checked, json_out);
    Ok(if report.count(Level::Error) > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Fill `report`; the number of policies checked.
fn check(
    args: &CheckArgs,
    config_path: Option<&Path>,
    shown: &str,
    matches: Option<&clap::ArgMatches>,
    report: &mut Report,
) -> usize {
    let mut config = match config_path {
        Some(path) => match HostConfig::from_file(path) {
            Ok(c) => c,
            Err(e) => {
                // Nothing below can be checked without the file's structure.
                report.add(Level::Error, shown, "", strip(&e.to_string()));
                return 0;
            }
        },
        None => HostConfig::default(),
    };
    if !args.policies.is_empty() {
        match crate::eval::policy_specs(&args.policies, &args.policy_configs, matches) {
            Ok(specs) => config.policies = specs,
            Err(e) => {
                report.add(Level::Error, shown, "--policy-config", format!("{e:#}"));
                return 0;
            }
        }
    }
    if config.policies.is_empty() {
        report.add(
            Level::Error,
            shown,
            "policy",
            "the policy chain is empty; add at least one `[[policy]]`",
        );
    }

    // Settings outside the chain, checked against one stand-in policy.
    let mut settings = config.clone();
    settings.policies = vec![PolicySpec::builtin("default-action")];
    if let Err(e) = settings.validate() {
        report.add(Level::Error, shown, "", strip(&e.to_string()));
    }
    check_paths(&config, shown, report);

    let mut names = std::collections::HashSet::new();
    for (i, spec) in config.policies.iter().enumerate() {
        let key = format!("policy[{i}] `{}`", spec.name);
        if !names.insert(spec.name.clone()) {
            report.add(
                Level::Error,
                shown,
                &key,
                format!("two policies are named `{}`", spec.name),
            );
        }
        let mut one = config.clone();
        one.policies = vec![spec.clone()];
        let loaded = one.validate().map_err(|e| e.to_string()).and_then(|()| {
            PolicyHost::new(&one, Arc::new(MemoryStore::new())).map_err(|e| e.to_string())
        });
        if let Err(e) = loaded {
            let file = spec
                .config_file
                .as_ref()
                .filter(|_| e.contains("is not JSON"))
                .map_or_else(|| shown.to_owned(), |p| p.display().to_string());
            // The key already names the policy.
            let own = format!("policy `{}`: ", spec.name);
            let e = e.strip_prefix(&own).unwrap_or(&e);
            report.add(Level::Error, &file, &key, strip(e));
        }
        if spec.builtin.as_deref() == Some("command-rules") {
            lint_command_rules(spec, shown, &key, report);
        }
    }
    config.policies.len()
}

/// The library prefixes every configuration error; in a report of them all it is noise.
fn strip(message: &str) -> String {
    message.replace("invalid configuration: ", "")
}

/// Paths `gavel serve` would need: the audit log's directory (created at start if missing, so
/// only an unusable ancestor is an error) and the sqlite store's directory.
fn check_paths(config: &HostConfig, shown: &str, report: &mut Report) {
    let usable = |report: &mut Report, key: &str, dir: &Path| {
        if dir.is_file() {
            report.add(
                Level::Error,
                shown,
                key,
                format!("`{}` is a file, not a directory", dir.display()),
            );
            return;
        }
        let mut ancestor = dir;
        while !ancestor.exists() {
            match ancestor.parent() {
                Some(p) if !p.as_os_str().is_empty() => ancestor = p,
                _ => return,
            }
        }
        if !ancestor.is_dir() {
            report.add(
                Level::Error,
                shown,
                key,
                format!(
                    "cannot create `{}`: `{}` is not a directory",
                    dir.display(),
                    ancestor.display()
                ),
            );
        }
    };
    if let Some(log) = &config.audit_log {
        if log.is_dir() {
            report.add(
                Level::Error,
                shown,
                "audit_log",
                format!("`{}` is a directory; name a file in it", log.display()),
            );
        } else if let Some(dir) = log.parent().filter(|d| !d.as_os_str().is_empty()) {
            usable(report, "audit_log", dir);
        }
    }
    if let Some(dir) = &config.store.path {
        usable(report, "store.path", dir);
    }
}

/// The rule lists of a command-rules configuration, with the key each sits under.
fn rule_lists(config: &Value) -> Vec<(String, &'static str, Vec<String>)> {
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut lists = Vec::new();
    let mut scope = |name: String, rules: &Value| {
        for kind in ["allow", "ask", "deny"] {
            lists.push((format!("{name}.{kind}"), kind, strings(&rules[kind])));
        }
    };
    scope("global".into(), &config["global"]);
    scope("local".into(), &config["local"]);
    if let Some(projects) = config["projects"].as_object() {
        let mut ids: Vec<&String> = projects.keys().collect();
        ids.sort();
        for id in ids {
            scope(format!("projects.{id}"), &projects[id]);
        }
    }
    lists.push((
        "never_approve".into(),
        "never_approve",
        strings(&config["never_approve"]),
    ));
    lists
}

/// Warnings for rules that load but cannot do what they say: an unknown tool (a typo in a
/// deny rule silently removes the protection), a shell operator inside a command pattern
/// (commands are matched part by part, so such a pattern never matches), and an allow or ask
/// that a deny of the same text always overrides.
fn lint_command_rules(spec: &PolicySpec, shown: &str, key: &str, report: &mut Report) {
    let (file, text) = match (&spec.config, &spec.config_file) {
        (Some(v), _) => (shown.to_owned(), v.to_string()),
        (None, Some(path)) => match std::fs::read_to_string(path) {
            Ok(t) => (path.display().to_string(), t),
            // The load above already reported the unreadable file.
            Err(_) => return,
        },
        (None, None) => return,
    };
    let Ok(config) = serde_json::from_str::<Value>(&text) else {
        return;
    };
    let prefix = if file == shown {
        format!("{key} config.")
    } else {
        String::new()
    };
    let lists = rule_lists(&config);
    let global_deny: Vec<String> = lists
        .iter()
        .find(|(k, _, _)| k == "global.deny")
        .map(|(_, _, r)| r.clone())
        .unwrap_or_default();
    for (list_key, kind, rules) in &lists {
        let scope = list_key.rsplit_once('.').map_or("", |(s, _)| s);
        let same_scope = |k: &str| {
            let wanted = format!("{scope}.{k}");
            lists
                .iter()
                .find(|(lk, _, _)| *lk == wanted)
                .map(|(_, _, r)| r.clone())
                .unwrap_or_default()
        };
        for (i, rule) in rules.iter().enumerate() {
            let at = format!("{prefix}{list_key}[{i}]");
            let (tool, pattern) = match rule.split_once('(') {
                Some((tool, rest)) => (tool.trim(), rest.strip_suffix(')')),
                None => (rule.trim(), None),
            };
            let known =
                tool == command_rules_core::RUN_COMMAND || command_rules_core::is_file_tool(tool);
            if !known {
                let mut tools = vec![command_rules_core::RUN_COMMAND];
                tools.extend_from_slice(command_rules_core::FILE_TOOLS);
                let near = tools
                    .iter()
                    .copied()
                    .filter(|t| strsim::levenshtein(t, tool) <= 2)
                    .min_by_key(|t| strsim::levenshtein(t, tool));
                let hint = near.map_or_else(
                    || format!(" (known tools: {})", tools.join(", ")),
                    |t| format!("; did you mean `{t}`?"),
                );
                report.add(
                    Level::Warning,
                    &file,
                    &at,
                    format!(
                        "`{rule}`: unknown tool `{tool}`, so this rule only matches tool calls \
                         named exactly that{hint}"
                    ),
                );
            }
            if tool == command_rules_core::RUN_COMMAND
                && let Some(op) = pattern.and_then(shell_operator)
            {
                report.add(
                    Level::Warning,
                    &file,
                    &at,
                    format!(
                        "`{rule}` never matches: commands are split at `{op}` and each part is \
                         matched alone; write one rule per part"
                    ),
                );
            }
            if matches!(*kind, "allow" | "ask") {
                let overriding = if same_scope("deny").contains(rule) {
                    Some(format!("{scope}.deny"))
                } else if global_deny.contains(rule) {
                    Some("global.deny".to_owned())
                } else if *kind == "allow" && same_scope("ask").contains(rule) {
                    Some(format!("{scope}.ask"))
                } else {
                    None
                };
                if let Some(by) = overriding {
                    report.add(
                        Level::Warning,
                        &file,
                        &at,
                        format!("`{rule}` never decides: the same rule in `{by}` always wins"),
                    );
                }
            }
        }
    }
}

/// The first shell operator in a command pattern outside quotes, if any.
fn shell_operator(pattern: &str) -> Option<&'static str> {
    let mut quote = None;
    let chars: Vec<char> = pattern.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, ';') => return Some(";"),
            (None, '&') if chars.get(i + 1) == Some(&'&') => return Some("&&"),
            (None, '|') if chars.get(i + 1) == Some(&'|') => return Some("||"),
            (None, '|') => return Some("|"),
            _ => {}
        }
    }
    None
}

fn print(report: &Report, policies: usize, json_out: bool) {
    let errors = report.count(Level::Error);
    let warnings = report.count(Level::Warning);
    if json_out {
        let list = |level: Level| -> Vec<Value> {
            report
                .findings
                .iter()
                .filter(|f| f.level == level)
                .map(|f| json!({"file": f.file, "key": f.key, "message": f.message}))
                .collect()
        };
        println!(
            "{}",
            json!({"policies": policies, "errors": list(Level::Error), "warnings": list(Level::Warning)})
        );
        return;
    }
    for f in &report.findings {
        let level = match f.level {
            Level::Error => "error",
            Level::Warning => "warning",
        };
        if f.key.is_empty() {
            println!("{level}: {}: {}", f.file, f.message);
        } else {
            println!("{level}: {}: {}: {}", f.file, f.key, f.message);
        }
    }
    println!("{policies} policies checked: {errors} errors, {warnings} warnings");
}
