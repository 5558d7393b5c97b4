//! The wasm runtime: one [`wasmtime::Engine`] for the process, each plugin compiled once (and
//! cached on disk across runs), one sandboxed instance per route and transform.
//!
//! The sandbox (invariant 5): a guest gets only the `weir.log` import and `weir.read_file`, which
//! reads only the files its transform's config grants (read once, at load); every call runs under
//! an epoch deadline (the time budget) and a linear-memory cap; a trap fails that batch, and the
//! instance is dropped and re-instantiated before the next call, never re-entered.

mod cache;
mod instance;

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use wasmtime::{Caller, Config, Engine, InstancePre, Linker, Module};
use weir_guest_sdk::abi::{self, LogLevel};

pub use instance::{CallMetrics, Instance, TransformFailure};

include!(concat!(env!("OUT_DIR"), "/builtins.rs"));

/// The wasm bytes of a built-in plugin (`builtin:NAME`).
pub fn builtin(name: &str) -> Option<&'static [u8]> {
    BUILTINS.iter().find(|(n, _)| *n == name).map(|(_, b)| *b)
}

/// The names of the built-in plugins.
pub fn builtin_names() -> Vec<&'static str> {
    BUILTINS.iter().map(|(n, _)| *n).collect()
}

/// How often the epoch advances: the granularity of the time budget.
const EPOCH_TICK: Duration = Duration::from_millis(5);
/// Modules larger than this are refused before compilation.
const MAX_MODULE_BYTES: usize = 64 << 20;
/// A guest log line is cut to this many bytes.
const MAX_LOG_BYTES: u32 = 4096;
/// Lines a guest may log per call; the rest are counted and dropped, so a plugin can't flood
/// the worker's logs (or its disk).
const MAX_LOG_LINES: u32 = 100;
/// A file granted to a transform (`files:`) may hold at most this many bytes.
pub const MAX_FILE_BYTES: u64 = 256 << 20;

/// Errors of loading and running plugins. Each names the plugin.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The wasm engine could not be set up.
    #[error("wasm engine: {0}")]
    Engine(String),
    /// The plugin's bytes could not be read.
    #[error("plugin {plugin}: {message}")]
    Load {
        /// The plugin.
        plugin: String,
        /// Why.
        message: String,
    },
    /// The module does not compile.
    #[error("plugin {plugin}: does not compile: {message}")]
    Compile {
        /// The plugin.
        plugin: String,
        /// Why.
        message: String,
    },
    /// The module does not speak the weir ABI.
    #[error("plugin {plugin}: {message}")]
    Abi {
        /// The plugin.
        plugin: String,
        /// What is wrong.
        message: String,
    },
    /// A file the config grants could not be read.
    #[error("plugin {plugin}: file `{name}`: {message}")]
    File {
        /// The plugin.
        plugin: String,
        /// The grant's name.
        name: String,
        /// Why.
        message: String,
    },
    /// `weir_init` refused its params.
    #[error("plugin {plugin}: init failed: {message}")]
    Init {
        /// The plugin.
        plugin: String,
        /// The guest's message.
        message: String,
    },
}

/// How a call's time budget is enforced. weir runs with [`Interruption::Epoch`] (see
/// `docs/SANDBOX.md`); the others exist so that `benches/interruption.rs` can measure what each
/// one costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interruption {
    /// A ticker thread advances the engine's epoch every few milliseconds; a call traps once its
    /// deadline in ticks has passed. The budget is wall-clock time.
    Epoch,
    /// Fuel: every call gets a fixed (very large) amount, spent per instruction. Measured only.
    Fuel,
    /// No time budget at all. Measured only.
    Off,
}

/// Fuel given to each call under [`Interruption::Fuel`]: never the limit, since only the cost of
/// counting is measured.
pub(crate) const BENCH_FUEL: u64 = u64::MAX / 2;

/// Limits applied to an instance (the runtime's, or a transform's own).
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Wall-clock budget per call.
    pub time_budget: Duration,
    /// Linear-memory cap per instance, in bytes.
    pub memory_limit: u64,
    /// Largest answer (or manifest) copied out of the guest per call, in bytes.
    pub max_output: u64,
    /// How long compiling one module may take.
    pub compile_timeout: Duration,
}

impl Limits {
    /// The limits of `weir.yaml`'s `runtime:` section.
    pub fn from_config(rt: &crate::config::RuntimeConfig) -> Self {
        Limits {
            time_budget: rt.time_budget,
            memory_limit: rt.memory_limit,
            max_output: rt.max_output,
            compile_timeout: rt.compile_timeout,
        }
    }

    /// These limits with a transform's own in place of those it sets.
    pub fn overridden(&self, o: &crate::config::LimitsOverride) -> Self {
        Limits {
            time_budget: o.time_budget.unwrap_or(self.time_budget),
            memory_limit: o.memory_limit.unwrap_or(self.memory_limit),
            max_output: o.max_output.unwrap_or(self.max_output),
            compile_timeout: self.compile_timeout,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self::from_config(&crate::config::RuntimeConfig::default())
    }
}

/// What each instance's store carries.
pub(crate) struct HostState {
    limits: wasmtime::StoreLimits,
    /// `route/plugin`, for log lines.
    tag: Arc<str>,
    /// What `weir.read_file` may read.
    files: FileGrants,
    /// Lines logged in the current call.
    logged: u32,
}

/// The files a transform's config grants it (`files: { name: path }`), read once when the
/// transform loads; cheap to clone. The guest reads them through `weir.read_file`, and nothing else
/// of the file system.
#[derive(Debug, Clone, Default)]
pub struct FileGrants(Arc<BTreeMap<String, Vec<u8>>>);

impl FileGrants {
    /// Reads each granted file (paths relative to `base`, the config's folder) for `plugin`.
    pub fn read(
        plugin: &str,
        files: &BTreeMap<String, PathBuf>,
        base: &Path,
    ) -> Result<Self, RuntimeError> {
        let mut read = BTreeMap::new();
        for (name, path) in files {
            let bytes =
                read_granted_file(&base.join(path)).map_err(|message| RuntimeError::File {
                    plugin: plugin.into(),
                    name: name.clone(),
                    message,
                })?;
            read.insert(name.clone(), bytes);
        }
        Ok(FileGrants(Arc::new(read)))
    }

    /// Grants from bytes in memory.
    pub fn from_bytes(files: impl IntoIterator<Item = (String, Vec<u8>)>) -> Self {
        FileGrants(Arc::new(files.into_iter().collect()))
    }
}

/// Checks that `path` can be granted: a file of at most [`MAX_FILE_BYTES`] (`weir validate`).
pub fn check_granted_file(path: &Path) -> Result<(), String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("{}: not a file", path.display()));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(too_big(path));
    }
    Ok(())
}

/// Reads a granted file, refusing one over [`MAX_FILE_BYTES`] without reading it (nor more
/// than the cap of one that grows meanwhile).
fn read_granted_file(path: &Path) -> Result<Vec<u8>, String> {
    check_granted_file(path)?;
    let err = |e: std::io::Error| format!("{}: {e}", path.display());
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .map_err(err)?
        .take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(err)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(too_big(path));
    }
    Ok(bytes)
}

fn too_big(path: &Path) -> String {
    format!(
        "{}: over {} MiB, the cap for a granted file",
        path.display(),
        MAX_FILE_BYTES >> 20
    )
}

/// The process-wide runtime.
pub struct Runtime {
    engine: Engine,
    linker: Linker<HostState>,
    limits: Limits,
    cache_dir: Option<PathBuf>,
    ticker: Arc<Ticker>,
    interruption: Interruption,
}

/// Stops the epoch thread when dropped. The runtime and every plugin hold it: a plugin that
/// outlives its runtime keeps its time budget.
struct Ticker(Arc<AtomicBool>);

impl Drop for Ticker {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

impl Runtime {
    /// An engine with epoch interruption, and the ticker thread that drives it.
    pub fn new(limits: Limits, cache_dir: Option<PathBuf>) -> Result<Self, RuntimeError> {
        Self::with_interruption(limits, cache_dir, Interruption::Epoch)
    }

    /// A runtime whose calls are bounded by `interruption` (benchmarks compare them).
    pub fn with_interruption(
        limits: Limits,
        cache_dir: Option<PathBuf>,
        interruption: Interruption,
    ) -> Result<Self, RuntimeError> {
        let mut config = Config::new();
        config.epoch_interruption(interruption == Interruption::Epoch);
        config.consume_fuel(interruption == Interruption::Fuel);
        config.cranelift_opt_level(wasmtime::OptLevel::Speed);
        let engine = Engine::new(&config).map_err(|e| RuntimeError::Engine(e.to_string()))?;
        let mut linker = Linker::new(&engine);
        linker
            .func_wrap(abi::IMPORT_MODULE, abi::IMPORT_LOG, guest_log)
            .and_then(|l| l.func_wrap(abi::IMPORT_MODULE, abi::IMPORT_READ_FILE, guest_read_file))
            .map_err(|e| RuntimeError::Engine(e.to_string()))?;
        let ticker_stop = Arc::new(AtomicBool::new(false));
        {
            let engine = engine.clone();
            let stop = Arc::clone(&ticker_stop);
            std::thread::Builder::new()
                .name("weir-epoch".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(EPOCH_TICK);
                        engine.increment_epoch();
                    }
                })
                .map_err(|e| RuntimeError::Engine(format!("epoch thread: {e}")))?;
        }
        Ok(Runtime {
            engine,
            linker,
            limits,
            cache_dir,
            ticker: Arc::new(Ticker(ticker_stop)),
            interruption,
        })
    }

    /// The default cache folder: `$XDG_CACHE_HOME/weir`, else `~/.cache/weir`.
    pub fn default_cache_dir() -> Option<PathBuf> {
        std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))
            .map(|d| d.join("weir").join("modules"))
    }

    /// Reads and compiles a plugin: `builtin:NAME` or a path.
    pub fn load(&self, spec: &str, base: &Path) -> Result<Plugin, RuntimeError> {
        let bytes: std::borrow::Cow<'static, [u8]> = match spec.strip_prefix("builtin:") {
            Some(name) => builtin(name)
                .ok_or_else(|| RuntimeError::Load {
                    plugin: spec.into(),
                    message: format!(
                        "no such built-in (built-ins: {})",
                        builtin_names().join(", ")
                    ),
                })?
                .into(),
            None => {
                let path = base.join(spec);
                std::fs::read(&path)
                    .map_err(|e| RuntimeError::Load {
                        plugin: spec.into(),
                        message: format!("{}: {e}", path.display()),
                    })?
                    .into()
            }
        };
        self.compile(spec, &bytes)
    }

    /// Compiles wasm bytes (or takes them from the cache) and links them against weir's imports.
    pub fn compile(&self, name: &str, bytes: &[u8]) -> Result<Plugin, RuntimeError> {
        if bytes.len() > MAX_MODULE_BYTES {
            return Err(RuntimeError::Load {
                plugin: name.into(),
                message: format!(
                    "{} bytes; modules are capped at {MAX_MODULE_BYTES}",
                    bytes.len()
                ),
            });
        }
        let module = self
            .compile_within(bytes)
            .map_err(|e| RuntimeError::Compile {
                plugin: name.into(),
                message: e,
            })?;
        check_exports(name, &module)?;
        let pre = self
            .linker
            .instantiate_pre(&module)
            .map_err(|e| RuntimeError::Abi {
                plugin: name.into(),
                message: format!("imports something weir does not grant: {e}"),
            })?;
        Ok(Plugin {
            name: name.into(),
            pre,
            limits: self.limits.clone(),
            interruption: self.interruption,
            _ticker: Arc::clone(&self.ticker),
        })
    }
}

impl Runtime {
    /// The runtime's default limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Compiles on a thread of its own, and gives up after `compile_timeout`: a module made to
    /// stall the compiler can't hold the worker (or a reload) up. Cranelift can't be interrupted,
    /// so a compilation given up on finishes in the background and is dropped.
    fn compile_within(&self, bytes: &[u8]) -> Result<Module, String> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let (engine, dir, bytes) = (self.engine.clone(), self.cache_dir.clone(), bytes.to_vec());
        std::thread::Builder::new()
            .name("weir-compile".into())
            .spawn(move || {
                let _ = tx.send(cache::compile(&engine, &bytes, dir.as_deref()));
            })
            .map_err(|e| format!("could not start the compiler thread: {e}"))?;
        let timeout = self.limits.compile_timeout;
        match rx.recv_timeout(timeout) {
            Ok(compiled) => compiled,
            Err(_) => Err(format!(
                "compiling took over {} (runtime.compile_timeout)",
                humantime::format_duration(timeout)
            )),
        }
    }
}

/// Checks the exports' names and signatures, so a wrong module fails at load with a clear message.
fn check_exports(name: &str, module: &Module) -> Result<(), RuntimeError> {
    use wasmtime::{ExternType, ValType};
    let want: [(&str, &[ValType], &[ValType]); 6] = [
        (abi::exports::ABI_VERSION, &[], &[ValType::I32]),
        (abi::exports::ALLOC, &[ValType::I32], &[ValType::I32]),
        (abi::exports::FREE, &[ValType::I32, ValType::I32], &[]),
        (
            abi::exports::INIT,
            &[ValType::I32, ValType::I32],
            &[ValType::I64],
        ),
        (
            abi::exports::TRANSFORM,
            &[ValType::I32, ValType::I32],
            &[ValType::I64],
        ),
        (abi::exports::LAST_ERROR, &[], &[ValType::I64]),
    ];
    let abi_err = |message: String| RuntimeError::Abi {
        plugin: name.into(),
        message,
    };
    for (export, params, results) in want {
        match module.get_export(export) {
            Some(ExternType::Func(f)) => {
                let p: Vec<String> = f.params().map(|t| t.to_string()).collect();
                let r: Vec<String> = f.results().map(|t| t.to_string()).collect();
                let wp: Vec<String> = params.iter().map(|t| t.to_string()).collect();
                let wr: Vec<String> = results.iter().map(|t| t.to_string()).collect();
                if p != wp || r != wr {
                    return Err(abi_err(format!(
                        "export `{export}` is ({}) -> ({}), the ABI says ({}) -> ({})",
                        p.join(", "),
                        r.join(", "),
                        wp.join(", "),
                        wr.join(", ")
                    )));
                }
            }
            _ => {
                return Err(abi_err(format!(
                    "no function export `{export}`: not a weir plugin (see guest-sdk/ABI.md)"
                )))
            }
        }
    }
    match module.get_export(abi::exports::MEMORY) {
        Some(ExternType::Memory(m)) if !m.is_64() => Ok(()),
        _ => Err(abi_err("no 32-bit memory export `memory`".into())),
    }
}

/// The `weir.log` import: a guest's log line, tagged with its route and plugin.
fn guest_log(mut caller: Caller<'_, HostState>, level: i32, ptr: i32, len: i32) {
    caller.data_mut().logged += 1;
    if caller.data().logged > MAX_LOG_LINES {
        return;
    }
    let len = (len as u32).min(MAX_LOG_BYTES) as usize;
    let Some(memory) = caller
        .get_export(abi::exports::MEMORY)
        .and_then(|e| e.into_memory())
    else {
        return;
    };
    let mut buf = vec![0u8; len];
    if memory.read(&caller, ptr as u32 as usize, &mut buf).is_err() {
        return;
    }
    let text = String::from_utf8_lossy(&buf);
    let tag = &caller.data().tag;
    match LogLevel::from_i32(level) {
        LogLevel::Error => tracing::error!(plugin = %tag, "{text}"),
        LogLevel::Warn => tracing::warn!(plugin = %tag, "{text}"),
        LogLevel::Info => tracing::info!(plugin = %tag, "{text}"),
        LogLevel::Debug => tracing::debug!(plugin = %tag, "{text}"),
    }
}

/// The `weir.read_file` import: the size of the granted file `name`, its bytes copied to `dst`
/// when `dst_cap` is at least that, `-1` when `name` is not granted. A range outside the guest's
/// memory traps (the error below), so a bad pointer fails the call, never the host.
fn guest_read_file(
    mut caller: Caller<'_, HostState>,
    name_ptr: i32,
    name_len: i32,
    dst_ptr: i32,
    dst_cap: i32,
) -> wasmtime::Result<i64> {
    let memory = caller
        .get_export(abi::exports::MEMORY)
        .and_then(|e| e.into_memory())
        .ok_or_else(|| wasmtime::format_err!("read_file: the guest exports no memory"))?;
    let (data, state) = memory.data_and_store_mut(&mut caller);
    let name = &data[guest_span(data.len(), name_ptr, name_len as u32 as usize)?];
    let Some(file) = std::str::from_utf8(name)
        .ok()
        .and_then(|n| state.files.0.get(n))
    else {
        return Ok(-1);
    };
    // Pointers and lengths are unsigned 32-bit, as everywhere in the ABI.
    if dst_cap as u32 as usize >= file.len() {
        let dst = guest_span(data.len(), dst_ptr, file.len())?;
        data[dst].copy_from_slice(file);
    }
    Ok(file.len() as i64)
}

/// The range `ptr..ptr + len` of a guest memory of `size` bytes, or an error (a trap) when it
/// does not lie inside.
fn guest_span(size: usize, ptr: i32, len: usize) -> wasmtime::Result<std::ops::Range<usize>> {
    let start = ptr as u32 as usize;
    match start.checked_add(len) {
        Some(end) if end <= size => Ok(start..end),
        _ => Err(wasmtime::format_err!(
            "read_file: {start:#x}+{len} lies outside the guest's {size} bytes of memory"
        )),
    }
}

/// A compiled, linked plugin: instantiates cheaply, as often as needed.
#[derive(Clone)]
pub struct Plugin {
    name: String,
    pre: InstancePre<HostState>,
    limits: Limits,
    interruption: Interruption,
    _ticker: Arc<Ticker>,
}

impl Plugin {
    /// The plugin's name as configured.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// This plugin under other limits (a transform's own).
    pub fn with_limits(&self, limits: Limits) -> Plugin {
        Plugin {
            limits,
            ..self.clone()
        }
    }

    /// A fresh instance for the route `route`, initialized with `params`, that may read `files`.
    pub fn instantiate(
        &self,
        route: &str,
        params: &serde_json::Value,
        files: FileGrants,
    ) -> Result<Instance, RuntimeError> {
        Instance::new(self, route, params, files)
    }
}

#[cfg(test)]
pub(crate) mod tests;
