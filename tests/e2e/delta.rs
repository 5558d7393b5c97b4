//! The Delta sink end to end: exactly once across kills and restarts, several tables from one
//! route, racing workers creating the same table, and schema evolution; every table is read
//! back by the Python `deltalake` package (delta-rs's binding, installed by tests/run.sh).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::harness::*;

/// Web-request events (about 300 bytes, like kafka-delta-ingest's fixture) and clicks.
fn events(from: usize, n: usize, with_referrer: bool) -> Vec<(String, String, Vec<u8>)> {
    (from..from + n)
        .map(|k| {
            let key = format!("e-{k}");
            if k % 4 == 3 {
                let referrer = if with_referrer {
                    format!(r#","referrer":"https://example.com/r/{k}""#)
                } else {
                    String::new()
                };
                let v = format!(r#"{{"id":"{key}","page":"/p/{}"{referrer}}}"#, k % 17);
                return ("clicks".to_string(), key, v.into_bytes());
            }
            let method = ["GET", "POST", "PUT"][k % 3];
            let v = format!(
                r#"{{"id":"{key}","method":"{method}","status":{},"path":"/api/v1/orders/{k}/items?expand=customer,lines","bytes":{},"agent":"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36","ts":"2026-11-23T10:{:02}:{:02}Z"}}"#,
                [200, 201, 404, 500][k % 4],
                k * 13 % 9000,
                k / 60 % 60,
                k % 60
            );
            ("events".to_string(), key, v.into_bytes())
        })
        .collect()
}

fn delta_config(brokers: &str, lake: &Path, extra: &str) -> String {
    format!(
        r#"source:
  kafka:
    brokers: "{brokers}"
    group_id: weir-delta
    topics: [events, clicks]
    batch: {{ max_records: 1000, max_wait: 50ms }}
    settings: {{ session.timeout.ms: "6000", heartbeat.interval.ms: "500" }}
{extra}decode:
  schemas:
    events: {{ fields: {{ id: utf8, method: utf8, status: int32, path: utf8, bytes: int64, agent: utf8, ts: utf8 }} }}
    clicks: {{ fields: {{ id: utf8, page: utf8 }} }}
routes:
  - name: lake
    match: ".*"
    sink:
      delta: {{ uri: "{lake}/{{type}}", max_latency: 300ms, partition_by: [] }}
errors:
  dead_letter: {{ kafka: {{ topic: weir-dlq }} }}
"#,
        lake = lake.display()
    )
}

/// [`delta_config`] for kafka-delta-ingest's shape: the `events` topic into one table.
fn one_table_config(brokers: &str, table: &Path, extra: &str) -> String {
    let lake = table.parent().unwrap();
    delta_config(brokers, lake, extra)
        .replace("topics: [events, clicks]", "topics: [events]")
        .replace(
            &format!("{}/{{type}}", lake.display()),
            &table.display().to_string(),
        )
}

/// The web-request events of [`events`], without the clicks.
fn events_only(n: usize) -> Vec<(String, String, Vec<u8>)> {
    events(0, n, false)
        .into_iter()
        .filter(|m| m.0 == "events")
        .collect()
}

/// Runs `weir delta ARGS`, which must succeed; returns its JSON report.
fn weir_delta(args: &[&str]) -> serde_json::Value {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_weir"))
        .arg("delta")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "weir delta {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// What the Python `deltalake` reader sees in a table.
fn read_table(table: &Path, txn: &[String]) -> serde_json::Value {
    read_table_at(&table.display().to_string(), txn, &[])
}

/// [`read_table`] for any table URI, with object-store options (`KEY=VALUE`).
fn read_table_at(uri: &str, txn: &[String], storage: &[String]) -> serde_json::Value {
    let mut args = vec![uri.to_string(), "--key".into(), "id".into()];
    for t in txn {
        args.push("--txn".into());
        args.push(t.clone());
    }
    for kv in storage {
        args.push("--storage".into());
        args.push(kv.clone());
    }
    let out = python_script("delta_check.py", &args);
    assert!(
        out.status.success(),
        "delta_check.py {uri}: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout[..out.stdout.len().min(400)])
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn counts(v: &serde_json::Value) -> BTreeMap<String, u64> {
    v["keys"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, n)| (k.clone(), n.as_u64().unwrap()))
        .collect()
}

fn keys_of(messages: &[(String, String, Vec<u8>)], topic: &str) -> BTreeSet<String> {
    messages
        .iter()
        .filter(|m| m.0 == topic)
        .map(|m| m.1.clone())
        .collect()
}

fn assert_exactly_once(table: &Path, expected: &BTreeSet<String>, logs: &str) -> serde_json::Value {
    assert_keys_once(
        read_table(table, &[]),
        &table.display().to_string(),
        expected,
        logs,
    )
}

/// Every expected key is in the table read back exactly once, and no other key.
fn assert_keys_once(
    v: serde_json::Value,
    table: &str,
    expected: &BTreeSet<String>,
    logs: &str,
) -> serde_json::Value {
    let got = counts(&v);
    let dup: Vec<_> = got.iter().filter(|(_, n)| **n > 1).take(5).collect();
    assert!(dup.is_empty(), "{table}: duplicated {dup:?}\n{logs}");
    let lost: Vec<_> = expected
        .iter()
        .filter(|k| !got.contains_key(*k))
        .take(5)
        .collect();
    assert!(lost.is_empty(), "{table}: lost {lost:?}\n{logs}");
    assert_eq!(got.len(), expected.len(), "{table}: unexpected keys");
    v
}

/// The operations of a table's history, oldest first.
fn operations(v: &serde_json::Value) -> Vec<&str> {
    v["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o.as_str().unwrap())
        .collect()
}

/// The number of commits in a table's log.
fn versions(table: &Path) -> usize {
    std::fs::read_dir(table.join("_delta_log"))
        .map(|d| {
            d.filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".json"))
            })
            .count()
        })
        .unwrap_or(0)
}

#[test]
fn delta_tables_hold_every_message_exactly_once_across_kills() {
    let cluster = Cluster::new(&["events", "clicks", "weir-dlq"]);
    let work = Workdir::new();
    let lake = work.path().join("lake");
    let input = events(0, 9000, false);
    // Produce while consuming (the mock cluster keeps little backlog).
    let producer = cluster.produce_paced(input.clone(), 50, Duration::from_millis(100));
    // The group never commits during a run (1 h interval): each restart reads everything again,
    // and only the offsets stored in the tables keep it from writing twice.
    let cfg = work.write_config(&delta_config(
        &cluster.brokers(),
        &lake,
        "    commit_interval: 1h\n",
    ));
    for run in 1..=2 {
        let mut child = work.spawn(&cfg, run);
        let deadline = Instant::now() + Duration::from_secs(60);
        let before = versions(&lake.join("events"));
        // Kill it once it has committed to the table at least twice more.
        while versions(&lake.join("events")) < before + 2 {
            assert!(Instant::now() < deadline, "no commits\n{}", work.logs(run));
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(150 * run as u64));
        child.kill().unwrap(); // SIGKILL: no flush, no commit
        child.wait().unwrap();
    }
    producer.join().unwrap();
    let last = work.write_config(&delta_config(
        &cluster.brokers(),
        &lake,
        "    commit_interval: 1h\n    until_idle: 3s\n",
    ));
    let mut child = work.spawn(&last, 3);
    assert!(
        work.wait(&mut child, 3, Duration::from_secs(180)).success(),
        "{}",
        work.logs(3)
    );
    let s = work.summary(3);
    let again = s["routes"][0]["already_written"].as_u64().unwrap();
    assert!(
        again > 0,
        "the last run read again what the killed runs had committed: {s}"
    );
    let logs = work.logs(3);
    let ev = assert_exactly_once(&lake.join("events"), &keys_of(&input, "events"), &logs);
    assert!(
        ev["schema"].as_str().unwrap().contains("status: int32"),
        "{ev}"
    );
    assert_exactly_once(&lake.join("clicks"), &keys_of(&input, "clicks"), &logs);
    // The tables' txn versions are the last offsets of each partition.
    let txns: Vec<String> = (0..PARTITIONS)
        .map(|p| format!("weir-delta-events-{p}"))
        .collect();
    let v = read_table(&lake.join("events"), &txns);
    let stored: i64 = v["txn"]
        .as_object()
        .unwrap()
        .values()
        .map(|o| o.as_i64().unwrap() + 1)
        .sum();
    assert_eq!(
        stored,
        input.iter().filter(|m| m.0 == "events").count() as i64,
        "txn versions cover every events offset: {v}"
    );
    eprintln!(
        "delta after 2 kills: lost 0, duplicated 0; the last run skipped {again} messages already in the tables"
    );
}

/// One route into one table (kafka-delta-ingest's shape): a restart starts each partition after
/// the offset its `txn` stores, not from the group's (older) committed offset.
#[test]
fn one_table_resumes_where_its_offsets_say() {
    let cluster = Cluster::new(&["events", "weir-dlq"]);
    let work = Workdir::new();
    let table = work.path().join("lake/events");
    let input = events_only(4000);
    let producer = cluster.produce_paced(input.clone(), 50, Duration::from_millis(200));
    let config = |extra: &str| {
        one_table_config(
            &cluster.brokers(),
            &table,
            &format!("    commit_interval: 1h\n{extra}"),
        )
    };
    let cfg = work.write_config(&config(""));
    let mut child = work.spawn(&cfg, 1);
    let deadline = Instant::now() + Duration::from_secs(60);
    while versions(&table) < 3 {
        assert!(Instant::now() < deadline, "no commits\n{}", work.logs(1));
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap(); // the group has committed nothing: only the table knows
    child.wait().unwrap();
    producer.join().unwrap();
    let cfg = work.write_config(&config("    until_idle: 3s\n"));
    let mut child = work.spawn(&cfg, 2);
    assert!(
        work.wait(&mut child, 2, Duration::from_secs(120)).success(),
        "{}",
        work.logs(2)
    );
    let logs = work.logs(2);
    assert!(
        logs.contains("resuming after what the sink has stored"),
        "{logs}"
    );
    let s = work.summary(2);
    assert_eq!(
        s["routes"][0]["already_written"], 0,
        "nothing the table held was read again: {s}"
    );
    assert_exactly_once(&table, &keys_of(&input, "events"), &logs);
}

#[test]
fn racing_workers_create_one_table_and_new_columns_are_added() {
    let cluster = Cluster::new(&["events", "clicks", "weir-dlq"]);
    let work = Workdir::new();
    let lake = work.path().join("lake");
    let first = events(0, 4000, false);
    cluster.produce(&first);
    // Two members of one group start at once: both may try to create each table.
    let cfg = work.write_config(&delta_config(
        &cluster.brokers(),
        &lake,
        "    until_idle: 3s\n",
    ));
    let mut a = work.spawn(&cfg, 1);
    let mut b = work.spawn(&cfg, 2);
    assert!(
        work.wait(&mut a, 1, Duration::from_secs(120)).success(),
        "{}",
        work.logs(1)
    );
    assert!(
        work.wait(&mut b, 2, Duration::from_secs(120)).success(),
        "{}",
        work.logs(2)
    );
    let logs = format!("{}\n{}", work.logs(1), work.logs(2));
    for topic in ["events", "clicks"] {
        let v = assert_exactly_once(&lake.join(topic), &keys_of(&first, topic), &logs);
        let ops = operations(&v);
        assert_eq!(ops[0], "CREATE TABLE", "{v}");
        assert!(
            ops[1..].iter().all(|o| *o == "STREAMING UPDATE"),
            "one creation only: {ops:?}"
        );
    }

    // Clicks gain a `referrer` field: the config says so, and the table gains the column.
    let second = events(4000, 2000, true);
    cluster.produce(&second);
    let evolved = delta_config(&cluster.brokers(), &lake, "    until_idle: 3s\n").replace(
        "clicks: { fields: { id: utf8, page: utf8 } }",
        "clicks: { fields: { id: utf8, page: utf8, referrer: utf8 } }",
    );
    let cfg = work.write_config(&evolved);
    let mut c = work.spawn(&cfg, 3);
    assert!(
        work.wait(&mut c, 3, Duration::from_secs(120)).success(),
        "{}",
        work.logs(3)
    );
    let all: Vec<_> = first.iter().chain(&second).cloned().collect();
    let v = assert_exactly_once(
        &lake.join("clicks"),
        &keys_of(&all, "clicks"),
        &work.logs(3),
    );
    assert!(
        v["schema"].as_str().unwrap().contains("referrer: string"),
        "{v}"
    );
}

/// moto's S3 server on 127.0.0.1 (tests/python/s3_server.py), stopped when dropped.
struct S3Server {
    child: std::process::Child,
    endpoint: String,
}

impl S3Server {
    fn start(bucket: &str) -> Self {
        use std::io::BufRead;
        let mut child = std::process::Command::new(python())
            .arg(python_script_path("s3_server.py"))
            .arg(bucket)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start tests/python/s3_server.py (tests/run.sh installs moto)");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("s3_server.py said {line:?}: {e}"));
        S3Server {
            child,
            endpoint: v["endpoint"].as_str().unwrap().to_string(),
        }
    }

    /// The object-store options for it, as `KEY=VALUE` (weir and Python deltalake alike).
    fn options(&self) -> Vec<String> {
        [
            ("AWS_ENDPOINT_URL", self.endpoint.as_str()),
            ("AWS_ALLOW_HTTP", "true"),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_REGION", "us-east-1"),
        ]
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn delta_on_s3_without_a_lock() {
    let s3 = S3Server::start("weir-lake");
    let cluster = Cluster::new(&["events", "clicks", "weir-dlq"]);
    let work = Workdir::new();
    let input = events(0, 3000, false);
    cluster.produce(&input);
    let options: String = s3
        .options()
        .iter()
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap();
            format!("{k}: \"{v}\", ")
        })
        .collect();
    // Two members of one group write the same tables at once: the table's creation and every
    // commit are settled by S3's conditional put (If-None-Match), with no lock service.
    let cfg = delta_config(
        &cluster.brokers(),
        Path::new("s3://weir-lake/lake"),
        "    until_idle: 3s\n",
    )
    .replace(
        "partition_by: [] }",
        &format!("partition_by: [], storage_options: {{ {options}}} }}"),
    );
    let cfg = work.write_config(&cfg);
    let mut a = work.spawn(&cfg, 1);
    let mut b = work.spawn(&cfg, 2);
    for (child, run) in [(&mut a, 1), (&mut b, 2)] {
        assert!(
            work.wait(child, run, Duration::from_secs(120)).success(),
            "{}",
            work.logs(run)
        );
    }
    let logs = format!("{}\n{}", work.logs(1), work.logs(2));
    for topic in ["events", "clicks"] {
        let uri = format!("s3://weir-lake/lake/{topic}");
        let v = read_table_at(&uri, &[], &s3.options());
        let v = assert_keys_once(v, &uri, &keys_of(&input, topic), &logs);
        let ops = operations(&v);
        assert_eq!(ops[0], "CREATE TABLE", "{v}");
        assert!(ops[1..].iter().all(|o| *o == "STREAMING UPDATE"), "{ops:?}");
    }
    // The maintenance commands work on S3 as well.
    let storage: Vec<String> = s3
        .options()
        .into_iter()
        .flat_map(|kv| ["--storage".to_string(), kv])
        .collect();
    let mut args = vec!["optimize", "s3://weir-lake/lake/events"];
    args.extend(storage.iter().map(String::as_str));
    weir_delta(&args);
    let v = read_table_at("s3://weir-lake/lake/events", &[], &s3.options());
    assert_keys_once(
        v.clone(),
        "optimized events",
        &keys_of(&input, "events"),
        "",
    );
    assert_eq!(operations(&v).last(), Some(&"OPTIMIZE"), "{v}");
}

/// kafka-delta-ingest's promise against a real Kafka-protocol broker (Tansu): a worker killed
/// (SIGKILL, no flush, no commit) many times at arbitrary points leaves every message in its
/// table exactly once, and every undecodable one in the dead-letter topic.
#[test]
fn exactly_once_across_many_kills_on_tansu() {
    let cluster = Cluster::tansu(&["events", "weir-dlq"]);
    let work = Workdir::new();
    let table = work.path().join("lake/events");
    let good = events_only(12000);
    let mut input = Vec::new();
    for (i, m) in good.iter().enumerate() {
        input.push(m.clone());
        if i % 700 == 350 {
            input.push(("events".into(), format!("bad-{i}"), b"{\"id\": ".to_vec()));
        }
    }
    // Produced over about a minute, so that the kills land mid-stream.
    let producer = cluster.produce_paced(input.clone(), 30, Duration::from_millis(200));
    let config = |extra: &str| {
        one_table_config(
            &cluster.brokers(),
            &table,
            &format!("    commit_interval: 2s\n{extra}"),
        )
        .replace("max_records: 1000", "max_records: 300")
    };
    let cfg = work.write_config(&config(""));
    let mut kills = 0;
    let mut seed = 0x9e37_79b9_u64;
    while !producer.is_finished() && kills < 10 {
        kills += 1;
        let run = kills;
        let before = versions(&table);
        let mut child = work.spawn(&cfg, run);
        let deadline = Instant::now() + Duration::from_secs(60);
        while versions(&table) <= before {
            assert!(Instant::now() < deadline, "no commit\n{}", work.logs(run));
            std::thread::sleep(Duration::from_millis(20));
        }
        // Somewhere in the next commits: mid-window, mid-upload, mid-commit.
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        std::thread::sleep(Duration::from_millis(seed >> 33 & 511));
        child.kill().unwrap();
        child.wait().unwrap();
    }
    producer.join().unwrap();
    assert!(kills >= 4, "only {kills} kills before the input ended");
    let last = kills + 1;
    let cfg = work.write_config(&config("    until_idle: 3s\n"));
    let mut child = work.spawn(&cfg, last);
    assert!(
        work.wait(&mut child, last, Duration::from_secs(180))
            .success(),
        "{}",
        work.logs(last)
    );
    let logs = work.logs(last);
    let s = work.summary(last);
    assert_eq!(
        s["routes"][0]["already_written"], 0,
        "each partition resumed after its stored offset: {s}"
    );
    assert_exactly_once(&table, &keys_of(&good, "events"), &logs);
    let poison: BTreeSet<String> = input
        .iter()
        .filter(|m| m.1.starts_with("bad-"))
        .map(|m| m.1.clone())
        .collect();
    let dead: BTreeSet<String> = cluster
        .read_topic("weir-dlq", poison.len())
        .into_iter()
        .filter_map(|m| m.key)
        .collect();
    assert_eq!(dead, poison, "every undecodable message dead-lettered");
    eprintln!(
        "tansu: {} messages, {kills} kills: lost 0, duplicated 0, {} dead letters",
        input.len(),
        poison.len()
    );
}

/// `weir delta optimize` compacts a table while a worker appends to it; `weir delta vacuum` then
/// deletes the replaced files. The table reads the same throughout.
#[test]
fn optimize_and_vacuum_beside_a_live_writer() {
    let cluster = Cluster::new(&["events", "weir-dlq"]);
    let work = Workdir::new();
    let table = work.path().join("lake/events");
    let input = events_only(8000);
    let producer = cluster.produce_paced(input.clone(), 60, Duration::from_millis(100));
    let cfg = one_table_config(&cluster.brokers(), &table, "    until_idle: 3s\n");
    let cfg = work.write_config(&cfg);
    let mut child = work.spawn(&cfg, 1);
    let path = table.display().to_string();
    let mut compacted = 0;
    for round in 1..=2 {
        let deadline = Instant::now() + Duration::from_secs(60);
        while versions(&table) < 6 * round {
            assert!(Instant::now() < deadline, "no commits\n{}", work.logs(1));
            std::thread::sleep(Duration::from_millis(50));
        }
        let report = weir_delta(&["optimize", &path]);
        compacted += report["files_removed"].as_u64().unwrap();
    }
    assert!(compacted > 2, "optimize compacted small files: {compacted}");
    producer.join().unwrap();
    assert!(
        work.wait(&mut child, 1, Duration::from_secs(120)).success(),
        "{}",
        work.logs(1)
    );
    let expected = keys_of(&input, "events");
    let v = assert_exactly_once(&table, &expected, &work.logs(1));
    let ops = operations(&v);
    assert_eq!(
        ops.iter().filter(|o| **o == "OPTIMIZE").count(),
        2,
        "{ops:?}"
    );
    assert_eq!(
        ops.last(),
        Some(&"STREAMING UPDATE"),
        "the writer went on: {ops:?}"
    );

    let vacuumed = weir_delta(&["vacuum", &path, "--retention", "0s", "--force"]);
    let deleted = vacuumed["files"].as_array().unwrap().len() as u64;
    assert_eq!(
        deleted, compacted,
        "the files optimize replaced: {vacuumed}"
    );
    assert_exactly_once(&table, &expected, "after vacuum");
}
