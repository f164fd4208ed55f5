//! Bringing a cluster to the rendered state, as Helm 4, Timoni and `kpt live` do: server-side
//! apply in install order under the field manager `mathison-host`, membership in a KEP-3659
//! ApplySet so a later `--prune` deletes exactly what this tool applied and no longer renders,
//! and `--wait` for StatefulSets to roll out.
//!
//! [`cluster`] is the only code that talks to an API server (kube's `Client`). The rest uses
//! kube's client-free types only (`kube::core`, `kube::ResourceExt`, `kube::api::{ApiResource,
//! DynamicObject, ListParams, Patch, PatchParams}`): [`changes`] decides what is sent without
//! a cluster, [`wait`] and [`diff`] judge observed objects, and this module strings them
//! together with the cluster's requests. The pure parts are unit-tested beside their code; the requests
//! and what the user sees are tested end to end against a fake API server
//! (`tests/integration/apply.rs`).

pub mod changes;
pub mod cluster;
pub mod diff;
pub mod wait;

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use kube::ResourceExt as _;
use kube::api::ListParams;

use changes::{Changes, FIELD_MANAGER, GroupKind, PART_OF, Target};
pub use cluster::{ClusterError, KubeCluster, Problem};
use wait::{Readiness, WaitSettings};

use crate::model::object::ObjectId;
use crate::output::{self, OutputError};

/// Why an apply, prune, wait or diff stopped. The message is one line naming the object; the
/// client's error, when it says more (an unreachable server), is its source.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// A [`ClusterError`] taken apart: its problem joins this line and its source is this
    /// error's, so the chain shows each exactly once.
    #[error("cannot {action} {object}: {problem}")]
    Cluster {
        action: &'static str,
        object: String,
        problem: Problem,
        #[source]
        source: Option<Box<kube::Error>>,
    },
    #[error(
        "{object} exists but is not managed by {FIELD_MANAGER} (tooling: {tooling}); refusing to take over its set"
    )]
    ForeignParent { object: String, tooling: String },
    #[error("not ready after {}s: {}", .timeout.as_secs_f32(), .not_ready.join("; "))]
    NotReady {
        timeout: Duration,
        not_ready: Vec<String>,
    },
    #[error("cannot build the request for {object}")]
    Request {
        object: String,
        #[source]
        source: kube::core::request::Error,
    },
    #[error(transparent)]
    Output(#[from] OutputError),
}

impl ApplyError {
    fn cluster(action: &'static str, object: &dyn fmt::Display, error: ClusterError) -> Self {
        let ClusterError { problem, source } = error;
        ApplyError::Cluster {
            action,
            object: object.to_string(),
            problem,
            source,
        }
    }
}

/// How to apply.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Take over fields that other field managers own instead of failing with a conflict.
    pub force_conflicts: bool,
    /// The server checks and reports everything and persists nothing (`dryRun=All`).
    pub dry_run: bool,
    /// Delete members of the set that the render no longer contains.
    pub prune: bool,
    /// Wait for StatefulSets to be ready, within these settings.
    pub wait: Option<WaitSettings>,
}

/// What the user sees as an apply proceeds.
pub trait Reporter {
    fn applied(&mut self, target: &Target, dry_run: bool);
    fn pruned(&mut self, target: &Target, dry_run: bool);
    /// `target`'s readiness changed (or was first seen) while waiting.
    fn readiness(&mut self, target: &Target, readiness: &Readiness);
}

/// Each step's target; kinds the host does not know are looked up in the cluster's discovery
/// before anything is sent, so a missing CRD stops the apply before it starts.
fn resolve(cluster: &KubeCluster, changes: &Changes) -> Result<Vec<Target>, ApplyError> {
    changes
        .steps
        .iter()
        .map(|step| {
            let resource = match &step.resource {
                Some(resource) => resource.clone(),
                None => cluster
                    .discover(
                        &step.id.group,
                        step.api_version.rsplit('/').next(),
                        &step.id.kind,
                    )
                    .map_err(|error| ApplyError::cluster("apply", &step.offline_target(), error))?,
            };
            Ok(step.target(resource))
        })
        .collect()
}

/// Applies `changes`: every object in install order with the ApplySet parent at
/// [`Changes::parent_position`] (listing old and new group-kinds, so an interrupted run can
/// still be pruned), then the prune, then the wait.
pub fn apply(
    cluster: &KubeCluster,
    changes: &Changes,
    options: &Options,
    reporter: &mut dyn Reporter,
) -> Result<(), ApplyError> {
    let applyset = &changes.applyset;
    let previous = match cluster
        .get(&applyset.parent)
        .map_err(|e| ApplyError::cluster("read", &applyset.parent, e))?
    {
        Some(parent) => match changes::parent_tooling(&parent) {
            Some(tooling) if tooling.starts_with(&format!("{FIELD_MANAGER}/")) => {
                changes::contained_group_kinds(&parent)
            }
            tooling => {
                return Err(ApplyError::ForeignParent {
                    object: applyset.parent.to_string(),
                    tooling: tooling.unwrap_or("none").to_string(),
                });
            }
        },
        None => BTreeSet::new(),
    };
    let targets = resolve(cluster, changes)?;
    let params = changes::patch_params(options.force_conflicts, options.dry_run);
    let current = changes.group_kinds();
    let everything: BTreeSet<GroupKind> = previous.union(&current).cloned().collect();

    let apply_one = |target: &Target, body: &serde_json::Value, reporter: &mut dyn Reporter| {
        cluster
            .apply(target, body, &params)
            .map_err(|e| ApplyError::cluster("apply", target, e))?;
        reporter.applied(target, options.dry_run);
        Ok::<_, ApplyError>(())
    };
    let parent_at = changes.parent_position();
    for (index, (step, target)) in changes.steps.iter().zip(&targets).enumerate() {
        if index == parent_at {
            apply_one(
                &applyset.parent,
                &applyset.parent_body(&everything),
                reporter,
            )?;
        }
        apply_one(target, &step.body, reporter)?;
    }
    if parent_at == changes.steps.len() {
        apply_one(
            &applyset.parent,
            &applyset.parent_body(&everything),
            reporter,
        )?;
    }

    if options.prune {
        prune(
            cluster,
            changes,
            &targets,
            &everything,
            options.dry_run,
            reporter,
        )?;
        // Only now may the parent forget the group-kinds that no longer have members.
        apply_one(&applyset.parent, &applyset.parent_body(&current), reporter)?;
    }
    match options.wait {
        Some(settings) if !options.dry_run => {
            wait::wait_ready(cluster, &targets, settings, reporter)
        }
        _ => Ok(()),
    }
}

/// Deletes the members of the set, of any group-kind it ever contained, that `changes` no longer
/// renders. Only objects labelled with this set's id are candidates.
fn prune(
    cluster: &KubeCluster,
    changes: &Changes,
    targets: &[Target],
    group_kinds: &BTreeSet<GroupKind>,
    dry_run: bool,
    reporter: &mut dyn Reporter,
) -> Result<(), ApplyError> {
    let applyset = &changes.applyset;
    let rendered: BTreeSet<ObjectId> = changes.steps.iter().map(|step| step.id.clone()).collect();
    let selector = ListParams::default().labels(&format!("{PART_OF}={}", applyset.id));
    for group_kind in group_kinds {
        let rendered_target = changes
            .steps
            .iter()
            .zip(targets)
            .find(|(step, _)| step.group_kind() == *group_kind);
        let resource = match rendered_target {
            Some((_, target)) => target.resource.clone(),
            None => match cluster.discover(&group_kind.group, None, &group_kind.kind) {
                Ok(resource) => resource,
                // The kind is gone from the cluster (its CRD deleted), and its objects with it.
                Err(ClusterError {
                    problem: Problem::UnknownKind { .. },
                    ..
                }) => continue,
                Err(error) => return Err(ApplyError::cluster("find", group_kind, error)),
            },
        };
        let namespace = resource
            .namespaced
            .then_some(applyset.parent.namespace.as_deref())
            .flatten();
        let listed = cluster
            .list(&resource, namespace, &selector)
            .map_err(|error| ApplyError::cluster("list", group_kind, error))?;
        for object in changes::prune_candidates(&applyset.id, group_kind, &listed, &rendered) {
            let target = Target {
                resource: resource.clone(),
                namespace: object.namespace(),
                name: object.name_any(),
            };
            cluster
                .delete(&target, dry_run)
                .map_err(|e| ApplyError::cluster("prune", &target, e))?;
            reporter.pruned(&target, dry_run);
        }
    }
    Ok(())
}

/// `--dry-run=client`: each request `apply` would send, in order, and the object it sends,
/// as a YAML stream. Needs no cluster; kinds the host does not know get kube's guessed plural.
pub fn describe(changes: &Changes, options: &Options) -> Result<String, ApplyError> {
    let params = changes::patch_params(options.force_conflicts, false);
    let parent = (
        changes.applyset.parent.clone(),
        changes.applyset.parent_body(&changes.group_kinds()),
    );
    let mut requests: Vec<(Target, &serde_json::Value)> = changes
        .steps
        .iter()
        .map(|step| (step.offline_target(), &step.body))
        .collect();
    requests.insert(changes.parent_position(), (parent.0, &parent.1));

    let mut text = String::new();
    for (target, body) in requests {
        let request = changes::describe_apply(&target, body, &params).map_err(|source| {
            ApplyError::Request {
                object: target.to_string(),
                source,
            }
        })?;
        let document = output::yaml_document(body).map_err(|source| OutputError::Yaml {
            object: target.to_string(),
            source,
        })?;
        text.push_str(&format!("---\n# {request}\n{document}"));
    }
    Ok(text)
}

/// One object's difference between the cluster and the render.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectDiff {
    pub target: Target,
    pub diff: String,
}

/// `diff`: each object as the cluster has it against what a server-side dry run of the apply
/// returns; objects without differences are left out. Conflicts are forced (`kubectl diff`
/// needs `--force-conflicts` for that) so the diff shows the result rather than a conflict.
pub fn diff(cluster: &KubeCluster, changes: &Changes) -> Result<Vec<ObjectDiff>, ApplyError> {
    let targets = resolve(cluster, changes)?;
    let params = changes::patch_params(true, true);
    let mut diffs = Vec::new();
    for (step, target) in changes.steps.iter().zip(targets) {
        let live = cluster
            .get(&target)
            .map_err(|e| ApplyError::cluster("read", &target, e))?;
        let merged = cluster
            .apply(&target, &step.body, &params)
            .map_err(|e| ApplyError::cluster("dry-run apply", &target, e))?;
        let label = format!(
            "{}/{}/{}/{}",
            step.api_version,
            step.id.kind,
            step.id.namespace.as_deref().unwrap_or("_"),
            step.id.name
        );
        if let Some(diff) = diff::unified(&label, live.as_ref(), &merged) {
            diffs.push(ObjectDiff { target, diff });
        }
    }
    Ok(diffs)
}

#[cfg(test)]
mod tests {
    use super::changes::tests::{NS, placed, rendered};
    use super::*;

    #[test]
    fn client_dry_run_describes_each_request_in_order() {
        let mut objects = rendered();
        objects.push(placed("example.com/v1", "Widget", "w", true));
        let changes = Changes::new(&objects, NS, "mathison");
        let text = describe(&changes, &Options::default()).expect("describe");
        let requests: Vec<&str> = text.lines().filter(|l| l.starts_with("# ")).collect();
        assert_eq!(
            requests,
            [
                "# PATCH /api/v1/namespaces/mathison-system/secrets/applyset-mathison?&fieldManager=mathison-host (application/apply-patch+yaml)",
                "# PATCH /api/v1/namespaces/mathison-system/configmaps/config?&fieldManager=mathison-host (application/apply-patch+yaml)",
                "# PATCH /api/v1/namespaces/mathison-system/services/db?&fieldManager=mathison-host (application/apply-patch+yaml)",
                "# PATCH /apis/apps/v1/namespaces/mathison-system/statefulsets/db?&fieldManager=mathison-host (application/apply-patch+yaml)",
                // A kind the host does not know gets kube's guessed plural.
                "# PATCH /apis/example.com/v1/namespaces/mathison-system/widgets/w?&fieldManager=mathison-host (application/apply-patch+yaml)",
            ]
        );
        assert!(text.contains(&format!("{PART_OF}: {}", changes.applyset.id)));
        let group_kinds = "ConfigMap,Service,StatefulSet.apps,Widget.example.com";
        assert!(
            text.contains(&format!("{}: {group_kinds}", changes::CONTAINS_GROUP_KINDS)),
            "{text}"
        );
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
}
