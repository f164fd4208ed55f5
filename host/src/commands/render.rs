//! `mathison-host render`: render the plugins' objects to stdout or a folder.

use std::path::PathBuf;

use clap::Args;

use crate::cli::{FormatArg, RenderArgs};
use crate::output::{self, Format};
use crate::pipeline::{Files, Stream};

/// Render the manifests of the given plugins.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    mathison-host render --plugin postgres --plugin redis | kubectl apply -f -\n  \
    mathison-host render -p postgres -p redis --set redis.persistence.enabled=false -o deploy/\n  \
    mathison-host render -p postgres --secret-input postgres.postgres-password=file:./pg-password\n  \
    mathison-host render --locked -o deploy/ --check   # in CI: fail when deploy/ is stale")]
pub struct RenderCommand {
    #[command(flatten)]
    pub render: RenderArgs,

    /// Output format.
    #[arg(long, value_enum, default_value_t = FormatArg::Yaml)]
    pub format: FormatArg,

    /// Write one file per plugin (and `mathison-host.yaml` for the host's own objects) into
    /// DIR instead of stdout. Nothing is written unless the whole render succeeds; files an
    /// earlier render wrote that this one does not are removed, other files are kept.
    #[arg(short = 'o', long = "output-dir", value_name = "DIR")]
    pub output_dir: Option<PathBuf>,

    /// With -o DIR: write nothing, print a unified diff of what the render would change in DIR
    /// (Secret values masked), and fail when anything would. For CI drift checks.
    #[arg(long, requires = "output_dir")]
    pub check: bool,
}

impl RenderCommand {
    pub fn run(self, verbose: bool) -> anyhow::Result<()> {
        let format = Format::from(self.format);
        let Some(dir) = &self.output_dir else {
            let rendered = super::render_text::<Stream>(&self.render, format, verbose)?;
            return Ok(super::write_stdout(&rendered.manifests.0)?);
        };
        let rendered = super::render_text::<Files>(&self.render, format, verbose)?;
        let files = &rendered.manifests.0;
        if self.check {
            let diffs = output::check::drift(dir, files, format)?;
            super::write_stdout(&diffs.concat())?;
            if !diffs.is_empty() {
                anyhow::bail!(
                    "{} differs from the render in {} file(s); run the same command without \
                     --check to update it",
                    dir.display(),
                    diffs.len()
                );
            }
            if verbose {
                eprintln!("{} is up to date", dir.display());
            }
            return Ok(());
        }
        let written = output::write_dir(dir, files).map_err(|error| {
            // Name the plugin whose file it would have been.
            let owner = match &error {
                output::OutputError::NotOurs { file, .. } => rendered
                    .plugins
                    .iter()
                    .find(|p| output::file_name(&p.name, format) == *file)
                    .map(|p| format!("{} ({})", p.name, p.source)),
                _ => None,
            };
            match owner {
                Some(owner) => anyhow::Error::new(error).context(format!(
                    "{owner}: its output file would replace a file it does not own"
                )),
                None => error.into(),
            }
        })?;
        if verbose {
            for path in written {
                eprintln!("wrote {}", path.display());
            }
        }
        Ok(())
    }
}
