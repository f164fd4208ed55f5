//! The wire format of a Kubernetes Resource Model function (the kpt and kustomize function
//! specification): a `ResourceList` whose `functionConfig` is a project, whose `items` are kept
//! in their order with the rendered objects added, and whose `results` say what went wrong.
//! Nothing here renders: `commands::function` runs the render between [`ResourceList::parse`]
//! and [`ResourceList::to_string`].

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::model::object::Placed;
use crate::output::{self, Format};
use crate::project::{self, Project, ProjectError};
use crate::untrusted;

pub const API_VERSION: &str = "config.kubernetes.io/v1";
pub const KIND: &str = "ResourceList";

/// Where kpt says the function's configuration was read from: the package's directory, and the
/// file's path in it.
const PACKAGE_PATH: &str = "internal.config.kubernetes.io/package-path";
const PATH: [&str; 2] = [
    "internal.config.kubernetes.io/path",
    "config.kubernetes.io/path",
];
/// Annotations by which kpt and kustomize track an item back to its file; an item replaced by
/// a rendered object keeps them, so that the object is written where the item was.
const TRACKING_PREFIXES: [&str; 3] = [
    "config.kubernetes.io/",
    "internal.config.kubernetes.io/",
    "config.k8s.io/",
];

#[derive(Debug, thiserror::Error)]
pub enum KrmError {
    #[error("the input is not a YAML or JSON document")]
    Syntax(#[source] serde_yaml::Error),
    #[error(
        "the input is {found}, not a {API_VERSION} {KIND}; a KRM function reads one ResourceList \
         on stdin"
    )]
    NotAResourceList { found: String },
    #[error("items is not a list: expected a list of resources (or none)")]
    ItemsNotAList,
    #[error("items[{index}] is not a resource: expected an object with apiVersion and kind")]
    Item { index: usize },
    #[error(
        "the ResourceList has no functionConfig; expected a {api_version} {kind} naming the \
         plugins (`mathison-host schema project` prints its schema)",
        api_version = project::API_VERSION,
        kind = project::KIND
    )]
    NoFunctionConfig,
    #[error(
        "the functionConfig is {found}; expected a {api_version} {kind}",
        api_version = project::API_VERSION,
        kind = project::KIND
    )]
    WrongConfig { found: String },
    #[error("cannot serialise the ResourceList")]
    Serialise(#[source] serde_yaml::Error),
}

/// A `ResourceList` read from a function's input.
#[derive(Debug, Clone)]
pub struct ResourceList {
    pub items: Vec<Value>,
    pub function_config: Option<Value>,
    pub results: Vec<FnResult>,
    /// The input's format, which the output keeps.
    pub format: Format,
}

/// One entry of `results`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FnResult {
    pub message: String,
    pub severity: Severity,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_ref: Option<ResourceRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<FieldRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<FileRef>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
    Info,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceRef {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldRef {
    /// As kpt spells field paths: `plugins[0].source`.
    pub path: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FileRef {
    pub path: String,
}

impl ResourceList {
    /// An empty list in `format`, for when the input could not be read at all.
    pub fn empty(format: Format) -> Self {
        Self {
            items: Vec::new(),
            function_config: None,
            results: Vec::new(),
            format,
        }
    }

    /// Reads a `ResourceList` in YAML or JSON.
    pub fn parse(text: &str) -> Result<Self, KrmError> {
        let format = format_of(text);
        let root: Value = serde_yaml::from_str(text).map_err(KrmError::Syntax)?;
        let (api_version, kind) = type_of(&root);
        if api_version != API_VERSION || kind != KIND {
            return Err(KrmError::NotAResourceList {
                found: describe(&root),
            });
        }
        let items = match root.get("items") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items.clone(),
            Some(_) => return Err(KrmError::ItemsNotAList),
        };
        if let Some(index) = items.iter().position(|item| {
            let (api_version, kind) = type_of(item);
            api_version.is_empty() || kind.is_empty()
        }) {
            return Err(KrmError::Item { index });
        }
        Ok(Self {
            items,
            function_config: root.get("functionConfig").filter(|v| !v.is_null()).cloned(),
            results: Vec::new(),
            format,
        })
    }

    /// A list with no items whose configuration is `text` (a project), as kustomize hands it
    /// to an exec plugin in a file of its own.
    pub fn from_config(text: &str) -> Result<Self, KrmError> {
        let config: Value = serde_yaml::from_str(text).map_err(KrmError::Syntax)?;
        Ok(Self {
            function_config: Some(config),
            ..Self::empty(format_of(text))
        })
    }

    /// The project the `functionConfig` describes. Relative paths in it are taken from the
    /// directory of the file it was read from when kpt says which (`functionConfig` of a
    /// package), from the working directory otherwise (kustomize runs functions in the
    /// kustomization's directory).
    pub fn project(&self) -> Result<Project, FnFailure> {
        let config = self
            .function_config
            .as_ref()
            .ok_or(KrmError::NoFunctionConfig)?;
        let (api_version, kind) = type_of(config);
        if api_version != project::API_VERSION || kind != project::KIND {
            return Err(KrmError::WrongConfig {
                found: describe(config),
            }
            .into());
        }
        let text = serde_yaml::to_string(config).map_err(KrmError::Serialise)?;
        Ok(Project::parse(&config_path(config), &text)?)
    }

    /// Adds the rendered objects after the items. An item with the identity of a rendered
    /// object (a generator's earlier output, written back by kpt) is replaced where it is, so
    /// that running the function again changes nothing.
    pub fn add(&mut self, rendered: &[Placed]) {
        for object in rendered {
            let body = output::head_first(&object.body);
            match self
                .items
                .iter()
                .position(|item| identity(item) == identity(&body))
            {
                Some(at) => self.items[at] = keep_tracking(&self.items[at], body),
                None => self.items.push(body),
            }
        }
    }

    /// A reference to the function configuration, for results about it.
    pub fn config_ref(&self) -> (Option<ResourceRef>, Option<FileRef>) {
        let Some(config) = &self.function_config else {
            return (None, None);
        };
        let (api_version, kind) = type_of(config);
        let text = |pointer: &str| config.pointer(pointer).and_then(Value::as_str);
        let resource = ResourceRef {
            api_version: api_version.to_string(),
            kind: kind.to_string(),
            name: text("/metadata/name").unwrap_or_default().to_string(),
            namespace: text("/metadata/namespace").map(str::to_string),
        };
        let file = annotation(config, &PATH).map(|path| FileRef {
            path: path.to_string(),
        });
        (Some(resource), file)
    }

    /// The list as the function writes it, in the input's format.
    pub fn to_string(&self) -> Result<String, KrmError> {
        let mut list = Map::new();
        list.insert("apiVersion".into(), json!(API_VERSION));
        list.insert("kind".into(), json!(KIND));
        list.insert("items".into(), Value::Array(self.items.clone()));
        if let Some(config) = &self.function_config {
            list.insert("functionConfig".into(), config.clone());
        }
        if !self.results.is_empty() {
            list.insert("results".into(), json!(self.results));
        }
        let list = Value::Object(list);
        match self.format {
            Format::Yaml => output::yaml_document(&list).map_err(KrmError::Serialise),
            Format::Json => {
                // Serialising a Value cannot fail; escaped, a string is the same string.
                let text = serde_json::to_string_pretty(&list).unwrap_or_default();
                Ok(format!("{}\n", untrusted::escape_json(&text)))
            }
        }
    }
}

/// Why the function failed, as a result: the message, and where it applies.
#[derive(Debug, thiserror::Error)]
pub enum FnFailure {
    #[error(transparent)]
    Krm(#[from] KrmError),
    #[error(transparent)]
    Project(#[from] ProjectError),
}

impl FnFailure {
    /// The JSON pointer of the configuration field at fault, when one is.
    pub fn pointer(&self) -> Option<&str> {
        match self {
            FnFailure::Project(ProjectError::Invalid { pointer, .. }) if !pointer.is_empty() => {
                Some(pointer)
            }
            _ => None,
        }
    }
}

/// `/plugins/0/source` as kpt writes field paths: `plugins[0].source`.
pub fn field_path(pointer: &str) -> String {
    let mut path = String::new();
    for segment in pointer.split('/').skip(1) {
        let segment = segment.replace("~1", "/").replace("~0", "~");
        if !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit()) {
            path.push_str(&format!("[{segment}]"));
        } else {
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(&segment);
        }
    }
    path
}

fn format_of(text: &str) -> Format {
    if text.trim_start().starts_with('{') {
        Format::Json
    } else {
        Format::Yaml
    }
}

fn type_of(value: &Value) -> (&str, &str) {
    let text = |key: &str| value.get(key).and_then(Value::as_str).unwrap_or_default();
    (text("apiVersion"), text("kind"))
}

/// What a document is, for messages: `apps/v1 Deployment`, or what kind of YAML value.
fn describe(value: &Value) -> String {
    match type_of(value) {
        ("", "") if !value.is_object() => "not an object".to_string(),
        ("", "") => "an object without apiVersion and kind".to_string(),
        (api_version, kind) => untrusted::shown(&format!("{api_version} {kind}")),
    }
}

fn annotation<'a>(value: &'a Value, keys: &[&str]) -> Option<&'a str> {
    let annotations = value.pointer("/metadata/annotations")?;
    keys.iter()
        .find_map(|key| annotations.get(*key).and_then(Value::as_str))
}

/// The path the configuration is named by in messages, whose directory relative paths in it
/// are taken from.
fn config_path(config: &Value) -> PathBuf {
    let file = annotation(config, &PATH).unwrap_or("functionConfig");
    match annotation(config, &[PACKAGE_PATH]) {
        Some(package) => Path::new(package).join(file),
        None => PathBuf::from(file),
    }
}

/// group, kind, namespace, name: what names one object in a cluster.
fn identity(value: &Value) -> (&str, &str, &str, &str) {
    let (api_version, kind) = type_of(value);
    let group = api_version.rsplit_once('/').map_or("", |(group, _)| group);
    let text = |pointer: &str| value.pointer(pointer).and_then(Value::as_str).unwrap_or("");
    (
        group,
        kind,
        text("/metadata/namespace"),
        text("/metadata/name"),
    )
}

/// `rendered`, with the tracking annotations of the item it replaces.
fn keep_tracking(item: &Value, mut rendered: Value) -> Value {
    let Some(Value::Object(kept)) = item.pointer("/metadata/annotations") else {
        return rendered;
    };
    let tracking: Vec<(String, Value)> = kept
        .iter()
        .filter(|(key, _)| TRACKING_PREFIXES.iter().any(|p| key.starts_with(p)))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    if tracking.is_empty() {
        return rendered;
    }
    if let Some(metadata) = rendered.get_mut("metadata").and_then(Value::as_object_mut) {
        let annotations = metadata
            .entry("annotations")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(annotations) = annotations.as_object_mut() {
            annotations.extend(tracking);
        }
    }
    rendered
}

#[cfg(test)]
mod tests;
