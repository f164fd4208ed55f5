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
