//! The vocabulary every stage shares, and nothing else: the plugin contract's types, objects
//! and their identity, and the Kubernetes rules for names, groups and scopes. It depends on no
//! stage and no command, so each stage (and `apply`) can be read and tested on its own.

pub mod contract;
pub mod k8s;
pub mod object;
pub mod reserved;
