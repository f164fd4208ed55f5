//! `diff`: the live object against what a server-side dry run of the apply returned, as a
//! unified diff of their YAML, with Secret values masked as `kubectl diff` masks them.

use serde_json::Value;
use similar::TextDiff;

use crate::output;

/// The unified diff from `live` (absent: a new object) to `merged`, or `None` when equal.
pub fn unified(label: &str, live: Option<&Value>, merged: &Value) -> Option<String> {
    let mut live = live.map(comparable).unwrap_or(Value::Null);
    let mut merged = comparable(merged);
    if merged["kind"] == "Secret" {
        output::mask_secret(&mut live, &mut merged);
    }
    if live == merged {
        return None;
    }
    // The render's own YAML writer: what YAML 1.1 readers would read otherwise is quoted.
    let yaml = |value: &Value| match value {
        Value::Null => String::new(),
        value => output::yaml_document(value).unwrap_or_default(),
    };
    let (before, after) = (yaml(&live), yaml(&merged));
    Some(
        TextDiff::from_lines(&before, &after)
            .unified_diff()
            .header(&format!("live/{label}"), &format!("merged/{label}"))
            .to_string(),
    )
}

/// The object without what only bookkeeping changes: who manages which field.
fn comparable(object: &Value) -> Value {
    let mut object = object.clone();
    if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        metadata.remove("managedFields");
    }
    object
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn equal_objects_have_no_diff_whatever_their_managed_fields() {
        let live = json!({"kind": "ConfigMap", "metadata": {"name": "a", "managedFields": [1]}, "data": {"k": "v"}});
        let merged = json!({"kind": "ConfigMap", "metadata": {"name": "a", "managedFields": [2]}, "data": {"k": "v"}});
        assert_eq!(unified("ConfigMap/a", Some(&live), &merged), None);
    }

    #[test]
    fn changes_show_as_a_unified_diff() {
        let live = json!({"kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"k": "old"}});
        let merged = json!({"kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"k": "new"}});
        let diff = unified("v1/ConfigMap/ns/a", Some(&live), &merged).expect("a diff");
        assert!(diff.starts_with("--- live/v1/ConfigMap/ns/a\n+++ merged/v1/ConfigMap/ns/a\n"));
        assert!(diff.contains("-  k: old\n+  k: new\n"), "{diff}");
        let created = unified("x", None, &merged).expect("a diff");
        assert!(created.contains("+kind: ConfigMap"), "{created}");
    }

    #[test]
    fn secret_values_never_appear_only_whether_they_change() {
        let live = json!({"kind": "Secret", "metadata": {"name": "s"},
            "data": {"same": "c2VjcmV0", "changed": "b2xk"}});
        let merged = json!({"kind": "Secret", "metadata": {"name": "s"},
            "data": {"same": "c2VjcmV0", "changed": "bmV3", "added": "YWRk"}});
        let diff = unified("Secret/s", Some(&live), &merged).expect("a diff");
        for secret in ["c2VjcmV0", "b2xk", "bmV3", "YWRk"] {
            assert!(!diff.contains(secret), "{secret} leaked:\n{diff}");
        }
        assert!(diff.contains("-  changed: '*** (before)'"), "{diff}");
        assert!(diff.contains("+  changed: '*** (after)'"), "{diff}");
        assert!(diff.contains("+  added: '*** (after)'"), "{diff}");
        assert!(diff.contains("   same: '***'"), "{diff}");
    }
}
