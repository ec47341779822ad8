//! `PolicyHost`: where a request becomes a decision and a token changes state.
//!
//! A fresh request runs the policy chain; an `ask` issues a pending token. A retry presents its
//! token to the store, which applies the contract's rules atomically. An operator's approve or
//! revoke is first put to every policy's `manage` hook, then applied by the store.

use crate::action::Action;
use crate::chain::{Chain, ChainDecision, PolicyInfo};
use crate::clock::{Clock, SystemClock};
use crate::config::HostConfig;
use crate::decision::Verdict;
use crate::engine::Runtime;
use crate::error::Error;
use crate::tokens::{
    self, Operation, Outcome, Presented, Redemption, Token, TokenState, TokenStore,
};
use crate::wire::{
    DecideRequest, DecideResponse, ManageRequest, ManageResponse, Request, Response, WireDecision,
};
use std::sync::{Arc, RwLock};

/// The policy host a sidecar embeds: cheap to clone, shareable across tokio tasks, and its
/// `decide`/`manage` never panic and never fail: every problem is an answer with a reason.
#[derive(Clone)]
pub struct PolicyHost {
    inner: Arc<Inner>,
}

struct Inner {
    /// The chain in force; a reload swaps the `Arc`, and in-flight decisions keep the old one.
    chain: RwLock<Arc<Chain>>,
    store: Arc<dyn TokenStore>,
    clock: Arc<dyn Clock>,
    token_ttl_ms: u64,
    token_grace_ms: u64,
    retry_after_ms: u64,
    expected_sandbox_id: Option<String>,
}

/// Who sent a management request, when the transport knows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Operator {
    /// The peer's Unix UID.
    pub uid: Option<u32>,
}

impl PolicyHost {
    /// Load the configured chain and build a host over `store`, on the system clock.
    pub fn new(config: &HostConfig, store: Arc<dyn TokenStore>) -> Result<Self, Error> {
        Self::with_clock(config, store, Arc::new(SystemClock))
    }

    /// As [`PolicyHost::new`], with a clock of the caller's (tests drive expiry with one).
    pub fn with_clock(
        config: &HostConfig,
        store: Arc<dyn TokenStore>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, Error> {
        config.validate()?;
        let runtime = Arc::new(Runtime::new(&config.engine_options()).map_err(Error::Engine)?);
        let chain = Chain::load(&runtime, config)?;
        Ok(Self {
            inner: Arc::new(Inner {
                chain: RwLock::new(Arc::new(chain)),
                store,
                clock,
                token_ttl_ms: config.token_ttl_ms,
                token_grace_ms: config.token_grace_ms,
                retry_after_ms: config.retry_after_ms,
                expected_sandbox_id: config.expected_sandbox_id.clone(),
            }),
        })
    }

    /// The policies in force, in chain order.
    pub fn policies(&self) -> Vec<PolicyInfo> {
        self.chain().info()
    }

    fn chain(&self) -> Arc<Chain> {
        Arc::clone(&self.inner.chain.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Answer one request line (without its newline) as the socket and `gavel eval` do.
    pub async fn handle_line(&self, line: &[u8], operator: Operator) -> Response {
        match crate::wire::parse_request(line) {
            Ok(Request::Decide(r)) => Response::Decide(self.decide(&r).await),
            Ok(Request::Manage(r)) => Response::Manage(self.manage(&r, operator).await),
            Err(e) => e.response(),
        }
    }

    /// Decide a fresh request or a retry, per the wire contract's decision flow.
    pub async fn decide(&self, request: &DecideRequest) -> DecideResponse {
        let inner = &self.inner;
        let action = &request.action;
        if let Some(expected) = &inner.expected_sandbox_id
            && action.sandbox_id() != expected
        {
            return DecideResponse::deny(format!(
                "sandbox `{}` is not the sandbox this server is bound to",
                action.sandbox_id()
            ));
        }
        let fingerprint = action.fingerprint();
        match &request.approval_token {
            None => self.decide_fresh(action, fingerprint).await,
            Some(token_id) => {
                if let Some(client) = &request.request_fingerprint
                    && !client.eq_ignore_ascii_case(&fingerprint)
                {
                    return DecideResponse::deny(
                        "fingerprint mismatch: the request_fingerprint sent does not match the request",
                    );
                }
                self.retry(action, token_id, &fingerprint).await
            }
        }
    }

    async fn decide_fresh(&self, action: &Action, fingerprint: String) -> DecideResponse {
        let chain = self.chain();
        let decision: ChainDecision = chain.decide(action);
        match decision.verdict {
            Verdict::Allow => DecideResponse {
                decision: WireDecision::Allow,
                reason: Some(decision.reason),
                approval_token: None,
                retry_after_ms: None,
                suggestions: Vec::new(),
            },
            Verdict::Deny => DecideResponse::deny(decision.reason),
            Verdict::Ask => {
                let now = self.inner.clock.now_ms();
                let token = Token {
                    id: uuid::Uuid::new_v4().to_string(),
                    state: TokenState::Pending,
                    fingerprint,
                    action: action.clone(),
                    created_at_ms: now,
                    expires_at_ms: now.saturating_add(self.inner.token_ttl_ms),
                    policy: decision.policy,
                    rule_id: decision.rule_id,
                    reason: Some(decision.reason.clone()),
                };
                let id = token.id.clone();
                if let Err(e) = self.inner.store.insert(token).await {
                    return DecideResponse::deny(format!(
                        "a human must approve this, but no approval token could be issued: {e}"
                    ));
                }
                DecideResponse {
                    decision: WireDecision::PendingHitl,
                    reason: Some(decision.reason),
                    approval_token: Some(id),
                    retry_after_ms: Some(self.inner.retry_after_ms),
                    suggestions: DecideResponse::suggestions_from(decision.suggestions),
                }
            }
        }
    }

    async fn retry(&self, action: &Action, token_id: &str, fingerprint: &str) -> DecideResponse {
        let now = self.inner.clock.now_ms();
        let presented = Presented {
            fingerprint,
            action,
        };
        let redemption = match self.inner.store.redeem(token_id, &presented, now).await {
            Ok(r) => r,
            Err(e) => return DecideResponse::deny(e.to_string()),
        };
        let deny = |why: &str| DecideResponse::deny(format!("approval token {why}"));
        match redemption {
            Redemption::Allowed => DecideResponse {
                decision: WireDecision::Allow,
                reason: Some("approved by an operator; the approval token is now consumed".into()),
                approval_token: None,
                retry_after_ms: None,
                suggestions: Vec::new(),
            },
            Redemption::Pending => DecideResponse {
                decision: WireDecision::PendingHitl,
                reason: Some("still waiting for an operator to approve".into()),
                approval_token: Some(token_id.to_owned()),
                retry_after_ms: Some(self.inner.retry_after_ms),
                suggestions: Vec::new(),
            },
            Redemption::NotFound => deny("not found"),
            Redemption::AlreadyConsumed => deny("already consumed"),
            Redemption::Revoked => deny("revoked"),
            Redemption::Expired => deny("expired"),
            Redemption::FingerprintMismatch => {
                deny("fingerprint mismatch: the token was issued for another request")
            }
            Redemption::ContextMismatch => {
                deny("context mismatch: the token was issued to another session, sandbox or agent")
            }
        }
    }

    /// Approve or revoke a token, after every `manage` hook permits it.
    pub async fn manage(&self, request: &ManageRequest, operator: Operator) -> ManageResponse {
        let id = &request.token_id;
        let now = self.inner.clock.now_ms();
        let store = &self.inner.store;
        let token = match store.get(id, now).await {
            Ok(Some(token)) => token,
            Ok(None) => {
                return ManageResponse::new(Outcome::NotFound, format!("token `{id}` not found"));
            }
            Err(e) => return ManageResponse::new(Outcome::Denied, e.to_string()),
        };
        // Policies are asked only about a change of state; idempotent repeats and refusals the
        // table already decides need no one's permission.
        let changes = tokens::preview(&token, request.operation, now) == Outcome::Ok
            && !matches!(
                (token.state, request.operation),
                (TokenState::Approved, Operation::Approve)
                    | (TokenState::Revoked, Operation::Revoke)
            );
        if changes && let Err(veto) = self.chain().manage(request.operation, &token, operator.uid) {
            return ManageResponse::new(Outcome::Denied, veto);
        }
        match store.apply(id, request.operation, now).await {
            Ok(outcome) => ManageResponse {
                outcome,
                reason: outcome_reason(outcome, id),
            },
            Err(e) => ManageResponse::new(Outcome::Denied, e.to_string()),
        }
    }

    /// Forget tokens past their expiry by more than the grace window.
    pub async fn prune(&self) -> Result<usize, tokens::StoreError> {
        let now = self.inner.clock.now_ms();
        self.inner.store.prune(now, self.inner.token_grace_ms).await
    }

    /// Pending and approved tokens, oldest first.
    pub async fn live_tokens(&self) -> Result<Vec<Token>, tokens::StoreError> {
        self.inner.store.live(self.inner.clock.now_ms()).await
    }
}

fn outcome_reason(outcome: Outcome, id: &str) -> Option<String> {
    match outcome {
        Outcome::Ok => None,
        Outcome::NotFound => Some(format!("token `{id}` not found")),
        Outcome::AlreadyConsumed => Some(format!("token `{id}` was already consumed")),
        Outcome::AlreadyRevoked => Some(format!("token `{id}` was revoked")),
        Outcome::Expired => Some(format!("token `{id}` expired")),
        Outcome::UnsupportedAction | Outcome::Denied => None,
    }
}
