//! `mathison-host` renders the Kubernetes manifests of Mathison's backing services from
//! WebAssembly component plugins.
//!
//! Data flows one way, one module per stage:
//!
//! ```text
//! plan → runtime → decode → policy → merge → order → output
//! ```
//!
//! [`plan`] resolves plugin files and the user's configuration; [`runtime`] (the only module
//! that touches wasmtime) runs each plugin in a sandbox; [`decode`] turns what a plugin returned
//! into typed Kubernetes objects; [`policy`] refuses what the plugin may not emit; [`merge`]
//! joins all plugins' objects into one set; [`order`] sorts it for installation; [`output`]
//! writes it. [`pipeline`] strings the stages together for the commands in [`commands`];
//! [`apply`] takes the result to a cluster.

pub mod apply;
pub mod cli;
pub mod commands;
pub mod decode;
pub mod merge;
pub mod model;
pub mod order;
pub mod output;
pub mod pipeline;
pub mod plan;
pub mod policy;
pub mod runtime;
pub mod schema;
pub mod secret_inputs;
pub mod untrusted;
pub mod values;
pub mod yaml11;
