//! Where policy calls run: a bounded set of blocking threads, off the async workers, shared
//! fairly between connections.
//!
//! A policy call is synchronous CPU work (up to its deadline). Run on a tokio worker it would
//! stall every other connection's reads and writes and the management socket with it; run
//! without a bound, a burst of slow requests would oversubscribe the machine. So each call takes
//! one of a fixed number of slots (sized to the machine) and runs on tokio's blocking pool.
//!
//! Waiting calls are ordered by start-time fair queueing: every [`Share`] (one per connection)
//! carries the virtual time at which its last call finished, advanced by what that call cost in
//! wall time; a waiting call is tagged with the later of that and the pool's current virtual
//! time, and the lowest tag runs first. A client sending 60 ms requests therefore queues behind
//! a client sending 20 µs ones instead of in front of it, and each connection (which asks one
//! request at a time) gets its turn.
//!
//! Fair queueing alone still leaves a light call waiting for a slot to free: with every slot
//! held by a slow call it waits, on average, half of one (measured by
//! `host/benches/slow_clients.py`: light decisions went from sub-millisecond to a p50 of 142 ms
//! beside two slow senders). So the pool keeps one more slot, the express slot, that only light
//! calls may take: those of a share whose last call took under [`LIGHT_US`] (a share that has
//! not called yet counts as light, since a launcher that connects once per request never builds
//! a history). A slow share can hold the express slot for at most one call before it is known
//! to be slow; from then on it queues for the ordinary slots.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::oneshot;

/// A call that took under this many microseconds marks its share light.
pub(crate) const LIGHT_US: u64 = 5_000;

/// Express slots: extra slots only light calls may take.
const EXPRESS_SLOTS: usize = 1;

/// A bounded, fair set of slots for policy calls.
pub(crate) struct Pool {
    slots: usize,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Ordinary slots in use.
    busy: usize,
    /// Express slots in use.
    express_busy: usize,
    /// The tag of the most recently started call: where an idle share resumes.
    vtime: u64,
    /// Breaks ties between equal tags in arrival order.
    seq: u64,
    /// Waiting calls of shares not known to be light: ordinary slots only.
    waiting: BinaryHeap<Reverse<Waiter>>,
    /// Waiting calls of light shares: an ordinary or the express slot, whichever frees first.
    waiting_light: BinaryHeap<Reverse<Waiter>>,
}

struct Waiter {
    tag: u64,
    seq: u64,
    wake: oneshot::Sender<Kind>,
}

impl PartialEq for Waiter {
    fn eq(&self, other: &Self) -> bool {
        (self.tag, self.seq) == (other.tag, other.seq)
    }
}
impl Eq for Waiter {}
impl PartialOrd for Waiter {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Waiter {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.tag, self.seq).cmp(&(other.tag, other.seq))
    }
}

/// Which kind of slot a call holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Ordinary,
    Express,
}

/// One client's account with the pool: the virtual time its last call finished, and what that
/// call cost.
#[derive(Clone, Default)]
pub(crate) struct Share {
    finished: Arc<AtomicU64>,
    /// Microseconds of the last call; 0 before the first.
    last_cost: Arc<AtomicU64>,
}

impl Share {
    fn is_light(&self) -> bool {
        self.last_cost.load(Ordering::Relaxed) < LIGHT_US
    }
}

/// Why a call did not run to an answer.
#[derive(Debug)]
pub(crate) struct PoolError(pub(crate) String);

impl Pool {
    /// A pool of `slots` concurrent calls (0 means one per available CPU), plus the express slot.
    pub(crate) fn new(slots: usize) -> Self {
        let slots = match slots {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        };
        Self {
            slots,
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is counters and heaps updated under the lock with no call that panics.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Run `call` on a blocking thread once a slot is free, charging its wall time to `share`.
    pub(crate) async fn run<T, F>(self: &Arc<Self>, share: &Share, call: F) -> Result<T, PoolError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let (tag, kind) = self.acquire(share).await;
        let slot = Slot {
            pool: Arc::clone(self),
            kind,
        };
        let share = share.clone();
        tokio::task::spawn_blocking(move || {
            // The slot is held by the call itself, so a caller that stops waiting does not free
            // it while the call still runs.
            let _slot = slot;
            let started = Instant::now();
            let out = call();
            let cost = u64::try_from(started.elapsed().as_micros())
                .unwrap_or(u64::MAX)
                .max(1);
            share.last_cost.store(cost, Ordering::Relaxed);
            share
                .finished
                .fetch_max(tag.saturating_add(cost), Ordering::Relaxed);
            out
        })
        .await
        .map_err(|e| PoolError(format!("the policy call failed on its thread: {e}")))
    }

    /// Wait for a slot; returns the call's tag and the kind of slot it holds.
    async fn acquire(&self, share: &Share) -> (u64, Kind) {
        let light = share.is_light();
        let (rx, tag) = {
            let mut state = self.lock();
            let tag = share.finished.load(Ordering::Relaxed).max(state.vtime);
            let queued = !state.waiting.is_empty() || !state.waiting_light.is_empty();
            if state.busy < self.slots && !queued {
                state.busy += 1;
                state.vtime = state.vtime.max(tag);
                return (tag, Kind::Ordinary);
            }
            if light && state.express_busy < EXPRESS_SLOTS && state.waiting_light.is_empty() {
                state.express_busy += 1;
                state.vtime = state.vtime.max(tag);
                return (tag, Kind::Express);
            }
            let (wake, rx) = oneshot::channel();
            state.seq += 1;
            let seq = state.seq;
            let waiter = Reverse(Waiter { tag, seq, wake });
            if light {
                state.waiting_light.push(waiter);
            } else {
                state.waiting.push(waiter);
            }
            (rx, tag)
        };
        let mut waiting = Waiting {
            pool: self,
            rx: Some(rx),
        };
        // The sender is only dropped after a slot was handed over or with the pool; a pool
        // dropped under a waiter cannot happen (the waiter holds a reference), so the fallback
        // kind is never used to release anything.
        let kind = match waiting.rx.as_mut() {
            Some(rx) => rx.await.unwrap_or(Kind::Ordinary),
            None => Kind::Ordinary,
        };
        waiting.rx = None;
        (tag, kind)
    }

    /// Give a slot back: to the waiter with the lowest tag that may take it, else to the free
    /// count. An ordinary slot goes to either queue; the express slot only to light waiters.
    fn release(&self, kind: Kind) {
        let mut state = self.lock();
        loop {
            let from_light = match kind {
                Kind::Express => true,
                Kind::Ordinary => match (state.waiting.peek(), state.waiting_light.peek()) {
                    (Some(Reverse(a)), Some(Reverse(b))) => b < a,
                    (None, Some(_)) => true,
                    _ => false,
                },
            };
            let next = if from_light {
                state.waiting_light.pop()
            } else {
                state.waiting.pop()
            };
            let Some(Reverse(waiter)) = next else { break };
            state.vtime = state.vtime.max(waiter.tag);
            if waiter.wake.send(kind).is_ok() {
                return;
            }
            // That waiter gave up; the slot goes to the next one.
        }
        match kind {
            Kind::Ordinary => state.busy = state.busy.saturating_sub(1),
            Kind::Express => state.express_busy = state.express_busy.saturating_sub(1),
        }
    }
}

/// A slot in use; returned when dropped, even if the waiting task is cancelled mid-call.
struct Slot {
    pool: Arc<Pool>,
    kind: Kind,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.pool.release(self.kind);
    }
}

/// A waiter that may be cancelled: if a slot was handed to it after all, it is given back.
struct Waiting<'p> {
    pool: &'p Pool,
    rx: Option<oneshot::Receiver<Kind>>,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if let Some(mut rx) = self.rx.take() {
            rx.close();
            if let Ok(kind) = rx.try_recv() {
                self.pool.release(kind);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail by panicking")]
    use super::*;
    use std::time::Duration;

    /// With every slot taken by a heavy client, a light client's call runs before the heavy
    /// client's next one, though it asked later.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_light_caller_goes_before_a_heavy_one() {
        let pool = Arc::new(Pool::new(1));
        let (heavy, light) = (Share::default(), Share::default());
        // The heavy share has spent 50 ms already.
        pool.run(&heavy, || std::thread::sleep(Duration::from_millis(50)))
            .await
            .unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        // A third client holds the only slot while both queue (a connection has at most one
        // call in flight, so the heavy one is not running now).
        let blocker = {
            let pool = Arc::clone(&pool);
            tokio::spawn(async move {
                pool.run(&Share::default(), || {
                    std::thread::sleep(Duration::from_millis(100))
                })
                .await
                .unwrap();
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        let mut queued = Vec::new();
        for (name, share) in [("heavy", heavy.clone()), ("light", light.clone())] {
            let (pool, order) = (Arc::clone(&pool), Arc::clone(&order));
            queued.push(tokio::spawn(async move {
                pool.run(&share, move || order.lock().unwrap().push(name))
                    .await
                    .unwrap();
            }));
            // Heavy asks first.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        blocker.await.unwrap();
        for q in queued {
            q.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), ["light", "heavy"]);
    }

    /// With the only ordinary slot held by a slow call, a light call runs at once on the
    /// express slot, while a share known to be slow waits for the ordinary slot.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_express_slot_serves_light_calls_only() {
        let pool = Arc::new(Pool::new(1));
        let (slow, blocker_share, light) = (Share::default(), Share::default(), Share::default());
        for share in [&slow, &blocker_share] {
            pool.run(share, || std::thread::sleep(Duration::from_millis(20)))
                .await
                .unwrap();
        }
        let order = Arc::new(Mutex::new(Vec::new()));
        let blocker = {
            let (pool, order) = (Arc::clone(&pool), Arc::clone(&order));
            tokio::spawn(async move {
                pool.run(&blocker_share, move || {
                    std::thread::sleep(Duration::from_millis(300));
                    order.lock().unwrap().push("blocker");
                })
                .await
                .unwrap();
            })
        };
        tokio::time::sleep(Duration::from_millis(30)).await;
        let queued = {
            let (pool, order) = (Arc::clone(&pool), Arc::clone(&order));
            tokio::spawn(async move {
                pool.run(&slow, move || order.lock().unwrap().push("slow"))
                    .await
                    .unwrap();
            })
        };
        tokio::time::sleep(Duration::from_millis(30)).await;
        let o = Arc::clone(&order);
        pool.run(&light, move || o.lock().unwrap().push("light"))
            .await
            .unwrap();
        blocker.await.unwrap();
        queued.await.unwrap();
        assert_eq!(*order.lock().unwrap(), ["light", "blocker", "slow"]);
    }

    /// Never more calls at once than slots, and a cancelled waiter does not leak a slot.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn calls_are_bounded_and_cancellation_leaks_nothing() {
        let pool = Arc::new(Pool::new(2));
        let running = Arc::new(AtomicU64::new(0));
        let most = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (pool, running, most) = (Arc::clone(&pool), running.clone(), most.clone());
            tasks.push(tokio::spawn(async move {
                pool.run(&Share::default(), move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(20));
                    running.fetch_sub(1, Ordering::SeqCst);
                })
                .await
                .unwrap();
            }));
        }
        // Cancel a few waiters while they queue.
        let cancelled: Vec<_> = (0..3)
            .map(|_| {
                let pool = Arc::clone(&pool);
                tokio::spawn(async move {
                    pool.run(&Share::default(), || ()).await.unwrap();
                })
            })
            .collect();
        for c in &cancelled {
            c.abort();
        }
        for t in tasks {
            t.await.unwrap();
        }
        // A cancelled caller's call may still be finishing on its thread.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(most.load(Ordering::SeqCst) <= 2 + EXPRESS_SLOTS as u64);
        let state = pool.lock();
        assert_eq!(
            (state.busy, state.express_busy),
            (0, 0),
            "every slot came back"
        );
    }
}
