//! The one value a request's flow produces: what was decided, and everything the audit record,
//! the metrics and the wire answer are made from. Built once by the flows; read by
//! `records` (audit) and `wire` (the answer line). Free of wire types, so both can draw on it.

use crate::action::Action;
use crate::decision::{DenyCode, EffectClass, FailureKind, RiskClass, Suggestion, Verdict};
use crate::tokens::{Outcome, Token, TokenState};
use std::sync::Arc;

/// A change of a token's state, as audit records name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transition {
    /// A fresh request's ask created a pending token.
    Issued,
    /// A retry used an approved token.
    Consumed,
    /// A token was found past its expiry and marked so.
    Expired,
    /// An operator approved a pending token.
    Approved,
    /// An operator revoked a token.
    Revoked,
}

impl Transition {
    /// The name in audit records.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Transition::Issued => "issued",
            Transition::Consumed => "consumed",
            Transition::Expired => "expired",
            Transition::Approved => "approved",
            Transition::Revoked => "revoked",
        }
    }
}

/// The answer to a decide request (fresh or a retry).
#[derive(Debug, Clone)]
pub(crate) struct Decided {
    /// Allow, deny, or ask (`pending_hitl` on the wire).
    pub(crate) verdict: Verdict,
    /// Why.
    pub(crate) reason: String,
    /// Why a deny is one; `None` reads as [`DenyCode::PolicyDenied`].
    pub(crate) code: Option<DenyCode>,
    /// The token issued (fresh ask) or presented (retry).
    pub(crate) token_id: Option<String>,
    /// When to retry, on an ask.
    pub(crate) retry_after_ms: Option<u64>,
    /// Rules that would allow this next time, on a fresh ask.
    pub(crate) suggestions: Vec<Vec<Suggestion>>,
    /// The policy that decided a fresh request.
    pub(crate) policy: Option<Arc<str>>,
    /// Its rule, if it named one.
    pub(crate) rule: Option<String>,
    /// The kind of failure when the deciding policy failed.
    pub(crate) failure: Option<FailureKind>,
    /// The chain's classification of a fresh request.
    pub(crate) effect: Option<EffectClass>,
    /// The chain's risk of a fresh request.
    pub(crate) risk: Option<RiskClass>,
    /// The token state change this answer made.
    pub(crate) transition: Option<Transition>,
}

impl Decided {
    fn new(verdict: Verdict, reason: String) -> Self {
        Self {
            verdict,
            reason,
            code: None,
            token_id: None,
            retry_after_ms: None,
            suggestions: Vec::new(),
            policy: None,
            rule: None,
            failure: None,
            effect: None,
            risk: None,
            transition: None,
        }
    }

    /// Let it run.
    pub(crate) fn allow(reason: impl Into<String>) -> Self {
        Self::new(Verdict::Allow, reason.into())
    }

    /// Refuse it, for `code`.
    pub(crate) fn deny(code: DenyCode, reason: impl Into<String>) -> Self {
        Self {
            code: Some(code),
            ..Self::new(Verdict::Deny, reason.into())
        }
    }

    /// Wait for a human; retry with `token_id` after `retry_after_ms`.
    pub(crate) fn pending(
        token_id: String,
        retry_after_ms: u64,
        reason: impl Into<String>,
    ) -> Self {
        Self {
            token_id: Some(token_id),
            retry_after_ms: Some(retry_after_ms),
            ..Self::new(Verdict::Ask, reason.into())
        }
    }

    /// The deny code, on a deny.
    pub(crate) fn deny_code(&self) -> Option<DenyCode> {
        (self.verdict == Verdict::Deny).then(|| self.code.unwrap_or(DenyCode::PolicyDenied))
    }

    /// The verdict's name on the wire, in audit records and metrics.
    pub(crate) fn verdict_name(&self) -> &'static str {
        match self.verdict {
            Verdict::Allow => "allow",
            Verdict::Deny => "deny",
            Verdict::Ask => "pending_hitl",
        }
    }
}

/// A token state change an operator asked for, decided but not yet applied.
#[derive(Debug, Clone)]
pub(crate) struct Change {
    /// The state the token was read in (the compare of the compare-and-set).
    pub(crate) from: TokenState,
    /// The state to set.
    pub(crate) to: TokenState,
    /// As audit records name it.
    pub(crate) transition: Transition,
    /// The token's request, for the event announcing the change.
    pub(crate) action: Action,
}

/// The answer to an approve or revoke.
#[derive(Debug, Clone)]
pub(crate) struct Managed {
    /// The outcome.
    pub(crate) outcome: Outcome,
    /// Why, when there is something to say.
    pub(crate) reason: Option<String>,
    /// The change to apply once it is recorded (none for refusals and idempotent repeats).
    pub(crate) change: Option<Change>,
}

impl Managed {
    /// An outcome with a reason and no change.
    pub(crate) fn refused(outcome: Outcome, reason: impl Into<String>) -> Self {
        Self {
            outcome,
            reason: Some(reason.into()),
            change: None,
        }
    }
}

/// What a query found.
#[derive(Debug, Clone)]
pub(crate) enum Found {
    /// Nothing to show (a refusal or a miss).
    Nothing,
    /// `list`: the live tokens, oldest first.
    List(Vec<Token>),
    /// `show`: the token.
    One(Box<Token>),
}

/// The answer to `list` or `show`.
#[derive(Debug, Clone)]
pub(crate) struct Queried {
    /// `ok`, `not_found`, `unauthorized` or `denied`.
    pub(crate) outcome: Outcome,
    /// Why, when not ok.
    pub(crate) reason: Option<String>,
    /// The tokens.
    pub(crate) found: Found,
}

impl Queried {
    /// An outcome with a reason and nothing found.
    pub(crate) fn refused(outcome: Outcome, reason: Option<String>) -> Self {
        Self {
            outcome,
            reason,
            found: Found::Nothing,
        }
    }
}

/// The name of a management outcome on the wire, in audit records and metrics.
pub(crate) fn outcome_name(outcome: Outcome) -> &'static str {
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

/// The reason given with a management outcome about token `id`.
pub(crate) fn outcome_reason(outcome: Outcome, id: &str) -> Option<String> {
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
