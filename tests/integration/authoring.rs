//! A plugin author's path, end to end: `mathison-host new` → `cargo build-plugin` → `cargo test`
//! → `mathison-host render` of the new component, with the same host binary throughout; and the
//! MinIO fixture, a plugin written with the SDK's helpers, through the host.
//!
//! Slow: the scaffolded crate is built for wasm32-wasip2 and natively. Its `target` folder is a
//! link to the workspace's `target/authoring`, so later runs are incremental.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use mathison_test_artifacts::MINIO;

use crate::support::{Host, Run};

const NAME: &str = "object-store";

/// `cargo ARGS` in `project`, isolated from the outer build: its own target folder, none of the
/// flags meant for the workspace's native build.
fn cargo(project: &Path, args: &[&str]) -> Run {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command.current_dir(project).args(args);
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET_DIR",
    ] {
        command.env_remove(var);
    }
    Run::from(command.output().expect("run cargo"))
}

/// Every file under `folder`, for checking what `new` wrote.
fn files_under(folder: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in fs::read_dir(folder).expect("read the project") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[test]
fn scaffold_build_test_and_render_without_rebuilding_the_host() {
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
        "vendor/mathison-host/plugins/sdk/Cargo.toml",
        "vendor/mathison-host/wit/world.wit",
    ] {
        assert!(project.join(file).is_file(), "{file} was not created");
    }
    // The project builds on a machine without this checkout: nothing points back into it.
    let checkout = workspace.canonicalize().expect("the workspace path");
    let checkout = checkout.to_str().expect("UTF-8 workspace path");
    for file in files_under(&project) {
        let text = fs::read_to_string(&file).expect("a text file");
        assert!(
            !text.contains(checkout),
            "{} names the checkout {checkout}",
            file.display()
        );
    }

    // The versions the workspace builds and tests the SDK with; cargo drops the entries the
    // plugin does not use. It also spares the build a fresh resolution against the registry.
    fs::copy(workspace.join("Cargo.lock"), project.join("Cargo.lock")).expect("copy Cargo.lock");
    let target_dir = workspace.join("target").join("authoring");
    fs::create_dir_all(&target_dir).expect("create target/authoring");
    std::os::unix::fs::symlink(&target_dir, project.join("target")).expect("link target");
    cargo(&project, &["build-plugin", "--quiet"]).success();
    cargo(&project, &["test", "--quiet"]).success();

    // As the guide says, from inside the project: the host finds the plugin by name in
    // ./target/wasm32-wasip2/plugin.
    let rendered = Run::from(
        host.command()
            .current_dir(&project)
            .args([
                "-v",
                "render",
                "-p",
                NAME,
                "--set",
                "object-store.port=9000",
            ])
            .output()
            .expect("run mathison-host"),
    )
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
}

/// The SDK's helpers (Services with two ports, HTTP and TCP probes, a two-key Secret volume, the
/// clients-only NetworkPolicy, checkov skips true for the image) give what the host accepts.
#[test]
fn minio_written_with_the_sdk_helpers_renders() {
    let rendered = Host::new().run(&["render", "-p", MINIO]).success();
    for expected in [
        "name: minio-headless\n",
        "targetPort: console\n",
        "path: /minio/health/ready\n",
        "tcpSocket:\n",
        "key: minio-root-password\n",
        "checkov.io/skip2: CKV_K8S_15=",
        "MINIO_ENDPOINT: http://minio.mathison-system.svc.cluster.local:9000",
    ] {
        assert!(
            rendered.stdout.contains(expected),
            "render lacks {expected:?}:\n{}",
            rendered.stdout
        );
    }
    assert!(
        !rendered.stdout.contains("CKV_K8S_40"),
        "{}",
        rendered.stdout
    );
}
