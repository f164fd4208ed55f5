//! Building blocks for a hardened single-replica server: the security settings, Services,
//! NetworkPolicy, StatefulSet, volumes and probes that every such plugin renders the same way.
//!
//! The helpers leave out empty maps (no `annotations: {}`): the API server drops them anyway, so
//! they would only make the rendered manifests differ from what the cluster stores.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    StatefulSet, StatefulSetPersistentVolumeClaimRetentionPolicy, StatefulSetSpec,
    StatefulSetUpdateStrategy,
};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource,
    ExecAction, HTTPGetAction, KeyToPath, PersistentVolumeClaim, PersistentVolumeClaimSpec,
    PodSecurityContext, PodSpec, PodTemplateSpec, Probe, SeccompProfile, SecretVolumeSource,
    SecurityContext, Service, ServicePort, ServiceSpec, TCPSocketAction, Volume, VolumeMount,
    VolumeResourceRequirements,
};
use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort,
    NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::{Context, Output, Quantity};

/// Metadata for a namespaced object in the render's namespace; no `labels` if they are empty.
pub fn meta(ctx: &Context, name: &str, labels: &BTreeMap<String, String>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        namespace: Some(ctx.namespace.clone()),
        labels: non_empty(labels.clone()),
        ..Default::default()
    }
}

/// `None` for an empty map, so that it is left out of the output rather than written as `{}`.
fn non_empty(map: BTreeMap<String, String>) -> Option<BTreeMap<String, String>> {
    (!map.is_empty()).then_some(map)
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

/// The checkov checks that any plugin whose image is a setting, pulled `IfNotPresent`, fails by
/// design, with reasons that hold whatever the image: pass them to [`checkov_skips`].
pub const CONFIGURABLE_IMAGE_CHECKOV_SKIPS: [(&str, &str); 2] = [
    (
        "CKV_K8S_43",
        "the image is configurable; pin a digest through the plugin's image setting",
    ),
    (
        "CKV_K8S_15",
        "IfNotPresent lets the pod restart while the registry is unreachable",
    ),
];

/// The annotations that make checkov skip each `(check, reason)`: `checkov.io/skipN:
/// CHECK=reason`, numbered in order. Give reasons that are true for the plugin's own image;
/// checkov runs every check that is not listed.
pub fn checkov_skips(skips: &[(&str, &str)]) -> BTreeMap<String, String> {
    skips
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

/// The checkov skips of an official image (postgres, redis) that runs as a fixed low uid which
/// owns its data files: [`CONFIGURABLE_IMAGE_CHECKOV_SKIPS`] and CKV_K8S_40 (a uid of 10000 or
/// more). An image that runs as any uid should run as a high one and skip only the former.
pub fn official_image_checkov_skips(uid: i64) -> BTreeMap<String, String> {
    let low_uid = format!("the official image runs as uid {uid}, which owns its data files");
    let [digest, pull_policy] = CONFIGURABLE_IMAGE_CHECKOV_SKIPS;
    checkov_skips(&[digest, pull_policy, ("CKV_K8S_40", &low_uid)])
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

/// A volume of some keys of a Secret, each `(key, file)` as the file `file`, mode 0440 (288):
/// readable by the owner and, through the pod's fsGroup, by the container's group only.
pub fn secret_volume(name: &str, secret: &str, files: &[(&str, &str)]) -> Volume {
    Volume {
        name: name.to_owned(),
        secret: Some(SecretVolumeSource {
            secret_name: Some(secret.to_owned()),
            items: Some(
                files
                    .iter()
                    .map(|(key, file)| KeyToPath {
                        key: (*key).to_owned(),
                        path: (*file).to_owned(),
                        ..Default::default()
                    })
                    .collect(),
            ),
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
    timed_probe(
        Probe {
            exec: Some(ExecAction {
                command: Some(command.iter().map(|s| (*s).to_owned()).collect()),
            }),
            ..Default::default()
        },
        period_seconds,
        failure_threshold,
    )
}

/// A probe that GETs `path` over HTTP from the container's port `port` (by name): a status from
/// 200 to 399 passes. Timing as for [`exec_probe`].
pub fn http_probe(
    path: &str,
    port: NamedPort<'_>,
    period_seconds: i32,
    failure_threshold: i32,
) -> Probe {
    timed_probe(
        Probe {
            http_get: Some(HTTPGetAction {
                path: Some(path.to_owned()),
                port: IntOrString::String(port.name.to_owned()),
                ..Default::default()
            }),
            ..Default::default()
        },
        period_seconds,
        failure_threshold,
    )
}

/// A probe that passes when the container accepts a TCP connection on its port `port` (by
/// name): for a server with no health command or endpoint. Timing as for [`exec_probe`].
pub fn tcp_probe(port: NamedPort<'_>, period_seconds: i32, failure_threshold: i32) -> Probe {
    timed_probe(
        Probe {
            tcp_socket: Some(TCPSocketAction {
                port: IntOrString::String(port.name.to_owned()),
                ..Default::default()
            }),
            ..Default::default()
        },
        period_seconds,
        failure_threshold,
    )
}

/// `check` run every `period_seconds`, up to 5 s each, failing after `failure_threshold`
/// consecutive failures and passing after one success.
fn timed_probe(check: Probe, period_seconds: i32, failure_threshold: i32) -> Probe {
    Probe {
        period_seconds: Some(period_seconds),
        timeout_seconds: Some(5),
        failure_threshold: Some(failure_threshold),
        success_threshold: Some(1),
        ..check
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
            labels: non_empty(labels.clone()),
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
    /// Annotations of the StatefulSet and its pod template (e.g. checkov skips); may be empty.
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
    metadata.annotations = non_empty(parts.annotations.clone());
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
                    labels: non_empty(parts.labels),
                    annotations: non_empty(parts.annotations),
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

/// A port a server listens on, by name and number (TCP).
#[derive(Clone, Copy, Debug)]
pub struct NamedPort<'a> {
    /// The container port's name (at most 15 characters); Services and probes target it by
    /// name, so the number is written only once, in the container.
    pub name: &'a str,
    /// The number.
    pub port: i32,
}

impl NamedPort<'_> {
    /// The container's declaration of this port.
    pub fn container_port(&self) -> ContainerPort {
        ContainerPort {
            name: Some(self.name.to_owned()),
            container_port: self.port,
            protocol: Some("TCP".to_owned()),
            ..Default::default()
        }
    }

    fn service_port(&self) -> ServicePort {
        ServicePort {
            name: Some(self.name.to_owned()),
            port: self.port,
            target_port: Some(IntOrString::String(self.name.to_owned())),
            protocol: Some("TCP".to_owned()),
            ..Default::default()
        }
    }
}

fn service(
    ctx: &Context,
    name: &str,
    labels: &BTreeMap<String, String>,
    selector: &BTreeMap<String, String>,
    ports: &[NamedPort<'_>],
    headless: bool,
) -> Service {
    Service {
        metadata: meta(ctx, name, labels),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".to_owned()),
            cluster_ip: headless.then(|| "None".to_owned()),
            publish_not_ready_addresses: headless.then_some(true),
            selector: Some(selector.clone()),
            ports: Some(ports.iter().map(NamedPort::service_port).collect()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The ClusterIP Service that clients use: each of `ports` on the same number, targeting the
/// pods' container port of the same name.
pub fn cluster_ip_service(
    ctx: &Context,
    name: &str,
    labels: &BTreeMap<String, String>,
    selector: &BTreeMap<String, String>,
    ports: &[NamedPort<'_>],
) -> Service {
    service(ctx, name, labels, selector, ports, false)
}

/// The headless Service that governs a StatefulSet (its `serviceName`): stable per-pod DNS
/// names, published before the pods are ready so that peers and init tooling can resolve them.
pub fn headless_service(
    ctx: &Context,
    name: &str,
    labels: &BTreeMap<String, String>,
    selector: &BTreeMap<String, String>,
    ports: &[NamedPort<'_>],
) -> Service {
    service(ctx, name, labels, selector, ports, true)
}

/// A Service of type `ExternalName`: cluster DNS answers for `name` with a CNAME to `host`, so
/// clients that dial the in-cluster name reach a server outside the cluster. No ports and no
/// selector: it is only a DNS alias, no proxy, so a port here would map nothing (clients use
/// the external server's own port).
pub fn external_name_service(
    ctx: &Context,
    name: &str,
    labels: &BTreeMap<String, String>,
    host: &str,
) -> Service {
    Service {
        metadata: meta(ctx, name, labels),
        spec: Some(ServiceSpec {
            type_: Some("ExternalName".to_owned()),
            external_name: Some(host.to_owned()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A "clients only" NetworkPolicy for the pods matching `selector`: ingress only from pods of
/// the same namespace labelled `client_labels`, on `ports`; no egress at all (a server that
/// starts no connections needs none, not even DNS).
pub fn ingress_only_network_policy(
    ctx: &Context,
    name: &str,
    labels: &BTreeMap<String, String>,
    selector: &BTreeMap<String, String>,
    client_labels: &BTreeMap<String, String>,
    ports: &[NamedPort<'_>],
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
                ports: Some(
                    ports
                        .iter()
                        .map(|port| NetworkPolicyPort {
                            protocol: Some("TCP".to_owned()),
                            port: Some(IntOrString::Int(port.port)),
                            ..Default::default()
                        })
                        .collect(),
                ),
            }]),
            egress: None,
        }),
    }
}

/// How clients reach a single-replica server: the pods that serve it and the pods that may
/// connect to them.
#[derive(Clone, Copy, Debug)]
pub struct DatabaseNetwork<'a> {
    /// Name of the ClusterIP Service that clients use, and of the NetworkPolicy.
    pub name: &'a str,
    /// Name of the headless Service: the StatefulSet's `serviceName`.
    pub headless: &'a str,
    /// Labels of the three objects.
    pub labels: &'a BTreeMap<String, String>,
    /// Labels of the server's pods.
    pub selector: &'a BTreeMap<String, String>,
    /// Labels a client pod must carry to connect.
    pub client_labels: &'a BTreeMap<String, String>,
    /// The ports clients use; both Services expose them all.
    pub ports: &'a [NamedPort<'a>],
}

/// Adds what every single-replica server needs on the network: its [`headless_service`], its
/// [`cluster_ip_service`] and its [`ingress_only_network_policy`].
pub fn push_database_network(out: &mut Output, ctx: &Context, network: DatabaseNetwork<'_>) {
    push_database_network_with(
        out,
        ctx,
        network,
        &crate::config::ServiceOptions::default(),
        None,
    );
}

/// A port of the client Service beside the server's own (an exporter's, say), and the ingress
/// rule that admits who may reach it.
#[derive(Debug, Clone)]
pub struct SidePort<'a> {
    pub port: NamedPort<'a>,
    pub ingress: NetworkPolicyIngressRule,
}

/// [`push_database_network`] with the client Service's type and annotations from `service`,
/// and a [`SidePort`] on the client Service (never on the headless one: it serves the pod's DNS,
/// and a second Service with the port would give scrapers every target twice).
pub fn push_database_network_with(
    out: &mut Output,
    ctx: &Context,
    network: DatabaseNetwork<'_>,
    service: &crate::config::ServiceOptions,
    side: Option<SidePort<'_>>,
) {
    let DatabaseNetwork {
        name,
        headless,
        labels,
        selector,
        client_labels,
        ports,
    } = network;
    let mut policy = ingress_only_network_policy(ctx, name, labels, selector, client_labels, ports);
    let mut client_ports = ports.to_vec();
    if let Some(side) = side {
        client_ports.push(side.port);
        if let Some(spec) = policy.spec.as_mut() {
            spec.ingress.get_or_insert_with(Vec::new).push(side.ingress);
        }
    }
    out.push(headless_service(ctx, headless, labels, selector, ports))
        .push({
            let mut client = cluster_ip_service(ctx, name, labels, selector, &client_ports);
            service.apply(&mut client);
            client
        })
        .push(policy);
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    const API: NamedPort<'static> = NamedPort {
        name: "api",
        port: 9000,
    };
    const CONSOLE: NamedPort<'static> = NamedPort {
        name: "console",
        port: 9001,
    };

    fn to_json(value: impl serde::Serialize) -> Value {
        serde_json::to_value(value).unwrap_or_else(|e| panic!("serializes: {e}"))
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn services_expose_every_port_by_name() {
        let ctx = crate::testing::context("ns");
        let selector = labels(&[("app", "minio")]);
        let ports = [API, CONSOLE];
        let expected_ports = json!([
            { "name": "api", "port": 9000, "protocol": "TCP", "targetPort": "api" },
            { "name": "console", "port": 9001, "protocol": "TCP", "targetPort": "console" },
        ]);
        let cluster_ip = to_json(cluster_ip_service(
            &ctx, "minio", &selector, &selector, &ports,
        ));
        assert_eq!(cluster_ip["spec"]["ports"], expected_ports);
        assert_eq!(cluster_ip["spec"].get("clusterIP"), None);
        let headless = to_json(headless_service(
            &ctx,
            "minio-headless",
            &selector,
            &selector,
            &ports,
        ));
        assert_eq!(headless["spec"]["ports"], expected_ports);
        assert_eq!(headless["spec"]["clusterIP"], "None");
        assert_eq!(headless["spec"]["publishNotReadyAddresses"], true);
    }

    #[test]
    fn a_container_port_matches_its_service_port() {
        assert_eq!(
            to_json(CONSOLE.container_port()),
            json!({ "containerPort": 9001, "name": "console", "protocol": "TCP" })
        );
    }

    #[test]
    fn network_policy_admits_only_clients_on_every_port() {
        let ctx = crate::testing::context("ns");
        let policy = to_json(ingress_only_network_policy(
            &ctx,
            "minio",
            &labels(&[("app", "minio")]),
            &labels(&[("app", "minio")]),
            &labels(&[("minio-client", "true")]),
            &[API, CONSOLE],
        ));
        assert_eq!(
            policy["spec"],
            json!({
                "podSelector": { "matchLabels": { "app": "minio" } },
                "policyTypes": ["Ingress", "Egress"],
                "ingress": [{
                    "from": [{ "podSelector": { "matchLabels": { "minio-client": "true" } } }],
                    "ports": [
                        { "port": 9000, "protocol": "TCP" },
                        { "port": 9001, "protocol": "TCP" },
                    ],
                }],
            })
        );
    }

    #[test]
    fn probes_share_their_timing() {
        let timing = json!({
            "periodSeconds": 10, "timeoutSeconds": 5, "failureThreshold": 6, "successThreshold": 1,
        });
        let with_timing = |check: Value| match (timing.clone(), check) {
            (Value::Object(mut expected), Value::Object(check)) => {
                expected.extend(check);
                Value::Object(expected)
            }
            _ => unreachable!("both are JSON objects"),
        };
        assert_eq!(
            to_json(http_probe("/minio/health/live", API, 10, 6)),
            with_timing(json!({ "httpGet": { "path": "/minio/health/live", "port": "api" } }))
        );
        assert_eq!(
            to_json(tcp_probe(API, 10, 6)),
            with_timing(json!({ "tcpSocket": { "port": "api" } }))
        );
        assert_eq!(
            to_json(exec_probe(&["true"], 10, 6)),
            with_timing(json!({ "exec": { "command": ["true"] } }))
        );
    }

    #[test]
    fn secret_volume_holds_each_key_as_its_file() {
        let volume = to_json(secret_volume(
            "credentials",
            "mathison-secrets",
            &[
                ("minio-root-user", "user"),
                ("minio-root-password", "password"),
            ],
        ));
        assert_eq!(
            volume,
            json!({
                "name": "credentials",
                "secret": {
                    "secretName": "mathison-secrets",
                    "defaultMode": 0o440,
                    "items": [
                        { "key": "minio-root-user", "path": "user" },
                        { "key": "minio-root-password", "path": "password" },
                    ],
                },
            })
        );
    }

    #[test]
    fn checkov_skips_are_numbered_with_the_given_reasons() {
        let skips = checkov_skips(&[
            CONFIGURABLE_IMAGE_CHECKOV_SKIPS[0],
            ("CKV_K8S_40", "any uid works"),
        ]);
        assert_eq!(
            skips,
            labels(&[
                (
                    "checkov.io/skip1",
                    "CKV_K8S_43=the image is configurable; pin a digest through the plugin's \
                     image setting"
                ),
                ("checkov.io/skip2", "CKV_K8S_40=any uid works"),
            ])
        );
        let official = official_image_checkov_skips(999);
        assert_eq!(
            official["checkov.io/skip3"],
            "CKV_K8S_40=the official image runs as uid 999, which owns its data files"
        );
    }

    #[test]
    fn empty_maps_are_left_out() {
        let ctx = crate::testing::context("ns");
        let selector = labels(&[("app", "minio")]);
        let stateful_set = to_json(stateful_set(
            &ctx,
            StatefulSetParts {
                name: "minio".to_owned(),
                labels: selector.clone(),
                selector: selector.clone(),
                service_name: "minio-headless".to_owned(),
                annotations: BTreeMap::new(),
                pod: PodSpec::default(),
                volume_claim_templates: vec![volume_claim_template(
                    "data",
                    &BTreeMap::new(),
                    &Quantity::from_static("1Gi"),
                    None,
                )],
            },
        ));
        assert_eq!(stateful_set["metadata"].get("annotations"), None);
        let template = &stateful_set["spec"]["template"]["metadata"];
        assert_eq!(template, &json!({ "labels": { "app": "minio" } }));
        let claim = &stateful_set["spec"]["volumeClaimTemplates"][0]["metadata"];
        assert_eq!(claim, &json!({ "name": "data" }));
        assert_eq!(
            to_json(meta(&ctx, "minio", &BTreeMap::new())),
            json!({ "name": "minio", "namespace": "ns" })
        );
    }
}
