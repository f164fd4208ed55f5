//! Compiled plugins on disk: the cache, and precompiled artifacts shipped beside plugins.
//!
//! Compiling a component costs far more than running it, so what a first render learns is kept
//! in an entry for the plugin's BLAKE3 and wasmtime's compatibility hash (its version and every
//! engine setting that affects code):
//!
//! - `<stem>.cwasm`: wasmtime's artifact, exactly. Loading maps it from disk
//!   (`Component::deserialize_file`) rather than reading and copying ~3 MB per plugin: on a warm
//!   render, page faults on those copies were most of the time.
//! - `<stem>.cwasm.json`: the manifest: which plugin and engine the artifact is for, its length
//!   and checksum, checked before the mapped code is trusted, and the plugin's `info` once a
//!   call returned it. `info` takes no input and runs in a deterministic sandbox, so its answer
//!   is a property of the plugin's bytes; a hit skips that call (and its instantiation).
//!
//! In the cache the stem is a hash of both identities; `mathison-host compile` writes the same
//! pair beside the plugin (`postgres.cwasm`) to ship it precompiled. An entry whose manifest is
//! missing or does not match is never loaded: a cache entry is recompiled and replaced. Both
//! files are written atomically, artifact first, so a reader racing a writer sees a mismatch at
//! worst, and recompiles.
//!
//! Two hashes, for two jobs. Identity is BLAKE3: whoever supplies a plugin chooses its bytes,
//! and must not be able to make them collide with another plugin's cached code. The artifact's
//! checksum is XXH3-128: it catches damage (a truncated copy, a flipped bit), not an attacker,
//! who could rewrite the manifest as easily as the artifact; at ~3 MB per plugin per render,
//! BLAKE3 there cost 1-2 ms of a ~10 ms render.
//!
//! Even XXH3 reads every page of the artifact (5 MB for postgres, ~1.7 ms on a cold CPU cache,
//! 10% of a render that runs it). So once a cache entry's artifact matched its checksum, the
//! manifest keeps the artifact file's stamp ([`FileStamp`]: inode, size, modification and
//! change times), and a later load whose artifact has that very stamp skips the checksum:
//! writing, truncating or replacing the file changes its stamp, as for the plugin files the
//! memo knows by theirs. Only a file that settled is stamped, and only in the cache: a
//! precompiled entry beside a plugin is the user's file, never rewritten by a render.

use std::fs::{self, File};
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde_json::value::RawValue;
use wasmtime::Engine;
use wasmtime::component::Component;

use super::Called;
use crate::memo::FileStamp;
use crate::model::contract::PluginInfo;

/// Bumped when the manifest's meaning changes, so older entries are recompiled.
const MANIFEST_FORMAT: u32 = 2;

/// Where a plugin's compiled code came from (shown with `-v` by the commands that render).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    Disabled,
    Hit,
    /// From the precompiled artifact shipped beside the plugin (`--allow-precompiled`, or
    /// installed with this binary).
    Precompiled,
    /// Compiled and stored.
    Miss,
    /// An entry was there but corrupt or foreign; compiled and replaced.
    Replaced,
    /// Compiled, but the entry could not be written (read-only directory, full disk...).
    StoreFailed,
}

/// What a compiled artifact is for: one plugin's bytes on one engine configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    pub plugin: blake3::Hash,
    pub engine: blake3::Hash,
}

/// The hash of everything in `engine` that decides whether compiled code fits it.
pub fn engine_key(engine: &Engine) -> blake3::Hash {
    let mut hasher = Blake3Hasher(blake3::Hasher::new());
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hasher.0.finalize()
}

/// What is known about one compiled artifact, in the manifest beside it. `Info` is how its
/// `info` is read: parsed, or kept as text ([`Unparsed`]) when loading the artifact.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Manifest<Info = Parsed> {
    format: u32,
    plugin_blake3: String,
    engine_blake3: String,
    artifact_len: u64,
    artifact_xxh3: String,
    /// The artifact file's stamp when it last matched `artifact_xxh3` (cache entries only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    verified: Option<FileStamp>,
    /// `None` until an `info` call succeeds.
    info: Info,
}

/// A manifest's `info` kept as text, not parsed. Loading an artifact parsed a schema and
/// defaults that the memo usually already had (3% of a render that changed one value); the
/// text is parsed by [`KeptInfo::parse`] only when the memo does not have them.
type Unparsed = Option<Box<RawValue>>;
/// A manifest's `info`, parsed.
type Parsed = Option<Called<PluginInfo>>;

/// A plugin's `info` as a manifest kept it, still JSON text.
#[derive(Debug)]
pub struct KeptInfo(Box<RawValue>);

impl KeptInfo {
    /// The `info` answer, or `None` when the text is not one (an entry is never trusted).
    pub fn parse(&self) -> Option<Called<PluginInfo>> {
        serde_json::from_str(self.0.get()).ok()
    }
}

/// One compiled artifact on disk (`<stem>.cwasm`) and its manifest (`<stem>.cwasm.json`).
#[derive(Debug, Clone)]
pub struct Entry {
    artifact: PathBuf,
    manifest: PathBuf,
    /// Whether a load may rewrite the manifest to keep the artifact's verified stamp.
    keeps_stamps: bool,
}

/// An entry that was found intact and loaded.
pub struct Found {
    pub component: Component,
    /// The plugin's `info`, if the manifest holds it.
    pub info: Option<KeptInfo>,
}

impl Entry {
    /// The entry of `identity` in the cache directory `dir`.
    pub fn in_cache(dir: &Path, identity: &Identity) -> Self {
        let key = blake3::Hasher::new()
            .update(identity.plugin.as_bytes())
            .update(identity.engine.as_bytes())
            .finalize();
        Self::at(dir.join(format!("{}.cwasm", key.to_hex())), true)
    }

    /// The precompiled entry shipped beside `plugin` (`postgres.wasm` → `postgres.cwasm`).
    pub fn beside(plugin: &Path) -> Self {
        Self::at(plugin.with_extension("cwasm"), false)
    }

    fn at(artifact: PathBuf, keeps_stamps: bool) -> Self {
        let mut manifest = artifact.clone().into_os_string();
        manifest.push(".json");
        Self {
            artifact,
            manifest: manifest.into(),
            keeps_stamps,
        }
    }

    pub fn artifact_path(&self) -> &Path {
        &self.artifact
    }

    /// Whether anything of the entry is on disk, intact or not.
    pub fn exists(&self) -> bool {
        self.manifest.exists() || self.artifact.exists()
    }

    /// Loads the entry if it is intact and made for `identity`.
    pub fn load(&self, engine: &Engine, identity: &Identity) -> Option<Found> {
        let mut manifest = self.read_manifest::<Unparsed>()?;
        let made_for_identity = manifest.plugin_blake3 == identity.plugin.to_hex().as_str()
            && manifest.engine_blake3 == identity.engine.to_hex().as_str();
        if !made_for_identity || !self.artifact_intact(&mut manifest, SystemTime::now()) {
            return None;
        }
        let component = deserialize_file(engine, &self.artifact)?;
        Some(Found {
            component,
            info: manifest.info.map(KeptInfo),
        })
    }

    /// Writes `artifact` (and `info`, when known), artifact first.
    pub fn store(
        &self,
        identity: &Identity,
        artifact: &[u8],
        info: Option<&Called<PluginInfo>>,
    ) -> std::io::Result<()> {
        write_atomically(&self.artifact, artifact)?;
        self.write_manifest(&Manifest {
            format: MANIFEST_FORMAT,
            plugin_blake3: identity.plugin.to_hex().to_string(),
            engine_blake3: identity.engine.to_hex().to_string(),
            artifact_len: artifact.len() as u64,
            artifact_xxh3: checksum(artifact),
            verified: None,
            info: info.cloned(),
        })
    }

    /// Whether the artifact on disk is the one `manifest` describes: it has the stamp it had
    /// when it last matched, or its length and checksum match now. A settled artifact that
    /// matched by `now` is stamped in `manifest`, which is written back as it is (its `info`
    /// too, parsed or not), best effort.
    fn artifact_intact<Info: serde::Serialize>(
        &self,
        manifest: &mut Manifest<Info>,
        now: SystemTime,
    ) -> bool {
        let Ok(stamp) = FileStamp::of(&self.artifact) else {
            return false;
        };
        if manifest.verified.as_ref() == Some(&stamp) {
            return true;
        }
        if !artifact_matches(&self.artifact, manifest) {
            return false;
        }
        // Kept only if the file did not change while it was checked.
        if self.keeps_stamps
            && stamp.settled(now)
            && FileStamp::of(&self.artifact).is_ok_and(|after| after == stamp)
        {
            manifest.verified = Some(stamp);
            // Ignored on failure, like any cache write: it only costs the next load a checksum.
            let _ = self.write_manifest(manifest);
        }
        true
    }

    /// Gives both files `permissions` (written files start private to the user, right for the
    /// cache but not for code shipped beside a plugin).
    pub fn set_permissions(&self, permissions: &fs::Permissions) -> std::io::Result<()> {
        fs::set_permissions(&self.artifact, permissions.clone())?;
        fs::set_permissions(&self.manifest, permissions.clone())
    }

    /// Keeps a successful `info` answer with the entry. Best effort: without it, the next
    /// render calls `info` again.
    pub fn store_info(&self, info: &Called<PluginInfo>) {
        // Ignored on failure, like any cache write: the render itself has what it needs.
        self.update_manifest(|manifest| manifest.info = Some(info.clone()));
    }

    /// Rewrites the manifest, whole, changed by `change`. Best effort.
    fn update_manifest(&self, change: impl FnOnce(&mut Manifest)) {
        if let Some(mut manifest) = self.read_manifest() {
            change(&mut manifest);
            let _ = self.write_manifest(&manifest);
        }
    }

    fn read_manifest<Info: serde::de::DeserializeOwned>(&self) -> Option<Manifest<Info>> {
        let manifest: Manifest<Info> =
            serde_json::from_slice(&fs::read(&self.manifest).ok()?).ok()?;
        (manifest.format == MANIFEST_FORMAT).then_some(manifest)
    }

    fn write_manifest<Info: serde::Serialize>(
        &self,
        manifest: &Manifest<Info>,
    ) -> std::io::Result<()> {
        write_atomically(&self.manifest, &serde_json::to_vec(manifest)?)
    }
}

fn checksum(bytes: &[u8]) -> String {
    format!("{:032x}", twox_hash::XxHash3_128::oneshot(bytes))
}

/// Whether the artifact on disk is the one the manifest describes: same length, same checksum.
fn artifact_matches<Info>(path: &Path, manifest: &Manifest<Info>) -> bool {
    let Ok(file) = File::open(path) else {
        return false;
    };
    if file.metadata().map(|m| m.len()).ok() != Some(manifest.artifact_len) {
        return false;
    }
    // SAFETY: the mapping is only read, and only while this function runs. Entries are replaced
    // by rename, never rewritten in place, so the file does not change under the mapping.
    // Mapping reads the page cache in place: no copy, no fresh pages to fault in.
    #[allow(unsafe_code)]
    let mapped = unsafe { memmap2::Mmap::map(&file) };
    mapped.is_ok_and(|bytes| checksum(&bytes) == manifest.artifact_xxh3)
}

fn deserialize_file(engine: &Engine, path: &Path) -> Option<Component> {
    // SAFETY: wasmtime requires that the file holds what `precompile_component` of a compatible
    // engine produced, and that it is not changed while mapped. The manifest's checksum shows
    // it is the artifact that was stored with it for this plugin and engine, wasmtime rejects
    // artifacts of another version or configuration, and entries are replaced by rename, never
    // rewritten in place. Cache entries are trusted like the user's own binaries; precompiled
    // ones beside a plugin only with --allow-precompiled (see the README's threat model).
    #[allow(unsafe_code)]
    let component = unsafe { Component::deserialize_file(engine, path) };
    component.ok()
}

/// Loads an artifact that `precompile_component` just produced on `engine`.
pub fn deserialize(engine: &Engine, artifact: &[u8]) -> wasmtime::Result<Component> {
    // SAFETY: the bytes come straight from `precompile_component` of this very engine.
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
    use std::thread;
    use std::time::Duration;

    use super::*;

    fn manifest_of(artifact: &[u8]) -> Manifest {
        Manifest {
            format: MANIFEST_FORMAT,
            plugin_blake3: String::new(),
            engine_blake3: String::new(),
            artifact_len: artifact.len() as u64,
            artifact_xxh3: checksum(artifact),
            verified: None,
            info: None,
        }
    }

    /// A cache entry holding `artifact`, and its manifest.
    fn stored(dir: &Path, artifact: &[u8]) -> (Entry, Manifest) {
        let entry = Entry::at(dir.join("entry.cwasm"), true);
        fs::write(&entry.artifact, artifact).expect("write");
        entry.write_manifest(&manifest_of(artifact)).expect("write");
        (entry, manifest_of(artifact))
    }

    fn settled_by_then() -> SystemTime {
        SystemTime::now() + Duration::from_secs(3)
    }

    #[test]
    fn a_settled_artifact_that_matched_is_known_by_its_stamp_until_it_changes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (entry, mut manifest) = stored(dir.path(), b"code");
        assert!(entry.artifact_intact(&mut manifest, settled_by_then()));
        let kept = entry.read_manifest::<Parsed>().expect("manifest");
        assert_eq!(
            kept.verified,
            Some(FileStamp::of(&entry.artifact).expect("stamp"))
        );

        // With the stamp, the checksum is not read again: a manifest whose checksum no longer
        // fits is believed, because the file is the one that matched.
        let mut believed = kept;
        believed.artifact_xxh3 = checksum(b"other");
        assert!(entry.artifact_intact(&mut believed, settled_by_then()));

        // Rewritten in place (after a tick of the file system's clock), or replaced: the stamp
        // changes, the checksum is read, and the damage is found.
        thread::sleep(Duration::from_millis(50));
        fs::write(&entry.artifact, b"cude").expect("rewrite");
        let mut kept = entry.read_manifest::<Parsed>().expect("manifest");
        assert!(!entry.artifact_intact(&mut kept, settled_by_then()));
        let replacement = dir.path().join("replacement");
        fs::write(&replacement, b"cade").expect("write");
        fs::rename(&replacement, &entry.artifact).expect("rename");
        assert!(!entry.artifact_intact(&mut kept, settled_by_then()));
    }

    #[test]
    fn only_settled_artifacts_in_the_cache_are_stamped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (entry, mut manifest) = stored(dir.path(), b"code");
        assert!(entry.artifact_intact(&mut manifest, SystemTime::now()));
        assert_eq!(
            entry.read_manifest::<Parsed>().expect("manifest").verified,
            None
        );

        let plugin = dir.path().join("postgres.wasm");
        let beside = Entry::beside(&plugin);
        fs::write(&beside.artifact, b"code").expect("write");
        beside.write_manifest(&manifest_of(b"code")).expect("write");
        let before = fs::read(&beside.manifest).expect("read");
        assert!(beside.artifact_intact(&mut manifest_of(b"code"), settled_by_then()));
        assert_eq!(fs::read(&beside.manifest).expect("read"), before);
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
        let entry = Entry::at(dir.path().join("entry.cwasm"), true);
        entry.write_manifest(&manifest_of(b"code")).expect("write");
        assert!(entry.read_manifest::<Parsed>().is_some());
        let mut older = serde_json::to_value(manifest_of(b"code")).expect("json");
        older["format"] = 1.into();
        fs::write(&entry.manifest, older.to_string()).expect("write");
        assert!(entry.read_manifest::<Parsed>().is_none());
        fs::write(&entry.manifest, "not json").expect("write");
        assert!(entry.read_manifest::<Parsed>().is_none());
    }

    #[test]
    fn a_loaded_manifest_keeps_info_as_text_that_parses_to_what_was_stored() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (entry, _) = stored(dir.path(), b"code");
        assert!(
            entry
                .read_manifest::<Unparsed>()
                .expect("manifest")
                .info
                .is_none()
        );

        let info = Called {
            value: PluginInfo {
                name: "quoted \"name\"".into(),
                version: "1.0.0".into(),
                description: "line\nbreak".into(),
                config_schema: r#"{"type":"object"}"#.into(),
                default_config: r#"{"port":5432}"#.into(),
                kinds: Vec::new(),
            },
            logs: Vec::new(),
        };
        entry.store_info(&info);
        let kept = entry.read_manifest::<Unparsed>().expect("manifest").info;
        let parsed = KeptInfo(kept.expect("kept"))
            .parse()
            .expect("an info answer");
        assert_eq!(parsed.value, info.value);

        // Stamping the manifest as loaded writes its `info` back unchanged, without parsing it.
        let mut loaded = entry.read_manifest::<Unparsed>().expect("manifest");
        assert!(entry.artifact_intact(&mut loaded, settled_by_then()));
        let stamped = entry.read_manifest::<Parsed>().expect("manifest");
        assert!(stamped.verified.is_some());
        assert_eq!(stamped.info.expect("info kept").value, info.value);

        // Text that is JSON but not an info answer is not trusted: the call is made instead.
        let mut damaged = serde_json::to_value(manifest_of(b"code")).expect("json");
        damaged["info"] = serde_json::json!({"value": 42, "logs": []});
        fs::write(&entry.manifest, damaged.to_string()).expect("write");
        let kept = entry.read_manifest::<Unparsed>().expect("manifest").info;
        assert!(KeptInfo(kept.expect("kept")).parse().is_none());
    }

    #[test]
    fn a_precompiled_entry_sits_beside_its_plugin() {
        let entry = Entry::beside(Path::new("plugins/postgres.wasm"));
        assert_eq!(entry.artifact, Path::new("plugins/postgres.cwasm"));
        assert_eq!(entry.manifest, Path::new("plugins/postgres.cwasm.json"));
    }
}
