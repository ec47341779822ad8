//! The audit log: one JSON line per decision and per management operation, written by a
//! dedicated thread, flushed and fsynced in batches (group commit).
//!
//! With `audit_failure = "deny"` (the default) an answer waits until its record is on disk, and
//! a record that cannot be written turns the answer into a `deny` (or a `denied` management
//! outcome): nothing is acknowledged that the log does not hold. With `"continue"` answers do not
//! wait, and write failures are logged and counted instead.

use crate::error::Error;
use cap_std::fs::OpenOptions;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::Path;
use tokio::sync::{mpsc, oneshot};

/// Records queued for the writer at most; beyond this, writers wait (deny mode) or records are
/// dropped and counted (continue mode).
const QUEUE: usize = 65_536;
/// Records written per fsync at most.
const BATCH: usize = 4096;

/// What to do when the audit log cannot be written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditFailure {
    /// Fail closed: the answer becomes a deny.
    #[default]
    Deny,
    /// Keep answering; log and count the failure.
    Continue,
}

/// One audit line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// A unique id for this record.
    pub id: String,
    /// The wire action (`local.exec`, `tool.call`, `local.exec.approve`, ...).
    pub action: String,
    /// The request: command line or tool call (arguments redacted if configured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// The session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// The sandbox.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox_id: Option<String>,
    /// The agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// The request's fingerprint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// The answer: `allow`, `deny`, `pending_hitl`, or a management outcome.
    pub verdict: String,
    /// Why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The policy that decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// The rule that decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// The chain in force: `name@sha256:digest` per policy.
    pub policies: Vec<String>,
    /// The digest of the whole chain in force (policies, versions, configurations).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain_digest: Option<String>,
    /// What the action does, as the chain classified it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effect_class: Option<crate::decision::EffectClass>,
    /// How risky it is, as the chain classified it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk_class: Option<crate::decision::RiskClass>,
    /// For a deny: the stable code of its cause (`policy_denied`, `approval_invalid`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deny_code: Option<crate::intercept::DenyCode>,
    /// The token involved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_id: Option<String>,
    /// What happened to it: `issued`, `consumed`, `approved`, `revoked`, `expired`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transition: Option<String>,
    /// The operator's (or client's) Unix UID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_uid: Option<u32>,
}

struct Entry {
    line: String,
    done: Option<oneshot::Sender<Result<(), String>>>,
}

/// A handle to the audit writer; cheap to clone.
#[derive(Clone)]
pub struct AuditLog {
    tx: mpsc::Sender<Entry>,
    mode: AuditFailure,
}

/// Joins the writer thread on drop of every [`AuditLog`] handle and this guard.
pub struct AuditWriter {
    thread: Option<std::thread::JoinHandle<()>>,
}

impl AuditWriter {
    /// Wait until every queued record is written (all handles must be dropped first).
    pub fn finish(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl AuditLog {
    /// Open (append to, creating if missing) the log at `path` and start its writer thread.
    pub fn open(path: &Path, mode: AuditFailure) -> Result<(Self, AuditWriter), Error> {
        let io = |source| Error::Io {
            path: path.to_owned(),
            source,
        };
        let (dir, name) = crate::files::open_parent(path).map_err(io)?;
        let file = dir
            .open_with(name, OpenOptions::new().append(true).create(true))
            .map_err(io)?;
        let file = file.into_std();
        let (tx, rx) = mpsc::channel(QUEUE);
        let shown = path.display().to_string();
        let thread = std::thread::Builder::new()
            .name("gavel-audit".into())
            .spawn(move || write_loop(file, rx, &shown))
            .map_err(io)?;
        Ok((
            Self { tx, mode },
            AuditWriter {
                thread: Some(thread),
            },
        ))
    }

    /// The configured failure mode.
    pub fn mode(&self) -> AuditFailure {
        self.mode
    }

    /// Append a record. In deny mode, returns once it is on disk, or the reason it is not.
    pub async fn record(&self, record: &AuditRecord) -> Result<(), String> {
        let line = serde_json::to_string(record)
            .map_err(|e| format!("cannot encode the audit record: {e}"))?;
        match self.mode {
            AuditFailure::Deny => {
                let (done, wait) = oneshot::channel();
                self.tx
                    .send(Entry {
                        line,
                        done: Some(done),
                    })
                    .await
                    .map_err(|_| "the audit writer has stopped".to_owned())?;
                wait.await
                    .map_err(|_| "the audit writer has stopped".to_owned())?
            }
            AuditFailure::Continue => {
                if self.tx.try_send(Entry { line, done: None }).is_err() {
                    tracing::warn!("audit queue full or closed; a record was dropped");
                    return Err("audit queue full".into());
                }
                Ok(())
            }
        }
    }
}

fn write_loop(file: std::fs::File, mut rx: mpsc::Receiver<Entry>, path: &str) {
    let mut out = std::io::BufWriter::with_capacity(1 << 16, file);
    let mut batch: Vec<Entry> = Vec::with_capacity(BATCH);
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(e) => batch.push(e),
                Err(_) => break,
            }
        }
        let mut result = Ok(());
        for e in &batch {
            if let Err(err) = out
                .write_all(e.line.as_bytes())
                .and_then(|()| out.write_all(b"\n"))
            {
                result = Err(err);
                break;
            }
        }
        let result = result
            .and_then(|()| out.flush())
            .and_then(|()| out.get_ref().sync_data())
            .map_err(|e| format!("the audit log `{path}` cannot be written: {e}"));
        if let Err(e) = &result {
            tracing::error!("{e}");
            // Drop what could not be written so the next batch starts clean.
            let file = out
                .into_inner()
                .unwrap_or_else(|e| e.into_parts().1.into_parts().0);
            out = std::io::BufWriter::with_capacity(1 << 16, file);
        }
        for e in batch.drain(..) {
            if let Some(done) = e.done {
                let _ = done.send(result.clone());
            }
        }
    }
}
