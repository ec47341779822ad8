//! The first pass of [`text`](super::text): PEM private key blocks, masked whole. It runs first
//! because a later pass's mask inside a base64 line would cut the block it recognizes.

use super::scan::{
    Class, Masker, at, contains, is_blank, is_quote, run_end, skip_blank, starts, stop,
};

const PEM_BEGIN: &[u8] = b"-----BEGIN ";
const PEM_END: &[u8] = b"-----END ";
const DASHES: &[u8] = b"-----";

/// Mask `-----BEGIN ... PRIVATE KEY-----` blocks: the header, then body lines (base64, or
/// `Name: value` headers), through the `-----END ...-----` line. Lines may be separated by
/// newlines, `\n` escapes or spaces. Without an END line (a truncated key), only base64 lines of
/// 40 or more characters are taken, so that a short line after the header (a command) stays
/// visible.
pub(super) fn pem_blocks(s: &str) -> String {
    let mut m = Masker::new(s);
    let b = m.b;
    let mut from = 0;
    while let Some(start) = s
        .get(from..)
        .and_then(|t| t.find("-----BEGIN "))
        .map(|k| from + k)
    {
        let label_start = start + PEM_BEGIN.len();
        let label_end = pem_label_end(b, label_start);
        let label = b.get(label_start..label_end).unwrap_or_default();
        if !starts(b, label_end, DASHES) || !contains(label, b"PRIVATE KEY") {
            from = label_start;
            continue;
        }
        let end = pem_body_end(b, label_end + DASHES.len());
        m.mask(start, end);
        from = end;
    }
    m.finish()
}

fn pem_label_end(b: &[u8], mut i: usize) -> usize {
    while matches!(at(b, i), b'A'..=b'Z' | b'0'..=b'9' | b' ') {
        i += 1;
    }
    i
}

/// Newlines, blanks and `\n`/`\r` escapes between the lines of a PEM body.
fn skip_pem_separators(b: &[u8], mut i: usize) -> usize {
    loop {
        match at(b, i) {
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b'\\' if matches!(at(b, i + 1), b'n' | b'r') => i += 2,
            _ => return i,
        }
    }
}

/// The end of the PEM body that starts at `pos` (just after the BEGIN line).
fn pem_body_end(b: &[u8], pos: usize) -> usize {
    let mut end = pos;
    let mut i = pos;
    loop {
        let t = skip_pem_separators(b, i);
        if starts(b, t, PEM_END) {
            let k = pem_label_end(b, t + PEM_END.len());
            return if starts(b, k, DASHES) {
                k + DASHES.len()
            } else {
                end
            };
        }
        if let Some(h) = pem_header_line(b, t) {
            end = h;
            i = h;
            continue;
        }
        let r = run_end(b, t, Class::Base64);
        if r == t {
            return end;
        }
        let next = skip_pem_separators(b, r);
        let before_end = starts(b, next, PEM_END);
        let quoted = is_quote(at(b, r));
        let clean = next > r || r >= b.len() || before_end || quoted;
        if !clean || (r - t < 40 && !before_end) {
            return end;
        }
        end = r;
        if quoted {
            return end;
        }
        i = r;
    }
}

/// A PEM header line (`Proc-Type: 4,ENCRYPTED`, `Version: GnuPG v2`) starting at `t`: its end.
fn pem_header_line(b: &[u8], t: usize) -> Option<usize> {
    if !at(b, t).is_ascii_alphabetic() {
        return None;
    }
    let mut k = t;
    while at(b, k).is_ascii_alphanumeric() || at(b, k) == b'-' {
        k += 1;
    }
    if at(b, k) != b':' || !is_blank(at(b, k + 1)) {
        return None;
    }
    let v = skip_blank(b, k + 1);
    let mut e = v;
    while e < b.len() {
        let c = at(b, e);
        if c == b'\n' || c == b'\r' || (c == b'\\' && matches!(at(b, e + 1), b'n' | b'r')) {
            break;
        }
        if stop(b, e, false) || is_quote(c) || c == b'$' || c == b'\\' {
            return None;
        }
        e += 1;
    }
    (e > v).then_some(e)
}
