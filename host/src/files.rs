//! Host file access goes through cap-std: a file is reached through a capability handle on its
//! directory, never through an ambient path below that directory.

use cap_std::ambient_authority;
use cap_std::fs::Dir;
use std::ffi::OsStr;
use std::path::Path;

/// A handle on `path`'s directory (`.` for a bare file name) and the file's name within it.
pub fn open_parent(path: &Path) -> std::io::Result<(Dir, &OsStr)> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path.file_name().ok_or_else(|| {
        std::io::Error::other(format!("`{}` does not name a file", path.display()))
    })?;
    Ok((Dir::open_ambient_dir(dir, ambient_authority())?, name))
}

/// The effective UID of this process: the owner every private path must have (besides root).
pub fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Whether `meta` passes OpenSSH-style `StrictModes`: owned by the effective UID or root, and
/// not writable by group or others. Another user who owns, or may write to, a directory can
/// rename, replace or plant files in it; one who may write a file can forge its contents.
pub fn check_private_meta(path: &Path, meta: &std::fs::Metadata, what: &str) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let me = euid();
    let owner = meta.uid();
    if owner != me && owner != 0 {
        return Err(format!(
            "{what} `{}` is owned by UID {owner}, not by this user (UID {me}) or root; another \
             user could replace what Gavel reads there: run `chown {me} {}` or choose another path",
            path.display(),
            path.display()
        ));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(format!(
            "{what} `{}` is writable by group or others (mode {:o}); another user could replace \
             what Gavel reads there: run `chmod go-w {}`",
            path.display(),
            meta.mode() & 0o7777,
            path.display()
        ));
    }
    Ok(())
}

/// [`check_private_meta`] on `path` itself (a symlink is refused: its target is what would be
/// used, and the link's own owner says nothing about it).
pub fn check_private(path: &Path, what: &str) -> Result<(), crate::error::Error> {
    let meta = std::fs::symlink_metadata(path).map_err(|source| crate::error::Error::Io {
        path: path.to_owned(),
        source,
    })?;
    if meta.file_type().is_symlink() {
        return Err(crate::error::Error::config(format!(
            "{what} `{}` is a symbolic link; name the real path",
            path.display()
        )));
    }
    check_private_meta(path, &meta, what).map_err(crate::error::Error::config)
}

/// The directory that holds `path` (`.` for a bare name).
pub fn parent_of(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Identity of a file: device and inode, to notice a path now naming another file.
pub fn identity(meta: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (meta.dev(), meta.ino())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn group_or_world_writable_is_refused_and_private_is_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, "x").unwrap();
        for (mode, ok) in [(0o600, true), (0o644, true), (0o620, false), (0o602, false)] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let r = check_private(&path, "the test file");
            assert_eq!(r.is_ok(), ok, "mode {mode:o}: {r:?}");
            if let Err(e) = r {
                let e = e.to_string();
                assert!(
                    e.contains(&path.display().to_string()) && e.contains("chmod go-w"),
                    "{e}"
                );
            }
        }
        let link = dir.path().join("l");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        assert!(check_private(&link, "the link").is_err());
    }
}
