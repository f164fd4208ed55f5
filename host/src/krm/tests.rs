use std::path::Path;

use serde_json::json;

use super::*;
use crate::model::object::testing::placed;

const LIST: &str = "\
apiVersion: config.kubernetes.io/v1
kind: ResourceList
items:
- kind: ConfigMap
  apiVersion: v1
  metadata:
    name: mine
    annotations:
      config.kubernetes.io/path: mine.yaml
  data: {on: 'yes'}
- apiVersion: v1
  kind: Service
  metadata: {name: redis, namespace: shop}
  spec: {ports: [{port: 1}]}
  metadata2: kept
functionConfig:
  apiVersion: mathison.dev/v1alpha1
  kind: Project
  metadata:
    name: services
    annotations:
      internal.config.kubernetes.io/package-path: /pkg
      config.kubernetes.io/path: config/mathison.yaml
  plugins:
  - name: postgres
    source: plugins/postgres.wasm
";

fn service(port: u16) -> Placed {
    placed(
        "redis",
        "Service",
        "redis",
        json!({"spec": {"ports": [{"port": port}]}, "metadata": {"name": "redis", "namespace": "shop"}, "kind": "Service", "apiVersion": "v1"}),
    )
}

#[test]
fn items_keep_their_order_fields_and_key_order() {
    let list = ResourceList::parse(LIST).unwrap();
    assert_eq!(list.format, Format::Yaml);
    assert_eq!(list.items.len(), 2);
    let text = list.to_string().unwrap();
    let again = ResourceList::parse(&text).unwrap();
    assert_eq!(again.items, list.items);
    // The first item is written with its keys as received (kind before apiVersion), and a
    // string a YAML 1.1 reader would take for a boolean stays quoted.
    assert!(
        text.contains("items:\n- kind: ConfigMap\n  apiVersion: v1\n"),
        "{text}"
    );
    assert!(text.contains("'on': 'yes'"), "{text}");
    assert!(text.starts_with("apiVersion: config.kubernetes.io/v1\nkind: ResourceList\n"));
}

#[test]
fn json_in_is_json_out() {
    let list = ResourceList::parse(
        r#"{"apiVersion":"config.kubernetes.io/v1","kind":"ResourceList","items":[]}"#,
    )
    .unwrap();
    assert_eq!(list.format, Format::Json);
    let text = list.to_string().unwrap();
    let value: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(value["kind"], "ResourceList");
    assert!(value.get("results").is_none());
}

#[test]
fn what_is_not_a_resource_list_is_refused() {
    let other = ResourceList::parse("apiVersion: v1\nkind: List\nitems: []\n").unwrap_err();
    assert!(
        other
            .to_string()
            .contains("v1 List, not a config.kubernetes.io/v1 ResourceList")
    );
    let scalar = ResourceList::parse("just text").unwrap_err();
    assert!(scalar.to_string().contains("not an object"), "{scalar}");
    let item = ResourceList::parse(
        "apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems:\n- {apiVersion: v1, kind: A}\n- {name: x}\n",
    )
    .unwrap_err();
    assert!(matches!(item, KrmError::Item { index: 1 }), "{item}");
    let not_a_list = ResourceList::parse(
        "apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems: {apiVersion: v1}\n",
    )
    .unwrap_err();
    assert!(
        matches!(not_a_list, KrmError::ItemsNotAList),
        "{not_a_list}"
    );
    assert!(ResourceList::parse("{{{").is_err());
}

#[test]
fn rendered_objects_are_added_after_the_items_with_kubectls_key_order() {
    let mut list = ResourceList::parse(LIST).unwrap();
    let postgres = placed(
        "postgres",
        "Service",
        "postgres",
        json!({"spec": {}, "metadata": {"name": "postgres"}, "kind": "Service", "apiVersion": "v1"}),
    );
    list.add(&[postgres]);
    assert_eq!(list.items.len(), 3);
    let keys: Vec<&String> = list.items[2].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["apiVersion", "kind", "metadata", "spec"]);
}

#[test]
fn an_item_a_render_made_before_is_replaced_in_place_and_adding_again_changes_nothing() {
    let mut list = ResourceList::parse(LIST).unwrap();
    let tracked = json!({"config.kubernetes.io/path": "redis.yaml", "internal.config.kubernetes.io/index": "0", "config.k8s.io/id": "2", "team": "gone"});
    list.items[1]["metadata"]["annotations"] = tracked;
    list.add(&[service(6379)]);
    assert_eq!(list.items.len(), 2, "replaced, not added");
    let replaced = &list.items[1];
    assert_eq!(replaced["spec"]["ports"][0]["port"], 6379);
    assert_eq!(
        replaced.get("metadata2"),
        None,
        "the rendered object replaces the item"
    );
    let annotations = &replaced["metadata"]["annotations"];
    assert_eq!(annotations["config.kubernetes.io/path"], "redis.yaml");
    assert_eq!(annotations["config.k8s.io/id"], "2");
    assert_eq!(
        annotations.get("team"),
        None,
        "only the tracking annotations are kept"
    );
    let once = list.items.clone();
    list.add(&[service(6379)]);
    assert_eq!(list.items, once);
}

#[test]
fn the_function_config_is_a_project_with_paths_from_its_package() {
    let list = ResourceList::parse(LIST).unwrap();
    let project = list.project().unwrap();
    assert_eq!(project.path, Path::new("/pkg/config/mathison.yaml"));
    assert_eq!(project.sources, ["/pkg/config/plugins/postgres.wasm"]);
    let (resource, file) = list.config_ref();
    let resource = resource.unwrap();
    assert_eq!(
        (resource.kind.as_str(), resource.name.as_str()),
        ("Project", "services")
    );
    assert_eq!(file.unwrap().path, "config/mathison.yaml");

    // Without kpt's annotations, paths are the working directory's.
    let mut plain = list.clone();
    plain.function_config.as_mut().unwrap()["metadata"] = json!({"name": "services"});
    let project = plain.project().unwrap();
    assert_eq!(project.sources, ["plugins/postgres.wasm"]);
}

#[test]
fn a_wrong_or_missing_function_config_says_what_is_expected_and_where() {
    let mut list = ResourceList::parse(LIST).unwrap();
    list.function_config.as_mut().unwrap()["plugins"][0]["source"] = json!(7);
    let error = list.project().unwrap_err();
    assert_eq!(error.pointer(), Some("/plugins/0/source"));
    assert_eq!(field_path(error.pointer().unwrap()), "plugins[0].source");

    list.function_config = Some(json!({"apiVersion": "v1", "kind": "ConfigMap"}));
    let error = list.project().unwrap_err();
    assert!(
        error.to_string().contains(
            "the functionConfig is v1 ConfigMap; expected a mathison.dev/v1alpha1 Project"
        ),
        "{error}"
    );
    assert_eq!(error.pointer(), None);

    list.function_config = None;
    let error = list.project().unwrap_err();
    assert!(
        error.to_string().contains("has no functionConfig"),
        "{error}"
    );
}

#[test]
fn field_paths_are_spelled_as_kpt_spells_them() {
    assert_eq!(field_path(""), "");
    assert_eq!(
        field_path("/plugins/1/values/a~1b"),
        "plugins[1].values.a/b"
    );
    assert_eq!(field_path("/namespace"), "namespace");
}

#[test]
fn results_are_written_with_their_references() {
    let mut list = ResourceList::parse(LIST).unwrap();
    let (resource_ref, file) = list.config_ref();
    list.results.push(FnResult {
        message: "bad".into(),
        severity: Severity::Error,
        resource_ref,
        field: Some(FieldRef {
            path: "plugins[0].source".into(),
        }),
        file,
    });
    let text = list.to_string().unwrap();
    let value: Value = serde_yaml::from_str(&text).unwrap();
    assert_eq!(
        value["results"][0],
        json!({"message": "bad", "severity": "error",
               "resourceRef": {"apiVersion": "mathison.dev/v1alpha1", "kind": "Project", "name": "services"},
               "field": {"path": "plugins[0].source"}, "file": {"path": "config/mathison.yaml"}})
    );
}
