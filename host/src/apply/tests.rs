//! The apply logic against the in-memory cluster: order, parameters, ApplySet bookkeeping,
//! prune and wait.

use std::collections::VecDeque;
use std::time::Duration;

use serde_json::{Value, json};

use super::changes::{self, CONTAINS_GROUP_KINDS, Changes, PART_OF, Resource, TOOLING, Target};
use super::fake::{FakeCluster, resource};
use super::wait::{Readiness, WaitSettings};
use super::*;
use crate::model::k8s::{group_of, scope_of};
use crate::model::object::ObjectId;
use crate::model::object::Placed;

const NS: &str = "mathison-system";

fn placed(api_version: &str, kind: &str, name: &str, namespaced: bool) -> Placed {
    let mut metadata = json!({"name": name, "labels": {"app": name}});
    if namespaced {
        metadata["namespace"] = json!(NS);
    }
    Placed {
        origin: "p".into(),
        id: ObjectId {
            group: group_of(api_version).into(),
            kind: kind.into(),
            namespace: namespaced.then(|| NS.to_string()),
            name: name.into(),
        },
        api_version: api_version.into(),
        scope: scope_of(api_version, kind),
        body: json!({"apiVersion": api_version, "kind": kind, "metadata": metadata}),
    }
}

fn rendered() -> Vec<Placed> {
    vec![
        placed("v1", "ConfigMap", "config", true),
        placed("v1", "Service", "db", true),
        placed("apps/v1", "StatefulSet", "db", true),
    ]
}

#[derive(Debug, Default)]
struct Recorder(Vec<String>);

impl Reporter for Recorder {
    fn applied(&mut self, target: &Target, dry_run: bool) {
        self.0.push(format!("applied {target} dry_run={dry_run}"));
    }
    fn pruned(&mut self, target: &Target, dry_run: bool) {
        self.0.push(format!("pruned {target} dry_run={dry_run}"));
    }
    fn readiness(&mut self, target: &Target, readiness: &Readiness) {
        self.0.push(format!("{target}: {readiness:?}"));
    }
}

fn known(api_version: &str, kind: &str) -> Resource {
    Resource::known(api_version, kind).expect("known kind")
}

/// Applies `changes` with no options, discarding progress lines.
fn apply_plainly(cluster: &FakeCluster, changes: &Changes) -> Result<(), ApplyError> {
    apply(
        cluster,
        changes,
        &Options::default(),
        &mut Recorder::default(),
    )
}

fn parent(cluster: &FakeCluster, changes: &Changes) -> Value {
    cluster
        .get(&changes.applyset.parent)
        .expect("get")
        .expect("parent exists")
}

#[test]
fn applies_the_parent_then_every_object_in_order_under_our_field_manager() {
    let cluster = FakeCluster::default();
    let changes = Changes::new(&rendered(), NS, "mathison");
    let mut recorder = Recorder::default();
    apply(&cluster, &changes, &Options::default(), &mut recorder).expect("apply");
    let manager = "manager=mathison-host force=false dryRun=false";
    assert_eq!(
        cluster.calls(),
        [
            format!("GET secrets {NS}/applyset-mathison"),
            format!("PATCH secrets {NS}/applyset-mathison {manager}"),
            format!("PATCH configmaps {NS}/config {manager}"),
            format!("PATCH services {NS}/db {manager}"),
            format!("PATCH statefulsets {NS}/db {manager}"),
        ]
    );
    let id = &changes.applyset.id;
    for step in &changes.steps {
        assert_eq!(step.body["metadata"]["labels"][PART_OF], json!(id));
        assert_eq!(step.body["metadata"]["labels"]["app"], json!(step.id.name));
    }
    let parent = parent(&cluster, &changes);
    assert_eq!(
        parent["metadata"]["labels"]["applyset.kubernetes.io/id"],
        json!(id)
    );
    assert_eq!(
        parent["metadata"]["annotations"][CONTAINS_GROUP_KINDS],
        "ConfigMap,Service,StatefulSet.apps"
    );
    assert_eq!(
        parent["metadata"]["annotations"][TOOLING],
        json!(changes::tooling())
    );
    assert_eq!(recorder.0.len(), 4);
}

#[test]
fn applyset_id_is_kubectls_hash_of_the_parent() {
    let id = changes::ApplySet::new(NS, "mathison").id;
    // base64url(sha256("applyset-mathison.mathison-system.Secret.")), as kubectl computes it.
    assert_eq!(
        id,
        "applyset-XLiAzeSqRWHwEaLUYk22OBAXH4duvC2nbqTg5REuHTE-v1"
    );
    assert_ne!(changes::ApplySet::new("other", "mathison").id, id);
}

#[test]
fn a_rendered_namespace_is_created_before_the_parent_that_lives_in_it() {
    let mut objects = vec![placed("v1", "Namespace", NS, false)];
    objects.extend(rendered());
    let changes = Changes::new(&objects, NS, "mathison");
    assert_eq!(changes.parent_position(), 1);
}

#[test]
fn force_and_server_dry_run_reach_every_request_and_skip_the_wait() {
    let cluster = FakeCluster::default();
    let changes = Changes::new(&rendered(), NS, "mathison");
    let options = Options {
        force_conflicts: true,
        dry_run: true,
        wait: Some(WaitSettings {
            timeout: Duration::from_millis(1),
            poll: Duration::from_millis(1),
        }),
        ..Options::default()
    };
    apply(&cluster, &changes, &options, &mut Recorder::default()).expect("apply");
    let patches: Vec<String> = cluster
        .calls()
        .into_iter()
        .filter(|c| c.starts_with("PATCH"))
        .collect();
    assert_eq!(patches.len(), 4);
    assert!(
        patches
            .iter()
            .all(|c| c.ends_with("force=true dryRun=true")),
        "{patches:?}"
    );
    assert!(
        cluster.objects.borrow().is_empty(),
        "a dry run persisted something"
    );
}

#[test]
fn prune_deletes_only_this_sets_members_that_are_no_longer_rendered() {
    let cluster = FakeCluster {
        discoverable: vec![resource("apps/v1", "Deployment", "deployments", true)],
        ..FakeCluster::default()
    };
    let changes = Changes::new(&rendered(), NS, "mathison");
    let id = changes.applyset.id.clone();
    let mut previous = changes.applyset.parent_body(&changes.group_kinds());
    previous["metadata"]["annotations"][CONTAINS_GROUP_KINDS] =
        json!("ConfigMap,Deployment.apps,Service,StatefulSet.apps");
    cluster.insert(&known("v1", "Secret"), Some(NS), previous);
    let member = |name: &str, set: &str| {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": name, "namespace": NS, "labels": {PART_OF: set}}})
    };
    let configmaps = known("v1", "ConfigMap");
    cluster.insert(&configmaps, Some(NS), member("config", &id));
    cluster.insert(&configmaps, Some(NS), member("old", &id));
    cluster.insert(
        &configmaps,
        Some(NS),
        member("someone-elses", "applyset-other-v1"),
    );
    cluster.insert(
        &configmaps,
        Some(NS),
        json!({"metadata": {"name": "unlabelled", "namespace": NS}}),
    );
    let deployments = resource("apps/v1", "Deployment", "deployments", true);
    cluster.insert(
        &deployments,
        Some(NS),
        json!({"metadata": {"name": "gone", "namespace": NS, "labels": {PART_OF: id}}}),
    );

    let dry_run = Options {
        prune: true,
        dry_run: true,
        ..Options::default()
    };
    apply(&cluster, &changes, &dry_run, &mut Recorder::default()).expect("dry run");
    let deletes: Vec<String> = cluster
        .calls()
        .into_iter()
        .filter(|c| c.starts_with("DELETE"))
        .collect();
    assert_eq!(deletes.len(), 2, "{deletes:?}");
    assert!(
        deletes.iter().all(|c| c.ends_with("dryRun=true")),
        "{deletes:?}"
    );
    assert_eq!(
        cluster.objects.borrow().len(),
        6,
        "a dry run deleted something"
    );
    cluster.calls.borrow_mut().clear();

    let options = Options {
        prune: true,
        ..Options::default()
    };
    let mut recorder = Recorder::default();
    apply(&cluster, &changes, &options, &mut recorder).expect("apply");

    let deletes: Vec<String> = cluster
        .calls()
        .into_iter()
        .filter(|c| c.starts_with("DELETE"))
        .collect();
    assert_eq!(
        deletes,
        [
            format!("DELETE configmaps {NS}/old dryRun=false"),
            format!("DELETE deployments {NS}/gone dryRun=false"),
        ]
    );
    assert!(
        cluster
            .calls()
            .contains(&format!("LIST configmaps {NS} {PART_OF}={id}"))
    );
    assert!(
        cluster
            .calls()
            .contains(&"DISCOVER Deployment.apps".to_string())
    );
    let left: Vec<String> = cluster
        .objects
        .borrow()
        .keys()
        .map(|(_, _, n)| n.clone())
        .collect();
    for survivor in ["config", "someone-elses", "unlabelled"] {
        assert!(
            left.contains(&survivor.to_string()),
            "{survivor} was pruned"
        );
    }
    // After the prune, the parent lists only what it still contains.
    assert_eq!(
        parent(&cluster, &changes)["metadata"]["annotations"][CONTAINS_GROUP_KINDS],
        "ConfigMap,Service,StatefulSet.apps"
    );
    assert!(
        recorder
            .0
            .contains(&format!("pruned ConfigMap {NS}/old dry_run=false"))
    );
}

#[test]
fn without_prune_the_parent_keeps_listing_old_group_kinds() {
    let cluster = FakeCluster::default();
    let changes = Changes::new(&rendered(), NS, "mathison");
    let mut previous = changes.applyset.parent_body(&changes.group_kinds());
    previous["metadata"]["annotations"][CONTAINS_GROUP_KINDS] = json!("Deployment.apps");
    cluster.insert(&known("v1", "Secret"), Some(NS), previous);
    apply_plainly(&cluster, &changes).expect("apply");
    assert_eq!(
        parent(&cluster, &changes)["metadata"]["annotations"][CONTAINS_GROUP_KINDS],
        "ConfigMap,Deployment.apps,Service,StatefulSet.apps"
    );
    assert!(!cluster.calls().iter().any(|c| c.starts_with("DELETE")));
}

#[test]
fn a_parent_of_another_tool_is_never_taken_over() {
    let cluster = FakeCluster::default();
    let changes = Changes::new(&rendered(), NS, "mathison");
    let mut foreign = changes.applyset.parent_body(&changes.group_kinds());
    foreign["metadata"]["annotations"][TOOLING] = json!("kubectl/v1.33");
    cluster.insert(&known("v1", "Secret"), Some(NS), foreign);
    let error = apply_plainly(&cluster, &changes).expect_err("foreign parent");
    assert_eq!(
        error.to_string(),
        format!(
            "Secret {NS}/applyset-mathison exists but is not managed by mathison-host (tooling: kubectl/v1.33); refusing to take over its set"
        )
    );
    assert_eq!(cluster.calls().len(), 1, "only the parent was read");
}

#[test]
fn unknown_kinds_are_discovered_first_and_a_missing_crd_sends_nothing() {
    let mut objects = rendered();
    objects.push(placed(
        "monitoring.coreos.com/v1",
        "ServiceMonitor",
        "db",
        true,
    ));
    let changes = Changes::new(&objects, NS, "mathison");
    let cluster = FakeCluster::default();
    let error = apply_plainly(&cluster, &changes).expect_err("no CRD");
    assert_eq!(
        error.to_string(),
        format!(
            "cannot apply ServiceMonitor {NS}/db: the cluster does not serve ServiceMonitor in monitoring.coreos.com: is its CustomResourceDefinition installed?"
        )
    );
    assert!(!cluster.calls().iter().any(|c| c.starts_with("PATCH")));

    let cluster = FakeCluster {
        discoverable: vec![resource(
            "monitoring.coreos.com/v1",
            "ServiceMonitor",
            "servicemonitors",
            true,
        )],
        ..FakeCluster::default()
    };
    apply_plainly(&cluster, &changes).expect("apply");
    assert!(
        cluster
            .calls()
            .iter()
            .any(|c| c.starts_with(&format!("PATCH servicemonitors {NS}/db")))
    );
}

#[test]
fn an_api_error_stops_the_apply_and_names_the_object() {
    let cluster = FakeCluster {
        failures: [(
            "db".to_string(),
            ClusterError::Status {
                code: 403,
                reason: "Forbidden".into(),
                message: "services \"db\" is forbidden".into(),
                causes: Vec::new(),
            },
        )]
        .into(),
        ..FakeCluster::default()
    };
    let changes = Changes::new(&rendered(), NS, "mathison");
    let error = apply_plainly(&cluster, &changes).expect_err("forbidden");
    assert_eq!(
        error.to_string(),
        format!("cannot apply Service {NS}/db: forbidden (403): services \"db\" is forbidden")
    );
    assert!(
        !cluster.calls().iter().any(|c| c.contains("statefulsets")),
        "went on after the error"
    );
}

fn statefulset(ready: i64, phase_claims: bool) -> Value {
    json!({
        "metadata": {"name": "db", "generation": 1},
        "spec": {"replicas": 1, "volumeClaimTemplates": if phase_claims { json!([{"metadata": {"name": "data"}}]) } else { json!([]) }},
        "status": {"observedGeneration": 1, "readyReplicas": ready, "currentRevision": "r1", "updateRevision": "r1"},
    })
}

fn waiting(timeout_ms: u64) -> Options {
    Options {
        wait: Some(WaitSettings {
            timeout: Duration::from_millis(timeout_ms),
            poll: Duration::from_millis(1),
        }),
        ..Options::default()
    }
}

#[test]
fn wait_polls_until_statefulsets_are_ready_and_their_claims_bound() {
    let cluster = FakeCluster::default();
    cluster.gets.borrow_mut().insert(
        "db".into(),
        VecDeque::from([
            statefulset(0, true),
            statefulset(0, true),
            statefulset(1, true),
        ]),
    );
    cluster.gets.borrow_mut().insert(
        "data-db-0".into(),
        VecDeque::from([
            json!({"status": {"phase": "Pending"}}),
            json!({"status": {"phase": "Bound"}}),
        ]),
    );
    let changes = Changes::new(&rendered(), NS, "mathison");
    let mut recorder = Recorder::default();
    apply(&cluster, &changes, &waiting(10_000), &mut recorder).expect("ready");
    let progress: Vec<&String> = recorder
        .0
        .iter()
        .filter(|l| !l.starts_with("applied"))
        .collect();
    assert_eq!(
        progress,
        [
            &format!("StatefulSet {NS}/db: Pending(\"0/1 pods ready\")"),
            &format!(
                "StatefulSet {NS}/db: Pending(\"PersistentVolumeClaim data-db-0: Pending, not Bound\")"
            ),
            &format!("StatefulSet {NS}/db: Ready"),
        ]
    );
}

#[test]
fn wait_times_out_naming_what_is_not_ready_and_why() {
    let cluster = FakeCluster::default();
    cluster
        .gets
        .borrow_mut()
        .insert("db".into(), VecDeque::from([statefulset(0, false)]));
    cluster.insert(
        &known("v1", "Pod"),
        Some(NS),
        json!({"metadata": {"name": "db-0"}, "status": {"conditions": [
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/1 nodes are available"}]}}),
    );
    let changes = Changes::new(&rendered(), NS, "mathison");
    let error =
        apply(&cluster, &changes, &waiting(20), &mut Recorder::default()).expect_err("timeout");
    assert_eq!(
        error.to_string(),
        format!(
            "not ready after 0.02s: StatefulSet {NS}/db: 0/1 pods ready; pod db-0: PodScheduled=False (Unschedulable: 0/1 nodes are available)"
        )
    );
}

#[test]
fn client_dry_run_describes_each_request_in_order() {
    let changes = Changes::new(&rendered(), NS, "mathison");
    let text = describe(&changes, &Options::default()).expect("describe");
    let requests: Vec<&str> = text.lines().filter(|l| l.starts_with("# ")).collect();
    assert_eq!(
        requests,
        [
            "# PATCH /api/v1/namespaces/mathison-system/secrets/applyset-mathison?&fieldManager=mathison-host (application/apply-patch+yaml)",
            "# PATCH /api/v1/namespaces/mathison-system/configmaps/config?&fieldManager=mathison-host (application/apply-patch+yaml)",
            "# PATCH /api/v1/namespaces/mathison-system/services/db?&fieldManager=mathison-host (application/apply-patch+yaml)",
            "# PATCH /apis/apps/v1/namespaces/mathison-system/statefulsets/db?&fieldManager=mathison-host (application/apply-patch+yaml)",
        ]
    );
    assert!(text.contains(&format!("{PART_OF}: {}", changes.applyset.id)));
    let forced = describe(
        &changes,
        &Options {
            force_conflicts: true,
            ..Options::default()
        },
    )
    .expect("describe");
    assert!(
        forced.contains("?&force=true&fieldManager=mathison-host "),
        "{forced}"
    );
}

#[test]
fn diff_compares_live_objects_with_the_server_dry_run() {
    let cluster = FakeCluster::default();
    let changes = Changes::new(&rendered(), NS, "mathison");
    // The config map is live and identical; the service differs; the statefulset is new.
    cluster.insert(
        &known("v1", "ConfigMap"),
        Some(NS),
        changes.steps[0].body.clone(),
    );
    let mut service = changes.steps[1].body.clone();
    service["metadata"]["labels"]["app"] = json!("old");
    cluster.insert(&known("v1", "Service"), Some(NS), service);
    let diffs = diff(&cluster, &changes).expect("diff");
    let names: Vec<String> = diffs.iter().map(|d| d.target.to_string()).collect();
    assert_eq!(
        names,
        [format!("Service {NS}/db"), format!("StatefulSet {NS}/db")]
    );
    assert!(
        diffs[0].diff.contains("-    app: old\n+    app: db\n"),
        "{}",
        diffs[0].diff
    );
    assert!(
        cluster
            .calls()
            .iter()
            .filter(|c| c.starts_with("PATCH"))
            .all(|c| c.ends_with("force=true dryRun=true")),
        "diff must never persist"
    );
    assert!(
        cluster.objects.borrow().len() == 2,
        "diff changed the cluster"
    );
}
