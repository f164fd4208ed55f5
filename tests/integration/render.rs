//! Rendering the real plugins: golden files, formats, determinism, atomic output.

use std::fs;

use proptest::prelude::*;
use serde::Deserialize;

use crate::support::{
    HOSTILE, Host, POSTGRES, POSTGRES_BACKUP, REDIS, Run, assert_golden, items, read_dir,
};

/// Renders postgres and redis with `args` into a folder and compares it with
/// `tests/golden/NAME`; returns the run, for its stderr.
fn render_golden(host: &Host, name: &str, args: &[&str]) -> Run {
    let out = host.path("out");
    let mut command = vec!["render", "-p", POSTGRES, "-p", REDIS];
    command.extend_from_slice(args);
    command.extend(["-o", out.to_str().expect("utf-8")]);
    let run = host.run(&command).success();
    assert_golden(name, &out);
    run
}

/// A values file of `tests/golden/`.
fn golden_values(file: &str) -> String {
    format!("{}/../tests/golden/{file}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn default_render_matches_golden_files() {
    render_golden(&Host::new(), "default", &[]);
}

#[test]
fn customised_render_matches_golden_files() {
    let host = Host::new();
    fs::write(host.path("pg-password"), "s3cr3t/p@ss:word\n").expect("write password");
    let run = render_golden(
        &host,
        "custom",
        &[
            "--values",
            &golden_values("custom-values.yaml"),
            "--set",
            "redis.resources.limits.memory=512Mi",
            "--namespace",
            "mathison-staging",
            "--instance",
            "staging",
            "--secret-input",
            "postgres.postgres-password=file:pg-password",
        ],
    );
    assert!(
        !run.stderr.contains("note:"),
        "every connection value was rendered: {}",
        run.stderr
    );
}

/// The production values (tests/golden/production-values.yaml): Guaranteed QoS, memory settings
/// from a bigger limit, server parameters, a long first start, Redis as a queue (noeviction).
#[test]
fn production_render_matches_golden_files() {
    let values = golden_values("production-values.yaml");
    render_golden(&Host::new(), "production", &["--values", &values]);
}

/// PostgreSQL with its backups (tests/golden/backup-values.yaml): the backup CronJob, suspended
/// while a restore Job is rendered, and the backup pods' NetworkPolicy.
#[test]
fn backup_render_matches_golden_files() {
    let host = Host::new();
    let out = host.path("out");
    let values = golden_values("backup-values.yaml");
    host.run(&[
        "render",
        "-p",
        POSTGRES,
        "-p",
        POSTGRES_BACKUP,
        "--values",
        &values,
        "-o",
        out.to_str().expect("utf-8"),
    ])
    .success();
    assert_golden("backup", &out);
}

/// The managed values (tests/golden/managed-values.yaml): both plugins in external mode, with
/// both passwords handed to the host, so that DATABASE_URL (with sslmode) and REDIS_URL
/// (rediss://, an ACL user) are rendered into the Secret beside the ExternalName Services.
#[test]
fn managed_render_matches_golden_files() {
    let host = Host::new();
    fs::write(host.path("pg-password"), "s3cr3t/p@ss:word\n").expect("write password");
    fs::write(host.path("redis-password"), "r3dis pass\n").expect("write password");
    let run = render_golden(
        &host,
        "managed",
        &[
            "--values",
            &golden_values("managed-values.yaml"),
            "--secret-input",
            "postgres.postgres-password=file:pg-password",
            "--secret-input",
            "redis.redis-password=file:redis-password",
        ],
    );
    assert!(
        !run.stderr.contains("note:") && !run.stderr.contains("warning:"),
        "every connection value was rendered, over verified TLS: {}",
        run.stderr
    );
}

/// A managed server's host must be a DNS name: the schema refuses an address, naming the field
/// and why (an ExternalName Service is a CNAME); the plugin's own checks name the rest.
#[test]
fn external_options_are_refused_with_their_fields() {
    let host = Host::new();
    host.run(&["render", "-p", POSTGRES, "--set", "postgres.external.host=10.0.0.5"])
        .failure("external.host: \"10.0.0.5\" is not of the expected form: Lower-case DNS name, not an IP address")
        .failure("a DNS CNAME, which can only point at a name");
    let redis = [
        "render",
        "-p",
        REDIS,
        "--set",
        "redis.external.host=cache.example.com",
    ];
    host.run(&[&redis[..], &["--set", "redis.external.port=65536"]].concat())
        .failure("external.port: 65536 is greater than the maximum of 65535");
    host.run(&[&redis[..], &["--set", "redis.metrics.enabled=true"]].concat())
        .failure("metrics.enabled: the exporter runs beside the in-cluster server");
    // A mode that verifies nothing renders, with a warning.
    let run = host
        .run(&[
            "render",
            "-p",
            POSTGRES,
            "--set",
            "postgres.external.host=db.example.com",
            "--set",
            "postgres.external.sslmode=require",
        ])
        .success();
    assert!(
        run.stderr.contains("sslmode require does not verify"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.contains("DATABASE_SSLMODE: require"));
}

#[test]
fn stdout_is_the_folder_in_install_order_and_byte_identical_across_runs() {
    let host = Host::new();
    let first = host.run(&["render", "-p", POSTGRES, "-p", REDIS]).success();
    let second = host.run(&["render", "-p", REDIS, "-p", POSTGRES]).success();
    assert_eq!(
        first.stdout, second.stdout,
        "plugin order on the command line must not matter"
    );
    let kinds: Vec<&str> = first
        .stdout
        .lines()
        .filter_map(|line| line.strip_prefix("kind: "))
        .collect();
    let mut sorted = kinds.clone();
    let rank = |k: &&str| {
        ["NetworkPolicy", "ConfigMap", "Service", "StatefulSet"]
            .iter()
            .position(|x| x == k)
    };
    sorted.sort_by_key(rank);
    assert_eq!(kinds, sorted, "objects are in install order");
    assert!(
        first.stderr.contains("DATABASE_URL is not rendered"),
        "{}",
        first.stderr
    );
}

#[test]
fn json_format_is_a_v1_list_of_the_same_objects() {
    let host = Host::new();
    let yaml = host.run(&["render", "-p", POSTGRES, "-p", REDIS]).success();
    let json = host
        .run(&["render", "-p", POSTGRES, "-p", REDIS, "--format", "json"])
        .success();
    let list: serde_json::Value = serde_json::from_str(&json.stdout).expect("valid JSON");
    assert_eq!(list["apiVersion"], "v1");
    assert_eq!(list["kind"], "List");
    let from_yaml: Vec<serde_json::Value> = yaml
        .stdout
        .split("---\n")
        .filter(|doc| !doc.trim().is_empty())
        .map(|doc| serde_yaml::from_str(doc).expect("valid YAML"))
        .collect();
    assert_eq!(list["items"].as_array().expect("items"), &from_yaml);
}

#[test]
fn validate_checks_everything_and_writes_nothing() {
    let host = Host::new();
    let run = host
        .run(&["validate", "-p", POSTGRES, "-p", REDIS])
        .success();
    assert_eq!(run.stdout, "");
    assert!(
        run.stderr
            .contains("ok: 11 objects from 2 plugin(s) (postgres, redis)"),
        "{}",
        run.stderr
    );
    host.run(&[
        "validate",
        "-p",
        REDIS,
        "--set",
        "redis.persistence.size=10 GB",
    ])
    .failure("persistence.size");
}

#[test]
fn a_failed_render_leaves_the_previous_folder_exactly_as_it_was() {
    let host = Host::new();
    let out = host.path("out");
    let out_arg = out.to_str().expect("utf-8");
    host.run(&["render", "-p", POSTGRES, "-p", REDIS, "-o", out_arg])
        .success();
    let before = read_dir(&out);
    host.run(&[
        "render",
        "-p",
        POSTGRES,
        "-p",
        REDIS,
        "--set",
        "postgres.persistence.size=-1Gi",
        "-o",
        out_arg,
    ])
    .failure("postgres");
    assert_eq!(read_dir(&out), before);
}

#[test]
fn bad_values_name_the_plugin_path_and_origin() {
    let host = Host::new();
    fs::write(
        host.path("values.yaml"),
        "redis:\n  persistence:\n    size: 10 GB\n",
    )
    .expect("write values");
    host.run(&["render", "-p", REDIS, "--values", "values.yaml"])
        .failure("persistence.size")
        .failure("values.yaml:3:5");
    fs::write(
        host.path("typo.yaml"),
        "redis:\n  persistance:\n    enabled: false\n",
    )
    .expect("write values");
    host.run(&["render", "-p", REDIS, "--values", "typo.yaml"])
        .failure("persistance: unknown option");
    fs::write(host.path("section.yaml"), "reddis: {}\n").expect("write values");
    host.run(&["render", "-p", REDIS, "--values", "section.yaml"])
        .failure("section \"reddis\" names no plugin of this render (plugins: redis)");
    host.run(&[
        "render",
        "-p",
        POSTGRES,
        "--set",
        "postgres.resources.limits.memory=256Mi",
    ])
    .failure("postgres");
    // The plugin's own checks name the plugin and its file, and where the value came from.
    fs::write(
        host.path("small.yaml"),
        "redis:\n  resources:\n    limits:\n      memory: 1Ki\n",
    )
    .expect("write values");
    host.run(&["render", "-p", REDIS, "--values", "small.yaml"])
        .failure(
            "error: redis (mathison_plugin_redis.wasm): invalid configuration\n  \
             resources.limits.memory: the limit \"1Ki\" is below the request \"64Mi\" \
             (from small.yaml:4:7)",
        );
}

#[test]
fn quantities_take_numbers_and_set_string_forces_a_string() {
    let host = Host::new();
    fs::write(
        host.path("values.yaml"),
        "redis:\n  resources:\n    limits:\n      cpu: 2\n",
    )
    .expect("write values");
    let rendered = host
        .run(&[
            "render",
            "-p",
            REDIS,
            "--values",
            "values.yaml",
            "--set",
            "redis.resources.requests.cpu=0.5",
            "--format",
            "json",
        ])
        .success();
    let list: serde_json::Value = serde_json::from_str(&rendered.stdout).expect("JSON");
    let statefulset = list["items"]
        .as_array()
        .and_then(|items| items.iter().find(|o| o["kind"] == "StatefulSet"))
        .expect("the StatefulSet");
    let resources = &statefulset["spec"]["template"]["spec"]["containers"][0]["resources"];
    assert_eq!(resources["limits"]["cpu"], "2", "{resources}");
    assert_eq!(resources["requests"]["cpu"], "0.5", "{resources}");

    // --set-string keeps `false` a string, which the boolean option then refuses.
    host.run(&[
        "render",
        "-p",
        REDIS,
        "--set-string",
        "redis.persistence.enabled=false",
    ])
    .failure(
        "persistence.enabled: \"false\" is not of type \"boolean\" (from --set-string \
             redis.persistence.enabled=false)",
    );
}

#[test]
fn namespace_flows_into_host_names() {
    let host = Host::new();
    let run = host.run(&["render", "-p", REDIS, "-n", "team-a"]).success();
    assert!(
        run.stdout
            .contains("REDIS_URL: redis://redis.team-a.svc.cluster.local:6379"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("mathison-system"));
}

/// Strings that YAML 1.1 readers (kubectl's go-yaml v2, PyYAML) take for something else when
/// they are written plain: every family of yaml.org/type, in its case variants.
#[rustfmt::skip]
const YAML11_STRINGS: &[&str] = &[
    "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "true", "True", "TRUE", "false",
    "False", "FALSE", "on", "On", "ON", "off", "Off", "OFF", "~", "null", "Null", "NULL",
    "0b1010", "-0b1_0", "0755", "0_7", "0o17", "0x1F", "0Xff_ff", "+12", "1_000", "1:20",
    "190:20:30", "1.5", "1_000.5", "-1.5e+3", ".5", "1:20.5", ".inf", "-.Inf", "+.INF", ".nan",
    ".NaN", ".NAN", "2001-12-14", "2001-12-14t21:59:43.10-05:00", "2001-12-14 21:59:43.10 -5",
    "2001-1-2", "<<", "=",
];

/// Renders `strings` through the hostile fixture into ConfigMap `strings` (as values
/// `value-<i>`, and as keys where the API server takes them) and into connection values
/// `STRING_<i>`; returns the YAML and the JSON output.
fn render_strings(host: &Host, strings: &[String]) -> (String, String) {
    // JSON is YAML too, and its strings are quoted: the values file says exactly these strings.
    let values = serde_json::json!({"hostile": {"behaviour": "strings", "strings": strings}});
    fs::write(host.path("strings.yaml"), values.to_string()).expect("write values");
    let render = |format: &str| {
        host.run(&[
            "render",
            "-p",
            HOSTILE,
            "--values",
            "strings.yaml",
            "--format",
            format,
        ])
        .success()
        .stdout
    };
    (render("yaml"), render("json"))
}

/// Every string is single-quoted in the YAML, which reads back as the JSON output.
#[track_caller]
fn assert_strings_survive_yaml(host: &Host, strings: &[String]) {
    let (yaml, json) = render_strings(host, strings);
    // The API server's rule for ConfigMap keys, as the fixture applies it; these strings are
    // never empty, `.` or longer than 253.
    let is_key = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    };
    for (i, text) in strings.iter().enumerate() {
        let mut lines = vec![
            format!("  value-{i}: '{text}'\n"),
            format!("  STRING_{i}: '{text}'\n"),
        ];
        if is_key(text) {
            lines.push(format!("  '{text}': key\n"));
        }
        for line in lines {
            assert!(yaml.contains(&line), "{line:?} is not in\n{yaml}");
        }
    }
    let list: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
    let documents: Vec<serde_json::Value> = serde_yaml::Deserializer::from_str(&yaml)
        .map(|document| serde_json::Value::deserialize(document).expect("valid YAML"))
        .collect();
    assert_eq!(Some(&documents), list["items"].as_array());
}

#[test]
fn yaml11_strings_are_quoted_and_read_back_as_written() {
    let strings: Vec<String> = YAML11_STRINGS.iter().map(|s| s.to_string()).collect();
    assert_strings_survive_yaml(&Host::new(), &strings);
}

proptest! {
    // Each case is two renders.
    #![proptest_config(ProptestConfig::with_cases(8))]

    #[test]
    fn generated_yaml11_strings_are_quoted_and_read_back_as_written(
        strings in prop::collection::btree_set(
            prop_oneof![
                "[-+]?0[bB][01_]{1,6}",
                "[-+]?0[oO]?[0-7_]{1,6}",
                "[-+]?0[xX][0-9a-fA-F_]{1,6}",
                "[-+]?[1-9][0-9_]{0,6}",
                "[-+]?[1-9][0-9_]{0,3}(:[0-5]?[0-9]){1,3}(\\.[0-9_]{0,3})?",
                "[-+]?[0-9][0-9_]{0,4}\\.[0-9_]{0,4}([eE][-+][0-9]{1,3})?",
                "[-+]?\\.(inf|Inf|INF)",
                "\\.(nan|NaN|NAN)",
                "[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(([Tt]|[ \t]{1,2})[0-9]{1,2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{0,3})?([ \t]?(Z|[-+][0-9]{1,2}(:[0-9]{2})?))?)?",
                prop::sample::select(YAML11_STRINGS).prop_map(str::to_owned),
            ],
            1..24,
        ),
    ) {
        assert_strings_survive_yaml(&Host::new(), &strings.into_iter().collect::<Vec<_>>());
    }
}

/// The Prometheus Operator's kinds are known to be namespaced: a plugin's ServiceMonitor needs
/// no `--allow-cluster-scoped`, and lands in the render namespace.
#[test]
fn a_service_monitor_renders_without_the_cluster_scoped_opt_in() {
    let run = Host::new()
        .run(&[
            "render",
            "-p",
            POSTGRES,
            "--set",
            "postgres.metrics.enabled=true",
            "--set",
            "postgres.metrics.serviceMonitor.enabled=true",
        ])
        .success();
    let monitor = run
        .stdout
        .split("---\n")
        .find(|document| document.contains("kind: ServiceMonitor\n"))
        .unwrap_or_else(|| panic!("no ServiceMonitor in:\n{}", run.stdout));
    assert!(
        monitor.contains("  namespace: mathison-system\n"),
        "{monitor}"
    );
}

#[test]
fn check_diffs_a_stale_folder_with_secrets_masked_and_writes_nothing() {
    let host = Host::new();
    fs::write(host.path("pw"), "first-secret-value\n").expect("write the secret");
    let render = |extra: &[&str], check: bool| {
        let mut args = vec![
            "render",
            "-p",
            POSTGRES,
            "--secret-input",
            "postgres.postgres-password=file:pw",
            "-o",
            "out",
        ];
        args.extend_from_slice(extra);
        if check {
            args.push("--check");
        }
        host.run(&args)
    };
    let with_redis = ["-p", REDIS];
    render(&with_redis, false).success();
    let up_to_date = render(&with_redis, true).success();
    assert!(up_to_date.stdout.is_empty(), "{}", up_to_date.stdout);

    let committed = read_dir(&host.path("out"));
    fs::write(host.path("pw"), "second-secret-value\n").expect("change the secret");
    let set = ["-p", REDIS, "--set", "redis.maxmemoryPolicy=noeviction"];
    let drift = render(&set, true).failure("out differs from the render in 2 file(s)");
    assert!(
        drift
            .stdout
            .contains("-    maxmemory-policy allkeys-lru\n+    maxmemory-policy noeviction"),
        "{}",
        drift.stdout
    );
    assert!(
        drift.stdout.contains("-  DATABASE_URL: '*** (before)'")
            && drift.stdout.contains("+  DATABASE_URL: '*** (after)'"),
        "the changed Secret key shows, masked: {}",
        drift.stdout
    );
    assert!(
        !drift.stdout.contains("secret-value") && !drift.stderr.contains("secret-value"),
        "no Secret value is shown"
    );
    assert_eq!(read_dir(&host.path("out")), committed, "nothing is written");

    // Redis dropped from the render: its file would be removed.
    let dropped = render(&[], true).failure("in 2 file(s)");
    assert!(
        dropped.stdout.contains("--- out/redis.yaml\n+++ /dev/null"),
        "{}",
        dropped.stdout
    );
    // A file the folder lacks would be created.
    fs::remove_file(host.path("out/postgres.yaml")).expect("remove a file");
    let missing = render(&with_redis, true).failure("in 2 file(s)");
    assert!(
        missing
            .stdout
            .contains("--- /dev/null\n+++ out/postgres.yaml"),
        "{}",
        missing.stdout
    );
}

#[test]
fn provenance_names_what_made_each_object_only_when_asked_for() {
    let host = Host::new();
    let plain = host
        .run(&["render", "-p", POSTGRES, "-p", REDIS, "--format", "json"])
        .success();
    assert!(!plain.stdout.contains("mathison.dev/provenance"));
    let run = host
        .run(&[
            "render",
            "-p",
            POSTGRES,
            "-p",
            REDIS,
            "--format",
            "json",
            "--provenance",
        ])
        .success();
    let sha256 = |path: &str| {
        use sha2::Digest as _;
        let bytes = fs::read(path).expect("the plugin file");
        let hex: String = sha2::Sha256::digest(bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("sha256:{hex}")
    };
    let objects = items(&run);
    assert_eq!(objects.len(), items(&plain).len());
    for object in objects {
        let text = object["metadata"]["annotations"]["mathison.dev/provenance"]
            .as_str()
            .unwrap_or_else(|| panic!("no provenance on {object}"));
        let provenance: serde_json::Value = serde_json::from_str(text).expect("JSON");
        let host_version = env!("CARGO_PKG_VERSION");
        let expected = match object["metadata"]["labels"]["app.kubernetes.io/name"].as_str() {
            Some(plugin @ ("postgres" | "redis")) => {
                let file = if plugin == "postgres" {
                    POSTGRES
                } else {
                    REDIS
                };
                serde_json::json!({"plugin": plugin, "version": "0.1.0", "sha256": sha256(file),
                                   "wit": "0.1.0", "host": host_version})
            }
            _ => serde_json::json!({"plugin": "mathison-host", "host": host_version}),
        };
        assert_eq!(provenance, expected, "{}", object["metadata"]["name"]);
    }
}
