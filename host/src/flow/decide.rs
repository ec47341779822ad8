//! A decide request: a fresh one runs the chain (and an ask issues a token); a retry presents
//! its token to the store.

use super::Context;
use crate::action::Action;
use crate::answer::{Decided, Transition};
use crate::chain::Chain;
use crate::decision::{DenyCode, FailureKind, Verdict};
use crate::pool::Share;
use crate::tokens::{self, Presented, Redemption, TokenState};
use crate::wire::DecideRequest;
use std::sync::Arc;

/// Decide `request` on `chain`, queueing policy calls on `share`.
pub(crate) async fn decide(
    cx: &Context,
    chain: &Arc<Chain>,
    request: &DecideRequest,
    share: &Share,
) -> Decided {
    let action = &request.action;
    if let Some(expected) = &cx.expected_sandbox_id
        && action.sandbox_id() != expected
    {
        let reason = format!(
            "sandbox `{}` is not the sandbox this server is bound to",
            action.sandbox_id()
        );
        return Decided::deny(DenyCode::SandboxMismatch, reason);
    }
    match &request.approval_token {
        // The fingerprint is computed only when a token needs it.
        None => fresh(cx, chain, action, share).await,
        Some(token_id) => {
            let fingerprint = action.fingerprint();
            // Exact, as firma compares: uppercase hex is a mismatch.
            if let Some(client) = &request.request_fingerprint
                && *client != fingerprint
            {
                let reason = "fingerprint mismatch: the request_fingerprint sent does not match \
                              the request";
                return Decided::deny(DenyCode::ApprovalInvalid, reason);
            }
            retry(cx, action, token_id, &fingerprint).await
        }
    }
}

/// Run the chain; on an ask, issue a pending token (unless the pending bounds are reached).
async fn fresh(cx: &Context, chain: &Arc<Chain>, action: &Action, share: &Share) -> Decided {
    let call = {
        let (chain, action) = (Arc::clone(chain), action.clone());
        move || chain.decide(&action)
    };
    let decision = match cx.pool.run(share, call).await {
        Ok(decision) => decision,
        Err(e) => {
            return Decided {
                failure: Some(FailureKind::Trap),
                ..Decided::deny(DenyCode::PolicyFailed, e.0)
            };
        }
    };
    let mut answer = match decision.verdict {
        Verdict::Allow => Decided::allow(decision.reason),
        Verdict::Deny => {
            let code = if decision.failure.is_some() {
                DenyCode::PolicyFailed
            } else {
                DenyCode::PolicyDenied
            };
            Decided::deny(code, decision.reason)
        }
        Verdict::Ask => {
            let now = cx.clock.now_ms();
            if let Some(reason) = pending_bound(cx, action, now).await {
                Decided::deny(DenyCode::Unavailable, reason)
            } else {
                // A policy may give a human less time than the host's token lifetime, not more.
                let lifetime_ms = decision
                    .approval_timeout_ms
                    .map_or(cx.token_ttl_ms, |t| t.min(cx.token_ttl_ms));
                let suggestions: Vec<_> = decision
                    .suggestions
                    .into_iter()
                    .filter(|g| !g.rules.is_empty())
                    .map(|g| g.rules)
                    .collect();
                let ask = tokens::Ask {
                    policy: &decision.policy,
                    rule_id: decision.rule_id.clone(),
                    reason: &decision.reason,
                    lifetime_ms,
                    effect: decision.effect,
                    risk: decision.risk,
                    policy_refs: decision.policy_refs,
                    chain_digest: chain.chain_digest(),
                    suggestions: &suggestions,
                };
                match tokens::issue(&*cx.store, action, action.fingerprint(), ask, now).await {
                    Ok(id) => Decided {
                        suggestions,
                        transition: Some(Transition::Issued),
                        ..Decided::pending(id, cx.retry_after_ms, decision.reason)
                    },
                    Err(e) => {
                        let reason = format!(
                            "a human must approve this, but no approval token could be issued: {e}"
                        );
                        Decided::deny(DenyCode::Unavailable, reason)
                    }
                }
            }
        }
    };
    answer.policy = Some(decision.policy);
    answer.rule = decision.rule_id;
    answer.failure = decision.failure;
    answer.effect = Some(decision.effect);
    answer.risk = Some(decision.risk);
    answer
}

/// Why a new pending token may not be issued (the session's or the server's bound on live
/// pending tokens is reached), if it may not.
async fn pending_bound(cx: &Context, action: &Action, now: u64) -> Option<String> {
    let session = action.session_id();
    match cx.store.pending(session, now).await {
        Ok(count) if count.session >= cx.max_pending_per_session => Some(format!(
            "a human must approve this, but session `{session}` already has {} approval \
             requests waiting (the limit is {}, `max_pending_per_session`); retry or revoke \
             those first",
            count.session, cx.max_pending_per_session
        )),
        Ok(count) if count.all >= cx.max_pending => Some(format!(
            "a human must approve this, but {} approval requests are already waiting (the \
             limit is {}, `max_pending`)",
            count.all, cx.max_pending
        )),
        Ok(_) => None,
        Err(e) => Some(format!(
            "a human must approve this, but the pending approvals could not be counted: {e}"
        )),
    }
}

/// Present `token_id` for the retried `action`.
async fn retry(cx: &Context, action: &Action, token_id: &str, fingerprint: &str) -> Decided {
    let now = cx.clock.now_ms();
    let presented = Presented {
        fingerprint,
        action,
    };
    let mut answer = match cx.store.redeem(token_id, &presented, now).await {
        Err(e) => Decided::deny(DenyCode::Unavailable, e.to_string()),
        Ok(redemption) => {
            let deny = |why: &str| {
                Decided::deny(DenyCode::ApprovalInvalid, format!("approval token {why}"))
            };
            match redemption {
                Redemption::Allowed => Decided {
                    transition: Some(Transition::Consumed),
                    ..Decided::allow("approved by an operator; the approval token is now consumed")
                },
                Redemption::Pending => {
                    return Decided::pending(
                        token_id.to_owned(),
                        cx.retry_after_ms,
                        "still waiting for an operator to approve",
                    );
                }
                Redemption::NotFound => deny("not found"),
                Redemption::AlreadyConsumed => deny("already consumed"),
                Redemption::Revoked => deny("revoked"),
                Redemption::Expired => Decided {
                    transition: Some(Transition::Expired),
                    ..deny("expired")
                },
                Redemption::FingerprintMismatch => {
                    deny("fingerprint mismatch: the token was issued for another request")
                }
                Redemption::ContextMismatch => deny(
                    "context mismatch: the token was issued to another session, sandbox or agent",
                ),
            }
        }
    };
    answer.token_id = Some(token_id.to_owned());
    answer
}

/// A retry consumed its token, or a fresh request issued one, but the record of it could not be
/// written and the answer becomes a deny: give the token back (approved again), or withdraw the
/// token no one was told of, so the store does not hold what the log lacks.
pub(crate) async fn undo(cx: &Context, answer: &Decided) {
    let (Some(id), Some(transition)) = (&answer.token_id, answer.transition) else {
        return;
    };
    let (from, to) = match transition {
        Transition::Consumed => (TokenState::Consumed, TokenState::Approved),
        Transition::Issued => (TokenState::Pending, TokenState::Revoked),
        _ => return,
    };
    if let Err(e) = cx.store.set_state_if(id, from, to).await {
        tracing::error!(
            token = id.as_str(),
            "a token change that could not be audited could not be undone either: {e}"
        );
    }
}
