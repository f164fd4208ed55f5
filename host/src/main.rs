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

// Only two functions of the C maths library are called by any dependency: `pow` (tokio's
// scheduler statistics) and `log2` (num-bigint's size estimate when parsing digits). Defined
// here from the `libm` crate (pure Rust, already in the tree through Cranelift), they keep the
// dynamic loader from opening, mapping and relocating libm.so at every start of the process:
// 10 page faults and ~0.1 ms, a tenth of an empty Rust binary's whole run (BENCHMARKS.md).
// The test `the_binary_needs_no_shared_library_beyond_std` notices a dependency that brings
// libm back. An executable's symbols are not exported, so libraries the process loads keep
// their own.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod maths {
    #[allow(unsafe_code)] // a C symbol of this name, as `no_mangle` needs; same contract as libm's
    #[unsafe(no_mangle)]
    extern "C" fn pow(base: f64, exponent: f64) -> f64 {
        libm::pow(base, exponent)
    }

    #[allow(unsafe_code)] // as above
    #[unsafe(no_mangle)]
    extern "C" fn log2(x: f64) -> f64 {
        libm::log2(x)
    }
}
