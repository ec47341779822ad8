//! Suggestions: rules of escalating generality a human could save to stop being asked, within
//! safety limits: never a rule that would also cover a denied command, only the exact command
//! for programs that destroy, fetch or run code, never a bare-program wildcard for those.

use crate::command::Analysis;
use crate::rule::{Glob, RUN_COMMAND, Rule};
use crate::{Suggestion, SuggestionGroup};

/// The longest prefix offered as `PREFIX *`.
const MAX_PREFIX_WORDS: usize = 4;

/// Suggestions for one command that no rule allows.
pub(crate) fn for_command<'r>(
    a: &Analysis,
    denies: impl Iterator<Item = &'r Rule>,
) -> Option<SuggestionGroup> {
    let denies: Vec<&Rule> = denies.filter(|r| r.tool == RUN_COMMAND).collect();
    if denies.iter().any(|r| r.pattern.is_none()) {
        // A bare `run_command` deny: nothing can be allowed.
        return None;
    }
    if a.reads_code_from_stdin {
        // `sh` or `python` with no arguments runs whatever is piped in: never worth a rule.
        return None;
    }
    let mut rules = vec![Suggestion {
        rule: format!("{RUN_COMMAND}({})", a.written),
        label: format!("allow `{}` in this project", a.written),
    }];
    if !a.exact_only {
        let n = a.words.len();
        // Generalize word by word down to `program subcommand *` (or `program *` for a
        // two-word command), as the reference does, from a prefix of at most
        // `MAX_PREFIX_WORDS` words: a longer prefix is not a rule anyone saves, and offering
        // every prefix of an n-word command costs O(n^2) (a 60 KB `echo a a a ...` took
        // 106 s natively before this bound).
        let min = if n <= 2 { 1 } else { 2 };
        for k in (min..n.min(MAX_PREFIX_WORDS + 1)).rev() {
            let prefix = a.words[..k].join(" ");
            let glob = Glob::command(&format!("{prefix} *"));
            // A pattern broad enough to also match what a deny rule names is never offered.
            if denies.iter().any(|d| {
                d.pattern.as_ref().is_some_and(|p| {
                    glob.matches(&p.text) || glob.matches(p.text.trim_end_matches(" *"))
                })
            }) {
                break;
            }
            rules.push(Suggestion {
                rule: format!("{RUN_COMMAND}({prefix} *)"),
                label: format!("allow `{prefix}` with any arguments in this project"),
            });
        }
    }
    Some(SuggestionGroup {
        subject: a.written.clone(),
        rules,
    })
}

/// Suggestions for a file tool on a resolved path: the file, then its directory tree.
pub(crate) fn for_path(tool: &str, path: &str, project_root: Option<&str>) -> SuggestionGroup {
    // Inside the project, patterns are written relative to it (`/src/x`); elsewhere absolute.
    let (shown, prefix) =
        match project_root.and_then(|root| path.strip_prefix(root.trim_end_matches('/'))) {
            Some(rel) if rel.starts_with('/') => (rel.to_owned(), ""),
            _ => (path.to_owned(), "/"),
        };
    let mut rules = vec![Suggestion {
        rule: format!("{tool}({prefix}{shown})"),
        label: format!("allow {tool} of `{shown}` in this project"),
    }];
    if let Some((dir, _)) = shown.rsplit_once('/')
        && !dir.is_empty()
    {
        rules.push(Suggestion {
            rule: format!("{tool}({prefix}{dir}/**)"),
            label: format!("allow {tool} of anything under `{dir}/` in this project"),
        });
    }
    SuggestionGroup {
        subject: format!("{tool}({path})"),
        rules,
    }
}
