//! `gavel`: the command-line face of the Gavel policy host. Argument parsing and output only;
//! everything else is the `gavel_host` library.

mod client;
mod eval;
mod project;
mod serve;
mod suggest;

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
    /// Run the sidecar: the wire contract on Unix sockets.
    Serve(serve::ServeArgs),
    /// Answer JSON request lines (governance and management) through a policy chain.
    Eval(eval::EvalArgs),
    /// List, show, approve or revoke approval tokens on a running server.
    Token(client::TokenArgs),
    /// Send one raw request line to a running server and print the answer.
    Request(client::RequestArgs),
    /// Show the command-rules verdict for a command and the rules that would allow it.
    Suggest(suggest::SuggestArgs),
    /// Merge allow rules into a project's permissions.json (append-only, atomic).
    AllowForProject(project::AllowArgs),
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
        Command::Serve(args) => serve::run(args),
        Command::Token(args) => client::token(args),
        Command::Request(args) => client::request(args),
        Command::Suggest(args) => suggest::run(args),
        Command::AllowForProject(args) => project::run(args),
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

/// A JSON argument given inline or as `@FILE`, checked to be JSON.
fn read_json_arg(value: &str, flag: &str) -> anyhow::Result<String> {
    use anyhow::Context;
    let text = match value.strip_prefix('@') {
        Some(path) => open_file(std::path::Path::new(path))
            .and_then(std::io::read_to_string)
            .with_context(|| format!("cannot read `{path}` given to `{flag}`"))?,
        None => value.to_owned(),
    };
    let json: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("the value of `{flag}` is not JSON"))?;
    Ok(json.to_string())
}

/// Open a file for reading through a capability handle on its directory.
fn open_file(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other(format!("`{}` is not a file name", path.display())))?;
    let dir = cap_std::fs::Dir::open_ambient_dir(dir, cap_std::ambient_authority())?;
    Ok(dir.open(name)?.into_std())
}
