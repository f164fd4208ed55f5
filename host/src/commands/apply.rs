//! `mathison-host apply`: render, then bring a cluster to that state with server-side apply.

use std::io::{self, IsTerminal, Write};
use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::apply::changes::{Changes, Target};
use crate::apply::wait::{Readiness, WaitSettings};
use crate::apply::{self, Options, Reporter};
use crate::cli::{ClusterArgs, RenderArgs, parse_duration};

/// Renders with `args` and plans the apply of the result; nothing reaches a cluster unless
/// every plugin and check succeeded.
pub fn render_changes(args: &RenderArgs, verbose: bool) -> anyhow::Result<Changes> {
    let (rendered, request) = super::render(args, verbose)?;
    Ok(Changes::new(
        &rendered.objects,
        &request.namespace,
        &request.instance,
    ))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DryRun {
    /// Print each request, in order, with its parameters; contact no cluster.
    Client,
    /// Send every request with dryRun=All: the API server checks everything, persists nothing.
    Server,
}

/// Apply the rendered objects to a cluster with server-side apply.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    mathison-host apply -p postgres -p redis --wait\n  \
    mathison-host apply -p postgres -p redis --prune --context staging\n  \
    mathison-host apply -p postgres --dry-run=server\n  \
    mathison-host apply -p postgres --dry-run=client > requests.yaml")]
pub struct ApplyCommand {
    #[command(flatten)]
    pub render: RenderArgs,

    #[command(flatten)]
    pub cluster: ClusterArgs,

    /// Send nothing that changes the cluster: `client` prints the requests, `server` lets the
    /// API server check them.
    #[arg(long = "dry-run", value_enum, value_name = "MODE")]
    pub dry_run: Option<DryRun>,

    /// Take over fields another field manager owns instead of failing with a conflict.
    #[arg(long)]
    pub force_conflicts: bool,

    /// Delete objects this tool applied earlier for the same namespace and instance that the
    /// render no longer contains (tracked as a KEP-3659 ApplySet).
    #[arg(long)]
    pub prune: bool,

    /// Wait until each StatefulSet is rolled out and ready and its claims are bound.
    #[arg(long)]
    pub wait: bool,

    /// How long --wait waits in all, e.g. 5m. (`--timeout` limits each plugin call.)
    #[arg(long = "wait-timeout", value_name = "DURATION", default_value = "5m", value_parser = parse_duration)]
    pub wait_timeout: Duration,
}

impl ApplyCommand {
    pub fn run(self, verbose: bool) -> anyhow::Result<()> {
        let changes = render_changes(&self.render, verbose)?;
        let options = Options {
            force_conflicts: self.force_conflicts,
            dry_run: self.dry_run == Some(DryRun::Server),
            prune: self.prune,
            wait: self.wait.then_some(WaitSettings {
                timeout: self.wait_timeout,
                poll: Duration::from_secs(1),
            }),
        };
        if self.dry_run == Some(DryRun::Client) {
            if self.prune || self.wait {
                eprintln!("note: --prune and --wait need the cluster; a client dry run skips them");
            }
            return Ok(super::write_stdout(&apply::describe(&changes, &options)?)?);
        }
        let cluster = self.cluster.connect()?;
        let mut reporter = Console {
            terminal: io::stderr().is_terminal(),
        };
        apply::apply(&cluster, &changes, &options, &mut reporter)?;
        Ok(())
    }
}

/// Results on stdout, one line per object as kubectl prints them; wait progress on stderr,
/// rewritten in place on a terminal and as plain lines otherwise (CI logs).
struct Console {
    terminal: bool,
}

fn suffix(dry_run: bool) -> &'static str {
    if dry_run { " (server dry run)" } else { "" }
}

impl Reporter for Console {
    fn applied(&mut self, target: &Target, dry_run: bool) {
        let _ = writeln!(io::stdout(), "applied {target}{}", suffix(dry_run));
    }

    fn pruned(&mut self, target: &Target, dry_run: bool) {
        let _ = writeln!(io::stdout(), "pruned {target}{}", suffix(dry_run));
    }

    fn readiness(&mut self, target: &Target, readiness: &Readiness) {
        let line = match readiness {
            Readiness::Ready => format!("{target}: ready"),
            Readiness::Pending(reason) => format!("{target}: waiting: {reason}"),
        };
        let mut stderr = io::stderr().lock();
        let _ = if !self.terminal {
            writeln!(stderr, "{line}")
        } else if *readiness == Readiness::Ready {
            writeln!(stderr, "\r\x1b[2K{line}")
        } else {
            write!(stderr, "\r\x1b[2K{line}")
        };
        let _ = stderr.flush();
    }
}
