//! `schema`: the JSON Schemas of the project file and of values files, for editors.

use std::fs;

use mathison_test_artifacts::{
    HOSTILE_INFO_REF_FAN_OUT, HOSTILE_INFO_SELF_REFERENCE, HOSTILE_INFO_TERMINAL,
};
use serde_json::{Value, json};

use crate::support::{Host, POSTGRES, REDIS};

const DRAFT_2020_12: &str = "https://json-schema.org/draft/2020-12/schema";

fn values_schema(host: &Host, plugins: &[&str]) -> (String, Value) {
    let mut args = vec!["schema"];
    for plugin in plugins {
        args.extend(["-p", plugin]);
    }
    let stdout = host.run(&args).success().stdout;
    let schema = serde_json::from_str(&stdout).expect("a JSON Schema");
    (stdout, schema)
}

/// Where `instance` breaks `schema`, as JSON pointers.
fn errors(schema: &Value, instance: &Value) -> Vec<String> {
    jsonschema::validator_for(schema)
        .expect("a valid schema")
        .iter_errors(instance)
        .map(|error| error.instance_path().as_str().to_string())
        .collect()
}

#[test]
fn values_schema_has_a_section_per_plugin_and_no_other() {
    let host = Host::new();
    let (first, schema) = values_schema(&host, &[POSTGRES, REDIS]);
    let (second, _) = values_schema(&host, &[POSTGRES, REDIS]);
    assert_eq!(first, second, "the same plugins give the same schema");

    assert_eq!(schema["$schema"], DRAFT_2020_12);
    assert_eq!(schema["additionalProperties"], false);
    let sections: Vec<&String> = schema["properties"]
        .as_object()
        .expect("properties")
        .keys()
        .collect();
    assert_eq!(sections, ["postgres", "redis"]);
    // Each section is the plugin's own schema, as inspect shows it.
    for (plugin, name) in [(POSTGRES, "postgres"), (REDIS, "redis")] {
        let inspected = host.run(&["inspect", plugin, "--format", "json"]).success();
        let own: Value = serde_json::from_str(&inspected.stdout).expect("JSON");
        let options = |schema: &Value| {
            let properties = schema["properties"].as_object().expect("properties");
            properties.keys().cloned().collect::<Vec<_>>()
        };
        assert_eq!(own["schema"]["$schema"], DRAFT_2020_12);
        assert_eq!(
            options(&schema["$defs"][name]),
            options(&own["schema"]),
            "{name}"
        );
        assert_eq!(
            schema["properties"][name]["$ref"],
            format!("#/$defs/{name}")
        );
    }

    for golden in ["custom-values.yaml", "production-values.yaml"] {
        let path = format!("{}/../tests/golden/{golden}", env!("CARGO_MANIFEST_DIR"));
        let text = fs::read_to_string(path).expect("read the golden values");
        let values: Value = serde_yaml::from_str(&text).expect("YAML");
        assert_eq!(errors(&schema, &values), Vec::<String>::new(), "{golden}");
    }
    assert_eq!(
        errors(
            &schema,
            &json!({"redis": {"persistence": {"enabled": "yes"}}})
        ),
        ["/redis/persistence/enabled"]
    );
    assert_eq!(errors(&schema, &json!({"minio": {}})), [""]);
    // What the defaults set is not required of a section, as a render merges it over them;
    // the keys of a list item are, as a render takes the list as it is.
    let resources = json!({"postgres": {"resources": {"limits": {"memory": "1Gi"}}}});
    assert_eq!(errors(&schema, &resources), Vec::<String>::new());
    let rule = json!({"postgres": {"pgHba": [{"type": "host"}]}});
    // database, user and method.
    assert_eq!(errors(&schema, &rule), ["/postgres/pgHba/0"; 3]);
}

#[test]
fn a_plugin_schema_that_refers_to_itself_keeps_its_references() {
    let (_, schema) = values_schema(&Host::new(), &[HOSTILE_INFO_SELF_REFERENCE]);
    assert_eq!(
        schema["$defs"]["hostile-info"]["properties"]["left"]["$ref"],
        "#/$defs/hostile-info"
    );
    let tree = |leaf: Value| json!({"hostile-info": {"left": {"right": {"up": {"down": leaf}}}}});
    assert_eq!(errors(&schema, &tree(json!({}))), Vec::<String>::new());
    // "#" left as it was would be the values file's root, which has no section "left".
    assert_eq!(
        errors(&schema, &tree(json!(5))),
        ["/hostile-info/left/right/up/down"]
    );
}

#[test]
fn plugin_text_in_a_values_schema_is_escaped() {
    let (stdout, schema) = values_schema(&Host::new(), &[HOSTILE_INFO_TERMINAL]);
    assert!(
        !stdout.chars().any(|c| c != '\n' && c.is_control()),
        "{stdout}"
    );
    let mode = &schema["$defs"]["hostile-info"]["properties"]["mode"];
    assert_eq!(mode["description"], "\u{1b}]0;owned\u{7}\nnote: forged");
}

#[test]
fn schema_takes_a_file_or_plugins_and_checks_the_plugins_as_a_render_does() {
    let host = Host::new();
    assert_eq!(host.run(&["schema"]).code, Some(2));
    assert_eq!(host.run(&["schema", "project", "-p", REDIS]).code, Some(2));
    let project = host.run(&["schema", "project"]).success();
    let project: Value = serde_json::from_str(&project.stdout).expect("JSON");
    assert!(
        project["properties"].get("plugins").is_some(),
        "{project:#}"
    );

    fs::copy(REDIS, host.path("other.wasm")).expect("copy plugin");
    host.run(&["schema", "-p", REDIS, "-p", "other.wasm"])
        .failure("are both named \"redis\"");
    host.run(&["schema", "-p", HOSTILE_INFO_REF_FAN_OUT])
        .failure("expands to more than 100000 nodes through its $refs");
}
