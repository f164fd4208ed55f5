//! The `mathison-host` binary: parse the command line, run, report errors with their causes.

use std::io;
use std::process::ExitCode;

use clap::CommandFactory;
use clap_complete::CompleteEnv;
use mathison_host::commands::Cli;
use mathison_host::commands::completions::COMPLETE_ENV;

fn main() -> ExitCode {
    // A shell asking for completions (through the script `completions SHELL` prints) is
    // answered here, and the process exits, before anything else is parsed or printed.
    CompleteEnv::with_factory(Cli::command)
        .var(COMPLETE_ENV)
        .complete();
    // clap exits with 2 on usage errors and 0 for --help/--version.
    let cli = Cli::parse_args(std::env::args_os().collect());
    match mathison_host::commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        // A closed pipe (`| head`) means the reader has what it wanted.
        Err(error) if is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            // Some libraries (kube, hyper) repeat their source in their own message; a cause
            // the line above already said is not printed again.
            let mut above = error.to_string();
            for cause in error.chain().skip(1) {
                let text = cause.to_string();
                if !above.contains(&text) {
                    eprintln!("  caused by: {text}");
                }
                above = text;
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
