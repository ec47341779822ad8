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

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::oneshot;

/// A bounded, fair set of slots for policy calls.
pub(crate) struct Pool {
    slots: usize,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Slots in use.
    busy: usize,
    /// The tag of the most recently started call: where an idle share resumes.
    vtime: u64,
    /// Breaks ties between equal tags in arrival order.
    seq: u64,
    waiting: BinaryHeap<Reverse<Waiter>>,
}

struct Waiter {
    tag: u64,
    seq: u64,
    wake: oneshot::Sender<()>,
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

/// One client's account with the pool: the virtual time its last call finished.
#[derive(Clone, Default)]
pub(crate) struct Share {
    finished: Arc<AtomicU64>,
}

/// Why a call did not run to an answer.
#[derive(Debug)]
pub(crate) struct PoolError(pub(crate) String);

impl Pool {
    /// A pool of `slots` concurrent calls; 0 means one per available CPU.
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
        // The state is a counter and a heap updated under the lock with no call that panics.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Run `call` on a blocking thread once a slot is free, charging its wall time to `share`.
    pub(crate) async fn run<T, F>(self: &Arc<Self>, share: &Share, call: F) -> Result<T, PoolError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let tag = self.acquire(share).await;
        let slot = Slot {
            pool: Arc::clone(self),
        };
        let share = share.clone();
        tokio::task::spawn_blocking(move || {
            // The slot is held by the call itself, so a caller that stops waiting does not free
            // it while the call still runs.
            let _slot = slot;
            let started = Instant::now();
            let out = call();
            let cost = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
            share
                .finished
                .fetch_max(tag.saturating_add(cost.max(1)), Ordering::Relaxed);
            out
        })
        .await
        .map_err(|e| PoolError(format!("the policy call failed on its thread: {e}")))
    }

    /// Wait for a slot; returns the call's tag.
    async fn acquire(&self, share: &Share) -> u64 {
        let (rx, tag) = {
            let mut state = self.lock();
            let tag = share.finished.load(Ordering::Relaxed).max(state.vtime);
            if state.busy < self.slots && state.waiting.is_empty() {
                state.busy += 1;
                state.vtime = state.vtime.max(tag);
                return tag;
            }
            let (wake, rx) = oneshot::channel();
            state.seq += 1;
            let seq = state.seq;
            state.waiting.push(Reverse(Waiter { tag, seq, wake }));
            (rx, tag)
        };
        let mut waiting = Waiting {
            pool: self,
            rx: Some(rx),
        };
        if let Some(rx) = waiting.rx.as_mut() {
            // The sender is only dropped after a slot was handed over or with the pool.
            let _ = rx.await;
        }
        waiting.rx = None;
        tag
    }

    /// Give a slot back: to the waiter with the lowest tag, else to the free count.
    fn release(&self) {
        let mut state = self.lock();
        while let Some(Reverse(waiter)) = state.waiting.pop() {
            state.vtime = state.vtime.max(waiter.tag);
            if waiter.wake.send(()).is_ok() {
                return;
            }
            // That waiter gave up; the slot goes to the next one.
        }
        state.busy = state.busy.saturating_sub(1);
    }
}

/// A slot in use; returned when dropped, even if the waiting task is cancelled mid-call.
struct Slot {
    pool: Arc<Pool>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.pool.release();
    }
}

/// A waiter that may be cancelled: if a slot was handed to it after all, it is given back.
struct Waiting<'p> {
    pool: &'p Pool,
    rx: Option<oneshot::Receiver<()>>,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if let Some(mut rx) = self.rx.take() {
            rx.close();
            if rx.try_recv().is_ok() {
                self.pool.release();
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
        assert!(most.load(Ordering::SeqCst) <= 2);
        assert_eq!(pool.lock().busy, 0, "every slot came back");
    }
}
