//! Limits and refusals: each ends in exit 1, one clear error naming the plugin, and nothing
//! written over an earlier good render.

use std::fs;

use crate::support::{
    EVIL_IMPORT, HOSTILE, HTTP_IMPORT, Host, INFO_LOOP, REDIS, WIT_NEXT, hostile_config_map,
    plugin_refused, refused,
};

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
fn an_endless_loop_in_info_hits_the_time_limit() {
    plugin_refused(
        INFO_LOOP,
        &["--timeout", "1s"],
        "info did not finish within the time limit of 1s (--timeout)",
    );
}

#[test]
fn a_plugin_blocked_in_a_host_call_is_abandoned_at_the_time_limit() {
    // std::thread::sleep(1h) blocks inside WASI's poll, where epoch interruption cannot reach.
    refused(
        "sleep",
        &["--timeout", "1s"],
        "render did not finish within the time limit of 1s (--timeout)",
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
    assert!(
        !stderr.contains("RUST_BACKTRACE"),
        "no advice a plugin's user cannot follow: {stderr}"
    );
    assert!(
        stderr.contains("\n  plugin log: warn: about to panic, as asked"),
        "what the plugin logged comes with its failure: {stderr}"
    );
}

#[test]
fn a_plugins_last_log_lines_come_with_its_error() {
    let stderr = refused(
        "internal-error",
        &[],
        "render failed: internal plugin error: cannot continue\n  plugin log: (11 earlier lines \
         not shown)\n  plugin log: info: step 11",
    );
    assert!(
        stderr.contains(
            "\n  plugin log: error: the upstream \\u{1b}[31mcatalogue\\nerror: is unreachable"
        ),
        "{stderr}"
    );
}

#[test]
fn an_unreachable_instruction_is_a_trap() {
    refused(
        "unreachable",
        &[],
        "render trapped: wasm trap: wasm `unreachable` instruction executed",
    );
}

#[test]
fn a_flood_of_objects_hits_the_memory_cap() {
    // A million objects outgrow the plugin's 256 MiB before it can return them. Building them
    // takes seconds; on a loaded machine more than the default 10 s, so the time limit is
    // raised to let the memory limit be the one that trips.
    refused(
        "flood",
        &["--timeout", "120s"],
        "render exceeded the memory limit of 256 MiB (--max-memory)",
    );
}

#[test]
fn one_huge_string_hits_the_output_cap() {
    refused(
        "huge-string",
        &[],
        "bytes, more than the 16777216-byte limit (--max-output;",
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
        "spec.resources.requests.storage: \"10 GB\" is not a Kubernetes quantity; try \"10Gi\"",
    );
    refused("namespace", &[], "pass --allow-cluster-scoped to accept it");
    refused(
        "user-secret",
        &[],
        "Secret/mathison-secrets: Secret/mathison-secrets belongs to the user (--user-owned)",
    );
}

#[test]
fn opt_ins_accept_what_policy_refuses_by_default() {
    let host = Host::new();
    let run = host
        .run(&[
            "render",
            "-p",
            HOSTILE,
            "--set",
            "hostile.behaviour=namespace",
            "--allow-cluster-scoped",
        ])
        .success();
    assert!(run.stdout.contains("kind: Namespace"), "{}", run.stdout);
    host.run(&[
        "render",
        "-p",
        HOSTILE,
        "--set",
        "hostile.behaviour=user-secret",
        "--user-owned",
        "Secret/something-else",
    ])
    .success();
}

#[test]
fn malformed_bodies_are_refused_with_the_object_named() {
    refused(
        "invalid-json",
        &[],
        "ConfigMap/broken: the body is not valid JSON: key must be a string",
    );
    refused(
        "deep-json",
        &[],
        "ConfigMap/deep: the body is not valid JSON: recursion limit exceeded",
    );
    refused(
        "missing-api-version",
        &[],
        "ConfigMap/anonymous: apiVersion: is missing in the body",
    );
    refused(
        "bad-kind",
        &[],
        "kind: \"configmap\" is not a kind; expected e.g. `ConfigMap`",
    );
}

#[test]
fn a_plugin_returning_one_object_twice_is_refused() {
    refused(
        "duplicate",
        &[],
        "hostile (mathison_fixture_hostile.wasm): ConfigMap/twin is returned twice",
    );
}

#[test]
fn imports_the_sandbox_does_not_provide_are_refused_at_load() {
    plugin_refused(
        EVIL_IMPORT,
        &[],
        "imports `evil:net/socket`, which the sandbox does not provide",
    );
    plugin_refused(
        HTTP_IMPORT,
        &[],
        "imports `wasi:http/outgoing-handler@0.2.0`, which the sandbox does not provide",
    );
}

#[test]
fn another_wit_version_is_refused_saying_what_was_expected_and_found() {
    plugin_refused(
        WIT_NEXT,
        &[],
        "targets `mathison:plugin/types@0.2.0`, but this host serves `mathison:plugin@0.1.0` and \
         runs plugins built against 0.1.0;",
    );
}

/// The wit-next fixture as if built against `mathison:plugin@{version}`: its imports of the
/// contract renamed, in a file of `host`'s. The names keep their length, so the component stays
/// valid; the fixture's WIT is otherwise the served one.
fn wit_next_built_for(host: &Host, version: &str) -> String {
    assert_eq!(version.len(), "0.2.0".len(), "a same-length version");
    let mut bytes = fs::read(WIT_NEXT).expect("read the wit-next fixture");
    for interface in ["types", "host"] {
        let from = format!("mathison:plugin/{interface}@0.2.0");
        let to = format!("mathison:plugin/{interface}@{version}");
        let mut replaced = 0;
        while let Some(at) = bytes
            .windows(from.len())
            .position(|window| window == from.as_bytes())
        {
            bytes[at..at + to.len()].copy_from_slice(to.as_bytes());
            replaced += 1;
        }
        assert!(replaced > 0, "the fixture imports {from}");
    }
    let path = host.path(&format!("wit-{version}.wasm"));
    fs::write(&path, bytes).expect("write the renamed fixture");
    path.to_str().expect("utf-8").to_string()
}

#[test]
fn a_plugin_built_against_a_served_version_loads() {
    let host = Host::new();
    let plugin = wit_next_built_for(&host, "0.1.0");
    host.run(&["render", "-p", &plugin]).success();
}

#[test]
fn a_later_or_incompatible_version_is_refused_naming_both() {
    let host = Host::new();
    // 0.1.1 is of the served series but later: it may import what this host lacks.
    for version in ["0.1.1", "0.0.9", "1.1.0"] {
        let plugin = wit_next_built_for(&host, version);
        host.run(&["render", "-p", &plugin]).failure(&format!(
            "wit-{version}.wasm targets `mathison:plugin/types@{version}`, but this host serves \
             `mathison:plugin@0.1.0` and runs plugins built against 0.1.0;"
        ));
    }
}

/// What the `escape` behaviour saw, from its ConfigMap in a fresh render.
fn escape_attempts() -> serde_json::Value {
    hostile_config_map(&Host::new(), "escape", "escape")
}

#[test]
fn a_plugin_sees_no_files_environment_network_clock_or_randomness() {
    let seen = escape_attempts();
    let text = |key: &str| seen[key].as_str().unwrap_or_default().to_string();
    assert_eq!(text("environment"), "{}", "{seen:#}");
    assert_eq!(text("arguments"), "0", "{seen:#}");
    for denied in ["file", "directory", "connect"] {
        assert!(text(denied).starts_with("error: "), "{denied}: {seen:#}");
    }
    // 2024-01-01T00:00:00Z, the instant the host fixes.
    assert_eq!(text("wall-clock"), "1704067200", "{seen:#}");
    assert_eq!(text("monotonic-elapsed-ns"), "0", "{seen:#}");
    assert_eq!(text("random").len(), 16, "{seen:#}");
    assert_eq!(
        escape_attempts()["random"],
        seen["random"],
        "randomness is the same in every run"
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
