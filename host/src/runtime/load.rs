//! From a plugin file to a plugin ready to call: reading it within `--max-plugin-size`,
//! telling a component from other bytes, loading its compiled code (cache, precompiled
//! artifact or compiler), and checking it against the world before linking it.

use std::borrow::Cow;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use wasmtime::Engine;
use wasmtime::component::Component;

use super::sandbox::SandboxState;
use super::{
    BoxedError, CacheOutcome, CallError, LoadedPlugin, Machine, Runtime, RuntimeError, bindings,
    cache,
};
use crate::model::contract::{WIT_PACKAGE, WIT_VERSION, WitVersion};

/// Why a plugin file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path} is {size} bytes, more than the {limit}-byte limit for a plugin (--max-plugin-size)"
    )]
    TooLarge {
        path: PathBuf,
        size: u64,
        limit: u64,
    },
    #[error(
        "{path} is not a WebAssembly component: {found}; expected a component targeting world \
         `{WIT_PACKAGE}/plugin@{WIT_VERSION}` (build with `cargo build --target wasm32-wasip2`)"
    )]
    NotAComponent { path: PathBuf, found: String },
    /// wasmtime could not compile the component, or load the code it compiled.
    #[error("{path} is not a valid component")]
    Invalid {
        path: PathBuf,
        #[source]
        source: BoxedError,
    },
    #[error(
        "{path} targets `{found}`, but this host serves `{WIT_PACKAGE}@{served}` and runs \
         plugins built against {}; rebuild the plugin against a version it runs",
        served_versions(.served)
    )]
    WrongWitVersion {
        path: PathBuf,
        found: String,
        served: WitVersion,
    },
    /// The exports are not the world's; `source` says how, when the bindings found it out.
    #[error(
        "{path} is not a mathison plugin: it {found}; expected the exports `info` and `render` \
         of world `{WIT_PACKAGE}/plugin@{WIT_VERSION}`"
    )]
    WrongWorld {
        path: PathBuf,
        found: String,
        #[source]
        source: Option<BoxedError>,
    },
    /// The file's bytes are not the ones it was known by earlier in the same command.
    #[error("{path} changed while it was being rendered; run the command again once it is written")]
    Changed { path: PathBuf },
    #[error("{path} imports `{import}`, which the sandbox does not provide")]
    UnsupportedImport {
        path: PathBuf,
        import: String,
        #[source]
        source: BoxedError,
    },
}

/// Why a plugin could not be precompiled.
#[derive(Debug, thiserror::Error)]
pub enum PrecompileError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error("{}: {error}", path.display())]
    Call { path: PathBuf, error: CallError },
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Machine {
    /// What a plugin's compiled code is for on this engine.
    fn identity(&self, plugin: blake3::Hash) -> cache::Identity {
        cache::Identity {
            plugin,
            engine: self.engine_key,
        }
    }
}

/// A plugin file read and checked, with the BLAKE3 of its bytes.
#[derive(Clone)]
struct PluginBytes {
    bytes: Vec<u8>,
    blake3: blake3::Hash,
}

impl std::fmt::Debug for PluginBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginBytes")
            .field("len", &self.bytes.len())
            .field("blake3", &self.blake3)
            .finish()
    }
}

impl Runtime {
    /// Reads and checks the plugin at `path`, and loads its compiled code: from the cache, from
    /// a precompiled artifact beside it (with `--allow-precompiled`, or when it is installed
    /// with this binary), or by compiling it.
    pub fn load(&self, path: &Path) -> Result<LoadedPlugin, LoadError> {
        let plugin = self.read(path)?;
        self.load_as(path, plugin.blake3, || Ok(Cow::Borrowed(&plugin)))
    }

    /// [`load`](Self::load) for a plugin whose BLAKE3 is known (its [`fingerprint`], or the
    /// one the memo keeps by the file's stamp): its code found in the cache, the file is not
    /// read again.
    ///
    /// [`fingerprint`]: Self::fingerprint
    pub fn load_known(&self, path: &Path, blake3: blake3::Hash) -> Result<LoadedPlugin, LoadError> {
        self.load_as(path, blake3, || self.read(path).map(Cow::Owned))
    }

    /// Loads the plugin at `path` whose bytes have the BLAKE3 `blake3`, reading them with
    /// `read` only when its code must be compiled.
    fn load_as<'a>(
        &self,
        path: &Path,
        blake3: blake3::Hash,
        read: impl FnOnce() -> Result<Cow<'a, PluginBytes>, LoadError>,
    ) -> Result<LoadedPlugin, LoadError> {
        let machine = self.machine()?;
        let identity = machine.identity(blake3);
        let cache_entry = self
            .cache_dir
            .as_deref()
            .map(|dir| cache::Entry::in_cache(dir, &identity));

        let load = |entry: cache::Entry, outcome| {
            let found = entry.load(&machine.engine, &identity)?;
            Some((found.component, outcome, found.info))
        };
        let found = cache_entry
            .clone()
            .and_then(|entry| load(entry, CacheOutcome::Hit))
            .or_else(|| {
                self.may_load_precompiled(path)
                    .then(|| load(cache::Entry::beside(path), CacheOutcome::Precompiled))
                    .flatten()
            });
        let (component, outcome, kept_info, size) = match found {
            Some((component, outcome, kept_info)) => {
                let size = metadata(path)?.len();
                (component, outcome, kept_info, size)
            }
            None => {
                let plugin = read()?;
                // Code is stored under the identity it was asked for: it must be that file's.
                if plugin.blake3 != blake3 {
                    return Err(LoadError::Changed {
                        path: path.to_owned(),
                    });
                }
                let bytes = &plugin.bytes;
                let size = bytes.len() as u64;
                match &cache_entry {
                    None => {
                        let component =
                            Component::new(&machine.engine, bytes).map_err(invalid(path))?;
                        (component, CacheOutcome::Disabled, None, size)
                    }
                    Some(entry) => {
                        let existed = entry.exists();
                        let (artifact, component) = self.compile(machine, path, bytes)?;
                        let stored = entry.store(&identity, &artifact, None).is_ok();
                        let outcome = match (stored, existed) {
                            (false, _) => CacheOutcome::StoreFailed,
                            (true, true) => CacheOutcome::Replaced,
                            (true, false) => CacheOutcome::Miss,
                        };
                        (component, outcome, None, size)
                    }
                }
            }
        };
        let holds_code = matches!(
            outcome,
            CacheOutcome::Hit | CacheOutcome::Miss | CacheOutcome::Replaced
        );
        let (pre, wit_version) = self.prepare(machine, path, &component)?;
        Ok(LoadedPlugin {
            path: path.to_owned(),
            size,
            wit_version,
            cache: outcome,
            cache_entry: cache_entry.filter(|_| holds_code),
            kept_info,
            pre,
        })
    }

    /// Reads and checks the plugin at `path` (size bound, component header), to compile it.
    fn read(&self, path: &Path) -> Result<PluginBytes, LoadError> {
        let bytes = read_bounded(path, self.limits.max_plugin_bytes)?;
        check_component_header(path, &bytes)?;
        Ok(PluginBytes {
            blake3: blake3::hash(&bytes),
            bytes,
        })
    }

    /// The BLAKE3 of the plugin at `path`, which names its compiled code and its answers in the
    /// memo. Checked as for compiling (size bound, component header), but streamed through a
    /// small buffer instead of read whole: a plugin whose code is cached needs nothing more, and
    /// reading 50 plugins into fresh memory faulted in ~6,000 pages, two thirds of such a
    /// render's page faults.
    pub fn fingerprint(&self, path: &Path) -> Result<blake3::Hash, LoadError> {
        let limit = self.limits.max_plugin_bytes;
        // `take` guards against a file that grows while we read it.
        let mut file = open_bounded(path, limit)?.0.take(limit + 1);
        let mut header = Vec::with_capacity(8);
        (&mut file)
            .take(8)
            .read_to_end(&mut header)
            .map_err(read_error(path))?;
        check_component_header(path, &header)?;
        let mut hasher = blake3::Hasher::new();
        hasher.update(&header);
        hasher.update_reader(file).map_err(read_error(path))?;
        check_bound(path, hasher.count(), limit)?;
        Ok(hasher.finalize())
    }

    /// Compiles a plugin into an artifact to store, and the component loaded from it.
    fn compile(
        &self,
        machine: &Machine,
        path: &Path,
        bytes: &[u8],
    ) -> Result<(Vec<u8>, Component), LoadError> {
        let artifact = machine
            .engine
            .precompile_component(bytes)
            .map_err(invalid(path))?;
        let component = cache::deserialize(&machine.engine, &artifact).map_err(invalid(path))?;
        Ok((artifact, component))
    }

    /// Checks a compiled plugin against the world and links it; returns it with the version of
    /// the contract it was built against.
    fn prepare(
        &self,
        machine: &Machine,
        path: &Path,
        component: &Component,
    ) -> Result<(bindings::PluginPre<SandboxState>, WitVersion), LoadError> {
        let wit_version = check_world(path, component, &machine.engine, WIT_VERSION)?;
        let instance_pre = machine.linker.instantiate_pre(component).map_err(|e| {
            LoadError::UnsupportedImport {
                path: path.to_owned(),
                import: first_unsatisfied_import(&e.to_string()),
                source: e.into(),
            }
        })?;
        let pre = bindings::PluginPre::new(instance_pre).map_err(|e| LoadError::WrongWorld {
            path: path.to_owned(),
            found: "does not match the world".to_string(),
            source: Some(e.into()),
        })?;
        Ok((pre, wit_version))
    }

    /// Compiles the plugin at `path` and writes the artifact, with the plugin's `info`, beside
    /// it (`postgres.wasm` → `postgres.cwasm` and `postgres.cwasm.json`), for renders with
    /// `--allow-precompiled` to load instead of compiling. Returns the artifact's path.
    pub fn precompile(&self, path: &Path) -> Result<PathBuf, PrecompileError> {
        let machine = self.machine()?;
        let PluginBytes { bytes, blake3 } = self.read(path)?;
        let identity = machine.identity(blake3);
        let (artifact, component) = self.compile(machine, path, &bytes)?;
        let (pre, wit_version) = self.prepare(machine, path, &component)?;
        let plugin = LoadedPlugin {
            path: path.to_owned(),
            size: bytes.len() as u64,
            wit_version,
            cache: CacheOutcome::Disabled,
            cache_entry: None,
            kept_info: None,
            pre,
        };
        let info = self.info(&plugin).map_err(|error| PrecompileError::Call {
            path: path.to_owned(),
            error,
        })?;
        let entry = cache::Entry::beside(path);
        let permissions = metadata(path)?.permissions();
        entry
            .store(&identity, &artifact, Some(&info))
            .and_then(|()| entry.set_permissions(&permissions))
            .map_err(|source| PrecompileError::Write {
                path: entry.artifact_path().to_owned(),
                source,
            })?;
        Ok(entry.artifact_path().to_owned())
    }
}

/// The plugin file's metadata, or why it cannot be read.
fn metadata(path: &Path) -> Result<fs::Metadata, LoadError> {
    fs::metadata(path).map_err(|source| LoadError::Read {
        path: path.to_owned(),
        source,
    })
}

fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, LoadError> {
    let (file, size) = open_bounded(path, limit)?;
    let mut bytes = Vec::with_capacity(size as usize);
    // `take` guards against a file that grows while we read it.
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(read_error(path))?;
    check_bound(path, bytes.len() as u64, limit)?;
    Ok(bytes)
}

/// Opens the plugin at `path` if it is at most `limit` bytes; returns it with its size.
fn open_bounded(path: &Path, limit: u64) -> Result<(fs::File, u64), LoadError> {
    let file = fs::File::open(path).map_err(read_error(path))?;
    let size = file.metadata().map_err(read_error(path))?.len();
    check_bound(path, size, limit)?;
    Ok((file, size))
}

fn check_bound(path: &Path, size: u64, limit: u64) -> Result<(), LoadError> {
    if size > limit {
        return Err(LoadError::TooLarge {
            path: path.to_owned(),
            size,
            limit,
        });
    }
    Ok(())
}

fn read_error(path: &Path) -> impl Fn(std::io::Error) -> LoadError + '_ {
    |source| LoadError::Read {
        path: path.to_owned(),
        source,
    }
}

/// Turns wasmtime's refusal of the plugin at `path` into a load error.
fn invalid(path: &Path) -> impl Fn(wasmtime::Error) -> LoadError + '_ {
    move |e| LoadError::Invalid {
        path: path.to_owned(),
        source: e.into(),
    }
}

/// Tells a component from a core module or other bytes, from the 8-byte preamble.
fn check_component_header(path: &Path, bytes: &[u8]) -> Result<(), LoadError> {
    const MAGIC: &[u8; 4] = b"\0asm";
    const CORE_MODULE: [u8; 4] = [1, 0, 0, 0];
    const COMPONENT_LAYER: [u8; 2] = [1, 0];
    let found = if bytes.is_empty() {
        "the file is empty".to_string()
    } else if bytes.len() < 8 || &bytes[..4] != MAGIC {
        "it does not start with the WebAssembly magic bytes".to_string()
    } else if bytes[4..8] == CORE_MODULE {
        "it is a core WebAssembly module (wrap it with `wasm-tools component new`, or build \
         for wasm32-wasip2)"
            .to_string()
    } else if bytes[6..8] == COMPONENT_LAYER {
        return Ok(());
    } else {
        format!("unknown WebAssembly version/layer {:02x?}", &bytes[4..8])
    };
    Err(LoadError::NotAComponent {
        path: path.to_owned(),
        found,
    })
}

/// The versions a plugin may be built against, for errors: `0.1.0`, or `0.1.0 to 0.1.3`.
fn served_versions(served: &WitVersion) -> String {
    let oldest = served.oldest_served();
    if oldest == *served {
        served.to_string()
    } else {
        format!("{oldest} to {served}")
    }
}

/// Checks the component's imports and exports against the world, for a clear error before
/// linking says something obscure. Each import of the contract's package must name a version
/// `served` serves; wasmtime's linker then resolves it to the host's own, as it matches
/// versions of one series. Returns the newest version the plugin imports: the one it was built
/// against (`served` if it imports nothing of the package).
fn check_world(
    path: &Path,
    component: &Component,
    engine: &Engine,
    served: WitVersion,
) -> Result<WitVersion, LoadError> {
    let ty = component.component_type();
    let mut built_against: Option<WitVersion> = None;
    let package = format!("{WIT_PACKAGE}/");
    for (name, _) in ty.imports(engine) {
        let Some(interface) = name.strip_prefix(&package) else {
            continue;
        };
        let version = interface
            .split_once('@')
            .and_then(|(_, version)| WitVersion::parse(version));
        match version.filter(|version| served.serves(*version)) {
            Some(version) => built_against = built_against.max(Some(version)),
            None => {
                return Err(LoadError::WrongWitVersion {
                    path: path.to_owned(),
                    found: name.to_string(),
                    served,
                });
            }
        }
    }
    let exports: Vec<String> = ty
        .exports(engine)
        .map(|(name, _)| name.to_string())
        .collect();
    if !["info", "render"]
        .iter()
        .all(|wanted| exports.iter().any(|e| e == wanted))
    {
        let found = if exports.is_empty() {
            "exports nothing".to_string()
        } else {
            format!("exports {}", exports.join(", "))
        };
        return Err(LoadError::WrongWorld {
            path: path.to_owned(),
            found,
            source: None,
        });
    }
    Ok(built_against.unwrap_or(served))
}

/// Pulls the import name out of wasmtime's "component imports instance `x`, but ..." message:
/// its error says which import is missing only in its text.
fn first_unsatisfied_import(message: &str) -> String {
    message
        .split('`')
        .nth(1)
        .map_or_else(|| "an import".to_string(), str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::Limits;

    /// A component with the world's two exports that imports `import`, an empty instance.
    fn component_importing(runtime: &Runtime, import: &str) -> Component {
        let wat = format!(
            r#"(component
                 (import "{import}" (instance))
                 (core module $m (func (export "nothing")))
                 (core instance $i (instantiate $m))
                 (func $nothing (canon lift (core func $i "nothing")))
                 (export "info" (func $nothing))
                 (export "render" (func $nothing)))"#
        );
        let bytes = wat::parse_str(&wat).expect("the test component assembles");
        Component::new(&runtime.machine().expect("the engine").engine, bytes)
            .expect("the test component compiles")
    }

    /// The bytes of a component with the world's exports (and no imports).
    fn plugin_bytes() -> Vec<u8> {
        let wat = r#"(component
                 (core module $m (func (export "nothing")))
                 (core instance $i (instantiate $m))
                 (func $nothing (canon lift (core func $i "nothing")))
                 (export "info" (func $nothing))
                 (export "render" (func $nothing)))"#;
        wat::parse_str(wat).expect("the test component assembles")
    }

    #[test]
    fn a_fingerprint_is_the_blake3_of_the_bytes_read_whole_and_checked_alike() {
        let dir = tempfile::tempdir().expect("tempdir");
        let runtime = Runtime::new(Limits::default(), None, false);
        let path = dir.path().join("p.wasm");
        // Longer than one buffer of the streamed read.
        let mut bytes = plugin_bytes();
        bytes.extend(std::iter::repeat_n(0, 200_000));
        fs::write(&path, &bytes).expect("write");
        let read = runtime.read(&path).expect("read");
        assert_eq!(
            runtime.fingerprint(&path).expect("fingerprint"),
            read.blake3
        );
        assert_eq!(read.blake3, blake3::hash(&bytes));

        let core_module = wat::parse_str("(module)").expect("assembles");
        for (bytes, found) in [
            (&b""[..], "empty"),
            (b"\0as", "magic bytes"),
            (&core_module, "core WebAssembly module"),
        ] {
            fs::write(&path, bytes).expect("write");
            for result in [
                runtime.fingerprint(&path),
                runtime.read(&path).map(|r| r.blake3),
            ] {
                let error = result.expect_err("not a component").to_string();
                assert!(error.contains(found), "{error}");
            }
        }

        let limits = Limits {
            max_plugin_bytes: 1000,
            ..Limits::default()
        };
        let bounded = Runtime::new(limits, None, false);
        fs::write(&path, &bytes).expect("write");
        for result in [
            bounded.fingerprint(&path),
            bounded.read(&path).map(|r| r.blake3),
        ] {
            assert!(matches!(
                result,
                Err(LoadError::TooLarge { limit: 1000, .. })
            ));
        }
    }

    #[test]
    fn code_is_never_compiled_for_a_plugin_whose_bytes_changed_since_it_was_identified() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = dir.path().join("cache");
        let runtime = Runtime::new(Limits::default(), Some(cache.clone()), false);
        let path = dir.path().join("p.wasm");
        fs::write(&path, plugin_bytes()).expect("write");
        let identified = runtime.fingerprint(&path).expect("fingerprint");
        // Rewritten between being identified and being loaded: its code is not stored under
        // the identity of the bytes it had.
        let mut changed = plugin_bytes();
        changed.extend(b"\0\x04more\x01");
        fs::write(&path, &changed).expect("rewrite");
        let refused = runtime.load_known(&path, identified);
        assert!(
            matches!(refused, Err(LoadError::Changed { .. })),
            "{refused:?}"
        );
        assert!(!cache.exists(), "nothing was stored");

        // With its bytes back, its code is compiled and stored (the test component is not a
        // plugin of the world, which is found after that).
        fs::write(&path, plugin_bytes()).expect("restore");
        let loaded = runtime.load_known(&path, identified);
        assert!(
            matches!(loaded, Err(LoadError::WrongWorld { .. })),
            "{loaded:?}"
        );
        assert!(cache.exists(), "its code was stored");
    }

    fn check(host: &str, import: &str) -> Result<WitVersion, LoadError> {
        let runtime = Runtime::new(Limits::default(), None, false);
        let component = component_importing(&runtime, import);
        let served = WitVersion::parse(host).expect("a version");
        check_world(Path::new("p.wasm"), &component, component.engine(), served)
    }

    #[test]
    fn plugins_built_against_an_earlier_version_of_the_series_pass_the_world_check() {
        for (import, built_against) in [
            ("mathison:plugin/host@0.1.3", "0.1.3"),
            ("mathison:plugin/host@0.1.0", "0.1.0"),
            // Nothing of the package imported: taken as built against the host's own version.
            ("wasi:cli/stdout@0.2.6", "0.1.3"),
        ] {
            assert_eq!(
                check("0.1.3", import).expect(import),
                WitVersion::parse(built_against).expect("a version"),
                "{import}"
            );
        }
    }

    #[test]
    fn later_and_other_series_are_refused_naming_the_version_found() {
        for import in [
            "mathison:plugin/host@0.1.4",
            "mathison:plugin/host@0.2.0",
            "mathison:plugin/host@0.0.9",
            "mathison:plugin/host@1.0.0",
            "mathison:plugin/host@0.1.0-rc.1",
            "mathison:plugin/host",
        ] {
            let error = check("0.1.3", import).expect_err(import);
            assert!(
                matches!(&error, LoadError::WrongWitVersion { found, .. } if found == import),
                "{import}: {error}"
            );
            assert!(
                error.to_string().contains(&format!(
                    "targets `{import}`, but this host serves `mathison:plugin@0.1.3` and runs \
                     plugins built against 0.1.0 to 0.1.3;"
                )),
                "{error}"
            );
        }
    }

    #[test]
    fn headers_tell_components_from_other_bytes() {
        let found = |bytes: &[u8]| match check_component_header(Path::new("p"), bytes) {
            Ok(()) => "a component".to_string(),
            Err(LoadError::NotAComponent { found, .. }) => found,
            Err(other) => panic!("{other}"),
        };
        assert_eq!(found(b"\0asm\x0d\0\x01\0"), "a component");
        assert_eq!(found(b""), "the file is empty");
        assert!(found(b"\0asm\x01\0\0\0").starts_with("it is a core WebAssembly module"));
        assert!(found(b"\x7fELF\x02\x01\x01\0").contains("magic bytes"));
        assert!(found(b"\0asm\x02\0\x02\0").starts_with("unknown WebAssembly version/layer"));
    }

    #[test]
    fn the_missing_import_is_read_from_the_linkers_message() {
        assert_eq!(
            first_unsatisfied_import("component imports instance `evil:net/socket`, but ..."),
            "evil:net/socket"
        );
        assert_eq!(first_unsatisfied_import("no names here"), "an import");
    }
}
