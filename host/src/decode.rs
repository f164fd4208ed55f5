//! Turns what a plugin returned into checked Kubernetes objects.
//!
//! The kinds backing services use (`TYPED_KINDS`) are decoded into their k8s-openapi types and
//! serialised back; that round trip is the canonical form written out, so output never depends
//! on how a plugin formatted its JSON. k8s-openapi ignores unknown fields, so any field of the
//! plugin's JSON that the round trip lost is reported as unknown. Quantities and names, which
//! k8s-openapi keeps as plain strings, are checked here too. Every other kind (the other
//! built-in kinds and custom resources) passes through with its apiVersion, kind and metadata
//! checked; its scope still comes from the table of every built-in kind in `model::k8s`.

use k8s_openapi::Resource;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{
    ConfigMap, LimitRange, Namespace, PersistentVolume, PersistentVolumeClaim, Pod, ResourceQuota,
    Secret, Service, ServiceAccount,
};
use k8s_openapi::api::networking::v1::{Ingress, IngressClass, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::model::contract::Envelope;
use crate::model::k8s::{self, Scope, group_of, is_dns_label, is_dns_subdomain};
use crate::model::object::{Decoded, ObjectId};
use crate::untrusted::{Escaped, shown};
use mathison_quantity::Quantity;

/// Why an object was refused: names the plugin, the object and the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{plugin}: {object}: {}{message}", field_prefix(.path))]
pub struct DecodeError {
    pub plugin: String,
    /// `Kind/name` as the envelope gave it.
    pub object: String,
    /// JSON path of the offending field, empty for the object as a whole.
    pub path: String,
    pub message: String,
}

fn field_prefix(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!("{path}: ")
    }
}

/// A problem at a JSON path, before we know which plugin and object to name.
#[derive(Debug)]
struct Problem {
    path: String,
    message: String,
}

impl Problem {
    fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// Decodes and checks one object returned by `plugin`.
pub fn decode(plugin: &str, envelope: &Envelope) -> Result<Decoded, DecodeError> {
    decode_envelope(envelope).map_err(|problem| DecodeError {
        plugin: plugin.to_string(),
        // Not yet checked: shown escaped.
        object: format!("{}/{}", Escaped(&envelope.kind), Escaped(&envelope.name)),
        // Paths hold the plugin's keys, messages its values: both shown escaped.
        path: shown(&problem.path),
        message: shown(&problem.message),
    })
}

fn decode_envelope(envelope: &Envelope) -> Result<Decoded, Problem> {
    let body: Value = serde_json::from_str(&envelope.body)
        .map_err(|e| Problem::new("", format!("the body is not valid JSON: {e}")))?;
    check_envelope(envelope, &body)?;

    let scope = k8s::scope_of(&envelope.api_version, &envelope.kind);
    let (body, typed) = match typed_kind(&envelope.api_version, &envelope.kind) {
        Some(kind) => ((kind.canonicalize)(&body)?, true),
        None => (canonicalize_untyped(&body)?, false),
    };
    if scope == Scope::Cluster && envelope.namespace.is_some() {
        return Err(Problem::new(
            "metadata.namespace",
            format!(
                "{} is cluster-scoped and has no namespace; leave it out",
                envelope.kind
            ),
        ));
    }
    check_name(&envelope.kind, &body)?;
    check_metadata(&body)?;
    check_data(&envelope.kind, &body)?;
    for_each_object(&body, &mut Vec::new(), &mut |map, path| {
        check_container_names(map, path)?;
        check_quantity_fields(map, path)
    })?;

    Ok(Decoded {
        id: ObjectId {
            group: group_of(&envelope.api_version).to_string(),
            kind: envelope.kind.clone(),
            namespace: envelope.namespace.clone(),
            name: envelope.name.clone(),
        },
        api_version: envelope.api_version.clone(),
        scope,
        typed,
        body,
    })
}

/// The envelope must tell the truth about the body.
fn check_envelope(envelope: &Envelope, body: &Value) -> Result<(), Problem> {
    let Some(object) = body.as_object() else {
        return Err(Problem::new("", "the body is not a JSON object"));
    };
    let field = |name: &str| object.get(name).and_then(Value::as_str);
    let metadata = object.get("metadata").and_then(Value::as_object);
    let meta_field = |name: &str| metadata.and_then(|m| m.get(name)).and_then(Value::as_str);

    let pairs = [
        (
            "apiVersion",
            field("apiVersion"),
            Some(envelope.api_version.as_str()),
        ),
        ("kind", field("kind"), Some(envelope.kind.as_str())),
        (
            "metadata.name",
            meta_field("name"),
            Some(envelope.name.as_str()),
        ),
        (
            "metadata.namespace",
            meta_field("namespace"),
            envelope.namespace.as_deref(),
        ),
    ];
    for (path, in_body, in_envelope) in pairs {
        if in_body != in_envelope {
            return Err(Problem::new(
                path,
                format!(
                    "is {} in the body but {} in the envelope; they must match",
                    describe(in_body),
                    describe(in_envelope)
                ),
            ));
        }
    }
    if !k8s::is_api_version(&envelope.api_version) {
        return Err(Problem::new(
            "apiVersion",
            format!(
                "{:?} is not an apiVersion; expected `v1` or `group/version`",
                envelope.api_version
            ),
        ));
    }
    if !k8s::is_kind(&envelope.kind) {
        return Err(Problem::new(
            "kind",
            format!(
                "{:?} is not a kind; expected e.g. `ConfigMap`",
                envelope.kind
            ),
        ));
    }
    if k8s::is_list_kind(&envelope.kind) {
        return Err(Problem::new(
            "kind",
            format!(
                "{} is a list, which `kubectl apply` would expand into objects the host never \
                 checked; return each object on its own",
                envelope.kind
            ),
        ));
    }
    Ok(())
}

fn describe(value: Option<&str>) -> String {
    value.map_or_else(|| "missing".to_string(), |v| format!("{v:?}"))
}

/// How to decode one known kind.
struct TypedKind {
    api_version: &'static str,
    kind: &'static str,
    canonicalize: fn(&Value) -> Result<Value, Problem>,
}

macro_rules! typed_kinds {
    ($($ty:ty),* $(,)?) => {
        &[$(TypedKind {
            api_version: <$ty as Resource>::API_VERSION,
            kind: <$ty as Resource>::KIND,
            canonicalize: canonicalize::<$ty>,
        }),*]
    };
}

/// The kinds decoded into k8s-openapi types (Kubernetes 1.33 API).
const TYPED_KINDS: &[TypedKind] = typed_kinds![
    Namespace,
    ConfigMap,
    Secret,
    Service,
    ServiceAccount,
    PersistentVolumeClaim,
    PersistentVolume,
    Pod,
    ResourceQuota,
    LimitRange,
    StatefulSet,
    Deployment,
    DaemonSet,
    ReplicaSet,
    Job,
    CronJob,
    NetworkPolicy,
    Ingress,
    IngressClass,
    PodDisruptionBudget,
    Role,
    RoleBinding,
    ClusterRole,
    ClusterRoleBinding,
    StorageClass,
    HorizontalPodAutoscaler,
    CustomResourceDefinition,
];

fn typed_kind(api_version: &str, kind: &str) -> Option<&'static TypedKind> {
    TYPED_KINDS
        .iter()
        .find(|k| k.api_version == api_version && k.kind == kind)
}

/// Decodes `body` as `K` and serialises it back, refusing fields the type does not have.
fn canonicalize<K: DeserializeOwned + Serialize>(body: &Value) -> Result<Value, Problem> {
    let typed: K = serde_path_to_error::deserialize(body).map_err(|e| {
        let path = e.path().to_string();
        Problem::new(
            if path == "." { String::new() } else { path },
            e.into_inner().to_string(),
        )
    })?;
    let canonical = serde_json::to_value(&typed)
        .map_err(|e| Problem::new("", format!("cannot serialise the object: {e}")))?;
    find_unknown_field(body, &canonical, &mut Vec::new())?;
    Ok(canonical)
}

/// Custom resources: only metadata has a schema the host knows.
fn canonicalize_untyped(body: &Value) -> Result<Value, Problem> {
    let mut body = body.clone();
    let metadata = body
        .get("metadata")
        .ok_or_else(|| Problem::new("metadata", "is missing"))?;
    let canonical = canonicalize::<ObjectMeta>(metadata).map_err(|p| Problem {
        path: join_path("metadata", &p.path),
        message: p.message,
    })?;
    body["metadata"] = canonical;
    Ok(body)
}

fn join_path(parent: &str, child: &str) -> String {
    match (parent.is_empty(), child.is_empty()) {
        (_, true) => parent.to_string(),
        (true, false) => child.to_string(),
        (false, false) if child.starts_with('[') => format!("{parent}{child}"),
        (false, false) => format!("{parent}.{child}"),
    }
}

/// A path segment, for messages like `spec.containers[0].name`.
#[derive(Debug, Clone)]
enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

fn path_string(path: &[Segment<'_>]) -> String {
    let mut out = String::new();
    for segment in path {
        match segment {
            Segment::Key(key) if out.is_empty() => out.push_str(key),
            Segment::Key(key) => {
                out.push('.');
                out.push_str(key);
            }
            Segment::Index(index) => out.push_str(&format!("[{index}]")),
        }
    }
    out
}

fn find_unknown_field<'a>(
    original: &'a Value,
    canonical: &Value,
    path: &mut Vec<Segment<'a>>,
) -> Result<(), Problem> {
    match (original, canonical) {
        (Value::Object(original), Value::Object(canonical)) => {
            for (key, value) in original {
                path.push(Segment::Key(key));
                match canonical.get(key) {
                    Some(kept) => find_unknown_field(value, kept, path)?,
                    // An explicit null means "unset"; dropping it loses nothing.
                    None if value.is_null() => {}
                    None => {
                        return Err(Problem::new(
                            path_string(path),
                            "unknown field: the Kubernetes API has no such field here \
                             (check its spelling and indentation)",
                        ));
                    }
                }
                path.pop();
            }
            Ok(())
        }
        (Value::Array(original), Value::Array(canonical)) => {
            for (index, (value, kept)) in original.iter().zip(canonical).enumerate() {
                path.push(Segment::Index(index));
                find_unknown_field(value, kept, path)?;
                path.pop();
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// The API server would refuse an invalid `metadata.name`.
fn check_name(kind: &str, body: &Value) -> Result<(), Problem> {
    let Some(name) = metadata_field(body, "name").and_then(Value::as_str) else {
        return Ok(());
    };
    // Services and Namespaces become DNS labels; everything else a DNS subdomain.
    let (ok, expected) = match kind {
        "Service" => (
            is_dns_label(name) && name.starts_with(|c: char| c.is_ascii_lowercase()),
            "a DNS-1035 label: at most 63 lower-case letters, digits and '-', starting with a letter",
        ),
        "Namespace" => (
            is_dns_label(name),
            "a DNS-1123 label: at most 63 lower-case letters, digits and '-'",
        ),
        _ => (
            is_dns_subdomain(name),
            "a DNS-1123 subdomain: lower-case letters, digits, '-' and '.', at most 253",
        ),
    };
    if ok {
        Ok(())
    } else {
        Err(Problem::new(
            "metadata.name",
            format!("{name:?} is not a valid name; expected {expected}"),
        ))
    }
}

/// `metadata.<field>` of `body`. (Not `Value::pointer`: it allocates for each of its
/// segments, a twentieth of decoding a 1000-object render.)
fn metadata_field<'a>(body: &'a Value, field: &str) -> Option<&'a Value> {
    body.get("metadata")?.get(field)
}

/// Label and annotation keys and values as the API server validates them.
fn check_metadata(body: &Value) -> Result<(), Problem> {
    let strings = |field: &str| {
        metadata_field(body, field)
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .map(|(key, value)| (key, value.as_str().unwrap_or_default()))
    };
    let invalid = |field: &str, what: String| Err(Problem::new(format!("metadata.{field}"), what));
    for (key, value) in strings("labels") {
        if !k8s::is_qualified_name(key) {
            return invalid(
                "labels",
                format!(
                    "{:?} is not a valid label key; expected [prefix/]name, the name at most 63 letters, digits, '-', '_' and '.'",
                    Escaped(key)
                ),
            );
        }
        if !k8s::is_label_value(value) {
            return invalid(
                "labels",
                format!(
                    "the value of {key} ({:?}) is not a valid label value; expected at most 63 letters, digits, '-', '_' and '.', beginning and ending with a letter or digit",
                    Escaped(value)
                ),
            );
        }
    }
    let mut annotations_size = 0usize;
    for (key, value) in strings("annotations") {
        if !k8s::is_qualified_name(key) {
            return invalid(
                "annotations",
                format!(
                    "{:?} is not a valid annotation key; expected [prefix/]name",
                    Escaped(key)
                ),
            );
        }
        annotations_size += key.len() + value.len();
    }
    if annotations_size > k8s::MAX_ANNOTATIONS_BYTES {
        return invalid(
            "annotations",
            format!(
                "hold {annotations_size} bytes; the API server accepts at most {}",
                k8s::MAX_ANNOTATIONS_BYTES
            ),
        );
    }
    Ok(())
}

/// ConfigMap and Secret keys, and their total size, as the API server validates them.
fn check_data(kind: &str, body: &Value) -> Result<(), Problem> {
    let fields: &[&str] = match kind {
        "ConfigMap" => &["data", "binaryData"],
        "Secret" => &["data", "stringData"],
        _ => return Ok(()),
    };
    let mut size = 0usize;
    for field in fields {
        let Some(entries) = body.get(*field).and_then(Value::as_object) else {
            continue;
        };
        for (key, value) in entries {
            if !k8s::is_data_key(key) {
                return Err(Problem::new(
                    field.to_string(),
                    format!(
                        "{:?} is not a valid key; expected at most {} letters, digits, '-', '_' and '.'",
                        Escaped(key),
                        k8s::MAX_DATA_KEY_LEN
                    ),
                ));
            }
            size += key.len() + value.as_str().map_or(0, str::len);
        }
    }
    if size > k8s::MAX_DATA_BYTES {
        return Err(Problem::new(
            "data",
            format!(
                "holds {size} bytes; a {kind} may hold at most {} (1 MiB)",
                k8s::MAX_DATA_BYTES
            ),
        ));
    }
    Ok(())
}

/// Calls `check` on every JSON object inside `value` (itself included), depth first, with its
/// path. Depth is bounded by serde_json's nesting limit, which parsing already enforced.
fn for_each_object<'a>(
    value: &'a Value,
    path: &mut Vec<Segment<'a>>,
    check: &mut impl FnMut(&'a Map<String, Value>, &[Segment<'a>]) -> Result<(), Problem>,
) -> Result<(), Problem> {
    match value {
        Value::Object(map) => {
            check(map, path)?;
            for (key, child) in map {
                path.push(Segment::Key(key));
                for_each_object(child, path, check)?;
                path.pop();
            }
        }
        Value::Array(items) => {
            for (index, child) in items.iter().enumerate() {
                path.push(Segment::Index(index));
                for_each_object(child, path, check)?;
                path.pop();
            }
        }
        _ => {}
    }
    Ok(())
}

/// Container names become DNS labels (and pod hostnames' parts).
fn check_container_names<'a>(
    map: &'a Map<String, Value>,
    path: &[Segment<'a>],
) -> Result<(), Problem> {
    for key in ["containers", "initContainers"] {
        let Some(containers) = map.get(key).and_then(Value::as_array) else {
            continue;
        };
        for (index, container) in containers.iter().enumerate() {
            let name = container.get("name").and_then(Value::as_str).unwrap_or("");
            if !is_dns_label(name) {
                let field = [
                    Segment::Key(key),
                    Segment::Index(index),
                    Segment::Key("name"),
                ];
                return Err(Problem::new(
                    path_string(&[path, &field].concat()),
                    format!("{name:?} is not a valid container name; expected a DNS-1123 label"),
                ));
            }
        }
    }
    Ok(())
}

/// Checks every field that holds a quantity: resource limits and requests, quotas, capacities,
/// overheads and emptyDir size limits.
fn check_quantity_fields<'a>(
    map: &'a Map<String, Value>,
    path: &[Segment<'a>],
) -> Result<(), Problem> {
    let holds_quantities = is_quantity_map(path);
    for (key, child) in map {
        if holds_quantities || key == "sizeLimit" {
            let text = child.as_str().unwrap_or_default();
            text.parse::<Quantity>().map_err(|e| {
                Problem::new(
                    path_string(&[path, &[Segment::Key(key)]].concat()),
                    e.to_string(),
                )
            })?;
        }
    }
    Ok(())
}

/// Whether the object at `path` maps resource names to quantities.
fn is_quantity_map(path: &[Segment<'_>]) -> bool {
    let key = |back: usize| match path.len().checked_sub(back).map(|i| &path[i]) {
        Some(Segment::Key(key)) => Some(*key),
        _ => None,
    };
    match key(1) {
        Some("limits" | "requests") => key(2) == Some("resources"),
        Some("hard" | "capacity" | "overhead") => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// An envelope that tells the truth about `body`, carrying `text` as the body.
    pub(super) fn envelope_of(body: &Value, text: String) -> Envelope {
        Envelope {
            api_version: body["apiVersion"].as_str().unwrap_or_default().to_string(),
            kind: body["kind"].as_str().unwrap_or_default().to_string(),
            name: body["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            namespace: body["metadata"]["namespace"].as_str().map(str::to_string),
            body: text,
        }
    }

    fn envelope(body: Value) -> Envelope {
        envelope_of(&body, body.to_string())
    }

    fn error(body: Value) -> String {
        match decode("redis.wasm", &envelope(body)) {
            Ok(decoded) => panic!("expected an error, decoded {decoded:?}"),
            Err(e) => e.to_string(),
        }
    }

    fn statefulset(memory: &str) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "redis"},
            "spec": {
                "serviceName": "redis-headless",
                "selector": {"matchLabels": {"app": "redis"}},
                "template": {
                    "metadata": {"labels": {"app": "redis"}},
                    "spec": {"containers": [{
                        "name": "redis", "image": "redis:7-alpine",
                        "resources": {"limits": {"memory": memory}}
                    }]}
                }
            }
        })
    }

    #[test]
    fn decodes_a_known_kind_into_canonical_form() {
        let decoded = decode("redis.wasm", &envelope(statefulset("256Mi")));
        let decoded = decoded.unwrap_or_else(|e| panic!("{e}"));
        assert!(decoded.typed && decoded.scope == Scope::Namespaced);
        assert_eq!(decoded.id.group, "apps");
        assert_eq!(
            decoded
                .body
                .pointer("/spec/template/spec/containers/0/resources/limits/memory"),
            Some(&json!("256Mi"))
        );
    }

    #[test]
    fn bad_quantity_names_plugin_object_and_path() {
        assert_eq!(
            error(statefulset("256 MB")),
            "redis.wasm: StatefulSet/redis: spec.template.spec.containers[0].resources.limits.memory: \
             \"256 MB\" is not a Kubernetes quantity; try \"256Mi\""
        );
    }

    #[test]
    fn unknown_field_is_refused_with_its_path() {
        let mut body = statefulset("256Mi");
        body["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = json!("Always");
        assert!(
            error(body)
                .contains("spec.template.spec.containers[0].imagePullPolicyy: unknown field")
        );
    }

    #[test]
    fn wrong_type_is_refused_with_its_path() {
        let mut body = statefulset("256Mi");
        body["spec"]["replicas"] = json!("one");
        let message = error(body);
        assert!(
            message.starts_with("redis.wasm: StatefulSet/redis: spec.replicas: invalid type"),
            "{message}"
        );
    }

    #[test]
    fn names_must_be_dns_1123() {
        let mut body = statefulset("256Mi");
        body["metadata"]["name"] = json!("Redis_Primary");
        assert!(error(body).contains("metadata.name: \"Redis_Primary\" is not a valid name"));
        let mut body = statefulset("256Mi");
        body["spec"]["template"]["spec"]["containers"][0]["name"] = json!("Redis");
        assert!(error(body).contains("spec.template.spec.containers[0].name: \"Redis\""));
    }

    #[test]
    fn envelope_must_match_body() {
        let mut env = envelope(statefulset("256Mi"));
        env.name = "other".into();
        let message = decode("p", &env).unwrap_err().to_string();
        assert!(
            message
                .contains("metadata.name: is \"redis\" in the body but \"other\" in the envelope")
        );
    }

    #[test]
    fn invalid_json_and_deep_nesting_are_errors_not_crashes() {
        let mut env = envelope(statefulset("1"));
        env.body = "{not json".into();
        assert!(decode("p", &env).is_err());
        env.body = "[".repeat(100_000) + &"]".repeat(100_000);
        assert!(decode("p", &env).is_err());
    }

    #[test]
    fn custom_resources_pass_through_with_metadata_checked() {
        let body = json!({
            "apiVersion": "example.com/v1", "kind": "Widget",
            "metadata": {"name": "redis", "namespace": "mathison-system"},
            "spec": {"endpoints": [{"port": "metrics"}]}
        });
        let decoded = decode("p", &envelope(body.clone())).unwrap_or_else(|e| panic!("{e}"));
        assert!(!decoded.typed && decoded.scope == Scope::Unknown);
        assert_eq!(decoded.body["spec"], body["spec"]);

        let mut bad = body;
        bad["metadata"]["labelz"] = json!({});
        assert!(error(bad).contains("metadata.labelz: unknown field"));
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    /// Valid objects to mutate: a typed kind with quantities and containers, a plain one and a
    /// custom resource.
    fn seeds() -> Vec<Value> {
        vec![
            json!({
                "apiVersion": "apps/v1", "kind": "StatefulSet",
                "metadata": {"name": "redis", "labels": {"app": "redis"}},
                "spec": {
                    "serviceName": "redis", "replicas": 1,
                    "selector": {"matchLabels": {"app": "redis"}},
                    "template": {
                        "metadata": {"labels": {"app": "redis"}},
                        "spec": {"containers": [{
                            "name": "redis", "image": "redis:7",
                            "resources": {"limits": {"memory": "256Mi", "cpu": "500m"}}
                        }]}
                    }
                }
            }),
            json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "settings", "namespace": "ns"},
                "data": {"a": "b"}
            }),
            json!({
                "apiVersion": "example.com/v1", "kind": "Widget",
                "metadata": {"name": "w", "namespace": "ns"},
                "spec": {"size": [1, 2, {"x": null}]}
            }),
        ]
    }

    use super::tests::envelope_of;

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            "[a-zA-Z0-9 .-]{0,12}".prop_map(Value::from),
            Just(Value::from("10 GB")),
            Just(Value::from("Bad_Name")),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                prop::collection::btree_map("[a-zA-Z]{1,10}", inner, 0..4)
                    .prop_map(|map| Value::Object(map.into_iter().collect())),
            ]
        })
    }

    /// Follows `steps` into `value` (each picks a child by index) and replaces what it reaches
    /// with `replacement`; at an object, an odd final step adds a key instead.
    fn mutate(value: &mut Value, steps: &[usize], replacement: Value) {
        match (value, steps) {
            (Value::Object(map), [step, rest @ ..]) if !map.is_empty() => {
                if rest.is_empty() && step % 2 == 1 {
                    map.insert(format!("extra{step}"), replacement);
                } else if let Some((_, child)) = {
                    let len = map.len();
                    map.iter_mut().nth(step % len)
                } {
                    mutate(child, rest, replacement);
                }
            }
            (Value::Array(items), [step, rest @ ..]) if !items.is_empty() => {
                let len = items.len();
                mutate(&mut items[step % len], rest, replacement);
            }
            (value, _) => *value = replacement,
        }
    }

    /// The error must name the plugin and the object as the envelope gave it.
    fn check_error_names(
        envelope: &Envelope,
        result: &Result<Decoded, DecodeError>,
    ) -> Result<(), TestCaseError> {
        if let Err(error) = result {
            let prefix = format!("p.wasm: {}/{}: ", envelope.kind, envelope.name);
            prop_assert!(error.to_string().starts_with(&prefix), "{error}");
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn arbitrary_bodies_never_panic(
            seed in 0..3usize, text in any::<String>(), kind in "[A-Za-z]{0,12}"
        ) {
            let mut envelope = envelope_of(&seeds()[seed], text);
            envelope.kind = kind;
            let result = decode("p.wasm", &envelope);
            check_error_names(&envelope, &result)?;
        }

        #[test]
        fn mutated_text_never_panics(
            seed in 0..3usize,
            edits in prop::collection::vec((any::<prop::sample::Index>(), any::<char>(), 0..3u8), 1..6)
        ) {
            let body = &seeds()[seed];
            let mut text: Vec<char> = body.to_string().chars().collect();
            for (at, c, operation) in edits {
                let at = at.index(text.len() + 1);
                match operation {
                    0 => text.insert(at, c),
                    1 if at < text.len() => { text.remove(at); }
                    _ if at < text.len() => text[at] = c,
                    _ => {}
                }
            }
            let envelope = envelope_of(body, text.into_iter().collect());
            let result = decode("p.wasm", &envelope);
            check_error_names(&envelope, &result)?;
        }

        #[test]
        fn mutated_objects_never_panic_and_decode_to_a_fixed_point(
            seed in 0..3usize,
            steps in prop::collection::vec(any::<usize>(), 0..7),
            replacement in json_value()
        ) {
            let original = &seeds()[seed];
            let mut body = original.clone();
            mutate(&mut body, &steps, replacement);
            // The envelope keeps telling the seed's story, as a lying plugin's would.
            let envelope = envelope_of(original, body.to_string());
            let result = decode("p.wasm", &envelope);
            check_error_names(&envelope, &result)?;
            // What the host accepted is canonical: decoding it again changes nothing.
            if let Ok(decoded) = result {
                let again = decode("p.wasm", &envelope_of(original, decoded.body.to_string()));
                prop_assert_eq!(again, Ok(decoded));
            }
        }
    }
}
