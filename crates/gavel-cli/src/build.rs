//! `gavel build`: a Rust policy crate (or an existing module or component) to a checked,
//! metadata-stamped policy component ([`gavel_toolkit::build`]).

use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub(crate) struct BuildArgs {
    /// A policy crate directory (default `.`), or a `.wasm` core module or component.
    path: Option<PathBuf>,
    /// Where to write the component (default: `CRATE/NAME.wasm`, or `FILE.component.wasm`).
    #[arg(long, short)]
    out: Option<PathBuf>,
}

pub(crate) fn run(args: BuildArgs) -> anyhow::Result<ExitCode> {
    gavel_toolkit::build::build(args.path.unwrap_or_else(|| PathBuf::from(".")), args.out)?;
    Ok(ExitCode::SUCCESS)
}
