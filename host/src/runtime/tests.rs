use std::sync::Arc;
use std::time::Duration;

use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};

use super::*;

fn runtime() -> Runtime {
    Runtime::new(
        Limits {
            time_budget: Duration::from_millis(200),
            memory_limit: 64 << 20,
            ..Limits::default()
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
pub(crate) fn wat_guest(body: &str, answer: &[u8]) -> String {
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
pub(crate) fn answer_ptr(len: usize) -> String {
    format!("(i64.const {})", (4096i64 << 32) | len as i64)
}

pub(crate) fn empty_answer(rows: usize) -> Vec<u8> {
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
        .instantiate("route", &serde_json::json!({}), FileGrants::default())
        .unwrap()
}

/// A built-in plugin instantiated with `params` (and `files`). Each built-in is compiled once for
/// all the tests (a large one takes seconds).
fn load_builtin(
    name: &str,
    params: serde_json::Value,
    files: FileGrants,
) -> Result<Instance, RuntimeError> {
    builtin_plugin(name)?.instantiate("r", &params, files)
}

fn builtin_plugin(name: &str) -> Result<Plugin, RuntimeError> {
    static RUNTIME: std::sync::OnceLock<Runtime> = std::sync::OnceLock::new();
    static COMPILED: std::sync::Mutex<Vec<(String, Plugin)>> = std::sync::Mutex::new(Vec::new());
    let plugin = {
        let mut compiled = COMPILED.lock().unwrap();
        match compiled.iter().find(|(n, _)| n == name) {
            Some((_, p)) => p.clone(),
            None => {
                let rt = RUNTIME.get_or_init(runtime);
                let p = rt.load(&format!("builtin:{name}"), Path::new("."))?;
                compiled.push((name.to_string(), p.clone()));
                p
            }
        }
    };
    Ok(plugin)
}

fn names(batch: &RecordBatch) -> Vec<String> {
    let schema = batch.schema();
    schema.fields().iter().map(|f| f.name().clone()).collect()
}

#[test]
fn builtin_filter_selects_rows_and_reads_one_column() {
    let mut inst = load_builtin(
        "filter",
        serde_json::json!({"where": "amount >= `7`"}),
        FileGrants::default(),
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
fn builtins_refuse_bad_params_at_init_with_the_position() {
    // (plugin, params, expected text); an expression's error also gives the position.
    let cases = [
        (
            "filter",
            serde_json::json!({"where": "amount >= "}),
            "where: ",
        ),
        (
            "filter",
            serde_json::json!({"column": "a"}),
            "invalid params",
        ),
        (
            "project",
            serde_json::json!({"select": "{id: id, eur: amount *}"}),
            "select: ",
        ),
        (
            "project",
            serde_json::json!({"columns": {"x": "a ||"}}),
            "columns.x: ",
        ),
        (
            "enrich",
            serde_json::json!({"table": "fx", "on": "(currency", "key": "currency"}),
            "on: ",
        ),
        (
            "mask",
            serde_json::json!({"fields": {"a..b": {"fixed": "x"}}}),
            "fields.a..b: not a field path",
        ),
    ];
    for (plugin, params, expect) in cases {
        let e = load_builtin(plugin, params.clone(), FileGrants::default())
            .err()
            .unwrap_or_else(|| panic!("{plugin} took {params}"));
        assert!(matches!(e, RuntimeError::Init { .. }), "{e}");
        let text = e.to_string();
        assert!(
            text.contains(expect),
            "{plugin}: expected `{expect}` in {text}"
        );
        if expect.ends_with(": ") {
            assert!(text.contains("at position"), "{plugin}: {text}");
        }
    }
}

#[test]
fn builtin_project_enrich_and_mask_run_in_the_sandbox() {
    let n = 6;
    // project: exactly the hash's columns, through the manifest's `select`.
    let mut project = load_builtin(
        "project",
        serde_json::json!({"select": "{key: id, double: amount * `2`}"}),
        FileGrants::default(),
    )
    .unwrap();
    assert_eq!(
        project.manifest().select,
        Some(vec!["key".into(), "double".into()])
    );
    let out = project.call(&batch(n, 1)).unwrap();
    assert_eq!(names(&out.batch), ["key", "double"]);
    // enrich: the table comes through the file grant, read by the guest with `weir.read_file`.
    let table = "id,label\n1,one\n3,three\n".as_bytes().to_vec();
    let mut enrich = load_builtin(
        "enrich",
        serde_json::json!({"table": "labels", "on": "id", "key": "id"}),
        FileGrants::from_bytes([("labels".to_string(), table)]),
    )
    .unwrap();
    let out = enrich.call(&batch(n, 1)).unwrap();
    let label = out.batch.column_by_name("label").unwrap();
    let label = label.as_any().downcast_ref::<StringArray>().unwrap();
    let labels: Vec<Option<&str>> = label.iter().collect();
    assert_eq!(labels, [None, Some("one"), None, Some("three"), None, None]);
    // Without the grant, enrich is refused at init, naming the file.
    let e = load_builtin(
        "enrich",
        serde_json::json!({"table": "labels", "on": "id", "key": "id"}),
        FileGrants::default(),
    )
    .err()
    .unwrap();
    assert!(e.to_string().contains("no file `labels` is granted"), "{e}");
    // mask: a string column, hashed in place.
    let mut mask = load_builtin(
        "mask",
        serde_json::json!({"fields": {"text": {"fixed": "***"}}}),
        FileGrants::default(),
    )
    .unwrap();
    let out = mask.call(&batch(n, 5)).unwrap();
    let text = out.batch.column_by_name("text").unwrap();
    let text = text.as_any().downcast_ref::<StringArray>().unwrap();
    assert!(text.iter().all(|v| v == Some("***")));
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
        ..Limits::default()
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
            &serde_json::json!({"where": "id < `2`"}),
            FileGrants::default(),
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
            &serde_json::json!({"where": "id == `3`"}),
            FileGrants::default(),
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

/// A hand-written guest that imports `weir.read_file` as `$read_file` and is granted `files`.
/// `checks` run in `weir_transform`, which then answers "no change": each check traps
/// (`unreachable`) when the import does not do what the ABI says.
fn reading_guest(rt: &Runtime, checks: &str, files: FileGrants) -> Instance {
    let answer = empty_answer(2);
    let body = format!("{checks} {}", answer_ptr(answer.len()));
    let wat = wat_guest(&body, &answer).replace(
        r#"(import "weir" "log""#,
        r#"(import "weir" "read_file" (func $read_file (param i32 i32 i32 i32) (result i64)))
  (import "weir" "log""#,
    );
    rt.compile("reader", wat.as_bytes())
        .unwrap()
        .instantiate("route", &serde_json::json!({}), files)
        .unwrap()
}

/// `read_file(name at 48, len 2, dst, cap)` must return `expect`, else the guest traps.
fn read_check(dst: &str, cap: &str, expect: i64) -> String {
    format!(
        "(if (i64.ne (call $read_file (i32.const 48) (i32.const 2) (i32.const {dst}) (i32.const {cap})) (i64.const {expect})) (then unreachable))"
    )
}

fn fx_grant() -> FileGrants {
    FileGrants::from_bytes([("fx".to_string(), b"EUR,0.5\n".to_vec())])
}

/// Stores the name `fx` at 48.
const NAME_FX: &str = "(i32.store16 (i32.const 48) (i32.const 0x7866))";
/// Stores the name `no` at 48.
const NAME_NO: &str = "(i32.store16 (i32.const 48) (i32.const 0x6f6e))";

#[test]
fn read_file_gives_granted_files_only() {
    let rt = runtime();
    // The bytes "EUR,0.5\n" as a little-endian i64.
    let fx = 0x0a35_2e30_2c52_5545_i64;
    let checks = [
        NAME_FX.to_string(),
        "(i64.store (i32.const 8192) (i64.const 0))".into(),
        // The size, with no room given; then a buffer one byte short: the size, nothing written.
        read_check("0", "0", 8),
        read_check("8192", "7", 8),
        "(if (i64.ne (i64.load (i32.const 8192)) (i64.const 0)) (then unreachable))".into(),
        // Room: the bytes.
        read_check("8192", "8", 8),
        format!("(if (i64.ne (i64.load (i32.const 8192)) (i64.const {fx})) (then unreachable))"),
        // A name the config does not grant.
        NAME_NO.to_string(),
        read_check("8192", "8", -1),
    ];
    let mut inst = reading_guest(&rt, &checks.join("\n"), fx_grant());
    // Every call sees the file.
    inst.call(&batch(2, 1)).unwrap();
    inst.call(&batch(2, 1)).unwrap();
    // With no grant at all, `fx` is not there either.
    let mut inst = reading_guest(
        &rt,
        &format!("{NAME_FX} {}", read_check("0", "0", -1)),
        FileGrants::default(),
    );
    inst.call(&batch(2, 1)).unwrap();
}

#[test]
fn read_file_with_ranges_outside_memory_traps_and_the_host_goes_on() {
    let rt = runtime();
    // Memory is 4 pages (262144 bytes).
    let cases = [
        // The destination runs past the end.
        format!("{NAME_FX} {}", read_check("262140", "8", 8)),
        // The name starts beyond memory, or wraps around the address space.
        "(drop (call $read_file (i32.const 300000) (i32.const 2) (i32.const 0) (i32.const 0)))"
            .into(),
        "(drop (call $read_file (i32.const -1) (i32.const 2) (i32.const 0) (i32.const 0)))".into(),
        "(drop (call $read_file (i32.const 48) (i32.const -1) (i32.const 0) (i32.const 0)))".into(),
        // A huge capacity (negative as i32) with a destination near the end.
        format!("{NAME_FX} {}", read_check("262143", "-1", 8)),
    ];
    for checks in cases {
        let mut inst = reading_guest(&rt, &checks, fx_grant());
        let e = inst.call(&batch(2, 1)).unwrap_err();
        assert!(matches!(e, TransformFailure::Trap(_)), "{checks}: {e}");
        assert!(e.to_string().contains("outside the guest's"), "{e}");
    }
    // The host is unhurt: a well-behaved guest still reads its file.
    let mut inst = reading_guest(
        &rt,
        &format!("{NAME_FX} {}", read_check("8192", "8", 8)),
        fx_grant(),
    );
    inst.call(&batch(2, 1)).unwrap();
}

#[test]
fn granted_files_are_read_relative_to_the_config_and_capped() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("fx.csv"), "EUR,0.5\n").unwrap();
    let files: std::collections::BTreeMap<String, std::path::PathBuf> =
        [("fx".to_string(), "fx.csv".into())].into();
    let grants = FileGrants::read("builtin:enrich", &files, dir.path()).unwrap();
    let rt = runtime();
    let mut inst = reading_guest(
        &rt,
        &format!("{NAME_FX} {}", read_check("0", "0", 8)),
        grants,
    );
    inst.call(&batch(2, 1)).unwrap();
    let missing: std::collections::BTreeMap<String, std::path::PathBuf> =
        [("fx".to_string(), "nope.csv".into())].into();
    let e = FileGrants::read("builtin:enrich", &missing, dir.path()).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("plugin builtin:enrich: file `fx`: "),
        "{e}"
    );
    let big = std::fs::File::create(dir.path().join("big.bin")).unwrap();
    big.set_len(MAX_FILE_BYTES + 1).unwrap();
    let big: std::collections::BTreeMap<String, std::path::PathBuf> =
        [("fx".to_string(), "big.bin".into())].into();
    let e = FileGrants::read("p", &big, dir.path()).unwrap_err();
    assert!(e.to_string().contains("256 MiB"), "{e}");
}

/// A batch for `builtin:misbehave`: one row per (behaviour, arg), plus an `ok` row.
fn behaviours(rows: &[(&str, Option<i64>)]) -> RecordBatch {
    let b: ArrayRef = Arc::new(StringArray::from_iter_values(
        rows.iter().map(|r| r.0).chain(["ok"]),
    ));
    let a: ArrayRef = Arc::new(Int64Array::from_iter(
        rows.iter().map(|r| r.1).chain([None]),
    ));
    RecordBatch::try_from_iter(vec![("behaviour", b), ("arg", a)]).unwrap()
}

fn misbehave(limits: Option<Limits>) -> Instance {
    let mut plugin = builtin_plugin("misbehave").unwrap();
    if let Some(l) = limits {
        plugin = plugin.with_limits(l);
    }
    plugin
        .instantiate("r", &serde_json::json!({}), FileGrants::default())
        .unwrap()
}

/// Every way `builtin:misbehave` can fail a call fails that call only: the same instance
/// answers the next batch (re-instantiated after a trap or a timeout).
#[test]
fn each_misbehaviour_fails_its_call_and_the_next_call_works() {
    let mut inst = misbehave(None);
    let cases: [(&str, Option<i64>, &str); 6] = [
        ("panic", None, "trapped"),
        ("loop", None, "time budget"),
        ("alloc", Some(1 << 30), "trapped"),
        ("bad_pointer", None, "bad output"),
        ("fail", None, "batch asked to fail"),
        ("huge", Some(100 << 20), "trapped"),
    ];
    for (behaviour, arg, expect) in cases {
        let e = inst
            .call(&behaviours(&[(behaviour, arg)]))
            .err()
            .unwrap_or_else(|| panic!("{behaviour} passed"));
        assert!(e.to_string().contains(expect), "{behaviour}: {e}");
        let ok = inst.call(&behaviours(&[])).unwrap();
        assert_eq!(ok.batch.num_rows(), 1, "after {behaviour}");
    }
    // A row that fails alone leaves the others; a slow call within budget and a log flood pass.
    let out = inst
        .call(&behaviours(&[
            ("error", None),
            ("spin", Some(1)),
            ("log", Some(20_000)),
        ]))
        .unwrap();
    assert_eq!(out.batch.num_rows(), 3);
    assert_eq!(out.errors.len(), 1);
    assert!(out.errors[0].1.contains("row asked to fail"));
}

#[test]
fn answers_over_max_output_are_refused_before_they_are_copied() {
    let limits = Limits {
        max_output: 1 << 20,
        ..runtime().limits().clone()
    };
    let mut inst = misbehave(Some(limits));
    let e = inst
        .call(&behaviours(&[("huge", Some(2 << 20))]))
        .unwrap_err();
    assert!(
        e.to_string().contains("over max_output (1048576 bytes)"),
        "{e}"
    );
    let ok = inst.call(&behaviours(&[("huge", Some(1000))])).unwrap();
    assert_eq!(ok.batch.num_rows(), 2);
}

#[test]
fn per_transform_limits_replace_the_runtime_defaults() {
    let rt = runtime();
    let o = crate::config::LimitsOverride {
        time_budget: Some(Duration::from_secs(5)),
        memory_limit: None,
        max_output: Some(4096),
    };
    let l = rt.limits().overridden(&o);
    assert_eq!(l.time_budget, Duration::from_secs(5));
    assert_eq!(l.memory_limit, 64 << 20);
    assert_eq!(l.max_output, 4096);
    // 500M spins take longer than the 200ms default budget, not than 30s.
    let mut slow = misbehave(None);
    let e = slow.call(&behaviours(&[("spin", Some(500))])).unwrap_err();
    assert!(matches!(e, TransformFailure::Timeout(_)), "{e}");
    let mut patient = misbehave(Some(Limits {
        time_budget: Duration::from_secs(30),
        ..l
    }));
    patient.call(&behaviours(&[("spin", Some(500))])).unwrap();
}

#[test]
fn compilation_over_its_time_cap_is_refused() {
    let rt = Runtime::new(
        Limits {
            compile_timeout: Duration::from_nanos(1),
            ..Limits::default()
        },
        None,
    )
    .unwrap();
    let e = rt.load("builtin:filter", Path::new(".")).err().unwrap();
    assert!(e.to_string().contains("compile_timeout"), "{e}");
}

/// A route's chain takes the rows a filter drops once, at the end, and each stage gets only
/// what it reads of the rows still there (a list it takes the length of, without elements): the
/// result, the failed rows and the records they trace back to are what each stage alone gives.
#[test]
fn a_chain_takes_rows_once_and_traces_failures_to_their_records() {
    use arrow_array::cast::AsArray;
    use arrow_array::types::Int64Type;
    let n = 8;
    let x: ArrayRef = Arc::new(Int64Array::from_iter(
        (0..n as i64).map(|i| (i != 3 && i != 6).then_some(-i)),
    ));
    // Row 4 has no tags; the others have `i % 3 + 1`.
    let tags: ArrayRef = Arc::new(
        arrow_array::ListArray::from_iter_primitive::<Int64Type, _, _>(
            (0..n as i64).map(|i| Some((0..if i == 4 { 0 } else { i % 3 + 1 }).map(Some))),
        ),
    );
    let base = batch(n, 1);
    let input = RecordBatch::try_from_iter(
        base.schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .zip(base.columns().iter().cloned())
            .chain([("x".to_string(), x), ("tags".to_string(), tags)]),
    )
    .unwrap();
    let stage = |name: &str, params: serde_json::Value| {
        load_builtin(name, params, FileGrants::default()).unwrap()
    };
    let mut stages = vec![
        stage("filter", serde_json::json!({"where": "amount >= `2`"})),
        // `abs(null)` fails: rows 3 and 6 fail alone.
        stage(
            "project",
            serde_json::json!({"select": "{id: id, ax: abs(x), n: length(tags)}"}),
        ),
        stage("filter", serde_json::json!({"where": "n > `0`"})),
    ];
    assert_eq!(stages[1].manifest().lengths, Some(vec!["tags".to_string()]));
    let records: Vec<u32> = (100..100 + n as u32).collect();
    let Ok(out) = crate::route::run_chain(&mut stages, input, &records) else {
        panic!("the chain failed");
    };
    assert_eq!(names(&out.batch), ["id", "ax", "n"]);
    let column = |name: &str| -> Vec<i64> {
        let c = out.batch.column_by_name(name).unwrap();
        let c = arrow_cast::cast(c, &arrow_schema::DataType::Int64).unwrap();
        c.as_primitive::<Int64Type>().values().to_vec()
    };
    assert_eq!(column("id"), [2, 5, 7]);
    assert_eq!(column("ax"), [2, 5, 7]);
    assert_eq!(column("n"), [3, 3, 2]);
    let failed: Vec<(u32, &str)> = out
        .row_errors
        .iter()
        .map(|(record, plugin, _)| (*record, plugin.as_str()))
        .collect();
    assert_eq!(failed, [(103, "builtin:project"), (106, "builtin:project")]);
    assert!(
        out.row_errors[0].2.contains("abs()"),
        "{}",
        out.row_errors[0].2
    );
    assert_eq!(out.filtered, 3, "rows 0 and 1, then row 4");
}
