//! `mathison-host completions`: the shell script that completes the command line.

use std::env;
use std::path::PathBuf;

use clap::{Args, CommandFactory, ValueEnum};
use clap_complete::env::{Bash, EnvCompleter, Fish, Zsh};

use super::Cli;

/// The environment variable with which the script asks the binary for completions
/// (`main` answers it through clap_complete's `CompleteEnv`).
pub const COMPLETE_ENV: &str = "COMPLETE";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

/// Print the shell script that completes commands, flags and plugin names.
///
/// The script calls mathison-host back on each <TAB>, so `--plugin <TAB>` offers the plugins
/// on the search path at that moment (--plugin-path on the same line is not seen). Load it again
/// after an upgrade: script and binary must come from the same version, which `make install`
/// ensures for the scripts it installs.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    source <(mathison-host completions bash)    # in ~/.bashrc\n  \
    source <(mathison-host completions zsh)     # in ~/.zshrc, after compinit\n  \
    mathison-host completions fish | source     # in ~/.config/fish/config.fish")]
pub struct CompletionsCommand {
    #[arg(value_enum)]
    pub shell: Shell,
}

impl CompletionsCommand {
    pub fn run(self, _verbose: bool) -> anyhow::Result<()> {
        let name = Cli::command().get_name().to_string();
        let completer: &dyn EnvCompleter = match self.shell {
            Shell::Bash => &Bash,
            Shell::Zsh => &Zsh,
            Shell::Fish => &Fish,
        };
        let mut script = Vec::new();
        completer.write_registration(COMPLETE_ENV, &name, &name, &program(), &mut script)?;
        let mut script = String::from_utf8(script)?;
        if self.shell == Shell::Zsh {
            // Installed in site-functions, the file is autoloaded as `_mathison-host` on the
            // first <TAB>, which would then only define the completer; this runs it too. When
            // the script is sourced instead, it does nothing.
            let function = format!("_clap_dynamic_completer_{}", name.replace('-', "_"));
            script.push_str(&format!(
                "\n[[ ${{funcstack[1]}} = _{name} ]] && {function} \"$@\"\n"
            ));
        }
        super::write_stdout(&script)?;
        Ok(())
    }
}

/// The program the script calls back: as this one was invoked, made absolute when it was
/// invoked by a relative path (as `CompleteEnv` names it in the scripts it prints itself).
fn program() -> String {
    let invoked = PathBuf::from(
        env::args_os()
            .next()
            .unwrap_or_else(|| "mathison-host".into()),
    );
    let program = match env::current_dir() {
        Ok(dir) if invoked.components().count() > 1 => dir.join(invoked),
        _ => invoked,
    };
    program.to_string_lossy().into_owned()
}
