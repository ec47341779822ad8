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

/// A request path after normalization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NormalizedPath {
    /// The normalized path: percent-encoded unreserved characters decoded, every other escape
    /// kept with uppercase hex digits, raw characters that need encoding (`\`, controls,
    /// non-ASCII) percent-encoded, `.`/`..` segments removed and `//` collapsed. Always ASCII
    /// and always starting with `/`.
    pub path: String,
    /// The reading of a permissive server, when it differs from `path`: every escape of a
    /// printable ASCII character decoded (repeatedly), `\` read as `/`, `;` parameters dropped
    /// from every segment, then dot segments resolved and `//` collapsed. `deny` and `ask` rules
    /// match either form; `allow` rules only `path`.
    pub alternate: Option<String>,
    /// Why the path is ambiguous (the first reason found); `None` when it is not.
    pub ambiguity: Option<Ambiguity>,
}

impl NormalizedPath {
    /// The forms `deny` and `ask` rules are matched against.
    pub fn views(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.path.as_str()).chain(self.alternate.as_deref())
    }
}

/// How many times the alternate reading decodes escapes (a server decoding more often than
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

/// Normalize a request path as sent. Never fails: an unusual path comes back with an
/// [`Ambiguity`] and a best-effort normal form. A query (from the first `?`) and a fragment
/// (from the first `#`) are not part of the path and are cut off first: a server never resolves
/// dot segments across them, so neither may the rules (`/admin?/../public` is `/admin`).
pub fn normalize(raw: &str) -> NormalizedPath {
    let raw = raw.split(['?', '#']).next().unwrap_or_default();
    let (encoded, mut ambiguity) = encode(raw);
    let (path, above_root, dot_params, empty_dot_dot) = remove_dot_segments(&encoded);
    if above_root {
        ambiguity.get_or_insert(Ambiguity::AboveRoot);
    }
    if dot_params {
        ambiguity.get_or_insert(Ambiguity::DotSegmentParameters);
    }
    if empty_dot_dot {
        ambiguity.get_or_insert(Ambiguity::EmptySegmentBeforeDotDot);
    }
    let (alternate, ..) = remove_dot_segments(&permissive_reading(&encoded));
    let alternate = (alternate != path).then_some(alternate);
    NormalizedPath {
        path,
        alternate,
        ambiguity,
    }
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

/// How a permissive server could read the path (before dot segments are resolved): every
/// escape of a printable ASCII character decoded, repeatedly; `\` read as `/`; `;` parameters
/// dropped from every segment.
fn permissive_reading(encoded: &str) -> String {
    let mut current = encoded.to_owned();
    for _ in 0..MAX_DECODE_ROUNDS {
        let bytes = current.as_bytes();
        let mut next = String::with_capacity(current.len());
        let mut i = 0;
        while let Some(&b) = bytes.get(i) {
            match escape_at(bytes, i) {
                Some(d) if (0x20..0x7f).contains(&d) => {
                    next.push(char::from(d));
                    i += 3;
                }
                _ => {
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
    // Escapes of bytes outside printable ASCII stay encoded, so the text is ASCII; a decoded
    // space is encoded again.
    let slashes = current.replace('\\', "/").replace(' ', "%20");
    let mut out = String::with_capacity(slashes.len() + 1);
    for (i, segment) in slashes.split('/').enumerate() {
        if i > 0 || !segment.is_empty() {
            out.push('/');
        }
        out.push_str(segment.split_once(';').map_or(segment, |(name, _)| name));
    }
    out
}

/// RFC 3986 `remove_dot_segments`, with empty segments collapsed, on a path starting with `/`.
/// Returns the path, whether a `..` climbed above the root (clamped there), whether a
/// `.`/`..` segment carried `;` parameters, and whether a `..` followed an empty segment (where
/// collapsing and RFC 3986 disagree).
fn remove_dot_segments(path: &str) -> (String, bool, bool, bool) {
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
    (normalized, above_root, dot_params, empty_dot_dot)
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
        let bytes = text.as_bytes();
        let mut tokens = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while let Some(&b) = bytes.get(i) {
            match b {
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
        Ok(Self { text, tokens })
    }

    /// The pattern as it is matched (unreserved escapes decoded).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the (normalized) path matches. Runs in `O(pattern × path)`, no backtracking.
    pub fn matches(&self, path: &str) -> bool {
        let path = path.as_bytes();
        let n = path.len();
        // reach[j]: the first `j` bytes of the path can be consumed by the tokens so far.
        let mut reach = vec![false; n + 1];
        if let Some(r) = reach.first_mut() {
            *r = true;
        }
        for token in &self.tokens {
            let mut next = vec![false; n + 1];
            match token {
                Token::Byte(c) => {
                    for j in 0..n {
                        if reach.get(j) == Some(&true) && path.get(j) == Some(c) {
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
            reach = next;
            if !reach.contains(&true) {
                return false;
            }
        }
        reach.get(n) == Some(&true)
    }
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

    #[test]
    fn dot_segments_never_resolve_across_a_query_or_fragment() {
        for raw in [
            "/admin?/../public/x",
            "/admin#/../public/x",
            "/admin?a#/../public",
        ] {
            let n = normalize(raw);
            assert_eq!(n.path, "/admin", "{raw}");
            assert_eq!(n.alternate, None, "{raw}");
        }
        assert_eq!(normalize("/ws/room?token=x").path, "/ws/room");
    }

    #[test]
    fn the_alternate_reading_decodes_everything_and_reads_backslash_as_slash() {
        let n = normalize("/admin%2fsecret");
        assert_eq!(n.alternate.as_deref(), Some("/admin/secret"));
        let n = normalize("/repos/x%2f..%2f..%2fadmin");
        assert_eq!(n.path, "/repos/x%2F..%2F..%2Fadmin");
        assert_eq!(n.alternate.as_deref(), Some("/admin"));
        let n = normalize("/repos\\..\\admin");
        assert_eq!(n.alternate.as_deref(), Some("/admin"));
        let n = normalize("/repos/%252e%252e/admin");
        assert_eq!(n.alternate.as_deref(), Some("/admin"));
        let n = normalize("/a%2520b");
        assert_eq!(n.alternate.as_deref(), Some("/a%20b"));
        assert_eq!(normalize("/a/b").alternate, None);
        assert_eq!(
            normalize("/secret;v=1/x").alternate.as_deref(),
            Some("/secret/x")
        );
        assert_eq!(
            normalize("/repos/..;/admin").alternate.as_deref(),
            Some("/admin")
        );
        assert_eq!(normalize("/a%20b%3Bc").alternate.as_deref(), Some("/a%20b"));
        assert_eq!(normalize("/..").alternate, None, "the same as `path`");
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
