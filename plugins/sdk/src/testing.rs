//! Render a plugin natively in unit tests, without a host or a wasm build.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::Value;

use crate::{Context, Output, Plugin, RenderError};

/// A render context for `namespace`, with instance `mathison`.
pub fn context(namespace: &str) -> Context {
    Context {
        namespace: namespace.to_owned(),
        instance: "mathison".to_owned(),
        host_version: "0.0.0-test".to_owned(),
    }
}

/// Renders `P` as the host would: `config` merged over the plugin's default configuration
/// (objects merge key by key, anything else replaces), then decoded and rendered. Like the
/// host, it fails when an object's kind is not declared in [`Plugin::kinds`].
pub fn render<P: Plugin>(ctx: &Context, config: Value) -> Result<Output, RenderError> {
    let mut merged = crate::schema::default_config::<P::Config>();
    merge(&mut merged, config);
    let output = crate::__private::render::<P>(ctx, &merged.to_string())?;
    if let Some(error) = output.error() {
        return Err(RenderError::Internal(error.to_owned()));
    }
    let declared = P::kinds();
    let undeclared = output.objects().iter().find(|object| {
        !declared
            .iter()
            .any(|k| k.api_version == object.api_version && k.kind == object.kind)
    });
    match undeclared {
        Some(object) => Err(RenderError::Internal(format!(
            "{} {} is of a kind that kinds() does not declare ({}); the host refuses it",
            object.kind, object.name, object.api_version
        ))),
        None => Ok(output),
    }
}

fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(base), Value::Object(over)) => {
            for (key, value) in over {
                merge(base.entry(key).or_insert(Value::Null), value);
            }
        }
        (base, over) => *base = over,
    }
}

/// The configuration schema, as `info` returns it, parsed.
pub fn schema<P: Plugin>() -> Value {
    crate::schema::config_schema::<P::Config>()
}

/// Decodes the object of type `K` named `name`.
///
/// # Panics
///
/// If there is none, or its body does not decode: in a test that is the failure to report.
pub fn object<K>(output: &Output, name: &str) -> K
where
    K: k8s_openapi::Resource + k8s_openapi::Metadata<Ty = ObjectMeta> + serde::de::DeserializeOwned,
{
    let found = output
        .objects()
        .iter()
        .find(|o| o.kind == K::KIND && o.api_version == K::API_VERSION && o.name == name)
        .unwrap_or_else(|| panic!("no {} named {name} in the output", K::KIND));
    serde_json::from_str(&found.body)
        .unwrap_or_else(|e| panic!("{} {name} does not decode: {e}", K::KIND))
}

/// `(kind, name)` of every object, sorted, for asserting the object list.
pub fn object_list(output: &Output) -> Vec<(String, String)> {
    let mut list: Vec<_> = output
        .objects()
        .iter()
        .map(|o| (o.kind.clone(), o.name.clone()))
        .collect();
    list.sort();
    list
}

/// The field paths of an `invalid-config` error.
///
/// # Panics
///
/// If the result is not `invalid-config`.
pub fn invalid_paths(result: Result<Output, RenderError>) -> Vec<String> {
    match result {
        Err(RenderError::InvalidConfig(errors)) => errors.into_iter().map(|e| e.path).collect(),
        Err(other) => panic!("expected invalid-config, got {other:?}"),
        Ok(output) => panic!(
            "expected invalid-config, got {} objects",
            output.objects().len()
        ),
    }
}

/// Checks what the host relies on in a configuration schema: every struct refuses unknown
/// properties, every property has a description and a default.
///
/// # Panics
///
/// With the JSON pointer of the first property that lacks one of them.
pub fn assert_schema_complete<P: Plugin>() {
    fn walk(schema: &Value, pointer: &str) {
        // Objects with named properties are structs; maps (`additionalProperties: {...}`) are
        // open by design.
        if schema.get("properties").is_some() {
            assert_eq!(
                schema.get("additionalProperties"),
                Some(&Value::Bool(false)),
                "{pointer} accepts unknown properties"
            );
        }
        if let Some(Value::Object(properties)) = schema.get("properties") {
            for (key, property) in properties {
                let pointer = format!("{pointer}/properties/{key}");
                assert!(
                    property.get("description").is_some(),
                    "{pointer} has no description"
                );
                assert!(
                    property.get("default").is_some(),
                    "{pointer} has no default"
                );
                walk(property, &pointer);
            }
        }
    }
    walk(&schema::<P>(), "");
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{ConfigMap, Secret};

    use super::*;
    use crate::KindRef;

    /// Declares ConfigMaps; renders a Secret as well when `secret` is set.
    #[derive(Debug)]
    struct ForgetsAKind;

    #[derive(Debug, Default, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
    #[serde(default, deny_unknown_fields)]
    struct Config {
        /// Whether to render the undeclared Secret.
        secret: bool,
    }

    impl Plugin for ForgetsAKind {
        type Config = Config;
        const NAME: &'static str = "forgets-a-kind";
        const VERSION: &'static str = "0.1.0";
        const DESCRIPTION: &'static str = "Renders a kind it does not declare.";

        fn kinds() -> Vec<KindRef> {
            vec![KindRef::of::<ConfigMap>()]
        }

        fn render(ctx: &Context, config: Config) -> Result<Output, RenderError> {
            let meta = |name: &str| crate::k8s::meta(ctx, name, &Default::default());
            let mut out = Output::default();
            out.push(ConfigMap {
                metadata: meta("settings"),
                ..Default::default()
            });
            if config.secret {
                out.push(Secret {
                    metadata: meta("password"),
                    ..Default::default()
                });
            }
            Ok(out)
        }
    }

    #[test]
    fn an_undeclared_kind_fails_the_render_as_in_the_host() {
        let ctx = context("ns");
        assert!(render::<ForgetsAKind>(&ctx, serde_json::json!({})).is_ok());
        match render::<ForgetsAKind>(&ctx, serde_json::json!({ "secret": true })) {
            Err(RenderError::Internal(message)) => {
                assert!(message.starts_with("Secret password is of a kind that kinds() does not"));
            }
            other => panic!("expected an error for the Secret, got {other:?}"),
        }
    }
}
