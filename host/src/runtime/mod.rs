//! The wasm runtime: one [`wasmtime::Engine`] for the process, each plugin compiled once (and
//! cached on disk across runs), one sandboxed instance per route and transform.
//!
//! The sandbox (invariant 5): a guest gets only the `weir.log` import; every call runs under an
//! epoch deadline (the time budget) and a linear-memory cap; a trap fails that batch, and the
//! instance is dropped and re-instantiated before the next call, never re-entered.

mod cache;
mod instance;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use wasmtime::{Caller, Config, Engine, InstancePre, Linker, Module};
use weir_guest_sdk::abi::{self, LogLevel};

pub use instance::{Instance, TransformFailure};

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
    /// `weir_init` refused its params.
    #[error("plugin {plugin}: init failed: {message}")]
    Init {
        /// The plugin.
        plugin: String,
        /// The guest's message.
        message: String,
    },
}

/// Limits applied to every instance.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Wall-clock budget per call.
    pub time_budget: Duration,
    /// Linear-memory cap per instance, in bytes.
    pub memory_limit: u64,
}

/// What each instance's store carries.
pub(crate) struct HostState {
    limits: wasmtime::StoreLimits,
    /// `route/plugin`, for log lines.
    tag: Arc<str>,
}

/// The process-wide runtime.
pub struct Runtime {
    engine: Engine,
    linker: Linker<HostState>,
    limits: Limits,
    cache_dir: Option<PathBuf>,
    ticker_stop: Arc<AtomicBool>,
}

impl Runtime {
    /// An engine with epoch interruption, and the ticker thread that drives it.
    pub fn new(limits: Limits, cache_dir: Option<PathBuf>) -> Result<Self, RuntimeError> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        config.cranelift_opt_level(wasmtime::OptLevel::Speed);
        let engine = Engine::new(&config).map_err(|e| RuntimeError::Engine(e.to_string()))?;
        let mut linker = Linker::new(&engine);
        linker
            .func_wrap(abi::IMPORT_MODULE, abi::IMPORT_LOG, guest_log)
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
            ticker_stop,
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
        let module =
            cache::compile(&self.engine, bytes, self.cache_dir.as_deref()).map_err(|e| {
                RuntimeError::Compile {
                    plugin: name.into(),
                    message: e,
                }
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
        })
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
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

/// A compiled, linked plugin: instantiates cheaply, as often as needed.
#[derive(Clone)]
pub struct Plugin {
    name: String,
    pre: InstancePre<HostState>,
    limits: Limits,
}

impl Plugin {
    /// The plugin's name as configured.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A fresh instance, initialized with `params`, for the route `route`.
    pub fn instantiate(
        &self,
        route: &str,
        params: &serde_json::Value,
    ) -> Result<Instance, RuntimeError> {
        Instance::new(self, route, params)
    }
}

#[cfg(test)]
mod tests;
