//! The plugin's Prometheus exporter: postgres_exporter beside PostgreSQL. Everything else about the
//! sidecar (settings, checks, Service port, NetworkPolicy rule, ServiceMonitor) is the SDK's
//! [`mathison_plugin_sdk::metrics`].

use k8s_openapi::api::core::v1::EnvVar;
use mathison_plugin_sdk::k8s::{self, NamedPort};
use mathison_plugin_sdk::metrics::{Exporter, Metrics};

/// postgres_exporter's registered default port (README, "Flags": `web.listen-address`).
pub(crate) const PORT: NamedPort<'static> = NamedPort {
    name: "metrics",
    port: 9187,
};
/// v0.20.1 (2026-07-07) is the exporter's latest release: it reads `DATA_SOURCE_PASS_FILE`
/// (trimmed) and knows PostgreSQL 16's statistics views. A fixed tag, never `latest`.
const IMAGE: &str = "quay.io/prometheuscommunity/postgres-exporter:v0.20.1";

/// The sidecar's settings, off, with this exporter's image.
pub(crate) fn defaults() -> Metrics {
    Metrics::off(IMAGE)
}

/// postgres_exporter over TCP on loopback (the server's own pod), as `user` with the password
/// file that PostgreSQL's entrypoint reads, mounted from the same volume. Only flags and
/// variables of the exporter's README: `DATA_SOURCE_URI` (host, port, database and parameters,
/// no credentials), `DATA_SOURCE_USER`, `DATA_SOURCE_PASS_FILE` (read and trimmed, never in the
/// environment) and `--web.listen-address`. `sslmode=disable`: the server has no certificate and
/// the connection never leaves the pod.
pub(crate) fn exporter(
    user: &str,
    database: &str,
    password_volume: &str,
    password_dir: &str,
) -> Exporter {
    let env = |name: &str, value: String| EnvVar {
        name: name.to_owned(),
        value: Some(value),
        ..Default::default()
    };
    Exporter {
        port: PORT,
        command: None,
        args: vec![format!("--web.listen-address=:{}", PORT.port)],
        env: vec![
            env(
                "DATA_SOURCE_URI",
                format!("127.0.0.1:{}/{database}?sslmode=disable", super::PORT.port),
            ),
            env("DATA_SOURCE_USER", user.to_owned()),
            env("DATA_SOURCE_PASS_FILE", format!("{password_dir}/password")),
        ],
        mounts: vec![k8s::mount(password_volume, password_dir, true)],
    }
}
