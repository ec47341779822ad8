//! `gavel new`: scaffold a standalone policy crate that builds and passes `gavel test` as is
//! ([`gavel_toolkit::templates`]).

use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub(crate) struct NewArgs {
    /// The policy's name (a Rust crate name: letters, digits, `-`, `_`).
    name: String,
    /// Where to create it (default: `./NAME`).
    #[arg(long)]
    dir: Option<PathBuf>,
}

pub(crate) fn run(args: NewArgs) -> anyhow::Result<ExitCode> {
    gavel_toolkit::templates::create(args.name, args.dir)
}
