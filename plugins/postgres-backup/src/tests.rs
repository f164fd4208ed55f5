use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::PodSpec;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use mathison_plugin_sdk::testing::{self, context};
use serde_json::{Value, json};

use super::PostgresBackup;

fn render(config: Value) -> mathison_plugin_sdk::Output {
    testing::render::<PostgresBackup>(&context("mathison-system"), config)
        .unwrap_or_else(|e| panic!("render failed: {e:?}"))
}

fn cron_pod(out: &mathison_plugin_sdk::Output) -> PodSpec {
    let cron: CronJob = testing::object(out, "postgres-backup");
    cron.spec
        .expect("spec")
        .job_template
        .spec
        .expect("job")
        .template
        .spec
        .expect("pod")
}

fn to_json(value: impl serde::Serialize) -> Value {
    serde_json::to_value(value).unwrap_or_else(|e| panic!("serializes: {e}"))
}

#[test]
fn schema_is_complete() {
    testing::assert_schema_complete::<PostgresBackup>();
}

#[test]
fn default_objects_and_no_secret() {
    let out = render(json!({}));
    let list = testing::object_list(&out);
    let expected: Vec<(String, String)> = [
        ("CronJob", "postgres-backup"),
        ("NetworkPolicy", "postgres-backup"),
    ]
    .iter()
    .map(|(k, n)| ((*k).to_owned(), (*n).to_owned()))
    .collect();
    assert_eq!(list, expected);
    let cron = to_json(testing::object::<CronJob>(&out, "postgres-backup"));
    assert_eq!(cron["spec"]["concurrencyPolicy"], "Forbid");
    assert_eq!(cron["spec"]["suspend"], false);
    assert_eq!(cron["spec"]["jobTemplate"]["spec"]["backoffLimit"], 2);
}

#[test]
fn pod_is_hardened_and_a_postgres_client() {
    let out = render(json!({}));
    let cron: CronJob = testing::object(&out, "postgres-backup");
    let template = cron
        .spec
        .expect("spec")
        .job_template
        .spec
        .expect("job")
        .template;
    let labels = template.metadata.expect("meta").labels.expect("labels");
    assert_eq!(labels["mathison.dev/postgres-client"], "true");
    let pod = template.spec.expect("pod");
    assert_eq!(pod.automount_service_account_token, Some(false));
    assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
    let security = pod.security_context.expect("pod security");
    assert_eq!(security.run_as_non_root, Some(true));
    let containers = pod
        .init_containers
        .expect("init")
        .into_iter()
        .chain(pod.containers);
    for container in containers {
        let security = to_json(container.security_context.expect("security"));
        assert_eq!(security["readOnlyRootFilesystem"], true);
        assert_eq!(security["capabilities"]["drop"], json!(["ALL"]));
        assert!(container.resources.is_some());
    }
}

/// A hostile value changes the environment, never the scripts.
#[test]
fn values_reach_the_scripts_only_through_the_environment() {
    let plain = cron_pod(&render(json!({})));
    let odd = cron_pod(&render(json!({
        "database": {"host": "db.example", "name": "other", "user": "dumper"},
        "s3": {"bucket": "b-1", "prefix": "a/b", "endpoint": "http://minio:9000"},
        "retention": {"keepLast": 3, "keepDays": 30},
    })));
    let commands = |pod: &PodSpec| -> Vec<Option<Vec<String>>> {
        pod.init_containers
            .iter()
            .flatten()
            .chain(&pod.containers)
            .map(|c| c.command.clone())
            .collect()
    };
    assert_eq!(commands(&plain), commands(&odd));
    let env = to_json(&odd.containers[0].env);
    let find = |name: &str| {
        env.as_array()
            .into_iter()
            .flatten()
            .find(|e| e["name"] == name)
            .map(|e| e["value"].clone())
    };
    assert_eq!(find("BUCKET"), Some(json!("b-1")));
    assert_eq!(find("KEEP_DAYS"), Some(json!("30")));
    assert_eq!(
        find("RCLONE_CONFIG_BACKUP_ENDPOINT"),
        Some(json!("http://minio:9000"))
    );
}

#[test]
fn network_policy_opens_dns_postgres_and_the_endpoint_port() {
    let ports = |config: Value| {
        let policy = to_json(testing::object::<NetworkPolicy>(
            &render(config),
            "postgres-backup",
        ));
        policy["spec"]["egress"].clone()
    };
    let default = ports(json!({}));
    assert_eq!(default[1]["ports"][0]["port"], 5432);
    assert_eq!(
        default[1]["to"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/name"],
        "postgres"
    );
    assert_eq!(
        default[2]["ports"],
        json!([{"port": 443, "protocol": "TCP"}])
    );
    let custom = ports(json!({
        "database": {"host": "db.example", "port": 6432},
        "s3": {"endpoint": "http://minio:9000/"},
    }));
    assert_eq!(custom[1].get("to"), None);
    assert_eq!(custom[1]["ports"][0]["port"], 6432);
    assert_eq!(custom[2]["ports"][0]["port"], 9000);
    assert_eq!(
        ports(json!({"s3": {"endpoint": "http://minio"}}))[2]["ports"][0]["port"],
        80
    );
}

#[test]
fn restore_renders_a_job_and_suspends_the_backups() {
    let out = render(json!({"restore": {"from": "20260102T030405Z-mathison.dump"}}));
    let job: Job = testing::object(&out, "postgres-restore-20260102t030405z");
    let pod = job.spec.expect("spec").template.spec.expect("pod");
    let script = pod.containers[0]
        .command
        .clone()
        .expect("command")
        .join(" ");
    assert!(script.contains("pg_restore --clean --if-exists --no-owner"));
    let cron = to_json(testing::object::<CronJob>(&out, "postgres-backup"));
    assert_eq!(cron["spec"]["suspend"], true);
}

#[test]
fn bad_values_are_refused_with_their_paths() {
    let result = testing::render::<PostgresBackup>(
        &context("ns"),
        json!({
            "s3": {"endpoint": "https://s3.example:99999", "existingSecret": "Bad"},
            "database": {"host": "no such host"},
        }),
    );
    assert_eq!(
        testing::invalid_paths(result),
        ["database.host", "s3.existingSecret", "s3.endpoint"]
    );
}
