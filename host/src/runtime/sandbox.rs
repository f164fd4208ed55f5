//! The per-call state of a plugin's store: a WASI context that grants nothing real, memory
//! limits, and what the plugin said (log lines and stderr), each bounded.

use std::time::Duration;

use wasmtime::component::ResourceTable;
use wasmtime::{StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxView, WasiView};

use super::Limits;
use super::bindings::mathison::plugin::{host, types};
use crate::contract::LogLine;

/// The instant every plugin sees as "now": 2024-01-01T00:00:00Z. Fixed so that renders are
/// reproducible.
const FIXED_WALL_CLOCK: Duration = Duration::from_secs(1_704_067_200);
/// Seed bytes of the deterministic random generator.
const FIXED_RANDOM: [u8; 8] = *b"mathison";
/// Captured stderr per call; enough for a panic message and a backtrace line or two.
const STDERR_CAPACITY: usize = 64 << 10;

pub struct SandboxState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub limits: StoreLimits,
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
            limits: StoreLimitsBuilder::new()
                .memory_size(limits.memory_bytes)
                .trap_on_grow_failure(true)
                .build(),
            logs: Vec::new(),
            log_budget: limits.output_bytes,
            stderr,
        }
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.contents()).into_owned()
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

impl host::Host for SandboxState {
    fn log(&mut self, level: types::LogLevel, message: String) {
        // Past the budget, lines are dropped rather than letting a plugin flood host memory.
        if let Some(rest) = self.log_budget.checked_sub(message.len()) {
            self.log_budget = rest;
            self.logs.push(LogLine {
                level: super::convert::log_level(level),
                message,
            });
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
