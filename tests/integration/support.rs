//! What every integration test needs: running the real binary in a clean environment, and
//! golden files.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

pub use mathison_test_artifacts::{
    EVIL_IMPORT, HOSTILE, HTTP_IMPORT, INFO_LOOP, POSTGRES, POSTGRES_BACKUP, REDIS, WIT_NEXT,
};

/// The host binary with a clean environment: its own cache folder and no user settings, so a
/// test sees neither the developer's cache nor their `MATHISON_*` variables.
pub struct Host {
    pub cache: tempfile::TempDir,
    pub work: tempfile::TempDir,
}

impl Host {
    pub fn new() -> Self {
        Self {
            cache: tempfile::tempdir().expect("temp dir"),
            work: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn command(&self) -> Command {
        self.command_of(env!("CARGO_BIN_EXE_mathison-host"))
    }

    /// `program` in the environment [`command`](Self::command) gives the binary: for what runs
    /// the binary itself, such as a shell script.
    pub fn command_of(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new(program);
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("MATHISON_CACHE_DIR", self.cache.path())
            .current_dir(self.work.path());
        command
    }

    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(
            self.command()
                .args(args)
                .output()
                .expect("run mathison-host"),
        )
    }

    /// Runs the binary with `input` on its stdin.
    pub fn run_with_input(&self, args: &[&str], input: &str) -> Run {
        let mut child = self
            .command()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run mathison-host");
        let mut stdin = child.stdin.take().expect("the child's stdin");
        let input = input.to_owned();
        // Written from a thread: a child that fills its stdout before reading all of stdin
        // would otherwise never finish.
        let writer = thread::spawn(move || {
            let _ = std::io::Write::write_all(&mut stdin, input.as_bytes());
        });
        let output = child.wait_with_output().expect("wait for mathison-host");
        writer.join().expect("the stdin writer");
        Run::from(output)
    }

    /// Runs the binary as [`run`](Self::run) does, measuring its wall time and peak memory.
    // The child is reaped by `wait4`, which std's `Child::wait` cannot replace: it does not
    // report the child's resource use.
    #[allow(clippy::zombie_processes)]
    pub fn run_measured(&self, args: &[&str]) -> Measured {
        let started = Instant::now();
        let mut child = self
            .command()
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run mathison-host");
        let drain = |pipe: Option<Box<dyn Read + Send>>| {
            thread::spawn(move || {
                let mut bytes = Vec::new();
                if let Some(mut pipe) = pipe {
                    pipe.read_to_end(&mut bytes)
                        .expect("read the child's output");
                }
                String::from_utf8_lossy(&bytes).into_owned()
            })
        };
        let stdout = drain(
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        );
        let stderr = drain(
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        );
        let (code, max_rss_bytes) = wait_with_peak_memory(child.id());
        let elapsed = started.elapsed();
        Measured {
            run: Run {
                code,
                stdout: stdout.join().expect("stdout reader"),
                stderr: stderr.join().expect("stderr reader"),
            },
            elapsed,
            max_rss_bytes,
        }
    }

    /// Forgets the plugins' memoised answers, so that the next render runs them (and loads
    /// their compiled code) again.
    pub fn forget_answers(&self) {
        let memo = self.cache.path().join("memo");
        if memo.exists() {
            fs::remove_dir_all(memo).expect("remove the memo");
        }
    }

    /// A file in the test's working folder.
    pub fn path(&self, name: &str) -> PathBuf {
        self.work.path().join(name)
    }
}

/// A run with what it cost.
#[derive(Debug)]
pub struct Measured {
    pub run: Run,
    pub elapsed: Duration,
    pub max_rss_bytes: u64,
}

/// Waits for the child `pid` and returns its exit code and its own peak resident memory.
/// `wait4` reports the memory of that one child; `getrusage(RUSAGE_CHILDREN)` would mix in the
/// children of every test running in this process.
#[allow(unsafe_code)]
fn wait_with_peak_memory(pid: u32) -> (Option<i32>, u64) {
    let pid = libc::pid_t::try_from(pid).expect("a pid");
    let mut status: libc::c_int = 0;
    // SAFETY: both pointers are to live locals of the types wait4 expects; the child was
    // spawned by this process and is reaped exactly once, here.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(waited, pid, "wait4: {}", std::io::Error::last_os_error());
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    // Linux reports ru_maxrss in KiB.
    (
        code,
        u64::try_from(usage.ru_maxrss).unwrap_or_default() * 1024,
    )
}

/// The outcome of one run of the binary.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(output: Output) -> Self {
        Self {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

impl Run {
    #[track_caller]
    pub fn success(self) -> Self {
        assert_eq!(
            self.code,
            Some(0),
            "expected success; stderr:\n{}",
            self.stderr
        );
        self
    }

    /// Asserts a plugin or input error (exit 1) whose message contains `needle`.
    #[track_caller]
    pub fn failure(self, needle: &str) -> Self {
        assert_eq!(
            self.code,
            Some(1),
            "expected exit 1; stdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}:\n{}",
            self.stderr
        );
        self
    }
}

/// Every file of a folder, by name.
pub fn read_dir(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fs::read_dir(dir)
        .expect("read folder")
        .map(|entry| {
            let entry = entry.expect("folder entry");
            (
                entry.file_name().to_string_lossy().into_owned(),
                fs::read(entry.path()).expect("read file"),
            )
        })
        .collect()
}

/// The paths of everything under `dir`, sorted.
pub fn tree(dir: &Path) -> Vec<PathBuf> {
    let mut paths = Vec::new();
    for entry in fs::read_dir(dir).expect("read folder") {
        let path = entry.expect("folder entry").path();
        if path.is_dir() {
            paths.extend(tree(&path));
        }
        paths.push(path);
    }
    paths.sort();
    paths
}

/// Compares `actual` (a rendered folder) with `tests/golden/<name>/`. With `BLESS=1` the golden
/// folder is rewritten instead, to be reviewed as a diff.
#[track_caller]
pub fn assert_golden(name: &str, actual: &Path) {
    let golden = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/golden")
        .join(name);
    let actual_files = read_dir(actual);
    if std::env::var_os("BLESS").is_some() {
        let _ = fs::remove_dir_all(&golden);
        fs::create_dir_all(&golden).expect("create golden folder");
        for (file, contents) in &actual_files {
            fs::write(golden.join(file), contents).expect("write golden file");
        }
        return;
    }
    let expected = read_dir(&golden);
    assert_eq!(
        expected.keys().collect::<Vec<_>>(),
        actual_files.keys().collect::<Vec<_>>(),
        "rendered files differ from {}; rerun with BLESS=1 and review the diff",
        golden.display()
    );
    for (file, contents) in &expected {
        let actual_text = String::from_utf8_lossy(&actual_files[file]);
        let expected_text = String::from_utf8_lossy(contents);
        assert!(
            actual_text == expected_text,
            "{file} differs from its golden file in {}; rerun with BLESS=1 and review the diff.\n--- expected\n{expected_text}\n--- actual\n{actual_text}",
            golden.display()
        );
    }
}

/// The peak memory a refused render may reach beyond its plugins' memory limit: the host
/// process, wasmtime, the redis plugin beside it and what a call's answer costs to copy in.
const HOST_MEMORY_ALLOWANCE: u64 = 384 << 20;

/// Renders the hostile fixture with `behaviour` beside redis into a folder holding an earlier
/// good render, and checks the refusal as [`plugin_refused`] does.
#[track_caller]
pub fn refused(behaviour: &str, extra: &[&str], needle: &str) -> String {
    let set = format!("hostile.behaviour={behaviour}");
    let mut args = vec!["--set", set.as_str()];
    args.extend_from_slice(extra);
    plugin_refused(HOSTILE, &args, needle)
}

/// Checks that a failed run printed exactly one `error:` line, naming `subject` (a plugin file
/// or reference), and did not panic.
#[track_caller]
pub fn one_error_naming(run: &Run, subject: &str) {
    let errors: Vec<&str> = run
        .stderr
        .lines()
        .filter(|line| line.starts_with("error: "))
        .collect();
    assert!(
        matches!(errors.as_slice(), [error] if error.contains(subject)),
        "one error line, naming {subject}:\n{}",
        run.stderr
    );
    // The host's own panic starts a line; a plugin's is shown indented, as its stderr.
    assert!(
        !run.stderr.lines().any(|line| line.starts_with("thread '")),
        "no panic:\n{}",
        run.stderr
    );
}

/// Renders `plugin` beside redis into a folder holding an earlier good render, and checks what
/// the sandbox promises of a refusal: exit 1; one error line, naming the plugin file and
/// containing `needle`; an end within the time limit plus its grace; peak memory within the
/// memory limit plus the host's own; the earlier render untouched and nothing else written.
#[track_caller]
pub fn plugin_refused(plugin: &str, extra: &[&str], needle: &str) -> String {
    let host = Host::new();
    let out = host.path("out");
    let out_arg = out.to_str().expect("utf-8");
    host.run(&["render", "-p", REDIS, "-o", out_arg]).success();
    // Compiled into the cache first (an `info` that loops is cut short), so the measured run
    // is the refusal, not the compiler on a busy machine.
    host.run(&["inspect", plugin, "--timeout", "100ms"]);
    let before = read_dir(&out);
    let work_before = tree(host.work.path());
    let mut args = vec!["render", "-p", REDIS, "-p", plugin, "-o", out_arg];
    args.extend_from_slice(extra);
    let measured = host.run_measured(&args);
    let run = measured.run.failure(needle);
    let file = Path::new(plugin)
        .file_name()
        .and_then(|name| name.to_str())
        .expect("a file name");
    one_error_naming(&run, file);
    let flag = |name: &str| {
        extra
            .iter()
            .position(|arg| *arg == name)
            .and_then(|at| extra.get(at + 1))
            .copied()
    };
    let timeout = flag("--timeout").map_or(Duration::from_secs(10), |text| {
        let seconds: f64 = text
            .trim_end_matches('s')
            .parse()
            .expect("a --timeout in seconds");
        Duration::from_secs_f64(seconds)
    });
    // A call blocked in the host is abandoned a second past its limit (the runtime's grace);
    // one more second covers starting the process and compiling the plugins.
    assert!(
        measured.elapsed <= timeout + Duration::from_secs(2),
        "ended within the time limit plus the grace: {:?}",
        measured.elapsed
    );
    let memory_limit: u64 = match flag("--max-memory") {
        Some("64Mi") => 64 << 20,
        Some("1Gi") => 1 << 30,
        None => 256 << 20,
        Some(other) => panic!("add {other} to the test's table of sizes"),
    };
    assert!(
        measured.max_rss_bytes <= memory_limit + HOST_MEMORY_ALLOWANCE,
        "peak memory {} MiB is within the memory limit plus the host's own",
        measured.max_rss_bytes >> 20
    );
    assert_eq!(read_dir(&out), before, "the earlier render is untouched");
    assert_eq!(
        tree(host.work.path()),
        work_before,
        "nothing is written beside it"
    );
    eprintln!(
        "refused in {:?}, peak memory {} MiB: {}",
        measured.elapsed,
        measured.max_rss_bytes >> 20,
        run.stderr.trim_end()
    );
    run.stderr
}

/// The objects of a `--format json` render (a `v1` List) on stdout.
pub fn items(run: &Run) -> Vec<serde_json::Value> {
    let list: serde_json::Value = serde_json::from_str(&run.stdout).expect("a JSON List");
    list["items"].as_array().cloned().unwrap_or_default()
}

/// The `data` of the ConfigMap `name` that the hostile fixture renders with `behaviour`.
pub fn hostile_config_map(host: &Host, behaviour: &str, name: &str) -> serde_json::Value {
    let set = format!("hostile.behaviour={behaviour}");
    let run = host
        .run(&["render", "-p", HOSTILE, "--set", &set, "--format", "json"])
        .success();
    items(&run)
        .into_iter()
        .find(|o| o["metadata"]["name"] == name)
        .map(|o| o["data"].clone())
        .unwrap_or_else(|| panic!("the ConfigMap {name}: {}", run.stdout))
}
