//! The argument groups several commands share, and their translation into the plain structs the
//! stages take. clap stays here and in `commands`: no stage depends on the command line.

use std::env;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, ValueEnum};
use clap_complete::engine::{
    ArgValueCompleter, CompletionCandidate, PathCompleter, ValueCompleter,
};

use crate::apply::cluster::{Connection, KubeCluster};
use crate::memo::{self, Memo};
use crate::model::k8s;
use crate::output::Format;
use crate::plan::{
    self, Locator, PLUGIN_PATH_ENV, PluginRequest, Request, SearchEnv, ValuesSource,
};
use crate::project::lock::{self, LockError, LockMode, PendingLock};
use crate::project::{PROJECT_FILE, Project, ProjectError};
use crate::registry::{self, Registry};
use crate::runtime::{Limits, Runtime};
use mathison_quantity::Quantity;

/// Where plugins are found and how they are run.
#[derive(Debug, Clone, Args)]
pub struct RuntimeArgs {
    /// A directory to search for plugins given by bare name; repeatable, searched first.
    #[arg(long = "plugin-path", value_name = "DIR")]
    pub plugin_path: Vec<PathBuf>,

    /// Wall-time limit of each plugin call, e.g. 10s, 500ms, 1m.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub timeout: Duration,

    /// Memory limit of each plugin, as a quantity, e.g. 256Mi.
    #[arg(long = "max-memory", value_name = "SIZE", default_value = "256Mi", value_parser = parse_size)]
    pub max_memory: u64,

    /// Limit on what one plugin call may return (objects and strings), e.g. 16Mi.
    #[arg(long = "max-output", value_name = "SIZE", default_value = "16Mi", value_parser = parse_size)]
    pub max_output: u64,

    /// Largest plugin file accepted, e.g. 64Mi.
    #[arg(long = "max-plugin-size", value_name = "SIZE", default_value = "64Mi", value_parser = parse_size)]
    pub max_plugin_size: u64,

    /// Directory of the compiled-plugin cache [default: $XDG_CACHE_HOME/mathison-host, or
    /// ~/.cache/mathison-host].
    #[arg(long = "cache-dir", value_name = "DIR", env = "MATHISON_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,

    /// Use no cache: compile plugins every time, and call them every time instead of answering
    /// from the memo of earlier renders' plugin answers.
    #[arg(long = "no-cache", env = "MATHISON_NO_CACHE", value_parser = clap::builder::FalseyValueParser::new())]
    pub no_cache: bool,

    /// Load the precompiled code `mathison-host compile` wrote beside a plugin (postgres.cwasm)
    /// instead of compiling it. That file is native code, outside the sandbox: allow it only
    /// for plugins that come from the same place as this binary. The plugins installed with
    /// this binary (PREFIX/share/mathison-host/plugins) need no flag.
    #[arg(long = "allow-precompiled", env = "MATHISON_ALLOW_PRECOMPILED", value_parser = clap::builder::FalseyValueParser::new())]
    pub allow_precompiled: bool,

    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// How `oci://` plugins are fetched and pushed.
#[derive(Debug, Clone, Args)]
pub struct RegistryArgs {
    /// A registry (HOST[:PORT]) to reach over plain HTTP; loopback registries always are.
    /// Repeatable.
    #[arg(
        long = "insecure-registry",
        value_name = "HOST[:PORT]",
        env = "MATHISON_INSECURE_REGISTRIES",
        value_delimiter = ','
    )]
    pub insecure_registries: Vec<String>,

    /// The longest a registry may take to accept a connection or send the next bytes; a whole
    /// fetch or push may take ten times this.
    #[arg(long = "registry-timeout", value_name = "DURATION", default_value = "30s", env = "MATHISON_REGISTRY_TIMEOUT", value_parser = parse_duration)]
    pub registry_timeout: Duration,
}

impl RuntimeArgs {
    /// The runtime these arguments describe.
    pub fn runtime(&self) -> Runtime {
        let runtime = Runtime::new(self.limits(), self.cache_dir(), self.allow_precompiled);
        // The plugins `make install` put beside this binary came with it, precompiled by it.
        match env::current_exe()
            .ok()
            .and_then(|exe| plan::installed_plugin_dir(&exe))
        {
            Some(installed) => runtime.trust_precompiled_in(&installed),
            None => runtime,
        }
    }

    /// Where bare plugin names are looked up: `--plugin-path`, then the rest of
    /// [`plan::search_path`].
    pub fn search_path(&self) -> Vec<PathBuf> {
        plan::search_path(&self.plugin_path, &search_env())
    }

    /// The registry client these arguments describe; its blobs live in the cache directory,
    /// which `--no-cache` (about compiled code) does not turn off.
    pub fn registry(&self) -> Registry {
        let mut settings = registry::Settings::new(
            self.cache_root(),
            self.registry.registry_timeout,
            self.max_plugin_size,
        );
        settings.insecure = self.registry.insecure_registries.clone();
        Registry::new(settings)
    }

    /// Where plugins are found: the search path, and the registry for `oci://` references.
    pub fn locator(&self) -> Locator {
        Locator {
            search_path: self.search_path(),
            registry: self.registry(),
        }
    }

    pub fn limits(&self) -> Limits {
        let usize_of = |bytes: u64| usize::try_from(bytes).unwrap_or(usize::MAX);
        Limits {
            timeout: self.timeout,
            memory_bytes: usize_of(self.max_memory),
            output_bytes: usize_of(self.max_output),
            max_plugin_bytes: self.max_plugin_size,
        }
    }

    /// The memo of plugin answers, in the cache directory; off with `--no-cache`.
    pub fn memo(&self) -> Option<Memo> {
        self.cache_dir()
            .map(|dir| Memo::new(dir.join("memo"), memo::DEFAULT_MAX_BYTES))
    }

    /// The cache directory in effect, or `None` when caching is off.
    pub fn cache_dir(&self) -> Option<PathBuf> {
        if self.no_cache {
            return None;
        }
        self.cache_root()
    }

    /// The cache directory, whether or not compiled code is cached.
    fn cache_root(&self) -> Option<PathBuf> {
        self.cache_dir.clone().or_else(|| {
            let base = env::var_os("XDG_CACHE_HOME")
                .filter(|dir| !dir.is_empty())
                .map(PathBuf::from)
                .or_else(|| env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))?;
            Some(base.join("mathison-host"))
        })
    }
}

/// What the search path depends on, from this process's environment.
fn search_env() -> SearchEnv {
    SearchEnv {
        plugin_path: env::var_os(PLUGIN_PATH_ENV),
        xdg_data_home: env::var_os("XDG_DATA_HOME"),
        home: env::var_os("HOME"),
        exe: env::current_exe().ok(),
    }
}

/// Completes a `--plugin` value: the bare names on the search path (without `--plugin-path`,
/// which a completer cannot see), or, once it has a `/`, directories and `.wasm` files.
fn complete_plugin(current: &OsStr) -> Vec<CompletionCandidate> {
    let Some(prefix) = current.to_str() else {
        return Vec::new();
    };
    if prefix.contains('/') {
        return PathCompleter::any()
            .filter(|path| path.extension().is_some_and(|ext| ext == "wasm"))
            .complete(current);
    }
    plan::plugin_names(&plan::search_path(&[], &search_env()))
        .into_iter()
        .filter(|name| name.starts_with(prefix))
        .map(CompletionCandidate::new)
        .collect()
}

/// What to render and how; shared by `render`, `validate`, `apply` and `diff`.
#[derive(Debug, Clone, Args)]
pub struct RenderArgs {
    /// A plugin: a path to a .wasm file, a bare name (`postgres`) looked up in --plugin-path,
    /// $MATHISON_PLUGIN_PATH, ./target/wasm32-wasip2/plugin, $XDG_DATA_HOME/mathison-host/plugins
    /// (~/.local/share/mathison-host/plugins) and the plugins installed with this binary
    /// (PREFIX/share/mathison-host/plugins), or a registry reference (oci://HOST/REPO:TAG or
    /// oci://HOST/REPO@sha256:DIGEST). Repeatable. Without any, the project file's plugins are
    /// rendered.
    #[arg(short, long = "plugin", value_name = "PLUGIN", add = ArgValueCompleter::new(complete_plugin))]
    pub plugins: Vec<String>,

    /// The project file [default: ./mathison.yaml when no --plugin is given]. Flags override
    /// what it says.
    #[arg(long, value_name = "FILE")]
    pub project: Option<PathBuf>,

    /// Fail when the project's lock file is missing or out of date, or a local plugin changed
    /// since it was locked, instead of writing the lock file (for CI).
    #[arg(long)]
    pub locked: bool,

    /// A YAML values file with one section per plugin name. Repeatable; later files win, and
    /// all win over the project file's values.
    #[arg(short = 'f', long = "values", value_name = "FILE")]
    pub values: Vec<PathBuf>,

    /// Set one value, e.g. redis.persistence.enabled=false. Repeatable; wins over files.
    #[arg(long = "set", value_name = "PLUGIN.KEY=VALUE")]
    pub set: Vec<String>,

    /// Set one value as a string, whatever it looks like (e.g. postgres.database=1). Repeatable;
    /// wins over files and --set.
    #[arg(long = "set-string", value_name = "PLUGIN.KEY=VALUE")]
    pub set_string: Vec<String>,

    /// The namespace of every namespaced object [default: the project's, or mathison-system].
    #[arg(short, long)]
    pub namespace: Option<String>,

    /// The instance name, for the app.kubernetes.io/instance label [default: the project's, or
    /// mathison].
    #[arg(long)]
    pub instance: Option<String>,

    /// A secret the host reads for the connection values of one plugin (DATABASE_URL), as
    /// PLUGIN.NAME=file:PATH or PLUGIN.NAME=env:VAR; only the plugin named PLUGIN can have it
    /// filled in. Plugins never see it. Repeatable.
    #[arg(long = "secret-input", value_name = "PLUGIN.NAME=SOURCE")]
    pub secret_inputs: Vec<String>,

    /// Accept cluster-scoped objects (Namespace, ClusterRole, ...) from plugins.
    #[arg(long)]
    pub allow_cluster_scoped: bool,

    /// Accept RBAC objects (Role, RoleBinding, ...) from plugins.
    #[arg(long)]
    pub allow_rbac: bool,

    /// An object the user owns, which no plugin may create or overwrite, as KIND/NAME.
    /// Repeatable.
    #[arg(long = "user-owned", value_name = "KIND/NAME", default_value = "Secret/mathison-secrets", value_parser = k8s::parse_kind_name)]
    pub user_owned: Vec<(String, String)>,

    /// Annotate every object with what made it (mathison.dev/provenance: the plugin, its
    /// version and SHA-256, the WIT and host versions). Off by default, so that renders stay
    /// byte-identical when only a plugin's build changed.
    #[arg(long)]
    pub provenance: bool,

    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

/// Why the render asked for cannot be put together.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error(
        "no plugins to render: pass --plugin (e.g. --plugin postgres), or write a project file \
         ({PROJECT_FILE}; `mathison-host schema project` prints its schema)"
    )]
    NoPlugins,
    #[error(transparent)]
    Project(#[from] ProjectError),
    #[error(transparent)]
    Lock(#[from] LockError),
}

/// A render put together from the flags and the project file.
#[derive(Debug)]
pub struct Prepared {
    pub request: Request,
    /// The project's lock file, to write once the render succeeded, when it is missing or
    /// out of date.
    pub pending_lock: Option<PendingLock>,
}

impl RenderArgs {
    /// The project file in effect: `--project`, or `./mathison.yaml` when no `--plugin` is given.
    pub fn project(&self) -> Result<Option<Project>, ProjectError> {
        let path = match &self.project {
            Some(path) => path.clone(),
            None if self.plugins.is_empty() && Path::new(PROJECT_FILE).is_file() => {
                PathBuf::from(PROJECT_FILE)
            }
            None => return Ok(None),
        };
        Project::load(&path).map(Some)
    }

    /// The render these arguments ask for: the project file's, with the flags over it. Plugins
    /// from the project are held to its lock file (written when missing or out of date, unless
    /// `--locked`).
    pub fn prepare(&self, locator: &Locator) -> Result<Prepared, RequestError> {
        let mode = if self.locked {
            LockMode::Locked
        } else {
            LockMode::Update
        };
        self.prepare_with(locator, self.project()?, Some(mode))
    }

    /// The render these arguments ask for over `project`. With a lock mode, the project's
    /// plugins are held to its lock file as the mode says; without one, they are taken as the
    /// project names them.
    pub fn prepare_with(
        &self,
        locator: &Locator,
        project: Option<Project>,
        lock: Option<LockMode>,
    ) -> Result<Prepared, RequestError> {
        let mut pending_lock = None;
        let plugins = match (&project, lock) {
            _ if !self.plugins.is_empty() => self.plugins.iter().map(PluginRequest::new).collect(),
            (Some(project), Some(mode)) => {
                let resolved = lock::resolve(project, locator, mode)?;
                pending_lock = resolved.pending;
                resolved.plugins
            }
            (Some(project), None) => project.plugin_requests(),
            (None, _) => return Err(RequestError::NoPlugins),
        };
        if plugins.is_empty() {
            return Err(RequestError::NoPlugins);
        }
        let mut values = Vec::new();
        let mut secret_inputs = Vec::new();
        let mut user_owned = self.user_owned.clone();
        let (mut allow_cluster_scoped, mut allow_rbac) =
            (self.allow_cluster_scoped, self.allow_rbac);
        if let Some(project) = &project {
            values.extend(project.values_files().into_iter().map(ValuesSource::File));
            values.extend(project.sections.iter().cloned().map(ValuesSource::Section));
            secret_inputs = project.secret_inputs();
            allow_cluster_scoped |= project.file.allow_cluster_scoped;
            allow_rbac |= project.file.allow_rbac;
            user_owned.extend(project.user_owned.iter().cloned());
        }
        values.extend(self.values.iter().cloned().map(ValuesSource::File));
        secret_inputs.extend(self.secret_inputs.iter().cloned());
        let from_project = |get: fn(&Project) -> Option<String>| project.as_ref().and_then(get);
        Ok(Prepared {
            request: Request {
                plugins,
                values,
                set: self.set.clone(),
                set_string: self.set_string.clone(),
                namespace: self
                    .namespace
                    .clone()
                    .or_else(|| from_project(|p| p.file.namespace.clone()))
                    .unwrap_or_else(|| DEFAULT_NAMESPACE.to_string()),
                instance: self
                    .instance
                    .clone()
                    .or_else(|| from_project(|p| p.file.instance.clone()))
                    .unwrap_or_else(|| DEFAULT_INSTANCE.to_string()),
                secret_inputs,
                allow_cluster_scoped,
                allow_rbac,
                user_owned,
                provenance: self.provenance,
            },
            pending_lock,
        })
    }
}

const DEFAULT_NAMESPACE: &str = "mathison-system";
const DEFAULT_INSTANCE: &str = "mathison";

/// How to reach the cluster; shared by `apply` and `diff`.
#[derive(Debug, Clone, Args)]
pub struct ClusterArgs {
    /// The kubeconfig file [default: $KUBECONFIG, then ~/.kube/config, then the pod's service
    /// account when running in a cluster].
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,

    /// The kubeconfig context [default: its current context].
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,

    /// The longest one API request may take, e.g. 30s.
    #[arg(long = "request-timeout", value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub request_timeout: Duration,
}

impl ClusterArgs {
    pub fn connect(&self) -> anyhow::Result<KubeCluster> {
        Ok(KubeCluster::connect(&Connection {
            kubeconfig: self.kubeconfig.as_deref(),
            context: self.context.as_deref(),
            request_timeout: Some(self.request_timeout),
        })?)
    }
}

/// `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// Multi-document YAML, ready for `kubectl apply -f -`.
    Yaml,
    /// A `v1` `List` in JSON.
    Json,
}

impl From<FormatArg> for Format {
    fn from(format: FormatArg) -> Self {
        match format {
            FormatArg::Yaml => Format::Yaml,
            FormatArg::Json => Format::Json,
        }
    }
}

pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .map_or((text, "s"), |at| text.split_at(at));
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration; expected e.g. 10s, 500ms or 1m"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => return Err(format!("unknown unit {unit:?}; use ms, s or m")),
    };
    Duration::try_from_secs_f64(seconds)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("{text:?} must be a positive duration"))
}

fn parse_size(text: &str) -> Result<u64, String> {
    let parsed: Quantity = text
        .parse()
        .map_err(|e: mathison_quantity::ParseError| e.to_string())?;
    parsed
        .value()
        .and_then(|bytes| u64::try_from(bytes).ok())
        .filter(|bytes| *bytes > 0)
        .ok_or_else(|| format!("{text:?} must be a positive size"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_sizes_parse() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert!(parse_duration("0s").is_err() && parse_duration("soon").is_err());
        assert_eq!(parse_size("256Mi"), Ok(256 << 20));
        assert!(parse_size("256 MB").is_err() && parse_size("0").is_err());
    }
}
