//! Approval tokens: their records, the lifecycle rules of the wire contract, and the stores that
//! keep them.
//!
//! A token is created only by `issue`; every state change goes through [`redeem`] or
//! [`apply`]: the store holds whatever lock or transaction makes it atomic and calls them, so
//! the contract's table lives in one place.

mod memory;
mod open;
mod redis;
mod sqlite;

pub use memory::MemoryStore;
pub use open::{StoreConfig, StoreKind, open};
pub use redis::RedisStore;
pub use sqlite::{DB_FILE, SqliteStore, Synchronous};

use crate::action::Action;
use crate::decision::{EffectClass, PolicyRef, RiskClass, Suggestion};
use serde::{Deserialize, Serialize};

pub use crate::clock::Millis;

/// Where a token is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenState {
    /// Issued; waiting for an operator.
    Pending,
    /// Approved; the next matching retry is allowed once.
    Approved,
    /// Used by one allowed retry; never allows again.
    Consumed,
    /// Revoked by an operator.
    Revoked,
    /// Past its expiry.
    Expired,
}

impl TokenState {
    /// The state's name as operators see it.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenState::Pending => "pending",
            TokenState::Approved => "approved",
            TokenState::Consumed => "consumed",
            TokenState::Revoked => "revoked",
            TokenState::Expired => "expired",
        }
    }
}

/// A single-use approval token and the request it was issued for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Token {
    /// Opaque, unguessable id (a random UUID v4).
    pub id: String,
    /// Current state.
    pub state: TokenState,
    /// The server-computed fingerprint of the request the token was issued for.
    pub fingerprint: String,
    /// The request the token was issued for; its session, sandbox and agent bind the token.
    pub action: Action,
    /// When the token was issued.
    pub created_at_ms: Millis,
    /// When a pending or approved token stops being usable.
    pub expires_at_ms: Millis,
    /// The policy that asked for a human.
    pub policy: String,
    /// The rule that asked, if the policy named one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_id: Option<String>,
    /// Why the policy asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What the human is asked to approve, beyond the request itself.
    #[serde(default)]
    pub approval: ApprovalInfo,
}

/// The classification and provenance of an approval request, fixed when the token is issued.
/// Tokens stored before these existed read back with the defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalInfo {
    /// What the action does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effect: Option<EffectClass>,
    /// How risky it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk: Option<RiskClass>,
    /// The policies that asked for a human.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policy_refs: Vec<PolicyRef>,
    /// The digest of the policy chain that issued the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain_digest: Option<String>,
    /// Rules that would allow this next time, one group per subcommand: for the operator's
    /// `list`/`show`, since a `local.exec` answer may carry nothing beyond firma's four fields.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub suggestions: Vec<Vec<Suggestion>>,
}

impl Token {
    /// Whether a live (pending or approved) token is past its expiry at `now`.
    fn lapsed(&self, now: Millis) -> bool {
        matches!(self.state, TokenState::Pending | TokenState::Approved)
            && now >= self.expires_at_ms
    }

    /// The state as of `now`: a live token past its expiry reads as expired, whether or not
    /// the store has marked it yet.
    pub fn state_at(&self, now: Millis) -> TokenState {
        if self.lapsed(now) {
            TokenState::Expired
        } else {
            self.state
        }
    }

    /// Whether the record may be forgotten at `now`: past its expiry by more than `grace_ms`,
    /// so that a late retry within the grace window is still told "expired", not "not found".
    pub fn prunable(&self, now: Millis, grace_ms: Millis) -> bool {
        now >= self.expires_at_ms.saturating_add(grace_ms)
    }
}

/// What a retry presents: the request as the server sees it now.
#[derive(Debug, Clone)]
pub struct Presented<'a> {
    /// The server-computed fingerprint of the retried request.
    pub fingerprint: &'a str,
    /// The retried request.
    pub action: &'a Action,
}

/// The result of presenting a token on a retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redemption {
    /// No such token (or it was pruned).
    NotFound,
    /// It allowed one execution already.
    AlreadyConsumed,
    /// An operator revoked it.
    Revoked,
    /// It is past its expiry (and is now marked so).
    Expired,
    /// The retried request is not the one the token was issued for.
    FingerprintMismatch,
    /// Session, sandbox or bound agent differ from the token's.
    ContextMismatch,
    /// Still waiting for an operator.
    Pending,
    /// Approved: this retry is allowed and the token is now consumed.
    Allowed,
}

/// An operator's action on a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    /// Let the next matching retry run once.
    Approve,
    /// Never let it run.
    Revoke,
}

/// The contract's management outcomes, plus Gavel's `denied` (a policy vetoed it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Applied (or already so, for idempotent cases).
    Ok,
    /// No such token.
    NotFound,
    /// The token was consumed.
    AlreadyConsumed,
    /// The token was revoked.
    AlreadyRevoked,
    /// The token is past its expiry.
    Expired,
    /// Not a management action this endpoint answers.
    UnsupportedAction,
    /// The server requires a management token and the request's is missing or wrong.
    Unauthorized,
    /// A policy's `manage` hook vetoed it, or the token store could not be reached.
    Denied,
}

/// Present a token on a retry: the contract's decision flow, in its order. Mutates `token` when
/// the state changes (marked expired, or consumed).
pub fn redeem(token: &mut Token, presented: &Presented<'_>, now: Millis) -> Redemption {
    match token.state {
        TokenState::Consumed => return Redemption::AlreadyConsumed,
        TokenState::Revoked => return Redemption::Revoked,
        TokenState::Expired => return Redemption::Expired,
        TokenState::Pending | TokenState::Approved => {}
    }
    if token.lapsed(now) {
        token.state = TokenState::Expired;
        return Redemption::Expired;
    }
    // The kind too: fingerprints of different kinds can coincide (a `local.exec` of a program
    // named `connect` hashes like a CONNECT), and an approval must not change kind.
    if token.fingerprint != presented.fingerprint || token.action.kind() != presented.action.kind()
    {
        return Redemption::FingerprintMismatch;
    }
    let bound = &token.action;
    let asked = presented.action;
    let agent_differs = bound.agent_id().is_some() && bound.agent_id() != asked.agent_id();
    if bound.session_id() != asked.session_id()
        || bound.sandbox_id() != asked.sandbox_id()
        || agent_differs
    {
        return Redemption::ContextMismatch;
    }
    match token.state {
        TokenState::Approved => {
            token.state = TokenState::Consumed;
            Redemption::Allowed
        }
        _ => Redemption::Pending,
    }
}

/// What applying `op` to `token` at `now` would answer, without changing anything. The host
/// asks policies' `manage` hooks only when this is [`Outcome::Ok`].
pub fn preview(token: &Token, op: Operation, now: Millis) -> Outcome {
    let mut copy = token.clone();
    apply(&mut copy, op, now)
}

/// Apply an operator's action: the contract's management table. Mutates `token` when the state
/// changes.
pub fn apply(token: &mut Token, op: Operation, now: Millis) -> Outcome {
    // firma: approving an approved token is idempotent and checks no expiry; the next retry
    // is the one told "expired".
    if (token.state, op) == (TokenState::Approved, Operation::Approve) {
        return Outcome::Ok;
    }
    if token.lapsed(now) {
        token.state = TokenState::Expired;
    }
    match (token.state, op) {
        (TokenState::Pending | TokenState::Approved, Operation::Approve) => {
            token.state = TokenState::Approved;
            Outcome::Ok
        }
        (TokenState::Pending | TokenState::Approved, Operation::Revoke) => {
            token.state = TokenState::Revoked;
            Outcome::Ok
        }
        (TokenState::Consumed, _) => Outcome::AlreadyConsumed,
        (TokenState::Revoked, Operation::Approve) => Outcome::AlreadyRevoked,
        (TokenState::Revoked, Operation::Revoke) => Outcome::Ok,
        (TokenState::Expired, _) => Outcome::Expired,
    }
}

/// Who asked for a human, and what the token will show an operator.
pub(crate) struct Ask<'a> {
    /// The policy that decided to ask.
    pub(crate) policy: &'a str,
    /// Its rule, if it named one.
    pub(crate) rule_id: Option<String>,
    /// Why it asked (it may quote the request: masked before it is stored).
    pub(crate) reason: &'a str,
    /// The host's lifetime of a token, and the shortest timeout an asking policy set.
    pub(crate) lifetime_ms: Millis,
    /// The chain's classification.
    pub(crate) effect: EffectClass,
    /// The chain's risk.
    pub(crate) risk: RiskClass,
    /// Every policy that asked.
    pub(crate) policy_refs: Vec<PolicyRef>,
    /// The digest of the chain in force.
    pub(crate) chain_digest: &'a str,
    /// Rules that would allow this next time (masked before they are stored).
    pub(crate) suggestions: &'a [Vec<Suggestion>],
}

/// Issue a pending token for `action` (whose fingerprint is `fingerprint`) into `store`, and
/// return its id: the one place a token is created.
pub(crate) async fn issue(
    store: &dyn TokenStore,
    action: &Action,
    fingerprint: String,
    ask: Ask<'_>,
    now: Millis,
) -> Result<String, StoreError> {
    let mask = |s: &Suggestion| Suggestion {
        rule: crate::redact::text(&s.rule),
        label: crate::redact::text(&s.label),
    };
    let token = Token {
        id: uuid::Uuid::new_v4().to_string(),
        state: TokenState::Pending,
        fingerprint,
        // Secrets are masked before anything is stored: the fingerprint binds the token to the
        // full request, and retries are checked against it.
        action: crate::redact::action(action),
        created_at_ms: now,
        expires_at_ms: now.saturating_add(ask.lifetime_ms),
        policy: ask.policy.to_owned(),
        rule_id: ask.rule_id,
        // A policy's reason may quote the request (http-rules names the URL).
        reason: Some(crate::redact::text(ask.reason)),
        approval: ApprovalInfo {
            effect: Some(ask.effect),
            risk: Some(ask.risk),
            policy_refs: ask.policy_refs,
            chain_digest: Some(ask.chain_digest.to_owned()),
            // Operators see these in `list`/`show`; a rule quotes the command, so it is masked
            // like the summary.
            suggestions: ask
                .suggestions
                .iter()
                .map(|group| group.iter().map(mask).collect())
                .collect(),
        },
    };
    let id = token.id.clone();
    store.insert(token).await?;
    Ok(id)
}

/// Live tokens by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LiveCounts {
    /// Waiting for an operator.
    pub pending: u64,
    /// Approved, not yet used.
    pub approved: u64,
}

/// A token store failed; every caller turns this into a fail-closed answer.
#[derive(Debug, thiserror::Error)]
#[error("token store unavailable: {0}")]
pub struct StoreError(pub String);

/// Where tokens live. Every method is one atomic step: implementations hold whatever lock,
/// transaction or server-side script makes concurrent callers (and other processes sharing the
/// store) see each token change exactly once.
#[async_trait::async_trait]
pub trait TokenStore: Send + Sync + 'static {
    /// Record a freshly issued token.
    async fn insert(&self, token: Token) -> Result<(), StoreError>;

    /// The token as stored, unchanged: a read never marks a lapsed token expired (approving an
    /// approved token after its expiry must still answer `ok`); use [`Token::state_at`] to
    /// show it. `now` is the caller's clock; the bundled stores do not need it.
    async fn get(&self, id: &str, now: Millis) -> Result<Option<Token>, StoreError>;

    /// Present a token on a retry; see [`redeem`].
    async fn redeem(
        &self,
        id: &str,
        presented: &Presented<'_>,
        now: Millis,
    ) -> Result<Redemption, StoreError>;

    /// Apply an operator's action; see [`apply`]. Unknown ids answer [`Outcome::NotFound`].
    async fn apply(&self, id: &str, op: Operation, now: Millis) -> Result<Outcome, StoreError>;

    /// Move token `id` from state `from` to `to` if it is still in `from`; whether it was.
    /// The host applies an operator's change only once its audit record is written, and gives a
    /// redeemed token back (consumed to approved) when the allow could not be recorded.
    async fn set_state_if(
        &self,
        id: &str,
        from: TokenState,
        to: TokenState,
    ) -> Result<bool, StoreError>;

    /// Every token still on record that is pending or approved at `now`, oldest first.
    async fn live(&self, now: Millis) -> Result<Vec<Token>, StoreError>;

    /// How many tokens are pending and approved (live) at `now`, for metrics. Stores override
    /// this with a query that does not load every token.
    async fn counts(&self, now: Millis) -> Result<LiveCounts, StoreError> {
        let live = self.live(now).await?;
        let approved = live
            .iter()
            .filter(|t| t.state == TokenState::Approved)
            .count() as u64;
        Ok(LiveCounts {
            pending: live.len() as u64 - approved,
            approved,
        })
    }

    /// Forget records past their expiry by more than `grace_ms`; returns how many went.
    async fn prune(&self, now: Millis, grace_ms: Millis) -> Result<usize, StoreError>;

    /// How many tokens are pending at `now`, for `session` and in all (the host bounds both).
    /// This default counts what [`TokenStore::live`] returns; a store that can count more
    /// cheaply overrides it.
    async fn pending(&self, session: &str, now: Millis) -> Result<PendingCount, StoreError> {
        let live = self.live(now).await?;
        let pending = live.iter().filter(|t| t.state == TokenState::Pending);
        Ok(pending.fold(PendingCount::default(), |c, t| c.add(t, session)))
    }
}

/// Live pending tokens, for one session and in all.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PendingCount {
    /// The session's.
    pub session: usize,
    /// Every session's.
    pub all: usize,
}

impl PendingCount {
    /// The count with `token` (a pending one) added.
    pub(crate) fn add(self, token: &Token, session: &str) -> Self {
        Self {
            session: self.session + usize::from(token.action.session_id() == session),
            all: self.all + 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::action::{Action, LocalExec};

    fn action(session: &str, agent: Option<&str>) -> Action {
        Action::LocalExec(LocalExec {
            executable: "ls".into(),
            args: vec![],
            session_id: session.into(),
            sandbox_id: "sbx".into(),
            agent_id: agent.map(Into::into),
            profile: "p".into(),
            hitl_mode: "async_token".into(),
        })
    }

    fn token(state: TokenState) -> Token {
        let action = action("s", Some("a"));
        Token {
            id: "t".into(),
            state,
            fingerprint: action.fingerprint(),
            action,
            created_at_ms: 0,
            expires_at_ms: 1000,
            policy: "p".into(),
            rule_id: None,
            reason: None,
            approval: ApprovalInfo::default(),
        }
    }

    #[test]
    fn management_table() {
        use Operation::*;
        use Outcome as O;
        use TokenState::*;
        // (state, now, op, outcome, state after); expiry is at 1000.
        let rows = [
            (Pending, 10, Approve, O::Ok, Approved),
            (Pending, 10, Revoke, O::Ok, Revoked),
            (Approved, 10, Approve, O::Ok, Approved),
            (Approved, 10, Revoke, O::Ok, Revoked),
            (Pending, 1000, Approve, O::Expired, Expired),
            (Pending, 1000, Revoke, O::Expired, Expired),
            (Approved, 2000, Approve, O::Ok, Approved),
            (Approved, 2000, Revoke, O::Expired, Expired),
            (Consumed, 10, Approve, O::AlreadyConsumed, Consumed),
            (Consumed, 10, Revoke, O::AlreadyConsumed, Consumed),
            (Revoked, 10, Approve, O::AlreadyRevoked, Revoked),
            (Revoked, 10, Revoke, O::Ok, Revoked),
            (Expired, 10, Approve, O::Expired, Expired),
            (Expired, 10, Revoke, O::Expired, Expired),
        ];
        for (state, now, op, outcome, after) in rows {
            let mut t = token(state);
            assert_eq!(preview(&t, op, now), outcome, "{state:?} {op:?} at {now}");
            assert_eq!(t.state, state, "preview must not change the token");
            assert_eq!(apply(&mut t, op, now), outcome, "{state:?} {op:?} at {now}");
            assert_eq!(t.state, after, "{state:?} {op:?} at {now}");
        }
    }

    #[test]
    fn redeem_follows_the_contract_order() {
        let good = action("s", Some("a"));
        let fp = good.fingerprint();
        let p = Presented {
            fingerprint: &fp,
            action: &good,
        };
        let cases = [
            (
                TokenState::Consumed,
                10,
                Redemption::AlreadyConsumed,
                TokenState::Consumed,
            ),
            (
                TokenState::Revoked,
                10,
                Redemption::Revoked,
                TokenState::Revoked,
            ),
            (
                TokenState::Expired,
                10,
                Redemption::Expired,
                TokenState::Expired,
            ),
            (
                TokenState::Pending,
                1000,
                Redemption::Expired,
                TokenState::Expired,
            ),
            (
                TokenState::Approved,
                5000,
                Redemption::Expired,
                TokenState::Expired,
            ),
            (
                TokenState::Pending,
                10,
                Redemption::Pending,
                TokenState::Pending,
            ),
            (
                TokenState::Approved,
                10,
                Redemption::Allowed,
                TokenState::Consumed,
            ),
        ];
        for (state, now, want, after) in cases {
            let mut t = token(state);
            assert_eq!(redeem(&mut t, &p, now), want, "{state:?} at {now}");
            assert_eq!(t.state, after);
        }
    }

    #[test]
    fn redeem_checks_fingerprint_then_context() {
        let mut t = token(TokenState::Approved);
        let other = action("s", Some("a"));
        let p = Presented {
            fingerprint: "0000",
            action: &other,
        };
        assert_eq!(redeem(&mut t, &p, 10), Redemption::FingerprintMismatch);

        // Same fingerprint but another session, or a bound agent missing: context mismatch.
        let fp = t.fingerprint.clone();
        for asked in [
            action("other", Some("a")),
            action("s", None),
            action("s", Some("b")),
        ] {
            let p = Presented {
                fingerprint: &fp,
                action: &asked,
            };
            assert_eq!(redeem(&mut t, &p, 10), Redemption::ContextMismatch);
        }
        assert_eq!(
            t.state,
            TokenState::Approved,
            "a refused retry must not consume"
        );
    }

    #[test]
    fn prunable_only_after_the_grace_window() {
        let t = token(TokenState::Expired);
        assert!(!t.prunable(1000 + 299_999, 300_000));
        assert!(t.prunable(1000 + 300_000, 300_000));
    }

    #[tokio::test]
    async fn issue_creates_a_pending_token_with_secrets_masked() {
        let store = MemoryStore::new();
        let action = Action::LocalExec(LocalExec {
            executable: "mysql".into(),
            args: vec!["--password=hunter2".into()],
            session_id: "s".into(),
            sandbox_id: "sbx".into(),
            agent_id: None,
            profile: "p".into(),
            hitl_mode: "async_token".into(),
        });
        let suggestions = vec![vec![Suggestion {
            rule: "run_command(mysql --password=hunter2)".into(),
            label: "this command".into(),
        }]];
        let ask = Ask {
            policy: "rules",
            rule_id: Some("r1".into()),
            reason: "asks about password: hunter2",
            lifetime_ms: 5_000,
            effect: EffectClass::Execute,
            risk: RiskClass::High,
            policy_refs: Vec::new(),
            chain_digest: "sha256:c",
            suggestions: &suggestions,
        };
        let fingerprint = action.fingerprint();
        let id = issue(&store, &action, fingerprint.clone(), ask, 100)
            .await
            .unwrap();
        let token = store.get(&id, 100).await.unwrap().unwrap();
        assert_eq!(token.state, TokenState::Pending);
        assert_eq!((token.created_at_ms, token.expires_at_ms), (100, 5_100));
        // The fingerprint binds the full request; everything shown is masked.
        assert_eq!(token.fingerprint, fingerprint);
        let stored = serde_json::to_string(&token).unwrap();
        assert!(!stored.contains("hunter2"), "{stored}");
        assert_eq!(token.approval.chain_digest.as_deref(), Some("sha256:c"));
        assert_eq!(token.rule_id.as_deref(), Some("r1"));
    }
}
