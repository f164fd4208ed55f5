//! One file per subcommand: an Args struct and its `run`.

pub mod apply;
pub mod compile;
pub mod diff;
pub mod inspect;
pub mod new;
pub mod render;
pub mod validate;

use std::io::{self, Write};

use crate::cli::{Cli, Command, RuntimeArgs};
use crate::contract::LogLevel;
use crate::pipeline::Rendered;
use crate::runtime::Runtime;

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
    }
}

fn runtime(args: &RuntimeArgs) -> anyhow::Result<Runtime> {
    Ok(Runtime::new(
        args.limits(),
        args.cache_dir(),
        args.allow_precompiled,
    )?)
}

/// Shows the plugins' log lines and the render's notes on stderr: warnings always, the rest
/// with `-v`.
fn report(rendered: &Rendered, verbose: bool) {
    let mut stderr = io::stderr().lock();
    for plugin in &rendered.plugins {
        if verbose {
            let _ = writeln!(
                stderr,
                "{}: {} objects ({}; compiled code: {:?})",
                plugin.label,
                plugin.objects,
                plugin.path.display(),
                plugin.cache
            );
        }
        for line in &plugin.logs {
            if verbose || line.level >= LogLevel::Warn {
                let _ = writeln!(stderr, "{}: {}: {}", plugin.label, line.level, line.message);
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
