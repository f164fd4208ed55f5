//! `mathison-host inspect`: what a plugin is, emits and accepts.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::cli::RuntimeArgs;
use crate::contract::{self, PluginInfo};
use crate::pipeline;
use crate::plan;
use crate::runtime::LoadedPlugin;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InspectFormat {
    Text,
    Json,
}

/// Show a plugin's metadata, configuration options with their defaults, and kinds.
#[derive(Debug, Args)]
pub struct InspectCommand {
    /// A path to a .wasm file or a bare plugin name.
    pub plugin: String,

    #[arg(long, value_enum, default_value_t = InspectFormat::Text)]
    pub format: InspectFormat,

    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

impl InspectCommand {
    pub fn run(self, _verbose: bool) -> anyhow::Result<()> {
        let search = plan::search_path_of(&self.runtime);
        let path = plan::resolve_plugin(&self.plugin, &search)?;
        let runtime = super::runtime(&self.runtime)?;
        let (loaded, info, _logs) = pipeline::describe(&runtime, &path)?;
        let text = match self.format {
            InspectFormat::Json => {
                let mut text = serde_json::to_string_pretty(&as_json(&loaded, &info)?)?;
                text.push('\n');
                text
            }
            InspectFormat::Text => as_text(&loaded, &info)?,
        };
        super::write_stdout(&text)?;
        Ok(())
    }
}

fn parse(plugin: &str, what: &str, text: &str) -> anyhow::Result<Value> {
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

fn as_json(loaded: &LoadedPlugin, info: &PluginInfo) -> anyhow::Result<Value> {
    Ok(json!({
        "name": info.name,
        "version": info.version,
        "description": info.description,
        "file": loaded.path,
        "size": loaded.size,
        "sha256": sha256_of(&loaded.path)?,
        "wit": format!("{}@{}", contract::WIT_PACKAGE, contract::WIT_VERSION),
        "kinds": info.kinds.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "defaults": parse(&info.name, "default config", &info.default_config)?,
        "schema": parse(&info.name, "config schema", &info.config_schema)?,
    }))
}

fn as_text(loaded: &LoadedPlugin, info: &PluginInfo) -> anyhow::Result<String> {
    let schema = parse(&info.name, "config schema", &info.config_schema)?;
    let defaults = parse(&info.name, "default config", &info.default_config)?;
    let mut out = String::new();
    writeln!(out, "name:        {}", info.name)?;
    writeln!(out, "version:     {}", info.version)?;
    writeln!(out, "description: {}", info.description)?;
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
        contract::WIT_VERSION
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
    let mut options = Vec::new();
    collect_options(&schema, &schema, &defaults, "", &mut options);
    for option in options {
        writeln!(
            out,
            "  {}  ({}, default {})",
            option.path, option.kind, option.default
        )?;
        if !option.description.is_empty() {
            writeln!(
                out,
                "      {}",
                option.description.replace('\n', "\n      ")
            )?;
        }
    }
    Ok(out)
}

struct OptionDoc {
    path: String,
    kind: String,
    default: String,
    description: String,
}

/// Lists the leaf options of a schema, following local `$ref`s (`#/$defs/...`).
fn collect_options(
    root: &Value,
    schema: &Value,
    defaults: &Value,
    prefix: &str,
    out: &mut Vec<OptionDoc>,
) {
    let schema = resolve(root, schema);
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return;
    };
    for (name, property) in properties {
        let path = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        let property = resolve(root, property);
        let default = defaults.get(name).unwrap_or(&Value::Null);
        if property.get("properties").is_some() {
            collect_options(root, property, default, &path, out);
            continue;
        }
        out.push(OptionDoc {
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

fn resolve<'a>(root: &'a Value, schema: &'a Value) -> &'a Value {
    schema
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix('#'))
        .and_then(|pointer| root.pointer(pointer))
        .or_else(|| {
            // schemars wraps a described $ref in allOf / anyOf.
            schema
                .get("allOf")
                .and_then(|all| all.get(0))
                .map(|inner| resolve(root, inner))
        })
        .unwrap_or(schema)
}

fn type_name(schema: &Value) -> String {
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
