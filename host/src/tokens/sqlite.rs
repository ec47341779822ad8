//! The durable store: SQLite in WAL mode, one row per token, every transition one
//! `BEGIN IMMEDIATE` transaction, so another process sharing the file sees each change once.

use super::{Millis, Operation, Outcome, Presented, Redemption, StoreError, Token, TokenStore};
use cap_std::ambient_authority;
use cap_std::fs::{Dir, DirBuilder, OpenOptions};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The database file inside the store's directory.
pub const DB_FILE: &str = "tokens.db";

/// How hard SQLite works to make a commit survive power loss.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Synchronous {
    /// fsync at every commit: an acknowledged change survives power loss (default).
    #[default]
    Full,
    /// fsync at checkpoints: survives a crash of the process, not of the machine.
    Normal,
}

/// Tokens in an SQLite database.
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
}

fn fail(e: impl std::fmt::Display) -> StoreError {
    StoreError(e.to_string())
}

impl SqliteStore {
    /// Open (creating if missing) the store in directory `dir`. The directory is created private
    /// (0700) and opened through a capability handle; the database file is created 0600 there.
    pub fn open(dir: &Path, synchronous: Synchronous) -> Result<Self, crate::error::Error> {
        let io = |path: PathBuf| move |source| crate::error::Error::Io { path, source };
        let (parent, name) = match (dir.parent(), dir.file_name()) {
            (Some(p), Some(n)) => (
                if p.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    p
                },
                n,
            ),
            _ => (Path::new("/"), std::ffi::OsStr::new(".")),
        };
        let parent_dir = {
            std::fs::create_dir_all(parent).map_err(io(parent.to_owned()))?;
            Dir::open_ambient_dir(parent, ambient_authority()).map_err(io(parent.to_owned()))?
        };
        if name != "." {
            let mut builder = DirBuilder::new();
            cap_std::fs::DirBuilderExt::mode(&mut builder, 0o700);
            builder.recursive(true);
            parent_dir
                .create_dir_with(name, &builder)
                .map_err(io(dir.to_owned()))?;
        }
        let store_dir = if name == "." {
            parent_dir
        } else {
            parent_dir.open_dir(name).map_err(io(dir.to_owned()))?
        };
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true);
        cap_std::fs::OpenOptionsExt::mode(&mut options, 0o600);
        store_dir
            .open_with(DB_FILE, &options)
            .map_err(io(dir.join(DB_FILE)))?;

        let path = dir.join(DB_FILE);
        let conn = Connection::open(&path).map_err(|e| {
            crate::error::Error::Config(format!(
                "cannot open the token store `{}`: {e}",
                path.display()
            ))
        })?;
        let sync = match synchronous {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
        };
        conn.execute_batch(&format!(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = {sync};
             PRAGMA busy_timeout = 5000;
             CREATE TABLE IF NOT EXISTS tokens (
                 id TEXT PRIMARY KEY,
                 state TEXT NOT NULL,
                 created_at_ms INTEGER NOT NULL,
                 expires_at_ms INTEGER NOT NULL,
                 body TEXT NOT NULL
             );
             CREATE INDEX IF NOT EXISTS tokens_expiry ON tokens (expires_at_ms);"
        ))
        .map_err(|e| {
            crate::error::Error::Config(format!(
                "cannot prepare the token store `{}`: {e}",
                path.display()
            ))
        })?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Run `f` on the connection on a blocking thread: SQLite commits fsync, which must not
    /// stall the async workers.
    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            let mut conn = conn.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut conn)
        })
        .await
        .map_err(fail)?
    }
}

fn encode(token: &Token) -> Result<String, StoreError> {
    serde_json::to_string(token).map_err(fail)
}

fn decode(body: &str) -> Result<Token, StoreError> {
    serde_json::from_str(body).map_err(|e| StoreError(format!("a stored token is corrupt: {e}")))
}

fn load(tx: &rusqlite::Transaction<'_>, id: &str) -> Result<Option<Token>, StoreError> {
    let body: Option<String> = tx
        .query_row("SELECT body FROM tokens WHERE id = ?1", params![id], |r| {
            r.get(0)
        })
        .optional()
        .map_err(fail)?;
    body.as_deref().map(decode).transpose()
}

fn save(tx: &rusqlite::Transaction<'_>, token: &Token) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE tokens SET state = ?2, body = ?3 WHERE id = ?1",
        params![token.id, token.state.as_str(), encode(token)?],
    )
    .map_err(fail)?;
    Ok(())
}

/// Read a token, let `step` change it, write it back if it changed: one immediate transaction.
fn transition<T>(
    conn: &mut Connection,
    id: &str,
    missing: T,
    step: impl FnOnce(&mut Token) -> T,
) -> Result<T, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(fail)?;
    let Some(mut token) = load(&tx, id)? else {
        return Ok(missing);
    };
    let before = token.state;
    let result = step(&mut token);
    if token.state != before {
        save(&tx, &token)?;
    }
    tx.commit().map_err(fail)?;
    Ok(result)
}

#[async_trait::async_trait]
impl TokenStore for SqliteStore {
    async fn insert(&self, token: Token) -> Result<(), StoreError> {
        self.with(move |conn| {
            conn.execute(
                "INSERT INTO tokens (id, state, created_at_ms, expires_at_ms, body) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![token.id, token.state.as_str(), token.created_at_ms as i64, token.expires_at_ms as i64, encode(&token)?],
            )
            .map_err(fail)?;
            Ok(())
        })
        .await
    }

    async fn get(&self, id: &str, _now: Millis) -> Result<Option<Token>, StoreError> {
        let id = id.to_owned();
        self.with(move |conn| transition(conn, &id, None, |t| Some(t.clone())))
            .await
    }

    async fn redeem(
        &self,
        id: &str,
        presented: &Presented<'_>,
        now: Millis,
    ) -> Result<Redemption, StoreError> {
        let id = id.to_owned();
        let fingerprint = presented.fingerprint.to_owned();
        let action = presented.action.clone();
        self.with(move |conn| {
            let presented = Presented {
                fingerprint: &fingerprint,
                action: &action,
            };
            transition(conn, &id, Redemption::NotFound, |t| {
                super::redeem(t, &presented, now)
            })
        })
        .await
    }

    async fn apply(&self, id: &str, op: Operation, now: Millis) -> Result<Outcome, StoreError> {
        let id = id.to_owned();
        self.with(move |conn| {
            transition(conn, &id, Outcome::NotFound, |t| super::apply(t, op, now))
        })
        .await
    }

    async fn live(&self, now: Millis) -> Result<Vec<Token>, StoreError> {
        self.with(move |conn| {
            let mut stmt = conn
                .prepare(
                    "SELECT body FROM tokens WHERE state IN ('pending', 'approved') AND expires_at_ms > ?1
                     ORDER BY created_at_ms, id",
                )
                .map_err(fail)?;
            let rows = stmt.query_map(params![now as i64], |r| r.get::<_, String>(0)).map_err(fail)?;
            rows.map(|r| r.map_err(fail).and_then(|b| decode(&b))).collect()
        })
        .await
    }

    async fn prune(&self, now: Millis, grace_ms: Millis) -> Result<usize, StoreError> {
        self.with(move |conn| {
            let cutoff = now.saturating_sub(grace_ms) as i64;
            conn.execute(
                "DELETE FROM tokens WHERE expires_at_ms <= ?1",
                params![cutoff],
            )
            .map_err(fail)
        })
        .await
    }
}
