//! The recommended labels (`app.kubernetes.io/*`) every object carries.

use std::collections::BTreeMap;

use crate::Context;

/// `app.kubernetes.io/part-of`: every object rendered for Mathison.
pub const PART_OF: &str = "mathison";
/// `app.kubernetes.io/managed-by`.
pub const MANAGED_BY: &str = "mathison-host";

/// The labels that select a component's pods: name and instance. They never change across
/// upgrades, as a StatefulSet's selector must not.
pub fn selector_labels(ctx: &Context, name: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_owned(), name.to_owned()),
        (
            "app.kubernetes.io/instance".to_owned(),
            ctx.instance.clone(),
        ),
    ])
}

/// The recommended labels: the selector labels plus component, part-of, managed-by and, when it
/// is known and a valid label value, the application's version.
pub fn recommended(
    ctx: &Context,
    name: &str,
    component: &str,
    version: Option<&str>,
) -> BTreeMap<String, String> {
    let mut labels = selector_labels(ctx, name);
    labels.insert(
        "app.kubernetes.io/component".to_owned(),
        component.to_owned(),
    );
    labels.insert("app.kubernetes.io/part-of".to_owned(), PART_OF.to_owned());
    labels.insert(
        "app.kubernetes.io/managed-by".to_owned(),
        MANAGED_BY.to_owned(),
    );
    if let Some(version) = version.filter(|v| crate::validate::label_value(v).is_ok()) {
        labels.insert("app.kubernetes.io/version".to_owned(), version.to_owned());
    }
    labels
}

/// The tag of an image reference (`redis:7-alpine` → `7-alpine`), for the version label; none
/// for an untagged or digest-only reference.
pub fn image_tag(image: &str) -> Option<&str> {
    let name = image.split('@').next().unwrap_or(image);
    // A colon before the last slash belongs to a registry port, not a tag.
    let last = name.rsplit('/').next().unwrap_or(name);
    last.split_once(':').map(|(_, tag)| tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_tag() {
        assert_eq!(image_tag("redis:7-alpine"), Some("7-alpine"));
        assert_eq!(image_tag("pgvector/pgvector:pg16"), Some("pg16"));
        assert_eq!(
            image_tag("registry:5000/pgvector/pgvector:pg16"),
            Some("pg16")
        );
        assert_eq!(image_tag("registry:5000/redis"), None);
        assert_eq!(image_tag("redis:7@sha256:abc"), Some("7"));
        assert_eq!(image_tag("redis@sha256:abc"), None);
    }

    #[test]
    fn recommended_labels() {
        let ctx = crate::testing::context("ns");
        let labels = recommended(&ctx, "redis", "cache", Some("7-alpine"));
        let keys: Vec<&str> = labels.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "app.kubernetes.io/component",
                "app.kubernetes.io/instance",
                "app.kubernetes.io/managed-by",
                "app.kubernetes.io/name",
                "app.kubernetes.io/part-of",
                "app.kubernetes.io/version",
            ]
        );
        let bad_version = "x".repeat(64);
        let labels = recommended(&ctx, "redis", "cache", Some(&bad_version));
        assert!(!labels.contains_key("app.kubernetes.io/version"));
    }
}
