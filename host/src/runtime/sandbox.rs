//! The per-call state of a plugin's store: a WASI context that grants nothing real, memory
//! limits, and what the plugin said (log lines and stderr), each bounded.

use std::time::Duration;

use wasmtime::component::{Linker, Resource, ResourceTable};
use wasmtime::{ResourceLimiter, StoreContextMut, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::p2::{DynPollable, Pollable, subscribe};
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxView, WasiView};

use super::Limits;
use super::bindings::mathison::plugin::{host, types};
use crate::model::contract::LogLine;
use crate::untrusted::escape;

/// The instant every plugin sees as "now": 2024-01-01T00:00:00Z. Fixed so that renders are
/// reproducible.
const FIXED_WALL_CLOCK: Duration = Duration::from_secs(1_704_067_200);
/// Seed bytes of the deterministic random generator.
const FIXED_RANDOM: [u8; 8] = *b"mathison";
/// Captured stderr per call; enough for a panic message and a backtrace line or two.
const STDERR_CAPACITY: usize = 64 << 10;
/// What one log line costs against the output limit beside its text: what the host keeps for
/// it, so that a flood of empty lines is bounded like a flood of text.
pub const LOG_LINE_COST: usize = 64;
/// The WASI clocks interface whose subscriptions are replaced (see [`freeze_clock_subscriptions`]).
const MONOTONIC_CLOCK: &str = "wasi:clocks/monotonic-clock@0.2.12";

pub struct SandboxState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub limits: MemoryLimiter,
    pub logs: Vec<LogLine>,
    log_budget: usize,
    stderr: MemoryOutputPipe,
}

impl SandboxState {
    pub fn new(limits: &Limits) -> Self {
        let stderr = MemoryOutputPipe::new(STDERR_CAPACITY);
        // WasiCtxBuilder starts with no preopens, no env, no args, stdin closed and every
        // socket address denied; what remains real (clocks, randomness) is replaced here.
        let wasi = WasiCtx::builder()
            .stderr(stderr.clone())
            .wall_clock(FixedWallClock)
            .monotonic_clock(FixedMonotonicClock)
            .secure_random(wasmtime_wasi::Deterministic::new(FIXED_RANDOM.to_vec()))
            .insecure_random(wasmtime_wasi::Deterministic::new(FIXED_RANDOM.to_vec()))
            .insecure_random_seed(0)
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        Self {
            wasi,
            table: ResourceTable::new(),
            limits: MemoryLimiter {
                limits: StoreLimitsBuilder::new()
                    .memory_size(limits.memory_bytes)
                    .trap_on_grow_failure(true)
                    .build(),
                limit_bytes: limits.memory_bytes,
                refused: false,
            },
            logs: Vec::new(),
            log_budget: limits.output_bytes,
            stderr,
        }
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.contents()).into_owned()
    }
}

/// wasmtime's store limits, remembering whether they refused a memory past the user's limit: a
/// failed call is known to have hit `--max-memory` from this state, not from an error's text.
pub struct MemoryLimiter {
    limits: StoreLimits,
    limit_bytes: usize,
    pub refused: bool,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limit_bytes {
            self.refused = true;
        }
        self.limits.memory_growing(current, desired, maximum)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.limits.memory_grow_failed(error)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.limits.table_growing(current, desired, maximum)
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.limits.table_grow_failed(error)
    }

    fn instances(&self) -> usize {
        self.limits.instances()
    }

    fn tables(&self) -> usize {
        self.limits.tables()
    }

    fn memories(&self) -> usize {
        self.limits.memories()
    }
}

impl WasiView for SandboxState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl types::Host for SandboxState {}

/// The trap that ends a call whose log lines outgrew the output limit.
#[derive(Debug, thiserror::Error)]
#[error("the plugin logged more than the output limit allows")]
pub struct LogLimitExceeded;

impl host::Host for SandboxState {
    fn log(&mut self, level: types::LogLevel, message: String) -> wasmtime::Result<()> {
        let cost = message.len().saturating_add(LOG_LINE_COST);
        let Some(rest) = self.log_budget.checked_sub(cost) else {
            // A trap, not a dropped line: a plugin logging without end would otherwise run
            // until the time limit.
            return Err(wasmtime::Error::new(LogLimitExceeded));
        };
        self.log_budget = rest;
        self.logs.push(LogLine {
            level: super::convert::log_level(level),
            // Shown on the user's terminal: escaped where it enters the host.
            message: escape(&message).into_owned(),
        });
        Ok(())
    }
}

/// Replaces WASI's clock subscriptions, which wait in real time, with ones that agree with the
/// frozen monotonic clock: a deadline at or before "now" (0) is ready at once, any later one
/// never is. Otherwise a plugin could count how often a short sleep is ready and observe real
/// elapsed time, and two renders could differ. A plugin that sleeps waits until the time
/// limit, as it would with a clock that never advances.
pub fn freeze_clock_subscriptions(linker: &mut Linker<SandboxState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut clock = linker.instance(MONOTONIC_CLOCK)?;
    clock.func_wrap(
        "subscribe-duration",
        |mut store: StoreContextMut<'_, SandboxState>, (duration,): (u64,)| {
            Ok((frozen_deadline(store.data_mut(), duration == 0)?,))
        },
    )?;
    clock.func_wrap(
        "subscribe-instant",
        |mut store: StoreContextMut<'_, SandboxState>, (instant,): (u64,)| {
            let now = FixedMonotonicClock.now();
            Ok((frozen_deadline(store.data_mut(), instant <= now)?,))
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

fn frozen_deadline(state: &mut SandboxState, due: bool) -> wasmtime::Result<Resource<DynPollable>> {
    let deadline = state.table.push(FrozenDeadline { due })?;
    subscribe(&mut state.table, deadline)
}

/// A clock deadline under the frozen clock: due now, or never.
struct FrozenDeadline {
    due: bool,
}

#[async_trait::async_trait]
impl Pollable for FrozenDeadline {
    async fn ready(&mut self) {
        if !self.due {
            std::future::pending::<()>().await;
        }
    }
}

struct FixedWallClock;

impl HostWallClock for FixedWallClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        FIXED_WALL_CLOCK
    }
}

/// A monotonic clock that never advances: a plugin cannot measure time (or its own speed).
struct FixedMonotonicClock;

impl HostMonotonicClock for FixedMonotonicClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}
