//! `mathison-host diff`: what `apply` would change, as a unified diff per object.

use clap::Args;

use super::apply::render_changes;
use crate::apply;
use crate::cli::{ClusterArgs, RenderArgs};

/// Show what `apply` would change: each object as the cluster has it against a server-side
/// dry run of the apply. Secret values are masked.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    mathison-host diff -p postgres -p redis\n  \
    mathison-host diff -p postgres --set postgres.persistence.size=20Gi --context staging")]
pub struct DiffCommand {
    #[command(flatten)]
    pub render: RenderArgs,

    #[command(flatten)]
    pub cluster: ClusterArgs,
}

impl DiffCommand {
    pub fn run(self, verbose: bool) -> anyhow::Result<()> {
        let changes = render_changes(&self.render, verbose)?;
        let cluster = self.cluster.connect()?;
        let diffs = apply::diff(&cluster, &changes)?;
        let text: String = diffs.iter().map(|d| d.diff.as_str()).collect();
        super::write_stdout(&text)?;
        eprintln!("{} of {} objects differ", diffs.len(), changes.steps.len());
        Ok(())
    }
}
