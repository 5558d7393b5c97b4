//! The sandbox and the error policies end to end: `builtin:misbehave` fails in every way a plugin
//! can, per message, and the worker carries on; per-route `on_error`; hot reload under load.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::harness::*;

const TOPICS: [&str; 3] = ["chaos", "orders", "weir-dlq"];

/// Chaos messages go through `builtin:misbehave`, orders through a filter; each poll is one
/// message, so each failure is its message's own.
fn chaos_config(brokers: &str, out: &Path, chaos_out: &Path, on_error: &str) -> String {
    format!(
        r#"source:
  kafka:
    brokers: "{brokers}"
    group_id: weir-sandbox
    topics: [chaos, orders]
    batch: {{ max_records: 1, max_wait: 20ms }}
    commit_interval: 200ms
    until_idle: 3s
decode:
  schemas:
    chaos: {{ fields: {{ id: utf8, behaviour: utf8, arg: int64 }} }}
    orders: {{ fields: {{ id: utf8, amount: float64 }} }}
routes:
  - name: chaos
    match: chaos
    on_error: {on_error}
    transforms:
      - plugin: builtin:misbehave
        limits: {{ time_budget: 300ms, memory_limit: 64MiB, max_output: 1MiB }}
    sink:
      parquet: {{ path: "{chaos_out}", max_age: 1s }}
  - name: orders
    match: orders
    transforms:
      - plugin: builtin:filter
        params: {{ where: "amount > `100`" }}
    sink:
      parquet: {{ path: "{out}", max_age: 1s }}
errors:
  dead_letter: {{ kafka: {{ topic: weir-dlq }} }}
runtime:
  time_budget: 2s
"#,
        chaos_out = chaos_out.display(),
        out = out.display()
    )
}

/// (key, behaviour, arg, what the dead letter's error says; `None`: the row is written).
const CASES: [(&str, &str, Option<i64>, Option<&str>); 10] = [
    ("c-ok", "ok", None, None),
    ("c-panic", "panic", None, Some("trapped")),
    (
        "c-loop",
        "loop",
        None,
        Some("ran past its time budget of 300ms"),
    ),
    ("c-alloc", "alloc", Some(1 << 30), Some("trapped")),
    (
        "c-huge",
        "huge",
        Some(2 << 20),
        Some("over max_output (1048576 bytes)"),
    ),
    ("c-bad-pointer", "bad_pointer", None, Some("bad output")),
    ("c-fail", "fail", None, Some("batch asked to fail")),
    ("c-error", "error", None, Some("row asked to fail")),
    ("c-spin", "spin", Some(1), None),
    ("c-log", "log", Some(20_000), None),
];

fn chaos_messages(rounds: usize) -> Messages {
    let mut m = Vec::new();
    for r in 0..rounds {
        for (key, behaviour, arg, _) in CASES {
            let key = format!("{key}-{r}");
            let arg = arg.map_or("null".to_string(), |a| a.to_string());
            let value = format!(r#"{{"id":"{key}","behaviour":"{behaviour}","arg":{arg}}}"#);
            m.push(("chaos".to_string(), key, value.into_bytes()));
        }
    }
    m
}

/// (topic, key, value) messages to produce.
type Messages = Vec<(String, String, Vec<u8>)>;

fn orders(n: usize) -> (Messages, BTreeMap<String, usize>) {
    let mut m = Vec::new();
    let mut big = BTreeMap::new();
    for k in 0..n {
        let key = format!("o-{k}");
        let amount = (k * 37 % 200) as f64;
        if amount > 100.0 {
            big.insert(key.clone(), 1);
        }
        let value = format!(r#"{{"id":"{key}","amount":{amount}}}"#);
        m.push(("orders".to_string(), key, value.into_bytes()));
    }
    (m, big)
}

/// Every way a plugin can misbehave, per message: the worker survives each one, each failed
/// message is dead-lettered once with its reason, the rows that pass are written once, and the
/// orders route keeps flowing throughout.
#[test]
fn misbehaving_plugins_are_dead_lettered_and_other_routes_flow() {
    let cluster = Cluster::new(&TOPICS);
    let work = Workdir::new();
    let (out, chaos_out) = (work.path().join("orders"), work.path().join("chaos"));
    let cfg = work.write_config(&chaos_config(
        &cluster.brokers(),
        &out,
        &chaos_out,
        "dead_letter",
    ));
    let rounds = 2;
    let (order_msgs, big) = orders(300);
    let mut all = chaos_messages(rounds);
    // Orders between the chaos messages: they must flow while the plugin misbehaves.
    all.extend(order_msgs);
    cluster.produce(&all);
    let mut child = work.spawn(&cfg, 1);
    let status = work.wait(&mut child, 1, Duration::from_secs(240));
    assert!(status.success(), "{}", work.logs(1));

    let expected_dead = CASES.iter().filter(|c| c.3.is_some()).count() * rounds;
    let dead = cluster.read_topic("weir-dlq", expected_dead);
    assert_eq!(dead.len(), expected_dead, "{}", work.logs(1));
    let written = parquet_column(&chaos_out, "id");
    for r in 0..rounds {
        for (key, behaviour, _, reason) in CASES {
            let key = format!("{key}-{r}");
            match reason {
                Some(reason) => {
                    let d = dead
                        .iter()
                        .find(|d| d.key.as_deref() == Some(&key))
                        .unwrap_or_else(|| panic!("{key} not dead-lettered"));
                    let error = &d.headers["weir.error"];
                    assert!(error.contains(reason), "{behaviour}: {error}");
                    assert_eq!(d.headers["weir.stage"], "transform", "{behaviour}");
                    assert_eq!(d.headers["weir.plugin"], "builtin:misbehave");
                    assert_eq!(d.headers["weir.route"], "chaos");
                    assert_eq!(d.headers["weir.topic"], "chaos");
                    assert!(!written.contains_key(&key), "{key} written too");
                }
                None => assert_eq!(written.get(&key), Some(&1), "{key} written once"),
            }
        }
    }
    assert_eq!(
        parquet_column(&out, "id"),
        big,
        "the orders route kept flowing"
    );
    assert_eq!(work.committed_total(1), all.len() as i64);
    let logs = work.logs(1);
    assert!(
        logs.contains("plugin panicked"),
        "the guest's panic is logged"
    );
    assert!(
        logs.contains("19900 more log lines of this call dropped"),
        "a log flood is cut"
    );
}

/// `on_error: skip` drops a failed batch (counted) and commits past it; `stop` stops the worker
/// before it commits past the batch, naming the plugin, and a fixed config then takes it on.
#[test]
fn per_route_policies_skip_and_stop() {
    let cluster = Cluster::new(&TOPICS);
    let work = Workdir::new();
    let (out, chaos_out) = (work.path().join("orders"), work.path().join("chaos"));
    let messages = chaos_messages(1);
    cluster.produce(&messages);

    let skip = chaos_config(&cluster.brokers(), &out, &chaos_out, "skip");
    let cfg = work.write_config(&skip.replace("weir-sandbox", "weir-skip"));
    let mut child = work.spawn(&cfg, 1);
    assert!(work.wait(&mut child, 1, Duration::from_secs(120)).success());
    let s = work.summary(1);
    let failures = CASES.iter().filter(|c| c.3.is_some()).count();
    assert_eq!(s["routes"][0]["skipped"], failures, "{s}");
    assert_eq!(s["dead_lettered"], 0, "{s}");
    assert_eq!(work.committed_total(1), messages.len() as i64);

    let stop = chaos_config(&cluster.brokers(), &out, &chaos_out, "stop");
    let cfg = work.write_config(&stop.replace("weir-sandbox", "weir-stop"));
    let mut child = work.spawn(&cfg, 2);
    let status = work.wait(&mut child, 2, Duration::from_secs(120));
    assert!(!status.success(), "stop: the worker stops");
    let logs = work.logs(2);
    assert!(
        logs.contains("route chaos: plugin builtin:misbehave") && logs.contains("(on_error: stop)"),
        "the error names the route and the plugin: {logs}"
    );
    // The failed message, and what follows it in its partition, was not committed.
    let committed = work.committed_total(2);
    assert!(
        committed < messages.len() as i64,
        "committed {committed} of {}",
        messages.len()
    );
}

/// A good version of the orders filter, `v` picks one of two that keep the same rows.
fn filter_yaml(brokers: &str, out: &Path, params: &str) -> String {
    format!(
        r#"source:
  kafka:
    brokers: "{brokers}"
    group_id: weir-reload
    topics: [orders]
    batch: {{ max_records: 500, max_wait: 20ms }}
    commit_interval: 200ms
    until_idle: 3s
decode:
  schemas:
    orders: {{ fields: {{ id: utf8, amount: float64 }} }}
routes:
  - name: orders
    match: orders
    transforms:
      - plugin: ./filter.wasm
        params: {params}
    sink:
      parquet: {{ path: "{out}", max_age: 1s }}
errors:
  dead_letter: {{ kafka: {{ topic: weir-dlq }} }}
runtime:
  reload: {{ poll_interval: 50ms }}
"#,
        out = out.display()
    )
}

/// Writes `bytes` to `path` the way editors and deploy tools do: a new file renamed over it.
fn replace_file(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn count(logs: &str, needle: &str) -> usize {
    logs.matches(needle).count()
}

/// 100 hot reloads while messages flow, a third of them broken versions (params the plugin
/// refuses, a file that is not wasm), then a change only a restart can apply: every good one is
/// swapped in, every other refused while the running version goes on, and each message is
/// written exactly once.
#[test]
fn hot_reloads_under_load_lose_and_duplicate_nothing() {
    let cluster = Cluster::new(&["orders", "weir-dlq"]);
    let work = Workdir::new();
    let out = work.path().join("orders");
    let filter = weir::runtime::builtin("filter").unwrap();
    // A second build of the same filter: a custom section makes the bytes (and the module) new.
    let mut filter2 = filter.to_vec();
    filter2.extend_from_slice(&[0, 8, 7, b'v', b'e', b'r', b's', b'i', b'o', b'n']);
    let plugin = work.path().join("filter.wasm");
    std::fs::write(&plugin, filter).unwrap();
    let good = [
        "{ where: \"amount > `100`\" }",
        "{ where: \"`100` < amount\" }",
    ];
    let brokers = cluster.brokers();
    let cfg = work.write_config(&filter_yaml(&brokers, &out, good[0]));

    // About 40 s of messages: the reloads happen while they flow.
    let (messages, big) = orders(60_000);
    let producing = cluster.produce_paced(messages.clone(), 300, Duration::from_millis(200));
    let mut child = work.spawn(&cfg, 1);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !work.logs(1).contains("worker started") {
        assert!(Instant::now() < deadline, "{}", work.logs(1));
        std::thread::sleep(Duration::from_millis(20));
    }
    // Which of `good` runs; a good config write flips it, so each one is a change.
    let mut params = 0;
    let write_good_config = |params: &mut usize| {
        *params ^= 1;
        replace_file(&cfg, filter_yaml(&brokers, &out, good[*params]).as_bytes());
    };
    let wait_for = |needle: &str, before: usize, what: &str| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while count(&work.logs(1), needle) == before {
            assert!(Instant::now() < deadline, "{what}\n{}", work.logs(1));
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    for i in 0..100 {
        let logs = work.logs(1);
        let (ok, bad) = (count(&logs, "reloaded"), count(&logs, "reload refused"));
        let (plugin_change, broken) = (i % 2 == 0, i % 3 == 2);
        match (plugin_change, broken) {
            (true, false) => replace_file(&plugin, if i % 4 == 0 { &filter2 } else { filter }),
            (false, false) => write_good_config(&mut params),
            (true, true) => replace_file(&plugin, b"\0asm not really"),
            (false, true) => replace_file(
                &cfg,
                filter_yaml(&brokers, &out, "{ where: \"amount >\" }").as_bytes(),
            ),
        }
        if !broken {
            wait_for("reloaded", ok, &format!("reload {i} swapped in"));
            continue;
        }
        wait_for("reload refused", bad, &format!("reload {i} refused"));
        // Put a good version back: a reload of its own.
        if plugin_change {
            replace_file(&plugin, filter);
        } else {
            write_good_config(&mut params);
        }
        wait_for("reloaded", ok, &format!("repair after {i}"));
    }
    // A change that needs a restart is refused, naming the key.
    let bad = count(&work.logs(1), "reload refused");
    let restart_only = filter_yaml(&brokers, &out, good[params])
        .replace("commit_interval: 200ms", "commit_interval: 300ms");
    replace_file(&cfg, restart_only.as_bytes());
    wait_for("reload refused", bad, "a restart-only change");
    assert!(
        work.logs(1)
            .contains("`source.kafka.commit_interval` changed, and only transforms"),
        "{}",
        work.logs(1)
    );
    producing.join().unwrap();
    let status = work.wait(&mut child, 1, Duration::from_secs(120));
    assert!(status.success(), "{}", work.logs(1));
    assert_eq!(parquet_column(&out, "id"), big, "every row once");
    assert_eq!(work.committed_total(1), messages.len() as i64);
    let s = work.summary(1);
    assert_eq!(s["reloads_refused"], 34, "{s}");
    assert!(s["reloads"].as_u64().unwrap() >= 67 + 33, "{s}");
    assert_eq!(s["dead_lettered"], 0, "{s}");
}
