//! Real guest components misbehaving: every failure is a `deny` naming the policy and the cause,
//! within the deadline, and nothing else is disturbed. Load-time problems are refused with a
//! message naming the import, export or configuration at fault.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

use crate::common;

use common::*;
use gavel_host::tokens::{MemoryStore, Outcome};
use gavel_host::wire::WireDecision;
use gavel_host::{PolicyHost, PolicySpec, inspect::World};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn load(policies: Vec<PolicySpec>) -> Result<PolicyHost, String> {
    PolicyHost::new(&config(policies), Arc::new(MemoryStore::new())).map_err(|e| e.to_string())
}

fn load_err(policies: Vec<PolicySpec>) -> String {
    match load(policies) {
        Ok(_) => panic!("the policy was expected to be refused"),
        Err(e) => e,
    }
}

/// Decide once with `decide` mode on a misbehave policy; return the deny reason and the time.
async fn failing(mode: &str, tweak: impl FnOnce(&mut PolicySpec)) -> (String, Duration) {
    let mut spec = misbehave("bad", json!({ "decide": mode }));
    tweak(&mut spec);
    let h = harness(&config(vec![spec]));
    let started = Instant::now();
    let r = h.decide(&exec("ls", &[])).await;
    let took = started.elapsed();
    (denied(&r).to_owned(), took)
}

#[tokio::test]
async fn a_trap_is_a_deny_naming_the_policy() {
    for mode in ["trap", "panic"] {
        let (reason, _) = failing(mode, |_| {}).await;
        assert!(
            reason.contains("policy `bad` trapped during decide"),
            "{mode}: {reason}"
        );
        assert!(reason.contains("unreachable"), "{mode}: {reason}");
    }
}

#[tokio::test]
async fn an_endless_loop_hits_the_deadline() {
    for mode in ["loop", "log-loop"] {
        let (reason, took) = failing(mode, |s| s.limits.deadline_ms = Some(50)).await;
        assert!(
            reason.contains("policy `bad` exceeded its 50 ms deadline"),
            "{mode}: {reason}"
        );
        assert!(
            took >= Duration::from_millis(45),
            "{mode}: stopped after {took:?}"
        );
        // The bound proves the loop was cut, not how precisely: a loaded 2-core machine took
        // 204 ms against an earlier 200 ms bound.
        assert!(
            took < Duration::from_millis(50 + 1950),
            "{mode}: took {took:?}"
        );
    }
}

#[tokio::test]
async fn the_default_deadline_is_100_ms() {
    let (reason, took) = failing("loop", |_| {}).await;
    assert!(reason.contains("exceeded its 100 ms deadline"), "{reason}");
    assert!(took < Duration::from_millis(100 + 1900), "took {took:?}");
}

#[tokio::test]
async fn unbounded_growth_hits_the_memory_cap() {
    let (reason, _) = failing("grow", |s| s.limits.memory_mib = Some(8)).await;
    assert!(
        reason.contains("policy `bad` exceeded its 8 MiB memory limit"),
        "{reason}"
    );
}

#[tokio::test]
async fn deep_recursion_exhausts_the_stack() {
    let (reason, _) = failing("recurse", |_| {}).await;
    assert!(
        reason.contains("policy `bad` exhausted its stack"),
        "{reason}"
    );
}

#[tokio::test]
async fn errors_are_denies_and_oversized_answers_are_cut() {
    let (reason, _) = failing("error", |_| {}).await;
    assert!(
        reason.contains("policy `bad` could not decide: misbehave returned an error"),
        "{reason}"
    );
    // A 10 MiB reason is display text: cut, with a marker; the verdict (here a deny) stands.
    // Writing 10 MiB takes time on a loaded machine; this case is about size.
    let (reason, _) = failing("huge-reason", |s| s.limits.deadline_ms = Some(5000)).await;
    assert!(reason.contains("bytes cut]"), "{reason}");
    assert!(reason.len() < 4096 + 200);
    // 100,000 suggestions are dropped; the ask stays an ask. Formatting them takes time on a
    // loaded machine; this case is about size.
    let mut spec = misbehave("bad", json!({ "decide": "many-suggestions" }));
    spec.limits.deadline_ms = Some(5000);
    let r = harness(&config(vec![spec])).decide(&exec("ls", &[])).await;
    assert_eq!(r.decision, WireDecision::PendingHitl, "{r:?}");
    assert!(r.suggestions.is_empty());
}

#[tokio::test]
async fn a_trapped_instance_is_replaced_not_reused() {
    let h = harness(&config(vec![misbehave("bad", json!({"decide": "trap"}))]));
    for _ in 0..5 {
        let r = h.decide(&exec("ls", &[])).await;
        // A reused poisoned store would fail differently ("cannot enter component instance").
        assert!(denied(&r).contains("unreachable code"), "{r:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_looping_policy_does_not_stall_other_decisions() {
    let broken = harness(&config(vec![misbehave("bad", json!({"decide": "loop"}))]));
    let healthy = harness(&config(vec![default_action("allow")]));
    let slow = tokio::spawn(async move { broken.decide(&exec("ls", &[])).await });
    let started = Instant::now();
    let mut answered = 0;
    // Count while the looping policy runs (its 100 ms deadline), however long the machine takes.
    while !slow.is_finished() || started.elapsed() < Duration::from_millis(60) {
        assert_eq!(
            healthy.decide(&exec("ls", &[])).await.decision,
            WireDecision::Allow
        );
        answered += 1;
    }
    assert!(denied(&slow.await.unwrap()).contains("deadline"));
    assert!(
        answered > 10,
        "only {answered} decisions while a policy looped"
    );
}

#[tokio::test]
async fn the_chain_combines_verdicts() {
    let cases = [
        (vec!["allow", "allow"], WireDecision::Allow),
        (vec!["allow", "ask"], WireDecision::PendingHitl),
        (vec!["ask", "deny"], WireDecision::Deny),
        (vec!["deny", "loop"], WireDecision::Deny),
        (vec!["ask", "ask", "allow"], WireDecision::PendingHitl),
    ];
    for (modes, want) in cases {
        let specs = modes
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let mut spec = misbehave(&format!("p{i}"), json!({"decide": m}));
                // A loop that would take 5 s shows it never ran in the bound below.
                spec.limits.deadline_ms = Some(5000);
                spec
            })
            .collect();
        let h = harness(&config(specs));
        let started = Instant::now();
        let r = h.decide(&exec("ls", &[])).await;
        assert_eq!(r.decision, want, "{modes:?}: {r:?}");
        if modes[0] == "deny" {
            // A deny stops the chain: the looping policy after it never runs.
            assert!(started.elapsed() < Duration::from_millis(2500));
            assert!(r.reason.unwrap().contains("policy `p0`"));
        }
    }
}

#[tokio::test]
async fn manage_can_veto_and_a_failing_hook_vetoes() {
    for (manage, phrase) in [
        ("veto", "vetoed it: misbehave vetoes"),
        ("trap", "trapped during manage"),
    ] {
        let h = harness(&config(vec![misbehave(
            "gate",
            json!({"decide": "ask", "manage": manage}),
        )]));
        let req = exec("ls", &[]);
        let token = h.issue(&req).await;
        for action in ["local.exec.approve", "local.exec.revoke"] {
            let r = h.manage(action, &token).await;
            assert_eq!(r.outcome, Outcome::Denied, "{manage}: {r:?}");
            assert!(
                r.reason.as_deref().unwrap().contains(phrase),
                "{manage}: {r:?}"
            );
        }
        // The token is unchanged: still pending.
        let r = h.decide(&with(req, "approval_token", json!(token))).await;
        assert_eq!(r.decision, WireDecision::PendingHitl);
    }
}

#[tokio::test]
async fn manage_that_permits_lets_the_operator_through() {
    let h = harness(&config(vec![misbehave(
        "gate",
        json!({"decide": "ask", "manage": "permit"}),
    )]));
    let token = h.issue(&exec("ls", &[])).await;
    assert_eq!(
        h.manage("local.exec.approve", &token).await.outcome,
        Outcome::Ok
    );
}

#[test]
fn the_host_knows_which_world_it_loaded() {
    let host = load(vec![default_action("allow"), misbehave("m", json!({}))]).unwrap();
    let worlds: Vec<World> = host.policies().iter().map(|p| p.world).collect();
    assert_eq!(worlds, [World::DecidePolicy, World::Policy]);
    assert!(host.policies().iter().all(|p| p.digest.len() == 64));
}

#[test]
fn bad_configuration_is_reported_at_load() {
    let e = load_err(vec![misbehave("m", json!({"init": "fail"}))]);
    assert!(
        e.contains("policy `m` rejected its configuration") && e.contains("told to fail"),
        "{e}"
    );
    let e = load_err(vec![misbehave("m", json!({"decied": "allow"}))]);
    assert!(
        e.contains("policy `m` rejected its configuration") && e.contains("decied"),
        "{e}"
    );
    let e = load_err(vec![
        PolicySpec::builtin("default-action").with_config(json!({"action": "maybe"})),
    ]);
    assert!(e.contains("maybe"), "{e}");
    let e = load_err(vec![]);
    assert!(e.contains("policy chain is empty"), "{e}");
    let e = load_err(vec![PolicySpec::builtin("no-such")]);
    assert!(e.contains("no bundled policy `no-such`"), "{e}");
}

fn write_temp(bytes: &[u8]) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.wasm");
    std::fs::write(&path, bytes).unwrap();
    (dir, path)
}

#[test]
fn components_that_are_not_policies_are_refused() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            b"#!/bin/sh\necho allow\n".to_vec(),
            "is not a WebAssembly component",
        ),
        (
            wat::parse_str("(module)").unwrap(),
            "is a core WebAssembly module, not a component",
        ),
        (
            wat::parse_str(r#"(component (import "evil:backdoor/api@1.0.0" (instance)))"#).unwrap(),
            "imports `evil:backdoor/api@1.0.0`, which Gavel does not provide",
        ),
        (
            wat::parse_str(r#"(component (import "wasi:cli/environment@0.2.0" (instance)))"#)
                .unwrap(),
            "imports `wasi:cli/environment@0.2.0`; set `wasi = true` on this policy",
        ),
        (
            wat::parse_str("(component)").unwrap(),
            "exports neither world",
        ),
    ];
    for (bytes, phrase) in cases {
        let (_dir, path) = write_temp(&bytes);
        let e = load_err(vec![PolicySpec::file(&path)]);
        assert!(
            e.contains("policy `policy`") && e.contains(phrase),
            "{phrase}: {e}"
        );
    }
}

#[test]
fn a_pinned_digest_must_match() {
    let path = guest("misbehave");
    let mut spec = PolicySpec::file(&path);
    spec.sha256 = Some("0".repeat(64));
    let e = load_err(vec![spec]);
    assert!(e.contains("does not match its pinned sha256"), "{e}");

    use sha2::Digest;
    let digest = sha2::Sha256::digest(std::fs::read(&path).unwrap());
    let mut spec = PolicySpec::file(&path);
    spec.sha256 = Some(digest.iter().map(|b| format!("{b:02x}")).collect());
    assert!(load(vec![spec]).is_ok());
}

#[tokio::test]
async fn per_decision_isolation_gives_every_decision_a_fresh_instance() {
    let mut spec = misbehave("fresh", json!({"decide": "allow"}));
    spec.limits.isolation = Some(gavel_host::config::Isolation::PerDecision);
    let h = harness(&config(vec![spec]));
    for _ in 0..3 {
        assert_eq!(
            h.decide(&exec("ls", &[])).await.decision,
            WireDecision::Allow
        );
    }
}

/// Policies built against `gavel:policy@0.1.0` and frozen as binaries keep loading and deciding.
#[tokio::test]
async fn frozen_0_1_0_policy_binaries_keep_working() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/policies");
    let pin = |file: &str, digest: &str| {
        let mut spec = PolicySpec::file(dir.join(file));
        spec.sha256 = Some(digest.to_owned());
        spec
    };
    let deny = pin(
        "default-action-0.1.0.wasm",
        "80cb612e557ee5aafa318259956830eaadc546f39699b294d2d7a980259c3a6a",
    )
    .with_config(json!({"action": "deny"}));
    let rules = pin(
        "command-rules-0.1.0.wasm",
        "af340262d524c031ff2074bf731167932b0c01a10ba28228eb1977b963e56979",
    )
    .with_config(json!({"global": {"allow": ["run_command(ls *)"]}}));
    let h = harness(&config(vec![rules]));
    let call = json!({"action": "tool.call", "tool": "run_command", "arg": "ls -la", "sandbox_id": "b", "session_id": "s"});
    assert_eq!(h.decide(&call).await.decision, WireDecision::Allow);
    let h = harness(&config(vec![deny]));
    assert!(denied(&h.decide(&exec("ls", &[])).await).contains("the default action is deny"));
    let worlds: Vec<World> = h.host.policies().iter().map(|p| p.world).collect();
    assert_eq!(worlds, [World::DecidePolicy]);
}
