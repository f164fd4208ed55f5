//! Objects as the stages after decode know them. What decode learned (the apiVersion, the
//! scope) travels with each object, so merge, output and apply never work it out again from
//! the JSON.

use std::fmt;

use serde_json::Value;

use super::k8s::Scope;

/// The identity of an object in a cluster: two objects with the same id are the same object.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectId {
    pub group: String,
    pub kind: String,
    /// `None` for cluster-scoped objects, and for namespaced ones until merge sets it.
    pub namespace: Option<String>,
    pub name: String,
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind, self.name)
    }
}

/// A checked object in canonical form, as one plugin returned it.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    pub id: ObjectId,
    pub api_version: String,
    pub scope: Scope,
    /// True when the kind is one the host knows and decoded into its k8s-openapi type.
    pub typed: bool,
    pub body: Value,
}

/// An object in the final set, with the plugin (or the host) it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Placed {
    pub origin: String,
    pub id: ObjectId,
    pub api_version: String,
    pub scope: Scope,
    pub body: Value,
}

/// Objects of the core group (`v1`, namespaced, no namespace yet), as the stages' tests use them.
#[cfg(test)]
pub(crate) mod testing {
    use serde_json::Value;

    use super::{Decoded, ObjectId, Placed};
    use crate::model::k8s::Scope;

    fn core_id(kind: &str, name: &str) -> ObjectId {
        ObjectId {
            group: String::new(),
            kind: kind.into(),
            namespace: None,
            name: name.into(),
        }
    }

    pub(crate) fn decoded(kind: &str, name: &str, body: Value) -> Decoded {
        Decoded {
            id: core_id(kind, name),
            api_version: "v1".into(),
            scope: Scope::Namespaced,
            typed: true,
            body,
        }
    }

    pub(crate) fn placed(origin: &str, kind: &str, name: &str, body: Value) -> Placed {
        Placed {
            origin: origin.into(),
            id: core_id(kind, name),
            api_version: "v1".into(),
            scope: Scope::Namespaced,
            body,
        }
    }
}
