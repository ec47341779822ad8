//! The last pass of [`text`](super::text): values that a secret name gives away, wherever the
//! name is (headers, assignments, flags, JSON and YAML keys, config lines, URL userinfo and query
//! parameters). [`mask_value`] also masks the secret headers of HTTP requests.

use super::MASK;
use super::names::{
    is_authorization, is_cookie, is_pass_flag, is_secret, is_secret_flag, is_secret_header,
    is_user_flag, percent_decoded,
};
use super::scan::{
    Class, Masker, after_escape, at, contains, escaped_range, is_blank, is_name, is_quote,
    quoted_range, run_end, run_while, skip_blank, starts, starts_with_scheme, stop,
};

/// Mask the values of secret names: `Name: value` headers and YAML keys, `-H Name:value`,
/// `"name": value` JSON keys (also in escaped quotes: `\"name\": \"value\"`), `NAME=value` and
/// `--name=value`, `--name value`, `name = "value"`, `name = value` on its own line,
/// `?name=value` query parameters, `scheme://user:password@` and `scheme://<token>@`,
/// `-u user:password`, `Bearer value`.
pub(super) fn named_values(s: &str) -> String {
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
pub(super) fn mask_value(m: &mut Masker<'_>, name: &[u8], start: usize, end: usize) {
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
