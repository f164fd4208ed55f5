//! `mathison-host lock`: resolve the project's plugins and write its lock file.

use anyhow::Context as _;
use clap::Args;

use crate::cli::RenderArgs;
use crate::project::lock::{self, LockMode};

/// Resolve every plugin of the project file (tags to digests, local files to their SHA-256),
/// fetching registry plugins into the cache, and write mathison.lock beside it.
///
/// Renders of the project then use the locked digests and never resolve a tag; with
/// --locked, a missing or stale lock is an error instead of being rewritten.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    mathison-host lock\n  \
    mathison-host render --locked > manifests.yaml")]
pub struct LockCommand {
    #[command(flatten)]
    pub render: RenderArgs,
}

impl LockCommand {
    pub fn run(self, _verbose: bool) -> anyhow::Result<()> {
        let project = self
            .render
            .project()?
            .context("no project file to lock: write mathison.yaml, or pass --project FILE")?;
        let mode = if self.render.locked {
            LockMode::Locked
        } else {
            LockMode::Refresh
        };
        let resolved = lock::resolve(&project, &self.render.runtime.locator(), mode)?;
        match resolved.wrote {
            Some(path) => eprintln!("wrote {}", path.display()),
            None => eprintln!("{} is up to date", lock::lock_path(&project).display()),
        }
        Ok(())
    }
}
