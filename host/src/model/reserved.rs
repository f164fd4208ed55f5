//! The names the host keeps for its own objects, which no plugin may take.

/// The origin (and output file stem) of objects the host generates itself.
pub const HOST_ORIGIN: &str = "mathison-host";
/// The name of the host's ConfigMap and Secret of connection values.
pub const CONNECTIONS_NAME: &str = "mathison-connections";

/// The annotation `--provenance` puts on every object: what made it. Only the host writes it,
/// so that it can be believed.
pub const PROVENANCE_ANNOTATION: &str = "mathison.dev/provenance";

/// The name of the Secret that is the parent of `instance`'s ApplySet (`apply --prune`).
pub fn applyset_parent_name(instance: &str) -> String {
    format!("applyset-{instance}")
}

/// The objects (kind, name) the host makes in the render namespace.
pub fn host_owned(instance: &str) -> Vec<(String, String)> {
    vec![
        ("ConfigMap".to_string(), CONNECTIONS_NAME.to_string()),
        ("Secret".to_string(), CONNECTIONS_NAME.to_string()),
        ("Secret".to_string(), applyset_parent_name(instance)),
    ]
}
