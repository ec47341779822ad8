//! The wire contract's decision flow and management table, end to end through `PolicyHost`
//! with the bundled default-action policy and a controllable clock.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

use crate::common;

use common::*;
use gavel_host::tokens::Outcome;
use gavel_host::wire::WireDecision;
use serde_json::json;

#[tokio::test]
async fn fresh_requests_follow_the_default_action() {
    for (action, want) in [
        ("allow", WireDecision::Allow),
        ("deny", WireDecision::Deny),
        ("pending_hitl", WireDecision::PendingHitl),
    ] {
        let h = harness(&config(vec![default_action(action)]));
        let r = h.decide(&exec("/bin/ls", &["-la"])).await;
        assert_eq!(r.decision, want);
        let reason = r.reason.unwrap();
        assert!(reason.contains("policy `default-action`"), "{reason}");
        if want == WireDecision::PendingHitl {
            assert!(r.approval_token.is_some());
            assert_eq!(r.retry_after_ms, Some(500));
        } else {
            assert!(r.approval_token.is_none() && r.retry_after_ms.is_none());
        }
    }
}

#[tokio::test]
async fn approve_then_retry_allows_exactly_once() {
    let h = harness(&config(vec![default_action("pending_hitl")]));
    let req = exec("/usr/bin/python3", &["script.py"]);
    let token = h.issue(&req).await;
    let retry = with(req.clone(), "approval_token", json!(token));

    // Still pending: the same token and a retry hint.
    let r = h.decide(&retry).await;
    assert_eq!(r.decision, WireDecision::PendingHitl);
    assert_eq!(r.approval_token.as_deref(), Some(token.as_str()));
    assert_eq!(r.retry_after_ms, Some(500));

    assert_eq!(
        h.manage("local.exec.approve", &token).await.outcome,
        Outcome::Ok
    );
    assert_eq!(h.decide(&retry).await.decision, WireDecision::Allow);
    assert!(denied(&h.decide(&retry).await).contains("already consumed"));
}

#[tokio::test]
async fn revoked_tokens_deny() {
    let h = harness(&config(vec![default_action("pending_hitl")]));
    let req = exec("ls", &[]);
    let token = h.issue(&req).await;
    assert_eq!(
        h.manage("local.exec.revoke", &token).await.outcome,
        Outcome::Ok
    );
    let r = h.decide(&with(req, "approval_token", json!(token))).await;
    assert!(denied(&r).contains("revoked"));
}

#[tokio::test]
async fn unknown_tokens_are_not_found() {
    let h = harness(&config(vec![default_action("pending_hitl")]));
    let r = h
        .decide(&with(
            exec("ls", &[]),
            "approval_token",
            json!("no-such-token"),
        ))
        .await;
    assert!(denied(&r).contains("not found"));
    for action in ["local.exec.approve", "local.exec.revoke"] {
        assert_eq!(
            h.manage(action, "no-such-token").await.outcome,
            Outcome::NotFound
        );
    }
}

#[tokio::test]
async fn expiry_grace_window_and_pruning() {
    let h = harness(&config(vec![default_action("pending_hitl")]));
    let req = exec("ls", &[]);
    let token = h.issue(&req).await;
    let retry = with(req, "approval_token", json!(token));

    h.clock.advance(300_000 - 1);
    assert_eq!(h.decide(&retry).await.decision, WireDecision::PendingHitl);
    h.clock.advance(1);
    assert!(denied(&h.decide(&retry).await).contains("expired"));
    // Marked expired: approving it now is refused too.
    assert_eq!(
        h.manage("local.exec.approve", &token).await.outcome,
        Outcome::Expired
    );

    // Within the grace window the record stays, so a late retry still hears "expired".
    h.clock.advance(299_999);
    assert_eq!(h.host.prune().await.unwrap(), 0);
    assert!(denied(&h.decide(&retry).await).contains("expired"));
    h.clock.advance(1);
    assert_eq!(h.host.prune().await.unwrap(), 1);
    assert!(denied(&h.decide(&retry).await).contains("not found"));
}

#[tokio::test]
async fn token_events_announce_every_change_of_state() {
    use gavel_host::events::{Received, TokenEventKind as Kind};
    let h = harness(&config(vec![default_action("pending_hitl")]));
    let mut watcher = h.host.events().subscribe();
    h.host.prune().await.unwrap(); // the first prune only marks where lapses are counted from
    let mut next =
        async || match tokio::time::timeout(std::time::Duration::from_secs(5), watcher.recv())
            .await
            .unwrap()
        {
            Received::Event(e) => (e.kind, e.token_id, e.time_ms),
            other => panic!("{other:?}"),
        };

    let req = exec("ls", &["-la"]);
    let revoked = h.issue(&req).await;
    h.manage("local.exec.revoke", &revoked).await;
    let lapsing = h.issue(&req).await;
    assert_eq!(next().await, (Kind::Issued, revoked.clone(), START));
    assert_eq!(next().await, (Kind::Revoked, revoked, START));
    assert_eq!(next().await, (Kind::Issued, lapsing.clone(), START));

    // Undecided past its expiry: the next prune announces it, at the time it lapsed.
    h.clock.advance(300_001);
    h.host.prune().await.unwrap();
    assert_eq!(next().await, (Kind::Expired, lapsing, START + 300_000));

    let token = h.issue(&req).await;
    h.manage("local.exec.approve", &token).await;
    h.decide(&with(req, "approval_token", json!(token))).await;
    let now = START + 300_001;
    assert_eq!(next().await, (Kind::Issued, token.clone(), now));
    assert_eq!(next().await, (Kind::Approved, token.clone(), now));
    assert_eq!(next().await, (Kind::Consumed, token, now));
}

#[tokio::test]
async fn an_approved_token_past_expiry_is_expired() {
    let h = harness(&config(vec![default_action("pending_hitl")]));
    let req = exec("ls", &[]);
    let token = h.issue(&req).await;
    assert_eq!(
        h.manage("local.exec.approve", &token).await.outcome,
        Outcome::Ok
    );
    h.clock.advance(300_000);
    let r = h.decide(&with(req, "approval_token", json!(token))).await;
    assert!(denied(&r).contains("expired"));
}

#[tokio::test]
async fn fingerprints_bind_the_token_to_its_request() {
    let h = harness(&config(vec![default_action("pending_hitl")]));
    let req = exec("/usr/bin/python3", &["script.py"]);
    let token = h.issue(&req).await;
    assert_eq!(
        h.manage("local.exec.approve", &token).await.outcome,
        Outcome::Ok
    );

    // The client's fingerprint is checked against the server's own computation.
    let lying = with(
        with(req.clone(), "approval_token", json!(token)),
        "request_fingerprint",
        json!("ab"),
    );
    assert!(denied(&h.decide(&lying).await).contains("fingerprint mismatch"));

    // Another request presenting the token: the server's fingerprint differs from the bound one.
    let other = with(
        exec("/usr/bin/python3", &["evil.py"]),
        "approval_token",
        json!(token),
    );
    assert!(denied(&h.decide(&other).await).contains("fingerprint mismatch"));
    let other_session = with(
        with(req.clone(), "session_id", json!("sess_2")),
        "approval_token",
        json!(token),
    );
    assert!(denied(&h.decide(&other_session).await).contains("fingerprint mismatch"));

    // None of that consumed the token; the right request with the right fingerprint runs.
    let good = with(
        with(req, "approval_token", json!(token)),
        "request_fingerprint",
        // sha256("/usr/bin/python3\0script.py\0sess_1\0sbx_1\0agent_1"), the contract's example
        json!("0fc8534d1295e50b8513d4ffd45ee82416ad0969eee621aa8bdfcff6c4406141"),
    );
    assert_eq!(h.decide(&good).await.decision, WireDecision::Allow);
}

#[tokio::test]
async fn a_bound_sandbox_refuses_others() {
    let mut c = config(vec![default_action("allow")]);
    c.expected_sandbox_id = Some("sbx_1".into());
    let h = harness(&c);
    assert_eq!(
        h.decide(&exec("ls", &[])).await.decision,
        WireDecision::Allow
    );
    let r = h
        .decide(&with(exec("ls", &[]), "sandbox_id", json!("sbx_other")))
        .await;
    assert!(denied(&r).contains("sandbox"));
}

/// Every row of the contract's management table, driven through the host.
#[tokio::test]
async fn management_table() {
    let h = harness(&config(vec![default_action("pending_hitl")]));
    let req = exec("ls", &[]);
    let approve = "local.exec.approve";
    let revoke = "local.exec.revoke";

    // pending: approve -> ok (approved); approved: approve -> ok (idempotent), revoke -> ok.
    let t = h.issue(&req).await;
    assert_eq!(h.manage(approve, &t).await.outcome, Outcome::Ok);
    assert_eq!(h.manage(approve, &t).await.outcome, Outcome::Ok);
    assert_eq!(h.manage(revoke, &t).await.outcome, Outcome::Ok);
    // revoked: approve -> already_revoked, revoke -> ok (idempotent).
    assert_eq!(h.manage(approve, &t).await.outcome, Outcome::AlreadyRevoked);
    assert_eq!(h.manage(revoke, &t).await.outcome, Outcome::Ok);

    // pending: revoke -> ok.
    let t = h.issue(&req).await;
    assert_eq!(h.manage(revoke, &t).await.outcome, Outcome::Ok);

    // consumed: both -> already_consumed.
    let t = h.issue(&req).await;
    assert_eq!(h.manage(approve, &t).await.outcome, Outcome::Ok);
    let retry = with(req.clone(), "approval_token", json!(t));
    assert_eq!(h.decide(&retry).await.decision, WireDecision::Allow);
    assert_eq!(
        h.manage(approve, &t).await.outcome,
        Outcome::AlreadyConsumed
    );
    assert_eq!(h.manage(revoke, &t).await.outcome, Outcome::AlreadyConsumed);

    // pending past expiry: both -> expired. approved past expiry: approve -> ok (firma: no
    // expiry check on an idempotent approve), revoke -> expired, and it stays expired.
    let pending = h.issue(&req).await;
    let approved = h.issue(&req).await;
    assert_eq!(h.manage(approve, &approved).await.outcome, Outcome::Ok);
    h.clock.advance(300_000);
    assert_eq!(h.manage(approve, &pending).await.outcome, Outcome::Expired);
    assert_eq!(h.manage(revoke, &pending).await.outcome, Outcome::Expired);
    assert_eq!(h.manage(approve, &approved).await.outcome, Outcome::Ok);
    assert_eq!(h.manage(revoke, &approved).await.outcome, Outcome::Expired);
    assert_eq!(h.manage(approve, &approved).await.outcome, Outcome::Expired);

    // unknown or empty id: not_found; another local.exec.* action: an unknown action.
    assert_eq!(h.manage(approve, "nope").await.outcome, Outcome::NotFound);
    assert_eq!(h.manage(revoke, "nope").await.outcome, Outcome::NotFound);
    let empty = h.manage(revoke, "").await;
    assert_eq!(
        (empty.outcome, empty.reason.as_deref()),
        (Outcome::NotFound, Some("token not found"))
    );
    let unknown = h
        .decide(&json!({"action": "local.exec.extend", "token_id": "x"}))
        .await;
    assert_eq!(denied(&unknown), "unknown action 'local.exec.extend'");
}

/// 64 threads retry one approved token at once: exactly one is allowed.
#[test]
fn racing_retries_consume_an_approved_token_once() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    let h = harness(&config(vec![default_action("pending_hitl")]));
    let req = exec("ls", &["-la"]);
    let token = rt.block_on(async {
        let t = h.issue(&req).await;
        assert_eq!(
            h.manage("local.exec.approve", &t).await.outcome,
            Outcome::Ok
        );
        t
    });
    let retry = with(req, "approval_token", json!(token)).to_string();
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(64));
    let threads: Vec<_> = (0..64)
        .map(|_| {
            let host = h.host.clone();
            let line = retry.clone();
            let barrier = barrier.clone();
            let handle = rt.handle().clone();
            std::thread::spawn(move || {
                barrier.wait();
                handle
                    .block_on(host.handle_line(line.as_bytes(), gavel_host::Operator::default()))
                    .to_line()
            })
        })
        .collect();
    let answers: Vec<String> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let allowed = answers
        .iter()
        .filter(|a| a.contains(r#""decision":"allow""#))
        .count();
    let consumed = answers
        .iter()
        .filter(|a| a.contains("already consumed"))
        .count();
    assert_eq!(allowed, 1, "{answers:?}");
    assert_eq!(consumed, 63, "{answers:?}");
}

/// A store that cannot be reached: every answer that needs it fails closed.
#[tokio::test]
async fn an_unreachable_store_fails_closed() {
    use gavel_host::tokens::*;
    struct Down;
    #[async_trait::async_trait]
    impl TokenStore for Down {
        async fn insert(&self, _: Token) -> Result<(), StoreError> {
            Err(StoreError("connection refused".into()))
        }
        async fn get(&self, _: &str, _: Millis) -> Result<Option<Token>, StoreError> {
            Err(StoreError("connection refused".into()))
        }
        async fn redeem(
            &self,
            _: &str,
            _: &Presented<'_>,
            _: Millis,
        ) -> Result<Redemption, StoreError> {
            Err(StoreError("connection refused".into()))
        }
        async fn apply(&self, _: &str, _: Operation, _: Millis) -> Result<Outcome, StoreError> {
            Err(StoreError("connection refused".into()))
        }
        async fn set_state_if(
            &self,
            _: &str,
            _: TokenState,
            _: TokenState,
        ) -> Result<bool, StoreError> {
            Err(StoreError("connection refused".into()))
        }
        async fn live(&self, _: Millis) -> Result<Vec<Token>, StoreError> {
            Err(StoreError("connection refused".into()))
        }
        async fn prune(&self, _: Millis, _: Millis) -> Result<usize, StoreError> {
            Err(StoreError("connection refused".into()))
        }
    }
    let host = gavel_host::PolicyHost::new(
        &config(vec![default_action("pending_hitl")]),
        std::sync::Arc::new(Down),
    )
    .unwrap();
    let op = gavel_host::Operator::default();
    let fresh = host
        .handle_line(exec("ls", &[]).to_string().as_bytes(), op)
        .await
        .to_line();
    assert!(
        fresh.contains(r#""decision":"deny""#) && fresh.contains("token store unavailable"),
        "{fresh}"
    );
    let retry = with(exec("ls", &[]), "approval_token", json!("t")).to_string();
    let retry = host.handle_line(retry.as_bytes(), op).await.to_line();
    assert!(
        retry.contains(r#""decision":"deny""#) && retry.contains("token store unavailable"),
        "{retry}"
    );
    let manage = host
        .handle_line(br#"{"action":"local.exec.approve","token_id":"t"}"#, op)
        .await
        .to_line();
    assert!(
        manage.contains(r#""outcome":"denied""#) && manage.contains("token store unavailable"),
        "{manage}"
    );
}

#[tokio::test]
async fn tool_calls_get_tokens_bound_to_their_fields() {
    let h = harness(&config(vec![default_action("pending_hitl")]));
    let call = json!({"action": "tool.call", "tool": "run_command", "arg": "make", "session_id": "s", "sandbox_id": "b"});
    let token = h.issue(&call).await;
    assert_eq!(
        h.manage("local.exec.approve", &token).await.outcome,
        Outcome::Ok
    );
    let other = with(
        with(call.clone(), "arg", json!("make install")),
        "approval_token",
        json!(token),
    );
    assert!(denied(&h.decide(&other).await).contains("fingerprint mismatch"));
    let retry = with(call, "approval_token", json!(token));
    assert_eq!(h.decide(&retry).await.decision, WireDecision::Allow);
}
