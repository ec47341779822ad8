//! Generated bindings, one module per frozen `gavel:policy` version. Nothing outside
//! `interface` and `engine` sees these types: the host converts to and from its own types at
//! this boundary.

/// `gavel:policy@0.1.0`: local-exec and tool-call actions.
pub(crate) mod v0_1 {
    wasmtime::component::bindgen!({
        path: "../wit/0.1.0",
        world: "policy",
    });
}

/// `gavel:policy@0.2.0`: adds HTTP, CONNECT and upgrade actions, `abstain`, effect and risk
/// classes and approval timeouts.
pub(crate) mod v0_2 {
    wasmtime::component::bindgen!({
        path: "../wit/0.2.0",
        world: "policy",
    });
}
