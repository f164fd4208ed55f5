//! What a plugin may emit.
//!
//! A plugin may emit only the kinds it declared in `info`, only into the render namespace, and
//! never an object the user owns (by default the Secret `mathison-secrets`). Cluster-scoped
//! objects and RBAC objects can widen what a render can do to a cluster, so each needs the
//! user's explicit opt-in.

use crate::contract::KindRef;
use crate::decode::Decoded;

/// What the user allowed for this render.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub namespace: String,
    pub allow_cluster_scoped: bool,
    pub allow_rbac: bool,
    /// Objects (kind, name) in the render namespace that belong to the user.
    pub user_owned: Vec<(String, String)>,
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
        declared: &[KindRef],
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

    fn violation(&self, declared: &[KindRef], object: &Decoded) -> Option<String> {
        let id = &object.id;
        if !declared
            .iter()
            .any(|k| k.api_version == object.api_version && k.kind == id.kind)
        {
            return Some(format!(
                "the plugin did not declare {}/{} in its `info` kinds (declared: {}); \
                 a plugin may emit only what it declares",
                object.api_version,
                id.kind,
                list(declared.iter().map(ToString::to_string))
            ));
        }
        if id.group == RBAC_GROUP && !self.allow_rbac {
            return Some(format!(
                "RBAC objects grant permissions in the cluster and are refused by default; \
                 review the plugin and pass --allow-rbac to accept its {}",
                id.kind
            ));
        }
        if !object.namespaced && !self.allow_cluster_scoped {
            return Some(format!(
                "{} is cluster-scoped and could affect the whole cluster; review the plugin and \
                 pass --allow-cluster-scoped to accept it",
                id.kind
            ));
        }
        if object.namespaced
            && let Some(namespace) = &id.namespace
            && namespace != &self.namespace
        {
            return Some(format!(
                "it targets namespace {namespace:?}, but this render is for {:?} \
                 (--namespace); plugins must use the namespace they are given",
                self.namespace
            ));
        }
        if object.namespaced
            && self
                .user_owned
                .iter()
                .any(|(kind, name)| *kind == id.kind && *name == id.name)
        {
            return Some(format!(
                "{} belongs to the user (--user-owned); a plugin may reference it but never \
                 create or overwrite it",
                id
            ));
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
    use crate::decode::ObjectId;
    use serde_json::json;

    fn policy() -> Policy {
        Policy {
            namespace: "mathison-system".into(),
            allow_cluster_scoped: false,
            allow_rbac: false,
            user_owned: vec![("Secret".into(), "mathison-secrets".into())],
        }
    }

    fn object(
        api_version: &str,
        kind: &str,
        name: &str,
        namespace: Option<&str>,
        namespaced: bool,
    ) -> Decoded {
        Decoded {
            id: ObjectId {
                group: crate::decode::group_of(api_version).into(),
                kind: kind.into(),
                namespace: namespace.map(Into::into),
                name: name.into(),
            },
            api_version: api_version.into(),
            namespaced,
            typed: true,
            body: json!({}),
        }
    }

    fn kinds(list: &[(&str, &str)]) -> Vec<KindRef> {
        list.iter()
            .map(|(a, k)| KindRef {
                api_version: (*a).into(),
                kind: (*k).into(),
            })
            .collect()
    }

    fn reason(policy: &Policy, declared: &[KindRef], object: &Decoded) -> String {
        policy
            .check("p.wasm", declared, object)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    }

    #[test]
    fn accepts_declared_kinds_in_the_render_namespace() {
        let cm = object("v1", "ConfigMap", "x", Some("mathison-system"), true);
        assert_eq!(
            policy().check("p", &kinds(&[("v1", "ConfigMap")]), &cm),
            Ok(())
        );
        let unset = object("v1", "ConfigMap", "x", None, true);
        assert_eq!(
            policy().check("p", &kinds(&[("v1", "ConfigMap")]), &unset),
            Ok(())
        );
    }

    #[test]
    fn refuses_undeclared_kinds() {
        let cm = object("v1", "ConfigMap", "x", None, true);
        assert!(
            reason(&policy(), &kinds(&[("v1", "Secret")]), &cm)
                .contains("did not declare v1/ConfigMap")
        );
    }

    #[test]
    fn refuses_other_namespaces() {
        let cm = object("v1", "ConfigMap", "x", Some("kube-system"), true);
        assert!(reason(&policy(), &kinds(&[("v1", "ConfigMap")]), &cm).contains("\"kube-system\""));
    }

    #[test]
    fn cluster_scoped_and_rbac_need_opt_in() {
        let declared = kinds(&[
            ("v1", "Namespace"),
            ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
        ]);
        let ns = object("v1", "Namespace", "x", None, false);
        assert!(reason(&policy(), &declared, &ns).contains("--allow-cluster-scoped"));
        let crb = object(
            "rbac.authorization.k8s.io/v1",
            "ClusterRoleBinding",
            "x",
            None,
            false,
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
    fn user_owned_secret_is_untouchable() {
        let secret = object("v1", "Secret", "mathison-secrets", None, true);
        assert!(
            reason(&policy(), &kinds(&[("v1", "Secret")]), &secret).contains("belongs to the user")
        );
    }
}
