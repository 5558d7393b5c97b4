//! The pipeline benchmark: weir against the ceiling, native code and Python, on the same data
//! and the same broker.
//!
//! `./tests/bench.sh` runs it: that script installs what it needs (a release build of Tansu, and
//! confluent-kafka and pandas in `tests/.venv`), then runs
//! `cargo bench -p weir --bench pipeline`.
//!
//! It starts Tansu on 127.0.0.1 with `memory://` storage and produces the demo's sample orders
//! to two topics, once as Avro (Confluent framing) and once as JSON. Then each scenario reads a
//! whole topic from the start in a process of its own, with a fresh consumer group:
//! - `ceiling`: a bare rdkafka consumer that counts messages and bytes, with weir's settings;
//! - `source`: weir's own consumer (its batching poll, the messages turned into records) alone;
//! - `weir`: the configs in `tests/bench/` (filter and project in wasm, to Parquet, Delta or
//!   Kafka);
//! - `native`: the same consumer, decoder, transforms and Parquet writer as weir, but with the
//!   transforms compiled natively and called in a plain loop (no wasm, no routing or offsets);
//! - `python`: `tests/bench/pandas_baseline.py`.
//!
//! Throughput is measured from a scenario's first message to its last output made durable, so
//! joining the group is not counted. Every scenario but Python's runs 5 times, round robin,
//! and the median is reported. Peak RSS and CPU time are the child's, from `wait4`. It prints
//! a table and writes it, with the machine, into `docs/BENCHMARKS.md` (between the markers).
//!
//! Environment: `WEIR_TANSU` (the broker; required), `WEIR_PYTHON` (a Python with
//! confluent-kafka, pandas, fastavro and pyarrow; without it the Python rows are skipped),
//! `WEIR_BENCH_MESSAGES` (per topic; default 1,000,000), `WEIR_BENCH_PARTITIONS` (default 3),
//! `WEIR_BENCH_REPEAT` (rounds of every scenario but Python's, the median reported; default 5),
//! `WEIR_BENCH_ONLY` (a comma-separated list of scenario names to run), `WEIR_BENCH_HOLD` (set:
//! load the broker, write the configs, print where they are, and wait, for profiling by hand).

#![allow(clippy::unwrap_used)] // a benchmark: any failure should stop it loudly

#[allow(dead_code)]
mod common;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rand::rngs::SmallRng;
use rand::SeedableRng;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use weir::pipeline::StageTimes;

/// A child process's role, when this binary runs itself.
const ROLE: &str = "WEIR_BENCH_ROLE";
const AVRO_TOPIC: &str = "bench-avro";
const JSON_TOPIC: &str = "bench-json";
const TOPICS: [&str; 4] = [AVRO_TOPIC, JSON_TOPIC, "bench-out", "bench-dlq"];
/// The Avro schema id the messages carry (the configs map it to `order.avsc`).
const SCHEMA_ID: u32 = 1;

fn main() -> Result<()> {
    match std::env::var(ROLE).as_deref() {
        Ok("ceiling") => ceiling(),
        Ok("native") => native(),
        Ok("source") => source_only(),
        _ => drive(),
    }
}

/// What a scenario measured.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
struct Measured {
    messages: u64,
    seconds: f64,
    /// Seconds in the native loop's transforms (weir's are in `stages`).
    #[serde(default)]
    transform_seconds: Option<f64>,
    /// weir's own account of its time, per stage (its summary's `stages`).
    #[serde(default)]
    stages: Option<StageTimes>,
    #[serde(skip_deserializing)]
    peak_rss_kib: u64,
    /// The child's user and system CPU time, over its whole life.
    #[serde(skip_deserializing)]
    cpu_seconds: f64,
}

impl Measured {
    /// Seconds in the two transforms, whoever measured them.
    fn in_transforms(&self) -> Option<f64> {
        self.stages.map(|s| s.transform).or(self.transform_seconds)
    }
}

struct Row {
    name: &'static str,
    what: &'static str,
    topic: &'static str,
    m: Measured,
}

// ---------------------------------------------------------------- the driver

fn drive() -> Result<()> {
    let messages: u64 = env_or("WEIR_BENCH_MESSAGES", 1_000_000)?;
    let partitions: i32 = env_or("WEIR_BENCH_PARTITIONS", 3)?;
    let repeat: usize = env_or("WEIR_BENCH_REPEAT", 5)?;
    let only: Option<Vec<String>> = std::env::var("WEIR_BENCH_ONLY")
        .ok()
        .map(|s| s.split(',').map(str::to_string).collect());
    let tansu = PathBuf::from(
        std::env::var("WEIR_TANSU").context("WEIR_TANSU: the Tansu binary (tests/bench.sh)")?,
    );
    let python = std::env::var("WEIR_PYTHON").ok();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let work = tempfile::Builder::new().prefix("weir-bench-").tempdir()?;

    let broker = Broker::start(&tansu, work.path(), partitions)?;
    eprintln!(
        "bench: producing {messages} orders to {AVRO_TOPIC} (Avro) and {JSON_TOPIC} (JSON), {partitions} partitions each"
    );
    let bytes = produce(&broker.address, messages)?;
    eprintln!(
        "bench: produced {:.1} MB Avro, {:.1} MB JSON",
        bytes[0] as f64 / 1e6,
        bytes[1] as f64 / 1e6
    );

    let bench = repo.join("tests/bench");
    std::fs::copy(bench.join("order.avsc"), work.path().join("order.avsc"))?;
    std::fs::copy(
        repo.join("config/schemas/orders.yaml"),
        work.path().join("orders.yaml"),
    )?;
    let mut ctx = Ctx {
        brokers: broker.address.clone(),
        work: work.path().to_path_buf(),
        bench,
        self_exe: std::env::current_exe()?,
        python,
        messages,
        group: 0,
    };
    if std::env::var_os("WEIR_BENCH_HOLD").is_some() {
        // For profiling one scenario by hand: the loaded broker and the configs stay up.
        for name in ["avro-parquet.yaml", "json-delta.yaml", "json-kafka.yaml"] {
            eprintln!("bench: {}", ctx.config(name)?.display());
        }
        eprintln!(
            "bench: holding the broker at {} until killed",
            broker.address
        );
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }
    let chosen: Vec<&Scenario> = SCENARIOS
        .iter()
        .filter(|sc| only.as_ref().is_none_or(|o| o.iter().any(|x| x == sc.name)))
        .filter(|sc| ctx.python.is_some() || !matches!(sc.how, How::Python(_)))
        .collect();
    // Round robin, so that a drift of the machine weighs on every scenario alike; Python's runs
    // are long, and run once.
    let mut runs: Vec<Vec<Measured>> = vec![Vec::new(); chosen.len()];
    for round in 0..repeat.max(1) {
        for (sc, runs) in chosen.iter().zip(&mut runs) {
            if round > 0 && matches!(sc.how, How::Python(_)) {
                continue;
            }
            let m = ctx.run(sc)?;
            eprintln!(
                "bench: {:<20} {:>10.0} msg/s  {:>6.2} s  peak RSS {:>5} MiB  CPU {:>5.2} s",
                sc.name,
                m.messages as f64 / m.seconds,
                m.seconds,
                m.peak_rss_kib / 1024,
                m.cpu_seconds
            );
            runs.push(m);
        }
    }
    let rows: Vec<Row> = chosen
        .iter()
        .zip(runs)
        .map(|(sc, runs)| Row {
            name: sc.name,
            what: sc.what,
            topic: sc.topic,
            m: median(runs),
        })
        .collect();

    let report = report(&rows, messages, partitions, bytes);
    println!("\n{report}");
    let doc = repo.join("docs/BENCHMARKS.md");
    splice(&doc, &report)?;
    eprintln!("bench: wrote {}", doc.display());
    drop(broker);
    Ok(())
}

/// The run of median time (its CPU time too; peak RSS: the highest of them).
fn median(mut runs: Vec<Measured>) -> Measured {
    let rss = runs.iter().map(|m| m.peak_rss_kib).max().unwrap_or(0);
    runs.sort_by(|a, b| a.seconds.total_cmp(&b.seconds));
    let mut m = runs.swap_remove(runs.len() / 2);
    m.peak_rss_kib = rss;
    m
}

/// How a scenario runs.
enum How {
    /// This binary as the bare consumer of a topic.
    Ceiling,
    /// This binary in a role (`source`, `native`) on a config of `tests/bench/`.
    Role(&'static str, &'static str),
    /// `weir run` on a config of `tests/bench/`.
    Weir(&'static str),
    /// `tests/bench/pandas_baseline.py` with a format (`avro`, `json`).
    Python(&'static str),
}

struct Scenario {
    name: &'static str,
    what: &'static str,
    topic: &'static str,
    how: How,
}

const SCENARIOS: [Scenario; 9] = [
    Scenario {
        name: "ceiling-avro",
        what: "bare rdkafka consumer, counting bytes",
        topic: AVRO_TOPIC,
        how: How::Ceiling,
    },
    Scenario {
        name: "ceiling-json",
        what: "bare rdkafka consumer, counting bytes",
        topic: JSON_TOPIC,
        how: How::Ceiling,
    },
    Scenario {
        name: "source-avro",
        what: "weir's consumer alone: batching poll, records, nothing else",
        topic: AVRO_TOPIC,
        how: How::Role("source", "avro-parquet.yaml"),
    },
    Scenario {
        name: "weir-avro-parquet",
        what: "Avro decode, filter + project (wasm), Parquet",
        topic: AVRO_TOPIC,
        how: How::Weir("avro-parquet.yaml"),
    },
    Scenario {
        name: "native-avro-parquet",
        what: "the same, transforms compiled natively",
        topic: AVRO_TOPIC,
        how: How::Role("native", "avro-parquet.yaml"),
    },
    Scenario {
        name: "weir-json-delta",
        what: "JSON decode, filter + project (wasm), Delta",
        topic: JSON_TOPIC,
        how: How::Weir("json-delta.yaml"),
    },
    Scenario {
        name: "weir-json-kafka",
        what: "JSON decode, filter + project (wasm), JSON to Kafka",
        topic: JSON_TOPIC,
        how: How::Weir("json-kafka.yaml"),
    },
    Scenario {
        name: "python-avro-parquet",
        what: "confluent-kafka, decode, pandas DataFrame per batch, pyarrow Parquet",
        topic: AVRO_TOPIC,
        how: How::Python("avro"),
    },
    Scenario {
        name: "python-json-parquet",
        what: "confluent-kafka, decode, pandas DataFrame per batch, pyarrow Parquet",
        topic: JSON_TOPIC,
        how: How::Python("json"),
    },
];

/// What every run needs; each run gets a consumer group (and output folder) of its own.
struct Ctx {
    brokers: String,
    work: PathBuf,
    bench: PathBuf,
    self_exe: PathBuf,
    python: Option<String>,
    messages: u64,
    group: u32,
}

impl Ctx {
    /// A config of `tests/bench/` filled in for a new group; one file per run (a Delta table
    /// remembers what it holds and would skip it on a second run into it).
    fn config(&mut self, name: &str) -> Result<PathBuf> {
        self.group += 1;
        let g = self.group;
        let out = self.work.join(format!("out-{g}"));
        let text = std::fs::read_to_string(self.bench.join(name))?
            .replace("@BROKERS@", &self.brokers)
            .replace("@GROUP@", &format!("bench-{g}"))
            .replace("@OUT@", &out.display().to_string());
        let path = self.work.join(format!("{g}-{name}"));
        std::fs::write(&path, text)?;
        Ok(path)
    }

    fn run(&mut self, sc: &Scenario) -> Result<Measured> {
        let messages = self.messages.to_string();
        match sc.how {
            How::Weir(config) => weir(&self.config(config)?, self.messages),
            How::Role(role, config) => {
                let mut c = Command::new(&self.self_exe);
                c.env(ROLE, role)
                    .env("WEIR_BENCH_CONFIG", self.config(config)?)
                    .env("WEIR_BENCH_MESSAGES", messages);
                child_json(c)
            }
            How::Ceiling => {
                self.group += 1;
                let mut c = Command::new(&self.self_exe);
                c.env(ROLE, "ceiling")
                    .env("WEIR_BENCH_BROKERS", &self.brokers)
                    .env("WEIR_BENCH_TOPIC", sc.topic)
                    .env("WEIR_BENCH_GROUP", format!("ceiling-{}", self.group))
                    .env("WEIR_BENCH_MESSAGES", messages);
                child_json(c)
            }
            How::Python(format) => {
                self.group += 1;
                let python = self.python.as_deref().context("WEIR_PYTHON")?;
                let mut c = Command::new(python);
                c.arg(self.bench.join("pandas_baseline.py"))
                    .args(["--brokers", &self.brokers, "--topic", sc.topic])
                    .args(["--group", &format!("python-{}", self.group)])
                    .args(["--format", format, "--schema"])
                    .arg(self.work.join("order.avsc"))
                    .args(["--messages", &messages, "--out"])
                    .arg(
                        self.work
                            .join(format!("{}-{}.parquet", sc.name, self.group)),
                    );
                child_json(c)
            }
        }
    }
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> Result<T> {
    match std::env::var(name) {
        Ok(v) => v.parse().ok().with_context(|| format!("{name}={v}")),
        Err(_) => Ok(default),
    }
}

/// Tansu on 127.0.0.1 with `memory://` storage, in a folder of its own; killed when dropped.
struct Broker {
    child: Child,
    address: String,
}

impl Broker {
    fn start(tansu: &Path, work: &Path, partitions: i32) -> Result<Self> {
        let dir = work.join("tansu");
        std::fs::create_dir_all(&dir)?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let address = format!("127.0.0.1:{port}");
        let url = format!("tcp://{address}");
        let log = std::fs::File::create(dir.join("tansu.log"))?;
        let child = Command::new(tansu)
            .arg("broker")
            .args(["--listener-url", &url, "--advertised-listener-url", &url])
            .args(["--storage-engine", "memory://tansu/"])
            .current_dir(&dir)
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", tansu.display()))?;
        let broker = Broker { child, address };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(&broker.address).is_err() {
            if Instant::now() > deadline {
                bail!("tansu did not listen; see {}", dir.display());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        for topic in TOPICS {
            let out = Command::new(tansu)
                .args(["topic", "create", "--broker", &url, "--partitions"])
                .arg(partitions.to_string())
                .arg(topic)
                .current_dir(&dir)
                .output()?;
            if !out.status.success() {
                bail!("creating {topic}: {}", String::from_utf8_lossy(&out.stderr));
            }
        }
        Ok(broker)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Produces `n` sample orders to each topic (the same orders, Avro and JSON); returns the
/// bytes of each topic's values.
fn produce(brokers: &str, n: u64) -> Result<[u64; 2]> {
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "20")
        .set("batch.size", "1000000")
        .set("queue.buffering.max.messages", "1000000")
        .create()?;
    let mut rng = SmallRng::seed_from_u64(7);
    let mut bytes = [0u64; 2];
    let mut avro = Vec::new();
    for i in 0..n {
        // The demo's generator: even numbers are orders.
        let (_, key, json) = weir::source::embedded::sample_message(2 * i, false, &mut rng);
        avro.clear();
        encode_avro(&serde_json::from_str(&json)?, &mut avro)?;
        for (k, (topic, value)) in [(AVRO_TOPIC, &avro[..]), (JSON_TOPIC, json.as_bytes())]
            .into_iter()
            .enumerate()
        {
            bytes[k] += value.len() as u64;
            let mut record = BaseRecord::to(topic).key(&key).payload(value);
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((rdkafka::error::KafkaError::MessageProduction(_), r)) => {
                        record = r;
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    Err((e, _)) => return Err(e.into()),
                }
            }
        }
    }
    producer.flush(Duration::from_secs(120))?;
    Ok(bytes)
}

/// One order as Avro (`tests/bench/order.avsc`) with Confluent framing.
fn encode_avro(o: &serde_json::Value, out: &mut Vec<u8>) -> Result<()> {
    fn long(v: i64, out: &mut Vec<u8>) {
        let mut z = ((v << 1) ^ (v >> 63)) as u64;
        while z >= 0x80 {
            out.push((z as u8) | 0x80);
            z >>= 7;
        }
        out.push(z as u8);
    }
    fn string(v: &serde_json::Value, out: &mut Vec<u8>) -> Result<()> {
        let s = v.as_str().context("a string")?;
        long(s.len() as i64, out);
        out.extend_from_slice(s.as_bytes());
        Ok(())
    }
    let num = |v: &serde_json::Value| v.as_f64().context("a number");
    out.push(0);
    out.extend_from_slice(&SCHEMA_ID.to_be_bytes());
    string(&o["id"], out)?;
    long(o["ts"].as_i64().context("ts")?, out);
    out.extend_from_slice(&num(&o["amount"])?.to_le_bytes());
    string(&o["currency"], out)?;
    for f in ["id", "name", "tier"] {
        string(&o["customer"][f], out)?;
    }
    let items = o["items"].as_array().context("items")?;
    long(items.len() as i64, out);
    for it in items {
        string(&it["sku"], out)?;
        long(it["qty"].as_i64().context("qty")?, out);
        out.extend_from_slice(&num(&it["price"])?.to_le_bytes());
    }
    long(0, out);
    Ok(())
}

/// Runs `weir run` on `config` and reads its summary.
fn weir(config: &Path, messages: u64) -> Result<Measured> {
    let summary = config.with_extension("summary.json");
    let mut c = Command::new(env!("CARGO_BIN_EXE_weir"));
    c.args(["run", "--config"])
        .arg(config)
        .arg("--summary-json")
        .arg(&summary)
        .env("RUST_LOG", "warn");
    let (status, usage, _) = wait_child(c, false)?;
    if !status.success() {
        bail!("weir on {} exited with {status}", config.display());
    }
    let s: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&summary)?)?;
    let consumed = s["consumed"].as_u64().context("consumed")?;
    if consumed != messages {
        bail!("weir on {} read {consumed} of {messages}", config.display());
    }
    let d = &s["streaming"];
    Ok(Measured {
        messages: consumed,
        seconds: d["secs"].as_f64().unwrap_or(0.0) + d["nanos"].as_f64().unwrap_or(0.0) / 1e9,
        transform_seconds: None,
        stages: serde_json::from_value(s["stages"].clone()).ok(),
        peak_rss_kib: usage.peak_rss_kib,
        cpu_seconds: usage.cpu_seconds,
    })
}

/// Runs a child that prints its [`Measured`] as the last line of its stdout.
fn child_json(c: Command) -> Result<Measured> {
    let (status, usage, out) = wait_child(c, true)?;
    if !status.success() {
        bail!("{status}");
    }
    let line = out.lines().last().context("no output")?;
    let mut m: Measured = serde_json::from_str(line).with_context(|| line.to_string())?;
    m.peak_rss_kib = usage.peak_rss_kib;
    m.cpu_seconds = usage.cpu_seconds;
    Ok(m)
}

/// What a child used, from `wait4`.
struct Usage {
    peak_rss_kib: u64,
    cpu_seconds: f64,
}

/// Runs `c` to its end: its exit status, its usage and stdout (when `capture`).
fn wait_child(mut c: Command, capture: bool) -> Result<(std::process::ExitStatus, Usage, String)> {
    use std::io::Read as _;
    use std::os::unix::process::ExitStatusExt as _;
    if capture {
        c.stdout(Stdio::piped());
    }
    let mut child = c.spawn().with_context(|| format!("{c:?}"))?;
    let mut out = String::new();
    if let Some(mut s) = child.stdout.take() {
        s.read_to_string(&mut out)?;
    }
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: rusage is plain data that wait4 fills in; the child is ours and not yet waited for.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above; pointers to live locals.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    if r != pid {
        bail!("wait4: {}", std::io::Error::last_os_error());
    }
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Ok((
        std::process::ExitStatus::from_raw(status),
        Usage {
            peak_rss_kib: usage.ru_maxrss as u64,
            cpu_seconds: seconds(usage.ru_utime) + seconds(usage.ru_stime),
        },
        out,
    ))
}

// ---------------------------------------------------------------- the children

/// The ceiling: a bare consumer with weir's fetch settings that counts messages and value
/// bytes, at librdkafka's fastest: the topic's partitions assigned by hand (no group protocol,
/// so no events among the messages) and drained with `rd_kafka_consume_batch_queue`, 10,000
/// messages a call at most.
fn ceiling() -> Result<()> {
    use rdkafka::bindings as rdsys;
    let expected: u64 = env_or("WEIR_BENCH_MESSAGES", 0)?;
    let topic = std::env::var("WEIR_BENCH_TOPIC")?;
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", std::env::var("WEIR_BENCH_BROKERS")?)
        .set("group.id", std::env::var("WEIR_BENCH_GROUP")?)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        .set("fetch.wait.max.ms", "10")
        .set("fetch.queue.backoff.ms", "10")
        .create()?;
    let metadata = consumer.fetch_metadata(Some(&topic), Duration::from_secs(10))?;
    let mut tpl = rdkafka::TopicPartitionList::new();
    for t in metadata.topics() {
        for p in t.partitions() {
            tpl.add_partition_offset(&topic, p.id(), rdkafka::Offset::Beginning)?;
        }
    }
    consumer.assign(&tpl)?;
    // SAFETY: the consumer outlives the queue handle, destroyed below.
    let queue = unsafe { rdsys::rd_kafka_queue_get_consumer(consumer.client().native_ptr()) };
    let mut batch = vec![std::ptr::null_mut(); 10_000];
    let (mut n, mut bytes, mut first) = (0u64, 0u64, None);
    let mut last = Instant::now();
    while n < expected {
        // SAFETY: room for `batch.len()` pointers; each message is destroyed once.
        let got = unsafe {
            rdsys::rd_kafka_consume_batch_queue(queue, 100, batch.as_mut_ptr(), batch.len())
        };
        for &m in &batch[..usize::try_from(got).unwrap_or(0)] {
            let r = unsafe { &*m };
            if r.err == rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
                first.get_or_insert_with(Instant::now);
                n += 1;
                bytes += r.len as u64;
                last = Instant::now();
            } else {
                eprintln!("ceiling: {:?}", r.err);
            }
            unsafe { rdsys::rd_kafka_message_destroy(m) };
        }
        if got <= 0 && last.elapsed() > Duration::from_secs(60) {
            bail!("stalled at {n}");
        }
    }
    unsafe { rdsys::rd_kafka_queue_destroy(queue) };
    let seconds = first.map_or(0.0, |f: Instant| f.elapsed().as_secs_f64());
    std::hint::black_box(bytes);
    print_measured(n, seconds, None)
}

/// weir's consumer, decoder and Parquet writer around the native filter and project.
fn native() -> Result<()> {
    use weir::config::{LoadedConfig, SinkConfig};
    use weir_guest_sdk::testing;
    let expected: u64 = env_or("WEIR_BENCH_MESSAGES", 0)?;
    let cfg = LoadedConfig::load(Path::new(&std::env::var("WEIR_BENCH_CONFIG")?))?;
    let kafka = &cfg.config.source.kafka;
    let source = weir::source::kafka::KafkaSource::new(kafka, &kafka.brokers, None)?;
    let mut decoder = weir::decode::Decoder::new(&cfg, None).map_err(anyhow::Error::msg)?;
    let route = &cfg.config.routes[0];
    let params = |i: usize| route.transforms[i].params.to_string();
    let mut filter = testing::init::<weir_plugin_filter::Filter>(&params(0))?;
    let mut project = testing::init::<weir_plugin_project::Project>(&params(1))?;
    let SinkConfig::Parquet(pc) = &route.sink else {
        bail!("the native scenario writes Parquet");
    };
    let mut sink = weir::sink::parquet::ParquetSink::new(cfg.resolve(&pc.path), pc)?;
    let mut tracker = weir::offsets::OffsetTracker::default();
    let mut in_transforms = Duration::ZERO;
    let (n, seconds) = drain(&source, expected, |polled| {
        let records = polled.records();
        let decoded = decoder.decode(&records);
        let progress = tracker.begin(BTreeMap::new());
        for typed in decoded.batches {
            let t = Instant::now();
            // As a route runs them: the filter's rows are taken once, after the project.
            let kept = common::native_rows(&mut filter, &typed.batch, None);
            let out = common::native_rows(&mut project, &kept.batch, kept.rows.as_ref())
                .select()?
                .batch;
            in_transforms += t.elapsed();
            sink.write(&out, &progress)?;
        }
        Ok(())
    })?;
    let t = Instant::now();
    sink.close_all()?;
    let seconds = seconds + t.elapsed().as_secs_f64();
    print_measured(n, seconds, Some(in_transforms.as_secs_f64()))
}

/// weir's consumer alone (its batching poll, messages turned into records), counting bytes.
fn source_only() -> Result<()> {
    let expected: u64 = env_or("WEIR_BENCH_MESSAGES", 0)?;
    let cfg = weir::config::LoadedConfig::load(Path::new(&std::env::var("WEIR_BENCH_CONFIG")?))?;
    let kafka = &cfg.config.source.kafka;
    let source = weir::source::kafka::KafkaSource::new(kafka, &kafka.brokers, None)?;
    let mut bytes = 0u64;
    let (n, seconds) = drain(&source, expected, |polled| {
        for r in polled.records() {
            bytes += r.value_bytes();
        }
        Ok(())
    })?;
    std::hint::black_box(bytes);
    print_measured(n, seconds, None)
}

/// Polls `source` until `expected` messages have come, handing each poll to `each`: the
/// messages, and the seconds from the first one's arrival to the end of `each` on the last.
fn drain(
    source: &weir::source::kafka::KafkaSource,
    expected: u64,
    mut each: impl FnMut(&weir::source::kafka::Polled<'_>) -> Result<()>,
) -> Result<(u64, f64)> {
    let (mut n, mut first) = (0u64, None);
    let mut last = Instant::now();
    while n < expected {
        let polled = source.poll_batch();
        if polled.is_empty() {
            if last.elapsed() > Duration::from_secs(60) {
                bail!("stalled at {n}");
            }
            continue;
        }
        first.get_or_insert_with(Instant::now);
        n += polled.len() as u64;
        each(&polled)?;
        last = Instant::now();
    }
    Ok((n, first.map_or(0.0, |f: Instant| f.elapsed().as_secs_f64())))
}

fn print_measured(messages: u64, seconds: f64, transform_seconds: Option<f64>) -> Result<()> {
    let m = Measured {
        messages,
        seconds,
        transform_seconds,
        stages: None,
        peak_rss_kib: 0,
        cpu_seconds: 0.0,
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", serde_json::to_string(&m)?)?;
    Ok(())
}

// ---------------------------------------------------------------- the report

fn report(rows: &[Row], messages: u64, partitions: i32, bytes: [u64; 2]) -> String {
    let topic_bytes = |t: &str| if t == AVRO_TOPIC { bytes[0] } else { bytes[1] };
    let rate = |name: &str| {
        rows.iter()
            .find(|r| r.name == name)
            .map(|r| r.m.messages as f64 / r.m.seconds)
    };
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Measured {} on {}.\n\n{} sample orders per topic ({:.0} bytes each in Avro, {:.0} in JSON), \
         {partitions} partitions, on Tansu {} with `memory://` storage on the same machine.\n",
        date(),
        machine(),
        messages,
        bytes[0] as f64 / messages as f64,
        bytes[1] as f64 / messages as f64,
        tansu_version(),
    );
    let _ = writeln!(
        s,
        "| scenario | what it does | msgs/s | MB/s | peak RSS | CPU s | vs ceiling |\n|---|---|---:|---:|---:|---:|---:|"
    );
    for r in rows {
        let mps = r.m.messages as f64 / r.m.seconds;
        let ceiling = if r.topic == AVRO_TOPIC {
            rate("ceiling-avro")
        } else {
            rate("ceiling-json")
        };
        let _ = writeln!(
            s,
            "| `{}` | {} | {:.0} | {:.1} | {} MiB | {:.2} | {} |",
            r.name,
            r.what,
            mps,
            topic_bytes(r.topic) as f64 / 1e6 / r.m.seconds,
            r.m.peak_rss_kib / 1024,
            r.m.cpu_seconds,
            ceiling.map_or("".into(), |c| format!("{:.0}%", 100.0 * mps / c)),
        );
    }
    let _ = writeln!(
        s,
        "\nWhere weir's time goes (its summary, seconds over the whole topic; `rest` is routing, \
         offsets, commits, and handing the messages back to librdkafka):\n\n\
         | scenario | total | poll | decode | transforms | sinks | rest |\n|---|---:|---:|---:|---:|---:|---:|"
    );
    for r in rows {
        let Some(t) = r.m.stages else { continue };
        let rest = r.m.seconds - t.poll - t.decode - t.transform - t.sink;
        let _ = writeln!(
            s,
            "| `{}` | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
            r.name,
            r.m.seconds,
            t.poll,
            t.decode,
            t.transform,
            t.sink,
            rest.max(0.0)
        );
    }
    let _ = writeln!(s, "\nRatios, from this run:\n");
    let ratio = |a: &str, b: &str| match (rate(a), rate(b)) {
        (Some(x), Some(y)) => format!("{:.2}", x / y),
        _ => "not run".into(),
    };
    let _ = writeln!(
        s,
        "- weir / ceiling (Avro, two wasm transforms, Parquet): {}",
        ratio("weir-avro-parquet", "ceiling-avro")
    );
    let _ = writeln!(
        s,
        "- weir / Python: Avro to Parquet {}, JSON (to Delta; Python to Parquet) {}",
        ratio("weir-avro-parquet", "python-avro-parquet"),
        ratio("weir-json-delta", "python-json-parquet")
    );
    let _ = writeln!(
        s,
        "- native / weir, whole pipeline (Avro to Parquet): {}",
        ratio("native-avro-parquet", "weir-avro-parquet")
    );
    let stage = |name: &str| {
        rows.iter()
            .find(|r| r.name == name)
            .and_then(|r| r.m.in_transforms())
    };
    if let (Some(w), Some(n)) = (stage("weir-avro-parquet"), stage("native-avro-parquet")) {
        let _ = writeln!(
            s,
            "- wasm / native, time in the two transforms over the whole topic: {:.2} ({:.2} s against {:.2} s)",
            w / n,
            w,
            n
        );
    }
    s
}

/// Replaces what is between the markers of `doc` with `report` (the rest is prose).
fn splice(doc: &Path, report: &str) -> Result<()> {
    const BEGIN: &str = "<!-- bench:begin (written by host/benches/pipeline.rs) -->";
    const END: &str = "<!-- bench:end -->";
    let text = std::fs::read_to_string(doc).unwrap_or_default();
    let (head, tail) = match (text.find(BEGIN), text.find(END)) {
        (Some(b), Some(e)) if b < e => (&text[..b], &text[e + END.len()..]),
        _ => (&text[..], "\n"),
    };
    std::fs::write(doc, format!("{head}{BEGIN}\n{report}{END}{tail}"))?;
    Ok(())
}

fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_else(|| "an unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem_kib: u64 = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "{cores} cores of {model}, {:.0} GiB of memory, Linux {}",
        mem_kib as f64 / 1024.0 / 1024.0,
        kernel.trim()
    )
}

fn tansu_version() -> String {
    std::env::var("WEIR_TANSU")
        .ok()
        .and_then(|t| Command::new(t).arg("--version").output().ok())
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .trim()
                .replace("tansu ", "")
        })
        .unwrap_or_default()
}

fn date() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%d"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}
