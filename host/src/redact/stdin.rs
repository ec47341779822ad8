//! The third pass of [`text`](super::text): a secret that `echo` or `printf` pipes into a
//! command reading it from standard input, where no name next to it gives it away.

use super::names::{is_pass_flag, is_secret};
use super::scan::{Masker, at, contains, is_quote, stop};

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
pub(super) fn piped_secrets(s: &str) -> String {
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
