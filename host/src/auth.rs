//! The operator's management token: a shared secret that approve, revoke, list and show must
//! present when the server is configured with one (newer firma endpoints require the same).
//!
//! The secret never leaves this type by accident: `Debug` prints `***`, equality is a
//! constant-time comparison of SHA-256 digests (so neither the content nor the length of the
//! configured secret leaks through timing), and nothing here formats it into a message.

use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A management token, configured or presented.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct ManagementToken(String);

impl ManagementToken {
    /// Wrap a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    /// The secret itself, for a client that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the secret is empty (a configuration error: it would match nothing useful).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Constant-time equality: both sides are hashed first, so the comparison takes the same
    /// time whatever the presented value's length or content.
    pub fn matches(&self, presented: &str) -> bool {
        let ours = Sha256::digest(self.0.as_bytes());
        let theirs = Sha256::digest(presented.as_bytes());
        ours.ct_eq(&theirs).into()
    }
}

impl std::fmt::Debug for ManagementToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ManagementToken(***)")
    }
}

impl PartialEq for ManagementToken {
    fn eq(&self, other: &Self) -> bool {
        self.matches(&other.0)
    }
}

impl Eq for ManagementToken {}

/// Why a management request was refused; the text is the answer's `reason` and never quotes
/// either secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The request carried no `management_token`.
    Missing,
    /// It carried one that does not match.
    Wrong,
}

impl Refusal {
    pub(crate) fn reason(self) -> &'static str {
        match self {
            Refusal::Missing => "this server requires a management token: send `management_token`",
            Refusal::Wrong => "the management token does not match",
        }
    }
}

/// Check a presented token against the configured one; no configured token admits everyone.
pub(crate) fn check(
    configured: Option<&ManagementToken>,
    presented: Option<&ManagementToken>,
) -> Result<(), Refusal> {
    match (configured, presented) {
        (None, _) => Ok(()),
        (Some(_), None) => Err(Refusal::Missing),
        (Some(ours), Some(theirs)) if ours.matches(&theirs.0) => Ok(()),
        (Some(_), Some(_)) => Err(Refusal::Wrong),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_secret() {
        let t = ManagementToken::new("hunter2-secret");
        assert_eq!(format!("{t:?}"), "ManagementToken(***)");
        assert!(!format!("{:?}", Some(t)).contains("hunter2"));
    }

    #[test]
    fn only_the_exact_secret_matches() {
        let t = ManagementToken::new("s3cret");
        assert!(t.matches("s3cret"));
        for wrong in ["", "s3cre", "s3cret ", "S3CRET", "s3cret\n"] {
            assert!(!t.matches(wrong), "{wrong:?}");
        }
    }

    #[test]
    fn check_table() {
        let ours = ManagementToken::new("a");
        let good = ManagementToken::new("a");
        let bad = ManagementToken::new("b");
        assert_eq!(check(None, None), Ok(()));
        assert_eq!(check(None, Some(&bad)), Ok(()));
        assert_eq!(check(Some(&ours), None), Err(Refusal::Missing));
        assert_eq!(check(Some(&ours), Some(&bad)), Err(Refusal::Wrong));
        assert_eq!(check(Some(&ours), Some(&good)), Ok(()));
    }
}
