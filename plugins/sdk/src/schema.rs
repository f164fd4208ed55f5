//! The configuration schema and defaults, derived from the plugin's `Config` type.

use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde_json::Value;

/// The serialized `Config::default()`.
pub(crate) fn default_config<C: serde::Serialize + Default>() -> Value {
    // A plain configuration struct always serializes; failing here is a bug in the plugin, and
    // `info` has no error result to report it through.
    serde_json::to_value(C::default()).expect("the default configuration serializes to JSON")
}

/// The draft 2020-12 schema of `C`, inlined (no `$defs`) so that every property, however deep,
/// carries its own `default` taken from `C::default()`: a shared sub-type (say `requests` and
/// `limits`) then shows the right default at each place it is used.
pub(crate) fn config_schema<C: JsonSchema + serde::Serialize + Default>() -> Value {
    let generator = SchemaSettings::draft2020_12()
        .for_deserialize()
        .with(|s| s.inline_subschemas = true)
        .into_generator();
    let mut schema = generator.into_root_schema_for::<C>().to_value();
    add_defaults(&mut schema, &default_config::<C>());
    schema
}

fn add_defaults(schema: &mut Value, default: &Value) {
    let (Some(Value::Object(properties)), Value::Object(defaults)) =
        (schema.get_mut("properties"), default)
    else {
        return;
    };
    for (key, property) in properties.iter_mut() {
        let Some(default) = defaults.get(key) else {
            continue;
        };
        if let Value::Object(property) = property {
            property.entry("default").or_insert_with(|| default.clone());
        }
        add_defaults(property, default);
    }
}
