//! What a plugin may emit.
//!
//! A plugin may emit only the kinds it declared in `info`, only into the render namespace, and
//! never an object the user owns (by default the Secret `mathison-secrets`) or the host makes
//! itself. Cluster-scoped objects (and objects of kinds the host does not know, which may be)
//! and RBAC objects can widen what a render can do to a cluster, so each needs the user's
//! explicit opt-in.

use std::collections::HashSet;

use crate::model::contract::KindRef;
use crate::model::k8s::Scope;
use crate::model::object::Decoded;
use crate::model::reserved::PROVENANCE_ANNOTATION;

/// What the user allowed for this render.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub namespace: String,
    pub allow_cluster_scoped: bool,
    pub allow_rbac: bool,
    /// Objects (kind, name) in the render namespace that belong to the user.
    pub user_owned: Vec<(String, String)>,
    /// Objects (kind, name) in the render namespace that the host makes itself.
    pub host_owned: Vec<(String, String)>,
}

/// The kinds a plugin declared, for a lookup per object that does not grow with their number.
#[derive(Debug, Clone, Default)]
pub struct DeclaredKinds(HashSet<KindRef>);

impl DeclaredKinds {
    pub fn new(kinds: &[KindRef]) -> Self {
        Self(kinds.iter().cloned().collect())
    }

    fn contains(&self, api_version: &str, kind: &str) -> bool {
        // Declared lists are small; the key is built only for the lookup.
        self.0.contains(&KindRef {
            api_version: api_version.to_string(),
            kind: kind.to_string(),
        })
    }

    /// A few of the declared kinds, sorted, for a message of bounded length.
    fn sample(&self) -> String {
        const SHOWN: usize = 10;
        let mut kinds: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        kinds.sort();
        let more = kinds.len().saturating_sub(SHOWN);
        kinds.truncate(SHOWN);
        let mut shown = list(kinds.into_iter());
        if more > 0 {
            shown.push_str(&format!(" and {more} more"));
        }
        shown
    }
}

/// A refused object, with the reason and what the user can do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{plugin}: {object}: {reason}")]
pub struct PolicyError {
    pub plugin: String,
    pub object: String,
    pub reason: String,
}

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

impl Policy {
    /// Checks one decoded object of `plugin`, which declared `declared` kinds.
    pub fn check(
        &self,
        plugin: &str,
        declared: &DeclaredKinds,
        object: &Decoded,
    ) -> Result<(), PolicyError> {
        self.violation(declared, object).map_or(Ok(()), |reason| {
            Err(PolicyError {
                plugin: plugin.to_string(),
                object: object.id.to_string(),
                reason,
            })
        })
    }

    fn violation(&self, declared: &DeclaredKinds, object: &Decoded) -> Option<String> {
        let id = &object.id;
        if !declared.contains(&object.api_version, &id.kind) {
            return Some(format!(
                "the plugin did not declare {}/{} in its `info` kinds (declared: {}); \
                 a plugin may emit only what it declares",
                object.api_version,
                id.kind,
                declared.sample()
            ));
        }
        if id.group == RBAC_GROUP && !self.allow_rbac {
            return Some(format!(
                "RBAC objects grant permissions in the cluster and are refused by default; \
                 review the plugin and pass --allow-rbac to accept its {}",
                id.kind
            ));
        }
        match object.scope {
            Scope::Cluster if !self.allow_cluster_scoped => {
                return Some(format!(
                    "{} is cluster-scoped and could affect the whole cluster; review the plugin \
                     and pass --allow-cluster-scoped to accept it",
                    id.kind
                ));
            }
            Scope::Unknown if !self.allow_cluster_scoped => {
                return Some(format!(
                    "the host does not know the kind {}/{}, so it may be cluster-scoped and \
                     could affect the whole cluster; review the plugin and pass \
                     --allow-cluster-scoped to accept it",
                    object.api_version, id.kind
                ));
            }
            _ => {}
        }
        if object.scope != Scope::Cluster
            && let Some(namespace) = &id.namespace
            && namespace != &self.namespace
        {
            return Some(format!(
                "it targets namespace {namespace:?}, but this render is for {:?} \
                 (--namespace); plugins must use the namespace they are given",
                self.namespace
            ));
        }
        let annotations = object.body.pointer("/metadata/annotations");
        if annotations.is_some_and(|a| a.get(PROVENANCE_ANNOTATION).is_some()) {
            return Some(format!(
                "it sets the annotation {PROVENANCE_ANNOTATION}, which only mathison-host writes \
                 (--provenance), so that it tells truly what made an object"
            ));
        }
        if object.scope != Scope::Cluster {
            let named = |owned: &Vec<(String, String)>| {
                owned
                    .iter()
                    .any(|(kind, name)| *kind == id.kind && *name == id.name)
            };
            if named(&self.user_owned) {
                return Some(format!(
                    "{id} belongs to the user (--user-owned); a plugin may reference it but \
                     never create or overwrite it"
                ));
            }
            if named(&self.host_owned) {
                return Some(format!(
                    "{id} is made by mathison-host itself; a plugin may reference it but never \
                     create or overwrite it"
                ));
            }
        }
        None
    }
}

fn list(items: impl Iterator<Item = String>) -> String {
    let items: Vec<String> = items.collect();
    if items.is_empty() {
        "none".to_string()
    } else {
        items.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::object::ObjectId;
    use serde_json::json;

    fn policy() -> Policy {
        Policy {
            namespace: "mathison-system".into(),
            allow_cluster_scoped: false,
            allow_rbac: false,
            user_owned: vec![("Secret".into(), "mathison-secrets".into())],
            host_owned: vec![("ConfigMap".into(), "mathison-connections".into())],
        }
    }

    fn object(
        api_version: &str,
        kind: &str,
        name: &str,
        namespace: Option<&str>,
        scope: Scope,
    ) -> Decoded {
        Decoded {
            id: ObjectId {
                group: crate::model::k8s::group_of(api_version).into(),
                kind: kind.into(),
                namespace: namespace.map(Into::into),
                name: name.into(),
            },
            api_version: api_version.into(),
            scope,
            typed: true,
            body: json!({}),
        }
    }

    fn kinds(list: &[(&str, &str)]) -> DeclaredKinds {
        let kinds: Vec<KindRef> = list
            .iter()
            .map(|(a, k)| KindRef {
                api_version: (*a).into(),
                kind: (*k).into(),
            })
            .collect();
        DeclaredKinds::new(&kinds)
    }

    fn reason(policy: &Policy, declared: &DeclaredKinds, object: &Decoded) -> String {
        match policy.check("p.wasm", declared, object) {
            Ok(()) => String::new(),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn a_plugin_cannot_write_the_provenance_annotation() {
        let mut cm = object("v1", "ConfigMap", "x", None, Scope::Namespaced);
        cm.body = json!({"metadata": {"annotations": {PROVENANCE_ANNOTATION: "forged"}}});
        let declared = kinds(&[("v1", "ConfigMap")]);
        assert!(reason(&policy(), &declared, &cm).contains("only mathison-host writes"));
        cm.body = json!({"metadata": {"annotations": {"mathison.dev/other": "fine"}}});
        assert_eq!(reason(&policy(), &declared, &cm), "");
    }

    #[test]
    fn accepts_declared_kinds_in_the_render_namespace() {
        let cm = object(
            "v1",
            "ConfigMap",
            "x",
            Some("mathison-system"),
            Scope::Namespaced,
        );
        assert_eq!(
            policy().check("p", &kinds(&[("v1", "ConfigMap")]), &cm),
            Ok(())
        );
        let unset = object("v1", "ConfigMap", "x", None, Scope::Namespaced);
        assert_eq!(
            policy().check("p", &kinds(&[("v1", "ConfigMap")]), &unset),
            Ok(())
        );
    }

    #[test]
    fn refuses_undeclared_kinds_listing_a_bounded_sample() {
        let cm = object("v1", "ConfigMap", "x", None, Scope::Namespaced);
        assert!(
            reason(&policy(), &kinds(&[("v1", "Secret")]), &cm)
                .contains("did not declare v1/ConfigMap")
        );
        let many: Vec<(String, String)> = (0..10_000)
            .map(|i| ("example.com/v1".to_string(), format!("Kind{i}")))
            .collect();
        let many: Vec<(&str, &str)> = many.iter().map(|(a, k)| (a.as_str(), k.as_str())).collect();
        let message = reason(&policy(), &kinds(&many), &cm);
        assert!(
            message.contains("and 9990 more") && message.len() < 1000,
            "{message}"
        );
    }

    #[test]
    fn refuses_other_namespaces() {
        let cm = object(
            "v1",
            "ConfigMap",
            "x",
            Some("kube-system"),
            Scope::Namespaced,
        );
        assert!(reason(&policy(), &kinds(&[("v1", "ConfigMap")]), &cm).contains("\"kube-system\""));
    }

    #[test]
    fn cluster_scoped_and_rbac_need_opt_in() {
        let declared = kinds(&[
            ("v1", "Namespace"),
            ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
        ]);
        let ns = object("v1", "Namespace", "x", None, Scope::Cluster);
        assert!(reason(&policy(), &declared, &ns).contains("--allow-cluster-scoped"));
        let crb = object(
            "rbac.authorization.k8s.io/v1",
            "ClusterRoleBinding",
            "x",
            None,
            Scope::Cluster,
        );
        assert!(reason(&policy(), &declared, &crb).contains("--allow-rbac"));
        let open = Policy {
            allow_cluster_scoped: true,
            allow_rbac: true,
            ..policy()
        };
        assert_eq!(open.check("p", &declared, &crb), Ok(()));
    }

    #[test]
    fn unknown_kinds_count_as_cluster_scoped_even_with_a_namespace() {
        let declared = kinds(&[("admissionregistration.example/v1", "Webhook")]);
        let hook = object(
            "admissionregistration.example/v1",
            "Webhook",
            "x",
            Some("mathison-system"),
            Scope::Unknown,
        );
        assert!(reason(&policy(), &declared, &hook).contains("may be cluster-scoped"));
        let open = Policy {
            allow_cluster_scoped: true,
            ..policy()
        };
        assert_eq!(open.check("p", &declared, &hook), Ok(()));
        let elsewhere = object(
            "admissionregistration.example/v1",
            "Webhook",
            "x",
            Some("kube-system"),
            Scope::Unknown,
        );
        assert!(reason(&open, &declared, &elsewhere).contains("\"kube-system\""));
    }

    #[test]
    fn user_and_host_objects_are_untouchable() {
        let secret = object("v1", "Secret", "mathison-secrets", None, Scope::Namespaced);
        assert!(
            reason(&policy(), &kinds(&[("v1", "Secret")]), &secret).contains("belongs to the user")
        );
        let connections = object(
            "v1",
            "ConfigMap",
            "mathison-connections",
            None,
            Scope::Namespaced,
        );
        assert!(
            reason(&policy(), &kinds(&[("v1", "ConfigMap")]), &connections)
                .contains("made by mathison-host itself")
        );
    }
}
