//! Rules: `TOOL(PATTERN)` or a bare `TOOL`, and the glob patterns they carry.

use std::fmt;

/// The tool shell commands are governed as.
pub const RUN_COMMAND: &str = "run_command";

/// Tools whose argument is a path (the reference's `IsFileTool`).
pub const FILE_TOOLS: &[&str] = &[
    "read_file",
    "write_file",
    "edit_file",
    "create_file",
    "delete_file",
    "move_file",
    "list_dir",
    "search_files",
    "glob",
    "grep",
];

/// Whether `tool` takes a path argument.
pub fn is_file_tool(tool: &str) -> bool {
    FILE_TOOLS.contains(&tool)
}

/// A parsed rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The rule as written, used as its id in decisions.
    pub text: String,
    /// The tool it governs.
    pub tool: String,
    /// The pattern; `None` for a bare tool name, which matches every call.
    pub pattern: Option<Glob>,
}

/// Why a rule could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    /// The rule as written.
    pub rule: String,
    /// What is wrong with it.
    pub problem: String,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rule `{}` is invalid: {}", self.rule, self.problem)
    }
}

impl Rule {
    /// Parse `TOOL(PATTERN)` or `TOOL`.
    pub fn parse(text: &str) -> Result<Self, RuleError> {
        let err = |problem: &str| RuleError {
            rule: text.to_owned(),
            problem: problem.to_owned(),
        };
        let trimmed = text.trim();
        let (tool, pattern) = match trimmed.find('(') {
            None => {
                if trimmed.contains(')') {
                    return Err(err("it has a `)` without a `(`"));
                }
                (trimmed, None)
            }
            Some(open) => {
                let Some(inner) = trimmed[open + 1..].strip_suffix(')') else {
                    return Err(err("it must end with `)`"));
                };
                (&trimmed[..open], Some(inner))
            }
        };
        if tool.is_empty() {
            return Err(err("it names no tool"));
        }
        if !tool
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'))
        {
            return Err(err(
                "a tool name may hold only letters, digits, `_`, `-`, `.` and `:`",
            ));
        }
        let pattern = match pattern {
            None => None,
            Some(p) if p.trim().is_empty() => {
                return Err(err(
                    "the pattern between the parentheses is empty; write the bare tool name to match every call",
                ));
            }
            Some(p) => Some(if is_file_tool(tool) {
                Glob::path(p.trim())
            } else {
                Glob::command(p)
            }),
        };
        Ok(Self {
            text: trimmed.to_owned(),
            tool: tool.to_owned(),
            pattern,
        })
    }
}

/// A glob: `*` matches any run of characters (for paths, `*` stops at `/` and `**` crosses it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    /// The normalized pattern text.
    pub text: String,
    tokens: Vec<Token>,
    /// The literal text before the first wildcard: a cheap first test of every subject.
    prefix: String,
    /// A command pattern ending in ` *` also matches the bare prefix before it.
    bare_prefix: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Literal(u8),
    /// `*` in a command pattern, `**` in a path pattern: anything.
    Any,
    /// `*` in a path pattern: anything but `/`.
    AnyInSegment,
    /// `**/` in a path pattern: nothing, or anything ending in `/` (zero or more directories).
    AnyDirs,
}

impl Glob {
    /// A command pattern: whitespace runs collapse to one space, as commands are normalized.
    pub fn command(pattern: &str) -> Self {
        let text = pattern.split_whitespace().collect::<Vec<_>>().join(" ");
        let tokens = text
            .bytes()
            .map(|c| {
                if c == b'*' {
                    Token::Any
                } else {
                    Token::Literal(c)
                }
            })
            .collect();
        let bare_prefix = text.strip_suffix(" *").map(str::to_owned);
        Self {
            prefix: literal_prefix(&text),
            text,
            tokens,
            bare_prefix,
        }
    }

    /// A path pattern, already resolved to an absolute path where it had a prefix.
    pub fn path(pattern: &str) -> Self {
        let bytes = pattern.as_bytes();
        let mut tokens = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
                (b'*', Some(b'*'), Some(b'/')) => {
                    tokens.push(Token::AnyDirs);
                    i += 3;
                }
                (b'*', Some(b'*'), _) => {
                    tokens.push(Token::Any);
                    i += 2;
                }
                (b'*', _, _) => {
                    tokens.push(Token::AnyInSegment);
                    i += 1;
                }
                (c, _, _) => {
                    tokens.push(Token::Literal(c));
                    i += 1;
                }
            }
        }
        Self {
            text: pattern.to_owned(),
            prefix: literal_prefix(pattern),
            tokens,
            bare_prefix: None,
        }
    }

    /// Whether `subject` matches the whole pattern.
    pub fn matches(&self, subject: &str) -> bool {
        if self.bare_prefix.as_deref() == Some(subject) {
            return true;
        }
        // Most rules fail here, without touching the matcher. Byte-wise matching is exact for
        // UTF-8: a wildcard run always ends where a literal byte (never a continuation byte of
        // another character) matches.
        subject.starts_with(&self.prefix) && wildcard(&self.tokens, subject.as_bytes())
    }
}

fn literal_prefix(pattern: &str) -> String {
    pattern.split('*').next().unwrap_or("").to_owned()
}

/// Wildcard matching with a backtracking stack of stars. A plain `*` that cannot grow ends the
/// search at once (no earlier star can help it), which keeps command patterns O(n * m).
fn wildcard(p: &[Token], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0usize, 0usize);
    // (index of the star in `p`, where its match currently ends in `s`)
    let mut stars: Vec<(usize, usize)> = Vec::new();
    loop {
        if pi < p.len() {
            match p[pi] {
                Token::Any | Token::AnyInSegment | Token::AnyDirs => {
                    stars.push((pi, si));
                    pi += 1;
                    continue;
                }
                Token::Literal(c) if si < s.len() && s[si] == c => {
                    pi += 1;
                    si += 1;
                    continue;
                }
                Token::Literal(_) => {}
            }
        } else if si == s.len() {
            return true;
        }
        // Mismatch: grow the most recent star that can grow.
        loop {
            let Some(top) = stars.last_mut() else {
                return false;
            };
            let (star, end) = *top;
            let grown = match p[star] {
                Token::Any if end < s.len() => Some(end + 1),
                Token::Any => return false,
                Token::AnyInSegment if end < s.len() && s[end] != b'/' => Some(end + 1),
                Token::AnyDirs => s[end..]
                    .iter()
                    .position(|&c| c == b'/')
                    .map(|i| end + i + 1),
                _ => None,
            };
            if let Some(end) = grown {
                top.1 = end;
                pi = star + 1;
                si = end;
                break;
            }
            stars.pop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(p: &str, s: &str) -> bool {
        Glob::command(p).matches(s)
    }

    #[test]
    fn command_globs() {
        assert!(cmd("ls *", "ls"));
        assert!(cmd("ls *", "ls -la"));
        assert!(!cmd("npm run *", "npm runner"));
        assert!(cmd("npm run *", "npm run build"));
        assert!(cmd("npm run *", "npm run"));
        assert!(cmd("git  status   *", "git status --short"));
        assert!(cmd("*", "anything at all"));
        assert!(cmd("rm *", "rm --recursive --force x"));
        assert!(!cmd("rm *", "rmdir x"));
        assert!(cmd("npm --version", "npm --version"));
        assert!(!cmd("npm --version", "npm --version x"));
        assert!(cmd("a*b*c", "aXXbYYc"));
        assert!(!cmd("a*b*c", "aXXbYY"));
    }

    #[test]
    fn path_globs() {
        let g = Glob::path("/p/src/*.rs");
        assert!(g.matches("/p/src/main.rs"));
        assert!(!g.matches("/p/src/a/main.rs"));
        let g = Glob::path("/p/src/**");
        assert!(g.matches("/p/src/a/b/c.rs"));
        let g = Glob::path("/p/**/*.rs");
        assert!(g.matches("/p/b.rs"));
        assert!(g.matches("/p/a/b.rs"));
        assert!(g.matches("/p/a/b/c.rs"));
        assert!(!g.matches("/q/a/b.rs"));
        let g = Glob::path("/p/**/x/*.rs");
        assert!(g.matches("/p/a/x/b/x/c.rs"));
        assert!(!g.matches("/p/a/x/b/c.rs"));
    }

    #[test]
    fn rule_syntax() {
        let r = Rule::parse("run_command(npm run *)").unwrap();
        assert_eq!(r.tool, "run_command");
        assert_eq!(r.pattern.unwrap().text, "npm run *");
        assert!(Rule::parse("run_command").unwrap().pattern.is_none());
        assert!(Rule::parse("run_command(ls (x))").is_ok());
        for bad in [
            "run_command(ls",
            "(ls)",
            "run command(ls)",
            "run_command()",
            "ls)",
            "",
        ] {
            let e = Rule::parse(bad).unwrap_err();
            assert!(e.to_string().contains(&format!("`{bad}`")), "{e}");
        }
    }

    #[test]
    fn wildcard_is_not_exponential() {
        let p = "a*".repeat(30) + "b";
        let s = "a".repeat(200);
        assert!(!cmd(&p, &s));
    }
}
