//! Builds every crate in `plugins/` for `wasm32-unknown-unknown` (profile `plugin`: LTO, stripped)
//! and embeds the modules, so `plugin: builtin:NAME` works with no files around.
//!
//! The nested cargo uses its own target folder (`target/wasm-plugins`), shared by every profile
//! of the host, so the plugins build once and the outer build's lock is never contended.

use std::env;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

const WASM_TARGET: &str = "wasm32-unknown-unknown";

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest_dir
        .parent()
        .expect("host/ sits in the workspace")
        .to_path_buf();
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo"));

    for watched in [
        "plugins",
        "guest-sdk/src",
        "guest-sdk/Cargo.toml",
        "guest-sdk/expr",
        "Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    println!("cargo:rerun-if-env-changed=WEIR_PLUGIN_TARGET_DIR");

    let plugins = plugin_crates(&root.join("plugins"));
    let target_dir = env::var_os("WEIR_PLUGIN_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| shared_target_dir(&out_dir).join("wasm-plugins"));

    ensure_wasm_target();

    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&root)
        .args([
            "build",
            "--locked",
            "--profile",
            "plugin",
            "--target",
            WASM_TARGET,
        ])
        .arg("--target-dir")
        .arg(&target_dir);
    for (_, package) in &plugins {
        cmd.args(["-p", package]);
    }
    // The outer build's flags and wrappers are for the host, not for wasm.
    for (key, _) in env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        let keep = key == "CARGO_HOME" || key == "CARGO_NET_OFFLINE" || key == "CARGO_MAKEFLAGS";
        if (key.starts_with("CARGO_") && !keep)
            || key.starts_with("RUSTC_")
            || key == "RUSTFLAGS"
            || key == "RUSTDOCFLAGS"
        {
            cmd.env_remove(&key);
        }
    }
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("could not run cargo for the wasm plugins: {e}"));
    if !status.success() {
        panic!(
            "building the wasm plugins failed (see above). If the wasm target is missing: \
             rustup target add {WASM_TARGET} (rust-toolchain.toml names it, so rustup normally adds it)"
        );
    }

    let mut code = String::from(
        "/// Built-in plugins: (name, wasm bytes).\npub static BUILTINS: &[(&str, &[u8])] = &[\n",
    );
    for (name, package) in &plugins {
        let artifact = target_dir
            .join(WASM_TARGET)
            .join("plugin")
            .join(format!("{}.wasm", package.replace('-', "_")));
        let embedded = out_dir.join(format!("{name}.wasm"));
        std::fs::copy(&artifact, &embedded)
            .unwrap_or_else(|e| panic!("{}: {e}", artifact.display()));
        writeln!(
            code,
            "    ({name:?}, include_bytes!({:?})),",
            embedded.display().to_string()
        )
        .expect("write to String");
    }
    code.push_str("];\n");
    std::fs::write(out_dir.join("builtins.rs"), code).expect("write builtins.rs");
}

/// Adds the wasm target through rustup when the toolchain lacks it. rustup installs the targets
/// `rust-toolchain.toml` names only when it installs the toolchain itself; a machine that already
/// had the toolchain would otherwise fail here on its first build.
fn ensure_wasm_target() {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let libdir = Command::new(&rustc)
        .args(["--print", "target-libdir", "--target", WASM_TARGET])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    if libdir.is_some_and(|d| d.is_dir()) {
        return;
    }
    let mut rustup = Command::new("rustup");
    rustup.args(["target", "add", WASM_TARGET]);
    if let Some(toolchain) = env::var_os("RUSTUP_TOOLCHAIN") {
        rustup.arg("--toolchain").arg(toolchain);
    }
    match rustup.status() {
        Ok(s) if s.success() => {}
        other => println!("cargo:warning=`rustup target add {WASM_TARGET}` failed: {other:?}"),
    }
}

/// `(name, package)` for each `plugins/NAME/Cargo.toml`; packages are named `weir-plugin-NAME`.
fn plugin_crates(dir: &Path) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(Result::ok)
        .filter(|e| e.path().join("Cargo.toml").is_file())
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let package = format!("weir-plugin-{name}");
            (name, package)
        })
        .collect();
    found.sort();
    found
}

/// The workspace's target folder, found from OUT_DIR (`<target>/[<triple>/]<profile>/build/<pkg>/out`):
/// the nearest ancestor holding cargo's `CACHEDIR.TAG`.
fn shared_target_dir(out_dir: &Path) -> PathBuf {
    out_dir
        .ancestors()
        .find(|p| p.join("CACHEDIR.TAG").is_file())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| out_dir.to_path_buf())
}
