//! `PolicyHost`: the one dispatcher. A request's flow ([`crate::flow`]) builds one answer; the
//! host records it in the audit log and the metrics, once, and renders it ([`crate::wire`]).
//!
//! A fresh request runs the policy chain; an `ask` issues a pending token. A retry presents its
//! token to the store, which applies the contract's rules atomically. An operator's approve or
//! revoke is first put to every policy's `manage` hook, then applied by the store. Every answer
//! is counted in the metrics and, when an audit log is configured, recorded before it is given.
//! A token's change of state is announced on the [`EventBus`] from here too, once recorded.

use crate::action::Action;
use crate::answer::{Decided, Managed, Queried, Transition, outcome_name};
use crate::audit::{AuditFailure, AuditLog};
use crate::chain::{Chain, PolicyInfo};
use crate::clock::{Clock, SystemClock};
use crate::config::HostConfig;
use crate::decision::DenyCode;
use crate::engine::Runtime;
use crate::error::Error;
use crate::events::{EventBus, TokenEvent, Watcher};
use crate::flow::{self, Context};
use crate::metrics::Metrics;
use crate::pool::{Pool, Share};
use crate::records;
use crate::tokens::{self, Operation, Outcome, Token, TokenStore};
use crate::wire::{
    self, DecideRequest, DecideResponse, ManageRequest, ManageResponse, Query, QueryRequest,
    QueryResponse, Request, Response, WatchRequest,
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
    /// What the flows read: store, clock, pool and settings.
    cx: Context,
    audit: Option<AuditLog>,
    metrics: Metrics,
    token_grace_ms: u64,
    /// Replace arguments by a count in audit records and approval records.
    redact_args: bool,
    /// The share of callers that bring none of their own (interceptors, embedders).
    common_share: Share,
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
        let chain = Chain::load(&runtime, &config.policies, &config.limits)?;
        let management_token = config.resolve_management_token()?;
        let cx = Context {
            store: self
                .store
                .unwrap_or_else(|| Arc::new(tokens::MemoryStore::new())),
            clock: self.clock,
            pool: Arc::new(Pool::new(config.policy_threads)),
            token_ttl_ms: config.token_ttl_ms,
            retry_after_ms: config.retry_after_ms,
            expected_sandbox_id: config.expected_sandbox_id.clone(),
            management_token,
            max_pending_per_session: config.max_pending_per_session,
            max_pending: config.max_pending,
        };
        Ok(PolicyHost {
            inner: Arc::new(Inner {
                runtime,
                chain: RwLock::new(Arc::new(chain)),
                cx,
                audit: self.audit,
                metrics: Metrics::default(),
                token_grace_ms: config.token_grace_ms,
                redact_args: config.audit_redact_args,
                common_share: Share::default(),
                events: EventBus::default(),
                lapsed_until_ms: AtomicU64::new(0),
            }),
        })
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
    pub fn evaluate(&self, action: &Action) -> crate::decision::ChainDecision {
        self.chain().decide(action)
    }

    /// The host's metrics.
    pub(crate) fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// The host's metrics in the Prometheus text format, as the sidecar's `/metrics` serves
    /// them (the live-token gauges as of the sidecar's last scrape).
    pub fn metrics_text(&self) -> String {
        self.inner.metrics.encode()
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
            .and_then(|()| Chain::load(&self.inner.runtime, &config.policies, &config.limits));
        self.inner.metrics.reload(built.is_ok());
        let chain = built?;
        let info = chain.info();
        *self.inner.chain.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(chain);
        Ok(info)
    }

    /// Answer one request line (without its newline) as the socket and `gavel eval` do.
    pub async fn handle_line(&self, line: &[u8], operator: Operator) -> Response {
        match wire::parse_request(line) {
            Ok(request) => self.handle(request, operator).await,
            Err(e) => e.response_to(line),
        }
    }

    /// Answer one parsed request: the dispatcher every transport goes through.
    pub async fn handle(&self, request: Request, operator: Operator) -> Response {
        self.handle_shared(request, operator, &self.inner.common_share)
            .await
    }

    /// As [`PolicyHost::handle`], queueing policy calls on `share` (the server keeps one per
    /// connection).
    pub(crate) async fn handle_shared(
        &self,
        request: Request,
        operator: Operator,
        share: &Share,
    ) -> Response {
        match request {
            Request::Decide(r) => {
                let answer = self.decided(&r, operator, share).await;
                Response::Decide(wire::render_decision(answer, &r.action))
            }
            Request::Manage(r) => Response::Manage(self.manage(&r, operator).await),
            Request::Query(q) => Response::Query(Box::new(self.query_as(&q, operator).await)),
            // One answer per request here: a stream of events needs a socket connection.
            Request::Watch(_) => Response::Manage(ManageResponse::new(
                Outcome::UnsupportedAction,
                "`watch` streams events over a socket connection (`gavel token watch`)",
            )),
        }
    }

    /// Decide a fresh request or a retry, per the wire contract's decision flow.
    pub async fn decide(&self, request: &DecideRequest) -> DecideResponse {
        self.decide_as_peer(request, Operator::default()).await
    }

    /// As [`PolicyHost::decide`], recording the peer's UID in the audit record.
    pub async fn decide_as_peer(&self, request: &DecideRequest, peer: Operator) -> DecideResponse {
        let answer = self.decided(request, peer, &self.inner.common_share).await;
        wire::render_decision(answer, &request.action)
    }

    /// A fresh share of the policy pool, for one client (the server keeps one per connection).
    pub(crate) fn share(&self) -> Share {
        Share::default()
    }

    /// The share of callers that keep no connection (in-process calls, interceptors).
    pub(crate) fn common_share(&self) -> &Share {
        &self.inner.common_share
    }

    /// Decide a request through the one decide flow (chain or token, audit, token events,
    /// metrics) and return its answer, for a transport to render: the socket as a wire line,
    /// the interceptors as an `Interception`.
    pub(crate) async fn decided(
        &self,
        request: &DecideRequest,
        peer: Operator,
        share: &Share,
    ) -> Decided {
        let started = Instant::now();
        let inner = &self.inner;
        let chain = self.chain();
        let mut answer = flow::decide::decide(&inner.cx, &chain, request, share).await;
        let metrics = &inner.metrics;
        if let (Some(policy), Some(kind)) = (&answer.policy, answer.failure) {
            metrics.failure(policy, kind.as_str());
        }
        if let Some(audit) = &inner.audit {
            let now = inner.cx.clock.now_ms();
            let record =
                records::decision(request, &answer, &chain, peer.uid, now, inner.redact_args);
            if let Err(e) = audit.record(&record).await
                && audit.mode() == AuditFailure::Deny
            {
                flow::decide::undo(&inner.cx, &answer).await;
                let reason = format!("denied because the decision could not be audited: {e}");
                answer = Decided {
                    policy: answer.policy,
                    ..Decided::deny(DenyCode::Unavailable, reason)
                };
            }
        }
        // Recorded (or no log is kept): announce the token's change. An answer the log could
        // not take was replaced above by a deny that changed nothing.
        if let (Some(id), Some(transition)) = (&answer.token_id, answer.transition) {
            self.announce(id, transition, &request.action, inner.cx.clock.now_ms());
        }
        let verdict = answer.verdict_name();
        // A retry is decided by its token, not by a policy.
        static NONE: std::sync::LazyLock<Arc<str>> = std::sync::LazyLock::new(|| Arc::from("none"));
        let policy = answer.policy.clone().unwrap_or_else(|| Arc::clone(&NONE));
        metrics.decision(
            request.action.kind(),
            verdict,
            policy,
            started.elapsed().as_secs_f64(),
        );
        answer
    }

    /// Approve or revoke a token, after every `manage` hook permits it. The change is applied
    /// only once its audit record is written (audit first, then state), so the store never holds
    /// a change the log does not.
    pub async fn manage(&self, request: &ManageRequest, operator: Operator) -> ManageResponse {
        let inner = &self.inner;
        let chain = self.chain();
        let mut answer =
            flow::manage::veto(&inner.cx, Arc::clone(&chain), request, operator.uid).await;
        let action = match request.operation {
            Operation::Approve => "local.exec.approve",
            Operation::Revoke => "local.exec.revoke",
        };
        let records = records::Management {
            action,
            token_id: Some(&request.token_id),
            chain: &chain,
            peer_uid: operator.uid,
        };
        let audit = inner.audit.as_ref();
        if let Some(audit) = audit {
            let transition = answer.change.as_ref().map(|c| c.transition.as_str());
            let now = inner.cx.clock.now_ms();
            let record = records.record(answer.outcome, answer.reason.as_deref(), transition, now);
            if let Err(e) = audit.record(&record).await
                && audit.mode() == AuditFailure::Deny
            {
                answer = crate::answer::Managed::refused(
                    Outcome::Denied,
                    format!("the operation could not be audited ({e}); nothing was changed"),
                );
            }
        }
        if !flow::manage::apply(&inner.cx, &request.token_id, &mut answer).await
            && let Some(audit) = audit
        {
            // The record above announced a change that did not happen: say so.
            let now = inner.cx.clock.now_ms();
            let record = records.record(answer.outcome, answer.reason.as_deref(), None, now);
            let _ = audit.record(&record).await;
        }
        // Recorded and applied: announce it (a refusal carries no change).
        if let Some(c) = &answer.change {
            let now = inner.cx.clock.now_ms();
            self.announce(&request.token_id, c.transition, &c.action, now);
        }
        inner
            .metrics
            .management(action, outcome_name(answer.outcome));
        wire::render_management(answer)
    }

    /// Answer `local.exec.list` or `local.exec.show` as sent over a socket: when a management
    /// token is configured, a request without the right one is refused and audited.
    pub async fn query_as(&self, request: &QueryRequest, operator: Operator) -> QueryResponse {
        let inner = &self.inner;
        let Err(refusal) = flow::query::authorize(&inner.cx, request) else {
            return self.query(&request.query).await;
        };
        let (action, token_id) = match &request.query {
            Query::List => ("local.exec.list", None),
            Query::Show(id) => ("local.exec.show", Some(id.as_str())),
        };
        let refused = Managed::refused(Outcome::Unauthorized, refusal.reason());
        let refused = self.refusal(action, token_id, operator, refused).await;
        let answer = Queried::refused(refused.outcome, refused.reason);
        let (chain, now) = (self.chain(), inner.cx.clock.now_ms());
        let (current, redact) = (chain.chain_digest(), inner.redact_args);
        wire::render_query(answer, |t| records::approval(t, now, current, redact))
    }

    /// Record a management request refused before it reached the tokens (unauthorized, or
    /// sent to the governance socket when management has its own), and count it. When the
    /// record cannot be written in `deny` mode the answer says so, still refusing.
    async fn refusal(
        &self,
        action: &str,
        token_id: Option<&str>,
        operator: Operator,
        answer: Managed,
    ) -> Managed {
        let inner = &self.inner;
        let mut answer = answer;
        if let Some(audit) = &inner.audit {
            let chain = self.chain();
            let records = records::Management {
                action,
                token_id,
                chain: &chain,
                peer_uid: operator.uid,
            };
            let now = inner.cx.clock.now_ms();
            let record = records.record(answer.outcome, answer.reason.as_deref(), None, now);
            if let Err(e) = audit.record(&record).await
                && audit.mode() == AuditFailure::Deny
            {
                answer = Managed::refused(
                    Outcome::Denied,
                    format!(
                        "the refusal could not be audited ({e}); the request was refused: {}",
                        answer.reason.as_deref().unwrap_or_default()
                    ),
                );
            }
        }
        inner
            .metrics
            .management(action, outcome_name(answer.outcome));
        answer
    }

    /// Refuse a management request (approve, revoke, list, show, watch) with `outcome` and
    /// `reason` without looking at it further, audited and counted: the governance socket's
    /// answer when management has a socket of its own, so an agent that tries to approve its
    /// own request leaves a trace.
    pub(crate) async fn refuse(
        &self,
        request: &Request,
        operator: Operator,
        outcome: Outcome,
        reason: String,
    ) -> Response {
        let (action, token_id) = match request {
            Request::Manage(m) => match m.operation {
                Operation::Approve => ("local.exec.approve", Some(m.token_id.as_str())),
                Operation::Revoke => ("local.exec.revoke", Some(m.token_id.as_str())),
            },
            Request::Query(q) => match &q.query {
                Query::List => ("local.exec.list", None),
                Query::Show(id) => ("local.exec.show", Some(id.as_str())),
            },
            Request::Watch(_) => ("watch", None),
            Request::Decide(d) => (d.action.kind(), None),
        };
        let answer = Managed::refused(outcome, reason);
        let answer = self.refusal(action, token_id, operator, answer).await;
        Response::Manage(wire::render_management(answer))
    }

    /// Answer `local.exec.list` or `local.exec.show` for an in-process caller (no management
    /// token is asked for: the caller already holds the host).
    pub async fn query(&self, query: &Query) -> QueryResponse {
        let now = self.inner.cx.clock.now_ms();
        let answer = flow::query::query(&self.inner.cx, query, now).await;
        let chain = self.chain();
        let (current, redact) = (chain.chain_digest(), self.inner.redact_args);
        wire::render_query(answer, |t| records::approval(t, now, current, redact))
    }

    /// Forget tokens past their expiry by more than the grace window. While anyone watches
    /// token events, first announce the tokens that lapsed since the last call (so an expiry
    /// is announced at most one prune interval late).
    pub async fn prune(&self) -> Result<usize, tokens::StoreError> {
        let (cx, inner) = (&self.inner.cx, &self.inner);
        let now = cx.clock.now_ms();
        let since = inner.lapsed_until_ms.swap(now, Ordering::Relaxed);
        if since > 0 && since < now && inner.events.watched() {
            // Live at `since`, past expiry now: they lapsed in between, undecided or unused.
            // Announcing is best effort: a store that cannot list does not stop the pruning.
            match cx.store.live(since).await {
                Ok(live) => {
                    for t in live.iter().filter(|t| t.expires_at_ms <= now) {
                        self.announce(&t.id, Transition::Expired, &t.action, t.expires_at_ms);
                    }
                }
                Err(e) => tracing::warn!("cannot list the tokens that lapsed: {e}"),
            }
        }
        cx.store.prune(now, inner.token_grace_ms).await
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
            self.inner.cx.management_token.as_ref(),
            request.management_token.as_ref(),
        ) {
            Ok(()) => Ok(self.inner.events.subscribe()),
            Err(refusal) => {
                let refused = Managed::refused(Outcome::Unauthorized, refusal.reason());
                let refused = self.refusal("watch", None, operator, refused).await;
                Err(wire::render_management(refused))
            }
        }
    }

    /// Publish that token `id`, issued for `action`, made `transition` at `time_ms`. Called
    /// only here, once the answer that made the change is recorded (or by `prune`).
    fn announce(&self, id: &str, transition: Transition, action: &Action, time_ms: u64) {
        let event: TokenEvent =
            records::event(id, transition, action, time_ms, self.inner.redact_args);
        self.inner.events.publish(event);
    }

    /// How many tokens are pending and approved, without loading them (for metrics).
    pub async fn token_counts(&self) -> Result<tokens::LiveCounts, tokens::StoreError> {
        let cx = &self.inner.cx;
        cx.store.counts(cx.clock.now_ms()).await
    }

    /// Pending and approved tokens, oldest first.
    pub async fn live_tokens(&self) -> Result<Vec<Token>, tokens::StoreError> {
        let cx = &self.inner.cx;
        cx.store.live(cx.clock.now_ms()).await
    }
}
