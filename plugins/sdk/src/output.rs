use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::bindings::RenderOutput;
use crate::{ConnectionValue, Object, RenderError};

/// What a plugin's `render` returns: its objects and the connection values for the application.
#[derive(Debug, Default)]
pub struct Output {
    objects: Vec<Object>,
    connection_values: Vec<ConnectionValue>,
    /// The first object that could not be enveloped; reported by [`Output::into_wit`] so that
    /// `push` stays infallible for authors and the plugin still never traps.
    error: Option<String>,
}

impl Output {
    /// Adds a typed Kubernetes object, with the envelope fields taken from the object itself.
    pub fn push<K>(&mut self, obj: K) -> &mut Self
    where
        K: k8s_openapi::Resource + k8s_openapi::Metadata<Ty = ObjectMeta> + serde::Serialize,
    {
        let meta = obj.metadata();
        let (name, namespace) = (meta.name.clone(), meta.namespace.clone());
        match (name, serde_json::to_string(&obj)) {
            (Some(name), Ok(body)) => self.objects.push(Object {
                api_version: K::API_VERSION.to_owned(),
                kind: K::KIND.to_owned(),
                name,
                namespace,
                body,
            }),
            (None, _) => self.fail(format!("a {} without metadata.name", K::KIND)),
            (Some(name), Err(e)) => {
                self.fail(format!("{} {name} does not serialize: {e}", K::KIND))
            }
        }
        self
    }

    /// Adds a plain connection value (it goes into the ConfigMap `mathison-connections`).
    pub fn connection(&mut self, key: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.connection_values.push(ConnectionValue {
            key: key.into(),
            value: value.into(),
            secret_input: None,
        });
        self
    }

    /// Adds a connection value built from a secret that the user hands to the host as
    /// `secret_input`; `value` holds the placeholder `{secret}`, which the host replaces with
    /// the URL-encoded secret (it goes into the Secret `mathison-connections`).
    pub fn secret_connection(
        &mut self,
        key: impl Into<String>,
        value: impl Into<String>,
        secret_input: impl Into<String>,
    ) -> &mut Self {
        let value = value.into();
        if !value.contains("{secret}") {
            self.fail(format!(
                "secret connection value {value:?} lacks {{secret}}"
            ));
        }
        self.connection_values.push(ConnectionValue {
            key: key.into(),
            value,
            secret_input: Some(secret_input.into()),
        });
        self
    }

    /// The objects pushed so far.
    pub fn objects(&self) -> &[Object] {
        &self.objects
    }

    /// The connection values added so far.
    pub fn connection_values(&self) -> &[ConnectionValue] {
        &self.connection_values
    }

    /// The first error met while building, if any.
    pub(crate) fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    fn fail(&mut self, message: String) {
        self.error.get_or_insert(message);
    }

    /// The WIT record, or the first error met while building it.
    pub fn into_wit(self) -> Result<RenderOutput, RenderError> {
        match self.error {
            Some(message) => Err(RenderError::Internal(message)),
            None => Ok(RenderOutput {
                objects: self.objects,
                connection_values: self.connection_values,
            }),
        }
    }
}
