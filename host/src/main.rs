//! The `mathison-host` binary: parse the command line, run, report errors with their causes.

use std::io;
use std::process::ExitCode;

use clap::Parser;
use mathison_host::commands::Cli;

fn main() -> ExitCode {
    // clap exits with 2 on usage errors and 0 for --help/--version.
    let cli = Cli::parse();
    match mathison_host::commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        // A closed pipe (`| head`) means the reader has what it wanted.
        Err(error) if is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            for cause in error.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}
