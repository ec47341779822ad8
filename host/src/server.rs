//! `gavel serve`: the wire contract on Unix sockets.
//!
//! One task accepts per socket, under a connection limit; one task serves each connection,
//! answering its lines in order. Peers are checked with `SO_PEERCRED` before anything is read.
//! Shutdown (mini-redis style): a broadcast tells every task to stop after the request in hand;
//! when the last connection task has dropped its completion sender, draining is done and the
//! socket files are removed.

use crate::config::HostConfig;
use crate::error::Error;
use crate::events::{Received, Watcher};
use crate::host::{Operator, PolicyHost};
use crate::tokens::Outcome;
use crate::wire::{self, Line, ManageResponse, Request, Response};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Semaphore, broadcast, mpsc};

/// What a socket answers.
#[derive(Debug, Clone)]
enum Role {
    /// Governance requests; management too unless it has its own socket (named here).
    Governance {
        management_elsewhere: Option<PathBuf>,
    },
    /// Management only: approve, revoke, list, show.
    Management { governance: PathBuf },
}

/// A bound server, ready to run.
pub struct Server {
    host: PolicyHost,
    listeners: Vec<(UnixListener, PathBuf, Role, Arc<Vec<u32>>)>,
    /// Device and inode of each socket file as bound, so shutdown removes only our own.
    bound: Vec<(u64, u64)>,
    max_connections: usize,
    idle_timeout: Duration,
    /// How long one answer may take to be written: a client that stops reading loses its
    /// connection (and its slot) after this, instead of holding it forever.
    write_timeout: Duration,
    /// How long shutdown waits for connections to finish; then it stops regardless.
    drain_timeout: Duration,
    prune_every: Duration,
}

impl Server {
    /// Bind the configured sockets (removing stale socket files, refusing live ones or files
    /// that are not sockets), with mode 0600.
    pub fn bind(host: PolicyHost, config: &HostConfig) -> Result<Self, Error> {
        let governance = config.socket_path();
        let (gov_listener, owner, gov_bound) = bind_socket(&governance)?;
        let mut bound = vec![gov_bound];
        let mut listeners = vec![(
            gov_listener,
            governance.clone(),
            Role::Governance {
                management_elsewhere: config.management_socket.clone(),
            },
            Arc::new(vec![owner]),
        )];
        if let Some(path) = &config.management_socket {
            let (listener, owner, identity) = bind_socket(path)?;
            bound.push(identity);
            let mut admitted = vec![owner];
            admitted.extend(&config.management_uids);
            listeners.push((
                listener,
                path.clone(),
                Role::Management { governance },
                Arc::new(admitted),
            ));
        }
        Ok(Self {
            host,
            listeners,
            bound,
            max_connections: config.max_connections,
            idle_timeout: Duration::from_millis(config.idle_timeout_ms),
            write_timeout: Duration::from_millis(config.write_timeout_ms),
            drain_timeout: Duration::from_millis(config.drain_timeout_ms),
            prune_every: Duration::from_millis(config.prune_interval_ms),
        })
    }

    /// The governance socket's path.
    pub fn socket(&self) -> &Path {
        &self.listeners[0].1
    }

    /// The management socket's path, if it has its own.
    pub fn management_socket(&self) -> Option<&Path> {
        self.listeners.get(1).map(|l| l.1.as_path())
    }

    /// Serve until `shutdown` completes; then stop accepting, let every connection finish the
    /// request in hand, and remove the socket files.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) -> Result<(), Error> {
        let (notify, _) = broadcast::channel::<()>(1);
        let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
        let mut paths = Vec::new();
        for (listener, path, role, admitted) in self.listeners {
            paths.push(path.clone());
            let acceptor = Acceptor {
                listener,
                role,
                admitted,
                host: self.host.clone(),
                limit: Arc::new(Semaphore::new(self.max_connections)),
                idle_timeout: self.idle_timeout,
                write_timeout: self.write_timeout,
                notify: notify.clone(),
                done: done_tx.clone(),
            };
            tokio::spawn(acceptor.run());
        }
        let pruner = {
            let host = self.host.clone();
            let mut stop = notify.subscribe();
            let done = done_tx.clone();
            let prune_every = self.prune_every;
            tokio::spawn(async move {
                let _done = done;
                let mut every = tokio::time::interval(prune_every);
                loop {
                    tokio::select! {
                        _ = every.tick() => {
                            if let Err(e) = host.prune().await {
                                tracing::warn!("pruning expired tokens failed: {e}");
                            }
                        }
                        _ = stop.recv() => return,
                    }
                }
            })
        };
        shutdown.await;
        tracing::info!("shutting down: finishing requests in flight");
        let _ = notify.send(());
        drop(done_tx);
        // Every write and policy call is bounded, so this is a backstop: whatever clients do,
        // shutdown ends.
        if tokio::time::timeout(self.drain_timeout, done_rx.recv())
            .await
            .is_err()
        {
            tracing::warn!(
                "connections still open after the {} ms drain time; stopping anyway",
                self.drain_timeout.as_millis()
            );
        }
        pruner.abort();
        for (path, bound) in paths.iter().zip(self.bound) {
            unlink_ours(path, bound);
        }
        tracing::info!("shut down");
        Ok(())
    }
}

/// Bind a Unix socket at `path`, returning the listener and the UID that owns it (ours).
fn bind_socket(path: &Path) -> Result<(UnixListener, u32, (u64, u64)), Error> {
    let io = |source| Error::Io {
        path: path.to_owned(),
        source,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    // Whoever may rename entries in the socket's directory can move our socket aside and bind
    // an impostor that answers `allow`.
    crate::files::check_private(crate::files::parent_of(path), "the socket's directory")?;
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(Error::config(format!(
                    "`{}` is the socket of a running server; stop it or choose another path",
                    path.display()
                )));
            }
            // A stale socket of a server that is gone.
            std::fs::remove_file(path).map_err(io)?;
        }
        Ok(_) => {
            return Err(Error::config(format!(
                "`{}` exists and is not a socket; refusing to replace it",
                path.display()
            )));
        }
        Err(_) => {}
    }
    let listener = UnixListener::bind(path).map_err(io)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    // Peers must match our effective UID; reading it back from the socket file after bind
    // would trust whatever sits at the path by then.
    let owner = crate::files::euid();
    let bound = crate::files::identity(&std::fs::symlink_metadata(path).map_err(io)?);
    tracing::info!("listening on {}", path.display());
    Ok((listener, owner, bound))
}

/// Remove the socket at `path` only if it is still the one we bound: a path that now names
/// another file (someone else's socket) is not ours to delete.
fn unlink_ours(path: &Path, bound: (u64, u64)) {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if crate::files::identity(&meta) == bound => {
            let _ = std::fs::remove_file(path);
        }
        Ok(_) => tracing::warn!(
            "`{}` is no longer the socket this server bound; leaving it in place",
            path.display()
        ),
        Err(_) => {}
    }
}

struct Acceptor {
    listener: UnixListener,
    role: Role,
    admitted: Arc<Vec<u32>>,
    host: PolicyHost,
    limit: Arc<Semaphore>,
    idle_timeout: Duration,
    write_timeout: Duration,
    notify: broadcast::Sender<()>,
    done: mpsc::Sender<()>,
}

impl Acceptor {
    async fn run(self) {
        let mut stop = self.notify.subscribe();
        loop {
            // Waiting for a free slot must not keep shutdown waiting.
            let permit = tokio::select! {
                permit = Arc::clone(&self.limit).acquire_owned() => permit,
                _ = stop.recv() => return,
            };
            let Ok(permit) = permit else {
                return;
            };
            let accepted = tokio::select! {
                accepted = self.listener.accept() => accepted,
                _ = stop.recv() => return,
            };
            let stream = match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            let uid = match stream.peer_cred() {
                Ok(cred) => cred.uid(),
                Err(e) => {
                    tracing::warn!("cannot read peer credentials; dropping the connection: {e}");
                    continue;
                }
            };
            if !self.admitted.contains(&uid) {
                // The contract: a peer of another UID gets no answer at all.
                tracing::warn!(uid, "dropping a connection from a UID that is not admitted");
                continue;
            }
            let conn = Connection {
                host: self.host.clone(),
                role: self.role.clone(),
                uid,
                idle_timeout: self.idle_timeout,
                write_timeout: self.write_timeout,
                share: self.host.share(),
                stop: self.notify.subscribe(),
                _done: self.done.clone(),
            };
            tokio::spawn(async move {
                conn.serve(stream).await;
                drop(permit);
            });
        }
    }
}

struct Connection {
    host: PolicyHost,
    role: Role,
    uid: u32,
    idle_timeout: Duration,
    write_timeout: Duration,
    /// This connection's share of the policy pool: its calls queue behind lighter users'.
    share: crate::pool::Share,
    stop: broadcast::Receiver<()>,
    /// Dropped when the connection ends; the server waits for all of these on shutdown.
    _done: mpsc::Sender<()>,
}

impl Connection {
    async fn serve(mut self, stream: UnixStream) {
        let (read, mut write) = stream.into_split();
        let mut reader = BufReader::new(read);
        let mut buf = Vec::new();
        loop {
            let line = tokio::select! {
                read = tokio::time::timeout(self.idle_timeout, wire::read_line(&mut reader, &mut buf)) => read,
                _ = self.stop.recv() => return,
            };
            let line = match line {
                Err(_) => {
                    tracing::debug!(uid = self.uid, "closing an idle connection");
                    return;
                }
                Ok(Err(e)) => {
                    tracing::debug!("read failed: {e}");
                    return;
                }
                Ok(Ok(Line::Eof)) => return,
                Ok(Ok(Line::TooLong)) => {
                    tracing::warn!(
                        uid = self.uid,
                        "closing a connection that sent a line over {} bytes",
                        wire::MAX_LINE
                    );
                    return;
                }
                Ok(Ok(Line::Complete(line))) => line,
            };
            if line.iter().all(u8::is_ascii_whitespace) {
                // firma closes on a blank line at once; so do we, rather than wait out the
                // idle timeout.
                return;
            }
            let (answer, watcher) = self.answer(&line).await;
            if !self.send(&mut write, answer.to_line()).await {
                return;
            }
            if let Some(watcher) = watcher {
                return self.stream(watcher, &mut reader, &mut write).await;
            }
        }
    }

    /// Write one answer line. `false` when the connection must end: the write failed, the
    /// client did not read it in time, or the server is stopping.
    async fn send(&mut self, write: &mut OwnedWriteHalf, mut out: String) -> bool {
        out.push('\n');
        // A client that does not read fills its socket buffer and then this write blocks:
        // bound it, and on shutdown give it at most the rest of that bound.
        let deadline = tokio::time::Instant::now() + self.write_timeout;
        let written = write.write_all(out.as_bytes());
        tokio::pin!(written);
        let (written, stopping) = tokio::select! {
            biased;
            w = tokio::time::timeout_at(deadline, &mut written) => (w, false),
            _ = self.stop.recv() => (tokio::time::timeout_at(deadline, &mut written).await, true),
        };
        match written {
            Ok(Ok(())) => !stopping,
            Ok(Err(e)) => {
                tracing::debug!("write failed: {e}");
                false
            }
            Err(_) => {
                tracing::warn!(
                    uid = self.uid,
                    "closing a connection that did not read its answer within {} ms",
                    self.write_timeout.as_millis()
                );
                false
            }
        }
    }

    /// Stream token events, one line each, until the client closes (or sends anything: a
    /// watching connection takes no more requests) or the server stops. A watcher that falls
    /// behind gets a `{"kind":"lagged","missed":N}` line; one that stops reading is
    /// disconnected after the write timeout. Neither slows anyone else.
    async fn stream(
        &mut self,
        mut watcher: Watcher,
        reader: &mut BufReader<OwnedReadHalf>,
        write: &mut OwnedWriteHalf,
    ) {
        use tokio::io::AsyncBufReadExt;
        loop {
            let line = tokio::select! {
                received = watcher.recv() => match received {
                    Received::Event(event) => serde_json::to_string(&event).ok(),
                    Received::Lagged(missed) => {
                        Some(serde_json::json!({"kind": "lagged", "missed": missed}).to_string())
                    }
                    Received::Closed => return,
                },
                _ = reader.fill_buf() => return,
                _ = self.stop.recv() => return,
            };
            if let Some(line) = line
                && !self.send(write, line).await
            {
                return;
            }
        }
    }

    async fn answer(&self, line: &[u8]) -> (Response, Option<Watcher>) {
        let operator = Operator {
            uid: Some(self.uid),
        };
        let response = match (&self.role, wire::parse_request(line)) {
            (
                Role::Governance {
                    management_elsewhere: Some(path),
                },
                Ok(request @ (Request::Manage(_) | Request::Query(_) | Request::Watch(_))),
            ) => {
                // Refused, and audited: an agent that reaches the launcher's socket and tries
                // to approve itself leaves a trace.
                let reason = format!(
                    "management requests go to the management socket `{}`, not this one",
                    path.display()
                );
                self.host
                    .refuse(&request, operator, Outcome::UnsupportedAction, reason)
                    .await
            }
            (Role::Management { governance }, Ok(Request::Decide(_))) => {
                Response::Manage(ManageResponse::new(
                    Outcome::UnsupportedAction,
                    format!(
                        "this is the management socket; governance requests go to `{}`",
                        governance.display()
                    ),
                ))
            }
            (_, Ok(Request::Watch(w))) => {
                return match self.host.watch(&w, operator).await {
                    Ok(watcher) => {
                        let ok = ManageResponse {
                            outcome: Outcome::Ok,
                            reason: Some("watching token events, one line each".into()),
                        };
                        (Response::Manage(ok), Some(watcher))
                    }
                    Err(refused) => (Response::Manage(refused), None),
                };
            }
            (_, Ok(request)) => {
                self.host
                    .handle_shared(request, operator, &self.share)
                    .await
            }
            (_, Err(e)) => e.response_to(line),
        };
        (response, None)
    }
}

/// A warning when metrics are served beyond this machine: the endpoint has no authentication,
/// and token counts and policy names are operational detail.
pub fn metrics_exposure(addr: std::net::SocketAddr) -> Option<String> {
    (!addr.ip().is_loopback()).then(|| {
        format!(
            "metrics_addr `{addr}` is not a loopback address: anyone who can reach it reads the \
             metrics, without authentication; bind 127.0.0.1 unless a firewall or proxy guards it"
        )
    })
}

/// Bind the metrics listener, so a caller can fail at start (a port already taken) before it
/// serves anything.
pub(crate) async fn bind_metrics(
    addr: std::net::SocketAddr,
) -> Result<tokio::net::TcpListener, Error> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Error::config(format!("`metrics_addr`: cannot listen on `{addr}`: {e}")))
}

/// How long a metrics client may take to send its request headers, and then to take the whole
/// exchange: a scraper that stalls loses its connection instead of holding a task forever.
const METRICS_HEADER_TIMEOUT: Duration = Duration::from_secs(5);
const METRICS_EXCHANGE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serve `GET /metrics` and `GET /healthz` (`200 ok` while the server runs) on a bound
/// listener until `stop` fires; HTTP/1.1 by hyper, one request per connection.
pub(crate) async fn serve_metrics_on(
    host: PolicyHost,
    listener: tokio::net::TcpListener,
    mut stop: broadcast::Receiver<()>,
) {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!("metrics on http://{addr}/metrics");
        if let Some(warning) = metrics_exposure(addr) {
            tracing::warn!("{warning}");
        }
    }
    let mut http = hyper::server::conn::http1::Builder::new();
    http.keep_alive(false)
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(METRICS_HEADER_TIMEOUT);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(_) => continue,
            },
            _ = stop.recv() => return,
        };
        let host = host.clone();
        let service = hyper::service::service_fn(move |request| {
            let host = host.clone();
            async move { Ok::<_, std::convert::Infallible>(metrics_response(&host, &request).await) }
        });
        let exchange = http.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
        tokio::spawn(async move {
            if let Ok(Err(e)) = tokio::time::timeout(METRICS_EXCHANGE_TIMEOUT, exchange).await {
                tracing::debug!("metrics connection: {e}");
            }
        });
    }
}

/// The answer to one metrics-endpoint request.
async fn metrics_response<B>(
    host: &PolicyHost,
    request: &hyper::Request<B>,
) -> hyper::Response<http_body_util::Full<bytes::Bytes>> {
    let (status, content_type, body) = match (request.method(), request.uri().path()) {
        (&hyper::Method::GET, "/metrics") => {
            // Counted by the store (one query on its read connection), never by loading
            // every live token.
            if let Ok(counts) = host.token_counts().await {
                host.metrics().set_tokens(
                    i64::try_from(counts.pending).unwrap_or(i64::MAX),
                    i64::try_from(counts.approved).unwrap_or(i64::MAX),
                );
            }
            (
                hyper::StatusCode::OK,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                host.metrics().encode(),
            )
        }
        (&hyper::Method::GET, "/healthz") => {
            (hyper::StatusCode::OK, "text/plain", "ok\n".to_owned())
        }
        _ => (hyper::StatusCode::NOT_FOUND, "text/plain", String::new()),
    };
    let mut response = hyper::Response::new(http_body_util::Full::new(bytes::Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    response
}
