//! The fourth pass of [`text`](super::text): the flags and positional words that only some
//! programs give a secret (`mysql -p...`, `sshpass -p`, `vault login TOKEN`, ...), read word by
//! word through each simple command. [`Command`] reads `local.exec` arguments the same way.

use super::MASK;
use super::names::{is_secret, is_secret_header};
use super::scan::{
    Masker, at, contains, escaped_range, is_name, is_quote, quoted_range, starts_with_scheme, stop,
};

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
pub(super) enum Around {
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
pub(super) struct Command {
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
    pub(super) fn word(&mut self, w: &[u8], around: Around) -> Option<usize> {
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
///
/// [`named_values`]: super::values::named_values
pub(super) fn command_flags(s: &str) -> String {
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
