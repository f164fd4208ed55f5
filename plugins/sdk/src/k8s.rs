//! Building blocks for a hardened single-replica database: the security settings, Services,
//! NetworkPolicy and StatefulSet that every such plugin renders the same way.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    StatefulSet, StatefulSetPersistentVolumeClaimRetentionPolicy, StatefulSetSpec,
    StatefulSetUpdateStrategy,
};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapVolumeSource, Container, EmptyDirVolumeSource, ExecAction, KeyToPath,
    PersistentVolumeClaim, PersistentVolumeClaimSpec, PodSecurityContext, PodSpec, PodTemplateSpec,
    Probe, SeccompProfile, SecretVolumeSource, SecurityContext, Service, ServicePort, ServiceSpec,
    Volume, VolumeMount, VolumeResourceRequirements,
};
use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort,
    NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::{Context, Output, Quantity};

/// Metadata for a namespaced object in the render's namespace.
pub fn meta(ctx: &Context, name: &str, labels: &BTreeMap<String, String>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        namespace: Some(ctx.namespace.clone()),
        labels: Some(labels.clone()),
        ..Default::default()
    }
}

/// The pod security context of a non-root database image: its own uid/gid, volumes group-owned
/// by `fs_group` (relabelled only when the root does not match, which keeps big volumes fast),
/// and the runtime's default seccomp profile.
pub fn pod_security_context(uid: i64, gid: i64, fs_group: i64) -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(uid),
        run_as_group: Some(gid),
        fs_group: Some(fs_group),
        fs_group_change_policy: Some("OnRootMismatch".to_owned()),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".to_owned(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The container security context: no privilege escalation, no capabilities, a read-only root
/// filesystem (give the container emptyDirs for the paths it writes).
pub fn container_security_context() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        privileged: Some(false),
        read_only_root_filesystem: Some(true),
        run_as_non_root: Some(true),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".to_owned()]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A pod spec with the hardening that does not depend on the image: no service-account token
/// (a database never calls the API server), no service-link environment variables, and the
/// given security context and shutdown budget.
pub fn hardened_pod_spec(
    security_context: PodSecurityContext,
    termination_grace_period_seconds: i64,
    containers: Vec<Container>,
    volumes: Vec<Volume>,
) -> PodSpec {
    PodSpec {
        automount_service_account_token: Some(false),
        enable_service_links: Some(false),
        security_context: Some(security_context),
        termination_grace_period_seconds: Some(termination_grace_period_seconds),
        containers,
        volumes: Some(volumes),
        ..Default::default()
    }
}

/// The checkov skip annotations (`checkov.io/skipN: CHECK=reason`) for an official image that
/// runs as a fixed low uid from a mutable tag; every other check must pass.
pub fn official_image_checkov_skips(uid: i64) -> BTreeMap<String, String> {
    [
        (
            "CKV_K8S_43",
            "the image is configurable; pin a digest through the plugin's image setting",
        ),
        (
            "CKV_K8S_15",
            "IfNotPresent lets the pod restart while the registry is unreachable",
        ),
        (
            "CKV_K8S_40",
            &*format!("the official image runs as uid {uid}, which owns its data files"),
        ),
    ]
    .iter()
    .enumerate()
    .map(|(i, (check, reason))| {
        (
            format!("checkov.io/skip{}", i + 1),
            format!("{check}={reason}"),
        )
    })
    .collect()
}

/// An emptyDir on the node's disk, for a path that a read-only root filesystem makes unwritable.
pub fn empty_dir(name: &str) -> Volume {
    Volume {
        name: name.to_owned(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Default::default()
    }
}

/// A memory-backed emptyDir (`/dev/shm`); it counts against the container's memory limit.
pub fn memory_empty_dir(name: &str, size_limit: &Quantity) -> Volume {
    Volume {
        name: name.to_owned(),
        empty_dir: Some(EmptyDirVolumeSource {
            medium: Some("Memory".to_owned()),
            size_limit: Some(size_limit.into()),
        }),
        ..Default::default()
    }
}

/// A volume of one ConfigMap's keys as files.
pub fn config_map_volume(name: &str, config_map: &str) -> Volume {
    Volume {
        name: name.to_owned(),
        config_map: Some(ConfigMapVolumeSource {
            name: config_map.to_owned(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A volume holding one key of a Secret as the file `file`, mode 0440 (288): readable by the
/// owner and, through the pod's fsGroup, by the container's group only.
pub fn secret_file_volume(name: &str, secret: &str, key: &str, file: &str) -> Volume {
    Volume {
        name: name.to_owned(),
        secret: Some(SecretVolumeSource {
            secret_name: Some(secret.to_owned()),
            items: Some(vec![KeyToPath {
                key: key.to_owned(),
                path: file.to_owned(),
                ..Default::default()
            }]),
            default_mode: Some(0o440),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Mounts volume `name` at `path`.
pub fn mount(name: &str, path: &str, read_only: bool) -> VolumeMount {
    VolumeMount {
        name: name.to_owned(),
        mount_path: path.to_owned(),
        read_only: read_only.then_some(true),
        ..Default::default()
    }
}

/// A probe that runs `command` in the container every `period_seconds`, failing after
/// `failure_threshold` consecutive failures; each run may take up to 5 s.
pub fn exec_probe(command: &[&str], period_seconds: i32, failure_threshold: i32) -> Probe {
    Probe {
        exec: Some(ExecAction {
            command: Some(command.iter().map(|s| (*s).to_owned()).collect()),
        }),
        period_seconds: Some(period_seconds),
        timeout_seconds: Some(5),
        failure_threshold: Some(failure_threshold),
        success_threshold: Some(1),
        ..Default::default()
    }
}

/// A ReadWriteOnce volume claim template.
pub fn volume_claim_template(
    name: &str,
    labels: &BTreeMap<String, String>,
    size: &Quantity,
    storage_class_name: Option<&str>,
) -> PersistentVolumeClaim {
    PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            labels: Some(labels.clone()),
            ..Default::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".to_owned()]),
            storage_class_name: storage_class_name.map(str::to_owned),
            resources: Some(VolumeResourceRequirements {
                requests: Some([("storage".to_owned(), size.into())].into()),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// What a single-replica StatefulSet is made of.
#[derive(Debug)]
pub struct StatefulSetParts {
    /// Its name, also the prefix of its pod's name.
    pub name: String,
    /// Labels of the StatefulSet and its pod.
    pub labels: BTreeMap<String, String>,
    /// The immutable pod selector (a subset of `labels`).
    pub selector: BTreeMap<String, String>,
    /// The governing headless Service.
    pub service_name: String,
    /// Annotations of the StatefulSet and its pod template (e.g. checkov skips).
    pub annotations: BTreeMap<String, String>,
    /// The pod.
    pub pod: PodSpec,
    /// Volume claim templates; their claims are retained when the StatefulSet is deleted or
    /// scaled down, because they hold the data.
    pub volume_claim_templates: Vec<PersistentVolumeClaim>,
}

/// A one-replica StatefulSet with rolling updates that keeps its claims.
pub fn stateful_set(ctx: &Context, parts: StatefulSetParts) -> StatefulSet {
    let mut metadata = meta(ctx, &parts.name, &parts.labels);
    metadata.annotations = Some(parts.annotations.clone());
    StatefulSet {
        metadata,
        spec: Some(StatefulSetSpec {
            replicas: Some(1),
            service_name: Some(parts.service_name),
            selector: LabelSelector {
                match_labels: Some(parts.selector),
                ..Default::default()
            },
            update_strategy: Some(StatefulSetUpdateStrategy {
                type_: Some("RollingUpdate".to_owned()),
                ..Default::default()
            }),
            persistent_volume_claim_retention_policy: Some(
                StatefulSetPersistentVolumeClaimRetentionPolicy {
                    when_deleted: Some("Retain".to_owned()),
                    when_scaled: Some("Retain".to_owned()),
                },
            ),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(parts.labels),
                    annotations: Some(parts.annotations),
                    ..Default::default()
                }),
                spec: Some(parts.pod),
            },
            volume_claim_templates: (!parts.volume_claim_templates.is_empty())
                .then_some(parts.volume_claim_templates),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The port a database listens on, by name and number.
#[derive(Clone, Copy, Debug)]
pub struct NamedPort<'a> {
    /// The container port's name; Services target it by name.
    pub name: &'a str,
    /// The number.
    pub port: i32,
}

fn service(
    ctx: &Context,
    name: &str,
    labels: &BTreeMap<String, String>,
    selector: &BTreeMap<String, String>,
    port: NamedPort<'_>,
    headless: bool,
) -> Service {
    Service {
        metadata: meta(ctx, name, labels),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".to_owned()),
            cluster_ip: headless.then(|| "None".to_owned()),
            publish_not_ready_addresses: headless.then_some(true),
            selector: Some(selector.clone()),
            ports: Some(vec![ServicePort {
                name: Some(port.name.to_owned()),
                port: port.port,
                target_port: Some(IntOrString::String(port.name.to_owned())),
                protocol: Some("TCP".to_owned()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The ClusterIP Service that clients use.
pub fn cluster_ip_service(
    ctx: &Context,
    name: &str,
    labels: &BTreeMap<String, String>,
    selector: &BTreeMap<String, String>,
    port: NamedPort<'_>,
) -> Service {
    service(ctx, name, labels, selector, port, false)
}

/// A NetworkPolicy for the pods matching `selector`: ingress only from pods of the same
/// namespace labelled `client_labels`, on `port`; no egress at all (a database starts no
/// connections, not even DNS).
fn ingress_only_network_policy(
    ctx: &Context,
    name: &str,
    labels: &BTreeMap<String, String>,
    selector: &BTreeMap<String, String>,
    client_labels: &BTreeMap<String, String>,
    port: NamedPort<'_>,
) -> NetworkPolicy {
    NetworkPolicy {
        metadata: meta(ctx, name, labels),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector {
                match_labels: Some(selector.clone()),
                ..Default::default()
            }),
            policy_types: Some(vec!["Ingress".to_owned(), "Egress".to_owned()]),
            ingress: Some(vec![NetworkPolicyIngressRule {
                from: Some(vec![NetworkPolicyPeer {
                    pod_selector: Some(LabelSelector {
                        match_labels: Some(client_labels.clone()),
                        ..Default::default()
                    }),
                    ..Default::default()
                }]),
                ports: Some(vec![NetworkPolicyPort {
                    protocol: Some("TCP".to_owned()),
                    port: Some(IntOrString::Int(port.port)),
                    ..Default::default()
                }]),
            }]),
            egress: None,
        }),
    }
}

/// How clients reach a single-port database: the pods that serve it and the pods that may
/// connect to them.
#[derive(Clone, Copy, Debug)]
pub struct DatabaseNetwork<'a> {
    /// Name of the ClusterIP Service that clients use, and of the NetworkPolicy.
    pub name: &'a str,
    /// Name of the headless Service: the StatefulSet's `serviceName`.
    pub headless: &'a str,
    /// Labels of the three objects.
    pub labels: &'a BTreeMap<String, String>,
    /// Labels of the database's pods.
    pub selector: &'a BTreeMap<String, String>,
    /// Labels a client pod must carry to connect.
    pub client_labels: &'a BTreeMap<String, String>,
    pub port: NamedPort<'a>,
}

/// Adds what every single-port database needs on the network: its headless Service, its
/// ClusterIP Service and its ingress-only NetworkPolicy.
pub fn push_database_network(out: &mut Output, ctx: &Context, network: DatabaseNetwork<'_>) {
    let DatabaseNetwork {
        name,
        headless,
        labels,
        selector,
        client_labels,
        port,
    } = network;
    // The headless Service governs the StatefulSet: stable per-pod DNS, published before the
    // pod is ready so that peers and init tooling can resolve it.
    out.push(service(ctx, headless, labels, selector, port, true))
        .push(cluster_ip_service(ctx, name, labels, selector, port))
        .push(ingress_only_network_policy(
            ctx,
            name,
            labels,
            selector,
            client_labels,
            port,
        ));
}
