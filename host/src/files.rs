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
