//! The on-disk cache of compiled plugins.
//!
//! Compiling a component costs about a hundred times more than running it, so the machine
//! code is kept in `<dir>/<key>.cwasm`, where the key hashes the plugin's sha256 together with
//! wasmtime's compatibility hash (its version and every engine setting that affects code).
//! An entry starts with our own header holding the sha256 of the artifact that follows; an
//! entry whose header or checksum does not match is recompiled and replaced, never loaded.

use std::fs;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

const HEADER_MAGIC: &[u8; 16] = b"mathison-cwasm-1";
const HEADER_LEN: usize = HEADER_MAGIC.len() + 32;

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

#[derive(Debug)]
pub struct ArtifactCache {
    dir: PathBuf,
    engine_key: String,
}

impl ArtifactCache {
    pub fn new(dir: PathBuf, engine: &Engine) -> Self {
        let mut hasher = Sha256Hasher(Sha256::new());
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Self {
            dir,
            engine_key: super::hex(&hasher.0.finalize()),
        }
    }

    fn entry_path(&self, wasm_sha256: &str) -> PathBuf {
        let key = Sha256::new()
            .chain_update(wasm_sha256.as_bytes())
            .chain_update(self.engine_key.as_bytes())
            .finalize();
        self.dir.join(format!("{}.cwasm", super::hex(&key)))
    }

    pub fn load_or_compile(
        &self,
        engine: &Engine,
        wasm_sha256: &str,
        wasm: &[u8],
    ) -> (wasmtime::Result<Component>, CacheOutcome) {
        let path = self.entry_path(wasm_sha256);
        let existing = fs::read(&path).ok();
        if let Some(component) = existing
            .as_deref()
            .and_then(verified_artifact)
            .and_then(|artifact| deserialize(engine, artifact))
        {
            return (Ok(component), CacheOutcome::Hit);
        }
        let artifact = match engine.precompile_component(wasm) {
            Ok(artifact) => artifact,
            Err(error) => return (Err(error), CacheOutcome::Miss),
        };
        let stored = store(&path, &artifact).is_ok();
        let outcome = match (stored, existing.is_some()) {
            (false, _) => CacheOutcome::StoreFailed,
            (true, true) => CacheOutcome::Replaced,
            (true, false) => CacheOutcome::Miss,
        };
        match deserialize(engine, &artifact) {
            Some(component) => (Ok(component), outcome),
            // Should not happen for an artifact we just produced; compile in memory instead.
            None => (Component::new(engine, wasm), outcome),
        }
    }
}

/// The artifact of an entry, if its header and checksum are intact.
fn verified_artifact(entry: &[u8]) -> Option<&[u8]> {
    let (header, artifact) = entry.split_at_checked(HEADER_LEN)?;
    let (magic, checksum) = header.split_at(HEADER_MAGIC.len());
    (magic == HEADER_MAGIC && checksum == Sha256::digest(artifact).as_slice()).then_some(artifact)
}

fn deserialize(engine: &Engine, artifact: &[u8]) -> Option<Component> {
    // SAFETY: wasmtime requires that the bytes come from `precompile_component` of a compatible
    // engine. They do: the entry's checksum proves it is the artifact this cache wrote, and
    // wasmtime itself rejects artifacts of another version or configuration. The cache
    // directory is trusted like the user's own binaries (see the README's threat model).
    #[allow(unsafe_code)]
    let component = unsafe { Component::deserialize(engine, artifact) };
    component.ok()
}

/// Writes an entry atomically: a reader sees the old entry, the new one, or none.
fn store(path: &Path, artifact: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let mut file = tempfile::NamedTempFile::new_in(dir)?;
    file.write_all(HEADER_MAGIC)?;
    file.write_all(&Sha256::digest(artifact))?;
    file.write_all(artifact)?;
    file.as_file().sync_all()?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Feeds `Hash` output into sha256, so the key is stable across runs (unlike `DefaultHasher`).
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
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

    fn entry(artifact: &[u8]) -> Vec<u8> {
        let mut entry = HEADER_MAGIC.to_vec();
        entry.extend_from_slice(&Sha256::digest(artifact));
        entry.extend_from_slice(artifact);
        entry
    }

    #[test]
    fn intact_entry_yields_its_artifact() {
        assert_eq!(verified_artifact(&entry(b"code")), Some(&b"code"[..]));
    }

    #[test]
    fn corrupt_foreign_and_truncated_entries_are_refused() {
        let mut flipped = entry(b"code");
        *flipped.last_mut().unwrap_or(&mut 0) ^= 1;
        assert_eq!(verified_artifact(&flipped), None);
        assert_eq!(verified_artifact(b"\x7fELF some other file"), None);
        assert_eq!(verified_artifact(&entry(b"code")[..HEADER_LEN - 1]), None);
    }
}
