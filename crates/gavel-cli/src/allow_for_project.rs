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
    // A first save into a fresh projects directory creates it, as `mkdir -p` would.
    std::fs::create_dir_all(&args.project_dir).map_err(|e| {
        anyhow::anyhow!(
            "`--project-dir`: cannot create `{}`: {e}",
            args.project_dir.display()
        )
    })?;
    let add = Rules {
        allow: args.rules,
        ..Rules::default()
    };
    let merged = gavel_toolkit::permissions::allow_for_project(
        &args.project_dir,
        args.project.as_deref(),
        &add,
    )?;
    let file = match &args.project {
        Some(id) => args.project_dir.join(id),
        None => args.project_dir.clone(),
    }
    .join(gavel_toolkit::permissions::PERMISSIONS_FILE);
    println!(
        "{} allow rules saved in {}",
        merged.allow.len(),
        file.display()
    );
    Ok(ExitCode::SUCCESS)
}
