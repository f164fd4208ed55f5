//! `mathison-host lock`: resolve the project's plugins and write its lock file.

use anyhow::Context as _;
use clap::Args;

use crate::cli::RenderArgs;
use crate::pipeline;
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
        let locator = self.render.runtime.locator();
        let resolved = lock::resolve(&project, &locator, mode)?;
        // A tag may have moved to another plugin: lock only what calls itself what the
        // project says.
        let runtime = self.render.runtime.runtime();
        for plugin in &resolved.plugins {
            let file = locator.locate(plugin)?;
            let described = pipeline::describe(&runtime, None, &file)?;
            pipeline::check_name(&described, &file)?;
        }
        match &resolved.pending {
            Some(pending) => eprintln!("wrote {}", pending.write()?.display()),
            None => eprintln!("{} is up to date", lock::lock_path(&project).display()),
        }
        Ok(())
    }
}
