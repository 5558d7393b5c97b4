//! One sandboxed plugin instance and the call across the boundary.
//!
//! Only the columns the plugin declared in its manifest cross into the sandbox; its answer (a row
//! selection and new columns, or a whole batch) crosses back and is applied to the full batch on
//! the host, so untouched columns are never copied.

use std::sync::Arc;

use arrow_array::{RecordBatch, UInt32Array};
use arrow_buffer::Buffer;
use wasmtime::{Memory, Store, StoreLimitsBuilder, Trap, TypedFunc};
use weir_guest_sdk::abi::{self, Applied, Manifest, Output};
use weir_guest_sdk::ipc;

use super::{FileGrants, HostState, Plugin, RuntimeError, EPOCH_TICK};

/// Why one call failed. The batch fails; the worker goes on.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TransformFailure {
    /// The guest trapped (a panic, a bad memory access, out of memory...).
    #[error("trapped: {0}")]
    Trap(String),
    /// The call ran past the time budget.
    #[error("ran past its time budget of {0:?}")]
    Timeout(std::time::Duration),
    /// The guest returned an error.
    #[error("failed: {0}")]
    Guest(String),
    /// The guest's answer breaks the ABI.
    #[error("bad output: {0}")]
    BadOutput(String),
    /// The instance could not be re-created after an earlier trap.
    #[error("could not be re-instantiated: {0}")]
    Reinstantiate(String),
}

struct Live {
    store: Store<HostState>,
    instance: wasmtime::Instance,
    memory: Memory,
    alloc: TypedFunc<i32, i32>,
    transform: TypedFunc<(i32, i32), i64>,
    last_error: TypedFunc<(), i64>,
}

/// A plugin instance for one route. After a trap its store is dropped, and the next call
/// starts from a fresh instance: a trapped instance is never re-entered.
pub struct Instance {
    plugin: Plugin,
    route: Arc<str>,
    params: serde_json::Value,
    files: FileGrants,
    manifest: Manifest,
    live: Option<Live>,
    /// The input IPC stream, reused across calls.
    scratch: Vec<u8>,
    /// Where calls are timed and failures counted, when the worker exports metrics.
    metrics: Option<CallMetrics>,
}

/// One instance's metric handles (resolved once, so a call only observes).
#[derive(Clone)]
pub struct CallMetrics {
    /// Time per call.
    pub seconds: prometheus_client::metrics::histogram::Histogram,
    /// The instance's linear memory after each call.
    pub memory: prometheus_client::metrics::gauge::Gauge,
    /// Failed calls by kind.
    pub failures: prometheus_client::metrics::family::Family<
        crate::metrics::FailureLabels,
        prometheus_client::metrics::counter::Counter,
    >,
    /// The labels of this instance's failures, but the kind.
    pub route: String,
    /// The plugin.
    pub plugin: String,
}

impl TransformFailure {
    /// A short name of the kind, for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            TransformFailure::Trap(_) => "trap",
            TransformFailure::Timeout(_) => "timeout",
            TransformFailure::Guest(_) => "error",
            TransformFailure::BadOutput(_) => "bad_output",
            TransformFailure::Reinstantiate(_) => "reinstantiate",
        }
    }
}

impl Instance {
    pub(super) fn new(
        plugin: &Plugin,
        route: &str,
        params: &serde_json::Value,
        files: FileGrants,
    ) -> Result<Self, RuntimeError> {
        let route: Arc<str> = route.into();
        let (live, manifest) = instantiate(plugin, &route, params, &files)?;
        Ok(Instance {
            plugin: plugin.clone(),
            route,
            params: params.clone(),
            files,
            manifest,
            live: Some(live),
            scratch: Vec::new(),
            metrics: None,
        })
    }

    /// What the plugin declared at init.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The plugin's name.
    pub fn plugin_name(&self) -> &str {
        self.plugin.name()
    }

    /// Times each call and counts failures in `metrics` from now on.
    pub fn set_metrics(&mut self, metrics: CallMetrics) {
        self.metrics = Some(metrics);
    }

    /// Runs one batch through the plugin and applies the answer to the full batch.
    pub fn call(&mut self, batch: &RecordBatch) -> Result<Applied, TransformFailure> {
        self.call_unselected(batch, None)?
            .select()
            .map_err(|e| TransformFailure::BadOutput(format!("taking the rows kept: {e}")))
    }

    /// Runs the rows of `batch` at `rows` (all when `None`) through the plugin and applies the
    /// answer to them, leaving out only what the answer makes useless; the rows that go on are
    /// not taken yet. So a filter's rows are taken later, once, of the columns still needed.
    pub fn call_unselected(
        &mut self,
        batch: &RecordBatch,
        rows: Option<&UInt32Array>,
    ) -> Result<abi::Unselected, TransformFailure> {
        let Some(m) = self.metrics.take() else {
            return self.call_unobserved(batch, rows);
        };
        let t = std::time::Instant::now();
        let result = self.call_unobserved(batch, rows);
        m.seconds.observe(t.elapsed().as_secs_f64());
        if let Some(bytes) = self.memory_bytes() {
            m.memory.set(bytes as i64);
        }
        if let Err(f) = &result {
            m.failures
                .get_or_create(&crate::metrics::FailureLabels {
                    route: m.route.clone(),
                    plugin: m.plugin.clone(),
                    kind: f.kind(),
                })
                .inc();
        }
        self.metrics = Some(m);
        result
    }

    fn call_unobserved(
        &mut self,
        batch: &RecordBatch,
        rows: Option<&UInt32Array>,
    ) -> Result<abi::Unselected, TransformFailure> {
        let input = abi::input_of(batch, rows, &self.manifest)
            .map_err(|e| TransformFailure::BadOutput(format!("projecting the input: {e}")))?;
        let mut scratch = std::mem::take(&mut self.scratch);
        let answer = match ipc::write_stream(&input, &mut scratch) {
            Ok(()) => self.call_raw(&scratch),
            Err(e) => Err(TransformFailure::BadOutput(format!(
                "encoding the input: {e}"
            ))),
        };
        self.scratch = scratch;
        let batch_out = ipc::read_stream(Buffer::from_vec(answer?))
            .map_err(|e| TransformFailure::BadOutput(format!("not an Arrow IPC stream: {e}")))?;
        let output = Output::from_batch(batch_out)
            .map_err(|e| TransformFailure::BadOutput(e.to_string()))?;
        abi::apply_to_rows(batch, rows, output, &self.manifest)
            .map_err(|e| TransformFailure::BadOutput(e.to_string()))
    }

    /// Passes `input` to `weir_transform` as it is and returns the guest's answer bytes,
    /// unparsed. [`Instance::call`] builds on it; conformance checks use it to send input no
    /// host would send.
    pub fn call_raw(&mut self, input: &[u8]) -> Result<Vec<u8>, TransformFailure> {
        let limits = &self.plugin.limits;
        let (budget, max_output) = (limits.time_budget, limits.max_output);
        let fuel = self.plugin.interruption == super::Interruption::Fuel;
        let result = self.live().and_then(|live| {
            if fuel {
                live.store
                    .set_fuel(super::BENCH_FUEL)
                    .map_err(|e| TransformFailure::Trap(describe(&e)))?;
            }
            call_transform(live, input, budget, max_output)
        });
        if matches!(
            result,
            Err(TransformFailure::Trap(_) | TransformFailure::Timeout(_))
        ) {
            // Never re-enter a trapped instance: its memory may be half-updated.
            self.live = None;
        }
        result
    }

    /// Calls `weir_alloc(len)` and returns the pointer, checked to lie in memory with its `len`
    /// bytes; the buffer is given back with `weir_free`. For conformance checks.
    pub fn probe_alloc(&mut self, len: u32) -> Result<u32, TransformFailure> {
        let live = self.live()?;
        let signed = i32::try_from(len)
            .map_err(|_| TransformFailure::BadOutput(format!("{len} bytes is over 2 GiB")))?;
        let ptr = live
            .alloc
            .call(&mut live.store, signed)
            .map_err(|e| TransformFailure::Trap(describe(&e)))? as u32;
        let size = live.memory.data_size(&live.store);
        if ptr == 0 || ptr as usize + len as usize > size {
            return Err(TransformFailure::BadOutput(format!(
                "weir_alloc({len}) returned {ptr:#x}, not a buffer inside the guest's {size} bytes"
            )));
        }
        let free = live
            .instance
            .get_typed_func::<(i32, i32), ()>(&mut live.store, abi::exports::FREE)
            .map_err(|e| TransformFailure::BadOutput(describe(&e)))?;
        free.call(&mut live.store, (ptr as i32, signed))
            .map_err(|e| TransformFailure::Trap(describe(&e)))?;
        Ok(ptr)
    }

    /// The size of the instance's linear memory in bytes, or `None` between a trap and the
    /// next call (when no instance is live).
    pub fn memory_bytes(&self) -> Option<usize> {
        self.live
            .as_ref()
            .map(|live| live.memory.data_size(&live.store))
    }

    /// The live instance, re-created first if a trap dropped the last one.
    fn live(&mut self) -> Result<&mut Live, TransformFailure> {
        if self.live.is_none() {
            let (live, _) = instantiate(&self.plugin, &self.route, &self.params, &self.files)
                .map_err(|e| TransformFailure::Reinstantiate(e.to_string()))?;
            self.live = Some(live);
        }
        self.live
            .as_mut()
            .ok_or_else(|| TransformFailure::Reinstantiate("no instance".into()))
    }
}

fn ticks(budget: std::time::Duration) -> u64 {
    (budget.as_nanos() / EPOCH_TICK.as_nanos()) as u64 + 1
}

fn instantiate(
    plugin: &Plugin,
    route: &Arc<str>,
    params: &serde_json::Value,
    files: &FileGrants,
) -> Result<(Live, Manifest), RuntimeError> {
    let name = plugin.name();
    let abi_err = |message: String| RuntimeError::Abi {
        plugin: name.into(),
        message,
    };
    let limits = StoreLimitsBuilder::new()
        .memory_size(usize::try_from(plugin.limits.memory_limit).unwrap_or(usize::MAX))
        .instances(1)
        .memories(1)
        .tables(4)
        .build();
    let mut store = Store::new(
        plugin.pre.module().engine(),
        HostState {
            limits,
            tag: format!("{route}/{name}").into(),
            files: files.clone(),
            logged: 0,
        },
    );
    store.limiter(|s| &mut s.limits);
    store.epoch_deadline_trap();
    store.set_epoch_deadline(ticks(plugin.limits.time_budget));
    let fuel = plugin.interruption == super::Interruption::Fuel;
    if fuel {
        store
            .set_fuel(super::BENCH_FUEL)
            .map_err(|e| abi_err(describe(&e)))?;
    }
    let instance = plugin
        .pre
        .instantiate(&mut store)
        .map_err(|e| abi_err(format!("instantiation failed: {}", describe(&e))))?;
    let func = |store: &mut Store<HostState>, export: &str| {
        instance
            .get_func(&mut *store, export)
            .ok_or_else(|| abi_err(format!("no export `{export}`")))
    };
    let version = func(&mut store, abi::exports::ABI_VERSION)?
        .typed::<(), i32>(&store)
        .and_then(|f| f.call(&mut store, ()))
        .map_err(|e| abi_err(describe(&e)))?;
    if version != abi::ABI_VERSION {
        return Err(abi_err(format!(
            "speaks ABI version {version}; this weir speaks {}",
            abi::ABI_VERSION
        )));
    }
    let typed_err = |e: wasmtime::Error| abi_err(describe(&e));
    let memory = instance
        .get_memory(&mut store, abi::exports::MEMORY)
        .ok_or_else(|| abi_err("no memory export".into()))?;
    let mut live = Live {
        memory,
        alloc: func(&mut store, abi::exports::ALLOC)?
            .typed(&store)
            .map_err(typed_err)?,
        transform: func(&mut store, abi::exports::TRANSFORM)?
            .typed(&store)
            .map_err(typed_err)?,
        last_error: func(&mut store, abi::exports::LAST_ERROR)?
            .typed(&store)
            .map_err(typed_err)?,
        instance,
        store,
    };
    let init: TypedFunc<(i32, i32), i64> = func(&mut live.store, abi::exports::INIT)?
        .typed(&live.store)
        .map_err(typed_err)?;
    let params = serde_json::to_vec(params).map_err(|e| abi_err(e.to_string()))?;
    let init_err = |message: String| RuntimeError::Init {
        plugin: name.into(),
        message,
    };
    let answer = (|| {
        let (ptr, len) = copy_in(&mut live, &params)?;
        let r = init
            .call(&mut live.store, (ptr, len))
            .map_err(|e| TransformFailure::Trap(describe(&e)))?;
        read_answer(&mut live, r, plugin.limits.max_output)
    })()
    .map_err(|e| {
        init_err(match e {
            // "init failed: <the guest's words>", not "init failed: failed: ...".
            TransformFailure::Guest(message) => message,
            other => other.to_string(),
        })
    })?;
    let manifest: Manifest = serde_json::from_slice(&answer)
        .map_err(|e| abi_err(format!("weir_init answered an invalid manifest: {e}")))?;
    Ok((live, manifest))
}

fn call_transform(
    live: &mut Live,
    input: &[u8],
    budget: std::time::Duration,
    max_output: u64,
) -> Result<Vec<u8>, TransformFailure> {
    live.store.set_epoch_deadline(ticks(budget));
    live.store.data_mut().logged = 0;
    let (ptr, len) = copy_in(live, input)?;
    let r = live
        .transform
        .call(&mut live.store, (ptr, len))
        .map_err(|e| match e.downcast_ref::<Trap>() {
            Some(Trap::Interrupt | Trap::OutOfFuel) => TransformFailure::Timeout(budget),
            _ => TransformFailure::Trap(describe(&e)),
        });
    let state = live.store.data();
    if state.logged > super::MAX_LOG_LINES {
        tracing::warn!(
            plugin = %state.tag,
            "{} more log lines of this call dropped (at most {} per call)",
            state.logged - super::MAX_LOG_LINES,
            super::MAX_LOG_LINES
        );
    }
    read_answer(live, r?, max_output)
}

/// Gets a guest buffer from `weir_alloc` and fills it.
fn copy_in(live: &mut Live, bytes: &[u8]) -> Result<(i32, i32), TransformFailure> {
    let len = i32::try_from(bytes.len())
        .map_err(|_| TransformFailure::BadOutput("input over 2 GiB".into()))?;
    let ptr = live
        .alloc
        .call(&mut live.store, len)
        .map_err(|e| TransformFailure::Trap(describe(&e)))?;
    if ptr == 0 {
        return Err(TransformFailure::Guest(format!(
            "weir_alloc could not provide {len} bytes"
        )));
    }
    live.memory
        .write(&mut live.store, ptr as u32 as usize, bytes)
        .map_err(|_| {
            TransformFailure::BadOutput(format!("weir_alloc returned {ptr:#x}, outside memory"))
        })?;
    Ok((ptr, len))
}

/// Reads a packed answer, or the guest's error message for a negative one. Every pointer and
/// length the guest returns is bounds-checked against its memory, and the answer's length
/// against `max_output`, before anything is copied.
fn read_answer(live: &mut Live, packed: i64, max_output: u64) -> Result<Vec<u8>, TransformFailure> {
    match abi::unpack(packed) {
        Some((_, len)) if u64::from(len) > max_output => Err(TransformFailure::BadOutput(format!(
            "an answer of {len} bytes is over max_output ({max_output} bytes)"
        ))),
        Some((ptr, len)) => read_guest(live, ptr, len).map_err(TransformFailure::BadOutput),
        None => {
            let r = live
                .last_error
                .call(&mut live.store, ())
                .map_err(|e| TransformFailure::Trap(describe(&e)))?;
            let message = match abi::unpack(r) {
                Some((ptr, len)) => read_guest(live, ptr, len.min(64 << 10))
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_else(|e| format!("(unreadable error message: {e})")),
                None => "(no error message)".into(),
            };
            Err(TransformFailure::Guest(message))
        }
    }
}

fn read_guest(live: &Live, ptr: u32, len: u32) -> Result<Vec<u8>, String> {
    let data = live.memory.data(&live.store);
    let (start, end) = (ptr as usize, ptr as usize + len as usize);
    data.get(start..end).map(<[u8]>::to_vec).ok_or_else(|| {
        format!(
            "answer at {ptr:#x}+{len} lies outside the guest's {} bytes of memory",
            data.len()
        )
    })
}

/// A wasmtime error as one line: `wasmtime::Error` is not `std::error::Error`, so the chain is
/// flattened here, at the boundary.
pub(super) fn describe(e: &wasmtime::Error) -> String {
    let mut parts: Vec<String> = e.chain().map(|c| c.to_string()).collect();
    parts.dedup();
    parts.join(": ")
}
