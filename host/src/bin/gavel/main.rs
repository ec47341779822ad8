//! `gavel`: the command-line face of the Gavel policy host. Argument parsing and output only;
//! everything else is the `gavel_host` library.

mod bench;
mod build_policy;
mod client;
mod eval;
mod fixtures;
mod inspect_cmd;
mod new;
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
    /// Scaffold a policy crate that builds and passes `gavel test` as generated.
    New(new::NewArgs),
    /// Build a policy crate (or re-encode a module or component) into a policy component.
    Build(build_policy::BuildArgs),
    /// Run fixture files against a policy; prints failures and `N passed, N failed`.
    Test(fixtures::TestArgs),
    /// Show a policy's world, interface version, imports, exports, digest, metadata, and
    /// whether this host loads it.
    Inspect(inspect_cmd::InspectArgs),
    /// Decisions per second and latency percentiles of one policy, in process.
    Bench(bench::BenchArgs),
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
        Command::New(args) => new::run(args),
        Command::Build(args) => build_policy::run(args),
        Command::Test(args) => fixtures::run(args),
        Command::Inspect(args) => inspect_cmd::run(args),
        Command::Bench(args) => bench::run(args),
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
    let (dir, name) = gavel_host::files::open_parent(path)?;
    Ok(dir.open(name)?.into_std())
}

/// A whole file, read through a capability handle on its directory.
fn read_bytes(path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    use anyhow::Context;
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(
        &mut open_file(path).with_context(|| format!("cannot open `{}`", path.display()))?,
        &mut bytes,
    )
    .with_context(|| format!("cannot read `{}`", path.display()))?;
    Ok(bytes)
}

/// The bytes of `builtin:NAME` or of a policy file.
fn policy_bytes(source: &str) -> anyhow::Result<Vec<u8>> {
    match source.strip_prefix("builtin:") {
        Some(name) => gavel_host::builtin_component(name)
            .map(<[u8]>::to_vec)
            .ok_or_else(|| {
                let known: Vec<String> = gavel_host::builtin_names()
                    .map(|n| format!("builtin:{n}"))
                    .collect();
                anyhow::anyhow!(
                    "there is no bundled policy `{name}`; bundled: {}",
                    known.join(", ")
                )
            }),
        None => read_bytes(std::path::Path::new(source)),
    }
}
