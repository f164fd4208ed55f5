//! The only code in `apply/` that talks to an API server: a kube-rs [`Client`] on a
//! current-thread runtime, the requests `apply`, `diff` and `--wait` send, and the
//! classification of what goes wrong into one line a person can act on.

use std::fmt;
use std::io;
use std::path::Path;
use std::time::Duration;

use kube::api::{
    Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PropagationPolicy,
};
use kube::config::{KubeConfigOptions, Kubeconfig, KubeconfigError};
use kube::core::{GroupVersionKind, Status};
use kube::discovery::{self, Scope};
use kube::{Client, Config};
use serde_json::Value;

use super::changes::{Resource, Target};

/// A request that failed: what it means, and kube's error underneath when that says more.
#[derive(Debug, thiserror::Error)]
#[error("{problem}")]
pub struct ClusterError {
    pub problem: Problem,
    /// The client's error for transport and other failures. `None` when the problem already
    /// says all of it: a `Status` the server answered, a kind discovery did not find.
    #[source]
    pub source: Option<Box<kube::Error>>,
}

/// What a failed request means, classified for a one-line message.
#[derive(Debug, thiserror::Error)]
pub enum Problem {
    /// The API server refused the request with this `Status`.
    #[error("{}", describe_status(.0))]
    Status(Box<Status>),
    #[error("cannot reach the API server at {url}")]
    Unreachable { url: String },
    #[error("the API server at {url} did not answer in time")]
    Timeout { url: String },
    #[error(
        "the cluster does not serve {kind} in {api_version}: is its CustomResourceDefinition installed?"
    )]
    UnknownKind { api_version: String, kind: String },
    #[error("the request failed")]
    Other,
}

impl ClusterError {
    pub fn is_not_found(&self) -> bool {
        matches!(&self.problem, Problem::Status(status) if status.code == 404)
    }
}

fn describe_status(status: &Status) -> String {
    let (code, reason, message) = (status.code, &status.reason, status.message.trim());
    // Each field the server found invalid, when it says which (422).
    let causes: Vec<String> = status
        .details
        .iter()
        .flat_map(|details| &details.causes)
        .map(|cause| match cause.field.as_str() {
            "" => cause.message.clone(),
            field => format!("{field}: {}", cause.message),
        })
        .collect();
    match code {
        403 => format!("forbidden (403): {message}"),
        404 if message.starts_with("namespaces ") => {
            format!("namespace not found (404): {message}; create it first")
        }
        // What a path answers when no API serves it, e.g. a custom resource without its CRD.
        404 if message.contains("could not find the requested resource")
            || reason != "NotFound" =>
        {
            "the cluster does not serve this kind (404): is its CustomResourceDefinition installed?"
                .to_string()
        }
        404 => format!("not found (404): {message}"),
        409 => format!(
            "conflict (409): {message}; rerun with --force-conflicts to take over these fields"
        ),
        422 if !causes.is_empty() => format!("invalid (422): {}", causes.join("; ")),
        422 => format!("invalid (422): {message}"),
        _ if reason.is_empty() => format!("the API server answered {code}: {message}"),
        _ => format!("{reason} ({code}): {message}"),
    }
}

/// Where the cluster's configuration comes from, as with kubectl.
#[derive(Debug, Clone, Default)]
pub struct Connection<'a> {
    /// `--kubeconfig`; otherwise `$KUBECONFIG` (paths joined like `$PATH`) or `~/.kube/config`,
    /// then the in-cluster service account.
    pub kubeconfig: Option<&'a Path>,
    /// `--context`; otherwise the kubeconfig's current context.
    pub context: Option<&'a str>,
    /// The longest any one request may take.
    pub request_timeout: Option<Duration>,
}

/// The kube-rs client on a current-thread tokio runtime: the commands are sequential, so
/// each request blocks, which keeps async out of everything else.
pub struct KubeCluster {
    runtime: tokio::runtime::Runtime,
    client: Client,
    url: String,
}

impl fmt::Debug for KubeCluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KubeCluster")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// Why no client could be made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("cannot start the client's runtime")]
    Runtime(#[source] io::Error),
    #[error("no cluster configuration: set KUBECONFIG, pass --kubeconfig, or run inside a cluster")]
    NoConfig(#[source] KubeconfigError),
    #[error("cannot use the kubeconfig")]
    Kubeconfig(#[source] KubeconfigError),
    #[error("cannot create the Kubernetes client")]
    Client(#[source] kube::Error),
}

impl KubeCluster {
    pub fn connect(connection: &Connection<'_>) -> Result<Self, ConnectError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(ConnectError::Runtime)?;
        let mut config = runtime.block_on(load_config(connection))?;
        config.read_timeout = connection.request_timeout;
        let url = config.cluster_url.to_string();
        // The client spawns its request buffer's worker onto the runtime it is built in.
        let client = {
            let _guard = runtime.enter();
            Client::try_from(config).map_err(ConnectError::Client)?
        };
        Ok(Self {
            runtime,
            client,
            url,
        })
    }

    fn api(&self, resource: &Resource, namespace: Option<&str>) -> Api<DynamicObject> {
        match namespace {
            Some(namespace) if resource.namespaced => {
                Api::namespaced_with(self.client.clone(), namespace, &resource.api)
            }
            _ => Api::all_with(self.client.clone(), &resource.api),
        }
    }

    fn classify(&self, error: kube::Error) -> ClusterError {
        classify(&self.url, error)
    }

    /// The resource serving `kind` in `group` (at `version`, or the preferred one), from the
    /// cluster's discovery.
    pub fn discover(
        &self,
        group: &str,
        version: Option<&str>,
        kind: &str,
    ) -> Result<Resource, ClusterError> {
        let found = self.runtime.block_on(async {
            match version {
                Some(version) => discovery::pinned_kind(
                    &self.client,
                    &GroupVersionKind::gvk(group, version, kind),
                )
                .await
                .map(Some),
                None => discovery::group(&self.client, group)
                    .await
                    .map(|group| group.recommended_kind(kind)),
            }
        });
        let unknown = || ClusterError {
            problem: Problem::UnknownKind {
                api_version: match version {
                    Some(version) if group.is_empty() => version.to_string(),
                    Some(version) => format!("{group}/{version}"),
                    None => group.to_string(),
                },
                kind: kind.to_string(),
            },
            source: None,
        };
        match found {
            Ok(Some((api, capabilities))) => Ok(Resource {
                api,
                namespaced: capabilities.scope == Scope::Namespaced,
            }),
            Ok(None) | Err(kube::Error::Discovery(_)) => Err(unknown()),
            Err(error) => match self.classify(error) {
                error if error.is_not_found() => Err(unknown()),
                error => Err(error),
            },
        }
    }

    /// Server-side apply of `body`; the object as the server stored (or would store) it.
    pub fn apply(
        &self,
        target: &Target,
        body: &Value,
        params: &PatchParams,
    ) -> Result<Value, ClusterError> {
        let api = self.api(&target.resource, target.namespace.as_deref());
        let applied = self
            .runtime
            .block_on(api.patch(&target.name, params, &Patch::Apply(body)))
            .map_err(|e| self.classify(e))?;
        to_value(applied)
    }

    /// The live object, or `None` when it does not exist.
    pub fn get(&self, target: &Target) -> Result<Option<Value>, ClusterError> {
        let api = self.api(&target.resource, target.namespace.as_deref());
        self.runtime
            .block_on(api.get_opt(&target.name))
            .map_err(|e| self.classify(e))?
            .map(to_value)
            .transpose()
    }

    /// The objects of `resource` in `namespace` (all namespaces when `None`) that `params`
    /// select.
    pub fn list(
        &self,
        resource: &Resource,
        namespace: Option<&str>,
        params: &ListParams,
    ) -> Result<Vec<DynamicObject>, ClusterError> {
        let api = self.api(resource, namespace);
        Ok(self
            .runtime
            .block_on(api.list(params))
            .map_err(|e| self.classify(e))?
            .items)
    }

    /// Deletes the object; its dependents are collected in the background, as kubectl does.
    pub fn delete(&self, target: &Target, dry_run: bool) -> Result<(), ClusterError> {
        let api = self.api(&target.resource, target.namespace.as_deref());
        let params = DeleteParams {
            dry_run,
            propagation_policy: Some(PropagationPolicy::Background),
            ..DeleteParams::default()
        };
        match self.runtime.block_on(api.delete(&target.name, &params)) {
            Ok(_) => Ok(()),
            // Already gone is what a prune wants.
            Err(error) => match self.classify(error) {
                error if error.is_not_found() => Ok(()),
                error => Err(error),
            },
        }
    }
}

async fn load_config(connection: &Connection<'_>) -> Result<Config, ConnectError> {
    let options = KubeConfigOptions {
        context: connection.context.map(str::to_string),
        ..KubeConfigOptions::default()
    };
    if let Some(path) = connection.kubeconfig {
        let kubeconfig = Kubeconfig::read_from(path).map_err(ConnectError::Kubeconfig)?;
        return Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .map_err(ConnectError::Kubeconfig);
    }
    match Config::from_kubeconfig(&options).await {
        Ok(config) => Ok(config),
        // kubectl falls back to the pod's service account only when no kubeconfig exists
        // and no context was asked for.
        Err(error) if connection.context.is_none() => {
            Config::incluster().map_err(|_| ConnectError::NoConfig(error))
        }
        Err(error) => Err(ConnectError::Kubeconfig(error)),
    }
}

fn classify(url: &str, error: kube::Error) -> ClusterError {
    let error = match error {
        // The status is the whole answer: its fields make the line, nothing is left to add.
        kube::Error::Api(status) => {
            return ClusterError {
                problem: Problem::Status(status),
                source: None,
            };
        }
        error => error,
    };
    // What happened is said deep in the chain ("Connection refused"); the layers above it are
    // kube's and hyper's plumbing.
    let mut kinds = Vec::new();
    let mut timed_out = false;
    let mut source: Option<&dyn std::error::Error> = Some(&error);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<io::Error>() {
            kinds.push(io.kind());
        }
        timed_out |= cause.to_string().contains("timed out");
        source = cause.source();
    }
    let url = url.to_string();
    let problem = if timed_out || kinds.contains(&io::ErrorKind::TimedOut) {
        Problem::Timeout { url }
    } else if kinds.iter().any(|kind| {
        matches!(
            kind,
            io::ErrorKind::ConnectionRefused
                | io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::NotFound
                | io::ErrorKind::HostUnreachable
                | io::ErrorKind::NetworkUnreachable
        )
    }) || matches!(error, kube::Error::HyperError(_) | kube::Error::Service(_))
    {
        Problem::Unreachable { url }
    } else {
        Problem::Other
    };
    ClusterError {
        problem,
        source: Some(Box::new(error)),
    }
}

fn to_value(object: DynamicObject) -> Result<Value, ClusterError> {
    serde_json::to_value(object).map_err(|error| ClusterError {
        problem: Problem::Other,
        source: Some(Box::new(kube::Error::SerdeError(error))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::response::{StatusCause, StatusDetails};

    fn status(code: u16, reason: &str, message: &str) -> Problem {
        Problem::Status(Status::failure(message, reason).with_code(code).boxed())
    }

    #[test]
    fn api_errors_read_as_one_line_with_what_to_do() {
        let missing_namespace = status(404, "NotFound", "namespaces \"nope\" not found");
        assert_eq!(
            missing_namespace.to_string(),
            "namespace not found (404): namespaces \"nope\" not found; create it first"
        );
        let no_crd = status(404, "", "404 page not found");
        assert!(
            no_crd
                .to_string()
                .contains("CustomResourceDefinition installed")
        );
        let conflict = status(409, "Conflict", "Apply failed with 1 conflict");
        assert!(
            conflict
                .to_string()
                .ends_with("--force-conflicts to take over these fields")
        );
        let invalid = Problem::Status(
            Status::failure("StatefulSet.apps \"x\" is invalid", "Invalid")
                .with_code(422)
                .with_details(StatusDetails {
                    name: "x".into(),
                    group: "apps".into(),
                    kind: "StatefulSet".into(),
                    uid: String::new(),
                    causes: vec![StatusCause {
                        reason: "FieldValueInvalid".into(),
                        message: "must be >= 0".into(),
                        field: "spec.replicas".into(),
                    }],
                    retry_after_seconds: 0,
                })
                .boxed(),
        );
        assert_eq!(
            invalid.to_string(),
            "invalid (422): spec.replicas: must be >= 0"
        );
        for error in [missing_namespace, no_crd, conflict, invalid] {
            assert!(!error.to_string().contains('\n'));
        }
    }
}
