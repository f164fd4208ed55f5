//! The `postgres` plugin: PostgreSQL 16 with pgvector as Mathison's own database, one hardened
//! replica in a StatefulSet, reachable only from labelled client pods; or, in external mode, a
//! managed server outside the cluster behind an ExternalName Service.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, EnvVar, ExecAction, Lifecycle, LifecycleHandler, PodSpec, Service,
    VolumeMount,
};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use mathison_plugin_sdk::config::{
    DisruptionBudget, PodOptions, ProbeTiming, Probes, Resources, ServiceOptions, add_extra_env,
    check_extra_env, refuse_server_opt_ins,
};
use mathison_plugin_sdk::k8s::{self, NamedPort, StatefulSetParts};
use mathison_plugin_sdk::validate::{self, Problems};
use mathison_plugin_sdk::{Context, KindRef, Output, Plugin, Quantity, RenderError, labels, log};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

const NAME: &str = "postgres";
const HEADLESS: &str = "postgres-headless";
const INITDB: &str = "postgres-initdb";
const HBA: &str = "postgres-hba";
const HBA_DIR: &str = "/etc/postgres-hba";
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
/// Environment variables of the server container that `extraEnv` may not set: the plugin's own,
/// and the entrypoint's that would bypass the password file or the authentication method.
const OWNED_ENV: [&str; 6] = [
    "POSTGRES_DB",
    "POSTGRES_USER",
    "POSTGRES_PASSWORD",
    "POSTGRES_PASSWORD_FILE",
    "POSTGRES_HOST_AUTH_METHOD",
    "PGDATA",
];
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
    /// Database created on first start (an unquoted SQL identifier). In external mode, the
    /// database on the managed server, which you create.
    pub database: String,
    /// Role created on first start, owner of the database and superuser of this private server
    /// (an unquoted SQL identifier). In external mode, the role on the managed server, which
    /// you create.
    pub user: String,
    /// Where the user's password comes from.
    pub auth: Auth,
    /// A managed PostgreSQL server outside the cluster instead of the StatefulSet (external
    /// mode); see `external.host`.
    pub external: External,
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
    /// Seconds from the stop request to SIGKILL; the preStop hook's fast shutdown must end
    /// within it. Default 120: Kubernetes sends SIGTERM, PostgreSQL's *smart* shutdown, which
    /// waits for every client (PgBouncer's pool never leaves) and Kubernetes ignores the image's
    /// STOPSIGNAL (SIGINT), so the preStop hook runs `pg_ctl stop -m fast`: it ends the
    /// sessions and writes a shutdown checkpoint, up to `checkpoint_timeout` of dirty shared
    /// buffers (at most a quarter of the memory limit) to a network volume; 120 s covers a
    /// 1 GiB pool at ~10 MB/s. Raise it with a bigger pool or a slower volume: killed before
    /// the checkpoint ends, PostgreSQL replays WAL at the next start.
    pub termination_grace_period_seconds: u32,
    /// The pod's placement and extras.
    pub pod: PodOptions,
    /// An optional PodDisruptionBudget (see its `enabled`).
    pub pod_disruption_budget: DisruptionBudget,
    /// The client Service (`postgresql`); the headless one stays headless.
    pub service: ServiceOptions,
    /// Timing of the liveness and readiness probes (their commands are the plugin's). Default:
    /// liveness every 10 s, failing after 6 (a minute of silence before a restart), readiness
    /// every 5 s, failing after 3; 5 s per run.
    pub probes: Probes,
    /// Extra environment variables of the PostgreSQL container (name: value), e.g.
    /// `POSTGRES_INITDB_ARGS: --data-checksums` or `TZ`. The plugin's own (POSTGRES_DB,
    /// POSTGRES_USER, POSTGRES_PASSWORD_FILE, PGDATA) and those that would bypass the password
    /// file (POSTGRES_PASSWORD, POSTGRES_HOST_AUTH_METHOD) are refused.
    pub extra_env: BTreeMap<String, String>,
    /// Client authentication rules (pg_hba.conf lines), first match wins. Empty (the default):
    /// the image's file in the data directory (trust on the socket and loopback, a password,
    /// scram-sha-256, from anywhere else). Otherwise the plugin renders the whole file into the
    /// ConfigMap `postgres-hba` (`hba_file`; a change is read on the next restart): first
    /// `local all all trust` (the entrypoint and the init scripts use the socket inside the
    /// container), then these rules, then `host all all all scram-sha-256`. So rules narrow or
    /// reject before the password catch-all, e.g. `{type: host, database: postgres, user: all,
    /// address: 0.0.0.0/0, method: reject}`. `trust` and `peer` are refused except on `local`
    /// lines: over TCP they would let anyone in.
    #[serde(rename = "pgHba")]
    pub pg_hba: Vec<HbaRule>,
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

/// A managed PostgreSQL server: external mode when `host` is set.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct External {
    /// Lower-case DNS name, not an IP address (the Service postgres becomes its ExternalName alias,
    /// a DNS CNAME, which can only point at a name), of a managed PostgreSQL server (Amazon RDS,
    /// Cloud SQL, Azure Database...) to use instead of the in-cluster one; null (the default) runs
    /// the server in the cluster. Set, the plugin renders none of the in-cluster server's objects
    /// (StatefulSet and its volume claim, ConfigMaps, NetworkPolicy, PodDisruptionBudget, metrics),
    /// only the Service `postgres` of type ExternalName, so that
    /// `postgres.<namespace>.svc.cluster.local` still resolves for clients that dial it (on
    /// `external.port`: an alias maps no ports). The connection values name this host itself, since
    /// the server's certificate names it and not the alias (`verify-full` checks that), with
    /// `external.port`, `database`, `user`, DATABASE_SSLMODE and `?sslmode=` in DATABASE_URL; the
    /// password reaches DATABASE_URL as in the cluster, through the secret input
    /// `postgres-password`. The in-cluster server's options (image, resources, persistence,
    /// parameters, pgHba, pod, probes, extensions...) are unused; metrics.enabled,
    /// podDisruptionBudget.enabled and a service.type other than ClusterIP are refused. Migrating:
    /// (1) on the managed server create `user` and `database`, and the extensions (`CREATE
    /// EXTENSION vector;`); (2) stop the application's writes, dump the in-cluster database with
    /// pg_dump (`kubectl exec postgres-0 -c postgres -- pg_dump -Fc -U mathison mathison >
    /// mathison.dump`, or a backup Job of the `postgres-backup` plugin, to S3) and restore it into
    /// the managed one with pg_restore (`pg_restore --no-owner --no-acl -d "$DATABASE_URL"
    /// mathison.dump`, or the `postgres-backup` plugin's restore Job); (3) set this option, render
    /// and apply. `apply --prune` then deletes the StatefulSet and its pod, the headless Service,
    /// the ConfigMaps and the NetworkPolicy, but not the volume claim `data-postgres-0`: the
    /// StatefulSet's persistentVolumeClaimRetentionPolicy is Retain, so the in-cluster data stays
    /// on its volume, untouched, until you delete the claim (`kubectl delete pvc data-postgres-0`;
    /// the volume then follows its StorageClass's reclaim policy). Unsetting the option goes back:
    /// the StatefulSet binds the kept claim again, with the data as it was at the switch.
    #[schemars(regex(pattern = validate::EXTERNAL_HOST_PATTERN), length(max = 253))]
    pub host: Option<String>,
    /// TCP port of the managed server (1 to 65535).
    #[schemars(range(min = 1))]
    pub port: u16,
    /// libpq's `sslmode`, in DATABASE_URL and DATABASE_SSLMODE. Default `verify-full`: the
    /// connection leaves the cluster, and only verify-full both encrypts it and checks that
    /// the certificate is the server's, by its CA and its name (`require` encrypts but accepts
    /// any certificate, so whoever can redirect the traffic reads and changes everything).
    /// Clients need the provider's CA certificate (libpq: `PGSSLROOTCERT` or
    /// `~/.postgresql/root.crt`; Node.js: `NODE_EXTRA_CA_CERTS`). `verify-ca` checks the CA
    /// only; `require`, `prefer`, `allow` and `disable` are weaker still (a warning says so).
    pub sslmode: SslMode,
}

/// libpq's `sslmode`. The variants carry no doc comments, so that the schema is a plain string
/// `enum`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[allow(missing_docs)]
pub enum SslMode {
    Disable,
    Allow,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

/// One pg_hba.conf line.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HbaRule {
    /// `local` (the Unix socket), `host` (TCP, with or without SSL), `hostssl` or `hostnossl`.
    #[serde(rename = "type")]
    pub type_: HbaType,
    /// Comma-separated database names, or `all`, `sameuser`, `samerole`, `replication`.
    pub database: String,
    /// Comma-separated role names (`+role`: its members), or `all`.
    pub user: String,
    /// A network in CIDR notation, or `all`, `samehost`, `samenet`; required for the `host*`
    /// types, refused for `local`.
    #[serde(default)]
    pub address: Option<String>,
    /// The authentication method, one of PostgreSQL's.
    pub method: HbaMethod,
}

/// A pg_hba.conf connection type. The variants carry no doc comments, so that the schema is a
/// plain string `enum`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum HbaType {
    Local,
    Host,
    Hostssl,
    Hostnossl,
}

/// A pg_hba.conf authentication method (PostgreSQL 16's, less the Windows and BSD ones).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[allow(missing_docs)]
pub enum HbaMethod {
    Trust,
    Reject,
    #[serde(rename = "scram-sha-256")]
    ScramSha256,
    Md5,
    Password,
    Gss,
    Ident,
    Peer,
    Ldap,
    Radius,
    Cert,
    Pam,
}

impl HbaRule {
    fn check(&self, problems: &mut Problems, path: &str) {
        for (field, value, plus) in [
            ("database", &self.database, false),
            ("user", &self.user, true),
        ] {
            let ok = value.split(',').all(|item| {
                let name = if plus {
                    item.strip_prefix('+').unwrap_or(item)
                } else {
                    item
                };
                !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "_$-".contains(c))
            });
            if !ok {
                problems.add(
                    format!("{path}.{field}"),
                    format!("{value:?} is not a comma-separated list of names ([A-Za-z0-9_$-])"),
                );
            }
        }
        let local = self.type_ == HbaType::Local;
        match (&self.address, local) {
            (Some(_), true) => {
                problems.add(format!("{path}.address"), "local lines take no address")
            }
            (None, false) => problems.add(format!("{path}.address"), "required for host lines"),
            (Some(address), false)
                if !["all", "samehost", "samenet"].contains(&address.as_str()) =>
            {
                problems.check(format!("{path}.address"), validate::cidr(address));
            }
            _ => {}
        }
        if !local && matches!(self.method, HbaMethod::Trust | HbaMethod::Peer) {
            problems.add(
                format!("{path}.method"),
                "trust and peer only on local lines: over TCP they would let anyone in",
            );
        }
    }

    fn line(&self) -> String {
        let mut fields = vec![word(&self.type_), self.database.clone(), self.user.clone()];
        fields.extend(self.address.clone());
        fields.push(word(&self.method));
        fields.join(" ")
    }
}

/// The word serde writes for a plain enum: as pg_hba.conf and libpq spell it.
fn word<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(word)) => word,
        _ => String::new(),
    }
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
            external: External::default(),
            extensions: vec!["vector".to_owned()],
            persistence: Persistence::default(),
            resources: Resources::new("250m", "512Mi", "1", "1Gi"),
            guaranteed_qos: false,
            shm_size: Quantity::from_static("256Mi"),
            parameters: BTreeMap::new(),
            // Ten minutes: a big init script on a slow volume, not a normal start.
            startup_timeout_seconds: 600,
            termination_grace_period_seconds: 120,
            pod: PodOptions::default(),
            pod_disruption_budget: DisruptionBudget::allowing_drains(),
            service: ServiceOptions::default(),
            probes: Probes {
                liveness: ProbeTiming::new(10, 5, 6),
                readiness: ProbeTiming::new(5, 5, 3),
            },
            extra_env: BTreeMap::new(),
            pg_hba: Vec::new(),
            client_labels: BTreeMap::from([(
                "mathison.dev/postgres-client".to_owned(),
                "true".to_owned(),
            )]),
            metrics: metrics::defaults(),
        }
    }
}

impl Default for External {
    fn default() -> Self {
        Self {
            host: None,
            port: PORT.port as u16,
            sslmode: SslMode::VerifyFull,
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
    fn check(&self, labels: &BTreeMap<String, String>) -> Result<(), RenderError> {
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
        self.pod
            .check(&mut problems, "pod", labels, &checkov_skips());
        self.pod_disruption_budget
            .check(&mut problems, "podDisruptionBudget");
        self.service.check(&mut problems, "service");
        self.probes.check(&mut problems, "probes");
        check_extra_env(&mut problems, "extraEnv", &self.extra_env, &OWNED_ENV);
        for (i, rule) in self.pg_hba.iter().enumerate() {
            rule.check(&mut problems, &format!("pgHba[{i}]"));
        }
        if let Some(host) = &self.external.host {
            problems.check("external.host", validate::external_host(host));
            problems.check("external.port", validate::port(self.external.port));
            refuse_server_opt_ins(
                &mut problems,
                NAME,
                self.metrics.enabled,
                &self.pod_disruption_budget,
                &self.service,
            );
        }
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

    /// The whole pg_hba.conf when `pgHba` has rules (see its description).
    fn hba_conf(&self) -> Option<String> {
        if self.pg_hba.is_empty() {
            return None;
        }
        let mut conf = String::from(
            "# Rendered by the mathison-host postgres plugin; first match wins.\n\
             # The entrypoint and the init scripts connect over the socket inside the container.\n\
             local all all trust\n\
             # pgHba\n",
        );
        for rule in &self.pg_hba {
            conf.push_str(&rule.line());
            conf.push('\n');
        }
        conf.push_str("# Everyone else: a password.\nhost all all all scram-sha-256\n");
        Some(conf)
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
    const DESCRIPTION: &'static str = "PostgreSQL 16 with pgvector as a hardened single-replica StatefulSet, or a managed server outside the cluster behind an ExternalName Service (external.host).";

    fn kinds() -> Vec<KindRef> {
        vec![
            KindRef::of::<StatefulSet>(),
            KindRef::of::<Service>(),
            KindRef::of::<ConfigMap>(),
            KindRef::of::<NetworkPolicy>(),
            KindRef::of::<PodDisruptionBudget>(),
        ]
        .into_iter()
        .chain(mathison_plugin_sdk::metrics::kinds())
        .collect()
    }

    fn render(ctx: &Context, config: Config) -> Result<Output, RenderError> {
        // The image runs only in the cluster: a managed server's version is the provider's.
        let version = labels::image_tag(&config.image).filter(|_| config.external.host.is_none());
        let labels = labels::recommended(ctx, NAME, "database", version);
        config.check(&labels)?;
        if let Some(host) = &config.external.host {
            return Ok(render_external(ctx, &config, host, &labels));
        }
        let mut parameters = config.parameters()?;
        let hba_conf = config.hba_conf();
        if hba_conf.is_some() {
            // Outside the data directory, whose pg_hba.conf the entrypoint wrote at initdb.
            parameters.insert("hba_file".to_owned(), format!("{HBA_DIR}/pg_hba.conf"));
        }
        log::info(&format!(
            "postgres: server settings from the memory limit {} and shmSize {}: {parameters:?}",
            config.resources.limits.memory, config.shm_size,
        ));
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
        if let Some(conf) = hba_conf {
            out.push(ConfigMap {
                metadata: k8s::meta(ctx, HBA, &labels),
                data: Some(BTreeMap::from([("pg_hba.conf".to_owned(), conf)])),
                ..Default::default()
            });
        }
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
            &config.service,
        );
        let args = server_args(parameters);
        if let Some(budget) = config
            .pod_disruption_budget
            .to_k8s(ctx, NAME, &labels, &selector)
        {
            out.push(budget);
        }
        out.push(stateful_set(ctx, &config, args, labels, selector));
        push_connections(&mut out, &config, &host, PORT.port, None);
        Ok(out)
    }
}

/// External mode: the ExternalName alias of the managed server and the connection values.
fn render_external(
    ctx: &Context,
    config: &Config,
    host: &str,
    labels: &BTreeMap<String, String>,
) -> Output {
    let mode = config.external.sslmode;
    if !matches!(mode, SslMode::VerifyFull | SslMode::VerifyCa) {
        log::warn(&format!(
            "postgres: sslmode {} does not verify the server's certificate: whoever can redirect \
             the traffic to {host} can read and change it; prefer verify-full",
            word(&mode)
        ));
    }
    let mut out = Output::default();
    out.push(k8s::external_name_service(ctx, NAME, labels, host));
    push_connections(
        &mut out,
        config,
        host,
        config.external.port.into(),
        Some(mode),
    );
    out
}

/// The connection values, the same in both modes but for the TLS mode, which only an external
/// server gets (DATABASE_SSLMODE and `?sslmode=`): in the cluster the traffic stays on the pod
/// network and the server has no certificate.
fn push_connections(
    out: &mut Output,
    config: &Config,
    host: &str,
    port: i32,
    sslmode: Option<SslMode>,
) {
    let (user, database) = (&config.user, &config.database);
    let mut url = format!("postgresql://{user}:{{secret}}@{host}:{port}/{database}");
    out.connection("DATABASE_HOST", host)
        .connection("DATABASE_PORT", port.to_string())
        .connection("DATABASE_NAME", database)
        .connection("DATABASE_USER", user);
    if let Some(mode) = sslmode {
        let mode = word(&mode);
        url.push_str(&format!("?sslmode={mode}"));
        // For clients that assemble the URL from the parts rather than take DATABASE_URL.
        out.connection("DATABASE_SSLMODE", mode);
    }
    out.secret_connection("DATABASE_URL", url, "postgres-password");
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
    let resources = config.resources.to_k8s_qos(config.guaranteed_qos);
    let mounts = |names: &[&str]| -> Vec<VolumeMount> {
        [
            k8s::mount("data", DATA_DIR, false),
            k8s::mount("run", "/var/run/postgresql", false),
            k8s::mount("tmp", "/tmp", false),
            k8s::mount("shm", "/dev/shm", false),
            k8s::mount("initdb", "/docker-entrypoint-initdb.d", true),
            k8s::mount("password", PASSWORD_DIR, true),
            k8s::mount("hba", HBA_DIR, true),
        ]
        .into_iter()
        .filter(|m| names.contains(&m.name.as_str()))
        .filter(|m| m.name != "hba" || !config.pg_hba.is_empty())
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
        // hba_file is among the server's settings it runs with, so the file must be there.
        volume_mounts: Some(mounts(&["data", "tmp", "shm", "hba"])),
        ..Default::default()
    };
    // A fast shutdown (SIGINT) rather than the smart one SIGTERM asks for, which would wait for
    // the clients (see `terminationGracePeriodSeconds`); pg_ctl waits for the shutdown checkpoint, within the grace period.
    let fast_stop = format!(
        "pg_ctl stop -D \"$PGDATA\" -m fast -w -t {}",
        config.termination_grace_period_seconds
    );
    let mut container = Container {
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
        liveness_probe: Some(config.probes.liveness.exec_probe(&liveness)),
        readiness_probe: Some(config.probes.readiness.exec_probe(&readiness)),
        lifecycle: Some(Lifecycle {
            pre_stop: Some(LifecycleHandler {
                exec: Some(ExecAction {
                    command: Some(vec!["sh".to_owned(), "-c".to_owned(), fast_stop]),
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        volume_mounts: Some(mounts(&[
            "data", "run", "tmp", "shm", "initdb", "password", "hba",
        ])),
        ..Default::default()
    };
    add_extra_env(&mut container, &config.extra_env);
    let mut volumes = vec![
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
    if !config.pg_hba.is_empty() {
        volumes.push(k8s::config_map_volume("hba", HBA));
    }
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
    let mut stateful_set = k8s::stateful_set(
        ctx,
        StatefulSetParts {
            name: NAME.to_owned(),
            labels,
            selector,
            service_name: HEADLESS.to_owned(),
            annotations: checkov_skips(),
            pod: PodSpec {
                init_containers: Some(vec![update_extensions]),
                ..k8s::hardened_pod_spec(
                    security,
                    config.termination_grace_period_seconds.into(),
                    containers,
                    volumes,
                )
            },
            volume_claim_templates: vec![claim],
        },
    );
    config.pod.apply(&mut stateful_set);
    stateful_set
}

fn checkov_skips() -> BTreeMap<String, String> {
    k8s::official_image_checkov_skips(POSTGRES_UID)
}

mathison_plugin_sdk::export_plugin!(Postgres);

mod metrics;

#[cfg(test)]
mod tests;
