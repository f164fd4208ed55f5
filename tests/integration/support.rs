//! What every integration test needs: running the real binary in a clean environment, and
//! golden files.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub use mathison_test_artifacts::{
    EVIL_IMPORT, HOSTILE, HTTP_IMPORT, INFO_LOOP, POSTGRES, REDIS, WIT_NEXT,
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
        let mut command = Command::new(env!("CARGO_BIN_EXE_mathison-host"));
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

    /// A file in the test's working folder.
    pub fn path(&self, name: &str) -> PathBuf {
        self.work.path().join(name)
    }
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
