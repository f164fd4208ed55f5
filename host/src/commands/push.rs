//! `mathison-host push`: publish a plugin to an OCI registry.

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;

use crate::cli::RuntimeArgs;
use crate::pipeline::{self, Described};
use crate::plan::{self, PluginFile};
use crate::registry::{Artifact, ComponentInterface, OciReference};
use crate::runtime::Runtime;

/// Publish a plugin as a Wasm OCI artifact (the CNCF Wasm working group's layout, which
/// wasm-pkg-tools also reads and writes).
///
/// The plugin is loaded and checked first: a file that is not a plugin of this host's world
/// never reaches the registry. Prints the pushed reference by digest, to pin it.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    mathison-host push target/wasm32-wasip2/plugin/mathison_plugin_postgres.wasm \
    oci://registry.example.com/mathison/postgres:0.1.0\n  \
    mathison-host render --plugin oci://registry.example.com/mathison/postgres@sha256:...")]
pub struct PushCommand {
    /// The plugin's .wasm file.
    pub file: PathBuf,

    /// Where to publish it: oci://HOST[:PORT]/REPO:TAG.
    pub reference: String,

    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

/// Annotation keys of the Wasm artifact: OCI's own, and this host's contract version.
const TITLE: &str = "org.opencontainers.image.title";
const VERSION: &str = "org.opencontainers.image.version";
const DESCRIPTION: &str = "org.opencontainers.image.description";
const CREATED: &str = "org.opencontainers.image.created";
pub const WIT_VERSION: &str = "dev.mathison.plugin.wit-version";

impl PushCommand {
    pub fn run(self, verbose: bool) -> anyhow::Result<()> {
        let reference: OciReference = self.reference.parse()?;
        let plugin = PluginFile {
            source: plan::source_name(&self.file),
            path: self.file.clone(),
            expected_name: None,
        };
        let runtime = self.runtime.runtime();
        let described = pipeline::describe(&runtime, None, &plugin)?;
        let component =
            fs::read(&self.file).with_context(|| format!("cannot read {}", self.file.display()))?;
        let artifact = artifact(&runtime, &described, &component)?;
        let digest = self
            .runtime
            .registry()
            .push(&reference, &component, &artifact)?;
        if verbose {
            eprintln!("pushed {} as {reference}", plugin.source);
        }
        super::write_stdout(&format!("{}\n", reference.at_digest(digest)))?;
        Ok(())
    }
}

fn artifact(
    runtime: &Runtime,
    described: &Described,
    component: &[u8],
) -> anyhow::Result<Artifact> {
    let (imports, exports) = runtime.interface(described.loaded(runtime)?);
    let created = created();
    let info = &described.info;
    let annotations = BTreeMap::from([
        (TITLE.to_string(), info.name.clone()),
        (VERSION.to_string(), info.version.clone()),
        (DESCRIPTION.to_string(), info.description.clone()),
        (CREATED.to_string(), created.clone()),
        (WIT_VERSION.to_string(), described.wit_version.to_string()),
    ]);
    Ok(Artifact::new(
        component,
        ComponentInterface { exports, imports },
        created,
        annotations,
    )?)
}

/// The artifact's creation time: `$SOURCE_DATE_EPOCH` when set, else the Unix epoch, so that
/// pushing the same file gives the same digest (as ko and Jib do).
fn created() -> String {
    let seconds = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|text| text.trim().parse::<i64>().ok())
        .unwrap_or(0);
    chrono::DateTime::from_timestamp(seconds, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
