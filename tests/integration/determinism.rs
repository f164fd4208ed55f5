//! Same inputs, same bytes: across many runs and whatever the environment around the host.

use std::collections::BTreeSet;
use std::thread;

use sha2::{Digest, Sha256};

use crate::support::{Host, POSTGRES, REDIS};

const RENDER: &[&str] = &["render", "-p", POSTGRES, "-p", REDIS];

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn a_hundred_renders_have_one_sha256() {
    let host = Host::new();
    // Warm the cache first, so that every run below takes the same path.
    host.run(RENDER).success();
    // Two threads, one per core: plugin threads of concurrent runs interleave differently.
    let digests: BTreeSet<String> = thread::scope(|scope| {
        let workers: Vec<_> = (0..2)
            .map(|_| {
                scope.spawn(|| {
                    (0..50)
                        .map(|_| sha256(host.run(RENDER).success().stdout.as_bytes()))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|worker| worker.join().expect("worker"))
            .collect()
    });
    assert_eq!(digests.len(), 1, "different outputs: {digests:?}");
}

#[test]
fn the_environment_and_working_folder_do_not_change_the_output() {
    let host = Host::new();
    let reference = host.run(RENDER).success().stdout;
    let elsewhere = tempfile::tempdir().expect("temp dir");
    let output = host
        .command()
        .args(RENDER)
        .current_dir(elsewhere.path())
        .env("TZ", "Pacific/Kiritimati")
        .env("LANG", "tr_TR.UTF-8")
        .env("LC_ALL", "de_DE.UTF-8")
        .env("HOME", elsewhere.path())
        .env("SOURCE_DATE_EPOCH", "1")
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .env("RUST_BACKTRACE", "full")
        .env("MATHISON_NO_CACHE", "1")
        .env("UNRELATED", "x".repeat(10_000))
        .output()
        .expect("run mathison-host");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        sha256(&output.stdout),
        sha256(reference.as_bytes()),
        "the output changed with the environment"
    );
}
