//! What `apply` will send, decided without a cluster: each object's API resource, the patch
//! parameters, the ApplySet (KEP-3659) that tracks what this tool applied, and which live
//! objects a prune may delete.

use std::collections::BTreeSet;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use kube::api::{ApiResource, DynamicObject, Patch, PatchParams};
use kube::core::{GroupVersion, Request};
use kube::{Resource as _, ResourceExt as _};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::model::k8s::{self, Scope};
use crate::model::object::ObjectId;
use crate::model::object::Placed;
use crate::model::reserved;

/// The field manager of every apply, so the server tracks which fields this tool owns.
pub const FIELD_MANAGER: &str = "mathison-host";
/// KEP-3659 label on every member: the id of the set it belongs to.
pub const PART_OF: &str = "applyset.kubernetes.io/part-of";
/// KEP-3659 label on the parent.
pub const APPLYSET_ID: &str = "applyset.kubernetes.io/id";
/// KEP-3659 annotation on the parent: which tool manages the set (`name/version`).
pub const TOOLING: &str = "applyset.kubernetes.io/tooling";
/// KEP-3659 annotation on the parent: the group-kinds of its members, so a prune knows where
/// to look.
pub const CONTAINS_GROUP_KINDS: &str = "applyset.kubernetes.io/contains-group-kinds";

/// The tooling value this build writes.
pub fn tooling() -> String {
    format!("{FIELD_MANAGER}/{}", env!("CARGO_PKG_VERSION"))
}

/// An API resource type and whether its objects live in a namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    pub api: ApiResource,
    pub namespaced: bool,
}

impl Resource {
    /// The resource of a kind the host knows (k8s-openapi's types), without asking a cluster.
    pub fn known(api_version: &str, kind: &str) -> Option<Self> {
        Self::of_scope(api_version, kind, k8s::scope_of(api_version, kind))
    }

    /// The resource of an object whose scope decode established; `None` when the host does not
    /// know it and a cluster's discovery must say.
    fn of_scope(api_version: &str, kind: &str, scope: Scope) -> Option<Self> {
        let namespaced = match scope {
            Scope::Unknown => return None,
            scope => scope == Scope::Namespaced,
        };
        let gvk = api_version.parse::<GroupVersion>().ok()?.with_kind(kind);
        Some(Self {
            api: ApiResource::from_gvk(&gvk),
            namespaced,
        })
    }

    /// A best guess for a kind the host does not know, when no cluster can be asked: the
    /// plural as kube guesses it and the scope the render gave the object.
    fn guessed(api_version: &str, kind: &str, namespaced: bool) -> Self {
        let gv = api_version
            .parse::<GroupVersion>()
            .unwrap_or_else(|_| GroupVersion::gv("", api_version));
        Self {
            api: ApiResource::from_gvk(&gv.with_kind(kind)),
            namespaced,
        }
    }
}

/// One object in the cluster: its resource type, namespace and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub resource: Resource,
    pub namespace: Option<String>,
    pub name: String,
}

impl Target {
    /// The URL path of the object's collection.
    pub fn collection_path(&self) -> String {
        DynamicObject::url_path(&self.resource.api, self.namespace.as_deref())
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(namespace) => write!(f, "{} {namespace}/{}", self.resource.api.kind, self.name),
            None => write!(f, "{} {}", self.resource.api.kind, self.name),
        }
    }
}

/// A group and kind, as the ApplySet annotation lists them: `StatefulSet.apps`, `ConfigMap`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupKind {
    // Kind first: the annotation lists them sorted as kubectl writes them.
    pub kind: String,
    pub group: String,
}

impl fmt::Display for GroupKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.group.is_empty() {
            f.write_str(&self.kind)
        } else {
            write!(f, "{}.{}", self.kind, self.group)
        }
    }
}

impl GroupKind {
    /// Parses one entry of `contains-group-kinds`; kinds have no dots, groups may.
    fn parse(text: &str) -> Option<Self> {
        let (kind, group) = text.split_once('.').unwrap_or((text, ""));
        (!kind.is_empty()).then(|| Self {
            group: group.to_string(),
            kind: kind.to_string(),
        })
    }
}

/// The group-kinds a parent object says its set contains.
pub fn contained_group_kinds(parent: &Value) -> BTreeSet<GroupKind> {
    parent
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(CONTAINS_GROUP_KINDS))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .split(',')
        .filter_map(|entry| GroupKind::parse(entry.trim()))
        .collect()
}

/// The tooling annotation of an existing parent, if any.
pub fn parent_tooling(parent: &Value) -> Option<&str> {
    parent
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(TOOLING))
        .and_then(Value::as_str)
}

/// The set of objects one `(namespace, instance)` render owns, tracked as KEP-3659 describes:
/// a parent Secret `applyset-<instance>` carries the id and the group-kinds; members carry
/// the `part-of` label. kubectl (`--applyset`) understands the same objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplySet {
    pub parent: Target,
    pub id: String,
}

impl ApplySet {
    pub fn new(namespace: &str, instance: &str) -> Self {
        let name = reserved::applyset_parent_name(instance);
        // kubectl's ApplySet.ID(): base64url(sha256("<name>.<namespace>.<kind>.<group>")),
        // wrapped so the label value starts and ends with a letter.
        let digest = Sha256::digest(format!("{name}.{namespace}.Secret.").as_bytes());
        let id = format!("applyset-{}-v1", URL_SAFE_NO_PAD.encode(digest));
        let parent = Target {
            resource: Resource::known("v1", "Secret").expect("Secret is a known kind"),
            namespace: Some(namespace.to_string()),
            name,
        };
        Self { parent, id }
    }

    /// The parent object listing `group_kinds`.
    pub fn parent_body(&self, group_kinds: &BTreeSet<GroupKind>) -> Value {
        let contains: Vec<String> = group_kinds.iter().map(ToString::to_string).collect();
        json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": self.parent.name,
                "namespace": self.parent.namespace,
                "labels": {APPLYSET_ID: self.id},
                "annotations": {
                    TOOLING: tooling(),
                    CONTAINS_GROUP_KINDS: contains.join(","),
                },
            },
        })
    }
}

/// One object to apply, in install order.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub id: ObjectId,
    pub api_version: String,
    /// The rendered body with the ApplySet's `part-of` label.
    pub body: Value,
    /// `None` for kinds the host does not know: the cluster's discovery says.
    pub resource: Option<Resource>,
}

impl Step {
    pub fn group_kind(&self) -> GroupKind {
        GroupKind {
            group: self.id.group.clone(),
            kind: self.id.kind.clone(),
        }
    }

    pub fn target(&self, resource: Resource) -> Target {
        Target {
            resource,
            namespace: self.id.namespace.clone(),
            name: self.id.name.clone(),
        }
    }

    /// The target without a cluster: known kinds exactly, others guessed.
    pub fn offline_target(&self) -> Target {
        let resource = self.resource.clone().unwrap_or_else(|| {
            Resource::guessed(
                &self.api_version,
                &self.id.kind,
                self.id.namespace.is_some(),
            )
        });
        self.target(resource)
    }
}

/// Everything an apply of one render sends, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Changes {
    pub applyset: ApplySet,
    pub steps: Vec<Step>,
}

impl Changes {
    /// `objects` in install order, as `pipeline::render` returns them.
    pub fn new(objects: &[Placed], namespace: &str, instance: &str) -> Self {
        let applyset = ApplySet::new(namespace, instance);
        let steps = objects
            .iter()
            .map(|object| {
                let mut body = object.body.clone();
                if let Some(metadata) = body.get_mut("metadata").and_then(Value::as_object_mut) {
                    let labels = metadata.entry("labels").or_insert_with(|| json!({}));
                    if let Some(labels) = labels.as_object_mut() {
                        labels.insert(PART_OF.into(), Value::String(applyset.id.clone()));
                    }
                }
                Step {
                    id: object.id.clone(),
                    resource: Resource::of_scope(
                        &object.api_version,
                        &object.id.kind,
                        object.scope,
                    ),
                    api_version: object.api_version.clone(),
                    body,
                }
            })
            .collect();
        Self { applyset, steps }
    }

    /// The group-kinds of what this render applies.
    pub fn group_kinds(&self) -> BTreeSet<GroupKind> {
        self.steps.iter().map(Step::group_kind).collect()
    }

    /// Where the parent goes: before the first namespaced object, so a Namespace the render
    /// creates exists by then, and before the members it tracks otherwise.
    pub fn parent_position(&self) -> usize {
        self.steps
            .iter()
            .position(|step| step.id.namespace.is_some())
            .unwrap_or(self.steps.len())
    }
}

/// The parameters of every apply: our field manager; `force` takes fields other managers
/// own; `dry_run` asks the server to check everything and persist nothing.
pub fn patch_params(force: bool, dry_run: bool) -> PatchParams {
    PatchParams {
        force,
        dry_run,
        ..PatchParams::apply(FIELD_MANAGER)
    }
}

/// The request an apply of `body` to `target` is, exactly as kube builds it:
/// `PATCH <path>?<query> (<content type>)`.
pub fn describe_apply(
    target: &Target,
    body: &Value,
    params: &PatchParams,
) -> Result<String, kube::core::request::Error> {
    let request =
        Request::new(target.collection_path()).patch(&target.name, params, &Patch::Apply(body))?;
    let content_type = request
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    Ok(format!(
        "{} {} ({content_type})",
        request.method(),
        request.uri()
    ))
}

/// Which listed objects of `group_kind` a prune deletes: members of this set (by label,
/// checked again here rather than trusting the server's selector) that the render no longer
/// contains.
pub fn prune_candidates<'a>(
    applyset_id: &str,
    group_kind: &GroupKind,
    listed: &'a [DynamicObject],
    rendered: &BTreeSet<ObjectId>,
) -> Vec<&'a DynamicObject> {
    listed
        .iter()
        .filter(|object| object.labels().get(PART_OF).map(String::as_str) == Some(applyset_id))
        .filter(|object| {
            !rendered.contains(&ObjectId {
                group: group_kind.group.clone(),
                kind: group_kind.kind.clone(),
                namespace: object.namespace(),
                name: object.name_any(),
            })
        })
        .collect()
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::model::k8s::{group_of, scope_of};

    pub const NS: &str = "mathison-system";

    /// A rendered object as `pipeline::render` places it, labelled `app: <name>`.
    pub fn placed(api_version: &str, kind: &str, name: &str, namespaced: bool) -> Placed {
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

    /// A ConfigMap, a Service and a StatefulSet, in install order.
    pub fn rendered() -> Vec<Placed> {
        vec![
            placed("v1", "ConfigMap", "config", true),
            placed("v1", "Service", "db", true),
            placed("apps/v1", "StatefulSet", "db", true),
        ]
    }

    #[test]
    fn members_carry_the_sets_label_beside_their_own() {
        let mut objects = rendered();
        objects.push(placed("example.com/v1", "Widget", "w", true));
        let changes = Changes::new(&objects, NS, "mathison");
        for step in &changes.steps {
            let labels = &step.body["metadata"]["labels"];
            assert_eq!(labels[PART_OF], json!(changes.applyset.id));
            assert_eq!(labels["app"], json!(step.id.name));
        }
        // Known kinds need no discovery; a custom resource's kind must be looked up.
        assert_eq!(
            changes.steps[2].resource,
            Resource::known("apps/v1", "StatefulSet")
        );
        assert_eq!(changes.steps[3].resource, None);
    }

    #[test]
    fn applyset_id_is_kubectls_hash_of_the_parent() {
        let id = ApplySet::new(NS, "mathison").id;
        // base64url(sha256("applyset-mathison.mathison-system.Secret.")), as kubectl computes it.
        assert_eq!(
            id,
            "applyset-XLiAzeSqRWHwEaLUYk22OBAXH4duvC2nbqTg5REuHTE-v1"
        );
        assert_ne!(ApplySet::new("other", "mathison").id, id);
    }

    #[test]
    fn the_parent_carries_the_id_our_tooling_and_the_group_kinds_sorted() {
        let changes = Changes::new(&rendered(), NS, "mathison");
        let applyset = &changes.applyset;
        assert_eq!(
            applyset.parent.to_string(),
            format!("Secret {NS}/applyset-mathison")
        );
        let parent = applyset.parent_body(&changes.group_kinds());
        assert_eq!(
            parent["metadata"]["labels"][APPLYSET_ID],
            json!(applyset.id)
        );
        let annotations = &parent["metadata"]["annotations"];
        assert_eq!(
            annotations[CONTAINS_GROUP_KINDS],
            "ConfigMap,Service,StatefulSet.apps"
        );
        assert_eq!(annotations[TOOLING], json!(tooling()));
        // What a later apply reads back from it.
        assert_eq!(contained_group_kinds(&parent), changes.group_kinds());
        assert_eq!(parent_tooling(&parent), Some(tooling().as_str()));
    }

    #[test]
    fn a_rendered_namespace_is_created_before_the_parent_that_lives_in_it() {
        let mut objects = vec![placed("v1", "Namespace", NS, false)];
        objects.extend(rendered());
        assert_eq!(Changes::new(&objects, NS, "mathison").parent_position(), 1);
        assert_eq!(
            Changes::new(&rendered(), NS, "mathison").parent_position(),
            0
        );
    }

    #[test]
    fn prune_deletes_only_this_sets_members_that_are_no_longer_rendered() {
        let changes = Changes::new(&rendered(), NS, "mathison");
        let id = &changes.applyset.id;
        let member = |name: &str, labels: Value| -> DynamicObject {
            serde_json::from_value(json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": name, "namespace": NS, "labels": labels}}))
            .expect("a ConfigMap")
        };
        let listed = [
            member("config", json!({PART_OF: id})),
            member("old", json!({PART_OF: id})),
            // A server that ignored the selector must still not make us delete these.
            member("someone-elses", json!({PART_OF: "applyset-other-v1"})),
            member("unlabelled", json!({})),
        ];
        let rendered: BTreeSet<ObjectId> = changes.steps.iter().map(|s| s.id.clone()).collect();
        let config_maps = GroupKind {
            kind: "ConfigMap".into(),
            group: String::new(),
        };
        let pruned: Vec<String> = prune_candidates(id, &config_maps, &listed, &rendered)
            .iter()
            .map(|object| object.name_any())
            .collect();
        assert_eq!(pruned, ["old"]);
    }
}
