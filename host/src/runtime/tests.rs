use std::sync::Arc;
use std::time::Duration;

use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};

use super::*;

fn runtime() -> Runtime {
    Runtime::new(
        Limits {
            time_budget: Duration::from_millis(200),
            memory_limit: 64 << 20,
        },
        None,
    )
    .unwrap()
}

fn batch(n: usize, text_len: usize) -> RecordBatch {
    let amount: ArrayRef = Arc::new(Float64Array::from_iter_values((0..n).map(|i| i as f64)));
    let id: ArrayRef = Arc::new(Int64Array::from_iter_values(0..n as i64));
    let text: ArrayRef = Arc::new(StringArray::from_iter_values(
        (0..n).map(|_| "x".repeat(text_len)),
    ));
    RecordBatch::try_from_iter(vec![("amount", amount), ("id", id), ("text", text)]).unwrap()
}

/// A hand-written guest: a bump allocator, `{}` as its manifest, and `body` as `weir_transform`
/// (with `$len` the input length). `answer` is embedded at offset 4096 for bodies to return.
fn wat_guest(body: &str, answer: &[u8]) -> String {
    let escaped: String = answer.iter().map(|b| format!("\\{b:02x}")).collect();
    format!(
        r#"(module
  (import "weir" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 4)
  (global $bump (mut i32) (i32.const 65536))
  (data (i32.const 16) "{{}}")
  (data (i32.const 32) "guest says no")
  (data (i32.const 4096) "{escaped}")
  (func (export "weir_abi_version") (result i32) (i32.const 1))
  (func (export "weir_alloc") (param $len i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $bump))
    (global.set $bump (i32.add (global.get $bump)
      (i32.and (i32.add (local.get $len) (i32.const 7)) (i32.const -8))))
    (local.get $p))
  (func (export "weir_free") (param i32 i32))
  (func (export "weir_init") (param i32 i32) (result i64)
    (call $log (i32.const 3) (i32.const 32) (i32.const 13))
    (i64.const 0x0000001000000002))
  (func (export "weir_transform") (param $ptr i32) (param $len i32) (result i64)
    (global.set $bump (i32.const 65536))
    {body})
  (func (export "weir_last_error") (result i64) (i64.const 0x000000200000000d))
)"#
    )
}

/// The packed (4096, len) pointer to the embedded answer.
fn answer_ptr(len: usize) -> String {
    format!("(i64.const {})", (4096i64 << 32) | len as i64)
}

fn empty_answer(rows: usize) -> Vec<u8> {
    let b = weir_guest_sdk::Output::with_columns(vec![])
        .into_batch(rows)
        .unwrap();
    let mut out = Vec::new();
    weir_guest_sdk::ipc::write_stream(&b, &mut out).unwrap();
    out
}

fn guest(rt: &Runtime, body: &str, answer: &[u8]) -> Instance {
    rt.compile("test", wat_guest(body, answer).as_bytes())
        .unwrap()
        .instantiate("route", &serde_json::json!({}))
        .unwrap()
}

#[test]
fn builtin_filter_selects_rows_and_reads_one_column() {
    let rt = runtime();
    let plugin = rt.load("builtin:filter", Path::new(".")).unwrap();
    let mut inst = plugin
        .instantiate(
            "r",
            &serde_json::json!({"column": "amount", "op": ">=", "value": 7}),
        )
        .unwrap();
    assert_eq!(inst.manifest().reads, Some(vec!["amount".to_string()]));
    let out = inst.call(&batch(10, 3)).unwrap();
    assert_eq!(out.batch.num_rows(), 3);
    assert_eq!(
        out.batch.num_columns(),
        3,
        "untouched columns are kept on the host"
    );
    assert_eq!(out.rows.unwrap().values().to_vec(), vec![7, 8, 9]);
}

#[test]
fn builtin_filter_refuses_bad_params_at_init() {
    let rt = runtime();
    let plugin = rt.load("builtin:filter", Path::new(".")).unwrap();
    let e = plugin
        .instantiate(
            "r",
            &serde_json::json!({"column": "a", "op": "~~", "value": 1}),
        )
        .err()
        .unwrap();
    assert!(matches!(e, RuntimeError::Init { .. }), "{e}");
    assert!(e.to_string().contains("invalid params"), "{e}");
}

#[test]
fn a_trap_fails_the_batch_and_the_next_call_gets_a_fresh_instance() {
    let rt = runtime();
    let rows = 4;
    let answer = empty_answer(rows);
    // Traps on large inputs, answers small ones.
    let body = format!(
        "(if (i32.gt_u (local.get $len) (i32.const 20000)) (then unreachable)) {}",
        answer_ptr(answer.len())
    );
    let mut inst = guest(&rt, &body, &answer);
    let e = inst.call(&batch(rows, 10_000)).unwrap_err();
    assert!(matches!(e, TransformFailure::Trap(_)), "{e}");
    let ok = inst.call(&batch(rows, 1)).unwrap();
    assert_eq!(ok.batch.num_rows(), rows);
}

#[test]
fn an_endless_loop_times_out() {
    let rt = runtime();
    let mut inst = guest(&rt, "(loop $l (br $l)) (i64.const 0)", &[]);
    let started = std::time::Instant::now();
    let e = inst.call(&batch(2, 1)).unwrap_err();
    assert!(matches!(e, TransformFailure::Timeout(_)), "{e}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn guest_errors_carry_the_guest_message() {
    let rt = runtime();
    let mut inst = guest(&rt, "(i64.const -1)", &[]);
    let e = inst.call(&batch(2, 1)).unwrap_err();
    assert_eq!(e.to_string(), "failed: guest says no");
}

#[test]
fn answers_outside_memory_are_refused() {
    let rt = runtime();
    let mut inst = guest(&rt, "(i64.const 0x7fff000000000064)", &[]);
    let e = inst.call(&batch(2, 1)).unwrap_err();
    assert!(matches!(e, TransformFailure::BadOutput(_)), "{e}");
    // Garbage where an IPC stream should be is refused too.
    let mut inst = guest(&rt, &answer_ptr(13), b"not arrow ipc");
    let e = inst.call(&batch(2, 1)).unwrap_err();
    assert!(e.to_string().contains("not an Arrow IPC stream"), "{e}");
}

#[test]
fn memory_beyond_the_cap_is_not_granted() {
    let rt = runtime();
    // Ask for 128 MiB more (the cap is 64 MiB): memory.grow must answer -1.
    let mut inst = guest(
        &rt,
        "(if (i32.eq (memory.grow (i32.const 2048)) (i32.const -1)) (then (return (i64.const -1)))) unreachable",
        &[],
    );
    let e = inst.call(&batch(2, 1)).unwrap_err();
    assert!(matches!(e, TransformFailure::Guest(_)), "{e}");
}

#[test]
fn modules_that_are_not_weir_plugins_are_refused_at_load() {
    let rt = runtime();
    let e = rt.compile("empty", b"(module)").err().unwrap();
    assert!(e.to_string().contains("not a weir plugin"), "{e}");
    let e = rt.compile("junk", b"\0asm junk").err().unwrap();
    assert!(matches!(e, RuntimeError::Compile { .. }), "{e}");
    let wasi = wat_guest("(i64.const -1)", &[]).replace(
        r#"(import "weir" "log""#,
        r#"(import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
  (import "weir" "log""#,
    );
    let e = rt.compile("wasi", wasi.as_bytes()).err().unwrap();
    assert!(e.to_string().contains("does not grant"), "{e}");
}

#[test]
fn compiled_modules_are_cached() {
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits {
        time_budget: Duration::from_millis(200),
        memory_limit: 64 << 20,
    };
    let rt = Runtime::new(limits.clone(), Some(dir.path().to_path_buf())).unwrap();
    rt.load("builtin:filter", Path::new(".")).unwrap();
    let cached: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(cached.len(), 1);
    // A second runtime loads it from the cache and it still works.
    let rt = Runtime::new(limits, Some(dir.path().to_path_buf())).unwrap();
    let mut inst = rt
        .load("builtin:filter", Path::new("."))
        .unwrap()
        .instantiate(
            "r",
            &serde_json::json!({"column": "id", "op": "<", "value": 2}),
        )
        .unwrap();
    assert_eq!(inst.call(&batch(5, 1)).unwrap().batch.num_rows(), 2);
}

#[test]
fn users_plugins_load_from_a_path_relative_to_the_config() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("plugins")).unwrap();
    std::fs::write(
        dir.path().join("plugins/mine.wasm"),
        builtin("filter").unwrap(),
    )
    .unwrap();
    let rt = runtime();
    let plugin = rt.load("plugins/mine.wasm", dir.path()).unwrap();
    assert_eq!(plugin.name(), "plugins/mine.wasm");
    let mut inst = plugin
        .instantiate(
            "r",
            &serde_json::json!({"column": "id", "op": "==", "value": 3}),
        )
        .unwrap();
    assert_eq!(
        inst.call(&batch(5, 1))
            .unwrap()
            .rows
            .unwrap()
            .values()
            .to_vec(),
        vec![3]
    );
    let e = rt.load("plugins/missing.wasm", dir.path()).err().unwrap();
    assert!(e.to_string().contains("missing.wasm"), "{e}");
}
