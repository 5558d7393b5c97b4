//! Hot reload of transforms: plugin files, the files they are granted, and the config.
//!
//! A watcher thread checks the files every `runtime.reload.poll_interval` by path (`stat`), not
//! with inotify: editors and Kubernetes ConfigMaps replace files (a rename, a symlink swap), which
//! path-based checks see and inode watches miss, and a few `stat`s a second cost nothing. A file
//! must look the same on two checks in a row before it is read, so a half-written file is never
//! loaded. SIGHUP reloads at once, changed or not.
//!
//! Everything slow happens on the watcher thread, off the hot path: the config is read and
//! validated, each changed route's plugins are compiled, instantiated and initialized with their
//! params (which checks the ABI version and the manifest), and the new chain runs on an empty
//! batch of the route's schema. Only a version that passes all of that is handed to the worker,
//! which swaps it in between two batches. A version that fails is refused, logged and counted,
//! and the running one keeps going.
//!
//! What a reload can change: each route's `transforms` (plugins, params, files, limits) and its
//! `on_error`, `errors.on_transform_error`, and the runtime's default limits. Any other change
//! (sources, sinks, routes added or removed...) needs a restart: the whole reload is refused and
//! the message names the first key that differs.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;

use crate::config::{ErrorPolicy, LoadedConfig};
use crate::runtime::{Instance, Runtime};

use super::{build_stages, Compiled};

/// A checked new version of the transforms, handed to the worker.
pub(crate) struct Prepared {
    /// Per route, in config order: the new stages (`None`: unchanged) and the error policy.
    pub routes: Vec<(Option<Vec<Instance>>, ErrorPolicy)>,
    /// What changed, for the log.
    pub what: String,
}

/// Reload counts, shared by the watcher and the worker.
#[derive(Debug, Default)]
pub struct ReloadStats {
    /// New versions swapped in.
    pub applied: AtomicU64,
    /// New versions refused (the running one kept going).
    pub refused: AtomicU64,
}

/// Each route's latest input schema, which the worker records and the empty-batch check uses.
pub(crate) type Schemas = Arc<Mutex<Vec<Option<SchemaRef>>>>;

/// What `stat` says of a file: a change in any part is a change of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

fn stamp(path: &Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata(path).ok().map(|m| Stamp {
        modified: m.modified().ok(),
        len: m.len(),
        inode: m.ino(),
    })
}

type Stamps = BTreeMap<PathBuf, Option<Stamp>>;

/// The watcher: holds the config that runs and sends checked new versions to the worker.
pub(crate) struct Watcher<'a> {
    runtime: &'a Runtime,
    running: LoadedConfig,
    /// `running`'s files' stamps when it was loaded: what differs from them changed.
    applied: Stamps,
    /// `running`'s config without what a reload may change (see [`shape`]).
    shape: serde_json::Value,
    schemas: Schemas,
    tx: SyncSender<Prepared>,
    stats: Arc<ReloadStats>,
    metrics: Option<Arc<crate::metrics::Metrics>>,
}

impl<'a> Watcher<'a> {
    /// A watcher of `running`'s files as they are now.
    pub(crate) fn new(
        runtime: &'a Runtime,
        running: &LoadedConfig,
        tx: SyncSender<Prepared>,
        stats: Arc<ReloadStats>,
    ) -> Self {
        Watcher {
            runtime,
            running: running.clone(),
            applied: stamps(running),
            // Null (compared unequal to any config) only if the file just loaded can't be read.
            shape: std::fs::read_to_string(&running.file)
                .ok()
                .and_then(|text| shape_of(&text).ok())
                .unwrap_or_default(),
            schemas: Schemas::default(),
            tx,
            stats,
            metrics: None,
        }
    }

    /// Where refused reloads are counted for Prometheus.
    pub(crate) fn with_metrics(self, metrics: Arc<crate::metrics::Metrics>) -> Self {
        Watcher {
            metrics: Some(metrics),
            ..self
        }
    }

    /// Where the worker records each route's input schema.
    pub(crate) fn with_schemas(self, schemas: Schemas) -> Self {
        Watcher { schemas, ..self }
    }

    /// Checks the files until `done`; reloads when they changed (and `watch`), or on `force`.
    pub(crate) fn run(mut self, done: &AtomicBool, force: &AtomicBool) {
        let r = &self.running.config.runtime.reload;
        let (watch, poll) = (r.watch, r.poll_interval);
        // The stamps at the last attempt, and at the previous check.
        let mut seen = self.applied.clone();
        let mut previous = seen.clone();
        let mut next = Instant::now() + poll;
        while !done.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(20).min(poll));
            let forced = force.swap(false, Ordering::Relaxed);
            if !forced && (!watch || Instant::now() < next) {
                continue;
            }
            next = Instant::now() + poll;
            let now = stamps(&self.running);
            // Changed since the last attempt, and the same as at the previous check: settled.
            let settled = now != seen && now == previous;
            previous = now.clone();
            if forced || settled {
                let why = if forced { "SIGHUP" } else { "files changed" };
                if !self.attempt(why, forced, done) {
                    return;
                }
                // A refused version is not tried again until a file changes again.
                seen = stamps(&self.running);
                previous = seen.clone();
            }
        }
    }

    /// One reload; false when the worker is gone or done.
    fn attempt(&mut self, why: &str, forced: bool, done: &AtomicBool) -> bool {
        let _span = tracing::info_span!("reload", trigger = why).entered();
        match self.prepare(forced) {
            Ok(None) => tracing::info!("nothing to reload"),
            Ok(Some((prepared, config, shape))) => {
                tracing::info!(what = %prepared.what, "new version checked; swapping it in between batches");
                // Not a blocking send: a worker that has stopped never takes it, and the worker's
                // end waits for this thread.
                let mut prepared = prepared;
                loop {
                    match self.tx.try_send(prepared) {
                        Ok(()) => break,
                        Err(TrySendError::Full(p)) if !done.load(Ordering::Relaxed) => {
                            prepared = p;
                            std::thread::sleep(Duration::from_millis(10));
                        }
                        Err(_) => return false,
                    }
                }
                self.running = config;
                self.shape = shape;
                self.applied = stamps(&self.running);
            }
            Err(e) => {
                self.stats.refused.fetch_add(1, Ordering::Relaxed);
                if let Some(m) = &self.metrics {
                    m.reloads
                        .get_or_create(&crate::metrics::OutcomeLabels { outcome: "refused" })
                        .inc();
                }
                tracing::error!("reload refused, the running version keeps going: {e}");
            }
        }
        true
    }

    /// Reads the config, builds and checks what changed. `forced` rebuilds every route.
    fn prepare(
        &self,
        forced: bool,
    ) -> Result<Option<(Prepared, LoadedConfig, serde_json::Value)>, String> {
        // One read of the file for both, so they can't see two versions of it.
        let file = &self.running.file;
        let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
        let new = LoadedConfig::from_str(&text, file).map_err(|e| e.to_string())?;
        let new_shape = shape_of(&text).map_err(|e| format!("{}: {e}", file.display()))?;
        if let Some(key) = first_difference(&self.shape, &new_shape) {
            return Err(format!(
                "`{key}` changed, and only transforms, on_error and runtime limits reload; \
                 restart the worker to apply it"
            ));
        }
        let now = stamps(&new);
        let (old, cfg) = (&self.running.config, &new.config);
        let limits_changed = {
            let (a, b) = (&old.runtime, &cfg.runtime);
            (a.time_budget, a.memory_limit, a.max_output)
                != (b.time_budget, b.memory_limit, b.max_output)
        };
        let base = new.file.parent().unwrap_or(Path::new("."));
        let mut compiled: Compiled = HashMap::new();
        let mut routes = Vec::new();
        let mut what = Vec::new();
        for (i, (was, route)) in old.routes.iter().zip(&cfg.routes).enumerate() {
            let policy = route.on_error.unwrap_or(cfg.errors.on_transform_error);
            let files_changed = route_files(&new, i)
                .iter()
                .any(|f| now.get(f) != self.applied.get(f));
            let changed =
                forced || limits_changed || files_changed || was.transforms != route.transforms;
            if policy != was.on_error.unwrap_or(old.errors.on_transform_error) {
                what.push(format!(
                    "route {}: on_error {policy:?}",
                    route.display_name()
                ));
            }
            if !changed {
                routes.push((None, policy));
                continue;
            }
            let mut stages = build_stages(cfg, route, self.runtime, base, &mut compiled)
                .map_err(|e| format!("route {}: {e}", route.display_name()))?;
            let schema = self
                .schemas
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(i)
                .cloned()
                .flatten();
            if let Some(schema) = schema {
                check_empty(&mut stages, schema)
                    .map_err(|e| format!("route {}: {e}", route.display_name()))?;
            }
            what.push(format!(
                "route {}: {} transform(s)",
                route.display_name(),
                stages.len()
            ));
            routes.push((Some(stages), policy));
        }
        if what.is_empty() {
            return Ok(None);
        }
        let prepared = Prepared {
            routes,
            what: what.join("; "),
        };
        Ok(Some((prepared, new, new_shape)))
    }
}

/// Runs a new chain on an empty batch of the route's schema: a version that can't take the
/// batches it would get is refused before it runs on one.
fn check_empty(stages: &mut [Instance], schema: SchemaRef) -> Result<(), String> {
    let mut batch = RecordBatch::new_empty(schema);
    for stage in stages {
        batch = stage
            .call(&batch)
            .map_err(|f| {
                format!(
                    "plugin {} on an empty batch of the route's schema: {f}",
                    stage.plugin_name()
                )
            })?
            .batch;
    }
    Ok(())
}

/// The files a config runs from: itself, and each route's plugin files and granted files.
fn stamps(cfg: &LoadedConfig) -> Stamps {
    let mut files = vec![cfg.file.clone()];
    for i in 0..cfg.config.routes.len() {
        files.extend(route_files(cfg, i));
    }
    files.into_iter().map(|f| (f.clone(), stamp(&f))).collect()
}

fn route_files(cfg: &LoadedConfig, route: usize) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for t in &cfg.config.routes[route].transforms {
        if !t.plugin.starts_with("builtin:") {
            files.push(cfg.resolve(Path::new(&t.plugin)));
        }
        files.extend(t.files.values().map(|p| cfg.resolve(p)));
    }
    files
}

/// A config's text as a tree, without what a reload may change.
fn shape_of(text: &str) -> Result<serde_json::Value, String> {
    let mut v: serde_json::Value = serde_saphyr::from_str(text).map_err(|e| e.to_string())?;
    if let Some(routes) = v.get_mut("routes").and_then(|r| r.as_array_mut()) {
        for r in routes.iter_mut().filter_map(|r| r.as_object_mut()) {
            r.remove("transforms");
            r.remove("on_error");
        }
    }
    if let Some(e) = v.get_mut("errors").and_then(|e| e.as_object_mut()) {
        e.remove("on_transform_error");
    }
    if let Some(rt) = v.get_mut("runtime").and_then(|r| r.as_object_mut()) {
        for key in ["time_budget", "memory_limit", "max_output"] {
            rt.remove(key);
        }
    }
    Ok(v)
}

/// The path of the first place where `a` and `b` differ, or `None` when they are equal.
fn first_difference(a: &serde_json::Value, b: &serde_json::Value) -> Option<String> {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().find_map(|k| match (x.get(k), y.get(k)) {
                (Some(p), Some(q)) => first_difference(p, q).map(|d| join(k, &d)),
                _ => Some(k.clone()),
            })
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (p, q))| first_difference(p, q).map(|d| join(&format!("[{i}]"), &d))),
        _ if a == b => None,
        _ => Some(String::new()),
    }
}

fn join(head: &str, rest: &str) -> String {
    match rest {
        "" => head.to_string(),
        r if r.starts_with('[') => format!("{head}{r}"),
        r => format!("{head}.{r}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn first_difference_names_the_key() {
        let a = json!({"source": {"kafka": {"topics": ["a"]}}, "routes": [{"match": "x"}]});
        assert_eq!(first_difference(&a, &a), None);
        let b = json!({"source": {"kafka": {"topics": ["b"]}}, "routes": [{"match": "x"}]});
        assert_eq!(
            first_difference(&a, &b).as_deref(),
            Some("source.kafka.topics[0]")
        );
        let c = json!({"source": {"kafka": {"topics": ["a"]}}, "routes": [{"match": "y"}]});
        assert_eq!(first_difference(&a, &c).as_deref(), Some("routes[0].match"));
        let d = json!({"source": {"kafka": {"topics": ["a"]}}, "routes": []});
        assert_eq!(first_difference(&a, &d).as_deref(), Some("routes"));
        let e = json!({"source": {"kafka": {"topics": ["a"]}}});
        assert_eq!(first_difference(&a, &e).as_deref(), Some("routes"));
    }

    #[test]
    fn the_shape_leaves_out_what_reloads() {
        let a = "routes:\n  - match: x\n    transforms: [{plugin: a.wasm}]\n    sink: {parquet: {path: o}}\n\
                 errors: {on_transform_error: dead_letter}\nruntime: {time_budget: 1s, cache_dir: c}\n";
        let b = "routes:\n  - match: x\n    on_error: skip\n    sink: {parquet: {path: o}}\n\
                 errors: {on_transform_error: stop}\nruntime: {time_budget: 2s, cache_dir: c}\n";
        assert_eq!(shape_of(a).unwrap(), shape_of(b).unwrap());
        let c = a.replace("path: o", "path: p");
        assert_eq!(
            first_difference(&shape_of(a).unwrap(), &shape_of(&c).unwrap()).as_deref(),
            Some("routes[0].sink.parquet.path")
        );
    }
}
