//! The plugin's Prometheus exporter: redis_exporter beside Redis. Everything else about the
//! sidecar (settings, checks, Service port, NetworkPolicy rule, ServiceMonitor) is the SDK's
//! [`mathison_plugin_sdk::metrics`].

use k8s_openapi::api::core::v1::EnvVar;
use mathison_plugin_sdk::k8s::{self, NamedPort};
use mathison_plugin_sdk::metrics::{Exporter, Metrics};

/// redis_exporter's registered default port (README, "Command line flags": `web.listen-address`).
pub(crate) const PORT: NamedPort<'static> = NamedPort {
    name: "metrics",
    port: 9121,
};
/// v1.88.0 (2026-07-23) is the exporter's latest release. The `-alpine` variant, because with a
/// password the container needs a shell to read the password file (see [`exporter`]); the
/// default image is `FROM scratch`. A fixed tag, never `latest`.
const IMAGE: &str = "oliver006/redis_exporter:v1.88.0-alpine";

/// The sidecar's settings, off, with this exporter's image.
pub(crate) fn defaults() -> Metrics {
    Metrics::off(IMAGE)
}

/// redis_exporter on loopback (the server's own pod), with only flags and variables of its
/// README ("Command line flags"): `REDIS_ADDR` and `--web.listen-address`. Its
/// `REDIS_PASSWORD_FILE` is a JSON map of addresses to passwords, not a password, so with a
/// password a shell reads the mounted Secret key into `REDIS_PASSWORD` just before exec: the
/// secret is in no environment variable of the pod spec (as for redis-server's
/// `--requirepass`), only in the exporter's own process. `set -e` stops on an unreadable file.
pub(crate) fn exporter(password: Option<(&str, &str)>) -> Exporter {
    let mut exporter = Exporter {
        port: PORT,
        command: None,
        args: vec![format!("--web.listen-address=:{}", PORT.port)],
        env: vec![EnvVar {
            name: "REDIS_ADDR".to_owned(),
            value: Some(format!("redis://127.0.0.1:{}", super::PORT.port)),
            ..Default::default()
        }],
        mounts: Vec::new(),
    };
    if let Some((volume, dir)) = password {
        let script = format!(
            "set -e; REDIS_PASSWORD=\"$(cat {dir}/password)\"; export REDIS_PASSWORD; \
             exec /redis_exporter \"$@\""
        );
        // `$0` is the exporter's name; the flags follow as `$@`.
        exporter.command = Some(vec![
            "sh".to_owned(),
            "-c".to_owned(),
            script,
            "redis_exporter".to_owned(),
        ]);
        exporter.mounts.push(k8s::mount(volume, dir, true));
    }
    exporter
}
