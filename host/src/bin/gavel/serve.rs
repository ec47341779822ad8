//! `gavel serve`: the sidecar. Binds the sockets, serves until SIGINT or SIGTERM, reloads the
//! policy chain on SIGHUP and when its files change.

use anyhow::Context;
use gavel_host::audit::AuditLog;
use gavel_host::server::{Server, bind_metrics, serve_metrics_on};
use gavel_host::{HostConfig, PolicyHost, PolicySpec, StoreKind};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};
use tokio::signal::unix::{SignalKind, signal};

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
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(config, g.config.clone()))?;
    Ok(ExitCode::SUCCESS)
}

/// Create the audit log's directory if it is missing, so a fresh machine needs no `mkdir`;
/// anything else wrong with the path fails here, naming the key.
fn prepare_audit_dir(path: &Path) -> anyhow::Result<()> {
    let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) else {
        return Ok(());
    };
    std::fs::create_dir_all(dir).map_err(|e| {
        anyhow::anyhow!(
            "`audit_log`: cannot create the directory `{}` for `{}`: {e}",
            dir.display(),
            path.display()
        )
    })
}

/// A path as an absolute one, so the commands the banner prints work from any directory.
fn shown(path: &Path) -> String {
    std::path::absolute(path)
        .unwrap_or_else(|_| path.to_owned())
        .display()
        .to_string()
}

/// Where the token store lives, for the banner (a Redis URL without its password).
fn store_line(config: &HostConfig) -> String {
    match config.store.kind.unwrap_or(StoreKind::Sqlite) {
        StoreKind::Memory => "memory (tokens are lost on restart)".to_owned(),
        StoreKind::Sqlite => {
            let dir = config
                .store
                .path
                .clone()
                .unwrap_or_else(|| config.default_state_dir());
            format!("sqlite {}", shown(&dir.join("tokens.db")))
        }
        StoreKind::Redis => {
            let url = config.store.url.as_deref().unwrap_or("");
            let shown = match (url.split_once("://"), url.rfind('@')) {
                (Some((scheme, _)), Some(at)) => format!("{scheme}://***@{}", &url[at + 1..]),
                _ => url.to_owned(),
            };
            format!(
                "redis {shown} (prefix `{}`)",
                config.store.prefix.as_deref().unwrap_or("gavel:")
            )
        }
    }
}

async fn serve(config: HostConfig, config_path: Option<PathBuf>) -> anyhow::Result<()> {
    let store = config.open_store(StoreKind::Sqlite).await?;
    let mut builder = PolicyHost::builder(&config).store(store);
    let mut audit_writer = None;
    if let Some(path) = &config.audit_log {
        prepare_audit_dir(path)?;
        let (log, writer) = AuditLog::open(path, config.audit_failure)
            .with_context(|| format!("`audit_log`: cannot open `{}`", path.display()))?;
        builder = builder.audit(log);
        audit_writer = Some(writer);
    }
    let host = builder.build()?;
    // Bound before anything is served: a port already taken fails the start, not a log line.
    let metrics_listener = match config.metrics_addr {
        Some(addr) => Some(bind_metrics(addr).await?),
        None => None,
    };
    let server = Server::bind(host.clone(), &config)?;
    banner(&config, &host, &server, metrics_listener.as_ref());

    let (stop, _) = tokio::sync::broadcast::channel::<()>(1);
    let metrics = metrics_listener.map(|listener| {
        let host = host.clone();
        let stop = stop.subscribe();
        tokio::spawn(serve_metrics_on(host, listener, stop))
    });
    let reloader = tokio::spawn(reload_loop(
        host.clone(),
        config_path,
        config.clone(),
        stop.subscribe(),
    ));

    let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    server
        .run(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        })
        .await?;
    let _ = stop.send(());
    let _ = reloader.await;
    if let Some(m) = metrics {
        let _ = m.await;
    }
    drop(host);
    if let Some(writer) = audit_writer {
        // Every audit handle is gone with the host: this returns once the log is flushed.
        tokio::task::spawn_blocking(move || writer.finish())
            .await
            .ok();
    }
    Ok(())
}

/// What an operator needs at start: where to connect, where state and records go, what runs,
/// and how to approve.
fn banner(
    config: &HostConfig,
    host: &PolicyHost,
    server: &Server,
    metrics: Option<&tokio::net::TcpListener>,
) {
    println!("gavel: listening on {}", shown(server.socket()));
    if let Some(m) = server.management_socket() {
        println!("gavel: management on {}", shown(m));
    }
    println!("gavel: token store {}", store_line(config));
    match &config.audit_log {
        Some(path) => println!("gavel: audit log {}", shown(path)),
        None => println!("gavel: audit log off (set `audit_log`)"),
    }
    match metrics.and_then(|l| l.local_addr().ok()) {
        Some(addr) => println!("gavel: metrics http://{addr}/metrics (health: /healthz)"),
        None => println!("gavel: metrics off (set `metrics_addr`)"),
    }
    for p in host.policies() {
        println!(
            "gavel: policy {}@sha256:{} ({}, gavel:policy@{})",
            p.name,
            p.digest,
            p.world.name(),
            p.interface.as_str()
        );
    }
    let approver = server
        .management_socket()
        .unwrap_or_else(|| server.socket());
    let approver = shown(approver);
    println!(
        "gavel: approve with `gavel token --socket {approver} approve ID` (list: `gavel token --socket {approver} list`)"
    );
    // Whoever reads the banner through a pipe (a supervisor, a test) sees it now.
    std::io::Write::flush(&mut std::io::stdout()).ok();
}

/// Size and modification time of a file, to notice changes without a file watcher.
fn stamp(path: &Path) -> Option<(u64, SystemTime)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.len(), meta.modified().ok()?))
}

/// Reload the chain on SIGHUP, and when the configuration or a policy file changes.
async fn reload_loop(
    host: PolicyHost,
    config_path: Option<PathBuf>,
    mut config: HostConfig,
    mut stop: tokio::sync::broadcast::Receiver<()>,
) {
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot watch SIGHUP; reload on signal is off");
        return;
    };
    let files = |config: &HostConfig| -> Vec<PathBuf> {
        config_path
            .iter()
            .cloned()
            .chain(config.watched_files())
            .collect()
    };
    let mut watched: Vec<(PathBuf, Option<(u64, SystemTime)>)> = files(&config)
        .into_iter()
        .map(|p| (p.clone(), stamp(&p)))
        .collect();
    let poll = Duration::from_millis(config.watch_ms.max(1));
    let watching = config.watch_ms > 0;
    let mut tick = tokio::time::interval(poll);
    loop {
        let why = tokio::select! {
            _ = hup.recv() => "SIGHUP",
            _ = tick.tick(), if watching => {
                if watched.iter().all(|(p, s)| stamp(p) == *s) {
                    continue;
                }
                "a file changed"
            }
            _ = stop.recv() => return,
        };
        // Stamp every file before it is read, so that a change landing while this reload runs
        // (a policy file still being copied, the configuration written a moment later) is
        // seen at the next tick and reloaded again, never folded into a stale snapshot.
        let config_stamp = config_path.as_deref().map(stamp);
        let next = match &config_path {
            Some(path) => match HostConfig::from_file(path) {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!("reload ({why}) failed; keeping the old chain: {e}");
                    watched = snapshot(files(&config), config_stamp);
                    continue;
                }
            },
            None => config.clone(),
        };
        let stamped = snapshot(files(&next), config_stamp);
        let reloading = host.clone();
        let candidate = next.clone();
        match tokio::task::spawn_blocking(move || reloading.reload(&candidate)).await {
            Ok(Ok(policies)) => {
                let names: Vec<String> = policies
                    .iter()
                    .map(|p| format!("{}@{}", p.name, &p.digest[..12]))
                    .collect();
                tracing::info!("reloaded ({why}): {}", names.join(", "));
            }
            Ok(Err(e)) => tracing::error!("reload ({why}) failed; keeping the old chain: {e}"),
            Err(e) => tracing::error!("reload ({why}) failed; keeping the old chain: {e}"),
        }
        // Watch the files the attempted configuration names, as they were before the attempt:
        // a failed reload is retried when one of them changes again, not in a loop.
        config = next;
        watched = stamped;
    }
}

/// The stamps of `files` now; the first file is the configuration, whose stamp was taken
/// before it was read (`config_stamp`) when there is one.
fn snapshot(
    files: Vec<PathBuf>,
    config_stamp: Option<Option<(u64, SystemTime)>>,
) -> Vec<(PathBuf, Option<(u64, SystemTime)>)> {
    let mut stamps: Vec<_> = files
        .into_iter()
        .map(|p| {
            let s = stamp(&p);
            (p, s)
        })
        .collect();
    if let (Some(config), Some(first)) = (config_stamp, stamps.first_mut()) {
        first.1 = config;
    }
    stamps
}
