//! Native tests: the SDK's harness renders the plugin as the host would, without wasm.

use k8s_openapi::api::core::v1::{ConfigMap, Service};
use mathison_plugin_sdk::testing::{self, context};
use serde_json::json;

use super::{CONFIG_MAP, NAME, URL_KEY};

/// The plugin under test.
type Subject = super::{{type}}Plugin;

#[test]
fn renders_the_settings_and_the_service() {
    let out = testing::render::<Subject>(&context("demo"), json!({ "port": 9000 }))
        .unwrap_or_else(|e| panic!("render failed: {e:?}"));
    let expected = [("ConfigMap", CONFIG_MAP), ("Service", NAME)]
        .map(|(kind, name)| (kind.to_owned(), name.to_owned()));
    assert_eq!(testing::object_list(&out), expected);

    let config_map: ConfigMap = testing::object(&out, CONFIG_MAP);
    assert_eq!(config_map.data.unwrap_or_default()["log-level"], "info");
    let service: Service = testing::object(&out, NAME);
    let ports = service.spec.and_then(|s| s.ports).unwrap_or_default();
    assert_eq!(ports[0].port, 9000);
    let url = &out.connection_values()[0];
    assert_eq!(url.key, URL_KEY);
    assert_eq!(
        url.value,
        format!("http://{NAME}.demo.svc.cluster.local:9000")
    );
}

#[test]
fn a_bad_setting_name_is_refused_with_its_path() {
    let result = testing::render::<Subject>(
        &context("demo"),
        json!({ "settings": { "not/a/key": "x" } }),
    );
    assert_eq!(testing::invalid_paths(result), ["settings.not/a/key"]);
}

#[test]
fn every_setting_is_documented() {
    testing::assert_schema_complete::<Subject>();
}
