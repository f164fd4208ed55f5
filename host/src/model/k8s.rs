//! Kubernetes vocabulary that more than one stage needs and that no stage owns: where an
//! object lives (its scope), which kinds are lists, and the limits the API server enforces on
//! metadata and data, so that a render fails where an apply would.

/// The most a ConfigMap's or Secret's data may hold, keys and values together.
pub const MAX_DATA_BYTES: usize = 1 << 20;
/// The most an object's annotations may hold, keys and values together.
pub const MAX_ANNOTATIONS_BYTES: usize = 256 << 10;
/// The longest ConfigMap or Secret key.
pub const MAX_DATA_KEY_LEN: usize = 253;

/// Where objects of a kind live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// In a namespace: the render's.
    Namespaced,
    /// In the whole cluster.
    Cluster,
    /// A kind the host does not know (a custom resource). It may be cluster-scoped, so policy
    /// treats it as such; if it names a namespace, that must be the render's.
    Unknown,
}

impl Scope {
    /// Whether an object of this scope could affect the whole cluster.
    pub fn may_be_cluster_wide(self) -> bool {
        !matches!(self, Scope::Namespaced)
    }
}

/// Every kind the Kubernetes 1.33 API serves, by (group, kind), with its scope; generated from
/// k8s-openapi's `Resource` impls (the scope of a group and kind does not change between its
/// versions). Anything else is [`Scope::Unknown`].
const BUILTIN_SCOPES: &[(&str, &str, Scope)] = &[
    ("", "Binding", Scope::Namespaced),
    ("", "ComponentStatus", Scope::Cluster),
    ("", "ConfigMap", Scope::Namespaced),
    ("", "Endpoints", Scope::Namespaced),
    ("", "Event", Scope::Namespaced),
    ("", "LimitRange", Scope::Namespaced),
    ("", "Namespace", Scope::Cluster),
    ("", "Node", Scope::Cluster),
    ("", "PersistentVolume", Scope::Cluster),
    ("", "PersistentVolumeClaim", Scope::Namespaced),
    ("", "Pod", Scope::Namespaced),
    ("", "PodTemplate", Scope::Namespaced),
    ("", "ReplicationController", Scope::Namespaced),
    ("", "ResourceQuota", Scope::Namespaced),
    ("", "Secret", Scope::Namespaced),
    ("", "Service", Scope::Namespaced),
    ("", "ServiceAccount", Scope::Namespaced),
    (
        "admissionregistration.k8s.io",
        "MutatingAdmissionPolicy",
        Scope::Cluster,
    ),
    (
        "admissionregistration.k8s.io",
        "MutatingAdmissionPolicyBinding",
        Scope::Cluster,
    ),
    (
        "admissionregistration.k8s.io",
        "MutatingWebhookConfiguration",
        Scope::Cluster,
    ),
    (
        "admissionregistration.k8s.io",
        "ValidatingAdmissionPolicy",
        Scope::Cluster,
    ),
    (
        "admissionregistration.k8s.io",
        "ValidatingAdmissionPolicyBinding",
        Scope::Cluster,
    ),
    (
        "admissionregistration.k8s.io",
        "ValidatingWebhookConfiguration",
        Scope::Cluster,
    ),
    (
        "apiextensions.k8s.io",
        "CustomResourceDefinition",
        Scope::Cluster,
    ),
    ("apiregistration.k8s.io", "APIService", Scope::Cluster),
    ("apps", "ControllerRevision", Scope::Namespaced),
    ("apps", "DaemonSet", Scope::Namespaced),
    ("apps", "Deployment", Scope::Namespaced),
    ("apps", "ReplicaSet", Scope::Namespaced),
    ("apps", "StatefulSet", Scope::Namespaced),
    ("authentication.k8s.io", "SelfSubjectReview", Scope::Cluster),
    ("authentication.k8s.io", "TokenReview", Scope::Cluster),
    (
        "authorization.k8s.io",
        "LocalSubjectAccessReview",
        Scope::Namespaced,
    ),
    (
        "authorization.k8s.io",
        "SelfSubjectAccessReview",
        Scope::Cluster,
    ),
    (
        "authorization.k8s.io",
        "SelfSubjectRulesReview",
        Scope::Cluster,
    ),
    (
        "authorization.k8s.io",
        "SubjectAccessReview",
        Scope::Cluster,
    ),
    ("autoscaling", "HorizontalPodAutoscaler", Scope::Namespaced),
    ("batch", "CronJob", Scope::Namespaced),
    ("batch", "Job", Scope::Namespaced),
    (
        "certificates.k8s.io",
        "CertificateSigningRequest",
        Scope::Cluster,
    ),
    ("certificates.k8s.io", "ClusterTrustBundle", Scope::Cluster),
    ("coordination.k8s.io", "Lease", Scope::Namespaced),
    ("coordination.k8s.io", "LeaseCandidate", Scope::Namespaced),
    ("discovery.k8s.io", "EndpointSlice", Scope::Namespaced),
    ("events.k8s.io", "Event", Scope::Namespaced),
    ("flowcontrol.apiserver.k8s.io", "FlowSchema", Scope::Cluster),
    (
        "flowcontrol.apiserver.k8s.io",
        "PriorityLevelConfiguration",
        Scope::Cluster,
    ),
    (
        "internal.apiserver.k8s.io",
        "StorageVersion",
        Scope::Cluster,
    ),
    ("networking.k8s.io", "IPAddress", Scope::Cluster),
    ("networking.k8s.io", "Ingress", Scope::Namespaced),
    ("networking.k8s.io", "IngressClass", Scope::Cluster),
    ("networking.k8s.io", "NetworkPolicy", Scope::Namespaced),
    ("networking.k8s.io", "ServiceCIDR", Scope::Cluster),
    ("node.k8s.io", "RuntimeClass", Scope::Cluster),
    ("policy", "PodDisruptionBudget", Scope::Namespaced),
    ("rbac.authorization.k8s.io", "ClusterRole", Scope::Cluster),
    (
        "rbac.authorization.k8s.io",
        "ClusterRoleBinding",
        Scope::Cluster,
    ),
    ("rbac.authorization.k8s.io", "Role", Scope::Namespaced),
    (
        "rbac.authorization.k8s.io",
        "RoleBinding",
        Scope::Namespaced,
    ),
    ("resource.k8s.io", "DeviceClass", Scope::Cluster),
    ("resource.k8s.io", "DeviceTaintRule", Scope::Cluster),
    ("resource.k8s.io", "ResourceClaim", Scope::Namespaced),
    (
        "resource.k8s.io",
        "ResourceClaimTemplate",
        Scope::Namespaced,
    ),
    ("resource.k8s.io", "ResourceSlice", Scope::Cluster),
    ("scheduling.k8s.io", "PriorityClass", Scope::Cluster),
    ("storage.k8s.io", "CSIDriver", Scope::Cluster),
    ("storage.k8s.io", "CSINode", Scope::Cluster),
    ("storage.k8s.io", "CSIStorageCapacity", Scope::Namespaced),
    ("storage.k8s.io", "StorageClass", Scope::Cluster),
    ("storage.k8s.io", "VolumeAttachment", Scope::Cluster),
    ("storage.k8s.io", "VolumeAttributesClass", Scope::Cluster),
    (
        "storagemigration.k8s.io",
        "StorageVersionMigration",
        Scope::Cluster,
    ),
];

/// The scope of `kind` in the API group of `api_version`.
pub fn scope_of(api_version: &str, kind: &str) -> Scope {
    let group = group_of(api_version);
    BUILTIN_SCOPES
        .iter()
        .chain(WELL_KNOWN_CUSTOM_SCOPES)
        .find(|(g, k, _)| *g == group && *k == kind)
        .map_or(Scope::Unknown, |(_, _, scope)| *scope)
}

/// Custom resources that backing services commonly ship, whose scope their project fixes: the
/// Prometheus Operator's monitoring objects live beside what they monitor. Knowing them lets a
/// plugin offer a ServiceMonitor without the user opening `--allow-cluster-scoped` for it.
const WELL_KNOWN_CUSTOM_SCOPES: &[(&str, &str, Scope)] = &[
    ("monitoring.coreos.com", "PodMonitor", Scope::Namespaced),
    ("monitoring.coreos.com", "Probe", Scope::Namespaced),
    ("monitoring.coreos.com", "PrometheusRule", Scope::Namespaced),
    ("monitoring.coreos.com", "ServiceMonitor", Scope::Namespaced),
];

/// The API group of an apiVersion: `apps` for `apps/v1`, empty for the core `v1`.
pub fn group_of(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(group, _)| group)
}

/// `kubectl apply` expands a `v1` `List` and any kind named `*List` into the objects in its
/// `items`, so such an object would carry objects past every check.
pub fn is_list_kind(kind: &str) -> bool {
    kind.ends_with("List")
}

/// `v1` or `group/version`, the group a DNS subdomain.
pub fn is_api_version(api_version: &str) -> bool {
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let version_ok = version.starts_with('v')
        && version
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    version_ok && (group.is_empty() || is_dns_subdomain(group))
}

/// A kind: an upper-case letter, then letters and digits, at most 63.
pub fn is_kind(kind: &str) -> bool {
    kind.len() <= 63
        && kind.starts_with(|c: char| c.is_ascii_uppercase())
        && kind.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// A label value: empty, or at most 63 letters, digits, '-', '_' and '.', beginning and ending
/// with a letter or digit.
pub fn is_label_value(value: &str) -> bool {
    value.is_empty() || is_name_part(value, 63)
}

/// A label or annotation key: `[prefix/]name`, the prefix a DNS subdomain, the name as a label
/// value but not empty.
pub fn is_qualified_name(key: &str) -> bool {
    let (prefix, name) = key
        .rsplit_once('/')
        .map_or((None, key), |(p, n)| (Some(p), n));
    prefix.is_none_or(is_dns_subdomain) && is_name_part(name, 63)
}

/// A ConfigMap or Secret key: letters, digits, '-', '_' and '.', at most 253, not `.` or `..`.
pub fn is_data_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= MAX_DATA_KEY_LEN
        && key != "."
        && key != ".."
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn is_name_part(text: &str, max: usize) -> bool {
    let alphanumeric = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_alphanumeric());
    text.len() <= max
        && alphanumeric(text.bytes().next())
        && alphanumeric(text.bytes().last())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// RFC 1123 label: what the API server requires of most names that become DNS labels.
pub fn is_dns_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// RFC 1123 subdomain: dot-separated labels, at most 253 characters.
pub fn is_dns_subdomain(name: &str) -> bool {
    name.len() <= 253 && name.split('.').all(is_dns_label)
}

/// `KIND/NAME`, as `--user-owned` and a project's `userOwned` name an object.
pub fn parse_kind_name(text: &str) -> Result<(String, String), String> {
    text.split_once('/')
        .filter(|(kind, name)| !kind.is_empty() && !name.is_empty())
        .map(|(kind, name)| (kind.to_string(), name.to_string()))
        .ok_or_else(|| format!("{text:?} is not KIND/NAME, e.g. Secret/mathison-secrets"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::Resource;
    use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
    use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
    use k8s_openapi::api::scheduling::v1::PriorityClass;
    use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService;

    #[test]
    fn built_in_kinds_have_their_api_scope() {
        assert_eq!(
            scope_of(ConfigMap::API_VERSION, ConfigMap::KIND),
            Scope::Namespaced
        );
        for (api_version, kind) in [
            (Namespace::API_VERSION, Namespace::KIND),
            (PriorityClass::API_VERSION, PriorityClass::KIND),
            (APIService::API_VERSION, APIService::KIND),
            (
                ValidatingWebhookConfiguration::API_VERSION,
                ValidatingWebhookConfiguration::KIND,
            ),
            ("storage.k8s.io/v1beta1", "StorageClass"),
        ] {
            assert_eq!(scope_of(api_version, kind), Scope::Cluster, "{kind}");
        }
    }

    #[test]
    fn unknown_kinds_have_unknown_scope_even_with_a_familiar_name() {
        assert_eq!(scope_of("example.com/v1", "Widget"), Scope::Unknown);
        // A custom group reusing a built-in kind's name is not that kind.
        assert_eq!(scope_of("evil.example/v1", "ConfigMap"), Scope::Unknown);
        assert!(Scope::Unknown.may_be_cluster_wide());
    }

    #[test]
    fn the_prometheus_operators_monitoring_objects_are_namespaced() {
        assert_eq!(
            scope_of("monitoring.coreos.com/v1", "ServiceMonitor"),
            Scope::Namespaced
        );
        // Only in their own group.
        assert_eq!(scope_of("example.com/v1", "ServiceMonitor"), Scope::Unknown);
    }

    #[test]
    fn metadata_and_data_keys_follow_the_api_rules() {
        assert!(is_qualified_name("app.kubernetes.io/name") && is_qualified_name("tier"));
        assert!(
            !is_qualified_name("Bad_Prefix/x")
                && !is_qualified_name("a/")
                && !is_qualified_name("")
        );
        assert!(is_label_value("") && is_label_value("v1.2_3") && !is_label_value("-x"));
        assert!(!is_label_value(&"a".repeat(64)));
        assert!(is_data_key("init.sql") && is_data_key("REDIS_URL"));
        assert!(!is_data_key("..") && !is_data_key("a/b") && !is_data_key(&"k".repeat(254)));
    }

    #[test]
    fn lists_are_recognised_by_kind() {
        assert!(is_list_kind("List") && is_list_kind("ConfigMapList"));
        assert!(!is_list_kind("ConfigMap"));
    }
}
