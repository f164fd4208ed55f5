//! `mathison-host schema`: JSON Schemas of the files users write.

use anyhow::Context as _;
use clap::{ArgGroup, Args, ValueEnum};
use serde_json::{Map, Value, json};

use crate::cli::RuntimeArgs;
use crate::pipeline::{self, Described};
use crate::plan::PluginRequest;
use crate::project::Project;
use crate::schema::DRAFT_2020_12;
use crate::untrusted;
use crate::values;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SchemaOf {
    /// The project file, mathison.yaml.
    Project,
}

/// Print the JSON Schema of a file users write, for editors (yaml-language-server) and CI: the
/// project file's, or with --plugin a values file's (one section per plugin, each checked
/// against that plugin's configuration schema; any other section is an error, as in a render).
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("file").required(true).args(["of", "plugins"])))]
#[command(after_help = "Examples:\n  \
    mathison-host schema project > mathison.schema.json\n  \
    mathison-host schema -p postgres -p redis > values.schema.json\n  \
    # then, first line of mathison.yaml (or values.yaml, with ./values.schema.json):\n  \
    # yaml-language-server: $schema=./mathison.schema.json")]
pub struct SchemaCommand {
    /// Which file: project (mathison.yaml). For a values file, give --plugin instead.
    #[arg(value_enum, value_name = "FILE")]
    pub of: Option<SchemaOf>,

    /// A plugin of the values files, whose schema is then printed: a path to a .wasm file, a
    /// bare name or an oci:// reference, as for render. Repeatable.
    #[arg(short, long = "plugin", value_name = "PLUGIN")]
    pub plugins: Vec<String>,

    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

impl SchemaCommand {
    pub fn run(self, _verbose: bool) -> anyhow::Result<()> {
        let schema = match self.of {
            Some(SchemaOf::Project) => Project::json_schema(),
            None => self.values_schema()?,
        };
        // A values schema holds the plugins' own text (descriptions, patterns, defaults).
        let mut text = untrusted::escape_json(&serde_json::to_string_pretty(&schema)?).into_owned();
        text.push('\n');
        super::write_stdout(&text)?;
        Ok(())
    }

    fn values_schema(&self) -> anyhow::Result<Value> {
        let locator = self.runtime.locator();
        let plugins = self
            .plugins
            .iter()
            .map(|spec| locator.locate(&PluginRequest::new(spec)))
            .collect::<Result<Vec<_>, _>>()?;
        let runtime = self.runtime.runtime();
        values_schema(&pipeline::describe_all(
            &runtime,
            self.runtime.memo().as_ref(),
            &plugins,
        )?)
    }
}

/// The schema of a values file for `plugins`: a section per plugin, named as the plugin names
/// itself, checked against its schema as that stands under `$defs` (where its references are
/// made to point), with what its defaults set not required; no other section, as a render
/// refuses a section that names none of its plugins.
fn values_schema(plugins: &[Described]) -> anyhow::Result<Value> {
    let mut properties = Map::new();
    let mut definitions = Map::new();
    for plugin in plugins {
        let name = &plugin.info.name;
        // A plugin's name is a DNS label: nothing in it needs escaping in a JSON pointer.
        let at = format!("/$defs/{name}");
        let mut schema = plugin.schema()?.embedded_at(&at).with_context(|| {
            format!(
                "{}: its configuration schema cannot be part of a values schema",
                plugin.source
            )
        })?;
        let defaults = super::inspect::parse(name, "default config", &plugin.info.default_config)?;
        values::relax_for_section(&mut schema, &defaults);
        properties.insert(
            name.clone(),
            json!({"description": plugin.info.description, "$ref": format!("#{at}")}),
        );
        definitions.insert(name.clone(), schema);
    }
    let names: Vec<&str> = plugins.iter().map(|p| p.info.name.as_str()).collect();
    Ok(json!({
        "$schema": DRAFT_2020_12,
        "title": "mathison-host values file",
        "description": format!(
            "Values for the plugins {}: one section per plugin, checked against that plugin's \
             configuration schema. Written by `mathison-host schema`.",
            names.join(", ")
        ),
        // An empty file (or one of comments) is no values at all, as for a render.
        "type": ["object", "null"],
        "properties": properties,
        "additionalProperties": false,
        "$defs": definitions,
    }))
}
