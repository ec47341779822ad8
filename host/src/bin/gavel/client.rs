//! `gavel token` and `gavel request`: a Unix-socket client for operators and scripts.

use anyhow::{Context, bail};
use gavel_host::HostConfig;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(clap::Args)]
pub(crate) struct SocketArg {
    /// The socket to talk to (default: `$GAVEL_SOCKET`, else the default governance socket).
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
}

impl SocketArg {
    /// `--socket`, else `$GAVEL_SOCKET`, else `configured`, else the default socket.
    fn path(&self, configured: Option<PathBuf>) -> PathBuf {
        self.socket
            .clone()
            .or_else(|| std::env::var_os("GAVEL_SOCKET").map(PathBuf::from))
            .or(configured)
            .unwrap_or_else(|| HostConfig::default().socket_path())
    }
}

/// Send one line, read one line.
fn exchange(path: &std::path::Path, line: &str) -> anyhow::Result<String> {
    let mut stream = UnixStream::connect(&path).with_context(|| {
        format!(
            "cannot connect to `{}`; is `gavel serve` running there?",
            path.display()
        )
    })?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    stream.write_all(line.as_bytes())?;
    stream.write_all(b"\n")?;
    let mut answer = String::new();
    BufReader::new(stream)
        .read_line(&mut answer)
        .with_context(|| format!("no answer from `{}`", path.display()))?;
    if answer.is_empty() {
        bail!(
            "`{}` closed the connection without answering (a peer of another UID is dropped)",
            path.display()
        );
    }
    Ok(answer.trim_end().to_owned())
}

#[derive(clap::Args)]
pub(crate) struct RequestArgs {
    #[command(flatten)]
    socket: SocketArg,
    /// The request line (JSON); read from stdin when absent.
    json: Option<String>,
}

pub(crate) fn request(args: RequestArgs) -> anyhow::Result<ExitCode> {
    let line = match args.json {
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
    println!("{}", exchange(&args.socket.path(None), line)?);
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::Args)]
pub(crate) struct TokenArgs {
    #[command(subcommand)]
    command: TokenCommand,
    #[command(flatten)]
    socket: SocketArg,
    /// Print the server's JSON answer instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// The server's configuration (gavel.toml): its management token and socket (the
    /// management socket if it has one) are used unless given otherwise.
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    /// The management token to send (default: `$GAVEL_MANAGEMENT_TOKEN`, else the one in
    /// `--config`). Prefer the variable or the file: a flag shows in the process list.
    #[arg(long, global = true, value_name = "TOKEN")]
    management_token: Option<String>,
}

/// The management token to send: the flag, else `$GAVEL_MANAGEMENT_TOKEN`, else the config's.
/// Messages name where a token came from, never the token.
fn management_token(
    args: &TokenArgs,
    config: Option<&HostConfig>,
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
    match config {
        Some(c) => Ok(c.resolve_management_token()?),
        None => Ok(None),
    }
}

#[derive(clap::Subcommand)]
enum TokenCommand {
    /// Pending and approved tokens.
    List,
    /// One token, in any state.
    Show { token: String },
    /// Approve a token: the next matching retry runs, once.
    Approve { token: String },
    /// Revoke a token.
    Revoke { token: String },
}

pub(crate) fn token(args: TokenArgs) -> anyhow::Result<ExitCode> {
    let config = args
        .config
        .as_deref()
        .map(HostConfig::from_file)
        .transpose()?;
    let secret = management_token(&args, config.as_ref())?;
    let configured_socket = config.as_ref().map(|c| {
        c.management_socket
            .clone()
            .unwrap_or_else(|| c.socket_path())
    });
    let mut request = match &args.command {
        TokenCommand::List => json!({"action": "local.exec.list"}),
        TokenCommand::Show { token } => json!({"action": "local.exec.show", "token_id": token}),
        TokenCommand::Approve { token } => {
            json!({"action": "local.exec.approve", "token_id": token})
        }
        TokenCommand::Revoke { token } => json!({"action": "local.exec.revoke", "token_id": token}),
    };
    if let Some(secret) = &secret {
        request["management_token"] = Value::String(secret.expose().to_owned());
    }
    let answer = exchange(&args.socket.path(configured_socket), &request.to_string())?;
    let v: Value = serde_json::from_str(&answer)
        .with_context(|| format!("the server answered something that is not JSON: {answer}"))?;
    let ok = v["outcome"] == "ok";
    if args.json {
        println!("{answer}");
    } else if !ok {
        eprintln!(
            "{}: {}",
            v["outcome"].as_str().unwrap_or("error"),
            v["reason"].as_str().unwrap_or("")
        );
    } else {
        match &args.command {
            TokenCommand::List => print_list(&v["tokens"]),
            TokenCommand::Show { .. } => print_record(&v["token"]),
            TokenCommand::Approve { token } => println!("approved {token}"),
            TokenCommand::Revoke { token } => println!("revoked {token}"),
        }
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn print_list(tokens: &Value) {
    let tokens = tokens.as_array().map(Vec::as_slice).unwrap_or_default();
    if tokens.is_empty() {
        println!("no pending or approved tokens");
        return;
    }
    println!(
        "{:<36}  {:<8}  {:>8}  {:<11}  {:<8}  {:<16}  REQUEST",
        "TOKEN", "STATE", "EXPIRES", "EFFECT", "RISK", "POLICY"
    );
    for t in tokens {
        // Older servers answer `timeout_ms` as the time left and have no `remaining_ms`.
        let left = t["remaining_ms"]
            .as_u64()
            .or_else(|| t["timeout_ms"].as_u64())
            .unwrap_or(0);
        println!(
            "{:<36}  {:<8}  {:>7}s  {:<11}  {:<8}  {:<16}  {}",
            t["token_id"].as_str().unwrap_or(""),
            t["state"].as_str().unwrap_or(""),
            left / 1000,
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
        let shown = match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        println!("{key:>18}: {shown}");
    }
}
