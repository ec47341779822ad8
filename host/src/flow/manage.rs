//! An operator's approve or revoke: first put to every policy's `manage` hook ([`veto`]), then,
//! once the host has recorded it, applied with a compare-and-set ([`apply`]).

use super::Context;
use crate::answer::{Change, Managed, Transition, outcome_reason};
use crate::chain::Chain;
use crate::tokens::{self, Operation, Outcome, TokenState};
use crate::wire::ManageRequest;
use std::sync::Arc;

/// Check the credential, read the token, put a change of state to the policies, and decide the
/// change (not yet applied). `uid` is the operator's, when the transport knows it.
pub(crate) async fn veto(
    cx: &Context,
    chain: Arc<Chain>,
    request: &ManageRequest,
    uid: Option<u32>,
) -> Managed {
    if let Err(refusal) = crate::auth::check(
        cx.management_token.as_ref(),
        request.management_token.as_ref(),
    ) {
        return Managed::refused(Outcome::Unauthorized, refusal.reason());
    }
    let id = &request.token_id;
    let now = cx.clock.now_ms();
    let token = match cx.store.get(id, now).await {
        Ok(Some(token)) => token,
        Ok(None) => {
            return Managed {
                outcome: Outcome::NotFound,
                reason: outcome_reason(Outcome::NotFound, id),
                change: None,
            };
        }
        Err(e) => return Managed::refused(Outcome::Denied, e.to_string()),
    };
    // Policies are asked only about a change of state; idempotent repeats and refusals the
    // table already decides need no one's permission.
    let changes = tokens::preview(&token, request.operation, now) == Outcome::Ok
        && !matches!(
            (token.state, request.operation),
            (TokenState::Approved, Operation::Approve) | (TokenState::Revoked, Operation::Revoke)
        );
    if changes {
        // Hooks are policy calls: off the async workers, but never queued behind decisions.
        let op = request.operation;
        let asked = token.clone();
        let verdict = tokio::task::spawn_blocking(move || chain.manage(op, &asked, uid))
            .await
            .unwrap_or_else(|e| Err(format!("the manage hooks failed on their thread: {e}")));
        if let Err(veto) = verdict {
            return Managed::refused(Outcome::Denied, veto);
        }
    }
    // Decided here on the token as read; applied after the record is written, with a
    // compare-and-set on the state read.
    let mut after = token.clone();
    let outcome = tokens::apply(&mut after, request.operation, now);
    // A change of state is applied even when the answer is a refusal: a token found past its
    // expiry is marked expired.
    let change = (after.state != token.state).then(|| Change {
        from: token.state,
        to: after.state,
        transition: match after.state {
            TokenState::Expired => Transition::Expired,
            TokenState::Revoked => Transition::Revoked,
            _ => Transition::Approved,
        },
        action: token.action.clone(),
    });
    Managed {
        outcome,
        reason: outcome_reason(outcome, id),
        change,
    }
}

/// Apply the change `answer` decided on token `id`. When the token changed meanwhile, or the
/// store fails, the answer becomes a refusal and `false` is returned: nothing was changed.
pub(crate) async fn apply(cx: &Context, id: &str, answer: &mut Managed) -> bool {
    let Some(c) = &answer.change else {
        return true;
    };
    let conflict = match cx.store.set_state_if(id, c.from, c.to).await {
        Ok(true) => return true,
        Ok(false) => format!(
            "token `{id}` changed while this operation was being recorded; nothing was \
             changed, try again"
        ),
        Err(e) => format!("{e}; nothing was changed"),
    };
    *answer = Managed::refused(Outcome::Denied, conflict);
    false
}
