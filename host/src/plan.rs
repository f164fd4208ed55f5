//! The first stage: turns what the user asked for into a plan (which plugin files, which values,
//! which context and policy). Nothing here runs a plugin, and nothing here knows the command
//! line: `cli` fills in a [`Request`].

use std::env;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::model::contract::RenderContext;
use crate::model::k8s::is_dns_label;
use crate::model::reserved;
use crate::policy::Policy;
use crate::registry::{OciReference, Pin, Registry, RegistryError};
use crate::secret_inputs::{SecretInputError, SecretInputs};
use crate::values::{self, Section, Values};

/// The environment variable with extra plugin directories, `:`-separated like `PATH`.
pub const PLUGIN_PATH_ENV: &str = "MATHISON_PLUGIN_PATH";
/// Where `cargo build --profile plugin --target wasm32-wasip2` (`make plugins`) puts plugins, relative to the workspace.
pub const WORKSPACE_BUILD_OUTPUT: &str = "target/wasm32-wasip2/plugin";
/// Where plugins are installed, under a data directory (`$XDG_DATA_HOME`) or an installation
/// prefix (`make install PREFIX=...`).
pub const INSTALLED_PLUGINS: &str = "share/mathison-host/plugins";

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(
        "plugin {name:?} not found; looked for {candidates} in: {searched}. Pass a path to the \
         .wasm file, or add its directory with --plugin-path or ${PLUGIN_PATH_ENV}"
    )]
    PluginNotFound {
        name: String,
        candidates: String,
        searched: String,
    },
    #[error("plugin file {0} does not exist")]
    PluginFileMissing(PathBuf),
    #[error("--namespace {0:?} is not a valid namespace name (a DNS-1123 label)")]
    Namespace(String),
    #[error("--instance {0:?} is not a valid label value (a DNS-1123 label)")]
    Instance(String),
    #[error(transparent)]
    Values(#[from] values::ValuesError),
    #[error(transparent)]
    SecretInput(#[from] SecretInputError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

/// One plugin as the user named it, with the digests a lock file holds it to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginRequest {
    /// A path to a `.wasm` file, a bare name or an `oci://` reference.
    pub spec: String,
    /// For an `oci://` reference: the digests it must resolve to.
    pub pin: Option<Pin>,
    /// The name the plugin must call itself (a project file names its plugins).
    pub name: Option<String>,
}

impl PluginRequest {
    pub fn new(spec: impl Into<String>) -> Self {
        Self {
            spec: spec.into(),
            pin: None,
            name: None,
        }
    }

    /// A plugin that must call itself `name`.
    pub fn named(spec: impl Into<String>, name: &str) -> Self {
        Self {
            name: Some(name.to_string()),
            ..Self::new(spec)
        }
    }
}

/// A plugin file ready to load, and how messages name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginFile {
    pub path: PathBuf,
    /// The file's name, or the `oci://` reference it was fetched from.
    pub source: String,
    /// The name the plugin must call itself, when the user gave one.
    pub expected_name: Option<String>,
}

/// Finds plugin files: paths as they are, bare names on the search path, `oci://` references
/// in the registry's store (fetching them when needed).
#[derive(Debug)]
pub struct Locator {
    pub search_path: Vec<PathBuf>,
    pub registry: Registry,
}

impl Locator {
    pub fn locate(&self, plugin: &PluginRequest) -> Result<PluginFile, PlanError> {
        if OciReference::is_reference(&plugin.spec) {
            let reference: OciReference = plugin.spec.parse().map_err(RegistryError::from)?;
            let fetched = self.registry.fetch(&reference, plugin.pin.as_ref())?;
            return Ok(PluginFile {
                path: fetched.path,
                source: plugin.spec.clone(),
                expected_name: plugin.name.clone(),
            });
        }
        let path = resolve_plugin(&plugin.spec, &self.search_path)?;
        Ok(PluginFile {
            source: source_name(&path),
            path,
            expected_name: plugin.name.clone(),
        })
    }
}

/// What the user asked to render, as given: plugin references unresolved, files unread.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// The plugins, in the user's order.
    pub plugins: Vec<PluginRequest>,
    /// Values files and inline sections, lowest precedence first.
    pub values: Vec<ValuesSource>,
    /// `PLUGIN.KEY=VALUE` overrides, applied after the files.
    pub set: Vec<String>,
    /// `PLUGIN.KEY=VALUE` overrides taken as strings, applied last.
    pub set_string: Vec<String>,
    pub namespace: String,
    pub instance: String,
    /// `PLUGIN.NAME=SOURCE` secret inputs.
    pub secret_inputs: Vec<String>,
    pub allow_cluster_scoped: bool,
    pub allow_rbac: bool,
    /// Objects (kind, name) the user owns.
    pub user_owned: Vec<(String, String)>,
    /// Annotate every object with what made it (`--provenance`).
    pub provenance: bool,
}

/// Where values come from, before `--set`.
#[derive(Debug, Clone)]
pub enum ValuesSource {
    /// A values file, one section per plugin.
    File(PathBuf),
    /// One plugin's values, from a project file.
    Section(Section),
}

/// Everything a render needs, resolved from a [`Request`].
#[derive(Debug, Clone)]
pub struct Plan {
    pub plugins: Vec<PluginFile>,
    pub values: Values,
    pub context: RenderContext,
    pub policy: Policy,
    pub secret_inputs: SecretInputs,
    pub provenance: bool,
}

impl Plan {
    /// The plan of `args`, with plugins found (and fetched) by `locator`.
    pub fn new(args: &Request, locator: &Locator) -> Result<Self, PlanError> {
        if !is_dns_label(&args.namespace) {
            return Err(PlanError::Namespace(args.namespace.clone()));
        }
        if !is_dns_label(&args.instance) {
            return Err(PlanError::Instance(args.instance.clone()));
        }
        let plugins = args
            .plugins
            .iter()
            .map(|plugin| locator.locate(plugin))
            .collect::<Result<_, _>>()?;
        let mut values = Values::default();
        for source in &args.values {
            match source {
                ValuesSource::File(file) => values.add_file(file)?,
                ValuesSource::Section(section) => values.add_section(section.clone()),
            }
        }
        for set in &args.set {
            values.add_set(set)?;
        }
        // After every --set, as Helm applies --set-string.
        for set in &args.set_string {
            values.add_set_string(set)?;
        }
        Ok(Self {
            plugins,
            values,
            context: RenderContext {
                namespace: args.namespace.clone(),
                instance: args.instance.clone(),
                host_version: env!("CARGO_PKG_VERSION").to_string(),
            },
            policy: Policy {
                namespace: args.namespace.clone(),
                allow_cluster_scoped: args.allow_cluster_scoped,
                allow_rbac: args.allow_rbac,
                user_owned: args.user_owned.clone(),
                host_owned: reserved::host_owned(&args.instance),
            },
            secret_inputs: SecretInputs::read(&args.secret_inputs)?,
            provenance: args.provenance,
        })
    }
}

/// What the plugin search path depends on besides `--plugin-path`, as `cli` reads it from the
/// process.
#[derive(Debug, Clone, Default)]
pub struct SearchEnv {
    /// `$MATHISON_PLUGIN_PATH`.
    pub plugin_path: Option<OsString>,
    /// `$XDG_DATA_HOME`.
    pub xdg_data_home: Option<OsString>,
    /// `$HOME`.
    pub home: Option<OsString>,
    /// The running executable.
    pub exe: Option<PathBuf>,
}

/// The plugin search path: `--plugin-path` directories, `$MATHISON_PLUGIN_PATH`, the
/// workspace's build output, the user's data directory
/// (`$XDG_DATA_HOME/mathison-host/plugins`, or `~/.local/share/mathison-host/plugins`), then
/// the plugins installed with the running binary ([`installed_plugin_dir`]).
pub fn search_path(flag_dirs: &[PathBuf], env: &SearchEnv) -> Vec<PathBuf> {
    let mut dirs = flag_dirs.to_vec();
    if let Some(value) = &env.plugin_path {
        dirs.extend(env::split_paths(value).filter(|p| !p.as_os_str().is_empty()));
    }
    dirs.push(PathBuf::from(WORKSPACE_BUILD_OUTPUT));
    let data_home = match &env.xdg_data_home {
        Some(dir) if !dir.is_empty() => Some(PathBuf::from(dir)),
        _ => env
            .home
            .as_ref()
            .map(|home| Path::new(home).join(".local/share")),
    };
    if let Some(data_home) = data_home {
        dirs.push(data_home.join("mathison-host/plugins"));
    }
    if let Some(installed) = env.exe.as_deref().and_then(installed_plugin_dir) {
        // With the default prefix (~/.local) this is the data directory again.
        if dirs.last() != Some(&installed) {
            dirs.push(installed);
        }
    }
    dirs
}

/// Where `make install` puts the plugins shipped with the binary at `exe`:
/// `PREFIX/share/mathison-host/plugins` for `PREFIX/bin/mathison-host`.
pub fn installed_plugin_dir(exe: &Path) -> Option<PathBuf> {
    Some(exe.parent()?.parent()?.join(INSTALLED_PLUGINS))
}

/// The bare names [`resolve_plugin`] finds on `search` (`NAME.wasm` and
/// `mathison_plugin_NAME.wasm` give `NAME`), sorted, each once: what `--plugin` completes to.
pub fn plugin_names(search: &[PathBuf]) -> Vec<String> {
    let mut names: Vec<String> = search
        .iter()
        .filter_map(|dir| std::fs::read_dir(dir).ok())
        .flatten()
        .filter_map(|entry| {
            let file = entry.ok()?.file_name().into_string().ok()?;
            let stem = file.strip_suffix(".wasm")?;
            let name = stem.strip_prefix("mathison_plugin_").unwrap_or(stem);
            // Anything else would be taken for a path, not looked up.
            let bare = !name.is_empty() && !name.contains('/') && !name.ends_with(".wasm");
            bare.then(|| name.to_string())
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

/// A path (anything with a `/` or ending in `.wasm`) is taken as is; a bare name is looked up
/// as `NAME.wasm` or `mathison_plugin_NAME.wasm` (cargo's name for crate
/// `mathison-plugin-NAME`) in each directory of `search`.
pub fn resolve_plugin(spec: &str, search: &[PathBuf]) -> Result<PathBuf, PlanError> {
    if spec.contains(std::path::MAIN_SEPARATOR) || spec.contains('/') || spec.ends_with(".wasm") {
        let path = PathBuf::from(spec);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(PlanError::PluginFileMissing(path))
        };
    }
    let candidates = [
        format!("{spec}.wasm"),
        format!("mathison_plugin_{}.wasm", spec.replace('-', "_")),
    ];
    search
        .iter()
        .flat_map(|dir| candidates.iter().map(move |file| dir.join(file)))
        .find(|path| path.is_file())
        .ok_or_else(|| PlanError::PluginNotFound {
            name: spec.to_string(),
            candidates: candidates.join(" or "),
            searched: search
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// How messages name a plugin file: its file name.
pub fn source_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn bare_names_resolve_through_the_search_path_in_order() -> std::io::Result<()> {
        let first = tempfile::tempdir()?;
        let second = tempfile::tempdir()?;
        fs::write(second.path().join("mathison_plugin_postgres.wasm"), b"")?;
        fs::write(second.path().join("redis.wasm"), b"")?;
        fs::write(first.path().join("redis.wasm"), b"")?;
        let search = search_path(
            &[first.path().to_owned()],
            &SearchEnv {
                plugin_path: Some(second.path().as_os_str().to_owned()),
                ..SearchEnv::default()
            },
        );
        assert_eq!(
            resolve_plugin("redis", &search).ok(),
            Some(first.path().join("redis.wasm"))
        );
        assert_eq!(
            resolve_plugin("postgres", &search).ok(),
            Some(second.path().join("mathison_plugin_postgres.wasm"))
        );
        let missing = resolve_plugin("minio", &search).unwrap_err().to_string();
        assert!(
            missing.contains("minio.wasm or mathison_plugin_minio.wasm"),
            "{missing}"
        );
        Ok(())
    }

    #[test]
    fn the_search_path_ends_with_the_data_directory_then_the_installed_plugins() {
        let env = SearchEnv {
            plugin_path: Some(OsString::from("/env/a::/env/b")),
            xdg_data_home: Some(OsString::from("/xdg")),
            home: Some(OsString::from("/home/u")),
            exe: Some(PathBuf::from("/opt/mathison/bin/mathison-host")),
        };
        let expected = [
            "/flag",
            "/env/a",
            "/env/b",
            WORKSPACE_BUILD_OUTPUT,
            "/xdg/mathison-host/plugins",
            "/opt/mathison/share/mathison-host/plugins",
        ];
        assert_eq!(
            search_path(&[PathBuf::from("/flag")], &env),
            expected.map(PathBuf::from)
        );

        // Without XDG_DATA_HOME (or with it empty), the data directory is under HOME; with the
        // default prefix, ~/.local, it is also where the binary's plugins are: listed once.
        let env = SearchEnv {
            xdg_data_home: Some(OsString::new()),
            exe: Some(PathBuf::from("/home/u/.local/bin/mathison-host")),
            ..env
        };
        let expected = [
            "/env/a",
            "/env/b",
            WORKSPACE_BUILD_OUTPUT,
            "/home/u/.local/share/mathison-host/plugins",
        ];
        assert_eq!(search_path(&[], &env), expected.map(PathBuf::from));
        assert_eq!(
            search_path(&[], &SearchEnv::default()),
            [PathBuf::from(WORKSPACE_BUILD_OUTPUT)]
        );
    }

    #[test]
    fn plugin_names_are_the_bare_names_that_resolve() -> std::io::Result<()> {
        let first = tempfile::tempdir()?;
        let second = tempfile::tempdir()?;
        for file in ["mathison_plugin_postgres.wasm", "redis.wasm", "redis.cwasm"] {
            fs::write(first.path().join(file), b"")?;
        }
        for file in ["redis.wasm", "notes.txt", ".wasm", "x.wasm.wasm"] {
            fs::write(second.path().join(file), b"")?;
        }
        let search = [
            first.path().to_owned(),
            second.path().to_owned(),
            first.path().join("missing"),
        ];
        let names = plugin_names(&search);
        assert_eq!(names, ["postgres", "redis"]);
        for name in &names {
            assert!(resolve_plugin(name, &search).is_ok(), "{name} resolves");
        }
        Ok(())
    }

    #[test]
    fn paths_are_taken_as_given() {
        assert!(matches!(
            resolve_plugin("./nope.wasm", &[]),
            Err(PlanError::PluginFileMissing(_))
        ));
    }
}
