//! `mathison-host compile`: precompile plugins, to ship them with their native code.

use clap::Args;

use crate::cli::RuntimeArgs;
use crate::plan::PluginRequest;
use crate::registry::OciReference;

/// Compile plugins ahead of time for this host's wasmtime and CPU.
///
/// Writes the compiled code beside each plugin (postgres.wasm → postgres.cwasm and
/// postgres.cwasm.json), with the plugin's info. A render with --allow-precompiled then loads it
/// instead of compiling: the first render on a machine with an empty cache is as fast as a
/// warm one. Another host version or CPU ignores the file and compiles as usual. An oci://
/// reference is fetched, and its code goes to the compiled-code cache: the store beside it
/// holds only blobs.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    mathison-host compile target/wasm32-wasip2/plugin/mathison_plugin_postgres.wasm\n  \
    mathison-host render --allow-precompiled -p postgres -p redis")]
pub struct CompileCommand {
    /// Paths to .wasm files, bare plugin names or oci:// references.
    #[arg(required = true)]
    pub plugins: Vec<String>,

    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

impl CompileCommand {
    pub fn run(self, verbose: bool) -> anyhow::Result<()> {
        let locator = self.runtime.locator();
        let runtime = self.runtime.runtime();
        for spec in &self.plugins {
            let plugin = locator.locate(&PluginRequest::new(spec))?;
            // A fetched plugin lives in the content-addressed store, where only blobs belong:
            // its code goes to the compiled-code cache instead, which renders use anyway.
            if OciReference::is_reference(spec) {
                let loaded = runtime.load(&plugin.path)?;
                if verbose {
                    eprintln!("{spec}: compiled code: {:?}", loaded.cache);
                }
                continue;
            }
            let written = runtime.precompile(&plugin.path)?;
            if verbose {
                eprintln!("wrote {}", written.display());
            }
        }
        Ok(())
    }
}
