//! Saved project rules: a policy's `projects_dir` holds one `ID/permissions.json` per project
//! (`gavel allow-for-project` writes them). Policies have no file access, so the host reads
//! these files and hands them to the policy inside its configuration, as `projects.ID`.
//!
//! The host does not interpret the files: each must be a JSON object, and it is merged into
//! whatever the configuration already says for that project (lists appended without
//! duplicates, objects key by key). What the rules mean, and that a global deny stays a floor,
//! is the policy's business.

use crate::error::Error;
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

/// The file a project's saved rules live in.
pub const PERMISSIONS_FILE: &str = "permissions.json";

/// The configuration key the saved rules are merged under.
const KEY: &str = "projects";

/// Whether `name` can be a project id: a plain directory name, not hidden.
fn plain(name: &str) -> bool {
    !name.is_empty() && !name.starts_with('.') && !name.contains(['/', '\\', '\0'])
}

/// The project ids with a directory in `dir`, sorted; none when `dir` does not exist yet.
fn projects(dir: &Path) -> Result<Vec<String>, std::io::Error> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut ids = Vec::new();
    for entry in entries {
        let entry = entry?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if plain(&name) && entry.file_type()?.is_dir() {
            ids.push(name);
        }
    }
    ids.sort();
    Ok(ids)
}

/// What to watch for changes under `dir`: the directory (a project appears), each project's
/// directory (its file is replaced by a rename) and each project's file.
pub(crate) fn watched(dir: &Path) -> Vec<PathBuf> {
    let mut files = vec![dir.to_owned()];
    for id in projects(dir).unwrap_or_default() {
        files.push(dir.join(&id));
        files.push(dir.join(&id).join(PERMISSIONS_FILE));
    }
    files
}

/// Merge every `ID/permissions.json` under `dir` into `config` as `projects.ID`. Errors name
/// the policy, the key and the file.
pub(crate) fn merge_saved(config: &mut Value, dir: &Path, policy: &str) -> Result<(), Error> {
    let fail = |what: String| {
        Error::config_key(
            "projects_dir",
            format!("policy `{policy}`: `projects_dir`: {what}"),
        )
    };
    let ids = projects(dir).map_err(|e| fail(format!("cannot read `{}`: {e}", dir.display())))?;
    let Some(config) = config.as_object_mut() else {
        return Err(fail(
            "the policy's configuration is not a JSON object".into(),
        ));
    };
    let projects = config
        .entry(KEY)
        .or_insert_with(|| Value::Object(Map::new()));
    let Some(projects) = projects.as_object_mut() else {
        return Err(fail(format!(
            "the configuration's `{KEY}` is not an object"
        )));
    };
    for id in ids {
        let path = dir.join(&id).join(PERMISSIONS_FILE);
        let text = match read(&path) {
            Ok(text) => text,
            // A project directory without saved rules yet.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(fail(format!("`{}`: {e}", path.display()))),
        };
        let saved: Value = serde_json::from_slice(&text)
            .map_err(|e| fail(format!("`{}` is not JSON: {e}", path.display())))?;
        if !saved.is_object() {
            return Err(fail(format!("`{}` is not a JSON object", path.display())));
        }
        let entry = projects
            .entry(id)
            .or_insert_with(|| Value::Object(Map::new()));
        merge(entry, saved);
    }
    Ok(())
}

/// Read a whole file through a capability handle on its directory.
fn read(path: &Path) -> std::io::Result<Vec<u8>> {
    let (dir, name) = crate::files::open_parent(path)?;
    dir.read(name)
}

/// `saved` merged into `into`: objects key by key, lists appended without duplicates, any
/// other value replaced.
fn merge(into: &mut Value, saved: Value) {
    match (into, saved) {
        (Value::Object(mine), Value::Object(theirs)) => {
            for (key, value) in theirs {
                match mine.get_mut(&key) {
                    Some(existing) => merge(existing, value),
                    None => {
                        mine.insert(key, value);
                    }
                }
            }
        }
        (Value::Array(mine), Value::Array(theirs)) => {
            for value in theirs {
                if !mine.contains(&value) {
                    mine.push(value);
                }
            }
        }
        (into, saved) => *into = saved,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn saved_rules_merge_under_projects() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("projects");
        std::fs::create_dir_all(root.join("web")).unwrap();
        std::fs::create_dir_all(root.join("empty")).unwrap();
        std::fs::create_dir_all(root.join(".hidden")).unwrap();
        std::fs::write(
            root.join("web").join(PERMISSIONS_FILE),
            r#"{"allow": ["run_command(make *)", "run_command(ls *)"]}"#,
        )
        .unwrap();
        std::fs::write(root.join(".hidden").join(PERMISSIONS_FILE), "{").unwrap();
        let mut config = json!({
            "global": {"deny": ["run_command(rm *)"]},
            "projects": {"web": {"allow": ["run_command(ls *)"]}}
        });
        merge_saved(&mut config, &root, "rules").unwrap();
        assert_eq!(
            config,
            json!({
                "global": {"deny": ["run_command(rm *)"]},
                "projects": {"web": {"allow": ["run_command(ls *)", "run_command(make *)"]}}
            })
        );
        assert_eq!(watched(&root).len(), 5, "{:?}", watched(&root));
    }

    #[test]
    fn a_missing_directory_is_empty_and_a_bad_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = json!({});
        merge_saved(&mut config, &dir.path().join("none"), "rules").unwrap();
        assert_eq!(config, json!({"projects": {}}));
        std::fs::create_dir_all(dir.path().join("web")).unwrap();
        std::fs::write(dir.path().join("web").join(PERMISSIONS_FILE), "[1]").unwrap();
        let e = merge_saved(&mut config, dir.path(), "rules")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("policy `rules`: `projects_dir`") && e.contains("not a JSON object"),
            "{e}"
        );
    }
}
