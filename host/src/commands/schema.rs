//! `mathison-host schema`: JSON Schemas of the files users write.

use clap::{Args, ValueEnum};

use crate::project::Project;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SchemaOf {
    /// The project file, mathison.yaml.
    Project,
}

/// Print the JSON Schema of a file users write, for editors (yaml-language-server) and CI.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  \
    mathison-host schema project > mathison.schema.json\n  \
    # then, first line of mathison.yaml:\n  \
    # yaml-language-server: $schema=./mathison.schema.json")]
pub struct SchemaCommand {
    #[arg(value_enum)]
    pub of: SchemaOf,
}

impl SchemaCommand {
    pub fn run(self, _verbose: bool) -> anyhow::Result<()> {
        let schema = match self.of {
            SchemaOf::Project => Project::json_schema(),
        };
        super::write_stdout(&format!("{}\n", serde_json::to_string_pretty(&schema)?))?;
        Ok(())
    }
}
