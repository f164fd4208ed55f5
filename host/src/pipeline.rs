//! The render pipeline: plan → runtime → decode → policy → merge → order, and for `render`'s
//! text → output, with the memo in front of the runtime (each plugin's answers) and of the
//! whole render (its text).
//!
//! Plugins are independent, so each stage that runs plugins runs them in parallel; results
//! and errors are collected in the order the user gave the plugins, so output and the error
//! reported never depend on thread timing.

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

use crate::decode::{self, DecodeError};
use crate::memo::{FileStamp, Key, Memo, MemoOutcome};
use crate::merge::{self, MergeError, MergeSettings, PluginObjects, PluginRef};
use crate::model::contract::{self, LogLine, PluginInfo, RenderError, RenderOutput, WitVersion};
use crate::model::k8s::{self, is_dns_label};
use crate::model::object::Placed;
use crate::model::reserved;
use crate::order;
use crate::output::{self, Format, OutputError};
use crate::plan::{Locator, Plan, PlanError, PluginFile, Request};
use crate::policy::{DeclaredKinds, PolicyError};
use crate::registry::Digest;
use crate::runtime::{CacheOutcome, CallError, Called, Limits, LoadError, LoadedPlugin, Runtime};
use crate::schema::{Schema, SchemaError};
use crate::untrusted::Escaped;
use crate::values::{ConfigError, ValuesError};

/// The most kinds one plugin may declare: far more than any service needs, few enough that
/// every check of them stays cheap.
pub const MAX_DECLARED_KINDS: usize = 1000;

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The call's error is part of this line rather than a `source`: it is the cause, and
    /// repeating it as "caused by" would print it twice.
    #[error("{plugin}: {error}")]
    Call { plugin: String, error: CallError },
    #[error("{plugin}: `info` is invalid: {message}")]
    Info { plugin: String, message: String },
    #[error("cannot read {} for its provenance", path.display())]
    Provenance {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{first} and {second} are both named {name:?}; plugin names must be unique")]
    DuplicateName {
        name: String,
        first: String,
        second: String,
    },
    #[error(
        "{plugin} calls itself {actual:?}, but the project file lists it as {expected:?}; \
         the name there is the plugin's own"
    )]
    UnexpectedName {
        plugin: String,
        expected: String,
        actual: String,
    },
    #[error(
        "--secret-input {plugin}.*: no plugin of this render is named {plugin:?} (plugins: \
         {plugins}); a secret input is bound to the plugin it is for"
    )]
    UnboundSecretInput { plugin: String, plugins: String },
    #[error(transparent)]
    Values(#[from] ValuesError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error(transparent)]
    Merge(#[from] MergeError),
    #[error(transparent)]
    Output(#[from] OutputError),
}

/// What one plugin did during a render, for logs and `-v`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PluginReport {
    pub source: String,
    pub path: PathBuf,
    pub name: String,
    /// Where its compiled code came from; `None` when it was not needed.
    #[serde(skip)]
    pub cache: Option<CacheOutcome>,
    /// Whether its `render` answer came from the memo. A report read back from the memo is
    /// one of a render that did not run.
    #[serde(skip, default = "remembered")]
    pub memo: MemoOutcome,
    pub logs: Vec<LogLine>,
    pub objects: usize,
}

fn remembered() -> MemoOutcome {
    MemoOutcome::Hit
}

/// The result of a render: objects in install order, notes for the user, and per-plugin reports.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub objects: Vec<Placed>,
    pub notes: Vec<String>,
    pub plugins: Vec<PluginReport>,
}

/// A way of laying out a render's objects as text, for where they go.
pub trait Layout: serde::Serialize + serde::de::DeserializeOwned {
    /// Names the layout in the memo's keys: layouts never share an entry.
    const NAME: &'static str;

    fn lay_out(objects: &[Placed], format: Format) -> Result<Self, OutputError>;
}

/// The objects as one stream, for stdout.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Stream(pub String);

impl Layout for Stream {
    const NAME: &'static str = "stream";

    fn lay_out(objects: &[Placed], format: Format) -> Result<Self, OutputError> {
        let objects: Vec<&Placed> = objects.iter().collect();
        output::to_string(&objects, format).map(Self)
    }
}

/// One file per plugin, and one for the host's own objects (`-o DIR`): file name → contents.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Files(pub BTreeMap<String, String>);

impl Layout for Files {
    const NAME: &'static str = "files";

    fn lay_out(objects: &[Placed], format: Format) -> Result<Self, OutputError> {
        output::files(objects, format).map(Self)
    }
}

/// A render as text, with what the user is told about it: what `render` writes.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RenderedText<L> {
    pub manifests: L,
    pub notes: Vec<String>,
    pub plugins: Vec<PluginReport>,
}

/// A plugin file with the BLAKE3 of its bytes.
#[derive(Debug)]
pub struct Identified<'a> {
    file: &'a PluginFile,
    fingerprint: blake3::Hash,
}

/// A plugin that described itself, with what it said checked. Its code is loaded when a call
/// needs it: a plugin whose answers are all in the memo is never loaded.
#[derive(Debug)]
pub struct Described {
    pub source: String,
    pub path: PathBuf,
    pub size: u64,
    /// The version of the contract the plugin was built against.
    pub wit_version: WitVersion,
    pub info: PluginInfo,
    /// `info.config_schema`, parsed (see [`Described::schema`]).
    schema: OnceLock<Schema>,
    pub declared: DeclaredKinds,
    pub logs: Vec<LogLine>,
    /// The BLAKE3 of the plugin's bytes: its name in the memo.
    fingerprint: blake3::Hash,
    loaded: OnceLock<LoadedPlugin>,
}

impl Described {
    /// The plugin as errors name it: its name and its file.
    fn plugin_ref(&self) -> PluginRef<'_> {
        PluginRef {
            name: &self.info.name,
            source: &self.source,
        }
    }

    /// The plugin's configuration schema, parsed on first use.
    pub fn schema(&self) -> Result<&Schema, PipelineError> {
        if let Some(schema) = self.schema.get() {
            return Ok(schema);
        }
        let parsed = Schema::parse_within_bounds(&self.info.config_schema)
            .map_err(|e| schema_error(&self.source, e))?;
        Ok(self.schema.get_or_init(|| parsed))
    }

    /// The plugin's compiled code, loaded on first use.
    pub fn loaded(&self, runtime: &Runtime) -> Result<&LoadedPlugin, PipelineError> {
        if let Some(loaded) = self.loaded.get() {
            return Ok(loaded);
        }
        let loaded = runtime.load_known(&self.path, self.fingerprint)?;
        Ok(self.loaded.get_or_init(|| loaded))
    }
}

/// What `info` answered, as the memo keeps it with what loading the plugin found.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct InfoAnswer {
    info: Called<PluginInfo>,
    wit_version: WitVersion,
    size: u64,
}

/// Everything a call's answer depends on besides its own input: the plugin's bytes, the host
/// (its version decides the contract it serves and how it converts answers) and the limits,
/// under which the same call may fail.
fn memo_key(call: &str, fingerprint: &blake3::Hash, limits: &Limits) -> Key {
    let mut key = host_key(call, limits);
    key.part(fingerprint.as_bytes());
    key
}

/// The part of every key that is the host's: its version, the contract's, and the limits.
fn host_key(call: &str, limits: &Limits) -> Key {
    let mut key = Key::new(call);
    key.part(env!("CARGO_PKG_VERSION").as_bytes())
        .part(contract::WIT_VERSION.to_string().as_bytes())
        .part(&limits.timeout.as_nanos().to_le_bytes())
        .part(&(limits.memory_bytes as u64).to_le_bytes())
        .part(&(limits.output_bytes as u64).to_le_bytes())
        .part(&limits.max_plugin_bytes.to_le_bytes());
    key
}

/// Takes the fingerprint of a plugin file, which names its answers in the memo: the one the
/// memo kept for the file as it is now, or the BLAKE3 of its bytes, read and checked.
pub fn identify<'a>(
    runtime: &Runtime,
    memo: Option<&Memo>,
    plugin: &'a PluginFile,
) -> Result<Identified<'a>, PipelineError> {
    let path = &plugin.path;
    let stamp = memo.and_then(|_| FileStamp::of(path).ok());
    if let (Some(memo), Some(stamp)) = (memo, &stamp)
        && let Some(fingerprint) = memo.fingerprint(stamp)
    {
        return Ok(Identified {
            file: plugin,
            fingerprint,
        });
    }
    let fingerprint = runtime.fingerprint(path)?;
    // Kept only when the file did not change while it was read.
    if let (Some(memo), Some(stamp)) = (memo, &stamp)
        && FileStamp::of(path).is_ok_and(|after| after == *stamp)
    {
        memo.keep_fingerprint(stamp, &fingerprint);
    }
    Ok(Identified {
        file: plugin,
        fingerprint,
    })
}

/// Calls `info` (or finds its answer in `memo`), checking what it says.
pub fn describe(
    runtime: &Runtime,
    memo: Option<&Memo>,
    plugin: &PluginFile,
) -> Result<Described, PipelineError> {
    describe_identified(runtime, memo, &identify(runtime, memo, plugin)?)
}

/// [`describe`] for a plugin already identified.
fn describe_identified(
    runtime: &Runtime,
    memo: Option<&Memo>,
    identified: &Identified,
) -> Result<Described, PipelineError> {
    let plugin = identified.file;
    let source = plugin.source.clone();
    let fingerprint = identified.fingerprint;
    let key = memo_key("info", &fingerprint, &runtime.limits());
    let loaded = OnceLock::new();
    let (answer, remembered) = match memo.and_then(|memo| memo.get::<InfoAnswer>(&key)) {
        Some(answer) => (answer, true),
        None => {
            let code = runtime.load_known(&plugin.path, fingerprint)?;
            let called = runtime.info(&code).map_err(|error| PipelineError::Call {
                plugin: source.clone(),
                error,
            })?;
            let answer = InfoAnswer {
                info: called,
                wit_version: code.wit_version,
                size: code.size,
            };
            let _ = loaded.set(code);
            (answer, false)
        }
    };
    let info = &answer.info.value;
    check_info(&source, info)?;
    // `info` is kept only once its schema passed the bounds, which then need no second walk;
    // a remembered schema is parsed when a check needs it (a plugin whose render is
    // remembered too never does).
    let schema = if remembered {
        OnceLock::new()
    } else {
        OnceLock::from(Schema::parse(&info.config_schema).map_err(|e| schema_error(&source, e))?)
    };
    if let (Some(memo), false) = (memo, remembered) {
        memo.put(&key, &answer);
    }
    Ok(Described {
        declared: DeclaredKinds::new(&info.kinds),
        source,
        path: plugin.path.clone(),
        size: answer.size,
        wit_version: answer.wit_version,
        info: answer.info.value,
        schema,
        logs: answer.info.logs,
        fingerprint,
        loaded,
    })
}

/// A plugin's schema that cannot be used, as an error of its `info`.
fn schema_error(plugin: &str, error: SchemaError) -> PipelineError {
    PipelineError::Info {
        plugin: plugin.to_string(),
        message: error.to_string(),
    }
}

/// Refuses a plugin that calls itself something else than the name the user gave it.
pub fn check_name(plugin: &Described, file: &PluginFile) -> Result<(), PipelineError> {
    match file.expected_name.as_ref() {
        Some(expected) if *expected != plugin.info.name => Err(PipelineError::UnexpectedName {
            plugin: plugin.source.clone(),
            expected: expected.clone(),
            actual: plugin.info.name.clone(),
        }),
        _ => Ok(()),
    }
}

/// Describes `plugins` in parallel, in the order given, and refuses one that is not the plugin
/// the user named or that calls itself what another one does: plugin names key their values.
pub fn describe_all(
    runtime: &Runtime,
    memo: Option<&Memo>,
    plugins: &[PluginFile],
) -> Result<Vec<Described>, PipelineError> {
    let identified = in_parallel(plugins, |plugin| identify(runtime, memo, plugin))?;
    describe_each(runtime, memo, &identified)
}

/// [`describe_all`] for plugins already identified.
fn describe_each(
    runtime: &Runtime,
    memo: Option<&Memo>,
    plugins: &[Identified],
) -> Result<Vec<Described>, PipelineError> {
    let described = in_parallel(plugins, |plugin| describe_identified(runtime, memo, plugin))?;
    for (plugin, identified) in described.iter().zip(plugins) {
        check_name(plugin, identified.file)?;
    }
    for (index, plugin) in described.iter().enumerate() {
        if let Some(first) = described[..index]
            .iter()
            .find(|p| p.info.name == plugin.info.name)
        {
            return Err(PipelineError::DuplicateName {
                name: plugin.info.name.clone(),
                first: first.source.clone(),
                second: plugin.source.clone(),
            });
        }
    }
    Ok(described)
}

fn check_info(source: &str, info: &PluginInfo) -> Result<(), PipelineError> {
    let invalid = |message: String| PipelineError::Info {
        plugin: source.to_string(),
        message,
    };
    if !is_dns_label(&info.name) {
        return Err(invalid(format!(
            "name {:?} must be a DNS-1123 label (lower-case letters, digits, '-')",
            info.name
        )));
    }
    if info.name == reserved::HOST_ORIGIN {
        return Err(invalid(format!(
            "name {:?} is reserved for the host",
            info.name
        )));
    }
    if info.kinds.is_empty() {
        return Err(invalid(
            "it declares no kinds, so it could emit nothing".into(),
        ));
    }
    if info.kinds.len() > MAX_DECLARED_KINDS {
        return Err(invalid(format!(
            "it declares {} kinds; at most {MAX_DECLARED_KINDS} are accepted",
            info.kinds.len()
        )));
    }
    if let Some(kind) = info
        .kinds
        .iter()
        .find(|k| !k8s::is_api_version(&k.api_version) || !k8s::is_kind(&k.kind))
    {
        return Err(invalid(format!(
            "kind {}/{} is not an apiVersion and kind (e.g. `apps/v1` and `StatefulSet`)",
            Escaped(&kind.api_version),
            Escaped(&kind.kind)
        )));
    }
    Ok(())
}

/// Runs the whole pipeline for `request`; the one place the stages are strung together, and
/// what every command that renders calls.
pub fn render(
    runtime: &Runtime,
    memo: Option<&Memo>,
    locator: &Locator,
    request: &Request,
) -> Result<Rendered, PipelineError> {
    let plan = &Plan::new(request, locator)?;
    let identified = in_parallel(&plan.plugins, |plugin| identify(runtime, memo, plugin))?;
    render_plan(runtime, memo, plan, &identified)
}

/// Renders `request` as text laid out as `L`, in `format`. A render whose inputs
/// did not change since one that succeeded is answered with that one's text from the memo:
/// no plugin is described, loaded or run, and nothing is decoded or serialised. The key holds
/// every input of the text: the plugins' bytes and how they are named, the values, the
/// context, the policy, the limits, the host and the layout. A render with secret inputs
/// is never kept, because its text holds their values.
pub fn render_text<L: Layout>(
    runtime: &Runtime,
    memo: Option<&Memo>,
    locator: &Locator,
    request: &Request,
    format: Format,
) -> Result<RenderedText<L>, PipelineError> {
    let plan = &Plan::new(request, locator)?;
    let identified = in_parallel(&plan.plugins, |plugin| identify(runtime, memo, plugin))?;
    let kept = memo.filter(|_| plan.secret_inputs.is_empty()).map(|memo| {
        (
            memo,
            text_key(plan, &identified, &runtime.limits(), L::NAME, format),
        )
    });
    if let Some((memo, key)) = &kept
        && let Some(text) = memo.get::<RenderedText<L>>(key)
    {
        return Ok(text);
    }
    let rendered = render_plan(runtime, memo, plan, &identified)?;
    let text = RenderedText {
        manifests: L::lay_out(&rendered.objects, format)?,
        notes: rendered.notes,
        plugins: rendered.plugins,
    };
    if let Some((memo, key)) = &kept {
        memo.put(key, &text);
    }
    Ok(text)
}

/// Everything a render's text depends on (see [`render_text`]).
fn text_key(
    plan: &Plan,
    plugins: &[Identified],
    limits: &Limits,
    layout: &str,
    format: Format,
) -> Key {
    let mut key = host_key("text", limits);
    key.part(layout.as_bytes())
        .part(format.extension().as_bytes());
    key.part(&(plugins.len() as u64).to_le_bytes());
    for plugin in plugins {
        let file = plugin.file;
        key.part(plugin.fingerprint.as_bytes())
            .part(file.source.as_bytes())
            .part(file.path.as_os_str().as_encoded_bytes())
            .part(&[file.expected_name.is_some() as u8])
            .part(file.expected_name.as_deref().unwrap_or_default().as_bytes());
    }
    key.part(plan.values.identity().as_bytes());
    let context = &plan.context;
    key.part(context.namespace.as_bytes())
        .part(context.instance.as_bytes())
        .part(context.host_version.as_bytes());
    let policy = &plan.policy;
    key.part(policy.namespace.as_bytes()).part(&[
        policy.allow_cluster_scoped as u8,
        policy.allow_rbac as u8,
        plan.provenance as u8,
    ]);
    for owned in [&policy.user_owned, &policy.host_owned] {
        key.part(&(owned.len() as u64).to_le_bytes());
        for (kind, name) in owned {
            key.part(kind.as_bytes()).part(name.as_bytes());
        }
    }
    key
}

/// The stages after the plan, for plugins already identified.
fn render_plan(
    runtime: &Runtime,
    memo: Option<&Memo>,
    plan: &Plan,
    identified: &[Identified],
) -> Result<Rendered, PipelineError> {
    let described = describe_each(runtime, memo, identified)?;
    let names = || described.iter().map(|p| p.info.name.as_str());
    plan.values.check_sections(names())?;
    if let Some(unbound) = plan
        .secret_inputs
        .plugins()
        .find(|p| !names().any(|n| n == *p))
    {
        return Err(PipelineError::UnboundSecretInput {
            plugin: unbound.to_string(),
            plugins: names().collect::<Vec<_>>().join(", "),
        });
    }

    let rendered: Vec<(PluginObjects, PluginReport)> =
        in_parallel(&described, |plugin| render_one(runtime, memo, plan, plugin))?;

    let (contributions, reports): (Vec<_>, Vec<_>) = rendered.into_iter().unzip();
    let settings = MergeSettings {
        namespace: plan.context.namespace.clone(),
        instance: plan.context.instance.clone(),
        secret_inputs: plan.secret_inputs.clone(),
        host_provenance: plan
            .provenance
            .then(|| host_provenance(&plan.context.host_version)),
    };
    let mut merged = merge::merge(contributions, &settings)?;
    order::sort(&mut merged.objects);
    Ok(Rendered {
        objects: merged.objects,
        notes: merged.notes,
        plugins: reports,
    })
}

fn render_one(
    runtime: &Runtime,
    memo: Option<&Memo>,
    plan: &Plan,
    plugin: &Described,
) -> Result<(PluginObjects, PluginReport), PipelineError> {
    let info = &plugin.info;
    let shown = plugin.plugin_ref().to_string();
    let merged = plan
        .values
        .merged(&info.name, &shown, &info.default_config)?;
    let config = merged.to_string();
    let context = &plan.context;
    let mut key = memo_key("render", &plugin.fingerprint, &runtime.limits());
    key.part(context.namespace.as_bytes())
        .part(context.instance.as_bytes())
        .part(context.host_version.as_bytes())
        .part(config.as_bytes());
    // An answer is kept only for a configuration that passed the schema (the plugin's bytes
    // fix the schema), so one in the memo needs no check.
    let remembered = memo.and_then(|memo| memo.get::<Called<RenderOutput>>(&key));
    if remembered.is_none() {
        let schema = plugin.schema()?;
        let timeout = runtime.limits().timeout;
        plan.values
            .check(&info.name, &shown, merged, schema, timeout)?;
    }
    let memo_outcome = match (memo, &remembered) {
        (None, _) => MemoOutcome::Off,
        (Some(_), Some(_)) => MemoOutcome::Hit,
        (Some(_), None) => MemoOutcome::Miss,
    };
    let called = match remembered {
        Some(called) => called,
        None => {
            let called = render_call(runtime, plan, plugin, &config)?;
            if let Some(memo) = memo {
                memo.put(&key, &called);
            }
            called
        }
    };

    let mut objects = Vec::with_capacity(called.value.objects.len());
    for envelope in &called.value.objects {
        let object = decode::decode(&plugin.source, envelope)?;
        plan.policy
            .check(&plugin.source, &plugin.declared, &object)?;
        objects.push(object);
    }
    let report = PluginReport {
        source: plugin.source.clone(),
        path: plugin.path.clone(),
        name: info.name.clone(),
        cache: plugin.loaded.get().map(|loaded| loaded.cache),
        memo: memo_outcome,
        logs: plugin.logs.iter().chain(&called.logs).cloned().collect(),
        objects: objects.len(),
    };
    let provenance = match plan.provenance {
        true => Some(plugin_provenance(plugin, &plan.context.host_version)?),
        false => None,
    };
    let contribution = PluginObjects {
        name: info.name.clone(),
        source: plugin.source.clone(),
        version: info.version.clone(),
        objects,
        connection_values: called.value.connection_values,
        provenance,
    };
    Ok((contribution, report))
}

/// Calls the plugin's `render` with `config`, loading its code if it is not yet.
fn render_call(
    runtime: &Runtime,
    plan: &Plan,
    plugin: &Described,
    config: &str,
) -> Result<Called<RenderOutput>, PipelineError> {
    let info = &plugin.info;
    runtime
        .render(plugin.loaded(runtime)?, &plan.context, config)
        .map_err(|error| match error {
            // The plugin's own checks read as the schema's, with where each value came from.
            CallError::Plugin {
                error: RenderError::InvalidConfig(fields),
                ..
            } => {
                let problems: Vec<(String, String)> =
                    fields.into_iter().map(|f| (f.path, f.message)).collect();
                PipelineError::Config(plan.values.plugin_problems(
                    &info.name,
                    &plugin.plugin_ref().to_string(),
                    &problems,
                ))
            }
            error => PipelineError::Call {
                plugin: plugin.source.clone(),
                error,
            },
        })
}

/// The provenance annotation of a plugin's objects: the plugin's name and version (checked in
/// `info`), the SHA-256 of its bytes (an `oci://` plugin's layer digest), the contract it was
/// built against and the host. Its path is left out: it differs between machines.
fn plugin_provenance(plugin: &Described, host_version: &str) -> Result<String, PipelineError> {
    let path = &plugin.path;
    let bytes = std::fs::read(path).map_err(|source| PipelineError::Provenance {
        path: path.clone(),
        source,
    })?;
    let provenance = serde_json::json!({
        "plugin": plugin.info.name,
        "version": plugin.info.version,
        "sha256": Digest::of(&bytes).to_string(),
        "wit": plugin.wit_version.to_string(),
        "host": host_version,
    });
    Ok(provenance.to_string())
}

/// The provenance annotation of the host's own objects.
fn host_provenance(host_version: &str) -> String {
    serde_json::json!({"plugin": reserved::HOST_ORIGIN, "host": host_version}).to_string()
}

/// Maps `f` over `items` on as many threads as there are cores (this one included), each taking
/// the next item until none is left; the first error in item order wins.
fn in_parallel<'a, I: Sync, T: Send>(
    items: &'a [I],
    f: impl Fn(&'a I) -> Result<T, PipelineError> + Sync,
) -> Result<Vec<T>, PipelineError> {
    // Asked once per process: the answer reads the cgroup's CPU quota, six system calls.
    static CORES: OnceLock<usize> = OnceLock::new();
    let cores = *CORES.get_or_init(|| thread::available_parallelism().map_or(1, NonZeroUsize::get));
    let workers = cores.min(items.len());
    if workers <= 1 {
        return items.iter().map(&f).collect();
    }
    let next = AtomicUsize::new(0);
    let work = || {
        let mut done = Vec::new();
        loop {
            let index = next.fetch_add(1, Ordering::Relaxed);
            let Some(item) = items.get(index) else {
                return done;
            };
            done.push((index, f(item)));
        }
    };
    let mut done: Vec<(usize, Result<T, PipelineError>)> = thread::scope(|scope| {
        let helpers: Vec<_> = (1..workers).map(|_| scope.spawn(work)).collect();
        let mut done = work();
        for helper in helpers {
            match helper.join() {
                Ok(results) => done.extend(results),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        done
    });
    done.sort_by_key(|(index, _)| *index);
    done.into_iter().map(|(_, result)| result).collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::model::contract::RenderContext;
    use crate::policy::Policy;
    use crate::secret_inputs::SecretInputs;
    use crate::values::Values;

    /// The inputs of a render's text, as `text_key` reads them.
    #[derive(Clone)]
    struct Inputs {
        plan: Plan,
        fingerprints: Vec<blake3::Hash>,
        limits: Limits,
        layout: &'static str,
        format: Format,
    }

    impl Inputs {
        fn key(&self) -> String {
            let identified: Vec<Identified> = self
                .plan
                .plugins
                .iter()
                .zip(&self.fingerprints)
                .map(|(file, fingerprint)| Identified {
                    file,
                    fingerprint: *fingerprint,
                })
                .collect();
            text_key(
                &self.plan,
                &identified,
                &self.limits,
                self.layout,
                self.format,
            )
            .hex()
        }
    }

    fn inputs() -> Inputs {
        let mut values = Values::default();
        values
            .add_set("redis.maxmemoryPolicy=noeviction")
            .expect("a --set");
        let plugin = |name: &str| PluginFile {
            path: PathBuf::from(format!("/plugins/{name}.wasm")),
            source: format!("{name}.wasm"),
            expected_name: None,
        };
        Inputs {
            plan: Plan {
                plugins: vec![plugin("postgres"), plugin("redis")],
                values,
                context: RenderContext {
                    namespace: "mathison-system".into(),
                    instance: "mathison".into(),
                    host_version: "0.1.0".into(),
                },
                policy: Policy {
                    namespace: "mathison-system".into(),
                    allow_cluster_scoped: false,
                    allow_rbac: false,
                    user_owned: vec![("Secret".into(), "mathison-secrets".into())],
                    host_owned: vec![("ConfigMap".into(), "mathison-connections".into())],
                },
                secret_inputs: SecretInputs::default(),
                provenance: false,
            },
            fingerprints: vec![blake3::hash(b"postgres"), blake3::hash(b"redis")],
            limits: Limits {
                timeout: Duration::from_secs(10),
                memory_bytes: 256 << 20,
                output_bytes: 16 << 20,
                max_plugin_bytes: 64 << 20,
            },
            layout: Stream::NAME,
            format: Format::Yaml,
        }
    }

    #[test]
    fn the_text_key_changes_with_every_input_of_the_text() {
        let base = inputs();
        assert_eq!(base.key(), inputs().key(), "the same inputs, the same key");
        type Change = fn(&mut Inputs);
        let changes: [(&str, Change); 22] = [
            ("a plugin's bytes", |i| {
                i.fingerprints[1] = blake3::hash(b"redis 2")
            }),
            ("the plugins' order", |i| {
                i.plan.plugins.reverse();
                i.fingerprints.reverse();
            }),
            ("one plugin fewer", |i| {
                i.plan.plugins.pop();
                i.fingerprints.pop();
            }),
            ("a plugin's source", |i| {
                i.plan.plugins[0].source = "oci://r/postgres:1".into()
            }),
            ("a plugin's path", |i| {
                i.plan.plugins[0].path = "/other/postgres.wasm".into()
            }),
            ("the name a plugin must have", |i| {
                i.plan.plugins[0].expected_name = Some("postgres".into());
            }),
            ("an empty expected name", |i| {
                i.plan.plugins[0].expected_name = Some(String::new())
            }),
            ("a value", |i| {
                i.plan
                    .values
                    .add_set("redis.maxmemoryPolicy=allkeys-lru")
                    .expect("a --set");
            }),
            ("a value's type", |i| {
                i.plan
                    .values
                    .add_set_string("postgres.port=5432")
                    .expect("a --set-string");
            }),
            ("the namespace", |i| {
                i.plan.context.namespace = "other".into()
            }),
            ("the instance", |i| i.plan.context.instance = "other".into()),
            ("the host version", |i| {
                i.plan.context.host_version = "0.2.0".into()
            }),
            ("the policy's namespace", |i| {
                i.plan.policy.namespace = "other".into()
            }),
            ("cluster-scoped objects", |i| {
                i.plan.policy.allow_cluster_scoped = true
            }),
            ("RBAC", |i| i.plan.policy.allow_rbac = true),
            ("user-owned objects", |i| i.plan.policy.user_owned.clear()),
            ("a user-owned object moved to the host's", |i| {
                let owned = i.plan.policy.user_owned.pop().expect("one");
                i.plan.policy.host_owned.push(owned);
            }),
            ("provenance", |i| i.plan.provenance = true),
            ("the timeout", |i| i.limits.timeout = Duration::from_secs(9)),
            ("the memory limit", |i| i.limits.memory_bytes -= 1),
            ("the layout", |i| i.layout = Files::NAME),
            ("the format", |i| i.format = Format::Json),
        ];
        let mut keys = vec![base.key()];
        for (what, change) in changes {
            let mut changed = base.clone();
            change(&mut changed);
            let key = changed.key();
            assert!(!keys.contains(&key), "{what}: the key did not change");
            keys.push(key);
        }
    }

    #[test]
    fn parallel_results_keep_item_order_and_the_first_error_wins() {
        let items: Vec<u32> = (0..100).collect();
        let doubled = in_parallel(&items, |item| Ok(item * 2)).expect("no error");
        assert_eq!(
            doubled,
            items.iter().map(|item| item * 2).collect::<Vec<_>>()
        );

        let failing = in_parallel(&items, |item| {
            if item % 30 == 29 {
                Err(PipelineError::Info {
                    plugin: item.to_string(),
                    message: "fails".into(),
                })
            } else {
                Ok(*item)
            }
        });
        assert!(
            matches!(failing, Err(PipelineError::Info { plugin, .. }) if plugin == "29"),
            "the first failing item in order is reported"
        );
    }
}

/// What `info` and `render` may return, fed through every stage after the runtime.
#[cfg(test)]
mod fuzz {
    use std::time::Duration;

    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::*;
    use crate::model::contract::{ConnectionValue, Envelope, KindRef};
    use crate::output::{self, Format};
    use crate::policy::Policy;
    use crate::values::Values;

    /// Text that is sometimes meaningful to a stage and often hostile.
    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("v1".to_string()),
            Just("ConfigMap".to_string()),
            Just("List".to_string()),
            Just("mathison-connections".to_string()),
            Just("postgres-password".to_string()),
            "[a-z][a-z0-9-]{0,10}",
            "[A-Z][A-Za-z]{0,10}(List)?",
            any::<String>(),
            "\\PC*\u{1b}\\[2J\n\rerror: \\PC*",
        ]
    }

    /// JSON, with a bias towards what schemas and objects contain.
    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            text().prop_map(Value::from),
            Just(json!("#")),
            Just(json!("#/$defs/a")),
            Just(json!("^(a+)+$")),
        ];
        leaf.prop_recursive(6, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
                prop::collection::btree_map(
                    prop_oneof![
                        text(),
                        Just("$ref".to_string()),
                        Just("$defs".to_string()),
                        Just("properties".to_string()),
                        Just("pattern".to_string()),
                        Just("allOf".to_string()),
                        Just("metadata".to_string()),
                        Just("name".to_string()),
                    ],
                    inner,
                    0..6
                )
                .prop_map(|map| Value::Object(map.into_iter().collect())),
            ]
        })
    }

    fn kind_ref() -> impl Strategy<Value = KindRef> {
        (text(), text()).prop_map(|(api_version, kind)| KindRef { api_version, kind })
    }

    fn info() -> impl Strategy<Value = PluginInfo> {
        (
            text(),
            json_value(),
            json_value(),
            prop::collection::vec(kind_ref(), 0..6),
        )
            .prop_map(|(name, schema, defaults, kinds)| PluginInfo {
                name,
                version: "1.0.0".into(),
                description: String::new(),
                config_schema: schema.to_string(),
                default_config: defaults.to_string(),
                kinds,
            })
    }

    fn envelope() -> impl Strategy<Value = Envelope> {
        (
            text(),
            text(),
            text(),
            prop::option::of(text()),
            json_value(),
        )
            .prop_map(|(api_version, kind, name, namespace, rest)| {
                let mut body = json!({
                    "apiVersion": api_version, "kind": kind,
                    "metadata": {"name": name, "namespace": namespace}
                });
                if let (Some(body), Value::Object(rest)) = (body.as_object_mut(), rest) {
                    body.extend(rest);
                }
                Envelope {
                    api_version,
                    kind,
                    name,
                    namespace,
                    body: body.to_string(),
                }
            })
    }

    fn connection_value() -> impl Strategy<Value = ConnectionValue> {
        (text(), text(), prop::option::of(text())).prop_map(|(key, value, secret_input)| {
            ConnectionValue {
                key,
                value,
                secret_input,
            }
        })
    }

    /// Every stage after the runtime, as `render` strings them together, for one plugin.
    fn stages(info: &PluginInfo, envelopes: &[Envelope], values: Vec<ConnectionValue>) {
        if check_info("fuzz.wasm", info).is_err() {
            return;
        }
        let Ok(schema) = Schema::parse(&info.config_schema) else {
            return;
        };
        let _ = Values::default().config_for(
            &info.name,
            "fuzz (fuzz.wasm)",
            &info.default_config,
            &schema,
            Duration::from_secs(10),
        );
        let policy = Policy {
            namespace: "ns".into(),
            allow_cluster_scoped: true,
            allow_rbac: true,
            user_owned: Vec::new(),
            host_owned: Vec::new(),
        };
        let declared = DeclaredKinds::new(&info.kinds);
        let mut objects = Vec::new();
        for envelope in envelopes {
            if let Ok(object) = decode::decode("fuzz.wasm", envelope)
                && policy.check("fuzz.wasm", &declared, &object).is_ok()
            {
                objects.push(object);
            }
        }
        let plugin = PluginObjects {
            name: info.name.clone(),
            source: "fuzz.wasm".into(),
            version: info.version.clone(),
            objects,
            connection_values: values,
            provenance: None,
        };
        if let Ok(mut merged) = merge::merge(vec![plugin], &MergeSettings::default()) {
            order::sort(&mut merged.objects);
            let placed: Vec<&Placed> = merged.objects.iter().collect();
            for format in [Format::Yaml, Format::Json] {
                let _ = output::to_string(&placed, format);
            }
        }
    }

    // 256 cases by default; a longer run: PROPTEST_CASES=100000.
    proptest! {
        #[test]
        fn fuzz_info_and_render_answers_never_panic(
            info in info(),
            envelopes in prop::collection::vec(envelope(), 0..4),
            values in prop::collection::vec(connection_value(), 0..4),
        ) {
            stages(&info, &envelopes, values);
        }
    }
}
