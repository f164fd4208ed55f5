use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, PodSpec, Probe, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use mathison_plugin_sdk::testing::{self, context};
use serde_json::json;

use super::{Postgres, memory_setting};

fn render(config: serde_json::Value) -> mathison_plugin_sdk::Output {
    testing::render::<Postgres>(&context("mathison-system"), config)
        .unwrap_or_else(|e| panic!("render failed: {e:?}"))
}

fn statefulset(out: &mathison_plugin_sdk::Output) -> StatefulSet {
    testing::object(out, "postgres")
}

/// The pod template's spec of the StatefulSet.
fn pod_spec(out: &mathison_plugin_sdk::Output) -> PodSpec {
    statefulset(out)
        .spec
        .expect("spec")
        .template
        .spec
        .expect("pod")
}

#[test]
fn default_objects() {
    let out = render(json!({}));
    let list = testing::object_list(&out);
    let expected = [
        ("ConfigMap", "postgres-initdb"),
        ("NetworkPolicy", "postgres"),
        ("Service", "postgres"),
        ("Service", "postgres-headless"),
        ("StatefulSet", "postgres"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(k, n)| ((*k).to_owned(), (*n).to_owned()))
        .collect();
    assert_eq!(list, expected);
    for object in out.objects() {
        assert_eq!(object.namespace.as_deref(), Some("mathison-system"));
    }
}

#[test]
fn statefulset_follows_the_spec_and_the_hardening() {
    let out = render(json!({}));
    let sts = statefulset(&out);
    let spec = sts.spec.expect("spec");
    assert_eq!(spec.replicas, Some(1));
    assert_eq!(spec.service_name.as_deref(), Some("postgres-headless"));
    let claim = &spec.volume_claim_templates.expect("claims")[0];
    let claim_spec = claim.spec.as_ref().expect("claim spec");
    assert_eq!(
        claim_spec.access_modes,
        Some(vec!["ReadWriteOnce".to_owned()])
    );
    let requests = claim_spec
        .resources
        .as_ref()
        .and_then(|r| r.requests.as_ref())
        .expect("requests");
    assert_eq!(requests["storage"].0, "10Gi");
    let pod = spec.template.spec.expect("pod");
    assert_eq!(pod.automount_service_account_token, Some(false));
    assert_eq!(pod.enable_service_links, Some(false));
    assert!(pod.termination_grace_period_seconds >= Some(60));
    let psc = pod.security_context.expect("pod security context");
    assert_eq!(
        (psc.run_as_user, psc.run_as_group, psc.fs_group),
        (Some(999), Some(999), Some(999))
    );
    let c = &pod.containers[0];
    assert_eq!(c.image.as_deref(), Some("pgvector/pgvector:pg16"));
    let resources = c.resources.as_ref().expect("resources");
    let get = |l: &Option<
        std::collections::BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
    >,
               k: &str| { l.as_ref().expect("list")[k].0.clone() };
    assert_eq!(get(&resources.requests, "cpu"), "250m");
    assert_eq!(get(&resources.requests, "memory"), "512Mi");
    assert_eq!(get(&resources.limits, "cpu"), "1");
    assert_eq!(get(&resources.limits, "memory"), "1Gi");
    let probe = c.startup_probe.as_ref().expect("startup probe");
    assert_eq!(
        (probe.period_seconds, probe.failure_threshold),
        (Some(10), Some(60))
    );
    let env: Vec<(String, Option<String>)> = c
        .env
        .clone()
        .expect("env")
        .into_iter()
        .map(|e| (e.name, e.value))
        .collect();
    assert!(env.contains(&(
        "PGDATA".to_owned(),
        Some("/var/lib/postgresql/data/pgdata".to_owned())
    )));
    assert!(env.iter().all(|(name, _)| name != "POSTGRES_PASSWORD"));
    let volumes = pod.volumes.expect("volumes");
    let secret = volumes
        .iter()
        .find_map(|v| v.secret.as_ref())
        .expect("secret volume");
    assert_eq!(secret.secret_name.as_deref(), Some("mathison-secrets"));
    assert_eq!(secret.default_mode, Some(288));
    let annotations = sts.metadata.annotations.expect("annotations");
    let skipped: Vec<&str> = annotations.values().map(|v| &v[..10]).collect();
    assert_eq!(skipped, ["CKV_K8S_43", "CKV_K8S_15", "CKV_K8S_40"]);
}

fn probe_command(probe: Option<&Probe>) -> Vec<String> {
    probe
        .and_then(|p| p.exec.as_ref())
        .and_then(|e| e.command.clone())
        .expect("an exec probe")
}

#[test]
fn liveness_tolerates_a_recovering_server_and_readiness_does_not() {
    let pod = pod_spec(&render(json!({})));
    let c = &pod.containers[0];
    let pg_isready = "pg_isready -U mathison -d mathison -h 127.0.0.1 -p 5432";
    // Exit 1 is "rejecting connections" (starting, recovering): not a reason to kill it.
    let alive = ["sh", "-c", &format!("{pg_isready}; [ $? -le 1 ]")].map(str::to_owned);
    assert_eq!(probe_command(c.liveness_probe.as_ref()), alive);
    assert_eq!(probe_command(c.startup_probe.as_ref()), alive);
    assert_eq!(
        probe_command(c.readiness_probe.as_ref()).join(" "),
        pg_isready
    );
}

#[test]
fn startup_timeout_is_rounded_up_to_whole_periods() {
    let out = render(json!({"startupTimeoutSeconds": 95}));
    let pod = pod_spec(&out);
    let probe = pod.containers[0]
        .startup_probe
        .clone()
        .expect("startup probe");
    assert_eq!(
        (probe.period_seconds, probe.failure_threshold),
        (Some(10), Some(10))
    );
}

/// The container's `-c name=value` arguments as (name, value).
fn server_settings(out: &mathison_plugin_sdk::Output) -> Vec<(String, String)> {
    let pod = pod_spec(out);
    let args = pod.containers[0].args.clone().expect("args");
    args.chunks(2)
        .map(|pair| {
            assert_eq!(pair[0], "-c", "{args:?}");
            let (name, value) = pair[1].split_once('=').expect("name=value");
            (name.to_owned(), value.to_owned())
        })
        .collect()
}

fn settings(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn memory_settings_follow_the_limit_and_shm() {
    assert_eq!(
        server_settings(&render(json!({}))),
        settings(&[
            ("effective_cache_size", "768MB"),
            ("maintenance_work_mem", "128MB"),
            ("max_connections", "50"),
            ("shared_buffers", "256MB"),
            ("work_mem", "5MB"),
        ])
    );
    // 4Gi with 1Gi of /dev/shm leaves 2048 MiB: work_mem 2048/100, maintenance 2048/4 = 1024/2.
    let big = render(json!({"resources": {"limits": {"memory": "4Gi"}}, "shmSize": "1Gi"}));
    assert_eq!(
        server_settings(&big),
        settings(&[
            ("effective_cache_size", "3GB"),
            ("maintenance_work_mem", "512MB"),
            ("max_connections", "50"),
            ("shared_buffers", "1GB"),
            ("work_mem", "20MB"),
        ])
    );
    // A small /dev/shm bounds what parallel queries and parallel VACUUM may put there.
    let small_shm = render(json!({"resources": {"limits": {"memory": "4Gi"}}, "shmSize": "64Mi"}));
    let small = server_settings(&small_shm);
    assert!(
        small.contains(&("work_mem".to_owned(), "8MB".to_owned())),
        "{small:?}"
    );
    assert!(
        small.contains(&("maintenance_work_mem".to_owned(), "32MB".to_owned())),
        "{small:?}"
    );
}

#[test]
fn memory_settings_are_written_in_the_unit_postgres_shows() {
    let shown: Vec<String> = [5, 1024, 1536, 3072, 1024 * 1024, 0]
        .into_iter()
        .map(memory_setting)
        .collect();
    assert_eq!(shown, ["5MB", "1GB", "1536MB", "3GB", "1TB", "0MB"]);
}

#[test]
fn parameters_override_the_derived_settings_and_reach_the_init_container() {
    let out = render(json!({"parameters": {
        "exit_on_error": false,
        "max_connections": 80,
        "random_page_cost": 1.1,
        "jit": false,
        "log_min_duration_statement": "500ms",
        "pg_stat_statements.track": "all",
    }}));
    let got = server_settings(&out);
    for expected in [
        ("max_connections", "80"),
        ("random_page_cost", "1.1"),
        ("jit", "off"),
        ("log_min_duration_statement", "500ms"),
        ("pg_stat_statements.track", "all"),
        ("shared_buffers", "256MB"),
    ] {
        assert!(
            got.contains(&(expected.0.to_owned(), expected.1.to_owned())),
            "{expected:?} in {got:?}"
        );
    }
    assert_eq!(
        got.iter().filter(|(n, _)| n == "max_connections").count(),
        1
    );
    let pod = pod_spec(&out);
    let init = &pod.init_containers.expect("init containers")[0];
    let command = init.command.clone().expect("command");
    assert_eq!(command[3], "update-extensions", "$0 of the script");
    assert_eq!(
        command[4..],
        pod.containers[0].args.clone().expect("args")[..]
    );
    // The script's own exit_on_error comes after "$@", so a parameter cannot turn it off.
    let script = &command[2];
    assert!(script.contains("\"$@\" -c exit_on_error=on "), "{script}");
}

#[test]
fn guaranteed_qos_sets_requests_to_limits() {
    let out = render(json!({"guaranteedQoS": true}));
    let pod = pod_spec(&out);
    let init = &pod.init_containers.clone().expect("init containers")[0];
    for resources in [&pod.containers[0].resources, &init.resources] {
        let resources = resources.clone().expect("resources");
        assert_eq!(resources.requests, resources.limits);
        assert_eq!(resources.requests.expect("requests")["memory"].0, "1Gi");
    }
    let default = pod_spec(&render(json!({})));
    let resources = default.containers[0].resources.clone().expect("resources");
    assert_ne!(resources.requests, resources.limits);
}

#[test]
fn extensions_are_created_and_updated_on_every_later_start() {
    let out = render(json!({"extensions": ["vector", "pg_trgm"]}));
    let pod = pod_spec(&out);
    let init = &pod.init_containers.expect("init containers")[0];
    assert_eq!(init.image.as_deref(), Some("pgvector/pgvector:pg16"));
    let command = init.command.clone().expect("command");
    assert_eq!(command[..2], ["sh", "-c"]);
    let script = &command[2];
    assert!(
        script.contains("[ -s \"$PGDATA/PG_VERSION\" ] || exit 0\n"),
        "{script}"
    );
    assert!(
        script.contains(
            "postgres --single -D \"$PGDATA\" \"$@\" -c exit_on_error=on mathison <<'SQL'\n"
        ),
        "{script}"
    );
    for extension in ["vector", "pg_trgm"] {
        assert!(
            script.contains(&format!(
                "CREATE EXTENSION IF NOT EXISTS {extension};\nALTER EXTENSION {extension} UPDATE;\n"
            )),
            "{script}"
        );
    }
    let mounts: Vec<&str> = init
        .volume_mounts
        .iter()
        .flatten()
        .map(|m| m.mount_path.as_str())
        .collect();
    assert_eq!(mounts, ["/var/lib/postgresql/data", "/tmp", "/dev/shm"]);
}

#[test]
fn services_and_network_policy() {
    let out = render(json!({}));
    let headless: Service = testing::object(&out, "postgres-headless");
    let spec = headless.spec.expect("spec");
    assert_eq!(spec.cluster_ip.as_deref(), Some("None"));
    assert_eq!(spec.publish_not_ready_addresses, Some(true));
    let service: Service = testing::object(&out, "postgres");
    let spec = service.spec.expect("spec");
    assert_eq!(spec.ports.expect("ports")[0].port, 5432);
    let policy: NetworkPolicy = testing::object(&out, "postgres");
    let spec = policy.spec.expect("spec");
    assert_eq!(
        spec.policy_types,
        Some(vec!["Ingress".to_owned(), "Egress".to_owned()])
    );
    assert!(spec.egress.is_none());
    let init: ConfigMap = testing::object(&out, "postgres-initdb");
    let script = &init.data.expect("data")["01-extensions.sql"];
    assert!(script.contains("CREATE EXTENSION IF NOT EXISTS vector;"));
}

#[test]
fn namespace_flows_into_objects_and_connection_values() {
    let out = testing::render::<Postgres>(&context("elsewhere"), json!({}))
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert!(
        out.objects()
            .iter()
            .all(|o| o.namespace.as_deref() == Some("elsewhere"))
    );
    let values: Vec<(&str, &str, Option<&str>)> = out
        .connection_values()
        .iter()
        .map(|c| (c.key.as_str(), c.value.as_str(), c.secret_input.as_deref()))
        .collect();
    assert_eq!(
        values,
        [
            (
                "DATABASE_HOST",
                "postgres.elsewhere.svc.cluster.local",
                None
            ),
            ("DATABASE_PORT", "5432", None),
            ("DATABASE_NAME", "mathison", None),
            ("DATABASE_USER", "mathison", None),
            (
                "DATABASE_URL",
                "postgresql://mathison:{secret}@postgres.elsewhere.svc.cluster.local:5432/mathison",
                Some("postgres-password"),
            ),
        ]
    );
}

#[test]
fn bad_values_are_refused_with_their_paths() {
    let paths =
        |config| testing::invalid_paths(testing::render::<Postgres>(&context("ns"), config));
    assert_eq!(
        paths(json!({"persistence": {"size": "10 GB"}})),
        ["persistence.size"]
    );
    assert_eq!(
        paths(json!({"persistence": {"size": "-1Gi"}})),
        ["persistence.size"]
    );
    assert_eq!(
        paths(json!({"resources": {"limits": {"cpu": "100m"}}})),
        ["resources.limits.cpu"]
    );
    assert_eq!(
        paths(json!({"persistence": {"sizee": "1Gi"}})),
        ["persistence.sizee"]
    );
    assert_eq!(paths(json!({"unknown": true})), ["unknown"]);
    assert_eq!(
        paths(json!({"extensions": ["vector", "drop table"]})),
        ["extensions[1]"]
    );
    assert_eq!(paths(json!({"shmSize": "2Gi"})), ["shmSize"]);
    assert_eq!(paths(json!({"shmSize": "513Mi"})), ["shmSize"]);
    assert_eq!(
        paths(
            json!({"resources": {"limits": {"memory": "100Mi"}, "requests": {"memory": "100Mi"}}, "shmSize": "16Mi"})
        ),
        ["resources.limits.memory"]
    );
    assert_eq!(
        paths(json!({"startupTimeoutSeconds": 5})),
        ["startupTimeoutSeconds"]
    );
    assert_eq!(
        paths(json!({"parameters": {
            "Shared_Buffers": "1GB",
            "1work_mem": "4MB",
            "work-mem": "4MB",
            "port": 5433,
            "listen_addresses": "*",
            "unix_socket_directories": "/tmp",
            "data_directory": "/tmp",
            "hba_file": "/tmp/hba",
            "work_mem": "4MB\nport = 5433",
            "search_path": "'$user', public",
            "application_name": "a\\b",
            "cluster_name": "café",
            "shared_buffers": "256MB",
            "random_page_cost": 1.1,
        }})),
        [
            "parameters.1work_mem",
            "parameters.Shared_Buffers",
            "parameters.application_name",
            "parameters.cluster_name",
            "parameters.data_directory",
            "parameters.hba_file",
            "parameters.listen_addresses",
            "parameters.port",
            "parameters.search_path",
            "parameters.unix_socket_directories",
            "parameters.work-mem",
            "parameters.work_mem",
        ]
    );
    assert_eq!(
        paths(json!({"parameters": {"jit": ["off"]}})),
        ["parameters.jit"]
    );
    assert_eq!(paths(json!({"clientLabels": null})), ["clientLabels"]);
}

#[test]
fn schema_is_complete() {
    testing::assert_schema_complete::<Postgres>();
    let schema = testing::schema::<Postgres>();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    assert_eq!(
        schema["properties"]["persistence"]["properties"]["size"]["default"],
        "10Gi"
    );
    assert_eq!(
        schema["properties"]["resources"]["properties"]["limits"]["properties"]["cpu"]["default"],
        "1"
    );
    for option in ["guaranteedQoS", "parameters", "startupTimeoutSeconds"] {
        assert!(
            schema["properties"][option]["description"].is_string(),
            "{option}"
        );
    }
    assert!(
        schema["properties"]["parameters"]["description"]
            .as_str()
            .is_some_and(|d| d.contains("shared_buffers = L/4")),
        "the derivation is documented"
    );
    assert!(
        schema["properties"]["image"]["description"]
            .as_str()
            .is_some_and(|d| d.contains("@sha256:")),
        "how to pin a digest"
    );
}

#[test]
fn stops_fast_within_the_grace_period() {
    let pod = pod_spec(&render(json!({"terminationGracePeriodSeconds": 300})));
    assert_eq!(pod.termination_grace_period_seconds, Some(300));
    let pre_stop = pod.containers[0]
        .lifecycle
        .as_ref()
        .and_then(|l| l.pre_stop.as_ref())
        .and_then(|h| h.exec.as_ref())
        .and_then(|e| e.command.clone())
        .expect("a preStop exec hook");
    assert_eq!(
        pre_stop,
        ["sh", "-c", "pg_ctl stop -D \"$PGDATA\" -m fast -w -t 300"]
    );
    let default = statefulset(&render(json!({}))).spec.expect("spec");
    let default_pod = default.template.spec.expect("pod");
    assert_eq!(default_pod.termination_grace_period_seconds, Some(120));
}

#[test]
fn pod_options_reach_the_pod_and_a_budget_is_rendered_when_enabled() {
    let out = render(json!({
        "pod": {
            "priorityClassName": "database-critical",
            "nodeSelector": {"workload": "database"},
            "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "database", "effect": "NoSchedule"}],
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [
                    {"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["eu-west-1a"]}]}]}}},
            "labels": {"team": "data"},
            "annotations": {"backup.velero.io/backup-volumes": "data"},
            "imagePullSecrets": ["registry"],
        },
        "podDisruptionBudget": {"enabled": true, "maxUnavailable": 0},
        "extraEnv": {"TZ": "UTC"},
        "guaranteedQoS": true,
    }));
    let sts = statefulset(&out);
    let spec = sts.spec.expect("spec");
    let template = spec.template;
    let metadata = template.metadata.expect("metadata");
    assert_eq!(metadata.labels.expect("labels")["team"], "data");
    let annotations = metadata.annotations.expect("annotations");
    assert_eq!(annotations["backup.velero.io/backup-volumes"], "data");
    assert!(annotations.contains_key("checkov.io/skip1"));
    // Pod extras stay off the StatefulSet itself and its immutable selector.
    assert!(!sts.metadata.labels.expect("labels").contains_key("team"));
    assert!(
        !spec
            .selector
            .match_labels
            .expect("selector")
            .contains_key("team")
    );
    let pod = template.spec.expect("pod");
    assert_eq!(
        pod.priority_class_name.as_deref(),
        Some("database-critical")
    );
    assert_eq!(
        pod.node_selector.expect("nodeSelector")["workload"],
        "database"
    );
    assert_eq!(
        pod.tolerations.expect("tolerations")[0].value.as_deref(),
        Some("database")
    );
    assert!(pod.affinity.and_then(|a| a.node_affinity).is_some());
    assert_eq!(pod.image_pull_secrets.expect("secrets")[0].name, "registry");
    let env = pod.containers[0].env.clone().expect("env");
    assert_eq!(env.last().map(|e| e.name.as_str()), Some("TZ"));
    let budget: k8s_openapi::api::policy::v1::PodDisruptionBudget =
        testing::object(&out, "postgres");
    let budget = budget.spec.expect("spec");
    assert_eq!(
        budget.max_unavailable,
        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(0))
    );
    assert_eq!(
        budget.unhealthy_pod_eviction_policy.as_deref(),
        Some("AlwaysAllow")
    );
    assert!(
        !testing::object_list(&render(json!({})))
            .iter()
            .any(|(kind, _)| kind == "PodDisruptionBudget")
    );
}

#[test]
fn production_options_are_checked_with_their_paths() {
    let paths =
        |config| testing::invalid_paths(testing::render::<Postgres>(&context("ns"), config));
    assert_eq!(
        paths(json!({"pod": {"priorityClassName": "Critical!"}})),
        ["pod.priorityClassName"]
    );
    assert_eq!(
        paths(json!({"pod": {"labels": {"app.kubernetes.io/instance": "other"}}})),
        ["pod.labels.app.kubernetes.io/instance"]
    );
    assert_eq!(
        paths(json!({"pod": {"annotations": {"checkov.io/skip3": "none"}}})),
        ["pod.annotations.checkov.io/skip3"]
    );
    assert_eq!(
        paths(json!({"pod": {"affinity": {"nodeAfinity": {}}}})),
        ["pod.affinity.nodeAfinity"]
    );
    assert_eq!(
        paths(json!({"podDisruptionBudget": {"enabled": true, "maxUnavailable": 2}})),
        ["podDisruptionBudget.maxUnavailable"]
    );
    assert_eq!(
        paths(json!({"extraEnv": {"POSTGRES_HOST_AUTH_METHOD": "trust", "PGDATA": "/tmp"}})),
        ["extraEnv.PGDATA", "extraEnv.POSTGRES_HOST_AUTH_METHOD"]
    );
}

#[test]
fn service_type_and_probe_timing() {
    let out = render(json!({
        "service": {"type": "NodePort"},
        "probes": {"readiness": {"periodSeconds": 2, "timeoutSeconds": 1, "failureThreshold": 5}},
    }));
    let client: Service = testing::object(&out, "postgres");
    assert_eq!(
        client.spec.expect("spec").type_.as_deref(),
        Some("NodePort")
    );
    let pod = pod_spec(&out);
    let readiness = pod.containers[0]
        .readiness_probe
        .clone()
        .expect("readiness");
    assert_eq!(
        (
            readiness.period_seconds,
            readiness.timeout_seconds,
            readiness.failure_threshold
        ),
        (Some(2), Some(1), Some(5))
    );
    assert_eq!(
        probe_command(Some(&readiness)).join(" "),
        "pg_isready -U mathison -d mathison -h 127.0.0.1 -p 5432"
    );
}

#[test]
fn pg_hba_rules_go_between_the_socket_and_the_password_catch_all() {
    let out = render(json!({"pgHba": [
        {"type": "host", "database": "postgres", "user": "all", "address": "0.0.0.0/0", "method": "reject"},
        {"type": "hostssl", "database": "mathison", "user": "+readers,mathison", "address": "10.0.0.0/8", "method": "scram-sha-256"},
        {"type": "local", "database": "all", "user": "all", "method": "peer"},
    ]}));
    let cm: ConfigMap = testing::object(&out, "postgres-hba");
    assert_eq!(
        cm.data.expect("data")["pg_hba.conf"],
        "# Rendered by the mathison-host postgres plugin; first match wins.\n\
         # The entrypoint and the init scripts connect over the socket inside the container.\n\
         local all all trust\n\
         # pgHba\n\
         host postgres all 0.0.0.0/0 reject\n\
         hostssl mathison +readers,mathison 10.0.0.0/8 scram-sha-256\n\
         local all all peer\n\
         # Everyone else: a password.\n\
         host all all all scram-sha-256\n"
    );
    assert!(server_settings(&out).contains(&(
        "hba_file".to_owned(),
        "/etc/postgres-hba/pg_hba.conf".to_owned()
    )));
    let pod = pod_spec(&out);
    for c in pod
        .containers
        .iter()
        .chain(pod.init_containers.iter().flatten())
    {
        let mounts = c.volume_mounts.clone().expect("mounts");
        assert!(
            mounts.iter().any(|m| m.mount_path == "/etc/postgres-hba"),
            "{}",
            c.name
        );
    }
    // Without rules: the image's file, no ConfigMap, no mount.
    let plain = render(json!({}));
    assert!(
        !testing::object_list(&plain)
            .iter()
            .any(|(_, n)| n == "postgres-hba")
    );
    assert!(server_settings(&plain).iter().all(|(n, _)| n != "hba_file"));
}

#[test]
fn pg_hba_rules_are_checked_field_by_field() {
    let paths =
        |config| testing::invalid_paths(testing::render::<Postgres>(&context("ns"), config));
    assert_eq!(
        paths(json!({"pgHba": [
            {"type": "host", "database": "all", "user": "all", "address": "0.0.0.0/0", "method": "trust"},
            {"type": "host", "database": "all", "user": "all", "method": "md5"},
            {"type": "local", "database": "all", "user": "all", "address": "10.0.0.0/8", "method": "trust"},
            {"type": "host", "database": "a b", "user": "\"x\"", "address": "10.0.0.0/40", "method": "reject"},
        ]})),
        [
            "pgHba[0].method",
            "pgHba[1].address",
            "pgHba[2].address",
            "pgHba[3].database",
            "pgHba[3].user",
            "pgHba[3].address",
        ]
    );
    assert_eq!(
        paths(
            json!({"pgHba": [{"type": "host", "database": "all", "user": "all", "address": "all", "method": "sspi"}]})
        ),
        ["pgHba[0].method"]
    );
    assert_eq!(
        paths(json!({"parameters": {"hba_file": "/tmp/x"}})),
        ["parameters.hba_file"]
    );
}

// --- metrics ----------------------------------------------------------------------------------

fn to_json(value: impl serde::Serialize) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or_else(|e| panic!("serializes: {e}"))
}

fn with_metrics(extra: serde_json::Value) -> mathison_plugin_sdk::Output {
    let mut config = json!({ "metrics": { "enabled": true } });
    if let (Some(base), serde_json::Value::Object(extra)) = (config.as_object_mut(), extra) {
        base.extend(extra);
    }
    render(config)
}

/// The pod's containers by name, as JSON.
fn containers(out: &mathison_plugin_sdk::Output) -> serde_json::Value {
    to_json(statefulset(out))["spec"]["template"]["spec"]["containers"].clone()
}

fn service_monitors(out: &mathison_plugin_sdk::Output) -> Vec<serde_json::Value> {
    out.objects()
        .iter()
        .filter(|o| o.kind == "ServiceMonitor")
        .map(|o| serde_json::from_str(&o.body).unwrap_or_else(|e| panic!("{e}")))
        .collect()
}

#[test]
fn metrics_are_off_by_default() {
    let out = render(json!({ "metrics": { "serviceMonitor": { "enabled": true } } }));
    assert_eq!(containers(&out).as_array().map(Vec::len), Some(1));
    let service = to_json(testing::object::<Service>(&out, "postgres"));
    assert_eq!(service["spec"]["ports"].as_array().map(Vec::len), Some(1));
    let policy = to_json(testing::object::<NetworkPolicy>(&out, "postgres"));
    assert_eq!(policy["spec"]["ingress"].as_array().map(Vec::len), Some(1));
    assert!(service_monitors(&out).is_empty());
}

#[test]
fn metrics_sidecar_reads_the_password_file_over_loopback() {
    let out = with_metrics(json!({}));
    let containers = containers(&out);
    let (server, exporter) = (&containers[0], &containers[1]);
    assert_eq!(exporter["name"], "metrics");
    assert_eq!(
        exporter["image"],
        "quay.io/prometheuscommunity/postgres-exporter:v0.20.1"
    );
    assert_eq!(exporter.get("command"), None, "the image's entrypoint");
    assert_eq!(exporter["args"], json!(["--web.listen-address=:9187"]));
    assert_eq!(
        exporter["env"],
        json!([
            { "name": "DATA_SOURCE_URI", "value": "127.0.0.1:5432/mathison?sslmode=disable" },
            { "name": "DATA_SOURCE_USER", "value": "mathison" },
            { "name": "DATA_SOURCE_PASS_FILE", "value": "/etc/postgres-secret/password" },
        ])
    );
    // The same file PostgreSQL's entrypoint reads, from the same volume, read-only.
    let password_file = server["env"]
        .as_array()
        .and_then(|env| env.iter().find(|e| e["name"] == "POSTGRES_PASSWORD_FILE"))
        .map(|e| e["value"].clone());
    assert_eq!(password_file, Some(json!("/etc/postgres-secret/password")));
    assert_eq!(
        exporter["volumeMounts"],
        json!([{ "name": "password", "mountPath": "/etc/postgres-secret", "readOnly": true }])
    );
    assert_eq!(
        exporter["ports"],
        json!([{ "name": "metrics", "containerPort": 9187, "protocol": "TCP" }])
    );
    for probe in ["livenessProbe", "readinessProbe"] {
        assert_eq!(
            exporter[probe]["httpGet"],
            json!({ "path": "/", "port": "metrics" }),
            "{probe}"
        );
    }
    assert_eq!(
        exporter["securityContext"], server["securityContext"],
        "hardened as PostgreSQL"
    );
    assert_eq!(
        exporter["resources"],
        json!({
            "requests": { "cpu": "10m", "memory": "32Mi" },
            "limits": { "cpu": "100m", "memory": "64Mi" },
        })
    );
}

#[test]
fn metrics_sidecar_follows_guaranteed_qos() {
    let out = with_metrics(json!({ "guaranteedQoS": true }));
    let exporter = &containers(&out)[1];
    assert_eq!(
        exporter["resources"]["requests"],
        exporter["resources"]["limits"]
    );
}

#[test]
fn metrics_port_is_on_the_client_service_and_open_to_scrapers_only() {
    let out = with_metrics(json!({}));
    let service = to_json(testing::object::<Service>(&out, "postgres"));
    assert_eq!(
        service["spec"]["ports"][1],
        json!({ "name": "metrics", "port": 9187, "protocol": "TCP", "targetPort": "metrics" })
    );
    let headless = to_json(testing::object::<Service>(&out, "postgres-headless"));
    assert_eq!(headless["spec"]["ports"].as_array().map(Vec::len), Some(1));
    let policy = to_json(testing::object::<NetworkPolicy>(&out, "postgres"));
    let default_policy = to_json(testing::object::<NetworkPolicy>(
        &render(json!({})),
        "postgres",
    ));
    let ingress = &policy["spec"]["ingress"];
    assert_eq!(
        ingress[0], default_policy["spec"]["ingress"][0],
        "5432 is for clients, as without metrics"
    );
    assert_eq!(
        ingress[1],
        json!({
            "from": [{
                "namespaceSelector": {},
                "podSelector": { "matchLabels": { "app.kubernetes.io/name": "prometheus" } },
            }],
            "ports": [{ "port": 9187, "protocol": "TCP" }],
        })
    );
    let out = with_metrics(json!({ "metrics": { "enabled": true, "scrapeFrom": {
        "namespaceLabels": { "kubernetes.io/metadata.name": "monitoring" },
        "podLabels": { "app.kubernetes.io/name": "vmagent" },
    } } }));
    let policy = to_json(testing::object::<NetworkPolicy>(&out, "postgres"));
    assert_eq!(
        policy["spec"]["ingress"][1]["from"],
        json!([{
            "namespaceSelector": { "matchLabels": { "kubernetes.io/metadata.name": "monitoring" } },
            "podSelector": { "matchLabels": { "app.kubernetes.io/name": "vmagent" } },
        }])
    );
}

#[test]
fn service_monitor_selects_the_service_by_its_selector_labels() {
    let out = render(json!({ "metrics": {
        "enabled": true,
        "serviceMonitor": { "enabled": true, "interval": "1m", "labels": { "release": "prom" } },
    } }));
    let monitors = service_monitors(&out);
    assert_eq!(monitors.len(), 1);
    let monitor = &monitors[0];
    assert_eq!(monitor["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(monitor["kind"], "ServiceMonitor");
    assert_eq!(monitor["metadata"]["name"], "postgres");
    assert_eq!(monitor["metadata"]["namespace"], "mathison-system");
    assert_eq!(monitor["metadata"]["labels"]["release"], "prom");
    assert_eq!(
        monitor["metadata"]["labels"]["app.kubernetes.io/component"],
        "database"
    );
    let service = to_json(testing::object::<Service>(&out, "postgres"));
    assert_eq!(
        monitor["spec"],
        json!({
            "selector": { "matchLabels": service["spec"]["selector"] },
            "endpoints": [{ "port": "metrics", "path": "/metrics", "interval": "1m" }],
        })
    );
    let object = out
        .objects()
        .iter()
        .find(|o| o.kind == "ServiceMonitor")
        .expect("envelope");
    assert_eq!(
        (object.api_version.as_str(), object.namespace.as_deref()),
        ("monitoring.coreos.com/v1", Some("mathison-system"))
    );
}

#[test]
fn bad_metrics_values_are_refused_with_their_paths() {
    let paths =
        |config| testing::invalid_paths(testing::render::<Postgres>(&context("ns"), config));
    assert_eq!(
        paths(json!({ "metrics": {
            "image": "postgres exporter",
            "resources": { "limits": { "memory": "16Mi" } },
            "scrapeFrom": { "namespaceLabels": { "bad key!": "x" }, "podLabels": { "app.kubernetes.io/name": "a b" } },
            "serviceMonitor": { "interval": "30", "labels": { "release": "a b" } },
        } })),
        [
            "metrics.image",
            "metrics.resources.limits.memory",
            "metrics.scrapeFrom.namespaceLabels.bad key!",
            "metrics.scrapeFrom.podLabels.app.kubernetes.io/name",
            "metrics.serviceMonitor.interval",
            "metrics.serviceMonitor.labels.release",
        ]
    );
}

fn external(extra: serde_json::Value) -> serde_json::Value {
    let mut config =
        json!({"external": {"host": "mathison.c9akciq32.eu-west-1.rds.amazonaws.com"}});
    if let (Some(config), serde_json::Value::Object(extra)) = (config.as_object_mut(), extra) {
        config.extend(extra);
    }
    config
}

fn connection_values(out: &mathison_plugin_sdk::Output) -> Vec<(&str, &str, Option<&str>)> {
    out.connection_values()
        .iter()
        .map(|c| (c.key.as_str(), c.value.as_str(), c.secret_input.as_deref()))
        .collect()
}

#[test]
fn external_mode_renders_only_an_external_name_alias() {
    let out = render(external(
        json!({"metrics": {"serviceMonitor": {"enabled": true}}}),
    ));
    assert_eq!(
        testing::object_list(&out),
        [("Service".to_owned(), "postgres".to_owned())]
    );
    let service: Service = testing::object(&out, "postgres");
    let labels = service.metadata.labels.expect("labels");
    assert_eq!(labels["app.kubernetes.io/name"], "postgres");
    assert!(
        !labels.contains_key("app.kubernetes.io/version"),
        "the image's tag says nothing of a managed server"
    );
    let spec = service.spec.expect("spec");
    assert_eq!(spec.type_.as_deref(), Some("ExternalName"));
    assert_eq!(
        spec.external_name.as_deref(),
        Some("mathison.c9akciq32.eu-west-1.rds.amazonaws.com")
    );
    assert_eq!(
        (spec.selector, spec.ports, spec.cluster_ip),
        (None, None, None)
    );
}

#[test]
fn external_connection_values_name_the_server_with_its_tls_mode() {
    let out = render(external(json!({
        "external": {"host": "db.example.com", "port": 6543},
        "database": "app",
        "user": "app_user",
    })));
    assert_eq!(
        connection_values(&out),
        [
            ("DATABASE_HOST", "db.example.com", None),
            ("DATABASE_PORT", "6543", None),
            ("DATABASE_NAME", "app", None),
            ("DATABASE_USER", "app_user", None),
            ("DATABASE_SSLMODE", "verify-full", None),
            (
                "DATABASE_URL",
                "postgresql://app_user:{secret}@db.example.com:6543/app?sslmode=verify-full",
                Some("postgres-password"),
            ),
        ]
    );
    let out = render(external(
        json!({"external": {"host": "db.example.com", "sslmode": "require"}}),
    ));
    let url = connection_values(&out)
        .into_iter()
        .find(|(key, _, _)| *key == "DATABASE_URL")
        .expect("DATABASE_URL");
    assert_eq!(
        url.1,
        "postgresql://mathison:{secret}@db.example.com:5432/mathison?sslmode=require"
    );
}

#[test]
fn external_options_are_checked_with_their_paths() {
    let paths =
        |config| testing::invalid_paths(testing::render::<Postgres>(&context("ns"), config));
    for host in [
        "10.0.0.5",
        "DB.example.com",
        "db.example.com.",
        "db example",
    ] {
        assert_eq!(
            paths(json!({"external": {"host": host}})),
            ["external.host"],
            "{host}"
        );
    }
    assert_eq!(
        paths(json!({"external": {"host": "db.example.com", "port": 0}})),
        ["external.port"]
    );
    assert_eq!(
        paths(json!({"external": {"host": "db.example.com", "port": 70000}})),
        ["external.port"]
    );
    assert_eq!(
        paths(json!({"external": {"host": "db.example.com", "sslmode": "verify_full"}})),
        ["external.sslmode"]
    );
    assert_eq!(
        paths(json!({"external": {"host": "db.example.com", "hostname": "x"}})),
        ["external.hostname"]
    );
    // The in-cluster server's opt-ins would render nothing: refused, not dropped.
    assert_eq!(
        paths(external(json!({
            "metrics": {"enabled": true},
            "podDisruptionBudget": {"enabled": true},
            "service": {"type": "LoadBalancer"},
        }))),
        [
            "metrics.enabled",
            "podDisruptionBudget.enabled",
            "service.type"
        ]
    );
    // In the cluster the same opt-ins are fine, and the unused external options are not checked.
    assert!(
        testing::render::<Postgres>(
            &context("ns"),
            json!({"external": {"port": 0}, "metrics": {"enabled": true}})
        )
        .is_ok()
    );
}

#[test]
fn external_mode_documents_the_migration() {
    let schema = testing::schema::<Postgres>();
    let external = &schema["properties"]["external"]["properties"];
    let host = external["host"]["description"].as_str().unwrap_or_default();
    for needle in [
        "ExternalName",
        "CNAME",
        "pg_dump",
        "pg_restore",
        "postgres-backup",
        "apply --prune",
        "persistentVolumeClaimRetentionPolicy is Retain",
        "data-postgres-0",
    ] {
        assert!(host.contains(needle), "external.host documents {needle}");
    }
    assert!(external["host"]["pattern"].is_string());
    assert_eq!(external["port"]["minimum"], 1);
    assert_eq!(external["sslmode"]["default"], "verify-full");
    assert_eq!(
        external["sslmode"]["enum"],
        json!([
            "disable",
            "allow",
            "prefer",
            "require",
            "verify-ca",
            "verify-full"
        ])
    );
}
