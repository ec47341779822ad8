//! Request paths: normalization (fail closed on anything ambiguous) and path globs.

use std::fmt;

/// Why a path is ambiguous: two servers could read it as two different paths, so no `allow`
/// rule may match it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ambiguity {
    /// The path does not start with `/` (or is empty).
    NotAbsolute,
    /// It contains `%2F`, an encoded `/`.
    EncodedSlash,
    /// It contains `%5C`, an encoded `\`.
    EncodedBackslash,
    /// It contains a raw `\`.
    Backslash,
    /// A `%` not followed by two hex digits.
    InvalidPercentEncoding,
    /// A raw or percent-encoded control character (NUL, newline, DEL, ...).
    ControlCharacter,
    /// A raw character outside ASCII (clients send those percent-encoded).
    NonAscii,
    /// `%25` followed by two hex digits: an encoded escape, which a server that decodes twice
    /// reads differently.
    DoubleEncoding,
    /// A `..` segment climbs above the root.
    AboveRoot,
    /// A `.` or `..` segment carries `;` parameters (`..;`), which some servers strip.
    DotSegmentParameters,
    /// A `..` follows an empty segment (`//..`): servers that keep empty segments remove the
    /// empty one, servers that collapse `//` remove the one before it.
    EmptySegmentBeforeDotDot,
}

impl fmt::Display for Ambiguity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Ambiguity::NotAbsolute => "it does not start with `/`",
            Ambiguity::EmptySegmentBeforeDotDot => {
                "a `..` follows an empty segment (`//..`), which servers resolve differently"
            }
            Ambiguity::EncodedSlash => "it contains an encoded `/` (`%2F`)",
            Ambiguity::EncodedBackslash => "it contains an encoded `\\` (`%5C`)",
            Ambiguity::Backslash => "it contains a `\\`",
            Ambiguity::InvalidPercentEncoding => "it contains invalid percent-encoding",
            Ambiguity::ControlCharacter => "it contains a control character",
            Ambiguity::NonAscii => {
                "it contains a character outside ASCII that is not percent-encoded"
            }
            Ambiguity::DoubleEncoding => "it contains a double-encoded escape (`%25XX`)",
            Ambiguity::AboveRoot => "a `..` segment climbs above the root",
            Ambiguity::DotSegmentParameters => "a `.` or `..` segment carries `;` parameters",
        })
    }
}

/// How a server reads a path: which of the transformations real servers and routers apply
/// (or do not apply) a [`Reading`] went through. The normal form has `resolved` and `merged`
/// set and the others clear.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct How {
    /// A leading `//NAME` (or `/\NAME`) was read as an authority and cut off, the rest being the
    /// path: what `new URL(req.url, base)` does with such a request target.
    pub authority: bool,
    /// Every escape of a printable ASCII character decoded (repeatedly, so `%252e` is `.`), and
    /// look-alikes of `.`, `/` and `\` (overlong UTF-8, fullwidth forms) with them; `\` read as
    /// `/`; `;` parameters dropped from every segment. Otherwise only escapes of unreserved
    /// characters are decoded (both spellings reach the same handler on every server tried).
    pub decoded: bool,
    /// `.` and `..` segments resolved (RFC 3986 `remove_dot_segments`); routers such as
    /// Express, Flask and Starlette match the path without resolving them.
    pub resolved: bool,
    /// Runs of `/` merged into one (nginx, Apache by default); others keep empty segments.
    pub merged: bool,
}

impl How {
    const NORMAL: How = How {
        authority: false,
        decoded: false,
        resolved: true,
        merged: true,
    };
}

impl fmt::Display for How {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.authority && !self.decoded && !self.resolved && !self.merged {
            return f.write_str(
                "as sent, the way routers that match it without resolving dot segments read it",
            );
        }
        let mut parts: Vec<&str> = Vec::new();
        if self.authority {
            parts.push("with the leading `//NAME` read as a host, as `new URL()` does");
        }
        if self.decoded {
            parts.push("percent-decoded, `\\` read as `/` and `;` parameters dropped");
        }
        if !self.resolved {
            parts.push("with dot segments kept");
        }
        if !self.merged {
            parts.push("with empty segments kept");
        }
        if parts.is_empty() {
            parts.push("normalized");
        }
        f.write_str(&parts.join(", "))
    }
}

/// One way a server could read a request path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reading {
    /// The path so read: ASCII, starting with `/`. Escapes that remain have uppercase hex
    /// digits.
    pub path: String,
    /// Which transformations produced it.
    pub how: How,
}

/// A request path after normalization, with every distinct reading of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NormalizedPath {
    /// The normalized path: percent-encoded unreserved characters decoded, every other escape
    /// kept with uppercase hex digits, raw characters that need encoding (`\`, controls,
    /// non-ASCII) percent-encoded, `.`/`..` segments removed and `//` collapsed. Always ASCII
    /// and always starting with `/`. Also `readings[0]`.
    pub path: String,
    /// Every distinct reading of the path (the normal form first): with and without a leading
    /// `//NAME` read as an authority, decoded or not, dot segments resolved or not, slashes
    /// merged or not (see [`How`]). An `allow` rule must match all of them; a `deny` or `ask`
    /// rule that matches any of them (ignoring case) applies.
    pub readings: Vec<Reading>,
    /// Why the path is ambiguous (the first reason found); `None` when it is not.
    pub ambiguity: Option<Ambiguity>,
}

/// How many times the decoded reading decodes escapes (a server decoding more often than
/// this is not modelled; `%25XX` already makes the path ambiguous).
const MAX_DECODE_ROUNDS: usize = 4;

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The byte a `%XX` escape at `bytes[i]` encodes, if `bytes[i..i + 3]` is one.
fn escape_at(bytes: &[u8], i: usize) -> Option<u8> {
    match bytes.get(i..i + 3) {
        Some([b'%', h, l]) => Some(hex_value(*h)? * 16 + hex_value(*l)?),
        _ => None,
    }
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn push_escape(out: &mut String, b: u8) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push('%');
    out.push(char::from(HEX[usize::from(b >> 4)]));
    out.push(char::from(HEX[usize::from(b & 0x0f)]));
}

/// Whether a path needs no reading but its normal form: only unreserved characters and single
/// `/`, no segment of dots alone, so that every server reads it as written.
fn is_plain(raw: &str) -> bool {
    let bytes = raw.as_bytes();
    bytes.first() == Some(&b'/')
        && !raw.contains("//")
        && bytes.iter().all(|b| is_unreserved(*b) || *b == b'/')
        && raw.split('/').all(|s| s != "." && s != "..")
}

/// Normalize a request path as sent and list its readings. Never fails: an unusual path comes
/// back with an [`Ambiguity`] and a best-effort normal form. A query (from the first `?`) and a
/// fragment (from the first `#`) are not part of the path and are cut off first: a server never
/// resolves dot segments across them, so neither may the rules (`/admin?/../public` is `/admin`).
pub fn normalize(raw: &str) -> NormalizedPath {
    let raw = raw.split(['?', '#']).next().unwrap_or_default();
    if is_plain(raw) {
        return NormalizedPath {
            path: raw.to_owned(),
            readings: vec![Reading {
                path: raw.to_owned(),
                how: How::NORMAL,
            }],
            ambiguity: None,
        };
    }
    let (encoded, mut ambiguity) = encode(raw);
    let resolved = resolve(&encoded, true);
    if resolved.above_root {
        ambiguity.get_or_insert(Ambiguity::AboveRoot);
    }
    if resolved.dot_params {
        ambiguity.get_or_insert(Ambiguity::DotSegmentParameters);
    }
    if resolved.empty_dot_dot {
        ambiguity.get_or_insert(Ambiguity::EmptySegmentBeforeDotDot);
    }
    let mut readings = vec![Reading {
        path: resolved.path.clone(),
        how: How::NORMAL,
    }];
    add_readings(&mut readings, &encoded, false);
    if let Some(rest) = strip_authority(raw) {
        add_readings(&mut readings, &encode(rest).0, true);
    }
    NormalizedPath {
        path: resolved.path,
        readings,
        ambiguity,
    }
}

/// The path after a leading authority, when the target starts with two of `/` and `\`: the
/// WHATWG URL parser (`new URL(target, base)`) skips every leading `/` and `\`, reads up to the
/// next `/` or `\` as the host, and the rest (or `/`) is the path.
fn strip_authority(raw: &str) -> Option<&str> {
    let slash = |c: char| c == '/' || c == '\\';
    let mut chars = raw.chars();
    if !(chars.next().is_some_and(slash) && chars.next().is_some_and(slash)) {
        return None;
    }
    let host_and_path = raw.trim_start_matches(slash);
    Some(
        host_and_path
            .find(slash)
            .map_or("/", |at| host_and_path.get(at..).unwrap_or("/")),
    )
}

/// Add the readings of `encoded` (the output of [`encode`]) not already in `readings`: as is or
/// decoded, dot segments resolved or not, slashes merged or not.
fn add_readings(readings: &mut Vec<Reading>, encoded: &str, authority: bool) {
    let decoded = decoded_reading(encoded);
    for (text, decoded) in [(encoded, false), (decoded.as_str(), true)] {
        if decoded && text == encoded {
            continue;
        }
        // Without `/.` or `//` there is nothing to resolve or merge: one reading, not four.
        let trivial = !text.contains("/.") && !text.contains("//");
        let combinations: &[(bool, bool)] = if trivial {
            &[(true, true)]
        } else {
            &[(true, true), (false, false), (true, false), (false, true)]
        };
        for &(resolved, merged) in combinations {
            let path = match (resolved, merged) {
                _ if trivial => text.to_owned(),
                (true, _) => resolve(text, merged).path,
                (false, false) => text.to_owned(),
                (false, true) => merge_slashes(text),
            };
            if !readings.iter().any(|r| r.path == path) {
                readings.push(Reading {
                    path,
                    how: How {
                        authority,
                        decoded,
                        resolved,
                        merged,
                    },
                });
            }
        }
    }
}

fn merge_slashes(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        if !(c == '/' && out.ends_with('/')) {
            out.push(c);
        }
    }
    out
}

/// The first step of normalization: percent-encoded unreserved characters decoded, other
/// escapes with uppercase hex, raw characters that need it encoded, a leading `/` ensured.
/// Returns the first ambiguity found on the way.
fn encode(raw: &str) -> (String, Option<Ambiguity>) {
    let mut ambiguity: Option<Ambiguity> = None;
    let mut flag = |a: Ambiguity| {
        ambiguity.get_or_insert(a);
    };
    let absolute = raw.starts_with('/');
    if !absolute {
        flag(Ambiguity::NotAbsolute);
    }
    let bytes = raw.as_bytes();
    let mut encoded = String::with_capacity(raw.len() + 1);
    if !absolute {
        encoded.push('/');
    }
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            match escape_at(bytes, i) {
                Some(d) => {
                    if is_unreserved(d) {
                        encoded.push(char::from(d));
                    } else {
                        match d {
                            b'/' => flag(Ambiguity::EncodedSlash),
                            b'\\' => flag(Ambiguity::EncodedBackslash),
                            d if d.is_ascii_control() => flag(Ambiguity::ControlCharacter),
                            _ => {}
                        }
                        push_escape(&mut encoded, d);
                    }
                    i += 3;
                }
                None => {
                    flag(Ambiguity::InvalidPercentEncoding);
                    push_escape(&mut encoded, b);
                    i += 1;
                }
            }
            continue;
        }
        if b == b'\\' {
            flag(Ambiguity::Backslash);
            push_escape(&mut encoded, b);
        } else if b.is_ascii_control() {
            flag(Ambiguity::ControlCharacter);
            push_escape(&mut encoded, b);
        } else if !b.is_ascii() {
            flag(Ambiguity::NonAscii);
            push_escape(&mut encoded, b);
        } else {
            encoded.push(char::from(b));
        }
        i += 1;
    }
    // Checked on the result, so that `%25%41%41` (which decodes to `%25AA`) counts too.
    let out = encoded.as_bytes();
    let double = out.windows(5).any(
        |w| matches!(w, [b'%', b'2', b'5', h, l] if h.is_ascii_hexdigit() && l.is_ascii_hexdigit()),
    );
    if double {
        flag(Ambiguity::DoubleEncoding);
    }
    (encoded, ambiguity)
}

/// The printable ASCII character an escape sequence at `bytes[i]` stands for to a lenient
/// decoder, and its length: `%XX`, overlong UTF-8 for `.`, `/` and `\` (`%C0%AE`), and the
/// fullwidth forms of those three (`%EF%BC%8E`), which Unicode normalization (NFKC) turns into
/// them.
fn lenient_escape_at(bytes: &[u8], i: usize) -> Option<(u8, usize)> {
    let first = escape_at(bytes, i)?;
    if (0x20..0x7f).contains(&first) {
        return Some((first, 3));
    }
    let second = escape_at(bytes, i + 3);
    match (first, second) {
        (0xC0, Some(0xAE)) => Some((b'.', 6)),
        (0xC0, Some(0xAF)) => Some((b'/', 6)),
        (0xC1, Some(0x9C)) => Some((b'\\', 6)),
        (0xEF, Some(0xBC)) => match escape_at(bytes, i + 6) {
            Some(0x8E) => Some((b'.', 9)),
            Some(0x8F) => Some((b'/', 9)),
            Some(0xBC) => Some((b'\\', 9)),
            _ => None,
        },
        _ => None,
    }
}

/// How a lenient server could read the path (before dot segments are resolved): every escape
/// of a printable ASCII character (and look-alikes of `.`, `/`, `\`) decoded, repeatedly; `\`
/// read as `/`; `;` parameters dropped from every segment. Empty segments are kept.
fn decoded_reading(encoded: &str) -> String {
    if !encoded.contains(['%', '\\', ';']) {
        return encoded.to_owned();
    }
    let mut current = encoded.to_owned();
    for _ in 0..MAX_DECODE_ROUNDS {
        let bytes = current.as_bytes();
        let mut next = String::with_capacity(current.len());
        let mut i = 0;
        while let Some(&b) = bytes.get(i) {
            match lenient_escape_at(bytes, i) {
                Some((d, len)) => {
                    next.push(char::from(d));
                    i += len;
                }
                None => {
                    next.push(char::from(b));
                    i += 1;
                }
            }
        }
        let done = next == current;
        current = next;
        if done {
            break;
        }
    }
    // Escapes of bytes outside printable ASCII stay encoded, so the text is ASCII.
    let slashes = current.replace('\\', "/");
    let mut out = String::with_capacity(slashes.len() + 1);
    for (i, segment) in slashes.split('/').enumerate() {
        if i > 0 || !segment.is_empty() {
            out.push('/');
        }
        out.push_str(segment.split_once(';').map_or(segment, |(name, _)| name));
    }
    out
}

/// A path with its dot segments resolved, and what was unusual about them.
struct Resolved {
    path: String,
    /// A `..` climbed above the root (clamped there).
    above_root: bool,
    /// A `.`/`..` segment carried `;` parameters.
    dot_params: bool,
    /// A `..` followed an empty segment (where collapsing and RFC 3986 disagree).
    empty_dot_dot: bool,
}

/// RFC 3986 `remove_dot_segments` on a path starting with `/`; with `merge`, empty segments
/// are collapsed as well (a trailing `/` is kept either way).
fn resolve(path: &str, merge: bool) -> Resolved {
    let mut out: Vec<&str> = Vec::new();
    let mut above_root = false;
    let mut dot_params = false;
    let mut empty_dot_dot = false;
    let mut trailing_slash = false;
    let mut previous_empty = false;
    let rest = path.strip_prefix('/').unwrap_or(path);
    let mut segments = rest.split('/').peekable();
    while let Some(segment) = segments.next() {
        let last = segments.peek().is_none();
        trailing_slash = false;
        match segment {
            "" if !merge && !last => out.push(""),
            "" | "." => trailing_slash = last,
            ".." => {
                empty_dot_dot |= previous_empty;
                if out.pop().is_none() {
                    above_root = true;
                }
                trailing_slash = last;
            }
            s => {
                if let Some((name, _)) = s.split_once(';')
                    && matches!(name, "." | "..")
                {
                    dot_params = true;
                }
                out.push(s);
            }
        }
        previous_empty = segment.is_empty();
    }
    let mut normalized = String::with_capacity(path.len());
    for segment in &out {
        normalized.push('/');
        normalized.push_str(segment);
    }
    if trailing_slash || out.is_empty() {
        normalized.push('/');
    }
    Resolved {
        path: normalized,
        above_root,
        dot_params,
        empty_dot_dot,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Byte(u8),
    /// `?`: one character, not `/`.
    One,
    /// `*`: any run without `/`.
    Star,
    /// `**` not after a `/`: any run.
    AnyRun,
    /// `/**`: nothing, or `/` followed by any run.
    SlashAnyRun,
}

/// A path pattern: `*` (within a segment), `**` (across segments), `?` (one character).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathGlob {
    text: String,
    tokens: Vec<Token>,
    /// The tokens with escapes of printable ASCII decoded, when that differs: what decoded
    /// readings are compared with.
    decoded: Option<Vec<Token>>,
}

impl PathGlob {
    /// Parse a path pattern. It must start with `/`, be ASCII without spaces or control
    /// characters, contain no `.`/`..` segment, empty segment, `\`, `%2F` or `%5C`, valid
    /// percent-encoding only, and no run of three or more `*`.
    pub fn parse(pattern: &str) -> Result<Self, String> {
        if !pattern.starts_with('/') {
            return Err(format!("path pattern `{pattern}` must start with `/`"));
        }
        if let Some(c) = pattern
            .chars()
            .find(|c| !c.is_ascii() || c.is_ascii_control() || *c == ' ')
        {
            return Err(format!(
                "path pattern `{}` contains {c:?}; write it percent-encoded",
                pattern.escape_debug()
            ));
        }
        if pattern.contains('\\') {
            return Err(format!("path pattern `{pattern}` contains `\\`"));
        }
        if pattern.contains("***") {
            return Err(format!(
                "path pattern `{pattern}` contains `***`; use `*` (one segment) or `**` (any depth)"
            ));
        }
        let (text, ambiguity) = encode(pattern);
        if let Some(why) = ambiguity {
            return Err(format!(
                "path pattern `{pattern}` is ambiguous: {why}; requests with such paths are never allowed"
            ));
        }
        let body = text.strip_prefix('/').unwrap_or(&text);
        let mut parts = body.split('/').peekable();
        while let Some(segment) = parts.next() {
            if matches!(
                segment.split_once(';').map_or(segment, |(name, _)| name),
                "." | ".."
            ) {
                return Err(format!(
                    "path pattern `{pattern}` contains a `.` or `..` segment; paths are matched after those are resolved"
                ));
            }
            if segment.is_empty() && parts.peek().is_some() {
                return Err(format!(
                    "path pattern `{pattern}` contains an empty segment (`//`); paths are matched with `//` collapsed"
                ));
            }
        }
        // `encode` decoded unreserved escapes and uppercased the others; `*` and `?` are not
        // escapes, so they survive as written. With no dot or empty segment, this is the
        // pattern's normal form.
        let tokens = tokenize(&text, false);
        let decoded = tokenize(&text, true);
        let decoded = (decoded != tokens).then_some(decoded);
        Ok(Self {
            text,
            tokens,
            decoded,
        })
    }

    /// The pattern as it is matched (unreserved escapes decoded).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the (normalized) path matches. Runs in `O(pattern × path)`, no backtracking.
    pub fn matches(&self, path: &str) -> bool {
        run(&self.tokens, path.as_bytes(), false)
    }

    /// Whether a reading of a path matches: a decoded reading is compared with the pattern's
    /// escapes decoded too (`%2C` matches `,`); with `fold`, ASCII letters match either case.
    pub fn matches_reading(&self, reading: &Reading, fold: bool) -> bool {
        let tokens = match &self.decoded {
            Some(decoded) if reading.how.decoded => decoded,
            _ => &self.tokens,
        };
        run(tokens, reading.path.as_bytes(), fold)
    }

    /// Whether any spelling of the pattern matches a path, ignoring case: escapes as written
    /// or decoded (`%2C` matches `%2C` and `,`). What `deny` and `ask` rules use.
    pub fn matches_loosely(&self, path: &str) -> bool {
        run(&self.tokens, path.as_bytes(), true)
            || self
                .decoded
                .as_ref()
                .is_some_and(|d| run(d, path.as_bytes(), true))
    }
}

/// A pattern's tokens; with `decode`, escapes of printable ASCII characters become the
/// character (a literal, even `*` or `?`), to compare with decoded readings.
fn tokenize(text: &str, decode: bool) -> Vec<Token> {
    let bytes = text.as_bytes();
    let mut tokens = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'%' if decode => match escape_at(bytes, i) {
                Some(d) if (0x20..0x7f).contains(&d) => {
                    tokens.push(Token::Byte(d));
                    i += 3;
                }
                _ => {
                    tokens.push(Token::Byte(b));
                    i += 1;
                }
            },
            b'*' if bytes.get(i + 1) == Some(&b'*') => {
                let whole_segment = matches!(bytes.get(i + 2), None | Some(b'/'));
                if whole_segment && tokens.last() == Some(&Token::Byte(b'/')) {
                    tokens.pop();
                    tokens.push(Token::SlashAnyRun);
                } else {
                    tokens.push(Token::AnyRun);
                }
                i += 2;
            }
            b'*' => {
                tokens.push(Token::Star);
                i += 1;
            }
            b'?' => {
                tokens.push(Token::One);
                i += 1;
            }
            b => {
                tokens.push(Token::Byte(b));
                i += 1;
            }
        }
    }
    tokens
}

/// Match `tokens` against `path` in `O(tokens × path)`, no backtracking.
fn run(tokens: &[Token], path: &[u8], fold: bool) -> bool {
    let n = path.len();
    // reach[j]: the first `j` bytes of the path can be consumed by the tokens so far.
    let mut reach = vec![false; n + 1];
    let mut next = vec![false; n + 1];
    if let Some(r) = reach.first_mut() {
        *r = true;
    }
    for token in tokens {
        next.fill(false);
        match token {
            Token::Byte(c) => {
                for j in 0..n {
                    if reach.get(j) == Some(&true)
                        && path
                            .get(j)
                            .is_some_and(|b| b == c || (fold && b.eq_ignore_ascii_case(c)))
                    {
                        set(&mut next, j + 1);
                    }
                }
            }
            Token::One => {
                for j in 0..n {
                    if reach.get(j) == Some(&true) && path.get(j).is_some_and(|b| *b != b'/') {
                        set(&mut next, j + 1);
                    }
                }
            }
            Token::Star => {
                let mut open = false;
                for j in 0..=n {
                    open |= reach.get(j) == Some(&true);
                    if open {
                        set(&mut next, j);
                    }
                    if path.get(j) == Some(&b'/') {
                        open = false;
                    }
                }
            }
            Token::AnyRun => {
                if let Some(first) = reach.iter().position(|r| *r) {
                    for r in next.iter_mut().skip(first) {
                        *r = true;
                    }
                }
            }
            Token::SlashAnyRun => {
                let mut open = false;
                for j in 0..=n {
                    if reach.get(j) == Some(&true) {
                        set(&mut next, j);
                    }
                    if open {
                        set(&mut next, j);
                    }
                    if reach.get(j) == Some(&true) && path.get(j) == Some(&b'/') {
                        open = true;
                    }
                }
            }
        }
        std::mem::swap(&mut reach, &mut next);
        if !reach.contains(&true) {
            return false;
        }
    }
    reach.get(n) == Some(&true)
}

fn set(v: &mut [bool], i: usize) {
    if let Some(r) = v.get_mut(i) {
        *r = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(p: &str) -> (String, Option<Ambiguity>) {
        let n = normalize(p);
        (n.path, n.ambiguity)
    }

    #[test]
    fn plain_paths_are_unchanged() {
        for p in [
            "/",
            "/a",
            "/a/",
            "/repos/a/b",
            "/a-b_c.d~e",
            "/a%20b",
            "/%C3%A9",
        ] {
            assert_eq!(norm(p), (p.to_owned(), None), "{p}");
        }
    }

    #[test]
    fn dot_segments_and_empty_segments_go() {
        let cases = [
            ("/a/./b", "/a/b"),
            ("/a/../b", "/b"),
            ("/a/b/..", "/a/"),
            ("/a/b/.", "/a/b/"),
            ("/repos/../admin", "/admin"),
            ("//a//b//", "/a/b/"),
            ("/a/..", "/"),
            ("/a/%2e%2E/b", "/b"),
            ("/a/.%2e/b", "/b"),
            ("/%61dmin", "/admin"),
            ("/a%7eb", "/a~b"),
            ("/a%2cb", "/a%2Cb"),
            ("/a/...", "/a/..."),
            ("/a/..b", "/a/..b"),
        ];
        for (raw, want) in cases {
            assert_eq!(norm(raw), (want.to_owned(), None), "{raw}");
        }
    }

    #[test]
    fn unusual_paths_are_ambiguous() {
        let cases = [
            ("/a%2fb", "/a%2Fb", Ambiguity::EncodedSlash),
            ("/a%2Fb", "/a%2Fb", Ambiguity::EncodedSlash),
            ("/a%5cb", "/a%5Cb", Ambiguity::EncodedBackslash),
            ("/a\\b", "/a%5Cb", Ambiguity::Backslash),
            ("/a%zz", "/a%25zz", Ambiguity::InvalidPercentEncoding),
            ("/a%", "/a%25", Ambiguity::InvalidPercentEncoding),
            ("/a%4", "/a%254", Ambiguity::InvalidPercentEncoding),
            ("/a%00b", "/a%00b", Ambiguity::ControlCharacter),
            ("/a\nb", "/a%0Ab", Ambiguity::ControlCharacter),
            ("/a\u{7f}", "/a%7F", Ambiguity::ControlCharacter),
            ("/é", "/%C3%A9", Ambiguity::NonAscii),
            ("/a%252e", "/a%252e", Ambiguity::DoubleEncoding),
            ("/a%25%41%41", "/a%25AA", Ambiguity::DoubleEncoding),
            ("/a%25%32e", "/a%252e", Ambiguity::DoubleEncoding),
            ("/..", "/", Ambiguity::AboveRoot),
            ("/a/../../b", "/b", Ambiguity::AboveRoot),
            ("/%2e%2e/etc", "/etc", Ambiguity::AboveRoot),
            (
                "/repos/..;/admin",
                "/repos/..;/admin",
                Ambiguity::DotSegmentParameters,
            ),
            (
                "/repos/.;x/a",
                "/repos/.;x/a",
                Ambiguity::DotSegmentParameters,
            ),
            ("", "/", Ambiguity::NotAbsolute),
            ("a/b", "/a/b", Ambiguity::NotAbsolute),
        ];
        for (raw, want, why) in cases {
            assert_eq!(norm(raw), (want.to_owned(), Some(why)), "{raw:?}");
        }
    }

    #[test]
    fn percent_after_percent_is_not_double_encoding_unless_hex_follows() {
        assert_eq!(norm("/100%25"), ("/100%25".to_owned(), None));
        assert_eq!(norm("/100%25off"), ("/100%25off".to_owned(), None));
    }

    #[test]
    fn a_dot_dot_after_an_empty_segment_is_ambiguous() {
        assert!(normalize("//../x").ambiguity.is_some());
        for raw in ["/secret//../x", "/admin//../public/x"] {
            assert_eq!(
                normalize(raw).ambiguity,
                Some(Ambiguity::EmptySegmentBeforeDotDot),
                "{raw}"
            );
        }
        assert_eq!(normalize("/a//b/../c").ambiguity, None);
    }

    /// Every reading's path.
    fn readings(raw: &str) -> Vec<String> {
        normalize(raw)
            .readings
            .into_iter()
            .map(|r| r.path)
            .collect()
    }

    /// The reading a lenient server makes: decoded, dot segments resolved, slashes merged.
    fn decoded(raw: &str) -> String {
        let n = normalize(raw);
        n.readings
            .iter()
            .find(|r| r.how.decoded && r.how.resolved && r.how.merged && !r.how.authority)
            .map_or(n.path.clone(), |r| r.path.clone())
    }

    #[test]
    fn dot_segments_never_resolve_across_a_query_or_fragment() {
        for raw in [
            "/admin?/../public/x",
            "/admin#/../public/x",
            "/admin?a#/../public",
        ] {
            assert_eq!(readings(raw), ["/admin"], "{raw}");
        }
        assert_eq!(normalize("/ws/room?token=x").path, "/ws/room");
    }

    #[test]
    fn the_decoded_reading_decodes_everything_and_reads_backslash_as_slash() {
        assert_eq!(decoded("/admin%2fsecret"), "/admin/secret");
        let n = normalize("/repos/x%2f..%2f..%2fadmin");
        assert_eq!(n.path, "/repos/x%2F..%2F..%2Fadmin");
        assert_eq!(decoded("/repos/x%2f..%2f..%2fadmin"), "/admin");
        assert_eq!(decoded("/repos\\..\\admin"), "/admin");
        assert_eq!(decoded("/repos/%252e%252e/admin"), "/admin");
        assert_eq!(decoded("/a%2520b"), "/a b");
        assert_eq!(decoded("/secret;v=1/x"), "/secret/x");
        assert_eq!(decoded("/repos/..;/admin"), "/admin");
        assert_eq!(decoded("/a%20b%3Bc"), "/a b");
        assert_eq!(decoded("/x/%c0%ae%C0%AE/admin"), "/admin");
        assert_eq!(decoded("/x/%ef%bc%8e%ef%bc%8e%ef%bc%8fadmin"), "/admin");
        assert_eq!(readings("/a/b"), ["/a/b"]);
        assert_eq!(readings("/.."), ["/", "/.."]);
    }

    #[test]
    fn routers_read_dot_segments_as_sent() {
        let r = readings("/admin/../public/x");
        assert_eq!(r[0], "/public/x");
        assert!(r.contains(&"/admin/../public/x".to_owned()), "{r:?}");
        let r = readings("/admin/%2e%2E/public/x");
        assert!(r.contains(&"/admin/../public/x".to_owned()), "{r:?}");
        let r = readings("/admin/.%2E/public/x");
        assert!(r.contains(&"/admin/../public/x".to_owned()), "{r:?}");
    }

    #[test]
    fn empty_segments_are_kept_or_merged() {
        let r = readings("/a//b/../c");
        assert_eq!(r[0], "/a/c");
        for want in ["/a//b/../c", "/a//c", "/a/b/../c"] {
            assert!(r.contains(&want.to_owned()), "{want} in {r:?}");
        }
    }

    #[test]
    fn a_leading_double_slash_is_read_as_an_authority() {
        for (raw, want) in [
            ("//public/admin/secret", "/admin/secret"),
            ("///public/admin/secret", "/admin/secret"),
            ("/\\public/admin/secret", "/admin/secret"),
            ("//public", "/"),
            ("//public/%2e%2e/admin", "/admin"),
        ] {
            let n = normalize(raw);
            assert!(
                n.readings.iter().any(|r| r.path == want),
                "{raw}: {:?}",
                n.readings
            );
            assert!(n.readings.iter().any(|r| r.how.authority), "{raw}");
        }
        assert!(
            !normalize("/public//admin")
                .readings
                .iter()
                .any(|r| r.how.authority)
        );
    }

    #[test]
    fn plain_paths_have_one_reading() {
        for p in ["/", "/a", "/a/", "/repos/a/b", "/a-b_c.d~e", "/a.b/..c"] {
            assert_eq!(readings(p), [p], "{p}");
        }
    }

    #[test]
    fn normal_forms_are_fixed_points() {
        for p in ["/a/./b", "/a%2e%2e", "//x//", "/a%2cb", "/%61"] {
            let once = normalize(p).path;
            assert_eq!(normalize(&once).path, once, "{p}");
        }
    }

    fn glob(p: &str) -> PathGlob {
        PathGlob::parse(p).unwrap()
    }

    #[test]
    fn star_stays_within_a_segment() {
        let g = glob("/repos/*");
        assert!(g.matches("/repos/a"));
        assert!(g.matches("/repos/"));
        assert!(!g.matches("/repos/a/b"));
        assert!(!g.matches("/repos"));
        let g = glob("/repos/*/issues");
        assert!(g.matches("/repos/x/issues"));
        assert!(!g.matches("/repos/x/y/issues"));
        let g = glob("/files/*.txt");
        assert!(g.matches("/files/a.txt"));
        assert!(g.matches("/files/.txt"));
        assert!(!g.matches("/files/a/b.txt"));
    }

    #[test]
    fn double_star_crosses_segments() {
        let g = glob("/a/**");
        for p in ["/a", "/a/", "/a/b", "/a/b/c"] {
            assert!(g.matches(p), "{p}");
        }
        for p in ["/ab", "/", "/b/a"] {
            assert!(!g.matches(p), "{p}");
        }
        let g = glob("/a/**/z");
        for p in ["/a/z", "/a/b/z", "/a/b/c/z"] {
            assert!(g.matches(p), "{p}");
        }
        assert!(!g.matches("/a/bz"));
        let g = glob("/**");
        assert!(g.matches("/"));
        assert!(g.matches("/x/y"));
        let g = glob("/a/**b");
        assert!(g.matches("/a/b"));
        assert!(g.matches("/a/x/yb"));
        assert!(!g.matches("/ab"));
        let g = glob("/a**");
        assert!(g.matches("/a"));
        assert!(g.matches("/abc/def"));
        let g = glob("/**/*.json");
        assert!(g.matches("/x.json"));
        assert!(g.matches("/a/b/x.json"));
        assert!(!g.matches("/a/b/x.jsonl"));
    }

    #[test]
    fn question_mark_is_one_character_but_not_slash() {
        let g = glob("/v?/x");
        assert!(g.matches("/v1/x"));
        assert!(!g.matches("/v/x"));
        assert!(!g.matches("/v12/x"));
        assert!(!glob("/a?b").matches("/a/b"));
    }

    #[test]
    fn literal_patterns_match_exactly() {
        let g = glob("/repos");
        assert!(g.matches("/repos"));
        assert!(!g.matches("/repos/"));
        assert!(!g.matches("/repo"));
        assert!(
            glob("/%61pi").matches("/api"),
            "unreserved escapes are decoded in patterns"
        );
        assert!(
            glob("/a%2cb").matches("/a%2Cb"),
            "escape case does not matter"
        );
    }

    #[test]
    fn bad_patterns_are_rejected() {
        for p in [
            "repos/*",
            "",
            "/a/../b",
            "/a/./b",
            "/a/%2e%2e/b",
            "/a//b",
            "/a%2Fb",
            "/a%5cb",
            "/a\\b",
            "/a%zz",
            "/a b",
            "/é",
            "/a/***",
            "/a\n",
        ] {
            assert!(PathGlob::parse(p).is_err(), "{p:?}");
        }
    }

    #[test]
    fn pathological_patterns_stay_linear() {
        let g = glob("/*a*a*a*a*a*a*a*a*a*a*a*a*b");
        let path = format!("/{}", "a".repeat(5000));
        assert!(!g.matches(&path));
        let g = glob("/**a**a**a**a**a**a**a**b");
        assert!(!g.matches(&path));
    }
}
