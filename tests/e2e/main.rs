//! End-to-end tests: `weir` runs as a child process against a mock Kafka cluster that lives in
//! the test process; every produced message is accounted for by key.

// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used)]

mod assemblyscript;
mod authoring;
mod avro;
mod delta;
mod faults;
mod harness;
mod metrics;
mod plugins;
mod protobuf;
mod registry;
mod registry_server;
mod sandbox;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::Duration;

use harness::*;

/// A generated input and what must become of each message.
struct Input {
    messages: Vec<(String, String, Vec<u8>)>,
    big_orders: BTreeSet<String>,
    small_orders: BTreeSet<String>,
    payments: BTreeSet<String>,
    /// Bad or unrouted messages: key -> original bytes.
    dead: BTreeMap<String, Vec<u8>>,
}

/// `n` messages: orders (amount above or below 100), payments, and every 40th a bad one
/// (wrong type, truncated, empty, not an object, or a type no route matches).
fn input(n: usize, with_bad: bool) -> Input {
    let mut i = Input {
        messages: Vec::new(),
        big_orders: BTreeSet::new(),
        small_orders: BTreeSet::new(),
        payments: BTreeSet::new(),
        dead: BTreeMap::new(),
    };
    for k in 0..n {
        let key = format!("m-{k}");
        let (topic, value) = if with_bad && k % 40 == 39 {
            let (topic, value): (&str, Vec<u8>) = match (k / 40) % 5 {
                0 => (
                    "orders",
                    format!(r#"{{"id":"{key}","amount":"lots"}}"#).into_bytes(),
                ),
                1 => (
                    "orders",
                    format!(r#"{{"id":"{key}","amount":1"#).into_bytes(),
                ),
                2 => ("payments", Vec::new()),
                3 => ("payments", b"[1,2,3]".to_vec()),
                _ => ("misc", format!(r#"{{"id":"{key}"}}"#).into_bytes()),
            };
            i.dead.insert(key.clone(), value.clone());
            (topic, value)
        } else if k % 3 == 2 {
            i.payments.insert(key.clone());
            (
                "payments",
                format!(r#"{{"id":"{key}","amount":{k}.25}}"#).into_bytes(),
            )
        } else {
            let amount = (k * 37 % 200) as f64 + 0.5;
            if amount > 100.0 {
                i.big_orders.insert(key.clone());
            } else {
                i.small_orders.insert(key.clone());
            }
            let tier = ["free", "gold"][k % 2];
            (
                "orders",
                format!(r#"{{"id":"{key}","amount":{amount},"customer":{{"tier":"{tier}"}}}}"#)
                    .into_bytes(),
            )
        };
        i.messages.push((topic.to_string(), key, value));
    }
    i
}

/// Every expected key was seen at least once (duplicates are allowed: at-least-once).
fn assert_none_lost(what: &str, expected: &BTreeSet<String>, seen: &BTreeMap<String, usize>) {
    let missing: Vec<&String> = expected.iter().filter(|k| !seen.contains_key(*k)).collect();
    assert!(
        missing.is_empty(),
        "{} {what} lost, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
}

fn once(keys: &BTreeSet<String>) -> BTreeMap<String, usize> {
    keys.iter().map(|k| (k.clone(), 1)).collect()
}

#[test]
fn every_message_is_accounted_for_by_key() {
    let cluster = Cluster::new(&TOPICS);
    let work = Workdir::new();
    let out = work.path().join("orders");
    let cfg = work.write_config(&config(&cluster.brokers(), &out, Some("2s")));
    let input = input(6000, true);
    cluster.produce(&input.messages);

    let mut child = work.spawn(&cfg, 1);
    let status = work.wait(&mut child, 1, Duration::from_secs(120));
    assert!(status.success(), "weir failed\n{}", work.logs(1));

    // Orders above 100 are in Parquet, exactly once each; the others were filtered.
    assert_eq!(
        parquet_column(&out, "id"),
        once(&input.big_orders),
        "{}",
        work.logs(1)
    );
    // Payments are on the sink topic, keyed by id, exactly once each.
    let sunk = cluster.read_topic("payments-clean", input.payments.len());
    assert_eq!(keys(&sunk), once(&input.payments));
    let row: serde_json::Value = serde_json::from_slice(&sunk[0].value).unwrap();
    assert_eq!(
        row["_topic"], "payments",
        "metadata columns travel with the rows: {row}"
    );
    // Bad and unrouted messages are dead letters with their original bytes and a reason.
    let dead = cluster.read_topic("weir-dlq", input.dead.len());
    assert_eq!(keys(&dead), once(&input.dead.keys().cloned().collect()));
    for d in &dead {
        let key = d.key.clone().unwrap();
        assert_eq!(&d.value, &input.dead[&key], "original bytes of {key}");
        assert!(!d.headers["weir.error"].is_empty());
        let stage = d.headers["weir.stage"].as_str();
        assert!(stage == "decode" || stage == "route", "{stage}");
        assert!(d.headers.contains_key("weir.offset"));
    }
    let unrouted = dead
        .iter()
        .filter(|d| d.headers["weir.stage"] == "route")
        .count();
    assert_eq!(
        unrouted,
        input.dead.len() / 5,
        "the misc messages have no route"
    );

    // The summary agrees, and every offset is committed.
    let s = work.summary(1);
    assert_eq!(s["consumed"], input.messages.len());
    let big = &s["routes"][0];
    assert_eq!(big["filtered"], input.small_orders.len());
    assert_eq!(big["rows_out"], input.big_orders.len());
    let committed = work.committed_total(1);
    assert_eq!(committed, input.messages.len() as i64);

    // An independent reader (pyarrow) reads the files as standard Parquet.
    let checked = pyarrow_read(&out, &[]);
    assert_eq!(checked["rows"], input.big_orders.len());
    let ids: BTreeSet<String> = checked["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, input.big_orders);
    assert!(
        checked["schema"]
            .as_str()
            .unwrap()
            .contains("customer: struct<tier: string>"),
        "{checked}"
    );

    // A restart finds everything committed: it reads nothing again.
    let mut child = work.spawn(&cfg, 2);
    assert!(
        work.wait(&mut child, 2, Duration::from_secs(120)).success(),
        "{}",
        work.logs(2)
    );
    assert_eq!(work.summary(2)["consumed"], 0, "{}", work.logs(2));
}

#[test]
fn a_worker_killed_mid_run_and_restarted_loses_nothing() {
    let cluster = Cluster::new(&TOPICS);
    let work = Workdir::new();
    let out = work.path().join("orders");
    let input = input(24_000, false);
    // Produce while consuming (the mock cluster keeps little backlog), about 3000 msg/s.
    let producer = cluster.produce_paced(input.messages.clone(), 200, Duration::from_millis(100));
    let killed = work.write_config(&config(&cluster.brokers(), &out, None));
    // Each run joins the group (behind the last one's ghost member), works a while, and is killed.
    for (run, after) in [(1, 6_000), (2, 10_000)] {
        let mut child = work.spawn(&killed, run);
        std::thread::sleep(Duration::from_millis(after));
        child.kill().unwrap(); // SIGKILL: no flush, no commit
        child.wait().unwrap();
    }
    producer.join().unwrap();
    let last = work.write_config(&config(&cluster.brokers(), &out, Some("2s")));
    let mut child = work.spawn(&last, 3);
    assert!(
        work.wait(&mut child, 3, Duration::from_secs(120)).success(),
        "{}",
        work.logs(3)
    );

    let consumed_last = work.summary(3)["consumed"].as_u64().unwrap();
    assert!(
        consumed_last < input.messages.len() as u64,
        "the last run resumed from committed offsets (consumed {consumed_last})"
    );
    let ids = parquet_column(&out, "id");
    assert_none_lost("orders", &input.big_orders, &ids);
    assert!(
        ids.keys().all(|k| input.big_orders.contains(k)),
        "only big orders in Parquet"
    );
    let sunk = keys(&cluster.read_topic("payments-clean", input.payments.len()));
    assert_none_lost("payments", &input.payments, &sunk);
    let dup_orders: usize = ids.values().map(|n| n - 1).sum();
    let dup_payments: usize = sunk.values().map(|n| n - 1).sum();
    eprintln!(
        "after 2 kills: lost 0; duplicated {dup_orders} orders and {dup_payments} payments (at-least-once); last run consumed {consumed_last}"
    );
}

#[test]
fn sigterm_drains_flushes_and_commits() {
    let cluster = Cluster::new(&TOPICS);
    let work = Workdir::new();
    let out = work.path().join("orders");
    let input = input(3000, false);
    cluster.produce(&input.messages);
    let cfg = work.write_config(
        &config(&cluster.brokers(), &out, None).replace("max_age: 1s", "max_age: 1h"),
    );
    let mut child = work.spawn(&cfg, 1);
    // Wait until the worker has read everything (the open Parquet file holds the orders).
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while cluster
        .read_topic("payments-clean", input.payments.len())
        .len()
        < input.payments.len()
    {
        assert!(std::time::Instant::now() < deadline, "{}", work.logs(1));
    }
    assert!(
        parquet_files(&out).is_empty(),
        "the file is still open (max_age 1h)"
    );
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let status = work.wait(&mut child, 1, Duration::from_secs(30));
    assert!(status.success(), "exit 0 on SIGTERM\n{}", work.logs(1));
    assert_eq!(
        parquet_column(&out, "id"),
        once(&input.big_orders),
        "flushed on shutdown"
    );
    let committed = work.committed_total(1);
    assert_eq!(
        committed,
        input.messages.len() as i64,
        "committed on shutdown"
    );
}

#[test]
fn validate_checks_config_and_plugins_without_connecting() {
    let weir = env!("CARGO_BIN_EXE_weir");
    let demo = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/demo.yaml");
    let ok = Command::new(weir)
        .args(["validate", "--config", demo])
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("valid"));

    let work = Workdir::new();
    let good = config("127.0.0.1:1", &work.path().join("o"), None);
    let cases = [
        (
            good.replace("group_id: weir-e2e", "group_id: weir-e2e\n    bacth: {}"),
            vec!["bacth", "line 5", "source.kafka"],
        ),
        (
            good.replace("amount > `100`", "amount >> `100`"),
            vec![
                "plugin builtin:filter",
                "init failed",
                "where: ",
                "at position 8",
                "amount >> `100`\n",
            ],
        ),
        (
            good.replace(
                "      - plugin: builtin:filter\n",
                "      - plugin: builtin:filter\n        files: { fx: ./no-such.csv }\n",
            ),
            vec!["routes[0].transforms[0].files.fx", "no-such.csv"],
        ),
        (
            good.replace("match: orders", "match: '(orders'"),
            vec!["routes[0].match"],
        ),
    ];
    for (yaml, expect) in cases {
        let path = work.write_config(&yaml);
        let out = Command::new(weir)
            .args(["validate", "--config"])
            .arg(&path)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        for e in expect {
            assert!(err.contains(e), "expected `{e}` in:\n{err}");
        }
    }
}

/// Reads a Parquet folder with pyarrow (installed by tests/run.sh into tests/.venv), and the
/// values of `columns` in each row (`records`).
pub(crate) fn pyarrow_read(dir: &std::path::Path, columns: &[&str]) -> serde_json::Value {
    let mut args = vec![dir.display().to_string()];
    args.extend((!columns.is_empty()).then(|| columns.join(",")));
    let out = python_script("read_parquet.py", &args);
    assert!(
        out.status.success(),
        "pyarrow could not read the output (tests/run.sh installs pyarrow):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A guest that fails every batch: a minimal module, written against guest-sdk/ABI.md alone.
const FAILING_GUEST: &str = r#"(module
  (memory (export "memory") 64)
  (data (i32.const 16) "{}")
  (data (i32.const 32) "payments are refused today")
  (func (export "weir_abi_version") (result i32) (i32.const 1))
  (func (export "weir_alloc") (param $len i32) (result i32) (i32.const 1024))
  (func (export "weir_free") (param i32 i32))
  (func (export "weir_init") (param i32 i32) (result i64) (i64.const 0x0000001000000002))
  (func (export "weir_transform") (param i32 i32) (result i64) (i64.const -1))
  (func (export "weir_last_error") (result i64) (i64.const 0x000000200000001a)))"#;

#[test]
fn a_failing_user_plugin_dead_letters_its_batches_and_other_routes_flow() {
    let cluster = Cluster::new(&TOPICS);
    let work = Workdir::new();
    let out = work.path().join("orders");
    std::fs::write(work.path().join("refuse.wat"), FAILING_GUEST).unwrap();
    let yaml = config(&cluster.brokers(), &out, Some("2s")).replace(
        "    match: payments\n",
        "    match: payments\n    transforms:\n      - plugin: ./refuse.wat\n",
    );
    let cfg = work.write_config(&yaml);
    let input = input(1500, false);
    cluster.produce(&input.messages);
    let mut child = work.spawn(&cfg, 1);
    assert!(
        work.wait(&mut child, 1, Duration::from_secs(120)).success(),
        "{}",
        work.logs(1)
    );

    let dead = cluster.read_topic("weir-dlq", input.payments.len());
    assert_eq!(
        keys(&dead),
        once(&input.payments),
        "every payment dead-lettered, once"
    );
    for d in &dead {
        assert_eq!(d.headers["weir.stage"], "transform");
        assert_eq!(d.headers["weir.plugin"], "./refuse.wat");
        assert_eq!(d.headers["weir.route"], "payments");
        assert!(
            d.headers["weir.error"].contains("payments are refused today"),
            "{:?}",
            d.headers
        );
    }
    assert_eq!(
        parquet_column(&out, "id"),
        once(&input.big_orders),
        "the orders route kept flowing"
    );
    assert_eq!(work.committed_total(1), input.messages.len() as i64);
}

/// `weir eval` as a user runs it: documents on stdin, one result per line, exit codes 0, 1, 2.
#[test]
fn eval_prints_results_and_exits_by_outcome() {
    use std::io::Write as _;
    let run = |args: &[&str], input: &str| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_weir"))
            .arg("eval")
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.code(),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    let docs = "{\"amount\": 150, \"items\": [{\"sku\": \"a\", \"qty\": 2}, {\"sku\": \"b\", \"qty\": 1}]}\n{\"amount\": 5, \"items\": []}\n";
    let (code, out, _) = run(&["items[?qty > `1`].sku"], docs);
    assert_eq!((code, out.as_str()), (Some(0), "[\"a\"]\n[]\n"));
    let (code, out, _) = run(
        &["--arrow", "{big: amount > `100`, n: length(items)}"],
        docs,
    );
    assert_eq!(
        (code, out.as_str()),
        (Some(0), "{\"big\":true,\"n\":2}\n{\"big\":false,\"n\":0}\n")
    );
    // A document that fails: reported with its number, the others still printed, exit 1.
    let (code, out, err) = run(&["abs(amount)"], "{\"amount\": -2}\n{\"amount\": \"x\"}\n");
    assert_eq!((code, out.as_str()), (Some(1), "2\n"));
    assert!(err.contains("document 2: abs()"), "{err}");
    // An expression that does not parse: exit 2, with the position and a caret.
    let (code, _, err) = run(&["items[?qty >"], docs);
    assert_eq!(code, Some(2));
    assert!(err.contains("at position 12") && err.contains('^'), "{err}");
}
