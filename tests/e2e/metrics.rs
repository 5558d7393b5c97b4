//! The Prometheus endpoint while a worker runs: readiness, and counters that match the summary.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::harness::*;

fn get(addr: &str, path: &str) -> Option<String> {
    let mut c = TcpStream::connect(addr).ok()?;
    write!(c, "GET {path} HTTP/1.1\r\nHost: weir\r\n\r\n").ok()?;
    let mut out = String::new();
    c.read_to_string(&mut out).ok()?;
    Some(out)
}

/// The value of the sample `name` (with its labels) in a scrape.
fn sample(scrape: &str, name: &str) -> Option<f64> {
    scrape
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn metrics_health_and_readiness_while_running() {
    let cluster = Cluster::new(&TOPICS);
    let work = Workdir::new();
    let out = work.path().join("orders");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let yaml =
        config(&cluster.brokers(), &out, Some("4s")) + &format!("metrics:\n  listen: \"{addr}\"\n");
    let cfg = work.write_config(&yaml);
    let mut messages = Vec::new();
    for k in 0..3000 {
        let (topic, value) = match k % 3 {
            0 => ("payments", format!(r#"{{"id":"m-{k}","amount":{k}.5}}"#)),
            _ => (
                "orders",
                format!(r#"{{"id":"m-{k}","amount":{}.5}}"#, k % 200),
            ),
        };
        messages.push((topic.to_string(), format!("m-{k}"), value.into_bytes()));
    }
    messages.push(("orders".into(), "bad".into(), b"{".to_vec()));
    let mut child = work.spawn(&cfg, 1);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !get(&addr, "/readyz").is_some_and(|r| r.starts_with("HTTP/1.1 200")) {
        assert!(Instant::now() < deadline, "never ready\n{}", work.logs(1));
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(get(&addr, "/healthz").unwrap().starts_with("HTTP/1.1 200"));
    cluster.produce(&messages);
    let deadline = Instant::now() + Duration::from_secs(60);
    let scrape = loop {
        let s = get(&addr, "/metrics").unwrap_or_default();
        if sample(&s, "weir_consumed_messages_total") == Some(messages.len() as f64) {
            break s;
        }
        assert!(Instant::now() < deadline, "{s}\n{}", work.logs(1));
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(work.wait(&mut child, 1, Duration::from_secs(60)).success());
    let s = work.summary(1);
    let routes = s["routes"].as_array().unwrap();
    for r in routes {
        let name = r["name"].as_str().unwrap();
        let got = sample(
            &scrape,
            &format!("weir_route_messages_total{{route=\"{name}\"}}"),
        );
        assert_eq!(got, r["messages_in"].as_f64(), "{name}\n{scrape}");
    }
    assert_eq!(
        sample(
            &scrape,
            "weir_dead_letters_total{stage=\"decode\",route=\"\"}"
        ),
        Some(1.0),
        "{scrape}"
    );
    let calls = sample(
        &scrape,
        "weir_plugin_call_seconds_count{route=\"big-orders\",plugin=\"builtin:filter\"}",
    );
    assert!(calls.is_some_and(|c| c >= 1.0), "{scrape}");
    assert!(scrape.contains("# TYPE weir_stage_seconds histogram"));
    assert!(scrape.contains("# TYPE weir_commit_seconds histogram"));

    // Bytes in: the values of each route's messages (the malformed order never reaches one).
    let value_bytes = |topic: &str| -> u64 {
        messages
            .iter()
            .filter(|(t, _, v)| t == topic && v.as_slice() != b"{")
            .map(|(_, _, v)| v.len() as u64)
            .sum()
    };
    for (route, topic) in [("big-orders", "orders"), ("payments", "payments")] {
        let r = routes.iter().find(|r| r["name"] == route).unwrap();
        assert_eq!(r["bytes_in"].as_u64(), Some(value_bytes(topic)), "{route}");
        let scraped = sample(
            &scrape,
            &format!("weir_route_received_bytes_total{{route=\"{route}\"}}"),
        );
        assert_eq!(scraped, r["bytes_in"].as_f64(), "{route}\n{scrape}");
    }
    // Bytes out: the Parquet files on disk, to the byte; Kafka keys and values, some.
    let on_disk: u64 = parquet_files(&out)
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .sum();
    let parquet = routes.iter().find(|r| r["name"] == "big-orders").unwrap();
    assert!(on_disk > 0);
    assert_eq!(parquet["bytes_out"].as_u64(), Some(on_disk));
    let kafka = routes.iter().find(|r| r["name"] == "payments").unwrap();
    assert!(kafka["bytes_out"].as_u64().unwrap() > 1000 * "m-0".len() as u64);
}

/// `/readyz` follows the sinks: with the broker down, the producer (the Kafka sink and the
/// dead-letter route) reaches no broker and the worker is not ready, though it still holds its
/// partitions; with the broker back, it is ready again.
#[test]
fn readiness_follows_the_brokers_of_the_kafka_sink() {
    let mut cluster = Cluster::tansu(&TOPICS);
    let work = Workdir::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let out = work.path().join("orders");
    let yaml =
        config(&cluster.brokers(), &out, None) + &format!("metrics:\n  listen: \"{addr}\"\n");
    let cfg = work.write_config(&yaml);
    let mut child = work.spawn(&cfg, 1);
    let ready = |addr: &str| get(addr, "/readyz").unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready(&addr).starts_with("HTTP/1.1 200") {
        assert!(Instant::now() < deadline, "never ready\n{}", work.logs(1));
        std::thread::sleep(Duration::from_millis(100));
    }
    // Watch /readyz while the broker is down for 15 s.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let (addr, stop) = (addr.clone(), std::sync::Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut seen = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                seen.push(ready(&addr));
                std::thread::sleep(Duration::from_millis(200));
            }
            seen
        })
    };
    let Cluster::Tansu(tansu) = &mut cluster else {
        unreachable!()
    };
    tansu.restart(Duration::from_secs(15));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let seen = watcher.join().unwrap();
    assert!(
        seen.iter().any(|r| r.starts_with("HTTP/1.1 503")
            && r.contains("the producer (Kafka sinks, dead letters) reaches no broker")),
        "never unready while the broker was down: {:?}\n{}",
        seen.iter()
            .map(|r| r.lines().next().unwrap_or(""))
            .collect::<Vec<_>>(),
        work.logs(1)
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready(&addr).starts_with("HTTP/1.1 200") {
        assert!(
            Instant::now() < deadline,
            "not ready again: {}\n{}",
            ready(&addr),
            work.logs(1)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    signal(&child, "TERM");
    assert!(
        work.wait(&mut child, 1, Duration::from_secs(60)).success(),
        "{}",
        work.logs(1)
    );
}
