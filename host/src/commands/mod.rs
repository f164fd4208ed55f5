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

use std::ffi::OsString;
use std::io::{self, Write};

use clap::error::ErrorKind;
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::cli::{Prepared, RenderArgs};
use crate::model::contract::LogLevel;
use crate::output::Format;
use crate::pipeline::{self, Layout, PluginReport, Rendered, RenderedText};
use crate::plan::{Locator, Request};

const NAME: &str = "mathison-host";
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Render Mathison's backing services (PostgreSQL, Redis, ...) from WebAssembly plugins.
#[derive(Debug, Parser)]
#[command(name = NAME, version = VERSION, about, long_about = None)]
pub struct Cli {
    /// Show the plugins' info and debug log lines and what the host does.
    #[arg(short, long, global = true)]
    pub verbose: bool,

    #[command(subcommand)]
    pub command: Command,
}

/// Declares the subcommands: one line each, its variant, the file it lives in, its arguments'
/// type and its name. A subcommand's arguments are built only when that subcommand runs (or
/// when help lists them): clap builds every argument of every subcommand otherwise, which was
/// half of the work of `mathison-host --version`.
macro_rules! subcommands {
    ($($variant:ident($module:ident::$args:ident) = $name:literal,)*) => {
        #[derive(Debug)]
        pub enum Command {
            $($variant($module::$args),)*
        }

        /// Runs the command `cli` names.
        pub fn run(cli: Cli) -> anyhow::Result<()> {
            let verbose = cli.verbose;
            match cli.command {
                $(Command::$variant(command) => command.run(verbose),)*
            }
        }

        impl FromArgMatches for Command {
            fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
                Self::from_arg_matches_mut(&mut matches.clone())
            }

            fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
                self.update_from_arg_matches_mut(&mut matches.clone())
            }

            fn from_arg_matches_mut(matches: &mut ArgMatches) -> Result<Self, clap::Error> {
                match matches.remove_subcommand() {
                    $(Some((name, mut arguments)) if name == $name => Ok(Self::$variant(
                        $module::$args::from_arg_matches_mut(&mut arguments)?,
                    )),)*
                    Some((name, _)) => Err(clap::Error::raw(
                        ErrorKind::InvalidSubcommand,
                        format!("the subcommand {name:?} is not one of this program's"),
                    )),
                    None => Err(clap::Error::raw(
                        ErrorKind::MissingSubcommand,
                        "a subcommand is required",
                    )),
                }
            }

            fn update_from_arg_matches_mut(
                &mut self,
                matches: &mut ArgMatches,
            ) -> Result<(), clap::Error> {
                *self = Self::from_arg_matches_mut(matches)?;
                Ok(())
            }
        }

        impl Subcommand for Command {
            fn augment_subcommands(command: clap::Command) -> clap::Command {
                command$(.subcommand(
                    clap::Command::new($name).defer(<$module::$args as Args>::augment_args),
                ))*
            }

            fn augment_subcommands_for_update(command: clap::Command) -> clap::Command {
                command$(.subcommand(
                    clap::Command::new($name)
                        .defer(<$module::$args as Args>::augment_args_for_update),
                ))*
            }

            fn has_subcommand(name: &str) -> bool {
                [$($name),*].contains(&name)
            }
        }
    };
}

subcommands! {
    Render(render::RenderCommand) = "render",
    Validate(validate::ValidateCommand) = "validate",
    Inspect(inspect::InspectCommand) = "inspect",
    Compile(compile::CompileCommand) = "compile",
    New(new::NewCommand) = "new",
    Apply(apply::ApplyCommand) = "apply",
    Diff(diff::DiffCommand) = "diff",
    Fn(function::FunctionCommand) = "fn",
    Push(push::PushCommand) = "push",
    Lock(lock::LockCommand) = "lock",
    Schema(schema::SchemaCommand) = "schema",
    Completions(completions::CompletionsCommand) = "completions",
    Man(man::ManCommand) = "man",
}

impl Cli {
    /// Parses `args` (the program's name first), exiting as clap does on help, version and
    /// usage errors. The subcommands' arguments are built before parsing only when clap may
    /// list them: without a subcommand (help, a usage error), unless only the version is
    /// asked for.
    pub fn parse_args(args: Vec<OsString>) -> Self {
        // The version alone, what scripts and tools ask most, needs no command: building
        // clap's top level was a tenth of the process's instructions and a fifth of its page
        // faults (BENCHMARKS.md).
        if let [_, only] = args.as_slice()
            && (only == "--version" || only == "-V")
        {
            // As clap: a reader that closed the pipe is not an error.
            let _ = io::stdout().write_all(version_line().as_bytes());
            std::process::exit(0);
        }
        let words = || args.iter().skip(1).filter_map(|arg| arg.to_str());
        let mut command = Self::command();
        let names_subcommand = words().any(Command::has_subcommand);
        let asks_version = words().any(|word| word == "--version" || word == "-V");
        if !names_subcommand && !asks_version {
            command.build();
        }
        // clap's own errors (help and version included) come formatted with `command`; only
        // the subcommand's conversion needs a command to be formatted with, built once more.
        let mut matches = command
            .try_get_matches_from_mut(args)
            .unwrap_or_else(|error| error.exit());
        Self::from_arg_matches_mut(&mut matches)
            .unwrap_or_else(|error| error.format(&mut Self::command()).exit())
    }
}

/// What `--version` prints, as clap formats it.
fn version_line() -> String {
    format!("{NAME} {VERSION}\n")
}

/// Renders what `args` ask for (with the request it made of them) and reports on stderr what
/// the plugins logged.
fn render(args: &RenderArgs, verbose: bool) -> anyhow::Result<(Rendered, Request)> {
    let locator = args.runtime.locator();
    let prepared = args.prepare(&locator)?;
    let (rendered, request) = render_prepared(args, &locator, prepared)?;
    report(&rendered.plugins, &rendered.notes, verbose);
    Ok((rendered, request))
}

/// Renders what `args` ask for as text laid out as `L`, answered from the memo when nothing
/// changed, and reports on stderr what the plugins logged.
fn render_text<L: Layout>(
    args: &RenderArgs,
    format: Format,
    verbose: bool,
) -> anyhow::Result<RenderedText<L>> {
    let locator = args.runtime.locator();
    let prepared = args.prepare(&locator)?;
    let text = pipeline::render_text(
        &args.runtime.runtime(),
        args.runtime.memo().as_ref(),
        &locator,
        &prepared.request,
        format,
    )?;
    write_pending_lock(&prepared)?;
    report(&text.plugins, &text.notes, verbose);
    Ok(text)
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
    write_pending_lock(&prepared)?;
    Ok((rendered, prepared.request))
}

/// Writes the project's lock file when the render made one; only a render that succeeded
/// proves the plugins are the ones the project names.
fn write_pending_lock(prepared: &Prepared) -> anyhow::Result<()> {
    if let Some(lock) = &prepared.pending_lock {
        eprintln!("note: wrote {}", lock.write()?.display());
    }
    Ok(())
}

/// Shows the plugins' log lines and the render's notes on stderr: warnings always, the rest
/// with `-v`.
fn report(plugins: &[PluginReport], notes: &[String], verbose: bool) {
    let mut stderr = io::stderr().lock();
    for plugin in plugins {
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
    for note in notes {
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

    #[test]
    fn the_version_printed_without_clap_is_clap_s() {
        assert_eq!(super::version_line(), Cli::command().render_version());
    }
}
