//! `gavel`: the command-line face of the Gavel policy host. Argument parsing and output only;
//! everything else is the `gavel_host` library.

mod eval;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use std::process::ExitCode;

/// Gavel: a host for sandboxed WebAssembly policies that decide whether an agent's command may run.
#[derive(Parser)]
#[command(name = "gavel", version, about)]
struct Cli {
    /// Log format on stderr (filter with RUST_LOG, default `warn`).
    #[arg(long, global = true, value_enum, default_value = "text")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Answer JSON request lines (governance and management) through a policy chain.
    Eval(eval::EvalArgs),
}

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    init_tracing(cli.log_format);
    let result = match cli.command {
        Command::Eval(args) => {
            let sub = matches.subcommand_matches("eval");
            eval::run(args, sub)
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("gavel: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
