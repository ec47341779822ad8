//! Tests that need the process to themselves: resident memory after hostile guests (a
//! property of the whole process), and a guest that uses most of its deadline (wall-clock time).
//! They run one at a time, in their own test binary.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

mod common;

use common::*;
use gavel_host::wire::WireDecision;
use serde_json::json;
use std::time::{Duration, Instant};

/// One test at a time in this binary.
static ALONE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test]
async fn memory_returns_to_baseline_after_hostile_guests() {
    let _alone = ALONE.lock().await;
    let mut spec = misbehave("hog", json!({"decide": "grow"}));
    spec.limits.memory_mib = Some(16);
    let h = harness(&config(vec![spec]));
    // Warm up the allocator and the pool, then measure.
    for _ in 0..3 {
        h.decide(&exec("ls", &[])).await;
    }
    let baseline = rss_kib();
    for _ in 0..40 {
        let r = h.decide(&exec("ls", &[])).await;
        assert!(denied(&r).contains("exceeded its 16 MiB memory limit"));
    }
    let after = rss_kib();
    // 40 guests each grew to 16 MiB (640 MiB in all); what stays is bounded by one instance.
    assert!(
        after < baseline + 24 * 1024,
        "RSS grew from {baseline} KiB to {after} KiB"
    );
}

#[tokio::test]
async fn a_guest_that_uses_most_of_its_deadline_still_answers_in_time() {
    let _alone = ALONE.lock().await;
    // Calibrate: how long do ten million iterations take in this build, on this machine now?
    let probe = harness(&config(vec![{
        let mut s = misbehave("probe", json!({"decide": "spin", "spin": 10_000_000}));
        s.limits.deadline_ms = Some(30_000);
        s
    }]));
    let started = Instant::now();
    assert_eq!(
        probe.decide(&exec("ls", &[])).await.decision,
        WireDecision::Allow
    );
    let per_ten_million = started.elapsed().as_secs_f64().max(1e-6);
    // Enough work for about 60% of a one-second deadline (long enough that timer and scheduler
    // noise on a shared machine stay small beside it).
    let spin = (0.6 / per_ten_million * 1e7) as u64;
    let mut spec = misbehave("slow", json!({"decide": "spin", "spin": spin}));
    spec.limits.deadline_ms = Some(1000);
    let h = harness(&config(vec![spec]));
    let started = Instant::now();
    let r = h.decide(&exec("ls", &[])).await;
    let took = started.elapsed();
    assert_eq!(r.decision, WireDecision::Allow, "{r:?} after {took:?}");
    // An allow already proves it finished within its deadline; this bounds the host's overhead
    // on a loaded machine.
    assert!(took < Duration::from_millis(1000 + 1000), "took {took:?}");
}
