//! Gavel's toolkit for policy authors and projects: what the `gavel` command does beyond
//! running the sidecar, as a library.
//!
//! - [`build`]: a policy crate (or a core module) to a checked, metadata-stamped component
//!   (`gavel build`);
//! - [`fixtures`]: the fixture runner (`gavel test`);
//! - [`templates`]: a new policy crate that builds and passes its fixtures (`gavel new`);
//! - [`permissions`]: a project's saved command rules (`gavel allow-for-project`).
//!
//! The runtime (`gavel-host`) loads any policy; only this crate knows a policy's own types
//! (`command-rules-core`).

pub mod build;
pub mod fixtures;
pub mod permissions;
pub mod templates;

/// Open a file for reading through a capability handle on its directory (`.` for a bare
/// name), never through an ambient path below that directory.
pub fn open_file(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    use cap_std::{ambient_authority, fs::Dir};
    let name = path.file_name().ok_or_else(|| {
        std::io::Error::other(format!("`{}` does not name a file", path.display()))
    })?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => std::path::Path::new("."),
    };
    Ok(Dir::open_ambient_dir(dir, ambient_authority())?
        .open(name)?
        .into_std())
}

/// A whole file, read through a capability handle on its directory.
pub fn read_bytes(path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    use anyhow::Context;
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(
        &mut open_file(path).with_context(|| format!("cannot open `{}`", path.display()))?,
        &mut bytes,
    )
    .with_context(|| format!("cannot read `{}`", path.display()))?;
    Ok(bytes)
}
