//! `gavel token` and `gavel request`: a Unix-socket client for operators and scripts.

use crate::Globals;
use anyhow::{Context, bail};
use gavel_host::HostConfig;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// Which socket a client talks to: `--socket`, else the one `--config` names (the management
/// socket for `token` when there is one), else `$GAVEL_SOCKET`, else the default governance
/// socket.
fn socket_path(g: &Globals, management: bool) -> anyhow::Result<PathBuf> {
    if let Some(socket) = &g.socket {
        return Ok(socket.clone());
    }
    if let Some(path) = &g.config {
        let config = HostConfig::from_file(path)?;
        let chosen = match (management, &config.management_socket) {
            (true, Some(m)) => m.clone(),
            _ => config.socket_path(),
        };
        return Ok(chosen);
    }
    Ok(std::env::var_os("GAVEL_SOCKET")
        .map(PathBuf::from)
        .unwrap_or_else(|| HostConfig::default().socket_path()))
}

/// Send one line, read one line.
fn exchange(path: &Path, line: &str) -> anyhow::Result<String> {
    Ok(open(path, line)?.0)
}

/// Send one line and read the answer line; the connection stays open for more (a watch).
fn open(path: &Path, line: &str) -> anyhow::Result<(String, BufReader<UnixStream>)> {
    let mut stream = UnixStream::connect(path).with_context(|| {
        format!(
            "cannot connect to `{}`; is `gavel serve` running there?",
            path.display()
        )
    })?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    stream.write_all(line.as_bytes())?;
    stream.write_all(b"\n")?;
    let mut answer = String::new();
    let mut reader = BufReader::new(stream);
    reader
        .read_line(&mut answer)
        .with_context(|| format!("no answer from `{}`", path.display()))?;
    if answer.is_empty() {
        bail!(
            "`{}` closed the connection without answering (a peer of another UID is dropped)",
            path.display()
        );
    }
    Ok((answer.trim_end().to_owned(), reader))
}

#[derive(clap::Args)]
pub(crate) struct RequestArgs {
    /// The request line (JSON); read from stdin when absent.
    #[arg(value_name = "JSON")]
    line: Option<String>,
}

/// `gavel request`; its answer is JSON already, so `--json` changes nothing.
pub(crate) fn request(args: RequestArgs, g: &Globals) -> anyhow::Result<ExitCode> {
    let socket = socket_path(g, false)?;
    let line = match args.line {
        Some(j) => j,
        None => {
            let mut l = String::new();
            std::io::stdin()
                .read_line(&mut l)
                .context("cannot read the request from stdin")?;
            l
        }
    };
    let line = line.trim_end();
    if line.contains('\n') {
        bail!("the request must be one line");
    }
    println!("{}", exchange(&socket, line)?);
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::Args)]
pub(crate) struct TokenArgs {
    #[command(subcommand)]
    command: TokenCommand,
    /// The management token to send (default: `$GAVEL_MANAGEMENT_TOKEN`, else the one in
    /// `--config`). Prefer the variable or the file: a flag shows in the process list.
    #[arg(long, global = true, value_name = "TOKEN")]
    management_token: Option<String>,
}

/// The management token to send: the flag, else `$GAVEL_MANAGEMENT_TOKEN`, else the one the
/// configuration names. Messages name where a token came from, never the token.
fn management_token(
    args: &TokenArgs,
    g: &Globals,
) -> anyhow::Result<Option<gavel_host::ManagementToken>> {
    if let Some(t) = &args.management_token {
        if t.is_empty() {
            bail!("`--management-token` is empty");
        }
        return Ok(Some(gavel_host::ManagementToken::new(t.clone())));
    }
    if let Some(t) = std::env::var_os("GAVEL_MANAGEMENT_TOKEN") {
        let Some(t) = t.to_str().filter(|t| !t.is_empty()) else {
            bail!("GAVEL_MANAGEMENT_TOKEN is set but empty or not UTF-8");
        };
        return Ok(Some(gavel_host::ManagementToken::new(t)));
    }
    match &g.config {
        Some(path) => Ok(HostConfig::from_file(path)?.resolve_management_token()?),
        None => Ok(None),
    }
}

#[derive(clap::Subcommand)]
enum TokenCommand {
    /// Pending and approved tokens.
    List,
    /// One token, in any state.
    Show { token: String },
    /// Approve a token: the next matching retry runs, once. Shows the request and asks first.
    Approve {
        token: String,
        /// Approve without asking (required when stdin is not a terminal).
        #[arg(long, short)]
        yes: bool,
    },
    /// Revoke a token.
    Revoke { token: String },
    /// Stream token events (issued, approved, revoked, consumed, expired) as they happen, one
    /// line each, until interrupted.
    Watch,
}

/// Ask the server (with the management token, when there is one) and parse its answer.
fn ask(
    socket: &Path,
    request: &Value,
    secret: Option<&gavel_host::ManagementToken>,
) -> anyhow::Result<(String, Value)> {
    let (answer, _) = ask_open(socket, request, secret)?;
    Ok(answer)
}

/// As [`ask`], keeping the connection open.
fn ask_open(
    socket: &Path,
    request: &Value,
    secret: Option<&gavel_host::ManagementToken>,
) -> anyhow::Result<((String, Value), BufReader<UnixStream>)> {
    let mut request = request.clone();
    if let Some(secret) = secret {
        request["management_token"] = Value::String(secret.expose().to_owned());
    }
    let (answer, reader) = open(socket, &request.to_string())?;
    let v: Value = serde_json::from_str(&answer)
        .with_context(|| format!("the server answered something that is not JSON: {answer}"))?;
    Ok(((answer, v), reader))
}

/// `gavel token watch`: one line per token event until the server closes the stream; the
/// server's JSON lines as they are with `--json`.
fn watch(
    socket: &Path,
    secret: Option<&gavel_host::ManagementToken>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let ((_, v), mut reader) = ask_open(socket, &json!({"action": "watch"}), secret)?;
    if v["outcome"] != "ok" {
        return refused(&v, json);
    }
    // Events come when they come: no read timeout from here on.
    reader.get_ref().set_read_timeout(None)?;
    eprintln!(
        "watching token events on {} (interrupt to stop)",
        socket.display()
    );
    let mut line = String::new();
    loop {
        line.clear();
        if reader
            .read_line(&mut line)
            .with_context(|| format!("reading events from `{}`", socket.display()))?
            == 0
        {
            eprintln!("the server closed the stream");
            return Ok(ExitCode::SUCCESS);
        }
        let line = line.trim_end();
        if json {
            println!("{line}");
            continue;
        }
        match serde_json::from_str::<Value>(line) {
            Ok(event) => println!("{}", event_line(&event)),
            Err(_) => println!("{line}"),
        }
    }
}

/// An event as one human line: `2026-11-29T08:01:02Z  approved  ID  make deploy  (session s, sandbox sbx)`.
fn event_line(event: &Value) -> String {
    let kind = event["kind"].as_str().unwrap_or("?");
    if kind == "lagged" {
        let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
        return format!(
            "{now}  lagged    {} events missed: this watcher fell behind",
            event["missed"]
        );
    }
    format!(
        "{}  {kind:<8}  {}  {}  (session {}, sandbox {})",
        event["time_ms"].as_u64().map_or_else(String::new, time),
        event["token_id"].as_str().unwrap_or(""),
        event["summary"].as_str().unwrap_or(""),
        event["session_id"].as_str().unwrap_or(""),
        event["sandbox_id"].as_str().unwrap_or("")
    )
}

pub(crate) fn token(args: TokenArgs, g: &Globals) -> anyhow::Result<ExitCode> {
    let socket = socket_path(g, true)?;
    let secret = management_token(&args, g)?;

    if let TokenCommand::Approve { token, yes } = &args.command {
        // Show what is being approved; an approval is a decision a human should see made.
        let (_, shown) = ask(
            &socket,
            &json!({"action": "local.exec.show", "token_id": token}),
            secret.as_ref(),
        )?;
        if shown["outcome"] != "ok" {
            return refused(&shown, g.json);
        }
        if !g.json {
            print_record(&shown["token"]);
        }
        if !yes {
            confirm(token)?;
        }
    }
    let request = match &args.command {
        TokenCommand::List => json!({"action": "local.exec.list"}),
        TokenCommand::Show { token } => json!({"action": "local.exec.show", "token_id": token}),
        TokenCommand::Approve { token, .. } => {
            json!({"action": "local.exec.approve", "token_id": token})
        }
        TokenCommand::Revoke { token } => json!({"action": "local.exec.revoke", "token_id": token}),
        TokenCommand::Watch => return watch(&socket, secret.as_ref(), g.json),
    };
    let (answer, v) = ask(&socket, &request, secret.as_ref())?;
    if v["outcome"] != "ok" {
        return refused(&v, g.json);
    }
    if g.json {
        println!("{answer}");
    } else {
        match &args.command {
            TokenCommand::List => print_list(&v["tokens"]),
            TokenCommand::Show { .. } => print_record(&v["token"]),
            TokenCommand::Approve { token, .. } => println!("approved {token}"),
            TokenCommand::Revoke { token } => println!("revoked {token}"),
            TokenCommand::Watch => {}
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Print a refusal (`not_found`, `denied`, ...) and exit 1.
fn refused(v: &Value, json: bool) -> anyhow::Result<ExitCode> {
    if json {
        println!("{v}");
    } else {
        eprintln!(
            "{}: {}",
            v["outcome"].as_str().unwrap_or("error"),
            v["reason"].as_str().unwrap_or("")
        );
    }
    Ok(ExitCode::from(1))
}

/// `Approve this request? [y/N]` on a terminal; refuse to guess when nobody can answer.
fn confirm(token: &str) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    if !std::io::stdin().is_terminal() {
        bail!(
            "not approving `{token}`: stdin is not a terminal, so nobody can confirm; \
             pass `--yes` to approve from a script"
        );
    }
    eprint!("Approve this request? [y/N] ");
    std::io::stderr().flush().ok();
    let mut reply = String::new();
    std::io::stdin()
        .read_line(&mut reply)
        .context("cannot read the answer")?;
    if matches!(reply.trim(), "y" | "Y" | "yes" | "YES" | "Yes") {
        Ok(())
    } else {
        bail!("not approved (answer `y` to approve)")
    }
}

/// Epoch milliseconds as RFC 3339 UTC, to the second.
fn time(ms: u64) -> String {
    let at = std::time::UNIX_EPOCH + Duration::from_millis(ms);
    humantime::format_rfc3339_seconds(at).to_string()
}

/// Milliseconds as `4m 59s`.
fn span(ms: u64) -> String {
    humantime::format_duration(Duration::from_secs(ms / 1000)).to_string()
}

fn print_list(tokens: &Value) {
    let tokens = tokens.as_array().map(Vec::as_slice).unwrap_or_default();
    if tokens.is_empty() {
        println!("no pending or approved tokens");
        return;
    }
    println!(
        "{:<36}  {:<8}  {:>9}  {:<11}  {:<8}  {:<16}  REQUEST",
        "TOKEN", "STATE", "EXPIRES", "EFFECT", "RISK", "POLICY"
    );
    for t in tokens {
        // Older servers answer `timeout_ms` as the time left and have no `remaining_ms`.
        let left = t["remaining_ms"]
            .as_u64()
            .or_else(|| t["timeout_ms"].as_u64())
            .unwrap_or(0);
        let expires = format!("in {}", span(left));
        println!(
            "{:<36}  {:<8}  {:>9}  {:<11}  {:<8}  {:<16}  {}",
            t["token_id"].as_str().unwrap_or(""),
            t["state"].as_str().unwrap_or(""),
            expires,
            t["effect_class"].as_str().unwrap_or("-"),
            t["risk_class"].as_str().unwrap_or("-"),
            t["policy"].as_str().unwrap_or(""),
            t["summary"].as_str().unwrap_or("")
        );
    }
}

fn print_record(t: &Value) {
    let Some(fields) = t.as_object() else { return };
    for (key, value) in fields {
        let shown = match (key.as_str(), value) {
            (k, Value::Number(n)) if k.ends_with("_at_ms") => {
                n.as_u64().map_or_else(|| n.to_string(), time)
            }
            ("timeout_ms" | "remaining_ms", Value::Number(n)) => {
                n.as_u64().map_or_else(|| n.to_string(), span)
            }
            (_, Value::String(s)) => s.clone(),
            (_, other) => other.to_string(),
        };
        println!("{key:>18}: {shown}");
    }
}
