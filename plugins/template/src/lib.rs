//! The `{{name}}` plugin for mathison-host: a ConfigMap of settings and the Service that clients
//! reach the backing service through. Replace them with what your service needs (the SDK's `k8s`
//! module builds hardened StatefulSets, NetworkPolicies and volumes).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Service};
use mathison_plugin_sdk::k8s::{self, NamedPort};
use mathison_plugin_sdk::validate::{self, Problems};
use mathison_plugin_sdk::{Context, KindRef, Output, Plugin, RenderError, labels, log};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

const NAME: &str = "{{name}}";
const CONFIG_MAP: &str = "{{name}}-config";
/// The connection value that tells the application where the service is.
const URL_KEY: &str = "{{env_prefix}}_URL";

/// The plugin's configuration. Doc comments become the schema's descriptions and `Default` its
/// defaults, so the schema the host validates against cannot drift from this code.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Config {
    /// The TCP port the service listens on and its Service exposes.
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
    /// Settings of the service, one file each in the ConfigMap `{{name}}-config`.
    pub settings: BTreeMap<String, String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            port: 8080,
            settings: BTreeMap::from([("log-level".to_owned(), "info".to_owned())]),
        }
    }
}

impl Config {
    /// What the schema cannot say, reported with each field's path.
    fn check(&self) -> Result<(), RenderError> {
        let mut problems = Problems::default();
        for key in self.settings.keys() {
            problems.check(format!("settings.{key}"), validate::data_key(key));
        }
        problems.finish()
    }
}

/// The plugin.
#[derive(Debug)]
pub struct {{type}}Plugin;

impl Plugin for {{type}}Plugin {
    type Config = Config;
    const NAME: &'static str = NAME;
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "{{name}}: its settings and its Service.";

    fn kinds() -> Vec<KindRef> {
        vec![KindRef::of::<ConfigMap>(), KindRef::of::<Service>()]
    }

    fn render(ctx: &Context, config: Config) -> Result<Output, RenderError> {
        config.check()?;
        // Shown by `mathison-host -v render ...`.
        log::debug(&format!("{NAME}: {} settings", config.settings.len()));
        let labels = labels::recommended(ctx, NAME, "backing-service", None);
        let selector = labels::selector_labels(ctx, NAME);
        let port = NamedPort {
            name: "service",
            port: config.port,
        };
        let url = format!(
            "http://{NAME}.{}.svc.cluster.local:{}",
            ctx.namespace, port.port
        );
        let mut out = Output::default();
        out.push(ConfigMap {
            metadata: k8s::meta(ctx, CONFIG_MAP, &labels),
            data: Some(config.settings),
            ..Default::default()
        })
        .push(k8s::cluster_ip_service(ctx, NAME, &labels, &selector, &[port]))
        // The host gathers connection values into the ConfigMap `mathison-connections`.
        .connection(URL_KEY, url);
        Ok(out)
    }
}

mathison_plugin_sdk::export_plugin!({{type}}Plugin);

#[cfg(test)]
mod tests;
