//! The command line's top level, and one file per subcommand: its arguments and its `run`.
//! Shared argument groups are in `cli`; commands call `pipeline::render` through [`render`].

pub mod apply;
pub mod compile;
pub mod completions;
pub mod diff;
pub mod function;
pub mod inspect;
pub mod lock;
pub mod man;
pub mod new;
pub mod push;
pub mod render;
pub mod schema;
pub mod validate;

use std::io::{self, Write};

use clap::{Parser, Subcommand};

use crate::cli::{Prepared, RenderArgs};
use crate::model::contract::LogLevel;
use crate::pipeline::{self, Rendered};
use crate::plan::{Locator, Request};

/// Render Mathison's backing services (PostgreSQL, Redis, ...) from WebAssembly plugins.
#[derive(Debug, Parser)]
#[command(name = "mathison-host", version, about, long_about = None)]
pub struct Cli {
    /// Show the plugins' info and debug log lines and what the host does.
    #[arg(short, long, global = true)]
    pub verbose: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Render(render::RenderCommand),
    Validate(validate::ValidateCommand),
    Inspect(inspect::InspectCommand),
    Compile(compile::CompileCommand),
    New(new::NewCommand),
    Apply(apply::ApplyCommand),
    Diff(diff::DiffCommand),
    Fn(function::FunctionCommand),
    Push(push::PushCommand),
    Lock(lock::LockCommand),
    Schema(schema::SchemaCommand),
    Completions(completions::CompletionsCommand),
    Man(man::ManCommand),
}

/// Runs the command `cli` names.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let verbose = cli.verbose;
    match cli.command {
        Command::Render(command) => command.run(verbose),
        Command::Validate(command) => command.run(verbose),
        Command::Inspect(command) => command.run(verbose),
        Command::Compile(command) => command.run(verbose),
        Command::New(command) => command.run(verbose),
        Command::Apply(command) => command.run(verbose),
        Command::Diff(command) => command.run(verbose),
        Command::Fn(command) => command.run(verbose),
        Command::Push(command) => command.run(verbose),
        Command::Lock(command) => command.run(verbose),
        Command::Schema(command) => command.run(verbose),
        Command::Completions(command) => command.run(verbose),
        Command::Man(command) => command.run(verbose),
    }
}

/// Renders what `args` ask for (with the request it made of them) and reports on stderr what
/// the plugins logged.
fn render(args: &RenderArgs, verbose: bool) -> anyhow::Result<(Rendered, Request)> {
    let locator = args.runtime.locator();
    let prepared = args.prepare(&locator)?;
    let (rendered, request) = render_prepared(args, &locator, prepared)?;
    report(&rendered, verbose);
    Ok((rendered, request))
}

/// Renders what [`RenderArgs::prepare`] or [`RenderArgs::prepare_with`] put together.
fn render_prepared(
    args: &RenderArgs,
    locator: &Locator,
    prepared: Prepared,
) -> anyhow::Result<(Rendered, Request)> {
    let runtime = args.runtime.runtime();
    let rendered = pipeline::render(
        &runtime,
        args.runtime.memo().as_ref(),
        locator,
        &prepared.request,
    )?;
    // Only a render that succeeded proves the plugins are the ones the project names.
    if let Some(lock) = &prepared.pending_lock {
        eprintln!("note: wrote {}", lock.write()?.display());
    }
    Ok((rendered, prepared.request))
}

/// Shows the plugins' log lines and the render's notes on stderr: warnings always, the rest
/// with `-v`.
fn report(rendered: &Rendered, verbose: bool) {
    let mut stderr = io::stderr().lock();
    for plugin in &rendered.plugins {
        if verbose {
            let code = match plugin.cache {
                Some(cache) => format!("{cache:?}"),
                None => "not loaded".to_string(),
            };
            let _ = writeln!(
                stderr,
                "{}: {} objects ({}; compiled code: {code}; memo: {:?})",
                plugin.source,
                plugin.objects,
                plugin.path.display(),
                plugin.memo
            );
        }
        for line in &plugin.logs {
            if verbose || line.level >= LogLevel::Warn {
                let _ = writeln!(
                    stderr,
                    "{}: {}: {}",
                    plugin.source, line.level, line.message
                );
            }
        }
    }
    for note in &rendered.notes {
        let _ = writeln!(stderr, "note: {note}");
    }
}

/// Writes all of `text` to stdout.
fn write_stdout(text: &str) -> io::Result<()> {
    let mut stdout = io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
