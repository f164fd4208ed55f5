//! Runs plugins in a sandbox. The only module that imports wasmtime.
//!
//! Each call (`info`, `render`) gets a fresh [`Store`] with its own WASI context: no preopened
//! directories, no environment, no arguments, no network, a fixed clock, deterministic
//! randomness, stdout discarded and stderr captured (bounded) so that a panic message reaches
//! the error. Compilation, the expensive part, happens once per plugin file and is kept on disk
//! (`cache.rs`), or ahead of time with `mathison-host compile`; a loaded plugin is shared by its
//! calls through an [`InstancePre`](wasmtime::component::InstancePre).
//!
//! The time limit is enforced twice. Epoch interruption stops running wasm code, but it cannot
//! stop a host call that blocks: WASI's `monotonic-clock.subscribe-duration` + `poll` is a real
//! sleep (`std::thread::sleep(1h)` in a plugin), and so is any future blocking import. So each
//! call runs on a thread of its own and the caller waits at most the limit plus a grace period;
//! past it the call is reported as timed out and its thread abandoned. That is sound because
//! the thread owns everything it touches (its own Store, a clone of the InstancePre) and the CLI
//! exits right after reporting. Shadowing the clock imports to make sleeps return at once was
//! the alternative; it covers only the sleeps we think of, and changes what a plugin observes.
//! The clock's subscriptions are replaced all the same (`sandbox.rs`), for another reason: they
//! wait in real time, so a plugin could observe elapsed time through their readiness. Under the
//! frozen clock a sleep never ends, and the watchdog is what stops it.

mod bindings;
mod cache;
mod sandbox;

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::Duration;

use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, OptLevel, Store, Trap};

use crate::model::contract::{self, LogLine, PluginInfo, RenderContext, RenderOutput};
use crate::untrusted::{escape, shown};
pub use cache::CacheOutcome;
use sandbox::SandboxState;

/// How often the epoch ticks; the time limit is rounded up to it.
const EPOCH_TICK: Duration = Duration::from_millis(10);
/// How long past the time limit the watchdog waits for a call: long enough that a call the
/// epoch deadline interrupts always reports its own trap first.
const WATCHDOG_GRACE: Duration = Duration::from_secs(1);
/// Deep recursion in a plugin must trap cleanly, well before the host's own stack.
const MAX_WASM_STACK: usize = 1 << 20;
/// The native stack of a call thread: the wasm stack plus room for wasmtime's and WASI's frames.
const CALL_THREAD_STACK: usize = MAX_WASM_STACK + (4 << 20);

/// Resource limits of one plugin call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Wall time of one call (`info` or `render`), instantiation included.
    pub timeout: Duration,
    /// Linear memory of the plugin, all memories together.
    pub memory_bytes: usize,
    /// Bytes a call may return (object bodies, strings) and log.
    pub output_bytes: usize,
    /// The largest plugin file accepted.
    pub max_plugin_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            memory_bytes: 256 << 20,
            output_bytes: 16 << 20,
            max_plugin_bytes: 64 << 20,
        }
    }
}

/// Why a plugin file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
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
         `{}/plugin@{}` (build with `cargo build --target wasm32-wasip2`)",
        contract::WIT_PACKAGE,
        contract::WIT_VERSION
    )]
    NotAComponent { path: PathBuf, found: String },
    #[error("{path} is not a valid component: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error(
        "{path} targets `{found}`, but this host serves `{}@{}`; rebuild the plugin against \
         that WIT version",
        contract::WIT_PACKAGE,
        contract::WIT_VERSION
    )]
    WrongWitVersion { path: PathBuf, found: String },
    #[error(
        "{path} is not a mathison plugin: it {found}; expected the exports `info` and `render` \
         of world `{}/plugin@{}`",
        contract::WIT_PACKAGE,
        contract::WIT_VERSION
    )]
    WrongWorld { path: PathBuf, found: String },
    #[error("{path} imports `{import}`, which the sandbox does not provide ({message})")]
    UnsupportedImport {
        path: PathBuf,
        import: String,
        message: String,
    },
}

/// Why a plugin could not be precompiled.
#[derive(Debug, thiserror::Error)]
pub enum PrecompileError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("{}: {error}", path.display())]
    Call { path: PathBuf, error: CallError },
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Why a call into a plugin failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("{call} did not finish within the time limit of {limit:?} (--timeout)")]
    Timeout { call: &'static str, limit: Duration },
    #[error("{call} exceeded the memory limit of {limit} MiB (--max-memory)", limit = limit_bytes >> 20)]
    MemoryLimit {
        call: &'static str,
        limit_bytes: usize,
    },
    #[error(
        "{call} returned {size} bytes, more than the {limit}-byte limit (--max-output; each \
         object counts {OBJECT_COST} bytes beside its text, each other list element \
         {ELEMENT_COST})"
    )]
    OutputTooLarge {
        call: &'static str,
        size: usize,
        limit: usize,
    },
    #[error(
        "{call} logged more than the {limit}-byte limit (--max-output; each line counts {} \
         bytes beside its text)",
        sandbox::LOG_LINE_COST
    )]
    LogTooLarge { call: &'static str, limit: usize },

    #[error("{call} trapped: {message}{}{}", stderr_suffix(.stderr), logs_suffix(.logs))]
    Trap {
        call: &'static str,
        message: String,
        stderr: String,
        /// What the plugin logged before it trapped: often why.
        logs: Vec<LogLine>,
    },
    #[error("render failed: {error}{}", logs_suffix(.logs))]
    Plugin {
        error: contract::RenderError,
        /// What the plugin logged before it gave up: often why.
        logs: Vec<LogLine>,
    },
    #[error("{call} could not start: cannot create a thread for it")]
    Thread {
        call: &'static str,
        #[source]
        source: std::io::Error,
    },
}

/// The plugin's stderr, each line after the host's own prefix and escaped, so that no line of
/// it can pass for one of the host's. Rust's advice to set `RUST_BACKTRACE` is left out: a
/// plugin has no environment, so the user could not follow it.
fn stderr_suffix(stderr: &str) -> String {
    stderr
        .trim()
        .lines()
        .filter(|line| !line.starts_with("note: run with `RUST_BACKTRACE=1`"))
        .map(|line| format!("\n  plugin stderr: {}", escape(line)))
        .collect()
}

/// The most log lines an error shows: the last ones, nearest the failure.
const LOGS_SHOWN_WITH_AN_ERROR: usize = 20;

/// The plugin's last log lines, each after the host's own prefix (their text was escaped where
/// it entered the host) and shortened.
fn logs_suffix(logs: &[LogLine]) -> String {
    let skipped = logs.len().saturating_sub(LOGS_SHOWN_WITH_AN_ERROR);
    let mut suffix = String::new();
    if skipped > 0 {
        suffix.push_str(&format!(
            "\n  plugin log: ({skipped} earlier lines not shown)"
        ));
    }
    for line in &logs[skipped..] {
        suffix.push_str(&format!(
            "\n  plugin log: {}: {}",
            line.level,
            shown(&line.message)
        ));
    }
    suffix
}

/// What each object of a `render` answer counts against the output limit beside its text:
/// about what the host holds for it while decoding, so that a flood of tiny objects is bounded
/// in memory like a flood of text.
pub const OBJECT_COST: usize = 1024;
/// What each other list element (a declared kind, a connection value) counts beside its text.
pub const ELEMENT_COST: usize = 64;

/// The result of a call, with what the plugin logged along the way.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Called<T> {
    pub value: T,
    pub logs: Vec<LogLine>,
}

/// A plugin file that was read, checked and compiled, ready to be called.
pub struct LoadedPlugin {
    pub path: PathBuf,
    pub size: u64,
    pub cache: CacheOutcome,
    /// The cache entry holding this plugin's code, where a fresh `info` answer is kept.
    cache_entry: Option<cache::Entry>,
    /// `info` as the cache remembers it; `None` means the call must be made.
    cached_info: Option<Called<PluginInfo>>,
    pre: bindings::PluginPre<SandboxState>,
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("path", &self.path)
            .field("cache", &self.cache)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

/// The sandboxed plugin runtime: one engine and linker for all plugins.
pub struct Runtime {
    engine: Engine,
    linker: Linker<SandboxState>,
    limits: Limits,
    /// Identifies this engine's configuration in compiled-code entries.
    engine_key: blake3::Hash,
    /// `None` when the cache is off.
    cache_dir: Option<PathBuf>,
    /// Whether precompiled artifacts beside plugins may be loaded: they are native code.
    allow_precompiled: bool,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("limits", &self.limits)
            .field("cache_dir", &self.cache_dir)
            .field("allow_precompiled", &self.allow_precompiled)
            .finish_non_exhaustive()
    }
}

/// Why the runtime itself could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot start the WebAssembly runtime: {0}")]
pub struct RuntimeError(String);

impl Runtime {
    /// Creates the runtime. `cache_dir` of `None` disables the compiled-artifact cache;
    /// `allow_precompiled` lets [`load`](Self::load) use artifacts shipped beside plugins.
    pub fn new(
        limits: Limits,
        cache_dir: Option<PathBuf>,
        allow_precompiled: bool,
    ) -> Result<Self, RuntimeError> {
        let mut config = Config::new();
        config
            .epoch_interruption(true)
            .cranelift_opt_level(OptLevel::Speed)
            // wasmtime's copy-on-write memory images stay on: since compiled code is mapped
            // from its file, a plugin's initial memory maps from there too, with no copy
            // (they cost time back when the code was read into anonymous memory).
            .max_wasm_stack(MAX_WASM_STACK);
        // Winch, wasmtime's baseline compiler (tier 1 on x86_64), compiles a plugin 3.6x faster
        // than Cranelift (postgres: 125 vs 453 ms); its code renders postgres + redis as fast
        // within noise, and 1000 objects ~25% slower (BENCHMARKS.md). Elsewhere, Cranelift.
        #[cfg(target_arch = "x86_64")]
        config.strategy(wasmtime::Strategy::Winch);
        let engine = Engine::new(&config).map_err(|e| RuntimeError(format!("{e:#}")))?;
        start_epoch_ticker(&engine)?;

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .and_then(|()| sandbox::freeze_clock_subscriptions(&mut linker))
            .map_err(|e| RuntimeError(format!("{e:#}")))?;
        bindings::mathison::plugin::host::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)
            .map_err(|e| RuntimeError(format!("{e:#}")))?;

        Ok(Self {
            engine_key: cache::engine_key(&engine),
            engine,
            linker,
            limits,
            cache_dir,
            allow_precompiled,
        })
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Reads and checks the plugin at `path`, and loads its compiled code: from the cache, from
    /// a precompiled artifact beside it (with `--allow-precompiled`), or by compiling it.
    pub fn load(&self, path: &Path) -> Result<LoadedPlugin, LoadError> {
        let (bytes, identity) = self.read(path)?;
        let cache_entry = self
            .cache_dir
            .as_deref()
            .map(|dir| cache::Entry::in_cache(dir, &identity));

        let found = cache_entry
            .as_ref()
            .and_then(|entry| entry.load(&self.engine, &identity))
            .map(|found| (found, CacheOutcome::Hit))
            .or_else(|| {
                self.allow_precompiled
                    .then(|| cache::Entry::beside(path).load(&self.engine, &identity))
                    .flatten()
                    .map(|found| (found, CacheOutcome::Precompiled))
            });
        let (component, outcome, cached_info) = match found {
            Some((found, outcome)) => (found.component, outcome, found.info),
            None => match &cache_entry {
                None => {
                    let component = Component::new(&self.engine, &bytes).map_err(invalid(path))?;
                    (component, CacheOutcome::Disabled, None)
                }
                Some(entry) => {
                    let existed = entry.exists();
                    let (artifact, component) = self.compile(path, &bytes)?;
                    let outcome = match (entry.store(&identity, &artifact, None).is_ok(), existed) {
                        (false, _) => CacheOutcome::StoreFailed,
                        (true, true) => CacheOutcome::Replaced,
                        (true, false) => CacheOutcome::Miss,
                    };
                    (component, outcome, None)
                }
            },
        };
        let holds_code = matches!(
            outcome,
            CacheOutcome::Hit | CacheOutcome::Miss | CacheOutcome::Replaced
        );
        let pre = self.prepare(path, &component)?;
        Ok(LoadedPlugin {
            path: path.to_owned(),
            size: bytes.len() as u64,
            cache: outcome,
            cache_entry: cache_entry.filter(|_| holds_code),
            cached_info,
            pre,
        })
    }

    /// Reads and checks a plugin file, and names what its compiled code would be for.
    fn read(&self, path: &Path) -> Result<(Vec<u8>, cache::Identity), LoadError> {
        let bytes = read_bounded(path, self.limits.max_plugin_bytes)?;
        check_component_header(path, &bytes)?;
        let identity = cache::Identity {
            plugin: blake3::hash(&bytes),
            engine: self.engine_key,
        };
        Ok((bytes, identity))
    }

    /// Compiles a plugin into an artifact to store, and the component loaded from it.
    fn compile(&self, path: &Path, bytes: &[u8]) -> Result<(Vec<u8>, Component), LoadError> {
        let artifact = self
            .engine
            .precompile_component(bytes)
            .map_err(invalid(path))?;
        let component = cache::deserialize(&self.engine, &artifact).map_err(invalid(path))?;
        Ok((artifact, component))
    }

    /// Checks a compiled plugin against the world and links it.
    fn prepare(
        &self,
        path: &Path,
        component: &Component,
    ) -> Result<bindings::PluginPre<SandboxState>, LoadError> {
        check_world(path, component, &self.engine)?;
        let instance_pre =
            self.linker
                .instantiate_pre(component)
                .map_err(|e| LoadError::UnsupportedImport {
                    path: path.to_owned(),
                    import: first_unsatisfied_import(&e.to_string()),
                    message: format!("{e:#}"),
                })?;
        bindings::PluginPre::new(instance_pre).map_err(|e| LoadError::WrongWorld {
            path: path.to_owned(),
            found: format!("does not match the world ({e:#})"),
        })
    }

    /// Compiles the plugin at `path` and writes the artifact, with the plugin's `info`, beside
    /// it (`postgres.wasm` → `postgres.cwasm` and `postgres.cwasm.json`), for renders with
    /// `--allow-precompiled` to load instead of compiling. Returns the artifact's path.
    pub fn precompile(&self, path: &Path) -> Result<PathBuf, PrecompileError> {
        let (bytes, identity) = self.read(path)?;
        let (artifact, component) = self.compile(path, &bytes)?;
        let plugin = LoadedPlugin {
            path: path.to_owned(),
            size: bytes.len() as u64,
            cache: CacheOutcome::Disabled,
            cache_entry: None,
            cached_info: None,
            pre: self.prepare(path, &component)?,
        };
        let info = self.info(&plugin).map_err(|error| PrecompileError::Call {
            path: path.to_owned(),
            error,
        })?;
        let entry = cache::Entry::beside(path);
        let permissions = fs::metadata(path)
            .map_err(|source| LoadError::Read {
                path: path.to_owned(),
                source,
            })?
            .permissions();
        entry
            .store(&identity, &artifact, Some(&info))
            .and_then(|()| entry.set_permissions(&permissions))
            .map_err(|source| PrecompileError::Write {
                path: entry.artifact_path().to_owned(),
                source,
            })?;
        Ok(entry.artifact_path().to_owned())
    }

    /// The plugin's `info`: from the cache when an earlier call stored it, else by calling the
    /// export (and storing the answer).
    pub fn info(&self, plugin: &LoadedPlugin) -> Result<Called<PluginInfo>, CallError> {
        const CALL: &str = "info";
        let called = match &plugin.cached_info {
            Some(cached) => cached.clone(),
            // Kept without a second call to compare: the sandbox gives `info` no input that
            // could vary (no arguments, a frozen clock whose subscriptions never see real
            // time, fixed randomness, a fresh instance), so it is pure by construction, and
            // the entry is keyed on the plugin's bytes (tests/integration/boundary.rs).
            None => {
                let called = self.call_info(plugin)?;
                if let Some(entry) = &plugin.cache_entry {
                    entry.store_info(&called);
                }
                called
            }
        };
        // Checked on every use: the limit may be lower than when the answer was stored.
        self.check_size(CALL, convert::plugin_info_size(&called.value))?;
        Ok(called)
    }

    fn call_info(&self, plugin: &LoadedPlugin) -> Result<Called<PluginInfo>, CallError> {
        let called = self.call(plugin, "info", |plugin, store| plugin.call_info(store))?;
        Ok(Called {
            value: convert::plugin_info(called.value),
            logs: called.logs,
        })
    }

    /// Calls the plugin's `render` export with a validated configuration (JSON text).
    pub fn render(
        &self,
        plugin: &LoadedPlugin,
        context: &RenderContext,
        config: &str,
    ) -> Result<Called<RenderOutput>, CallError> {
        const CALL: &str = "render";
        let context = convert::render_context(context);
        let config = config.to_string();
        let called = self.call(plugin, CALL, move |plugin, store| {
            plugin.call_render(store, &context, &config)
        })?;
        let output = match called.value {
            Ok(output) => convert::render_output(output),
            Err(error) => {
                return Err(CallError::Plugin {
                    error: convert::render_error(error),
                    logs: called.logs,
                });
            }
        };
        self.check_size(CALL, convert::render_output_size(&output))?;
        Ok(Called {
            value: output,
            logs: called.logs,
        })
    }

    fn check_size(&self, call: &'static str, size: usize) -> Result<(), CallError> {
        if size > self.limits.output_bytes {
            return Err(CallError::OutputTooLarge {
                call,
                size,
                limit: self.limits.output_bytes,
            });
        }
        Ok(())
    }

    /// Runs `f` on a fresh instance of the plugin, on a thread of its own (see the module
    /// docs), and waits for it at most the time limit plus [`WATCHDOG_GRACE`].
    fn call<T: Send + 'static>(
        &self,
        plugin: &LoadedPlugin,
        call: &'static str,
        f: impl FnOnce(&bindings::Plugin, &mut Store<SandboxState>) -> wasmtime::Result<T>
        + Send
        + 'static,
    ) -> Result<Called<T>, CallError> {
        let engine = self.engine.clone();
        let pre = plugin.pre.clone();
        let limits = self.limits;
        // Capacity 1: the thread's only send never blocks, even when nobody waits any more.
        let (sender, receiver) = mpsc::sync_channel(1);
        let thread = thread::Builder::new()
            .name(format!("plugin-{call}"))
            .stack_size(CALL_THREAD_STACK)
            .spawn(move || {
                // An abandoned call finds the receiver gone; there is no one left to tell.
                let _ = sender.send(sandboxed_call(&engine, &pre, &limits, call, f));
            })
            .map_err(|source| CallError::Thread { call, source })?;
        match receiver.recv_timeout(limits.timeout.saturating_add(WATCHDOG_GRACE)) {
            Ok(result) => result,
            Err(RecvTimeoutError::Timeout) => Err(CallError::Timeout {
                call,
                limit: limits.timeout,
            }),
            // The thread always sends before it ends, unless the host itself panicked in it.
            Err(RecvTimeoutError::Disconnected) => std::panic::resume_unwind(
                thread
                    .join()
                    .expect_err("a call thread that did not answer panicked"),
            ),
        }
    }
}

/// Instantiates the plugin in a fresh sandbox and runs `f` under the limits.
fn sandboxed_call<T>(
    engine: &Engine,
    pre: &bindings::PluginPre<SandboxState>,
    limits: &Limits,
    call: &'static str,
    f: impl FnOnce(&bindings::Plugin, &mut Store<SandboxState>) -> wasmtime::Result<T>,
) -> Result<Called<T>, CallError> {
    let mut store = Store::new(engine, SandboxState::new(limits));
    store.limiter(|state| &mut state.limits);
    let ticks = limits.timeout.as_millis().div_ceil(EPOCH_TICK.as_millis());
    store.set_epoch_deadline(u64::try_from(ticks).unwrap_or(u64::MAX));
    store.epoch_deadline_trap();

    let result = pre
        .instantiate(&mut store)
        .and_then(|instance| f(&instance, &mut store));
    let state = store.into_data();
    match result {
        Ok(value) => Ok(Called {
            value,
            logs: state.logs,
        }),
        Err(error) => Err(classify(limits, call, &error, state)),
    }
}

/// What a failed call ran into, from the error and the sandbox's state (the limiter's word
/// that the plugin asked for more memory than the limit, its stderr and its log lines).
fn classify(
    limits: &Limits,
    call: &'static str,
    error: &wasmtime::Error,
    state: SandboxState,
) -> CallError {
    if error.is::<sandbox::LogLimitExceeded>() {
        return CallError::LogTooLarge {
            call,
            limit: limits.output_bytes,
        };
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => CallError::Timeout {
            call,
            limit: limits.timeout,
        },
        _ if state.limits.refused => CallError::MemoryLimit {
            call,
            limit_bytes: limits.memory_bytes,
        },
        _ => CallError::Trap {
            call,
            message: escape(&trap_message(error)).into_owned(),
            stderr: state.stderr(),
            logs: state.logs,
        },
    }
}

/// The first line of a trap and its cause chain, without the wasm backtrace noise.
fn trap_message(error: &wasmtime::Error) -> String {
    let messages: Vec<String> = error
        .chain()
        .map(|cause| cause.to_string())
        .filter(|m| !m.starts_with("error while executing at wasm backtrace"))
        .collect();
    if messages.is_empty() {
        error.to_string()
    } else {
        messages.join(": ")
    }
}

/// Drives epoch interruption for every store of `engine`. The thread holds only a weak
/// reference and ends when the runtime is dropped.
fn start_epoch_ticker(engine: &Engine) -> Result<(), RuntimeError> {
    let engine = engine.weak();
    thread::Builder::new()
        .name("epoch-ticker".into())
        .spawn(move || {
            while let Some(engine) = engine.upgrade() {
                engine.increment_epoch();
                drop(engine);
                thread::sleep(EPOCH_TICK);
            }
        })
        .map(drop)
        .map_err(|e| RuntimeError(format!("cannot start the timer thread: {e}")))
}

fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, LoadError> {
    let read_error = |source| LoadError::Read {
        path: path.to_owned(),
        source,
    };
    let file = fs::File::open(path).map_err(read_error)?;
    let size = file.metadata().map_err(read_error)?.len();
    if size > limit {
        return Err(LoadError::TooLarge {
            path: path.to_owned(),
            size,
            limit,
        });
    }
    let mut bytes = Vec::with_capacity(size as usize);
    // `take` guards against a file that grows while we read it.
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if bytes.len() as u64 > limit {
        return Err(LoadError::TooLarge {
            path: path.to_owned(),
            size: bytes.len() as u64,
            limit,
        });
    }
    Ok(bytes)
}

/// Turns wasmtime's refusal of the plugin at `path` into a load error.
fn invalid(path: &Path) -> impl Fn(wasmtime::Error) -> LoadError + '_ {
    move |e| LoadError::Invalid {
        path: path.to_owned(),
        message: format!("{e:#}"),
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

/// Checks the component's imports and exports against the world, for a clear error before
/// linking says something obscure.
fn check_world(path: &Path, component: &Component, engine: &Engine) -> Result<(), LoadError> {
    let ty = component.component_type();
    let prefix = format!("{}/", contract::WIT_PACKAGE);
    let served = format!("@{}", contract::WIT_VERSION);
    for (name, _) in ty.imports(engine) {
        if let Some(rest) = name.strip_prefix(&prefix)
            && !rest.ends_with(&served)
        {
            return Err(LoadError::WrongWitVersion {
                path: path.to_owned(),
                found: name.to_string(),
            });
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
        });
    }
    Ok(())
}

/// Pulls the import name out of wasmtime's "component imports instance `x`, but ..." message.
fn first_unsatisfied_import(message: &str) -> String {
    message
        .split('`')
        .nth(1)
        .map_or_else(|| "an import".to_string(), str::to_string)
}

/// Conversions between the generated bindings and the host's [`contract`] types.
mod convert {
    use super::bindings::mathison::plugin::types as wit;
    use crate::model::contract;
    use crate::untrusted::escape;

    pub fn plugin_info(info: wit::PluginInfo) -> contract::PluginInfo {
        contract::PluginInfo {
            name: info.name,
            version: info.version,
            description: info.description,
            config_schema: info.config_schema,
            default_config: info.default_config,
            kinds: info
                .kinds
                .into_iter()
                .map(|k| contract::KindRef {
                    api_version: k.api_version,
                    kind: k.kind,
                })
                .collect(),
        }
    }

    pub fn plugin_info_size(info: &contract::PluginInfo) -> usize {
        info.name.len()
            + info.version.len()
            + info.description.len()
            + info.config_schema.len()
            + info.default_config.len()
            + info
                .kinds
                .iter()
                .map(|k| k.api_version.len() + k.kind.len() + super::ELEMENT_COST)
                .sum::<usize>()
    }

    pub fn render_context(context: &contract::RenderContext) -> wit::RenderContext {
        wit::RenderContext {
            namespace: context.namespace.clone(),
            instance: context.instance.clone(),
            host_version: context.host_version.clone(),
        }
    }

    pub fn render_output(output: wit::RenderOutput) -> contract::RenderOutput {
        contract::RenderOutput {
            objects: output
                .objects
                .into_iter()
                .map(|o| contract::Envelope {
                    api_version: o.api_version,
                    kind: o.kind,
                    name: o.name,
                    namespace: o.namespace,
                    body: o.body,
                })
                .collect(),
            connection_values: output
                .connection_values
                .into_iter()
                .map(|c| contract::ConnectionValue {
                    key: c.key,
                    value: c.value,
                    secret_input: c.secret_input,
                })
                .collect(),
        }
    }

    pub fn render_output_size(output: &contract::RenderOutput) -> usize {
        let objects: usize = output
            .objects
            .iter()
            .map(|o| {
                o.api_version.len()
                    + o.kind.len()
                    + o.name.len()
                    + o.namespace.as_ref().map_or(0, String::len)
                    + o.body.len()
                    + super::OBJECT_COST
            })
            .sum();
        let values: usize = output
            .connection_values
            .iter()
            .map(|c| {
                c.key.len()
                    + c.value.len()
                    + c.secret_input.as_ref().map_or(0, String::len)
                    + super::ELEMENT_COST
            })
            .sum();
        objects + values
    }

    pub fn render_error(error: wit::RenderError) -> contract::RenderError {
        match error {
            wit::RenderError::InvalidConfig(fields) => contract::RenderError::InvalidConfig(
                fields
                    .into_iter()
                    // Only ever shown: escaped where it enters the host.
                    .map(|f| contract::FieldError {
                        path: escape(&f.path).into_owned(),
                        message: escape(&f.message).into_owned(),
                    })
                    .collect(),
            ),
            wit::RenderError::Internal(message) => {
                contract::RenderError::Internal(escape(&message).into_owned())
            }
        }
    }

    pub fn log_level(level: wit::LogLevel) -> contract::LogLevel {
        match level {
            wit::LogLevel::Debug => contract::LogLevel::Debug,
            wit::LogLevel::Info => contract::LogLevel::Info,
            wit::LogLevel::Warn => contract::LogLevel::Warn,
            wit::LogLevel::Error => contract::LogLevel::Error,
        }
    }
}
