//! Memory returns to its baseline after hostile guests: alone in its own test binary, because
//! resident memory is a property of the whole process.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

mod common;

use common::*;
use serde_json::json;

#[tokio::test]
async fn memory_returns_to_baseline_after_hostile_guests() {
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
