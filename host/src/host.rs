//! `PolicyHost`: where a request becomes a decision and a token changes state.
//!
//! A fresh request runs the policy chain; an `ask` issues a pending token. A retry presents its
//! token to the store, which applies the contract's rules atomically. An operator's approve or
//! revoke is first put to every policy's `manage` hook, then applied by the store. Every answer
//! is counted in the metrics and, when an audit log is configured, recorded before it is given.

use crate::action::Action;
use crate::audit::{AuditFailure, AuditLog, AuditRecord};
use crate::chain::{Chain, PolicyInfo};
use crate::clock::{Clock, SystemClock};
use crate::config::HostConfig;
use crate::decision::Verdict;
use crate::engine::Runtime;
use crate::error::Error;
use crate::events::{EventBus, TokenEvent, TokenEventKind, Watcher};
use crate::intercept::DenyCode;
use crate::metrics::Metrics;
use crate::pool::{Pool, Share};
use crate::tokens::{
    self, ApprovalInfo, Operation, Outcome, Presented, Redemption, Token, TokenState, TokenStore,
};
use crate::wire::{
    ApprovalRecord, DecideRequest, DecideResponse, ManageRequest, ManageResponse, Query,
    QueryRequest, QueryResponse, Request, Response, WatchRequest, WireDecision,
};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;

/// The policy host a sidecar embeds: cheap to clone, shareable across tokio tasks, and its
/// `decide`/`manage` never panic and never fail: every problem is an answer with a reason.
#[derive(Clone)]
pub struct PolicyHost {
    inner: Arc<Inner>,
}

struct Inner {
    /// The engine every chain of this host is compiled on; reloads reuse it.
    runtime: Arc<Runtime>,
    /// The chain in force; a reload swaps the `Arc`, and in-flight decisions keep the old one.
    chain: RwLock<Arc<Chain>>,
    store: Arc<dyn TokenStore>,
    clock: Arc<dyn Clock>,
    audit: Option<AuditLog>,
    metrics: Metrics,
    token_ttl_ms: u64,
    token_grace_ms: u64,
    retry_after_ms: u64,
    expected_sandbox_id: Option<String>,
    /// Replace arguments by a count in audit records and approval records.
    redact_args: bool,
    /// The secret approve, revoke, list and show must carry, when configured (read once).
    management_token: Option<crate::auth::ManagementToken>,
    /// Where policy decisions run, off the async workers.
    pool: Arc<Pool>,
    /// The share of callers that bring none of their own (interceptors, embedders).
    common_share: Share,
    /// Live pending tokens one session may hold, and all sessions together.
    max_pending_per_session: usize,
    max_pending: usize,
    /// Where token state changes are published for watchers.
    events: EventBus,
    /// When `prune` last looked for tokens that lapsed (0: never), so each lapse is announced
    /// once.
    lapsed_until_ms: AtomicU64,
}

/// Who sent a request, when the transport knows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Operator {
    /// The peer's Unix UID.
    pub uid: Option<u32>,
}

/// Builds a [`PolicyHost`]: the chain from a configuration, plus a store, a clock and an audit
/// log of the caller's choosing.
pub struct HostBuilder<'c> {
    config: &'c HostConfig,
    store: Option<Arc<dyn TokenStore>>,
    clock: Arc<dyn Clock>,
    audit: Option<AuditLog>,
}

impl HostBuilder<'_> {
    /// Keep tokens in `store` (default: in memory).
    pub fn store(mut self, store: Arc<dyn TokenStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// Read time from `clock` (default: the system clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Record every answer in `audit`.
    pub fn audit(mut self, audit: AuditLog) -> Self {
        self.audit = Some(audit);
        self
    }

    /// Load the chain and build the host.
    pub fn build(self) -> Result<PolicyHost, Error> {
        let config = self.config;
        config.validate()?;
        let runtime = Arc::new(Runtime::new(&config.engine_options()).map_err(Error::Engine)?);
        let chain = Chain::load(&runtime, config)?;
        let management_token = config.resolve_management_token()?;
        Ok(PolicyHost {
            inner: Arc::new(Inner {
                runtime,
                chain: RwLock::new(Arc::new(chain)),
                store: self
                    .store
                    .unwrap_or_else(|| Arc::new(tokens::MemoryStore::new())),
                clock: self.clock,
                audit: self.audit,
                metrics: Metrics::default(),
                token_ttl_ms: config.token_ttl_ms,
                token_grace_ms: config.token_grace_ms,
                retry_after_ms: config.retry_after_ms,
                expected_sandbox_id: config.expected_sandbox_id.clone(),
                redact_args: config.audit_redact_args,
                management_token,
                pool: Arc::new(Pool::new(config.policy_threads)),
                common_share: Share::default(),
                max_pending_per_session: config.max_pending_per_session,
                max_pending: config.max_pending,
                events: EventBus::default(),
                lapsed_until_ms: AtomicU64::new(0),
            }),
        })
    }
}

/// A token state change an operator asked for, decided but not yet applied.
#[derive(Clone)]
struct Change {
    from: TokenState,
    to: TokenState,
    transition: &'static str,
    /// The token's request, for the event announcing the change.
    action: Action,
}

/// What happened besides the answer, for the audit record and metrics.
#[derive(Default)]
struct Trail {
    policy: Option<Arc<str>>,
    rule: Option<String>,
    token_id: Option<String>,
    transition: Option<&'static str>,
    failure: Option<&'static str>,
    /// Why a deny is a deny, for the body an interceptor answers with.
    code: Option<DenyCode>,
    /// The chain's classification of a fresh request.
    effect: Option<crate::decision::EffectClass>,
    risk: Option<crate::decision::RiskClass>,
}

impl Trail {
    fn denied(code: DenyCode) -> Self {
        Self {
            code: Some(code),
            ..Self::default()
        }
    }
}

impl PolicyHost {
    /// A builder over `config`.
    pub fn builder(config: &HostConfig) -> HostBuilder<'_> {
        HostBuilder {
            config,
            store: None,
            clock: Arc::new(SystemClock),
            audit: None,
        }
    }

    /// Load the configured chain and build a host over `store`, on the system clock.
    pub fn new(config: &HostConfig, store: Arc<dyn TokenStore>) -> Result<Self, Error> {
        Self::builder(config).store(store).build()
    }

    /// As [`PolicyHost::new`], with a clock of the caller's (tests drive expiry with one).
    pub fn with_clock(
        config: &HostConfig,
        store: Arc<dyn TokenStore>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, Error> {
        Self::builder(config).store(store).clock(clock).build()
    }

    /// The policies in force, in chain order.
    pub fn policies(&self) -> Vec<PolicyInfo> {
        self.chain().info()
    }

    /// Run the chain on an action as a fresh request would, without issuing a token, auditing or
    /// counting: a dry run that shows which policy and rule decide, and their suggestions.
    pub fn evaluate(&self, action: &Action) -> crate::chain::ChainDecision {
        self.chain().decide(action)
    }

    /// The host's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    fn chain(&self) -> Arc<Chain> {
        Arc::clone(&self.inner.chain.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Build the chain of `config` (load, compile, configure every policy) and swap it in.
    /// On any failure the old chain stays in force. Decisions already running finish on the
    /// chain they started with. Blocking: call it off the async runtime's workers.
    pub fn reload(&self, config: &HostConfig) -> Result<Vec<PolicyInfo>, Error> {
        let built = config
            .validate()
            .and_then(|()| Chain::load(&self.inner.runtime, config));
        self.inner.metrics.reload(built.is_ok());
        let chain = built?;
        let info = chain.info();
        *self.inner.chain.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(chain);
        Ok(info)
    }

    /// Answer one request line (without its newline) as the socket and `gavel eval` do.
    pub async fn handle_line(&self, line: &[u8], operator: Operator) -> Response {
        match crate::wire::parse_request(line) {
            Ok(Request::Decide(r)) => Response::Decide(self.decide_as_peer(&r, operator).await),
            Ok(Request::Manage(r)) => Response::Manage(self.manage(&r, operator).await),
            Ok(Request::Query(q)) => Response::Query(Box::new(self.query_as(&q, operator).await)),
            // One answer per line here: a stream of events needs a socket connection.
            Ok(Request::Watch(_)) => Response::Manage(ManageResponse::new(
                Outcome::UnsupportedAction,
                "`watch` streams events over a socket connection (`gavel token watch`)",
            )),
            Err(e) => e.response_to(line),
        }
    }

    /// Decide a fresh request or a retry, per the wire contract's decision flow.
    pub async fn decide(&self, request: &DecideRequest) -> DecideResponse {
        self.decide_as_peer(request, Operator::default()).await
    }

    /// As [`PolicyHost::decide`], recording the peer's UID in the audit record.
    pub async fn decide_as_peer(&self, request: &DecideRequest, peer: Operator) -> DecideResponse {
        self.decide_coded(request, peer).await.0
    }

    /// A fresh share of the policy pool, for one client (the server keeps one per connection).
    pub(crate) fn share(&self) -> Share {
        Share::default()
    }

    /// As [`PolicyHost::decide_as_peer`], queueing policy calls on `share`.
    pub(crate) async fn decide_shared(
        &self,
        request: &DecideRequest,
        peer: Operator,
        share: &Share,
    ) -> DecideResponse {
        self.decide_on(request, peer, share).await.0
    }

    /// Decide, and say why a deny is one (for interceptors' bodies).
    pub(crate) async fn decide_coded(
        &self,
        request: &DecideRequest,
        peer: Operator,
    ) -> (DecideResponse, Option<DenyCode>) {
        self.decide_on(request, peer, &self.inner.common_share)
            .await
    }

    async fn decide_on(
        &self,
        request: &DecideRequest,
        peer: Operator,
        share: &Share,
    ) -> (DecideResponse, Option<DenyCode>) {
        let started = Instant::now();
        let chain = self.chain();
        let (mut response, mut trail) = self.decide_inner(request, &chain, share).await;
        let metrics = &self.inner.metrics;
        if let (Some(policy), Some(kind)) = (&trail.policy, trail.failure) {
            metrics.failure(policy, kind);
        }
        let mut recorded = true;
        if let Some(audit) = &self.inner.audit {
            let record = self.decision_record(request, &response, &trail, &chain, peer);
            if let Err(e) = audit.record(&record).await
                && audit.mode() == AuditFailure::Deny
            {
                response = DecideResponse::deny(format!(
                    "denied because the decision could not be audited: {e}"
                ));
                trail.code = Some(DenyCode::Unavailable);
                self.undo_unrecorded(&trail).await;
                recorded = false;
            }
        }
        if let (true, Some(id), Some(transition)) = (recorded, &trail.token_id, trail.transition) {
            self.announce(id, transition, &request.action, self.inner.clock.now_ms());
        }
        let code = (response.decision == WireDecision::Deny)
            .then(|| trail.code.unwrap_or(DenyCode::PolicyDenied));
        if let Some(code) = code {
            response.attach_denial(request.action.kind(), Some(&request.action), code);
        }
        if matches!(request.action, Action::LocalExec(_)) {
            // firma-run rejects any field beyond its four, and would fail closed.
            response.keep_contract_fields();
        }
        let verdict = match response.decision {
            WireDecision::Allow => "allow",
            WireDecision::Deny => "deny",
            WireDecision::PendingHitl => "pending_hitl",
        };
        // A retry is decided by its token, not by a policy.
        static NONE: std::sync::LazyLock<Arc<str>> = std::sync::LazyLock::new(|| Arc::from("none"));
        metrics.decision(
            request.action.kind(),
            verdict,
            trail.policy.clone().unwrap_or_else(|| Arc::clone(&NONE)),
            started.elapsed().as_secs_f64(),
        );
        (response, code)
    }

    /// A retry consumed its token, or a fresh request issued one, but the record of it could
    /// not be written and the answer became a deny: give the token back (approved again), or
    /// withdraw the token no one was told of, so the store does not hold what the log lacks.
    async fn undo_unrecorded(&self, trail: &Trail) {
        let (Some(id), Some(transition)) = (&trail.token_id, trail.transition) else {
            return;
        };
        let (from, to) = match transition {
            "consumed" => (TokenState::Consumed, TokenState::Approved),
            "issued" => (TokenState::Pending, TokenState::Revoked),
            _ => return,
        };
        if let Err(e) = self.inner.store.set_state_if(id, from, to).await {
            tracing::error!(
                token = id.as_str(),
                "a token change that could not be audited could not be undone either: {e}"
            );
        }
    }

    async fn decide_inner(
        &self,
        request: &DecideRequest,
        chain: &Arc<Chain>,
        share: &Share,
    ) -> (DecideResponse, Trail) {
        let inner = &self.inner;
        let action = &request.action;
        if let Some(expected) = &inner.expected_sandbox_id
            && action.sandbox_id() != expected
        {
            let reason = format!(
                "sandbox `{}` is not the sandbox this server is bound to",
                action.sandbox_id()
            );
            return (
                DecideResponse::deny(reason),
                Trail::denied(DenyCode::SandboxMismatch),
            );
        }
        match &request.approval_token {
            // The fingerprint is computed only when a token needs it.
            None => self.decide_fresh(action, chain, share).await,
            Some(token_id) => {
                let fingerprint = action.fingerprint();
                // Exact, as firma compares: uppercase hex is a mismatch.
                if let Some(client) = &request.request_fingerprint
                    && *client != fingerprint
                {
                    let reason = "fingerprint mismatch: the request_fingerprint sent does not match the request";
                    return (
                        DecideResponse::deny(reason),
                        Trail::denied(DenyCode::ApprovalInvalid),
                    );
                }
                self.retry(action, token_id, &fingerprint).await
            }
        }
    }

    async fn decide_fresh(
        &self,
        action: &Action,
        chain: &Arc<Chain>,
        share: &Share,
    ) -> (DecideResponse, Trail) {
        let call = {
            let (chain, action) = (Arc::clone(chain), action.clone());
            move || chain.decide(&action)
        };
        let decision = match self.inner.pool.run(share, call).await {
            Ok(decision) => decision,
            Err(e) => {
                let mut trail = Trail::denied(DenyCode::PolicyFailed);
                trail.failure = Some("trap");
                return (DecideResponse::deny(e.0), trail);
            }
        };
        let mut trail = Trail {
            policy: Some(Arc::clone(&decision.policy)),
            rule: decision.rule_id.clone(),
            failure: decision.failure,
            effect: Some(decision.effect),
            risk: Some(decision.risk),
            ..Trail::default()
        };
        let response = match decision.verdict {
            Verdict::Allow => DecideResponse::new(WireDecision::Allow, decision.reason),
            Verdict::Deny => {
                trail.code = Some(if decision.failure.is_some() {
                    DenyCode::PolicyFailed
                } else {
                    DenyCode::PolicyDenied
                });
                DecideResponse::deny(decision.reason)
            }
            Verdict::Ask => {
                let now = self.inner.clock.now_ms();
                if let Some(reason) = self.pending_bound(action, now).await {
                    trail.code = Some(DenyCode::Unavailable);
                    return (DecideResponse::deny(reason), trail);
                }
                // A policy may give a human less time than the host's token lifetime, not more.
                let lifetime = decision
                    .approval_timeout_ms
                    .map_or(self.inner.token_ttl_ms, |t| t.min(self.inner.token_ttl_ms));
                let suggestions = DecideResponse::suggestions_from(decision.suggestions);
                let token = Token {
                    id: uuid::Uuid::new_v4().to_string(),
                    state: TokenState::Pending,
                    fingerprint: action.fingerprint(),
                    // Secrets are masked before anything is stored: the fingerprint above binds
                    // the token to the full request, and retries are checked against it.
                    action: crate::redact::action(action),
                    created_at_ms: now,
                    expires_at_ms: now.saturating_add(lifetime),
                    policy: decision.policy.to_string(),
                    rule_id: decision.rule_id,
                    // A policy's reason may quote the request (http-rules names the URL).
                    reason: Some(crate::redact::text(&decision.reason)),
                    approval: ApprovalInfo {
                        effect: Some(decision.effect),
                        risk: Some(decision.risk),
                        policy_refs: decision.policy_refs,
                        chain_digest: Some(chain.chain_digest().to_owned()),
                        // Operators see these in `list`/`show`; a rule quotes the command, so
                        // it is masked like the summary.
                        suggestions: suggestions
                            .iter()
                            .map(|group| {
                                group
                                    .iter()
                                    .map(|s| crate::wire::WireSuggestion {
                                        rule: crate::redact::text(&s.rule),
                                        label: crate::redact::text(&s.label),
                                    })
                                    .collect()
                            })
                            .collect(),
                    },
                };
                let id = token.id.clone();
                if let Err(e) = self.inner.store.insert(token).await {
                    let reason = format!(
                        "a human must approve this, but no approval token could be issued: {e}"
                    );
                    trail.code = Some(DenyCode::Unavailable);
                    return (DecideResponse::deny(reason), trail);
                }
                trail.token_id = Some(id.clone());
                trail.transition = Some("issued");
                DecideResponse {
                    approval_token: Some(id),
                    retry_after_ms: Some(self.inner.retry_after_ms),
                    suggestions,
                    ..DecideResponse::new(WireDecision::PendingHitl, decision.reason)
                }
            }
        };
        (response, trail)
    }

    async fn retry(
        &self,
        action: &Action,
        token_id: &str,
        fingerprint: &str,
    ) -> (DecideResponse, Trail) {
        let now = self.inner.clock.now_ms();
        let presented = Presented {
            fingerprint,
            action,
        };
        let mut trail = Trail {
            token_id: Some(token_id.to_owned()),
            code: Some(DenyCode::ApprovalInvalid),
            ..Trail::default()
        };
        let redemption = match self.inner.store.redeem(token_id, &presented, now).await {
            Ok(r) => r,
            Err(e) => {
                trail.code = Some(DenyCode::Unavailable);
                return (DecideResponse::deny(e.to_string()), trail);
            }
        };
        let deny = |why: &str| DecideResponse::deny(format!("approval token {why}"));
        let response = match redemption {
            Redemption::Allowed => {
                trail.transition = Some("consumed");
                DecideResponse::new(
                    WireDecision::Allow,
                    "approved by an operator; the approval token is now consumed",
                )
            }
            Redemption::Pending => DecideResponse {
                approval_token: Some(token_id.to_owned()),
                retry_after_ms: Some(self.inner.retry_after_ms),
                ..DecideResponse::new(
                    WireDecision::PendingHitl,
                    "still waiting for an operator to approve",
                )
            },
            Redemption::NotFound => deny("not found"),
            Redemption::AlreadyConsumed => deny("already consumed"),
            Redemption::Revoked => deny("revoked"),
            Redemption::Expired => {
                trail.transition = Some("expired");
                deny("expired")
            }
            Redemption::FingerprintMismatch => {
                deny("fingerprint mismatch: the token was issued for another request")
            }
            Redemption::ContextMismatch => {
                deny("context mismatch: the token was issued to another session, sandbox or agent")
            }
        };
        (response, trail)
    }

    /// Approve or revoke a token, after every `manage` hook permits it. The change is applied
    /// only once its audit record is written (audit first, then state), so the store never holds
    /// a change the log does not.
    pub async fn manage(&self, request: &ManageRequest, operator: Operator) -> ManageResponse {
        let (mut response, mut change) = self.manage_inner(request, operator).await;
        let action = match request.operation {
            Operation::Approve => "local.exec.approve",
            Operation::Revoke => "local.exec.revoke",
        };
        let record = |response: &ManageResponse, transition: Option<&str>| AuditRecord {
            time_ms: self.inner.clock.now_ms(),
            id: uuid::Uuid::new_v4().to_string(),
            action: action.into(),
            verdict: outcome_name(response.outcome).into(),
            reason: response.reason.as_deref().map(crate::redact::text),
            policies: self.chain().digests().to_vec(),
            token_id: Some(request.token_id.clone()),
            transition: transition.map(Into::into),
            peer_uid: operator.uid,
            ..AuditRecord::default()
        };
        let audit = self.inner.audit.as_ref();
        if let Some(audit) = audit
            && let Err(e) = audit
                .record(&record(&response, change.as_ref().map(|c| c.transition)))
                .await
            && audit.mode() == AuditFailure::Deny
        {
            change = None;
            response = ManageResponse::new(
                Outcome::Denied,
                format!("the operation could not be audited ({e}); nothing was changed"),
            );
        }
        if let Some(c) = change {
            let conflict = match self
                .inner
                .store
                .set_state_if(&request.token_id, c.from, c.to)
                .await
            {
                Ok(true) => {
                    self.announce(
                        &request.token_id,
                        c.transition,
                        &c.action,
                        self.inner.clock.now_ms(),
                    );
                    None
                }
                Ok(false) => Some(format!(
                    "token `{}` changed while this operation was being recorded; nothing was \
                     changed, try again",
                    request.token_id
                )),
                Err(e) => Some(format!("{e}; nothing was changed")),
            };
            if let Some(why) = conflict {
                response = ManageResponse::new(Outcome::Denied, why);
                // The record above announced a change that did not happen: say so.
                if let Some(audit) = audit {
                    let _ = audit.record(&record(&response, None)).await;
                }
            }
        }
        self.inner
            .metrics
            .management(action, outcome_name(response.outcome));
        response
    }

    async fn manage_inner(
        &self,
        request: &ManageRequest,
        operator: Operator,
    ) -> (ManageResponse, Option<Change>) {
        if let Err(refusal) = crate::auth::check(
            self.inner.management_token.as_ref(),
            request.management_token.as_ref(),
        ) {
            return (
                ManageResponse::new(Outcome::Unauthorized, refusal.reason()),
                None,
            );
        }
        let id = &request.token_id;
        let now = self.inner.clock.now_ms();
        let store = &self.inner.store;
        let token = match store.get(id, now).await {
            Ok(Some(token)) => token,
            Ok(None) => {
                return (
                    ManageResponse {
                        outcome: Outcome::NotFound,
                        reason: outcome_reason(Outcome::NotFound, id),
                    },
                    None,
                );
            }
            Err(e) => return (ManageResponse::new(Outcome::Denied, e.to_string()), None),
        };
        // Policies are asked only about a change of state; idempotent repeats and refusals the
        // table already decides need no one's permission.
        let changes = tokens::preview(&token, request.operation, now) == Outcome::Ok
            && !matches!(
                (token.state, request.operation),
                (TokenState::Approved, Operation::Approve)
                    | (TokenState::Revoked, Operation::Revoke)
            );
        if changes {
            // Hooks are policy calls: off the async workers, but never queued behind decisions.
            let (chain, op, uid) = (self.chain(), request.operation, operator.uid);
            let asked = token.clone();
            let verdict = tokio::task::spawn_blocking(move || chain.manage(op, &asked, uid))
                .await
                .unwrap_or_else(|e| Err(format!("the manage hooks failed on their thread: {e}")));
            if let Err(veto) = verdict {
                return (ManageResponse::new(Outcome::Denied, veto), None);
            }
        }
        // Decided here on the token as read; applied by `manage` after the record is written,
        // with a compare-and-set on the state read.
        let mut after = token.clone();
        let outcome = tokens::apply(&mut after, request.operation, now);
        // A change of state is applied even when the answer is a refusal: a token found past
        // its expiry is marked expired.
        let change = (after.state != token.state).then(|| Change {
            from: token.state,
            to: after.state,
            transition: match after.state {
                TokenState::Expired => "expired",
                TokenState::Revoked => "revoked",
                _ => "approved",
            },
            action: token.action.clone(),
        });
        (
            ManageResponse {
                outcome,
                reason: outcome_reason(outcome, id),
            },
            change,
        )
    }

    /// Answer `local.exec.list` or `local.exec.show` as sent over a socket: when a management
    /// token is configured, a request without the right one is refused and audited.
    pub async fn query_as(&self, request: &QueryRequest, operator: Operator) -> QueryResponse {
        let Err(refusal) = crate::auth::check(
            self.inner.management_token.as_ref(),
            request.management_token.as_ref(),
        ) else {
            return self.query(&request.query).await;
        };
        let (action, token_id) = match &request.query {
            Query::List => ("local.exec.list", None),
            Query::Show(id) => ("local.exec.show", Some(id.clone())),
        };
        let refused = ManageResponse::new(Outcome::Unauthorized, refusal.reason());
        let refused = self.refusal(action, token_id, operator, refused).await;
        QueryResponse {
            outcome: refused.outcome,
            reason: refused.reason,
            tokens: None,
            token: None,
        }
    }

    /// Record a management request refused before it reached the tokens (unauthorized, or
    /// sent to the governance socket when management has its own), and count it. When the
    /// record cannot be written in `deny` mode the answer says so, still refusing.
    pub(crate) async fn refusal(
        &self,
        action: &str,
        token_id: Option<String>,
        operator: Operator,
        mut response: ManageResponse,
    ) -> ManageResponse {
        if let Some(audit) = &self.inner.audit {
            let record = AuditRecord {
                time_ms: self.inner.clock.now_ms(),
                id: uuid::Uuid::new_v4().to_string(),
                action: action.into(),
                verdict: outcome_name(response.outcome).into(),
                reason: response.reason.clone(),
                policies: self.chain().digests().to_vec(),
                token_id,
                peer_uid: operator.uid,
                ..AuditRecord::default()
            };
            if let Err(e) = audit.record(&record).await
                && audit.mode() == AuditFailure::Deny
            {
                response = ManageResponse::new(
                    Outcome::Denied,
                    format!(
                        "the refusal could not be audited ({e}); the request was refused: {}",
                        response.reason.as_deref().unwrap_or_default()
                    ),
                );
            }
        }
        self.inner
            .metrics
            .management(action, outcome_name(response.outcome));
        response
    }

    /// Answer `local.exec.list` or `local.exec.show` for an in-process caller (no management
    /// token is asked for: the caller already holds the host).
    pub async fn query(&self, query: &Query) -> QueryResponse {
        let now = self.inner.clock.now_ms();
        let chain = self.chain();
        let current = chain.chain_digest();
        let store = &self.inner.store;
        let fail = |e: tokens::StoreError| QueryResponse {
            outcome: Outcome::Denied,
            reason: Some(e.to_string()),
            tokens: None,
            token: None,
        };
        match query {
            Query::List => match store.live(now).await {
                Ok(live) => QueryResponse {
                    outcome: Outcome::Ok,
                    reason: None,
                    tokens: Some(live.iter().map(|t| self.record(t, now, current)).collect()),
                    token: None,
                },
                Err(e) => fail(e),
            },
            Query::Show(id) => match store.get(id, now).await {
                Ok(Some(t)) => QueryResponse {
                    outcome: Outcome::Ok,
                    reason: None,
                    tokens: None,
                    token: Some(self.record(&t, now, current)),
                },
                Ok(None) => QueryResponse {
                    outcome: Outcome::NotFound,
                    reason: outcome_reason(Outcome::NotFound, id),
                    tokens: None,
                    token: None,
                },
                Err(e) => fail(e),
            },
        }
    }

    fn record(&self, t: &Token, now: u64, current_chain: &str) -> ApprovalRecord {
        // A store does not mark a lapsed token on read; show it as what it is now.
        let state = t.state_at(now);
        let allowed: &[&str] = match state {
            TokenState::Pending => &["approve", "revoke"],
            TokenState::Approved => &["revoke"],
            _ => &[],
        };
        ApprovalRecord {
            token_id: t.id.clone(),
            state,
            created_at_ms: t.created_at_ms,
            expires_at_ms: t.expires_at_ms,
            timeout_ms: t.expires_at_ms.saturating_sub(t.created_at_ms),
            remaining_ms: t.expires_at_ms.saturating_sub(now),
            action: t.action.kind().into(),
            summary: self.summary(&t.action),
            effect_class: t
                .approval
                .effect
                .unwrap_or_else(|| t.action.default_effect()),
            risk_class: t.approval.risk.unwrap_or_else(|| {
                t.approval
                    .effect
                    .unwrap_or_else(|| t.action.default_effect())
                    .default_risk()
            }),
            session_id: t.action.session_id().into(),
            sandbox_id: t.action.sandbox_id().into(),
            agent_id: t.action.agent_id().map(Into::into),
            fingerprint: t.fingerprint.clone(),
            policy: t.policy.clone(),
            rule: t.rule_id.clone(),
            reason: t.reason.clone(),
            allowed_decisions: allowed.iter().map(|s| (*s).to_owned()).collect(),
            policy_refs: t.approval.policy_refs.clone(),
            chain_digest: t.approval.chain_digest.clone(),
            chain_current: t.approval.chain_digest.as_deref() == Some(current_chain),
            suggestions: t.approval.suggestions.clone(),
        }
    }

    /// The request as operators and the audit log see it: secrets masked always; with
    /// `audit_redact_args`, arguments, tool input, query and headers left out altogether.
    fn summary(&self, action: &Action) -> String {
        if !self.inner.redact_args {
            return crate::redact::summary(action);
        }
        match action {
            Action::LocalExec(e) => format!("{} [{} args redacted]", e.executable, e.args.len()),
            Action::ToolCall(t) => format!("{}([{} bytes redacted])", t.tool, t.arg.len()),
            Action::HttpRequest(h) => format!(
                "{} {}://{}:{}{} [query and {} headers redacted]",
                h.method,
                h.scheme,
                h.host,
                h.port,
                crate::redact::text(&h.path),
                h.headers.len()
            ),
            Action::Connect(_) | Action::Upgrade(_) => crate::redact::summary(action),
        }
    }

    fn decision_record(
        &self,
        request: &DecideRequest,
        response: &DecideResponse,
        trail: &Trail,
        chain: &Chain,
        peer: Operator,
    ) -> AuditRecord {
        let action = &request.action;
        AuditRecord {
            time_ms: self.inner.clock.now_ms(),
            id: uuid::Uuid::new_v4().to_string(),
            action: action.kind().into(),
            summary: Some(self.summary(action)),
            session_id: Some(action.session_id().into()),
            sandbox_id: Some(action.sandbox_id().into()),
            agent_id: action.agent_id().map(Into::into),
            fingerprint: Some(action.fingerprint()),
            verdict: match response.decision {
                WireDecision::Allow => "allow",
                WireDecision::Deny => "deny",
                WireDecision::PendingHitl => "pending_hitl",
            }
            .into(),
            reason: response.reason.as_deref().map(crate::redact::text),
            policy: trail.policy.as_deref().map(str::to_owned),
            rule: trail.rule.clone(),
            policies: chain.digests().to_vec(),
            chain_digest: Some(chain.chain_digest().to_owned()),
            effect_class: trail.effect,
            risk_class: trail.risk,
            deny_code: trail
                .code
                .filter(|_| response.decision == WireDecision::Deny),
            token_id: trail.token_id.clone(),
            transition: trail.transition.map(Into::into),
            peer_uid: peer.uid,
        }
    }

    /// Why a new pending token may not be issued (the session's or the server's bound on live
    /// pending tokens is reached), if it may not.
    async fn pending_bound(&self, action: &Action, now: u64) -> Option<String> {
        let inner = &self.inner;
        let session = action.session_id();
        match inner.store.pending(session, now).await {
            Ok(count) if count.session >= inner.max_pending_per_session => Some(format!(
                "a human must approve this, but session `{session}` already has {} approval \
                 requests waiting (the limit is {}, `max_pending_per_session`); retry or revoke \
                 those first",
                count.session, inner.max_pending_per_session
            )),
            Ok(count) if count.all >= inner.max_pending => Some(format!(
                "a human must approve this, but {} approval requests are already waiting (the \
                 limit is {}, `max_pending`)",
                count.all, inner.max_pending
            )),
            Ok(_) => None,
            Err(e) => Some(format!(
                "a human must approve this, but the pending approvals could not be counted: {e}"
            )),
        }
    }

    /// Forget tokens past their expiry by more than the grace window. While anyone watches
    /// token events, first announce the tokens that lapsed since the last call (so an expiry
    /// is announced at most one prune interval late).
    pub async fn prune(&self) -> Result<usize, tokens::StoreError> {
        let now = self.inner.clock.now_ms();
        let since = self.inner.lapsed_until_ms.swap(now, Ordering::Relaxed);
        if since > 0 && since < now && self.inner.events.watched() {
            // Live at `since`, past expiry now: they lapsed in between, undecided or unused.
            // Announcing is best effort: a store that cannot list does not stop the pruning.
            match self.inner.store.live(since).await {
                Ok(live) => {
                    for t in live.iter().filter(|t| t.expires_at_ms <= now) {
                        self.announce(&t.id, "expired", &t.action, t.expires_at_ms);
                    }
                }
                Err(e) => tracing::warn!("cannot list the tokens that lapsed: {e}"),
            }
        }
        self.inner.store.prune(now, self.inner.token_grace_ms).await
    }

    /// Token events: issued, approved, revoked, consumed, expired.
    pub fn events(&self) -> &EventBus {
        &self.inner.events
    }

    /// Start watching token events for a client over a socket: refused (and audited) without
    /// the management token when one is configured.
    pub(crate) async fn watch(
        &self,
        request: &WatchRequest,
        operator: Operator,
    ) -> Result<Watcher, ManageResponse> {
        match crate::auth::check(
            self.inner.management_token.as_ref(),
            request.management_token.as_ref(),
        ) {
            Ok(()) => Ok(self.inner.events.subscribe()),
            Err(refusal) => {
                let refused = ManageResponse::new(Outcome::Unauthorized, refusal.reason());
                Err(self.refusal("watch", None, operator, refused).await)
            }
        }
    }

    /// Publish that token `id` made `transition` (an audit transition name).
    fn announce(&self, id: &str, transition: &str, action: &Action, time_ms: u64) {
        let Some(kind) = TokenEventKind::from_transition(transition) else {
            return;
        };
        self.inner.events.publish(TokenEvent {
            token_id: id.to_owned(),
            kind,
            time_ms,
            session_id: action.session_id().into(),
            sandbox_id: action.sandbox_id().into(),
            summary: self.summary(action),
        });
    }

    /// How many tokens are pending and approved, without loading them (for metrics).
    pub async fn token_counts(&self) -> Result<tokens::LiveCounts, tokens::StoreError> {
        self.inner.store.counts(self.inner.clock.now_ms()).await
    }

    /// Pending and approved tokens, oldest first.
    pub async fn live_tokens(&self) -> Result<Vec<Token>, tokens::StoreError> {
        self.inner.store.live(self.inner.clock.now_ms()).await
    }
}

fn outcome_name(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Ok => "ok",
        Outcome::NotFound => "not_found",
        Outcome::AlreadyConsumed => "already_consumed",
        Outcome::AlreadyRevoked => "already_revoked",
        Outcome::Expired => "expired",
        Outcome::UnsupportedAction => "unsupported_action",
        Outcome::Unauthorized => "unauthorized",
        Outcome::Denied => "denied",
    }
}

fn outcome_reason(outcome: Outcome, id: &str) -> Option<String> {
    match outcome {
        Outcome::Ok => None,
        // firma's words for an empty id, which names nothing to quote.
        Outcome::NotFound if id.is_empty() => Some("token not found".into()),
        Outcome::NotFound => Some(format!("token `{id}` not found")),
        Outcome::AlreadyConsumed => Some(format!("token `{id}` was already consumed")),
        Outcome::AlreadyRevoked => Some(format!("token `{id}` was revoked")),
        Outcome::Expired => Some(format!("token `{id}` expired")),
        Outcome::UnsupportedAction | Outcome::Unauthorized | Outcome::Denied => None,
    }
}
