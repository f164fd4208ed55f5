//! A plugin author's path, end to end: `mathison-host new` → `cargo build-plugin` → `cargo test`
//! → `mathison-host render` of the new component, with the same host binary throughout.
//!
//! Slow: the scaffolded crate is built for wasm32-wasip2 and natively. Its target folder lives
//! under the workspace's `target/authoring`, so later runs are incremental.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::support::{Host, Run};

const NAME: &str = "object-store";

fn sha256(path: &str) -> Vec<u8> {
    Sha256::digest(fs::read(path).expect("read the host binary")).to_vec()
}

/// `cargo ARGS` in `project`, isolated from the outer build: its own target folder, none of the
/// flags meant for the workspace's native build.
fn cargo(project: &Path, target_dir: &Path, args: &[&str]) -> Run {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command
        .current_dir(project)
        .args(args)
        .env("CARGO_TARGET_DIR", target_dir);
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
    ] {
        command.env_remove(var);
    }
    Run::from(command.output().expect("run cargo"))
}

#[test]
fn scaffold_build_test_and_render_without_rebuilding_the_host() {
    let host_binary = env!("CARGO_BIN_EXE_mathison-host");
    let before = sha256(host_binary);
    let host = Host::new();
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let project = host.path(NAME);
    let project_arg = project.to_str().expect("UTF-8 temp path");

    host.run(&["new", "Object_Store"])
        .failure("is not a valid plugin name");
    host.run(&["new", NAME, "--path", project_arg]).success();
    host.run(&["new", NAME, "--path", project_arg])
        .failure("already exists");
    for file in [
        "Cargo.toml",
        "README.md",
        "src/lib.rs",
        "src/tests.rs",
        ".cargo/config.toml",
    ] {
        assert!(project.join(file).is_file(), "{file} was not created");
    }

    // The versions the workspace builds and tests the SDK with; cargo drops the entries the
    // plugin does not use. It also spares the build a fresh resolution against the registry.
    fs::copy(workspace.join("Cargo.lock"), project.join("Cargo.lock")).expect("copy Cargo.lock");
    let target_dir: PathBuf = workspace.join("target").join("authoring");
    cargo(&project, &target_dir, &["build-plugin", "--quiet"]).success();
    cargo(&project, &target_dir, &["test", "--quiet"]).success();

    let wasm = target_dir.join("wasm32-wasip2/plugin/mathison_plugin_object_store.wasm");
    let wasm = wasm.to_str().expect("UTF-8 target path");
    let rendered = host
        .run(&[
            "-v",
            "render",
            "-p",
            wasm,
            "--set",
            "object-store.port=9000",
        ])
        .success();
    for expected in [
        "kind: Service\n",
        "name: object-store\n",
        "name: object-store-config\n",
        "OBJECT_STORE_URL: http://object-store.mathison-system.svc.cluster.local:9000",
    ] {
        assert!(
            rendered.stdout.contains(expected),
            "render lacks {expected:?}:\n{}",
            rendered.stdout
        );
    }
    assert!(
        rendered.stderr.contains("debug: object-store: 1 settings"),
        "the plugin's log line is missing from -v:\n{}",
        rendered.stderr
    );
    assert_eq!(
        sha256(host_binary),
        before,
        "the host binary changed while a plugin was added"
    );
}
