//! Prometheus metrics, and the HTTP endpoint that serves them beside `/healthz` and `/readyz`.
//!
//! Names and units follow the Prometheus conventions: a `weir_` prefix, base units (seconds,
//! bytes), `_total` on counters (added by the OpenMetrics encoder). Label sets are small and
//! bounded: route, plugin, stage, outcome.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

/// A route.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// The route's name.
    pub route: String,
}

/// A pipeline stage (`poll`, `decode`, `transform`, `sink`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StageLabels {
    /// The stage.
    pub stage: &'static str,
}

/// Where a dead letter was set aside.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeadLetterLabels {
    /// `decode`, `route`, `transform` or `sink`.
    pub stage: String,
    /// The route, or empty before routing.
    pub route: String,
}

/// One plugin on one route.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PluginLabels {
    /// The route.
    pub route: String,
    /// The plugin as configured.
    pub plugin: String,
}

/// A failed plugin call.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailureLabels {
    /// The route.
    pub route: String,
    /// The plugin.
    pub plugin: String,
    /// `trap`, `timeout`, `error`, `bad_output` or `reinstantiate`.
    pub kind: &'static str,
}

/// A topic partition.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PartitionLabels {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
}

/// A reload's outcome.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// `applied` or `refused`.
    pub outcome: &'static str,
}

fn seconds_histogram() -> Histogram {
    // 50 µs .. about 26 s.
    Histogram::new(exponential_buckets(50e-6, 2.0, 20))
}

/// Every metric weir exports.
pub struct Metrics {
    registry: Registry,
    /// Messages polled.
    pub consumed: Counter,
    /// Bytes of message values polled.
    pub consumed_bytes: Counter,
    /// Messages per poll.
    pub batch_messages: Histogram,
    /// Time per batch in each stage.
    pub stage_seconds: Family<StageLabels, Histogram>,
    /// Messages routed to a route.
    pub route_messages: Family<RouteLabels, Counter>,
    /// Rows a route wrote to its sink.
    pub route_rows_out: Family<RouteLabels, Counter>,
    /// Rows a route's transforms filtered out.
    pub route_filtered: Family<RouteLabels, Counter>,
    /// Messages dropped by `on_error: skip`.
    pub route_skipped: Family<RouteLabels, Counter>,
    /// Bytes of the message values routed to a route.
    pub route_bytes_in: Family<RouteLabels, Counter>,
    /// Bytes a route's sink wrote (data files, or Kafka keys and values).
    pub route_bytes_out: Family<RouteLabels, Counter>,
    /// Dead letters, by stage and route.
    pub dead_letters: Family<DeadLetterLabels, Counter>,
    /// Time per plugin call.
    pub plugin_call_seconds: Family<PluginLabels, Histogram, fn() -> Histogram>,
    /// Failed plugin calls, by kind.
    pub plugin_failures: Family<FailureLabels, Counter>,
    /// A plugin instance's linear memory.
    pub plugin_memory_bytes: Family<PluginLabels, Gauge>,
    /// Hot reloads, by outcome.
    pub reloads: Family<OutcomeLabels, Counter>,
    /// Offset commits.
    pub commits: Counter,
    /// Time per offset commit (a synchronous round trip to the group coordinator).
    pub commit_seconds: Histogram,
    /// Whether partitions are assigned (1) or not (0).
    pub assigned: Gauge,
    /// Messages between each partition's high watermark and its committed offset (what is not
    /// yet safe in a sink), from librdkafka's statistics.
    pub consumer_lag: Family<PartitionLabels, Gauge>,
    /// The sum of `consumer_lag` at the last statistics, for the progress line.
    pub lag_total: std::sync::atomic::AtomicI64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// The metrics, registered.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("weir");
        let m = Metrics {
            consumed: Counter::default(),
            consumed_bytes: Counter::default(),
            batch_messages: Histogram::new(exponential_buckets(1.0, 4.0, 10)),
            stage_seconds: Family::new_with_constructor(seconds_histogram),
            route_messages: Family::default(),
            route_rows_out: Family::default(),
            route_filtered: Family::default(),
            route_skipped: Family::default(),
            route_bytes_in: Family::default(),
            route_bytes_out: Family::default(),
            dead_letters: Family::default(),
            plugin_call_seconds: Family::new_with_constructor(seconds_histogram),
            plugin_failures: Family::default(),
            plugin_memory_bytes: Family::default(),
            reloads: Family::default(),
            commits: Counter::default(),
            commit_seconds: seconds_histogram(),
            assigned: Gauge::default(),
            consumer_lag: Family::default(),
            lag_total: Default::default(),
            registry: Registry::default(),
        };
        registry.register("consumed_messages", "Messages polled", m.consumed.clone());
        registry.register_with_unit(
            "consumed",
            "Bytes of message values polled",
            Unit::Bytes,
            m.consumed_bytes.clone(),
        );
        registry.register(
            "batch_messages",
            "Messages per poll",
            m.batch_messages.clone(),
        );
        registry.register_with_unit(
            "stage",
            "Time per batch in each pipeline stage: poll (gathering a batch from Kafka), decode, transform, sink",
            Unit::Seconds,
            m.stage_seconds.clone(),
        );
        registry.register(
            "route_messages",
            "Messages routed to each route",
            m.route_messages.clone(),
        );
        registry.register(
            "route_rows_out",
            "Rows each route wrote to its sink",
            m.route_rows_out.clone(),
        );
        registry.register(
            "route_filtered_rows",
            "Rows each route's transforms removed",
            m.route_filtered.clone(),
        );
        registry.register(
            "route_skipped_messages",
            "Messages dropped by on_error: skip",
            m.route_skipped.clone(),
        );
        registry.register_with_unit(
            "route_received",
            "Bytes of the message values routed to each route",
            Unit::Bytes,
            m.route_bytes_in.clone(),
        );
        registry.register_with_unit(
            "route_written",
            "Bytes each route's sink wrote: Parquet and Delta data files, Kafka keys and values",
            Unit::Bytes,
            m.route_bytes_out.clone(),
        );
        registry.register(
            "dead_letters",
            "Messages sent to the dead-letter topic, by stage",
            m.dead_letters.clone(),
        );
        registry.register_with_unit(
            "plugin_call",
            "Time per plugin call",
            Unit::Seconds,
            m.plugin_call_seconds.clone(),
        );
        registry.register(
            "plugin_failures",
            "Failed plugin calls, by kind",
            m.plugin_failures.clone(),
        );
        registry.register_with_unit(
            "plugin_memory",
            "A plugin instance's linear memory",
            Unit::Bytes,
            m.plugin_memory_bytes.clone(),
        );
        registry.register("reloads", "Hot reloads, by outcome", m.reloads.clone());
        registry.register("commits", "Offset commits", m.commits.clone());
        registry.register_with_unit(
            "commit",
            "Time per offset commit",
            Unit::Seconds,
            m.commit_seconds.clone(),
        );
        registry.register(
            "partitions_assigned",
            "1 while this worker holds partitions",
            m.assigned.clone(),
        );
        registry.register(
            "consumer_lag_messages",
            "Messages between the high watermark and the committed offset, per partition",
            m.consumer_lag.clone(),
        );
        Metrics { registry, ..m }
    }

    /// The handles a plugin instance on `route` observes its calls with.
    pub fn calls(&self, route: &str, plugin: &str) -> crate::runtime::CallMetrics {
        let labels = PluginLabels {
            route: route.into(),
            plugin: plugin.into(),
        };
        crate::runtime::CallMetrics {
            seconds: self.plugin_call_seconds.get_or_create_owned(&labels),
            memory: self.plugin_memory_bytes.get_or_create_owned(&labels),
            failures: self.plugin_failures.clone(),
            route: route.into(),
            plugin: plugin.into(),
        }
    }

    /// A route's counter in `family`, resolved once.
    pub fn route(family: &Family<RouteLabels, Counter>, route: &str) -> Counter {
        family.get_or_create_owned(&RouteLabels {
            route: route.into(),
        })
    }

    /// The metrics in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Serves `/metrics`, `/healthz` (the process answers) and `/readyz` ([`READY`]: partitions
/// held, sinks reachable; otherwise 503 and why) on `addr`, on a thread of its own, until the
/// process ends. Returns the bound address.
pub fn serve(metrics: Arc<Metrics>, addr: &str) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr)?;
    let bound = listener.local_addr()?;
    std::thread::Builder::new()
        .name("weir-metrics".into())
        .spawn(move || {
            for conn in listener.incoming().flatten() {
                if let Err(e) = answer(conn, &metrics) {
                    tracing::debug!("metrics endpoint: {e}");
                }
            }
        })?;
    tracing::info!(address = %bound, "metrics on /metrics, health on /healthz and /readyz");
    Ok(bound)
}

/// What `/readyz` answers: ready while the worker holds partitions and its sinks are reachable.
pub static READY: Readiness = Readiness {
    held: AtomicBool::new(false),
    unreachable: Mutex::new(None),
};

/// The worker's readiness: set by the worker loop and the producer's broker statistics.
pub struct Readiness {
    held: AtomicBool,
    /// Why a sink is unreachable, while it is.
    unreachable: Mutex<Option<String>>,
}

impl Readiness {
    /// Whether the worker holds partitions (and processes them).
    pub fn set_held(&self, held: bool) {
        self.held.store(held, Ordering::Relaxed);
    }

    /// A sink's reachability: `Some(why)` while it is unreachable, `None` once it is again.
    pub fn set_unreachable(&self, why: Option<String>) {
        *self
            .unreachable
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = why;
    }

    /// `Ok` when ready, else why not.
    pub fn check(&self) -> Result<(), String> {
        if let Some(why) = &*self
            .unreachable
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
        {
            return Err(why.clone());
        }
        if !self.held.load(Ordering::Relaxed) {
            return Err("no partitions assigned".into());
        }
        Ok(())
    }
}

fn answer(conn: TcpStream, metrics: &Metrics) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    // Headers are read and ignored.
    let mut line = String::new();
    while reader.read_line(&mut line)? > 2 {
        line.clear();
    }
    let path = request.split_whitespace().nth(1).unwrap_or("/");
    let (status, kind, body) = match path {
        "/metrics" => (
            "200 OK",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            metrics.encode(),
        ),
        "/healthz" => ("200 OK", "text/plain", "ok\n".to_string()),
        "/readyz" => match READY.check() {
            Ok(()) => ("200 OK", "text/plain", "ready\n".into()),
            Err(why) => ("503 Service Unavailable", "text/plain", format!("{why}\n")),
        },
        _ => ("404 Not Found", "text/plain", "not found\n".into()),
    };
    let mut conn = conn;
    write!(
        conn,
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    conn.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_are_named_by_the_conventions() {
        let m = Metrics::new();
        m.consumed.inc_by(3);
        m.route_messages
            .get_or_create(&RouteLabels {
                route: "orders".into(),
            })
            .inc();
        m.stage_seconds
            .get_or_create(&StageLabels { stage: "decode" })
            .observe(0.001);
        let text = m.encode();
        assert!(text.contains("weir_consumed_messages_total 3"), "{text}");
        assert!(
            text.contains("weir_route_messages_total{route=\"orders\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE weir_stage_seconds histogram"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"));
    }

    /// Every metric the Grafana dashboard queries is one weir exports.
    #[test]
    fn the_dashboard_queries_exported_metrics() {
        let dashboard = include_str!("../../../config/grafana/weir-dashboard.json");
        // A family without samples is not encoded: give each one.
        let m = Metrics::new();
        let route = RouteLabels { route: "r".into() };
        for f in [
            &m.route_messages,
            &m.route_rows_out,
            &m.route_filtered,
            &m.route_skipped,
            &m.route_bytes_in,
            &m.route_bytes_out,
        ] {
            f.get_or_create(&route).inc();
        }
        m.stage_seconds
            .get_or_create(&StageLabels { stage: "decode" })
            .observe(1.0);
        m.dead_letters
            .get_or_create(&DeadLetterLabels {
                stage: "decode".into(),
                route: String::new(),
            })
            .inc();
        let calls = m.calls("r", "p");
        calls.seconds.observe(1.0);
        calls.memory.set(1);
        m.plugin_failures
            .get_or_create(&FailureLabels {
                route: "r".into(),
                plugin: "p".into(),
                kind: "trap",
            })
            .inc();
        m.reloads
            .get_or_create(&OutcomeLabels { outcome: "applied" })
            .inc();
        m.consumer_lag
            .get_or_create(&PartitionLabels {
                topic: "t".into(),
                partition: 0,
            })
            .set(1);
        let exported = m.encode();
        let types: Vec<&str> = exported
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split(' ').next())
            .collect();
        let re = regex::Regex::new(r"weir_[a-z_]+").unwrap();
        let mut checked = 0;
        for m in re.find_iter(dashboard) {
            let name = m.as_str();
            let base = ["_bucket", "_total", "_count", "_sum"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .unwrap_or(name);
            assert!(types.contains(&base), "{name} is not exported: {types:?}");
            checked += 1;
        }
        assert!(checked >= 15);
    }

    #[test]
    fn the_endpoint_serves_metrics_and_health() {
        let m = Arc::new(Metrics::new());
        m.commits.inc();
        let addr = serve(Arc::clone(&m), "127.0.0.1:0").unwrap();
        let get = |path: &str| {
            let mut c = TcpStream::connect(addr).unwrap();
            write!(c, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
            let mut out = String::new();
            std::io::Read::read_to_string(&mut c, &mut out).unwrap();
            out
        };
        assert!(get("/metrics").contains("weir_commits_total 1"));
        assert!(get("/healthz").starts_with("HTTP/1.1 200"));
        assert!(get("/nope").starts_with("HTTP/1.1 404"));
    }
}
