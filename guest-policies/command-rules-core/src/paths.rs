//! Paths: resolving path patterns and arguments, and recognizing sensitive files.

/// Where relative path patterns and arguments are anchored.
#[derive(Debug, Clone, Default)]
pub struct Anchors<'a> {
    /// The project root: `/` at the start of a pattern.
    pub project_root: Option<&'a str>,
    /// The home directory: `~/` at the start of a pattern or path.
    pub home: Option<&'a str>,
    /// The working directory relative arguments are resolved against.
    pub cwd: Option<&'a str>,
}

/// Resolve a path pattern to an absolute pattern: `//x` is `/x`, `/x` is under the project
/// root, `~/x` under home, anything else under the working directory (or project root).
/// `None` when the anchor it needs is unknown: such a rule matches nothing.
pub fn resolve_pattern(pattern: &str, anchors: &Anchors<'_>) -> Option<String> {
    if let Some(rest) = pattern.strip_prefix("//") {
        return Some(format!("/{rest}"));
    }
    if let Some(rest) = pattern.strip_prefix("~/") {
        return anchors.home.map(|h| join(h, rest));
    }
    if let Some(rest) = pattern.strip_prefix('/') {
        return anchors.project_root.map(|r| join(r, rest));
    }
    anchors
        .cwd
        .or(anchors.project_root)
        .map(|base| join(base, pattern))
}

/// Resolve a path argument to a normalized absolute path (lexically: `.` and `..` folded).
pub fn resolve_path(path: &str, anchors: &Anchors<'_>) -> String {
    let absolute = if path.starts_with('/') {
        path.to_owned()
    } else if let Some(rest) = path.strip_prefix("~/") {
        join(anchors.home.unwrap_or("/nonexistent-home"), rest)
    } else {
        join(
            anchors
                .cwd
                .or(anchors.project_root)
                .unwrap_or("/nonexistent-cwd"),
            path,
        )
    };
    normalize(&absolute)
}

fn join(base: &str, rest: &str) -> String {
    format!("{}/{}", base.trim_end_matches('/'), rest)
}

/// Fold `.`, `..` and repeated slashes; never climbs above `/`.
pub fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

/// Whether a path names a file that holds secrets (the reference's `IsSensitivePath`):
/// `.env*`, `*.pem`, `*.key`, `id_rsa*`, `id_ed25519*`, anything in `.ssh/`,
/// `.aws/credentials`, `.netrc`, `.git-credentials`, `.npmrc`, `.pypirc`, `.kube/config`.
pub fn is_sensitive(path: &str) -> bool {
    let path = path.trim_end_matches('/');
    let name = path.rsplit('/').next().unwrap_or(path);
    name.starts_with(".env")
        || name.ends_with(".pem")
        || name.ends_with(".key")
        || name.starts_with("id_rsa")
        || name.starts_with("id_ed25519")
        || matches!(
            name,
            ".netrc" | ".git-credentials" | ".npmrc" | ".pypirc" | ".ssh"
        )
        || path.split('/').any(|part| part == ".ssh")
        || path.ends_with(".aws/credentials")
        || path.ends_with(".kube/config")
}

/// Whether a command word mentions a sensitive path, as itself or as the value of an
/// `--option=value` or `VAR=value`.
pub fn word_is_sensitive(word: &str) -> bool {
    is_sensitive(word)
        || word
            .split_once('=')
            .is_some_and(|(_, value)| is_sensitive(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sensitive_paths() {
        for p in [
            ".env",
            ".env.local",
            "app/.env",
            "cert.pem",
            "server.key",
            "/home/u/.ssh/id_rsa",
            "~/.ssh/config",
            "id_ed25519.pub",
            "~/.aws/credentials",
            ".netrc",
            ".git-credentials",
            ".npmrc",
            ".pypirc",
            "/root/.kube/config",
            "~/.ssh",
        ] {
            assert!(is_sensitive(p), "{p}");
        }
        for p in [
            "src/main.rs",
            "environment.md",
            "keys.txt",
            "README",
            ".kube/cache",
        ] {
            assert!(!is_sensitive(p), "{p}");
        }
        assert!(word_is_sensitive("--env-file=.env"));
    }

    #[test]
    fn patterns_resolve_by_prefix() {
        let a = Anchors {
            project_root: Some("/p"),
            home: Some("/home/u"),
            cwd: Some("/p/src"),
        };
        assert_eq!(resolve_pattern("//etc/*", &a).unwrap(), "/etc/*");
        assert_eq!(resolve_pattern("/src/**", &a).unwrap(), "/p/src/**");
        assert_eq!(resolve_pattern("~/notes/*", &a).unwrap(), "/home/u/notes/*");
        assert_eq!(resolve_pattern("*.rs", &a).unwrap(), "/p/src/*.rs");
        let none = Anchors::default();
        assert_eq!(resolve_pattern("/src/**", &none), None);
    }

    #[test]
    fn paths_are_normalized() {
        let a = Anchors {
            project_root: Some("/p"),
            home: Some("/home/u"),
            cwd: Some("/p/src"),
        };
        assert_eq!(resolve_path("../secrets/../x.txt", &a), "/p/x.txt");
        assert_eq!(resolve_path("~/a", &a), "/home/u/a");
        assert_eq!(resolve_path("/../../etc/passwd", &a), "/etc/passwd");
    }
}
