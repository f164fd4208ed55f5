//! `mathison-host` renders the Kubernetes manifests of Mathison's backing services from
//! WebAssembly component plugins.
//!
//! Data flows one way, one module per stage, strung together only by [`pipeline`]
//! ([`pipeline::render`] for objects, [`pipeline::render_text`] for the text `render` writes):
//!
//! ```text
//! plan → runtime → decode → policy → merge → order → output
//! ```
//!
//! [`plan`] resolves plugin files and the user's configuration ([`values`], [`secret_inputs`]);
//! [`runtime`] (the only module that touches wasmtime) runs each plugin in a sandbox, unless
//! [`memo`] already holds its answer for the same inputs; [`schema`]
//! checks its configuration; [`decode`] turns what it returned into typed Kubernetes objects;
//! [`policy`] refuses what it may not emit; [`merge`] joins all plugins' objects into one set;
//! [`order`] sorts it for installation; [`output`] writes it (and [`memo`] keeps the text, so
//! that an unchanged render skips every stage after [`plan`]), [`krm`] wraps it in a KRM
//! function's `ResourceList`, or [`apply`] takes it to a cluster. Every stage shares [`model`]
//! (the contract's types, objects and the Kubernetes vocabulary) and [`untrusted`] (how plugin
//! text is shown), which depend on no stage. The
//! command line ([`cli`], [`commands`]) sits on top: no stage knows it.

pub mod apply;
pub mod cli;
pub mod commands;
pub mod decode;
pub mod krm;
pub mod memo;
pub mod merge;
pub mod model;
pub mod order;
pub mod output;
pub mod pipeline;
pub mod plan;
pub mod policy;
pub mod project;
pub mod registry;
pub mod runtime;
pub mod schema;
pub mod secret_inputs;
pub mod untrusted;
pub mod values;
