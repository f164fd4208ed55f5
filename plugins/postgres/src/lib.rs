//! The `postgres` plugin: PostgreSQL 16 with pgvector as Mathison's own database, one hardened
//! replica in a StatefulSet, reachable only from labelled client pods.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Container, EnvVar, Service};
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

/// The plugin's configuration.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Config {
    /// Container image: the official PostgreSQL entrypoint with pgvector installed. Pin a digest
    /// (`pgvector/pgvector:pg16@sha256:...`) for reproducible deployments.
    pub image: String,
    /// Database created on first start (an unquoted SQL identifier).
    pub database: String,
    /// Role created on first start, owner of the database and superuser of this private server
    /// (an unquoted SQL identifier).
    pub user: String,
    /// Where the user's password comes from.
    pub auth: Auth,
    /// Extensions created in the database on first start (unquoted SQL identifiers). Only an
    /// empty data directory is initialised: changing this later changes nothing in place.
    pub extensions: Vec<String>,
    /// The data volume.
    pub persistence: Persistence,
    /// CPU and memory of the PostgreSQL container.
    pub resources: Resources,
    /// Size of the memory-backed /dev/shm (dynamic shared memory for parallel queries); it
    /// counts against the memory limit, so it may not exceed it.
    pub shm_size: Quantity,
    /// Labels that a pod must carry to reach PostgreSQL on 5432; the NetworkPolicy refuses every
    /// other pod. A dedicated opt-in label (rather than `app.kubernetes.io/part-of: mathison`,
    /// which Redis carries too) grants the database to exactly the pods that need it. Clients
    /// must run in the same namespace.
    pub client_labels: BTreeMap<String, String>,
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
            shm_size: Quantity::from_static("256Mi"),
            client_labels: BTreeMap::from([(
                "mathison.dev/postgres-client".to_owned(),
                "true".to_owned(),
            )]),
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
        problems.positive("shmSize", &self.shm_size);
        if self.shm_size > self.resources.limits.memory {
            problems.add(
                "shmSize",
                format!(
                    "\"{}\" exceeds the memory limit \"{}\"",
                    self.shm_size, self.resources.limits.memory
                ),
            );
        }
        validate::selector(&mut problems, "clientLabels", &self.client_labels);
        problems.finish()
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
    }

    fn render(ctx: &Context, config: Config) -> Result<Output, RenderError> {
        config.check()?;
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
        k8s::push_database_network(
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
        );
        out.push(stateful_set(ctx, &config, labels, selector));

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

fn stateful_set(
    ctx: &Context,
    config: &Config,
    labels: BTreeMap<String, String>,
    selector: BTreeMap<String, String>,
) -> StatefulSet {
    let env = |name: &str, value: &str| EnvVar {
        name: name.to_owned(),
        value: Some(value.to_owned()),
        ..Default::default()
    };
    // Over TCP on loopback: during initialisation the temporary server listens only on its
    // socket, so the probes cannot pass before the real server is up. pg_isready needs no
    // password.
    let pg_isready = [
        "pg_isready",
        "-U",
        &config.user,
        "-d",
        &config.database,
        "-h",
        "127.0.0.1",
        "-p",
        "5432",
    ];
    let container = Container {
        name: NAME.to_owned(),
        image: Some(config.image.clone()),
        image_pull_policy: Some("IfNotPresent".to_owned()),
        ports: Some(vec![PORT.container_port()]),
        env: Some(vec![
            env("POSTGRES_DB", &config.database),
            env("POSTGRES_USER", &config.user),
            env(
                "POSTGRES_PASSWORD_FILE",
                &format!("{PASSWORD_DIR}/password"),
            ),
            // A fresh volume's root holds lost+found, and initdb refuses a non-empty directory.
            env("PGDATA", &format!("{DATA_DIR}/pgdata")),
        ]),
        resources: Some(config.resources.to_k8s()),
        security_context: Some(k8s::container_security_context()),
        // First start runs initdb and the init script before the server listens on TCP; on a
        // slow volume that can take minutes, and a kill halfway leaves a half-initialised data
        // directory that the entrypoint will not initialise again: allow 5 s × 60 = 5 minutes.
        startup_probe: Some(k8s::exec_probe(&pg_isready, 5, 60)),
        liveness_probe: Some(k8s::exec_probe(&pg_isready, 10, 6)),
        readiness_probe: Some(k8s::exec_probe(&pg_isready, 5, 3)),
        volume_mounts: Some(vec![
            k8s::mount("data", DATA_DIR, false),
            k8s::mount("run", "/var/run/postgresql", false),
            k8s::mount("tmp", "/tmp", false),
            k8s::mount("shm", "/dev/shm", false),
            k8s::mount("initdb", "/docker-entrypoint-initdb.d", true),
            k8s::mount("password", PASSWORD_DIR, true),
        ]),
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
            pod: k8s::hardened_pod_spec(security, 60, vec![container], volumes),
            volume_claim_templates: vec![claim],
        },
    )
}

mathison_plugin_sdk::export_plugin!(Postgres);

#[cfg(test)]
mod tests;
