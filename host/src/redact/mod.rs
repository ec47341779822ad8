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

mod commands;
mod exec;
mod formats;
mod http;
mod names;
mod pem;
mod scan;
mod stdin;
mod values;

use crate::action::{Action, LocalExec, ToolCall, Upgrade};
use commands::command_flags;
use exec::exec_args;
use formats::token_formats;
use http::{http_request, path_and_query};
use pem::pem_blocks;
use stdin::piped_secrets;
use values::named_values;

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

#[cfg(test)]
mod tests;
