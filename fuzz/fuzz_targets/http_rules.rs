//! The http-rules path normalization and matcher. Two properties:
//! - any method, host and path is decided without a panic;
//! - a denied path (`/admin/secret`) respelled by the fuzzer's choice of dot segments, doubled
//!   slashes, backslashes, percent-encoding (single and double, either hex case), `;params`,
//!   letter case (Express routes ignore it) and a leading `//NAME` (which `new URL()` reads as a
//!   host) is never allowed, though everything else is allowed by default.
#![no_main]

use http_rules_core::{HttpRequest, Policy, Request, Verdict};
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

static POLICY: LazyLock<Policy> = LazyLock::new(|| {
    Policy::from_json(
        r#"{"default": "allow",
            "requests": [
              {"id": "open", "verdict": "allow", "paths": ["/**"]},
              {"id": "admin", "verdict": "deny", "paths": ["/admin/**"]}
            ]}"#,
    )
    .expect("the fuzz policy is valid")
});

fn decide(method: &str, host: &str, path: &str) -> Verdict {
    POLICY
        .evaluate(&Request::Http(HttpRequest {
            method,
            scheme: "https",
            host,
            port: 443,
            path,
        }))
        .verdict
}

/// Respell one position of `segments` (the path's segments, each without its slash) as byte
/// `b` chooses, keeping what a permissive server would resolve it to.
fn respell(segments: &mut Vec<String>, b: u8, at: usize) {
    let at = at % (segments.len() + 1);
    let last = segments.len().saturating_sub(1);
    match b % 10 {
        0 => segments.insert(at, ".".into()),
        1 => {
            segments.insert(at, "..".into());
            segments.insert(at, "x".into());
        }
        2 => segments.insert(at, String::new()),
        3 | 4 | 5 => {
            let Some(seg) = segments.get_mut(at.min(last)) else {
                return;
            };
            let Some((i, c)) = seg
                .char_indices()
                .nth(usize::from(b >> 4) % seg.len().max(1))
            else {
                return;
            };
            let hex = format!("{:02x}", c as u32);
            let hex = if b & 8 == 0 { hex } else { hex.to_uppercase() };
            let spelled = if b % 10 == 5 {
                format!("%25{hex}")
            } else {
                format!("%{hex}")
            };
            seg.replace_range(i..i + c.len_utf8(), &spelled);
        }
        6 => {
            if let Some(seg) = segments.get_mut(at.min(last)) {
                seg.push_str(";jsessionid=1");
            }
        }
        7 => segments.insert(at, "%2e".into()),
        8 => {
            if let Some(seg) = segments.get_mut(at.min(last)) {
                *seg = seg.to_ascii_uppercase();
            }
        }
        _ => {
            segments.insert(at, "%2E%2E".into());
            segments.insert(at, "x".into());
        }
    }
}

fuzz_target!(|data: &[u8]| {
    // Property 1: arbitrary text.
    if let Ok(text) = std::str::from_utf8(data) {
        let mut parts = text.splitn(3, '\n');
        let method = parts.next().unwrap_or("");
        let host = parts.next().unwrap_or("");
        let path = parts.next().unwrap_or("");
        let _ = decide(method, host, path);
        let _ = decide("GET", "example.com", text);
    }
    // Property 2: respellings of a denied path are never allowed.
    let mut segments: Vec<String> = vec!["admin".into(), "secret".into()];
    for pair in data.chunks(2).take(12) {
        respell(
            &mut segments,
            pair[0],
            usize::from(*pair.get(1).unwrap_or(&0)),
        );
    }
    let joined = segments.join("/");
    // Also behind a leading `//x`, which `new URL()` reads as a host (the rest is the path).
    for path in [
        format!("/{joined}"),
        format!("/{}", joined.replace('/', "\\")),
        format!("//x/{joined}"),
    ] {
        assert_ne!(
            decide("GET", "example.com", &path),
            Verdict::Allow,
            "`{path}` reaches /admin/secret and was allowed"
        );
    }
});
