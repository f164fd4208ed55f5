//! `mathison-host inspect`: what a plugin is, emits and accepts.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::cli::RuntimeArgs;
use crate::model::contract;
use crate::pipeline::{self, Described};
use crate::plan::PluginRequest;
use crate::untrusted::{self, escape};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InspectFormat {
    Text,
    Json,
}

/// Show a plugin's metadata, configuration options with their defaults, and kinds.
#[derive(Debug, Args)]
pub struct InspectCommand {
    /// A path to a .wasm file, a bare plugin name or an oci:// reference.
    pub plugin: String,

    #[arg(long, value_enum, default_value_t = InspectFormat::Text)]
    pub format: InspectFormat,

    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

impl InspectCommand {
    pub fn run(self, _verbose: bool) -> anyhow::Result<()> {
        let plugin = self
            .runtime
            .locator()
            .locate(&PluginRequest::new(&self.plugin))?;
        let runtime = self.runtime.runtime();
        let described = pipeline::describe(&runtime, self.runtime.memo().as_ref(), &plugin)?;
        let text = match self.format {
            InspectFormat::Json => {
                let json = serde_json::to_string_pretty(&as_json(&described)?)?;
                let mut text = untrusted::escape_json(&json).into_owned();
                text.push('\n');
                text
            }
            InspectFormat::Text => as_text(&described)?,
        };
        super::write_stdout(&text)?;
        Ok(())
    }
}

pub(super) fn parse(plugin: &str, what: &str, text: &str) -> anyhow::Result<Value> {
    serde_json::from_str(text)
        .map_err(|e| anyhow::anyhow!("{plugin}: the plugin's {what} is not JSON: {e}"))
}

/// The plugin file's SHA-256, the checksum release pages publish (the cache itself keys on
/// BLAKE3).
fn sha256_of(path: &Path) -> anyhow::Result<String> {
    let bytes = fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect())
}

fn as_json(described: &Described) -> anyhow::Result<Value> {
    let (loaded, info) = (described, &described.info);
    Ok(json!({
        "name": info.name,
        "version": info.version,
        "description": info.description,
        "file": loaded.path,
        "size": loaded.size,
        "sha256": sha256_of(&loaded.path)?,
        "wit": format!("{}@{}", contract::WIT_PACKAGE, loaded.wit_version),
        "kinds": info.kinds.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "defaults": parse(&info.name, "default config", &info.default_config)?,
        "schema": described.schema()?.root(),
    }))
}

fn as_text(described: &Described) -> anyhow::Result<String> {
    let (loaded, info) = (described, &described.info);
    let schema = described.schema()?.root();
    let defaults = parse(&info.name, "default config", &info.default_config)?;
    let mut out = String::new();
    writeln!(out, "name:        {}", info.name)?;
    writeln!(out, "version:     {}", escape(&info.version))?;
    writeln!(out, "description: {}", escape(&info.description))?;
    writeln!(
        out,
        "file:        {} ({} bytes)",
        loaded.path.display(),
        loaded.size
    )?;
    writeln!(out, "sha256:      {}", sha256_of(&loaded.path)?)?;
    writeln!(
        out,
        "wit:         {}@{}",
        contract::WIT_PACKAGE,
        loaded.wit_version
    )?;
    writeln!(out, "kinds:")?;
    for kind in &info.kinds {
        writeln!(out, "  {kind}")?;
    }
    writeln!(
        out,
        "options (set with --set {}.OPTION=VALUE or a values file):",
        info.name
    )?;
    let options = Options::collect(schema, &defaults);
    for option in &options.found {
        writeln!(
            out,
            "  {}  ({}, default {})",
            escape(&option.path),
            escape(&option.kind),
            escape(&option.default)
        )?;
        if !option.description.is_empty() {
            // One escaped line per line of the description, each after the host's indent.
            for line in option.description.lines() {
                writeln!(out, "      {}", escape(line))?;
            }
        }
    }
    if options.omitted {
        writeln!(
            out,
            "  ... (more options not shown: the schema nests deeper than {MAX_OPTION_DEPTH} \
             levels or has more than {MAX_OPTIONS} properties)"
        )?;
    }
    Ok(out)
}

/// Bounds on what `inspect` lists: a schema may refer to itself or fan out, and the listing
/// must end all the same.
const MAX_OPTION_DEPTH: usize = 16;
const MAX_OPTIONS: usize = 1000;

struct OptionDoc {
    path: String,
    kind: String,
    default: String,
    description: String,
}

/// The leaf options of a schema, following local `$ref`s (`#/$defs/...`), within bounds.
struct Options<'a> {
    root: &'a Value,
    found: Vec<OptionDoc>,
    visited: usize,
    omitted: bool,
}

impl<'a> Options<'a> {
    fn collect(root: &'a Value, defaults: &Value) -> Self {
        let mut options = Self {
            root,
            found: Vec::new(),
            visited: 0,
            omitted: false,
        };
        options.walk(root, defaults, "", 0);
        options
    }

    fn walk(&mut self, schema: &'a Value, defaults: &Value, prefix: &str, depth: usize) {
        let schema = resolve(self.root, schema);
        let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
            return;
        };
        if depth >= MAX_OPTION_DEPTH {
            self.omitted = true;
            return;
        }
        for (name, property) in properties {
            // Counts every property visited, not only the options found: a schema that refers
            // to itself many times over could otherwise branch without end below the depth cap.
            self.visited += 1;
            if self.visited > MAX_OPTIONS {
                self.omitted = true;
                return;
            }
            let path = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}.{name}")
            };
            let property = resolve(self.root, property);
            let default = defaults.get(name).unwrap_or(&Value::Null);
            if property.get("properties").is_some() {
                self.walk(property, default, &path, depth + 1);
                continue;
            }
            self.found.push(OptionDoc {
                path,
                kind: type_name(property),
                default: default.to_string(),
                description: property
                    .get("description")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
            });
        }
    }
}

/// What `schema` stands for: its `$ref` target, or the first of an `allOf` (schemars wraps a
/// described `$ref` in one), a bounded number of steps deep.
fn resolve<'a>(root: &'a Value, mut schema: &'a Value) -> &'a Value {
    for _ in 0..MAX_OPTION_DEPTH {
        let next = schema
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix('#'))
            .and_then(|pointer| root.pointer(pointer))
            .or_else(|| schema.get("allOf").and_then(|all| all.get(0)));
        match next {
            Some(next) => schema = next,
            None => break,
        }
    }
    schema
}

fn type_name(schema: &Value) -> String {
    if schema.get("format").and_then(Value::as_str) == Some("quantity") {
        return "quantity".into();
    }
    match schema.get("type") {
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(types)) => types
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" | "),
        _ if schema.get("enum").is_some() => "enum".into(),
        _ => "any".into(),
    }
}
