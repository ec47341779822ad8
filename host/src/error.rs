//! Errors that are the caller's to fix: bad configuration, unreadable files, policies that do
//! not load. Decisions never use these; a decision that cannot be made is a `deny`.

use crate::decision::FailureKind;
use std::path::PathBuf;

/// An underlying error of any kind, kept as an [`Error`]'s source.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a host could not be built or a policy could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is invalid; the message names the key or value.
    #[error("invalid configuration: {message}")]
    Config {
        /// The configuration key at fault (`token_ttl_ms`, `limits.max_stack_kib`, `sha256`
        /// of a policy, ...), when one is.
        key: Option<&'static str>,
        /// What is wrong, and what to do about it.
        message: String,
    },
    /// A policy could not be loaded.
    #[error("{message}")]
    Policy {
        /// The policy's name in the chain.
        name: String,
        /// What went wrong: unreadable, not matching its pin, not a component Gavel can run,
        /// or failing to start (its `init` rejected the configuration).
        kind: FailureKind,
        /// The whole message, naming the policy and the cause.
        message: String,
        /// The underlying error, when there is one: the I/O error of an unreadable file, the
        /// engine's error for a component that does not compile or instantiate.
        #[source]
        source: Option<BoxError>,
    },
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

impl Error {
    /// An invalid configuration that no single key is at fault for.
    pub fn config(message: impl Into<String>) -> Self {
        Error::Config {
            key: None,
            message: message.into(),
        }
    }

    /// An invalid value of configuration key `key`.
    pub fn config_key(key: &'static str, message: impl Into<String>) -> Self {
        Error::Config {
            key: Some(key),
            message: message.into(),
        }
    }

    /// Policy `name` could not be loaded, for `kind`; `message` names the policy and the cause.
    pub fn policy(name: &str, kind: FailureKind, message: impl Into<String>) -> Self {
        Error::Policy {
            name: name.to_owned(),
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// A [`Error::Policy`] with `cause` as its source (for [`std::error::Error::source`]). Only
    /// that variant takes one: `Io` names its own, and the others have none to keep.
    pub(crate) fn with_source(mut self, cause: impl Into<BoxError>) -> Self {
        debug_assert!(
            matches!(self, Error::Policy { .. }),
            "only a policy error takes a source"
        );
        if let Error::Policy { source, .. } = &mut self {
            *source = Some(cause.into());
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_keep_their_one_line_shape() {
        let e = Error::config_key("token_ttl_ms", "`token_ttl_ms` must be at least 1");
        assert_eq!(
            e.to_string(),
            "invalid configuration: `token_ttl_ms` must be at least 1"
        );
        assert!(matches!(
            e,
            Error::Config {
                key: Some("token_ttl_ms"),
                ..
            }
        ));
        let e = Error::policy(
            "p",
            FailureKind::Invalid,
            "policy `p` is not a valid component",
        );
        assert_eq!(e.to_string(), "policy `p` is not a valid component");
        assert!(
            matches!(e, Error::Policy { ref name, kind: FailureKind::Invalid, .. } if name == "p")
        );
        assert!(std::error::Error::source(&e).is_none());
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
        let e =
            Error::policy("p", FailureKind::Unreadable, "policy `p`: `path`: gone").with_source(io);
        let cause = std::error::Error::source(&e).expect("the cause is kept");
        assert_eq!(cause.to_string(), "gone");
        assert!(cause.downcast_ref::<std::io::Error>().is_some());
    }
}
