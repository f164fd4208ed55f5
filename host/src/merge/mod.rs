//! Joins the objects of every plugin into one set.
//!
//! Identity is group/kind/namespace/name: two plugins (or one plugin twice) claiming one
//! identity is an error naming both (or it). Namespaced objects get the render namespace, every
//! object the recommended labels it lacks, and the connection values of all plugins become the
//! host's own objects (`connections.rs`).

mod connections;

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde_json::{Map, Value};

pub use connections::ConnectionError;
use connections::Connections;

use crate::model::contract::ConnectionValue;
use crate::model::k8s::{Scope, is_label_value};
use crate::model::object::{Decoded, ObjectId, Placed};
use crate::model::reserved::{HOST_ORIGIN, PROVENANCE_ANNOTATION};
use crate::secret_inputs::SecretInputs;

/// A plugin's contribution to the render.
#[derive(Debug, Clone)]
pub struct PluginObjects {
    /// The plugin's `info` name; also its output file stem and label value.
    pub name: String,
    /// The plugin's file as the user gave it, so that errors name what the user can look at.
    pub source: String,
    pub version: String,
    pub objects: Vec<Decoded>,
    pub connection_values: Vec<ConnectionValue>,
    /// The provenance annotation's value for these objects, with `--provenance`.
    pub provenance: Option<String>,
}

/// What merge needs to know about the render.
#[derive(Debug, Clone, Default)]
pub struct MergeSettings {
    pub namespace: String,
    pub instance: String,
    /// Secret inputs the user supplied, each bound to a plugin (`--secret-input`).
    pub secret_inputs: SecretInputs,
    /// The provenance annotation's value for the host's own objects, with `--provenance`.
    pub host_provenance: Option<String>,
}

/// The merged set, in no particular order yet, and notes for the user.
#[derive(Debug, Clone, Default)]
pub struct Merged {
    pub objects: Vec<Placed>,
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MergeError {
    #[error(
        "{id} is rendered by both {first} and {second}; one object can have only one owner \
         (disable it in one of them)"
    )]
    Conflict {
        id: Box<ObjectId>,
        first: String,
        second: String,
    },
    #[error("{plugin}: {id} is returned twice; a plugin must return each object once")]
    Duplicate { id: Box<ObjectId>, plugin: String },
    #[error(transparent)]
    Connection(#[from] ConnectionError),
}

/// A plugin as errors name it: its own name and the file it came from, since a plugin chooses
/// its name and could take another's.
#[derive(Debug, Clone, Copy)]
pub struct PluginRef<'a> {
    pub name: &'a str,
    pub source: &'a str,
}

impl fmt::Display for PluginRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name, self.source)
    }
}

/// Merges the plugins' objects and generates the host's own.
pub fn merge(plugins: Vec<PluginObjects>, settings: &MergeSettings) -> Result<Merged, MergeError> {
    let mut merged = Merged::default();
    // Identity → who claimed it, as errors name it.
    let mut owners: HashMap<ObjectId, String> = HashMap::new();
    let mut connections = Connections::default();

    for plugin in plugins {
        let owner = PluginRef {
            name: &plugin.name,
            source: &plugin.source,
        };
        for value in &plugin.connection_values {
            connections.add(owner, value, settings, &mut merged.notes)?;
        }
        let labels = recommended_labels(&plugin.name, &plugin.version, &settings.instance);
        let owner = owner.to_string();
        for object in plugin.objects {
            let mut placed = place(&plugin.name, object, &labels, settings);
            claim(&mut owners, &placed.id, &owner)?;
            annotate_provenance(&mut placed, plugin.provenance.as_deref());
            merged.objects.push(placed);
        }
    }
    for mut placed in connections.into_objects(settings)? {
        claim(&mut owners, &placed.id, HOST_ORIGIN)?;
        annotate_provenance(&mut placed, settings.host_provenance.as_deref());
        merged.objects.push(placed);
    }
    Ok(merged)
}

fn claim(
    owners: &mut HashMap<ObjectId, String>,
    id: &ObjectId,
    owner: &str,
) -> Result<(), MergeError> {
    match owners.insert(id.clone(), owner.to_string()) {
        None => Ok(()),
        Some(first) if first == owner => Err(MergeError::Duplicate {
            id: Box::new(id.clone()),
            plugin: first,
        }),
        Some(first) => Err(MergeError::Conflict {
            id: Box::new(id.clone()),
            first,
            second: owner.to_string(),
        }),
    }
}

fn place(
    origin: &str,
    object: Decoded,
    labels: &BTreeMap<String, String>,
    settings: &MergeSettings,
) -> Placed {
    let mut id = object.id;
    let mut body = object.body;
    // An object of unknown scope keeps the namespace it named (policy made sure it is the
    // render's) or none.
    let namespaced = object.scope == Scope::Namespaced;
    if namespaced {
        id.namespace = Some(settings.namespace.clone());
    }
    if let Some(metadata) = body.get_mut("metadata").and_then(Value::as_object_mut) {
        if namespaced {
            metadata.insert(
                "namespace".into(),
                Value::String(settings.namespace.clone()),
            );
        }
        add_missing_labels(metadata, labels);
    }
    Placed {
        origin: origin.to_string(),
        id,
        api_version: object.api_version,
        scope: object.scope,
        body,
    }
}

/// Sets the provenance annotation, when there is one to set; policy made sure no plugin set it.
fn annotate_provenance(placed: &mut Placed, provenance: Option<&str>) {
    let Some(provenance) = provenance else {
        return;
    };
    if let Some(metadata) = placed
        .body
        .get_mut("metadata")
        .and_then(Value::as_object_mut)
    {
        let annotations = metadata
            .entry("annotations")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(annotations) = annotations.as_object_mut() {
            annotations.insert(
                PROVENANCE_ANNOTATION.to_string(),
                Value::String(provenance.to_string()),
            );
        }
    }
}

/// The `app.kubernetes.io` labels Kubernetes recommends, for objects of plugin `name`.
pub fn recommended_labels(name: &str, version: &str, instance: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::from([
        ("app.kubernetes.io/name".to_string(), name.to_string()),
        (
            "app.kubernetes.io/instance".to_string(),
            instance.to_string(),
        ),
        (
            "app.kubernetes.io/component".to_string(),
            "backing-service".to_string(),
        ),
        (
            "app.kubernetes.io/part-of".to_string(),
            "mathison".to_string(),
        ),
        (
            "app.kubernetes.io/managed-by".to_string(),
            HOST_ORIGIN.to_string(),
        ),
    ]);
    // A version that is not a valid label value (e.g. `1.0.0+build`) is left out, not mangled.
    if is_label_value(version) {
        labels.insert("app.kubernetes.io/version".to_string(), version.to_string());
    }
    labels
}

fn add_missing_labels(metadata: &mut Map<String, Value>, labels: &BTreeMap<String, String>) {
    let existing = metadata
        .entry("labels")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Some(existing) = existing.as_object_mut() {
        for (key, value) in labels {
            existing
                .entry(key.clone())
                .or_insert_with(|| Value::String(value.clone()));
        }
        // Keep label order independent of who set which label.
        existing.sort_keys();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::k8s;
    use crate::model::object::testing;
    use crate::model::reserved::CONNECTIONS_NAME;
    use serde_json::json;

    pub(super) fn object(kind: &str, name: &str) -> Decoded {
        testing::decoded(
            kind,
            name,
            json!({"apiVersion": "v1", "kind": kind, "metadata": {"name": name, "labels": {"app.kubernetes.io/component": "database"}}}),
        )
    }

    fn plugin(name: &str, objects: Vec<Decoded>, values: Vec<ConnectionValue>) -> PluginObjects {
        PluginObjects {
            name: name.into(),
            source: format!("{name}.wasm"),
            version: "1.2.3".into(),
            objects,
            connection_values: values,
            provenance: None,
        }
    }

    fn settings() -> MergeSettings {
        MergeSettings {
            namespace: "ns".into(),
            instance: "mathison".into(),
            ..MergeSettings::default()
        }
    }

    fn value(key: &str, value: &str, input: Option<&str>) -> ConnectionValue {
        ConnectionValue {
            key: key.into(),
            value: value.into(),
            secret_input: input.map(Into::into),
        }
    }

    #[test]
    fn provenance_is_annotated_on_every_object_only_when_asked_for() {
        let annotated = |objects: &[Placed]| {
            objects
                .iter()
                .map(|o| {
                    o.body["metadata"]["annotations"][PROVENANCE_ANNOTATION]
                        .as_str()
                        .map(str::to_string)
                })
                .collect::<Vec<_>>()
        };
        let plugins = || {
            vec![plugin(
                "redis",
                vec![object("Service", "redis")],
                vec![value("REDIS_URL", "redis://redis", None)],
            )]
        };
        let plain = merge(plugins(), &settings()).unwrap();
        assert!(annotated(&plain.objects).iter().all(Option::is_none));

        let mut asked = plugins();
        asked[0].provenance = Some("from redis".into());
        let with = MergeSettings {
            host_provenance: Some("from the host".into()),
            ..settings()
        };
        let merged = merge(asked, &with).unwrap();
        let found = annotated(&merged.objects);
        assert_eq!(found[0].as_deref(), Some("from redis"));
        assert!(
            found[1..]
                .iter()
                .all(|a| a.as_deref() == Some("from the host")),
            "{found:?}"
        );
    }

    #[test]
    fn sets_namespace_and_fills_missing_labels_only() {
        let merged = merge(
            vec![plugin("redis", vec![object("Service", "redis")], vec![])],
            &settings(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let body = &merged.objects[0].body;
        assert_eq!(body["metadata"]["namespace"], "ns");
        assert_eq!(merged.objects[0].id.namespace.as_deref(), Some("ns"));
        let labels = &body["metadata"]["labels"];
        assert_eq!(labels["app.kubernetes.io/component"], "database");
        assert_eq!(labels["app.kubernetes.io/managed-by"], "mathison-host");
        assert_eq!(labels["app.kubernetes.io/name"], "redis");
        assert_eq!(labels["app.kubernetes.io/version"], "1.2.3");
    }

    #[test]
    fn same_identity_from_two_plugins_names_both() {
        let error = merge(
            vec![
                plugin("postgres", vec![object("Service", "db")], vec![]),
                plugin("pgbouncer", vec![object("Service", "db")], vec![]),
            ],
            &settings(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.starts_with(
                "Service/db is rendered by both postgres (postgres.wasm) and pgbouncer (pgbouncer.wasm)"
            ),
            "{error}"
        );
    }

    #[test]
    fn duplicates_inside_one_plugin_are_refused() {
        let error = merge(
            vec![plugin(
                "p",
                vec![object("Service", "a"), object("Service", "a")],
                vec![],
            )],
            &settings(),
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            error,
            "p (p.wasm): Service/a is returned twice; a plugin must return each object once"
        );
    }

    #[test]
    fn plugins_cannot_claim_the_host_connections_object() {
        let result = merge(
            vec![plugin(
                "p",
                vec![object("ConfigMap", CONNECTIONS_NAME)],
                vec![value("A", "b", None)],
            )],
            &settings(),
        );
        assert!(matches!(result, Err(MergeError::Conflict { .. })));
    }

    #[test]
    fn connection_values_go_to_configmap_and_secret_only_with_input() {
        let values = vec![
            value("REDIS_URL", "redis://redis:6379", None),
            value("DATABASE_URL", "postgresql://u:{secret}@db/x", Some("pw")),
        ];
        let without = merge(vec![plugin("p", vec![], values.clone())], &settings()).unwrap();
        assert_eq!(without.objects.len(), 1);
        assert_eq!(
            without.objects[0].body["data"]["REDIS_URL"],
            "redis://redis:6379"
        );
        assert!(without.notes[0].contains("--secret-input p.pw=file:PATH"));
        assert!(!without.objects[0].body.to_string().contains("DATABASE_URL"));

        let mut with = settings();
        with.secret_inputs.insert("p", "pw", "p@ss:w/rd");
        // Bound to `p`: another plugin asking for the same input gets nothing.
        let thief = vec![value("STOLEN_URL", "x://{secret}", Some("pw"))];
        let merged = merge(
            vec![plugin("p", vec![], values), plugin("thief", vec![], thief)],
            &with,
        )
        .unwrap();
        assert!(
            !merged
                .objects
                .iter()
                .any(|o| o.body.to_string().contains("STOLEN_URL"))
        );
        assert!(
            merged
                .notes
                .iter()
                .any(|n| n.starts_with("thief (thief.wasm): STOLEN_URL is not rendered"))
        );
        let secret = merged
            .objects
            .iter()
            .find(|o| o.id.kind == "Secret")
            .map(|o| &o.body);
        // base64 of postgresql://u:p%40ss%3Aw%2Frd@db/x
        assert_eq!(
            secret.map(|s| s["data"]["DATABASE_URL"].clone()),
            Some(json!("cG9zdGdyZXNxbDovL3U6cCU0MHNzJTNBdyUyRnJkQGRiL3g="))
        );
    }

    #[test]
    fn connection_keys_are_checked_and_unique() {
        let bad = merge(
            vec![plugin("p", vec![], vec![value("redis-url", "x", None)])],
            &settings(),
        );
        assert!(matches!(
            bad,
            Err(MergeError::Connection(
                ConnectionError::InvalidConnectionKey { .. }
            ))
        ));
        let long = merge(
            vec![plugin(
                "p",
                vec![],
                vec![value(&"K".repeat(254), "x", None)],
            )],
            &settings(),
        );
        assert!(matches!(
            long,
            Err(MergeError::Connection(
                ConnectionError::InvalidConnectionKey { .. }
            ))
        ));
        let huge = merge(
            vec![plugin(
                "p",
                vec![],
                vec![value("K", &"x".repeat(k8s::MAX_DATA_BYTES), None)],
            )],
            &settings(),
        );
        assert!(matches!(
            huge,
            Err(MergeError::Connection(
                ConnectionError::ConnectionsTooLarge { .. }
            ))
        ));
        let twice = merge(
            vec![
                plugin("a", vec![], vec![value("X", "1", None)]),
                plugin("b", vec![], vec![value("X", "2", None)]),
            ],
            &settings(),
        );
        assert!(matches!(
            twice,
            Err(MergeError::Connection(
                ConnectionError::ConnectionConflict { .. }
            ))
        ));
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use crate::model::reserved::CONNECTIONS_NAME;
    use proptest::prelude::*;

    const KINDS: &[&str] = &["ConfigMap", "Secret", "Service", "StatefulSet"];

    use super::tests::object;

    /// Up to five plugins, each with objects drawn from a small set of identities so that
    /// collisions are common, and with at most one connection value each.
    fn plugins() -> impl Strategy<Value = Vec<PluginObjects>> {
        let identity = (0..KINDS.len(), 0..4usize);
        let plugin = (prop::collection::vec(identity, 0..5), any::<bool>());
        prop::collection::vec(plugin, 1..6).prop_map(|plugins| {
            plugins
                .into_iter()
                .enumerate()
                .map(|(index, (objects, connects))| PluginObjects {
                    name: format!("plugin{index}"),
                    source: format!("plugin{index}.wasm"),
                    version: "1.0.0".into(),
                    objects: objects
                        .into_iter()
                        .map(|(kind, name)| object(KINDS[kind], &format!("object{name}")))
                        .collect(),
                    connection_values: connects
                        .then(|| ConnectionValue {
                            key: format!("URL_{index}"),
                            value: format!("redis://plugin{index}"),
                            secret_input: None,
                        })
                        .into_iter()
                        .collect(),
                    provenance: None,
                })
                .collect()
        })
    }

    fn settings() -> MergeSettings {
        MergeSettings {
            namespace: "ns".into(),
            instance: "mathison".into(),
            ..MergeSettings::default()
        }
    }

    fn sorted(plugins: Vec<PluginObjects>) -> Result<Vec<Placed>, MergeError> {
        let mut merged = merge(plugins, &settings())?;
        crate::order::sort(&mut merged.objects);
        Ok(merged.objects)
    }

    proptest! {
        #[test]
        fn conflicts_are_always_detected(plugins in plugins()) {
            let mut identities: Vec<(String, String)> = plugins
                .iter()
                .flat_map(|p| p.objects.iter().map(|o| (o.id.kind.clone(), o.id.name.clone())))
                .collect();
            if plugins.iter().any(|p| !p.connection_values.is_empty()) {
                identities.push(("ConfigMap".into(), CONNECTIONS_NAME.into()));
            }
            let count = identities.len();
            identities.sort();
            identities.dedup();
            let collides = identities.len() != count;
            match merge(plugins, &settings()) {
                Ok(merged) => prop_assert!(!collides, "missed a conflict: {:?}", merged.objects),
                Err(MergeError::Conflict { .. } | MergeError::Duplicate { .. }) => prop_assert!(collides),
                Err(other) => prop_assert!(false, "unexpected error: {other}"),
            }
        }

        #[test]
        fn plugin_order_does_not_change_the_sorted_set(
            (plugins, shuffled) in plugins()
                .prop_flat_map(|plugins| (Just(plugins.clone()), Just(plugins).prop_shuffle()))
        ) {
            let (first, second) = (sorted(plugins), sorted(shuffled));
            // Both succeed with the same objects, or both find a conflict.
            prop_assert_eq!(first.is_ok(), second.is_ok());
            if let (Ok(first), Ok(second)) = (first, second) {
                prop_assert_eq!(first, second);
            }
        }
    }
}
