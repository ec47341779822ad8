//! Decide many `GET` requests with one configuration, natively, for the differential test
//! against real servers (`tests/http_differential/run.py`).
//!
//! Usage: `judge CONFIG.json < targets` where each input line is a JSON string holding a request
//! target as sent (path, optionally `?query`). Prints one JSON line per input line:
//! `{"verdict": "allow"|"ask"|"deny", "rule": ID, "reason": TEXT}`. The path handed to the
//! policy is the target up to its first `?`, as an interceptor splits it.

use http_rules_core::{HttpRequest, Policy, Request};
use std::io::{BufRead, BufWriter, Write};
use std::process::ExitCode;

fn run() -> Result<(), String> {
    let config_path = std::env::args()
        .nth(1)
        .ok_or("usage: judge CONFIG.json < targets (one JSON string per line)")?;
    let config = std::fs::read_to_string(&config_path)
        .map_err(|e| format!("cannot read `{config_path}`: {e}"))?;
    let policy = Policy::from_json(&config)?;
    let stdin = std::io::stdin();
    let mut out = BufWriter::new(std::io::stdout().lock());
    for (n, line) in stdin.lock().lines().enumerate() {
        let line = line.map_err(|e| format!("cannot read standard input: {e}"))?;
        let target: String = serde_json::from_str(&line)
            .map_err(|e| format!("line {}: not a JSON string: {e}", n + 1))?;
        let path = target.split_once('?').map_or(target.as_str(), |(p, _)| p);
        let e = policy.evaluate(&Request::Http(HttpRequest {
            method: "GET",
            scheme: "http",
            host: "127.0.0.1",
            port: 80,
            path,
        }));
        let answer = serde_json::json!({
            "verdict": e.verdict.to_string(), "rule": e.rule, "reason": e.reason,
        });
        writeln!(out, "{answer}").map_err(|e| format!("cannot write: {e}"))?;
    }
    out.flush().map_err(|e| format!("cannot write: {e}"))
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("judge: {e}");
            ExitCode::from(2)
        }
    }
}
