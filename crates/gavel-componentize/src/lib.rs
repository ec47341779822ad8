//! Turn a core module built with wit-bindgen into a policy component, and stamp a component
//! with the policy's metadata (name, version, description: the standard component metadata
//! sections, read back by `gavel inspect`).
//!
//! A crate of its own so that the host's `build.rs` (which builds the bundled policies), the
//! toolkit's `gavel build` and the host's `inspect` (which reads the metadata back) share one
//! implementation without the host carrying a toolkit API; it uses nothing but `wit-component`,
//! `wasm-metadata` and `wasmparser`.

/// What a policy says about itself; `gavel build` takes it from `Cargo.toml`'s `[package]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyMeta {
    /// The policy's name.
    pub name: String,
    /// Its version.
    pub version: Option<String>,
    /// What it does, in a sentence.
    pub description: Option<String>,
}

/// What a file is, from its first eight bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WasmKind {
    /// A component (the layer-1 binary format).
    Component,
    /// A core module.
    CoreModule,
    /// Anything else.
    NotWasm,
}

/// Classify `bytes` by their header.
pub fn wasm_kind(bytes: &[u8]) -> WasmKind {
    match bytes.get(..8) {
        Some([0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00]) => WasmKind::Component,
        Some([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]) => WasmKind::CoreModule,
        _ => WasmKind::NotWasm,
    }
}

/// A component from `bytes`: a core module is componentized (its wit-bindgen type section names
/// the world); a component is validated and kept. Then `meta`, if any, is stamped on it.
pub fn componentize(bytes: &[u8], meta: Option<&PolicyMeta>) -> Result<Vec<u8>, String> {
    let component = match wasm_kind(bytes) {
        WasmKind::CoreModule => wit_component::ComponentEncoder::default()
            .module(bytes)
            .map_err(|e| format!("the module has no usable component type (was it built with wit-bindgen?): {e:#}"))?
            .validate(true)
            .encode()
            .map_err(|e| format!("the module cannot be made a component: {e:#}"))?,
        WasmKind::Component => {
            wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all())
                .validate_all(bytes)
                .map_err(|e| format!("the component is not valid: {e}"))?;
            bytes.to_vec()
        }
        WasmKind::NotWasm => return Err("the file is not WebAssembly (no `\\0asm` header)".into()),
    };
    let Some(meta) = meta else {
        return Ok(component);
    };
    let mut add = wasm_metadata::AddMetadata::default();
    add.name = wasm_metadata::AddMetadataField::Set(meta.name.clone());
    if let Some(v) = &meta.version {
        add.version = wasm_metadata::AddMetadataField::Set(wasm_metadata::Version::new(v.clone()));
    }
    if let Some(d) = &meta.description {
        add.description =
            wasm_metadata::AddMetadataField::Set(wasm_metadata::Description::new(d.clone()));
    }
    add.processed_by = vec![("gavel".into(), env!("CARGO_PKG_VERSION").into())];
    add.to_wasm(&component)
        .map_err(|e| format!("cannot add metadata: {e:#}"))
}

/// The metadata stamped on a component, if any.
pub fn read_meta(bytes: &[u8]) -> PolicyMeta {
    let Ok(payload) = wasm_metadata::Payload::from_binary(bytes) else {
        return PolicyMeta::default();
    };
    let m = payload.metadata();
    PolicyMeta {
        name: m.name.clone().unwrap_or_default(),
        version: m.version.as_ref().map(ToString::to_string),
        description: m.description.as_ref().map(ToString::to_string),
    }
}

/// `name`, `version` and `description` from a `Cargo.toml`'s `[package]` table (plain
/// `key = "value"` lines; workspace-inherited values are skipped).
pub fn meta_from_cargo_toml(text: &str) -> Option<PolicyMeta> {
    let mut in_package = false;
    let mut meta = PolicyMeta::default();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_package = line == "[package]";
            continue;
        }
        if !in_package {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim();
        let Some(value) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) else {
            continue;
        };
        match key.trim() {
            "name" => meta.name = value.to_owned(),
            "version" => meta.version = Some(value.to_owned()),
            "description" => meta.description = Some(value.to_owned()),
            _ => {}
        }
    }
    (!meta.name.is_empty()).then_some(meta)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The smallest valid component: the header alone.
    const EMPTY_COMPONENT: &[u8] = &[0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];

    #[test]
    fn headers_are_classified() {
        assert_eq!(wasm_kind(EMPTY_COMPONENT), WasmKind::Component);
        assert_eq!(
            wasm_kind(&[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]),
            WasmKind::CoreModule
        );
        assert_eq!(wasm_kind(b"#!/bin/sh"), WasmKind::NotWasm);
        assert_eq!(wasm_kind(b""), WasmKind::NotWasm);
    }

    #[test]
    fn metadata_is_stamped_and_read_back() {
        let meta = PolicyMeta {
            name: "my-policy".into(),
            version: Some("1.2.3".into()),
            description: Some("Says no.".into()),
        };
        let stamped = componentize(EMPTY_COMPONENT, Some(&meta)).unwrap();
        assert_eq!(wasm_kind(&stamped), WasmKind::Component);
        assert_eq!(read_meta(&stamped), meta);
        assert_eq!(read_meta(EMPTY_COMPONENT), PolicyMeta::default());
    }

    #[test]
    fn what_cannot_be_a_component_says_why() {
        let e = componentize(b"not wasm", None).unwrap_err();
        assert!(e.contains("not WebAssembly"), "{e}");
        let mut broken = EMPTY_COMPONENT.to_vec();
        broken.push(0xff);
        let e = componentize(&broken, None).unwrap_err();
        assert!(e.contains("not valid"), "{e}");
    }

    #[test]
    fn cargo_toml_package_fields_are_read() {
        let toml = "[package]\nname = \"p\"\nversion = \"0.2.0\"\ndescription = \"d\"\n\
                    edition.workspace = true\n[dependencies]\nname = \"not-this\"\n";
        let meta = meta_from_cargo_toml(toml).unwrap();
        assert_eq!(meta.name, "p");
        assert_eq!(meta.version.as_deref(), Some("0.2.0"));
        assert_eq!(meta.description.as_deref(), Some("d"));
        assert!(meta_from_cargo_toml("[dependencies]\nname = \"x\"\n").is_none());
    }
}
