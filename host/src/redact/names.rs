//! Which names hold a secret: headers, flags, variables, keys and query parameters. The rules
//! that find a secret by its place ask these; the value itself is never looked at.

use super::scan::{at, contains};

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
pub(super) fn is_secret(name: &[u8], query: bool) -> bool {
    let n = normalized(name);
    if n.is_empty() || NOT_SECRET_SUFFIXES.iter().any(|s| n.ends_with(s)) {
        return false;
    }
    NAME_WORDS.iter().any(|w| has_word(&n, w))
        || (query && QUERY_WORDS.iter().any(|w| has_word(&n, w)))
}

pub(super) fn is_secret_header(name: &[u8]) -> bool {
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
pub(super) fn is_authorization(name: &[u8]) -> bool {
    let n = normalized(name);
    n == b"authorization" || n == b"proxyauthorization"
}

/// `Cookie`-like: the value is `name=value` pairs, and only the values are masked.
pub(super) fn is_cookie(name: &[u8]) -> bool {
    contains(&normalized(name), b"cookie")
}

/// A flag (`--token`, `-password`) whose value, the next word, is secret. Flags that say where
/// a secret is (`--password-file`) or switch something off (`--no-auth`) are not.
pub(super) fn is_secret_flag(name: &[u8]) -> bool {
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
pub(super) fn is_pass_flag(name: &[u8]) -> bool {
    name.eq_ignore_ascii_case(b"--pass")
}

/// `-u`/`--user`/`--proxy-user`, whose value is `user:password` (curl and friends).
pub(super) fn is_user_flag(name: &[u8]) -> bool {
    name == b"-u" || name == b"--user" || name == b"--proxy-user"
}

/// Percent-decode a query parameter name (`+` is a space).
pub(super) fn percent_decoded(name: &[u8]) -> Vec<u8> {
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
