//! Test harness: a mock Kafka cluster in the test process (it listens on real TCP ports) or a
//! Tansu broker, `weir` as a child process, and readers for what it wrote.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use arrow_array::{Array, StringArray};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};
use weir::source::embedded::Embedded;

pub const PARTITIONS: i32 = 3;

/// A Kafka cluster with topics created: librdkafka's mock cluster in the test process, or a
/// Tansu broker (a real Kafka-protocol server) as a child process.
pub enum Cluster {
    Mock(Embedded),
    Tansu(Tansu),
}

impl Cluster {
    pub fn new(topics: &[&str]) -> Self {
        let topics: Vec<String> = topics.iter().map(|t| t.to_string()).collect();
        Cluster::Mock(Embedded::start(&topics, PARTITIONS).expect("mock cluster"))
    }

    /// A Tansu broker on 127.0.0.1 with SQLite storage (its `memory://` storage loses messages
    /// when a consumer resumes mid-batch, which these tests do).
    pub fn tansu(topics: &[&str]) -> Self {
        Cluster::Tansu(Tansu::start(topics, PARTITIONS))
    }

    /// A Tansu broker whose topics have `partitions` partitions.
    pub fn tansu_with_partitions(topics: &[&str], partitions: i32) -> Self {
        Cluster::Tansu(Tansu::start(topics, partitions))
    }

    pub fn partitions(&self) -> i32 {
        match self {
            Cluster::Mock(_) => PARTITIONS,
            Cluster::Tansu(t) => t.partitions,
        }
    }

    pub fn brokers(&self) -> String {
        match self {
            Cluster::Mock(e) => e.bootstrap_servers(),
            Cluster::Tansu(t) => t.address.clone(),
        }
    }

    pub fn producer(&self) -> ThreadedProducer<DefaultProducerContext> {
        ClientConfig::new()
            .set("bootstrap.servers", self.brokers())
            .set("linger.ms", "5")
            .create()
            .expect("producer")
    }

    /// Produces (topic, key, value) in order and waits for delivery.
    pub fn produce(&self, messages: &[(String, String, Vec<u8>)]) {
        let p = self.producer();
        for (topic, key, value) in messages {
            send(&p, topic, key, value);
        }
        p.flush(Duration::from_secs(30)).expect("flush");
    }

    /// Produces on a thread, `chunk` messages every `pause` (the mock cluster keeps little
    /// backlog, so long runs produce while weir consumes); join the handle for the end.
    pub fn produce_paced(
        &self,
        messages: Vec<(String, String, Vec<u8>)>,
        chunk: usize,
        pause: Duration,
    ) -> std::thread::JoinHandle<()> {
        let p = self.producer();
        std::thread::spawn(move || {
            for c in messages.chunks(chunk) {
                for (t, k, v) in c {
                    send(&p, t, k, v);
                }
                std::thread::sleep(pause);
            }
            p.flush(Duration::from_secs(30)).expect("flush");
        })
    }

    /// Every message of `topic`, read from the start until `expected` are seen or 30 s pass.
    pub fn read_topic(&self, topic: &str, expected: usize) -> Vec<Consumed> {
        let c: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", self.brokers())
            .set("group.id", "weir-e2e-reader")
            .set("enable.auto.commit", "false")
            .create()
            .expect("consumer");
        let mut tpl = TopicPartitionList::new();
        for p in 0..self.partitions() {
            tpl.add_partition_offset(topic, p, Offset::Beginning)
                .expect("tpl");
        }
        c.assign(&tpl).expect("assign");
        let mut out = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut quiet_since = Instant::now();
        while Instant::now() < deadline {
            match c.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => {
                    quiet_since = Instant::now();
                    let headers = m
                        .headers()
                        .map(|h| {
                            h.iter()
                                .map(|h| {
                                    (
                                        h.key.to_string(),
                                        String::from_utf8_lossy(h.value.unwrap_or_default())
                                            .into_owned(),
                                    )
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    out.push(Consumed {
                        key: m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
                        value: m.payload().unwrap_or_default().to_vec(),
                        headers,
                    });
                }
                Some(Err(e)) => panic!("reading {topic}: {e}"),
                // Past the expected count, wait a little for extras (duplicates) before stopping.
                None if out.len() >= expected
                    && quiet_since.elapsed() > Duration::from_millis(500) =>
                {
                    break
                }
                None => {}
            }
        }
        out
    }
}

/// A Tansu broker (tests/tansu.sh installs it; `WEIR_TANSU` names the binary), in a folder of
/// its own (it reads a `.env` file where it starts), stopped when dropped.
pub struct Tansu {
    child: Child,
    address: String,
    dir: tempfile::TempDir,
    partitions: i32,
}

impl Tansu {
    fn binary() -> PathBuf {
        let path = std::env::var("WEIR_TANSU")
            .map(PathBuf::from)
            .unwrap_or_else(|_| {
                let home = std::env::var("HOME").unwrap_or_default();
                Path::new(&home).join(".cache/weir/tansu-0.6.0-debug/bin/tansu")
            });
        assert!(
            path.exists(),
            "{}: no Tansu broker; tests/run.sh installs it (tests/tansu.sh)",
            path.display()
        );
        path
    }

    fn start(topics: &[&str], partitions: i32) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let mut t = Tansu {
            child: Self::spawn(dir.path(), port),
            address: format!("127.0.0.1:{port}"),
            dir,
            partitions,
        };
        t.wait_listening();
        let url = t.url();
        for topic in topics {
            let out = Command::new(Self::binary())
                .args(["topic", "create", "--broker", &url, "--partitions"])
                .arg(partitions.to_string())
                .arg(topic)
                .current_dir(t.dir.path())
                .output()
                .expect("tansu topic create");
            assert!(
                out.status.success(),
                "creating {topic}: {}\n{}",
                String::from_utf8_lossy(&out.stderr),
                t.log()
            );
        }
        t
    }

    fn url(&self) -> String {
        format!("tcp://{}", self.address)
    }

    /// The broker in `dir` (its SQLite file there), listening on `port`; its log is appended to.
    fn spawn(dir: &Path, port: u16) -> Child {
        let url = format!("tcp://127.0.0.1:{port}");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("tansu.log"))
            .expect("log file");
        Command::new(Self::binary())
            .arg("broker")
            .args(["--listener-url", &url, "--advertised-listener-url", &url])
            .args(["--storage-engine", "sqlite://tansu.db"]) // in its folder
            .current_dir(dir)
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("start tansu")
    }

    fn wait_listening(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(&self.address).is_err() {
            let exited = self.child.try_wait().expect("wait").is_some();
            assert!(
                !exited && Instant::now() < deadline,
                "tansu did not listen\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills the broker (SIGKILL), waits `down`, and starts it again on the same address and
    /// storage.
    pub fn restart(&mut self, down: Duration) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::thread::sleep(down);
        let port = self
            .address
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("port");
        self.child = Self::spawn(self.dir.path(), port);
        self.wait_listening();
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("tansu.log")).unwrap_or_default()
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn send(p: &ThreadedProducer<DefaultProducerContext>, topic: &str, key: &str, value: &[u8]) {
    let mut record = BaseRecord::to(topic).key(key).payload(value);
    loop {
        match p.send(record) {
            Ok(()) => return,
            Err((_, r)) => {
                record = r;
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
}

/// One message read back.
#[derive(Debug, Clone)]
pub struct Consumed {
    pub key: Option<String>,
    pub value: Vec<u8>,
    pub headers: BTreeMap<String, String>,
}

/// A scratch folder with a config in it. Runs it started that are still alive when it is
/// dropped (a test that failed midway) are killed, so they don't load the machine for the tests
/// that follow.
pub struct Workdir {
    pub dir: tempfile::TempDir,
    started: std::cell::RefCell<Vec<u32>>,
}

impl Drop for Workdir {
    fn drop(&mut self) {
        let ours = self.path().to_string_lossy().into_owned();
        for pid in self.started.borrow().iter() {
            // Only a process still running one of our configs: a reaped pid may be reused.
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains(&ours) {
                let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            }
        }
    }
}

impl Workdir {
    pub fn new() -> Self {
        Workdir {
            dir: tempfile::tempdir().expect("tempdir"),
            started: Default::default(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write_config(&self, yaml: &str) -> PathBuf {
        let path = self.path().join("weir.yaml");
        std::fs::write(&path, yaml).expect("write config");
        path
    }

    /// Starts `weir run`; stdout and stderr go to files in the workdir.
    pub fn spawn(&self, config: &Path, run: usize) -> Child {
        let out = File::create(self.path().join(format!("run{run}.out"))).expect("log file");
        let err = File::create(self.path().join(format!("run{run}.err"))).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_weir"))
            .args(["run", "--config"])
            .arg(config)
            .arg("--summary-json")
            .arg(self.path().join(format!("run{run}.json")))
            .env(
                "WEIR_LOG",
                std::env::var("WEIR_TEST_LOG").unwrap_or(
                    "info,librdkafka=warn,buoyant_kernel=warn,deltalake_core=warn".into(),
                ),
            )
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("spawn weir");
        self.started.borrow_mut().push(child.id());
        child
    }

    /// Waits for a run to exit by itself, at most `limit`.
    pub fn wait(&self, child: &mut Child, run: usize, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!(
                    "weir run {run} did not finish in {limit:?}\n{}",
                    self.logs(run)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn logs(&self, run: usize) -> String {
        let read = |ext: &str| {
            std::fs::read_to_string(self.path().join(format!("run{run}.{ext}"))).unwrap_or_default()
        };
        format!("--- stdout\n{}\n--- stderr\n{}", read("out"), read("err"))
    }

    /// The sum of a run's committed offsets: the number of messages it committed past.
    pub fn committed_total(&self, run: usize) -> i64 {
        let s = self.summary(run);
        let committed = s["committed"].as_object().expect("committed offsets");
        committed
            .values()
            .map(|v| v.as_i64().expect("offset"))
            .sum()
    }

    pub fn summary(&self, run: usize) -> serde_json::Value {
        let text = std::fs::read_to_string(self.path().join(format!("run{run}.json")))
            .unwrap_or_else(|e| panic!("summary of run {run}: {e}\n{}", self.logs(run)));
        serde_json::from_str(&text).expect("summary json")
    }
}

/// Sends `sig` (a `kill` signal name: TERM, KILL, HUP) to a worker.
pub fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{sig}"), &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(ok.success());
}

/// Finished Parquet files in `dir` (hidden temporary files are not output).
pub fn parquet_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    files.sort();
    files
}

/// The string column `column` of every finished Parquet file in `dir`, as a multiset.
pub fn parquet_column(dir: &Path, column: &str) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for f in parquet_files(dir) {
        let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(&f).expect("open"))
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()))
            .build()
            .expect("reader");
        for batch in reader {
            let batch = batch.expect("batch");
            let col = batch.column_by_name(column).expect("column");
            let col = col
                .as_any()
                .downcast_ref::<StringArray>()
                .expect("utf8 column");
            for v in col.iter().flatten() {
                *out.entry(v.to_string()).or_insert(0) += 1;
            }
        }
    }
    out
}

/// Each poison message (key, original bytes, a piece of the reason) is a dead letter from the
/// decode stage with its original bytes and the reason; nothing else is.
pub fn assert_decode_dead_letters(dead: &[Consumed], poison: &[(&str, Vec<u8>, &str)], logs: &str) {
    assert_eq!(dead.len(), poison.len(), "{logs}");
    for (key, value, reason) in poison {
        let d = dead
            .iter()
            .find(|d| d.key.as_deref() == Some(*key))
            .unwrap_or_else(|| panic!("no dead letter for {key}"));
        assert_eq!(&d.value, value, "{key}: original bytes kept");
        let error = &d.headers["weir.error"];
        assert!(error.contains(reason), "{key}: {error}");
        assert_eq!(d.headers["weir.stage"], "decode", "{key}");
    }
}

/// Keys of consumed messages, as a multiset.
pub fn keys(messages: &[Consumed]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for m in messages {
        *out.entry(m.key.clone().unwrap_or_default()).or_insert(0) += 1;
    }
    out
}

/// A config for the test topology: orders filtered (amount > 100) into Parquet, payments to a
/// topic, bad input to the DLQ.
pub fn config(brokers: &str, out: &Path, until_idle: Option<&str>) -> String {
    let idle = until_idle
        .map(|d| format!("    until_idle: {d}\n"))
        .unwrap_or_default();
    format!(
        r#"source:
  kafka:
    brokers: "{brokers}"
    group_id: weir-e2e
    topics: [orders, payments, misc]
    batch: {{ max_records: 2000, max_wait: 50ms }}
    commit_interval: 200ms
    # A killed member holds its partitions until its session times out: keep that short here.
    settings: {{ session.timeout.ms: "6000", heartbeat.interval.ms: "500" }}
{idle}decode:
  metadata: [_topic, _partition, _offset]
  schemas:
    orders: {{ fields: {{ id: utf8, amount: float64, customer: "struct<tier: utf8>" }} }}
    payments: {{ fields: {{ id: utf8, amount: float64 }} }}
    misc: {{ fields: {{ id: utf8 }} }}
routes:
  - name: big-orders
    match: orders
    transforms:
      - plugin: builtin:filter
        params: {{ where: "amount > `100`" }}
    sink:
      parquet: {{ path: "{out}", max_rows: 3000, max_age: 1s }}
  - name: payments
    match: payments
    sink:
      kafka: {{ topic: payments-clean, key: id }}
errors:
  dead_letter: {{ kafka: {{ topic: weir-dlq }} }}
"#,
        out = out.display()
    )
}

pub const TOPICS: [&str; 5] = ["orders", "payments", "misc", "payments-clean", "weir-dlq"];

/// The test venv's Python (tests/run.sh installs pyarrow, fastavro, deltalake and moto there;
/// `WEIR_PYTHON` overrides it).
pub fn python() -> PathBuf {
    let venv = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/.venv/bin/python"
    ));
    std::env::var("WEIR_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            if venv.exists() {
                venv.to_path_buf()
            } else {
                "python3".into()
            }
        })
}

/// The path of `tests/python/SCRIPT`.
pub fn python_script_path(script: &str) -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/python")).join(script)
}

/// Runs `tests/python/SCRIPT` with [`python`].
pub fn python_script(script: &str, args: &[String]) -> std::process::Output {
    let python = python();
    Command::new(&python)
        .arg(python_script_path(script))
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e} (tests/run.sh installs the test venv)",
                python.display()
            )
        })
}
