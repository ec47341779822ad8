//! `gavel allow-for-project`: save rules into a project's `permissions.json`.

use command_rules_core::Rules;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub(crate) struct AllowArgs {
    /// The directory holding the project's `permissions.json` (or, with `--project`, the
    /// directory of projects).
    #[arg(long, value_name = "DIR")]
    project_dir: PathBuf,
    /// A project id: the file is `DIR/ID/permissions.json`.
    #[arg(long, value_name = "ID")]
    project: Option<String>,
    /// Rules to add to the allow list, for example `run_command(npm run *)`.
    #[arg(required = true, value_name = "RULE")]
    rules: Vec<String>,
}

pub(crate) fn run(args: AllowArgs) -> anyhow::Result<ExitCode> {
    let add = Rules {
        allow: args.rules,
        ..Rules::default()
    };
    let merged = gavel_host::permissions::allow_for_project(
        &args.project_dir,
        args.project.as_deref(),
        &add,
    )?;
    println!("{} allow rules saved", merged.allow.len());
    Ok(ExitCode::SUCCESS)
}
