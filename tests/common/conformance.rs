//! The token-store conformance suite: every store must pass all of it.

use super::*;
use gavel_host::tokens::{
    Operation, Outcome, Presented, Redemption, Token, TokenState, TokenStore,
};
use gavel_host::{Action, action::LocalExec};
use std::future::Future;
use std::sync::Arc;

fn action(session: &str, agent: Option<&str>) -> Action {
    Action::LocalExec(LocalExec {
        executable: "make".into(),
        args: vec!["deploy".into()],
        session_id: session.into(),
        sandbox_id: "sbx".into(),
        agent_id: agent.map(Into::into),
        profile: "p".into(),
        hitl_mode: "async_token".into(),
    })
}

fn token(id: &str, created: u64) -> Token {
    let action = action("s", Some("a"));
    Token {
        id: id.into(),
        state: TokenState::Pending,
        fingerprint: action.fingerprint(),
        action,
        created_at_ms: created,
        expires_at_ms: created + 1000,
        policy: "p".into(),
        rule_id: Some("r".into()),
        reason: Some("why".into()),
        approval: Default::default(),
    }
}

/// Run every conformance check against stores made by `make` (a fresh, empty store each time).
pub async fn suite<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn TokenStore>>,
{
    management_table(&make().await).await;
    redemption_flow(&make().await).await;
    expiry_and_pruning(&make().await).await;
    approving_after_expiry(&make().await).await;
    records_round_trip(&make().await).await;
    network_tokens(&make().await).await;
    racing_redemptions(make().await).await;
    contract_flow_through_the_host(make().await).await;
    compare_and_set_and_counts(&make().await).await;
    pending_by_session(&make().await).await;
}

/// `pending` counts live pending tokens of one session and of all (the pending bounds).
async fn pending_by_session(store: &Arc<dyn TokenStore>) {
    for (id, session) in [("a", "s1"), ("b", "s1"), ("c", "s2"), ("d", "s1")] {
        let mut t = token(id, 0);
        t.action = action(session, None);
        t.fingerprint = t.action.fingerprint();
        store.insert(t).await.unwrap();
    }
    assert!(
        store
            .set_state_if("d", TokenState::Pending, TokenState::Approved)
            .await
            .unwrap()
    );
    let counts = store.pending("s1", 10).await.unwrap();
    assert_eq!((counts.session, counts.all), (2, 3));
    let counts = store.pending("s3", 10).await.unwrap();
    assert_eq!((counts.session, counts.all), (0, 3));
    // Past their expiry they are not counted.
    let counts = store.pending("s1", 5000).await.unwrap();
    assert_eq!((counts.session, counts.all), (0, 0));
}

/// `set_state_if` changes a state only from the one expected (the host applies operators'
/// changes with it after auditing them); `counts` agrees with `live`.
async fn compare_and_set_and_counts(store: &Arc<dyn TokenStore>) {
    use TokenState::*;
    store.insert(token("a", 0)).await.unwrap();
    store.insert(token("b", 0)).await.unwrap();
    store.insert(token("c", 0)).await.unwrap();
    assert!(!store.set_state_if("a", Approved, Consumed).await.unwrap());
    assert!(store.set_state_if("a", Pending, Approved).await.unwrap());
    assert!(!store.set_state_if("a", Pending, Revoked).await.unwrap());
    assert!(store.set_state_if("c", Pending, Revoked).await.unwrap());
    assert!(
        !store
            .set_state_if("missing", Pending, Approved)
            .await
            .unwrap()
    );
    assert_eq!(store.get("a", 10).await.unwrap().unwrap().state, Approved);
    assert_eq!(store.get("b", 10).await.unwrap().unwrap().state, Pending);
    assert_eq!(store.get("c", 10).await.unwrap().unwrap().state, Revoked);
    let counts = store.counts(10).await.unwrap();
    assert_eq!((counts.pending, counts.approved), (1, 1));
    // Past their expiry they are not live.
    let counts = store.counts(5000).await.unwrap();
    assert_eq!((counts.pending, counts.approved), (0, 0));
    // A consumed token given back (its allow could not be recorded) redeems again.
    let asked = action("s", Some("a"));
    let fp = asked.fingerprint();
    let presented = Presented {
        fingerprint: &fp,
        action: &asked,
    };
    assert_eq!(
        store.redeem("a", &presented, 20).await.unwrap(),
        Redemption::Allowed
    );
    assert!(store.set_state_if("a", Consumed, Approved).await.unwrap());
    assert_eq!(
        store.redeem("a", &presented, 30).await.unwrap(),
        Redemption::Allowed
    );
}

async fn management_table(store: &Arc<dyn TokenStore>) {
    use Operation::*;
    let now = 100;
    // (setup, op, outcome, state after)
    let rows: &[(&str, Operation, Outcome, TokenState)] = &[
        ("pending", Approve, Outcome::Ok, TokenState::Approved),
        ("pending", Revoke, Outcome::Ok, TokenState::Revoked),
        ("approved", Approve, Outcome::Ok, TokenState::Approved),
        ("approved", Revoke, Outcome::Ok, TokenState::Revoked),
        (
            "consumed",
            Approve,
            Outcome::AlreadyConsumed,
            TokenState::Consumed,
        ),
        (
            "consumed",
            Revoke,
            Outcome::AlreadyConsumed,
            TokenState::Consumed,
        ),
        (
            "revoked",
            Approve,
            Outcome::AlreadyRevoked,
            TokenState::Revoked,
        ),
        ("revoked", Revoke, Outcome::Ok, TokenState::Revoked),
        (
            "lapsed-pending",
            Approve,
            Outcome::Expired,
            TokenState::Expired,
        ),
        (
            "lapsed-approved",
            Revoke,
            Outcome::Expired,
            TokenState::Expired,
        ),
        // firma: approving an approved token is idempotent and checks no expiry.
        (
            "lapsed-approved",
            Approve,
            Outcome::Ok,
            TokenState::Approved,
        ),
    ];
    for (i, (setup, op, outcome, after)) in rows.iter().enumerate() {
        let id = format!("mt-{i}");
        store.insert(token(&id, 0)).await.unwrap();
        let t = token(&id, 0);
        let p = Presented {
            fingerprint: &t.fingerprint,
            action: &t.action,
        };
        match *setup {
            "approved" | "lapsed-approved" => {
                assert_eq!(store.apply(&id, Approve, now).await.unwrap(), Outcome::Ok)
            }
            "consumed" => {
                store.apply(&id, Approve, now).await.unwrap();
                assert_eq!(
                    store.redeem(&id, &p, now).await.unwrap(),
                    Redemption::Allowed
                );
            }
            "revoked" => assert_eq!(store.apply(&id, Revoke, now).await.unwrap(), Outcome::Ok),
            _ => {}
        }
        let at = if setup.starts_with("lapsed") {
            1000
        } else {
            now
        };
        assert_eq!(
            store.apply(&id, *op, at).await.unwrap(),
            *outcome,
            "{setup} {op:?}"
        );
        assert_eq!(
            store.get(&id, at).await.unwrap().unwrap().state,
            *after,
            "{setup} {op:?}"
        );
    }
    assert_eq!(
        store.apply("nope", Approve, now).await.unwrap(),
        Outcome::NotFound
    );
    assert_eq!(
        store.apply("nope", Revoke, now).await.unwrap(),
        Outcome::NotFound
    );
    assert!(store.get("nope", now).await.unwrap().is_none());
}

async fn redemption_flow(store: &Arc<dyn TokenStore>) {
    store.insert(token("rf", 0)).await.unwrap();
    let t = token("rf", 0);
    let good = Presented {
        fingerprint: &t.fingerprint,
        action: &t.action,
    };
    assert_eq!(
        store.redeem("rf", &good, 10).await.unwrap(),
        Redemption::Pending
    );
    let other = action("s", Some("a"));
    let wrong_fp = Presented {
        fingerprint: "00",
        action: &other,
    };
    assert_eq!(
        store.redeem("rf", &wrong_fp, 10).await.unwrap(),
        Redemption::FingerprintMismatch
    );
    for asked in [
        action("s2", Some("a")),
        action("s", None),
        action("s", Some("b")),
    ] {
        let p = Presented {
            fingerprint: &t.fingerprint,
            action: &asked,
        };
        assert_eq!(
            store.redeem("rf", &p, 10).await.unwrap(),
            Redemption::ContextMismatch
        );
    }
    store.apply("rf", Operation::Approve, 10).await.unwrap();
    assert_eq!(
        store.redeem("rf", &good, 10).await.unwrap(),
        Redemption::Allowed
    );
    assert_eq!(
        store.redeem("rf", &good, 10).await.unwrap(),
        Redemption::AlreadyConsumed
    );
    assert_eq!(
        store.redeem("missing", &good, 10).await.unwrap(),
        Redemption::NotFound
    );

    store.insert(token("rv", 0)).await.unwrap();
    store.apply("rv", Operation::Revoke, 10).await.unwrap();
    assert_eq!(
        store.redeem("rv", &good, 10).await.unwrap(),
        Redemption::Revoked
    );
}

async fn expiry_and_pruning(store: &Arc<dyn TokenStore>) {
    store.insert(token("ex", 0)).await.unwrap();
    let t = token("ex", 0);
    let p = Presented {
        fingerprint: &t.fingerprint,
        action: &t.action,
    };
    assert_eq!(
        store.redeem("ex", &p, 999).await.unwrap(),
        Redemption::Pending
    );
    assert_eq!(
        store.redeem("ex", &p, 1000).await.unwrap(),
        Redemption::Expired
    );
    assert_eq!(
        store.get("ex", 1000).await.unwrap().unwrap().state,
        TokenState::Expired
    );
    // A later token stays; the expired one goes once its grace window (500) has passed.
    store.insert(token("later", 2000)).await.unwrap();
    assert_eq!(store.prune(1499, 500).await.unwrap(), 0);
    assert_eq!(
        store.redeem("ex", &p, 1499).await.unwrap(),
        Redemption::Expired
    );
    assert_eq!(store.prune(1500, 500).await.unwrap(), 1);
    assert_eq!(
        store.redeem("ex", &p, 1500).await.unwrap(),
        Redemption::NotFound
    );
    assert!(store.get("later", 1500).await.unwrap().is_some());
}

/// firma's rule, in every store: approving an approved token after its expiry answers `ok` and
/// leaves it approved; the next retry is told "expired" and marks it; a read marks nothing.
async fn approving_after_expiry(store: &Arc<dyn TokenStore>) {
    let t = token("late", 0);
    let p = Presented {
        fingerprint: &t.fingerprint,
        action: &t.action,
    };
    store.insert(token("late", 0)).await.unwrap();
    assert_eq!(
        store.apply("late", Operation::Approve, 10).await.unwrap(),
        Outcome::Ok
    );
    for at in [1000, 5000] {
        assert_eq!(
            store.apply("late", Operation::Approve, at).await.unwrap(),
            Outcome::Ok,
            "approve of an approved token at {at}"
        );
        let read = store.get("late", at).await.unwrap().unwrap();
        assert_eq!(read.state, TokenState::Approved, "a read marks nothing");
        assert_eq!(read.state_at(at), TokenState::Expired);
    }
    assert_eq!(
        store.redeem("late", &p, 5000).await.unwrap(),
        Redemption::Expired
    );
    assert_eq!(
        store.get("late", 5000).await.unwrap().unwrap().state,
        TokenState::Expired
    );
    assert_eq!(
        store.apply("late", Operation::Approve, 5000).await.unwrap(),
        Outcome::Expired
    );
    // A pending token past its expiry is refused, and marked, by the approve itself.
    store.insert(token("late-pending", 0)).await.unwrap();
    assert_eq!(
        store
            .get("late-pending", 1000)
            .await
            .unwrap()
            .unwrap()
            .state,
        TokenState::Pending
    );
    assert_eq!(
        store
            .apply("late-pending", Operation::Approve, 1000)
            .await
            .unwrap(),
        Outcome::Expired
    );
    assert_eq!(
        store
            .get("late-pending", 1000)
            .await
            .unwrap()
            .unwrap()
            .state,
        TokenState::Expired
    );
}

async fn records_round_trip(store: &Arc<dyn TokenStore>) {
    let mut a = token("a", 10);
    a.action = Action::ToolCall(gavel_host::action::ToolCall {
        tool: "run_command".into(),
        arg: "npm run build".into(),
        session_id: "s".into(),
        sandbox_id: "sbx".into(),
        agent_id: None,
        project_id: Some("web".into()),
        project_root: None,
        cwd: Some("/w".into()),
    });
    store.insert(a.clone()).await.unwrap();
    store.insert(token("b", 5)).await.unwrap();
    store.insert(token("c", 20)).await.unwrap();
    store.apply("c", Operation::Revoke, 30).await.unwrap();
    store.apply("b", Operation::Approve, 30).await.unwrap();
    let live = store.live(30).await.unwrap();
    let ids: Vec<&str> = live.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(
        ids,
        ["b", "a"],
        "live tokens, oldest first, without revoked ones"
    );
    assert_eq!(live[0].state, TokenState::Approved);
    assert_eq!(live[1], a, "a token comes back exactly as stored");
    assert!(
        store.live(1015).await.unwrap().iter().all(|t| t.id != "b"),
        "lapsed tokens are not live"
    );
}

async fn racing_redemptions(store: Arc<dyn TokenStore>) {
    store.insert(token("race", 0)).await.unwrap();
    store.apply("race", Operation::Approve, 1).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let t = token("race", 0);
            let p = Presented {
                fingerprint: &t.fingerprint,
                action: &t.action,
            };
            store.redeem("race", &p, 2).await.unwrap()
        }));
    }
    let mut allowed = 0;
    for t in tasks {
        match t.await.unwrap() {
            Redemption::Allowed => allowed += 1,
            Redemption::AlreadyConsumed => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(allowed, 1);
}

/// The wire contract's decision flow, end to end through a host on this store.
async fn contract_flow_through_the_host(store: Arc<dyn TokenStore>) {
    let clock = gavel_host::ManualClock::new(START);
    let host = gavel_host::PolicyHost::with_clock(
        &config(vec![default_action("pending_hitl")]),
        store,
        Arc::new(clock.clone()),
    )
    .unwrap();
    let h = Harness {
        host,
        clock,
        store: Arc::new(gavel_host::tokens::MemoryStore::new()),
    };
    let req = exec("make", &["deploy"]);
    let t = h.issue(&req).await;
    let retry = with(req.clone(), "approval_token", serde_json::json!(t));
    assert_eq!(
        h.decide(&retry).await.decision,
        gavel_host::wire::WireDecision::PendingHitl
    );
    assert_eq!(
        h.manage("local.exec.approve", &t).await.outcome,
        Outcome::Ok
    );
    assert_eq!(
        h.decide(&retry).await.decision,
        gavel_host::wire::WireDecision::Allow
    );
    assert!(denied(&h.decide(&retry).await).contains("already consumed"));
    let t2 = h.issue(&req).await;
    h.clock.advance(300_000);
    let late = with(req, "approval_token", serde_json::json!(t2));
    assert!(denied(&h.decide(&late).await).contains("expired"));
    assert_eq!(
        h.manage("local.exec.revoke", &t2).await.outcome,
        Outcome::Expired
    );
    h.clock.advance(300_000);
    assert!(h.host.prune().await.unwrap() >= 1);
    assert!(denied(&h.decide(&late).await).contains("not found"));
}

/// Tokens for every network action kind, with their approval classification and provenance,
/// come back exactly as stored, and redeem by the same rules.
async fn network_tokens(store: &Arc<dyn TokenStore>) {
    use gavel_host::{
        action::{Connect, Header, HttpRequest, Upgrade},
        decision::{EffectClass, PolicyRef, RiskClass},
        tokens::ApprovalInfo,
    };
    let actions = [
        Action::HttpRequest(HttpRequest {
            method: "POST".into(),
            scheme: "https".into(),
            host: "api.github.com".into(),
            port: 443,
            path: "/repos/a/b/issues".into(),
            query: Some("x=1".into()),
            headers: vec![Header {
                name: "content-type".into(),
                value: "application/json".into(),
            }],
            body_size: Some(12),
            session_id: "s".into(),
            sandbox_id: "sbx".into(),
            agent_id: Some("a".into()),
        }),
        Action::Connect(Connect {
            host: "db.internal".into(),
            port: 5432,
            session_id: "s".into(),
            sandbox_id: "sbx".into(),
            agent_id: None,
        }),
        Action::Upgrade(Upgrade {
            host: "chat.example.com".into(),
            path: "/ws".into(),
            protocol: "websocket".into(),
            session_id: "s".into(),
            sandbox_id: "sbx".into(),
            agent_id: None,
        }),
    ];
    for (i, action) in actions.into_iter().enumerate() {
        let mut t = token(&format!("net-{i}"), 10);
        t.fingerprint = action.fingerprint();
        t.action = action.clone();
        t.approval = ApprovalInfo {
            effect: Some(EffectClass::Write),
            risk: Some(RiskClass::High),
            policy_refs: vec![PolicyRef {
                policy: "http".into(),
                digest: "sha256:00".into(),
                rule: Some("gh-write".into()),
            }],
            chain_digest: Some("sha256:11".into()),
            suggestions: vec![vec![gavel_host::wire::WireSuggestion {
                rule: "run_command(gh pr create *)".into(),
                label: "gh pr create *".into(),
            }]],
        };
        store.insert(t.clone()).await.unwrap();
        assert_eq!(store.get(&t.id, 20).await.unwrap(), Some(t.clone()));
        assert_eq!(
            store.apply(&t.id, Operation::Approve, 20).await.unwrap(),
            Outcome::Ok
        );
        let fingerprint = action.fingerprint();
        let presented = Presented {
            fingerprint: &fingerprint,
            action: &action,
        };
        assert_eq!(
            store.redeem(&t.id, &presented, 30).await.unwrap(),
            Redemption::Allowed
        );
        assert_eq!(
            store.redeem(&t.id, &presented, 31).await.unwrap(),
            Redemption::AlreadyConsumed
        );
    }
}
