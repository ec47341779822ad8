//! Beyond exec: HTTP requests, CONNECT tunnels, upgrades and tool calls, through the library's
//! interceptor API and through the socket; the denial bodies; old (0.1.0) policies under the
//! 0.2.0 host; approval records with classes, provenance and redacted summaries.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

use crate::common;

use common::*;
use gavel_host::intercept::{
    AbortReason, DenialContext, Interception, abort_body_json, deny_body_json,
    tool_denial_body_json,
};
use gavel_host::wire::{Query, QueryResponse, WireDecision};
use gavel_host::{
    PolicySpec,
    action::{Connect, Header, HttpRequest, ToolCall, Upgrade},
    config::UnknownActions,
    decision::{DenyCode, EffectClass, RiskClass},
    inspect::InterfaceVersion,
};
use serde_json::{Value, json};

fn http(method: &str, path: &str) -> Value {
    json!({
        "action": "http.request", "method": method, "host": "API.GitHub.com.", "path": path,
        "query": "page=2&access_token=ghs_secretvalue123", "body_size": 10,
        "headers": {"Authorization": "Bearer sk-live-abcdefghijklmnopqrstuvwxyz", "Accept": "application/json"},
        "sandbox_id": "sbx_1", "session_id": "sess_1", "agent_id": "agent_1",
    })
}

fn connect(port: u16) -> Value {
    json!({"action": "connect", "host": "registry.npmjs.org", "port": port,
           "sandbox_id": "sbx_1", "session_id": "sess_1"})
}

fn upgrade(protocol: &str) -> Value {
    json!({"action": "upgrade", "host": "chat.example.com", "path": "/ws/room", "protocol": protocol,
           "sandbox_id": "sbx_1", "session_id": "sess_1"})
}

fn tool(arg: &str) -> Value {
    json!({"action": "tool.call", "tool": "run_command", "arg": arg,
           "sandbox_id": "sbx_1", "session_id": "sess_1"})
}

fn http_request() -> HttpRequest {
    HttpRequest {
        method: "POST".into(),
        scheme: "https".into(),
        host: "api.example.com".into(),
        port: 443,
        path: "/v1/things".into(),
        query: None,
        headers: vec![Header {
            name: "content-type".into(),
            value: "application/json".into(),
        }],
        body_size: Some(42),
        session_id: "sess_1".into(),
        sandbox_id: "sbx_1".into(),
        agent_id: None,
    }
}

fn frozen(file: &str) -> PolicySpec {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/policies");
    PolicySpec::file(dir.join(file))
}

/// Every network action kind decides end to end on the wire: allowed, denied with the body
/// its client must answer with, and asked (token, approve, one allowed retry).
#[tokio::test]
async fn every_action_kind_on_the_wire() {
    for line in [
        http("GET", "/repos"),
        connect(443),
        upgrade("websocket"),
        tool("ls"),
    ] {
        let kind = line["action"].as_str().unwrap().to_owned();
        let allow = harness(&config(vec![default_action("allow")]));
        let r = allow.decide(&line).await;
        assert_eq!(r.decision, WireDecision::Allow, "{kind}: {r:?}");
        assert!(r.body.is_none() && r.status.is_none(), "{kind}: {r:?}");

        let deny = harness(&config(vec![default_action("deny")]));
        let r = deny.decide(&line).await;
        assert!(denied(&r).contains("the default action is deny"), "{kind}");
        let body = r.body.clone().expect("a denial carries a body");
        if kind == "tool.call" {
            assert_eq!(r.status, None);
            assert_eq!(body["type"], "tool_result");
            assert_eq!(body["tool"], "run_command");
            assert_eq!(body["action_class"], "execute");
        } else {
            assert_eq!(r.status, Some(403), "{kind}");
            assert_eq!(body["denied"], true);
            assert_eq!(body["status"], 403);
        }
        assert_eq!(body["reason"], "policy_denied", "{kind}");
        let metrics = deny.host.metrics_text();
        assert!(
            metrics.contains(&format!(
                "gavel_decisions_total{{action=\"{kind}\",verdict=\"deny\""
            )),
            "{metrics}"
        );

        let ask = harness(&config(vec![default_action("pending_hitl")]));
        let token = ask.issue(&line).await;
        let retry = with(line.clone(), "approval_token", json!(token));
        assert_eq!(ask.decide(&retry).await.decision, WireDecision::PendingHitl);
        assert_eq!(
            ask.manage("local.exec.approve", &token).await.outcome,
            gavel_host::tokens::Outcome::Ok
        );
        assert_eq!(ask.decide(&retry).await.decision, WireDecision::Allow);
        let again = ask.decide(&retry).await;
        assert!(denied(&again).contains("already consumed"), "{kind}");
        assert_eq!(again.body.unwrap()["reason"], "approval_invalid", "{kind}");
    }
}

/// A retry must present the same request: any field that changes what is sent changes the
/// fingerprint, and the token does not transfer.
#[tokio::test]
async fn a_token_binds_every_field_of_a_network_request() {
    let h = harness(&config(vec![default_action("pending_hitl")]));
    let line = http("POST", "/repos/a/issues");
    let token = h.issue(&line).await;
    h.manage("local.exec.approve", &token).await;
    for (key, value) in [
        ("method", json!("DELETE")),
        ("host", json!("api.github.com.evil.com")),
        ("port", json!(8443)),
        ("path", json!("/repos/a/admin")),
        ("query", json!("page=3")),
        ("body_size", json!(11)),
        ("headers", json!({"authorization": "Bearer other"})),
    ] {
        let changed = with(
            with(line.clone(), key, value),
            "approval_token",
            json!(token),
        );
        let r = h.decide(&changed).await;
        assert!(denied(&r).contains("fingerprint mismatch"), "{key}: {r:?}");
    }
    // Case and a trailing dot in the host are normalized away, so they are the same request.
    let same = with(
        with(line.clone(), "host", json!("api.github.com")),
        "approval_token",
        json!(token),
    );
    assert_eq!(h.decide(&same).await.decision, WireDecision::Allow);
    // A CONNECT to the same host is another request entirely.
    let h = harness(&config(vec![default_action("pending_hitl")]));
    let token = h.issue(&connect(443)).await;
    h.manage("local.exec.approve", &token).await;
    let as_upgrade = with(upgrade("websocket"), "approval_token", json!(token));
    assert!(denied(&h.decide(&as_upgrade).await).contains("fingerprint mismatch"));
}

/// Malformed network requests are denied in the API shape (no action could be read).
#[tokio::test]
async fn malformed_network_requests_get_the_api_body() {
    let h = harness(&config(vec![default_action("allow")]));
    for (line, phrase) in [
        (
            with(http("GET", "/"), "host", json!("user:pw@evil.com")),
            "is not a host name",
        ),
        (
            with(http("GET", "/"), "path", json!("relative")),
            "must start with `/`",
        ),
        (
            with(http("GET", "/"), "path", json!("/a b")),
            "percent-encode",
        ),
        (
            with(http("GET", "/"), "scheme", json!("ftp")),
            "`http` or `https`",
        ),
        (
            with(http("GET", "/"), "method", json!("GE T")),
            "not an HTTP method",
        ),
        (with(connect(443), "port", json!(0)), "between 1 and 65535"),
        (
            with(upgrade("websocket"), "protocol", json!("")),
            "upgrade protocol",
        ),
        (json!({"action": "connect", "host": "x"}), "missing field"),
    ] {
        let r = h.decide(&line).await;
        let reason = denied(&r);
        assert!(reason.starts_with("malformed request:"), "{reason}");
        assert!(reason.contains(phrase), "{phrase}: {reason}");
        assert_eq!(r.status, Some(403));
        assert_eq!(r.body.unwrap()["reason"], "malformed_request");
    }
    // local.exec answers keep the contract's exact shape: no body, no status.
    let r = h.decide(&json!({"action": "local.exec"})).await;
    assert!(r.body.is_none() && r.status.is_none());
}

/// The library API for interceptors: each kind, each outcome, the denial context and body.
#[tokio::test]
async fn the_interceptor_api_decides_every_kind() {
    let deny = harness(&config(vec![default_action("deny")]));
    let d = deny.host.decide_http(http_request(), None).await;
    let Interception::Deny {
        code,
        context,
        body,
        detail,
    } = &d
    else {
        panic!("{d:?}")
    };
    assert_eq!(
        (*code, *context, d.http_status()),
        (DenyCode::PolicyDenied, DenialContext::Api, Some(403))
    );
    assert_eq!(body, &deny_body_json(DenyCode::PolicyDenied, detail));

    let call = ToolCall {
        tool: "write_file".into(),
        arg: "/etc/passwd".into(),
        session_id: "sess_1".into(),
        sandbox_id: "sbx_1".into(),
        agent_id: None,
        project_id: None,
        project_root: None,
        cwd: None,
    };
    let d = deny.host.decide_tool_call(call.clone(), None).await;
    let Interception::Deny {
        context,
        body,
        detail,
        ..
    } = &d
    else {
        panic!("{d:?}")
    };
    assert_eq!((*context, d.http_status()), (DenialContext::Tool, None));
    assert_eq!(
        body,
        &tool_denial_body_json(DenyCode::PolicyDenied, detail, "write", "write_file")
    );

    let ask = harness(&config(vec![default_action("pending_hitl")]));
    let tunnel = Connect {
        host: "db.internal".into(),
        port: 5432,
        session_id: "sess_1".into(),
        sandbox_id: "sbx_1".into(),
        agent_id: None,
    };
    let Interception::Pending { approval_token, .. } =
        ask.host.decide_connect(tunnel.clone(), None).await
    else {
        panic!("expected pending")
    };
    ask.manage("local.exec.approve", &approval_token).await;
    assert!(matches!(
        ask.host
            .decide_connect(tunnel.clone(), Some(approval_token.clone()))
            .await,
        Interception::Allow { .. }
    ));
    let replay = ask.host.decide_connect(tunnel, Some(approval_token)).await;
    assert!(
        matches!(
            replay,
            Interception::Deny {
                code: DenyCode::ApprovalInvalid,
                context: DenialContext::Api,
                ..
            }
        ),
        "{replay:?}"
    );

    let allow = harness(&config(vec![default_action("allow")]));
    let socket = Upgrade {
        host: "chat.example.com".into(),
        path: "/ws".into(),
        protocol: "websocket".into(),
        session_id: "sess_1".into(),
        sandbox_id: "sbx_1".into(),
        agent_id: None,
    };
    assert!(matches!(
        allow.host.decide_upgrade(socket, None).await,
        Interception::Allow { .. }
    ));
    assert!(matches!(
        allow.host.decide_tool_call(call, None).await,
        Interception::Allow { .. }
    ));

    // A policy that fails is a deny with its own code.
    let broken = harness(&config(vec![misbehave(
        "broken",
        json!({"decide": "trap"}),
    )]));
    assert!(matches!(
        broken.host.decide_http(http_request(), None).await,
        Interception::Deny {
            code: DenyCode::PolicyFailed,
            ..
        }
    ));
}

/// The three canonical bodies, byte for byte as documented in `docs/interceptors.md`.
#[test]
fn the_three_body_shapes() {
    let parse = |b: Vec<u8>| serde_json::from_slice::<Value>(&b).unwrap();
    assert_eq!(
        parse(deny_body_json(DenyCode::PolicyDenied, "no GitHub writes")),
        json!({"denied": true, "reason": "policy_denied", "detail": "no GitHub writes", "status": 403})
    );
    assert_eq!(
        parse(tool_denial_body_json(
            DenyCode::PolicyDenied,
            "rm is denied",
            "execute",
            "run_command"
        )),
        json!({"type": "tool_result", "is_error": true, "denied": true, "tool": "run_command",
               "action_class": "execute", "reason": "policy_denied",
               "content": "Gavel denied the execute tool call `run_command`: rm is denied"})
    );
    assert_eq!(
        parse(abort_body_json(
            AbortReason::ConnectorTimeout,
            "no answer in 30 s"
        )),
        json!({"aborted": true, "reason": "connector_timeout", "detail": "no answer in 30 s"})
    );
}

/// A policy built against 0.1.0 is never shown an action it cannot represent: by default the
/// host denies for it; with `unknown_actions = "abstain"` the rest of the chain decides, and a
/// chain where everyone abstains still denies.
#[tokio::test]
async fn a_0_1_0_policy_is_answered_for_on_network_actions() {
    let old = || frozen("default-action-0.1.0.wasm").with_config(json!({"action": "allow"}));
    let h = harness(&config(vec![old()]));
    assert_eq!(h.host.policies()[0].interface, InterfaceVersion::V0_1);
    // What it can see, it decides.
    assert_eq!(
        h.decide(&exec("ls", &[])).await.decision,
        WireDecision::Allow
    );
    for line in [http("GET", "/"), connect(443), upgrade("websocket")] {
        let r = h.decide(&line).await;
        let reason = denied(&r);
        assert!(
            reason.contains("implements gavel:policy@0.1.0, which cannot represent")
                && reason.contains(line["action"].as_str().unwrap()),
            "{reason}"
        );
        assert_eq!(r.status, Some(403));
    }

    let mut abstaining = old();
    abstaining.unknown_actions = UnknownActions::Abstain;
    let h = harness(&config(vec![abstaining.clone()]));
    let r = h.decide(&connect(443)).await;
    assert!(
        denied(&r).contains("no policy governs `connect` actions"),
        "{r:?}"
    );
    let h = harness(&config(vec![abstaining, default_action("pending_hitl")]));
    assert_eq!(
        h.decide(&connect(443)).await.decision,
        WireDecision::PendingHitl
    );
    assert_eq!(
        h.decide(&exec("ls", &[])).await.decision,
        WireDecision::PendingHitl
    );
}

/// The `manage` hook of a 0.1.0 policy cannot see a network request's token: approving is
/// refused on its behalf (unless it abstains), revoking is always permitted.
#[tokio::test]
async fn a_0_1_0_manage_hook_does_not_approve_what_it_cannot_see() {
    let old = frozen("command-rules-0.1.0.wasm").with_config(json!({}));
    let mut abstaining = old.clone();
    abstaining.unknown_actions = UnknownActions::Abstain;
    let h = harness(&config(vec![
        abstaining.clone(),
        default_action("pending_hitl"),
    ]));
    let token = h.issue(&upgrade("websocket")).await;
    let ok = gavel_host::tokens::Outcome::Ok;
    assert_eq!(h.manage("local.exec.approve", &token).await.outcome, ok);

    // Same chain, but the old policy left at the default: approval refused for it.
    let mut deny_mode = abstaining;
    deny_mode.unknown_actions = UnknownActions::Deny;
    let h2 = harness(&config(vec![default_action("pending_hitl")]));
    let token = h2.issue(&upgrade("websocket")).await;
    let stored = h2.host.live_tokens().await.unwrap();
    // Carry the token over to a host whose chain includes the old policy in deny mode.
    let h3 = harness(&config(vec![deny_mode, default_action("pending_hitl")]));
    for t in stored {
        gavel_host::tokens::TokenStore::insert(&*h3.store, t)
            .await
            .unwrap();
    }
    let m = h3.manage("local.exec.approve", &token).await;
    assert_eq!(m.outcome, gavel_host::tokens::Outcome::Denied, "{m:?}");
    assert!(m.reason.unwrap().contains("refuses approval on its behalf"));
    assert_eq!(h3.manage("local.exec.revoke", &token).await.outcome, ok);
}

/// Approval records carry what a human needs to decide: effect and risk class, a redacted
/// summary, the decisions allowed, the timeout the policy set, the policies that asked and the
/// digest of the chain that issued the token.
#[tokio::test]
async fn approval_records_carry_classes_provenance_and_a_timeout() {
    let asker = misbehave(
        "asker",
        json!({"decide": "ask-classified", "timeout_ms": 90000}),
    );
    let h = harness(&config(vec![asker, default_action("pending_hitl")]));
    let token = h.issue(&http("DELETE", "/repos/a/b")).await;
    let q = h.host.query(&Query::Show(token.clone())).await;
    let r = q.token.unwrap();
    assert_eq!(r.action, "http.request");
    assert_eq!(r.effect_class, EffectClass::Destructive);
    assert_eq!(r.risk_class, RiskClass::Critical);
    assert_eq!(r.timeout_ms, 90_000);
    assert_eq!(r.remaining_ms, 90_000);
    assert_eq!(r.expires_at_ms, START + 90_000);
    assert_eq!(r.allowed_decisions, ["approve", "revoke"]);
    let refs: Vec<&str> = r.policy_refs.iter().map(|p| p.policy.as_str()).collect();
    assert_eq!(refs, ["asker", "default-action"]);
    assert_eq!(r.policy_refs[0].rule.as_deref(), Some("misbehave-ask"));
    assert!(r.policy_refs[0].digest.starts_with("sha256:"));
    let digest = r.chain_digest.clone().unwrap();
    assert!(digest.starts_with("sha256:") && r.chain_current);

    // The approval window is the policy's, not the host's five minutes.
    h.clock.advance(90_000);
    assert_eq!(
        h.manage("local.exec.approve", &token).await.outcome,
        gavel_host::tokens::Outcome::Expired
    );

    // A policy-less classification comes from the action; a longer timeout is capped at the
    // token lifetime.
    let long = misbehave(
        "asker",
        json!({"decide": "ask-classified", "timeout_ms": 10_000_000}),
    );
    let h = harness(&config(vec![long]));
    let token = h.issue(&connect(443)).await;
    let r = h.host.query(&Query::Show(token)).await.token.unwrap();
    assert_eq!(r.timeout_ms, 300_000);
    let h = harness(&config(vec![default_action("pending_hitl")]));
    let token = h.issue(&http("GET", "/")).await;
    let r = h.host.query(&Query::Show(token)).await.token.unwrap();
    assert_eq!(
        (r.effect_class, r.risk_class),
        (EffectClass::Read, RiskClass::Low)
    );
    // Another chain (another configuration) has another digest.
    assert_ne!(r.chain_digest.unwrap(), digest);
}

const SECRETS: &[&str] = &[
    "ghs_secretvalue123",
    "sk-live-abcdefghijklmnopqrstuvwxyz",
    "hunter2hunter2",
    "AKIAIOSFODNN7EXAMPLE",
];

/// Secrets in headers, URLs and arguments never reach a record, the store or the audit log.
#[tokio::test]
async fn secrets_are_masked_in_records_the_store_and_the_audit_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let c = config(vec![default_action("pending_hitl")]);
    let (audit, writer) = gavel_host::audit::AuditLog::open(&log, Default::default()).unwrap();
    let host = gavel_host::PolicyHost::builder(&c)
        .audit(audit)
        .build()
        .unwrap();
    let send = |line: Value| {
        let host = host.clone();
        async move {
            host.handle_line(line.to_string().as_bytes(), Default::default())
                .await
        }
    };
    send(http("POST", "/repos/a/b")).await;
    send(exec(
        "/usr/bin/mysql",
        &["--password", "hunter2hunter2", "-e", "select 1"],
    ))
    .await;
    send(tool(
        "curl -H 'Authorization: Bearer sk-live-abcdefghijklmnopqrstuvwxyz' https://u:hunter2hunter2@x.com/?token=AKIAIOSFODNN7EXAMPLE",
    ))
    .await;

    let listed = host.query(&Query::List).await;
    let QueryResponse {
        tokens: Some(records),
        ..
    } = &listed
    else {
        panic!("{listed:?}")
    };
    assert_eq!(records.len(), 3);
    let shown = serde_json::to_string(&listed).unwrap();
    let stored = serde_json::to_string(&host.live_tokens().await.unwrap()).unwrap();
    drop(host);
    writer.finish();
    let audited = std::fs::read_to_string(&log).unwrap();
    assert_eq!(audited.lines().count(), 3);
    for secret in SECRETS {
        for (what, text) in [("record", &shown), ("store", &stored), ("audit", &audited)] {
            assert!(
                !text.contains(secret),
                "{secret} leaked into the {what}: {text}"
            );
        }
    }
    // What is not secret stays readable.
    assert!(shown.contains("POST https://api.github.com/repos/a/b?page=2&access_token=***"));
    assert!(shown.contains("Bearer ***"), "{shown}");
    assert!(
        audited.contains("/usr/bin/mysql --password *** -e select 1"),
        "{audited}"
    );
}

/// The real binary over its socket: every action kind allowed, denied with its body, and asked
/// (approved on the management socket, allowed once); records without secrets.
#[test]
fn the_socket_answers_every_action_kind() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("gavel.toml"),
        r#"socket = "gavel.sock"
management_socket = "manage.sock"
[store]
kind = "memory"
[[policy]]
name = "net"
builtin = "http-rules"
config = { requests = [{ id = "gh", verdict = "allow", methods = ["GET"], hosts = ["api.github.com"] },
                       { id = "gh-write", verdict = "ask", methods = ["POST"], hosts = ["api.github.com"] }],
           connect = [{ id = "npm", verdict = "allow", hosts = ["registry.npmjs.org"], ports = [443] }],
           upgrade = [{ id = "chat", verdict = "ask", hosts = ["chat.example.com"], protocols = ["websocket"] }] }
"#,
    )
    .unwrap();
    let mut child = spawn_serve(&dir.path().join("gavel.toml"));
    let socket = dir.path().join("gavel.sock");
    let manage = dir.path().join("manage.sock");

    // Allowed.
    for line in [http("GET", "/repos/a/b"), connect(443)] {
        let r = ask_socket(&socket, &line);
        assert_eq!(r["decision"], "allow", "{r}");
        assert!(r.get("body").is_none(), "{r}");
    }
    // Denied, each with the body its client returns.
    for (line, status, shape) in [
        (http("DELETE", "/repos/a/b"), Some(403), "denied"),
        (connect(80), Some(403), "denied"),
        (upgrade("h2c"), Some(403), "denied"),
        (tool("ls"), None, "tool_result"),
    ] {
        let r = ask_socket(&socket, &line);
        assert_eq!(r["decision"], "deny", "{r}");
        assert_eq!(r["status"].as_u64().map(|s| s as u16), status, "{r}");
        match shape {
            "tool_result" => {
                assert_eq!(r["body"]["type"], "tool_result", "{r}");
                assert!(r["reason"].as_str().unwrap().contains("no policy governs"));
            }
            _ => assert_eq!(r["body"]["denied"], true, "{r}"),
        }
    }
    // Asked: approved on the management socket, then allowed exactly once.
    for line in [upgrade("websocket"), http("POST", "/repos/a/b/issues")] {
        let r = ask_socket(&socket, &line);
        assert_eq!(r["decision"], "pending_hitl", "{r}");
        let token = r["approval_token"].as_str().unwrap().to_owned();
        let shown = ask_socket(
            &manage,
            &json!({"action": "local.exec.show", "token_id": token}),
        );
        assert_eq!(shown["token"]["action"], line["action"], "{shown}");
        assert_eq!(shown["token"]["policy_refs"][0]["policy"], "net", "{shown}");
        let ok = ask_socket(
            &manage,
            &json!({"action": "local.exec.approve", "token_id": token}),
        );
        assert_eq!(ok["outcome"], "ok");
        let retry = with(line.clone(), "approval_token", json!(token));
        assert_eq!(ask_socket(&socket, &retry)["decision"], "allow");
        let replay = ask_socket(&socket, &retry);
        assert_eq!(replay["decision"], "deny");
        assert_eq!(replay["status"], 403);
        assert_eq!(replay["body"]["reason"], "approval_invalid");
    }
    let r = ask_socket(&socket, &upgrade("websocket"));
    let token = r["approval_token"].as_str().unwrap();
    let shown = ask_socket(
        &manage,
        &json!({"action": "local.exec.show", "token_id": token}),
    );
    assert_eq!(shown["token"]["effect_class"], "network");
    assert_eq!(
        shown["token"]["summary"],
        "UPGRADE websocket chat.example.com/ws/room"
    );

    // Malformed, in the API shape.
    let r = ask_socket(&socket, &with(connect(443), "port", json!(70000)));
    assert_eq!(r["decision"], "deny");
    assert_eq!(r["body"]["reason"], "malformed_request");

    let r = ask_socket(&socket, &http("POST", "/repos/x"));
    assert_eq!(r["decision"], "pending_hitl");
    let listed = ask_socket(&manage, &json!({"action": "local.exec.list"}));
    let text = listed.to_string();
    assert!(text.contains("Bearer ***"), "{text}");
    assert!(
        !text.contains("ghs_secretvalue123") && !text.contains("sk-live-"),
        "{text}"
    );

    child.kill().unwrap();
    child.wait().unwrap();
}

/// The intended production chain: an old command policy that abstains on the network, and
/// `builtin:http-rules` deciding HTTP, CONNECT and upgrades (and abstaining on commands).
#[tokio::test]
async fn an_old_command_policy_and_http_rules_share_a_chain() {
    let mut commands = frozen("command-rules-0.1.0.wasm").with_config(
        json!({"global": {"allow": ["run_command(ls *)"], "deny": ["run_command(rm *)"]}}),
    );
    commands.unknown_actions = UnknownActions::Abstain;
    let http_rules = PolicySpec::builtin("http-rules").with_config(json!({
        "requests": [
            {"id": "gh-read", "verdict": "allow", "methods": ["GET"], "hosts": ["api.github.com"], "paths": ["/repos/**"]},
            {"id": "gh-write", "verdict": "ask", "methods": ["POST"], "hosts": ["api.github.com"],
             "risk": "high", "approval_timeout_ms": 120000}
        ],
        "connect": [{"id": "npm", "verdict": "allow", "hosts": ["registry.npmjs.org"], "ports": [443]}],
        "upgrade": [{"id": "chat", "verdict": "deny", "hosts": ["chat.example.com"]}]
    }));
    let h = harness(&config(vec![commands, http_rules]));
    assert_eq!(
        h.decide(&tool("ls -la")).await.decision,
        WireDecision::Allow
    );
    assert!(denied(&h.decide(&tool("rm -rf x")).await).contains("command-rules"));
    assert_eq!(
        h.decide(&http("GET", "/repos/a/b")).await.decision,
        WireDecision::Allow
    );
    let r = h.decide(&http("GET", "/repos/../admin")).await;
    assert_eq!(r.decision, WireDecision::Deny, "{r:?}");
    assert_eq!(h.decide(&connect(443)).await.decision, WireDecision::Allow);
    let r = h.decide(&connect(80)).await;
    assert_eq!(r.body.unwrap()["reason"], "policy_denied");
    let r = h.decide(&upgrade("websocket")).await;
    assert!(denied(&r).contains("rule `chat`"), "{r:?}");

    let token = h.issue(&http("POST", "/repos/a/b/issues")).await;
    let record = h.host.query(&Query::Show(token)).await.token.unwrap();
    assert_eq!(record.effect_class, EffectClass::Write);
    assert_eq!(record.risk_class, RiskClass::High);
    assert_eq!(record.timeout_ms, 120_000);
    assert_eq!(record.policy_refs.len(), 1);
    assert_eq!(record.policy_refs[0].policy, "http-rules");
    assert_eq!(record.policy_refs[0].rule.as_deref(), Some("gh-write"));
}

/// A token never changes kind: a `local.exec` of a program named `connect` has the same
/// fingerprint as a CONNECT, and must not redeem its approval.
#[tokio::test]
async fn an_approval_does_not_change_kind() {
    let h = harness(&config(vec![default_action("pending_hitl")]));
    let tunnel = with(connect(22), "host", json!("github.com"));
    let token = h.issue(&tunnel).await;
    h.manage("local.exec.approve", &token).await;
    let exec = json!({"action": "local.exec", "executable": "connect", "args": ["github.com", "22"],
                      "sandbox_id": "sbx_1", "session_id": "sess_1", "profile": "p", "hitl_mode": "async_token",
                      "approval_token": token});
    let r = h.decide(&exec).await;
    assert!(denied(&r).contains("fingerprint mismatch"), "{r:?}");
    // The approval is still there for the request it was given to.
    let retry = with(tunnel, "approval_token", json!(token));
    assert_eq!(h.decide(&retry).await.decision, WireDecision::Allow);
}

/// What a policy matches is what will be contacted: one spelling per address, no dot segments
/// across a query, and the interceptor API normalizes exactly as the socket does.
#[tokio::test]
async fn addresses_and_paths_have_one_spelling() {
    let rules = PolicySpec::builtin("http-rules").with_config(json!({
        "default": "allow",
        "requests": [
            {"id": "metadata", "verdict": "deny", "hosts": ["169.254.169.254"]},
            {"id": "admin", "verdict": "deny", "paths": ["/admin/**"]},
            {"id": "public", "verdict": "allow", "paths": ["/public/**"]}
        ]
    }));
    let h = harness(&config(vec![rules]));
    let get = |host: &str, path: &str| {
        json!({"action": "http.request", "method": "GET", "host": host, "path": path,
               "sandbox_id": "sbx_1", "session_id": "sess_1"})
    };
    // Other spellings of the metadata address are refused, or mapped to it and denied.
    for host in [
        "2852039166",
        "0xa9fea9fe",
        "169.254.43518",
        "0251.0376.0251.0376",
    ] {
        let r = h.decide(&get(host, "/")).await;
        assert!(denied(&r).contains("dotted-quad"), "{host}: {r:?}");
    }
    let r = h.decide(&get("[::ffff:169.254.169.254]", "/")).await;
    assert!(denied(&r).contains("rule `metadata`"), "{r:?}");
    // A `?` or `#` in the path is refused; an upgrade's query never hides a dot segment.
    let r = h.decide(&get("example.com", "/admin?/../public/x")).await;
    assert!(denied(&r).contains("send the query in `query`"), "{r:?}");
    let ws = json!({"action": "upgrade", "host": "example.com", "path": "/admin?/../public/x",
                    "protocol": "websocket", "sandbox_id": "sbx_1", "session_id": "sess_1"});
    assert_eq!(h.decide(&ws).await.decision, WireDecision::Allow);
    let rules = PolicySpec::builtin("http-rules").with_config(json!({
        "upgrade": [{"id": "admin", "verdict": "deny", "paths": ["/admin"]},
                    {"id": "public", "verdict": "allow", "paths": ["/public/**"]}]
    }));
    let h2 = harness(&config(vec![rules]));
    assert!(denied(&h2.decide(&ws).await).contains("rule `admin`"));

    // The library: the same normalization, the same refusals.
    let mut request = http_request();
    request.host = "0xa9fea9fe".into();
    let d = h.host.decide_http(request, None).await;
    assert!(
        matches!(
            &d,
            Interception::Deny {
                code: DenyCode::MalformedRequest,
                context: DenialContext::Api,
                ..
            }
        ),
        "{d:?}"
    );
    let mut request = http_request();
    request.host = "[::FFFF:A9FE:A9FE]".into();
    request.method = "delete".into();
    let d = h.host.decide_http(request, None).await;
    assert!(
        matches!(&d, Interception::Deny { detail, .. } if detail.contains("rule `metadata`")),
        "{d:?}"
    );
}

/// A policy's reason may quote the request; what is stored and logged is masked too.
#[tokio::test]
async fn reasons_are_masked_where_they_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let rules = PolicySpec::builtin("http-rules").with_config(json!({
        "upgrade": [{"id": "chat", "verdict": "ask", "hosts": ["chat.example.com"]}]
    }));
    let c = config(vec![rules]);
    let (audit, writer) = gavel_host::audit::AuditLog::open(&log, Default::default()).unwrap();
    let host = gavel_host::PolicyHost::builder(&c)
        .audit(audit)
        .build()
        .unwrap();
    let line = json!({"action": "upgrade", "host": "chat.example.com",
                      "path": "/ws?token=ghp_abcdefghijklmnopqrstuvwxyz0123456789",
                      "protocol": "websocket", "sandbox_id": "sbx_1", "session_id": "sess_1"});
    let r = host
        .handle_line(line.to_string().as_bytes(), Default::default())
        .await
        .to_line();
    assert!(r.contains("pending_hitl"), "{r}");
    let listed = serde_json::to_string(&host.query(&Query::List).await).unwrap();
    drop(host);
    writer.finish();
    let audited = std::fs::read_to_string(&log).unwrap();
    for text in [&listed, &audited] {
        assert!(!text.contains("ghp_abcdef"), "{text}");
        assert!(text.contains("token=***"), "{text}");
    }
}
