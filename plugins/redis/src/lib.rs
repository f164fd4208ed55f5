//! The `redis` plugin: Redis 7 as Mathison's queue and cache (BullMQ), one hardened replica in a
//! StatefulSet, reachable only from labelled client pods.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Container, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use mathison_plugin_sdk::config::Resources;
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
    /// The application's REDIS_URL then needs the secret input `redis-password`.
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
            resources: Resources::new("50m", "64Mi", "250m", "256Mi"),
            maxmemory_policy: MaxmemoryPolicy::AllkeysLru,
            client_labels: BTreeMap::from([(
                "mathison.dev/redis-client".to_owned(),
                "true".to_owned(),
            )]),
            metrics: metrics::defaults(),
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
    fn check(&self) -> Result<(), RenderError> {
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
        problems.finish()
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
             save \"\"\n",
            port = PORT.port,
            policy = self.maxmemory_policy.as_str(),
        )
    }
}

/// The plugin.
#[derive(Debug)]
pub struct Redis;

impl Plugin for Redis {
    type Config = Config;
    const NAME: &'static str = NAME;
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "Redis 7 with a memory cap, eviction policy and optional AOF persistence as a hardened single-replica StatefulSet.";

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
        let maxmemory = config.maxmemory_mib()?;
        log::info(&format!(
            "redis: maxmemory {maxmemory}mb from the memory limit {}",
            config.resources.limits.memory
        ));
        let labels = labels::recommended(ctx, NAME, "cache", labels::image_tag(&config.image));
        let selector = labels::selector_labels(ctx, NAME);
        let host = format!("{NAME}.{}.svc.cluster.local:{}", ctx.namespace, PORT.port);

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
        );
        out.push(stateful_set(ctx, &config, labels, selector));

        if config.auth.existing_secret.is_some() {
            out.secret_connection(
                "REDIS_URL",
                format!("redis://:{{secret}}@{host}"),
                "redis-password",
            );
        } else {
            out.connection("REDIS_URL", format!("redis://{host}"));
        }
        Ok(out)
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
    let container = Container {
        name: NAME.to_owned(),
        image: Some(config.image.clone()),
        image_pull_policy: Some("IfNotPresent".to_owned()),
        command: Some(command),
        ports: Some(vec![PORT.container_port()]),
        resources: Some(config.resources.to_k8s()),
        security_context: Some(k8s::container_security_context()),
        // Loading a large AOF at start answers LOADING; give it 2 minutes before liveness counts.
        startup_probe: Some(k8s::exec_probe(&probe, 5, 24)),
        liveness_probe: Some(k8s::exec_probe(&probe, 10, 6)),
        readiness_probe: Some(k8s::exec_probe(&probe, 5, 3)),
        volume_mounts: Some(mounts),
        ..Default::default()
    };
    let password = authenticated.then_some(("password", PASSWORD_DIR));
    // Guaranteed QoS needs requests equal to limits in every container.
    let guaranteed = config.resources.requests.cpu == config.resources.limits.cpu
        && config.resources.requests.memory == config.resources.limits.memory;
    let sidecar = config
        .metrics
        .sidecar(guaranteed, metrics::exporter(password));
    let containers = [container].into_iter().chain(sidecar).collect();
    let security = k8s::pod_security_context(REDIS_UID, REDIS_GID, REDIS_GID);
    k8s::stateful_set(
        ctx,
        StatefulSetParts {
            name: NAME.to_owned(),
            labels,
            selector,
            service_name: HEADLESS.to_owned(),
            annotations: k8s::official_image_checkov_skips(REDIS_UID),
            // Room for the final AOF fsync on SIGTERM.
            pod: k8s::hardened_pod_spec(security, 60, containers, volumes),
            volume_claim_templates: claims,
        },
    )
}

mathison_plugin_sdk::export_plugin!(Redis);

mod metrics;

#[cfg(test)]
mod tests;
