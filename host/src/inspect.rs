//! What a policy file is: its world and interface version, imports and exports, size, digest,
//! metadata, and whether this host loads it (`gavel inspect`).

use crate::action::hex;
use crate::engine::{EngineOptions, Runtime};
use crate::policy::{Limits, Policy};
use gavel_componentize::{PolicyMeta, WasmKind, read_meta, wasm_kind};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::sync::Arc;

// What describes a loaded policy, named here, their one public home.
pub use crate::chain::PolicyInfo;
pub use crate::interface::InterfaceVersion;
pub use crate::policy::World;

/// A report on one policy file.
#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    /// `component`, `core-module` or `not-wasm`.
    pub kind: &'static str,
    /// Size in bytes.
    pub size: usize,
    /// SHA-256, lowercase hex: the value to pin in `[[policy]] sha256`.
    pub sha256: String,
    /// The world it implements, when it is a Gavel policy.
    pub world: Option<&'static str>,
    /// The `gavel:policy` package version it was built against.
    pub package_version: Option<String>,
    /// Whether it exports the `manage` hook.
    pub exports_manage: bool,
    /// Its imports, by name.
    pub imports: Vec<String>,
    /// Its exports, by name.
    pub exports: Vec<String>,
    /// Name, version and description stamped by `gavel build`.
    pub name: Option<String>,
    /// The policy's version.
    pub version: Option<String>,
    /// What it does.
    pub description: Option<String>,
    /// `ok`, or why this host refuses it.
    pub loads: Result<(), String>,
    /// It imports WASI, so it loads only as a policy configured `wasi = true` (`--wasi`).
    pub needs_wasi: bool,
}

/// Inspect a file; `config` is the JSON handed to its `init` when trying to load it.
pub fn inspect(bytes: &[u8], config: &str) -> Inspection {
    let meta = match wasm_kind(bytes) {
        WasmKind::NotWasm => PolicyMeta::default(),
        _ => read_meta(bytes),
    };
    let mut report = Inspection {
        kind: match wasm_kind(bytes) {
            WasmKind::Component => "component",
            WasmKind::CoreModule => "core-module",
            WasmKind::NotWasm => "not-wasm",
        },
        size: bytes.len(),
        sha256: hex(&Sha256::digest(bytes)),
        world: None,
        package_version: None,
        exports_manage: false,
        imports: Vec::new(),
        exports: Vec::new(),
        name: (!meta.name.is_empty()).then_some(meta.name),
        version: meta.version,
        description: meta.description,
        loads: Ok(()),
        needs_wasi: false,
    };
    let runtime = match Runtime::new(&EngineOptions::default()) {
        Ok(r) => Arc::new(r),
        Err(e) => {
            report.loads = Err(e);
            return report;
        }
    };
    if wasm_kind(bytes) == WasmKind::Component
        && let Ok(component) = runtime.compile(bytes, &report.sha256)
    {
        let ty = component.component_type();
        report.imports = ty
            .imports(&runtime.engine)
            .map(|(n, _)| n.to_owned())
            .collect();
        report.exports = ty
            .exports(&runtime.engine)
            .map(|(n, _)| n.to_owned())
            .collect();
        let decide = report
            .exports
            .iter()
            .find(|e| e.starts_with("gavel:policy/decide@"));
        report.package_version = decide
            .and_then(|e| e.split_once('@'))
            .map(|(_, v)| v.to_owned());
        report.exports_manage = report
            .exports
            .iter()
            .any(|e| e.starts_with("gavel:policy/manage@"));
    }
    // A policy that imports WASI is tried as `wasi = true` would run it.
    let wasi = report.imports.iter().any(|i| i.starts_with("wasi:"));
    report.needs_wasi = wasi;
    let limits = Limits {
        wasi,
        memory_bytes: if wasi {
            256 << 20
        } else {
            Limits::default().memory_bytes
        },
        ..Limits::default()
    };
    match Policy::load(runtime, "inspected", bytes, config, limits) {
        Ok(policy) => {
            report.world = Some(policy.world().name());
        }
        Err(e) => {
            report.world = match (report.package_version.is_some(), report.exports_manage) {
                (true, true) => Some(World::Policy.name()),
                (true, false) => Some(World::DecidePolicy.name()),
                _ => None,
            };
            report.loads = Err(e.to_string());
        }
    }
    report
}
