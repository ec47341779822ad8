//! Programs that run code (or write files) from their arguments: `awk 'BEGIN{system("x")}'`,
//! `sed e`, `find -exec`, `git -c`, `python -c`, `xargs`, `env`. A rule that names only the
//! program (`awk *`) does not allow those forms: the rule must name the form itself.

use crate::command::{INTERPRETERS, SHELLS, base_name};
use gavel_shell::StrictWord;

/// What the allowing rule must say for this command to be allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Form {
    /// Nothing special: the program does not run code from these arguments.
    Plain,
    /// The rule's pattern must contain this text (the option or program text that runs code).
    Token(String),
    /// The rule's literal prefix must spell the first `n + 1` words: a wrapper and what it runs.
    Prefix(usize),
    /// Never allowed by a rule: why.
    Never(String),
}

/// Wrappers whose inner command is found without guessing at option parsing: no options at all
/// (`timeout` takes exactly a duration first).
const PLAIN_WRAPPERS: &[&str] = &["nohup", "nice", "timeout"];

/// Programs that run another program named in their arguments.
const WRAPPERS: &[&str] = &[
    "env",
    "command",
    "builtin",
    "exec",
    "nohup",
    "time",
    "nice",
    "ionice",
    "stdbuf",
    "setsid",
    "unbuffer",
    "sudo",
    "doas",
    "busybox",
    "timeout",
    "chroot",
    "flock",
    "xargs",
    "watch",
    "su",
    "caffeinate",
    "parallel",
    "strace",
    "ltrace",
    "gdb",
    "valgrind",
    "runuser",
    "chrt",
    "taskset",
    "nsenter",
    "unshare",
    "firejail",
    "script",
    "systemd-run",
];

const AWKS: &[&str] = &["awk", "gawk", "mawk", "nawk"];
const SEDS: &[&str] = &["sed", "gsed"];

/// Other programs with options that run a command, by option prefix and short-option letter.
const OPTION_RUNNERS: &[(&str, &[&str], &str)] = &[
    (
        "tar",
        &[
            "--to-command",
            "--checkpoint-action",
            "--use-compress-program",
            "--rsh-command",
            "--info-script",
            "--new-volume-script",
            "-I",
            "-F",
        ],
        "IF",
    ),
    ("sort", &["--compress-program"], ""),
    ("rsync", &["-e", "--rsh", "--rsync-path"], "e"),
    ("zip", &["-TT", "--unzip-command"], ""),
    ("man", &["-P", "--pager", "-H", "--html"], "PH"),
    ("ssh", &["-o", "-F"], "oF"),
    ("scp", &["-o", "-F", "-S"], "oFS"),
    ("vi", &["-c", "+", "--cmd", "-S"], "cS"),
    ("vim", &["-c", "+", "--cmd", "-S"], "cS"),
    ("nvim", &["-c", "+", "--cmd", "-S"], "cS"),
    ("less", &["+"], ""),
    ("make", &["--eval", "-E"], "E"),
];

fn is_interpreter(base: &str) -> bool {
    INTERPRETERS.contains(&base) || base.starts_with("python") || base.starts_with("pypy")
}

/// Whether this program can run code or write files from some arguments.
pub(crate) fn runs_code(base: &str) -> bool {
    WRAPPERS.contains(&base)
        || SHELLS.contains(&base)
        || is_interpreter(base)
        || AWKS.contains(&base)
        || SEDS.contains(&base)
        || matches!(base, "find" | "git")
        || OPTION_RUNNERS.iter().any(|(p, _, _)| *p == base)
}

/// What a rule must name to allow this command (program first).
pub(crate) fn form(words: &[StrictWord]) -> Form {
    let Some(program) = words.first() else {
        return Form::Never("runs no command".into());
    };
    let base = base_name(&program.text);
    let args = &words[1..];
    if !runs_code(base) {
        return Form::Plain;
    }
    if args.iter().any(|w| w.expands || w.glob) {
        return Form::Never(format!(
            "`{base}` can run code from its arguments, and bash computes one of them here"
        ));
    }
    let texts: Vec<&str> = args.iter().map(|w| w.text.as_str()).collect();
    if WRAPPERS.contains(&base) {
        return wrapper(base, &texts);
    }
    if SHELLS.contains(&base) || is_interpreter(base) {
        return interpreter(&texts);
    }
    if AWKS.contains(&base) {
        return awk(&texts);
    }
    if SEDS.contains(&base) {
        return sed(&texts);
    }
    match base {
        "find" => find(&texts),
        "git" => git(&texts),
        _ => option_runner(base, &texts),
    }
}

fn wrapper(base: &str, args: &[&str]) -> Form {
    // `command -v NAME` only looks a name up.
    if base == "command" && matches!(args.first(), Some(&("-v" | "-V"))) {
        return Form::Plain;
    }
    if PLAIN_WRAPPERS.contains(&base) && args.first().is_none_or(|a| !a.starts_with('-')) {
        if base != "timeout" {
            return Form::Plain;
        }
        let duration = args.first().copied().unwrap_or("");
        let number = duration.trim_end_matches(['s', 'm', 'h', 'd']);
        if !number.is_empty()
            && number.chars().all(|c| c.is_ascii_digit() || c == '.')
            && duration.len() - number.len() <= 1
        {
            return Form::Plain;
        }
    }
    // The first word that is neither an option nor an assignment: where the inner command
    // starts at the latest, so a rule spelling everything up to it names what runs.
    let inner = args
        .iter()
        .position(|a| !a.starts_with('-') && !a.contains('='))
        .map_or(args.len(), |i| i + 1);
    Form::Prefix(inner)
}

/// Shells and interpreters: `-c`, `-e` and friends run their argument; no program argument
/// means the program reads code from its input.
fn interpreter(args: &[&str]) -> Form {
    let mut has_program = false;
    for a in args {
        if !a.starts_with('-') || *a == "-" {
            has_program = *a != "-";
            break;
        }
        if a.starts_with("--") {
            if [
                "--eval",
                "--print",
                "--command",
                "--exec",
                "--rcfile",
                "--init-file",
            ]
            .iter()
            .any(|o| a.starts_with(o))
            {
                return Form::Token((*a).to_owned());
            }
            continue;
        }
        if a[1..]
            .chars()
            .any(|c| matches!(c, 'c' | 'e' | 'E' | 'p' | 'r' | 'x'))
        {
            return Form::Token((*a).to_owned());
        }
    }
    let informational = !args.is_empty()
        && args
            .iter()
            .all(|a| matches!(*a, "--version" | "-V" | "--help" | "-h"));
    if !has_program && !informational {
        return Form::Never("reads a program from its input, which no rule can check".into());
    }
    Form::Plain
}

fn find(args: &[&str]) -> Form {
    const RUNS: &[&str] = &[
        "-exec", "-execdir", "-ok", "-okdir", "-delete", "-fprint", "-fprint0", "-fprintf", "-fls",
    ];
    match args.iter().find(|a| RUNS.contains(a)) {
        Some(a) => Form::Token((*a).to_owned()),
        None => Form::Plain,
    }
}

fn git(args: &[&str]) -> Form {
    const SAFE_GLOBAL: &[&str] = &[
        "--no-pager",
        "-P",
        "--no-optional-locks",
        "--version",
        "--help",
        "--no-replace-objects",
        "--literal-pathspecs",
    ];
    const RUNNING: &[&str] = &[
        "--exec",
        "--upload-pack",
        "--receive-pack",
        "--extcmd",
        "--open-files-in-pager",
        "--to-cmd",
        "--cc-cmd",
        "--tool",
        "-x",
        "-O",
        "--ext-diff",
        "--config",
        "--template",
    ];
    let mut i = 0;
    while let Some(a) = args.get(i) {
        if !a.starts_with('-') {
            break;
        }
        if !SAFE_GLOBAL.contains(a) {
            // `-c`, `-C`, `--exec-path`, `--git-dir`, `--work-tree`, `--config-env`: each can
            // make git run a program of the caller's choice.
            return Form::Token((*a).to_owned());
        }
        i += 1;
    }
    let sub = args.get(i).copied().unwrap_or("");
    let reads_config = |a: Option<&&str>| {
        a.is_some_and(|a| {
            matches!(
                *a,
                "--get" | "--get-all" | "--get-regexp" | "--list" | "-l" | "--show-origin"
            )
        })
    };
    if sub == "config" && reads_config(args.get(i + 1)) {
        return Form::Plain;
    }
    if matches!(
        sub,
        "config" | "filter-branch" | "difftool" | "mergetool" | "submodule" | "bisect" | "alias"
    ) {
        return Form::Token(sub.to_owned());
    }
    match args[i.min(args.len())..]
        .iter()
        .find(|a| RUNNING.iter().any(|r| a.starts_with(r)))
    {
        Some(a) => Form::Token((*a).to_owned()),
        None => Form::Plain,
    }
}

fn option_runner(base: &str, args: &[&str]) -> Form {
    let Some((_, prefixes, letters)) = OPTION_RUNNERS.iter().find(|(p, _, _)| *p == base) else {
        return Form::Plain;
    };
    for a in args {
        let short_hit = a.starts_with('-')
            && !a.starts_with("--")
            && a[1..].chars().any(|c| letters.contains(c));
        if short_hit || prefixes.iter().any(|p| a.starts_with(p)) {
            return Form::Token((*a).to_owned());
        }
    }
    Form::Plain
}

/// awk: `system()`, pipes, `getline` from a command, `print > file`, `@load`, program files.
fn awk(args: &[&str]) -> Form {
    let mut i = 0;
    let mut programs: Vec<&str> = Vec::new();
    let mut from_option = false;
    while let Some(a) = args.get(i) {
        match *a {
            "--" => {
                i += 1;
                break;
            }
            "-F" | "-v" | "--field-separator" | "--assign" => i += 2,
            "-e" | "--source" => {
                if let Some(p) = args.get(i + 1) {
                    programs.push(p);
                }
                from_option = true;
                i += 2;
            }
            a if a.starts_with("-F") || a.starts_with("-v") => i += 1,
            a if a.starts_with('-') && a.len() > 1 => {
                // Program files, extensions, includes and anything unknown: not checked.
                let known = [
                    "--posix",
                    "--traditional",
                    "--re-interval",
                    "-P",
                    "-O",
                    "-b",
                    "-N",
                ];
                if !known.contains(&a) {
                    return Form::Token(a.to_owned());
                }
                i += 1;
            }
            _ => break,
        }
    }
    if !from_option && let Some(p) = args.get(i) {
        programs.push(p);
    }
    match programs.into_iter().find(|p| awk_runs(p)) {
        Some(p) => Form::Token(p.to_owned()),
        None => Form::Plain,
    }
}

fn awk_runs(program: &str) -> bool {
    let bytes = program.as_bytes();
    let single_pipe = bytes.iter().enumerate().any(|(i, &b)| {
        b == b'|' && bytes.get(i + 1) != Some(&b'|') && (i == 0 || bytes[i - 1] != b'|')
    });
    let print_redirect = program.match_indices("print").any(|(i, _)| {
        program[i..]
            .split([';', '}', '\n'])
            .next()
            .is_some_and(|stmt| stmt.contains('>'))
    });
    single_pipe
        || print_redirect
        || ["system", "getline", "@", "close", "fflush", "ENVIRON"]
            .iter()
            .any(|t| program.contains(t))
}

/// sed: the `e`, `w` and `W` commands and the `e`/`w` flags of `s` run or write; script files
/// are not read.
fn sed(args: &[&str]) -> Form {
    let mut scripts: Vec<&str> = Vec::new();
    let mut from_option = false;
    let mut i = 0;
    let mut first_operand: Option<&str> = None;
    while let Some(a) = args.get(i) {
        i += 1;
        if *a == "--" {
            if first_operand.is_none() {
                first_operand = args.get(i).copied();
            }
            break;
        }
        if let Some(s) = a.strip_prefix("--expression=") {
            scripts.push(s);
            from_option = true;
            continue;
        }
        if *a == "--expression" {
            if let Some(s) = args.get(i) {
                scripts.push(s);
            }
            from_option = true;
            i += 1;
            continue;
        }
        if a.starts_with("--file") || a.starts_with("--follow-symlinks=") {
            return Form::Token((*a).to_owned());
        }
        if a.starts_with("--") {
            continue;
        }
        if a.starts_with('-') && a.len() > 1 {
            let cluster: Vec<char> = a[1..].chars().collect();
            for (k, c) in cluster.iter().enumerate() {
                match c {
                    'i' => break, // the rest is a backup suffix
                    'e' => {
                        let rest: String = cluster[k + 1..].iter().collect();
                        if rest.is_empty() {
                            if let Some(s) = args.get(i) {
                                scripts.push(s);
                            }
                            i += 1;
                        } else {
                            // Rare and awkward to borrow; refuse rather than guess.
                            return Form::Token((*a).to_owned());
                        }
                        from_option = true;
                        break;
                    }
                    'l' => {
                        if k + 1 == cluster.len() {
                            i += 1;
                        }
                        break;
                    }
                    'n' | 'r' | 'E' | 's' | 'u' | 'z' | 'b' => {}
                    _ => return Form::Token((*a).to_owned()),
                }
            }
            continue;
        }
        if first_operand.is_none() {
            first_operand = Some(a);
        }
    }
    if !from_option && let Some(s) = first_operand {
        scripts.push(s);
    }
    match scripts.into_iter().find(|s| sed_runs(s)) {
        Some(s) => Form::Token(s.to_owned()),
        None => Form::Plain,
    }
}

/// Whether a sed script may run a command or write a file. Anything the scanner does not
/// understand counts as yes.
fn sed_runs(script: &str) -> bool {
    let c: Vec<char> = script.chars().collect();
    let mut i = 0;
    // Skip a regex delimited by `d` starting after the opening delimiter; the index after it.
    let regex_end = |mut i: usize, d: char| -> Option<usize> {
        let mut bracket = false;
        while let Some(&ch) = c.get(i) {
            match ch {
                '\\' => i += 1,
                '[' if !bracket => {
                    bracket = true;
                    // `[]...]` and `[^]...]`: a leading `]` is literal.
                    if c.get(i + 1) == Some(&'^') {
                        i += 1;
                    }
                    if c.get(i + 1) == Some(&']') {
                        i += 1;
                    }
                }
                ']' if bracket => bracket = false,
                '\n' => return None,
                x if x == d && !bracket => return Some(i + 1),
                _ => {}
            }
            i += 1;
        }
        None
    };
    let to_line_end = |mut i: usize| {
        while c.get(i).is_some_and(|&ch| ch != '\n') {
            i += 1;
        }
        i
    };
    while i < c.len() {
        // Separators and blanks between commands.
        while c
            .get(i)
            .is_some_and(|ch| matches!(ch, ' ' | '\t' | '\n' | ';'))
        {
            i += 1;
        }
        if i >= c.len() {
            return false;
        }
        // Addresses: numbers, `$`, `/re/`, `\cREc`, with `,`, `~`, `+`, `!`, `I`, `M`.
        loop {
            match c.get(i) {
                Some(d) if d.is_ascii_digit() => i += 1,
                Some('$' | ',' | '~' | '+' | '!' | ' ' | '\t') => i += 1,
                Some('/') => match regex_end(i + 1, '/') {
                    Some(e) => {
                        i = e;
                        while matches!(c.get(i), Some('I' | 'M')) {
                            i += 1;
                        }
                    }
                    None => return true,
                },
                Some('\\') => match c.get(i + 1) {
                    Some(&d) if d != '\n' => match regex_end(i + 2, d) {
                        Some(e) => i = e,
                        None => return true,
                    },
                    _ => return true,
                },
                _ => break,
            }
        }
        let Some(&cmd) = c.get(i) else {
            return true;
        };
        i += 1;
        match cmd {
            '{' | '}' | '=' | 'd' | 'D' | 'g' | 'G' | 'h' | 'H' | 'n' | 'N' | 'p' | 'P' | 'x'
            | 'z' | 'F' => {}
            'q' | 'Q' | 'l' | 'L' => {
                while c.get(i).is_some_and(|ch| ch.is_ascii_digit() || *ch == ' ') {
                    i += 1;
                }
            }
            '#' | ':' | 'a' | 'i' | 'c' | 'r' | 'R' => {
                // To the end of the line (a `\`-newline continues `a`, `i`, `c` text).
                loop {
                    i = to_line_end(i);
                    if i > 0 && c.get(i - 1) == Some(&'\\') && matches!(cmd, 'a' | 'i' | 'c') {
                        i += 1;
                        continue;
                    }
                    break;
                }
            }
            'b' | 't' | 'T' => {
                while c
                    .get(i)
                    .is_some_and(|&ch| ch != '\n' && ch != ';' && ch != '}')
                {
                    i += 1;
                }
            }
            's' | 'y' => {
                let Some(&d) = c.get(i) else {
                    return true;
                };
                if d == '\n' || d == '\\' {
                    return true;
                }
                let Some(e) = regex_end(i + 1, d) else {
                    return true;
                };
                // The replacement: backslashes escape, no brackets.
                let mut j = e;
                loop {
                    match c.get(j) {
                        None => return true,
                        Some('\\') => j += 2,
                        Some(&x) if x == d => break,
                        Some(_) => j += 1,
                    }
                }
                i = j + 1;
                if cmd == 's' {
                    while let Some(&f) = c.get(i) {
                        match f {
                            'g' | 'p' | 'i' | 'I' | 'm' | 'M' => i += 1,
                            f if f.is_ascii_digit() => i += 1,
                            ';' | '\n' | '}' | ' ' | '\t' => break,
                            // `e`, `w` and anything unknown.
                            _ => return true,
                        }
                    }
                }
            }
            // `e`, `w`, `W`, `v` and anything unknown.
            _ => return true,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form_of(words: &[&str]) -> Form {
        let words: Vec<StrictWord> = words
            .iter()
            .map(|t| StrictWord {
                text: (*t).to_owned(),
                expands: false,
                glob: false,
            })
            .collect();
        form(&words)
    }

    #[test]
    fn plain_forms() {
        for cmd in [
            &["awk", "NR>=3 && NR<=9", "f"][..],
            &["awk", "-F:", "{print $1}", "f"],
            &["sed", "-n", "s/a/b/gp", "f"],
            &["sed", "-e", "1,/x/d", "-e", "s|a|b|", "f"],
            &["sed", "-i.bak", "s/[/]/x/", "f"],
            &["find", ".", "-name", "*.rs"],
            &["git", "log", "--oneline"],
            &["git", "--no-pager", "diff"],
            &["python3", "script.py", "-c", "x"],
            &["node", "--version"],
            &["timeout", "60", "cargo", "test"],
            &["nohup", "ls"],
            &["tar", "-xzf", "a.tgz"],
        ] {
            assert_eq!(form_of(cmd), Form::Plain, "{cmd:?}");
        }
    }

    #[test]
    fn code_running_forms() {
        for cmd in [
            &["awk", "BEGIN{system(\"rm y\")}"][..],
            &["awk", "{print | \"sh\"}"],
            &["awk", "{\"date\" | getline d}"],
            &["awk", "{print > \"out\"}"],
            &["awk", "-f", "prog.awk"],
            &["sed", "s/x/rm y/e"],
            &["sed", "w out"],
            &["sed", "-n", "1e rm y"],
            &["sed", "-f", "script.sed"],
            &["sed", "s/a/b/w out"],
            &["find", ".", "-exec", "rm", "{}", ";"],
            &["find", ".", "-delete"],
            &["find", ".", "-fprint0", "x"],
            &["git", "-c", "core.pager=sh", "log"],
            &["git", "-C", "..", "log"],
            &["git", "rebase", "--exec", "rm y"],
            &["git", "config", "core.pager", "rm y"],
            &["python3", "-c", "print(1)"],
            &["perl", "-ne", "print"],
            &["bash", "-lc", "ls"],
            &["tar", "--to-command=sh", "-xf", "a.tar"],
        ] {
            assert!(matches!(form_of(cmd), Form::Token(_)), "{cmd:?}");
        }
        assert!(matches!(form_of(&["python3"]), Form::Never(_)));
        assert!(matches!(form_of(&["sh"]), Form::Never(_)));
        assert_eq!(form_of(&["xargs", "-0", "grep", "x"]), Form::Prefix(2));
        assert_eq!(form_of(&["env", "A=1", "ls"]), Form::Prefix(2));
        assert_eq!(form_of(&["timeout", "-k", "1", "5", "ls"]), Form::Prefix(2));
    }
}
