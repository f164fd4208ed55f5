//! `mathison-host man`: the manual pages, in roff.

use std::fs;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, CommandFactory};
use clap_mangen::Man;

use super::Cli;

/// Print the manual page (roff), or write one page per command into a folder.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    mathison-host man | man -l -\n  \
    mathison-host man --out-dir ~/.local/share/man/man1")]
pub struct ManCommand {
    /// Write mathison-host.1 and a page per command (mathison-host-render.1, ...), which the
    /// first one refers to, into DIR (created if missing) instead of printing mathison-host.1.
    #[arg(long = "out-dir", value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
}

impl ManCommand {
    pub fn run(self, _verbose: bool) -> anyhow::Result<()> {
        // As `generate_to` does: the page of `help` would only repeat this one.
        let command = Cli::command().disable_help_subcommand(true);
        match self.out_dir {
            Some(dir) => fs::create_dir_all(&dir)
                .and_then(|()| clap_mangen::generate_to(command, &dir))
                .with_context(|| format!("cannot write the manual pages into {}", dir.display())),
            None => {
                let mut page = Vec::new();
                Man::new(command).render(&mut page)?;
                super::write_stdout(&String::from_utf8(page)?)?;
                Ok(())
            }
        }
    }
}
