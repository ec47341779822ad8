//! Shell decomposition: a command line becomes the simple commands it would run.
//!
//! This is a lexer for the POSIX/bash subset agents write, not an interpreter. It finds every
//! simple command, including those in subshells, groups, command and process substitutions,
//! backticks and unquoted heredoc bodies; removes quotes and escapes from literal words; and
//! notes what matching needs to know: redirections, expansions, substitutions. Anything it cannot
//! follow is reported as an error, and the caller never allows such a command.

/// One word of a simple command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    /// The word with quotes and escapes removed; expansions are kept as written (`$HOME`).
    pub text: String,
    /// No expansion of any kind: the word means exactly `text`.
    pub literal: bool,
}

impl Word {
    /// A literal word.
    pub fn literal(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            literal: true,
        }
    }
}

/// What a redirection does, as far as matching cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedirectKind {
    /// `>`, `>>`, `>|`, `&>`, `<>`, `>&file`: writes (or may write) a file.
    Write,
    /// `< file`.
    Read,
    /// `N>&M`, `>&2`, `<&-`, or a write to `/dev/null` and friends: no file is touched.
    Dup,
    /// `<< DELIM`: a heredoc.
    Heredoc,
    /// `<<< word`.
    HereString,
}

/// One redirection of a simple command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    /// What it does.
    pub kind: RedirectKind,
    /// Its target file, descriptor or heredoc delimiter.
    pub target: String,
}

/// One simple command: words and redirections.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimpleCommand {
    /// The words, command name first.
    pub words: Vec<Word>,
    /// Its redirections.
    pub redirects: Vec<Redirect>,
    /// A word or redirection holds a command or process substitution.
    pub substitution: bool,
    /// This command runs inside a substitution of another.
    pub nested: bool,
}

/// A decomposed command line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Script {
    /// Every simple command found, in source order (substitutions before the command using them).
    pub commands: Vec<SimpleCommand>,
    /// Why decomposition failed, if it did; the commands found so far are still listed.
    pub error: Option<String>,
}

/// How deep substitutions and subshells may nest before the input is refused.
const MAX_DEPTH: usize = 64;

/// Decompose a command line.
pub fn decompose(source: &str) -> Script {
    let mut lexer = Lexer::new(source, 0);
    lexer.list(None);
    Script {
        commands: lexer.commands,
        error: lexer.error,
    }
}

struct Lexer {
    chars: Vec<char>,
    pos: usize,
    depth: usize,
    commands: Vec<SimpleCommand>,
    error: Option<String>,
    /// The command being read.
    current: SimpleCommand,
    /// Set after `&&`, `||`, `|`: a command must follow.
    expect_command: bool,
    /// Heredocs whose bodies start at the next newline: (delimiter, strip tabs, quoted).
    pending_heredocs: Vec<(String, bool, bool)>,
    /// Commands read here run inside a substitution.
    nested: bool,
}

fn is_meta(c: char) -> bool {
    matches!(
        c,
        ' ' | '\t' | '\n' | '\r' | ';' | '&' | '|' | '(' | ')' | '<' | '>'
    )
}

impl Lexer {
    fn new(source: &str, depth: usize) -> Self {
        Self {
            chars: source.chars().collect(),
            pos: 0,
            depth,
            commands: Vec::new(),
            error: None,
            current: SimpleCommand::default(),
            expect_command: false,
            pending_heredocs: Vec::new(),
            nested: depth > 0,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_at(&self, offset: usize) -> Option<char> {
        self.chars.get(self.pos + offset).copied()
    }

    fn fail(&mut self, why: impl Into<String>) {
        if self.error.is_none() {
            self.error = Some(why.into());
        }
    }

    /// Finish the current simple command, if it has anything in it.
    fn end_command(&mut self) {
        let mut cmd = std::mem::take(&mut self.current);
        if !cmd.words.is_empty() || !cmd.redirects.is_empty() {
            cmd.nested |= self.nested;
            self.commands.push(cmd);
            self.expect_command = false;
        }
    }

    /// A control operator (`&&`, `||`, `|`, `|&`) that needs commands on both sides.
    fn binary_operator(&mut self, op: &str) {
        let empty = self.current.words.is_empty() && self.current.redirects.is_empty();
        if empty && (self.expect_command || self.commands.is_empty()) {
            self.fail(format!("`{op}` has no command before it"));
        }
        self.end_command();
        self.expect_command = true;
    }

    /// Read commands until the end of input or, when `close` is set, that closing character.
    fn list(&mut self, close: Option<char>) {
        loop {
            let Some(c) = self.peek() else {
                self.end_command();
                if close.is_some() {
                    self.fail("a `(` or `$(` is never closed");
                }
                if self.expect_command {
                    self.fail("the command ends with a dangling operator");
                }
                if !self.pending_heredocs.is_empty() {
                    self.fail("a heredoc has no body");
                }
                return;
            };
            match c {
                ' ' | '\t' => self.pos += 1,
                '\n' | '\r' => {
                    self.pos += 1;
                    self.end_command();
                    if c == '\n' {
                        self.heredoc_bodies();
                    }
                }
                ';' => {
                    self.pos += 1;
                    if self.peek() == Some(';') {
                        self.pos += 1;
                    }
                    self.end_command();
                }
                '&' if self.peek_at(1) == Some('&') => {
                    self.pos += 2;
                    self.binary_operator("&&");
                }
                '&' if self.peek_at(1) == Some('>') => self.redirect(None),
                '&' => {
                    self.pos += 1;
                    self.end_command();
                }
                '|' => {
                    let op = match self.peek_at(1) {
                        Some('|') => "||",
                        Some('&') => "|&",
                        _ => "|",
                    };
                    self.pos += op.len();
                    self.binary_operator(op);
                }
                '(' => {
                    self.pos += 1;
                    self.end_command();
                    self.nest(|inner| inner.list(Some(')')));
                }
                ')' => {
                    self.pos += 1;
                    if close == Some(')') {
                        self.end_command();
                        if self.expect_command {
                            self.fail("the command ends with a dangling operator");
                        }
                        return;
                    }
                    self.fail("a `)` has no matching `(`");
                    self.end_command();
                }
                '#' => self.skip_comment(),
                '<' | '>' => self.redirect(None),
                _ => self.word_or_fd_redirect(),
            }
        }
    }

    /// Run `f` one level deeper, refusing absurd nesting.
    fn nest(&mut self, f: impl FnOnce(&mut Self)) {
        if self.depth >= MAX_DEPTH {
            self.fail("substitutions nest too deeply");
            self.pos = self.chars.len();
            return;
        }
        self.depth += 1;
        let outer = std::mem::take(&mut self.current);
        let expect = std::mem::replace(&mut self.expect_command, false);
        f(self);
        self.current = outer;
        self.expect_command = expect;
        self.depth -= 1;
    }

    fn skip_comment(&mut self) {
        while let Some(c) = self.peek() {
            if c == '\n' || c == '\r' {
                break;
            }
            self.pos += 1;
        }
    }

    /// A word, or `N>`/`N<` where the digits name a file descriptor.
    fn word_or_fd_redirect(&mut self) {
        let start = self.pos;
        let word = self.word();
        let fd_digits = word.literal
            && !word.text.is_empty()
            && word.text.chars().all(|c| c.is_ascii_digit())
            && self.pos - start == word.text.len();
        if fd_digits && matches!(self.peek(), Some('<' | '>')) {
            self.redirect(Some(word.text));
            return;
        }
        // `\<newline>` alone leaves nothing; only a quoted empty string is an empty word.
        let quoted = self.chars[start..self.pos]
            .iter()
            .any(|c| matches!(c, '\'' | '"'));
        if word.text.is_empty() && !quoted {
            return;
        }
        self.current.words.push(word);
    }

    /// A redirection operator at `pos` and its target.
    fn redirect(&mut self, _fd: Option<String>) {
        let rest: String = self.chars[self.pos..self.chars.len().min(self.pos + 3)]
            .iter()
            .collect();
        // Process substitution: `<(...)` and `>(...)` are words, not redirections.
        if rest.starts_with("<(") || rest.starts_with(">(") {
            let word = self.word();
            self.current.words.push(word);
            return;
        }
        let (op, kind) = if rest.starts_with("<<<") {
            ("<<<", RedirectKind::HereString)
        } else if rest.starts_with("<<-") {
            ("<<-", RedirectKind::Heredoc)
        } else if rest.starts_with("<<") {
            ("<<", RedirectKind::Heredoc)
        } else if rest.starts_with("&>>") {
            ("&>>", RedirectKind::Write)
        } else if rest.starts_with("&>") {
            ("&>", RedirectKind::Write)
        } else if rest.starts_with(">>") {
            (">>", RedirectKind::Write)
        } else if rest.starts_with(">|") {
            (">|", RedirectKind::Write)
        } else if rest.starts_with(">&") {
            (">&", RedirectKind::Dup)
        } else if rest.starts_with("<&") {
            ("<&", RedirectKind::Dup)
        } else if rest.starts_with("<>") {
            ("<>", RedirectKind::Write)
        } else if rest.starts_with('>') {
            (">", RedirectKind::Write)
        } else {
            ("<", RedirectKind::Read)
        };
        self.pos += op.len();
        while matches!(self.peek(), Some(' ' | '\t')) {
            self.pos += 1;
        }
        if self
            .peek()
            .is_none_or(|c| is_meta(c) && c != '<' && c != '>')
        {
            self.fail(format!("the redirection `{op}` has no target"));
            return;
        }
        let quoted_delimiter = matches!(self.peek(), Some('\'' | '"'))
            || self.chars[self.pos..]
                .iter()
                .take_while(|c| !is_meta(**c))
                .any(|c| matches!(c, '\'' | '"' | '\\'));
        let target = self.word();
        let kind = match kind {
            RedirectKind::Dup if !is_fd_target(&target.text) => RedirectKind::Write,
            RedirectKind::Write if is_harmless_device(&target.text) => RedirectKind::Dup,
            k => k,
        };
        if kind == RedirectKind::Heredoc {
            self.pending_heredocs
                .push((target.text.clone(), op == "<<-", quoted_delimiter));
        }
        if !target.literal {
            // `> $FILE`: the target is not known; treat a computed target as a write.
            self.current.substitution |= target.text.contains("$(") || target.text.contains('`');
        }
        self.current.redirects.push(Redirect {
            kind,
            target: target.text,
        });
    }

    /// After a newline: read the bodies of the heredocs announced on the line before.
    fn heredoc_bodies(&mut self) {
        for (delimiter, strip_tabs, quoted) in std::mem::take(&mut self.pending_heredocs) {
            let mut body = String::new();
            let mut closed = false;
            while self.pos < self.chars.len() {
                let end = self.chars[self.pos..]
                    .iter()
                    .position(|&c| c == '\n')
                    .map_or(self.chars.len(), |i| self.pos + i);
                let line: String = self.chars[self.pos..end].iter().collect();
                self.pos = (end + 1).min(self.chars.len());
                let check = if strip_tabs {
                    line.trim_start_matches('\t')
                } else {
                    line.as_str()
                };
                if check.trim_end_matches('\r') == delimiter {
                    closed = true;
                    break;
                }
                body.push_str(&line);
                body.push('\n');
            }
            if !closed {
                self.fail(format!("the heredoc `{delimiter}` is never closed"));
            }
            if !quoted {
                // An unquoted heredoc expands `$(...)` and backticks in its body: they run.
                let mut inner = Lexer::new(&body, self.depth + 1);
                inner.nested = true;
                inner.double_quoted(None);
                self.absorb(inner);
            }
        }
    }

    /// Take the commands (and any error) a sub-lexer found.
    fn absorb(&mut self, inner: Lexer) {
        self.commands
            .extend(inner.commands.into_iter().map(|mut c| {
                c.nested = true;
                c
            }));
        if let Some(e) = inner.error {
            self.fail(e);
        }
    }

    /// Read one word up to the next metacharacter outside quotes.
    fn word(&mut self) -> Word {
        let mut text = String::new();
        let mut literal = true;
        while let Some(c) = self.peek() {
            match c {
                '\'' => {
                    self.pos += 1;
                    match self.chars[self.pos..].iter().position(|&c| c == '\'') {
                        Some(i) => {
                            text.extend(&self.chars[self.pos..self.pos + i]);
                            self.pos += i + 1;
                        }
                        None => {
                            self.fail("a `'` quote is never closed");
                            text.extend(&self.chars[self.pos..]);
                            self.pos = self.chars.len();
                        }
                    }
                }
                '"' => {
                    self.pos += 1;
                    let (inner, lit) = self.double_quoted(Some('"'));
                    text.push_str(&inner);
                    literal &= lit;
                }
                '\\' => {
                    self.pos += 1;
                    match self.peek() {
                        Some('\n') => self.pos += 1,
                        Some(next) => {
                            text.push(next);
                            self.pos += 1;
                        }
                        None => text.push('\\'),
                    }
                }
                '$' => literal &= self.dollar(&mut text),
                '`' => {
                    self.backtick(&mut text);
                    literal = false;
                }
                '<' | '>' if self.peek_at(1) == Some('(') => {
                    // Process substitution inside (or as) a word.
                    let start = self.pos;
                    self.pos += 2;
                    self.substitution_body();
                    text.extend(&self.chars[start..self.pos]);
                    literal = false;
                }
                c if is_meta(c) => break,
                c => {
                    text.push(c);
                    self.pos += 1;
                }
            }
        }
        Word { text, literal }
    }

    /// Inside double quotes (or a heredoc body, with `close` = None): returns the text and
    /// whether it was free of expansions.
    fn double_quoted(&mut self, close: Option<char>) -> (String, bool) {
        let mut text = String::new();
        let mut literal = true;
        loop {
            let Some(c) = self.peek() else {
                if close.is_some() {
                    self.fail("a `\"` quote is never closed");
                }
                return (text, literal);
            };
            if Some(c) == close {
                self.pos += 1;
                return (text, literal);
            }
            match c {
                '\\' => {
                    self.pos += 1;
                    match self.peek() {
                        Some('\n') => self.pos += 1,
                        Some(n @ ('$' | '`' | '"' | '\\')) => {
                            text.push(n);
                            self.pos += 1;
                        }
                        _ => text.push('\\'),
                    }
                }
                '$' => literal &= self.dollar(&mut text),
                '`' => {
                    self.backtick(&mut text);
                    literal = false;
                }
                c => {
                    text.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    /// A `$` at `pos`: an expansion, a substitution, ANSI-C quoting, or a lone dollar sign.
    /// Appends its text and returns whether it was literal.
    fn dollar(&mut self, text: &mut String) -> bool {
        let start = self.pos;
        match self.peek_at(1) {
            Some('(') if self.peek_at(2) == Some('(') => {
                // `$((...))` is arithmetic, but bash reads it as a command substitution of a
                // subshell when it is not valid arithmetic (`$((rm -rf x))` runs rm). Decompose
                // it as commands: arithmetic becomes an unknown command (ask), never an allow.
                self.pos += 2;
                self.substitution_body();
                self.current.substitution = true;
            }
            Some('(') => {
                self.pos += 2;
                self.substitution_body();
                self.current.substitution = true;
            }
            Some('{') => {
                self.pos += 2;
                let mut depth = 1usize;
                while let Some(c) = self.peek() {
                    self.pos += 1;
                    match c {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                if depth != 0 {
                    self.fail("a `${` is never closed");
                }
            }
            Some('\'') => {
                self.pos += 2;
                text.push_str(&self.ansi_c());
                return false;
            }
            Some('"') => {
                // `$"..."` is a translatable string: a double-quoted string here.
                self.pos += 2;
                let (inner, lit) = self.double_quoted(Some('"'));
                text.push_str(&inner);
                return lit;
            }
            Some(c) if c.is_ascii_alphanumeric() || c == '_' => {
                self.pos += 1;
                if c.is_ascii_digit() {
                    self.pos += 1;
                } else {
                    while self
                        .peek()
                        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
                    {
                        self.pos += 1;
                    }
                }
            }
            Some('@' | '*' | '#' | '?' | '-' | '$' | '!') => self.pos += 2,
            _ => {
                text.push('$');
                self.pos += 1;
                return true;
            }
        }
        text.extend(&self.chars[start..self.pos]);
        false
    }

    /// The body of `$(...)`, `<(...)` or `>(...)` after its opening: decomposed as a script.
    fn substitution_body(&mut self) {
        self.current.substitution = true;
        let saved_nested = self.nested;
        let saved_heredocs = std::mem::take(&mut self.pending_heredocs);
        self.nest(|inner| {
            inner.nested = true;
            inner.list(Some(')'));
        });
        self.nested = saved_nested;
        self.pending_heredocs = saved_heredocs;
    }

    /// A backtick substitution at `pos`: its text (unescaped) is decomposed as a script.
    fn backtick(&mut self, text: &mut String) {
        let start = self.pos;
        self.pos += 1;
        let mut body = String::new();
        let mut closed = false;
        while let Some(c) = self.peek() {
            self.pos += 1;
            match c {
                '\\' if matches!(self.peek(), Some('`' | '\\' | '$')) => {
                    body.extend(self.peek());
                    self.pos += 1;
                }
                '`' => {
                    closed = true;
                    break;
                }
                c => body.push(c),
            }
        }
        if !closed {
            self.fail("a backtick is never closed");
        }
        self.current.substitution = true;
        if self.depth >= MAX_DEPTH {
            self.fail("substitutions nest too deeply");
            return;
        }
        let mut inner = Lexer::new(&body, self.depth + 1);
        inner.list(None);
        self.absorb(inner);
        text.extend(&self.chars[start..self.pos]);
    }

    /// ANSI-C quoting `$'...'` after its opening quote: decoded.
    fn ansi_c(&mut self) -> String {
        let mut out = String::new();
        loop {
            let Some(c) = self.peek() else {
                self.fail("a `$'` quote is never closed");
                return out;
            };
            self.pos += 1;
            match c {
                '\'' => return out,
                '\\' => {
                    let Some(e) = self.peek() else { continue };
                    self.pos += 1;
                    match e {
                        'n' => out.push('\n'),
                        't' => out.push('\t'),
                        'r' => out.push('\r'),
                        'a' => out.push('\x07'),
                        'b' => out.push('\x08'),
                        'e' | 'E' => out.push('\x1b'),
                        'f' => out.push('\x0c'),
                        'v' => out.push('\x0b'),
                        'x' => {
                            let v = self.hex_digits(2);
                            out.extend(v.and_then(char::from_u32));
                        }
                        'u' => out.extend(self.hex_digits(4).and_then(char::from_u32)),
                        'U' => out.extend(self.hex_digits(8).and_then(char::from_u32)),
                        '0'..='7' => {
                            let mut v = e.to_digit(8).unwrap_or(0);
                            for _ in 0..2 {
                                match self.peek().and_then(|c| c.to_digit(8)) {
                                    Some(d) => {
                                        v = v * 8 + d;
                                        self.pos += 1;
                                    }
                                    None => break,
                                }
                            }
                            out.extend(char::from_u32(v));
                        }
                        other => out.push(other),
                    }
                }
                c => out.push(c),
            }
        }
    }

    fn hex_digits(&mut self, max: usize) -> Option<u32> {
        let mut value = None;
        for _ in 0..max {
            match self.peek().and_then(|c| c.to_digit(16)) {
                Some(d) => {
                    value = Some(value.unwrap_or(0) * 16 + d);
                    self.pos += 1;
                }
                None => break,
            }
        }
        value
    }
}

fn is_fd_target(target: &str) -> bool {
    target == "-" || (!target.is_empty() && target.chars().all(|c| c.is_ascii_digit()))
}

fn is_harmless_device(target: &str) -> bool {
    matches!(
        target,
        "/dev/null" | "/dev/stdout" | "/dev/stderr" | "/dev/tty"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(source: &str) -> Vec<Vec<String>> {
        words_of(source)
    }

    fn words_of(source: &str) -> Vec<Vec<String>> {
        let s = decompose(source);
        assert_eq!(s.error, None, "{source}");
        s.commands
            .iter()
            .map(|c| c.words.iter().map(|w| w.text.clone()).collect())
            .collect()
    }

    #[test]
    fn splits_on_every_control_operator() {
        assert_eq!(
            words("a && b || c ; d & e | f |& g\nh\ri"),
            [
                ["a"],
                ["b"],
                ["c"],
                ["d"],
                ["e"],
                ["f"],
                ["g"],
                ["h"],
                ["i"]
            ]
        );
    }

    #[test]
    fn quotes_group_and_are_removed() {
        assert_eq!(
            words(r#"git commit -m "a && b; c | d""#),
            [["git", "commit", "-m", "a && b; c | d"]]
        );
        assert_eq!(
            words("awk 'NR>=3 && NR<=9' f"),
            [["awk", "NR>=3 && NR<=9", "f"]]
        );
        assert_eq!(words("r''m -rf x"), [["rm", "-rf", "x"]]);
        assert_eq!(words(r"\rm x"), [["rm", "x"]]);
        assert_eq!(words("r\\\nm x"), [["rm", "x"]]);
        assert_eq!(words("ls -la \\\n  src ''"), [["ls", "-la", "src", ""]]);
        assert_eq!(words(r#""r"m x"#), [["rm", "x"]]);
    }

    #[test]
    fn comments_are_dropped() {
        assert_eq!(words("echo done # rm -rf /"), [["echo", "done"]]);
        assert_eq!(words("# rm -rf /\nls"), [["ls"]]);
        assert_eq!(words("echo a#b"), [["echo", "a#b"]]);
    }

    #[test]
    fn subshells_groups_and_substitutions_are_entered() {
        assert_eq!(
            words("(cd /tmp && rm -rf x)"),
            [vec!["cd", "/tmp"], vec!["rm", "-rf", "x"]]
        );
        assert_eq!(
            words("{ ls; rm x; }"),
            [vec!["{", "ls"], vec!["rm", "x"], vec!["}"]]
        );
        let s = decompose("echo $(rm -rf x) `whoami` <(cat f)");
        let names: Vec<&str> = s
            .commands
            .iter()
            .map(|c| c.words[0].text.as_str())
            .collect();
        assert_eq!(names, ["rm", "whoami", "cat", "echo"]);
        assert!(s.commands[..3].iter().all(|c| c.nested));
        assert!(s.commands[3].substitution);
        assert!(!s.commands[3].words[1].literal);
    }

    #[test]
    fn redirections_are_classified() {
        let s = decompose("npm test 2>&1 > out.txt < in.txt >/dev/null");
        let kinds: Vec<_> = s.commands[0]
            .redirects
            .iter()
            .map(|r| (r.kind, r.target.as_str()))
            .collect();
        assert_eq!(
            kinds,
            [
                (RedirectKind::Dup, "1"),
                (RedirectKind::Write, "out.txt"),
                (RedirectKind::Read, "in.txt"),
                (RedirectKind::Dup, "/dev/null"),
            ]
        );
        assert_eq!(words("npm test 2>&1"), [["npm", "test"]]);
    }

    #[test]
    fn heredoc_bodies_are_skipped_or_scanned() {
        let s = decompose("cat > ~/.bashrc << 'EOF'\nalias ls=rm\nEOF\nls");
        assert_eq!(s.error, None);
        assert_eq!(s.commands.len(), 2);
        assert_eq!(s.commands[0].redirects[1].kind, RedirectKind::Heredoc);
        let s = decompose("cat <<EOF\n$(rm -rf /)\nEOF");
        assert!(s.commands.iter().any(|c| c.words[0].text == "rm"));
    }

    #[test]
    fn expansions_are_not_literal() {
        let s = decompose("rm${IFS}-rf${IFS}x");
        assert!(!s.commands[0].words[0].literal);
        let s = decompose(r"$'\x72\x6d' -rf x");
        assert_eq!(s.commands[0].words[0].text, "rm");
        assert!(!s.commands[0].words[0].literal);
    }

    #[test]
    fn broken_input_is_an_error() {
        for bad in [
            "echo 'x",
            "echo \"x",
            "ls &&",
            "| ls",
            "echo $(ls",
            "ls )",
            "cat <<EOF\nx",
            "ls >",
        ] {
            assert!(decompose(bad).error.is_some(), "{bad}");
        }
    }

    #[test]
    fn absurd_nesting_is_refused_not_overflowed() {
        let deep = "$(".repeat(10_000);
        assert!(decompose(&deep).error.is_some());
        let deep = "(".repeat(10_000);
        assert!(decompose(&deep).error.is_some());
    }
}
