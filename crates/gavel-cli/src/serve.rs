//! `gavel serve`: the sidecar ([`gavel_host::Sidecar`]) until SIGINT or SIGTERM.

use anyhow::Context;
use gavel_host::{HostConfig, PolicySpec, Sidecar};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

/// `gavel serve [--config gavel.toml] [--socket PATH]`. Without `--config`:
/// `builtin:default-action` asking a human for everything, on the default socket.
#[derive(clap::Args)]
pub(crate) struct ServeArgs {}

fn load(path: Option<&Path>, socket: Option<&Path>) -> anyhow::Result<HostConfig> {
    let mut config = match path {
        Some(p) => HostConfig::from_file(p)?,
        None => HostConfig::default(),
    };
    if config.policies.is_empty() && path.is_none() {
        config.policies = vec![PolicySpec::builtin("default-action")];
    }
    if let Some(socket) = socket {
        config.socket = Some(socket.to_owned());
    }
    config.validate()?;
    Ok(config)
}

pub(crate) fn run(_args: ServeArgs, g: &crate::Globals) -> anyhow::Result<ExitCode> {
    let config = load(g.config.as_deref(), g.socket.as_deref())?;
    let drain = Duration::from_millis(config.drain_timeout_ms);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let served = runtime.block_on(async {
        let mut sidecar = Sidecar::new(config).await?;
        if let Some(path) = &g.config {
            sidecar = sidecar.reload_from(path);
        }
        let shutdown = Sidecar::shutdown_signal().context("cannot watch SIGINT and SIGTERM")?;
        for line in sidecar.banner() {
            println!("{line}");
        }
        // Whoever reads the banner through a pipe (a supervisor, a test) sees it now.
        std::io::Write::flush(&mut std::io::stdout()).ok();
        sidecar.run(shutdown).await?;
        anyhow::Ok(())
    });
    // Tasks still running after the drain (a blocking reload, a stuck client) do not hold the
    // process: dropping the runtime would wait for them without bound.
    runtime.shutdown_timeout(drain);
    served?;
    Ok(ExitCode::SUCCESS)
}
