//! `gavel test`: run fixture files against a policy ([`gavel_toolkit::fixtures`], which
//! describes the fixture format).

use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub(crate) struct TestArgs {
    /// Fixture files, or directories of them (`*.json`). Default, inside a policy crate:
    /// rebuild it if its sources changed, then run `fixtures/`.
    paths: Vec<PathBuf>,
    /// Run only cases whose name contains this.
    #[arg(long)]
    filter: Option<String>,
    /// Print every case, passed or failed.
    #[arg(long, short)]
    verbose: bool,
}

pub(crate) fn run(args: TestArgs, json: bool) -> anyhow::Result<ExitCode> {
    let args = gavel_toolkit::fixtures::TestArgs {
        paths: args.paths,
        filter: args.filter,
        verbose: args.verbose,
    };
    gavel_toolkit::fixtures::run(args, json)
}
