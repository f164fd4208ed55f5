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
//!
//! This file runs calls: the engine, the watchdog and the limits. Beside it: `load.rs` (from a
//! file to a linked plugin: size, header and world checks), `cache.rs` (compiled code on
//! disk), `sandbox.rs` (what a store holds and grants), `convert.rs` (bindings to and from
//! [`contract`] types) and `bindings.rs` (the one `bindgen!`).

mod bindings;
mod cache;
mod convert;
mod load;
mod sandbox;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::Duration;

use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config, Engine, OptLevel, Store, Trap};

use crate::model::contract::{self, LogLine, PluginInfo, RenderContext, RenderOutput, WitVersion};
use crate::untrusted::{escape, shown};
pub use cache::CacheOutcome;
pub use load::{LoadError, PrecompileError};
use sandbox::SandboxState;

/// A wasmtime error kept as the source of one of ours. wasmtime's own error type does not
/// implement `std::error::Error`; boxed, it does, and keeps its chain of causes.
type BoxedError = Box<dyn std::error::Error + Send + Sync + 'static>;

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
    /// The size each linear memory of the plugin may reach (wasmtime's limit is per memory; a
    /// plugin built for wasm32-wasip2 has one).
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

    /// `message` is wasmtime's error as text, not a `source`: it holds the plugin's own words,
    /// escaped here like all its text, and callers show a call's error on their own line.
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
    /// The version of the contract the plugin was built against (this host's, or an earlier
    /// one of its series).
    pub wit_version: WitVersion,
    pub cache: CacheOutcome,
    /// The cache entry holding this plugin's code, where a fresh `info` answer is kept.
    cache_entry: Option<cache::Entry>,
    /// The plugin's `info` as its code's entry keeps it; without it, the call is made.
    kept_info: Option<cache::KeptInfo>,
    pre: bindings::PluginPre<SandboxState>,
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("path", &self.path)
            .field("cache", &self.cache)
            .field("size", &self.size)
            .field("wit_version", &self.wit_version)
            .finish_non_exhaustive()
    }
}

/// The sandboxed plugin runtime: one engine and linker for all plugins, made when the first
/// plugin is loaded (a render answered from the memo loads none).
pub struct Runtime {
    machine: OnceLock<Machine>,
    /// Held while the machine is made, so that parallel loads make one.
    making: Mutex<()>,
    limits: Limits,
    /// `None` when the cache is off.
    cache_dir: Option<PathBuf>,
    /// Whether precompiled artifacts beside plugins may be loaded: they are native code.
    allow_precompiled: bool,
    /// A directory (canonical) whose plugins' precompiled artifacts are loaded even without
    /// `allow_precompiled`; see [`trust_precompiled_in`](Self::trust_precompiled_in).
    trusted_precompiled: Option<PathBuf>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("limits", &self.limits)
            .field("cache_dir", &self.cache_dir)
            .field("allow_precompiled", &self.allow_precompiled)
            .field("trusted_precompiled", &self.trusted_precompiled)
            .finish_non_exhaustive()
    }
}

/// Why the runtime itself could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot start the WebAssembly runtime: cannot {step}")]
pub struct RuntimeError {
    step: &'static str,
    #[source]
    source: BoxedError,
}

impl RuntimeError {
    fn at(step: &'static str) -> impl FnOnce(wasmtime::Error) -> Self {
        move |error| Self {
            step,
            source: error.into(),
        }
    }
}

/// The engine, its linker, and the key of its configuration in compiled-code entries.
struct Machine {
    engine: Engine,
    linker: Linker<SandboxState>,
    engine_key: blake3::Hash,
}

impl Machine {
    fn new() -> Result<Self, RuntimeError> {
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
        let engine = Engine::new(&config).map_err(RuntimeError::at("create the engine"))?;
        start_epoch_ticker(&engine)?;

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .and_then(|()| sandbox::freeze_clock_subscriptions(&mut linker))
            .map_err(RuntimeError::at("link WASI"))?;
        bindings::mathison::plugin::host::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)
            .map_err(RuntimeError::at("link the host interface"))?;
        Ok(Self {
            engine_key: cache::engine_key(&engine),
            engine,
            linker,
        })
    }
}

impl Runtime {
    /// Creates the runtime. `cache_dir` of `None` disables the compiled-artifact cache;
    /// `allow_precompiled` lets [`load`](Self::load) use artifacts shipped beside plugins.
    pub fn new(limits: Limits, cache_dir: Option<PathBuf>, allow_precompiled: bool) -> Self {
        Self {
            machine: OnceLock::new(),
            making: Mutex::new(()),
            limits,
            cache_dir,
            allow_precompiled,
            trusted_precompiled: None,
        }
    }

    /// The engine and linker, made on first use.
    fn machine(&self) -> Result<&Machine, RuntimeError> {
        if let Some(machine) = self.machine.get() {
            return Ok(machine);
        }
        // A poisoned lock only means another maker panicked; making again is safe.
        let _making = self.making.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(machine) = self.machine.get() {
            return Ok(machine);
        }
        let made = Machine::new()?;
        Ok(self.machine.get_or_init(|| made))
    }

    /// Also loads the precompiled artifacts of the plugins directly in `dir` (when it exists),
    /// as if `allow_precompiled` were given for them. Meant for the plugins installed with this
    /// binary (`make install`): whoever can write there can as well replace the binary, so
    /// their native code is trusted as the binary itself is, and nothing else's is.
    #[must_use]
    pub fn trust_precompiled_in(mut self, dir: &Path) -> Self {
        self.trusted_precompiled = dir.canonicalize().ok();
        self
    }

    /// Whether the precompiled artifact beside the plugin at `path` may be loaded.
    fn may_load_precompiled(&self, path: &Path) -> bool {
        self.allow_precompiled
            || self.trusted_precompiled.as_deref().is_some_and(|trusted| {
                // Canonical on both sides, so `dir/../dir` or a symlink to it are the same.
                path.parent()
                    .and_then(|dir| dir.canonicalize().ok())
                    .is_some_and(|dir| dir == trusted)
            })
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The names `plugin` imports and exports (interfaces, or functions of the world), as an
    /// OCI artifact's config lists them.
    pub fn interface(&self, plugin: &LoadedPlugin) -> (Vec<String>, Vec<String>) {
        let component = plugin.pre.instance_pre().component();
        let engine = component.engine();
        let component = component.component_type();
        let names = |items: &mut dyn Iterator<Item = &str>| items.map(str::to_string).collect();
        (
            names(&mut component.imports(engine).map(|(name, _)| name)),
            names(&mut component.exports(engine).map(|(name, _)| name)),
        )
    }

    /// The plugin's `info`: from the cache when an earlier call stored it, else by calling the
    /// export (and storing the answer).
    pub fn info(&self, plugin: &LoadedPlugin) -> Result<Called<PluginInfo>, CallError> {
        const CALL: &str = "info";
        let called = match plugin.kept_info.as_ref().and_then(cache::KeptInfo::parse) {
            Some(kept) => kept,
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

    /// Runs `f` on a fresh instance of the plugin, under [`run`](Self::run).
    fn call<T: Send + 'static>(
        &self,
        plugin: &LoadedPlugin,
        call: &'static str,
        f: impl FnOnce(&bindings::Plugin, &mut Store<SandboxState>) -> wasmtime::Result<T>
        + Send
        + 'static,
    ) -> Result<Called<T>, CallError> {
        let pre = plugin.pre.clone();
        let engine = pre.instance_pre().component().engine().clone();
        self.run(&engine, call, move |store| {
            let instance = pre.instantiate(&mut *store)?;
            f(&instance, store)
        })
    }

    /// Runs `f` in a fresh sandbox under the limits, on a thread of its own (see the module
    /// docs), and waits for it at most the time limit plus [`WATCHDOG_GRACE`].
    fn run<T: Send + 'static>(
        &self,
        engine: &Engine,
        call: &'static str,
        f: impl FnOnce(&mut Store<SandboxState>) -> wasmtime::Result<T> + Send + 'static,
    ) -> Result<Called<T>, CallError> {
        let engine = engine.clone();
        let limits = self.limits;
        // Capacity 1: the thread's only send never blocks, even when nobody waits any more.
        let (sender, receiver) = mpsc::sync_channel(1);
        let thread = thread::Builder::new()
            .name(format!("plugin-{call}"))
            .stack_size(CALL_THREAD_STACK)
            .spawn(move || {
                // An abandoned call finds the receiver gone; there is no one left to tell.
                let _ = sender.send(sandboxed(&engine, &limits, call, f));
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

/// Runs `f` in a fresh store: the sandbox's state, its memory limiter and the epoch deadline.
fn sandboxed<T>(
    engine: &Engine,
    limits: &Limits,
    call: &'static str,
    f: impl FnOnce(&mut Store<SandboxState>) -> wasmtime::Result<T>,
) -> Result<Called<T>, CallError> {
    let mut store = Store::new(engine, SandboxState::new(limits));
    store.limiter(|state| &mut state.limits);
    let ticks = limits.timeout.as_millis().div_ceil(EPOCH_TICK.as_millis());
    store.set_epoch_deadline(u64::try_from(ticks).unwrap_or(u64::MAX));
    store.epoch_deadline_trap();

    let result = f(&mut store);
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

/// The messages along a trap's chain of causes, without the wasm backtrace wasmtime adds as
/// context (frames, with the plugin's function names, mean nothing to the user).
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
        .map_err(|error| RuntimeError {
            step: "start the timer thread",
            source: error.into(),
        })
}
