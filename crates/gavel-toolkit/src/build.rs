//! `gavel build`: a Rust policy crate (or an existing module or component) to a checked,
//! metadata-stamped policy component.

use anyhow::{Context, bail};
use gavel_componentize::{componentize, meta_from_cargo_toml};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Build `path` (a crate directory or a `.wasm` file) into a component at `out` (or the
/// default place), and say whether this host loads it.
pub fn build(path: PathBuf, out: Option<PathBuf>) -> anyhow::Result<()> {
    let (bytes, meta, default_out) = if path.is_dir() {
        build_crate(&path)?
    } else if path.extension().is_some_and(|e| e == "wasm") {
        let bytes = crate::read_bytes(&path)?;
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "policy".into());
        (
            bytes,
            None,
            path.with_file_name(format!("{stem}.component.wasm")),
        )
    } else {
        bail!(
            "`{}` is neither a policy crate directory nor a `.wasm` file",
            path.display()
        );
    };
    let component = componentize(&bytes, meta.as_ref())
        .map_err(|e| anyhow::anyhow!("`{}`: {e}", path.display()))?;
    let out = out.unwrap_or(default_out);
    let report = gavel_host::inspect::inspect(&component, "{}");
    std::fs::write(&out, &component)
        .with_context(|| format!("cannot write `{}`", out.display()))?;
    println!(
        "wrote {} ({} bytes, sha256 {})",
        out.display(),
        report.size,
        report.sha256
    );
    match (&report.world, &report.loads) {
        (Some(world), Ok(())) => println!(
            "world `{world}` of gavel:policy@{}; loads under this host",
            report.package_version.as_deref().unwrap_or("?")
        ),
        (_, Err(e)) => {
            eprintln!("warning: this host does not load it as is: {e}");
        }
        (None, Ok(())) => {}
    }
    Ok(())
}

/// The component `gavel build DIR` writes for a policy crate: `DIR/NAME.wasm`.
pub fn crate_output(dir: &Path) -> anyhow::Result<PathBuf> {
    let manifest = dir.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest)
        .with_context(|| format!("cannot read `{}`", manifest.display()))?;
    let meta = meta_from_cargo_toml(&text)
        .with_context(|| format!("`{}` has no `[package] name`", manifest.display()))?;
    Ok(dir.join(format!("{}.wasm", meta.name)))
}

/// `cargo build --release --target wasm32-unknown-unknown` in the crate; the core module, the
/// crate's metadata, and the default output path.
fn build_crate(
    dir: &Path,
) -> anyhow::Result<(Vec<u8>, Option<gavel_componentize::PolicyMeta>, PathBuf)> {
    let manifest = dir.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest)
        .with_context(|| format!("`{}` has no Cargo.toml", dir.display()))?;
    let meta = meta_from_cargo_toml(&text)
        .with_context(|| format!("`{}` has no `[package] name`", manifest.display()))?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(&cargo)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-unknown-unknown",
            "--manifest-path",
        ])
        .arg(&manifest)
        .status()
        .with_context(|| format!("cannot run `{cargo}`"))?;
    if !status.success() {
        bail!("`cargo build` of `{}` failed (see above)", dir.display());
    }
    let metadata = Command::new(&cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--manifest-path",
        ])
        .arg(&manifest)
        .output()
        .with_context(|| format!("cannot run `{cargo} metadata`"))?;
    let metadata: serde_json::Value = serde_json::from_slice(&metadata.stdout)
        .context("`cargo metadata` printed something that is not JSON")?;
    let target = metadata["target_directory"]
        .as_str()
        .context("`cargo metadata` names no target directory")?;
    let lib = meta.name.replace('-', "_");
    let core = PathBuf::from(target)
        .join("wasm32-unknown-unknown/release")
        .join(format!("{lib}.wasm"));
    let bytes = std::fs::read(&core).with_context(|| {
        format!(
            "`{}` was not built; is the crate a `cdylib`?",
            core.display()
        )
    })?;
    let out = dir.join(format!("{}.wasm", meta.name));
    Ok((bytes, Some(meta), out))
}
