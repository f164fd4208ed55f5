//! The lock file (`mathison.lock`, beside the project file): what every plugin of the project
//! resolved to. A registry plugin is pinned by its manifest's digest and its layer's; a local
//! file by its SHA-256. A render with a lock fetches by digest and never resolves a tag.
//!
//! Like Cargo.lock: `lock` rewrites it; a render writes it when it is missing or no longer
//! matches the project; `--locked` (CI) fails instead, and also fails when a local plugin file
//! changed since it was locked.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Project;
use crate::output;
use crate::plan::{Locator, PlanError, PluginRequest};
use crate::registry::{Digest, OciReference, Pin, RegistryError};

pub const LOCK_FILE: &str = "mathison.lock";
const LOCK_VERSION: u32 = 1;
const HEADER: &str = "# Written by mathison-host from mathison.yaml: what each plugin resolved to.\n\
                      # Commit it; `mathison-host lock` rewrites it.\n";

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a lock file this host reads ({message}); run `mathison-host lock`")]
    Invalid { path: PathBuf, message: String },
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("--locked: {path} is missing; run `mathison-host lock` and commit it")]
    Missing { path: PathBuf },
    #[error("--locked: {path} is out of date: {reason}; run `mathison-host lock` and commit it")]
    Stale { path: PathBuf, reason: String },
    #[error(
        "--locked: plugin {plugin} ({file}) has sha256 {actual}, but {path} pins {expected}; \
         run `mathison-host lock` if the change is meant"
    )]
    FileChanged {
        path: PathBuf,
        plugin: String,
        file: String,
        expected: Digest,
        actual: Digest,
    },
    #[error(transparent)]
    Plan(#[from] PlanError),
}

/// The lock file's content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Lock {
    pub lock_version: u32,
    pub plugins: Vec<LockedPlugin>,
}

/// What one plugin resolved to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LockedPlugin {
    pub name: String,
    /// The source as the project file gives it.
    pub source: String,
    /// A registry plugin's manifest digest, or a local file's SHA-256.
    pub digest: Digest,
    /// A registry plugin's layer (the component), which the manifest must name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer: Option<Digest>,
    /// The component's size in bytes.
    pub size: u64,
}

/// Whether a stale or missing lock is written (a render, `lock`) or an error (`--locked`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    /// `lock`: resolve every tag again and write the file.
    Refresh,
    /// A render: use the lock, and write it where it is missing or stale.
    Update,
    /// `--locked`: use the lock; a missing or stale lock, or a changed file, is an error.
    Locked,
}

/// The plugins to render, each held to its lock entry.
#[derive(Debug)]
pub struct Resolved {
    pub plugins: Vec<PluginRequest>,
    /// The lock file to write once the plugins proved to be what the project says, when it is
    /// missing or changed.
    pub pending: Option<PendingLock>,
}

/// A lock file not yet written.
#[derive(Debug, Clone)]
pub struct PendingLock {
    pub path: PathBuf,
    pub lock: Lock,
}

impl PendingLock {
    /// Writes the lock file whole or not at all.
    pub fn write(&self) -> Result<&Path, LockError> {
        write(&self.path, &self.lock)?;
        Ok(&self.path)
    }
}

/// The lock file beside `project`.
pub fn lock_path(project: &Project) -> PathBuf {
    project.base().join(LOCK_FILE)
}

/// Resolves the project's plugins through its lock file, as `mode` says.
pub fn resolve(
    project: &Project,
    locator: &Locator,
    mode: LockMode,
) -> Result<Resolved, LockError> {
    let path = lock_path(project);
    let on_disk = read(&path)?;
    if mode == LockMode::Locked && on_disk.is_none() {
        return Err(LockError::Missing { path });
    }
    // `lock` resolves every tag again; what is on disk only tells whether anything changed.
    let existing = on_disk.as_ref().filter(|_| mode != LockMode::Refresh);
    let mut entries = Vec::new();
    let mut plugins = Vec::new();
    for (index, (plugin, source)) in project
        .file
        .plugins
        .iter()
        .zip(&project.sources)
        .enumerate()
    {
        let given = plugin.source.clone().unwrap_or_else(|| plugin.name.clone());
        let locked = existing
            .as_ref()
            .and_then(|lock| lock.plugins.get(index))
            .filter(|entry| entry.name == plugin.name && entry.source == given);
        if mode == LockMode::Locked && locked.is_none() {
            return Err(LockError::Stale {
                path,
                reason: format!(
                    "plugins[{index}] ({}, {given}) is not locked as it is",
                    plugin.name
                ),
            });
        }
        let mut request = PluginRequest::named(source, &plugin.name);
        let entry = if OciReference::is_reference(source) {
            let reference: OciReference = source
                .parse()
                .map_err(|e| PlanError::from(RegistryError::from(e)))?;
            match locked {
                Some(entry) => {
                    let pin = pin_of(entry, &path)?;
                    request.pin = Some(pin);
                    entry.clone()
                }
                None => {
                    let fetched = locator
                        .registry
                        .fetch(&reference, None)
                        .map_err(PlanError::from)?;
                    request.pin = Some(fetched.pin.clone());
                    LockedPlugin {
                        name: plugin.name.clone(),
                        source: given,
                        digest: fetched.pin.manifest,
                        layer: Some(fetched.pin.layer),
                        size: fetched.pin.size,
                    }
                }
            }
        } else {
            let file = locator.locate(&request)?;
            let bytes = std::fs::read(&file.path).map_err(|source| LockError::Read {
                path: file.path.clone(),
                source,
            })?;
            let actual = Digest::of(&bytes);
            if let Some(entry) = locked
                && entry.digest != actual
                && mode == LockMode::Locked
            {
                return Err(LockError::FileChanged {
                    path,
                    plugin: plugin.name.clone(),
                    file: file.path.display().to_string(),
                    expected: entry.digest.clone(),
                    actual,
                });
            }
            LockedPlugin {
                name: plugin.name.clone(),
                source: given,
                digest: actual,
                layer: None,
                size: bytes.len() as u64,
            }
        };
        entries.push(entry);
        plugins.push(request);
    }
    let lock = Lock {
        lock_version: LOCK_VERSION,
        plugins: entries,
    };
    let changed = on_disk.as_ref() != Some(&lock);
    if changed && mode == LockMode::Locked {
        return Err(LockError::Stale {
            path,
            reason: "it lists plugins the project file does not".to_string(),
        });
    }
    Ok(Resolved {
        plugins,
        pending: changed.then_some(PendingLock { path, lock }),
    })
}

fn pin_of(entry: &LockedPlugin, path: &Path) -> Result<Pin, LockError> {
    let layer = entry.layer.clone().ok_or_else(|| LockError::Invalid {
        path: path.to_owned(),
        message: format!("the registry plugin {} has no layer digest", entry.name),
    })?;
    Ok(Pin {
        manifest: entry.digest.clone(),
        layer,
        size: entry.size,
    })
}

/// The lock file at `path`, or `None` when there is none.
pub fn read(path: &Path) -> Result<Option<Lock>, LockError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(LockError::Read {
                path: path.to_owned(),
                source,
            });
        }
    };
    let lock: Lock = serde_yaml::from_str(&text).map_err(|e| LockError::Invalid {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    if lock.lock_version != LOCK_VERSION {
        return Err(LockError::Invalid {
            path: path.to_owned(),
            message: format!(
                "lockVersion {} (this host writes {LOCK_VERSION})",
                lock.lock_version
            ),
        });
    }
    Ok(Some(lock))
}

/// Writes `lock` to `path` whole or not at all.
fn write(path: &Path, lock: &Lock) -> Result<PathBuf, LockError> {
    let error = |source| LockError::Write {
        path: path.to_owned(),
        source,
    };
    // The render's own YAML writer: a name such as `yes` is quoted for YAML 1.1 readers too.
    let yaml = serde_json::to_value(lock)
        .map_err(std::io::Error::other)
        .and_then(|value| output::yaml_document(&value).map_err(std::io::Error::other))
        .map_err(error)?;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut file = tempfile::NamedTempFile::new_in(dir).map_err(error)?;
    std::io::Write::write_all(&mut file, format!("{HEADER}{yaml}").as_bytes()).map_err(error)?;
    file.persist(path).map_err(|e| error(e.error))?;
    Ok(path.to_owned())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::registry::{Registry, Settings};

    fn locator() -> Locator {
        Locator {
            search_path: Vec::new(),
            registry: Registry::new(Settings::new(None, Duration::from_secs(1), 1 << 20)),
        }
    }

    fn project(dir: &Path, plugins: &str) -> Project {
        let path = dir.join("mathison.yaml");
        let text = format!("apiVersion: mathison.dev/v1alpha1\nkind: Project\nplugins:\n{plugins}");
        std::fs::write(&path, text).unwrap();
        Project::load(&path).unwrap()
    }

    #[test]
    fn a_lock_is_written_checked_and_refreshed_like_cargos() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.wasm"), b"first build").unwrap();
        let one = project(dir.path(), "  - name: a\n    source: a.wasm\n");
        let missing = resolve(&one, &locator(), LockMode::Locked).unwrap_err();
        assert!(matches!(missing, LockError::Missing { .. }), "{missing}");

        let written = resolve(&one, &locator(), LockMode::Update).unwrap();
        let pending = written.pending.unwrap();
        assert_eq!(pending.write().unwrap(), dir.path().join(LOCK_FILE));
        assert_eq!(written.plugins[0].name.as_deref(), Some("a"));
        let lock = read(&dir.path().join(LOCK_FILE)).unwrap().unwrap();
        assert_eq!(lock.plugins[0].digest, Digest::of(b"first build"));
        assert!(
            resolve(&one, &locator(), LockMode::Locked)
                .unwrap()
                .pending
                .is_none()
        );
        assert!(
            resolve(&one, &locator(), LockMode::Refresh)
                .unwrap()
                .pending
                .is_none()
        );

        std::fs::write(dir.path().join("a.wasm"), b"second build").unwrap();
        let changed = resolve(&one, &locator(), LockMode::Locked)
            .unwrap_err()
            .to_string();
        assert!(
            changed.contains("has sha256") && changed.contains("pins"),
            "{changed}"
        );
        let refreshed = resolve(&one, &locator(), LockMode::Update).unwrap();
        refreshed.pending.unwrap().write().unwrap();

        std::fs::write(dir.path().join("b.wasm"), b"b").unwrap();
        let two = project(
            dir.path(),
            "  - name: a\n    source: a.wasm\n  - name: b\n    source: b.wasm\n",
        );
        let stale = resolve(&two, &locator(), LockMode::Locked)
            .unwrap_err()
            .to_string();
        assert!(stale.contains("out of date"), "{stale}");
        resolve(&two, &locator(), LockMode::Update)
            .unwrap()
            .pending
            .unwrap()
            .write()
            .unwrap();
        let shrunk = project(dir.path(), "  - name: b\n    source: b.wasm\n");
        let stale = resolve(&shrunk, &locator(), LockMode::Locked)
            .unwrap_err()
            .to_string();
        assert!(stale.contains("out of date"), "{stale}");
    }

    #[test]
    fn a_damaged_lock_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOCK_FILE);
        std::fs::write(&path, "lockVersion: 1\nplugins: [{name: a}]\n").unwrap();
        let error = read(&path).unwrap_err().to_string();
        assert!(
            error.contains("mathison.lock is not a lock file"),
            "{error}"
        );
    }
}
