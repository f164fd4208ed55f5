//! The user's configuration: values files (`--values`), `--set` overrides, their merge over a
//! plugin's defaults and the check against the plugin's JSON Schema.
//!
//! Values files are parsed with positions (`yaml.rs`) so that a schema error can point at the
//! line and column that caused it, as `kubectl` and Helm users expect.

pub(crate) mod yaml;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Map, Value};

use crate::schema::{Schema, ViolationKind};
use crate::untrusted::shown;
use yaml::scalar_value;

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    File {
        path: PathBuf,
        line: usize,
        column: usize,
    },
    Set(String),
    SetString(String),
    Default,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File { path, line, column } => write!(f, "{}:{line}:{column}", path.display()),
            Origin::Set(arg) => write!(f, "--set {arg}"),
            Origin::SetString(arg) => write!(f, "--set-string {arg}"),
            Origin::Default => f.write_str("the plugin's defaults"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ValuesError {
    #[error("cannot read values file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {message}")]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{path}: {message}")]
    Shape { path: PathBuf, message: String },
    #[error(
        "--set {arg}: {message}; expected PLUGIN.KEY[.SUB...]=VALUE, e.g. redis.persistence.enabled=false"
    )]
    Set { arg: String, message: String },
    #[error("{origin}: section {section:?} names no plugin of this render (plugins: {plugins})")]
    UnknownSection {
        origin: Origin,
        section: String,
        plugins: String,
    },
}

/// One source of values: a file or one `--set`.
#[derive(Debug, Clone)]
struct Layer {
    /// Plugin name → that plugin's values.
    sections: Map<String, Value>,
    /// JSON pointer (from the file's root) → origin.
    origins: HashMap<String, Origin>,
    /// The origin of the layer as a whole.
    origin: Origin,
}

/// One plugin's values given inline (in a project file), with their positions.
#[derive(Debug, Clone)]
pub struct Section {
    pub plugin: String,
    pub values: Map<String, Value>,
    /// JSON pointer from the section's root (`/persistence/size`) → origin.
    pub origins: HashMap<String, Origin>,
    pub origin: Origin,
}

/// All values the user gave, in precedence order (files, then `--set`, each in order given).
#[derive(Debug, Clone, Default)]
pub struct Values {
    layers: Vec<Layer>,
}

/// A configuration problem of one plugin, with the values' origins.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{plugin}: invalid configuration{}", problems.iter().map(|p| format!("\n  {p}")).collect::<String>())]
pub struct ConfigError {
    pub plugin: String,
    pub problems: Vec<ConfigProblem>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// Dotted path inside the plugin's configuration (`persistence.size`).
    pub path: String,
    pub message: String,
    pub origin: Option<Origin>,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = if self.path.is_empty() {
            "(root)"
        } else {
            &self.path
        };
        // Keys come from the user's values and the plugin's defaults.
        write!(f, "{}: {}", shown(path), self.message)?;
        if let Some(origin) = &self.origin {
            write!(f, " (from {origin})")?;
        }
        Ok(())
    }
}

impl Values {
    /// Adds a values file: a YAML mapping with one section per plugin name.
    pub fn add_file(&mut self, path: &Path) -> Result<(), ValuesError> {
        let text = std::fs::read_to_string(path).map_err(|source| ValuesError::Read {
            path: path.to_owned(),
            source,
        })?;
        self.add_yaml(path, &text)
    }

    /// Adds values file contents; `path` is only for messages.
    pub fn add_yaml(&mut self, path: &Path, text: &str) -> Result<(), ValuesError> {
        let located = yaml::parse(path, text)?;
        let shape_error = |message: String| ValuesError::Shape {
            path: path.to_owned(),
            message,
        };
        let sections = match located.root {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(map)) => map,
            Some(_) => {
                return Err(shape_error(
                    "expected a mapping of plugin names to their values".into(),
                ));
            }
        };
        if let Some((name, _)) = sections
            .iter()
            .find(|(_, v)| !(v.is_object() || v.is_null()))
        {
            return Err(shape_error(format!(
                "section {name:?} must be a mapping of that plugin's settings"
            )));
        }
        self.layers.push(Layer {
            sections,
            origins: located.origins,
            origin: Origin::File {
                path: path.to_owned(),
                line: 1,
                column: 1,
            },
        });
        Ok(())
    }

    /// Adds one plugin's values.
    pub fn add_section(&mut self, section: Section) {
        let root = format!("/{}", escape_pointer(&section.plugin));
        let mut origins: HashMap<String, Origin> = section
            .origins
            .into_iter()
            .map(|(pointer, origin)| (format!("{root}{pointer}"), origin))
            .collect();
        origins.insert(root, section.origin.clone());
        self.layers.push(Layer {
            sections: Map::from_iter([(section.plugin, Value::Object(section.values))]),
            origins,
            origin: section.origin,
        });
    }

    /// Adds one `--set plugin.key.sub=value`. The value is typed as a YAML scalar (`true`,
    /// `3`, `null`, otherwise a string); quote it (`'"3"'`) to force a string.
    pub fn add_set(&mut self, arg: &str) -> Result<(), ValuesError> {
        self.add_set_as(arg, false)
    }

    /// Adds one `--set-string PLUGIN.KEY=VALUE`: the value is a string whatever it looks like
    /// (`--set-string postgres.database=1`), as Helm's `--set-string`.
    pub fn add_set_string(&mut self, arg: &str) -> Result<(), ValuesError> {
        self.add_set_as(arg, true)
    }

    fn add_set_as(&mut self, arg: &str, string: bool) -> Result<(), ValuesError> {
        let set_error = |message: &str| ValuesError::Set {
            arg: arg.to_string(),
            message: message.to_string(),
        };
        let (path, raw) = arg.split_once('=').ok_or_else(|| set_error("no '='"))?;
        let keys: Vec<&str> = path.split('.').collect();
        if keys.len() < 2 || keys.iter().any(|k| k.is_empty()) {
            return Err(set_error(
                "the key needs a plugin name and a setting, with no empty parts",
            ));
        }
        let value = if string {
            Value::String(raw.to_string())
        } else if is_quoted(raw) {
            Value::String(raw[1..raw.len() - 1].to_string())
        } else {
            scalar_value(raw, false)
        };
        let mut tree = value;
        for key in keys[1..].iter().rev() {
            tree = Value::Object(Map::from_iter([((*key).to_string(), tree)]));
        }
        let origin = if string {
            Origin::SetString(arg.to_string())
        } else {
            Origin::Set(arg.to_string())
        };
        let pointer = format!(
            "/{}",
            keys.iter()
                .map(|k| escape_pointer(k))
                .collect::<Vec<_>>()
                .join("/")
        );
        self.layers.push(Layer {
            sections: Map::from_iter([(keys[0].to_string(), tree)]),
            origins: HashMap::from([(pointer, origin.clone())]),
            origin,
        });
        Ok(())
    }

    /// The values as the plugins see them, layer by layer in precedence order, as text: two
    /// `Values` with the same identity configure every plugin alike. Where each value came
    /// from is left out: it only shows in errors.
    pub fn identity(&self) -> String {
        let sections: Vec<&Map<String, Value>> =
            self.layers.iter().map(|layer| &layer.sections).collect();
        // Serialising maps of JSON values cannot fail.
        serde_json::to_string(&sections).unwrap_or_default()
    }

    /// Refuses sections that name none of `plugins`, which are almost always typos.
    pub fn check_sections<'a>(
        &self,
        plugins: impl IntoIterator<Item = &'a str> + Clone,
    ) -> Result<(), ValuesError> {
        for layer in &self.layers {
            for section in layer.sections.keys() {
                if !plugins.clone().into_iter().any(|p| p == section) {
                    return Err(ValuesError::UnknownSection {
                        origin: layer
                            .origins
                            .get(&format!("/{}", escape_pointer(section)))
                            .cloned()
                            .unwrap_or_else(|| layer.origin.clone()),
                        section: section.clone(),
                        plugins: plugins.into_iter().collect::<Vec<_>>().join(", "),
                    });
                }
            }
        }
        Ok(())
    }

    /// The configuration of the plugin named `name` (shown as `plugin` in errors): `defaults`
    /// with every layer merged over it, checked against `schema` within `time_limit`.
    pub fn config_for(
        &self,
        name: &str,
        plugin: &str,
        defaults: &str,
        schema: &Schema,
        time_limit: Duration,
    ) -> Result<Value, ConfigError> {
        let config = self.merged(name, plugin, defaults)?;
        self.check(name, plugin, config, schema, time_limit)
    }

    /// The configuration of the plugin named `name`, not yet checked: `defaults` with every
    /// layer merged over it.
    pub fn merged(&self, name: &str, plugin: &str, defaults: &str) -> Result<Value, ConfigError> {
        let mut config: Value = serde_json::from_str(defaults).map_err(|e| {
            plugin_error(
                plugin,
                format!("the plugin's default configuration is not JSON: {e}"),
            )
        })?;
        for layer in &self.layers {
            if let Some(section) = layer.sections.get(name) {
                merge_into(&mut config, section);
            }
        }
        Ok(config)
    }

    /// Checks `config`, [`merged`](Self::merged) for the plugin named `name`, against `schema`
    /// within `time_limit`, and gives it back when it is valid.
    pub fn check(
        &self,
        name: &str,
        plugin: &str,
        config: Value,
        schema: &Schema,
        time_limit: Duration,
    ) -> Result<Value, ConfigError> {
        let violations = schema
            .check(&config, time_limit)
            .map_err(|e| plugin_error(plugin, e.to_string()))?;
        let mut problems = Vec::new();
        for violation in violations {
            let pointer = violation.pointer;
            let message = match violation.kind {
                // Point an unknown key at the key itself, where the typo is.
                ViolationKind::UnknownKeys(keys) => {
                    for key in keys {
                        let pointer = format!("{pointer}/{}", escape_pointer(&key));
                        problems.push(ConfigProblem {
                            path: dotted(&pointer),
                            message: "unknown option (check its spelling and indentation; \
                                      `mathison-host inspect` lists the options)"
                                .to_string(),
                            origin: Some(self.origin_of(name, &pointer)),
                        });
                    }
                    continue;
                }
                // A regular expression says little; the field's own description (which the
                // SDK derives from the config's doc comments) says more.
                ViolationKind::Pattern { value, description } => {
                    format!(
                        "{} is not of the expected form: {description}",
                        shown(&value)
                    )
                }
                ViolationKind::Other(message) => message,
            };
            problems.push(ConfigProblem {
                path: dotted(&pointer),
                message,
                origin: Some(self.origin_of(name, &pointer)),
            });
        }
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError {
                plugin: plugin.to_string(),
                problems,
            })
        }
    }

    /// The origin of the value at `pointer` in `plugin`'s config: the last layer that set it,
    /// one of its parents within the section, or something inside it (a problem with a whole
    /// object the user added to); else the plugin's defaults. A section as a whole (`redis:`)
    /// is the origin only of a problem with the whole configuration.
    fn origin_of(&self, plugin: &str, pointer: &str) -> Origin {
        let section = format!("/{}", escape_pointer(plugin));
        let full = format!("{section}{pointer}");
        let inside = format!("{full}/");
        for layer in self.layers.iter().rev() {
            let mut candidate = full.as_str();
            loop {
                if let Some(origin) = layer.origins.get(candidate) {
                    return origin.clone();
                }
                match candidate.rfind('/') {
                    Some(cut) if cut > section.len() => {
                        candidate = &candidate[..cut];
                    }
                    _ => break,
                }
            }
            if let Some((_, origin)) = layer
                .origins
                .iter()
                .filter(|(set, _)| set.starts_with(&inside))
                .min_by_key(|(set, _)| set.len())
            {
                return origin.clone();
            }
        }
        Origin::Default
    }

    /// What a plugin's own checks (`invalid-config`) found, with where each value came from,
    /// as schema problems are shown. `problems` are (dotted path, message) pairs.
    pub fn plugin_problems(
        &self,
        name: &str,
        plugin: &str,
        problems: &[(String, String)],
    ) -> ConfigError {
        ConfigError {
            plugin: plugin.to_string(),
            problems: problems
                .iter()
                .map(|(path, message)| ConfigProblem {
                    path: path.clone(),
                    message: message.clone(),
                    origin: Some(self.origin_of(name, &undotted(path))),
                })
                .collect(),
        }
    }
}

/// Deep-merges `overlay` into `base`: mappings merge, anything else replaces.
fn merge_into(base: &mut Value, overlay: &Value) {
    match (base, overlay) {
        (Value::Object(base), Value::Object(overlay)) => {
            for (key, value) in overlay {
                match base.get_mut(key) {
                    Some(existing) => merge_into(existing, value),
                    None => {
                        base.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (base, overlay) => *base = overlay.clone(),
    }
}

/// A problem with a plugin's configuration as a whole.
fn plugin_error(plugin: &str, message: String) -> ConfigError {
    ConfigError {
        plugin: plugin.to_string(),
        problems: vec![ConfigProblem {
            path: String::new(),
            message,
            origin: None,
        }],
    }
}

/// Makes a plugin's schema (or a part of it) the schema of a section of values: the host checks
/// a section merged over the plugin's `defaults` (as [`merge_into`] does), so a key those set
/// is there whatever the section says, and is not required of it. Follows `properties` and the
/// subschemas that apply at the same place, not `$ref`s: a referenced schema may stand for other
/// places too, with other defaults, and keeps what it requires.
pub fn relax_for_section(schema: &mut Value, defaults: &Value) {
    let (Value::Object(schema), Some(set)) = (schema, defaults.as_object()) else {
        return;
    };
    if let Some(Value::Array(required)) = schema.get_mut("required") {
        required.retain(|key| key.as_str().is_none_or(|key| !set.contains_key(key)));
        if required.is_empty() {
            schema.remove("required");
        }
    }
    if let Some(Value::Object(properties)) = schema.get_mut("properties") {
        for (key, property) in properties.iter_mut() {
            if let Some(default) = set.get(key) {
                relax_for_section(property, default);
            }
        }
    }
    for keyword in ["allOf", "anyOf", "oneOf"] {
        if let Some(Value::Array(branches)) = schema.get_mut(keyword) {
            for branch in branches {
                relax_for_section(branch, defaults);
            }
        }
    }
}

/// The JSON pointer of a dotted path (`persistence.size` → `/persistence/size`).
fn undotted(path: &str) -> String {
    path.split('.')
        .filter(|key| !key.is_empty())
        .map(|key| format!("/{}", escape_pointer(key)))
        .collect()
}

fn dotted(pointer: &str) -> String {
    pointer
        .split('/')
        .skip(1)
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect::<Vec<_>>()
        .join(".")
}

pub(crate) fn escape_pointer(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn is_quoted(raw: &str) -> bool {
    raw.len() >= 2
        && ((raw.starts_with('"') && raw.ends_with('"'))
            || (raw.starts_with('\'') && raw.ends_with('\'')))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    pub(super) const LIMIT: Duration = Duration::from_secs(10);

    pub(super) fn parsed(schema: &str) -> Schema {
        Schema::parse(schema).expect("a valid test schema")
    }

    const SCHEMA: &str = r#"{
        "type": "object", "additionalProperties": false,
        "properties": {
            "replicas": {"type": "integer", "minimum": 1},
            "persistence": {"type": "object", "additionalProperties": false, "properties": {
                "enabled": {"type": "boolean"},
                "size": {"type": "string", "pattern": "^[0-9]+(Mi|Gi)$"}
            }}
        }
    }"#;
    const DEFAULTS: &str = r#"{"replicas": 1, "persistence": {"enabled": true, "size": "1Gi"}}"#;

    /// The error of the redis configuration, or "" when it is valid.
    fn redis_config_error(values: &Values) -> String {
        values
            .config_for(
                "redis",
                "redis (redis.wasm)",
                DEFAULTS,
                &parsed(SCHEMA),
                LIMIT,
            )
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn files_then_sets_merge_over_defaults() -> Result<(), Box<dyn std::error::Error>> {
        let mut values = Values::default();
        values.add_yaml(
            Path::new("v.yaml"),
            "redis:\n  persistence:\n    size: 2Gi\n",
        )?;
        values.add_set("redis.persistence.enabled=false")?;
        values.add_set("redis.replicas=3")?;
        let config = values.config_for(
            "redis",
            "redis (redis.wasm)",
            DEFAULTS,
            &parsed(SCHEMA),
            LIMIT,
        )?;
        assert_eq!(
            config,
            json!({"replicas": 3, "persistence": {"enabled": false, "size": "2Gi"}})
        );
        Ok(())
    }

    #[test]
    fn later_wins_and_quoted_sets_stay_strings() -> Result<(), Box<dyn std::error::Error>> {
        let mut values = Values::default();
        values.add_set("redis.persistence.size=5Gi")?;
        values.add_set("redis.persistence.size=6Gi")?;
        assert_eq!(
            values.config_for(
                "redis",
                "redis (redis.wasm)",
                DEFAULTS,
                &parsed(SCHEMA),
                LIMIT
            )?["persistence"]["size"],
            "6Gi"
        );
        values.add_set("redis.replicas='3'")?;
        let error = redis_config_error(&values);
        assert!(
            error.contains(
                "replicas: \"3\" is not of type \"integer\" (from --set redis.replicas='3')"
            ),
            "{error}"
        );
        Ok(())
    }

    #[test]
    fn schema_errors_point_at_the_values_file_line_and_column()
    -> Result<(), Box<dyn std::error::Error>> {
        let mut values = Values::default();
        values.add_yaml(
            Path::new("values.yaml"),
            "# comment\nredis:\n  persistence:\n    size: 10 GB\n",
        )?;
        let error = redis_config_error(&values);
        assert!(
            error.starts_with(
                "redis (redis.wasm): invalid configuration\n  persistence.size: \"10 GB\" does not match"
            ),
            "{error}"
        );
        assert!(error.ends_with("(from values.yaml:4:5)"), "{error}");
        Ok(())
    }

    #[test]
    fn a_pattern_error_reads_as_the_fields_description() -> Result<(), Box<dyn std::error::Error>> {
        let schema = r#"{"type": "object", "properties": {"size": {
            "type": "string", "pattern": "^[0-9]+Gi$", "description": "Size, as a quantity (\"1Gi\")."
        }}}"#;
        let mut values = Values::default();
        values.add_set("redis.size=10 GB")?;
        let error = values
            .config_for("redis", "redis (redis.wasm)", "{}", &parsed(schema), LIMIT)
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "redis (redis.wasm): invalid configuration\n  size: \"10 GB\" is not of the expected form: \
             Size, as a quantity (\"1Gi\"). (from --set redis.size=10 GB)"
        );
        Ok(())
    }

    #[test]
    fn unknown_keys_are_refused_by_the_schema() -> Result<(), Box<dyn std::error::Error>> {
        let mut values = Values::default();
        values.add_yaml(Path::new("values.yaml"), "redis:\n  persistance: {}\n")?;
        let error = redis_config_error(&values);
        assert_eq!(
            error,
            "redis (redis.wasm): invalid configuration\n  persistance: unknown option (check its spelling and \
             indentation; `mathison-host inspect` lists the options) (from values.yaml:2:3)"
        );
        Ok(())
    }

    #[test]
    fn syntax_errors_give_line_and_column() {
        let mut values = Values::default();
        let error = values
            .add_yaml(Path::new("bad.yaml"), "redis:\n  a: [1, 2\n")
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("bad.yaml:3:"), "{error}");
    }

    #[test]
    fn sections_must_name_a_plugin() -> Result<(), Box<dyn std::error::Error>> {
        let mut values = Values::default();
        values.add_yaml(Path::new("v.yaml"), "postgress:\n  a: 1\n")?;
        let error = values
            .check_sections(["postgres", "redis"])
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "v.yaml:1:1: section \"postgress\" names no plugin of this render (plugins: postgres, redis)"
        );
        Ok(())
    }

    #[test]
    fn set_string_keeps_any_value_a_string() -> Result<(), Box<dyn std::error::Error>> {
        let mut values = Values::default();
        values.add_set("redis.persistence.size=2")?;
        values.add_set_string("redis.persistence.size=2Gi")?;
        values.add_set_string("redis.persistence.enabled=true")?;
        let config = values.config_for(
            "redis",
            "redis (redis.wasm)",
            DEFAULTS,
            &parsed(r#"{"type": "object"}"#),
            LIMIT,
        )?;
        assert_eq!(config["persistence"]["size"], json!("2Gi"));
        assert_eq!(config["persistence"]["enabled"], json!("true"));
        Ok(())
    }

    #[test]
    fn a_plugins_own_problems_show_where_the_value_came_from()
    -> Result<(), Box<dyn std::error::Error>> {
        let mut values = Values::default();
        values.add_yaml(
            Path::new("values.yaml"),
            "redis:\n  persistence:\n    size: 1Ki\n",
        )?;
        values.add_set("redis.extra.deep=1")?;
        let error = values.plugin_problems(
            "redis",
            "redis (redis.wasm)",
            &[
                ("persistence.size".into(), "too small".into()),
                ("extra".into(), "not allowed".into()),
                ("replicas".into(), "must be 1".into()),
            ],
        );
        assert_eq!(
            error.to_string(),
            "redis (redis.wasm): invalid configuration\n  \
             persistence.size: too small (from values.yaml:3:5)\n  \
             extra: not allowed (from --set redis.extra.deep=1)\n  \
             replicas: must be 1 (from the plugin's defaults)"
        );
        Ok(())
    }

    #[test]
    fn malformed_sets_are_usage_errors() {
        let mut values = Values::default();
        for bad in ["redis", "redis=1", "redis..a=1", ".a=1"] {
            assert!(values.add_set(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_section_need_not_set_what_the_defaults_set() {
        let mut schema = json!({
            "type": "object",
            "required": ["size", "name"],
            "properties": {
                "limits": {"required": ["cpu", "memory"]},
                "choice": {"anyOf": [{"required": ["a", "b"]}, {"type": "null"}]},
                "rules": {"items": {"required": ["type"]}},
                "shared": {"$ref": "#/$defs/pair"}
            },
            "$defs": {"pair": {"required": ["left"]}}
        });
        let defaults = json!({
            "size": "1Gi",
            "limits": {"cpu": 1, "memory": "1Gi"},
            "choice": {"a": 1},
            "rules": [{"type": "host"}],
            "shared": {"left": 1}
        });
        relax_for_section(&mut schema, &defaults);
        let properties = &schema["properties"];
        assert_eq!(schema["required"], json!(["name"]), "not in the defaults");
        assert!(properties["limits"].get("required").is_none());
        assert_eq!(properties["choice"]["anyOf"][0]["required"], json!(["b"]));
        // A list is replaced whole, and a referenced schema may stand for other places.
        assert_eq!(properties["rules"]["items"]["required"], json!(["type"]));
        assert_eq!(schema["$defs"]["pair"]["required"], json!(["left"]));
    }

    #[test]
    fn aliases_resolve_and_cannot_explode() -> Result<(), Box<dyn std::error::Error>> {
        let mut values = Values::default();
        values.add_yaml(
            Path::new("v.yaml"),
            "base: &b {size: 1Gi}\nredis:\n  persistence: *b\n",
        )?;
        assert_eq!(
            values.layers[0].sections["redis"],
            json!({"persistence": {"size": "1Gi"}}),
            "the alias stands for the anchored mapping"
        );
        let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 0..8 {
            bomb.push_str(&format!("b{i}: &b{i} [{prev}, {prev}, {prev}, {prev}, {prev}, {prev}, {prev}, {prev}, {prev}, {prev}]\n",
                prev = if i == 0 { "*a".to_string() } else { format!("*b{}", i - 1) }));
        }
        assert!(
            Values::default()
                .add_yaml(Path::new("bomb.yaml"), &bomb)
                .is_err()
        );
        Ok(())
    }
}

#[cfg(test)]
mod proptests {
    use super::tests::{LIMIT, parsed};
    use super::*;
    use proptest::prelude::*;

    /// A plugin name and a setting path under it, as `--set` takes them.
    fn set_path() -> impl Strategy<Value = (String, Vec<String>)> {
        (
            "[a-z][a-z0-9-]{0,12}",
            prop::collection::vec("[a-zA-Z0-9_/~ -]{1,8}", 1..5),
        )
    }

    fn pointer(keys: &[String]) -> String {
        keys.iter()
            .map(|k| format!("/{}", escape_pointer(k)))
            .collect()
    }

    fn config(values: &Values, plugin: &str) -> Result<Value, TestCaseError> {
        values
            .config_for(
                plugin,
                "redis (redis.wasm)",
                "{}",
                &parsed(r#"{"type": "object"}"#),
                LIMIT,
            )
            .map_err(|e| TestCaseError::fail(e.to_string()))
    }

    proptest! {
        #[test]
        fn values_files_never_panic(text in any::<String>()) {
            let _ = Values::default().add_yaml(Path::new("v.yaml"), &text);
        }

        #[test]
        fn yaml_like_values_files_never_panic(
            text in "([a-z]{1,3}|[:\\-\\[\\]{},&*!|>'\"#%@` ]|\n {0,4}){0,80}"
        ) {
            let mut values = Values::default();
            if values.add_yaml(Path::new("v.yaml"), &text).is_ok() {
                let _ = values.check_sections(["a", "b"]);
                let _ = values.config_for("a", "redis (redis.wasm)", "{}", &parsed(r#"{"type": "object"}"#), LIMIT);
            }
        }

        #[test]
        fn sets_never_panic(arg in any::<String>()) {
            let mut values = Values::default();
            if values.add_set(&arg).is_ok() {
                let plugin = arg.split('.').next().unwrap_or_default();
                let _ = values.config_for(plugin, "redis (redis.wasm)", "{}", &parsed(r#"{"type": "object"}"#), LIMIT);
            }
        }

        #[test]
        fn a_quoted_set_round_trips_any_string(
            (plugin, keys) in set_path(), value in any::<String>()
        ) {
            let mut values = Values::default();
            values
                .add_set(&format!("{plugin}.{}=\"{value}\"", keys.join(".")))
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            let config = config(&values, &plugin)?;
            prop_assert_eq!(config.pointer(&pointer(&keys)), Some(&Value::String(value)));
        }

        #[test]
        fn numbers_and_booleans_set_keep_their_type(
            (plugin, keys) in set_path(), number in any::<i64>(), flag in any::<bool>()
        ) {
            let mut values = Values::default();
            let path = keys.join(".");
            values
                .add_set(&format!("{plugin}.{path}.number={number}"))
                .and_then(|()| values.add_set(&format!("{plugin}.{path}.flag={flag}")))
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            let config = config(&values, &plugin)?;
            let at = |leaf: &str| config.pointer(&format!("{}/{leaf}", pointer(&keys))).cloned();
            prop_assert_eq!(at("number"), Some(Value::from(number)));
            prop_assert_eq!(at("flag"), Some(Value::Bool(flag)));
        }

        #[test]
        fn a_later_set_wins((plugin, keys) in set_path(), first in "[a-z]{1,8}", second in "[a-z]{1,8}") {
            let mut values = Values::default();
            let path = keys.join(".");
            for value in [&first, &second] {
                values
                    .add_set(&format!("{plugin}.{path}='{value}'"))
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
            }
            let config = config(&values, &plugin)?;
            prop_assert_eq!(config.pointer(&pointer(&keys)), Some(&Value::String(second)));
        }
    }
}
