//! `gavel`: the command-line face of the Gavel policy host. Argument parsing and output only;
//! everything else is the `gavel_host` library (the sidecar, the runtime) or the
//! `gavel_toolkit` library (build, test, new, a project's permissions). One file per
//! subcommand, named for it (`token.rs` also holds `gavel request`).

mod allow_for_project;
mod bench;
mod build;
mod check;
mod eval;
mod inspect;
mod new;
mod serve;
mod suggest;
mod test;
mod token;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use std::process::ExitCode;

/// Gavel: a host for sandboxed WebAssembly policies that decide whether an agent's command may run.
#[derive(Parser)]
#[command(name = "gavel", version, about)]
struct Cli {
    /// Log format on stderr (filter with RUST_LOG, default `warn`).
    #[arg(long, global = true, value_enum, default_value = "text")]
    log_format: LogFormat,
    #[command(flatten)]
    globals: Globals,
    #[command(subcommand)]
    command: Command,
}

/// Flags every subcommand accepts before or after its name, with one meaning everywhere; a
/// subcommand that has no use for one refuses it rather than ignore it.
#[derive(clap::Args, Default)]
pub(crate) struct Globals {
    /// The configuration file, `gavel.toml` (a policy's own JSON is `--policy-config`).
    #[arg(long, global = true, value_name = "GAVEL.TOML")]
    pub(crate) config: Option<std::path::PathBuf>,
    /// The socket to talk to or serve on (overrides the configuration's).
    #[arg(long, global = true, value_name = "PATH")]
    pub(crate) socket: Option<std::path::PathBuf>,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    pub(crate) json: bool,
}

impl Globals {
    /// Refuse the global flags `command` has no use for, naming them.
    fn only(&self, command: &str, config: bool, socket: bool, json: bool) -> anyhow::Result<()> {
        let unused = [
            ("--config", self.config.is_some() && !config),
            ("--socket", self.socket.is_some() && !socket),
            ("--json", self.json && !json),
        ];
        for (flag, given) in unused {
            if given {
                anyhow::bail!("`gavel {command}` does not take `{flag}`");
            }
        }
        Ok(())
    }
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
    Token(token::TokenArgs),
    /// Send one raw request line to a running server and print the answer.
    Request(token::RequestArgs),
    /// Scaffold a policy crate that builds and passes `gavel test` as generated.
    New(new::NewArgs),
    /// Build a policy crate (or re-encode a module or component) into a policy component.
    Build(build::BuildArgs),
    /// Run fixture files against a policy; prints failures and `N passed, N failed`.
    Test(test::TestArgs),
    /// Show a policy's world, interface version, imports, exports, digest, metadata, and
    /// whether this host loads it.
    Inspect(inspect::InspectArgs),
    /// Decisions per second and latency percentiles of one policy, in process.
    Bench(bench::BenchArgs),
    /// Show the command-rules verdict for a command and the rules that would allow it.
    Suggest(suggest::SuggestArgs),
    /// Merge allow rules into a project's permissions.json (append-only, atomic).
    AllowForProject(allow_for_project::AllowArgs),
    /// Validate a configuration, every policy in it and every rules file; report all errors.
    Check(check::CheckArgs),
    /// List the bundled policies (`builtin:NAME`).
    Builtins,
    /// Print a shell completion script: `gavel completions bash > /etc/bash_completion.d/gavel`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    init_tracing(cli.log_format);
    match run(cli, &matches) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("gavel: {}", one_line(&e));
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli, matches: &clap::ArgMatches) -> anyhow::Result<ExitCode> {
    let g = cli.globals;
    match cli.command {
        Command::Eval(args) => {
            g.only("eval", true, false, false)?;
            eval::run(
                args,
                g.config.as_deref(),
                matches.subcommand_matches("eval"),
            )
        }
        Command::Serve(args) => {
            g.only("serve", true, true, false)?;
            serve::run(args, &g)
        }
        Command::Token(args) => token::token(args, &g),
        Command::Request(args) => token::request(args, &g),
        Command::Suggest(args) => {
            g.only("suggest", false, false, true)?;
            suggest::run(args, g.json)
        }
        Command::New(args) => {
            g.only("new", false, false, false)?;
            new::run(args)
        }
        Command::Build(args) => {
            g.only("build", false, false, false)?;
            build::run(args)
        }
        Command::Test(args) => {
            g.only("test", false, false, true)?;
            test::run(args, g.json)
        }
        Command::Inspect(args) => {
            g.only("inspect", false, false, true)?;
            inspect::run(args, g.json)
        }
        Command::Bench(args) => {
            if g.config.is_some() {
                anyhow::bail!(
                    "`gavel bench` takes one policy: give its JSON configuration with \
                     `--policy-config`, not `--config` (which is always a gavel.toml)"
                );
            }
            g.only("bench", false, false, true)?;
            bench::run(args, g.json)
        }
        Command::AllowForProject(args) => {
            g.only("allow-for-project", false, false, false)?;
            allow_for_project::run(args)
        }
        Command::Check(args) => {
            g.only("check", true, false, true)?;
            check::run(
                args,
                g.config.as_deref(),
                g.json,
                matches.subcommand_matches("check"),
            )
        }
        Command::Builtins => {
            g.only("builtins", false, false, true)?;
            builtins(g.json)
        }
        Command::Completions { shell } => {
            g.only("completions", false, false, false)?;
            clap_complete::generate(shell, &mut Cli::command(), "gavel", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// An error and its causes on one line, each cause once: library errors often repeat their
/// source in their own text (`cannot access `x`: No such file`), and nested configuration
/// errors each carry the same prefix.
fn one_line(e: &anyhow::Error) -> String {
    const PREFIX: &str = "invalid configuration: ";
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    // Keep the first "invalid configuration: " and drop its repeats.
    if let Some(first) = out.find(PREFIX) {
        let (head, tail) = out.split_at(first + PREFIX.len());
        out = format!("{head}{}", tail.replace(PREFIX, ""));
    }
    out.replace('\n', " ")
}

/// `gavel builtins`: name, version and description of each bundled policy.
fn builtins(json: bool) -> anyhow::Result<ExitCode> {
    let mut list = Vec::new();
    for name in gavel_host::builtin::names() {
        let bytes = gavel_host::builtin::component(name).unwrap_or_default();
        let meta = gavel_componentize::read_meta(bytes);
        list.push(serde_json::json!({
            "policy": format!("builtin:{name}"),
            "version": meta.version,
            "description": meta.description,
        }));
    }
    if json {
        println!("{}", serde_json::Value::Array(list));
    } else {
        for b in &list {
            println!(
                "{:<24} {:<8} {}",
                b["policy"].as_str().unwrap_or(""),
                b["version"].as_str().unwrap_or("-"),
                b["description"].as_str().unwrap_or("")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
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

use gavel_toolkit::{open_file, read_bytes};

/// The bytes of `builtin:NAME` or of a policy file.
fn policy_bytes(source: &str) -> anyhow::Result<Vec<u8>> {
    match source.strip_prefix("builtin:") {
        Some(name) => gavel_host::builtin::component(name)
            .map(<[u8]>::to_vec)
            .ok_or_else(|| {
                let known: Vec<String> = gavel_host::builtin::names()
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
