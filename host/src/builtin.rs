//! Policies shipped inside the `gavel` binary, loadable as `builtin:NAME`.

/// `(name, component bytes)` of every bundled policy. Built by `build.rs` from `guest-policies/`.
const BUILTINS: &[(&str, &[u8])] = &[
    (
        "default-action",
        include_bytes!(concat!(env!("OUT_DIR"), "/components/default-action.wasm")),
    ),
    (
        "command-rules",
        include_bytes!(concat!(env!("OUT_DIR"), "/components/command-rules.wasm")),
    ),
    (
        "http-rules",
        include_bytes!(concat!(env!("OUT_DIR"), "/components/http-rules.wasm")),
    ),
];

/// The component of the bundled policy `name`.
pub(crate) fn lookup(name: &str) -> Option<&'static [u8]> {
    BUILTINS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, bytes)| *bytes)
}

/// Names of the bundled policies.
pub fn names() -> impl Iterator<Item = &'static str> {
    BUILTINS.iter().map(|(n, _)| *n)
}

/// The component bytes of the bundled policy `name`, for `gavel inspect` and friends.
pub fn component(name: &str) -> Option<&'static [u8]> {
    lookup(name)
}
