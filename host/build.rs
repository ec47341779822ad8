//! Builds every policy crate in `../guest-policies` for `wasm32-unknown-unknown`, turns each core
//! module into a component with `wit-component`, and writes `OUT_DIR/components/NAME.wasm`.
//!
//! The `gavel` binary embeds the bundled policies from there, and tests load the test guests from
//! there (the directory is exported as `GAVEL_GUEST_DIR`), so a plain `cargo build` or
//! `cargo test` on a fresh machine needs nothing but the Rust toolchain.

// The same componentizer `gavel build` uses.
use gavel_componentize as componentize;

use std::error::Error;
use std::path::{Path, PathBuf};
use std::process::Command;

const WASM_TARGET: &str = "wasm32-unknown-unknown";

fn main() -> Result<(), Box<dyn Error>> {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let root = manifest_dir
        .parent()
        .ok_or("host crate has no parent directory")?;
    let guests = root.join("guest-policies");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let components = out_dir.join("components");
    std::fs::create_dir_all(&components)?;

    println!("cargo:rerun-if-changed={}", guests.display());
    println!("cargo:rerun-if-changed={}", root.join("wit").display());
    println!("cargo:rustc-env=GAVEL_GUEST_DIR={}", components.display());

    ensure_wasm_target()?;
    let target_dir = out_dir.join("guest-target");
    for name in policy_crates(&guests)? {
        let started = std::time::Instant::now();
        let core = build_guest(&guests, &target_dir, &name)?;
        // Cargo shows a build script's output only when it fails; a warning line is the one
        // way to tell a first-time builder where the minutes of `gavel-host(build)` went.
        println!(
            "cargo:warning=built the bundled policy `{name}` (wasm32, release) in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        let manifest = std::fs::read_to_string(guests.join(&name).join("Cargo.toml"))?;
        let mut meta = componentize::meta_from_cargo_toml(&manifest);
        if let Some(meta) = &mut meta {
            meta.version
                .get_or_insert_with(|| env!("CARGO_PKG_VERSION").to_owned());
        }
        let component = componentize::componentize(&core, meta.as_ref())
            .map_err(|e| format!("guest `{name}`: {e}"))?;
        std::fs::write(components.join(format!("{name}.wasm")), component)?;
    }
    Ok(())
}

/// Every member of the guest workspace that is a policy (everything but the SDK).
fn policy_crates(guests: &Path) -> Result<Vec<String>, Box<dyn Error>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(guests)? {
        let path = entry?.path();
        let manifest = path.join("Cargo.toml");
        if !manifest.is_file() {
            continue;
        }
        let text = std::fs::read_to_string(&manifest)?;
        if text.contains("crate-type = [\"cdylib\"]") {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .ok_or("guest directory name is not UTF-8")?;
            names.push(name.to_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// One `cargo build -p` per guest, so each gets exactly its own features of the SDK.
fn build_guest(guests: &Path, target_dir: &Path, name: &str) -> Result<Vec<u8>, Box<dyn Error>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(guests)
        .args(["build", "--release", "--target", WASM_TARGET, "-p", name])
        .arg("--target-dir")
        .arg(target_dir);
    // The outer build's flags (sanitizers, coverage, clippy's wrapper) are for the host target.
    for (key, _) in std::env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        let keep = key == "CARGO_HOME"
            || key == "CARGO_MAKEFLAGS"
            || key.starts_with("CARGO_NET_")
            || key.starts_with("CARGO_HTTP_")
            || key.starts_with("CARGO_REGISTRIES_");
        let drop = (key.starts_with("CARGO_") && !keep)
            || matches!(
                key,
                "RUSTFLAGS" | "RUSTDOCFLAGS" | "RUSTC_WRAPPER" | "RUSTC_WORKSPACE_WRAPPER"
            );
        if drop {
            cmd.env_remove(key);
        }
    }
    let output = cmd.output()?;
    if !output.status.success() {
        return Err(format!(
            "building guest policy `{name}` failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    let file = target_dir
        .join(WASM_TARGET)
        .join("release")
        .join(format!("{}.wasm", name.replace('-', "_")));
    Ok(std::fs::read(&file).map_err(|e| format!("reading `{}`: {e}", file.display()))?)
}

/// `rust-toolchain.toml` names the target, but an already-installed toolchain does not always
/// pick it up; add it once rather than fail with "can't find crate for `core`".
fn ensure_wasm_target() -> Result<(), Box<dyn Error>> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let sysroot = Command::new(&rustc).args(["--print", "sysroot"]).output()?;
    let sysroot = PathBuf::from(String::from_utf8(sysroot.stdout)?.trim());
    if sysroot.join("lib/rustlib").join(WASM_TARGET).is_dir() {
        return Ok(());
    }
    let mut rustup = Command::new("rustup");
    rustup.args(["target", "add", WASM_TARGET]);
    if let Ok(toolchain) = std::env::var("RUSTUP_TOOLCHAIN") {
        rustup.args(["--toolchain", &toolchain]);
    }
    match rustup.status() {
        Ok(status) if status.success() => Ok(()),
        _ => Err(format!(
            "the `{WASM_TARGET}` target is missing and `rustup target add {WASM_TARGET}` failed; \
             install it, then build again"
        )
        .into()),
    }
}
