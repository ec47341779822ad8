//! The in-memory token store: for tests, `gavel eval`, and hosts that accept losing tokens on
//! restart.

use super::{Millis, Operation, Outcome, Presented, Redemption, StoreError, Token, TokenStore};
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

/// Tokens in a map behind one mutex; every operation is a short critical section.
#[derive(Debug, Default)]
pub struct MemoryStore {
    tokens: Mutex<HashMap<String, Token>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Token>> {
        // A panic while holding the lock cannot leave a token half-changed (each change is one
        // field assignment), so a poisoned lock is safe to keep using.
        self.tokens.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait::async_trait]
impl TokenStore for MemoryStore {
    async fn insert(&self, token: Token) -> Result<(), StoreError> {
        self.lock().insert(token.id.clone(), token);
        Ok(())
    }

    async fn get(&self, id: &str, _now: Millis) -> Result<Option<Token>, StoreError> {
        Ok(self.lock().get(id).cloned())
    }

    async fn redeem(
        &self,
        id: &str,
        presented: &Presented<'_>,
        now: Millis,
    ) -> Result<Redemption, StoreError> {
        Ok(match self.lock().get_mut(id) {
            Some(token) => super::redeem(token, presented, now),
            None => Redemption::NotFound,
        })
    }

    async fn apply(&self, id: &str, op: Operation, now: Millis) -> Result<Outcome, StoreError> {
        Ok(match self.lock().get_mut(id) {
            Some(token) => super::apply(token, op, now),
            None => Outcome::NotFound,
        })
    }

    async fn set_state_if(
        &self,
        id: &str,
        from: super::TokenState,
        to: super::TokenState,
    ) -> Result<bool, StoreError> {
        Ok(match self.lock().get_mut(id) {
            Some(token) if token.state == from => {
                token.state = to;
                true
            }
            _ => false,
        })
    }

    async fn pending(&self, session: &str, now: Millis) -> Result<super::PendingCount, StoreError> {
        Ok(self
            .lock()
            .values()
            .filter(|t| t.state == super::TokenState::Pending && !t.lapsed(now))
            .fold(super::PendingCount::default(), |c, t| c.add(t, session)))
    }

    async fn live(&self, now: Millis) -> Result<Vec<Token>, StoreError> {
        let mut live: Vec<Token> = self
            .lock()
            .values()
            .filter(|t| {
                matches!(
                    t.state,
                    super::TokenState::Pending | super::TokenState::Approved
                ) && !t.lapsed(now)
            })
            .cloned()
            .collect();
        live.sort_by(|a, b| (a.created_at_ms, &a.id).cmp(&(b.created_at_ms, &b.id)));
        Ok(live)
    }

    async fn prune(&self, now: Millis, grace_ms: Millis) -> Result<usize, StoreError> {
        let mut tokens = self.lock();
        let before = tokens.len();
        tokens.retain(|_, t| !t.prunable(now, grace_ms));
        Ok(before - tokens.len())
    }
}
