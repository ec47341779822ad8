//! What a request does, as functions that each return one [`answer`](crate::answer) value:
//! [`decide`] (a fresh request runs the chain; a retry presents its token), [`manage`] (an
//! operator's approve or revoke: the policies' veto, then the change) and [`query`] (`list`,
//! `show`). Nothing here audits, counts or renders: the host does that once, from the answer.

pub(crate) mod decide;
pub(crate) mod manage;
pub(crate) mod query;

use crate::auth::ManagementToken;
use crate::clock::Clock;
use crate::pool::Pool;
use crate::tokens::TokenStore;
use std::sync::Arc;

/// What the flows read besides the chain: the store, the clock, and the host's settings.
pub(crate) struct Context {
    /// Where tokens are kept.
    pub(crate) store: Arc<dyn TokenStore>,
    /// "Now", for issuing, redeeming and expiring tokens.
    pub(crate) clock: Arc<dyn Clock>,
    /// Where policy decisions run, off the async workers.
    pub(crate) pool: Arc<Pool>,
    /// The longest a token lives.
    pub(crate) token_ttl_ms: u64,
    /// How long a client waits before retrying a pending request.
    pub(crate) retry_after_ms: u64,
    /// The only sandbox this host serves, when bound to one.
    pub(crate) expected_sandbox_id: Option<String>,
    /// The secret approve, revoke, list and show must carry, when configured (read once).
    pub(crate) management_token: Option<ManagementToken>,
    /// Live pending tokens one session may hold.
    pub(crate) max_pending_per_session: usize,
    /// Live pending tokens all sessions together may hold.
    pub(crate) max_pending: usize,
}
