//! `make install`'s script, dist/install.sh, run on the built binary and plugins: the installed
//! binary renders the installed plugins by bare name from any folder with their precompiled
//! code, and the completion scripts and man pages it installs work.

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use crate::support::{Host, POSTGRES, REDIS, Run, tree};

const INSTALL_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../dist/install.sh");

/// The system's PATH, for the tools the script and bash use.
fn system_path() -> std::ffi::OsString {
    std::env::var_os("PATH").unwrap_or_default()
}

/// A prefix the script installed into, and a user of the installed binary with an empty home
/// and cache, in a folder that has nothing to do with the installation.
struct Installed {
    prefix: tempfile::TempDir,
    home: tempfile::TempDir,
    cache: tempfile::TempDir,
    work: tempfile::TempDir,
}

impl Installed {
    fn new() -> Self {
        let temp = || tempfile::tempdir().expect("temp dir");
        let installed = Self {
            prefix: temp(),
            home: temp(),
            cache: temp(),
            work: temp(),
        };
        let output = Command::new(INSTALL_SCRIPT)
            .arg(installed.prefix.path())
            .arg(env!("CARGO_BIN_EXE_mathison-host"))
            .args([POSTGRES, REDIS])
            .env_clear()
            .env("PATH", system_path())
            .current_dir(installed.work.path())
            .output()
            .expect("run dist/install.sh");
        let run = Run::from(output).success();
        assert!(run.stdout.starts_with("installed "), "{}", run.stdout);
        installed
    }

    /// A path under the prefix.
    fn path(&self, relative: &str) -> PathBuf {
        self.prefix.path().join(relative)
    }

    /// The installed plugins' folder, as the binary sees it (the temp folder may be a symlink).
    fn plugins(&self) -> PathBuf {
        self.path("share/mathison-host/plugins")
            .canonicalize()
            .expect("the plugins were installed")
    }

    fn command(&self) -> Command {
        let mut command = Command::new(self.path("bin/mathison-host"));
        command
            .env_clear()
            .env("PATH", system_path())
            .env("HOME", self.home.path())
            .env("MATHISON_CACHE_DIR", self.cache.path())
            .current_dir(self.work.path());
        command
    }

    fn run(&self, args: &[&str]) -> Run {
        Run::from(
            self.command()
                .args(args)
                .output()
                .expect("run the installed mathison-host"),
        )
    }
}

#[test]
fn the_installed_binary_renders_the_installed_plugins_by_name_precompiled() {
    let installed = Installed::new();
    for file in [
        "bin/mathison-host",
        "share/mathison-host/plugins/postgres.wasm",
        "share/mathison-host/plugins/postgres.cwasm",
        "share/mathison-host/plugins/redis.wasm",
        "share/mathison-host/plugins/redis.cwasm",
        "share/man/man1/mathison-host.1",
        "share/man/man1/mathison-host-render.1",
        "share/bash-completion/completions/mathison-host",
        "share/zsh/site-functions/_mathison-host",
        "share/fish/vendor_completions.d/mathison-host.fish",
    ] {
        assert!(installed.path(file).is_file(), "{file} is installed");
    }

    let run = installed
        .run(&["-v", "render", "--plugin", "postgres", "--plugin", "redis"])
        .success();
    let reference = Host::new()
        .run(&["render", "-p", POSTGRES, "-p", REDIS])
        .success();
    assert_eq!(run.stdout, reference.stdout, "the same render");
    for name in ["postgres", "redis"] {
        let line = format!(
            "({}; compiled code: Precompiled;",
            installed.plugins().join(format!("{name}.wasm")).display()
        );
        assert!(run.stderr.contains(&line), "{line}\n{}", run.stderr);
    }
    assert!(
        !tree(installed.cache.path())
            .iter()
            .any(|path| path.extension().is_some_and(|ext| ext == "cwasm")),
        "nothing was compiled"
    );
}

#[test]
fn plugins_in_the_data_folder_are_found_but_their_precompiled_code_needs_the_flag() {
    let installed = Installed::new();
    let data = installed
        .home
        .path()
        .join(".local/share/mathison-host/plugins");
    fs::create_dir_all(&data).expect("mkdir");
    for file in ["redis.wasm", "redis.cwasm", "redis.cwasm.json"] {
        fs::copy(installed.plugins().join(file), data.join(file)).expect("copy");
    }
    // Found before the installed one, and native code from there is not trusted by default.
    let run = installed
        .run(&["-v", "render", "--no-cache", "-p", "redis"])
        .success();
    let line = format!(
        "({}; compiled code: Disabled;",
        data.join("redis.wasm").display()
    );
    assert!(run.stderr.contains(&line), "{line}\n{}", run.stderr);
    let allowed = installed
        .run(&["-v", "render", "--allow-precompiled", "-p", "redis"])
        .success();
    assert!(
        allowed.stderr.contains("compiled code: Precompiled"),
        "{}",
        allowed.stderr
    );
    assert_eq!(run.stdout, allowed.stdout);
}

/// The candidates bash's completion function for mathison-host puts in COMPREPLY for the
/// command line `words` (the last being completed), once `setup` has loaded the script.
fn bash_complete(command: &mut Command, setup: &str, words: &[&str]) -> Vec<String> {
    let script = format!(
        "{setup}\n\
         COMP_WORDS=(\"$@\"); COMP_CWORD=$(($# - 1))\n\
         _clap_complete_mathison_host mathison-host \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"\n\
         printf '%s\\n' \"${{COMPREPLY[@]}}\""
    );
    let run = Run::from(
        command
            .arg("-c")
            .arg(script)
            .arg("bash")
            .args(words)
            .output()
            .expect("run bash"),
    )
    .success();
    run.stdout
        .lines()
        .filter(|line| !line.is_empty())
        .map(str::to_string)
        .collect()
}

/// `shell`, as the installed user's, with the system's PATH.
fn shell(installed: &Installed, shell: &str) -> Command {
    let mut command = Command::new(shell);
    command
        .env_clear()
        .env("PATH", system_path())
        .env("HOME", installed.home.path())
        .env("MATHISON_CACHE_DIR", installed.cache.path())
        .current_dir(installed.work.path());
    command
}

/// PATH with the installed binary first, as the installed scripts need it.
fn installed_path(installed: &Installed) -> std::ffi::OsString {
    let mut path = installed.path("bin").into_os_string();
    path.push(":");
    path.push(system_path());
    path
}

/// Whether `program` is installed on this machine (the tests install nothing).
fn available(program: &str) -> bool {
    Command::new(program).arg("--version").output().is_ok()
}

#[test]
fn bash_completes_plugin_names_from_the_search_path() {
    let installed = Installed::new();
    let bin = installed.path("bin/mathison-host");
    let bin = bin.to_str().expect("utf-8");

    // The script `completions bash` prints, sourced as README.md says.
    let sourced = format!("source <('{bin}' completions bash)");
    let complete = |words: &[&str]| bash_complete(&mut shell(&installed, "bash"), &sourced, words);
    assert_eq!(
        complete(&["mathison-host", "render", "--plugin", "po"]),
        ["postgres"]
    );
    assert_eq!(
        complete(&["mathison-host", "validate", "-p", ""]),
        ["postgres", "redis"]
    );
    assert_eq!(
        complete(&["mathison-host", "comp"]),
        ["compile", "completions"]
    );

    // The installed file, which calls mathison-host back through PATH.
    let file = installed.path("share/bash-completion/completions/mathison-host");
    let mut installed_bash = shell(&installed, "bash");
    installed_bash.env("PATH", installed_path(&installed));
    assert_eq!(
        bash_complete(
            &mut installed_bash,
            &format!("source '{}'", file.display()),
            &["mathison-host", "render", "-p", "re"]
        ),
        ["redis"]
    );

    // The build's binary, with a plugin folder on $MATHISON_PLUGIN_PATH.
    let dir = installed.work.path().join("plugins");
    fs::create_dir(&dir).expect("mkdir");
    fs::copy(POSTGRES, dir.join("mathison_plugin_postgres.wasm")).expect("copy");
    let mut build_bash = shell(&installed, "bash");
    build_bash.env("MATHISON_PLUGIN_PATH", &dir);
    assert_eq!(
        bash_complete(
            &mut build_bash,
            &format!(
                "source <('{}' completions bash)",
                env!("CARGO_BIN_EXE_mathison-host")
            ),
            &["mathison-host", "render", "--plugin", "po"]
        ),
        ["postgres"]
    );
}

#[test]
fn zsh_and_fish_scripts_register_the_dynamic_completer() {
    let installed = Installed::new();
    let zsh = fs::read_to_string(installed.path("share/zsh/site-functions/_mathison-host"))
        .expect("zsh script");
    assert!(zsh.starts_with("#compdef mathison-host\n"), "{zsh}");
    assert!(
        zsh.contains("compdef _clap_dynamic_completer_mathison_host mathison-host"),
        "{zsh}"
    );
    // Autoloaded from site-functions, the file completes on the first <TAB> too.
    assert!(
        zsh.trim_end().ends_with(
            "[[ ${funcstack[1]} = _mathison-host ]] && _clap_dynamic_completer_mathison_host \"$@\""
        ),
        "{zsh}"
    );
    let fish =
        fs::read_to_string(installed.path("share/fish/vendor_completions.d/mathison-host.fish"))
            .expect("fish script");
    assert!(
        fish.contains("complete --keep-order --exclusive --command mathison-host")
            && fish.contains("COMPLETE=fish mathison-host --"),
        "{fish}"
    );

    // Where the shells are installed, the scripts are run as they would be found.
    if available("zsh") {
        let script = format!(
            "fpath=('{}' $fpath); autoload -Uz compinit && compinit -u -D\n\
             _describe() {{ shift 2; print -l \"${{(P)1}}\" }}\n\
             words=(mathison-host render --plugin po); CURRENT=4\n\
             _mathison-host",
            installed.path("share/zsh/site-functions").display()
        );
        let mut zsh = shell(&installed, "zsh");
        zsh.env("PATH", installed_path(&installed))
            .args(["-df", "-c", &script]);
        let run = Run::from(zsh.output().expect("run zsh")).success();
        assert_eq!(run.stdout, "postgres\n", "{}", run.stderr);
    }
    if available("fish") {
        let script = format!(
            "source '{}'; complete -C 'mathison-host render -p '",
            installed
                .path("share/fish/vendor_completions.d/mathison-host.fish")
                .display()
        );
        let mut fish = shell(&installed, "fish");
        fish.env("PATH", installed_path(&installed))
            .args(["-c", &script]);
        let run = Run::from(fish.output().expect("run fish")).success();
        assert_eq!(run.stdout, "postgres\nredis\n", "{}", run.stderr);
    }
}

#[test]
fn the_man_pages_are_roff_naming_every_command() {
    let installed = Installed::new();
    let man1 = installed.path("share/man/man1");
    let page = fs::read_to_string(man1.join("mathison-host.1")).expect("the man page");
    assert!(page.contains("\n.TH mathison-host 1 "), "{page}");
    assert!(page.contains("\n.SH SUBCOMMANDS\n"), "{page}");
    let commands = [
        "render",
        "validate",
        "inspect",
        "compile",
        "apply",
        "diff",
        "completions",
        "man",
    ];
    for command in commands {
        assert!(
            page.contains(&format!("\nmathison\\-host\\-{command}(1)\n")),
            "{command} in\n{page}"
        );
        assert!(man1.join(format!("mathison-host-{command}.1")).is_file());
    }
    // Every page the main one refers to is installed.
    for line in page.lines().filter(|line| line.ends_with("(1)")) {
        let name = line.trim_end_matches("(1)").replace("\\-", "-");
        assert!(man1.join(format!("{name}.1")).is_file(), "{name}.1");
    }
    assert_eq!(
        installed.run(&["man"]).success().stdout,
        page,
        "`man` prints the installed page"
    );
    if available("man") {
        let shown = Run::from(
            Command::new("man")
                .arg("-l")
                .arg(man1.join("mathison-host-render.1"))
                .env("MANWIDTH", "100")
                .output()
                .expect("run man"),
        )
        .success();
        assert!(shown.stdout.contains("--plugin"), "{}", shown.stdout);
        assert!(shown.stderr.is_empty(), "no warnings: {}", shown.stderr);
    }
}
