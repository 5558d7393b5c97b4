//! What every weir benchmark shares: criterion set up the same way, its output in the shared
//! target dir, and medians read back from this run for the ratio tables the benchmarks print.

use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::Criterion;

/// Criterion with short warm-up and few samples (the tables report ratios from one run, so
/// long runs buy little), writing under `<target>/criterion`; command-line flags still apply.
pub fn criterion(measurement: Duration) -> (Criterion, PathBuf) {
    let dir = criterion_dir();
    let c = Criterion::default()
        .output_directory(&dir)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(measurement)
        .sample_size(10)
        .configure_from_args();
    (c, dir)
}

fn criterion_dir() -> PathBuf {
    // <target>/release/deps/BENCH-HASH -> <target>/criterion
    let exe = std::env::current_exe().unwrap();
    exe.ancestors()
        .nth(3)
        .map(|t| t.join("criterion"))
        .unwrap_or_else(|| PathBuf::from("target/criterion"))
}

/// Median time per iteration, in seconds, of one benchmark of this run, if it ran.
pub fn median(dir: &Path, group: &str, variant: &str, param: impl Display) -> Option<f64> {
    let file = dir
        .join(group)
        .join(variant)
        .join(param.to_string())
        .join("new/estimates.json");
    let text = std::fs::read_to_string(file).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["median"]["point_estimate"].as_f64().map(|ns| ns / 1e9)
}

/// Runs a plugin natively exactly as the host applies it (manifest, projected input, answer
/// applied), without the sandbox and the IPC: the native side of the wasm/native ratios.
#[allow(dead_code)] // not every benchmark compares with native code
pub fn native<T: weir_guest_sdk::Transform>(
    t: &mut T,
    batch: &arrow_array::RecordBatch,
) -> arrow_array::RecordBatch {
    native_rows(t, batch, None).select().unwrap().batch
}

/// [`native`] on the rows `rows` of `batch`, the rows that go on left to take, as a route's
/// chain runs each transform.
#[allow(dead_code)] // not every benchmark compares with native code
pub fn native_rows<T: weir_guest_sdk::Transform>(
    t: &mut T,
    batch: &arrow_array::RecordBatch,
    rows: Option<&arrow_array::UInt32Array>,
) -> weir_guest_sdk::abi::Unselected {
    use weir_guest_sdk::{abi, testing};
    let manifest = testing::manifest(t);
    let input = abi::input_of(batch, rows, &manifest).unwrap();
    let out = t.transform(input).unwrap();
    abi::apply_to_rows(batch, rows, out, &manifest).unwrap()
}
