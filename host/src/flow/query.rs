//! `local.exec.list` and `local.exec.show`: the live tokens, or one.

use super::Context;
use crate::answer::{Found, Queried, outcome_reason};
use crate::auth::Refusal;
use crate::tokens::Outcome;
use crate::wire::{Query, QueryRequest};

/// Whether `request` carries the management token the host asks for (if it asks for one).
pub(crate) fn authorize(cx: &Context, request: &QueryRequest) -> Result<(), Refusal> {
    crate::auth::check(
        cx.management_token.as_ref(),
        request.management_token.as_ref(),
    )
}

/// Answer `query` as of `now`.
pub(crate) async fn query(cx: &Context, query: &Query, now: u64) -> Queried {
    match query {
        Query::List => list(cx, now).await,
        Query::Show(id) => show(cx, id, now).await,
    }
}

/// The pending and approved tokens, oldest first.
pub(crate) async fn list(cx: &Context, now: u64) -> Queried {
    match cx.store.live(now).await {
        Ok(live) => Queried {
            outcome: Outcome::Ok,
            reason: None,
            found: Found::List(live),
        },
        Err(e) => Queried::refused(Outcome::Denied, Some(e.to_string())),
    }
}

/// Token `id`, in whatever state.
pub(crate) async fn show(cx: &Context, id: &str, now: u64) -> Queried {
    match cx.store.get(id, now).await {
        Ok(Some(token)) => Queried {
            outcome: Outcome::Ok,
            reason: None,
            found: Found::One(Box::new(token)),
        },
        Ok(None) => Queried::refused(Outcome::NotFound, outcome_reason(Outcome::NotFound, id)),
        Err(e) => Queried::refused(Outcome::Denied, Some(e.to_string())),
    }
}
