//! The command line: exit codes, plugin lookup, inspect, broken pipes.

use std::fs;
use std::io::Read;
use std::process::Stdio;

use crate::support::{Host, POSTGRES, REDIS};

#[test]
fn usage_errors_exit_2_and_input_errors_exit_1() {
    let host = Host::new();
    // With no --plugin and no project file there is nothing to render: an input error that
    // says where plugins come from.
    host.run(&["render"])
        .failure("no plugins to render: pass --plugin");
    assert_eq!(host.run(&["render", "-p", REDIS, "--bogus"]).code, Some(2));
    assert_eq!(
        host.run(&["render", "-p", REDIS, "--timeout", "soon"]).code,
        Some(2)
    );
    host.run(&["render", "-p", "minio"])
        .failure("plugin \"minio\" not found");
    host.run(&["render", "-p", "./missing.wasm"])
        .failure("does not exist");
    host.run(&["render", "-p", REDIS, "--set", "redis"])
        .failure("--set redis: no '='");
    host.run(&["render", "-p", REDIS, "-n", "Not_A_Namespace"])
        .failure("not a valid namespace");
}

#[test]
fn bare_names_resolve_through_the_plugin_path() {
    let host = Host::new();
    let dir = host.path("plugins");
    fs::create_dir(&dir).expect("mkdir");
    fs::copy(REDIS, dir.join("redis.wasm")).expect("copy plugin");
    let by_path = host.run(&["render", "-p", REDIS]).success();
    let by_flag = host
        .run(&["render", "-p", "redis", "--plugin-path", "plugins"])
        .success();
    assert_eq!(by_path.stdout, by_flag.stdout);
    let by_env = host
        .command()
        .env("MATHISON_PLUGIN_PATH", "/nonexistent:plugins")
        .args(["render", "-p", "redis"])
        .output()
        .expect("run");
    assert_eq!(String::from_utf8_lossy(&by_env.stdout), by_path.stdout);
}

#[test]
fn inspect_shows_metadata_options_and_hash() {
    let host = Host::new();
    let text = host.run(&["inspect", POSTGRES]).success().stdout;
    for needle in [
        "name:        postgres",
        "wit:         mathison:plugin@0.1.0",
        "apps/v1/StatefulSet",
        "persistence.size  (quantity, default \"10Gi\")",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
    }
    let json: serde_json::Value = serde_json::from_str(
        &host
            .run(&["inspect", POSTGRES, "--format", "json"])
            .success()
            .stdout,
    )
    .expect("JSON");
    let bytes = fs::read(POSTGRES).expect("read plugin");
    use sha2::Digest;
    let sha: String = sha2::Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(json["sha256"], sha);
    assert_eq!(json["size"], bytes.len());
    assert_eq!(json["defaults"]["persistence"]["size"], "10Gi");
    assert_eq!(json["schema"]["additionalProperties"], false);
}

/// `--version` alone is answered before clap builds a command; with other words, clap answers
/// it. Both print the same line.
#[test]
fn the_version_is_one_line_however_it_is_asked() {
    let host = Host::new();
    let expected = format!("mathison-host {}\n", env!("CARGO_PKG_VERSION"));
    for args in [
        &["--version"][..],
        &["-V"],
        &["-v", "--version"],
        &["--version", "render"],
    ] {
        let run = host.run(args).success();
        assert_eq!(run.stdout, expected, "{args:?}");
        assert_eq!(run.stderr, "", "{args:?}");
    }
}

#[test]
fn a_closed_stdout_is_not_an_error() {
    let host = Host::new();
    let mut child = host
        .command()
        .args(["render", "-p", POSTGRES, "-p", REDIS, "--format", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    // Close the reading end before the host writes: its write fails with EPIPE.
    drop(child.stdout.take());
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("read stderr");
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
    assert!(!stderr.contains("error"), "{stderr}");
}

/// The process starts without loading a shared library beyond those Rust's standard library
/// needs: each one costs the dynamic loader an open, mappings and relocations at every start.
/// (The binary defines the two maths functions its dependencies call: host/src/main.rs.)
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[test]
fn the_binary_needs_no_shared_library_beyond_std() {
    let output = std::process::Command::new("readelf")
        .args(["--dynamic", "--wide", env!("CARGO_BIN_EXE_mathison-host")])
        .output()
        .expect("readelf (binutils, which links Rust programs) runs");
    assert!(output.status.success(), "{output:?}");
    let dynamic = String::from_utf8_lossy(&output.stdout);
    let needed: Vec<&str> = dynamic
        .lines()
        .filter(|line| line.contains("(NEEDED)"))
        .filter_map(|line| {
            line.split_once('[')?
                .1
                .split_once(']')
                .map(|(name, _)| name)
        })
        .collect();
    assert!(needed.contains(&"libc.so.6"), "{dynamic}");
    let std_needs =
        |name: &str| ["libc.so.6", "libgcc_s.so.1"].contains(&name) || name.starts_with("ld-linux");
    let beyond: Vec<&&str> = needed.iter().filter(|name| !std_needs(name)).collect();
    assert!(
        beyond.is_empty(),
        "shared libraries beyond std's: {beyond:?}"
    );
}
