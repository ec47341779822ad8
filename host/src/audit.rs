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
    pub deny_code: Option<crate::decision::DenyCode>,
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
    /// The log is created 0600; an existing log, or its directory, that another user owns or
    /// may write is refused (forged or removed records would go unnoticed). A fragment left at
    /// the end by a crash mid-write (never acknowledged) is cut off so every line parses.
    pub fn open(path: &Path, mode: AuditFailure) -> Result<(Self, AuditWriter), Error> {
        let io = |source| Error::Io {
            path: path.to_owned(),
            source,
        };
        crate::files::check_private(crate::files::parent_of(path), "the audit log's directory")?;
        let (dir, name) = crate::files::open_parent(path).map_err(io)?;
        let mut options = OpenOptions::new();
        options.read(true).append(true).create(true);
        cap_std::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = dir.open_with(name, &options).map_err(io)?.into_std();
        // Checked on the open file: what we write to is what was checked.
        let meta = file.metadata().map_err(io)?;
        // A device or pipe (a log collector's) has no contents to forge or cut back; its
        // directory was checked above.
        let good = if meta.is_file() {
            crate::files::check_private_meta(path, &meta, "the audit log")
                .map_err(Error::config)?;
            let good = complete_length(&file).map_err(io)?;
            if good != meta.len() {
                tracing::warn!(
                    "the audit log `{}` ended in an unfinished record; cutting it off at byte \
                     {good}",
                    path.display()
                );
                file.set_len(good).map_err(io)?;
            }
            Some(good)
        } else {
            None
        };
        let (tx, rx) = mpsc::channel(QUEUE);
        let shown = path.display().to_string();
        let thread = std::thread::Builder::new()
            .name("gavel-audit".into())
            .spawn(move || write_loop(file, good, rx, &shown))
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

/// The length of `file` up to and including its last newline: the part made of whole lines.
fn complete_length(file: &std::fs::File) -> std::io::Result<u64> {
    use std::os::unix::fs::FileExt;
    let len = file.metadata()?.len();
    let mut end = len;
    let mut chunk = vec![0u8; 1 << 16];
    while end > 0 {
        let start = end.saturating_sub(chunk.len() as u64);
        let part = &mut chunk[..(end - start) as usize];
        file.read_exact_at(part, start)?;
        if let Some(i) = part.iter().rposition(|&b| b == b'\n') {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

/// Write one batch whole, or leave the log as it was before it: a batch that fails part-way
/// (a full disk) is cut back to `good`, the length that ends in the last acknowledged record,
/// so no fragment is ever glued to the next record.
fn write_batch(
    file: &mut std::fs::File,
    good: &mut Option<u64>,
    lines: &[Entry],
) -> std::io::Result<()> {
    if let Some(good) = good {
        // A failed cut-back earlier leaves the tail to remove before anything else is written.
        let len = file.metadata()?.len();
        if len > *good {
            file.set_len(*good)?;
        } else if len < *good {
            // Truncated under us (rotation by copy and truncate): continue from where it is.
            *good = len;
        }
    }
    let mut buf = Vec::with_capacity(lines.iter().map(|e| e.line.len() + 1).sum());
    for e in lines {
        buf.extend_from_slice(e.line.as_bytes());
        buf.push(b'\n');
    }
    let written = file.write_all(&buf).and_then(|()| file.sync_data());
    match (written, good) {
        (Ok(()), Some(good)) => {
            *good += buf.len() as u64;
            Ok(())
        }
        (Ok(()), None) => Ok(()),
        (Err(e), Some(good)) => {
            // Cutting back frees the space the fragment took, so it works on a full disk; if it
            // does not, the next batch retries it before writing.
            if let Err(cut) = file.set_len(*good) {
                tracing::error!("cannot cut an unfinished audit batch back: {cut}");
            }
            Err(e)
        }
        (Err(e), None) => Err(e),
    }
}

fn write_loop(
    mut file: std::fs::File,
    mut good: Option<u64>,
    mut rx: mpsc::Receiver<Entry>,
    path: &str,
) {
    let mut batch: Vec<Entry> = Vec::with_capacity(BATCH);
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(e) => batch.push(e),
                Err(_) => break,
            }
        }
        let result = write_batch(&mut file, &mut good, &batch)
            .map_err(|e| format!("the audit log `{path}` cannot be written: {e}"));
        if let Err(e) = &result {
            tracing::error!("{e}");
        }
        for e in batch.drain(..) {
            if let Some(done) = e.done {
                let _ = done.send(result.clone());
            }
        }
    }
}
