//! The limits of a call on hand-written core modules (the `.wat` files here), run through what
//! every plugin call goes through: the runtime's engine, [`Runtime::run`]'s thread and
//! watchdog, the sandbox's store and memory limiter, and the classification of failures.

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use wasmtime::{Instance, Module, ResourceLimiter, WasmParams, WasmResults};

use super::*;

const ENDLESS_LOOP: &str = include_str!("endless-loop.wat");
const GROW_MEMORY: &str = include_str!("grow-memory.wat");
const DEEP_RECURSION: &str = include_str!("deep-recursion.wat");

/// A runtime with `limits` and the module `wat`, compiled by its engine.
fn sandbox(limits: Limits, wat: &str) -> (Runtime, Module) {
    let runtime = Runtime::new(limits, None, false);
    let bytes = wat::parse_str(wat).expect("the module assembles");
    let engine = &runtime.machine().expect("the runtime starts").engine;
    let module = Module::new(engine, bytes).expect("the module compiles");
    (runtime, module)
}

/// Calls the module's export `run` as a plugin call is made.
fn call<P, R>(runtime: &Runtime, module: &Module, params: P) -> Result<Called<R>, CallError>
where
    P: WasmParams + Send + 'static,
    R: WasmResults + Send + 'static,
{
    let module = module.clone();
    let engine = module.engine().clone();
    runtime.run(&engine, "render", move |store| {
        let instance = Instance::new(&mut *store, &module, &[])?;
        let run = instance.get_typed_func::<P, R>(&mut *store, "run")?;
        run.call(&mut *store, params)
    })
}

#[test]
fn an_endless_loop_is_stopped_by_the_epoch_deadline() {
    let timeout = Duration::from_millis(100);
    let limits = Limits {
        timeout,
        ..Limits::default()
    };
    let (_runtime, module) = sandbox(limits, ENDLESS_LOOP);
    // Straight through the store's setup, without `Runtime::run`'s watchdog: only the epoch
    // deadline can end this call. The channel's bound turns a broken deadline into a failure
    // instead of a hung test run.
    let (sender, receiver) = mpsc::channel();
    let engine = module.engine().clone();
    thread::spawn(move || {
        let result = sandboxed(&engine, &limits, "render", |store| {
            let instance = Instance::new(&mut *store, &module, &[])?;
            let run = instance.get_typed_func::<(), ()>(&mut *store, "run")?;
            run.call(&mut *store, ())
        });
        let _ = sender.send(result.map(|_| ()));
    });
    let error = receiver
        .recv_timeout(Duration::from_secs(60))
        .expect("the epoch deadline ended the call")
        .expect_err("the loop never returns");
    assert!(
        matches!(error, CallError::Timeout { call: "render", limit } if limit == timeout),
        "{error}"
    );
}

#[test]
fn growing_memory_past_the_limit_is_refused_and_reported_as_the_memory_limit() {
    let limits = Limits {
        memory_bytes: 1 << 20,
        ..Limits::default()
    };
    let (runtime, module) = sandbox(limits, GROW_MEMORY);
    // From 1 page to 16: exactly the limit.
    let grown = call::<i32, i32>(&runtime, &module, 15).expect("growth within the limit");
    assert_eq!(grown.value, 1, "memory.grow answers the previous size");
    let error = call::<i32, i32>(&runtime, &module, 16).expect_err("growth past the limit");
    assert!(
        matches!(
            error,
            CallError::MemoryLimit {
                call: "render",
                limit_bytes
            } if limit_bytes == limits.memory_bytes
        ),
        "{error}"
    );
}

#[test]
fn the_limiter_records_the_growth_it_refuses() {
    let limits = Limits {
        memory_bytes: 1 << 20,
        ..Limits::default()
    };
    let mut limiter = SandboxState::new(&limits).limits;
    assert!(
        limiter
            .memory_growing(0, 1 << 20, None)
            .expect("growth up to the limit")
    );
    assert!(!limiter.refused);
    limiter
        .memory_growing(1 << 20, (1 << 20) + 1, None)
        .expect_err("growth past the limit traps");
    assert!(limiter.refused);
}

#[test]
fn deep_recursion_traps_at_the_stack_limit() {
    let (runtime, module) = sandbox(Limits::default(), DEEP_RECURSION);
    let error = call::<i64, i64>(&runtime, &module, 0).expect_err("the recursion never ends");
    assert!(
        matches!(&error, CallError::Trap { call: "render", message, .. }
            if message.contains("call stack exhausted")),
        "{error}"
    );
}
