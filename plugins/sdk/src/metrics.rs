//! An optional Prometheus exporter beside a server (`metrics.enabled`, off by default): the
//! sidecar, its port on the ClusterIP Service, an ingress rule for the scrapers and, optionally,
//! a prometheus-operator ServiceMonitor. A plugin supplies only its [`Exporter`] (port, command
//! line, environment, mounts) and its image.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, EnvVar, VolumeMount};
use k8s_openapi::api::networking::v1::{
    NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::{Resources, ServiceOptions};
use crate::k8s::{self, DatabaseNetwork, NamedPort, SidePort};
use crate::validate::{self, Problems};
use crate::{Context, KindRef, Output};

/// The exporter sidecar. No `serde(default)`: the host (and [`crate::testing::render`]) merge
/// the user's values over the plugin's defaults, which name the plugin's own exporter image, and
/// the schema's defaults come from there too.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Metrics {
    /// Run the exporter beside the server, on the `metrics` port of the pod and of the ClusterIP
    /// Service, with the same hardening as the server.
    pub enabled: bool,
    /// Container image of the exporter; pin a digest for reproducible deployments.
    pub image: String,
    /// CPU and memory of the exporter container. When the server's pod is Guaranteed (requests
    /// equal to limits), the exporter's requests are set to its limits too, as the Guaranteed
    /// class needs them equal in every container.
    pub resources: Resources,
    /// The pods that may scrape the metrics port; the NetworkPolicy refuses every other pod on it,
    /// while the server's own port stays open to `clientLabels` only.
    pub scrape_from: ScrapeFrom,
    /// A prometheus-operator ServiceMonitor for the Service's `metrics` port.
    pub service_monitor: ServiceMonitorSettings,
}

/// Which pods may scrape the metrics port.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct ScrapeFrom {
    /// Labels of the namespaces the scrapers run in; empty means any namespace. For example
    /// `kubernetes.io/metadata.name: monitoring` (a label every namespace carries).
    pub namespace_labels: BTreeMap<String, String>,
    /// Labels of the scraper pods (at least one). The default matches Prometheus as the
    /// prometheus-operator and the prometheus Helm chart label it; values files add keys to it,
    /// so for another scraper set `app.kubernetes.io/name` to that scraper's name.
    pub pod_labels: BTreeMap<String, String>,
}

/// The ServiceMonitor.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct ServiceMonitorSettings {
    /// Render a ServiceMonitor (monitoring.coreos.com/v1; the CRD must be installed). Used only
    /// with `metrics.enabled`.
    pub enabled: bool,
    /// How often Prometheus scrapes, as a Prometheus duration ("30s", "1m30s").
    pub interval: String,
    /// Extra labels of the ServiceMonitor, for a Prometheus whose `serviceMonitorSelector`
    /// wants them (e.g. `release: kube-prometheus-stack`).
    pub labels: BTreeMap<String, String>,
}

impl Metrics {
    /// Off, with `image` as the exporter's image.
    pub fn off(image: &str) -> Self {
        Self {
            enabled: false,
            image: image.to_owned(),
            // An exporter holds one connection and one scrape's answer: 15-20 MiB resident.
            resources: Resources::new("10m", "32Mi", "100m", "64Mi"),
            scrape_from: ScrapeFrom::default(),
            service_monitor: ServiceMonitorSettings::default(),
        }
    }
}

impl Default for ScrapeFrom {
    fn default() -> Self {
        Self {
            namespace_labels: BTreeMap::new(),
            pod_labels: BTreeMap::from([(
                "app.kubernetes.io/name".to_owned(),
                "prometheus".to_owned(),
            )]),
        }
    }
}

impl Default for ServiceMonitorSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            interval: "30s".to_owned(),
            labels: BTreeMap::new(),
        }
    }
}

impl Metrics {
    /// Checked whether enabled or not, so that a bad value is not a surprise on enabling.
    pub fn check(&self, problems: &mut Problems) {
        problems.check("metrics.image", validate::image(&self.image));
        self.resources.check(problems, "metrics.resources");
        labels(
            problems,
            "metrics.scrapeFrom.namespaceLabels",
            &self.scrape_from.namespace_labels,
        );
        validate::selector(
            problems,
            "metrics.scrapeFrom.podLabels",
            &self.scrape_from.pod_labels,
        );
        problems.check(
            "metrics.serviceMonitor.interval",
            duration(&self.service_monitor.interval),
        );
        labels(
            problems,
            "metrics.serviceMonitor.labels",
            &self.service_monitor.labels,
        );
    }

    /// The exporter container, when enabled; with `guaranteed_qos` its requests are its limits.
    pub fn sidecar(&self, guaranteed_qos: bool, exporter: Exporter) -> Option<Container> {
        if !self.enabled {
            return None;
        }
        // The exporters' landing page at `/` answers without querying the server: a server that
        // is down or recovering shows in `pg_up 0` or `redis_up 0`, and restarts neither the
        // exporter nor, through the pod's readiness, takes the server out of its Service.
        let probe = |failures| Some(k8s::http_probe("/", exporter.port, 10, failures));
        Some(Container {
            name: "metrics".to_owned(),
            image: Some(self.image.clone()),
            image_pull_policy: Some("IfNotPresent".to_owned()),
            command: exporter.command,
            args: Some(exporter.args),
            env: Some(exporter.env),
            ports: Some(vec![exporter.port.container_port()]),
            resources: Some(self.resources.to_k8s_qos(guaranteed_qos)),
            security_context: Some(k8s::container_security_context()),
            liveness_probe: probe(6),
            readiness_probe: probe(3),
            // Left out when empty, as the API server would drop `[]`.
            volume_mounts: (!exporter.mounts.is_empty()).then_some(exporter.mounts),
            ..Default::default()
        })
    }

    /// The database's network objects ([`k8s::push_database_network_with`]); when enabled, the
    /// ClusterIP Service also exposes the metrics port, the NetworkPolicy admits `scrapeFrom` to
    /// it (and only to it), and the ServiceMonitor follows if asked for.
    pub fn push_network(
        &self,
        out: &mut Output,
        ctx: &Context,
        network: DatabaseNetwork<'_>,
        port: NamedPort<'static>,
        service: &ServiceOptions,
    ) {
        let (name, labels, selector) = (network.name, network.labels, network.selector);
        let side = self.enabled.then(|| SidePort {
            port,
            ingress: self.scrape_rule(port),
        });
        k8s::push_database_network_with(out, ctx, network, service, side);
        if self.enabled && self.service_monitor.enabled {
            out.push(self.service_monitor(ctx, name, labels, selector, port));
        }
    }

    /// Ingress to the metrics port from `scrapeFrom`: a namespaceSelector and a podSelector in
    /// one peer, so both must match. An empty namespaceSelector (`{}`) is any namespace, whereas
    /// none at all would be the pod's own namespace only.
    fn scrape_rule(&self, port: NamedPort<'static>) -> NetworkPolicyIngressRule {
        let selector = |labels: &BTreeMap<String, String>| LabelSelector {
            match_labels: (!labels.is_empty()).then(|| labels.clone()),
            ..Default::default()
        };
        NetworkPolicyIngressRule {
            from: Some(vec![NetworkPolicyPeer {
                namespace_selector: Some(selector(&self.scrape_from.namespace_labels)),
                pod_selector: Some(selector(&self.scrape_from.pod_labels)),
                ..Default::default()
            }]),
            ports: Some(vec![NetworkPolicyPort {
                protocol: Some("TCP".to_owned()),
                port: Some(IntOrString::Int(port.port)),
                ..Default::default()
            }]),
        }
    }

    /// Selects the Services by the pods' selector labels; of the two it matches, only the
    /// ClusterIP one has a `metrics` port, which is what the endpoint names.
    fn service_monitor(
        &self,
        ctx: &Context,
        name: &str,
        labels: &BTreeMap<String, String>,
        selector: &BTreeMap<String, String>,
        port: NamedPort<'static>,
    ) -> ServiceMonitor {
        let mut labels = labels.clone();
        labels.extend(self.service_monitor.labels.clone());
        ServiceMonitor {
            api_version: <ServiceMonitor as k8s_openapi::Resource>::API_VERSION,
            kind: <ServiceMonitor as k8s_openapi::Resource>::KIND,
            metadata: k8s::meta(ctx, name, &labels),
            spec: serde_json::json!({
                "selector": { "matchLabels": selector },
                "endpoints": [{
                    "port": port.name,
                    "path": "/metrics",
                    "interval": self.service_monitor.interval,
                }],
            }),
        }
    }
}

/// What runs in the sidecar: the exporter's port, command line, environment and mounts.
#[derive(Debug)]
pub struct Exporter {
    /// The port it serves metrics on, named `metrics`.
    pub port: NamedPort<'static>,
    /// None runs the image's entrypoint.
    pub command: Option<Vec<String>>,
    pub args: Vec<String>,
    pub env: Vec<EnvVar>,
    pub mounts: Vec<VolumeMount>,
}

/// The kinds the metrics objects add to the plugin's: always declared, as `kinds` cannot depend
/// on the configuration.
pub fn kinds() -> Vec<KindRef> {
    vec![KindRef::of::<ServiceMonitor>()]
}

/// Every key and value a valid label; the map may be empty.
fn labels(problems: &mut Problems, path: &str, labels: &BTreeMap<String, String>) {
    for (key, value) in labels {
        problems.check(
            format!("{path}.{key}"),
            validate::label_key(key).and(validate::label_value(value)),
        );
    }
}

/// A Prometheus duration as the ServiceMonitor CRD accepts it: `0`, or amounts in the units
/// y, w, d, h, m, s, ms, each at most once and in that order ("1m30s").
fn duration(value: &str) -> Result<(), String> {
    const UNITS: [&str; 7] = ["y", "w", "d", "h", "m", "s", "ms"];
    let mut rest = value;
    let mut next_unit = 0;
    let mut ok = !value.is_empty();
    while ok && !rest.is_empty() && value != "0" {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        let after = &rest[digits..];
        let letters = after.len()
            - after
                .trim_start_matches(|c: char| c.is_ascii_lowercase())
                .len();
        let unit = UNITS[next_unit..]
            .iter()
            .position(|u| *u == &after[..letters]);
        match (digits, unit) {
            (1.., Some(index)) => {
                next_unit += index + 1;
                rest = &after[letters..];
            }
            _ => ok = false,
        }
    }
    ok.then_some(()).ok_or_else(|| {
        format!("\"{value}\" is not a Prometheus duration (e.g. \"30s\", \"1m30s\")")
    })
}

/// A prometheus-operator ServiceMonitor: k8s-openapi has no type for custom resources, and
/// [`Output::push`] needs one. The body carries its apiVersion and kind, as the host checks them
/// against the envelope.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceMonitor {
    api_version: &'static str,
    kind: &'static str,
    metadata: ObjectMeta,
    spec: serde_json::Value,
}

impl k8s_openapi::Resource for ServiceMonitor {
    const API_VERSION: &'static str = "monitoring.coreos.com/v1";
    const GROUP: &'static str = "monitoring.coreos.com";
    const KIND: &'static str = "ServiceMonitor";
    const VERSION: &'static str = "v1";
    const URL_PATH_SEGMENT: &'static str = "servicemonitors";
    type Scope = k8s_openapi::NamespaceResourceScope;
}

impl k8s_openapi::Metadata for ServiceMonitor {
    type Ty = ObjectMeta;

    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn metadata_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

#[cfg(test)]
mod tests {
    use super::duration;

    #[test]
    fn prometheus_durations() {
        for good in ["30s", "1m30s", "0", "1h", "500ms", "1d12h", "2w"] {
            assert_eq!(duration(good), Ok(()), "{good}");
        }
        for bad in [
            "", "30", "s", "30S", "1s1m", "1m1m", "30 s", "1.5s", "-1s", "00",
        ] {
            assert!(duration(bad).is_err(), "{bad}");
        }
    }
}
