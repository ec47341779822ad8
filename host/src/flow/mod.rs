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

#[cfg(test)]
mod tests {
    //! The flows alone: a chain of `builtin:default-action`, an in-memory store, a manual clock.

    use super::*;
    use crate::action::{Action, LocalExec, fixtures};
    use crate::answer::{Found, Transition};
    use crate::chain::Chain;
    use crate::clock::ManualClock;
    use crate::config::{HostConfig, PolicySpec};
    use crate::decision::{DenyCode, Verdict};
    use crate::engine::Runtime;
    use crate::pool::Share;
    use crate::tokens::{MemoryStore, Operation, Outcome, TokenState};
    use crate::wire::{DecideRequest, ManageRequest, Query};

    /// A chain of one `default-action` policy answering `verdict`.
    fn chain(verdict: &str) -> Arc<Chain> {
        let config = HostConfig {
            policies: vec![
                PolicySpec::builtin("default-action")
                    .with_config(serde_json::json!({ "action": verdict })),
            ],
            compile_cache: false,
            ..HostConfig::default()
        };
        let runtime = Arc::new(Runtime::new(&config.engine_options()).unwrap());
        Arc::new(Chain::load(&runtime, &config.policies, &config.limits).unwrap())
    }

    fn context(max_pending_per_session: usize) -> Context {
        Context {
            store: Arc::new(MemoryStore::new()),
            clock: Arc::new(ManualClock::new(1_000)),
            pool: Arc::new(Pool::new(1)),
            token_ttl_ms: 60_000,
            retry_after_ms: 500,
            expected_sandbox_id: Some("sbx".into()),
            management_token: None,
            max_pending_per_session,
            max_pending: 100,
        }
    }

    fn request(sandbox: &str, token: Option<&str>) -> DecideRequest {
        DecideRequest {
            action: match fixtures::exec("ls", &["-l"]) {
                Action::LocalExec(e) => Action::LocalExec(LocalExec {
                    sandbox_id: sandbox.into(),
                    ..e
                }),
                other => other,
            },
            request_fingerprint: None,
            approval_token: token.map(Into::into),
        }
    }

    fn manage(operation: Operation, id: &str) -> ManageRequest {
        ManageRequest {
            operation,
            token_id: id.into(),
            management_token: None,
        }
    }

    #[tokio::test]
    async fn an_ask_issues_one_pending_token_and_a_retry_waits_on_it() {
        let (cx, chain) = (context(10), chain("pending_hitl"));
        let asked = decide::decide(&cx, &chain, &request("sbx", None), &Share::default()).await;
        assert_eq!(asked.verdict, Verdict::Ask);
        assert_eq!(asked.transition, Some(Transition::Issued));
        assert_eq!(asked.retry_after_ms, Some(500));
        assert_eq!(asked.rule.as_deref(), Some("default-action"));
        let id = asked.token_id.clone().unwrap();
        let live = cx.store.live(1_000).await.unwrap();
        assert_eq!(live.len(), 1);
        assert_eq!(live[0].id, id);
        assert_eq!(live[0].expires_at_ms, 61_000);

        let retry = request("sbx", Some(&id));
        let retried = decide::decide(&cx, &chain, &retry, &Share::default()).await;
        assert_eq!(retried.verdict, Verdict::Ask);
        assert_eq!(retried.token_id.as_deref(), Some(id.as_str()));
        assert_eq!(retried.transition, None, "waiting changes nothing");
        assert_eq!(cx.store.live(1_000).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn another_sandbox_is_refused_before_the_chain_runs() {
        let (cx, chain) = (context(10), chain("pending_hitl"));
        let answer = decide::decide(&cx, &chain, &request("other", None), &Share::default()).await;
        assert_eq!(answer.deny_code(), Some(DenyCode::SandboxMismatch));
        assert!(answer.policy.is_none(), "no policy ran");
        assert!(cx.store.live(1_000).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn the_session_bound_turns_an_ask_into_an_unavailable_deny() {
        let (cx, chain) = (context(1), chain("pending_hitl"));
        let first = decide::decide(&cx, &chain, &request("sbx", None), &Share::default()).await;
        assert_eq!(first.verdict, Verdict::Ask);
        let second = decide::decide(&cx, &chain, &request("sbx", None), &Share::default()).await;
        assert_eq!(second.deny_code(), Some(DenyCode::Unavailable));
        assert!(
            second.reason.contains("max_pending_per_session"),
            "{}",
            second.reason
        );
        assert_eq!(second.token_id, None);
        assert_eq!(second.policy.as_deref(), Some("default-action"));
    }

    #[tokio::test]
    async fn undo_withdraws_an_issued_token() {
        let (cx, chain) = (context(10), chain("pending_hitl"));
        let asked = decide::decide(&cx, &chain, &request("sbx", None), &Share::default()).await;
        decide::undo(&cx, &asked).await;
        let id = asked.token_id.unwrap();
        let token = cx.store.get(&id, 1_000).await.unwrap().unwrap();
        assert_eq!(token.state, TokenState::Revoked);
    }

    #[tokio::test]
    async fn approve_is_decided_by_veto_and_made_by_apply() {
        let (cx, chain) = (context(10), chain("pending_hitl"));
        let asked = decide::decide(&cx, &chain, &request("sbx", None), &Share::default()).await;
        let id = asked.token_id.unwrap();

        let mut approved = manage::veto(
            &cx,
            Arc::clone(&chain),
            &manage(Operation::Approve, &id),
            None,
        )
        .await;
        assert_eq!(approved.outcome, Outcome::Ok);
        let change = approved.change.clone().unwrap();
        assert_eq!(
            (change.from, change.to),
            (TokenState::Pending, TokenState::Approved)
        );
        let pending = cx.store.get(&id, 1_000).await.unwrap().unwrap();
        assert_eq!(pending.state, TokenState::Pending, "veto changes nothing");
        assert!(manage::apply(&cx, &id, &mut approved).await);
        let token = cx.store.get(&id, 1_000).await.unwrap().unwrap();
        assert_eq!(token.state, TokenState::Approved);

        // Applying the same change again finds the token changed: a refusal, nothing changed.
        let mut stale = approved.clone();
        stale.change = Some(change.clone());
        assert!(!manage::apply(&cx, &id, &mut stale).await);
        assert_eq!(stale.outcome, Outcome::Denied);
        assert!(stale.reason.unwrap().contains("changed while"));

        let used = decide::decide(&cx, &chain, &request("sbx", Some(&id)), &Share::default()).await;
        assert_eq!(used.verdict, Verdict::Allow);
        assert_eq!(used.transition, Some(Transition::Consumed));
    }

    #[tokio::test]
    async fn a_missing_token_is_not_found_by_manage_and_query() {
        let (cx, chain) = (context(10), chain("allow"));
        let revoked = manage::veto(&cx, chain, &manage(Operation::Revoke, "nope"), None).await;
        assert_eq!(revoked.outcome, Outcome::NotFound);
        assert!(revoked.change.is_none());
        let shown = query::query(&cx, &Query::Show("nope".into()), 1_000).await;
        assert_eq!(shown.outcome, Outcome::NotFound);
        assert_eq!(shown.reason.as_deref(), Some("token `nope` not found"));
        let listed = query::query(&cx, &Query::List, 1_000).await;
        assert!(matches!(listed.found, Found::List(ref l) if l.is_empty()));
    }

    #[test]
    fn a_configured_management_token_is_required() {
        let mut cx = context(10);
        cx.management_token = Some(crate::auth::ManagementToken::new("s3cret"));
        let request = crate::wire::QueryRequest::from(Query::List);
        assert!(query::authorize(&cx, &request).is_err());
    }
}
