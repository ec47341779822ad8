//! `local.exec` arguments. The argument list says what the text does not: where one argument
//! ends, so a secret flag's value is the whole next argument.

use super::commands::{Around, Command};
use super::names::{is_secret_flag, is_user_flag};
use super::scan::{is_name, is_quote, starts_with_scheme, stop};
use super::{MASK, text};

/// `local.exec` arguments: each through [`text`]; a secret flag masks the next argument (unless
/// it starts with `--` or `scheme://`), `-u`/`--user`/`--proxy-user` masks what follows the next
/// argument's first colon (unless it is a URL), and the flags of the program (see [`Command`]:
/// the executable, or a program named in the arguments) are masked as in text. Decisions are
/// made on the masked argument, which keeps the result idempotent.
pub(super) fn exec_args(executable: &str, args: &[String]) -> Vec<String> {
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
