//! The one `bindgen!` of the host: generated bindings for `wit/world.wit`, nothing else.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "plugin",
    // `log` traps once a plugin's lines outgrow the output limit.
    imports: { "mathison:plugin/host.log": trappable },
});
