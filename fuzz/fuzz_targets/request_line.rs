//! The request line parser and dispatcher: any bytes get exactly one well-formed answer line,
//! never a panic; a line that does not parse is answered with a deny or `unsupported_action`.
#![no_main]

use gavel_host::wire::{Response, WireDecision, parse_request};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match parse_request(data) {
        Ok(_) => {}
        Err(e) => {
            let answer = e.response();
            let line = answer.to_line();
            assert!(!line.contains('\n'), "an answer is one line");
            let parsed: serde_json::Value = serde_json::from_str(&line).expect("answers are JSON");
            match answer {
                Response::Decide(d) => {
                    assert_eq!(d.decision, WireDecision::Deny);
                    assert!(parsed["reason"].is_string());
                }
                Response::Manage(m) => assert!(m.reason.is_some()),
                Response::Query(_) => panic!("an unparsed line never yields a query answer"),
            }
        }
    }
});
