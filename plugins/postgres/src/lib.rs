//! The `postgres` plugin: PostgreSQL 16 with pgvector as Mathison's own database, one hardened
//! replica in a StatefulSet, reachable only from labelled client pods.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Container, EnvVar, PodSpec, Service, VolumeMount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use mathison_plugin_sdk::config::Resources;
use mathison_plugin_sdk::k8s::{self, NamedPort, StatefulSetParts};
use mathison_plugin_sdk::validate::{self, Problems};
use mathison_plugin_sdk::{Context, KindRef, Output, Plugin, Quantity, RenderError, labels, log};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

const NAME: &str = "postgres";
const HEADLESS: &str = "postgres-headless";
const INITDB: &str = "postgres-initdb";
const PORT: NamedPort<'static> = NamedPort {
    name: "postgres",
    port: 5432,
};
/// uid and gid of `postgres` in the official image; it owns the data directory.
const POSTGRES_UID: i64 = 999;
const DATA_DIR: &str = "/var/lib/postgresql/data";
const PASSWORD_DIR: &str = "/etc/postgres-secret";
const MIB: i128 = 1024 * 1024;
/// Below this PostgreSQL's own processes leave too little for shared buffers and queries.
const MIN_MEMORY_LIMIT: &str = "128Mi";
/// Connections the server accepts: PgBouncer multiplexes the application's clients onto a pool
/// of about 20 server connections per database and user, so 100 (PostgreSQL's default) would only
/// thin out `work_mem`; 50 leaves room for the pool, migrations, monitoring and the 3 slots
/// reserved for superusers.
const MAX_CONNECTIONS: i128 = 50;
const STARTUP_PERIOD_SECONDS: u32 = 10;
/// Server settings that the manifest itself depends on (where it listens, where its files are):
/// `parameters` may not change them.
const OWNED_PARAMETERS: [&str; 8] = [
    "listen_addresses",
    "port",
    "unix_socket_directories",
    "data_directory",
    "config_file",
    "hba_file",
    "ident_file",
    "external_pid_file",
];

/// The plugin's configuration.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Config {
    /// Container image: the official PostgreSQL entrypoint with pgvector installed. `pg16` is a
    /// floating tag: a restart may pull a newer pgvector, whose extension the init container
    /// `update-extensions` then updates. For reproducible deployments pin the digest the tag
    /// points at: `docker buildx imagetools inspect pgvector/pgvector:pg16` prints it; set
    /// `pgvector/pgvector:pg16@sha256:<digest>` (the tag is then only a label).
    pub image: String,
    /// Database created on first start (an unquoted SQL identifier).
    pub database: String,
    /// Role created on first start, owner of the database and superuser of this private server
    /// (an unquoted SQL identifier).
    pub user: String,
    /// Where the user's password comes from.
    pub auth: Auth,
    /// Extensions of the database (unquoted SQL identifiers). Created by the init script on first
    /// start; on every later start the init container `update-extensions` runs PostgreSQL in
    /// single-user mode before the server and, for each one, `CREATE EXTENSION IF NOT EXISTS`
    /// (an extension added later is created) and `ALTER EXTENSION ... UPDATE` (a newer image's
    /// version is installed; a no-op when current). An error there stops the pod from starting,
    /// with the SQL error in the init container's log, rather than serving with an extension
    /// whose SQL objects are older than its library. Removing a name drops nothing.
    pub extensions: Vec<String>,
    /// The data volume.
    pub persistence: Persistence,
    /// CPU and memory of the PostgreSQL container. The memory limit sizes the server's memory
    /// settings (see `parameters`).
    pub resources: Resources,
    /// Requests equal to limits (the requests given are ignored): the pod gets the Guaranteed
    /// QoS class, so under node memory pressure it is evicted last and its processes are the
    /// last the kernel's OOM killer picks, and with the kubelet's static CPU manager a whole
    /// number of CPUs gets exclusive cores. The node must have the limits free to schedule it.
    #[serde(rename = "guaranteedQoS")]
    pub guaranteed_qos: bool,
    /// Size of the memory-backed /dev/shm (dynamic shared memory for parallel queries and
    /// parallel VACUUM); it counts against the memory limit, so it may be at most half of it.
    pub shm_size: Quantity,
    /// postgresql.conf settings, passed to the server as `-c name=value` (they override the data
    /// directory's postgresql.conf and `ALTER SYSTEM`; a change rolls the pod, which settings such
    /// as shared_buffers need). Names are `[a-z_][a-z0-9_.]*`; values are strings, numbers or
    /// booleans (on/off) of printable ASCII without quotes or backslashes. The plugin's own
    /// settings (listen_addresses, port, unix_socket_directories, data_directory, config_file,
    /// hba_file, ident_file, external_pid_file) are refused. PostgreSQL refuses to start on an
    /// unknown name or a bad value.
    ///
    /// A setting given here replaces the one derived from the memory limit L and `shmSize` S
    /// (whole MiB, rounded down, written as PostgreSQL shows them: 1024MB is 1GB), not the
    /// others: shared_buffers = L/4 (PostgreSQL's own advice for a dedicated server);
    /// effective_cache_size = 3L/4 (a planner hint: shared buffers plus the page cache the
    /// pod's cgroup can keep); max_connections = 50 (PgBouncer's pool in front needs about 20,
    /// plus migrations, monitoring and 3 superuser slots). What remains
    /// for the backends' private memory is R = L - L/4 - S, as /dev/shm is charged to the same
    /// limit. work_mem = min(R / (2 × max_connections), S/8): every connection may run two sorts
    /// or hashes at once, and a parallel hash join with the default 2 workers puts up to
    /// hash_mem_multiplier (2) × 3 × work_mem in /dev/shm. maintenance_work_mem = min(R/4, S/2):
    /// up to 3 autovacuum workers and one VACUUM or CREATE INDEX at once, and parallel VACUUM
    /// keeps its dead tuples in /dev/shm. With the defaults (1Gi, 256Mi): 256MB, 768MB, 50,
    /// 5MB, 128MB.
    pub parameters: BTreeMap<String, Setting>,
    /// How long the first start (initdb and the init scripts, before the server listens on
    /// TCP) may take before the kubelet restarts the container, in seconds; rounded up to the
    /// startup probe's 10 s period. A kill halfway leaves a half-initialised data directory
    /// that the entrypoint will not initialise again, so be generous on slow volumes.
    pub startup_timeout_seconds: u32,
    /// Labels that a pod must carry to reach PostgreSQL on 5432; the NetworkPolicy refuses every
    /// other pod. A dedicated opt-in label (rather than `app.kubernetes.io/part-of: mathison`,
    /// which Redis carries too) grants the database to exactly the pods that need it. Clients
    /// must run in the same namespace.
    pub client_labels: BTreeMap<String, String>,
    /// A Prometheus exporter sidecar (postgres_exporter on port 9187, connecting over
    /// 127.0.0.1:5432 as `user` with the same password file) and its Service port, NetworkPolicy
    /// rule and optional ServiceMonitor; off by default.
    pub metrics: mathison_plugin_sdk::metrics::Metrics,
}

/// The value of a postgresql.conf setting.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Setting {
    /// As PostgreSQL reads it: "256MB", "500ms", "on".
    Text(String),
    /// A number: 50, 1.1.
    Number(serde_json::Number),
    /// A boolean, written on or off.
    Switch(bool),
}

impl std::fmt::Display for Setting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Text(text) => f.write_str(text),
            Self::Number(number) => write!(f, "{number}"),
            Self::Switch(on) => f.write_str(if *on { "on" } else { "off" }),
        }
    }
}

/// Where the password comes from.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Auth {
    /// An existing Secret in the namespace; the plugin never creates it.
    pub existing_secret: String,
    /// The key of the password in that Secret; mounted as a file, never put in the environment.
    pub key: String,
}

/// The data volume.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Persistence {
    /// Size of the ReadWriteOnce volume claim, as a Kubernetes quantity ("10Gi").
    pub size: Quantity,
    /// StorageClass of the claim; null uses the cluster's default class.
    pub storage_class_name: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            image: "pgvector/pgvector:pg16".to_owned(),
            database: "mathison".to_owned(),
            user: "mathison".to_owned(),
            auth: Auth::default(),
            extensions: vec!["vector".to_owned()],
            persistence: Persistence::default(),
            resources: Resources::new("250m", "512Mi", "1", "1Gi"),
            guaranteed_qos: false,
            shm_size: Quantity::from_static("256Mi"),
            parameters: BTreeMap::new(),
            // Ten minutes: a big init script on a slow volume, not a normal start.
            startup_timeout_seconds: 600,
            client_labels: BTreeMap::from([(
                "mathison.dev/postgres-client".to_owned(),
                "true".to_owned(),
            )]),
            metrics: metrics::defaults(),
        }
    }
}

impl Default for Auth {
    fn default() -> Self {
        Self {
            existing_secret: "mathison-secrets".to_owned(),
            key: "postgres-password".to_owned(),
        }
    }
}

impl Default for Persistence {
    fn default() -> Self {
        Self {
            size: Quantity::from_static("10Gi"),
            storage_class_name: None,
        }
    }
}

/// An identifier that needs no quoting in SQL, so it can go into the init script, the probes
/// and the connection URL as is.
fn sql_identifier(value: &str) -> Result<(), String> {
    let ok = !value.is_empty()
        && value.len() <= 63
        && value.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    ok.then_some(()).ok_or_else(|| {
        format!("\"{value}\" is not a plain SQL identifier ([a-z_][a-z0-9_]*, at most 63)")
    })
}

/// A postgresql.conf setting the user may pass: a plain name that the plugin does not own,
/// and a value that survives the entrypoint's shell quoting (printable ASCII, no quotes or
/// backslashes, which PostgreSQL's `-c` would otherwise read as escapes).
fn parameter(name: &str, value: &Setting) -> Result<(), String> {
    let plain_name = name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.".contains(c));
    if !plain_name {
        return Err(format!(
            "\"{name}\" is not a setting name ([a-z_][a-z0-9_.]*)"
        ));
    }
    if OWNED_PARAMETERS.contains(&name) {
        return Err(format!(
            "{name} is set by the plugin; the manifest depends on its value"
        ));
    }
    let value = value.to_string();
    if !value
        .chars()
        .all(|c| (' '..='~').contains(&c) && !"'\"\\".contains(c))
    {
        return Err(format!(
            "{value:?} may hold only printable ASCII without quotes or backslashes"
        ));
    }
    Ok(())
}

/// An amount of MiB as PostgreSQL shows it (`SHOW`): in the largest unit that divides it, so
/// that the manifest reads as the server reports (1024 MiB is "1GB"; PostgreSQL's MB is a MiB).
fn memory_setting(mib: i128) -> String {
    let (mut amount, mut units) = (mib, ["MB", "GB", "TB"].as_slice());
    while amount != 0 && amount % 1024 == 0 && units.len() > 1 {
        amount /= 1024;
        units = &units[1..];
    }
    format!("{amount}{}", units[0])
}

impl Config {
    fn check(&self) -> Result<(), RenderError> {
        let mut problems = Problems::default();
        problems.check("image", validate::image(&self.image));
        problems.check("database", sql_identifier(&self.database));
        problems.check("user", sql_identifier(&self.user));
        problems.check(
            "auth.existingSecret",
            validate::dns_subdomain(&self.auth.existing_secret),
        );
        problems.check("auth.key", validate::data_key(&self.auth.key));
        for (i, extension) in self.extensions.iter().enumerate() {
            problems.check(format!("extensions[{i}]"), sql_identifier(extension));
        }
        problems.positive("persistence.size", &self.persistence.size);
        if let Some(class) = &self.persistence.storage_class_name {
            problems.check(
                "persistence.storageClassName",
                validate::dns_subdomain(class),
            );
        }
        self.resources.check(&mut problems, "resources");
        let limit = &self.resources.limits.memory;
        if *limit < Quantity::from_static(MIN_MEMORY_LIMIT) {
            problems.add(
                "resources.limits.memory",
                format!("\"{limit}\" leaves PostgreSQL too little memory; use at least {MIN_MEMORY_LIMIT}"),
            );
        }
        problems.positive("shmSize", &self.shm_size);
        // Half at most, so that shared_buffers (a quarter) and the backends keep a quarter.
        if self.shm_size.value() > limit.value().map(|bytes| bytes / 2) {
            problems.add(
                "shmSize",
                format!(
                    "\"{}\" exceeds half the memory limit \"{limit}\", which /dev/shm shares with \
                     shared_buffers and the backends",
                    self.shm_size
                ),
            );
        }
        for (name, value) in &self.parameters {
            problems.check(format!("parameters.{name}"), parameter(name, value));
        }
        if self.startup_timeout_seconds < STARTUP_PERIOD_SECONDS {
            problems.add(
                "startupTimeoutSeconds",
                format!("must be at least the probe's period, {STARTUP_PERIOD_SECONDS}"),
            );
        }
        validate::selector(&mut problems, "clientLabels", &self.client_labels);
        self.metrics.check(&mut problems);
        problems.finish()
    }

    /// The server's settings: those derived from the memory limit and shmSize (see the
    /// `parameters` description), overridden by the user's.
    fn parameters(&self) -> Result<BTreeMap<String, String>, RenderError> {
        let mib = |quantity: &Quantity| {
            quantity
                .value()
                .map(|bytes| bytes / MIB)
                .ok_or_else(|| RenderError::Internal(format!("the quantity {quantity} overflows")))
        };
        let limit = mib(&self.resources.limits.memory)?;
        let shm = mib(&self.shm_size)?;
        let shared_buffers = limit / 4;
        let remaining = limit - shared_buffers - shm;
        let work_mem = (remaining / (2 * MAX_CONNECTIONS)).min(shm / 8).max(1);
        let maintenance_work_mem = (remaining / 4).min(shm / 2).max(1);
        let mut parameters: BTreeMap<String, String> = [
            ("shared_buffers", memory_setting(shared_buffers)),
            ("effective_cache_size", memory_setting(limit * 3 / 4)),
            ("max_connections", MAX_CONNECTIONS.to_string()),
            ("work_mem", memory_setting(work_mem)),
            ("maintenance_work_mem", memory_setting(maintenance_work_mem)),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect();
        for (name, value) in &self.parameters {
            parameters.insert(name.clone(), value.to_string());
        }
        Ok(parameters)
    }

    /// The init container's script: on every start but the first, each extension is created if
    /// missing and updated to the image's version, in single-user mode before the server
    /// starts (a postStart hook would race the server and its clients). `$@` holds the
    /// server's `-c` settings, so that it runs with the same ones (shared_preload_libraries);
    /// exit_on_error comes after them, so that no parameter turns it off.
    fn update_extensions_script(&self) -> String {
        let mut script = String::from(
            "# The first start (no PG_VERSION yet) is the entrypoint's: initdb and the init scripts.\n\
             [ -s \"$PGDATA/PG_VERSION\" ] || exit 0\n\
             # exit_on_error: a failed statement fails the container instead of scrolling past.\n",
        );
        script.push_str(&format!(
            "exec postgres --single -D \"$PGDATA\" \"$@\" -c exit_on_error=on {} <<'SQL'\n",
            self.database
        ));
        for extension in &self.extensions {
            script.push_str(&format!(
                "CREATE EXTENSION IF NOT EXISTS {extension};\nALTER EXTENSION {extension} UPDATE;\n"
            ));
        }
        script.push_str("SQL\n");
        script
    }

    fn init_script(&self) -> String {
        let mut script =
            String::from("-- Runs once, on an empty data directory, as the bootstrap superuser.\n");
        for extension in &self.extensions {
            script.push_str(&format!("CREATE EXTENSION IF NOT EXISTS {extension};\n"));
        }
        script
    }
}

/// The plugin.
#[derive(Debug)]
pub struct Postgres;

impl Plugin for Postgres {
    type Config = Config;
    const NAME: &'static str = NAME;
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str =
        "PostgreSQL 16 with pgvector as a hardened single-replica StatefulSet.";

    fn kinds() -> Vec<KindRef> {
        vec![
            KindRef::of::<StatefulSet>(),
            KindRef::of::<Service>(),
            KindRef::of::<ConfigMap>(),
            KindRef::of::<NetworkPolicy>(),
        ]
        .into_iter()
        .chain(mathison_plugin_sdk::metrics::kinds())
        .collect()
    }

    fn render(ctx: &Context, config: Config) -> Result<Output, RenderError> {
        config.check()?;
        let parameters = config.parameters()?;
        log::info(&format!(
            "postgres: server settings from the memory limit {} and shmSize {}: {parameters:?}",
            config.resources.limits.memory, config.shm_size,
        ));
        let labels = labels::recommended(ctx, NAME, "database", labels::image_tag(&config.image));
        let selector = labels::selector_labels(ctx, NAME);
        let host = format!("{NAME}.{}.svc.cluster.local", ctx.namespace);
        log::debug(&format!("postgres: rendering for {host}"));

        let mut out = Output::default();
        out.push(ConfigMap {
            metadata: k8s::meta(ctx, INITDB, &labels),
            data: Some(BTreeMap::from([(
                "01-extensions.sql".to_owned(),
                config.init_script(),
            )])),
            ..Default::default()
        });
        config.metrics.push_network(
            &mut out,
            ctx,
            k8s::DatabaseNetwork {
                name: NAME,
                headless: HEADLESS,
                labels: &labels,
                selector: &selector,
                client_labels: &config.client_labels,
                ports: &[PORT],
            },
            metrics::PORT,
        );
        let args = server_args(parameters);
        out.push(stateful_set(ctx, &config, args, labels, selector));

        let (user, database, port) = (&config.user, &config.database, PORT.port);
        out.connection("DATABASE_HOST", &host)
            .connection("DATABASE_PORT", port.to_string())
            .connection("DATABASE_NAME", database)
            .connection("DATABASE_USER", user)
            .secret_connection(
                "DATABASE_URL",
                format!("postgresql://{user}:{{secret}}@{host}:{port}/{database}"),
                "postgres-password",
            );
        Ok(out)
    }
}

/// What the container and the init container pass to `postgres`: `-c name=value` each.
fn server_args(parameters: BTreeMap<String, String>) -> Vec<String> {
    parameters
        .into_iter()
        .flat_map(|(name, value)| ["-c".to_owned(), format!("{name}={value}")])
        .collect()
}

fn stateful_set(
    ctx: &Context,
    config: &Config,
    args: Vec<String>,
    labels: BTreeMap<String, String>,
    selector: BTreeMap<String, String>,
) -> StatefulSet {
    let env = |name: &str, value: &str| EnvVar {
        name: name.to_owned(),
        value: Some(value.to_owned()),
        ..Default::default()
    };
    // A fresh volume's root holds lost+found, and initdb refuses a non-empty directory.
    let pgdata = env("PGDATA", &format!("{DATA_DIR}/pgdata"));
    // Over TCP on loopback: during initialisation the temporary server listens only on its
    // socket, so no probe can pass before the real server is up. pg_isready needs no password.
    let port = PORT.port.to_string();
    let readiness = [
        "pg_isready",
        "-U",
        &config.user,
        "-d",
        &config.database,
        "-h",
        "127.0.0.1",
        "-p",
        &port,
    ];
    // Startup and liveness accept exit 1 too, "rejecting connections": the server is up but
    // starting, in crash recovery or shutting down, and a restart would begin recovery again.
    // Exit 2 (no response) and 3 (no attempt) fail; the initdb server cannot answer at all.
    // The words need no quoting: user and database are plain SQL identifiers.
    let alive = format!("{}; [ $? -le 1 ]", readiness.join(" "));
    let liveness = ["sh", "-c", alive.as_str()];
    // At most u32::MAX / 10, so the casts to the probe's i32 below lose nothing.
    let startup_periods = config
        .startup_timeout_seconds
        .div_ceil(STARTUP_PERIOD_SECONDS);
    let resources = if config.guaranteed_qos {
        Resources {
            requests: config.resources.limits.clone(),
            limits: config.resources.limits.clone(),
        }
    } else {
        config.resources.clone()
    }
    .to_k8s();
    let mounts = |names: &[&str]| -> Vec<VolumeMount> {
        [
            k8s::mount("data", DATA_DIR, false),
            k8s::mount("run", "/var/run/postgresql", false),
            k8s::mount("tmp", "/tmp", false),
            k8s::mount("shm", "/dev/shm", false),
            k8s::mount("initdb", "/docker-entrypoint-initdb.d", true),
            k8s::mount("password", PASSWORD_DIR, true),
        ]
        .into_iter()
        .filter(|m| names.contains(&m.name.as_str()))
        .collect()
    };
    let update_extensions = Container {
        name: "update-extensions".to_owned(),
        image: Some(config.image.clone()),
        image_pull_policy: Some("IfNotPresent".to_owned()),
        command: Some(
            [
                "sh",
                "-c",
                &config.update_extensions_script(),
                "update-extensions",
            ]
            .into_iter()
            .map(str::to_owned)
            .chain(args.iter().cloned())
            .collect(),
        ),
        env: Some(vec![pgdata.clone()]),
        resources: Some(resources.clone()),
        security_context: Some(k8s::container_security_context()),
        volume_mounts: Some(mounts(&["data", "tmp", "shm"])),
        ..Default::default()
    };
    let container = Container {
        name: NAME.to_owned(),
        image: Some(config.image.clone()),
        image_pull_policy: Some("IfNotPresent".to_owned()),
        // The entrypoint runs `postgres` with these, for the initdb server and the real one.
        args: Some(args),
        ports: Some(vec![PORT.container_port()]),
        env: Some(vec![
            env("POSTGRES_DB", &config.database),
            env("POSTGRES_USER", &config.user),
            env(
                "POSTGRES_PASSWORD_FILE",
                &format!("{PASSWORD_DIR}/password"),
            ),
            pgdata,
        ]),
        resources: Some(resources),
        security_context: Some(k8s::container_security_context()),
        startup_probe: Some(k8s::exec_probe(
            &liveness,
            STARTUP_PERIOD_SECONDS as i32,
            startup_periods as i32,
        )),
        liveness_probe: Some(k8s::exec_probe(&liveness, 10, 6)),
        readiness_probe: Some(k8s::exec_probe(&readiness, 5, 3)),
        volume_mounts: Some(mounts(&["data", "run", "tmp", "shm", "initdb", "password"])),
        ..Default::default()
    };
    let volumes = vec![
        k8s::empty_dir("run"),
        k8s::empty_dir("tmp"),
        k8s::memory_empty_dir("shm", &config.shm_size),
        k8s::config_map_volume("initdb", INITDB),
        k8s::secret_volume(
            "password",
            &config.auth.existing_secret,
            &[(&config.auth.key, "password")],
        ),
    ];
    let exporter = metrics::exporter(&config.user, &config.database, "password", PASSWORD_DIR);
    let sidecar = config.metrics.sidecar(config.guaranteed_qos, exporter);
    let containers = [container].into_iter().chain(sidecar).collect();
    let security = k8s::pod_security_context(POSTGRES_UID, POSTGRES_UID, POSTGRES_UID);
    // Selector labels only: volume claim templates are immutable, a version label would change.
    let claim = k8s::volume_claim_template(
        "data",
        &selector,
        &config.persistence.size,
        config.persistence.storage_class_name.as_deref(),
    );
    k8s::stateful_set(
        ctx,
        StatefulSetParts {
            name: NAME.to_owned(),
            labels,
            selector,
            service_name: HEADLESS.to_owned(),
            annotations: k8s::official_image_checkov_skips(POSTGRES_UID),
            // The image stops with SIGINT (fast shutdown), which ends with a checkpoint.
            pod: PodSpec {
                init_containers: Some(vec![update_extensions]),
                ..k8s::hardened_pod_spec(security, 60, containers, volumes)
            },
            volume_claim_templates: vec![claim],
        },
    )
}

mathison_plugin_sdk::export_plugin!(Postgres);

mod metrics;

#[cfg(test)]
mod tests;
