//! Model-based testing of token stores: random sequences of issue, retry, approve, revoke,
//! expire (a controllable clock) and prune, each checked against a plain model of the contract.

use gavel_host::tokens::{
    Operation, Outcome, Presented, Redemption, Token, TokenState, TokenStore,
};
use gavel_host::{Action, action::LocalExec};
use proptest::prelude::*;
use std::collections::HashMap;

const TTL: u64 = 1000;
const GRACE: u64 = 500;

#[derive(Debug, Clone)]
pub enum Op {
    Issue(u8),
    Retry(u8, bool),
    Approve(u8),
    Revoke(u8),
    Advance(u64),
    Prune,
}

pub fn ops() -> impl Strategy<Value = Vec<Op>> {
    let op = prop_oneof![
        3 => (0u8..6).prop_map(Op::Issue),
        4 => (0u8..6, any::<bool>()).prop_map(|(k, good)| Op::Retry(k, good)),
        3 => (0u8..6).prop_map(Op::Approve),
        2 => (0u8..6).prop_map(Op::Revoke),
        2 => (1u64..700).prop_map(Op::Advance),
        1 => Just(Op::Prune),
    ];
    proptest::collection::vec(op, 1..60)
}

fn action(k: u8) -> Action {
    Action::LocalExec(LocalExec {
        executable: "make".into(),
        args: vec![format!("t{k}")],
        session_id: "s".into(),
        sandbox_id: "b".into(),
        agent_id: None,
        profile: "p".into(),
        hitl_mode: "async_token".into(),
    })
}

/// The model: what the contract says, written as plainly as possible.
#[derive(Default)]
struct Model {
    tokens: HashMap<String, (TokenState, u64)>,
}

impl Model {
    fn lapse(&mut self, id: &str, now: u64) {
        if let Some((state, expires)) = self.tokens.get_mut(id)
            && matches!(state, TokenState::Pending | TokenState::Approved)
            && now >= *expires
        {
            *state = TokenState::Expired;
        }
    }

    fn retry(&mut self, id: &str, good: bool, now: u64) -> Redemption {
        let Some((state, _)) = self.tokens.get(id).copied() else {
            return Redemption::NotFound;
        };
        match state {
            TokenState::Consumed => return Redemption::AlreadyConsumed,
            TokenState::Revoked => return Redemption::Revoked,
            TokenState::Expired => return Redemption::Expired,
            _ => {}
        }
        self.lapse(id, now);
        if self.tokens[id].0 == TokenState::Expired {
            return Redemption::Expired;
        }
        if !good {
            return Redemption::FingerprintMismatch;
        }
        if state == TokenState::Approved {
            self.tokens
                .insert(id.to_owned(), (TokenState::Consumed, self.tokens[id].1));
            return Redemption::Allowed;
        }
        Redemption::Pending
    }

    fn apply(&mut self, id: &str, op: Operation, now: u64) -> Outcome {
        if !self.tokens.contains_key(id) {
            return Outcome::NotFound;
        }
        // firma: approving an approved token is idempotent and checks no expiry (the next
        // retry is then denied "expired").
        if self.tokens[id].0 == TokenState::Approved && op == Operation::Approve {
            return Outcome::Ok;
        }
        self.lapse(id, now);
        let (state, expires) = self.tokens[id];
        let (outcome, next) = match (state, op) {
            (TokenState::Pending | TokenState::Approved, Operation::Approve) => {
                (Outcome::Ok, TokenState::Approved)
            }
            (TokenState::Pending | TokenState::Approved, Operation::Revoke) => {
                (Outcome::Ok, TokenState::Revoked)
            }
            (TokenState::Consumed, _) => (Outcome::AlreadyConsumed, state),
            (TokenState::Revoked, Operation::Approve) => (Outcome::AlreadyRevoked, state),
            (TokenState::Revoked, Operation::Revoke) => (Outcome::Ok, state),
            (TokenState::Expired, _) => (Outcome::Expired, state),
        };
        self.tokens.insert(id.to_owned(), (next, expires));
        outcome
    }

    fn prune(&mut self, now: u64) -> usize {
        let before = self.tokens.len();
        self.tokens.retain(|_, (_, expires)| now < *expires + GRACE);
        before - self.tokens.len()
    }
}

/// Run `ops` against `store` and the model; any disagreement is an error naming the step.
pub async fn check(store: &dyn TokenStore, ops: &[Op]) -> Result<(), String> {
    let mut model = Model::default();
    let mut now = 10_000u64;
    let mut issued: HashMap<u8, String> = HashMap::new();
    let mut serial = 0;
    for (step, op) in ops.iter().enumerate() {
        let at = |what: String| format!("step {step} {op:?}: {what}");
        match *op {
            Op::Issue(k) => {
                serial += 1;
                let id = format!("tok-{serial}");
                let a = action(k);
                store
                    .insert(Token {
                        id: id.clone(),
                        state: TokenState::Pending,
                        fingerprint: a.fingerprint(),
                        action: a,
                        created_at_ms: now,
                        expires_at_ms: now + TTL,
                        policy: "p".into(),
                        rule_id: None,
                        reason: None,
                        approval: Default::default(),
                    })
                    .await
                    .map_err(|e| at(e.to_string()))?;
                model
                    .tokens
                    .insert(id.clone(), (TokenState::Pending, now + TTL));
                issued.insert(k, id);
            }
            Op::Retry(k, good) => {
                let id = issued
                    .get(&k)
                    .cloned()
                    .unwrap_or_else(|| "never-issued".into());
                let a = action(k);
                let fp = if good {
                    a.fingerprint()
                } else {
                    "0".repeat(64)
                };
                let got = store
                    .redeem(
                        &id,
                        &Presented {
                            fingerprint: &fp,
                            action: &a,
                        },
                        now,
                    )
                    .await
                    .map_err(|e| at(e.to_string()))?;
                let want = model.retry(&id, good, now);
                if got != want {
                    return Err(at(format!("store {got:?}, model {want:?}")));
                }
            }
            Op::Approve(k) | Op::Revoke(k) => {
                let id = issued
                    .get(&k)
                    .cloned()
                    .unwrap_or_else(|| "never-issued".into());
                let operation = if matches!(op, Op::Approve(_)) {
                    Operation::Approve
                } else {
                    Operation::Revoke
                };
                let got = store
                    .apply(&id, operation, now)
                    .await
                    .map_err(|e| at(e.to_string()))?;
                let want = model.apply(&id, operation, now);
                if got != want {
                    return Err(at(format!("store {got:?}, model {want:?}")));
                }
            }
            Op::Advance(ms) => now += ms,
            Op::Prune => {
                let got = store
                    .prune(now, GRACE)
                    .await
                    .map_err(|e| at(e.to_string()))?;
                let want = model.prune(now);
                if got != want {
                    return Err(at(format!("store pruned {got}, model {want}")));
                }
            }
        }
        // After every step the live set agrees with the model.
        let mut live: Vec<String> = store
            .live(now)
            .await
            .map_err(|e| at(e.to_string()))?
            .into_iter()
            .map(|t| t.id)
            .collect();
        live.sort();
        let mut want: Vec<String> = model
            .tokens
            .iter()
            .filter(|(_, (s, e))| {
                matches!(s, TokenState::Pending | TokenState::Approved) && now < *e
            })
            .map(|(id, _)| id.clone())
            .collect();
        want.sort();
        if live != want {
            return Err(at(format!("live tokens: store {live:?}, model {want:?}")));
        }
    }
    Ok(())
}
