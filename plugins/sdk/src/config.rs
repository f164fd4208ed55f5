//! Configuration types that several plugins share, with their checks: resources, and the
//! options of a server's pod that every plugin offers the same way: placement (node selector,
//! tolerations, affinity, priority), extra labels, annotations and environment, image pull
//! secrets, an optional PodDisruptionBudget, the client Service's type and the probes' timing.
//! Each type checks itself with field paths and applies itself to what the `k8s` helpers build.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{
    Affinity, Container, EnvVar, LocalObjectReference, PodSpec, Probe, ResourceRequirements,
    Service, Toleration,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::validate::{self, Problems};
use crate::{Context, Quantity};

/// CPU and memory for a container.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    /// What the scheduler reserves for the container.
    pub requests: ResourceList,
    /// The most the container may use: CPU above it is throttled, memory above it is killed.
    /// Each limit must be at least its request.
    pub limits: ResourceList,
}

/// An amount of CPU and of memory.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourceList {
    /// CPU as a Kubernetes quantity, in cores: "250m" is a quarter of one.
    pub cpu: Quantity,
    /// Memory as a Kubernetes quantity, in bytes: "512Mi", "1Gi".
    pub memory: Quantity,
}

impl Resources {
    /// From literal quantities (requests then limits), for a plugin's defaults.
    ///
    /// # Panics
    ///
    /// If a literal is not a quantity; the message names the caller's line.
    #[track_caller]
    pub fn new(
        cpu_request: &'static str,
        memory_request: &'static str,
        cpu_limit: &'static str,
        memory_limit: &'static str,
    ) -> Self {
        Self {
            requests: ResourceList::new(cpu_request, memory_request),
            limits: ResourceList::new(cpu_limit, memory_limit),
        }
    }

    /// Every amount above zero and each limit at least its request; `path` names this field.
    pub fn check(&self, problems: &mut Problems, path: &str) {
        for (name, list) in [("requests", &self.requests), ("limits", &self.limits)] {
            problems.positive(format!("{path}.{name}.cpu"), &list.cpu);
            problems.positive(format!("{path}.{name}.memory"), &list.memory);
        }
        for (resource, request, limit) in [
            ("cpu", &self.requests.cpu, &self.limits.cpu),
            ("memory", &self.requests.memory, &self.limits.memory),
        ] {
            if limit < request {
                problems.add(
                    format!("{path}.limits.{resource}"),
                    format!("the limit \"{limit}\" is below the request \"{request}\""),
                );
            }
        }
    }

    /// The container's `resources`; with `guaranteed`, the requests are the limits, which gives
    /// the pod the Guaranteed QoS class (what a plugin's `guaranteedQoS` option documents).
    pub fn to_k8s_qos(&self, guaranteed: bool) -> ResourceRequirements {
        if guaranteed {
            Self {
                requests: self.limits.clone(),
                limits: self.limits.clone(),
            }
            .to_k8s()
        } else {
            self.to_k8s()
        }
    }

    /// The container's `resources`.
    pub fn to_k8s(&self) -> ResourceRequirements {
        let list = |l: &ResourceList| {
            [
                ("cpu".to_owned(), (&l.cpu).into()),
                ("memory".to_owned(), (&l.memory).into()),
            ]
            .into()
        };
        ResourceRequirements {
            requests: Some(list(&self.requests)),
            limits: Some(list(&self.limits)),
            ..Default::default()
        }
    }
}

impl ResourceList {
    #[track_caller]
    fn new(cpu: &'static str, memory: &'static str) -> Self {
        Self {
            cpu: Quantity::from_static(cpu),
            memory: Quantity::from_static(memory),
        }
    }
}

/// Where the pod runs and what it carries besides the plugin's own settings. (Its shutdown
/// budget is the plugin's own `terminationGracePeriodSeconds`, whose right value depends on
/// the server.)
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct PodOptions {
    /// PriorityClass of the pod (a DNS subdomain), e.g. one that lets the database preempt
    /// batch work rather than wait behind it; null uses the cluster's default priority.
    pub priority_class_name: Option<String>,
    /// Node labels the node must have (`nodeSelector`), e.g. `{workload: database}` for a
    /// dedicated node pool.
    pub node_selector: BTreeMap<String, String>,
    /// Pod tolerations, as in a pod spec (`key`, `operator`, `value`, `effect`,
    /// `tolerationSeconds`), e.g. to run on a tainted database node pool.
    pub tolerations: Vec<Map<String, Value>>,
    /// Pod affinity, as in a pod spec: an object with `nodeAffinity`, `podAffinity` and/or
    /// `podAntiAffinity`, checked against the Kubernetes type (an unknown field is refused).
    /// Empty: none.
    pub affinity: Map<String, Value>,
    /// Extra labels of the pod (not of the StatefulSet or its selector), e.g. for a cost
    /// allocation tool. The plugin's own `app.kubernetes.io/*` labels cannot be overridden.
    pub labels: BTreeMap<String, String>,
    /// Extra annotations of the pod, e.g. for a backup or log agent. Keys the plugin sets
    /// (checkov skips) cannot be overridden.
    pub annotations: BTreeMap<String, String>,
    /// Secrets (names in the namespace, of type kubernetes.io/dockerconfigjson) used to pull
    /// the image from a private registry or mirror.
    pub image_pull_secrets: Vec<String>,
}

impl PodOptions {
    /// Checks every option; `path` names this field, `labels` and `annotations` are what the
    /// plugin sets on the pod itself (they may not be overridden).
    pub fn check(
        &self,
        problems: &mut Problems,
        path: &str,
        labels: &BTreeMap<String, String>,
        annotations: &BTreeMap<String, String>,
    ) {
        if let Some(class) = &self.priority_class_name {
            problems.check(
                format!("{path}.priorityClassName"),
                validate::dns_subdomain(class),
            );
        }
        for (key, value) in &self.node_selector {
            problems.check(
                format!("{path}.nodeSelector.{key}"),
                validate::label_key(key).and(validate::label_value(value)),
            );
        }
        for (i, toleration) in self.tolerations.iter().enumerate() {
            typed::<Toleration>(
                problems,
                &format!("{path}.tolerations[{i}]"),
                &Value::Object(toleration.clone()),
            );
        }
        typed::<Affinity>(
            problems,
            &format!("{path}.affinity"),
            &Value::Object(self.affinity.clone()),
        );
        for (key, value) in &self.labels {
            let path = format!("{path}.labels.{key}");
            if labels.contains_key(key) {
                problems.add(
                    path,
                    format!("{key} is set by the plugin (the selector and the recommended labels)"),
                );
            } else {
                problems.check(
                    path,
                    validate::label_key(key).and(validate::label_value(value)),
                );
            }
        }
        for key in self.annotations.keys() {
            let path = format!("{path}.annotations.{key}");
            if annotations.contains_key(key) {
                problems.add(path, format!("{key} is set by the plugin"));
            } else {
                // Annotation keys have the form of label keys; their values are free.
                problems.check(path, validate::label_key(key));
            }
        }
        for (i, name) in self.image_pull_secrets.iter().enumerate() {
            problems.check(
                format!("{path}.imagePullSecrets[{i}]"),
                validate::dns_subdomain(name),
            );
        }
    }

    /// Sets these options on the StatefulSet's pod template, after the `k8s` helpers built it.
    /// Call [`PodOptions::check`] first: an option that does not decode is left out here.
    pub fn apply(&self, stateful_set: &mut StatefulSet) {
        let Some(template) = stateful_set.spec.as_mut().map(|s| &mut s.template) else {
            return;
        };
        let metadata = template.metadata.get_or_insert_with(Default::default);
        extend(&mut metadata.labels, &self.labels);
        extend(&mut metadata.annotations, &self.annotations);
        let pod: &mut PodSpec = template.spec.get_or_insert_with(Default::default);
        pod.priority_class_name
            .clone_from(&self.priority_class_name);
        extend(&mut pod.node_selector, &self.node_selector);
        let tolerations: Vec<Toleration> = self
            .tolerations
            .iter()
            .filter_map(|t| serde_json::from_value(Value::Object(t.clone())).ok())
            .collect();
        pod.tolerations = (!tolerations.is_empty()).then_some(tolerations);
        pod.affinity = (!self.affinity.is_empty())
            .then(|| serde_json::from_value::<Affinity>(Value::Object(self.affinity.clone())).ok())
            .flatten();
        pod.image_pull_secrets = (!self.image_pull_secrets.is_empty()).then(|| {
            self.image_pull_secrets
                .iter()
                .map(|name| LocalObjectReference { name: name.clone() })
                .collect()
        });
    }
}

fn extend(target: &mut Option<BTreeMap<String, String>>, extra: &BTreeMap<String, String>) {
    if !extra.is_empty() {
        target
            .get_or_insert_with(Default::default)
            .extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
}

/// Decodes `value` as the Kubernetes type `T`, recording a problem at `path` (and the field
/// inside it) if it does not decode or holds a field that `T` does not have: k8s-openapi's
/// decoders skip unknown fields, which would silently drop a misspelt `nodeAfinity`.
pub fn typed<T>(problems: &mut Problems, path: &str, value: &Value) -> Option<T>
where
    T: serde::de::DeserializeOwned + Serialize,
{
    match serde_path_to_error::deserialize::<_, T>(value.clone()) {
        Err(e) => {
            let inner = e.path().to_string();
            let at = if inner == "." {
                path.to_owned()
            } else {
                format!("{path}.{inner}")
            };
            problems.add(at, e.into_inner().to_string());
            None
        }
        Ok(decoded) => {
            let back = serde_json::to_value(&decoded).unwrap_or(Value::Null);
            match unknown_field(value, &back, path) {
                Some(at) => {
                    problems.add(at, "unknown field");
                    None
                }
                None => Some(decoded),
            }
        }
    }
}

/// The path of the first key of `given` that did not survive decoding (`decoded` lacks it).
fn unknown_field(given: &Value, decoded: &Value, path: &str) -> Option<String> {
    match (given, decoded) {
        (Value::Object(given), Value::Object(decoded)) => given.iter().find_map(|(key, value)| {
            let at = format!("{path}.{key}");
            match decoded.get(key) {
                // An explicit null is dropped by the serializer, as the API server drops it.
                None if !value.is_null() => Some(at),
                None => None,
                Some(inner) => unknown_field(value, inner, &at),
            }
        }),
        (Value::Array(given), Value::Array(decoded)) => given
            .iter()
            .zip(decoded)
            .enumerate()
            .find_map(|(i, (g, d))| unknown_field(g, d, &format!("{path}[{i}]"))),
        _ => None,
    }
}

/// An optional PodDisruptionBudget for the server's single pod.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct DisruptionBudget {
    /// Render a PodDisruptionBudget. Off by default: with one replica it can only either block
    /// every voluntary eviction (`maxUnavailable: 0`: `kubectl drain`, node upgrades and the
    /// cluster autoscaler wait until someone deletes the pod by hand, in a maintenance window)
    /// or allow it (`maxUnavailable: 1`: drains go on, and the budget serves policies that
    /// require one per workload). Unhealthy pods may always be evicted
    /// (`unhealthyPodEvictionPolicy: AlwaysAllow`), so a crash-looping server never blocks a drain.
    pub enabled: bool,
    /// How many of the one pod may be evicted at once: 0 or 1 (see `enabled`).
    pub max_unavailable: u8,
}

impl DisruptionBudget {
    /// Allows drains (`maxUnavailable: 1`) once enabled.
    pub fn allowing_drains() -> Self {
        Self {
            enabled: false,
            max_unavailable: 1,
        }
    }

    /// `maxUnavailable` is 0 or 1; `path` names this field.
    pub fn check(&self, problems: &mut Problems, path: &str) {
        if self.max_unavailable > 1 {
            problems.add(
                format!("{path}.maxUnavailable"),
                format!(
                    "must be 0 or 1 for one replica, not {}",
                    self.max_unavailable
                ),
            );
        }
    }

    /// The budget for the pods of `selector`, named `name`, if enabled.
    pub fn to_k8s(
        &self,
        ctx: &Context,
        name: &str,
        labels: &BTreeMap<String, String>,
        selector: &BTreeMap<String, String>,
    ) -> Option<PodDisruptionBudget> {
        self.enabled.then(|| PodDisruptionBudget {
            metadata: crate::k8s::meta(ctx, name, labels),
            spec: Some(PodDisruptionBudgetSpec {
                max_unavailable: Some(IntOrString::Int(self.max_unavailable.into())),
                selector: Some(LabelSelector {
                    match_labels: Some(selector.clone()),
                    ..Default::default()
                }),
                unhealthy_pod_eviction_policy: Some("AlwaysAllow".to_owned()),
                ..Default::default()
            }),
            ..Default::default()
        })
    }
}

/// In external mode (a managed server outside the cluster instead of the plugin's StatefulSet),
/// refuses the in-cluster server's opt-ins: with no pod they would render nothing, and a
/// dropped exporter or budget should not go unnoticed. `service` names the client Service, then
/// an ExternalName alias of the managed server.
pub fn refuse_server_opt_ins(
    problems: &mut Problems,
    service: &str,
    metrics_enabled: bool,
    budget: &DisruptionBudget,
    service_options: &ServiceOptions,
) {
    let unused = "runs beside the in-cluster server, which external mode (external.host) does \
                  not render";
    if metrics_enabled {
        problems.add(
            "metrics.enabled",
            format!("the exporter {unused}; scrape the managed service's own metrics"),
        );
    }
    if budget.enabled {
        problems.add(
            "podDisruptionBudget.enabled",
            format!("the budget guards the pod that {unused}"),
        );
    }
    if service_options.type_ != ServiceType::ClusterIP {
        problems.add(
            "service.type",
            format!(
                "in external mode (external.host) the Service {service} is an ExternalName \
                 alias of the managed server; leave the type at ClusterIP"
            ),
        );
    }
}

/// Checks extra environment variables (`path` names the option): C-identifier names, none of
/// `owned` (the variables the plugin sets, which the server's setup depends on).
pub fn check_extra_env(
    problems: &mut Problems,
    path: &str,
    extra: &BTreeMap<String, String>,
    owned: &[&str],
) {
    for name in extra.keys() {
        let plain = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        let at = format!("{path}.{name}");
        if !plain {
            problems.add(
                at,
                format!("\"{name}\" is not a variable name ([A-Za-z_][A-Za-z0-9_]*)"),
            );
        } else if owned.contains(&name.as_str()) {
            problems.add(at, format!("{name} is set by the plugin"));
        }
    }
}

/// Appends the extra environment variables to `container`'s, after the plugin's own.
pub fn add_extra_env(container: &mut Container, extra: &BTreeMap<String, String>) {
    if extra.is_empty() {
        return;
    }
    container
        .env
        .get_or_insert_with(Vec::new)
        .extend(extra.iter().map(|(name, value)| EnvVar {
            name: name.clone(),
            value: Some(value.clone()),
            ..Default::default()
        }));
}

/// The client Service's type and annotations (the headless Service stays headless).
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct ServiceOptions {
    /// `ClusterIP` (in-cluster clients only), `NodePort` or `LoadBalancer`. The NetworkPolicy
    /// still admits only labelled client pods of the namespace: traffic from a load balancer or
    /// a node port also needs a NetworkPolicy of yours that admits its source addresses.
    #[serde(rename = "type")]
    pub type_: ServiceType,
    /// Annotations of the client Service, e.g. a cloud provider's internal load balancer
    /// (`networking.gke.io/load-balancer-type: Internal`,
    /// `service.beta.kubernetes.io/aws-load-balancer-internal: "true"`).
    pub annotations: BTreeMap<String, String>,
}

/// A Service's type. The variants carry no doc comments, so that the schema is a plain string
/// `enum` (see [`ServiceOptions::type_`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[allow(missing_docs)]
pub enum ServiceType {
    #[default]
    ClusterIP,
    NodePort,
    LoadBalancer,
}

impl ServiceOptions {
    /// Annotation keys are well-formed; `path` names this field.
    pub fn check(&self, problems: &mut Problems, path: &str) {
        for key in self.annotations.keys() {
            problems.check(
                format!("{path}.annotations.{key}"),
                validate::label_key(key),
            );
        }
    }

    /// Sets the type and annotations on the client Service built by the `k8s` helpers.
    pub fn apply(&self, service: &mut Service) {
        extend(&mut service.metadata.annotations, &self.annotations);
        if let Some(spec) = service.spec.as_mut() {
            spec.type_ = Some(
                match self.type_ {
                    ServiceType::ClusterIP => "ClusterIP",
                    ServiceType::NodePort => "NodePort",
                    ServiceType::LoadBalancer => "LoadBalancer",
                }
                .to_owned(),
            );
        }
    }
}

/// When a probe runs and when it fails; the command is the plugin's.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct ProbeTiming {
    /// Seconds between two runs (at least 1).
    pub period_seconds: u16,
    /// Seconds one run may take before it counts as failed (at least 1).
    pub timeout_seconds: u16,
    /// Consecutive failures that fail the probe (at least 1): for liveness, a restart.
    pub failure_threshold: u16,
}

/// Timing of the liveness and readiness probes.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Probes {
    /// The liveness probe: failing it restarts the container. Be slow to kill a database.
    pub liveness: ProbeTiming,
    /// The readiness probe: failing it takes the pod out of the Services' endpoints.
    pub readiness: ProbeTiming,
}

impl ProbeTiming {
    /// Every `period_seconds` (`timeout_seconds` each), failing after `failure_threshold`.
    pub const fn new(period_seconds: u16, timeout_seconds: u16, failure_threshold: u16) -> Self {
        Self {
            period_seconds,
            timeout_seconds,
            failure_threshold,
        }
    }

    /// Every number at least 1; `path` names this field.
    pub fn check(&self, problems: &mut Problems, path: &str) {
        for (name, value) in [
            ("periodSeconds", self.period_seconds),
            ("timeoutSeconds", self.timeout_seconds),
            ("failureThreshold", self.failure_threshold),
        ] {
            if value == 0 {
                problems.add(format!("{path}.{name}"), "must be at least 1");
            }
        }
    }

    /// A probe that runs `command` in the container with this timing (see [`crate::k8s::exec_probe`]).
    pub fn exec_probe(&self, command: &[&str]) -> Probe {
        self.apply(crate::k8s::exec_probe(command, 1, 1))
    }

    /// `probe` with this timing.
    pub fn apply(&self, probe: Probe) -> Probe {
        Probe {
            period_seconds: Some(self.period_seconds.into()),
            timeout_seconds: Some(self.timeout_seconds.into()),
            failure_threshold: Some(self.failure_threshold.into()),
            ..probe
        }
    }
}

impl Probes {
    /// Both probes' timing; `path` names this field.
    pub fn check(&self, problems: &mut Problems, path: &str) {
        self.liveness.check(problems, &format!("{path}.liveness"));
        self.readiness.check(problems, &format!("{path}.readiness"));
    }
}

#[cfg(test)]
mod tests {
    use std::panic;
    use std::sync::{Mutex, PoisonError};

    use super::*;
    use crate::RenderError;

    #[test]
    fn limit_below_request_is_refused_with_its_path() {
        let mut problems = Problems::default();
        Resources::new("1", "1Gi", "500m", "1Gi").check(&mut problems, "resources");
        match problems.finish() {
            Err(RenderError::InvalidConfig(errors)) => {
                assert_eq!(errors.len(), 1);
                assert_eq!(errors[0].path, "resources.limits.cpu");
            }
            other => panic!("expected invalid-config, got {other:?}"),
        }
    }

    /// A typo in a default panics inside `info`; the message must point at the plugin's line,
    /// not at the SDK's or the quantity crate's.
    #[test]
    fn a_bad_literal_panics_at_the_callers_line() {
        static LOCATION: Mutex<Option<String>> = Mutex::new(None);
        panic::set_hook(Box::new(|info| {
            let message = info.payload_as_str().unwrap_or_default();
            if message.starts_with("invalid quantity literal") {
                let location = info.location().map(ToString::to_string);
                *LOCATION.lock().unwrap_or_else(PoisonError::into_inner) = location;
            }
        }));
        let line = line!() + 1;
        let result = panic::catch_unwind(|| Resources::new("1", "1Gi", "2 cores", "1Gi"));
        // Back to the default hook, which the test harness captures.
        drop(panic::take_hook());
        assert!(result.is_err());
        let location = LOCATION
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let here = format!("{}:{line}:", file!());
        assert!(
            location.as_deref().is_some_and(|l| l.starts_with(&here)),
            "the panic is at {location:?}, not at {here}"
        );
    }

    #[test]
    fn equal_values_in_other_units_pass() {
        let mut problems = Problems::default();
        Resources::new("1000m", "1024Mi", "1", "1Gi").check(&mut problems, "resources");
        assert!(problems.finish().is_ok());
    }
}

#[cfg(test)]
mod pod_tests {
    use serde_json::json;

    use super::*;
    use crate::RenderError;

    fn paths(problems: Problems) -> Vec<String> {
        match problems.finish() {
            Ok(()) => Vec::new(),
            Err(RenderError::InvalidConfig(errors)) => errors.into_iter().map(|e| e.path).collect(),
            Err(other) => panic!("unexpected {other:?}"),
        }
    }

    fn options(value: Value) -> PodOptions {
        serde_json::from_value(value).unwrap_or_else(|e| panic!("decodes: {e}"))
    }

    #[test]
    fn checks_each_option_with_its_path() {
        let owned = BTreeMap::from([("app.kubernetes.io/name".to_owned(), "redis".to_owned())]);
        let annotations = BTreeMap::from([("checkov.io/skip1".to_owned(), "x".to_owned())]);
        let bad = options(json!({
            "priorityClassName": "High",
            "nodeSelector": {"pool": "db ssd"},
            "tolerations": [{"key": "db", "operator": "Exists", "efect": "NoSchedule"}],
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpresions": []}]}}},
            "labels": {"app.kubernetes.io/name": "x", "team": "data"},
            "annotations": {"checkov.io/skip1": "y", "backup.velero.io/backup-volumes": "data"},
            "imagePullSecrets": ["Registry"],
        }));
        let mut problems = Problems::default();
        bad.check(&mut problems, "pod", &owned, &annotations);
        assert_eq!(
            paths(problems),
            [
                "pod.priorityClassName",
                "pod.nodeSelector.pool",
                "pod.tolerations[0].efect",
                "pod.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpresions",
                "pod.labels.app.kubernetes.io/name",
                "pod.annotations.checkov.io/skip1",
                "pod.imagePullSecrets[0]",
            ]
        );
        let mut problems = Problems::default();
        let wrong_type = options(json!({"tolerations": [{"tolerationSeconds": "soon"}]}));
        wrong_type.check(&mut problems, "pod", &owned, &annotations);
        assert_eq!(paths(problems), ["pod.tolerations[0].tolerationSeconds"]);
    }

    #[test]
    fn disruption_budget_allows_zero_or_one() {
        let mut problems = Problems::default();
        DisruptionBudget {
            enabled: true,
            max_unavailable: 2,
        }
        .check(&mut problems, "podDisruptionBudget");
        assert_eq!(paths(problems), ["podDisruptionBudget.maxUnavailable"]);
        let ctx = crate::testing::context("ns");
        assert!(
            DisruptionBudget::allowing_drains()
                .to_k8s(&ctx, "x", &BTreeMap::new(), &BTreeMap::new())
                .is_none()
        );
    }

    #[test]
    fn extra_env_refuses_the_plugins_own_names() {
        let mut problems = Problems::default();
        let extra = BTreeMap::from([
            ("PGDATA".to_owned(), "/x".to_owned()),
            ("TZ".to_owned(), "UTC".to_owned()),
            ("1X".to_owned(), String::new()),
        ]);
        check_extra_env(&mut problems, "extraEnv", &extra, &["PGDATA"]);
        assert_eq!(paths(problems), ["extraEnv.1X", "extraEnv.PGDATA"]);
    }

    #[test]
    fn probe_timing_and_service_options() {
        let mut problems = Problems::default();
        Probes {
            liveness: ProbeTiming::new(10, 0, 6),
            readiness: ProbeTiming::new(5, 5, 3),
        }
        .check(&mut problems, "probes");
        ServiceOptions {
            type_: ServiceType::LoadBalancer,
            annotations: BTreeMap::from([("bad key!".to_owned(), String::new())]),
        }
        .check(&mut problems, "service");
        assert_eq!(
            paths(problems),
            [
                "probes.liveness.timeoutSeconds",
                "service.annotations.bad key!"
            ]
        );
        let probe = ProbeTiming::new(7, 3, 9).apply(Probe::default());
        assert_eq!(
            (
                probe.period_seconds,
                probe.timeout_seconds,
                probe.failure_threshold
            ),
            (Some(7), Some(3), Some(9))
        );
    }
}
