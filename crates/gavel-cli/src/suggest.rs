//! `gavel suggest`: what the command-rules policy decides for a command, and the rules that
//! would allow it, computed natively by the same library the `builtin:command-rules` guest runs.

use anyhow::Context;
use command_rules_core::{Policy, Request};
use std::process::ExitCode;

#[derive(clap::Args)]
pub(crate) struct SuggestArgs {
    /// The command-rules configuration: JSON text, or `@FILE`. Default: no rules.
    #[arg(long, value_name = "JSON|@FILE")]
    policy_config: Option<String>,
    /// The tool the argument is for (`run_command`, a file tool, or any other).
    #[arg(long, default_value = "run_command")]
    tool: String,
    /// The project whose rules apply.
    #[arg(long)]
    project: Option<String>,
    /// The command line (or the tool's argument); everything after the first word is the
    /// command's, flags included (`gavel suggest npm run build --watch`).
    #[arg(
        required = true,
        num_args = 1..,
        value_name = "COMMAND",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    command: Vec<String>,
}

/// `--json` prints `{"verdict", "reason", "rule", "suggestions": [[{"rule", "label"}], ...]}`.
pub(crate) fn run(args: SuggestArgs, json: bool) -> anyhow::Result<ExitCode> {
    let config = match args.policy_config.as_deref() {
        None => "{}".to_owned(),
        Some(text) => crate::read_json_arg(text, "--policy-config")?,
    };
    let policy =
        Policy::from_json(&config).context("the command-rules configuration is invalid")?;
    let command = args.command.join(" ");
    let e = policy.evaluate(&Request::tool(&args.tool, &command).project(args.project.as_deref()));
    if json {
        let groups: Vec<&Vec<command_rules_core::Suggestion>> =
            e.suggestions.iter().map(|g| &g.rules).collect();
        let out = serde_json::json!({
            "verdict": e.verdict,
            "reason": e.reason,
            "rule": e.rule,
            "suggestions": groups,
        });
        println!("{out}");
        return Ok(ExitCode::SUCCESS);
    }
    println!("{:?}: {}", e.verdict, e.reason);
    if e.suggestions.is_empty() {
        println!("no suggestions");
    }
    for group in &e.suggestions {
        println!("\n{}:", group.subject);
        for (i, s) in group.rules.iter().enumerate() {
            println!("  {}. {}    ({})", i + 1, s.rule, s.label);
        }
    }
    Ok(ExitCode::SUCCESS)
}
