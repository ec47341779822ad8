//! What is written down about an answer: the audit record of a decision or a management
//! request, and the approval record an operator sees of a token. Secrets are masked here.

use crate::action::Action;
use crate::answer::{Decided, Transition, outcome_name};
use crate::audit::AuditRecord;
use crate::chain::Chain;
use crate::events::{TokenEvent, TokenEventKind};
use crate::tokens::{Outcome, Token, TokenState};
use crate::wire::{ApprovalRecord, DecideRequest};

/// The audit record of a decide request's answer.
pub(crate) fn decision(
    request: &DecideRequest,
    answer: &Decided,
    chain: &Chain,
    peer_uid: Option<u32>,
    now: u64,
    redact_args: bool,
) -> AuditRecord {
    let action = &request.action;
    AuditRecord {
        time_ms: now,
        id: uuid::Uuid::new_v4().to_string(),
        action: action.kind().into(),
        summary: Some(summary(action, redact_args)),
        session_id: Some(action.session_id().into()),
        sandbox_id: Some(action.sandbox_id().into()),
        agent_id: action.agent_id().map(Into::into),
        fingerprint: Some(action.fingerprint()),
        verdict: answer.verdict_name().into(),
        reason: Some(crate::redact::text(&answer.reason)),
        policy: answer.policy.as_deref().map(str::to_owned),
        rule: answer.rule.clone(),
        policies: chain.digests().to_vec(),
        chain_digest: Some(chain.chain_digest().to_owned()),
        effect_class: answer.effect,
        risk_class: answer.risk,
        deny_code: answer.deny_code(),
        token_id: answer.token_id.clone(),
        transition: answer.transition.map(|t| t.as_str().into()),
        peer_uid,
    }
}

/// The audit record of a management request (`action` is its wire action) about token
/// `token_id`.
pub(crate) struct Management<'a> {
    /// `local.exec.approve`, `local.exec.revoke`, `local.exec.list` or `local.exec.show`.
    pub(crate) action: &'a str,
    /// The token the request named, if any.
    pub(crate) token_id: Option<&'a str>,
    /// The chain in force.
    pub(crate) chain: &'a Chain,
    /// The operator's UID, when the transport knows it.
    pub(crate) peer_uid: Option<u32>,
}

impl Management<'_> {
    /// The record of answering with `outcome` and `reason`, having made `transition`.
    pub(crate) fn record(
        &self,
        outcome: Outcome,
        reason: Option<&str>,
        transition: Option<&str>,
        now: u64,
    ) -> AuditRecord {
        AuditRecord {
            time_ms: now,
            id: uuid::Uuid::new_v4().to_string(),
            action: self.action.into(),
            verdict: outcome_name(outcome).into(),
            reason: reason.map(crate::redact::text),
            policies: self.chain.digests().to_vec(),
            token_id: self.token_id.map(str::to_owned),
            transition: transition.map(Into::into),
            peer_uid: self.peer_uid,
            ..AuditRecord::default()
        }
    }
}

/// The event announcing that token `token_id`, issued for `action`, made `transition` at
/// `time_ms`. The summary is masked as in the audit log.
pub(crate) fn event(
    token_id: &str,
    transition: Transition,
    action: &Action,
    time_ms: u64,
    redact_args: bool,
) -> TokenEvent {
    TokenEvent {
        token_id: token_id.to_owned(),
        kind: match transition {
            Transition::Issued => TokenEventKind::Issued,
            Transition::Approved => TokenEventKind::Approved,
            Transition::Revoked => TokenEventKind::Revoked,
            Transition::Consumed => TokenEventKind::Consumed,
            Transition::Expired => TokenEventKind::Expired,
        },
        time_ms,
        session_id: action.session_id().into(),
        sandbox_id: action.sandbox_id().into(),
        summary: summary(action, redact_args),
    }
}

/// What an operator sees of token `t` at `now`, while `current_chain` is in force.
pub(crate) fn approval(
    t: &Token,
    now: u64,
    current_chain: &str,
    redact_args: bool,
) -> ApprovalRecord {
    // A store does not mark a lapsed token on read; show it as what it is now.
    let state = t.state_at(now);
    let allowed: &[&str] = match state {
        TokenState::Pending => &["approve", "revoke"],
        TokenState::Approved => &["revoke"],
        _ => &[],
    };
    let effect = t
        .approval
        .effect
        .unwrap_or_else(|| t.action.default_effect());
    ApprovalRecord {
        token_id: t.id.clone(),
        state,
        created_at_ms: t.created_at_ms,
        expires_at_ms: t.expires_at_ms,
        timeout_ms: t.expires_at_ms.saturating_sub(t.created_at_ms),
        remaining_ms: t.expires_at_ms.saturating_sub(now),
        action: t.action.kind().into(),
        summary: summary(&t.action, redact_args),
        effect_class: effect,
        risk_class: t.approval.risk.unwrap_or_else(|| effect.default_risk()),
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
/// `redact_args`, arguments, tool input, query and headers left out altogether.
pub(crate) fn summary(action: &Action, redact_args: bool) -> String {
    if !redact_args {
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
