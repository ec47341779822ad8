//! The whole sidecar `gavel serve` runs, for embedders too: the token store, the audit writer
//! and its drain, the sockets, the metrics endpoint, hot reload (on SIGHUP and when the
//! configuration or a policy file changes) and an orderly shutdown.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use gavel_host::Sidecar;
//!
//! let sidecar = Sidecar::from_file("gavel.toml".as_ref()).await?;
//! sidecar.run(Sidecar::shutdown_signal()?).await?;
//! # Ok(()) }
//! ```

use crate::audit::{AuditLog, AuditWriter};
use crate::config::HostConfig;
use crate::error::Error;
use crate::host::PolicyHost;
use crate::server::{Server, bind_metrics, serve_metrics_on};
use crate::tokens::StoreKind;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};
use tokio::signal::unix::{SignalKind, signal};

/// A sidecar with its store open, its audit log open and its sockets bound, ready to
/// [`run`](Sidecar::run).
pub struct Sidecar {
    /// The configuration the sidecar started with: reloads without a file reuse it, and its
    /// files are the ones watched.
    config: HostConfig,
    /// Where `config` came from: a reload reads it again, and a change to it triggers one.
    config_file: Option<PathBuf>,
    /// The policy host every socket answers through.
    host: PolicyHost,
    /// The bound Unix sockets.
    server: Server,
    /// Bound before anything is served, so a port already taken fails the start.
    metrics: Option<tokio::net::TcpListener>,
    /// Joined at shutdown, so every queued audit record reaches the disk.
    audit_writer: Option<AuditWriter>,
}

impl Sidecar {
    /// Read and validate `path` and start a sidecar that reloads from it.
    pub async fn from_file(path: &Path) -> Result<Self, Error> {
        let config = HostConfig::from_file(path)?;
        config.validate()?;
        Ok(Self::new(config).await?.reload_from(path))
    }

    /// Open the token store (SQLite unless `[store] kind` says otherwise) and the audit log
    /// (creating its directory), build the host, and bind the sockets and the metrics port.
    pub async fn new(config: HostConfig) -> Result<Self, Error> {
        let store = config.open_store(StoreKind::Sqlite).await?;
        let mut builder = PolicyHost::builder(&config).store(store);
        let mut audit_writer = None;
        if let Some(path) = &config.audit_log {
            prepare_audit_dir(path)?;
            let (log, writer) = AuditLog::open(path, config.audit_failure).map_err(|e| {
                Error::config(format!(
                    "`audit_log`: cannot open `{}`: {e}",
                    path.display()
                ))
            })?;
            builder = builder.audit(log);
            audit_writer = Some(writer);
        }
        let host = builder.build()?;
        let metrics = match config.metrics_addr {
            Some(addr) => Some(bind_metrics(addr).await?),
            None => None,
        };
        let server = Server::bind(host.clone(), &config)?;
        Ok(Self {
            config,
            config_file: None,
            host,
            server,
            metrics,
            audit_writer,
        })
    }

    /// Reload from `path` (on SIGHUP, and when it changes) instead of reusing the starting
    /// configuration.
    pub fn reload_from(mut self, path: impl Into<PathBuf>) -> Self {
        self.config_file = Some(path.into());
        self
    }

    /// The policy host the sockets answer through.
    pub fn host(&self) -> &PolicyHost {
        &self.host
    }

    /// What an operator needs at start, one line each: where to connect, where state and
    /// records go, what runs, and how to approve.
    pub fn banner(&self) -> Vec<String> {
        let server = &self.server;
        let mut lines = vec![format!("gavel: listening on {}", shown(server.socket()))];
        if let Some(m) = server.management_socket() {
            lines.push(format!("gavel: management on {}", shown(m)));
        }
        lines.push(format!("gavel: token store {}", store_line(&self.config)));
        lines.push(match &self.config.audit_log {
            Some(path) => format!("gavel: audit log {}", shown(path)),
            None => "gavel: audit log off (set `audit_log`)".to_owned(),
        });
        lines.push(
            match self.metrics.as_ref().and_then(|l| l.local_addr().ok()) {
                Some(addr) => format!("gavel: metrics http://{addr}/metrics (health: /healthz)"),
                None => "gavel: metrics off (set `metrics_addr`)".to_owned(),
            },
        );
        for p in self.host.policies() {
            lines.push(format!(
                "gavel: policy {}@sha256:{} ({}, gavel:policy@{})",
                p.name,
                p.digest,
                p.world.name(),
                p.interface.as_str()
            ));
        }
        let approver = shown(
            server
                .management_socket()
                .unwrap_or_else(|| server.socket()),
        );
        lines.push(format!(
            "gavel: approve with `gavel token --socket {approver} approve ID` (list: `gavel token --socket {approver} list`)"
        ));
        lines
    }

    /// A future that completes on SIGINT or SIGTERM, the usual `shutdown` for
    /// [`Sidecar::run`]. Fails at once if the signals cannot be watched.
    pub fn shutdown_signal()
    -> std::io::Result<impl std::future::Future<Output = ()> + Send + 'static> {
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        Ok(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        })
    }

    /// Serve until `shutdown` completes; then stop accepting, finish the requests in flight
    /// (at most the drain time), stop the metrics endpoint and the reload watcher, and flush
    /// the audit log.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) -> Result<(), Error> {
        let Self {
            config,
            config_file,
            host,
            server,
            metrics,
            audit_writer,
        } = self;
        let drain = Duration::from_millis(config.drain_timeout_ms);
        let (stop, _) = tokio::sync::broadcast::channel::<()>(1);
        let metrics = metrics.map(|listener| {
            tokio::spawn(serve_metrics_on(host.clone(), listener, stop.subscribe()))
        });
        let reloader = tokio::spawn(reload_loop(
            host.clone(),
            config_file,
            config,
            stop.subscribe(),
        ));
        let served = server.run(shutdown).await;
        let _ = stop.send(());
        let _ = reloader.await;
        if let Some(m) = metrics {
            let _ = m.await;
        }
        drop(host);
        if let Some(writer) = audit_writer {
            // Every audit handle is gone with the host (unless an embedder kept a clone): this
            // returns once the log is flushed.
            let flushed = tokio::task::spawn_blocking(move || writer.finish());
            if tokio::time::timeout(drain, flushed).await.is_err() {
                tracing::warn!(
                    "the audit log was not flushed within the {} ms drain time",
                    drain.as_millis()
                );
            }
        }
        served
    }
}

/// Create the audit log's directory if it is missing, so a fresh machine needs no `mkdir`;
/// anything else wrong with the path fails here, naming the key.
fn prepare_audit_dir(path: &Path) -> Result<(), Error> {
    let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) else {
        return Ok(());
    };
    std::fs::create_dir_all(dir).map_err(|e| {
        Error::config(format!(
            "`audit_log`: cannot create the directory `{}` for `{}`: {e}",
            dir.display(),
            path.display()
        ))
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

/// Size and modification time of a file: what tells a change from an open or a touch of a
/// neighbour.
fn stamp(path: &Path) -> Option<(u64, SystemTime)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.len(), meta.modified().ok()?))
}

/// Watches the directories of the configuration and policy files (a file replaced by rename,
/// as editors and `cp` do, keeps being seen) and wakes the reload loop, debounced by
/// `watch_ms`. Whether a watched file really changed is then decided by its stamp: opening a
/// file, or a write to another file in the same directory, is an event but not a change.
struct Watcher {
    /// The debouncer; dropping it stops its thread and the watches.
    debouncer: notify_debouncer_mini::Debouncer<notify_debouncer_mini::notify::RecommendedWatcher>,
    /// The directories watched now, replaced when a reload names other files.
    dirs: Vec<PathBuf>,
}

impl Watcher {
    /// A watcher that pokes `wake` at most once per `debounce` while files change.
    fn new(
        debounce: Duration,
        wake: tokio::sync::mpsc::Sender<()>,
    ) -> Result<Self, notify_debouncer_mini::notify::Error> {
        let debouncer = notify_debouncer_mini::new_debouncer(
            debounce,
            move |events: notify_debouncer_mini::DebounceEventResult| {
                if let Err(e) = &events {
                    tracing::warn!("watching the policy files: {e}");
                }
                // A full channel already holds a wake-up: one is enough.
                let _ = wake.try_send(());
            },
        )?;
        Ok(Self {
            debouncer,
            dirs: Vec::new(),
        })
    }

    /// Watch the directories that hold `files`, and only those; whether that changed them.
    fn watch(&mut self, files: &[PathBuf]) -> bool {
        use notify_debouncer_mini::notify::RecursiveMode;
        let mut dirs: Vec<PathBuf> = files
            .iter()
            .map(|f| match f.parent() {
                Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
                _ => PathBuf::from("."),
            })
            .collect();
        dirs.sort();
        dirs.dedup();
        if dirs == self.dirs {
            return false;
        }
        let watcher = self.debouncer.watcher();
        for dir in &self.dirs {
            let _ = watcher.unwatch(dir);
        }
        for dir in &dirs {
            if let Err(e) = watcher.watch(dir, RecursiveMode::NonRecursive) {
                tracing::warn!(
                    "cannot watch `{}` for changes (SIGHUP still reloads): {e}",
                    dir.display()
                );
            }
        }
        self.dirs = dirs;
        true
    }
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
    let (wake, mut woken) = tokio::sync::mpsc::channel::<()>(1);
    let mut watcher = match config.watch_ms {
        0 => None,
        ms => match Watcher::new(Duration::from_millis(ms), wake.clone()) {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!("cannot watch the policy files (SIGHUP still reloads): {e}");
                None
            }
        },
    };
    // Watching starts before the first stamps are taken, so no change falls between them.
    if let Some(w) = &mut watcher {
        w.watch(&files(&config));
    }
    let mut watched = snapshot(files(&config), None);
    loop {
        let why = tokio::select! {
            _ = hup.recv() => "SIGHUP",
            Some(()) = woken.recv() => {
                if watched.iter().all(|(p, s)| stamp(p) == *s) {
                    continue;
                }
                "a file changed"
            }
            _ = stop.recv() => return,
        };
        // Stamp every file before it is read, so that a change landing while this reload runs
        // (a policy file still being copied, the configuration written a moment later) is
        // seen at the next event and reloaded again, never folded into a stale snapshot.
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
        if let Some(w) = &mut watcher
            && w.watch(&files(&next))
        {
            // A file in a newly watched directory may have changed before its watch began.
            let _ = wake.try_send(());
        }
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
