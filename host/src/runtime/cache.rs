//! A compiled-module cache: compiling an arrow-based guest takes seconds, loading it from the
//! cache takes milliseconds. Keyed by the module's SHA-256 and the engine's compatibility hash,
//! so a new weir or a different engine config never loads a stale artifact.

use std::hash::{Hash, Hasher};
use std::path::Path;

use sha2::{Digest, Sha256};
use wasmtime::{Engine, Module};

use super::instance::describe;

/// Compiles `bytes`, or loads the compiled form from `dir` when it holds one.
pub fn compile(engine: &Engine, bytes: &[u8], dir: Option<&Path>) -> Result<Module, String> {
    let Some(dir) = dir else {
        return Module::new(engine, bytes).map_err(|e| describe(&e));
    };
    let mut engine_hash = std::collections::hash_map::DefaultHasher::new();
    engine
        .precompile_compatibility_hash()
        .hash(&mut engine_hash);
    let key = format!(
        "{:x}-{:016x}.cwasm",
        Sha256::digest(bytes),
        engine_hash.finish()
    );
    let path = dir.join(key);
    if path.is_file() {
        // SAFETY: the file is one weir wrote into its own cache folder (below, via an atomic
        // rename), for this engine configuration, which wasmtime checks again on load. Whoever
        // can write that folder can run code as this user anyway.
        match unsafe { Module::deserialize_file(engine, &path) } {
            Ok(m) => return Ok(m),
            Err(e) => {
                tracing::warn!(path = %path.display(), "ignoring cached module: {}", describe(&e))
            }
        }
    }
    let module = Module::new(engine, bytes).map_err(|e| describe(&e))?;
    // The cache is an optimisation: failing to write it is logged, not fatal.
    if let Err(e) = store(&module, dir, &path) {
        tracing::warn!(dir = %dir.display(), "could not cache compiled module: {e}");
    }
    Ok(module)
}

fn store(module: &Module, dir: &Path, path: &Path) -> Result<(), String> {
    let serialized = module.serialize().map_err(|e| describe(&e))?;
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, serialized).map_err(|e| e.to_string())?;
    std::fs::rename(&tmp, path).map_err(|e| e.to_string())
}
