//! A project's saved rules (`permissions.json`): merged append-only, without duplicates, and
//! written atomically through a directory handle that cannot be escaped.

use cap_std::ambient_authority;
use cap_std::fs::Dir;
use command_rules_core::{Rule, Rules};
use std::io::Write;
use std::path::Path;

/// Why a project's rules were not merged.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A rule or the project id is invalid; the message names it.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A file could not be read or written.
    #[error("cannot access `{}`: {source}", path.display())]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
}

/// The file a project's rules live in.
pub use gavel_host::config::PERMISSIONS_FILE;

/// Merge `add` into `<project_dir>[/<project>]/permissions.json` and return the merged rules.
/// Every rule is checked first; an invalid one is refused by name and nothing is written. A
/// `project` id that is not a single plain directory name is refused.
pub fn allow_for_project(
    project_dir: &Path,
    project: Option<&str>,
    add: &Rules,
) -> Result<Rules, Error> {
    for rule in add.allow.iter().chain(&add.ask).chain(&add.deny) {
        Rule::parse(rule).map_err(|e| Error::Config(e.to_string()))?;
    }
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| Error::Io { path, source }
    };
    let root = Dir::open_ambient_dir(project_dir, ambient_authority()).map_err(io(project_dir))?;
    let dir = match project {
        None => root,
        Some(id) => {
            let plain = !id.is_empty()
                && id != "."
                && id != ".."
                && !id.contains(['/', '\\', '\0'])
                && !id.starts_with('.');
            if !plain {
                return Err(Error::Config(format!(
                    "project id `{id}` is not a plain directory name; it may not contain `/` or start with `.`"
                )));
            }
            root.create_dir_all(id).map_err(io(&project_dir.join(id)))?;
            root.open_dir(id).map_err(io(&project_dir.join(id)))?
        }
    };
    let shown = project.map_or_else(
        || project_dir.join(PERMISSIONS_FILE),
        |id| project_dir.join(id).join(PERMISSIONS_FILE),
    );
    let mut rules = match dir.read_to_string(PERMISSIONS_FILE) {
        Ok(text) => serde_json::from_str::<Rules>(&text).map_err(|e| {
            Error::Config(format!(
                "`{}` is not a rules file ({e}); fix or remove it first",
                shown.display()
            ))
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Rules::default(),
        Err(e) => return Err(io(&shown)(e)),
    };
    rules.merge(add);
    let mut text =
        serde_json::to_string_pretty(&rules).map_err(|e| Error::Config(e.to_string()))?;
    text.push('\n');
    // Write a temporary file, flush it to disk, then rename it over the old one: a reader sees
    // the old rules or the new, never half a file.
    let tmp = format!(".{PERMISSIONS_FILE}.{}.tmp", std::process::id());
    let written = (|| {
        let mut file = dir.create(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        dir.rename(&tmp, &dir, PERMISSIONS_FILE)
    })();
    if let Err(e) = written {
        let _ = dir.remove_file(&tmp);
        return Err(io(&shown)(e));
    }
    Ok(rules)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allow(rules: &[&str]) -> Rules {
        Rules {
            allow: rules.iter().map(|r| (*r).to_owned()).collect(),
            ..Rules::default()
        }
    }

    #[test]
    fn merges_append_only_without_duplicates() {
        let dir = tempfile::tempdir().unwrap();
        allow_for_project(dir.path(), Some("web"), &allow(&["run_command(ls *)"])).unwrap();
        let merged = allow_for_project(
            dir.path(),
            Some("web"),
            &allow(&["run_command(make *)", "run_command(ls *)"]),
        )
        .unwrap();
        assert_eq!(merged.allow, ["run_command(ls *)", "run_command(make *)"]);
        let on_disk: Rules = serde_json::from_str(
            &std::fs::read_to_string(dir.path().join("web/permissions.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(on_disk, merged);
        assert!(
            std::fs::read_dir(dir.path().join("web")).unwrap().count() == 1,
            "no temporary file is left"
        );
    }

    #[test]
    fn escaping_ids_and_bad_rules_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        for id in ["../x", "a/b", "..", ".hidden", ""] {
            let e = allow_for_project(dir.path(), Some(id), &allow(&["run_command(ls *)"]))
                .unwrap_err();
            assert!(
                e.to_string().contains("not a plain directory name"),
                "{id}: {e}"
            );
        }
        let e = allow_for_project(dir.path(), None, &allow(&["run_command(ls *"])).unwrap_err();
        assert!(
            e.to_string().contains("rule `run_command(ls *` is invalid"),
            "{e}"
        );
        assert!(!dir.path().join(PERMISSIONS_FILE).exists());
    }

    #[test]
    fn a_corrupt_file_is_not_clobbered() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(PERMISSIONS_FILE), "{not json").unwrap();
        let e = allow_for_project(dir.path(), None, &allow(&["run_command(ls *)"])).unwrap_err();
        assert!(e.to_string().contains("is not a rules file"), "{e}");
        assert_eq!(
            std::fs::read_to_string(dir.path().join(PERMISSIONS_FILE)).unwrap(),
            "{not json"
        );
    }
}
