//! `mathison-host diff`: what `apply` would change, as a unified diff per object.

use clap::Args;

use super::apply::{ClusterArgs, render_plan};
use crate::apply;
use crate::cli::RenderArgs;

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
        let plan = render_plan(&self.render, verbose)?;
        let cluster = self.cluster.connect()?;
        let diffs = apply::diff(&cluster, &plan)?;
        let text: String = diffs.iter().map(|d| d.diff.as_str()).collect();
        super::write_stdout(&text)?;
        eprintln!("{} of {} objects differ", diffs.len(), plan.steps.len());
        Ok(())
    }
}
