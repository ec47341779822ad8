//! The second pass of [`text`](super::text): well-known token formats, masked wherever they
//! start on a word boundary, since their shape alone gives them away.

use super::scan::{Class, Masker, after_escape, at, run_end, starts};

/// Prefixed token formats: prefix, the class of what follows, and its minimum length.
const PREFIXED: &[(&[u8], Class, usize)] = &[
    (b"github_pat_", Class::Word, 20),
    (b"ghp_", Class::Word, 20),
    (b"gho_", Class::Word, 20),
    (b"ghu_", Class::Word, 20),
    (b"ghs_", Class::Word, 20),
    (b"ghr_", Class::Word, 20),
    (b"glpat-", Class::WordDash, 20),
    (b"xoxa-", Class::AlnumDash, 10),
    (b"xoxb-", Class::AlnumDash, 10),
    (b"xoxo-", Class::AlnumDash, 10),
    (b"xoxp-", Class::AlnumDash, 10),
    (b"xoxr-", Class::AlnumDash, 10),
    (b"xoxs-", Class::AlnumDash, 10),
    (b"sk_live_", Class::Alnum, 16),
    (b"sk_test_", Class::Alnum, 16),
    (b"rk_live_", Class::Alnum, 16),
    (b"rk_test_", Class::Alnum, 16),
    // Also needs a digit somewhere, so that kebab-case words (`sk-some-long-name`) stay.
    (b"sk-", Class::WordDash, 20),
    (b"AIza", Class::WordDash, 30),
    (b"npm_", Class::Alnum, 30),
    (b"pypi-AgE", Class::WordDash, 30),
    (b"hf_", Class::Alnum, 30),
];

/// The bytes a token format can start with (`AKIA`/`ASIA` and JWTs' `eyJ` too).
const FIRST_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut k = 0;
    while k < PREFIXED.len() {
        table[PREFIXED[k].0[0] as usize] = true;
        k += 1;
    }
    table[b'A' as usize] = true;
    table[b'e' as usize] = true;
    table
};

/// Mask well-known token formats wherever they start on a word boundary (not after a letter,
/// digit or `_`): GitHub, GitLab, Slack, Stripe, OpenAI/Anthropic-style `sk-`, Google API keys,
/// npm, PyPI and Hugging Face tokens, AWS access key ids, JWTs.
pub(super) fn token_formats(s: &str) -> String {
    let mut m = Masker::new(s);
    let b = m.b;
    let mut memo = Memo::default();
    let mut i = 0;
    while i < b.len() {
        let c = at(b, i);
        if FIRST_BYTES[usize::from(c)]
            && token_boundary(b, i)
            && let Some(end) = known_token(b, i, &mut memo)
        {
            m.mask(i, end);
            i = end;
            continue;
        }
        i += 1;
    }
    m.finish()
}

/// Where earlier failed candidates scanned to, so that candidates inside them are not scanned
/// again (which would be quadratic on `sk-sk-sk-...`).
#[derive(Default)]
struct Memo {
    sk_failed_until: usize,
    jwt_failed_until: usize,
}

fn token_boundary(b: &[u8], i: usize) -> bool {
    if i == 0 || after_escape(b, i) {
        return true;
    }
    let p = at(b, i - 1);
    !(p.is_ascii_alphanumeric() || p == b'_')
}

/// The end of the well-known token starting at `i`, if there is one.
fn known_token(b: &[u8], i: usize, memo: &mut Memo) -> Option<usize> {
    for &(prefix, class, min) in PREFIXED {
        if !starts(b, i, prefix) {
            continue;
        }
        let start = i + prefix.len();
        if !(0..min).all(|k| class.has(at(b, start + k))) {
            continue;
        }
        let is_sk = prefix == b"sk-";
        if is_sk && i < memo.sk_failed_until {
            // Inside a run that had no digit: neither has this one.
            continue;
        }
        let end = run_end(b, start, class);
        if is_sk {
            let body = b.get(start..end).unwrap_or_default();
            if !body.iter().any(u8::is_ascii_digit) {
                memo.sk_failed_until = end;
                continue;
            }
        }
        return Some(end);
    }
    if starts(b, i, b"AKIA") || starts(b, i, b"ASIA") {
        let end = run_end(b, i, Class::Alnum);
        let word = b.get(i..end).unwrap_or_default();
        if word.len() >= 20
            && word
                .iter()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        {
            return Some(end);
        }
    }
    if starts(b, i, b"eyJ") && i >= memo.jwt_failed_until {
        match jwt_end(b, i) {
            Ok(end) => return Some(end),
            Err(scanned) => memo.jwt_failed_until = scanned,
        }
    }
    None
}

/// A JWT: three base64url parts separated by dots (the signature may be empty). `Err` carries
/// how far the failed attempt scanned.
fn jwt_end(b: &[u8], i: usize) -> Result<usize, usize> {
    let header = run_end(b, i, Class::WordDash);
    if header - i < 10 || at(b, header) != b'.' {
        return Err(header);
    }
    let payload = run_end(b, header + 1, Class::WordDash);
    if payload - (header + 1) < 2 || at(b, payload) != b'.' {
        return Err(payload);
    }
    Ok(run_end(b, payload + 1, Class::WordDash))
}
