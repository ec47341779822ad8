//! Errors that are the caller's to fix: bad configuration, unreadable files, policies that do
//! not load. Decisions never use these; a decision that cannot be made is a `deny`.

use std::path::PathBuf;

/// Why a host could not be built or a policy could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is invalid; the message names the key or value.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A policy could not be loaded; the message names the policy and the cause.
    #[error("{0}")]
    Policy(String),
    /// A file could not be read or written.
    #[error("cannot access `{}`: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// The wasmtime engine could not be started.
    #[error("cannot start the WebAssembly engine: {0}")]
    Engine(String),
}
