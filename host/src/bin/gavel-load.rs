//! `gavel-load`: a load client for a Gavel socket, and the bare baseline server it is compared
//! with (a Unix socket server that answers every line with a fixed response and does no other
//! work: the ceiling on this machine).
//!
//! ```text
//! gavel-load --socket PATH [--clients 32] [--seconds 5] [--persistent] [--request JSON] [--json]
//! gavel-load --bare-server PATH
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

const DEFAULT_REQUEST: &str = r#"{"action":"local.exec","executable":"/usr/bin/git","args":["status"],"sandbox_id":"sbx_1","session_id":"sess_1","profile":"default","hitl_mode":"async_token"}"#;

#[derive(clap::Parser)]
#[command(
    name = "gavel-load",
    about = "Load a Gavel socket, or serve the bare baseline"
)]
struct Args {
    /// The socket to load.
    #[arg(long, required_unless_present = "bare_server")]
    socket: Option<PathBuf>,
    /// Serve fixed answers on this socket instead (the baseline).
    #[arg(long, value_name = "PATH")]
    bare_server: Option<PathBuf>,
    /// Concurrent clients.
    #[arg(long, default_value_t = 32)]
    clients: usize,
    /// How long to run, in seconds (after one second of warm-up).
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Keep one connection per client (otherwise one request per connection).
    #[arg(long)]
    persistent: bool,
    /// The request line to send.
    #[arg(long, default_value = DEFAULT_REQUEST)]
    request: String,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = <Args as clap::Parser>::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if let Some(path) = &args.bare_server {
        return rt.block_on(bare_server(path.clone()));
    }
    let socket = args.socket.clone().ok_or("--socket is required")?;
    rt.block_on(load(args, socket))
}

async fn bare_server(path: PathBuf) -> Result<(), Box<dyn std::error::Error>> {
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path)?;
    println!("bare server on {}", path.display());
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::spawn(async move {
            let (r, mut w) = stream.into_split();
            let mut lines = BufReader::new(r).lines();
            while let Ok(Some(_)) = lines.next_line().await {
                if w.write_all(b"{\"decision\":\"allow\"}\n").await.is_err() {
                    return;
                }
            }
        });
    }
}

async fn load(args: Args, socket: PathBuf) -> Result<(), Box<dyn std::error::Error>> {
    let warmup = Duration::from_secs(1);
    let measure = Duration::from_secs_f64(args.seconds);
    let recording = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let line: Arc<str> = format!("{}\n", args.request).into();
    let mut tasks = Vec::new();
    for _ in 0..args.clients {
        let (socket, line, recording, stop) = (
            socket.clone(),
            line.clone(),
            recording.clone(),
            stop.clone(),
        );
        let persistent = args.persistent;
        tasks.push(tokio::spawn(async move {
            client(socket, line, persistent, recording, stop).await
        }));
    }
    tokio::time::sleep(warmup).await;
    recording.store(true, Ordering::SeqCst);
    let started = Instant::now();
    tokio::time::sleep(measure).await;
    recording.store(false, Ordering::SeqCst);
    let elapsed = started.elapsed();
    stop.store(true, Ordering::SeqCst);
    let mut samples = Vec::new();
    let mut errors = 0u64;
    for t in tasks {
        let (s, e) = t.await?;
        samples.extend(s);
        errors += e;
    }
    samples.sort_unstable();
    let pct = |q: f64| {
        if samples.is_empty() {
            0.0
        } else {
            samples[((samples.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1e6
        }
    };
    let rate = samples.len() as f64 / elapsed.as_secs_f64();
    let mode = if args.persistent {
        "persistent"
    } else {
        "one-per-connection"
    };
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "socket": socket, "clients": args.clients, "mode": mode, "seconds": elapsed.as_secs_f64(),
                "answers": samples.len(), "errors": errors, "per_second": rate,
                "p50_us": pct(0.5), "p99_us": pct(0.99), "max_us": pct(1.0),
            })
        );
    } else {
        println!(
            "{} clients, {mode}: {:.0} answers/s, p50 {:.0} us, p99 {:.0} us, max {:.0} us, {} errors",
            args.clients,
            rate,
            pct(0.5),
            pct(0.99),
            pct(1.0),
            errors
        );
    }
    Ok(())
}

/// One client: send, read the answer, repeat until told to stop. Returns the latencies recorded
/// while `recording` was set, and the number of failed exchanges.
async fn client(
    socket: PathBuf,
    line: Arc<str>,
    persistent: bool,
    recording: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
) -> (Vec<Duration>, u64) {
    let mut samples = Vec::new();
    let mut errors = 0;
    let mut conn: Option<BufReader<UnixStream>> = None;
    let mut answer = String::new();
    while !stop.load(Ordering::Relaxed) {
        let t = Instant::now();
        let ok = async {
            if conn.is_none() {
                conn = Some(BufReader::new(UnixStream::connect(&socket).await?));
            }
            let c = conn
                .as_mut()
                .ok_or_else(|| std::io::Error::other("no connection"))?;
            c.get_mut().write_all(line.as_bytes()).await?;
            answer.clear();
            if c.read_line(&mut answer).await? == 0 {
                return Err(std::io::Error::other("closed"));
            }
            Ok::<(), std::io::Error>(())
        }
        .await
        .is_ok();
        if !persistent || !ok {
            conn = None;
        }
        if recording.load(Ordering::Relaxed) {
            if ok {
                samples.push(t.elapsed());
            } else {
                errors += 1;
            }
        }
    }
    (samples, errors)
}
