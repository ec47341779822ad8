//! Generated bindings for `gavel:policy@0.1.0`. Nothing outside `policy` sees these types: the
//! host converts to and from its own types at this boundary.

wasmtime::component::bindgen!({
    path: "../wit/0.1.0",
    world: "policy",
});
