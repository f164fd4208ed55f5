//! End-to-end tests of the `mathison-host` binary over real plugins built for wasm32-wasip2
//! (see tests/build.rs). One test binary, with shared support, as ripgrep and wasmtime do.

mod support;

mod apply;
mod argocd;
mod authoring;
mod boundary;
mod cache;
mod cli;
mod determinism;
mod install;
mod krm;
mod limits;
mod memo;
mod registry;
mod render;
mod schema;
