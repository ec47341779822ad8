//! `gavel eval`: answer request lines from a file or stdin, one response line each, in order.

use anyhow::{Context, bail};
use gavel_host::tokens::MemoryStore;
use gavel_host::wire::{Line, read_line};
use gavel_host::{HostConfig, Operator, PolicyHost, PolicySpec};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use tokio::io::{AsyncBufRead, AsyncWriteExt, BufReader};

#[derive(clap::Args)]
pub(crate) struct EvalArgs {
    /// A policy: a component path or `builtin:NAME`. Repeat to form a chain, in order.
    #[arg(long = "policy", value_name = "PATH|builtin:NAME", action = clap::ArgAction::Append)]
    policies: Vec<String>,
    /// Configuration of the `--policy` before it: JSON text, or `@FILE`.
    #[arg(long = "policy-config", value_name = "JSON|@FILE", action = clap::ArgAction::Append)]
    policy_configs: Vec<String>,
    /// Request lines to answer: a file, or `-` for stdin.
    #[arg(long, value_name = "FILE|-", default_value = "-")]
    request: String,
    /// Do not read or write the compiled-policy cache.
    #[arg(long)]
    no_cache: bool,
    /// Run the `--policy` policies that import WASI (componentize-py, componentize-js) in the
    /// empty WASI sandbox, as `wasi = true` does in gavel.toml.
    #[arg(long)]
    wasi: bool,
}

pub(crate) fn run(
    args: EvalArgs,
    config_path: Option<&Path>,
    matches: Option<&clap::ArgMatches>,
) -> anyhow::Result<ExitCode> {
    let config = build_config(&args, config_path, matches)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let host = PolicyHost::new(&config, Arc::new(MemoryStore::new()))?;
        if args.request == "-" {
            answer_all(&host, BufReader::new(tokio::io::stdin())).await
        } else {
            let file = crate::open_file(std::path::Path::new(&args.request))
                .with_context(|| format!("cannot open request file `{}`", args.request))?;
            answer_all(&host, BufReader::new(tokio::fs::File::from_std(file))).await
        }
    })?;
    Ok(ExitCode::SUCCESS)
}

/// The chain: `--policy` flags if any, else the config file's, else `builtin:default-action`.
pub(crate) fn build_config(
    args: &EvalArgs,
    config_path: Option<&Path>,
    matches: Option<&clap::ArgMatches>,
) -> anyhow::Result<HostConfig> {
    let mut config = match config_path {
        Some(path) => HostConfig::from_file(path)?,
        None => HostConfig::default(),
    };
    if args.no_cache {
        config.compile_cache = false;
    }
    // A batch of requests evaluated offline is not a live sidecar: no bound on pending asks.
    config.max_pending_per_session = usize::MAX;
    config.max_pending = usize::MAX;
    if !args.policies.is_empty() || !args.policy_configs.is_empty() {
        config.policies = policy_specs(&args.policies, &args.policy_configs, matches)?;
        for spec in &mut config.policies {
            spec.wasi |= args.wasi;
        }
    } else if args.wasi {
        bail!("`--wasi` applies to `--policy` policies; in gavel.toml set `wasi = true`");
    } else if config.policies.is_empty() {
        config.policies = vec![PolicySpec::builtin("default-action")];
    }
    config.validate()?;
    Ok(config)
}

/// Pair each `--policy-config` with the `--policy` given before it on the command line.
pub(crate) fn policy_specs(
    policies: &[String],
    policy_configs: &[String],
    matches: Option<&clap::ArgMatches>,
) -> anyhow::Result<Vec<PolicySpec>> {
    let positions = |id: &str| -> Vec<usize> {
        matches
            .and_then(|m| m.indices_of(id))
            .map(Iterator::collect)
            .unwrap_or_default()
    };
    let policy_at = positions("policies");
    let config_at = positions("policy_configs");
    let mut specs: Vec<PolicySpec> = policies.iter().map(|p| PolicySpec::parse(p)).collect();
    let mut configured = vec![false; specs.len()];
    for (config, at) in policy_configs.iter().zip(config_at) {
        let Some(owner) = policy_at.iter().rposition(|&p| p < at) else {
            bail!("`--policy-config` must follow the `--policy` it configures");
        };
        if std::mem::replace(&mut configured[owner], true) {
            bail!(
                "policy `{}` is given two `--policy-config` values",
                specs[owner].name
            );
        }
        let text = crate::read_json_arg(config, "--policy-config")
            .with_context(|| format!("configuring policy `{}`", specs[owner].name))?;
        specs[owner].config = Some(serde_json::from_str(&text)?);
    }
    // Two policies from the same source need distinct names in reasons and audit records.
    let mut seen = std::collections::HashMap::<String, usize>::new();
    for spec in &mut specs {
        let n = seen.entry(spec.name.clone()).or_insert(0);
        *n += 1;
        if *n > 1 {
            spec.name = format!("{}#{}", spec.name, n);
        }
    }
    Ok(specs)
}

async fn answer_all<R: AsyncBufRead + Unpin>(
    host: &PolicyHost,
    mut reader: R,
) -> anyhow::Result<()> {
    let mut stdout = tokio::io::stdout();
    let mut buf = Vec::new();
    loop {
        let response = match read_line(&mut reader, &mut buf)
            .await
            .context("cannot read requests")?
        {
            Line::Eof => return Ok(()),
            Line::Complete(line) if line.iter().all(u8::is_ascii_whitespace) => continue,
            Line::Complete(line) => host.handle_line(&line, Operator::default()).await,
            Line::TooLong => gavel_host::wire::RequestError::Malformed(format!(
                "the line is over the {}-byte limit",
                gavel_host::wire::MAX_LINE
            ))
            .response(),
        };
        let mut out = response.to_line();
        out.push('\n');
        stdout
            .write_all(out.as_bytes())
            .await
            .context("cannot write answers")?;
        stdout.flush().await.context("cannot write answers")?;
    }
}
