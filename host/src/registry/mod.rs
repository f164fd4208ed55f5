//! Plugins in OCI registries: `push` publishes a plugin as a Wasm OCI artifact, and every
//! command that takes a plugin fetches `oci://` references into a content-addressed store in
//! the cache directory.
//!
//! The distribution protocol (requests, token and basic authentication, digests) is
//! oci-client's; this module decides what is accepted. A fetched blob is checked against its
//! digest before it is used, and against the size limit while it is read; a digest reference
//! fetched once is served from the store with no registry. Registries answer with data the
//! host does not trust: what they say reaches messages escaped and shortened.

pub mod artifact;
mod auth;
pub mod reference;
mod store;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use futures_util::StreamExt as _;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{DigestError, OciDistributionError, OciErrorCode};
use oci_client::manifest::OciDescriptor;
use oci_client::{Client, RegistryOperation};

use crate::untrusted::shown;
pub use artifact::{Artifact, ComponentInterface, Layer, Refusal};
pub use auth::AuthFileError;
use auth::Credentials;
pub use reference::{Digest, OciReference, ReferenceError};
use store::{BlobStore, StoreError};

/// Downloads and uploads larger than this show progress (on a terminal).
const PROGRESS_FROM_BYTES: u64 = 256 << 10;

/// How a registry is reached.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where blobs are stored; `None` when there is no cache directory at all.
    pub cache_dir: Option<PathBuf>,
    /// Registries (`HOST[:PORT]`) spoken to over plain HTTP besides loopback ones.
    pub insecure: Vec<String>,
    /// The longest a connection or one read may take.
    pub timeout: Duration,
    /// The largest plugin accepted (`--max-plugin-size`).
    pub max_blob_bytes: u64,
    /// Whether to show progress: stderr is a terminal.
    pub progress: bool,
}

impl Settings {
    pub fn new(cache_dir: Option<PathBuf>, timeout: Duration, max_blob_bytes: u64) -> Self {
        Self {
            cache_dir,
            insecure: Vec::new(),
            timeout,
            max_blob_bytes,
            progress: std::io::stderr().is_terminal(),
        }
    }
}

/// Which digest a pin holds a plugin to, and the layer it must have: what a lock file records.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Pin {
    pub manifest: Digest,
    pub layer: Digest,
    pub size: u64,
}

/// A plugin fetched into the store.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The component file, in the store.
    pub path: PathBuf,
    pub pin: Pin,
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error("{reference}: not found in the registry ({detail}); check the repository and the tag")]
    NotFound { reference: String, detail: String },
    #[error(
        "{reference}: unauthorized ({detail}); tried {tried}. Log in with `docker login` or \
         `podman login`, or point $REGISTRY_AUTH_FILE at a credentials file"
    )]
    Unauthorized {
        reference: String,
        detail: String,
        tried: String,
    },
    #[error("{reference}: the {what} has digest {actual}, but {pinned_by} pins {expected}")]
    DigestMismatch {
        reference: String,
        what: &'static str,
        expected: Digest,
        actual: Digest,
        pinned_by: String,
    },
    #[error("{reference}: {why}")]
    NotAPlugin { reference: String, why: String },
    #[error("{reference}: the {what} {size}, over the limit of {limit} bytes{hint}")]
    TooLarge {
        reference: String,
        what: &'static str,
        size: String,
        limit: u64,
        hint: &'static str,
    },
    #[error(
        "{reference}: the registry did not answer within {timeout:?}; raise --registry-timeout \
         if it is only slow"
    )]
    Timeout {
        reference: String,
        timeout: Duration,
    },
    #[error("{reference}: cannot reach the registry {registry}{hint}")]
    Unreachable {
        reference: String,
        registry: String,
        hint: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("{reference}: the registry's answer is not the OCI distribution API's: {detail}")]
    Protocol { reference: String, detail: String },
    #[error("{reference}: cannot store the plugin")]
    Store {
        reference: String,
        #[source]
        source: StoreError,
    },
    #[error("{reference}: {source}")]
    AuthFile {
        reference: String,
        #[source]
        source: AuthFileError,
    },
    #[error(
        "{reference}: plugins from registries are kept in the cache directory, and there is \
         none: pass --cache-dir or set $MATHISON_CACHE_DIR, $XDG_CACHE_HOME or $HOME"
    )]
    NoCacheDir { reference: String },
    #[error("{reference}: push needs a tag (oci://HOST/REPO:TAG), not a digest")]
    PushByDigest { reference: String },
    #[error("cannot start the network runtime")]
    Runtime(#[source] std::io::Error),
}

/// Fetches and pushes plugins. Creating it costs nothing; the network client starts on first
/// use.
#[derive(Debug)]
pub struct Registry {
    settings: Settings,
}

impl Registry {
    pub fn new(settings: Settings) -> Self {
        Self { settings }
    }

    /// The plugin `reference` names, held to `pin` when one is given (a lock file's): from the
    /// store when it has the pinned or referenced digest, else from the registry.
    pub fn fetch(
        &self,
        reference: &OciReference,
        pin: Option<&Pin>,
    ) -> Result<Fetched, RegistryError> {
        let named = reference.to_string();
        let store = self.store(&named)?;
        let wanted = pin
            .map(|p| p.manifest.clone())
            .or_else(|| reference.digest.clone());
        if let Some(manifest) = &wanted
            && let Some(fetched) = self.stored(&named, &store, manifest, pin)?
        {
            return Ok(fetched);
        }
        let target = match &wanted {
            Some(digest) => reference.at_digest(digest.clone()),
            None => reference.clone(),
        };
        let pinned_by = if pin.is_some() {
            "the lock file"
        } else {
            "the reference"
        };
        self.block_on(&named, async {
            let connection = self
                .connect(&named, &target, RegistryOperation::Pull)
                .await?;
            let client_ref = target.to_client();
            let (body, _) = connection
                .client
                .pull_manifest_raw(
                    &client_ref,
                    &connection.credentials.auth,
                    artifact::ACCEPTED_MANIFESTS,
                )
                .await
                .map_err(
                    |e| match self.classify(&named, &target, e, &connection.credentials) {
                        RegistryError::DigestMismatch {
                            reference,
                            what,
                            expected,
                            actual,
                            ..
                        } => RegistryError::DigestMismatch {
                            reference,
                            what,
                            expected,
                            actual,
                            pinned_by: pinned_by.to_string(),
                        },
                        other => other,
                    },
                )?;
            if body.len() > artifact::MAX_MANIFEST_BYTES {
                return Err(RegistryError::TooLarge {
                    reference: named.clone(),
                    what: "manifest",
                    size: format!("is {} bytes", body.len()),
                    limit: artifact::MAX_MANIFEST_BYTES as u64,
                    hint: "",
                });
            }
            let actual = Digest::of(&body);
            if let Some(expected) = &wanted
                && *expected != actual
            {
                return Err(RegistryError::DigestMismatch {
                    reference: named.clone(),
                    what: "manifest",
                    expected: expected.clone(),
                    actual,
                    pinned_by: pinned_by.to_string(),
                });
            }
            let layer = self.checked_layer(&named, &body, pin)?;
            store.put(&body).map_err(|source| RegistryError::Store {
                reference: named.clone(),
                source,
            })?;
            let path =
                match store
                    .verified_path(&layer.digest)
                    .map_err(|source| RegistryError::Store {
                        reference: named.clone(),
                        source,
                    })? {
                    Some(path) => path,
                    None => {
                        self.download(&named, &connection, &target, &store, &layer)
                            .await?
                    }
                };
            Ok(Fetched {
                path,
                pin: Pin {
                    manifest: actual,
                    layer: layer.digest,
                    size: layer.size,
                },
            })
        })
    }

    /// Publishes `component` as `artifact` under `reference` (which must have a tag), and keeps
    /// both in the store; returns the manifest's digest.
    pub fn push(
        &self,
        reference: &OciReference,
        component: &[u8],
        artifact: &Artifact,
    ) -> Result<Digest, RegistryError> {
        let named = reference.to_string();
        if reference.digest.is_some() || reference.tag.is_none() {
            return Err(RegistryError::PushByDigest { reference: named });
        }
        let digest = self.block_on(&named, async {
            let connection = self
                .connect(&named, reference, RegistryOperation::Push)
                .await?;
            let client_ref = reference.to_client();
            let fail = |e| self.classify(&named, reference, e, &connection.credentials);
            let client = &connection.client;
            let layer = artifact.layer_digest.as_str();
            if !client.blob_exists(&client_ref, layer).await.map_err(fail)? {
                let mut progress = Progress::new(
                    &named,
                    "uploading",
                    component.len() as u64,
                    self.settings.progress,
                );
                let chunks: Vec<bytes::Bytes> = component
                    .chunks(64 << 10)
                    .map(bytes::Bytes::copy_from_slice)
                    .collect();
                // Counted as the client takes each chunk to send it.
                let stream = futures_util::stream::iter(chunks).map(move |chunk| {
                    progress.advance(chunk.len() as u64);
                    Ok(chunk)
                });
                client
                    .push_blob_stream(&client_ref, stream, layer, Some(component.len() as u64))
                    .await
                    .map_err(fail)?;
            }
            client
                .push_blob(
                    &client_ref,
                    artifact.config.clone(),
                    Digest::of(&artifact.config).as_str(),
                )
                .await
                .map_err(fail)?;
            let content_type =
                reqwest::header::HeaderValue::from_static(artifact::MANIFEST_MEDIA_TYPE);
            client
                .push_manifest_raw(&client_ref, artifact.manifest.clone(), content_type)
                .await
                .map_err(fail)?;
            Ok(Digest::of(&artifact.manifest))
        })?;
        if let Ok(store) = self.store(&named) {
            // Keeping a copy is a convenience (a pushed digest renders offline), not a duty.
            let _ = store
                .put(component)
                .and_then(|_| store.put(&artifact.manifest));
        }
        Ok(digest)
    }

    fn classify(
        &self,
        named: &str,
        reference: &OciReference,
        error: OciDistributionError,
        credentials: &Credentials,
    ) -> RegistryError {
        classify(self.settings.timeout, named, reference, error, credentials)
    }

    fn store(&self, reference: &str) -> Result<BlobStore, RegistryError> {
        self.settings
            .cache_dir
            .as_deref()
            .map(BlobStore::new)
            .ok_or_else(|| RegistryError::NoCacheDir {
                reference: reference.to_string(),
            })
    }

    /// The plugin from the store alone, when both its manifest and its layer are there intact.
    fn stored(
        &self,
        named: &str,
        store: &BlobStore,
        manifest: &Digest,
        pin: Option<&Pin>,
    ) -> Result<Option<Fetched>, RegistryError> {
        let store_error = |source| RegistryError::Store {
            reference: named.to_string(),
            source,
        };
        let Some(body) = store.read_verified(manifest).map_err(store_error)? else {
            return Ok(None);
        };
        let layer = self.checked_layer(named, &body, pin)?;
        Ok(store
            .verified_path(&layer.digest)
            .map_err(store_error)?
            .map(|path| Fetched {
                path,
                pin: Pin {
                    manifest: manifest.clone(),
                    layer: layer.digest,
                    size: layer.size,
                },
            }))
    }

    /// The manifest's plugin layer, checked against the pin and the size limit.
    fn checked_layer(
        &self,
        named: &str,
        manifest: &[u8],
        pin: Option<&Pin>,
    ) -> Result<Layer, RegistryError> {
        let layer = artifact::plugin_layer(manifest).map_err(|refusal| match refusal {
            Refusal::NotAManifest(detail) => RegistryError::Protocol {
                reference: named.to_string(),
                detail,
            },
            Refusal::NotAPlugin(why) => RegistryError::NotAPlugin {
                reference: named.to_string(),
                why,
            },
        })?;
        if let Some(pin) = pin
            && pin.layer != layer.digest
        {
            return Err(RegistryError::DigestMismatch {
                reference: named.to_string(),
                what: "plugin layer",
                expected: pin.layer.clone(),
                actual: layer.digest,
                pinned_by: "the lock file".to_string(),
            });
        }
        if layer.size > self.settings.max_blob_bytes {
            return Err(self.too_large(named, format!("is {} bytes", layer.size)));
        }
        Ok(layer)
    }

    fn too_large(&self, named: &str, size: String) -> RegistryError {
        RegistryError::TooLarge {
            reference: named.to_string(),
            what: "plugin",
            size,
            limit: self.settings.max_blob_bytes,
            hint: " (--max-plugin-size)",
        }
    }

    /// Streams the layer into the store, stopping at the size limit.
    async fn download(
        &self,
        named: &str,
        connection: &Connection,
        reference: &OciReference,
        store: &BlobStore,
        layer: &Layer,
    ) -> Result<PathBuf, RegistryError> {
        let store_error = |source| match source {
            StoreError::TooLarge { .. } => self.too_large(named, "is larger".to_string()),
            StoreError::Mismatch { expected, actual } => RegistryError::DigestMismatch {
                reference: named.to_string(),
                what: "plugin layer",
                expected,
                actual,
                pinned_by: "its manifest".to_string(),
            },
            source => RegistryError::Store {
                reference: named.to_string(),
                source,
            },
        };
        let descriptor = OciDescriptor {
            media_type: artifact::LAYER_MEDIA_TYPE.to_string(),
            digest: layer.digest.to_string(),
            size: i64::try_from(layer.size).unwrap_or(i64::MAX),
            urls: None,
            artifact_type: None,
            annotations: None,
        };
        let mut stream = connection
            .client
            .pull_blob_stream(&reference.to_client(), &descriptor)
            .await
            .map_err(|e| self.classify(named, reference, e, &connection.credentials))?;
        if let Some(length) = stream.content_length
            && length > self.settings.max_blob_bytes
        {
            return Err(self.too_large(named, format!("is {length} bytes")));
        }
        let mut writer = store
            .writer(layer.digest.clone(), self.settings.max_blob_bytes)
            .map_err(store_error)?;
        let mut progress = Progress::new(named, "downloading", layer.size, self.settings.progress);
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| read_error(named, e, self.settings.timeout))?;
            writer.write(&chunk).map_err(store_error)?;
            progress.advance(chunk.len() as u64);
        }
        writer.commit().map_err(store_error)
    }

    async fn connect(
        &self,
        named: &str,
        reference: &OciReference,
        operation: RegistryOperation,
    ) -> Result<Connection, RegistryError> {
        let credentials = auth::credentials_for(&reference.registry, |name| std::env::var_os(name))
            .map_err(|source| RegistryError::AuthFile {
                reference: named.to_string(),
                source,
            })?;
        let plain_http = is_loopback(&reference.registry)
            || self.settings.insecure.contains(&reference.registry);
        let client = Client::new(ClientConfig {
            protocol: if plain_http {
                ClientProtocol::HttpsExcept(vec![reference.registry.clone()])
            } else {
                ClientProtocol::Https
            },
            connect_timeout: Some(self.settings.timeout),
            read_timeout: Some(self.settings.timeout),
            // A plugin is one layer; an index is refused, not resolved for a platform.
            platform_resolver: None,
            user_agent: concat!("mathison-host/", env!("CARGO_PKG_VERSION")),
            ..ClientConfig::default()
        });
        client
            .auth(&reference.to_client(), &credentials.auth, operation)
            .await
            .map_err(|e| self.classify(named, reference, e, &credentials))?;
        Ok(Connection {
            client,
            credentials,
        })
    }

    /// Runs `work` on a runtime of its own, within an overall deadline: a registry that trickles
    /// bytes never trips the per-read timeout.
    fn block_on<T>(
        &self,
        named: &str,
        work: impl Future<Output = Result<T, RegistryError>>,
    ) -> Result<T, RegistryError> {
        install_crypto_provider();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(RegistryError::Runtime)?;
        let deadline = self
            .settings
            .timeout
            .saturating_mul(OVERALL_DEADLINE_FACTOR);
        runtime.block_on(async {
            tokio::time::timeout(deadline, work)
                .await
                .unwrap_or_else(|_| {
                    Err(RegistryError::Timeout {
                        reference: named.to_string(),
                        timeout: deadline,
                    })
                })
        })
    }
}

/// How many `--registry-timeout`s a whole fetch or push may take.
const OVERALL_DEADLINE_FACTOR: u32 = 10;

struct Connection {
    client: Client,
    credentials: Credentials,
}

/// rustls needs one process-wide crypto provider; ring, the one kube's client uses.
fn install_crypto_provider() {
    // Fails only when one is installed already, which is what is wanted.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Loopback registries (a test registry, a port-forward) are spoken to over plain HTTP.
fn is_loopback(registry: &str) -> bool {
    let host = match registry.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => registry,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A failed read of a blob's body: oci-client checks the digest as the bytes arrive, and its
/// HTTP client's errors come wrapped the same way.
fn read_error(named: &str, error: std::io::Error, timeout: Duration) -> RegistryError {
    let inner = error.get_ref();
    if let Some(DigestError::VerificationError { expected, actual }) =
        inner.and_then(|e| e.downcast_ref::<DigestError>())
        && let (Ok(expected), Ok(actual)) = (expected.parse(), actual.parse())
    {
        return RegistryError::DigestMismatch {
            reference: named.to_string(),
            what: "plugin layer",
            expected,
            actual,
            pinned_by: "its manifest".to_string(),
        };
    }
    let timed_out = error.kind() == std::io::ErrorKind::TimedOut
        || inner
            .and_then(|e| e.downcast_ref::<reqwest::Error>())
            .is_some_and(reqwest::Error::is_timeout);
    if timed_out {
        return RegistryError::Timeout {
            reference: named.to_string(),
            timeout,
        };
    }
    RegistryError::Protocol {
        reference: named.to_string(),
        detail: format!("the download broke off: {}", shown(&error.to_string())),
    }
}

/// One line for a failed request, by what the user can do about it.
fn classify(
    timeout: Duration,
    named: &str,
    reference: &OciReference,
    error: OciDistributionError,
    credentials: &Credentials,
) -> RegistryError {
    let unauthorized = |detail: String| RegistryError::Unauthorized {
        reference: named.to_string(),
        detail,
        tried: credentials.tried.clone(),
    };
    let not_found = |detail: String| RegistryError::NotFound {
        reference: named.to_string(),
        detail,
    };
    let protocol = |detail: String| RegistryError::Protocol {
        reference: named.to_string(),
        detail,
    };
    match error {
        OciDistributionError::UnauthorizedError { .. } => unauthorized("401".into()),
        OciDistributionError::AuthenticationFailure(message) => {
            unauthorized(format!("authentication failed: {}", shown(&message)))
        }
        OciDistributionError::RegistryError { envelope, .. } => {
            let codes = envelope.errors.iter().map(|e| &e.code);
            let first = envelope
                .errors
                .first()
                .map(|e| format!("{:?}: {}", e.code, shown(&e.message)))
                .unwrap_or_default();
            if codes
                .clone()
                .any(|c| matches!(c, OciErrorCode::Unauthorized | OciErrorCode::Denied))
            {
                unauthorized(first)
            } else if codes.clone().any(|c| {
                matches!(
                    c,
                    OciErrorCode::ManifestUnknown
                        | OciErrorCode::NameUnknown
                        | OciErrorCode::BlobUnknown
                        | OciErrorCode::NotFound
                )
            }) {
                not_found(first)
            } else {
                protocol(first)
            }
        }
        OciDistributionError::ServerError { code, message, .. } => match code {
            401 | 403 => unauthorized(code.to_string()),
            404 => not_found("404".into()),
            _ => protocol(format!("HTTP {code}: {}", shown(&message))),
        },
        OciDistributionError::ImageManifestNotFoundError(message) => not_found(shown(&message)),
        OciDistributionError::DigestError(DigestError::VerificationError { expected, actual }) => {
            match (expected.parse(), actual.parse()) {
                (Ok(expected), Ok(actual)) => RegistryError::DigestMismatch {
                    reference: named.to_string(),
                    what: "manifest",
                    expected,
                    actual,
                    pinned_by: "the reference".to_string(),
                },
                _ => protocol(format!(
                    "digest {} is not {}",
                    shown(&actual),
                    shown(&expected)
                )),
            }
        }
        OciDistributionError::DigestError(digest) => protocol(shown(&digest.to_string())),
        OciDistributionError::RequestError(error) => {
            request_error(timeout, named, reference, error, credentials)
        }
        other => protocol(shown(&other.to_string())),
    }
}

fn request_error(
    timeout: Duration,
    named: &str,
    reference: &OciReference,
    error: reqwest::Error,
    credentials: &Credentials,
) -> RegistryError {
    if error.is_timeout() {
        return RegistryError::Timeout {
            reference: named.to_string(),
            timeout,
        };
    }
    // oci-client passes some answers on as reqwest's status errors (a blob's HEAD, an upload).
    if let Some(status) = error.status() {
        return match status.as_u16() {
            401 | 403 => RegistryError::Unauthorized {
                reference: named.to_string(),
                detail: status.as_u16().to_string(),
                tried: credentials.tried.clone(),
            },
            404 => RegistryError::NotFound {
                reference: named.to_string(),
                detail: "404".to_string(),
            },
            code => RegistryError::Protocol {
                reference: named.to_string(),
                detail: format!("HTTP {code}"),
            },
        };
    }
    if error.is_decode() || error.is_body() {
        return RegistryError::Protocol {
            reference: named.to_string(),
            detail: shown(&error.to_string()),
        };
    }
    let hint = if is_loopback(&reference.registry) {
        String::new()
    } else {
        format!(
            " over HTTPS (if it serves plain HTTP, pass --insecure-registry {})",
            reference.registry
        )
    };
    RegistryError::Unreachable {
        reference: named.to_string(),
        registry: reference.registry.clone(),
        hint,
        source: Box::new(error),
    }
}

/// A progress line on stderr, for transfers large enough to wait for, on a terminal only. It
/// ends its line when the last byte is counted.
struct Progress {
    label: String,
    verb: &'static str,
    total: u64,
    done: u64,
    shown_percent: Option<u64>,
    enabled: bool,
}

impl Progress {
    fn new(label: &str, verb: &'static str, total: u64, terminal: bool) -> Self {
        Self {
            label: label.to_string(),
            verb,
            total,
            done: 0,
            shown_percent: None,
            enabled: terminal && total >= PROGRESS_FROM_BYTES,
        }
    }

    fn advance(&mut self, bytes: u64) {
        self.done = self.done.saturating_add(bytes);
        if !self.enabled {
            return;
        }
        let percent = (self.done.min(self.total) * 100) / self.total.max(1);
        if self.shown_percent != Some(percent) {
            self.shown_percent = Some(percent);
            let end = if percent == 100 { "\n" } else { "" };
            let mut stderr = std::io::stderr().lock();
            let _ = write!(
                stderr,
                "\r{} {}: {percent:>3}% of {} KiB{end}",
                self.verb,
                self.label,
                self.total.div_ceil(1024)
            );
            let _ = stderr.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_hosts_are_plain_http_by_default() {
        for host in [
            "127.0.0.1:5000",
            "localhost:5000",
            "[::1]:5000",
            "127.1.2.3",
            "localhost",
        ] {
            assert!(is_loopback(host), "{host}");
        }
        for host in [
            "registry.example:5000",
            "10.0.0.1:5000",
            "localhost.example.com",
        ] {
            assert!(!is_loopback(host), "{host}");
        }
    }
}
