use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use mathison_plugin_sdk::testing::{self, context};
use serde_json::json;

use super::Postgres;

fn render(config: serde_json::Value) -> mathison_plugin_sdk::Output {
    testing::render::<Postgres>(&context("mathison-system"), config)
        .unwrap_or_else(|e| panic!("render failed: {e:?}"))
}

fn statefulset(out: &mathison_plugin_sdk::Output) -> StatefulSet {
    testing::object(out, "postgres")
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
    assert!(probe.period_seconds.unwrap_or(10) * probe.failure_threshold.unwrap_or(3) >= 60);
    let command = c
        .liveness_probe
        .as_ref()
        .and_then(|p| p.exec.as_ref())
        .and_then(|e| e.command.clone());
    assert_eq!(
        command.expect("exec").join(" "),
        "pg_isready -U mathison -d mathison -h 127.0.0.1 -p 5432"
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
}
