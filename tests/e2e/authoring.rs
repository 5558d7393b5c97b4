//! The plugin authors' toolkit end to end: `weir new` projects in Rust and AssemblyScript build
//! as they are, pass their own tests and conformance, and run in a pipeline; `weir test` reads
//! JSON lines, Parquet and Avro samples, names failed rows, and writes what pyarrow reads back.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, RecordBatch, StringArray};

use crate::harness::Workdir;
use crate::pyarrow_read;

fn weir(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run weir")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[track_caller]
fn assert_ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: {}\n{}\n{}",
        out.status,
        stdout(out),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A command run in `dir` with the outer cargo's settings removed, so a nested build behaves
/// as it would in the user's shell.
fn clean_command(program: &str, dir: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.current_dir(dir);
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        if (key.starts_with("CARGO_") && key != "CARGO_HOME")
            || key.starts_with("RUSTC_")
            || key == "RUSTFLAGS"
        {
            cmd.env_remove(&key);
        }
    }
    cmd
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The scaffold's sample pipeline, shortened, then run; checks the orders' Parquet with pyarrow.
fn run_pipeline(project: &Path) {
    let config = project.join("pipeline.yaml");
    let yaml = std::fs::read_to_string(&config).expect("pipeline.yaml");
    std::fs::write(&config, yaml.replace("messages: 20000", "messages: 4000")).expect("write");
    let out = weir(
        &[
            "run",
            "--config",
            "pipeline.yaml",
            "--summary-json",
            "s.json",
        ],
        project,
    );
    assert_ok(&out, "weir run pipeline.yaml");
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(project.join("s.json")).expect("summary"))
            .expect("summary JSON");
    let routes = summary["routes"].as_array().expect("routes");
    let orders = routes
        .iter()
        .find(|r| r["name"] == "orders")
        .expect("orders route");
    assert_eq!(orders["messages_in"], 2000, "{summary}");
    let read = pyarrow_read(&project.join("out/orders"), &["amount", "amount_cents"]);
    assert_eq!(read["rows"], orders["rows_out"], "{summary}");
    assert!(read["rows"].as_u64().expect("rows") > 500, "{read}");
    for r in read["records"].as_array().expect("records") {
        let amount = r["amount"].as_f64().expect("amount");
        assert!(amount >= 100.0, "{r}");
        assert_eq!(
            r["amount_cents"].as_i64(),
            Some((amount * 100.0).round() as i64)
        );
    }
}

/// The conformance checks of `weir test`, all passing on the project's own sample.
fn conformant(plugin: &Path, project: &Path) {
    let plugin = plugin.to_str().expect("UTF-8 path");
    let out = weir(
        &[
            "test",
            "--conformance",
            "--plugin",
            plugin,
            "--params",
            r#"{"min_amount": 100}"#,
            "--input",
            "sample.jsonl",
        ],
        project,
    );
    assert_ok(&out, "weir test --conformance");
    assert!(
        stdout(&out).contains(", 0 warnings, 0 failed"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn a_new_rust_plugin_builds_tests_and_runs_in_a_pipeline() {
    let work = Workdir::new();
    assert_ok(&weir(&["new", "my-filter"], work.path()), "weir new");
    let project = work.path().join("my-filter");
    // The workspace's lock file: the same versions as weir's own build, already downloaded.
    std::fs::copy(workspace().join("Cargo.lock"), project.join("Cargo.lock")).expect("lock");
    let target = workspace().join("target/scaffold");
    for args in [&["wasm", "--offline"][..], &["test", "--offline"]] {
        let out = clean_command("cargo", &project)
            .args(args)
            .env("CARGO_TARGET_DIR", &target)
            .output()
            .expect("cargo");
        assert_ok(&out, &format!("cargo {}", args[0]));
    }
    let wasm = target.join("wasm32-unknown-unknown/release/my_filter.wasm");
    let out = weir(
        &[
            "test",
            "--plugin",
            wasm.to_str().expect("UTF-8"),
            "--params",
            r#"{"min_amount": 100}"#,
            "--input",
            "sample.jsonl",
            "--expect",
            "tests/expected.jsonl",
        ],
        &project,
    );
    assert_ok(&out, "weir test --expect");
    assert!(
        stdout(&out).contains("all 2 rows match"),
        "{}",
        stdout(&out)
    );
    conformant(&wasm, &project);
    // pipeline.yaml names the module where `cargo wasm` puts it by default.
    let local = project.join("target/wasm32-unknown-unknown/release");
    std::fs::create_dir_all(&local).expect("mkdir");
    std::fs::copy(&wasm, local.join("my_filter.wasm")).expect("copy");
    run_pipeline(&project);
}

#[test]
fn a_new_assemblyscript_plugin_builds_tests_and_runs_in_a_pipeline() {
    let work = Workdir::new();
    assert_ok(
        &weir(&["new", "--lang", "assemblyscript", "my-as"], work.path()),
        "weir new",
    );
    let project = work.path().join("my-as");
    let out = clean_command("npm", &project)
        .args(["install", "--no-audit", "--no-fund"])
        .output()
        .expect("npm (node 20 or later)");
    assert_ok(&out, "npm install");
    // `npm test` builds, then checks the output with `weir test --expect`: weir on the PATH.
    let bin = Path::new(env!("CARGO_BIN_EXE_weir"))
        .parent()
        .expect("bin dir");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = clean_command("npm", &project)
        .arg("test")
        .env("PATH", path)
        .output()
        .expect("npm test");
    assert_ok(&out, "npm test");
    assert!(
        stdout(&out).contains("all 2 rows match"),
        "{}",
        stdout(&out)
    );
    conformant(&project.join("build/my-as.wasm"), &project);
    run_pipeline(&project);
}

/// Orders where `bad` amounts are strings, so ``abs(amount) > `100` `` fails those rows.
const ORDERS: &str = r#"{"id": "a", "amount": 150.0}
{"id": "b", "amount": 50.0}

{"id": "c", "amount": -300.0}
{"id": "d", "amount": null}
"#;

#[test]
fn weir_test_shows_the_answer_names_failed_rows_and_writes_files() {
    let work = Workdir::new();
    let dir = work.path();
    std::fs::write(dir.join("orders.jsonl"), ORDERS).expect("write sample");
    std::fs::create_dir(dir.join("pq")).expect("mkdir");
    let params = r#"{"where": "abs(amount) > `100`"}"#;
    let out = weir(
        &[
            "test",
            "--plugin",
            "builtin:filter",
            "--params",
            params,
            "--input",
            "orders.jsonl",
            "--output",
            "pq/out.parquet",
        ],
        dir,
    );
    assert_ok(&out, "weir test");
    let text = stdout(&out);
    assert!(
        text.contains("rows: 4 in, 2 out, 1 filtered, 1 failed rows, 0 failed batches"),
        "{text}"
    );
    // Line 5 of the file (a blank line comes before it) is the fourth row.
    assert!(
        text.contains("row 4 (line 5): failed: where: abs(): argument 1 must be number, not null"),
        "{text}"
    );
    assert!(text.contains("| a  |"), "{text}");
    let read = pyarrow_read(&dir.join("pq"), &["id", "amount"]);
    assert_eq!(read["ids"], serde_json::json!(["a", "c"]), "{read}");

    // JSON lines out, then the same rows back in as --expect.
    let out = weir(
        &[
            "test",
            "--plugin",
            "builtin:filter",
            "--params",
            params,
            "--input",
            "orders.jsonl",
            "--output",
            "out.jsonl",
            "--expect",
            "orders.jsonl",
        ],
        dir,
    );
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("output row 2 differs"),
        "{}",
        stdout(&out)
    );
    let written = std::fs::read_to_string(dir.join("out.jsonl")).expect("out.jsonl");
    assert_eq!(written.lines().count(), 2, "{written}");
    let out = weir(
        &[
            "test",
            "--plugin",
            "builtin:filter",
            "--params",
            params,
            "--input",
            "orders.jsonl",
            "--expect",
            "out.jsonl",
        ],
        dir,
    );
    assert_ok(&out, "--expect what it wrote");
}

fn orders_batch() -> RecordBatch {
    let id: ArrayRef = Arc::new(StringArray::from(vec!["a", "b", "c"]));
    let amount: ArrayRef = Arc::new(Float64Array::from(vec![Some(150.0), Some(50.0), None]));
    RecordBatch::try_from_iter(vec![("id", id), ("amount", amount)]).expect("batch")
}

#[test]
fn weir_test_reads_parquet_and_avro_samples() {
    let work = Workdir::new();
    let dir = work.path();
    let batch = orders_batch();
    let file = std::fs::File::create(dir.join("orders.parquet")).expect("create");
    let mut writer =
        parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).expect("writer");
    writer.write(&batch).expect("write");
    writer.close().expect("close");
    let file = std::fs::File::create(dir.join("orders.avro")).expect("create");
    let mut writer =
        arrow_avro::writer::AvroWriter::new(file, batch.schema().as_ref().clone()).expect("avro");
    writer.write(&batch).expect("write");
    writer.finish().expect("finish");
    for input in ["orders.parquet", "orders.avro"] {
        let out = weir(
            &[
                "test",
                "--plugin",
                "builtin:filter",
                "--params",
                r#"{"where": "amount > `100`"}"#,
                "--input",
                input,
            ],
            dir,
        );
        assert_ok(&out, input);
        let text = stdout(&out);
        assert!(
            text.contains("rows: 3 in, 1 out, 2 filtered"),
            "{input}: {text}"
        );
        assert!(text.contains("| a  | 150.0  |"), "{input}: {text}");
    }
}

/// A guest that fails every batch, written against guest-sdk/ABI.md alone; its buffers are not
/// 8-byte aligned, which only the conformance checks notice.
const REFUSING_GUEST: &str = r#"(module
  (memory (export "memory") 2)
  (data (i32.const 16) "{}")
  (data (i32.const 32) "not today")
  (func (export "weir_abi_version") (result i32) (i32.const 1))
  (func (export "weir_alloc") (param $len i32) (result i32) (i32.const 1028))
  (func (export "weir_free") (param i32 i32))
  (func (export "weir_init") (param i32 i32) (result i64) (i64.const 0x0000001000000002))
  (func (export "weir_transform") (param i32 i32) (result i64) (i64.const -1))
  (func (export "weir_last_error") (result i64) (i64.const 0x0000002000000009))
)"#;

#[test]
fn weir_test_exit_codes() {
    let work = Workdir::new();
    let dir = work.path();
    std::fs::write(dir.join("orders.jsonl"), ORDERS).expect("write sample");
    std::fs::write(dir.join("refuse.wat"), REFUSING_GUEST).expect("write guest");
    let out = weir(
        &["test", "--plugin", "refuse.wat", "--input", "orders.jsonl"],
        dir,
    );
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out)
            .contains("batch of row 1 (line 1) to row 4 (line 5): failed: failed: not today"),
        "{}",
        stdout(&out)
    );
    // Bad params are refused at init, naming the position; a bad sample names its line.
    let out = weir(
        &[
            "test",
            "--plugin",
            "builtin:filter",
            "--params",
            r#"{"where": "amount >"}"#,
            "--input",
            "orders.jsonl",
        ],
        dir,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("where:"),
        "{out:?}"
    );
    std::fs::write(dir.join("bad.jsonl"), "{\"id\": 1}\n{\"id\": \n").expect("write");
    let out = weir(
        &[
            "test",
            "--plugin",
            "builtin:filter",
            "--params",
            r#"{"where": "id"}"#,
            "--input",
            "bad.jsonl",
        ],
        dir,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("bad.jsonl: line 2:"),
        "{out:?}"
    );
    // Failing every batch cleanly is allowed on weir's default sample; misaligned buffers are not.
    let out = weir(&["test", "--conformance", "--plugin", "refuse.wat"], dir);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stdout(&out).contains("FAIL  alloc"), "{}", stdout(&out));
}
