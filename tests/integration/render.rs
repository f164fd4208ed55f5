//! Rendering the real plugins: golden files, formats, determinism, atomic output.

use std::fs;

use crate::support::{Host, POSTGRES, REDIS, assert_golden, read_dir};

#[test]
fn default_render_matches_golden_files() {
    let host = Host::new();
    let out = host.path("out");
    host.run(&[
        "render",
        "-p",
        POSTGRES,
        "-p",
        REDIS,
        "-o",
        out.to_str().expect("utf-8"),
    ])
    .success();
    assert_golden("default", &out);
}

#[test]
fn customised_render_matches_golden_files() {
    let host = Host::new();
    let values = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/golden/custom-values.yaml"
    );
    fs::write(host.path("pg-password"), "s3cr3t/p@ss:word\n").expect("write password");
    let out = host.path("out");
    let run = host
        .run(&[
            "render",
            "-p",
            POSTGRES,
            "-p",
            REDIS,
            "--values",
            values,
            "--set",
            "redis.resources.limits.memory=512Mi",
            "--namespace",
            "mathison-staging",
            "--instance",
            "staging",
            "--secret-input",
            "postgres-password=file:pg-password",
            "-o",
            out.to_str().expect("utf-8"),
        ])
        .success();
    assert!(
        !run.stderr.contains("note:"),
        "every connection value was rendered: {}",
        run.stderr
    );
    assert_golden("custom", &out);
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
