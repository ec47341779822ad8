//! Opening the configured token store: the `[store]` section and the one function that reads it.

use crate::error::Error;
use serde::Deserialize;
use std::path::PathBuf;
use std::sync::Arc;

use super::{MemoryStore, RedisStore, SqliteStore, TokenStore};

/// `[store]`: where approval tokens are kept.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// The kind of store; `gavel serve` defaults to `sqlite`, `gavel eval` always uses memory.
    #[serde(default)]
    pub kind: Option<StoreKind>,
    /// `sqlite`: the directory holding `tokens.db` (default `$XDG_STATE_HOME/gavel`, else
    /// `~/.local/state/gavel`, else the socket's directory).
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// `sqlite`: `full` (default: fsync every commit) or `normal`.
    #[serde(default)]
    pub synchronous: super::Synchronous,
    /// `redis`: the server, for example `redis://127.0.0.1:6379/0`.
    #[serde(default)]
    pub url: Option<String>,
    /// `redis`: the prefix of every key (default `gavel:`), so fleets can share a server.
    #[serde(default)]
    pub prefix: Option<String>,
}

/// The kinds of token store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreKind {
    /// In process memory: lost on restart.
    Memory,
    /// An SQLite database on local disk: survives restarts and crashes.
    Sqlite,
    /// A Redis server shared by a fleet of sidecars.
    Redis,
}

/// Open the store `config` names (`default` when it names no kind). `grace_ms` is how long a
/// Redis store keeps a token past its expiry; `state_dir` gives SQLite's directory when `path`
/// is not set.
pub async fn open(
    config: &StoreConfig,
    default: StoreKind,
    grace_ms: u64,
    state_dir: impl FnOnce() -> PathBuf,
) -> Result<Arc<dyn TokenStore>, Error> {
    Ok(match config.kind.unwrap_or(default) {
        StoreKind::Memory => Arc::new(MemoryStore::new()),
        StoreKind::Sqlite => {
            let dir = config.path.clone().unwrap_or_else(state_dir);
            Arc::new(SqliteStore::open(&dir, config.synchronous)?)
        }
        StoreKind::Redis => {
            let url = config.url.as_deref().ok_or_else(|| {
                Error::config(
                    "`[store] kind = \"redis\"` needs `url`, for example `redis://127.0.0.1:6379/0`"
                        ,
                )
            })?;
            let prefix = config.prefix.as_deref().unwrap_or("gavel:");
            Arc::new(RedisStore::connect(url, prefix, grace_ms).await?)
        }
    })
}
