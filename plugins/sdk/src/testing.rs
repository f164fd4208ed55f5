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
/// (objects merge key by key, anything else replaces), then decoded and rendered.
pub fn render<P: Plugin>(ctx: &Context, config: Value) -> Result<Output, RenderError> {
    let mut merged = crate::schema::default_config::<P::Config>();
    merge(&mut merged, config);
    let output = crate::__private::render::<P>(ctx, &merged.to_string())?;
    if let Some(error) = output.error() {
        return Err(RenderError::Internal(error.to_owned()));
    }
    Ok(output)
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
