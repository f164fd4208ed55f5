//! Limits and refusals: each ends in exit 1, one clear error naming the plugin, and nothing
//! written over an earlier good render.

use std::fs;

use crate::support::{HOSTILE, Host, REDIS, read_dir};

/// Renders the hostile fixture with `behaviour` into a folder holding an earlier good render,
/// and checks the failure and that the folder is untouched.
#[track_caller]
fn refused(behaviour: &str, extra: &[&str], needle: &str) -> String {
    let host = Host::new();
    let out = host.path("out");
    let out_arg = out.to_str().expect("utf-8");
    host.run(&["render", "-p", REDIS, "-o", out_arg]).success();
    let before = read_dir(&out);
    let set = format!("hostile.behaviour={behaviour}");
    let mut args = vec![
        "render", "-p", REDIS, "-p", HOSTILE, "--set", &set, "-o", out_arg,
    ];
    args.extend_from_slice(extra);
    let run = host.run(&args).failure(needle);
    assert!(
        run.stderr.contains("mathison_fixture_hostile.wasm"),
        "names the plugin: {}",
        run.stderr
    );
    assert_eq!(read_dir(&out), before, "the earlier render is untouched");
    run.stderr
}

#[test]
fn the_fixture_renders_when_well_behaved() {
    Host::new().run(&["render", "-p", HOSTILE]).success();
}

#[test]
fn an_endless_loop_hits_the_time_limit() {
    refused(
        "loop",
        &["--timeout", "1s"],
        "render did not finish within the time limit of 1s",
    );
}

#[test]
fn unbounded_allocation_hits_the_memory_cap() {
    refused(
        "allocate",
        &["--max-memory", "64Mi"],
        "render exceeded the memory limit of 64 MiB",
    );
}

#[test]
fn stack_overflow_and_panics_are_traps_with_the_plugins_words() {
    refused("recurse", &[], "render trapped");
    let stderr = refused("panic", &[], "render trapped");
    assert!(
        stderr.contains("the hostile fixture panics on request"),
        "{stderr}"
    );
}

#[test]
fn plugin_errors_are_reported() {
    refused("invalid-config", &[], "behaviour: not today");
}

#[test]
fn policy_refusals() {
    refused("undeclared-kind", &[], "did not declare v1/ServiceAccount");
    refused("other-namespace", &[], "\"kube-system\"");
    refused("cluster-role-binding", &[], "--allow-rbac");
    refused(
        "bad-quantity",
        &[],
        "spec.resources.requests.storage: \"10 GB\" is not a quantity",
    );
}

#[test]
fn files_that_are_not_our_components_are_refused_clearly() {
    let host = Host::new();
    let core = host.path("core.wasm");
    fs::write(&core, b"\0asm\x01\0\0\0").expect("write");
    host.run(&["render", "-p", core.to_str().expect("utf-8")])
        .failure("is a core WebAssembly module");
    let empty = host.path("empty.wasm");
    fs::write(&empty, b"").expect("write");
    host.run(&["render", "-p", empty.to_str().expect("utf-8")])
        .failure("the file is empty");
    let truncated = host.path("truncated.wasm");
    let bytes = fs::read(REDIS).expect("read");
    fs::write(&truncated, &bytes[..bytes.len() / 2]).expect("write");
    host.run(&["render", "-p", truncated.to_str().expect("utf-8")])
        .failure("truncated.wasm is not a valid component");
    host.run(&["render", "-p", REDIS, "--max-plugin-size", "1Ki"])
        .failure("--max-plugin-size");
}
