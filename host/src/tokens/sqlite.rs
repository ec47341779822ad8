//! The durable store: SQLite in WAL mode, one row per token, every transition one
//! `BEGIN IMMEDIATE` transaction, so another process sharing the file sees each change once.

use super::{
    Millis, Operation, Outcome, Presented, Redemption, StoreError, Token, TokenState, TokenStore,
};
use cap_std::ambient_authority;
use cap_std::fs::{Dir, DirBuilder, OpenOptions};
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};
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
    /// The connection every transition uses (SQLite allows one writer at a time anyway).
    conn: Arc<Mutex<Connection>>,
    /// A read-only connection for listing and counting, so a metrics scrape or `list` never
    /// waits for, or holds up, the connection decisions need (WAL readers do not block writers).
    reader: Arc<Mutex<Connection>>,
    guard: Arc<FileGuard>,
}

/// Notices the database file being deleted, replaced or corrupted under a running server, and
/// from then on fails every call closed: serving from an unlinked inode loses every later change
/// at restart and hides them from other processes sharing the path.
struct FileGuard {
    path: PathBuf,
    /// Device and inode of the file opened at start.
    identity: (u64, u64),
    /// Why the store was given up, once it was.
    broken: Mutex<Option<String>>,
}

impl FileGuard {
    fn broken(&self) -> Option<String> {
        self.broken
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Fail closed from now on; the first cause is the one every later call reports.
    fn give_up(&self, why: String) -> StoreError {
        let mut broken = self.broken.lock().unwrap_or_else(|p| p.into_inner());
        if broken.is_none() {
            tracing::error!("{why}");
        }
        StoreError(broken.get_or_insert(why).clone())
    }

    /// Fail unless the path still names the file opened at start (one `stat`, before every
    /// call).
    fn check(&self) -> Result<(), StoreError> {
        if let Some(why) = self.broken() {
            return Err(StoreError(why));
        }
        match std::fs::symlink_metadata(&self.path) {
            Ok(meta) if crate::files::identity(&meta) == self.identity => Ok(()),
            Ok(_) => Err(self.give_up(format!(
                "the token store `{}` was replaced while running; refusing to use it (restart \
                 gavel to open the file now at that path)",
                self.path.display()
            ))),
            Err(e) => Err(self.give_up(format!(
                "the token store `{}` was deleted while running ({e}); refusing to use it \
                 (restart gavel to create a new one)",
                self.path.display()
            ))),
        }
    }

    /// [`FileGuard::check`], plus an integrity check on a fresh connection (a connection in use
    /// would answer from its page cache and miss bytes changed on disk).
    fn verify(&self) -> Result<(), StoreError> {
        self.check()?;
        if let Err(e) = quick_check(&self.path) {
            return Err(self.give_up(e));
        }
        Ok(())
    }
}

/// `PRAGMA quick_check` on a new read-only connection to `path`.
fn quick_check(path: &Path) -> Result<(), String> {
    let corrupt = |detail: String| {
        format!(
            "the token store `{}` is corrupt ({detail}); refusing to use it (move it aside and \
             restart gavel)",
            path.display()
        )
    };
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| corrupt(e.to_string()))?;
    let problems: Vec<String> = conn
        .prepare("PRAGMA quick_check")
        .and_then(|mut stmt| {
            stmt.query_map([], |r| r.get::<_, String>(0))?
                .collect::<Result<_, _>>()
        })
        .map_err(|e| corrupt(e.to_string()))?;
    match problems.as_slice() {
        [ok] if ok == "ok" => Ok(()),
        _ => Err(corrupt(problems.join("; "))),
    }
}

fn fail(e: impl std::fmt::Display) -> StoreError {
    StoreError(e.to_string())
}

impl SqliteStore {
    /// Open (creating if missing) the store in directory `dir`. The directory is created private
    /// (0700) and opened through a capability handle; the database file is created 0600 there.
    /// A directory or database that another user owns or may write is refused (a planted row
    /// could approve anything), and so is a database that fails SQLite's integrity check.
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
        crate::files::check_private(dir, "the token store's directory")?;
        let path = dir.join(DB_FILE);
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true);
        cap_std::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = store_dir
            .open_with(DB_FILE, &options)
            .map_err(io(path.clone()))?
            .into_std();
        let meta = file.metadata().map_err(io(path.clone()))?;
        crate::files::check_private_meta(&path, &meta, "the token store")
            .map_err(crate::error::Error::config)?;
        // SQLite reads committed rows from the write-ahead log too: it is as trusted as the file.
        for side in ["-wal", "-shm"] {
            let side = dir.join(format!("{DB_FILE}{side}"));
            if side.exists() {
                crate::files::check_private(&side, "the token store's journal")?;
            }
        }
        quick_check(&path).map_err(crate::error::Error::config)?;

        let open = |flags| {
            Connection::open_with_flags(&path, flags).map_err(|e| {
                crate::error::Error::config(format!(
                    "cannot open the token store `{}`: {e}",
                    path.display()
                ))
            })
        };
        let conn = open(OpenFlags::default())?;
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
             CREATE INDEX IF NOT EXISTS tokens_expiry ON tokens (expires_at_ms);
             CREATE INDEX IF NOT EXISTS tokens_live ON tokens (state, expires_at_ms);"
        ))
        .and_then(|()| add_session_column(&conn))
        .map_err(|e| {
            crate::error::Error::config(format!(
                "cannot prepare the token store `{}`: {e}",
                path.display()
            ))
        })?;
        let reader = open(OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
        reader
            .execute_batch("PRAGMA busy_timeout = 5000;")
            .map_err(|e| crate::error::Error::config(e.to_string()))?;
        // The file SQLite opened must be the one checked above, not one swapped in since.
        let identity = crate::files::identity(&meta);
        let now = std::fs::symlink_metadata(&path).map_err(io(path.clone()))?;
        if crate::files::identity(&now) != identity {
            return Err(crate::error::Error::config(format!(
                "the token store `{}` was replaced while it was being opened",
                path.display()
            )));
        }
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            reader: Arc::new(Mutex::new(reader)),
            guard: Arc::new(FileGuard {
                path,
                identity,
                broken: Mutex::new(None),
            }),
        })
    }

    /// Run `f` on the connection on a blocking thread: SQLite commits fsync, which must not
    /// stall the async workers. The file is checked to still be ours first.
    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        Self::on(&self.conn, &self.guard, f).await
    }

    /// As [`SqliteStore::with`], on the read-only connection.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        Self::on(&self.reader, &self.guard, f).await
    }

    async fn on<T: Send + 'static>(
        conn: &Arc<Mutex<Connection>>,
        guard: &Arc<FileGuard>,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let conn = Arc::clone(conn);
        let guard = Arc::clone(guard);
        tokio::task::spawn_blocking(move || {
            guard.check()?;
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

/// The `session_id` column (with its index) that the pending bounds count by. A database made
/// before it existed gains it here, filled from the tokens' bodies once.
fn add_session_column(conn: &Connection) -> rusqlite::Result<()> {
    let has = conn
        .prepare("SELECT 1 FROM pragma_table_info('tokens') WHERE name = 'session_id'")?
        .exists([])?;
    if !has {
        conn.execute_batch(
            "BEGIN IMMEDIATE;
             ALTER TABLE tokens ADD COLUMN session_id TEXT;
             UPDATE tokens SET session_id = json_extract(body, '$.action.session_id')
                 WHERE json_valid(body);
             COMMIT;",
        )?;
    }
    conn.execute_batch(
        "CREATE INDEX IF NOT EXISTS tokens_session ON tokens (session_id, state, expires_at_ms);",
    )
}

#[async_trait::async_trait]
impl TokenStore for SqliteStore {
    async fn insert(&self, token: Token) -> Result<(), StoreError> {
        self.with(move |conn| {
            conn.execute(
                "INSERT INTO tokens (id, state, created_at_ms, expires_at_ms, body, session_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![token.id, token.state.as_str(), token.created_at_ms as i64, token.expires_at_ms as i64, encode(&token)?, token.action.session_id()],
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

    async fn set_state_if(
        &self,
        id: &str,
        from: TokenState,
        to: TokenState,
    ) -> Result<bool, StoreError> {
        let id = id.to_owned();
        self.with(move |conn| {
            transition(conn, &id, false, |t| {
                if t.state != from {
                    return false;
                }
                t.state = to;
                true
            })
        })
        .await
    }

    async fn counts(&self, now: Millis) -> Result<super::LiveCounts, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT state, COUNT(*) FROM tokens
                     WHERE state IN ('pending', 'approved') AND expires_at_ms > ?1
                     GROUP BY state",
                )
                .map_err(fail)?;
            let mut counts = super::LiveCounts::default();
            let rows = stmt
                .query_map(params![now as i64], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
                })
                .map_err(fail)?;
            for row in rows {
                let (state, n) = row.map_err(fail)?;
                let n = u64::try_from(n).unwrap_or(0);
                match state.as_str() {
                    "pending" => counts.pending = n,
                    _ => counts.approved = n,
                }
            }
            Ok(counts)
        })
        .await
    }

    /// Counted in SQL on the read connection, from indexes: an ask must not decode every live
    /// token (decoding each body's session took 28 ms per ask at 20,000 pending tokens).
    async fn pending(&self, session: &str, now: Millis) -> Result<super::PendingCount, StoreError> {
        let session = session.to_owned();
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT (SELECT COUNT(*) FROM tokens WHERE state = 'pending' AND expires_at_ms > ?1),
                            (SELECT COUNT(*) FROM tokens
                             WHERE session_id = ?2 AND state = 'pending' AND expires_at_ms > ?1)",
                )
                .map_err(fail)?;
            let (all, mine) = stmt
                .query_row(params![now as i64, session], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
                })
                .map_err(fail)?;
            Ok(super::PendingCount {
                session: usize::try_from(mine).unwrap_or(0),
                all: usize::try_from(all).unwrap_or(0),
            })
        })
        .await
    }

    async fn live(&self, now: Millis) -> Result<Vec<Token>, StoreError> {
        self.read(move |conn| {
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
        // The server prunes periodically: the time to look at the file as a whole too.
        let guard = Arc::clone(&self.guard);
        tokio::task::spawn_blocking(move || guard.verify())
            .await
            .map_err(fail)??;
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
