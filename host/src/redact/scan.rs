//! Byte-level scanning shared by the passes, and [`Masker`], which writes a pass's output.
//!
//! Bytes are read through [`at`] (0 past the end) or `get`, so that a scanner may look past the
//! end of its input without panicking.

use super::MASK;

/// The byte at `i`, or 0 past the end (0 is in no character class below).
pub(super) fn at(b: &[u8], i: usize) -> u8 {
    b.get(i).copied().unwrap_or(0)
}

pub(super) fn starts(b: &[u8], i: usize, prefix: &[u8]) -> bool {
    b.get(i..).is_some_and(|t| t.starts_with(prefix))
}

pub(super) fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// A character of a name: a header, flag, variable, key or URL scheme.
pub(super) fn is_name(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.')
}

pub(super) fn is_blank(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

pub(super) fn is_quote(c: u8) -> bool {
    c == b'"' || c == b'\''
}

pub(super) fn skip_blank(b: &[u8], mut i: usize) -> usize {
    while is_blank(at(b, i)) {
        i += 1;
    }
    i
}

pub(super) fn run_while(b: &[u8], mut i: usize, f: impl Fn(u8) -> bool) -> usize {
    while i < b.len() && f(at(b, i)) {
        i += 1;
    }
    i
}

/// Whether `b[i]` follows a `\n`, `\r` or `\t` escape (JSON strings, `echo -e`): a boundary.
pub(super) fn after_escape(b: &[u8], i: usize) -> bool {
    i >= 2 && at(b, i - 2) == b'\\' && matches!(at(b, i - 1), b'n' | b'r' | b't')
}

/// Whether a masked value must end before `b[i]`: a newline, a shell control character, a
/// backtick or `$(`. Masking past one of these could hide a command from whoever approves.
/// Cookie values may contain `;` (it separates the pairs, which are masked one by one).
pub(super) fn stop(b: &[u8], i: usize, semicolon_ok: bool) -> bool {
    match at(b, i) {
        b'\n' | b'\r' | b'&' | b'|' | b'<' | b'>' | b'`' => true,
        b';' => !semicolon_ok,
        b'$' => at(b, i + 1) == b'(',
        _ => false,
    }
}

/// Character classes of token formats and values.
#[derive(Clone, Copy)]
pub(super) enum Class {
    /// `[A-Za-z0-9]`
    Alnum,
    /// `[A-Za-z0-9_]`
    Word,
    /// `[A-Za-z0-9_-]` (base64url)
    WordDash,
    /// `[A-Za-z0-9-]`
    AlnumDash,
    /// `[A-Za-z0-9+/=]` (base64)
    Base64,
    /// `[A-Za-z0-9._~+/=-]` (an HTTP `token68`, what follows `Bearer`)
    Token68,
}

impl Class {
    pub(super) fn has(self, c: u8) -> bool {
        c.is_ascii_alphanumeric()
            || match self {
                Class::Alnum => false,
                Class::Word => c == b'_',
                Class::WordDash => c == b'_' || c == b'-',
                Class::AlnumDash => c == b'-',
                Class::Base64 => matches!(c, b'+' | b'/' | b'='),
                Class::Token68 => matches!(c, b'.' | b'_' | b'~' | b'+' | b'/' | b'=' | b'-'),
            }
    }
}

/// The end of the run of `class` characters starting at `i`.
pub(super) fn run_end(b: &[u8], mut i: usize, class: Class) -> usize {
    while class.has(at(b, i)) {
        i += 1;
    }
    i
}

/// Whether `b[i..]` starts with `scheme://`.
pub(super) fn starts_with_scheme(b: &[u8], i: usize) -> bool {
    if !at(b, i).is_ascii_alphabetic() {
        return false;
    }
    let e = run_while(b, i, |c| {
        c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.')
    });
    starts(b, e, b"://")
}

/// A quoted string starting at `v` (`b[v]` is the quote): the inside's range, and where
/// scanning goes on (after the closing quote, if there is one before a [`stop`]).
pub(super) fn quoted_range(b: &[u8], v: usize, semicolon_ok: bool) -> (usize, usize, usize) {
    let q = at(b, v);
    let mut k = v + 1;
    while k < b.len() {
        let c = at(b, k);
        if c == q {
            return (v + 1, k, k + 1);
        }
        if stop(b, k, semicolon_ok) {
            break;
        }
        if q == b'"' && c == b'\\' {
            if k + 1 >= b.len() || stop(b, k + 1, semicolon_ok) {
                break;
            }
            k += 2;
            continue;
        }
        k += 1;
    }
    let k = k.min(b.len());
    (v + 1, k, k)
}

/// A string in quotes escaped by `n` backslashes, starting at `v` (`\"` at `v` for 1): the
/// inside's range, and where scanning goes on.
///
/// Inside, a backslash of the inner string is written with `n + 1` backslashes, so a quote
/// after `r` backslashes with `r = a * (n + 1) + n` closes the string when `a` is even, and is
/// an escaped quote of the inner string (`\\\"` for 1) when `a` is odd. A quote after any other
/// number of backslashes belongs to an outer string: the value ends before its backslashes. So
/// do a `\n` or `\r` escape and a [`stop`].
pub(super) fn escaped_range(
    b: &[u8],
    v: usize,
    n: usize,
    semicolon_ok: bool,
) -> (usize, usize, usize) {
    let start = v + n + 1;
    let mut k = start;
    let mut run = 0;
    while k < b.len() && !stop(b, k, semicolon_ok) {
        match at(b, k) {
            b'"' if run >= n
                && (run - n).is_multiple_of(n + 1)
                && ((run - n) / (n + 1)).is_multiple_of(2) =>
            {
                return (start, k - n, k + 1);
            }
            b'"' if run >= n && (run - n).is_multiple_of(n + 1) => {}
            b'"' => return (start, k - run, k - run),
            b'\\' if run.is_multiple_of(2) && matches!(at(b, k + 1), b'n' | b'r') => {
                return (start, k - run, k - run);
            }
            b'\\' => {
                run += 1;
                k += 1;
                continue;
            }
            _ => {}
        }
        run = 0;
        k += 1;
    }
    let k = k.min(b.len());
    (start, k, k)
}

/// Builds a masked copy of a string: the bytes between masks are copied as they are.
pub(super) struct Masker<'a> {
    s: &'a str,
    pub(super) b: &'a [u8],
    out: Vec<u8>,
    /// Bytes before this have been written to `out` (or masked).
    copied: usize,
    /// A URL password search found no `@` before this position (see `values::url_userinfo`).
    pub(super) no_at_until: usize,
}

impl<'a> Masker<'a> {
    pub(super) fn new(s: &'a str) -> Self {
        Masker {
            s,
            b: s.as_bytes(),
            out: Vec::new(),
            copied: 0,
            no_at_until: 0,
        }
    }

    /// Replace `from..to` by [`MASK`]. Every cut is next to an ASCII byte (or at an end), so on a
    /// character boundary. Masks come in order; one overlapping an earlier mask is ignored.
    pub(super) fn mask(&mut self, from: usize, to: usize) {
        let to = to.min(self.b.len());
        if from >= to || from < self.copied {
            return;
        }
        if self.out.is_empty() {
            self.out.reserve(self.b.len());
        }
        self.out
            .extend_from_slice(self.b.get(self.copied..from).unwrap_or_default());
        self.out.extend_from_slice(MASK.as_bytes());
        self.copied = to;
    }

    pub(super) fn finish(mut self) -> String {
        if self.copied == 0 {
            return self.s.to_owned();
        }
        self.out
            .extend_from_slice(self.b.get(self.copied..).unwrap_or_default());
        // Always valid: masks replace whole runs of ASCII bytes. Lossy only as a fallback.
        String::from_utf8(self.out)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }
}
