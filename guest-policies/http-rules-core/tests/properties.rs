//! Properties of path normalization and of the fail-closed rules, over generated paths built
//! from the pieces traversal tricks are made of.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use http_rules_core::{HttpRequest, Policy, Request, Verdict, normalize};
use proptest::prelude::*;

/// Segments and separators attackers combine: dot segments in every spelling, encoded and raw
/// slashes and backslashes, double encoding, `;` parameters, and ordinary names.
fn piece() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just("/"),
        Just("public"),
        Just("secret"),
        Just("x"),
        Just(".."),
        Just("."),
        Just("%2e%2e"),
        Just("%2E."),
        Just(".%2e"),
        Just("%2e"),
        Just("%2f"),
        Just("%2F"),
        Just("%5c"),
        Just("\\"),
        Just("%252e"),
        Just("%252f"),
        Just("%25"),
        Just(";"),
        Just("..;"),
        Just("//"),
        Just("%"),
        Just("%00"),
        Just("%41"),
        Just("%7e"),
        Just("SECRET"),
        Just("Public"),
        Just("\\"),
    ]
}

fn tricky_path() -> impl Strategy<Value = String> {
    proptest::collection::vec(piece(), 0..12).prop_map(|p| format!("/{}", p.concat()))
}

fn hex(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// How a permissive server could read the path: every escape decoded (repeatedly), `\` as `/`,
/// `;` parameters dropped from each segment, dot segments resolved, empty segments dropped.
fn server_reading(raw: &str) -> String {
    let mut s = raw.as_bytes().to_vec();
    for _ in 0..4 {
        let mut out = Vec::with_capacity(s.len());
        let mut i = 0;
        while i < s.len() {
            if s[i] == b'%'
                && let (Some(h), Some(l)) = (
                    s.get(i + 1).copied().and_then(hex),
                    s.get(i + 2).copied().and_then(hex),
                )
            {
                out.push(h * 16 + l);
                i += 3;
            } else {
                out.push(s[i]);
                i += 1;
            }
        }
        s = out;
    }
    let text = String::from_utf8_lossy(&s).replace('\\', "/");
    let mut segments: Vec<&str> = Vec::new();
    for segment in text.split('/') {
        let name = segment.split(';').next().unwrap_or("");
        match name {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            n => segments.push(n),
        }
    }
    format!("/{}", segments.join("/"))
}

/// How a router that matches the path as sent reads it: escapes decoded once, nothing
/// resolved, empty segments kept (Flask, Starlette; Express without the decoding).
fn router_reading(raw: &str) -> String {
    let s = raw.as_bytes();
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%'
            && let (Some(h), Some(l)) = (
                s.get(i + 1).copied().and_then(hex),
                s.get(i + 2).copied().and_then(hex),
            )
        {
            out.push(h * 16 + l);
            i += 3;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// How `new URL(raw, base)` reads a target starting with two of `/` and `\`: the first
/// segment is a host, the rest the path (dot segments then resolved like [`server_reading`]).
fn authority_reading(raw: &str) -> Option<String> {
    let slash = |c: char| c == '/' || c == '\\';
    let mut chars = raw.chars();
    if !(chars.next().is_some_and(slash) && chars.next().is_some_and(slash)) {
        return None;
    }
    let rest = raw.trim_start_matches(slash);
    Some(server_reading(
        rest.find(slash).map_or("/", |at| &rest[at..]),
    ))
}

fn under(path: &str, prefix: &str) -> bool {
    path == prefix || path.starts_with(&format!("{prefix}/"))
}

fn get(policy: &Policy, path: &str) -> Verdict {
    policy
        .evaluate(&Request::Http(HttpRequest {
            method: "GET",
            scheme: "https",
            host: "h.example",
            port: 443,
            path,
        }))
        .verdict
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn normalization_never_panics_and_yields_a_clean_ascii_path(raw in any::<String>()) {
        let n = normalize(&raw);
        prop_assert!(n.path.starts_with('/'));
        prop_assert!(n.path.is_ascii());
        prop_assert!(!n.path.contains("//"), "{:?} -> {}", raw, n.path);
        prop_assert!(!n.path.split('/').any(|s| s == "." || s == ".."), "{:?} -> {}", raw, n.path);
        prop_assert_eq!(&n.readings[0].path, &n.path);
        for r in &n.readings {
            prop_assert!(r.path.starts_with('/') && r.path.is_ascii(), "{:?} -> {:?}", raw, r);
            if r.how.merged {
                prop_assert!(!r.path.contains("//"), "{:?} -> {:?}", raw, r);
            }
        }
    }

    #[test]
    fn normal_forms_are_fixed_points(raw in tricky_path()) {
        let n = normalize(&raw);
        if n.ambiguity.is_none() {
            let again = normalize(&n.path);
            prop_assert_eq!(again.ambiguity, None);
            prop_assert_eq!(again.path, n.path);
        }
    }

    #[test]
    fn an_allow_everything_rule_never_allows_an_ambiguous_path(raw in tricky_path()) {
        let p = Policy::from_json(r#"{"default": "allow", "requests": [{"verdict": "allow"}]}"#).unwrap();
        let allowed = get(&p, &raw) == Verdict::Allow;
        prop_assert_eq!(allowed, normalize(&raw).ambiguity.is_none(), "{}", raw);
    }

    #[test]
    fn an_allowed_path_stays_inside_its_prefix_however_a_server_reads_it(raw in tricky_path()) {
        let p = Policy::from_json(r#"{"requests": [{"verdict": "allow", "paths": ["/public/**"]}]}"#).unwrap();
        if get(&p, &raw) == Verdict::Allow {
            let mut readings = vec![server_reading(&raw), router_reading(&raw)];
            readings.extend(authority_reading(&raw));
            for reading in readings {
                prop_assert!(under(&reading, "/public"), "{} is read as {}", raw, reading);
            }
        }
    }

    #[test]
    fn a_denied_prefix_is_never_allowed_however_it_is_spelled(raw in tricky_path()) {
        let p = Policy::from_json(r#"{"default": "allow", "requests": [
            {"verdict": "allow", "paths": ["/**"]},
            {"verdict": "deny", "paths": ["/secret/**"]}
        ]}"#).unwrap();
        let mut readings = vec![server_reading(&raw), router_reading(&raw)];
        readings.extend(authority_reading(&raw));
        for reading in readings {
            // Case-insensitive routers (Express) reach `/secret` as `/SECRET` too.
            if under(&reading.to_ascii_lowercase(), "/secret") {
                prop_assert_eq!(get(&p, &raw), Verdict::Deny, "{} is read as {}", raw, reading);
            }
        }
    }

    #[test]
    fn rule_order_does_not_change_the_verdict(raw in tricky_path(), flip in any::<bool>()) {
        let mut rules = [
            r#"{"verdict": "allow", "paths": ["/public/**"]}"#,
            r#"{"verdict": "ask", "paths": ["/public/x/**"]}"#,
            r#"{"verdict": "deny", "paths": ["/public/x/secret/**"]}"#,
        ];
        let forward = Policy::from_json(&format!(r#"{{"requests": [{}]}}"#, rules.join(","))).unwrap();
        if flip {
            rules.reverse();
        } else {
            rules.rotate_left(1);
        }
        let other = Policy::from_json(&format!(r#"{{"requests": [{}]}}"#, rules.join(","))).unwrap();
        prop_assert_eq!(get(&forward, &raw), get(&other, &raw), "{}", raw);
    }
}
