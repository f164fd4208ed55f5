//! `--wait`: when an applied object counts as ready, decided from its observed status alone
//! (pure functions, unit-tested), and the loop that polls the cluster until all are ready or
//! time runs out.

use std::thread;
use std::time::{Duration, Instant};

use kube::api::{ApiResource, GroupVersionKind, ListParams};
use serde_json::Value;

use super::changes::{Resource, Target};
use super::cluster::KubeCluster;
use super::{ApplyError, Reporter};

/// Whether an object is ready, and if not, what it is waiting for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    Pending(String),
}

fn int(value: &Value, pointer: &str) -> Option<i64> {
    value.pointer(pointer).and_then(Value::as_i64)
}

fn text<'a>(value: &'a Value, pointer: &str) -> Option<&'a str> {
    value.pointer(pointer).and_then(Value::as_str)
}

/// The desired number of replicas; the API server defaults it to 1.
fn replicas(statefulset: &Value) -> i64 {
    int(statefulset, "/spec/replicas").unwrap_or(1)
}

/// A StatefulSet is rolled out and ready as `kubectl rollout status` sees it: the controller
/// has seen the latest spec, every replica is ready, and all run the update revision.
pub fn statefulset(statefulset: &Value) -> Readiness {
    let generation = int(statefulset, "/metadata/generation").unwrap_or(0);
    let observed = int(statefulset, "/status/observedGeneration").unwrap_or(0);
    if observed < generation {
        return Readiness::Pending(format!(
            "the controller has not yet seen generation {generation}"
        ));
    }
    let wanted = replicas(statefulset);
    let ready = int(statefulset, "/status/readyReplicas").unwrap_or(0);
    if ready < wanted {
        return Readiness::Pending(format!("{ready}/{wanted} pods ready"));
    }
    let current = text(statefulset, "/status/currentRevision");
    let update = text(statefulset, "/status/updateRevision");
    if current != update {
        let updated = int(statefulset, "/status/updatedReplicas").unwrap_or(0);
        return Readiness::Pending(format!(
            "rolling out revision {}: {updated}/{wanted} pods updated",
            update.unwrap_or("?")
        ));
    }
    Readiness::Ready
}

/// The PersistentVolumeClaims a StatefulSet's pods use: `<template>-<statefulset>-<ordinal>`.
pub fn claim_names(statefulset: &Value) -> Vec<String> {
    let name = text(statefulset, "/metadata/name").unwrap_or_default();
    let templates = statefulset
        .pointer("/spec/volumeClaimTemplates")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    templates
        .iter()
        .filter_map(|template| text(template, "/metadata/name"))
        .flat_map(|template| {
            (0..replicas(statefulset)).map(move |ordinal| format!("{template}-{name}-{ordinal}"))
        })
        .collect()
}

/// A claim is ready once bound to a volume.
pub fn claim(claim: Option<&Value>) -> Readiness {
    match claim.and_then(|c| text(c, "/status/phase")) {
        Some("Bound") => Readiness::Ready,
        Some(phase) => Readiness::Pending(format!("{phase}, not Bound")),
        None => Readiness::Pending("not created yet".into()),
    }
}

/// Why a pod is not ready, from its conditions and its containers' waiting states.
pub fn pod_problems(pod: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    for condition in pod
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if text(condition, "/status") == Some("True") {
            continue;
        }
        let kind = text(condition, "/type").unwrap_or("?");
        let detail: Vec<&str> = ["/reason", "/message"]
            .iter()
            .filter_map(|field| text(condition, field))
            .collect();
        problems.push(if detail.is_empty() {
            format!("{kind}=False")
        } else {
            format!("{kind}=False ({})", detail.join(": "))
        });
    }
    for status in ["/status/initContainerStatuses", "/status/containerStatuses"]
        .iter()
        .filter_map(|field| pod.pointer(field).and_then(Value::as_array))
        .flatten()
    {
        if let Some(waiting) = status.pointer("/state/waiting") {
            let container = text(status, "/name").unwrap_or("?");
            let reason = text(waiting, "/reason").unwrap_or("waiting");
            problems.push(match text(waiting, "/message") {
                Some(message) => format!("container {container}: {reason}: {message}"),
                None => format!("container {container}: {reason}"),
            });
        }
    }
    problems
}

/// The newest Warning event's reason and message, if any.
pub fn latest_warning(events: &[Value]) -> Option<String> {
    events
        .iter()
        .filter(|event| text(event, "/type") == Some("Warning"))
        .max_by_key(|event| {
            [
                "/lastTimestamp",
                "/eventTime",
                "/metadata/creationTimestamp",
            ]
            .iter()
            .find_map(|field| text(event, field))
            .unwrap_or_default()
            .to_string()
        })
        .map(|event| {
            format!(
                "{}: {}",
                text(event, "/reason").unwrap_or("Warning"),
                text(event, "/message").unwrap_or_default().trim()
            )
        })
}

/// How long and how often to poll.
#[derive(Debug, Clone, Copy)]
pub struct WaitSettings {
    pub timeout: Duration,
    pub poll: Duration,
}

/// Polls until every StatefulSet among `targets` is ready and its claims are bound, or the
/// timeout passes; then names each object still waiting and why.
pub fn wait_ready(
    cluster: &KubeCluster,
    targets: &[Target],
    settings: WaitSettings,
    reporter: &mut dyn Reporter,
) -> Result<(), ApplyError> {
    let deadline = Instant::now() + settings.timeout;
    let mut pending: Vec<(&Target, Option<Readiness>)> = targets
        .iter()
        .filter(|t| t.resource.api.group == "apps" && t.resource.api.kind == "StatefulSet")
        .map(|t| (t, None))
        .collect();
    loop {
        for (target, last) in &mut pending {
            let now = check(cluster, target)?;
            if last.as_ref() != Some(&now) {
                reporter.readiness(target, &now);
                *last = Some(now);
            }
        }
        pending.retain(|(_, last)| last.as_ref() != Some(&Readiness::Ready));
        if pending.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            let not_ready = pending
                .iter()
                .map(|(target, last)| explain(cluster, target, last.as_ref()))
                .collect();
            return Err(ApplyError::NotReady {
                timeout: settings.timeout,
                not_ready,
            });
        }
        thread::sleep(
            settings
                .poll
                .min(deadline.saturating_duration_since(Instant::now())),
        );
    }
}

/// A namespaced core/v1 kind: the Pods, claims and Events a StatefulSet's wait looks at.
fn core(kind: &str) -> Resource {
    Resource {
        api: ApiResource::from_gvk(&GroupVersionKind::gvk("", "v1", kind)),
        namespaced: true,
    }
}

fn sibling(target: &Target, kind: &str, name: String) -> Target {
    Target {
        resource: core(kind),
        namespace: target.namespace.clone(),
        name,
    }
}

fn check(cluster: &KubeCluster, target: &Target) -> Result<Readiness, ApplyError> {
    let fetched = |target: &Target| {
        cluster
            .get(target)
            .map_err(|error| ApplyError::cluster("read", target, error))
    };
    let Some(object) = fetched(target)? else {
        return Ok(Readiness::Pending("not found".into()));
    };
    if let Readiness::Pending(reason) = statefulset(&object) {
        return Ok(Readiness::Pending(reason));
    }
    for name in claim_names(&object) {
        let claim_target = sibling(target, "PersistentVolumeClaim", name);
        if let Readiness::Pending(reason) = claim(fetched(&claim_target)?.as_ref()) {
            return Ok(Readiness::Pending(format!(
                "PersistentVolumeClaim {}: {reason}",
                claim_target.name
            )));
        }
    }
    Ok(Readiness::Ready)
}

/// `target: <why>` with what its pods and events say, best effort: a failure to read them
/// must not hide the timeout itself.
fn explain(cluster: &KubeCluster, target: &Target, last: Option<&Readiness>) -> String {
    let mut reasons = vec![match last {
        Some(Readiness::Pending(reason)) => reason.clone(),
        _ => "not checked".into(),
    }];
    let statefulset = cluster.get(target).ok().flatten().unwrap_or_default();
    let pods = (0..replicas(&statefulset)).map(|i| format!("{}-{i}", target.name));
    for pod in pods {
        let pod_target = sibling(target, "Pod", pod);
        let mut problems = match cluster.get(&pod_target) {
            Ok(Some(pod)) => pod_problems(&pod),
            Ok(None) => vec!["not created".into()],
            Err(_) => Vec::new(),
        };
        problems.extend(warning_for(cluster, &pod_target));
        if !problems.is_empty() {
            reasons.push(format!("pod {}: {}", pod_target.name, problems.join(", ")));
        }
    }
    for name in claim_names(&statefulset) {
        let claim_target = sibling(target, "PersistentVolumeClaim", name);
        if let Some(warning) = warning_for(cluster, &claim_target) {
            reasons.push(format!(
                "PersistentVolumeClaim {}: {warning}",
                claim_target.name
            ));
        }
    }
    format!("{target}: {}", reasons.join("; "))
}

fn warning_for(cluster: &KubeCluster, target: &Target) -> Option<String> {
    let params = ListParams::default().fields(&format!(
        "involvedObject.kind={},involvedObject.name={}",
        target.resource.api.kind, target.name
    ));
    let events = cluster
        .list(&core("Event"), target.namespace.as_deref(), &params)
        .ok()?;
    let events: Vec<Value> = events
        .into_iter()
        .filter_map(|event| serde_json::to_value(event).ok())
        .collect();
    latest_warning(&events)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sts(generation: i64, status: Value) -> Value {
        json!({
            "metadata": {"name": "postgres", "generation": generation},
            "spec": {"replicas": 2, "volumeClaimTemplates": [{"metadata": {"name": "data"}}]},
            "status": status,
        })
    }

    #[test]
    fn statefulset_is_ready_only_when_observed_ready_and_on_the_update_revision() {
        let ready = json!({"observedGeneration": 2, "readyReplicas": 2, "updatedReplicas": 2,
            "currentRevision": "r2", "updateRevision": "r2"});
        assert_eq!(statefulset(&sts(2, ready.clone())), Readiness::Ready);

        let mut stale = ready.clone();
        stale["observedGeneration"] = json!(1);
        assert_eq!(
            statefulset(&sts(2, stale)),
            Readiness::Pending("the controller has not yet seen generation 2".into())
        );
        let mut starting = ready.clone();
        starting["readyReplicas"] = json!(1);
        assert_eq!(
            statefulset(&sts(2, starting)),
            Readiness::Pending("1/2 pods ready".into())
        );
        let mut rolling = ready;
        rolling["currentRevision"] = json!("r1");
        rolling["updatedReplicas"] = json!(1);
        assert_eq!(
            statefulset(&sts(2, rolling)),
            Readiness::Pending("rolling out revision r2: 1/2 pods updated".into())
        );
        assert_eq!(
            statefulset(&sts(1, json!({"observedGeneration": 1}))),
            Readiness::Pending("0/2 pods ready".into())
        );
    }

    #[test]
    fn claims_follow_the_statefulset_naming_and_must_be_bound() {
        assert_eq!(
            claim_names(&sts(1, json!({}))),
            ["data-postgres-0", "data-postgres-1"]
        );
        assert_eq!(
            claim(Some(&json!({"status": {"phase": "Bound"}}))),
            Readiness::Ready
        );
        assert_eq!(
            claim(Some(&json!({"status": {"phase": "Pending"}}))),
            Readiness::Pending("Pending, not Bound".into())
        );
        assert_eq!(claim(None), Readiness::Pending("not created yet".into()));
    }

    #[test]
    fn pod_problems_name_false_conditions_and_waiting_containers() {
        let pod = json!({"status": {
            "conditions": [
                {"type": "PodScheduled", "status": "True"},
                {"type": "Ready", "status": "False", "reason": "ContainersNotReady",
                 "message": "containers with unready status: [postgres]"},
            ],
            "containerStatuses": [{"name": "postgres",
                "state": {"waiting": {"reason": "ImagePullBackOff", "message": "back-off pulling image"}}}],
        }});
        assert_eq!(
            pod_problems(&pod),
            [
                "Ready=False (ContainersNotReady: containers with unready status: [postgres])",
                "container postgres: ImagePullBackOff: back-off pulling image"
            ]
        );
    }

    #[test]
    fn latest_warning_wins_over_older_ones_and_normal_events() {
        let events = [
            json!({"type": "Warning", "reason": "Old", "message": "old", "lastTimestamp": "2026-01-01T00:00:00Z"}),
            json!({"type": "Normal", "reason": "Pulled", "message": "ok", "lastTimestamp": "2026-01-03T00:00:00Z"}),
            json!({"type": "Warning", "reason": "FailedScheduling", "message": "0/1 nodes available",
                   "lastTimestamp": "2026-01-02T00:00:00Z"}),
        ];
        assert_eq!(
            latest_warning(&events).as_deref(),
            Some("FailedScheduling: 0/1 nodes available")
        );
        assert_eq!(latest_warning(&events[1..2]), None);
    }
}
