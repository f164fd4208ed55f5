//! The `redis` plugin: Redis 7 as Mathison's queue and cache (BullMQ), one hardened replica in a
//! StatefulSet, reachable only from labelled client pods; or, in external mode, a managed Redis
//! outside the cluster behind an ExternalName Service.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Container, Service};
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

const NAME: &str = "redis";
const HEADLESS: &str = "redis-headless";
const CONFIG_MAP: &str = "redis-config";
const PORT: NamedPort<'static> = NamedPort {
    name: "redis",
    port: 6379,
};
/// uid of `redis` in the official image; gid 1000 owns the volumes.
const REDIS_UID: i64 = 999;
const REDIS_GID: i64 = 1000;
const CONFIG_PATH: &str = "/etc/redis/redis.conf";
const PASSWORD_DIR: &str = "/etc/redis-secret";
const MIB: i128 = 1024 * 1024;
/// Below this Redis' own overhead leaves too little room for data.
const MIN_MEMORY_LIMIT: &str = "32Mi";
/// redis.conf directives that `extraConfig` may not set: where Redis listens and stores its
/// files, its authentication, persistence and memory cap (the plugin derives or owns them), and
/// what would load or rename configuration behind the plugin's back.
const OWNED_DIRECTIVES: [&str; 27] = [
    "port",
    "tls-port",
    "bind",
    "unixsocket",
    "unixsocketperm",
    "protected-mode",
    "requirepass",
    "masterauth",
    "masteruser",
    "user",
    "aclfile",
    "dir",
    "dbfilename",
    "appendonly",
    "appendfsync",
    "appendfilename",
    "appenddirname",
    "save",
    "maxmemory",
    "maxmemory-policy",
    "include",
    "rename-command",
    "logfile",
    "daemonize",
    "supervised",
    "pidfile",
    "syslog-enabled",
];

/// The plugin's configuration.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Config {
    /// Container image of Redis 7. Pin a digest (`redis:7-alpine@sha256:...`) for reproducible
    /// deployments.
    pub image: String,
    /// The data volume.
    pub persistence: Persistence,
    /// Optional password. Off by default: the NetworkPolicy is then the only fence.
    pub auth: Auth,
    /// A managed Redis outside the cluster instead of the StatefulSet (external mode); see
    /// `external.host`.
    pub external: External,
    /// CPU and memory of the Redis container. `maxmemory` is derived from the memory limit:
    /// 75% of it without persistence, 50% with it (an AOF rewrite forks, and copy-on-write can
    /// double the memory in use), rounded down to whole MiB; e.g. 192mb for 256Mi without
    /// persistence, 128mb with it. What happens at maxmemory is `maxmemoryPolicy`.
    pub resources: Resources,
    /// What Redis does when a write would exceed `maxmemory`. `allkeys-lru` (the default) evicts
    /// the least recently used key, whatever it is: right for a cache, where any key can be
    /// recomputed. Choose `noeviction` when Redis holds data that must not vanish, such as a job
    /// queue: BullMQ requires it, since an evicted job or lock is lost silently, whereas
    /// noeviction refuses the write with an OOM error the application sees. The `volatile-*`
    /// policies evict only keys with a TTL, and do as noeviction when none has one.
    pub maxmemory_policy: MaxmemoryPolicy,
    /// Requests equal to limits (the requests given are ignored): the pod gets the Guaranteed
    /// QoS class, so under node memory pressure it is evicted last and its processes are the
    /// last the kernel's OOM killer picks. The node must have the limits free to schedule it.
    #[serde(rename = "guaranteedQoS")]
    pub guaranteed_qos: bool,
    /// Extra redis.conf lines, appended after the plugin's, e.g. `timeout 300`,
    /// `tcp-keepalive 60`, `latency-monitor-threshold 100`, `notify-keyspace-events Ex`. One
    /// directive and its arguments per line, no line breaks. Directives the plugin owns are
    /// refused (matched case-insensitively, as Redis does): port, tls-port, bind, unixsocket,
    /// unixsocketperm, protected-mode, requirepass, masterauth, masteruser, user, aclfile, dir,
    /// dbfilename, appendonly, appendfsync, appendfilename, appenddirname, save, maxmemory,
    /// maxmemory-policy (see `maxmemoryPolicy`), include, rename-command, logfile, daemonize,
    /// supervised, pidfile, syslog-enabled. Redis refuses to start on an unknown directive or
    /// a bad value.
    pub extra_config: Vec<String>,
    /// Seconds from the stop request to SIGKILL. Default 60: on SIGTERM (what Kubernetes
    /// sends) Redis fsyncs the append-only file and exits (no RDB save:
    /// `save ""`), which takes seconds even on a slow volume, so no preStop hook is needed;
    /// the margin covers an AOF rewrite in progress, which Redis aborts first.
    pub termination_grace_period_seconds: u32,
    /// The pod's placement and extras.
    pub pod: PodOptions,
    /// An optional PodDisruptionBudget (see its `enabled`).
    pub pod_disruption_budget: DisruptionBudget,
    /// The client Service (`redis`); the headless one stays headless.
    pub service: ServiceOptions,
    /// Timing of the liveness and readiness probes (their commands are the plugin's). Default:
    /// liveness every 10 s, failing after 6 (a minute of silence before a restart), readiness
    /// every 5 s, failing after 3; 5 s per run.
    pub probes: Probes,
    /// Extra environment variables of the Redis container (name: value), e.g. `TZ`.
    /// REDISCLI_AUTH, which the probes set, is refused.
    pub extra_env: BTreeMap<String, String>,
    /// Labels that a pod must carry to reach Redis on 6379; the NetworkPolicy refuses every other
    /// pod. A dedicated opt-in label (rather than `app.kubernetes.io/part-of: mathison`, which
    /// PostgreSQL carries too) grants Redis to exactly the pods that need it. Clients must run in
    /// the same namespace.
    pub client_labels: BTreeMap<String, String>,
    /// A Prometheus exporter sidecar (redis_exporter on port 9121, connecting to
    /// redis://127.0.0.1:6379 with the same password file when `auth.existingSecret` is set) and
    /// its Service port, NetworkPolicy rule and optional ServiceMonitor; off by default.
    pub metrics: mathison_plugin_sdk::metrics::Metrics,
}

/// A managed Redis: external mode when `host` is set.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct External {
    /// Lower-case DNS name, not an IP address (the Service redis becomes its ExternalName alias,
    /// a DNS CNAME, which can only point at a name), of a managed Redis (Amazon ElastiCache,
    /// Memorystore, Azure Cache for Redis...) to use instead of the in-cluster one; null (the
    /// default) runs Redis in the cluster. Set, the plugin renders none of the in-cluster
    /// server's objects (StatefulSet and its volume claim, ConfigMap, NetworkPolicy,
    /// PodDisruptionBudget, metrics), only the Service `redis` of type ExternalName, so that
    /// `redis.<namespace>.svc.cluster.local` still resolves for clients that dial it (on
    /// `external.port`: an alias maps no ports). REDIS_URL names this host itself, since a TLS
    /// certificate names it and not the alias: `rediss://` with `external.tls`, then
    /// `external.username`, the password and `/external.db`. With `auth.existingSecret` set
    /// (the Secret holding the password, which nothing mounts in this mode) REDIS_URL carries
    /// the password through the secret input `redis-password`, as in the cluster. The
    /// in-cluster server's options (image, resources, persistence, maxmemoryPolicy,
    /// extraConfig, pod, probes...) are unused: set eviction on the managed service, where
    /// BullMQ needs noeviction too; metrics.enabled, podDisruptionBudget.enabled and a
    /// service.type other than ClusterIP are refused. A queue's jobs live in Redis: drain the
    /// workers, or copy the keys (e.g. `redis-cli --rdb` to save a snapshot and the provider's
    /// import), before switching, then render and apply. `apply --prune` deletes the StatefulSet
    /// and the other in-cluster objects but keeps the volume claim `data-redis-0` (its
    /// persistentVolumeClaimRetentionPolicy is Retain) until you delete it.
    #[schemars(regex(pattern = validate::EXTERNAL_HOST_PATTERN), length(max = 253))]
    pub host: Option<String>,
    /// TCP port of the managed Redis (1 to 65535).
    #[schemars(range(min = 1))]
    pub port: u16,
    /// TLS (`rediss://` in REDIS_URL). On by default: the connection leaves the cluster, and
    /// managed services offer in-transit encryption (some require it). Clients verify the
    /// certificate against the host name in the URL, which is why REDIS_URL names `host`.
    pub tls: bool,
    /// The ACL user (Redis 6+) in REDIS_URL; null: the `default` user. Letters, digits and
    /// `-._~`, so that it needs no encoding in the URL.
    #[schemars(regex(pattern = r"^[A-Za-z0-9._~-]+$"))]
    pub username: Option<String>,
    /// The logical database in REDIS_URL (`/db`); null: the server's default, 0 (cluster-mode
    /// services have only that one).
    pub db: Option<u16>,
}

/// Redis' `maxmemory-policy`, one of its eight eviction policies. The variants carry no doc
/// comments, so that the schema is a plain string `enum` (see `Config::maxmemory_policy`).
#[derive(Clone, Copy, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum MaxmemoryPolicy {
    Noeviction,
    AllkeysLru,
    AllkeysLfu,
    AllkeysRandom,
    VolatileLru,
    VolatileLfu,
    VolatileRandom,
    VolatileTtl,
}

impl MaxmemoryPolicy {
    /// The name in redis.conf, as serde writes it.
    fn as_str(self) -> &'static str {
        match self {
            Self::Noeviction => "noeviction",
            Self::AllkeysLru => "allkeys-lru",
            Self::AllkeysLfu => "allkeys-lfu",
            Self::AllkeysRandom => "allkeys-random",
            Self::VolatileLru => "volatile-lru",
            Self::VolatileLfu => "volatile-lfu",
            Self::VolatileRandom => "volatile-random",
            Self::VolatileTtl => "volatile-ttl",
        }
    }
}

/// The data volume.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Persistence {
    /// Keep data across restarts: a ReadWriteOnce volume claim and the append-only file
    /// (fsync every second). When false, data lives in an emptyDir and is lost with the pod,
    /// with the AOF off. RDB snapshots are off either way (`save ""`): the AOF is the copy.
    pub enabled: bool,
    /// Size of the volume claim, as a Kubernetes quantity ("1Gi"); used when enabled.
    pub size: Quantity,
    /// StorageClass of the claim; null uses the cluster's default class.
    pub storage_class_name: Option<String>,
}

/// Where the password comes from.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Auth {
    /// An existing Secret in the namespace holding the password; null means no password. It is
    /// mounted as a file (never put in the pod's environment) and passed as `--requirepass`.
    /// The application's REDIS_URL then needs the secret input `redis-password`. In external
    /// mode nothing mounts it: set it when the managed Redis asks for a password.
    pub existing_secret: Option<String>,
    /// The key of the password in that Secret.
    pub key: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            image: "redis:7-alpine".to_owned(),
            persistence: Persistence::default(),
            auth: Auth::default(),
            external: External::default(),
            resources: Resources::new("50m", "64Mi", "250m", "256Mi"),
            maxmemory_policy: MaxmemoryPolicy::AllkeysLru,
            guaranteed_qos: false,
            extra_config: Vec::new(),
            termination_grace_period_seconds: 60,
            pod: PodOptions::default(),
            pod_disruption_budget: DisruptionBudget::allowing_drains(),
            service: ServiceOptions::default(),
            probes: Probes {
                liveness: ProbeTiming::new(10, 5, 6),
                readiness: ProbeTiming::new(5, 5, 3),
            },
            extra_env: BTreeMap::new(),
            client_labels: BTreeMap::from([(
                "mathison.dev/redis-client".to_owned(),
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
            tls: true,
            username: None,
            db: None,
        }
    }
}

impl Default for Persistence {
    fn default() -> Self {
        Self {
            enabled: true,
            size: Quantity::from_static("1Gi"),
            storage_class_name: None,
        }
    }
}

impl Default for Auth {
    fn default() -> Self {
        Self {
            existing_secret: None,
            key: "redis-password".to_owned(),
        }
    }
}

impl Config {
    fn check(&self, labels: &BTreeMap<String, String>) -> Result<(), RenderError> {
        let mut problems = Problems::default();
        problems.check("image", validate::image(&self.image));
        problems.positive("persistence.size", &self.persistence.size);
        if let Some(class) = &self.persistence.storage_class_name {
            problems.check(
                "persistence.storageClassName",
                validate::dns_subdomain(class),
            );
        }
        if let Some(secret) = &self.auth.existing_secret {
            problems.check("auth.existingSecret", validate::dns_subdomain(secret));
        }
        problems.check("auth.key", validate::data_key(&self.auth.key));
        self.resources.check(&mut problems, "resources");
        if self.resources.limits.memory < Quantity::from_static(MIN_MEMORY_LIMIT) {
            problems.add(
                "resources.limits.memory",
                format!(
                    "\"{}\" leaves Redis too little memory; use at least {MIN_MEMORY_LIMIT}",
                    self.resources.limits.memory
                ),
            );
        }
        validate::selector(&mut problems, "clientLabels", &self.client_labels);
        self.metrics.check(&mut problems);
        for (i, line) in self.extra_config.iter().enumerate() {
            problems.check(format!("extraConfig[{i}]"), extra_config_line(line));
        }
        self.pod
            .check(&mut problems, "pod", labels, &checkov_skips());
        self.pod_disruption_budget
            .check(&mut problems, "podDisruptionBudget");
        self.service.check(&mut problems, "service");
        self.probes.check(&mut problems, "probes");
        check_extra_env(
            &mut problems,
            "extraEnv",
            &self.extra_env,
            &["REDISCLI_AUTH"],
        );
        self.check_external(&mut problems);
        problems.finish()
    }

    /// The managed server's address and user, and the in-cluster server's opt-ins, which have
    /// nothing to act on in external mode: refused rather than silently dropped.
    fn check_external(&self, problems: &mut Problems) {
        let Some(host) = &self.external.host else {
            return;
        };
        problems.check("external.host", validate::external_host(host));
        problems.check("external.port", validate::port(self.external.port));
        if let Some(user) = &self.external.username {
            problems.check("external.username", username(user));
        }
        refuse_server_opt_ins(
            problems,
            NAME,
            self.metrics.enabled,
            &self.pod_disruption_budget,
            &self.service,
        );
    }

    /// `maxmemory` in MiB (Redis' `mb`): see the `resources` description for the formula.
    fn maxmemory_mib(&self) -> Result<i128, RenderError> {
        let limit = self.resources.limits.memory.value().ok_or_else(|| {
            RenderError::Internal(format!(
                "memory limit {} overflows",
                self.resources.limits.memory
            ))
        })?;
        let percent = if self.persistence.enabled { 50 } else { 75 };
        Ok(limit * percent / 100 / MIB)
    }

    fn redis_conf(&self, maxmemory_mib: i128) -> String {
        let aof = if self.persistence.enabled {
            "appendonly yes\nappendfsync everysec\n"
        } else {
            "appendonly no\n"
        };
        format!(
            "# Rendered by the mathison-host redis plugin.\n\
             port {port}\n\
             bind * -::*\n\
             # No password by default: the NetworkPolicy admits only client pods.\n\
             protected-mode no\n\
             dir /data\n\
             maxmemory {maxmemory_mib}mb\n\
             maxmemory-policy {policy}\n\
             {aof}\
             # No RDB snapshots: the AOF, when on, is the copy, and while any `save` rule is set\n\
             # one failed background save (a full disk) makes Redis refuse every write.\n\
             save \"\"\n\
             {extra}",
            port = PORT.port,
            policy = self.maxmemory_policy.as_str(),
            extra = self.extra_config_text(),
        )
    }

    fn extra_config_text(&self) -> String {
        if self.extra_config.is_empty() {
            return String::new();
        }
        let mut text = String::from("# extraConfig\n");
        for line in &self.extra_config {
            text.push_str(line.trim());
            text.push('\n');
        }
        text
    }
}

/// The plugin.
#[derive(Debug)]
pub struct Redis;

impl Plugin for Redis {
    type Config = Config;
    const NAME: &'static str = NAME;
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "Redis 7 with a memory cap, eviction policy and optional AOF persistence as a hardened single-replica StatefulSet, or a managed Redis outside the cluster behind an ExternalName Service (external.host).";

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
        let labels = labels::recommended(ctx, NAME, "cache", version);
        config.check(&labels)?;
        if let Some(host) = &config.external.host {
            return Ok(render_external(ctx, &config, host, &labels));
        }
        let maxmemory = config.maxmemory_mib()?;
        log::info(&format!(
            "redis: maxmemory {maxmemory}mb from the memory limit {}",
            config.resources.limits.memory
        ));
        let selector = labels::selector_labels(ctx, NAME);
        let address = format!("{NAME}.{}.svc.cluster.local:{}", ctx.namespace, PORT.port);

        let mut out = Output::default();
        out.push(ConfigMap {
            metadata: k8s::meta(ctx, CONFIG_MAP, &labels),
            data: Some(BTreeMap::from([(
                "redis.conf".to_owned(),
                config.redis_conf(maxmemory),
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
            &config.service,
        );
        if let Some(budget) = config
            .pod_disruption_budget
            .to_k8s(ctx, NAME, &labels, &selector)
        {
            out.push(budget);
        }
        out.push(stateful_set(ctx, &config, labels, selector));

        push_url(&mut out, &config, "redis", None, &address);
        Ok(out)
    }
}

/// External mode: the ExternalName alias of the managed server and REDIS_URL.
fn render_external(
    ctx: &Context,
    config: &Config,
    host: &str,
    labels: &BTreeMap<String, String>,
) -> Output {
    let external = &config.external;
    if !external.tls {
        log::warn(&format!(
            "redis: external.tls is off: the password and the data cross the network to {host} \
             in clear text"
        ));
    }
    let mut out = Output::default();
    out.push(k8s::external_name_service(ctx, NAME, labels, host));
    let scheme = if external.tls { "rediss" } else { "redis" };
    let db = external.db.map(|db| format!("/{db}")).unwrap_or_default();
    let address = format!("{host}:{}{db}", external.port);
    push_url(
        &mut out,
        config,
        scheme,
        external.username.as_deref(),
        &address,
    );
    out
}

/// REDIS_URL, in both modes: `address` is host, port and optional `/db`. With a password it is
/// a secret connection value, filled in by the host from the secret input `redis-password`.
fn push_url(out: &mut Output, config: &Config, scheme: &str, user: Option<&str>, address: &str) {
    let user = user.unwrap_or_default();
    if config.auth.existing_secret.is_some() {
        out.secret_connection(
            "REDIS_URL",
            format!("{scheme}://{user}:{{secret}}@{address}"),
            "redis-password",
        );
    } else if user.is_empty() {
        out.connection("REDIS_URL", format!("{scheme}://{address}"));
    } else {
        out.connection("REDIS_URL", format!("{scheme}://{user}@{address}"));
    }
}

fn stateful_set(
    ctx: &Context,
    config: &Config,
    labels: BTreeMap<String, String>,
    selector: BTreeMap<String, String>,
) -> StatefulSet {
    let password_file = format!("{PASSWORD_DIR}/password");
    let authenticated = config.auth.existing_secret.is_some();
    // With a password the secret is read from its file by a shell, so that it appears in no
    // environment variable of the pod spec; redis-cli takes it from REDISCLI_AUTH, never `-a`.
    let (command, cli_auth) = if authenticated {
        let server =
            format!("exec redis-server {CONFIG_PATH} --requirepass \"$(cat {password_file})\"");
        (
            vec!["sh".to_owned(), "-c".to_owned(), server],
            format!("REDISCLI_AUTH=\"$(cat {password_file})\" "),
        )
    } else {
        (
            vec!["redis-server".to_owned(), CONFIG_PATH.to_owned()],
            String::new(),
        )
    };
    // `redis-cli ping` exits 0 even when the reply is NOAUTH or LOADING: compare it with PONG.
    let ping = format!(
        "[ \"$({cli_auth}redis-cli -h 127.0.0.1 -p {} ping)\" = PONG ]",
        PORT.port
    );
    let probe = ["sh", "-c", ping.as_str()];
    let mut mounts = vec![
        k8s::mount("data", "/data", false),
        k8s::mount("config", "/etc/redis", true),
    ];
    let mut volumes = vec![k8s::config_map_volume("config", CONFIG_MAP)];
    if let Some(secret) = &config.auth.existing_secret {
        mounts.push(k8s::mount("password", PASSWORD_DIR, true));
        volumes.push(k8s::secret_volume(
            "password",
            secret,
            &[(&config.auth.key, "password")],
        ));
    }
    let mut claims = Vec::new();
    if config.persistence.enabled {
        // Selector labels only: volume claim templates are immutable, a version label would change.
        claims.push(k8s::volume_claim_template(
            "data",
            &selector,
            &config.persistence.size,
            config.persistence.storage_class_name.as_deref(),
        ));
    } else {
        volumes.push(k8s::empty_dir("data"));
    }
    let mut container = Container {
        name: NAME.to_owned(),
        image: Some(config.image.clone()),
        image_pull_policy: Some("IfNotPresent".to_owned()),
        command: Some(command),
        ports: Some(vec![PORT.container_port()]),
        resources: Some(config.resources.to_k8s_qos(config.guaranteed_qos)),
        security_context: Some(k8s::container_security_context()),
        // Loading a large AOF at start answers LOADING; give it 2 minutes before liveness counts.
        startup_probe: Some(k8s::exec_probe(&probe, 5, 24)),
        liveness_probe: Some(config.probes.liveness.exec_probe(&probe)),
        readiness_probe: Some(config.probes.readiness.exec_probe(&probe)),
        volume_mounts: Some(mounts),
        ..Default::default()
    };
    add_extra_env(&mut container, &config.extra_env);
    let password = authenticated.then_some(("password", PASSWORD_DIR));
    // Guaranteed QoS needs requests equal to limits in every container: asked for, or given by
    // Redis' own resources.
    let guaranteed = config.guaranteed_qos
        || (config.resources.requests.cpu == config.resources.limits.cpu
            && config.resources.requests.memory == config.resources.limits.memory);
    let sidecar = config
        .metrics
        .sidecar(guaranteed, metrics::exporter(password));
    let containers = [container].into_iter().chain(sidecar).collect();
    let security = k8s::pod_security_context(REDIS_UID, REDIS_GID, REDIS_GID);
    let mut stateful_set = k8s::stateful_set(
        ctx,
        StatefulSetParts {
            name: NAME.to_owned(),
            labels,
            selector,
            service_name: HEADLESS.to_owned(),
            annotations: checkov_skips(),
            // Room for the final AOF fsync on SIGTERM (see `terminationGracePeriodSeconds`).
            pod: k8s::hardened_pod_spec(
                security,
                config.termination_grace_period_seconds.into(),
                containers,
                volumes,
            ),
            volume_claim_templates: claims,
        },
    );
    config.pod.apply(&mut stateful_set);
    stateful_set
}

fn checkov_skips() -> BTreeMap<String, String> {
    k8s::official_image_checkov_skips(REDIS_UID)
}

/// An ACL user name that goes into REDIS_URL as it is: URL-unreserved characters only.
fn username(value: &str) -> Result<(), String> {
    let ok = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c));
    ok.then_some(()).ok_or_else(|| {
        format!("{value:?} is not a user name of letters, digits and '-', '.', '_', '~'")
    })
}

/// One redis.conf line the user may add: a single line whose directive (Redis matches them
/// case-insensitively) the plugin does not own.
fn extra_config_line(line: &str) -> Result<(), String> {
    if line.contains(['\n', '\r', '\0']) {
        return Err(format!("{line:?} must be a single line"));
    }
    let directive = line.split_whitespace().next().unwrap_or_default();
    let plain = !directive.is_empty()
        && directive
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-');
    if !plain {
        return Err(format!(
            "{line:?} does not start with a directive name (letters, digits and '-')"
        ));
    }
    let lower = directive.to_ascii_lowercase();
    if OWNED_DIRECTIVES.contains(&lower.as_str()) {
        return Err(format!(
            "{lower} is set by the plugin; the manifest depends on its value"
        ));
    }
    Ok(())
}

mathison_plugin_sdk::export_plugin!(Redis);

mod metrics;

#[cfg(test)]
mod tests;
