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

/// What the Python `deltalake` reader sees in a table.
fn read_table(table: &Path, txn: &[String]) -> serde_json::Value {
    let mut args = vec![table.display().to_string(), "--key".into(), "id".into()];
    for t in txn {
        args.push("--txn".into());
        args.push(t.clone());
    }
    let out = python_script("delta_check.py", &args);
    assert!(
        out.status.success(),
        "delta_check.py {}: {}\n{}",
        table.display(),
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
    let v = read_table(table, &[]);
    let got = counts(&v);
    let dup: Vec<_> = got.iter().filter(|(_, n)| **n > 1).take(5).collect();
    assert!(
        dup.is_empty(),
        "{}: duplicated {dup:?}\n{logs}",
        table.display()
    );
    let lost: Vec<_> = expected
        .iter()
        .filter(|k| !got.contains_key(*k))
        .take(5)
        .collect();
    assert!(
        lost.is_empty(),
        "{}: lost {lost:?}\n{logs}",
        table.display()
    );
    assert_eq!(
        got.len(),
        expected.len(),
        "{}: unexpected keys",
        table.display()
    );
    v
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
        let ops: Vec<&str> = v["operations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o.as_str().unwrap())
            .collect();
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
