//! The trust boundary around the sandbox: what the host does with what a plugin hands over.
//! One section per class of hole; each fixture is refused as `plugin_refused` checks (exit 1,
//! one error line naming the plugin file, within the limits, nothing written), or, where the
//! input is legitimate, rendered.

use std::fs;

use mathison_test_artifacts::{
    HOSTILE_INFO_BAD_KIND, HOSTILE_INFO_CLOCK, HOSTILE_INFO_KUSTOMIZATION,
    HOSTILE_INFO_LOOKAROUND_PATTERN, HOSTILE_INFO_MANY_KINDS, HOSTILE_INFO_REDIS,
    HOSTILE_INFO_REF_FAN_OUT, HOSTILE_INFO_SELF_REFERENCE, HOSTILE_INFO_TERMINAL,
};
use serde_json::Value;

use crate::support::{
    HOSTILE, Host, POSTGRES, REDIS, hostile_config_map, items, plugin_refused, read_dir, refused,
};

// 1. Kinds the host does not know, and lists.

#[test]
fn a_cluster_scoped_kind_without_a_type_needs_the_opt_in_with_or_without_a_namespace() {
    refused(
        "priority-class",
        &[],
        "PriorityClass is cluster-scoped and could affect the whole cluster",
    );
    refused(
        "priority-class-namespaced",
        &[],
        "metadata.namespace: PriorityClass is cluster-scoped and has no namespace",
    );
    let run = Host::new()
        .run(&[
            "render",
            "-p",
            HOSTILE,
            "--set",
            "hostile.behaviour=priority-class",
            "--allow-cluster-scoped",
            "--format",
            "json",
        ])
        .success();
    let classes = items(&run);
    assert_eq!(classes[0]["kind"], "PriorityClass");
    assert!(classes[0]["metadata"].get("namespace").is_none());
}

#[test]
fn a_kind_the_host_does_not_know_counts_as_cluster_scoped() {
    refused(
        "unknown-kind",
        &[],
        "the host does not know the kind example.com/v1/Widget, so it may be cluster-scoped",
    );
}

#[test]
fn a_list_cannot_carry_objects_past_the_checks() {
    refused(
        "list",
        &[],
        "kind: List is a list, which `kubectl apply` would expand",
    );
}

// 2. Secret inputs are bound to their plugin.

#[test]
fn a_secret_input_reaches_only_the_plugin_it_is_bound_to() {
    let host = Host::new();
    fs::write(host.path("pw"), "correct horse").expect("write");
    let run = host
        .run(&[
            "render",
            "-p",
            POSTGRES,
            "-p",
            HOSTILE,
            "--set",
            "hostile.behaviour=steal-secret",
            "--secret-input",
            "postgres.postgres-password=file:pw",
            "--format",
            "json",
        ])
        .success();
    assert!(!run.stdout.contains("STOLEN_URL"), "{}", run.stdout);
    let secret = items(&run)
        .into_iter()
        .find(|o| o["kind"] == "Secret" && o["metadata"]["name"] == "mathison-connections")
        .expect("postgres's DATABASE_URL is rendered");
    assert!(secret["data"].get("DATABASE_URL").is_some(), "{secret}");
    assert!(
        run.stderr.contains(
            "note: hostile (mathison_fixture_hostile.wasm): STOLEN_URL is not rendered: it needs \
             the secret input \"postgres-password\"; pass --secret-input hostile.postgres-password"
        ),
        "{}",
        run.stderr
    );
}

#[test]
fn a_secret_input_without_a_plugin_or_for_a_plugin_not_rendered_is_refused() {
    let host = Host::new();
    fs::write(host.path("pw"), "pw").expect("write");
    host.run(&[
        "render",
        "-p",
        POSTGRES,
        "--secret-input",
        "postgres-password=file:pw",
    ])
    .failure("names no plugin; a secret input is bound to the plugin it is for, as PLUGIN.NAME");
    host.run(&[
        "render",
        "-p",
        POSTGRES,
        "--secret-input",
        "redis.redis-password=file:pw",
    ])
    .failure("--secret-input redis.*: no plugin of this render is named \"redis\"");
}

// 3. Host work on plugin data is bounded.

#[test]
fn a_schema_whose_references_multiply_is_refused_before_any_check() {
    plugin_refused(
        HOSTILE_INFO_REF_FAN_OUT,
        &[],
        "the plugin's config schema expands to more than 100000 nodes through its $refs",
    );
}

#[test]
fn a_pattern_that_needs_backtracking_is_refused() {
    plugin_refused(
        HOSTILE_INFO_LOOKAROUND_PATTERN,
        &[],
        "hostile-info (mathison_fixture_hostile_info_lookaround_pattern.wasm): invalid \
         configuration\n  (root): the plugin's config schema is invalid",
    );
}

#[test]
fn a_self_referencing_schema_renders_and_inspects_within_bounds() {
    let host = Host::new();
    host.run(&["render", "-p", HOSTILE_INFO_SELF_REFERENCE])
        .success();
    let inspected = host
        .run(&["inspect", HOSTILE_INFO_SELF_REFERENCE])
        .success();
    assert!(
        inspected.stdout.contains("more options not shown"),
        "{}",
        inspected.stdout
    );
}

#[test]
fn a_flood_of_declared_kinds_hits_the_output_limit() {
    plugin_refused(
        HOSTILE_INFO_MANY_KINDS,
        &[],
        "bytes, more than the 16777216-byte limit (--max-output; each object counts 1024 bytes \
         beside its text, each other list element 64)",
    );
}

#[test]
fn a_flood_of_empty_log_lines_hits_the_output_limit() {
    refused(
        "log-flood",
        &["--max-memory", "64Mi"],
        "render logged more than the 16777216-byte limit (--max-output; each line counts 64 \
         bytes beside its text)",
    );
}

#[test]
fn a_flood_of_tiny_objects_hits_the_output_limit() {
    refused(
        "tiny-objects",
        &[],
        "more than the 16777216-byte limit (--max-output; each object counts 1024 bytes",
    );
}

// 4. Plugin text never acts on the terminal, nor passes for the host's own lines.

#[track_caller]
fn assert_inert(shown: &str) {
    assert!(
        !shown.contains(['\u{1b}', '\r', '\u{9b}', '\u{7}']),
        "control characters reached the terminal: {shown:?}"
    );
    assert!(
        !shown
            .lines()
            .any(|line| line.starts_with("error: forged") || line.starts_with("note: forged")),
        "plugin text started a line of its own: {shown}"
    );
}

#[test]
fn plugin_text_is_escaped_wherever_it_is_shown() {
    assert_inert(&refused(
        "terminal",
        &[],
        "hostile (mathison_fixture_hostile.wasm): invalid configuration\n  \
         mode\\u{1b}[8m: bad\\nnote: forged\\u{9b}31m",
    ));
    let logged = Host::new()
        .run(&[
            "render",
            "-p",
            HOSTILE,
            "--set",
            "hostile.behaviour=terminal-log",
        ])
        .success();
    assert_inert(&logged.stderr);
    assert!(
        logged.stderr.contains(
            "mathison_fixture_hostile.wasm: warn: \\u{1b}[2J\\u{1b}[1;31mred\\r\\nerror: forged"
        ),
        "{}",
        logged.stderr
    );
    assert_inert(&refused(
        "terminal-name",
        &[],
        "ConfigMap/x\\u{1b}[2J\\nerror: forged",
    ));
    assert_inert(&plugin_refused(
        HOSTILE_INFO_BAD_KIND,
        &[],
        "kind v1/Config\\u{1b}[2JMap\\nerror: forged is not an apiVersion and kind",
    ));

    // JSON may carry C1 controls and bidirectional overrides raw; the output escapes them
    // and keeps the value.
    let host = Host::new();
    let hostile_text = "red\u{9b}31m\u{202e}\u{7f}";
    fs::write(
        host.path("strings.json"),
        serde_json::json!({"hostile": {"behaviour": "strings", "strings": [hostile_text]}})
            .to_string(),
    )
    .expect("write values");
    let json = host
        .run(&[
            "render",
            "-p",
            HOSTILE,
            "-f",
            "strings.json",
            "--format",
            "json",
        ])
        .success();
    assert_inert(&json.stdout);
    assert!(
        !json.stdout.contains(['\u{202e}', '\u{7f}']),
        "{}",
        json.stdout
    );
    assert!(
        items(&json).iter().any(|o| o["data"]
            .as_object()
            .is_some_and(|d| d.values().any(|v| v == hostile_text))),
        "the value is kept: {}",
        json.stdout
    );

    for format in ["text", "json"] {
        let inspected = host
            .run(&["inspect", HOSTILE_INFO_TERMINAL, "--format", format])
            .success();
        assert_inert(&inspected.stdout);
    }
    let invalid = host
        .run(&[
            "render",
            "-p",
            HOSTILE_INFO_TERMINAL,
            "--set",
            "hostile-info.mode=blue",
        ])
        .failure("invalid configuration");
    assert_inert(&invalid.stderr);
}

// 5. Names the host owns, files the user owns.

#[test]
fn the_hosts_own_objects_are_reserved() {
    refused(
        "host-object",
        &[],
        "ConfigMap/mathison-connections is made by mathison-host itself",
    );
    refused(
        "applyset-parent",
        &[],
        "Secret/applyset-mathison is made by mathison-host itself",
    );
}

#[test]
fn an_output_folder_only_loses_or_changes_files_an_earlier_render_wrote() {
    let host = Host::new();
    let out = host.path("out");
    let out_arg = out.to_str().expect("utf-8");
    host.run(&["render", "-p", REDIS, "-o", out_arg]).success();
    fs::write(out.join("kustomization.yaml"), "resources: [redis.yaml]\n").expect("write");
    let before = read_dir(&out);
    let run = host
        .run(&[
            "render",
            "-p",
            REDIS,
            "-p",
            HOSTILE_INFO_KUSTOMIZATION,
            "-o",
            out_arg,
        ])
        .failure("kustomization.yaml exists but no earlier render wrote it");
    assert!(
        run.stderr.starts_with(
            "error: kustomization (mathison_fixture_hostile_info_kustomization.wasm): its output \
             file would replace a file it does not own"
        ),
        "{}",
        run.stderr
    );
    assert_eq!(
        read_dir(&out),
        before,
        "the user's file and the render are untouched"
    );
}

// 6. Errors name the plugin file, not only the name a plugin chose.

#[test]
fn a_plugin_taking_another_plugins_name_is_named_by_its_file() {
    plugin_refused(
        HOSTILE_INFO_REDIS,
        &[],
        "mathison_fixture_hostile_info_redis.wasm are both named \"redis\"",
    );
    Host::new()
        .run(&[
            "render",
            "-p",
            HOSTILE_INFO_REDIS,
            "--set",
            "redis.persistence.enabled=false",
        ])
        .failure("error: redis (mathison_fixture_hostile_info_redis.wasm): invalid configuration");
}

// 7. What the API server would refuse fails the render.

#[test]
fn values_the_api_server_would_refuse_fail_the_render() {
    refused(
        "long-key",
        &[],
        "is not a valid key; expected at most 253 upper-case",
    );
    refused(
        "bad-label",
        &[],
        "metadata.labels: the value of tier (\"not a label value\") is not a valid label value",
    );
    refused("bad-data-key", &[], "data: \"a/b\" is not a valid key");
}

// 8. No real time leaks in.

fn clock_seen(host: &Host) -> Value {
    hostile_config_map(host, "clock", "clock")
}

#[test]
fn clock_subscriptions_follow_the_frozen_clock() {
    let host = Host::new();
    let seen = clock_seen(&host);
    assert_eq!(seen["ready"], "0", "a 1 ms sleep is never over: {seen}");
    assert_eq!(seen["due-now"], "true", "a zero sleep is: {seen}");
    assert_eq!(clock_seen(&host), seen);
}

#[test]
fn info_cannot_observe_time_so_what_the_cache_keeps_is_what_a_call_gives() {
    let host = Host::new();
    let description = |args: &[&str]| {
        let run = host.run(args).success();
        let info: Value = serde_json::from_str(&run.stdout).expect("JSON");
        info["description"].clone()
    };
    let called = description(&[
        "inspect",
        HOSTILE_INFO_CLOCK,
        "--format",
        "json",
        "--no-cache",
    ]);
    assert_eq!(called, "ready 0 times");
    // The first cached inspect calls `info` and keeps it; the second answers from the cache.
    for _ in 0..2 {
        assert_eq!(
            description(&["inspect", HOSTILE_INFO_CLOCK, "--format", "json"]),
            called
        );
    }
}
