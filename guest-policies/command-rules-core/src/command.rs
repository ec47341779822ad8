//! One simple command, analyzed for matching: the text allow rules see (as written), the texts
//! deny and ask rules see (also stripped of variable prefixes, by base name, with `$IFS` split),
//! the commands it runs through wrappers, and what stops an allow from standing.

use crate::paths::word_is_sensitive;
use crate::shell::{RedirectKind, SimpleCommand, Word};

/// A command another command runs.
#[derive(Debug, Clone)]
pub(crate) enum Inner {
    /// An argument vector (`nohup rm x` runs `rm x`).
    Words(Vec<Word>),
    /// A script (`bash -c 'rm x'`, `eval "rm x"`).
    Script(String),
}

/// What matching needs to know about one simple command.
#[derive(Debug, Clone)]
pub(crate) struct Analysis {
    /// The words as written (quotes removed), joined by single spaces: what allow rules see.
    pub(crate) written: String,
    /// The words as written, for suggestions.
    pub(crate) words: Vec<String>,
    /// Every text deny and ask rules are matched against; includes `written`.
    pub(crate) views: Vec<String>,
    /// Why no allow rule may ever allow this command, if one applies.
    pub(crate) blocker: Option<String>,
    /// Why an allow rule's allow becomes an ask, if one applies.
    pub(crate) cap: Option<String>,
    /// The commands this one runs.
    pub(crate) inner: Vec<Inner>,
    /// Suggest only the exact command: it destroys, fetches or runs code.
    pub(crate) exact_only: bool,
    /// A shell or interpreter with no arguments: it runs code piped to it.
    pub(crate) reads_code_from_stdin: bool,
}

/// Reserved words that may precede a command; they run nothing themselves.
const KEYWORDS: &[&str] = &[
    "if", "then", "else", "elif", "while", "until", "do", "!", "{", "}", "fi", "done", "esac",
];

pub(crate) const SHELLS: &[&str] = &[
    "sh", "bash", "zsh", "dash", "ksh", "ash", "mksh", "rbash", "fish", "csh", "tcsh",
];

pub(crate) const INTERPRETERS: &[&str] = &[
    "python",
    "python2",
    "python3",
    "node",
    "nodejs",
    "deno",
    "bun",
    "ruby",
    "perl",
    "php",
    "lua",
    "luajit",
    "Rscript",
    "osascript",
    "pwsh",
    "powershell",
    "tclsh",
    "awk-exec",
];

/// Programs that destroy data, fetch from the network, escalate, or run arbitrary code.
const DANGEROUS: &[&str] = &[
    "rm", "rmdir", "dd", "shred", "truncate", "chmod", "chown", "chgrp", "curl", "wget", "sudo",
    "doas", "su", "eval", "exec", "xargs", "env", "source", ".", "ssh", "scp", "rsync", "nc",
    "ncat", "socat", "kill", "pkill", "killall", "mv", "ln",
];

/// The base name of a path: `/bin/rm` is `rm`.
pub(crate) fn base_name(program: &str) -> &str {
    program.rsplit('/').next().unwrap_or(program)
}

fn is_assignment(word: &Word) -> bool {
    let text = &word.text;
    let Some(eq) = text.find('=') else {
        return false;
    };
    let name = text[..eq].trim_end_matches('+');
    let name = name.split('[').next().unwrap_or(name);
    !name.is_empty()
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn join(words: &[Word]) -> String {
    words
        .iter()
        .map(|w| w.text.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// `$IFS` and `${IFS}` read as the spaces they expand to, whitespace normalized.
fn ifs_split(text: &str) -> Option<String> {
    if !text.contains("$IFS") && !text.contains("${IFS}") {
        return None;
    }
    let spaced = text.replace("${IFS}", " ").replace("$IFS", " ");
    Some(spaced.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// Analyze a simple command from a shell script.
pub(crate) fn analyze(cmd: &SimpleCommand) -> Option<Analysis> {
    let mut a = analyze_words(&cmd.words)?;
    for r in &cmd.redirects {
        let cap = match r.kind {
            RedirectKind::Write => Some(format!("writes the file `{}`", crate::elide(&r.target))),
            RedirectKind::Heredoc => Some("feeds a heredoc to the command".to_owned()),
            RedirectKind::Read | RedirectKind::HereString | RedirectKind::Dup => None,
        };
        if word_is_sensitive(&r.target) && r.kind != RedirectKind::Heredoc {
            a.cap.get_or_insert_with(|| {
                format!("touches the sensitive path `{}`", crate::elide(&r.target))
            });
        }
        if let Some(cap) = cap {
            a.cap.get_or_insert(cap);
        }
    }
    if cmd.substitution {
        a.cap.get_or_insert_with(|| {
            "runs a command substitution, whose output no rule can check".into()
        });
    }
    Some(a)
}

/// Analyze an argument vector (a local-exec request, or a command seen through a wrapper).
pub(crate) fn analyze_words(words: &[Word]) -> Option<Analysis> {
    let start = words
        .iter()
        .take_while(|w| w.literal && KEYWORDS.contains(&w.text.as_str()))
        .count();
    let words = &words[start..];
    // A trailing `}` closes a group and runs nothing.
    let words = match words.last() {
        Some(w) if w.literal && w.text == "}" => &words[..words.len() - 1],
        _ => words,
    };
    if words.is_empty() {
        return None;
    }
    let written = join(words);
    let mut a = Analysis {
        written: written.clone(),
        words: words.iter().map(|w| w.text.clone()).collect(),
        views: vec![written.clone()],
        blocker: None,
        cap: None,
        inner: Vec::new(),
        exact_only: false,
        reads_code_from_stdin: false,
    };
    let assignments = words.iter().take_while(|w| is_assignment(w)).count();
    let core = &words[assignments..];
    let Some(program) = core.first() else {
        a.blocker = Some("only sets variables, which changes what later commands run".into());
        return Some(a);
    };
    let base = base_name(&program.text);
    let rest = &core[1..];
    let core_text = join(core);
    let based = if rest.is_empty() {
        base.to_owned()
    } else {
        format!("{base} {}", join(rest))
    };
    for view in [core_text.clone(), based.clone()] {
        if !a.views.contains(&view) {
            a.views.push(view);
        }
    }
    for view in [
        ifs_split(&written),
        ifs_split(&core_text),
        ifs_split(&based),
    ]
    .into_iter()
    .flatten()
    {
        if !a.views.contains(&view) {
            a.views.push(view);
        }
    }
    if !program.literal {
        a.blocker = Some("does not name its program literally".into());
    }
    if words.iter().skip(1).any(|w| word_is_sensitive(&w.text)) {
        a.cap = Some("touches a sensitive path".into());
    }
    a.exact_only = DANGEROUS.contains(&base)
        || SHELLS.contains(&base)
        || INTERPRETERS.contains(&base)
        || base.starts_with("python")
        || base.starts_with("mkfs");
    let interpreter =
        SHELLS.contains(&base) || INTERPRETERS.contains(&base) || base.starts_with("python");
    a.reads_code_from_stdin = interpreter && rest.iter().all(|w| w.text.starts_with('-'));
    see_through(base, rest, &mut a);
    if !a.inner.is_empty() {
        a.exact_only = true;
    }
    Some(a)
}

/// Options that take a value, per wrapper, so the value is not mistaken for the command.
fn takes_value(wrapper: &str, option: &str) -> bool {
    let list: &[&str] = match wrapper {
        "env" => &["-u", "--unset", "-C", "--chdir"],
        "exec" => &["-a"],
        "nice" => &["-n", "--adjustment"],
        "ionice" => &["-c", "-n", "-p", "--class", "--classdata"],
        "timeout" => &["-s", "--signal", "-k", "--kill-after"],
        "stdbuf" => &["-i", "-o", "-e", "--input", "--output", "--error"],
        "sudo" => &[
            "-u", "-g", "-C", "-h", "-p", "-U", "-r", "-t", "-D", "-T", "--user", "--group",
            "--host", "--prompt", "--chdir",
        ],
        "doas" => &["-u", "-C"],
        "xargs" => &[
            "-I",
            "-L",
            "-n",
            "-P",
            "-s",
            "-d",
            "-E",
            "-a",
            "--max-args",
            "--max-procs",
            "--delimiter",
            "--arg-file",
            "--max-lines",
            "--replace",
        ],
        "watch" => &["-n", "--interval"],
        "chroot" => &["--userspec", "--groups"],
        "flock" => &["-w", "--timeout", "-E", "--conflict-exit-code"],
        _ => &[],
    };
    list.contains(&option)
}

/// Skip a wrapper's options (and, for `env`, `sudo`, its `VAR=value` words); the rest.
fn after_options<'w>(wrapper: &str, words: &'w [Word]) -> &'w [Word] {
    let mut i = 0;
    while let Some(w) = words.get(i) {
        let t = w.text.as_str();
        if t == "--" {
            return &words[i + 1..];
        }
        if t.starts_with('-') && t.len() > 1 {
            i += if takes_value(wrapper, t) { 2 } else { 1 };
            continue;
        }
        if matches!(wrapper, "env" | "sudo" | "doas") && is_assignment(w) {
            i += 1;
            continue;
        }
        break;
    }
    &words[i.min(words.len())..]
}

/// Record what a wrapper runs, and what blocks or caps an allow of the wrapper itself.
fn see_through(base: &str, rest: &[Word], a: &mut Analysis) {
    let words = |w: &[Word]| (!w.is_empty()).then(|| Inner::Words(w.to_vec()));
    match base {
        "env" => {
            // `env -S 'cmd args'` splits a string into a command: treat it as a script.
            if let Some(i) = rest
                .iter()
                .position(|w| w.text == "-S" || w.text == "--split-string")
            {
                if let Some(s) = rest.get(i + 1) {
                    a.inner.push(Inner::Script(s.text.clone()));
                }
                return;
            }
            a.inner.extend(words(after_options(base, rest)));
        }
        "command" | "builtin" | "exec" | "nohup" | "time" | "nice" | "ionice" | "stdbuf"
        | "setsid" | "unbuffer" | "sudo" | "doas" | "busybox" | "caffeinate" => {
            a.inner.extend(words(after_options(base, rest)));
        }
        "timeout" => {
            let after = after_options(base, rest);
            // The first word left is the duration.
            a.inner.extend(words(after.get(1..).unwrap_or(&[])));
        }
        "chroot" | "flock" => {
            let after = after_options(base, rest);
            a.inner.extend(words(after.get(1..).unwrap_or(&[])));
        }
        "xargs" => {
            let after = after_options(base, rest);
            // Options glued to their value (`-n1`, `-I{}`) were skipped as flags above.
            if after.is_empty() {
                a.inner.push(Inner::Words(vec![Word::literal("echo")]));
            } else {
                a.inner.push(Inner::Words(after.to_vec()));
            }
        }
        "watch" => {
            let after = after_options(base, rest);
            if !after.is_empty() {
                a.inner.push(Inner::Script(join(after)));
            }
        }
        "eval" => {
            a.blocker = Some("runs a string as shell code".into());
            if !rest.is_empty() {
                a.inner.push(Inner::Script(join(rest)));
            }
        }
        "source" | "." => {
            a.blocker = Some("runs a file as shell code, which no rule can check".into());
        }
        "su" => {
            let script = rest
                .iter()
                .position(|w| w.text == "-c" || w.text == "--command");
            if let Some(s) = script.and_then(|i| rest.get(i + 1)) {
                a.inner.push(Inner::Script(s.text.clone()));
            }
        }
        "find" => {
            let mut i = 0;
            while i < rest.len() {
                let t = rest[i].text.as_str();
                if matches!(t, "-exec" | "-execdir" | "-ok" | "-okdir") {
                    let end = rest[i + 1..]
                        .iter()
                        .position(|w| w.text == ";" || w.text == "+")
                        .map_or(rest.len(), |p| i + 1 + p);
                    a.inner.extend(words(&rest[i + 1..end]));
                    i = end;
                }
                if t == "-delete" {
                    a.cap
                        .get_or_insert_with(|| "deletes files (`find -delete`)".into());
                }
                if matches!(t, "-fprint" | "-fprintf" | "-fls") {
                    a.cap
                        .get_or_insert_with(|| format!("writes a file (`find {t}`)"));
                }
                i += 1;
            }
        }
        "git" => {
            // `git -c core.pager=sh ...` and friends make git run programs of the caller's choice.
            let opts = rest.iter().take_while(|w| w.text.starts_with('-'));
            if opts.clone().any(|w| {
                w.text == "-c"
                    || w.text.starts_with("--config-env")
                    || w.text.starts_with("--exec-path")
            }) {
                a.blocker = Some(
                    "sets git configuration on the command line, which can run any program".into(),
                );
            }
        }
        b if SHELLS.contains(&b) => {
            if let Some(script) = shell_script(rest) {
                a.inner.push(Inner::Script(script));
            }
        }
        _ => {}
    }
}

/// The script of `sh -c SCRIPT` (also `-lc`, `-ec`, `-o opt -c`, ...).
pub(crate) fn shell_script(rest: &[Word]) -> Option<String> {
    let mut i = 0;
    let mut wants_script = false;
    while let Some(w) = rest.get(i) {
        let t = w.text.as_str();
        if t == "--" || t == "-" {
            i += 1;
            break;
        }
        if (t.starts_with('-') || t.starts_with('+')) && !t.starts_with("--") && t.len() > 1 {
            if t[1..].contains('c') {
                wants_script = true;
            }
            if t == "-o" || t == "+o" || t == "-O" || t == "+O" {
                i += 1;
            }
            i += 1;
            continue;
        }
        if t.starts_with("--") {
            if matches!(t, "--rcfile" | "--init-file") {
                i += 1;
            }
            i += 1;
            continue;
        }
        break;
    }
    if wants_script {
        rest.get(i).map(|w| w.text.clone())
    } else {
        None
    }
}
