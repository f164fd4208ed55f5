use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use mathison_plugin_sdk::Output;
use mathison_plugin_sdk::testing::{self, context};
use serde_json::json;

use super::Redis;

fn render(config: serde_json::Value) -> Output {
    testing::render::<Redis>(&context("mathison-system"), config)
        .unwrap_or_else(|e| panic!("render failed: {e:?}"))
}

fn redis_conf(out: &Output) -> String {
    let cm: ConfigMap = testing::object(out, "redis-config");
    cm.data.expect("data")["redis.conf"].clone()
}

#[test]
fn default_objects() {
    let out = render(json!({}));
    let expected: Vec<(String, String)> = [
        ("ConfigMap", "redis-config"),
        ("NetworkPolicy", "redis"),
        ("Service", "redis"),
        ("Service", "redis-headless"),
        ("StatefulSet", "redis"),
    ]
    .iter()
    .map(|(k, n)| ((*k).to_owned(), (*n).to_owned()))
    .collect();
    assert_eq!(testing::object_list(&out), expected);
    assert!(
        out.objects()
            .iter()
            .all(|o| o.namespace.as_deref() == Some("mathison-system"))
    );
}

#[test]
fn default_statefulset_is_persistent_and_hardened() {
    let out = render(json!({}));
    let sts: StatefulSet = testing::object(&out, "redis");
    let spec = sts.spec.expect("spec");
    assert_eq!(spec.replicas, Some(1));
    assert_eq!(spec.service_name.as_deref(), Some("redis-headless"));
    assert_eq!(spec.volume_claim_templates.map(|c| c.len()), Some(1));
    let pod = spec.template.spec.expect("pod");
    let psc = pod.security_context.expect("pod security context");
    assert_eq!(
        (psc.run_as_user, psc.run_as_group, psc.fs_group),
        (Some(999), Some(1000), Some(1000))
    );
    let c = &pod.containers[0];
    assert_eq!(c.image.as_deref(), Some("redis:7-alpine"));
    assert_eq!(
        c.command,
        Some(vec![
            "redis-server".to_owned(),
            "/etc/redis/redis.conf".to_owned()
        ])
    );
    let probe = c
        .readiness_probe
        .as_ref()
        .and_then(|p| p.exec.as_ref())
        .and_then(|e| e.command.clone());
    assert_eq!(
        probe.expect("exec"),
        [
            "sh",
            "-c",
            "[ \"$(redis-cli -h 127.0.0.1 -p 6379 ping)\" = PONG ]"
        ]
    );
    let conf = redis_conf(&out);
    for line in [
        "maxmemory 128mb",
        "maxmemory-policy allkeys-lru",
        "appendonly yes",
        "appendfsync everysec",
        // With the AOF, no RDB snapshots: a failed one would stop writes.
        "save \"\"",
        "dir /data",
    ] {
        assert!(
            conf.lines().any(|l| l == line),
            "{line} missing from\n{conf}"
        );
    }
}

#[test]
fn without_persistence() {
    let out = render(json!({"persistence": {"enabled": false}}));
    let sts: StatefulSet = testing::object(&out, "redis");
    let spec = sts.spec.expect("spec");
    assert!(spec.volume_claim_templates.is_none());
    let volumes = spec.template.spec.expect("pod").volumes.expect("volumes");
    assert!(
        volumes
            .iter()
            .any(|v| v.name == "data" && v.empty_dir.is_some())
    );
    let conf = redis_conf(&out);
    for line in ["maxmemory 192mb", "appendonly no", "save \"\""] {
        assert!(
            conf.lines().any(|l| l == line),
            "{line} missing from\n{conf}"
        );
    }
}

#[test]
fn eviction_policy_is_an_option() {
    let out = render(json!({"maxmemoryPolicy": "noeviction"}));
    let conf = redis_conf(&out);
    assert!(
        conf.lines().any(|l| l == "maxmemory-policy noeviction"),
        "{conf}"
    );
    assert_eq!(conf.matches("maxmemory-policy").count(), 1, "{conf}");
}

#[test]
fn every_policy_is_written_as_redis_and_the_schema_name_it() {
    let schema = testing::schema::<Redis>();
    let names: Vec<String> = schema["properties"]["maxmemoryPolicy"]["enum"]
        .as_array()
        .expect("the policies as an enum")
        .iter()
        .map(|name| name.as_str().expect("a name").to_owned())
        .collect();
    assert_eq!(names.len(), 8, "Redis has eight policies: {names:?}");
    for name in names {
        let conf = redis_conf(&render(json!({"maxmemoryPolicy": name})));
        assert!(
            conf.lines()
                .any(|l| l == format!("maxmemory-policy {name}")),
            "{conf}"
        );
    }
}

#[test]
fn with_a_password() {
    let out = render(json!({"auth": {"existingSecret": "mathison-secrets"}}));
    let sts: StatefulSet = testing::object(&out, "redis");
    let pod = sts.spec.expect("spec").template.spec.expect("pod");
    let c = &pod.containers[0];
    let command = c.command.clone().expect("command").join(" ");
    assert!(
        command.contains("--requirepass \"$(cat /etc/redis-secret/password)\""),
        "{command}"
    );
    assert!(c.env.is_none(), "no secret in the environment");
    let probe = c
        .liveness_probe
        .as_ref()
        .and_then(|p| p.exec.as_ref())
        .and_then(|e| e.command.clone());
    let probe = probe.expect("exec").join(" ");
    assert!(
        probe.contains("REDISCLI_AUTH=") && !probe.contains(" -a "),
        "{probe}"
    );
    let url = &out.connection_values()[0];
    assert_eq!(
        url.value,
        "redis://:{secret}@redis.mathison-system.svc.cluster.local:6379"
    );
    assert_eq!(url.secret_input.as_deref(), Some("redis-password"));
}

#[test]
fn services_network_policy_and_namespace() {
    let out = testing::render::<Redis>(&context("elsewhere"), json!({}))
        .unwrap_or_else(|e| panic!("{e:?}"));
    let headless: Service = testing::object(&out, "redis-headless");
    assert_eq!(
        headless.spec.expect("spec").cluster_ip.as_deref(),
        Some("None")
    );
    let policy: NetworkPolicy = testing::object(&out, "redis");
    let spec = policy.spec.expect("spec");
    assert!(spec.egress.is_none());
    let url = &out.connection_values()[0];
    assert_eq!(
        (url.key.as_str(), url.value.as_str()),
        (
            "REDIS_URL",
            "redis://redis.elsewhere.svc.cluster.local:6379"
        )
    );
    assert!(url.secret_input.is_none());
}

#[test]
fn bad_values_are_refused_with_their_paths() {
    let paths = |config| testing::invalid_paths(testing::render::<Redis>(&context("ns"), config));
    assert_eq!(
        paths(json!({"persistence": {"size": "1 GB"}})),
        ["persistence.size"]
    );
    assert_eq!(
        paths(json!({"persistence": {"size": "0"}})),
        ["persistence.size"]
    );
    assert_eq!(
        paths(json!({"resources": {"limits": {"memory": "32Mi"}}})),
        ["resources.limits.memory"]
    );
    assert_eq!(
        paths(json!({"resources": {"limits": {"memory": "16Mi"}, "requests": {"memory": "16Mi"}}})),
        ["resources.limits.memory"]
    );
    assert_eq!(
        paths(json!({"auth": {"existingSecret": "Not A Name"}})),
        ["auth.existingSecret"]
    );
    assert_eq!(paths(json!({"auth": {"password": "x"}})), ["auth.password"]);
    assert_eq!(
        paths(json!({"maxmemoryPolicy": "allkeys-lru "})),
        ["maxmemoryPolicy"]
    );
    assert_eq!(
        paths(json!({"maxmemoryPolicy": "lru"})),
        ["maxmemoryPolicy"]
    );
}

#[test]
fn schema_is_complete() {
    testing::assert_schema_complete::<Redis>();
}

#[test]
fn extra_config_is_appended_after_the_plugins_lines() {
    let conf = redis_conf(&render(
        json!({"extraConfig": ["timeout 300", "  tcp-keepalive 60 "]}),
    ));
    assert!(
        conf.ends_with("save \"\"\n# extraConfig\ntimeout 300\ntcp-keepalive 60\n"),
        "{conf}"
    );
    assert!(!redis_conf(&render(json!({}))).contains("extraConfig"));
}

#[test]
fn extra_config_refuses_owned_directives_in_any_case_and_line_breaks() {
    let paths = |config| testing::invalid_paths(testing::render::<Redis>(&context("ns"), config));
    assert_eq!(
        paths(json!({"extraConfig": [
            "timeout 0", "MaxMemory 1gb", "requirepass x", "Rename-Command FLUSHALL \"\"",
            "include /etc/other.conf", "timeout 1\nrequirepass x", "", "\"port\" 1",
        ]})),
        [
            "extraConfig[1]",
            "extraConfig[2]",
            "extraConfig[3]",
            "extraConfig[4]",
            "extraConfig[5]",
            "extraConfig[6]",
            "extraConfig[7]",
        ]
    );
}

#[test]
fn guaranteed_qos_pod_options_and_budget() {
    let out = render(json!({
        "guaranteedQoS": true,
        "terminationGracePeriodSeconds": 30,
        "pod": {"priorityClassName": "cache", "tolerations": [{"operator": "Exists"}]},
        "podDisruptionBudget": {"enabled": true},
        "extraEnv": {"TZ": "UTC"},
    }));
    let sts: StatefulSet = testing::object(&out, "redis");
    let pod = sts.spec.expect("spec").template.spec.expect("pod");
    assert_eq!(pod.termination_grace_period_seconds, Some(30));
    assert_eq!(pod.priority_class_name.as_deref(), Some("cache"));
    let c = &pod.containers[0];
    let resources = c.resources.clone().expect("resources");
    assert_eq!(resources.requests, resources.limits);
    assert_eq!(c.env.clone().expect("env")[0].name, "TZ");
    let budget: k8s_openapi::api::policy::v1::PodDisruptionBudget = testing::object(&out, "redis");
    assert_eq!(
        budget.spec.expect("spec").max_unavailable,
        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(1))
    );
    let default: StatefulSet = testing::object(&render(json!({})), "redis");
    let default_pod = default.spec.expect("spec").template.spec.expect("pod");
    assert_eq!(default_pod.termination_grace_period_seconds, Some(60));
    assert!(
        default_pod.containers[0].lifecycle.is_none(),
        "SIGTERM already saves"
    );
    let paths = |config| testing::invalid_paths(testing::render::<Redis>(&context("ns"), config));
    assert_eq!(
        paths(json!({"extraEnv": {"REDISCLI_AUTH": "x"}, "pod": {"imagePullSecrets": ["A"]}})),
        ["pod.imagePullSecrets[0]", "extraEnv.REDISCLI_AUTH"]
    );
}

#[test]
fn service_type_annotations_and_probe_timing() {
    let out = render(json!({
        "service": {"type": "LoadBalancer", "annotations": {"networking.gke.io/load-balancer-type": "Internal"}},
        "probes": {"liveness": {"periodSeconds": 20, "timeoutSeconds": 3, "failureThreshold": 9}},
    }));
    let client: Service = testing::object(&out, "redis");
    assert_eq!(
        client.spec.expect("spec").type_.as_deref(),
        Some("LoadBalancer")
    );
    assert_eq!(
        client.metadata.annotations.expect("annotations")["networking.gke.io/load-balancer-type"],
        "Internal"
    );
    let headless: Service = testing::object(&out, "redis-headless");
    assert!(headless.metadata.annotations.is_none());
    assert_eq!(
        headless.spec.expect("spec").cluster_ip.as_deref(),
        Some("None")
    );
    let sts: StatefulSet = testing::object(&out, "redis");
    let c = &sts
        .spec
        .expect("spec")
        .template
        .spec
        .expect("pod")
        .containers[0];
    let liveness = c.liveness_probe.clone().expect("liveness");
    assert_eq!(
        (
            liveness.period_seconds,
            liveness.timeout_seconds,
            liveness.failure_threshold
        ),
        (Some(20), Some(3), Some(9))
    );
    assert!(liveness.exec.is_some(), "the command stays");
    let paths = |config| testing::invalid_paths(testing::render::<Redis>(&context("ns"), config));
    assert_eq!(
        paths(json!({"probes": {"readiness": {"failureThreshold": 0}}})),
        ["probes.readiness.failureThreshold"]
    );
    assert_eq!(
        paths(json!({"service": {"type": "ExternalName"}})),
        ["service.type"]
    );
}

// --- metrics ----------------------------------------------------------------------------------

fn to_json(value: impl serde::Serialize) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or_else(|e| panic!("serializes: {e}"))
}

fn containers(out: &Output) -> serde_json::Value {
    let sts: StatefulSet = testing::object(out, "redis");
    to_json(sts)["spec"]["template"]["spec"]["containers"].clone()
}

#[test]
fn metrics_are_off_by_default() {
    let out = render(json!({}));
    assert_eq!(containers(&out).as_array().map(Vec::len), Some(1));
    let service = to_json(testing::object::<Service>(&out, "redis"));
    assert_eq!(service["spec"]["ports"].as_array().map(Vec::len), Some(1));
}

#[test]
fn metrics_sidecar_without_a_password_runs_the_exporter_itself() {
    let out = render(json!({ "metrics": { "enabled": true } }));
    let containers = containers(&out);
    let (server, exporter) = (&containers[0], &containers[1]);
    assert_eq!(exporter["name"], "metrics");
    assert_eq!(exporter["image"], "oliver006/redis_exporter:v1.88.0-alpine");
    assert_eq!(exporter.get("command"), None, "the image's entrypoint");
    assert_eq!(exporter["args"], json!(["--web.listen-address=:9121"]));
    assert_eq!(
        exporter["env"],
        json!([{ "name": "REDIS_ADDR", "value": "redis://127.0.0.1:6379" }])
    );
    assert_eq!(exporter.get("volumeMounts"), None);
    assert_eq!(
        exporter["ports"],
        json!([{ "name": "metrics", "containerPort": 9121, "protocol": "TCP" }])
    );
    for probe in ["livenessProbe", "readinessProbe"] {
        assert_eq!(
            exporter[probe]["httpGet"],
            json!({ "path": "/", "port": "metrics" })
        );
    }
    assert_eq!(exporter["securityContext"], server["securityContext"]);
    assert_ne!(
        exporter["resources"]["requests"], exporter["resources"]["limits"],
        "Burstable like Redis' defaults"
    );
    let service = to_json(testing::object::<Service>(&out, "redis"));
    assert_eq!(
        service["spec"]["ports"][1],
        json!({ "name": "metrics", "port": 9121, "protocol": "TCP", "targetPort": "metrics" })
    );
    let policy = to_json(testing::object::<NetworkPolicy>(&out, "redis"));
    let ingress = &policy["spec"]["ingress"];
    assert_eq!(
        ingress[0]["ports"],
        json!([{ "port": 6379, "protocol": "TCP" }])
    );
    assert_eq!(
        ingress[1],
        json!({
            "from": [{
                "namespaceSelector": {},
                "podSelector": { "matchLabels": { "app.kubernetes.io/name": "prometheus" } },
            }],
            "ports": [{ "port": 9121, "protocol": "TCP" }],
        })
    );
}

#[test]
fn metrics_sidecar_reads_the_password_from_the_mounted_secret() {
    let out = render(json!({
        "auth": { "existingSecret": "mathison-secrets" },
        "metrics": { "enabled": true },
    }));
    let exporter = &containers(&out)[1];
    let command = exporter["command"].as_array().cloned().unwrap_or_default();
    assert_eq!(command[..2], [json!("sh"), json!("-c")]);
    let script = command[2].as_str().unwrap_or_default();
    assert!(
        script.contains("REDIS_PASSWORD=\"$(cat /etc/redis-secret/password)\""),
        "{script}"
    );
    assert!(script.ends_with("exec /redis_exporter \"$@\""), "{script}");
    assert_eq!(exporter["args"], json!(["--web.listen-address=:9121"]));
    assert!(
        exporter["env"]
            .as_array()
            .is_some_and(|env| env.iter().all(|e| e.get("valueFrom").is_none())),
        "no secret in the pod spec's environment"
    );
    assert_eq!(
        exporter["volumeMounts"],
        json!([{ "name": "password", "mountPath": "/etc/redis-secret", "readOnly": true }])
    );
}

#[test]
fn metrics_sidecar_keeps_a_guaranteed_pod_guaranteed() {
    let out = render(json!({
        "resources": { "requests": { "cpu": "250m", "memory": "256Mi" } },
        "metrics": { "enabled": true },
    }));
    let exporter = &containers(&out)[1];
    assert_eq!(
        exporter["resources"]["requests"],
        exporter["resources"]["limits"]
    );
}

#[test]
fn service_monitor_only_with_metrics() {
    let monitors = |config| {
        render(config)
            .objects()
            .iter()
            .filter(|o| o.kind == "ServiceMonitor")
            .map(|o| serde_json::from_str(&o.body).unwrap_or_else(|e| panic!("{e}")))
            .collect::<Vec<serde_json::Value>>()
    };
    assert!(monitors(json!({ "metrics": { "serviceMonitor": { "enabled": true } } })).is_empty());
    let found =
        monitors(json!({ "metrics": { "enabled": true, "serviceMonitor": { "enabled": true } } }));
    assert_eq!(found.len(), 1);
    assert_eq!(
        found[0]["spec"],
        json!({
            "selector": { "matchLabels": {
                "app.kubernetes.io/instance": "mathison",
                "app.kubernetes.io/name": "redis",
            } },
            "endpoints": [{ "port": "metrics", "path": "/metrics", "interval": "30s" }],
        })
    );
}

const MANAGED: &str = "master.mathison.abc123.euw1.cache.amazonaws.com";

/// REDIS_URL and its secret input, rendered with `external` as the external options.
fn external_url(external: serde_json::Value, password: bool) -> (String, Option<String>) {
    let mut external = external;
    external["host"] = json!(MANAGED);
    let mut config = json!({"external": external});
    if password {
        config["auth"] = json!({"existingSecret": "managed-redis"});
    }
    let out = render(config);
    let [url] = out.connection_values() else {
        panic!("one connection value: {:?}", out.connection_values());
    };
    assert_eq!(url.key, "REDIS_URL");
    (url.value.clone(), url.secret_input.clone())
}

#[test]
fn external_mode_renders_only_an_external_name_alias() {
    let out = render(json!({"external": {"host": MANAGED}, "persistence": {"enabled": true}}));
    assert_eq!(
        testing::object_list(&out),
        [("Service".to_owned(), "redis".to_owned())]
    );
    let service: Service = testing::object(&out, "redis");
    let labels = service.metadata.labels.expect("labels");
    assert!(!labels.contains_key("app.kubernetes.io/version"));
    let spec = service.spec.expect("spec");
    assert_eq!(spec.type_.as_deref(), Some("ExternalName"));
    assert_eq!(spec.external_name.as_deref(), Some(MANAGED));
    assert_eq!((spec.selector, spec.ports), (None, None));
}

#[test]
fn external_url_names_the_server_with_tls_user_password_and_db() {
    let url = |external, password| external_url(external, password);
    assert_eq!(
        url(json!({}), false),
        (format!("rediss://{MANAGED}:6379"), None)
    );
    assert_eq!(
        url(json!({"tls": false, "port": 6380, "db": 2}), false),
        (format!("redis://{MANAGED}:6380/2"), None)
    );
    assert_eq!(
        url(json!({"username": "mathison"}), false),
        (format!("rediss://mathison@{MANAGED}:6379"), None)
    );
    // The password reaches the URL as in the cluster: the host fills in the secret input.
    assert_eq!(
        url(json!({}), true),
        (
            format!("rediss://:{{secret}}@{MANAGED}:6379"),
            Some("redis-password".to_owned())
        )
    );
    assert_eq!(
        url(json!({"username": "mathison", "db": 1}), true),
        (
            format!("rediss://mathison:{{secret}}@{MANAGED}:6379/1"),
            Some("redis-password".to_owned())
        )
    );
}

#[test]
fn external_options_are_checked_with_their_paths() {
    let paths = |config| testing::invalid_paths(testing::render::<Redis>(&context("ns"), config));
    for host in ["10.0.0.5", "Cache.example.com", "cache.example.com.", ""] {
        assert_eq!(
            paths(json!({"external": {"host": host}})),
            ["external.host"],
            "{host}"
        );
    }
    assert_eq!(
        paths(json!({"external": {"host": MANAGED, "port": 0, "username": "a:b@c"}})),
        ["external.port", "external.username"]
    );
    assert_eq!(
        paths(json!({"external": {"host": MANAGED, "db": -1}})),
        ["external.db"]
    );
    assert_eq!(
        paths(json!({
            "external": {"host": MANAGED},
            "metrics": {"enabled": true},
            "podDisruptionBudget": {"enabled": true},
            "service": {"type": "NodePort"},
        })),
        [
            "metrics.enabled",
            "podDisruptionBudget.enabled",
            "service.type"
        ]
    );
}

#[test]
fn external_mode_is_documented() {
    let schema = testing::schema::<Redis>();
    let external = &schema["properties"]["external"]["properties"];
    let host = external["host"]["description"].as_str().unwrap_or_default();
    for needle in [
        "ExternalName",
        "CNAME",
        "rediss://",
        "redis-password",
        "data-redis-0",
    ] {
        assert!(host.contains(needle), "external.host documents {needle}");
    }
    assert!(external["host"]["pattern"].is_string());
    assert_eq!(external["port"]["minimum"], 1);
    assert_eq!(external["tls"]["default"], true);
}
