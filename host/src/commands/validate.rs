//! `mathison-host validate`: everything `render` does, writing nothing; for CI.

use clap::Args;

use crate::cli::RenderArgs;

/// Check that the plugins render with this configuration, without writing anything.
#[derive(Debug, Args)]
pub struct ValidateCommand {
    #[command(flatten)]
    pub render: RenderArgs,
}

impl ValidateCommand {
    pub fn run(self, verbose: bool) -> anyhow::Result<()> {
        let (rendered, _) = super::render(&self.render, verbose)?;
        let names: Vec<&str> = rendered.plugins.iter().map(|p| p.name.as_str()).collect();
        eprintln!(
            "ok: {} objects from {} plugin(s) ({}) are valid",
            rendered.objects.len(),
            names.len(),
            names.join(", ")
        );
        Ok(())
    }
}
