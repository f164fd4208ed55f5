//! The one `bindgen!` of the host: generated bindings for `wit/world.wit`, nothing else.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "plugin",
});
