//! Token events: a value per change of a token's state, published on a broadcast bus that any
//! number of watchers (`gavel token watch`, and later webhooks or a web console) subscribe to.
//!
//! Publishing never waits: the bus keeps the last [`CAPACITY`] events, and a watcher that falls
//! further behind is told how many it missed ([`Received::Lagged`]) instead of slowing the
//! server down.

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

/// Events kept for watchers that have not read them yet.
pub const CAPACITY: usize = 1024;

/// What happened to a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenEventKind {
    /// A policy asked for a human: a pending token was issued.
    Issued,
    /// An operator approved it.
    Approved,
    /// An operator revoked it.
    Revoked,
    /// An approved retry ran: the token is used up.
    Consumed,
    /// It passed its expiry undecided or unused.
    Expired,
}

impl TokenEventKind {
    /// The kind's name, as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Issued => "issued",
            Self::Approved => "approved",
            Self::Revoked => "revoked",
            Self::Consumed => "consumed",
            Self::Expired => "expired",
        }
    }

    /// The kind for an audit transition name (`issued`, `approved`, ...), if it is one.
    pub fn from_transition(transition: &str) -> Option<Self> {
        Some(match transition {
            "issued" => Self::Issued,
            "approved" => Self::Approved,
            "revoked" => Self::Revoked,
            "consumed" => Self::Consumed,
            "expired" => Self::Expired,
            _ => return None,
        })
    }
}

/// One change of a token's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenEvent {
    /// The token.
    pub token_id: String,
    /// What happened.
    pub kind: TokenEventKind,
    /// When, in milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// The session the token is bound to.
    pub session_id: String,
    /// The sandbox the token is bound to.
    pub sandbox_id: String,
    /// The request, secrets masked (as `gavel token list` shows it).
    pub summary: String,
}

/// What a watcher receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// The next event.
    Event(TokenEvent),
    /// The watcher fell behind and this many events were dropped for it.
    Lagged(u64),
    /// The bus is gone (the server is stopping).
    Closed,
}

/// The bus: cheap to clone; every clone publishes to the same watchers.
#[derive(Debug, Clone)]
pub struct EventBus {
    tx: broadcast::Sender<TokenEvent>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self {
            tx: broadcast::channel(CAPACITY).0,
        }
    }
}

impl EventBus {
    /// Publish an event to every current watcher; without watchers it is dropped.
    pub fn publish(&self, event: TokenEvent) {
        // An error only means nobody is watching.
        let _ = self.tx.send(event);
    }

    /// Whether anyone is watching.
    pub fn watched(&self) -> bool {
        self.tx.receiver_count() > 0
    }

    /// Watch events published from now on.
    pub fn subscribe(&self) -> Watcher {
        Watcher {
            rx: self.tx.subscribe(),
        }
    }
}

/// One watcher's place in the stream.
#[derive(Debug)]
pub struct Watcher {
    rx: broadcast::Receiver<TokenEvent>,
}

impl Watcher {
    /// The next event, or how many were missed, or that the bus is gone.
    pub async fn recv(&mut self) -> Received {
        match self.rx.recv().await {
            Ok(event) => Received::Event(event),
            Err(broadcast::error::RecvError::Lagged(n)) => Received::Lagged(n),
            Err(broadcast::error::RecvError::Closed) => Received::Closed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(n: u64) -> TokenEvent {
        TokenEvent {
            token_id: format!("t{n}"),
            kind: TokenEventKind::Issued,
            time_ms: n,
            session_id: "s".into(),
            sandbox_id: "sbx".into(),
            summary: "ls".into(),
        }
    }

    #[tokio::test]
    async fn watchers_see_events_in_order_and_a_slow_one_is_told_it_lagged() {
        let bus = EventBus::default();
        bus.publish(event(0)); // nobody watching: dropped, never blocks
        let mut w = bus.subscribe();
        assert!(bus.watched());
        bus.publish(event(1));
        assert_eq!(w.recv().await, Received::Event(event(1)));
        for n in 0..(CAPACITY as u64 + 5) {
            bus.publish(event(n));
        }
        assert_eq!(w.recv().await, Received::Lagged(5));
        assert_eq!(w.recv().await, Received::Event(event(5)));
        let line = serde_json::to_string(&event(7)).unwrap();
        assert_eq!(
            line,
            r#"{"token_id":"t7","kind":"issued","time_ms":7,"session_id":"s","sandbox_id":"sbx","summary":"ls"}"#
        );
    }
}
