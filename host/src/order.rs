//! A stable install order: by kind as Helm installs them (what others depend on first), then
//! by namespace and name. Unknown kinds (custom resources) come last.

use crate::model::object::Placed;

/// Helm's install order (`pkg/release/util/kind_sorter.go`).
const INSTALL_ORDER: &[&str] = &[
    "PriorityClass",
    "Namespace",
    "NetworkPolicy",
    "ResourceQuota",
    "LimitRange",
    "PodSecurityPolicy",
    "PodDisruptionBudget",
    "ServiceAccount",
    "Secret",
    "SecretList",
    "ConfigMap",
    "StorageClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleList",
    "ClusterRoleBinding",
    "ClusterRoleBindingList",
    "Role",
    "RoleList",
    "RoleBinding",
    "RoleBindingList",
    "Service",
    "DaemonSet",
    "Pod",
    "ReplicationController",
    "ReplicaSet",
    "Deployment",
    "HorizontalPodAutoscaler",
    "StatefulSet",
    "Job",
    "CronJob",
    "IngressClass",
    "Ingress",
    "APIService",
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
];

fn rank(kind: &str) -> usize {
    INSTALL_ORDER
        .iter()
        .position(|k| *k == kind)
        .unwrap_or(INSTALL_ORDER.len())
}

/// Sorts objects into install order. Total, so the result never depends on input order.
pub fn sort(objects: &mut [Placed]) {
    objects.sort_by(|a, b| {
        (
            rank(&a.id.kind),
            &a.id.kind,
            &a.id.namespace,
            &a.id.name,
            &a.id.group,
        )
            .cmp(&(
                rank(&b.id.kind),
                &b.id.kind,
                &b.id.namespace,
                &b.id.name,
                &b.id.group,
            ))
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::object::testing;
    use serde_json::Value;

    fn placed(kind: &str, name: &str) -> Placed {
        testing::placed("p", kind, name, Value::Null)
    }

    fn order(mut objects: Vec<Placed>) -> Vec<String> {
        sort(&mut objects);
        objects.iter().map(|o| o.id.to_string()).collect()
    }

    #[test]
    fn kinds_in_helm_order_then_names_then_unknown_kinds() {
        let sorted = order(vec![
            placed("ServiceMonitor", "a"),
            placed("StatefulSet", "redis"),
            placed("Service", "redis"),
            placed("ConfigMap", "b"),
            placed("ConfigMap", "a"),
            placed("Secret", "s"),
            placed("NetworkPolicy", "n"),
            placed("Alpha", "z"),
        ]);
        assert_eq!(
            sorted,
            [
                "NetworkPolicy/n",
                "Secret/s",
                "ConfigMap/a",
                "ConfigMap/b",
                "Service/redis",
                "StatefulSet/redis",
                "Alpha/z",
                "ServiceMonitor/a"
            ]
        );
    }

    #[test]
    fn order_does_not_depend_on_input_order() {
        let forward = vec![
            placed("Service", "a"),
            placed("Service", "b"),
            placed("Job", "c"),
        ];
        let mut backward = forward.clone();
        backward.reverse();
        assert_eq!(order(forward), order(backward));
    }
}
