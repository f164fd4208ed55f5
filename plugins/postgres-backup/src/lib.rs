//! The `postgres-backup` plugin: a CronJob that dumps Mathison's PostgreSQL database with
//! `pg_dump` and uploads it to an S3-compatible bucket, keeping a bounded number of backups,
//! and, on request, a one-off Job that restores one of them.
//!
//! Option values reach the containers as environment variables only; the scripts are constants,
//! so no value is ever read as shell code.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{CronJob, CronJobSpec, Job, JobSpec, JobTemplateSpec};
use k8s_openapi::api::core::v1::{Container, EnvVar, PodSpec, PodTemplateSpec, Volume};
use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyPeer, NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use mathison_plugin_sdk::config::Resources;
use mathison_plugin_sdk::k8s;
use mathison_plugin_sdk::validate::{self, Problems};
use mathison_plugin_sdk::{Context, KindRef, Output, Plugin, Quantity, RenderError, labels};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

const NAME: &str = "postgres-backup";
/// The Service the postgres plugin renders; its pods are the only PostgreSQL the default
/// egress rule admits.
const POSTGRES_SERVICE: &str = "postgres";
/// A high uid (checkov CKV_K8S_40): pg_dump, pg_restore and rclone run as any user.
const UID: i64 = 10001;
const BACKUP_DIR: &str = "/backup";
const PASSWORD_DIR: &str = "/etc/postgres-secret";
const S3_DIR: &str = "/etc/backup-s3";

/// pg_dump in the custom format (what pg_restore reads, table by table), compressed, named by
/// its UTC start time so that names sort by time. libpq reads PGHOST, PGPORT, PGDATABASE and
/// PGUSER from the environment; the password is read from the mounted Secret here, so that it
/// is in no manifest and no ConfigMap.
const DUMP_SCRIPT: &str = r#"set -eu
PGPASSWORD="$(cat /etc/postgres-secret/password)"
export PGPASSWORD
name="$(date -u +%Y%m%dT%H%M%SZ)-$PGDATABASE.dump"
pg_dump -Fc -Z "$COMPRESSION_LEVEL" --no-password --file="/backup/$name"
echo "dumped $PGDATABASE into $name"
"#;

/// rclone's remote `backup` is configured by RCLONE_CONFIG_BACKUP_* variables; the keys come
/// from the mounted user-owned Secret.
const S3_CREDENTIALS: &str = r#"set -eu
RCLONE_CONFIG_BACKUP_ACCESS_KEY_ID="$(cat /etc/backup-s3/access-key-id)"
RCLONE_CONFIG_BACKUP_SECRET_ACCESS_KEY="$(cat /etc/backup-s3/secret-access-key)"
export RCLONE_CONFIG_BACKUP_ACCESS_KEY_ID RCLONE_CONFIG_BACKUP_SECRET_ACCESS_KEY
folder="backup:$BUCKET/${PREFIX:+$PREFIX/}"
"#;

/// Uploads the dump, then applies retention to the backups in the folder (names that start with
/// a timestamp; anything else is left alone): newest first, the newest always kept, then each
/// one past KEEP_LAST or older than KEEP_DAYS deleted. Retention runs only after a successful
/// upload (`set -e`), so a failing job never deletes anything.
const UPLOAD_SCRIPT: &str = r#"set -- /backup/*.dump
[ "$#" -eq 1 ] && [ -f "$1" ] || { echo "expected one dump in /backup, found: $*" >&2; exit 1; }
rclone copyto "$1" "$folder${1##*/}"
echo "uploaded ${1##*/} to $BUCKET"
rclone lsf --files-only "$folder" > /tmp/listing
grep -E '^[0-9]{8}T[0-9]{6}Z-.+\.dump$' /tmp/listing | sort -r > /tmp/backups || true
cutoff=""
if [ -n "$KEEP_DAYS" ]; then
  cutoff="$(date -u -d "@$(( $(date +%s) - KEEP_DAYS * 86400 ))" +%Y%m%dT%H%M%SZ)"
fi
awk -v keep="${KEEP_LAST:-0}" -v cutoff="$cutoff" \
  'NR > 1 && ((keep > 0 && NR > keep) || (cutoff != "" && $0 < cutoff))' /tmp/backups > /tmp/expired
while read -r old; do
  rclone deletefile "$folder$old"
  echo "deleted $old"
done < /tmp/expired
"#;

const DOWNLOAD_SCRIPT: &str = r#"rclone copyto "$folder$RESTORE_FROM" /backup/restore.dump
echo "downloaded $RESTORE_FROM from $BUCKET"
"#;

/// One transaction: a restore that fails leaves the database as it was.
const RESTORE_SCRIPT: &str = r#"set -eu
PGPASSWORD="$(cat /etc/postgres-secret/password)"
export PGPASSWORD
pg_restore --clean --if-exists --no-owner --single-transaction --exit-on-error --no-password \
  --dbname="$PGDATABASE" /backup/restore.dump
echo "restored $RESTORE_FROM into $PGDATABASE"
"#;

/// The plugin's configuration.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Config {
    /// Image with `pg_dump` and `pg_restore`: they must be of the server's major version (16)
    /// or newer. Default: the postgres plugin's image, which the node has already pulled.
    pub image: String,
    /// Image of the S3 client, rclone: a single static binary in a small image, configured
    /// entirely by environment variables, speaking S3 to AWS and to S3-compatible stores
    /// (MinIO, Ceph, R2...) alike. Pinned by tag; pin its digest too for reproducible
    /// deployments.
    pub client_image: String,
    /// When backups run: a five-field cron expression in the controller's time zone (UTC unless
    /// `timeZone` says otherwise), or a macro such as `@daily`.
    #[schemars(regex(
        pattern = r"^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|[0-9A-Za-z*/,?-]+( [0-9A-Za-z*/,?-]+){4})$"
    ))]
    pub schedule: String,
    /// IANA time zone of `schedule` (`Europe/Paris`); null for the controller's (UTC). The
    /// backups' names are UTC whatever this is.
    #[schemars(regex(pattern = r"^[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*$"))]
    pub time_zone: Option<String>,
    /// gzip level of the dump (`pg_dump -Fc -Z`), 0 (none) to 9.
    #[schemars(range(min = 0, max = 9))]
    pub compression_level: u8,
    /// The database to dump and restore.
    pub database: Database,
    /// The bucket and its credentials.
    pub s3: S3,
    /// Which backups to keep, applied by the job after each successful upload.
    pub retention: Retention,
    /// Limits of each run.
    pub job: JobOptions,
    /// CPU and memory of each container.
    pub resources: Resources,
    /// Size limit of the scratch volume that holds the dump between pg_dump and the upload.
    pub scratch_size: Quantity,
    /// Labels the job's pods carry so that PostgreSQL's NetworkPolicy admits them: the
    /// postgres plugin's `clientLabels`.
    pub client_labels: BTreeMap<String, String>,
    /// A restore (see its `from`).
    pub restore: Restore,
}

/// The database; the defaults are the postgres plugin's.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Database {
    /// Host name of the server. `postgres`, the postgres plugin's Service in this namespace, is
    /// the only one the NetworkPolicy lets the job reach on its pods; for any other the egress
    /// rule admits the port everywhere. With the postgres plugin's `external` mode, give the
    /// managed server's name: `postgres` is then only a DNS alias to it, outside those pods.
    pub host: String,
    /// Port of the server.
    #[schemars(range(min = 1, max = 65535))]
    pub port: u16,
    /// The database (an unquoted SQL identifier).
    #[schemars(regex(pattern = r"^[a-z_][a-z0-9_]{0,62}$"))]
    pub name: String,
    /// The user: it must be able to read every table, and for a restore to create them and the
    /// extensions (the postgres plugin's user is the server's superuser).
    #[schemars(regex(pattern = r"^[a-z_][a-z0-9_]{0,62}$"))]
    pub user: String,
    /// The Secret holding the user's password; mounted as a file, never put in the environment.
    pub existing_secret: String,
    /// The password's key in that Secret.
    pub password_key: String,
}

/// An S3-compatible bucket.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct S3 {
    /// The S3 API's URL: `https://host` or `https://host:port` (`http://` only for a store inside
    /// the cluster). The NetworkPolicy opens its port (443 or 80 unless given) to every address.
    #[schemars(regex(
        pattern = r"^https?://[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,5})?/?$"
    ))]
    pub endpoint: String,
    /// The bucket's region (what the store expects in signatures; `us-east-1` for most
    /// S3-compatible stores).
    #[schemars(regex(pattern = r"^[a-z0-9-]{1,63}$"))]
    pub region: String,
    /// The bucket, which must exist: 3 to 63 lower-case letters, digits, '.' and '-'.
    #[schemars(regex(pattern = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"))]
    pub bucket: String,
    /// The folder of the backups in the bucket (`mathison/postgres`), without leading or
    /// trailing `/`; empty for the bucket's root. Retention deletes only backups it names
    /// (`<YYYYMMDDTHHMMSSZ>-<database>.dump`) in this folder.
    #[schemars(regex(pattern = r"^([A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*)?$"))]
    pub prefix: String,
    /// The user-owned Secret with the access keys, mounted as files; the plugin never renders
    /// it (create it yourself; see the plugin's README).
    pub existing_secret: String,
    /// The key of the access key id in that Secret.
    pub access_key_id_key: String,
    /// The key of the secret access key in that Secret.
    pub secret_access_key_key: String,
}

/// Retention: a backup is deleted when either rule drops it; the newest is always kept.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Retention {
    /// Keep this many newest backups; null for no limit by count.
    #[schemars(range(min = 1))]
    pub keep_last: Option<u32>,
    /// Keep the backups of the last this many days (by the time in their names); null for no
    /// limit by age.
    #[schemars(range(min = 1, max = 36500))]
    pub keep_days: Option<u32>,
}

/// How each run is bounded and how many finished runs are kept.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct JobOptions {
    /// Retries of a failed run (new pods) before the Job fails.
    #[schemars(range(min = 0, max = 10))]
    pub backoff_limit: i32,
    /// Seconds a run may take, retries included, before it is stopped.
    #[schemars(range(min = 60))]
    pub active_deadline_seconds: i64,
    /// Seconds after its time within which a missed run (controller down, `Forbid` while the
    /// previous one runs) may still start; later it is skipped.
    #[schemars(range(min = 10))]
    pub starting_deadline_seconds: i64,
    /// Finished successful Jobs kept for their logs.
    #[schemars(range(min = 0, max = 100))]
    pub successful_jobs_history_limit: i32,
    /// Finished failed Jobs kept for their logs.
    #[schemars(range(min = 0, max = 100))]
    pub failed_jobs_history_limit: i32,
}

/// A one-off restore.
#[derive(Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Restore {
    /// The backup to restore, by its name in the folder (`20260102T030405Z-mathison.dump`).
    /// When set, the plugin also renders the Job `postgres-restore-<timestamp>`, which
    /// downloads it and runs `pg_restore --clean --if-exists --no-owner` into the database in
    /// one transaction, and suspends the CronJob, so that no backup of a half-restored database
    /// runs. Unset it once the restore is done: that resumes the backups.
    #[schemars(regex(pattern = r"^[0-9]{8}T[0-9]{6}Z-[a-z_][a-z0-9_]{0,62}\.dump$"))]
    pub from: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            image: "pgvector/pgvector:pg16".to_owned(),
            client_image: "rclone/rclone:1.68.2".to_owned(),
            schedule: "0 3 * * *".to_owned(),
            time_zone: None,
            compression_level: 6,
            database: Database::default(),
            s3: S3::default(),
            retention: Retention::default(),
            job: JobOptions::default(),
            resources: Resources::new("100m", "128Mi", "1", "512Mi"),
            scratch_size: Quantity::from_static("10Gi"),
            client_labels: BTreeMap::from([(
                "mathison.dev/postgres-client".to_owned(),
                "true".to_owned(),
            )]),
            restore: Restore::default(),
        }
    }
}

impl Default for Database {
    fn default() -> Self {
        Self {
            host: POSTGRES_SERVICE.to_owned(),
            port: 5432,
            name: "mathison".to_owned(),
            user: "mathison".to_owned(),
            existing_secret: "mathison-secrets".to_owned(),
            password_key: "postgres-password".to_owned(),
        }
    }
}

impl Default for S3 {
    fn default() -> Self {
        Self {
            endpoint: "https://s3.amazonaws.com".to_owned(),
            region: "us-east-1".to_owned(),
            bucket: "mathison-backups".to_owned(),
            prefix: "postgres".to_owned(),
            existing_secret: "mathison-backup-s3".to_owned(),
            access_key_id_key: "AWS_ACCESS_KEY_ID".to_owned(),
            secret_access_key_key: "AWS_SECRET_ACCESS_KEY".to_owned(),
        }
    }
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            // Two weeks of daily backups.
            keep_last: Some(14),
            keep_days: None,
        }
    }
}

impl Default for JobOptions {
    fn default() -> Self {
        Self {
            backoff_limit: 2,
            // An hour: a dump of a few GiB and its upload, with retries.
            active_deadline_seconds: 3600,
            starting_deadline_seconds: 600,
            successful_jobs_history_limit: 3,
            failed_jobs_history_limit: 3,
        }
    }
}

impl S3 {
    /// The endpoint's port: the one it names, or its scheme's.
    fn port(&self) -> Result<u16, String> {
        let (scheme, rest) = self
            .endpoint
            .split_once("://")
            .ok_or_else(|| format!("\"{}\" is not an http(s) URL", self.endpoint))?;
        let authority = rest.trim_end_matches('/');
        match authority.rsplit_once(':') {
            Some((_, port)) => port
                .parse::<u16>()
                .ok()
                .filter(|port| *port > 0)
                .ok_or_else(|| format!("\"{port}\" is not a port (1-65535)")),
            None if scheme == "http" => Ok(80),
            None => Ok(443),
        }
    }
}

impl Config {
    fn check(&self) -> Result<u16, RenderError> {
        let mut problems = Problems::default();
        problems.check("image", validate::image(&self.image));
        problems.check("clientImage", validate::image(&self.client_image));
        problems.check(
            "database.host",
            validate::dns_subdomain(&self.database.host),
        );
        for (path, secret) in [
            ("database.existingSecret", &self.database.existing_secret),
            ("s3.existingSecret", &self.s3.existing_secret),
        ] {
            problems.check(path, validate::dns_subdomain(secret));
        }
        for (path, key) in [
            ("database.passwordKey", &self.database.password_key),
            ("s3.accessKeyIdKey", &self.s3.access_key_id_key),
            ("s3.secretAccessKeyKey", &self.s3.secret_access_key_key),
        ] {
            problems.check(path, validate::data_key(key));
        }
        let port = self.s3.port();
        problems.check("s3.endpoint", port.clone().map(drop));
        self.resources.check(&mut problems, "resources");
        problems.positive("scratchSize", &self.scratch_size);
        validate::selector(&mut problems, "clientLabels", &self.client_labels);
        problems.finish()?;
        port.map_err(RenderError::Internal)
    }
}

/// The plugin.
#[derive(Debug)]
pub struct PostgresBackup;

impl Plugin for PostgresBackup {
    type Config = Config;
    const NAME: &'static str = NAME;
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "Scheduled pg_dump backups of PostgreSQL to an S3-compatible bucket, with retention and restore.";

    fn kinds() -> Vec<KindRef> {
        vec![
            KindRef::of::<CronJob>(),
            KindRef::of::<Job>(),
            KindRef::of::<NetworkPolicy>(),
        ]
    }

    fn render(ctx: &Context, config: Config) -> Result<Output, RenderError> {
        let s3_port = config.check()?;
        let mut out = Output::default();
        out.push(network_policy(ctx, &config, s3_port));
        out.push(cron_job(ctx, &config));
        if let Some(from) = &config.restore.from {
            out.push(restore_job(ctx, &config, from));
        }
        Ok(out)
    }
}

fn env(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value: Some(value.to_owned()),
        ..Default::default()
    }
}

/// The pod's labels: the recommended ones, by which the NetworkPolicy selects it, and the client
/// labels, by which PostgreSQL's admits it.
fn pod_labels(ctx: &Context, config: &Config, component: &str) -> BTreeMap<String, String> {
    let mut labels = labels::recommended(ctx, NAME, component, None);
    labels.extend(config.client_labels.clone());
    labels
}

fn checkov_skips() -> BTreeMap<String, String> {
    k8s::checkov_skips(&k8s::CONFIGURABLE_IMAGE_CHECKOV_SKIPS)
}

/// libpq's variables for the database.
fn database_env(config: &Config) -> Vec<EnvVar> {
    let db = &config.database;
    vec![
        env("PGHOST", &db.host),
        env("PGPORT", &db.port.to_string()),
        env("PGDATABASE", &db.name),
        env("PGUSER", &db.user),
    ]
}

/// rclone's remote `backup` and where the backups are. HOME is the scratch /tmp: rclone looks
/// for a config file there (and finds none) under a read-only root.
fn s3_env(config: &Config) -> Vec<EnvVar> {
    let s3 = &config.s3;
    vec![
        env("BUCKET", &s3.bucket),
        env("PREFIX", &s3.prefix),
        env("HOME", "/tmp"),
        env("RCLONE_CONFIG_BACKUP_TYPE", "s3"),
        env("RCLONE_CONFIG_BACKUP_PROVIDER", "Other"),
        env("RCLONE_CONFIG_BACKUP_ENDPOINT", &s3.endpoint),
        env("RCLONE_CONFIG_BACKUP_REGION", &s3.region),
        // The credentials may be limited to the bucket's objects: never try to create it.
        env("RCLONE_CONFIG_BACKUP_NO_CHECK_BUCKET", "true"),
    ]
}

/// A container of the pod running `script` with `sh -c`, hardened like the database's.
fn container(
    config: &Config,
    name: &str,
    image: &str,
    script: String,
    env: Vec<EnvVar>,
    mounts: &[(&str, &str, bool)],
) -> Container {
    Container {
        name: name.to_owned(),
        image: Some(image.to_owned()),
        image_pull_policy: Some("IfNotPresent".to_owned()),
        command: Some(vec!["sh".to_owned(), "-c".to_owned(), script]),
        env: Some(env),
        resources: Some(config.resources.to_k8s()),
        security_context: Some(k8s::container_security_context()),
        volume_mounts: Some(
            mounts
                .iter()
                .map(|(volume, path, read_only)| k8s::mount(volume, path, *read_only))
                .collect(),
        ),
        ..Default::default()
    }
}

/// The pod of a run: `first` in an init container, then `then`, over the scratch volumes and
/// the two Secrets; never restarted in place (a retry is a new pod, with an empty scratch).
fn pod(
    ctx: &Context,
    config: &Config,
    component: &str,
    first: Container,
    then: Container,
) -> PodTemplateSpec {
    let volumes: Vec<Volume> = vec![
        {
            let mut backup = k8s::empty_dir("backup");
            if let Some(dir) = backup.empty_dir.as_mut() {
                dir.size_limit = Some((&config.scratch_size).into());
            }
            backup
        },
        k8s::empty_dir("tmp"),
        k8s::secret_volume(
            "password",
            &config.database.existing_secret,
            &[(&config.database.password_key, "password")],
        ),
        k8s::secret_volume(
            "s3-credentials",
            &config.s3.existing_secret,
            &[
                (&config.s3.access_key_id_key, "access-key-id"),
                (&config.s3.secret_access_key_key, "secret-access-key"),
            ],
        ),
    ];
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(pod_labels(ctx, config, component)),
            annotations: Some(checkov_skips()),
            ..Default::default()
        }),
        spec: Some(PodSpec {
            init_containers: Some(vec![first]),
            restart_policy: Some("Never".to_owned()),
            ..k8s::hardened_pod_spec(
                k8s::pod_security_context(UID, UID, UID),
                30,
                vec![then],
                volumes,
            )
        }),
    }
}

fn job_spec(config: &Config, template: PodTemplateSpec) -> JobSpec {
    JobSpec {
        backoff_limit: Some(config.job.backoff_limit),
        active_deadline_seconds: Some(config.job.active_deadline_seconds),
        template,
        ..Default::default()
    }
}

fn metadata(ctx: &Context, name: &str, labels: &BTreeMap<String, String>) -> ObjectMeta {
    ObjectMeta {
        annotations: Some(checkov_skips()),
        ..k8s::meta(ctx, name, labels)
    }
}

fn cron_job(ctx: &Context, config: &Config) -> CronJob {
    let labels = labels::recommended(ctx, NAME, "backup", None);
    let mut dump_env = database_env(config);
    dump_env.push(env(
        "COMPRESSION_LEVEL",
        &config.compression_level.to_string(),
    ));
    let dump = container(
        config,
        "dump",
        &config.image,
        DUMP_SCRIPT.to_owned(),
        dump_env,
        &[
            ("backup", BACKUP_DIR, false),
            ("tmp", "/tmp", false),
            ("password", PASSWORD_DIR, true),
        ],
    );
    let mut upload_env = s3_env(config);
    let number = |n: Option<u32>| n.map(|n| n.to_string()).unwrap_or_default();
    upload_env.push(env("KEEP_LAST", &number(config.retention.keep_last)));
    upload_env.push(env("KEEP_DAYS", &number(config.retention.keep_days)));
    let upload = container(
        config,
        "upload",
        &config.client_image,
        format!("{S3_CREDENTIALS}{UPLOAD_SCRIPT}"),
        upload_env,
        &[
            ("backup", BACKUP_DIR, true),
            ("tmp", "/tmp", false),
            ("s3-credentials", S3_DIR, true),
        ],
    );
    let template = pod(ctx, config, "backup", dump, upload);
    CronJob {
        metadata: metadata(ctx, NAME, &labels),
        spec: Some(CronJobSpec {
            schedule: config.schedule.clone(),
            time_zone: config.time_zone.clone(),
            concurrency_policy: Some("Forbid".to_owned()),
            starting_deadline_seconds: Some(config.job.starting_deadline_seconds),
            successful_jobs_history_limit: Some(config.job.successful_jobs_history_limit),
            failed_jobs_history_limit: Some(config.job.failed_jobs_history_limit),
            suspend: Some(config.restore.from.is_some()),
            job_template: JobTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    ..Default::default()
                }),
                spec: Some(job_spec(config, template)),
            },
        }),
        ..Default::default()
    }
}

/// The restore Job, named after the backup's timestamp: a Job's pod template cannot change, so
/// another backup is another Job, and applying the same one again does not run it again.
fn restore_job(ctx: &Context, config: &Config, from: &str) -> Job {
    let stamp = from.split('-').next().unwrap_or(from).to_ascii_lowercase();
    let name = format!("postgres-restore-{stamp}");
    let labels = labels::recommended(ctx, NAME, "restore", None);
    let mut download_env = s3_env(config);
    download_env.push(env("RESTORE_FROM", from));
    let download = container(
        config,
        "download",
        &config.client_image,
        format!("{S3_CREDENTIALS}{DOWNLOAD_SCRIPT}"),
        download_env,
        &[
            ("backup", BACKUP_DIR, false),
            ("tmp", "/tmp", false),
            ("s3-credentials", S3_DIR, true),
        ],
    );
    let mut restore_env = database_env(config);
    restore_env.push(env("RESTORE_FROM", from));
    let restore = container(
        config,
        "restore",
        &config.image,
        RESTORE_SCRIPT.to_owned(),
        restore_env,
        &[
            ("backup", BACKUP_DIR, true),
            ("tmp", "/tmp", false),
            ("password", PASSWORD_DIR, true),
        ],
    );
    Job {
        metadata: metadata(ctx, &name, &labels),
        spec: Some(job_spec(
            config,
            pod(ctx, config, "restore", download, restore),
        )),
        ..Default::default()
    }
}

/// No ingress; egress to DNS, to PostgreSQL and to the S3 endpoint's port only.
fn network_policy(ctx: &Context, config: &Config, s3_port: u16) -> NetworkPolicy {
    let port = |protocol: &str, number: u16| NetworkPolicyPort {
        protocol: Some(protocol.to_owned()),
        port: Some(IntOrString::Int(number.into())),
        ..Default::default()
    };
    let rule = |to: Option<Vec<NetworkPolicyPeer>>, ports| NetworkPolicyEgressRule {
        to,
        ports: Some(ports),
    };
    let postgres_pods = (config.database.host == POSTGRES_SERVICE).then(|| {
        vec![NetworkPolicyPeer {
            pod_selector: Some(LabelSelector {
                match_labels: Some(labels::selector_labels(ctx, POSTGRES_SERVICE)),
                ..Default::default()
            }),
            ..Default::default()
        }]
    });
    NetworkPolicy {
        metadata: k8s::meta(ctx, NAME, &labels::recommended(ctx, NAME, "backup", None)),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector {
                match_labels: Some(labels::selector_labels(ctx, NAME)),
                ..Default::default()
            }),
            policy_types: Some(vec!["Ingress".to_owned(), "Egress".to_owned()]),
            ingress: None,
            egress: Some(vec![
                rule(None, vec![port("UDP", 53), port("TCP", 53)]),
                rule(postgres_pods, vec![port("TCP", config.database.port)]),
                rule(None, vec![port("TCP", s3_port)]),
            ]),
        }),
    }
}

mathison_plugin_sdk::export_plugin!(PostgresBackup);

#[cfg(test)]
mod tests;
