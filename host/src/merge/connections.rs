//! The connection values of all plugins (DATABASE_URL, REDIS_URL, ...) as the host's own
//! ConfigMap `mathison-connections` and, for values that carry a user-supplied secret, the
//! Secret of the same name. Only the host ever fills a secret in.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::Value;

use super::{MergeSettings, PluginRef, recommended_labels};
use crate::model::contract::ConnectionValue;
use crate::model::k8s::{self, Scope};
use crate::model::object::{ObjectId, Placed};
use crate::model::reserved::{CONNECTIONS_NAME, HOST_ORIGIN};
use crate::untrusted::Escaped;

/// The placeholder a secret connection value carries for the user's secret.
pub const SECRET_PLACEHOLDER: &str = "{secret}";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectionError {
    #[error("connection value {key} is set by both {first} and {second}")]
    ConnectionConflict {
        key: String,
        first: String,
        second: String,
    },
    #[error(
        "{plugin}: connection value {:?} is not a valid key; expected at most {} upper-case \
         letters, digits and '_', not starting with a digit",
        Escaped(key),
        k8s::MAX_DATA_KEY_LEN
    )]
    InvalidConnectionKey { plugin: String, key: String },
    #[error(
        "{plugin}: connection value {key} names secret input {:?} but its value has no \
         `{SECRET_PLACEHOLDER}` placeholder for it",
        Escaped(input)
    )]
    MissingPlaceholder {
        plugin: String,
        key: String,
        input: String,
    },
    #[error(
        "the {kind} {CONNECTIONS_NAME} would hold {size} bytes of connection values; the API \
         server accepts at most {} (1 MiB)",
        k8s::MAX_DATA_BYTES
    )]
    ConnectionsTooLarge { kind: &'static str, size: usize },
}

/// Connection values gathered from all plugins, by key.
#[derive(Debug, Default)]
pub(super) struct Connections {
    plain: BTreeMap<String, String>,
    secret: BTreeMap<String, String>,
    owners: HashMap<String, String>,
}

impl Connections {
    pub(super) fn add(
        &mut self,
        plugin: PluginRef<'_>,
        value: &ConnectionValue,
        settings: &MergeSettings,
        notes: &mut Vec<String>,
    ) -> Result<(), ConnectionError> {
        if !is_env_key(&value.key) {
            return Err(ConnectionError::InvalidConnectionKey {
                plugin: plugin.to_string(),
                key: value.key.clone(),
            });
        }
        if let Some(first) = self.owners.insert(value.key.clone(), plugin.to_string()) {
            return Err(ConnectionError::ConnectionConflict {
                key: value.key.clone(),
                first,
                second: plugin.to_string(),
            });
        }
        let Some(input) = &value.secret_input else {
            self.plain.insert(value.key.clone(), value.value.clone());
            return Ok(());
        };
        if !value.value.contains(SECRET_PLACEHOLDER) {
            return Err(ConnectionError::MissingPlaceholder {
                plugin: plugin.to_string(),
                key: value.key.clone(),
                input: input.clone(),
            });
        }
        // Only the input bound to this plugin: another plugin asking for the same name gets
        // nothing.
        match settings.secret_inputs.get(plugin.name, input) {
            Some(secret) => {
                let filled = value.value.replace(SECRET_PLACEHOLDER, &url_encode(secret));
                self.secret.insert(value.key.clone(), filled);
            }
            None => notes.push(format!(
                "{plugin}: {key} is not rendered: it needs the secret input {shown:?}; pass \
                 --secret-input {name}.{shown}=file:PATH (or =env:VAR) to render it into the \
                 Secret {CONNECTIONS_NAME}",
                key = value.key,
                name = plugin.name,
                shown = Escaped(input),
            )),
        }
        Ok(())
    }

    pub(super) fn into_objects(
        self,
        settings: &MergeSettings,
    ) -> Result<Vec<Placed>, ConnectionError> {
        for (kind, values) in [("ConfigMap", &self.plain), ("Secret", &self.secret)] {
            let size: usize = values.iter().map(|(k, v)| k.len() + v.len()).sum();
            if size > k8s::MAX_DATA_BYTES {
                return Err(ConnectionError::ConnectionsTooLarge { kind, size });
            }
        }
        let labels = recommended_labels(HOST_ORIGIN, env!("CARGO_PKG_VERSION"), &settings.instance);
        let metadata = || ObjectMeta {
            name: Some(CONNECTIONS_NAME.to_string()),
            namespace: Some(settings.namespace.clone()),
            labels: Some(labels.clone()),
            ..ObjectMeta::default()
        };
        let mut objects = Vec::new();
        if !self.plain.is_empty() {
            let config_map = ConfigMap {
                metadata: metadata(),
                data: Some(self.plain),
                ..ConfigMap::default()
            };
            objects.push(host_object::<ConfigMap>(&config_map, settings));
        }
        if !self.secret.is_empty() {
            let secret = Secret {
                metadata: metadata(),
                type_: Some("Opaque".to_string()),
                data: Some(
                    self.secret
                        .into_iter()
                        .map(|(k, v)| (k, ByteString(v.into_bytes())))
                        .collect(),
                ),
                ..Secret::default()
            };
            objects.push(host_object::<Secret>(&secret, settings));
        }
        Ok(objects)
    }
}

fn host_object<K: k8s_openapi::Resource + serde::Serialize>(
    object: &K,
    settings: &MergeSettings,
) -> Placed {
    Placed {
        origin: HOST_ORIGIN.to_string(),
        id: ObjectId {
            group: k8s::group_of(K::API_VERSION).to_string(),
            kind: K::KIND.to_string(),
            namespace: Some(settings.namespace.clone()),
            name: CONNECTIONS_NAME.to_string(),
        },
        api_version: K::API_VERSION.to_string(),
        scope: Scope::Namespaced,
        // Serialising k8s-openapi types to JSON cannot fail (no maps with non-string keys).
        body: serde_json::to_value(object).unwrap_or(Value::Null),
    }
}

fn is_env_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= k8s::MAX_DATA_KEY_LEN
        && !key.starts_with(|c: char| c.is_ascii_digit())
        && key
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

/// Percent-encodes everything but RFC 3986's unreserved characters, so a password is safe in
/// any part of a URL.
pub fn url_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_encoding_keeps_only_unreserved_characters() {
        assert_eq!(url_encode("aZ9-._~ @:/%"), "aZ9-._~%20%40%3A%2F%25");
    }
}
