//! The project file (`mathison.yaml`): a whole render kept in the repository, so that CI,
//! GitOps and colleagues run it as it is. It names the plugins (files, bare names or `oci://`
//! references), their values, the secret inputs by reference and the render's context; its
//! lock file (`lock.rs`) pins what the references resolved to.
//!
//! The file is parsed with positions: an unknown key, a wrong type or a plugin listed twice is
//! reported at its line and column.

pub mod lock;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::model::k8s::parse_kind_name;
use crate::plan::PluginRequest;
use crate::registry::OciReference;
use crate::values::yaml;
use crate::values::{Origin, Section, ValuesError, escape_pointer};

/// The project file's name, looked for in the working directory.
pub const PROJECT_FILE: &str = "mathison.yaml";
pub const API_VERSION: &str = "mathison.dev/v1alpha1";
pub const KIND: &str = "Project";

#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    #[error("cannot read project file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Syntax(#[from] ValuesError),
    #[error("{origin}: {message}")]
    Invalid {
        origin: Origin,
        /// The JSON pointer of the field at fault, `""` for the whole file.
        pointer: String,
        message: String,
    },
}

/// A render kept in a file. `mathison-host schema project` prints its JSON Schema.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(title = "mathison-host project file (mathison.yaml)")]
pub struct ProjectFile {
    /// Always `mathison.dev/v1alpha1`.
    pub api_version: String,
    /// Always `Project`.
    pub kind: String,
    /// Not read by the host: a project is also a KRM function's configuration (`mathison-host
    /// fn`), which carries a resource's metadata.
    #[serde(default)]
    pub metadata: Option<Map<String, Value>>,
    /// The namespace of every namespaced object [default: mathison-system].
    pub namespace: Option<String>,
    /// The instance name, for the app.kubernetes.io/instance label [default: mathison].
    pub instance: Option<String>,
    /// The plugins, in render order.
    pub plugins: Vec<ProjectPlugin>,
    /// Values files (one section per plugin name), relative to this file; inline `values`
    /// of a plugin win over them.
    #[serde(default)]
    pub values_files: Vec<PathBuf>,
    /// Accept cluster-scoped objects from plugins.
    #[serde(default)]
    pub allow_cluster_scoped: bool,
    /// Accept RBAC objects from plugins.
    #[serde(default)]
    pub allow_rbac: bool,
    /// Objects the user owns (KIND/NAME), besides Secret/mathison-secrets.
    #[serde(default)]
    pub user_owned: Vec<String>,
}

/// One plugin of a project.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProjectPlugin {
    /// The plugin's name (what its `info` calls it): the key of its values and secret inputs.
    pub name: String,
    /// A path to a .wasm file (relative to this file), a bare name, or
    /// oci://HOST[:PORT]/REPO:TAG or oci://HOST[:PORT]/REPO@sha256:DIGEST [default: `name`,
    /// as a bare name].
    pub source: Option<String>,
    /// The plugin's values, as its section of a values file.
    #[serde(default)]
    pub values: Map<String, Value>,
    /// Secrets the host reads for this plugin's connection values, by reference only:
    /// `file:PATH` (relative to this file) or `env:VAR`.
    #[serde(default)]
    pub secret_inputs: BTreeMap<String, String>,
}

/// A project file, read and checked, with paths resolved against its directory.
#[derive(Debug, Clone)]
pub struct Project {
    pub path: PathBuf,
    pub file: ProjectFile,
    /// The plugins' sources as given to the host: relative paths made relative to the working
    /// directory.
    pub sources: Vec<String>,
    /// Each plugin's inline values, with positions.
    pub sections: Vec<Section>,
    /// `userOwned`, as (kind, name).
    pub user_owned: Vec<(String, String)>,
}

impl Project {
    /// Reads and checks the project file at `path`.
    pub fn load(path: &Path) -> Result<Self, ProjectError> {
        let text = std::fs::read_to_string(path).map_err(|source| ProjectError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Checks `text`, the project file at `path`.
    pub fn parse(path: &Path, text: &str) -> Result<Self, ProjectError> {
        let located = yaml::parse(path, text)?;
        let origin_of = |pointer: &str| origin_at(&located.origins, path, pointer);
        let Some(root) = located.root.clone() else {
            return Err(ProjectError::Invalid {
                origin: origin_of(""),
                pointer: String::new(),
                message: format!(
                    "the project file is empty; it needs apiVersion: {API_VERSION}, kind: {KIND} \
                     and plugins (`mathison-host schema project` prints the schema)"
                ),
            });
        };
        let file: ProjectFile = serde_path_to_error::deserialize(&root).map_err(|error| {
            let pointer = pointer_of(error.path());
            ProjectError::Invalid {
                origin: origin_of(&pointer),
                message: format!("{}: {}", dotted(error.path()), error.inner()),
                pointer,
            }
        })?;
        let invalid = |pointer: &str, message: String| ProjectError::Invalid {
            origin: origin_of(pointer),
            pointer: pointer.to_string(),
            message,
        };
        if file.api_version != API_VERSION || file.kind != KIND {
            return Err(invalid(
                "/apiVersion",
                format!("expected apiVersion {API_VERSION} and kind {KIND}"),
            ));
        }
        let base = path.parent().unwrap_or(Path::new(""));
        let mut sources: Vec<String> = Vec::new();
        for (index, plugin) in file.plugins.iter().enumerate() {
            let at = format!("/plugins/{index}");
            let source = plugin.source.clone().unwrap_or_else(|| plugin.name.clone());
            if let Some(first) = file.plugins[..index]
                .iter()
                .position(|p| p.name == plugin.name)
            {
                return Err(invalid(
                    &format!("{at}/name"),
                    format!(
                        "plugins[{index}]: plugin {:?} is listed twice (first as plugins[{first}])",
                        plugin.name
                    ),
                ));
            }
            let source = resolve_source(base, &source)
                .map_err(|message| invalid(&format!("{at}/source"), message))?;
            if let Some(first) = sources.iter().position(|s| *s == source) {
                return Err(invalid(
                    &format!("{at}/source"),
                    format!(
                        "plugins[{index}]: source {source:?} is listed twice (first as \
                         plugins[{first}])"
                    ),
                ));
            }
            sources.push(source);
        }
        let user_owned = file
            .user_owned
            .iter()
            .enumerate()
            .map(|(index, owned)| {
                parse_kind_name(owned).map_err(|message| {
                    invalid(
                        &format!("/userOwned/{index}"),
                        format!("userOwned[{index}]: {message}"),
                    )
                })
            })
            .collect::<Result<_, _>>()?;
        let sections = file
            .plugins
            .iter()
            .enumerate()
            .filter(|(_, plugin)| !plugin.values.is_empty())
            .map(|(index, plugin)| {
                let root = format!("/plugins/{index}/values");
                Section {
                    plugin: plugin.name.clone(),
                    values: plugin.values.clone(),
                    origins: located
                        .origins
                        .iter()
                        .filter_map(|(pointer, origin)| {
                            let rest = pointer.strip_prefix(&root)?;
                            rest.starts_with('/')
                                .then(|| (rest.to_string(), origin.clone()))
                        })
                        .collect(),
                    origin: origin_of(&root),
                }
            })
            .collect();
        Ok(Self {
            path: path.to_owned(),
            sources,
            sections,
            user_owned,
            file,
        })
    }

    /// The plugins as the project names them, unpinned.
    pub fn plugin_requests(&self) -> Vec<PluginRequest> {
        self.file
            .plugins
            .iter()
            .zip(&self.sources)
            .map(|(plugin, source)| PluginRequest::named(source, &plugin.name))
            .collect()
    }

    /// The directory relative paths in the file are taken from.
    pub fn base(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new(""))
    }

    /// The values files, relative to the working directory.
    pub fn values_files(&self) -> Vec<PathBuf> {
        self.file
            .values_files
            .iter()
            .map(|p| self.base().join(p))
            .collect()
    }

    /// The secret inputs as `--secret-input` takes them, `file:` paths made relative to the
    /// working directory.
    pub fn secret_inputs(&self) -> Vec<String> {
        self.file
            .plugins
            .iter()
            .flat_map(|plugin| {
                plugin.secret_inputs.iter().map(|(name, source)| {
                    let source = match source.strip_prefix("file:") {
                        Some(file) => format!("file:{}", self.base().join(file).display()),
                        None => source.clone(),
                    };
                    format!("{}.{name}={source}", plugin.name)
                })
            })
            .collect()
    }

    /// The project file's JSON Schema, for editors and CI checks.
    pub fn json_schema() -> Value {
        serde_json::to_value(schemars::schema_for!(ProjectFile)).unwrap_or_default()
    }
}

/// A source as the host takes it: `oci://` references checked, relative paths joined to the
/// project's directory, bare names kept.
fn resolve_source(base: &Path, source: &str) -> Result<String, String> {
    if OciReference::is_reference(source) {
        return source
            .parse::<OciReference>()
            .map(|_| source.to_string())
            .map_err(|e| e.to_string());
    }
    let is_path = source.contains('/') || source.ends_with(".wasm");
    if is_path && Path::new(source).is_relative() {
        return Ok(base.join(source).display().to_string());
    }
    Ok(source.to_string())
}

/// The origin of the node at `pointer`, or of its nearest ancestor that has one (an unknown
/// key is reported where its mapping starts when its own node is not known).
fn origin_at(origins: &HashMap<String, Origin>, path: &Path, pointer: &str) -> Origin {
    let mut pointer = pointer;
    loop {
        if let Some(origin) = origins.get(pointer) {
            return origin.clone();
        }
        match pointer.rsplit_once('/') {
            Some((parent, _)) => pointer = parent,
            None => {
                return Origin::File {
                    path: path.to_owned(),
                    line: 1,
                    column: 1,
                };
            }
        }
    }
}

fn pointer_of(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    path.iter()
        .filter_map(|segment| match segment {
            Segment::Seq { index } => Some(index.to_string()),
            Segment::Map { key } => Some(escape_pointer(key)),
            Segment::Enum { variant } => Some(escape_pointer(variant)),
            Segment::Unknown => None,
        })
        .map(|part| format!("/{part}"))
        .collect()
}

fn dotted(path: &serde_path_to_error::Path) -> String {
    let text = path.to_string();
    if text == "." {
        "(root)".to_string()
    } else {
        text
    }
}

#[cfg(test)]
mod tests;
