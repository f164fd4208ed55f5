//! The Wasm OCI artifact layout of the CNCF Wasm working group, which wasm-pkg-tools (`wkg`)
//! also writes: an image manifest whose config has media type
//! `application/vnd.wasm.config.v0+json` and whose one layer is the component,
//! `application/wasm`.
//!
//! The config is written here rather than with the `oci-wasm` crate: its 0.6 line is built on
//! an older oci-client than this host's, and on wit-component, to list what this module lists
//! from the component wasmtime has already parsed.

use std::collections::BTreeMap;

use oci_client::manifest::{OciDescriptor, OciImageManifest};
use serde::{Deserialize, Serialize};

use super::reference::Digest;

pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v0+json";
pub const LAYER_MEDIA_TYPE: &str = "application/wasm";

/// Manifests the host asks for: the Wasm artifact's, and those of ordinary images and indexes,
/// so that pointing at a container image gets a clear refusal rather than a 404.
pub const ACCEPTED_MANIFESTS: &[&str] = &[
    MANIFEST_MEDIA_TYPE,
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

/// The largest manifest accepted: what the distribution registry itself accepts on push.
pub const MAX_MANIFEST_BYTES: usize = 4 << 20;

/// The artifact's config blob (`application/vnd.wasm.config.v0+json`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WasmConfig {
    pub created: String,
    pub architecture: &'static str,
    pub os: &'static str,
    pub layer_digests: Vec<String>,
    pub component: ComponentInterface,
}

/// What a component imports and exports, by interface name.
#[derive(Debug, Serialize)]
pub struct ComponentInterface {
    pub exports: Vec<String>,
    pub imports: Vec<String>,
}

/// Everything needed to push one plugin.
#[derive(Debug)]
pub struct Artifact {
    pub config: Vec<u8>,
    pub manifest: Vec<u8>,
    pub layer_digest: Digest,
}

impl Artifact {
    /// The artifact of `component`, with `annotations` on the manifest. `created` is an RFC 3339
    /// time; a fixed one makes the same file push to the same digest.
    pub fn new(
        component: &[u8],
        interface: ComponentInterface,
        created: String,
        annotations: BTreeMap<String, String>,
    ) -> Result<Self, serde_json::Error> {
        let layer_digest = Digest::of(component);
        let config = serde_json::to_vec(&WasmConfig {
            created,
            architecture: "wasm",
            os: "wasip2",
            layer_digests: vec![layer_digest.to_string()],
            component: interface,
        })?;
        let descriptor = |media_type: &str, bytes_digest: &Digest, size: usize| OciDescriptor {
            media_type: media_type.to_string(),
            digest: bytes_digest.to_string(),
            size: i64::try_from(size).unwrap_or(i64::MAX),
            urls: None,
            artifact_type: None,
            annotations: None,
        };
        let manifest = OciImageManifest {
            schema_version: 2,
            media_type: Some(MANIFEST_MEDIA_TYPE.to_string()),
            config: descriptor(CONFIG_MEDIA_TYPE, &Digest::of(&config), config.len()),
            layers: vec![descriptor(LAYER_MEDIA_TYPE, &layer_digest, component.len())],
            subject: None,
            artifact_type: None,
            annotations: Some(annotations),
        };
        Ok(Self {
            manifest: serde_json::to_vec(&manifest)?,
            config,
            layer_digest,
        })
    }
}

/// The one layer of a Wasm plugin artifact: its digest and declared size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    pub digest: Digest,
    pub size: u64,
}

/// The parts of a manifest that tell what it is.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AnyManifest {
    media_type: Option<String>,
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Vec<Descriptor>,
    manifests: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    media_type: String,
    digest: String,
    size: i64,
}

/// Why a manifest gives no plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The registry answered with something that is no manifest at all.
    NotAManifest(String),
    /// A manifest of something else: a container image, another artifact.
    NotAPlugin(String),
}

/// The plugin layer of `manifest`, or why there is none.
pub fn plugin_layer(manifest: &[u8]) -> Result<Layer, Refusal> {
    let parsed: AnyManifest = serde_json::from_slice(manifest)
        .map_err(|e| Refusal::NotAManifest(format!("its manifest is not an OCI manifest ({e})")))?;
    plugin_layer_of(parsed).map_err(Refusal::NotAPlugin)
}

fn plugin_layer_of(parsed: AnyManifest) -> Result<Layer, String> {
    if parsed.manifests.is_some() {
        return Err(
            "it is an image index (a multi-platform container image), not a Wasm plugin".into(),
        );
    }
    let config = parsed
        .config
        .ok_or("the registry's manifest has no config, so it is not a Wasm plugin")?;
    if config.media_type != CONFIG_MEDIA_TYPE {
        return Err(format!(
            "it is not a Wasm plugin: its config is {} (an ordinary container image, or another \
             artifact), not {CONFIG_MEDIA_TYPE}",
            crate::untrusted::shown(&config.media_type)
        ));
    }
    if let Some(media_type) = parsed.media_type.filter(|m| m != MANIFEST_MEDIA_TYPE) {
        return Err(format!(
            "its manifest is {}, not an OCI image manifest",
            crate::untrusted::shown(&media_type)
        ));
    }
    let [layer] = parsed.layers.as_slice() else {
        return Err(format!(
            "a Wasm plugin has exactly one layer; this artifact has {}",
            parsed.layers.len()
        ));
    };
    if layer.media_type != LAYER_MEDIA_TYPE {
        return Err(format!(
            "its layer is {}, not {LAYER_MEDIA_TYPE}",
            crate::untrusted::shown(&layer.media_type)
        ));
    }
    Ok(Layer {
        digest: layer.digest.parse()?,
        size: u64::try_from(layer.size).map_err(|_| "its layer has a negative size")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn artifact() -> Artifact {
        Artifact::new(
            b"\0asm component",
            ComponentInterface {
                exports: vec!["mathison:plugin/plugin@0.1.0".into()],
                imports: vec![],
            },
            "1970-01-01T00:00:00Z".into(),
            BTreeMap::from([("org.opencontainers.image.title".into(), "postgres".into())]),
        )
        .unwrap()
    }

    #[test]
    fn an_artifact_is_its_own_plugin_and_pushes_reproducibly() {
        let artifact = artifact();
        let layer = plugin_layer(&artifact.manifest).unwrap();
        assert_eq!(layer.digest, Digest::of(b"\0asm component"));
        assert_eq!(layer.size, 14);
        assert_eq!(artifact.manifest, self::artifact().manifest);
        let config: serde_json::Value = serde_json::from_slice(&artifact.config).unwrap();
        assert_eq!(config["os"], "wasip2");
        assert_eq!(config["layerDigests"][0], layer.digest.as_str());
    }

    #[test]
    fn container_images_and_indexes_are_not_plugins() {
        let image = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
            "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:00","size":2},
            "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:00","size":2}]}"#;
        let refused = |manifest: &[u8]| match plugin_layer(manifest).unwrap_err() {
            Refusal::NotAPlugin(why) => why,
            other => panic!("{other:?}"),
        };
        assert!(refused(image).contains("ordinary container image"));
        let index = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;
        assert!(refused(index).contains("image index"));
        assert!(matches!(
            plugin_layer(b"<html>"),
            Err(Refusal::NotAManifest(_))
        ));
    }
}
