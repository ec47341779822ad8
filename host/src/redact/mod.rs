//! Masking secrets before a request is stored, shown or logged: approval records, audit lines,
//! operator views.
//!
//! [`action`] copies an action with its secrets replaced by [`MASK`], [`summary`] renders that
//! copy on one line, and [`text`] masks free text (a command line, a tool argument). Only the
//! secret part is masked, so the rest stays readable: `Authorization: Bearer ***`,
//! `?token=***&page=2`, `--password=***`, `https://user:***@host/`. The rules, with examples,
//! are in `docs/redaction.md`.
//!
//! Properties the tests hold the module to:
//! - no panic on any UTF-8 input: the scanners work on bytes read through `get` (no index can
//!   be out of range), and cut only next to ASCII bytes, so every cut is on a character
//!   boundary;
//! - linear time: every scan either consumes what it reads or is bounded, so a 64 KiB input
//!   costs a few passes over it;
//! - idempotence: `text(&text(x)) == text(x)`, because a mask is never part of a name, a value
//!   delimiter or a token format, so masking never creates something a rule looks for.
//!
//! Redaction is for people and logs; policies always decide on the unredacted action. A mask
//! must therefore never hide a command from whoever approves: a masked value never extends past
//! a newline, `;`, `&`, `|`, `<`, `>`, a backtick or `$(`, even inside quotes. (A PEM key block
//! spans lines, but only lines of base64 or PEM headers.)

use crate::action::{Action, Header, HttpRequest, LocalExec, ToolCall, Upgrade};

/// The mask put in place of a secret.
pub(crate) const MASK: &str = "***";

/// A copy of `action` with every secret masked (used before a token's request is stored and
/// before anything is shown or logged):
/// - `local.exec`: each argument goes through [`text`]; an argument that is a secret flag
///   (`--password`, `--token`, `-password`, ...) masks the argument after it, `-u`/`--user`/
///   `--proxy-user` masks what follows the first `:` of the next argument, and the flags of
///   known programs (`mysql -p...`, `sshpass -p`, `redis-cli -a`, `docker login -p`, `curl -U`,
///   `-passin pass:...`) are masked; the executable is kept;
/// - `tool.call`: the argument goes through [`text`]; the tool name is kept;
/// - `http.request`: secret headers are masked (keeping an `Authorization` scheme and cookie
///   names), other header values go through [`text`], secret query parameters are masked, and
///   well-known token formats are masked in the path;
/// - `upgrade`: the path's query gets the query rules, well-known token formats are masked;
/// - `connect`: nothing is secret.
///
/// Identifiers (session, sandbox, agent, profile, ...) are never changed.
pub(crate) fn action(action: &Action) -> Action {
    match action {
        Action::LocalExec(e) => Action::LocalExec(LocalExec {
            args: exec_args(&e.executable, &e.args),
            ..e.clone()
        }),
        Action::ToolCall(t) => Action::ToolCall(ToolCall {
            arg: text(&t.arg),
            ..t.clone()
        }),
        Action::HttpRequest(h) => Action::HttpRequest(http_request(h)),
        Action::Connect(c) => Action::Connect(c.clone()),
        Action::Upgrade(u) => Action::Upgrade(Upgrade {
            path: path_and_query(&u.path),
            ..u.clone()
        }),
    }
}

/// `action(a).summary()`: the redacted one-line summary.
pub(crate) fn summary(action: &Action) -> String {
    self::action(action).summary()
}

/// Mask secrets in free text (a command line or a tool argument); used by the above.
///
/// Five passes, in this order: PEM private key blocks, well-known token formats, what `echo`
/// pipes into a flag reading a secret from standard input, the flags and positional secrets of
/// known commands (`mysql -p...`, `sshpass -p`, `redis-cli -a`, `docker login -p`, `curl -U`,
/// `-passin pass:...`, `vault login TOKEN`, `aws configure set NAME VALUE`, ...), then named
/// values (headers, flags, variables, JSON/YAML keys, config lines, URL query parameters and
/// passwords).
pub(crate) fn text(s: &str) -> String {
    named_values(&command_flags(&piped_secrets(&token_formats(&pem_blocks(
        s,
    )))))
}

// ---------------------------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------------------------

/// A name is secret when, lowercased and with `-`, `_` and `.` removed, it contains one of these.
const NAME_WORDS: &[&[u8]] = &[
    b"token",
    b"secret",
    b"password",
    b"passwd",
    b"passphrase",
    b"pwd",
    b"apikey",
    b"accesskey",
    b"privatekey",
    b"auth",
    b"session",
    b"signature",
    b"credential",
    b"cookie",
];

/// Words that also make a URL query parameter's name secret.
const QUERY_WORDS: &[&[u8]] = &[b"key", b"sig", b"code"];

/// A name ending in one of these (normalized as above) names where a secret is, not the secret:
/// `--password-file`, `--token-path`, `--password-stdin`, `--cookie-jar`.
const NOT_SECRET_SUFFIXES: &[&[u8]] = &[b"file", b"path", b"dir", b"stdin", b"jar"];

/// Header names that are always secret (most also match [`NAME_WORDS`]).
const SECRET_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
    "x-auth-token",
    "x-csrf-token",
];

/// `name` without leading dashes, lowercased, without `-`, `_` and `.`.
fn normalized(name: &[u8]) -> Vec<u8> {
    name.iter()
        .skip_while(|&&c| c == b'-')
        .filter(|&&c| !matches!(c, b'-' | b'_' | b'.'))
        .map(u8::to_ascii_lowercase)
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// Whether the normalized name `n` contains the secret word `w`. Two words have exceptions that
/// never name a secret: `auth` in `author`/`authority` (but not `authorization`), and `token` in
/// `tokenizer`.
fn has_word(n: &[u8], w: &[u8]) -> bool {
    if w.is_empty() {
        return false;
    }
    let mut from = 0;
    while let Some(k) = n
        .get(from..)
        .and_then(|t| t.windows(w.len()).position(|x| x == w))
        .map(|k| from + k)
    {
        let rest = n.get(k + w.len()..).unwrap_or_default();
        let exception = match w {
            b"auth" => {
                rest.starts_with(b"or") && !rest.starts_with(b"oriz") && !rest.starts_with(b"oris")
            }
            b"token" => rest.starts_with(b"iz"),
            _ => false,
        };
        if !exception {
            return true;
        }
        from = k + 1;
    }
    false
}

/// Whether a header, flag, variable or key of this name holds a secret; `query` adds the
/// query-parameter words.
fn is_secret(name: &[u8], query: bool) -> bool {
    let n = normalized(name);
    if n.is_empty() || NOT_SECRET_SUFFIXES.iter().any(|s| n.ends_with(s)) {
        return false;
    }
    NAME_WORDS.iter().any(|w| has_word(&n, w))
        || (query && QUERY_WORDS.iter().any(|w| has_word(&n, w)))
}

fn is_secret_header(name: &[u8]) -> bool {
    SECRET_HEADERS
        .iter()
        .any(|h| h.as_bytes().eq_ignore_ascii_case(name))
        || is_secret(name, false)
        || is_key_header(name)
}

/// Words that make a `...-Key` header name not secret: `Sec-WebSocket-Key` (a nonce),
/// `Idempotency-Key`, `X-Public-Key`.
const NOT_SECRET_KEY_WORDS: &[&[u8]] = &[b"websocket", b"idempotency", b"public"];

/// A hyphenated header name whose last part is `Key` (`Ocp-Apim-Subscription-Key`,
/// `X-Functions-Key`), except [`NOT_SECRET_KEY_WORDS`].
fn is_key_header(name: &[u8]) -> bool {
    let Some(dash) = name.iter().rposition(|&c| c == b'-') else {
        return false;
    };
    let n = normalized(name);
    dash > 0
        && !name.starts_with(b"-")
        && name
            .get(dash + 1..)
            .is_some_and(|t| t.eq_ignore_ascii_case(b"key"))
        && !NOT_SECRET_KEY_WORDS.iter().any(|w| contains(&n, w))
}

/// `Authorization`-like: the scheme word of the value is kept.
fn is_authorization(name: &[u8]) -> bool {
    let n = normalized(name);
    n == b"authorization" || n == b"proxyauthorization"
}

/// `Cookie`-like: the value is `name=value` pairs, and only the values are masked.
fn is_cookie(name: &[u8]) -> bool {
    contains(&normalized(name), b"cookie")
}

/// A flag (`--token`, `-password`) whose value, the next word, is secret. Flags that say where
/// a secret is (`--password-file`) or switch something off (`--no-auth`) are not.
fn is_secret_flag(name: &[u8]) -> bool {
    let bare = name.iter().position(|&c| c != b'-').unwrap_or(name.len());
    if bare == 0 || bare == name.len() {
        return false;
    }
    let rest = name.get(bare..).unwrap_or_default().to_ascii_lowercase();
    let switch = [&b"no-"[..], b"no_", b"skip-", b"skip_"]
        .iter()
        .any(|p| rest.starts_with(p));
    !switch && (is_pass_flag(name) || is_secret(name, false))
}

/// `--pass`: not a secret word by itself (`pass` is in `compass`, `bypass`), but as a whole
/// long flag it takes a password (`redis-cli`, `openvpn`, `rclone`, ...).
fn is_pass_flag(name: &[u8]) -> bool {
    name.eq_ignore_ascii_case(b"--pass")
}

/// `-u`/`--user`/`--proxy-user`, whose value is `user:password` (curl and friends).
fn is_user_flag(name: &[u8]) -> bool {
    name == b"-u" || name == b"--user" || name == b"--proxy-user"
}

/// Percent-decode a query parameter name (`+` is a space).
fn percent_decoded(name: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.len());
    let mut i = 0;
    while i < name.len() {
        let c = at(name, i);
        let hex = |k: usize| char::from(at(name, k)).to_digit(16);
        match (c, hex(i + 1), hex(i + 2)) {
            (b'%', Some(h), Some(l)) => {
                out.push(u8::try_from(h * 16 + l).unwrap_or(b'%'));
                i += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Bytes
// ---------------------------------------------------------------------------------------------

/// The byte at `i`, or 0 past the end (0 is in no character class below).
fn at(b: &[u8], i: usize) -> u8 {
    b.get(i).copied().unwrap_or(0)
}

fn starts(b: &[u8], i: usize, prefix: &[u8]) -> bool {
    b.get(i..).is_some_and(|t| t.starts_with(prefix))
}

/// A character of a name: a header, flag, variable, key or URL scheme.
fn is_name(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.')
}

fn is_blank(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

fn is_quote(c: u8) -> bool {
    c == b'"' || c == b'\''
}

fn skip_blank(b: &[u8], mut i: usize) -> usize {
    while is_blank(at(b, i)) {
        i += 1;
    }
    i
}

/// Whether `b[i]` follows a `\n`, `\r` or `\t` escape (JSON strings, `echo -e`): a boundary.
fn after_escape(b: &[u8], i: usize) -> bool {
    i >= 2 && at(b, i - 2) == b'\\' && matches!(at(b, i - 1), b'n' | b'r' | b't')
}

/// Whether a masked value must end before `b[i]`: a newline, a shell control character, a
/// backtick or `$(`. Masking past one of these could hide a command from whoever approves.
/// Cookie values may contain `;` (it separates the pairs, which are masked one by one).
fn stop(b: &[u8], i: usize, semicolon_ok: bool) -> bool {
    match at(b, i) {
        b'\n' | b'\r' | b'&' | b'|' | b'<' | b'>' | b'`' => true,
        b';' => !semicolon_ok,
        b'$' => at(b, i + 1) == b'(',
        _ => false,
    }
}

/// Character classes of token formats and values.
#[derive(Clone, Copy)]
enum Class {
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
    fn has(self, c: u8) -> bool {
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
fn run_end(b: &[u8], mut i: usize, class: Class) -> usize {
    while class.has(at(b, i)) {
        i += 1;
    }
    i
}

/// Builds a masked copy of a string: the bytes between masks are copied as they are.
struct Masker<'a> {
    s: &'a str,
    b: &'a [u8],
    out: Vec<u8>,
    /// Bytes before this have been written to `out` (or masked).
    copied: usize,
    /// A URL password search found no `@` before this position (see [`url_userinfo`]).
    no_at_until: usize,
}

impl<'a> Masker<'a> {
    fn new(s: &'a str) -> Self {
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
    fn mask(&mut self, from: usize, to: usize) {
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

    fn finish(mut self) -> String {
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

// ---------------------------------------------------------------------------------------------
// Pass 1: PEM private key blocks
// ---------------------------------------------------------------------------------------------

const PEM_BEGIN: &[u8] = b"-----BEGIN ";
const PEM_END: &[u8] = b"-----END ";
const DASHES: &[u8] = b"-----";

/// Mask `-----BEGIN ... PRIVATE KEY-----` blocks: the header, then body lines (base64, or
/// `Name: value` headers), through the `-----END ...-----` line. Lines may be separated by
/// newlines, `\n` escapes or spaces. Without an END line (a truncated key), only base64 lines of
/// 40 or more characters are taken, so that a short line after the header (a command) stays
/// visible.
fn pem_blocks(s: &str) -> String {
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

// ---------------------------------------------------------------------------------------------
// Pass 2: well-known token formats
// ---------------------------------------------------------------------------------------------

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
fn token_formats(s: &str) -> String {
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

// ---------------------------------------------------------------------------------------------
// Pass 3: named values
// ---------------------------------------------------------------------------------------------

/// Mask the values of secret names: `Name: value` headers and YAML keys, `-H Name:value`,
/// `"name": value` JSON keys (also in escaped quotes: `\"name\": \"value\"`), `NAME=value` and
/// `--name=value`, `--name value`, `name = "value"`, `name = value` on its own line,
/// `?name=value` query parameters, `scheme://user:password@` and `scheme://<token>@`,
/// `-u user:password`, `Bearer value`.
fn named_values(s: &str) -> String {
    let mut m = Masker::new(s);
    let b = m.b;
    let mut i = 0;
    while i < b.len() {
        let c = at(b, i);
        if c == b'\\' && matches!(at(b, i + 1), b'n' | b'r' | b't') {
            i += 2;
        } else if matches!(c, b'?' | b'&' | b'#') {
            i = query_param(&mut m, i + 1).unwrap_or(i + 1);
        } else if is_name(c) && (i == 0 || !is_name(at(b, i - 1)) || after_escape(b, i)) {
            let j = run_while(b, i, is_name);
            i = name_rules(&mut m, i, j).max(j);
        } else {
            i += 1;
        }
    }
    m.finish()
}

fn run_while(b: &[u8], mut i: usize, f: impl Fn(u8) -> bool) -> usize {
    while i < b.len() && f(at(b, i)) {
        i += 1;
    }
    i
}

/// The rules for the name `b[i..j]`; returns where scanning goes on.
fn name_rules(m: &mut Masker<'_>, i: usize, j: usize) -> usize {
    let b = m.b;
    let name = b.get(i..j).unwrap_or_default();
    let prev = i.checked_sub(1).map(|k| at(b, k));
    let quote = prev.filter(|&c| is_quote(c));
    let next = at(b, j);
    if starts(b, j, b"://") {
        return url_userinfo(m, i, j);
    }
    let escapes = if quote == Some(b'"') {
        (0..i - 1).rev().take_while(|&k| at(b, k) == b'\\').count()
    } else {
        0
    };
    if escapes > 0 && escaped_quote_at(b, j, escapes) {
        // A key in escaped quotes, JSON inside a JSON or shell string: `\"name\": \"value\"`
        // (or `\\\"name\\\"` a level deeper).
        let colon = skip_blank(b, j + escapes + 1);
        if at(b, colon) == b':' && is_secret(name, false) {
            return escaped_json_value(m, name, skip_blank(b, colon + 1), escapes);
        }
        return j;
    }
    if quote.is_some_and(|q| q == next) {
        // A quoted key: `"name": value`, `'name': value`.
        let colon = skip_blank(b, j + 1);
        if at(b, colon) == b':' && is_secret(name, false) {
            return json_value(m, name, skip_blank(b, colon + 1));
        }
        return j;
    }
    if let Some(resume) = config_line(m, name, i, j) {
        return resume;
    }
    match next {
        b':' => {
            let v = j + 1;
            // `-H Name:value`, `--header=Name:value`, httpie's `Name:'value'`: one shell word.
            if !is_blank(at(b, v))
                && matches!(prev, Some(b' ' | b'\t' | b'='))
                && ((is_quote(at(b, v)) && prev != Some(b'=')) || after_header_flag(b, i))
                && is_secret_header(name)
            {
                return word_value(m, name, v, true);
            }
            // `Name: value`: a header or a YAML key. Without a blank after the colon, only at
            // the start of the text, of a line or of a quoted string (`-H 'Authorization:x'`).
            let anchored = is_blank(at(b, v))
                || matches!(prev, None | Some(b'"' | b'\'' | b'\n' | b'\r'))
                || after_escape(b, i);
            if anchored && is_secret_header(name) {
                return header_value(m, name, skip_blank(b, v), quote);
            }
            j
        }
        b'=' => {
            if is_user_flag(name) {
                return user_value(m, j + 1, quote);
            }
            if is_secret(name, false) || is_pass_flag(name) {
                // httpie's `name==value` (a query parameter) keeps both `=`.
                let v = if at(b, j + 1) == b'=' { j + 2 } else { j + 1 };
                return assigned_value(m, name, v, quote);
            }
            j
        }
        b' ' | b'\t' => {
            let w = skip_blank(b, j);
            if at(b, w) == b'=' && at(b, w + 1) != b'=' && is_secret(name, false) {
                // `name = "value"` (source code, config files): only a quoted value.
                let v = skip_blank(b, w + 1);
                if is_quote(at(b, v)) {
                    return quoted_value(m, name, v);
                }
                return j;
            }
            if is_user_flag(name) {
                return user_value(m, w, None);
            }
            if is_secret_flag(name) {
                return flag_value(m, name, w);
            }
            if next == b' ' && name.eq_ignore_ascii_case(b"bearer") {
                let e = run_end(b, j + 1, Class::Token68);
                if e - (j + 1) >= 8 {
                    m.mask(j + 1, e);
                    return e;
                }
            }
            j
        }
        _ => j,
    }
}

/// Whether the name starting at `b[i]` is a header given to `-H`, `--header` or
/// `--proxy-header`: after the flag and blanks, or after `--header=`.
fn after_header_flag(b: &[u8], i: usize) -> bool {
    // Whether `w` is a whole word ending at `end`.
    let word_before = |end: usize, w: &[u8]| {
        end >= w.len()
            && b.get(end - w.len()..end).is_some_and(|x| x == w)
            && (end == w.len() || {
                let c = at(b, end - w.len() - 1);
                c.is_ascii_whitespace() || is_quote(c)
            })
    };
    if i > 0 && at(b, i - 1) == b'=' {
        return word_before(i - 1, b"--header") || word_before(i - 1, b"--proxy-header");
    }
    let mut p = i;
    while p > 0 && is_blank(at(b, p - 1)) {
        p -= 1;
    }
    p < i
        && [&b"-H"[..], b"--header", b"--proxy-header"]
            .iter()
            .any(|w| word_before(p, w))
}

/// Whether `b[i]` starts a line, after blanks: the start of the text, a newline, a `\n` or `\r`
/// escape, or the quote of a here-string (`<<< 'name = value'`).
fn line_start(b: &[u8], i: usize) -> bool {
    let mut p = i;
    while p > 0 && is_blank(at(b, p - 1)) {
        p -= 1;
    }
    if p == 0 || matches!(at(b, p - 1), b'\n' | b'\r') {
        return true;
    }
    if p >= 2 && at(b, p - 2) == b'\\' && matches!(at(b, p - 1), b'n' | b'r') {
        return true;
    }
    if !is_quote(at(b, p - 1)) {
        return false;
    }
    let mut q = p - 1;
    while q > 0 && is_blank(at(b, q - 1)) {
        q -= 1;
    }
    q >= 3 && b.get(q - 3..q).is_some_and(|x| x == b"<<<")
}

/// A config line (INI, properties, TOML, a credentials file in a heredoc) that
/// [`name_rules`]' other rules do not take: `name = value`, `name= value`, `name =value`,
/// `name : value`, with the name `b[i..j]` starting a line. A quoted value is masked inside its
/// quotes. An unquoted value is masked when it is a single word running to the end of the line
/// (or to a ` #` comment), and does not look like code: no parenthesis, bracket or brace, not a
/// dotted identifier (`args.token`), not `None`, `null`, `nil`, `true` or `false`, not the
/// name's last part (`self.token = token`).
fn config_line(m: &mut Masker<'_>, name: &[u8], i: usize, j: usize) -> Option<usize> {
    let b = m.b;
    let s = skip_blank(b, j);
    let sep = at(b, s);
    if !matches!(sep, b'=' | b':') || matches!(at(b, s + 1), b'=' | b':') {
        return None;
    }
    let v = skip_blank(b, s + 1);
    // `name: value`, `name:value` and `NAME=value` are the header and assignment rules'.
    let blank_before = s > j;
    let blank_after = v > s + 1;
    if !blank_before && (sep == b':' || !blank_after) {
        return None;
    }
    if !is_secret(name, false) || !line_start(b, i) {
        return None;
    }
    if is_quote(at(b, v)) {
        return Some(quoted_value(m, name, v));
    }
    let e = run_while(b, v, |c| {
        !(c.is_ascii_whitespace() || is_quote(c) || c == b'\\')
    });
    let e = (v..e).find(|&x| stop(b, x, false)).unwrap_or(e);
    let word = b.get(v..e).unwrap_or_default();
    let t = skip_blank(b, e);
    let line_end = t >= b.len()
        || matches!(at(b, t), b'\n' | b'\r')
        || is_quote(at(b, t))
        || stop(b, t, false)
        || (at(b, t) == b'\\' && matches!(at(b, t + 1), b'n' | b'r'))
        || (at(b, t) == b'#' && t > e);
    // A word with a mask in it (but not a mask) was left by this rule (it looked like code)
    // and masked in part by others: taking it now would not be idempotent.
    let partly_masked = word != MASK.as_bytes() && contains(word, MASK.as_bytes());
    if word.is_empty() || !line_end || partly_masked || looks_like_code(name, word) {
        return None;
    }
    m.mask(v, e);
    Some(e)
}

/// A value in `name = value` that is code rather than a secret (see [`config_line`]), or the
/// name's own last part (`self.token = token`).
fn looks_like_code(name: &[u8], word: &[u8]) -> bool {
    if name.rsplit(|&c| c == b'.').next() == Some(word) {
        return true;
    }
    let literal = [&b"none"[..], b"null", b"nil", b"true", b"false"]
        .iter()
        .any(|k| word.eq_ignore_ascii_case(k));
    let dotted = word.contains(&b'.')
        && word.split(|&c| c == b'.').all(|part| {
            part.first()
                .is_some_and(|&c| c.is_ascii_alphabetic() || c == b'_')
                && part.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'_')
        });
    literal
        || dotted
        || word
            .iter()
            .any(|c| matches!(c, b'(' | b')' | b'[' | b']' | b'{' | b'}'))
}

/// `scheme://user:password@host`: mask the password. `b[i..j]` is the scheme.
///
/// The userinfo ends at the last `@` before the first `/`, `?` or `#`. A password that itself
/// contains one of these (not encoded, as people write them) is found too: when the authority
/// has a `:` that does not start a port, the userinfo runs to the first `@` before the end of
/// the URL (and on to the last `@` before the next `/`, `?` or `#`).
fn url_userinfo(m: &mut Masker<'_>, i: usize, j: usize) -> usize {
    let b = m.b;
    let scheme = b.get(i..j).unwrap_or_default();
    let valid = scheme.first().is_some_and(u8::is_ascii_alphabetic)
        && scheme
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'));
    if !valid {
        return j;
    }
    // The end of the URL: a blank, a quote, a backslash, a parenthesis or a [`stop`].
    let url_end = |k: usize| {
        let c = at(b, k);
        k >= b.len()
            || matches!(c, b'\\' | b'(' | b')')
            || c.is_ascii_whitespace()
            || is_quote(c)
            || stop(b, k, false)
    };
    let start = j + 3;
    let mut k = start;
    let mut at_sign = None;
    while !url_end(k) && !matches!(at(b, k), b'/' | b'?' | b'#') {
        if at(b, k) == b'@' {
            at_sign = Some(k);
        }
        k += 1;
    }
    let colon = (start..k).find(|&x| at(b, x) == b':');
    if at_sign.is_none() && !url_end(k) && k >= m.no_at_until {
        // No `@` in the authority: a password with `/`, `?` or `#` in it, or no password.
        let port = colon.is_some_and(|c| (c + 1..k).all(|x| at(b, x).is_ascii_digit()));
        if colon.is_some() && !port && at(b, start) != b'[' {
            let mut e = k;
            while !url_end(e) && at(b, e) != b'@' {
                e += 1;
            }
            if url_end(e) {
                m.no_at_until = e;
            } else {
                // As the authority will be once masked: up to the next `/`, `?` or `#`, so
                // the last `@` there (masking again finds the same one).
                while !url_end(e) && !matches!(at(b, e), b'/' | b'?' | b'#') {
                    if at(b, e) == b'@' {
                        at_sign = Some(e);
                    }
                    e += 1;
                }
            }
        }
    }
    let Some(at_sign) = at_sign else {
        return j;
    };
    if let Some(colon) = (start..at_sign).find(|&x| at(b, x) == b':') {
        m.mask(colon + 1, at_sign);
    } else if bare_token(scheme, b.get(start..at_sign).unwrap_or_default()) {
        // `https://<token>@github.com/`: a token as the user name.
        m.mask(start, at_sign);
    }
    at_sign + 1
}

/// A user name without a password that is a token: 20 or more of `[A-Za-z0-9_-]`, with a digit
/// (a user name is rarely that long, and words have no digit). Over `http` and `https`, where a
/// user name alone is how tokens are sent (`https://TOKEN@host/repo.git`) and a login name
/// rarely is, 8 or more with a digit and a letter suffice.
fn bare_token(scheme: &[u8], user: &[u8]) -> bool {
    let web = scheme.eq_ignore_ascii_case(b"https") || scheme.eq_ignore_ascii_case(b"http");
    let shaped =
        user.iter().all(|&c| Class::WordDash.has(c)) && user.iter().any(u8::is_ascii_digit);
    let long = if web {
        user.len() >= 8 && user.iter().any(u8::is_ascii_alphabetic)
    } else {
        user.len() >= 20
    };
    shaped && long
}

/// `?name=value`, `&name=value`, `#name=value` (a fragment, as OAuth's implicit flow uses) with
/// `k` just after the `?`, `&` or `#`: mask the value if the name, percent-decoded, is secret.
fn query_param(m: &mut Masker<'_>, k: usize) -> Option<usize> {
    let b = m.b;
    // A name has no `/`: else it could run over a URL (`?u=https://a:p=w@h/x?token=...`) whose
    // password, once masked, no longer ends the name at its `=`.
    let e = run_while(b, k, |c| {
        !(matches!(c, b'=' | b'&' | b'#' | b'?' | b'\\' | b'(' | b')' | b'/')
            || c.is_ascii_whitespace()
            || is_quote(c))
    });
    let e = (k..e).find(|&x| stop(b, x, false)).unwrap_or(e);
    if e == k || at(b, e) != b'=' {
        return None;
    }
    if !is_secret(&percent_decoded(b.get(k..e).unwrap_or_default()), true) {
        return None;
    }
    let v = e + 1;
    let mut f = v;
    while f < b.len() {
        let c = at(b, f);
        if matches!(c, b'&' | b'#' | b'\\')
            || c.is_ascii_whitespace()
            || is_quote(c)
            || stop(b, f, false)
        {
            break;
        }
        f += 1;
    }
    m.mask(v, f);
    Some(f)
}

/// A quoted string starting at `v` (`b[v]` is the quote): the inside's range, and where
/// scanning goes on (after the closing quote, if there is one before a [`stop`]).
fn quoted_range(b: &[u8], v: usize, semicolon_ok: bool) -> (usize, usize, usize) {
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

/// An unquoted shell word starting at `w`: it ends at a blank, a quote, a backslash, a
/// parenthesis or a [`stop`].
fn unquoted_end(b: &[u8], w: usize) -> usize {
    let mut k = w;
    while k < b.len() {
        let c = at(b, k);
        if c.is_ascii_whitespace()
            || is_quote(c)
            || matches!(c, b'\\' | b'(' | b')')
            || stop(b, k, false)
        {
            break;
        }
        k += 1;
    }
    k
}

/// A value inside a quoted string opened just before its name (`"TOKEN=abc"`,
/// `'Authorization: Bearer x'`): it ends at that quote, a backslash or a [`stop`].
fn in_quote_end(b: &[u8], v: usize, q: u8, semicolon_ok: bool) -> usize {
    let mut k = v;
    while k < b.len() {
        let c = at(b, k);
        if c == q || c == b'\\' || stop(b, k, semicolon_ok) {
            break;
        }
        k += 1;
    }
    k
}

/// Mask the secret value `b[start..end]` of `name`: after the scheme word for
/// `Authorization`-like names, pair by pair for cookies (all of it when it has no `=`, except
/// after a flag: `--cookie cookies.txt` names a file), else all of it.
fn mask_value(m: &mut Masker<'_>, name: &[u8], start: usize, end: usize) {
    let b = m.b;
    if start >= end {
        return;
    }
    if is_authorization(name) {
        let scheme = run_while(b, start, is_name).min(end);
        let rest = skip_blank(b, scheme).min(end);
        if scheme > start && rest > scheme && rest < end {
            m.mask(rest, end);
        } else {
            m.mask(start, end);
        }
    } else if is_cookie(name) {
        if !name.starts_with(b"-") && !(start..end).any(|x| at(b, x) == b'=') {
            m.mask(start, end);
            return;
        }
        let sep = |c: u8| c.is_ascii_whitespace() || c == b';' || c == b',';
        let mut k = start;
        while k < end {
            while k < end && sep(at(b, k)) {
                k += 1;
            }
            let t = k;
            while k < end && !sep(at(b, k)) {
                k += 1;
            }
            if let Some(eq) = (t..k).find(|&x| at(b, x) == b'=') {
                m.mask(eq + 1, k);
            }
        }
    } else {
        m.mask(start, end);
    }
}

/// Mask a quoted value starting at `v` (`b[v]` is the quote), keeping the quotes.
fn quoted_value(m: &mut Masker<'_>, name: &[u8], v: usize) -> usize {
    let (start, end, resume) = quoted_range(m.b, v, is_cookie(name));
    mask_value(m, name, start, end);
    resume
}

/// The value of a JSON/dict key, starting at `v`: a string, or a scalar (`12345`, `null`).
/// Objects and arrays are left to the rules for the keys inside them.
fn json_value(m: &mut Masker<'_>, name: &[u8], v: usize) -> usize {
    let b = m.b;
    let c = at(b, v);
    if is_quote(c) {
        return quoted_value(m, name, v);
    }
    if v >= b.len() || c == b'{' || c == b'[' {
        return v;
    }
    let e = run_while(b, v, |c| {
        !(c.is_ascii_whitespace() || is_quote(c) || matches!(c, b',' | b'}' | b']' | b')' | b'\\'))
    });
    let e = (v..e).find(|&x| stop(b, x, false)).unwrap_or(e);
    m.mask(v, e);
    e
}

/// Whether `b[k..]` starts with a quote escaped by exactly `n` backslashes (`\"` for 1).
fn escaped_quote_at(b: &[u8], k: usize, n: usize) -> bool {
    n > 0 && at(b, k + n) == b'"' && (k..k + n).all(|x| at(b, x) == b'\\')
}

/// The value of a key in quotes escaped by `n` backslashes (`\"password\": \"value\"`), starting
/// at `v`: a string in the same quotes, else as in [`json_value`].
fn escaped_json_value(m: &mut Masker<'_>, name: &[u8], v: usize, n: usize) -> usize {
    let b = m.b;
    if escaped_quote_at(b, v, n) {
        let (start, end, resume) = escaped_range(b, v, n, is_cookie(name));
        mask_value(m, name, start, end);
        return resume;
    }
    if at(b, v) == b'\\' {
        return v;
    }
    json_value(m, name, v)
}

/// A string in quotes escaped by `n` backslashes, starting at `v` (`\"` at `v` for 1): the
/// inside's range, and where scanning goes on.
///
/// Inside, a backslash of the inner string is written with `n + 1` backslashes, so a quote
/// after `r` backslashes with `r = a * (n + 1) + n` closes the string when `a` is even, and is
/// an escaped quote of the inner string (`\\\"` for 1) when `a` is odd. A quote after any other
/// number of backslashes belongs to an outer string: the value ends before its backslashes. So
/// do a `\n` or `\r` escape and a [`stop`].
fn escaped_range(b: &[u8], v: usize, n: usize, semicolon_ok: bool) -> (usize, usize, usize) {
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

/// The value of a `Name: value` header or YAML key, starting at `v`. `quote` is the quote
/// opened just before the name, if any: the value ends there. Otherwise it runs to the end of
/// the line (or a `\n` escape), never past a [`stop`].
fn header_value(m: &mut Masker<'_>, name: &[u8], v: usize, quote: Option<u8>) -> usize {
    let b = m.b;
    let c = at(b, v);
    if quote == Some(c) {
        return v;
    }
    if is_quote(c) {
        return quoted_value(m, name, v);
    }
    let semicolon_ok = is_cookie(name);
    let end = match quote {
        Some(q) => in_quote_end(b, v, q, semicolon_ok),
        None => {
            let mut k = v;
            while k < b.len() {
                let c = at(b, k);
                if stop(b, k, semicolon_ok) || (c == b'\\' && matches!(at(b, k + 1), b'n' | b'r')) {
                    break;
                }
                k += 1;
            }
            k
        }
    };
    let mut trimmed = end;
    while trimmed > v && at(b, trimmed - 1).is_ascii_whitespace() {
        trimmed -= 1;
    }
    mask_value(m, name, v, trimmed);
    end
}

/// The value after `NAME=` or `--name=`, starting at `v`.
fn assigned_value(m: &mut Masker<'_>, name: &[u8], v: usize, quote: Option<u8>) -> usize {
    match quote {
        Some(q) => {
            let end = in_quote_end(m.b, v, q, is_cookie(name));
            mask_value(m, name, v, end);
            end
        }
        None => word_value(m, name, v, true),
    }
}

/// Mask the shell word starting at `w` (quoted: its inside). With `urls` false, a word that
/// starts with `scheme://` is left to the URL rules (a switch like `--anyauth` may be followed
/// by the URL, which must stay visible).
fn word_value(m: &mut Masker<'_>, name: &[u8], w: usize, urls: bool) -> usize {
    let b = m.b;
    if is_quote(at(b, w)) {
        let (start, end, resume) = quoted_range(b, w, is_cookie(name));
        if !urls && starts_with_scheme(b, start) {
            return w;
        }
        mask_value(m, name, start, end);
        return resume;
    }
    if !urls && starts_with_scheme(b, w) {
        return w;
    }
    let end = unquoted_end(b, w);
    mask_value(m, name, w, end);
    end
}

/// Whether `b[i..]` starts with `scheme://`.
fn starts_with_scheme(b: &[u8], i: usize) -> bool {
    if !at(b, i).is_ascii_alphabetic() {
        return false;
    }
    let e = run_while(b, i, |c| {
        c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.')
    });
    starts(b, e, b"://")
}

/// The word after a secret flag (`--token abc`), starting at `w`. A word that starts with `--`
/// is another flag, and stays.
fn flag_value(m: &mut Masker<'_>, name: &[u8], w: usize) -> usize {
    let b = m.b;
    if w >= b.len() || starts(b, w, b"--") || at(b, w).is_ascii_whitespace() {
        return w;
    }
    word_value(m, name, w, false)
}

/// `user:password` after `-u`/`--user`, starting at `w`: mask what follows the first colon. A
/// URL (`redis-cli -u redis://:pw@h`) is left to the URL rules.
fn user_value(m: &mut Masker<'_>, w: usize, quote: Option<u8>) -> usize {
    let b = m.b;
    if at(b, w) == b'-' {
        // Another flag (`sort -u -t:`).
        return w;
    }
    let inside = if quote.is_none() && is_quote(at(b, w)) {
        w + 1
    } else {
        w
    };
    if starts_with_scheme(b, inside) {
        return w;
    }
    let (start, end, resume) = match quote {
        Some(q) => {
            let end = in_quote_end(b, w, q, false);
            (w, end, end)
        }
        None if is_quote(at(b, w)) => quoted_range(b, w, false),
        None => {
            let end = unquoted_end(b, w);
            (w, end, end)
        }
    };
    if let Some(colon) = (start..end).find(|&x| at(b, x) == b':') {
        m.mask(colon + 1, end);
    }
    resume
}

// ---------------------------------------------------------------------------------------------
// Secrets piped into a command's standard input
// ---------------------------------------------------------------------------------------------

/// Whether `w` (quotes stripped) is a flag that reads a secret from standard input:
/// `--password-stdin` (docker, podman, helm, ...), `--token-stdin`, `--with-token` (gh).
fn reads_secret_from_stdin(w: &[u8]) -> bool {
    if w == b"--with-token" {
        return true;
    }
    match w.strip_suffix(b"-stdin") {
        Some(name) if name.starts_with(b"--") => {
            is_pass_flag(name) || is_secret(name.get(2..).unwrap_or_default(), false)
        }
        _ => false,
    }
}

/// `echo SECRET | docker login --password-stdin`: the words `echo` (or `printf`, after its
/// format) pipes into a command with a flag that reads a secret from standard input are that
/// secret. Quotes around a word are kept; a `$VARIABLE` is a reference, not a secret.
fn piped_secrets(s: &str) -> String {
    let b = s.as_bytes();
    if !contains(b, b"-stdin") && !contains(b, b"--with-token") {
        return s.to_owned();
    }
    // Simple commands: `[start, end)` with `b[end]` the stop that ends it (or the end).
    let mut commands = Vec::new();
    let mut start = 0;
    for i in 0..b.len() {
        if stop(b, i, false) {
            commands.push((start, i));
            start = i + 1;
        }
    }
    commands.push((start, b.len()));
    let words = |(from, to): (usize, usize)| {
        let mut out = Vec::new();
        let mut i = from;
        while i < to {
            if at(b, i).is_ascii_whitespace() {
                i += 1;
                continue;
            }
            let e = (i..to)
                .find(|&k| at(b, k).is_ascii_whitespace())
                .unwrap_or(to);
            // The word inside its quotes (and escaped quotes).
            let strip = |c: u8| is_quote(c) || c == b'\\';
            let inner_from = (i..e).find(|&k| !strip(at(b, k))).unwrap_or(e);
            let inner_to = (inner_from..e)
                .rev()
                .find(|&k| !strip(at(b, k)))
                .map_or(inner_from, |k| k + 1);
            out.push((inner_from, inner_to));
            i = e;
        }
        out
    };
    let mut m = Masker::new(s);
    for pair in commands.windows(2) {
        let [source, sink] = [pair[0], pair[1]];
        if at(b, source.1) != b'|' {
            continue;
        }
        let sink_reads = words(sink)
            .into_iter()
            .any(|(f, t)| reads_secret_from_stdin(b.get(f..t).unwrap_or_default()));
        let source_words = words(source);
        let Some((&(f, t), args)) = source_words.split_first() else {
            continue;
        };
        let program = b.get(f..t).unwrap_or_default();
        let program = program.rsplit(|&c| c == b'/').next().unwrap_or(program);
        let args = match program {
            b"echo" => {
                let flags = args.iter().take_while(|(f, _)| at(b, *f) == b'-').count();
                args.get(flags..).unwrap_or_default()
            }
            b"printf" if args.len() > 1 => args.get(1..).unwrap_or_default(),
            b"printf" => args,
            _ => continue,
        };
        if !sink_reads {
            continue;
        }
        for &(f, t) in args {
            if at(b, f) != b'$' {
                m.mask(f, t);
            }
        }
    }
    m.finish()
}

// ---------------------------------------------------------------------------------------------
// Pass 3: flags of known commands
// ---------------------------------------------------------------------------------------------

/// Programs whose own flags hold secrets that no name gives away, as bits of
/// [`Command::programs`].
mod program {
    /// mysql, mariadb and their tools: `-p<password>` (attached; a lone `-p` prompts).
    pub(super) const MYSQL: u16 = 1;
    /// `sshpass -p <password>`, up to the command it runs.
    pub(super) const SSHPASS: u16 = 2;
    /// `redis-cli -a <password>`, `--pass <password>`.
    pub(super) const REDIS: u16 = 4;
    /// `curl -U user:password` (the proxy's user).
    pub(super) const CURL: u16 = 8;
    /// httpie and xh: `-a user:password`, `Header:value` items.
    pub(super) const HTTPIE: u16 = 16;
    /// A registry client: docker, podman, helm, oc, ...
    pub(super) const REGISTRY: u16 = 32;
    /// The same after `login`: `-p <password>`.
    pub(super) const REGISTRY_LOGIN: u16 = 64;
    /// The AWS CLI: `aws configure set NAME VALUE`.
    pub(super) const AWS: u16 = 128;
    /// npm, pnpm, yarn: `npm config set NAME VALUE`.
    pub(super) const PACKAGER: u16 = 256;
    /// After `aws configure` or `npm config`: `set NAME VALUE` follows.
    pub(super) const CONFIGURE: u16 = 512;
    /// HashiCorp Vault (and OpenBao): `vault login TOKEN`.
    pub(super) const VAULT: u16 = 1024;
    /// The same after `login`: the next positional word is the token.
    pub(super) const VAULT_LOGIN: u16 = 2048;
    /// `htpasswd -b FILE USER PASSWORD`, `htpasswd -nb USER PASSWORD`.
    pub(super) const HTPASSWD: u16 = 4096;
}

/// The program a command word names (`/usr/bin/mysql`, `(mysql`), if it is one of [`program`].
fn program(word: &[u8]) -> u16 {
    let base = word.rsplit(|&c| c == b'/').next().unwrap_or(word);
    let base = base.get(base.iter().take_while(|&&c| c == b'(').count()..);
    match base.unwrap_or_default() {
        b"mysql" | b"mysqldump" | b"mysqladmin" | b"mysqlimport" | b"mysqlshow" | b"mysqlcheck"
        | b"mysqlslap" | b"mysqlpump" | b"mysqlbinlog" | b"mysqlsh" | b"mariadb"
        | b"mariadb-dump" | b"mariadb-admin" | b"mariadb-import" | b"mariadb-show"
        | b"mariadb-check" | b"mariadb-slap" | b"mariadb-binlog" => program::MYSQL,
        b"sshpass" => program::SSHPASS,
        b"redis-cli" | b"valkey-cli" | b"keydb-cli" => program::REDIS,
        b"curl" => program::CURL,
        b"http" | b"https" | b"xh" | b"xhs" => program::HTTPIE,
        b"docker" | b"podman" | b"nerdctl" | b"buildah" | b"skopeo" | b"oras" | b"helm" | b"oc"
        | b"cf" => program::REGISTRY,
        b"aws" => program::AWS,
        b"npm" | b"pnpm" | b"yarn" => program::PACKAGER,
        b"vault" | b"bao" => program::VAULT,
        b"htpasswd" => program::HTPASSWD,
        _ => 0,
    }
}

/// What the word after a flag is, from the least to the most masked.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Value {
    /// openssl's pass phrase source: what follows `pass:` (`env:`, `file:`, `fd:`, `stdin`
    /// name where it is).
    AfterPass,
    /// `user:password`: what follows the first colon.
    AfterColon,
    /// A secret: all of it.
    Whole,
}

/// Where a word is, for the rules that take only a whole unquoted shell word.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Around {
    /// Between blanks (or the ends of the text, or a [`stop`]).
    Bare,
    /// Next to a quote, an escaped quote or inside quotes.
    Quoted,
    /// Ends just before a quote: the quoted string may be the flag's value (`-p'pw'`).
    QuoteFollows,
}

/// The state of one simple command, word by word: the programs named so far, and what the next
/// word is when the last one was a flag.
///
/// The rules of every program named apply together, and the most masking wins. Masking again
/// reads masked words: a masked word names no program, is no flag and gives no value, and a
/// flag with a mask in it expects no value, so the state can only be smaller, and a smaller
/// state masks nothing new.
#[derive(Default)]
struct Command {
    programs: u16,
    /// The next positional word is a setting's name (`aws configure set NAME VALUE`,
    /// `npm config set NAME VALUE`): a secret name makes the word after it secret.
    setting_name: bool,
    /// htpasswd: batch mode (`-b`, the password is an argument), no file (`-n`), and how many
    /// positional words came so far.
    batch: bool,
    no_file: bool,
    positional: u8,
    expect: Option<Value>,
}

impl Command {
    /// Take the next word; return the offset in it from which it is secret.
    ///
    /// A word is taken as a flag's value only when it is masked; otherwise it is read as any
    /// word.
    fn word(&mut self, w: &[u8], around: Around) -> Option<usize> {
        if let Some(value) = self.expect.take()
            && let Some(secret) = Self::value(w, value)
        {
            return Some(secret);
        }
        let has = |p: u16| self.programs & p != 0;
        if !w.starts_with(b"-") {
            // A command word, an argument or an httpie item.
            let programs = self.programs;
            let had = |p: u16| programs & p != 0;
            let mut secret = if had(program::HTTPIE) && around == Around::Bare {
                httpie_header(w)
            } else {
                None
            };
            // Positional secrets: `aws configure set NAME VALUE`, `npm config set NAME VALUE`
            // (when NAME is secret), `vault login TOKEN`, `htpasswd -b FILE USER PASSWORD`.
            if std::mem::take(&mut self.setting_name) && is_secret(w, false) {
                self.expect = Some(Value::Whole);
            }
            if (had(program::AWS) && w == b"configure")
                || (had(program::PACKAGER) && w == b"config")
            {
                self.programs |= program::CONFIGURE;
            }
            if had(program::CONFIGURE) && w == b"set" {
                self.setting_name = true;
            }
            if had(program::VAULT_LOGIN) {
                // Only the first positional word; `key=value` pairs are the named rules'.
                self.programs &= !program::VAULT_LOGIN;
                if !w.contains(&b'=') {
                    secret = Some(0);
                }
            }
            if had(program::VAULT) && w == b"login" {
                self.programs |= program::VAULT_LOGIN;
            }
            if had(program::HTPASSWD) {
                self.positional = self.positional.saturating_add(1);
                let password_at = if self.no_file { 2 } else { 3 };
                if self.batch && self.positional == password_at {
                    secret = Some(0);
                }
            }
            // xfreerdp's `/p:password` (not msbuild's `/p:Name=Value`).
            if w.len() > 3
                && w.get(..3).is_some_and(|p| p.eq_ignore_ascii_case(b"/p:"))
                && !w.contains(&b'=')
            {
                secret = Some(3);
            }
            if had(program::REGISTRY) && w == b"login" {
                self.programs |= program::REGISTRY_LOGIN;
            }
            // The command sshpass runs: its flags are its own (`ssh -p 2222`).
            self.programs &= !program::SSHPASS;
            self.programs |= program(w);
            return secret;
        }
        let single = !w.starts_with(b"--");
        let mut secret: Option<usize> = None;
        let mut expect: Option<Value> = None;
        let mut mask_from = |k: Option<usize>| {
            if let Some(k) = k {
                secret = Some(secret.map_or(k, |s| s.min(k)));
            }
        };
        let mut then = |v: Value| expect = expect.max(Some(v));
        if single && w.starts_with(b"-p") {
            let attached = has(program::MYSQL | program::SSHPASS | program::REGISTRY_LOGIN);
            if w.len() > 2 && attached {
                mask_from(Some(2));
            }
            let own = has(program::SSHPASS | program::REGISTRY_LOGIN);
            let quoted = has(program::MYSQL) && around == Around::QuoteFollows;
            if w.len() == 2 && (own || quoted) {
                then(Value::Whole);
            }
        }
        if has(program::REDIS) {
            if w == b"-a" || w == b"--pass" {
                then(Value::Whole);
            }
            if w.starts_with(b"--pass=") && w.len() > 7 {
                mask_from(Some(7));
            }
        }
        if has(program::CURL) && single && w.starts_with(b"-U") {
            if w.len() == 2 {
                then(Value::AfterColon);
            } else {
                mask_from(colon_value(w));
            }
        }
        if has(program::HTTPIE) && w == b"-a" {
            then(Value::AfterColon);
        }
        if has(program::HTPASSWD) && single {
            self.batch |= w.contains(&b'b');
            self.no_file |= w.contains(&b'n');
        }
        // Any program: `-ubob:pw` (curl's attached `-u`), `-passin pass:pw` (openssl).
        if single && w.starts_with(b"-u") && w.len() > 2 && w.get(2) != Some(&b'-') {
            mask_from(colon_value(w));
        }
        if single && contains(&w.to_ascii_lowercase(), b"pass") {
            then(Value::AfterPass);
        }
        // A flag with a mask in it may have been joined to the words after it by that mask:
        // the word after it now was not the word after it then.
        if !contains(w, MASK.as_bytes()) {
            self.expect = expect;
        }
        secret
    }

    /// The word `w` as the value a flag expects: the offset from which it is secret, or `None`
    /// when it is not (another flag, a URL, `env:NAME` after `-passin`).
    fn value(w: &[u8], value: Value) -> Option<usize> {
        if w.is_empty()
            || w.starts_with(b"--")
            || (value != Value::Whole && w.starts_with(b"-"))
            || starts_with_scheme(w, 0)
        {
            return None;
        }
        match value {
            Value::Whole => Some(0),
            Value::AfterColon => colon_value(w),
            Value::AfterPass => Some(5).filter(|&k| w.starts_with(b"pass:") && k < w.len()),
        }
    }
}

/// An httpie item `Header:value` with a secret header name: the offset of the value (not
/// `name:=json` or `name:@file`, nor a URL or `host:port/path`).
fn httpie_header(w: &[u8]) -> Option<usize> {
    let c = w.iter().position(|&c| c == b':')?;
    let name = w.get(..c).unwrap_or_default();
    let value = w.get(c + 1..).unwrap_or_default();
    let item = !name.is_empty()
        && name.iter().all(|&c| is_name(c))
        && !value.is_empty()
        && !matches!(value.first(), Some(b'=' | b'@' | b'/'))
        && is_secret_header(name);
    item.then_some(c + 1)
}

/// In `user:password`: the offset of the password, if there is one.
fn colon_value(w: &[u8]) -> Option<usize> {
    w.iter()
        .position(|&c| c == b':')
        .map(|c| c + 1)
        .filter(|&k| k < w.len())
}

/// Mask the values of flags that only some programs give a secret (see [`Command`]), and the
/// flags of any program that [`named_values`] does not take (`-ubob:pw`, `pass:pw`).
///
/// The text is cut into simple commands at every [`stop`] and into words at blanks and
/// backslashes. Quotes cut words too (so `sh -c "mysql -ppw"` is seen), except that a quoted
/// string where a flag expects its value is that value, masked inside its quotes. Nothing else
/// (parentheses, `\n` escapes) cuts commands, because a mask of [`named_values`] may cover it,
/// and masking again must see the same commands. A word ends where those masks end (a blank,
/// a quote, a backslash or a [`stop`]), so masking again also sees the same words.
fn command_flags(s: &str) -> String {
    let mut m = Masker::new(s);
    let b = m.b;
    let mut cmd = Command::default();
    let mut i = 0;
    while i < b.len() {
        let c = at(b, i);
        let escaped_quote = c == b'\\' && is_quote(at(b, i + 1));
        if stop(b, i, false) {
            cmd = Command::default();
            i += 1;
        } else if c.is_ascii_whitespace() {
            i += 1;
        } else if c == b'\\' && !escaped_quote {
            i += if matches!(at(b, i + 1), b'n' | b'r' | b't') {
                2
            } else {
                1
            };
        } else if is_quote(c) || escaped_quote {
            // A quoted value (masked inside its quotes), or a quote that only cuts words.
            let range = match (cmd.expect, escaped_quote) {
                (None, _) => None,
                (Some(_), false) => Some(quoted_range(b, i, false)),
                (Some(_), true) if at(b, i + 1) == b'"' => Some(escaped_range(b, i, 1, false)),
                (Some(_), true) => None,
            };
            let masked = range.and_then(|(start, end, resume)| {
                let w = b.get(start..end).unwrap_or_default();
                let k = Command::value(w, cmd.expect?)?;
                Some((start + k, end, resume))
            });
            if let Some((from, to, resume)) = masked {
                m.mask(from, to);
                cmd.expect = None;
                i = resume.max(i + 1);
            } else {
                i += if escaped_quote { 2 } else { 1 };
            }
        } else {
            let mut e = i;
            while e < b.len() {
                let c = at(b, e);
                if c.is_ascii_whitespace() || is_quote(c) || c == b'\\' || stop(b, e, false) {
                    break;
                }
                e += 1;
            }
            let after = at(b, e);
            let quote_before = i > 0 && is_quote(at(b, i - 1));
            let around = if is_quote(after) || (after == b'\\' && is_quote(at(b, e + 1))) {
                Around::QuoteFollows
            } else if quote_before {
                Around::Quoted
            } else {
                Around::Bare
            };
            if let Some(k) = cmd.word(b.get(i..e).unwrap_or_default(), around) {
                m.mask(i + k, e);
            }
            i = e;
        }
    }
    m.finish()
}

// ---------------------------------------------------------------------------------------------
// Actions
// ---------------------------------------------------------------------------------------------

/// `local.exec` arguments: each through [`text`]; a secret flag masks the next argument (unless
/// it starts with `--` or `scheme://`), `-u`/`--user`/`--proxy-user` masks what follows the next
/// argument's first colon (unless it is a URL), and the flags of the program (see [`Command`]:
/// the executable, or a program named in the arguments) are masked as in text. Decisions are
/// made on the masked argument, which keeps the result idempotent.
fn exec_args(executable: &str, args: &[String]) -> Vec<String> {
    let mut cmd = Command::default();
    let _ = cmd.word(executable.as_bytes(), Around::Bare);
    let mut out = Vec::with_capacity(args.len());
    // After a secret flag (`true`) or a user flag (`false`): the next argument is its value.
    let mut after: Option<bool> = None;
    for arg in args {
        let arg = text(arg);
        let b = arg.as_bytes();
        let secret_from = cmd.word(b, Around::Bare);
        let shown = match after.take() {
            Some(false) => match arg.split_once(':') {
                Some((user, pass))
                    if !pass.is_empty() && !user.starts_with('-') && !starts_with_scheme(b, 0) =>
                {
                    Some(format!("{user}:{MASK}"))
                }
                _ => None,
            },
            Some(true) => {
                let keep = arg.is_empty() || arg.starts_with("--") || starts_with_scheme(b, 0);
                (!keep).then(|| MASK.to_owned())
            }
            None => {
                let whole_name = !arg.is_empty() && arg.bytes().all(is_name);
                if whole_name && is_secret_flag(b) {
                    after = Some(true);
                } else if whole_name && is_user_flag(b) {
                    after = Some(false);
                }
                None
            }
        };
        // Part of an argument only when it is one shell word: masking part of several words
        // could change what the text rules see in them when masking again.
        let one_word = !b
            .iter()
            .any(|&c| c.is_ascii_whitespace() || is_quote(c) || c == b'\\')
            && !(0..b.len()).any(|k| stop(b, k, false));
        let shown = shown.or_else(|| match secret_from? {
            0 => Some(MASK.to_owned()),
            k if one_word => Some(format!("{}{MASK}", arg.get(..k)?)),
            _ => None,
        });
        out.push(shown.unwrap_or(arg));
    }
    out
}

fn http_request(h: &HttpRequest) -> HttpRequest {
    HttpRequest {
        path: token_formats(&pem_blocks(&h.path)),
        query: h.query.as_deref().map(query),
        headers: h.headers.iter().map(header).collect(),
        ..h.clone()
    }
}

/// A header: a secret one has its value masked (keeping an `Authorization` scheme and cookie
/// names); any other goes through [`text`].
fn header(h: &Header) -> Header {
    let name = h.name.as_bytes();
    let value = if is_secret_header(name) {
        let mut m = Masker::new(&h.value);
        let b = m.b;
        let start = skip_blank(b, 0);
        let mut end = b.len();
        while end > start && at(b, end - 1).is_ascii_whitespace() {
            end -= 1;
        }
        mask_value(&mut m, name, start, end);
        m.finish()
    } else {
        text(&h.value)
    };
    Header {
        name: h.name.clone(),
        value,
    }
}

/// A query string (without `?`): each `name=value` whose name, percent-decoded, is secret has
/// its value masked; other parameters go through [`text`] (and are checked again after it, so
/// that masking twice changes nothing).
fn query(q: &str) -> String {
    let secret_param = |part: &str| {
        part.split_once('=')
            .filter(|(name, _)| is_secret(&percent_decoded(name.as_bytes()), true))
            .map(|(name, value)| {
                if value.is_empty() {
                    format!("{name}=")
                } else {
                    format!("{name}={MASK}")
                }
            })
    };
    let params: Vec<String> = q
        .split('&')
        .map(|part| {
            secret_param(part).unwrap_or_else(|| {
                let part = text(part);
                secret_param(&part).unwrap_or(part)
            })
        })
        .collect();
    params.join("&")
}

/// An upgrade's path: well-known token formats masked, and the query rules after a `?`.
fn path_and_query(path: &str) -> String {
    match path.split_once('?') {
        Some((p, q)) => format!("{}?{}", token_formats(&pem_blocks(p)), query(q)),
        None => token_formats(&pem_blocks(path)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::action::Connect;

    /// Texts with nothing secret in them, or nothing these rules can tell is secret.
    const UNCHANGED: &[&str] = &[
        "",
        "ls -la /tmp",
        "cargo test --workspace -- --nocapture",
        "grep -r token src/",
        "echo $GITHUB_TOKEN",
        "ls ~/.ssh/id_rsa.pub",
        "echo 'it is fine: really'",
        "пароль: ничего",
        "if token == other:",
        "a bearer of news",
        "curl -H 'Accept: text/html' x",
        r#"{"secret": {"a": 1}}"#,
        // Word boundaries, and formats that are not quite tokens.
        "skeleton task-list sk-learn ask-me",
        "sk-some-long-kebab-case-file-name.txt",
        "cat eyJfoo.txt",
        "ASIAIOSFODNN7EXAMPL",
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
        // Flags: switches and flags naming a place are not secrets.
        "tool --token --verbose",
        "tool --password-file /run/secrets/pw",
        "docker login --password-stdin reg.io",
        "curl --no-auth https://example.com/",
        "curl --anyauth https://example.com/",
        "sort -u names.txt",
        "sort -u -t:x names.txt",
        "git log --author=alice --author bob",
        "GIT_AUTHOR_NAME=alice git commit",
        "kubectl --certificate-authority=/ca.pem get po",
        "python train.py --tokenizer gpt2",
        // URLs without secrets.
        "https://example.com/a?page=2&q=x",
        "https://x.io/?token=&page=2",
        "https://user@example.com/",
        "https://h.io:8080/@user",
        "https://h.io/a:b@c",
        "https://h.io:x/no-at-sign",
        // Never masked: a command substitution, or a password running into a `;`.
        "TOKEN=$(cat ~/.token) ./run",
        "tool --token `id`",
        "https://u:p;reboot;@h",
        // Escaped quotes (R1): a key without a colon, a key that is not secret.
        r#"echo "the \"token\" is: fine""#,
        r#"curl -d "{\"user\": \"bob\", \"n\": 1}" x"#,
        // Config lines (R2): several words, a reference, code, not at a line start.
        "Password = the thing you type",
        "token = ${API_TOKEN}",
        "token := tok",
        "if token == other:",
        "cat <<EOF > a.py\
         \n    self.token = token\
         \n    password = getpass()\
         \n    token = args.token\
         \n    secret = None\
         \nEOF",
        "echo token = abc",
        // Headers without a blank (R3): only after `-H`/`--header`, or quoted (httpie).
        "docker pull my-token:latest",
        "curl auth-service:8080/health",
        "curl -H Accept:text/html x",
        "echo Authorization:abc",
        "sed 's/password:\"x\"/y/' f",
        // User names in URLs (R4): short, with a dot, without a digit.
        "git clone https://git@github.com/o/r",
        "ssh://deploy-user-01@host/x",
        "git clone https://john.doe.contractor1@bitbucket.org/o/r",
        "https://abcdefghijklmnopqrstuvwxyz@x.io/o/r",
        // Program flags (R5): `-p` prompts or is a port, `-U`/`-a` of other programs, openssl's
        // pass phrase sources that name where the secret is.
        "mysql -u root -p shop",
        "docker run -p 8080:80 nginx",
        "docker login -u me --password-stdin reg.io",
        "ssh -p 2222 host",
        "sshpass -f pw.txt ssh -p 2222 host",
        "redis-cli -h h -p 6379 ping",
        "openssl pkcs12 -passout env:PW -passin file:/run/pw -in a.p12",
        "openssl rsa -passin stdin -in k.pem",
        "pip install -U requests",
        "psql -U postgres shop",
        "grep -a foo bin.dat",
        "sort -u -t: -k2 f",
        // Key headers and cookies (R6).
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Idempotency-Key: 8e03978e-40d5-43e8-bc93-6894a57f9324",
        "sort_key: created_at",
        "curl --cookie cookies.txt x",
        "curl --cookie-jar cookies.txt x",
    ];

    /// Input, then what [`text`] makes of it.
    const CASES: &[(&str, &str)] = &[
        // Headers (rule 1), in shell quotes, JSON strings, raw text.
        ("Authorization: Bearer abc123", "Authorization: Bearer ***"),
        (
            "curl -H 'Authorization: Bearer abc.def-123' https://api.example.com/",
            "curl -H 'Authorization: Bearer ***' https://api.example.com/",
        ),
        (
            r#"curl -H "authorization: token abc123" -s x"#,
            r#"curl -H "authorization: token ***" -s x"#,
        ),
        (
            "curl -H 'Authorization:abc123' x",
            "curl -H 'Authorization:***' x",
        ),
        (
            "curl -H 'Authorization: abc123' x",
            "curl -H 'Authorization: ***' x",
        ),
        (
            "Proxy-Authorization: Basic dXNlcjpwYXNz",
            "Proxy-Authorization: Basic ***",
        ),
        ("curl -H 'X-Api-Key: k-123' x", "curl -H 'X-Api-Key: ***' x"),
        (
            "curl -H 'X-CSRF-Token: t1' x",
            "curl -H 'X-CSRF-Token: ***' x",
        ),
        (
            "curl -H 'X-Amz-Security-Token: t1' x",
            "curl -H 'X-Amz-Security-Token: ***' x",
        ),
        (
            "curl -H 'Cookie: sid=abc; theme=dark' x",
            "curl -H 'Cookie: sid=***; theme=***' x",
        ),
        (
            "Set-Cookie: id=a3f; Path=/; HttpOnly",
            "Set-Cookie: id=***; Path=***; HttpOnly",
        ),
        ("curl --cookie 'sid=abc' x", "curl --cookie 'sid=***' x"),
        (
            r#"GET / HTTP/1.1\r\nAuthorization: Basic dXNlcg==\r\nHost: x"#,
            r#"GET / HTTP/1.1\r\nAuthorization: Basic ***\r\nHost: x"#,
        ),
        (
            "git -c http.extraheader='AUTHORIZATION: basic abc' fetch",
            "git -c http.extraheader='AUTHORIZATION: basic ***' fetch",
        ),
        // JSON, YAML, source code.
        (
            r#"{"password": "hunter2", "user": "bob"}"#,
            r#"{"password": "***", "user": "bob"}"#,
        ),
        (r#"{"api_key":"k1","n":1}"#, r#"{"api_key":"***","n":1}"#),
        (r#"{"pin_token": 12345}"#, r#"{"pin_token": ***}"#),
        (
            r#"{"headers": {"Authorization": "Bearer abc"}}"#,
            r#"{"headers": {"Authorization": "Bearer ***"}}"#,
        ),
        ("{'password': 'x'}", "{'password': '***'}"),
        ("password: hunter2", "password: ***"),
        (
            "db:\n  password: \"hunter2\"\n  host: x",
            "db:\n  password: \"***\"\n  host: x",
        ),
        ("token = 'abc'", "token = '***'"),
        (
            "api_key = \"abc\"  # comment",
            "api_key = \"***\"  # comment",
        ),
        // URLs (rule 2).
        (
            "curl 'https://api.example.com/v1?token=abc&page=2'",
            "curl 'https://api.example.com/v1?token=***&page=2'",
        ),
        (
            "https://x.io/cb?code=xyz&state=1",
            "https://x.io/cb?code=***&state=1",
        ),
        ("https://x.io/?API_KEY=abc", "https://x.io/?API_KEY=***"),
        (
            "https://x.io/?access%5Ftoken=abc&b=1",
            "https://x.io/?access%5Ftoken=***&b=1",
        ),
        (
            "https://x.io/?sig=abc%2Fdef&sv=2022",
            "https://x.io/?sig=***&sv=2022",
        ),
        (
            "https://s3.x.io/o?X-Amz-Credential=AK%2F1&X-Amz-Signature=f00d",
            "https://s3.x.io/o?X-Amz-Credential=***&X-Amz-Signature=***",
        ),
        (
            "https://x.io/#access_token=abc&state=1",
            "https://x.io/#access_token=***&state=1",
        ),
        (
            "git clone https://user:hunter2@github.com/o/r.git",
            "git clone https://user:***@github.com/o/r.git",
        ),
        (
            "postgres://app:p@ss@db:5432/shop",
            "postgres://app:***@db:5432/shop",
        ),
        ("https://bob:a/b?c#d@h.io/x", "https://bob:***@h.io/x"),
        (
            "curl -u bob:hunter2 https://x.io",
            "curl -u bob:*** https://x.io",
        ),
        (
            "curl --user 'bob:hunter 2' https://x.io",
            "curl --user 'bob:***' https://x.io",
        ),
        (
            "curl https://x.io/?next=https://y.io/%3Fa&token=t",
            "curl https://x.io/?next=https://y.io/%3Fa&token=***",
        ),
        // Flags and assignments (rules 3 and 4).
        ("mysql --password=hunter2 shop", "mysql --password=*** shop"),
        ("tool -password=x run", "tool -password=*** run"),
        (
            "tool --token abc123 --verbose",
            "tool --token *** --verbose",
        ),
        ("tool --api-key 'abc 123' next", "tool --api-key '***' next"),
        ("tool --secret=\"a b\" next", "tool --secret=\"***\" next"),
        ("tool --token -abc123", "tool --token ***"),
        (
            "tool --authorization 'Bearer a1'",
            "tool --authorization 'Bearer ***'",
        ),
        (
            "OAUTH_CLIENT_SECRET=abc ./run",
            "OAUTH_CLIENT_SECRET=*** ./run",
        ),
        (
            "GITHUB_TOKEN=abc123 gh pr list",
            "GITHUB_TOKEN=*** gh pr list",
        ),
        (
            "export AWS_SECRET_ACCESS_KEY=wJalr/K7MDENG+bPxRfi",
            "export AWS_SECRET_ACCESS_KEY=***",
        ),
        ("API_KEY=\"abc def\" ./run", "API_KEY=\"***\" ./run"),
        ("env 'DB_PASSWORD=a b' ./run", "env 'DB_PASSWORD=***' ./run"),
        (
            "PGPASSWORD=pw psql && echo ok",
            "PGPASSWORD=*** psql && echo ok",
        ),
        (
            "kubectl create secret generic db --from-literal=password=s3cr3t",
            "kubectl create secret generic db --from-literal=password=***",
        ),
        (
            r#"{"env": ["NPM_TOKEN=abc"]}"#,
            r#"{"env": ["NPM_TOKEN=***"]}"#,
        ),
        ("Bearer abcdefgh12345", "Bearer ***"),
        // Names match by substring, so some harmless values are masked too.
        ("llm --max-tokens 500", "llm --max-tokens ***"),
        ("docker run -u 1000:1000 img", "docker run -u 1000:*** img"),
        // Well-known token formats (rule 3).
        ("echo ghp_abcdefghijklmnopqrstuvwxyz0123456789", "echo ***"),
        (
            "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuv",
            "***",
        ),
        ("glpat-abcdefghij0123456789", "***"),
        ("xoxb-123456789012-abcdefghijkl", "***"),
        ("AKIAIOSFODNN7EXAMPLE is an id", "*** is an id"),
        ("sk-proj-abcdefghijklmnopqrst0123456789", "***"),
        ("key=sk-ant-api03-abcdefghijklmnopqrstuvwxyz0", "key=***"),
        ("sk_live_abcdefghij0123456789", "***"),
        ("AIzaSyA-abcdefghijklmnopqrstuvwxyz012345", "***"),
        ("npm_abcdefghijklmnopqrstuvwxyz0123456789", "***"),
        ("hf_abcdefghijklmnopqrstuvwxyzABCDEFGH", "***"),
        (
            "pypi-AgEIcHlwaS5vcmcCJDAwMDAwMDAwLTAwMDAtMDAwMC0wMDAwLTAwMDAwMDAwMDAwMAAC",
            "***",
        ),
        (
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl-_x",
            "***",
        ),
        ("x=\"eyJhbGciOiJub25lIn0.eyJhIjoxfQ.\"", "x=\"***\""),
        (
            "curl -d ghp_abcdefghijklmnopqrstuvwxyz012345.json",
            "curl -d ***.json",
        ),
        (
            "-----BEGIN RSA PRIVATE KEY-----\n\
             MIIEowIBAAKCAQEAvq3Xyz0123456789abcdefghijklmnopqrstuvwxyzAB\n\
             Aw==\n-----END RSA PRIVATE KEY-----\necho done",
            "***\necho done",
        ),
        (
            r#"{"key": "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\nAB==\n-----END PRIVATE KEY-----\n"}"#,
            r#"{"key": "***\n"}"#,
        ),
        (
            "echo '-----BEGIN OPENSSH PRIVATE KEY----- \
             b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAAB AAA= \
             -----END OPENSSH PRIVATE KEY-----'",
            "echo '***'",
        ),
        // A key without its END line: only long base64 lines are taken.
        ("-----BEGIN PRIVATE KEY-----\nreboot\n", "***\nreboot\n"),
        // A mask never hides a command: it stops at `;`, `&`, `|`, newlines, `$(`, backticks.
        (
            "echo Authorization: Bearer x; rm -rf /tmp/a",
            "echo Authorization: Bearer ***; rm -rf /tmp/a",
        ),
        ("TOKEN=\"ab$(id)\" ./run", "TOKEN=\"***$(id)\" ./run"),
        (
            "curl 'x.io/?token=a;rm -rf /'",
            "curl 'x.io/?token=***;rm -rf /'",
        ),
        (
            "curl -H 'Cookie: a=1' && reboot",
            "curl -H 'Cookie: a=***' && reboot",
        ),
        // R1: JSON in escaped quotes, in a shell string or a JSON string (a level deeper too).
        (
            r#"curl -d "{\"password\": \"hunter2\"}" x"#,
            r#"curl -d "{\"password\": \"***\"}" x"#,
        ),
        (
            r#"{"body":"{\"token\":\"abc\"}"}"#,
            r#"{"body":"{\"token\":\"***\"}"}"#,
        ),
        (
            r#"curl -d "{\"user\": \"bob\", \"api_key\": \"k1\", \"pin_token\": 1234}" x"#,
            r#"curl -d "{\"user\": \"bob\", \"api_key\": \"***\", \"pin_token\": ***}" x"#,
        ),
        (
            r#"curl -d "{\"headers\": {\"Authorization\": \"Bearer abc\"}}" x"#,
            r#"curl -d "{\"headers\": {\"Authorization\": \"Bearer ***\"}}" x"#,
        ),
        (
            r#"{"cmd": "curl -d \"{\\\"password\\\": \\\"hun\\\\\\\"ter2\\\"}\" x"}"#,
            r#"{"cmd": "curl -d \"{\\\"password\\\": \\\"***\\\"}\" x"}"#,
        ),
        // R2: unquoted config values on their own line (a heredoc, a here-string).
        (
            "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "aws_secret_access_key = ***",
        ),
        (
            "cat > ~/.aws/credentials <<EOF\n[default]\n\
             aws_secret_access_key = wJalrXUtnFEMI/K7MDENG\nregion = eu-west-1\nEOF",
            "cat > ~/.aws/credentials <<EOF\n[default]\n\
             aws_secret_access_key = ***\nregion = eu-west-1\nEOF",
        ),
        (
            r#"{"cmd": "cat > .env <<EOF\nDB_PASSWORD = s3cret\nEOF"}"#,
            r#"{"cmd": "cat > .env <<EOF\nDB_PASSWORD = ***\nEOF"}"#,
        ),
        (
            "cat >> creds <<< 'aws_secret_access_key = abc123'",
            "cat >> creds <<< 'aws_secret_access_key = ***'",
        ),
        ("db.password = s3cret  # prod", "db.password = ***  # prod"),
        ("password= hunter2", "password= ***"),
        ("password =hunter2", "password =***"),
        ("  password : hunter2", "  password : ***"),
        ("password= \"a b\"", "password= \"***\""),
        // R3: headers without a blank after the colon.
        ("curl -H Authorization:abc x", "curl -H Authorization:*** x"),
        ("curl -H X-Api-Key:abc x", "curl -H X-Api-Key:*** x"),
        (
            "curl --header=X-Api-Key:abc x",
            "curl --header=X-Api-Key:*** x",
        ),
        (
            "curl -H Authorization:\"Bearer abc\" x",
            "curl -H Authorization:\"Bearer ***\" x",
        ),
        (
            "http GET x.io Authorization:'Bearer abc'",
            "http GET x.io Authorization:'Bearer ***'",
        ),
        (
            "http GET x.io X-Api-Key:abc123 name=x",
            "http GET x.io X-Api-Key:*** name=x",
        ),
        ("http x.io token==abc", "http x.io token==***"),
        // R4: a token as the user name of a URL.
        (
            "git clone https://0123456789abcdef0123456789abcdef01234567@github.com/o/r",
            "git clone https://***@github.com/o/r",
        ),
        (
            "git clone https://ghp_abcdefghijklmnopqrstuvwxyz0123456789@github.com/o/r",
            "git clone https://***@github.com/o/r",
        ),
        (
            "git push https://glpat-abc_def-0123456789xyz@gitlab.com/o/r",
            "git push https://***@gitlab.com/o/r",
        ),
        // R5: flags some programs give a password.
        ("mysql -phunter2 shop", "mysql -p*** shop"),
        (
            "mysqldump -uroot -phunter2 shop > d.sql",
            "mysqldump -uroot -p*** shop > d.sql",
        ),
        ("mysql -p'hunter 2' shop", "mysql -p'***' shop"),
        (
            "docker exec db mysql -uroot -phunter2 -e \"select 1\"",
            "docker exec db mysql -uroot -p*** -e \"select 1\"",
        ),
        (
            "sh -c \"mysql -phunter2 shop\"",
            "sh -c \"mysql -p*** shop\"",
        ),
        (
            "docker login -u me -p hunter2 reg.io",
            "docker login -u me -p *** reg.io",
        ),
        (
            "docker login --password hunter2 reg.io",
            "docker login --password *** reg.io",
        ),
        (
            "oc login -u dev -p hunter2 api",
            "oc login -u dev -p *** api",
        ),
        (
            "sshpass -p hunter2 ssh -p 2222 host",
            "sshpass -p *** ssh -p 2222 host",
        ),
        ("sshpass -phunter2 ssh host", "sshpass -p*** ssh host"),
        ("redis-cli -a hunter2 ping", "redis-cli -a *** ping"),
        (
            "redis-cli -h h -p 6379 -a \"a b\" ping",
            "redis-cli -h h -p 6379 -a \"***\" ping",
        ),
        ("redis-cli --pass hunter2 ping", "redis-cli --pass *** ping"),
        (
            "openssl pkcs12 -export -passout pass:hunter2 -passin pass:x1 -in a.pem",
            "openssl pkcs12 -export -passout pass:*** -passin pass:*** -in a.pem",
        ),
        ("curl -ubob:hunter2 x.io", "curl -ubob:*** x.io"),
        (
            "curl --proxy-user bob:hunter2 x.io",
            "curl --proxy-user bob:*** x.io",
        ),
        (
            "curl --proxy-user=bob:hunter2 x.io",
            "curl --proxy-user=bob:*** x.io",
        ),
        ("curl -U bob:hunter2 x.io", "curl -U bob:*** x.io"),
        ("curl -Ubob:hunter2 x.io", "curl -Ubob:*** x.io"),
        // R6: `...-Key` headers; a cookie without `=` is masked whole.
        (
            "curl -H 'Ocp-Apim-Subscription-Key: abc' x",
            "curl -H 'Ocp-Apim-Subscription-Key: ***' x",
        ),
        (
            "curl -H 'X-Functions-Key: abc' x",
            "curl -H 'X-Functions-Key: ***' x",
        ),
        ("curl -H 'Cookie: abc' x", "curl -H 'Cookie: ***' x"),
        ("SESSION_COOKIE=abc ./run", "SESSION_COOKIE=*** ./run"),
        // R7: a URL after `-u` is left to the URL rules.
        (
            "redis-cli -u redis://:hunter2@h:6379 ping",
            "redis-cli -u redis://:***@h:6379 ping",
        ),
        (
            "redis-cli -u 'redis://app:hunter2@h:6379' ping",
            "redis-cli -u 'redis://app:***@h:6379' ping",
        ),
        // Multi-byte text around secrets.
        ("пароль password=секрет ok", "пароль password=*** ok"),
        ("token: 秘密の値 🔑", "token: ***"),
        ("🔑 GITHUB_TOKEN=ghp_é ✓", "🔑 GITHUB_TOKEN=*** ✓"),
    ];

    #[test]
    fn text_cases() {
        let unchanged = UNCHANGED.iter().map(|&s| (s, s));
        let mut failures = Vec::new();
        for (input, expected) in unchanged.chain(CASES.iter().copied()) {
            let got = text(input);
            if got != expected {
                failures.push(format!(
                    "  {input:?}\n    got      {got:?}\n    expected {expected:?}"
                ));
            }
            assert_eq!(text(&got), got, "not idempotent on {input:?}");
        }
        assert!(
            failures.is_empty(),
            "{} cases failed:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }

    fn exec(args: &[&str]) -> Action {
        run("/usr/bin/tool", args)
    }

    fn run(executable: &str, args: &[&str]) -> Action {
        Action::LocalExec(LocalExec {
            executable: executable.into(),
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            session_id: "sess_1".into(),
            sandbox_id: "sbx_1".into(),
            agent_id: Some("agent_1".into()),
            profile: "default".into(),
            hitl_mode: "async_token".into(),
        })
    }

    fn tool(arg: &str) -> Action {
        Action::ToolCall(ToolCall {
            tool: "run_command".into(),
            arg: arg.into(),
            session_id: "sess_1".into(),
            sandbox_id: "sbx_1".into(),
            agent_id: None,
            project_id: None,
            project_root: None,
            cwd: None,
        })
    }

    fn http(path: &str, query: Option<&str>, headers: &[(&str, &str)]) -> Action {
        Action::HttpRequest(HttpRequest {
            method: "GET".into(),
            scheme: "https".into(),
            host: "api.example.com".into(),
            port: 443,
            path: path.into(),
            query: query.map(Into::into),
            headers: headers
                .iter()
                .map(|(n, v)| Header {
                    name: (*n).into(),
                    value: (*v).into(),
                })
                .collect(),
            body_size: Some(12),
            session_id: "sess_1".into(),
            sandbox_id: "sbx_1".into(),
            agent_id: None,
        })
    }

    fn upgrade(path: &str) -> Action {
        Action::Upgrade(Upgrade {
            host: "ws.example.com".into(),
            path: path.into(),
            protocol: "websocket".into(),
            session_id: "sess_1".into(),
            sandbox_id: "sbx_1".into(),
            agent_id: None,
        })
    }

    #[test]
    fn exec_args_mask_the_value_after_a_secret_flag() {
        let a = exec(&[
            "--token",
            "abc123",
            "--password",
            "-starts-with-dash",
            "--api-key",
            "--verbose",
            "-u",
            "bob:hunter2",
            "--secret",
            "https://example.com/",
            "--password=x",
            "-H",
            "Authorization: Bearer y",
            "GITHUB_TOKEN=z",
            "--token-file",
            "/run/t",
            "-p",
            "plain",
            "--token",
        ]);
        let Action::LocalExec(e) = action(&a) else {
            panic!("kind changed")
        };
        assert_eq!(
            e.args,
            [
                "--token",
                "***",
                "--password",
                "***",
                "--api-key",
                "--verbose",
                "-u",
                "bob:***",
                "--secret",
                "https://example.com/",
                "--password=***",
                "-H",
                "Authorization: Bearer ***",
                "GITHUB_TOKEN=***",
                "--token-file",
                "/run/t",
                "-p",
                "plain",
                "--token",
            ]
        );
        assert_eq!(e.executable, "/usr/bin/tool");
        assert_eq!(e.session_id, "sess_1");
        assert_eq!(e.agent_id.as_deref(), Some("agent_1"));
        assert_eq!(
            summary(&exec(&["sh", "-c", "curl -u me:pw https://x.io/?sig=s"])),
            "/usr/bin/tool sh -c curl -u me:*** https://x.io/?sig=***"
        );
    }

    #[test]
    fn exec_args_mask_the_flags_of_known_programs() {
        let cases: &[(&str, &[&str], &[&str])] = &[
            (
                "/usr/bin/mysql",
                &["-uroot", "-phunter2", "shop"],
                &["-uroot", "-p***", "shop"],
            ),
            (
                "mysql",
                &["-u", "root", "-p", "shop"],
                &["-u", "root", "-p", "shop"],
            ),
            ("sudo", &["mysql", "-phunter2"], &["mysql", "-p***"]),
            (
                "sshpass",
                &["-p", "hunter2", "ssh", "-p", "2222", "h"],
                &["-p", "***", "ssh", "-p", "2222", "h"],
            ),
            (
                "docker",
                &["login", "-u", "me", "-p", "hunter2", "reg.io"],
                &["login", "-u", "me", "-p", "***", "reg.io"],
            ),
            (
                "docker",
                &["run", "-p", "8080:80", "nginx"],
                &["run", "-p", "8080:80", "nginx"],
            ),
            (
                "redis-cli",
                &["-a", "hunter 2", "-u", "redis://:pw@h:6379", "ping"],
                &["-a", "***", "-u", "redis://:***@h:6379", "ping"],
            ),
            (
                "openssl",
                &["pkcs12", "-passout", "pass:hunter2", "-passin", "env:PW"],
                &["pkcs12", "-passout", "pass:***", "-passin", "env:PW"],
            ),
            (
                "curl",
                &[
                    "-ubob:pw1",
                    "--proxy-user",
                    "bob:pw2",
                    "-U",
                    "bob:pw3",
                    "-Ubob:pw4",
                    "-H",
                    "X-Api-Key:k1",
                    "--header=X-Functions-Key:k2",
                ],
                &[
                    "-ubob:***",
                    "--proxy-user",
                    "bob:***",
                    "-U",
                    "bob:***",
                    "-Ubob:***",
                    "-H",
                    "X-Api-Key:***",
                    "--header=X-Functions-Key:***",
                ],
            ),
            (
                "pip",
                &["install", "-U", "requests"],
                &["install", "-U", "requests"],
            ),
            (
                "psql",
                &["-U", "postgres", "shop"],
                &["-U", "postgres", "shop"],
            ),
        ];
        for (executable, args, expected) in cases {
            let a = run(executable, args);
            let Action::LocalExec(e) = action(&a) else {
                panic!("kind changed")
            };
            assert_eq!(&e.args, expected, "{executable} {args:?}");
            assert_eq!(action(&action(&a)), action(&a), "not idempotent: {a:?}");
        }
    }

    #[test]
    fn tool_call_arg_goes_through_the_text_rules() {
        let a = tool("curl -H 'Authorization: Bearer x1' https://u:p1@h.io/?token=y1&page=2");
        assert_eq!(
            summary(&a),
            "run_command(curl -H 'Authorization: Bearer ***' https://u:***@h.io/?token=***&page=2)"
        );
    }

    #[test]
    fn http_request_masks_headers_query_and_token_formats_in_the_path() {
        let a = http(
            "/v1/ghp_abcdefghijklmnopqrstuvwxyz0123/repos",
            Some("access_token=t1&page=2&redirect=https://u:p@x.io/&API%5FKEY=k&empty_token="),
            &[
                ("authorization", "Bearer t2"),
                ("proxy-authorization", "Basic dXNlcjpwYXNz"),
                ("cookie", "sid=s1; theme=dark"),
                ("x-api-key", "k1"),
                ("x-upstream-session", "s2"),
                ("accept", "application/json"),
                ("referer", "https://app.example.com/?code=c1"),
                ("authorization", "t3"),
                ("x-auth-token", ""),
            ],
        );
        let Action::HttpRequest(h) = action(&a) else {
            panic!("kind changed")
        };
        let headers: Vec<(&str, &str)> = h
            .headers
            .iter()
            .map(|h| (h.name.as_str(), h.value.as_str()))
            .collect();
        assert_eq!(
            headers,
            [
                ("authorization", "Bearer ***"),
                ("proxy-authorization", "Basic ***"),
                ("cookie", "sid=***; theme=***"),
                ("x-api-key", "***"),
                ("x-upstream-session", "***"),
                ("accept", "application/json"),
                ("referer", "https://app.example.com/?code=***"),
                ("authorization", "***"),
                ("x-auth-token", ""),
            ]
        );
        assert_eq!(
            h.url(),
            "https://api.example.com/v1/***/repos?access_token=***&page=2\
             &redirect=https://u:***@x.io/&API%5FKEY=***&empty_token="
        );
        assert_eq!(summary(&a), action(&a).summary());
    }

    #[test]
    fn http_request_masks_key_headers_and_bare_cookies() {
        let a = http(
            "/",
            None,
            &[
                ("ocp-apim-subscription-key", "k1"),
                ("x-functions-key", "k2"),
                ("cookie", "opaque-value"),
                ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
                ("idempotency-key", "8e03978e"),
                ("x-public-key", "pk"),
            ],
        );
        let Action::HttpRequest(h) = action(&a) else {
            panic!("kind changed")
        };
        let values: Vec<&str> = h.headers.iter().map(|h| h.value.as_str()).collect();
        assert_eq!(
            values,
            [
                "***",
                "***",
                "***",
                "dGhlIHNhbXBsZSBub25jZQ==",
                "8e03978e",
                "pk"
            ]
        );
    }

    #[test]
    fn upgrade_path_gets_the_query_rules_and_connect_is_unchanged() {
        assert_eq!(
            summary(&upgrade("/socket?token=abc&v=2")),
            "UPGRADE websocket ws.example.com/socket?token=***&v=2"
        );
        assert_eq!(
            summary(&upgrade("/socket")),
            "UPGRADE websocket ws.example.com/socket"
        );
        let c = Action::Connect(Connect {
            host: "token.example.com".into(),
            port: 443,
            session_id: "s".into(),
            sandbox_id: "b".into(),
            agent_id: None,
        });
        assert_eq!(action(&c), c);
    }

    /// Secrets without a recognizable format: caught by where they are.
    const PLAIN_SECRETS: &[&str] = &[
        "hunter2-Secret",
        "wJalrXUtnFEMI/K7MDENG+bPxRfiCY",
        "pä55wörd",
    ];

    /// Secrets caught by their format, wherever they are.
    const FORMATTED_SECRETS: &[&str] = &[
        "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
        "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuv",
        "gho_16C7e42F292c6912E7710c838347Ae178B4a",
        "glpat-abcdefghij0123456789",
        "xoxb-123456789012-1234567890123-abcdefghijkl",
        "xoxp-123456789012-abcdefghijkl",
        "AKIAIOSFODNN7EXAMPLE",
        "ASIAY34FZKBOKMUTVV7A",
        "sk-proj-abcdefghijklmnopqrst0123456789",
        "sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123",
        "sk_live_abcdefghij0123456789",
        "AIzaSyA-abcdefghijklmnopqrstuvwxyz012345",
        "npm_abcdefghijklmnopqrstuvwxyz0123456789",
        "hf_abcdefghijklmnopqrstuvwxyzABCDEFGH",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJlLXRoYXQtaXMtbG9uZw",
    ];

    /// Actions that put `s` where a secret is recognized by its place.
    fn placed(s: &str) -> Vec<Action> {
        vec![
            exec(&["--password", s]),
            exec(&["-password", s]),
            exec(&["--api-key", s]),
            exec(&[&format!("--token={s}")]),
            exec(&[&format!("GITHUB_TOKEN={s}"), "gh"]),
            exec(&["-H", &format!("Authorization: Bearer {s}")]),
            exec(&["-H", &format!("X-Api-Key: {s}")]),
            exec(&["-u", &format!("bob:{s}")]),
            exec(&[&format!("https://bob:{s}@example.com/")]),
            exec(&[&format!("https://x.io/?access_token={s}&a=1")]),
            exec(&["sh", "-c", &format!("PGPASSWORD='{s}' psql")]),
            tool(&format!(
                "curl -H 'Authorization: Bearer {s}' https://x.io/"
            )),
            tool(&format!("curl -H \"Cookie: sid={s}; a=b\" https://x.io/")),
            tool(&format!("curl https://u:{s}@h.io/?token={s}")),
            tool(&format!("mysql --password={s} db")),
            tool(&format!("deploy --token {s} --now")),
            tool(&format!("export AWS_SECRET_ACCESS_KEY={s}")),
            tool(&format!("{{\"client_secret\": \"{s}\", \"n\": 1}}")),
            tool(&format!("password: {s}")),
            tool(&format!("api_key = \"{s}\"")),
            // The rules of the security review (R1 to R6).
            tool(&format!("curl -d \"{{\\\"password\\\": \\\"{s}\\\"}}\" x")),
            tool(&format!("{{\"body\":\"{{\\\"token\\\":\\\"{s}\\\"}}\"}}")),
            tool(&format!("cat > c <<EOF\naws_secret_access_key = {s}\nEOF")),
            tool(&format!("curl -H Authorization:{s} x")),
            tool(&format!("curl --header=X-Api-Key:{s} x")),
            tool(&format!("http x.io Authorization:'Bearer {s}'")),
            tool(&format!("mysql -u root -p{s} shop")),
            tool(&format!("docker login -u me -p {s} reg.io")),
            tool(&format!("sshpass -p {s} ssh h")),
            tool(&format!("redis-cli -a {s} ping")),
            tool(&format!("openssl pkcs12 -passout pass:{s}")),
            tool(&format!("curl -ubob:{s} x")),
            tool(&format!("curl --proxy-user bob:{s} x")),
            tool(&format!("curl -U bob:{s} x")),
            tool(&format!("curl -H 'Ocp-Apim-Subscription-Key: {s}' x")),
            tool(&format!("curl -H 'Cookie: {s}' x")),
            tool(&format!("redis-cli -u redis://:{s}@h:6379")),
            run("mysql", &[&format!("-p{s}")]),
            run("sshpass", &["-p", s, "ssh", "h"]),
            run("redis-cli", &["-a", s]),
            run("curl", &["-U", &format!("bob:{s}")]),
            http("/", None, &[("x-functions-key", s)]),
            http("/", None, &[("cookie", s)]),
            http("/", Some(&format!("token={s}&page=2")), &[]),
            http("/", Some(&format!("sig={s}")), &[]),
            http("/", None, &[("authorization", &format!("Bearer {s}"))]),
            http("/", None, &[("x-api-key", s)]),
            http("/", None, &[("cookie", &format!("a=1; sid={s}"))]),
            http(
                "/",
                None,
                &[("referer", &format!("https://x.io/?code={s}"))],
            ),
            upgrade(&format!("/ws?token={s}")),
        ]
    }

    /// Actions that put `s` where only its format gives it away.
    fn anywhere(s: &str) -> Vec<Action> {
        vec![
            exec(&[s]),
            exec(&["-d", &format!("{{\"k\":\"{s}\"}}")]),
            tool(&format!("echo {s}")),
            tool(&format!("git push https://{s}@github.com/o/r.git")),
            tool(&format!("echo \"{s}\" | gh auth login --with-token")),
            http(&format!("/bot/{s}/send"), None, &[("x-debug", s)]),
            http("/", Some(&format!("q={s}")), &[]),
            upgrade(&format!("/ws/{s}")),
        ]
    }

    #[test]
    fn no_known_secret_survives() {
        let formatted = FORMATTED_SECRETS.iter().flat_map(|s| {
            let mut all = placed(s);
            all.extend(anywhere(s));
            all.into_iter().map(move |a| (*s, a))
        });
        let plain = PLAIN_SECRETS
            .iter()
            .flat_map(|s| placed(s).into_iter().map(move |a| (*s, a)));
        let mut checked = 0;
        for (secret, a) in formatted.chain(plain) {
            let shown = summary(&a);
            let stored = format!("{:?}", action(&a));
            assert!(!shown.contains(secret), "{secret} survives in {shown}");
            assert!(!stored.contains(secret), "{secret} survives in {stored}");
            assert_eq!(action(&action(&a)), action(&a), "not idempotent: {a:?}");
            checked += 1;
        }
        assert!(checked > 400, "{checked}");
    }

    /// A tiny deterministic generator (xorshift64*), so the property tests need no crate.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: usize) -> usize {
            usize::try_from(self.next() % u64::try_from(n).unwrap_or(1)).unwrap_or(0)
        }

        fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
            from[self.below(from.len())]
        }
    }

    /// Pieces that exercise every rule, and what tends to break scanners.
    const PIECES: &[&str] = &[
        "token",
        "TOKEN",
        "GITHUB_TOKEN",
        "password",
        "Authorization",
        "authorization",
        "Proxy-Authorization",
        "Cookie",
        "set-cookie",
        "Bearer",
        "bearer",
        "Basic",
        "-u",
        "--user",
        "--token",
        "--password",
        "-password",
        "--no-auth",
        "--password-file",
        "api_key",
        "X-Api-Key",
        "secret",
        "session",
        "key",
        "sig",
        "code",
        "user",
        "pwd",
        "=",
        "==",
        ":",
        ": ",
        "://",
        "https://",
        "http",
        "@",
        "?",
        "&",
        "#",
        ";",
        "|",
        "<",
        ">",
        "(",
        ")",
        "{",
        "}",
        "[",
        "]",
        ",",
        "$",
        "$(",
        "`",
        "\\",
        "\\n",
        "\\r",
        "\\t",
        "\\\"",
        "\"",
        "'",
        " ",
        "  ",
        "\t",
        "\n",
        "\r\n",
        "-",
        "--",
        "_",
        ".",
        "/",
        "%",
        "%5F",
        "%4",
        "+",
        "*",
        "***",
        "ghp_",
        "github_pat_",
        "xoxb-",
        "sk-",
        "sk_live_",
        "AKIA",
        "ASIA",
        "AIza",
        "eyJ",
        "glpat-",
        "npm_",
        "hf_",
        "-----BEGIN ",
        "PRIVATE KEY",
        "RSA PRIVATE KEY",
        "-----",
        "-----END ",
        "Proc-Type: 4,ENCRYPTED",
        "abcdefghijklmnopqrst",
        "ABCDEFGHIJKLMNOP0123",
        "0123456789",
        "MIIEowIBAAKCAQEAvq3Xyz0123456789abcdefghijklmnopqrstuvwxyzAB",
        "abc",
        "x",
        "A",
        "é",
        "пароль",
        "🔑",
        "秘",
        "\u{0}",
        "\u{7f}",
        "\u{a0}",
        "\u{2028}",
        // Programs, flags and forms of the command and config rules.
        "mysql",
        "/usr/bin/mysql",
        "-p",
        "-phunter2",
        "sshpass",
        "redis-cli",
        "-a",
        "--pass",
        "docker",
        "login",
        "curl",
        "http",
        "-U",
        "-ubob:",
        "--proxy-user",
        "-passin",
        "pass:",
        "env:",
        "-H",
        "-H ",
        "--header=",
        "X-Functions-Key",
        "Sec-WebSocket-Key",
        "\\",
        "\\\\\\\"",
        "\\\"password\\\": \\\"",
        " = ",
        "=",
        " : ",
        "<<<",
        "<<EOF\n",
        "self.",
        "None",
        "()",
        "0123456789abcdef0123456789abcdef01234567",
        "redis://",
        "https://0123456789abcdef01234@",
    ];

    fn generated(rng: &mut Rng) -> String {
        let mut s = String::new();
        for _ in 0..rng.below(40) {
            match rng.below(8) {
                0 => {
                    // A few arbitrary characters, ASCII or not.
                    for _ in 0..rng.below(4) {
                        let c = u32::try_from(rng.below(0x250)).unwrap_or(0);
                        s.push(char::from_u32(c).unwrap_or('?'));
                    }
                }
                _ => s.push_str(rng.pick(PIECES)),
            }
        }
        s
    }

    #[test]
    fn text_never_panics_and_is_idempotent() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..20_000 {
            let input = generated(&mut rng);
            let once = text(&input);
            assert_eq!(text(&once), once, "not idempotent on {input:?}");
            assert!(
                !once.contains('\u{fffd}'),
                "cut inside a character: {input:?} -> {once:?}"
            );
        }
    }

    #[test]
    fn actions_never_panic_and_are_idempotent() {
        let mut rng = Rng(0x0123_4567_89ab_cdef);
        for _ in 0..3_000 {
            let args: Vec<String> = (0..rng.below(6)).map(|_| generated(&mut rng)).collect();
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let names = [
                "authorization",
                "cookie",
                "x-api-key",
                "accept",
                "referer",
                "x-session",
            ];
            let values: Vec<String> = (0..3).map(|_| generated(&mut rng)).collect();
            let headers: Vec<(&str, &str)> = values
                .iter()
                .map(|v| (rng.pick(&names), v.as_str()))
                .collect();
            let (path, query, arg) = (
                generated(&mut rng),
                generated(&mut rng),
                generated(&mut rng),
            );
            for a in [
                exec(&args),
                tool(&arg),
                http(&path, Some(&query), &headers),
                upgrade(&format!("/{path}?{query}")),
            ] {
                let once = action(&a);
                assert_eq!(action(&once), once, "not idempotent on {a:?}");
                let _ = summary(&a);
            }
        }
    }

    #[test]
    fn large_adversarial_inputs_take_linear_time() {
        const SIZE: usize = 64 * 1024;
        let units = [
            "sk-",
            "sk-a",
            "eyJ-",
            "eyJaaaaaaaaaaa.",
            "eyJaaaaaaaaaaa.aa",
            "ghp_",
            "AKIA",
            "TOKEN=",
            "a=",
            "--token ",
            "--token",
            "Authorization: ",
            "\"password\": ",
            "\"TOKEN=",
            "?token=",
            "&token",
            "?",
            "https://",
            "a://b@",
            "https://u:",
            "-----BEGIN PRIVATE KEY-----",
            "-----BEGIN ",
            "-----BEGIN PRIVATE KEY-----\nMIIEowIBAAKCAQEAvq3Xyz0123456789abcdefghijkl",
            "'",
            "\"",
            "\\n",
            "x:",
            "Cookie: a=b ",
            "Bearer ",
            "-u ",
            "$(",
            "token = ",
            "a",
            "é",
            "🔑",
            "https://a:b/",
            "a:b/c://d:e/",
            "\"Authorization: Bearer ",
            "PRIVATE KEY-----\nMIIEowIBAAKCAQEAvq3Xyz0123456789abcdefghijkl\n",
            "?a%",
            "--password -",
            "\\\"token\\\": \\\"",
            "\\\\\\\"token\\\\\\\": \\\\\\\"",
            "\\\"token\\\"",
            "\\",
            "\npassword = ",
            "\npassword = a",
            "password = a\n",
            "-H ",
            "-H a:",
            "--header=X-Api-Key:",
            "mysql -p",
            "mysql -pa ",
            "sshpass -p ",
            "redis-cli -a \"",
            "docker login -p ",
            "-passin pass:",
            "curl -U ",
            "-ua:",
            "https://0123456789abcdef0123@",
            "https://0123456789abcdef0123",
            "http X-Api-Key:a ",
            "Cookie: a ",
            "-passin \" ",
            "-passin '\\\"",
            "redis-cli -a \\\"x",
            "\\\\\\\"a\\\\\\\": \\\\\\\"",
            "\\\\\\\\",
            "-H  ",
            " \\n password = (",
        ];
        for unit in units {
            let input = unit.repeat(SIZE / unit.len() + 1);
            let started = std::time::Instant::now();
            let once = text(&input);
            let elapsed = started.elapsed();
            assert_eq!(text(&once), once, "not idempotent on {unit:?} repeated");
            // Quadratic behaviour on 64 KiB takes minutes in a debug build; linear, milliseconds.
            assert!(elapsed.as_secs() < 2, "{unit:?} repeated took {elapsed:?}");
        }
    }
}
