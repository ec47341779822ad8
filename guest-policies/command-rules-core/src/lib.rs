//! The command-rules policy's logic, as a plain library: the `command-rules` guest wraps it,
//! the host's `gavel suggest` calls it natively, and the benchmarks measure it as the native
//! baseline.
//!
//! ```
//! use command_rules_core::{Config, Policy, Request, Verdict};
//!
//! let config: Config = serde_json::from_str(r#"{
//!     "global": {"allow": ["run_command(git status *)"], "deny": ["run_command(rm *)"]}
//! }"#).unwrap();
//! let policy = Policy::new(config).unwrap();
//! let e = policy.evaluate(&Request::tool("run_command", "git status && /bin/rm -rf x"));
//! assert_eq!(e.verdict, Verdict::Deny);
//! assert_eq!(e.rule.as_deref(), Some("run_command(rm *)"));
//! ```

mod command;
mod forms;
mod paths;
mod rule;
mod shell;
mod suggest;

pub use paths::{is_sensitive, normalize};
pub use rule::{FILE_TOOLS, RUN_COMMAND, Rule, RuleError, is_file_tool};
pub use shell::{Script, SimpleCommand, Word, decompose};

use command::{Analysis, Inner, analyze, analyze_words};
use forms::Form;
/// The allow path's parser (the strict sub-language), shared with the SDK.
use gavel_shell as strict;
pub(crate) use gavel_shell::{elide, elide_to};
use paths::Anchors;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use strict::{Dialect, StrictCommand, StrictWord};

/// How deeply wrappers and `sh -c` scripts are followed before giving up (fail-closed).
const MAX_UNWRAP: usize = 16;

/// A whole reason is never longer than this many characters (a safety net: the host refuses
/// reasons over 4 KiB, and a long allowed command must never be denied for its reason).
const REASON_LIMIT: usize = 1000;

/// Shell builtins: looked up before `PATH`, and most of them change what later commands do.
const BUILTINS: &[&str] = &[
    "alias",
    "bg",
    "bind",
    "break",
    "builtin",
    "caller",
    "cd",
    "command",
    "compgen",
    "complete",
    "compopt",
    "continue",
    "declare",
    "dirs",
    "disown",
    "echo",
    "enable",
    "eval",
    "exec",
    "exit",
    "export",
    "false",
    "fc",
    "fg",
    "getopts",
    "hash",
    "help",
    "history",
    "jobs",
    "kill",
    "let",
    "local",
    "logout",
    "mapfile",
    "popd",
    "printf",
    "pushd",
    "pwd",
    "read",
    "readarray",
    "readonly",
    "return",
    "set",
    "shift",
    "shopt",
    "source",
    "suspend",
    "test",
    "times",
    "trap",
    "true",
    "type",
    "typeset",
    "ulimit",
    "umask",
    "unalias",
    "unset",
    "wait",
    ".",
    ":",
    "[",
];

/// The builtins a rule may allow: they run nothing, define nothing and read no variable names
/// (`printf -v`, `test -v` evaluate array subscripts, which can run commands).
fn builtin_is_harmless(name: &str, args: &[StrictWord]) -> bool {
    match name {
        "echo" | "true" | "false" | "pwd" | ":" | "cd" | "type" | "exit" => true,
        "printf" => !args.iter().any(|a| a.text.starts_with("-v")),
        "command" => args
            .first()
            .is_some_and(|a| a.text == "-v" || a.text == "-V"),
        "test" | "[" => !args.iter().any(|a| a.text == "-v" || a.text == "-R"),
        _ => false,
    }
}

/// The pattern of a rule's text (`run_command(awk *)` -> `awk *`); empty for a bare tool.
fn rule_pattern(rule: &str) -> &str {
    rule.split_once('(')
        .and_then(|(_, rest)| rest.strip_suffix(')'))
        .unwrap_or("")
}

fn literal_word(text: &str) -> StrictWord {
    StrictWord {
        text: text.to_owned(),
        expands: false,
        glob: false,
    }
}

/// A rule set as written: `{"allow": [...], "ask": [...], "deny": [...]}`, each list optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    /// Rules that allow.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<String>,
    /// Rules that ask a human.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ask: Vec<String>,
    /// Rules that deny.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny: Vec<String>,
}

impl Rules {
    /// Append `add`'s rules that are not already present, keeping order (the reference's
    /// `SaveLocal` merge: append-only, no duplicates).
    pub fn merge(&mut self, add: &Rules) {
        for (mine, theirs) in [
            (&mut self.allow, &add.allow),
            (&mut self.ask, &add.ask),
            (&mut self.deny, &add.deny),
        ] {
            for rule in theirs {
                if !mine.contains(rule) {
                    mine.push(rule.clone());
                }
            }
        }
    }
}

/// The policy's configuration (its `config()` JSON). Every key is optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Rules for every project; their denies are a floor no project rule can loosen.
    #[serde(default)]
    pub global: Rules,
    /// Project-local rules, checked before the global ones.
    #[serde(default)]
    pub local: Rules,
    /// Per-project rules, merged into `local` for requests naming that project.
    #[serde(default)]
    pub projects: HashMap<String, Rules>,
    /// The project root path patterns starting with `/` are anchored at.
    #[serde(default)]
    pub project_root: Option<String>,
    /// The home directory `~/` means.
    #[serde(default)]
    pub home: Option<String>,
    /// Commands an operator may never approve (the `manage` hook vetoes approving them).
    #[serde(default)]
    pub never_approve: Vec<String>,
}

/// What the policy concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Let it run.
    Allow,
    /// A human must approve it.
    Ask,
    /// Do not let it run.
    Deny,
}

/// One suggested rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suggestion {
    /// The rule, for example `run_command(npm run *)`.
    pub rule: String,
    /// A label for a menu.
    pub label: String,
}

/// Suggestions for one subcommand, most specific first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuggestionGroup {
    /// The subcommand.
    pub subject: String,
    /// The rules.
    pub rules: Vec<Suggestion>,
}

/// The policy's answer for one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    /// The verdict.
    pub verdict: Verdict,
    /// Why, naming the command part and rule.
    pub reason: String,
    /// The rule that decided, if one did.
    pub rule: Option<String>,
    /// For an ask: rules that would allow it, one group per subcommand not already allowed.
    pub suggestions: Vec<SuggestionGroup>,
}

/// A call to decide.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    tool: &'a str,
    arg: Arg<'a>,
    project: Option<&'a str>,
    project_root: Option<&'a str>,
    cwd: Option<&'a str>,
}

#[derive(Debug, Clone)]
enum Arg<'a> {
    /// A tool's argument: a shell command line for `run_command`, a path for file tools.
    Text(&'a str),
    /// A process start: the executable and its arguments, each word already literal.
    Argv(&'a str, &'a [String]),
}

impl<'a> Request<'a> {
    /// A tool call: `run_command` with a command line, a file tool with a path, or any tool.
    pub fn tool(tool: &'a str, arg: &'a str) -> Self {
        Self {
            tool,
            arg: Arg::Text(arg),
            project: None,
            project_root: None,
            cwd: None,
        }
    }

    /// A process start (a local-exec request): governed as `run_command` over its argv.
    pub fn exec(executable: &'a str, args: &'a [String]) -> Self {
        Self {
            tool: RUN_COMMAND,
            arg: Arg::Argv(executable, args),
            project: None,
            project_root: None,
            cwd: None,
        }
    }

    /// Name the project whose rules apply.
    pub fn project(mut self, project: Option<&'a str>) -> Self {
        self.project = project;
        self
    }

    /// Override the configured project root, and set the working directory.
    pub fn location(mut self, project_root: Option<&'a str>, cwd: Option<&'a str>) -> Self {
        self.project_root = project_root;
        self.cwd = cwd;
        self
    }
}

/// A configuration error: which rule (or key) is wrong and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// Compiled rules of one scope.
#[derive(Debug, Clone, Default)]
struct RuleSet {
    allow: Vec<Rule>,
    ask: Vec<Rule>,
    deny: Vec<Rule>,
    /// `run_command` rules of each list by the literal first word of their pattern, so a
    /// command is matched against the few rules that can match it, not all of them.
    index: [CommandIndex; 3],
}

/// Positions of `run_command` rules in one list, by the first word their pattern needs.
#[derive(Debug, Clone, Default)]
struct CommandIndex {
    by_word: HashMap<String, Vec<usize>>,
    /// Rules that can match any first word: a bare `run_command`, `*`, `np*`.
    any: Vec<usize>,
}

impl CommandIndex {
    fn new(rules: &[Rule]) -> Self {
        let mut index = Self::default();
        for (i, rule) in rules
            .iter()
            .enumerate()
            .filter(|(_, r)| r.tool == RUN_COMMAND)
        {
            let word = rule.pattern.as_ref().and_then(|g| {
                let prefix = g.text.split('*').next().unwrap_or("");
                match prefix.split_once(' ') {
                    Some((word, _)) => Some(word),
                    // No space before the first star: the first word is complete only when the
                    // whole pattern is literal (`ls`).
                    None if !g.text.contains('*') => Some(g.text.as_str()),
                    None => None,
                }
            });
            match word {
                Some(w) => index.by_word.entry(w.to_owned()).or_default().push(i),
                None => index.any.push(i),
            }
        }
        index
    }

    /// The first rule of `rules` (in configuration order) that matches any of `texts`.
    fn first<'r>(&self, rules: &'r [Rule], texts: &[String]) -> Option<&'r Rule> {
        let mut best: Option<usize> = None;
        for text in texts {
            let word = text.split(' ').next().unwrap_or("");
            let named = self
                .by_word
                .get(word)
                .map(Vec::as_slice)
                .unwrap_or_default();
            for &i in named.iter().chain(&self.any) {
                if best.is_some_and(|b| i >= b) {
                    continue;
                }
                if rules[i].pattern.as_ref().is_none_or(|g| g.matches(text)) {
                    best = Some(i);
                }
            }
        }
        best.map(|i| &rules[i])
    }
}

impl RuleSet {
    fn compile(rules: &Rules, scope: &str) -> Result<Self, ConfigError> {
        let list = |texts: &[String], kind: &str| -> Result<Vec<Rule>, ConfigError> {
            texts
                .iter()
                .map(|t| {
                    Rule::parse(t).map_err(|e| ConfigError(format!("{e} (in `{scope}.{kind}`)")))
                })
                .collect()
        };
        Ok(Self::from_lists(
            list(&rules.allow, "allow")?,
            list(&rules.ask, "ask")?,
            list(&rules.deny, "deny")?,
        ))
    }

    fn from_lists(allow: Vec<Rule>, ask: Vec<Rule>, deny: Vec<Rule>) -> Self {
        let index = [
            CommandIndex::new(&allow),
            CommandIndex::new(&ask),
            CommandIndex::new(&deny),
        ];
        Self {
            allow,
            ask,
            deny,
            index,
        }
    }

    fn merged(&self, other: &RuleSet) -> RuleSet {
        let cat = |a: &[Rule], b: &[Rule]| a.iter().chain(b).cloned().collect();
        RuleSet::from_lists(
            cat(&self.allow, &other.allow),
            cat(&self.ask, &other.ask),
            cat(&self.deny, &other.deny),
        )
    }

    /// The verdict of this scope for one command part, if any rule here matches it.
    fn match_command(&self, a: &Analysis) -> Option<(Verdict, &Rule)> {
        let [allow, ask, deny] = &self.index;
        if let Some(r) = deny.first(&self.deny, &a.views) {
            return Some((Verdict::Deny, r));
        }
        if let Some(r) = ask.first(&self.ask, &a.views) {
            return Some((Verdict::Ask, r));
        }
        if a.blocker.is_none()
            && let Some(r) = allow.first(&self.allow, std::slice::from_ref(&a.written))
        {
            return Some((Verdict::Allow, r));
        }
        None
    }

    fn match_path(
        &self,
        tool: &str,
        path: &str,
        anchors: &Anchors<'_>,
    ) -> Option<(Verdict, &Rule)> {
        let hits = |rule: &&Rule| {
            rule.tool == tool
                && match &rule.pattern {
                    None => true,
                    Some(glob) => paths::resolve_pattern(&glob.text, anchors)
                        .is_some_and(|p| rule::Glob::path(&p).matches(path)),
                }
        };
        self.first(hits)
    }

    fn match_other(&self, tool: &str, arg: &str) -> Option<(Verdict, &Rule)> {
        let hits = |rule: &&Rule| {
            rule.tool == tool && rule.pattern.as_ref().is_none_or(|g| g.matches(arg))
        };
        self.first(hits)
    }

    fn first(&self, hits: impl Fn(&&Rule) -> bool) -> Option<(Verdict, &Rule)> {
        if let Some(r) = self.deny.iter().find(&hits) {
            return Some((Verdict::Deny, r));
        }
        if let Some(r) = self.ask.iter().find(&hits) {
            return Some((Verdict::Ask, r));
        }
        self.allow.iter().find(&hits).map(|r| (Verdict::Allow, r))
    }

    fn denies(&self) -> impl Iterator<Item = &Rule> {
        self.deny.iter()
    }
}

/// The compiled policy: parse once, evaluate many times.
#[derive(Debug, Clone)]
pub struct Policy {
    global: RuleSet,
    local: RuleSet,
    /// `local` merged with each project's rules.
    projects: HashMap<String, RuleSet>,
    project_root: Option<String>,
    home: Option<String>,
    /// `never_approve` rules, as the deny list of a rule set.
    never_approve: RuleSet,
}

/// One part of a decision: a subcommand (or the whole call, for other tools).
struct Part {
    verdict: Verdict,
    reason: String,
    rule: Option<String>,
    /// Suggestions could turn this part into an allow.
    suggest: Option<SuggestionGroup>,
}

impl Policy {
    /// Compile a configuration; an invalid rule is an error naming it.
    pub fn new(config: Config) -> Result<Self, ConfigError> {
        let global = RuleSet::compile(&config.global, "global")?;
        let local = RuleSet::compile(&config.local, "local")?;
        let mut projects = HashMap::new();
        for (id, rules) in &config.projects {
            let set = RuleSet::compile(rules, &format!("projects.{id}"))?;
            projects.insert(id.clone(), local.merged(&set));
        }
        let never_approve = config
            .never_approve
            .iter()
            .map(|t| Rule::parse(t).map_err(|e| ConfigError(format!("{e} (in `never_approve`)"))))
            .collect::<Result<Vec<_>, _>>()?;
        let never_approve = RuleSet::from_lists(Vec::new(), Vec::new(), never_approve);
        Ok(Self {
            global,
            local,
            projects,
            project_root: config.project_root,
            home: config.home,
            never_approve,
        })
    }

    /// Parse and compile a JSON configuration.
    pub fn from_json(text: &str) -> Result<Self, ConfigError> {
        let config: Config = serde_json::from_str(text)
            .map_err(|e| ConfigError(format!("configuration is not valid: {e}")))?;
        Self::new(config)
    }

    fn local_for(&self, project: Option<&str>) -> &RuleSet {
        project
            .and_then(|p| self.projects.get(p))
            .unwrap_or(&self.local)
    }

    /// Decide one call.
    pub fn evaluate(&self, request: &Request<'_>) -> Evaluation {
        let local = self.local_for(request.project);
        match (&request.arg, request.tool) {
            (_, RUN_COMMAND) => {
                let (parts, error) = self.command_parts(request, local);
                let mut e = combine(parts, error);
                if e.verdict == Verdict::Allow
                    && let Err(why) = self.strictly_allowed(request, local)
                {
                    e = Evaluation {
                        verdict: Verdict::Ask,
                        reason: format!("the command is not in the checked subset of bash: {why}"),
                        rule: None,
                        suggestions: vec![],
                    };
                }
                e.reason = elide_to(&e.reason, REASON_LIMIT, 700, 200);
                e
            }
            (Arg::Text(path), tool) if is_file_tool(tool) => {
                combine(vec![self.file_part(tool, path, request, local)], None)
            }
            (Arg::Text(arg), tool) => combine(vec![self.other_part(tool, arg, local)], None),
            (Arg::Argv(..), _) => combine(
                vec![],
                Some("a process start is governed as `run_command`".into()),
            ),
        }
    }

    /// The `never_approve` rule an approval of this call would break, if any.
    pub fn never_approve(&self, request: &Request<'_>) -> Option<&str> {
        if self.never_approve.deny.is_empty() {
            return None;
        }
        match (&request.arg, request.tool) {
            (_, RUN_COMMAND) => {
                let (analyses, _) = collect(request);
                analyses
                    .iter()
                    .find_map(|a| self.never_approve.match_command(a))
                    .map(|(_, r)| r.text.as_str())
            }
            (Arg::Text(arg), tool) => self
                .never_approve
                .deny
                .iter()
                .find(|r| r.tool == tool && r.pattern.as_ref().is_none_or(|g| g.matches(arg)))
                .map(|r| r.text.as_str()),
            _ => None,
        }
    }

    fn command_parts(&self, request: &Request<'_>, local: &RuleSet) -> (Vec<Part>, Option<String>) {
        let (analyses, error) = collect(request);
        let mut parts: Vec<Part> = analyses
            .iter()
            .map(|a| self.command_part(a, local))
            .collect();
        if !parts.iter().any(|p| p.verdict == Verdict::Deny) {
            // Deny detection over-approximates: other readings of the text may only add a deny.
            let denied = other_readings(request)
                .iter()
                .map(|a| self.command_part(a, local))
                .find(|p| p.verdict == Verdict::Deny);
            parts.extend(denied);
        }
        (parts, error)
    }

    /// The allow path: `Ok` only if all of the command lies in the strict sub-language and
    /// each simple command in it (and each command a wrapper in it runs) is allowed as written,
    /// code-running forms included.
    fn strictly_allowed(&self, request: &Request<'_>, local: &RuleSet) -> Result<(), String> {
        match &request.arg {
            Arg::Text(script) => self.strict_script(script, Dialect::Bash, local, 0),
            Arg::Argv(executable, args) => {
                let dialect = match command::base_name(executable) {
                    "bash" => Some(Dialect::Bash),
                    "sh" | "dash" => Some(Dialect::Posix),
                    _ => None,
                };
                // `bash -c SCRIPT [NAME ARGS...]` with harmless options: the shell is only the
                // transport, and the script is what runs.
                let transport = match (dialect, args.first(), args.get(1)) {
                    (Some(d), Some(opts), Some(script))
                        if opts.starts_with('-')
                            && opts.contains('c')
                            && opts[1..]
                                .chars()
                                .all(|c| matches!(c, 'c' | 'e' | 'u' | 'x' | 'v')) =>
                    {
                        Some((d, script))
                    }
                    _ => None,
                };
                match transport {
                    Some((d, script)) => self.strict_script(script, d, local, 0),
                    None => {
                        let words = std::iter::once(*executable)
                            .chain(args.iter().map(String::as_str))
                            .map(literal_word)
                            .collect();
                        let cmd = StrictCommand {
                            words,
                            inputs: Vec::new(),
                        };
                        self.strict_command(&cmd, local, 0)
                    }
                }
            }
        }
    }

    fn strict_script(
        &self,
        script: &str,
        dialect: Dialect,
        local: &RuleSet,
        depth: usize,
    ) -> Result<(), String> {
        for cmd in strict::parse(script, dialect)? {
            self.strict_command(&cmd, local, depth)?;
        }
        Ok(())
    }

    fn strict_command(
        &self,
        cmd: &StrictCommand,
        local: &RuleSet,
        depth: usize,
    ) -> Result<(), String> {
        if depth > MAX_UNWRAP {
            return Err("commands are wrapped too deeply to check".into());
        }
        let Some(program) = cmd.words.first() else {
            return Err("a command has no words".into());
        };
        let written = elide(
            &cmd.words
                .iter()
                .map(|w| w.text.as_str())
                .collect::<Vec<_>>()
                .join(" "),
        );
        if program.expands || program.glob || program.text.is_empty() {
            return Err(format!("`{written}` does not name its program literally"));
        }
        if program.text.chars().any(char::is_whitespace) {
            return Err(format!("the program name of `{written}` holds a blank"));
        }
        if !program.text.contains('/')
            && BUILTINS.contains(&program.text.as_str())
            && !builtin_is_harmless(&program.text, &cmd.words[1..])
        {
            return Err(format!(
                "`{written}` is a shell builtin that can change what later commands do"
            ));
        }
        if let Some(input) = cmd.inputs.iter().find(|i| paths::word_is_sensitive(i)) {
            return Err(format!(
                "`{written}` reads the sensitive path `{}`",
                elide(input)
            ));
        }
        let words: Vec<Word> = cmd
            .words
            .iter()
            .map(|w| Word {
                text: w.text.clone(),
                literal: !w.expands && !w.glob,
            })
            .collect();
        let Some(a) = analyze_words(&words) else {
            return Err("a command has no words".into());
        };
        let part = self.command_part(&a, local);
        if part.verdict != Verdict::Allow {
            return Err(part.reason);
        }
        let rule = part.rule.unwrap_or_default();
        let pattern = rule_pattern(&rule);
        match forms::form(&cmd.words) {
            Form::Plain => {}
            Form::Never(why) => return Err(format!("`{written}` {why}")),
            Form::Token(token) => {
                if token.is_empty() || !pattern.contains(token.as_str()) {
                    return Err(format!(
                        "`{written}` runs code or writes files through `{}`, and the rule `{rule}` does not name that form",
                        elide(&token)
                    ));
                }
            }
            Form::Prefix(n) => {
                let needed = cmd.words[..=n.min(cmd.words.len() - 1)]
                    .iter()
                    .map(|w| w.text.as_str())
                    .collect::<Vec<_>>()
                    .join(" ");
                let literal = pattern.split('*').next().unwrap_or("");
                let names = !pattern.contains('*')
                    || literal == needed
                    || literal.starts_with(&format!("{needed} "));
                if !names {
                    return Err(format!(
                        "`{written}` runs another program, and the rule `{rule}` does not name it"
                    ));
                }
            }
        }
        for inner in &a.inner {
            match inner {
                Inner::Words(w) => {
                    let words = w
                        .iter()
                        .map(|w| StrictWord {
                            text: w.text.clone(),
                            expands: !w.literal,
                            glob: false,
                        })
                        .collect();
                    let inner = StrictCommand {
                        words,
                        inputs: Vec::new(),
                    };
                    self.strict_command(&inner, local, depth + 1)?;
                }
                Inner::Script(s) => {
                    let dialect = match command::base_name(&program.text) {
                        "bash" => Dialect::Bash,
                        "sh" | "dash" | "watch" => Dialect::Posix,
                        _ => {
                            return Err(format!(
                                "`{written}` runs a string as code in a way that is not checked"
                            ));
                        }
                    };
                    self.strict_script(s, dialect, local, depth + 1)?;
                }
            }
        }
        Ok(())
    }

    /// The scoped verdict for one subcommand: the global deny floor, then local, then global.
    fn command_part(&self, a: &Analysis, local: &RuleSet) -> Part {
        let subject = &elide(&a.written);
        let global = self.global.match_command(a);
        let chosen = match global {
            Some((Verdict::Deny, _)) => global.map(|(v, r)| (v, r, "global")),
            _ => local
                .match_command(a)
                .map(|(v, r)| (v, r, "project"))
                .or(global.map(|(v, r)| (v, r, "global"))),
        };
        let suggest =
            |this: &Policy| suggest::for_command(a, this.global.denies().chain(local.denies()));
        match chosen {
            Some((Verdict::Deny, rule, scope)) => Part {
                verdict: Verdict::Deny,
                reason: format!("`{subject}` is denied by the {scope} rule `{}`", rule.text),
                rule: Some(rule.text.clone()),
                suggest: None,
            },
            Some((Verdict::Ask, rule, scope)) => Part {
                verdict: Verdict::Ask,
                reason: format!(
                    "`{subject}` needs approval by the {scope} rule `{}`",
                    rule.text
                ),
                rule: Some(rule.text.clone()),
                // A project allow can lift a global ask, never a project ask.
                suggest: (scope == "global").then(|| suggest(self)).flatten(),
            },
            Some((Verdict::Allow, rule, scope)) => match &a.cap {
                Some(cap) => Part {
                    verdict: Verdict::Ask,
                    reason: format!(
                        "`{subject}` {cap}; the {scope} rule `{}` allows the command, not that",
                        rule.text
                    ),
                    rule: Some(rule.text.clone()),
                    suggest: None,
                },
                None => Part {
                    verdict: Verdict::Allow,
                    reason: format!("`{subject}` is allowed by the {scope} rule `{}`", rule.text),
                    rule: Some(rule.text.clone()),
                    suggest: None,
                },
            },
            None => match &a.blocker {
                Some(why) => Part {
                    verdict: Verdict::Ask,
                    reason: format!("`{subject}` {why}"),
                    rule: None,
                    suggest: None,
                },
                None => Part {
                    verdict: Verdict::Ask,
                    reason: format!("no rule allows `{subject}`"),
                    rule: None,
                    suggest: if a.cap.is_none() { suggest(self) } else { None },
                },
            },
        }
    }

    fn anchors<'s>(&'s self, request: &'s Request<'_>) -> Anchors<'s> {
        Anchors {
            project_root: request.project_root.or(self.project_root.as_deref()),
            home: self.home.as_deref(),
            cwd: request.cwd,
        }
    }

    fn file_part(&self, tool: &str, path: &str, request: &Request<'_>, local: &RuleSet) -> Part {
        let anchors = self.anchors(request);
        let resolved = paths::resolve_path(path, &anchors);
        let global = self.global.match_path(tool, &resolved, &anchors);
        let chosen = match global {
            Some((Verdict::Deny, _)) => global.map(|(v, r)| (v, r, "global")),
            _ => local
                .match_path(tool, &resolved, &anchors)
                .map(|(v, r)| (v, r, "project"))
                .or(global.map(|(v, r)| (v, r, "global"))),
        };
        let subject = format!("{tool}({})", elide(path));
        let sensitive = paths::is_sensitive(&resolved);
        let part = |verdict, reason: String, rule: Option<&Rule>, suggest| Part {
            verdict,
            reason,
            rule: rule.map(|r| r.text.clone()),
            suggest,
        };
        match chosen {
            Some((Verdict::Deny, r, scope)) => part(
                Verdict::Deny,
                format!("`{subject}` is denied by the {scope} rule `{}`", r.text),
                Some(r),
                None,
            ),
            Some((Verdict::Ask, r, scope)) => part(
                Verdict::Ask,
                format!(
                    "`{subject}` needs approval by the {scope} rule `{}`",
                    r.text
                ),
                Some(r),
                None,
            ),
            Some((Verdict::Allow, r, _)) if sensitive => part(
                Verdict::Ask,
                format!(
                    "`{subject}` touches a sensitive path; `{}` allows the tool, not that",
                    r.text
                ),
                Some(r),
                None,
            ),
            Some((Verdict::Allow, r, scope)) => part(
                Verdict::Allow,
                format!("`{subject}` is allowed by the {scope} rule `{}`", r.text),
                Some(r),
                None,
            ),
            None => part(
                Verdict::Ask,
                format!("no rule allows `{subject}`"),
                None,
                (!sensitive).then(|| suggest::for_path(tool, &resolved, anchors.project_root)),
            ),
        }
    }

    fn other_part(&self, tool: &str, arg: &str, local: &RuleSet) -> Part {
        let global = self.global.match_other(tool, arg);
        let chosen = match global {
            Some((Verdict::Deny, _)) => global,
            _ => local.match_other(tool, arg).or(global),
        };
        let subject = format!("{tool}({})", elide(arg));
        match chosen {
            Some((verdict, r)) => Part {
                verdict,
                reason: format!("`{subject}` matches `{}`", r.text),
                rule: Some(r.text.clone()),
                suggest: None,
            },
            None => Part {
                verdict: Verdict::Ask,
                reason: format!("no rule allows `{subject}`"),
                rule: None,
                suggest: Some(SuggestionGroup {
                    subject: subject.clone(),
                    rules: vec![Suggestion {
                        rule: format!("{tool}({arg})"),
                        label: format!("allow `{subject}` in this project"),
                    }],
                }),
            },
        }
    }
}

/// Every command a request would run, analyzed: the simple commands of its script, and what
/// their wrappers run, recursively.
fn collect(request: &Request<'_>) -> (Vec<Analysis>, Option<String>) {
    let mut out = Vec::new();
    let mut error = None;
    match &request.arg {
        Arg::Text(script) => walk_script(script, 0, &mut out, &mut error),
        Arg::Argv(executable, args) => {
            let words: Vec<Word> = std::iter::once(*executable)
                .chain(args.iter().map(String::as_str))
                .map(Word::literal)
                .collect();
            // A launcher starting `bash -c SCRIPT` is running SCRIPT: the shell is the transport,
            // and the script's commands are what the rules judge.
            let script = command::SHELLS
                .contains(&command::base_name(executable))
                .then(|| command::shell_script(&words[1..]))
                .flatten();
            match script {
                Some(script) => walk_script(&script, 0, &mut out, &mut error),
                None => walk_words(&words, 0, &mut out, &mut error),
            }
        }
    }
    (out, error)
}

/// Other readings of a command line, for deny detection only: bash may read the text
/// differently from the lexer (quoting inside `${...}`, arithmetic, heredocs, CR, line
/// continuations), so the text is also read with continuations joined, from every place a
/// substitution could start, and cut at every character that could end a command.
fn other_readings(request: &Request<'_>) -> Vec<Analysis> {
    /// Bounds the work on hostile input; the first readings are the likely ones.
    const MAX_READINGS: usize = 64;
    let script = match &request.arg {
        Arg::Text(script) => (*script).to_owned(),
        Arg::Argv(executable, args) => {
            let words: Vec<Word> = args.iter().map(|a| Word::literal(a.as_str())).collect();
            match command::SHELLS
                .contains(&command::base_name(executable))
                .then(|| command::shell_script(&words))
                .flatten()
            {
                Some(s) => s,
                None => return Vec::new(),
            }
        }
    };
    let mut readings: Vec<String> = vec![script.replace("\\\n", "").replace('\r', "\n")];
    for opener in ["$(", "`", "<(", ">(", "$[", "((", "${"] {
        for (i, _) in script.match_indices(opener).take(MAX_READINGS) {
            readings.push(script[i + opener.len()..].to_owned());
        }
    }
    readings.extend(
        script
            .split([';', '&', '|', '\n', '\r', '{', '}', '(', ')', '`'])
            .filter(|s| !s.trim().is_empty())
            .take(MAX_READINGS)
            .map(str::to_owned),
    );
    let mut out = Vec::new();
    let mut ignored = None;
    for r in readings.iter().filter(|r| **r != script) {
        walk_script(r, 1, &mut out, &mut ignored);
    }
    out
}

fn walk_script(script: &str, depth: usize, out: &mut Vec<Analysis>, error: &mut Option<String>) {
    if depth > MAX_UNWRAP {
        error.get_or_insert_with(|| "commands are wrapped too deeply to follow".into());
        return;
    }
    let parsed = shell::decompose(script);
    if let Some(e) = parsed.error {
        error.get_or_insert(e);
    }
    for cmd in &parsed.commands {
        if let Some(a) = analyze(cmd) {
            follow(a, depth, out, error);
        }
    }
}

fn walk_words(words: &[Word], depth: usize, out: &mut Vec<Analysis>, error: &mut Option<String>) {
    if depth > MAX_UNWRAP {
        error.get_or_insert_with(|| "commands are wrapped too deeply to follow".into());
        return;
    }
    if let Some(a) = analyze_words(words) {
        follow(a, depth, out, error);
    }
}

fn follow(a: Analysis, depth: usize, out: &mut Vec<Analysis>, error: &mut Option<String>) {
    let inner = a.inner.clone();
    out.push(a);
    for i in inner {
        match i {
            Inner::Words(w) => walk_words(&w, depth + 1, out, error),
            Inner::Script(s) => walk_script(&s, depth + 1, out, error),
        }
    }
}

/// Any deny is a deny; else any ask is an ask; else allow. A decomposition error never allows.
fn combine(parts: Vec<Part>, error: Option<String>) -> Evaluation {
    if let Some(p) = parts.iter().find(|p| p.verdict == Verdict::Deny) {
        return Evaluation {
            verdict: Verdict::Deny,
            reason: p.reason.clone(),
            rule: p.rule.clone(),
            suggestions: vec![],
        };
    }
    if let Some(e) = error {
        return Evaluation {
            verdict: Verdict::Ask,
            reason: format!("the command cannot be checked safely: {e}"),
            rule: None,
            suggestions: vec![],
        };
    }
    if parts.is_empty() {
        return Evaluation {
            verdict: Verdict::Ask,
            reason: "the command is empty".into(),
            rule: None,
            suggestions: vec![],
        };
    }
    if let Some(first) = parts.iter().find(|p| p.verdict == Verdict::Ask) {
        let mut suggestions: Vec<SuggestionGroup> = Vec::new();
        for group in parts.iter().filter_map(|p| p.suggest.clone()) {
            if !group.rules.is_empty() && !suggestions.iter().any(|g| g.subject == group.subject) {
                suggestions.push(group);
            }
        }
        let others = parts.iter().filter(|p| p.verdict == Verdict::Ask).count() - 1;
        let reason = match others {
            0 => first.reason.clone(),
            1 => format!("{} (and 1 more part needs approval)", first.reason),
            n => format!("{} (and {n} more parts need approval)", first.reason),
        };
        return Evaluation {
            verdict: Verdict::Ask,
            reason,
            rule: first.rule.clone(),
            suggestions,
        };
    }
    let reason = match parts.as_slice() {
        [only] => only.reason.clone(),
        many => format!("all {} commands are allowed", many.len()),
    };
    Evaluation {
        verdict: Verdict::Allow,
        reason,
        rule: parts.first().and_then(|p| p.rule.clone()),
        suggestions: vec![],
    }
}
