//! The on-disk cache of compiled plugins.
//!
//! Compiling a component costs about a hundred times more than running it, so what a first
//! render learns is kept under a key that hashes the plugin's BLAKE3 together with wasmtime's
//! compatibility hash (its version and every engine setting that affects code):
//!
//! - `<key>.cwasm`: wasmtime's artifact, exactly. A hit maps it from disk
//!   (`Component::deserialize_file`) rather than reading and copying ~2 MB per plugin: on a warm
//!   render, page faults on those copies were most of the time.
//! - `<key>.json`: the artifact's length and BLAKE3, which a hit checks before trusting the
//!   mapped code, and the plugin's `info` once a call returned it. `info` takes no input and runs
//!   in a deterministic sandbox, so its answer is a property of the plugin's bytes; a hit skips
//!   that call (and its instantiation).
//!
//! An entry whose manifest is missing or does not match its artifact is recompiled and
//! replaced, never loaded. Both files are written atomically, artifact first, so a reader racing
//! a writer sees a mismatch at worst, and recompiles.

use std::fs::{self, File};
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use wasmtime::Engine;
use wasmtime::component::Component;

use super::Called;
use crate::contract::PluginInfo;

/// Bumped when the manifest's meaning changes, so older entries are recompiled.
const MANIFEST_FORMAT: u32 = 1;

/// What happened to the cache while loading one plugin (shown by `inspect` and `-v`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    Disabled,
    Hit,
    /// Compiled and stored.
    Miss,
    /// An entry was there but corrupt or foreign; compiled and replaced.
    Replaced,
    /// Compiled, but the entry could not be written (read-only directory, full disk...).
    StoreFailed,
}

/// What the cache knows about one compiled plugin, beside its artifact.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Manifest {
    format: u32,
    artifact_len: u64,
    artifact_blake3: String,
    /// `None` until an `info` call succeeds.
    info: Option<Called<PluginInfo>>,
}

/// A loaded entry.
pub struct Loaded {
    pub component: wasmtime::Result<Component>,
    pub outcome: CacheOutcome,
    /// The plugin's `info`, when an earlier call stored it.
    pub info: Option<Called<PluginInfo>>,
}

#[derive(Debug)]
pub struct ArtifactCache {
    dir: PathBuf,
    engine_key: blake3::Hash,
}

impl ArtifactCache {
    pub fn new(dir: PathBuf, engine: &Engine) -> Self {
        let mut hasher = Blake3Hasher(blake3::Hasher::new());
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Self {
            dir,
            engine_key: hasher.0.finalize(),
        }
    }

    /// The entry key of a plugin whose bytes hash to `plugin_blake3`.
    fn entry_stem(&self, plugin_blake3: &blake3::Hash) -> PathBuf {
        let key = blake3::Hasher::new()
            .update(plugin_blake3.as_bytes())
            .update(self.engine_key.as_bytes())
            .finalize();
        self.dir.join(key.to_hex().as_str())
    }

    pub fn load_or_compile(
        &self,
        engine: &Engine,
        plugin_blake3: &blake3::Hash,
        wasm: &[u8],
    ) -> Loaded {
        let stem = self.entry_stem(plugin_blake3);
        let (artifact_path, manifest_path) = (stem.with_extension("cwasm"), manifest_path(&stem));
        let manifest = read_manifest(&manifest_path);
        if let Some(manifest) = &manifest
            && artifact_matches(&artifact_path, manifest)
            && let Some(component) = deserialize_file(engine, &artifact_path)
        {
            return Loaded {
                component: Ok(component),
                outcome: CacheOutcome::Hit,
                info: manifest.info.clone(),
            };
        }
        let existed = manifest.is_some() || artifact_path.exists();
        let artifact = match engine.precompile_component(wasm) {
            Ok(artifact) => artifact,
            Err(error) => {
                return Loaded {
                    component: Err(error),
                    outcome: CacheOutcome::Miss,
                    info: None,
                };
            }
        };
        let manifest = Manifest {
            format: MANIFEST_FORMAT,
            artifact_len: artifact.len() as u64,
            artifact_blake3: blake3::hash(&artifact).to_hex().to_string(),
            info: None,
        };
        let stored = write_atomically(&artifact_path, &artifact)
            .and_then(|()| write_manifest(&manifest_path, &manifest))
            .is_ok();
        let outcome = match (stored, existed) {
            (false, _) => CacheOutcome::StoreFailed,
            (true, true) => CacheOutcome::Replaced,
            (true, false) => CacheOutcome::Miss,
        };
        let component = match stored.then(|| deserialize_file(engine, &artifact_path)) {
            Some(Some(component)) => Ok(component),
            // Not stored (or gone already): load the artifact from memory instead.
            _ => deserialize(engine, &artifact),
        };
        Loaded {
            component,
            outcome,
            info: None,
        }
    }

    /// Keeps a successful `info` answer with the entry of the plugin hashing to `plugin_blake3`.
    /// Best effort: without it, the next render calls `info` again.
    pub fn store_info(&self, plugin_blake3: &blake3::Hash, info: &Called<PluginInfo>) {
        let manifest_path = manifest_path(&self.entry_stem(plugin_blake3));
        if let Some(mut manifest) = read_manifest(&manifest_path) {
            manifest.info = Some(info.clone());
            // Ignored on failure, like any cache write: the render itself has what it needs.
            let _ = write_manifest(&manifest_path, &manifest);
        }
    }
}

fn manifest_path(stem: &Path) -> PathBuf {
    stem.with_extension("json")
}

fn read_manifest(path: &Path) -> Option<Manifest> {
    let manifest: Manifest = serde_json::from_slice(&fs::read(path).ok()?).ok()?;
    (manifest.format == MANIFEST_FORMAT).then_some(manifest)
}

fn write_manifest(path: &Path, manifest: &Manifest) -> std::io::Result<()> {
    write_atomically(path, &serde_json::to_vec(manifest)?)
}

/// Whether the artifact on disk is the one the manifest describes: same length, same BLAKE3.
fn artifact_matches(path: &Path, manifest: &Manifest) -> bool {
    let Ok(file) = File::open(path) else {
        return false;
    };
    if file.metadata().map(|m| m.len()).ok() != Some(manifest.artifact_len) {
        return false;
    }
    let mut hasher = blake3::Hasher::new();
    // Memory-mapped: hashing reads the page cache in place, with no copy.
    hasher.update_mmap(path).is_ok()
        && hasher.finalize().to_hex().as_str() == manifest.artifact_blake3
}

fn deserialize_file(engine: &Engine, path: &Path) -> Option<Component> {
    // SAFETY: wasmtime requires that the file holds what `precompile_component` of a compatible
    // engine produced, and that it is not changed while mapped. It does: the manifest's BLAKE3
    // proves it is the artifact this cache wrote, wasmtime rejects artifacts of another version
    // or configuration, and entries are replaced by rename, never rewritten in place. The cache
    // directory is trusted like the user's own binaries (see the README's threat model).
    #[allow(unsafe_code)]
    let component = unsafe { Component::deserialize_file(engine, path) };
    component.ok()
}

fn deserialize(engine: &Engine, artifact: &[u8]) -> wasmtime::Result<Component> {
    // SAFETY: `artifact` was just produced by `precompile_component` on this very engine.
    #[allow(unsafe_code)]
    unsafe {
        Component::deserialize(engine, artifact)
    }
}

/// Writes a file atomically: a reader sees the old file, the new one, or none.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let mut file = tempfile::NamedTempFile::new_in(dir)?;
    file.write_all(bytes)?;
    file.as_file().sync_all()?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Feeds `Hash` output into BLAKE3, so the key is stable across runs (unlike `DefaultHasher`).
struct Blake3Hasher(blake3::Hasher);

impl Hasher for Blake3Hasher {
    fn finish(&self) -> u64 {
        // Only `write` is used; the digest is read from the inner hasher.
        0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest_of(artifact: &[u8]) -> Manifest {
        Manifest {
            format: MANIFEST_FORMAT,
            artifact_len: artifact.len() as u64,
            artifact_blake3: blake3::hash(artifact).to_hex().to_string(),
            info: None,
        }
    }

    #[test]
    fn an_artifact_matches_only_the_manifest_written_for_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("entry.cwasm");
        fs::write(&path, b"code").expect("write");
        assert!(artifact_matches(&path, &manifest_of(b"code")));
        assert!(!artifact_matches(&path, &manifest_of(b"cod")));
        assert!(!artifact_matches(&path, &manifest_of(b"coda")));
        assert!(!artifact_matches(
            &dir.path().join("missing"),
            &manifest_of(b"code")
        ));
    }

    #[test]
    fn manifests_of_another_format_are_ignored() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("entry.json");
        write_manifest(&path, &manifest_of(b"code")).expect("write");
        assert!(read_manifest(&path).is_some());
        let older = serde_json::json!({"format": 0, "artifact_len": 4, "artifact_blake3": "", "info": null});
        fs::write(&path, older.to_string()).expect("write");
        assert!(read_manifest(&path).is_none());
        fs::write(&path, "not json").expect("write");
        assert!(read_manifest(&path).is_none());
    }
}
