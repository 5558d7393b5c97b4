//! `weir test --conformance`: checks that any plugin, in any language, keeps the ABI
//! (`guest-sdk/ABI.md`) as the host relies on it, beyond what loading it already checks.

use std::fmt;
use std::path::Path;
use std::time::Instant;

use arrow_array::RecordBatch;
use weir_guest_sdk::{abi, ipc};

use super::sample::Sample;
use crate::runtime::{FileGrants, Instance, Runtime, RuntimeError, TransformFailure};

/// The verdict of one check.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// The plugin does what the ABI asks.
    Pass(String),
    /// Allowed, but costly or suspicious; the message says why.
    Warn(String),
    /// The plugin breaks the ABI.
    Fail(String),
    /// Not checked, because an earlier check failed.
    Skip(String),
    /// A measurement, not a check.
    Info(String),
}

/// One named check and its verdict.
#[derive(Debug, Clone)]
pub struct Check {
    /// Short name.
    pub name: &'static str,
    /// What was found.
    pub verdict: Verdict,
}

/// Every check, in the order they ran.
#[derive(Debug, Default)]
pub struct Report {
    /// The checks.
    pub checks: Vec<Check>,
}

impl Report {
    /// No check failed.
    pub fn passed(&self) -> bool {
        !self
            .checks
            .iter()
            .any(|c| matches!(c.verdict, Verdict::Fail(_)))
    }

    fn push(&mut self, name: &'static str, verdict: Verdict) {
        self.checks.push(Check { name, verdict });
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (mut pass, mut warn, mut fail) = (0, 0, 0);
        for c in &self.checks {
            let (tag, text) = match &c.verdict {
                Verdict::Pass(t) => {
                    pass += 1;
                    ("PASS", t)
                }
                Verdict::Warn(t) => {
                    warn += 1;
                    ("WARN", t)
                }
                Verdict::Fail(t) => {
                    fail += 1;
                    ("FAIL", t)
                }
                Verdict::Skip(t) => ("SKIP", t),
                Verdict::Info(t) => ("INFO", t),
            };
            writeln!(f, "  {tag}  {:<18} {text}", c.name)?;
        }
        write!(f, "{pass} passed, {warn} warnings, {fail} failed")
    }
}

/// Calls made for the memory check, after the warm-up calls.
const STEADY_CALLS: usize = 200;
const WARMUP_CALLS: usize = 20;

/// Runs every check on the plugin `spec` (a path relative to `base`, or `builtin:NAME`) with
/// `params`. `sample_given` says whether the sample is the user's: a plugin that fails cleanly
/// on weir's default sample may simply need other columns, which is then only a warning.
pub fn check(
    runtime: &Runtime,
    spec: &str,
    base: &Path,
    params: &serde_json::Value,
    files: &FileGrants,
    sample: &Sample,
    sample_given: bool,
) -> Report {
    let mut report = Report::default();
    let plugin = match runtime.load(spec, base) {
        Ok(p) => {
            report.push(
                "loads",
                Verdict::Pass(
                    "compiles; exports and imports (weir.* only) have the ABI's signatures".into(),
                ),
            );
            p
        }
        Err(e) => {
            report.push("loads", Verdict::Fail(e.to_string()));
            return report;
        }
    };
    let mut instance = match plugin.instantiate("conformance", params, files.clone()) {
        Ok(i) => {
            let manifest = serde_json::to_string(i.manifest()).unwrap_or_default();
            report.push(
                "init",
                Verdict::Pass(format!(
                    "speaks ABI v{}, accepts the params; manifest {manifest}",
                    abi::ABI_VERSION
                )),
            );
            i
        }
        Err(e) => {
            report.push("init", Verdict::Fail(e.to_string()));
            return report;
        }
    };
    report.push(
        "init refuses",
        refuses_bad_params(plugin.instantiate(
            "conformance",
            &serde_json::Value::String("not the params of any plugin".into()),
            files.clone(),
        )),
    );
    report.push("alloc", alloc(&mut instance));

    // A batch the plugin can't take is its author's call on weir's sample, not on theirs.
    let unfit = |message: String| {
        if sample_given {
            Verdict::Fail(message)
        } else {
            Verdict::Warn(format!(
                "{message} (on weir's default sample: give yours with --input)"
            ))
        }
    };
    let empty = RecordBatch::new_empty(sample.schema.clone());
    report.push(
        "empty batch",
        match instance.call(&empty) {
            Ok(a) if a.batch.num_rows() == 0 => Verdict::Pass("answers a batch of 0 rows".into()),
            Ok(a) => Verdict::Fail(format!(
                "answered {} rows for a batch of none",
                a.batch.num_rows()
            )),
            Err(TransformFailure::Guest(m)) => unfit(format!("refused a batch of 0 rows: {m}")),
            Err(e) => Verdict::Fail(e.to_string()),
        },
    );

    let Some(batch) = sample.batches.iter().find(|b| b.num_rows() > 0) else {
        report.push("sample", Verdict::Skip("the sample has no rows".into()));
        return report;
    };
    let first = match instance.call(batch) {
        Ok(a) => {
            report.push(
                "sample",
                Verdict::Pass(format!(
                    "{} rows in, {} out, {} failed rows",
                    batch.num_rows(),
                    a.batch.num_rows(),
                    a.errors.len()
                )),
            );
            Some(a)
        }
        Err(TransformFailure::Guest(m)) => {
            report.push("sample", unfit(format!("failed the sample batch: {m}")));
            None
        }
        Err(e) => {
            report.push("sample", Verdict::Fail(e.to_string()));
            None
        }
    };
    if let Some(first) = first {
        report.push(
            "deterministic",
            match instance.call(batch) {
                Ok(again) if again.batch == first.batch && again.errors == first.errors => {
                    Verdict::Pass("the same batch twice gives the same answer".into())
                }
                Ok(_) => Verdict::Warn(
                    "the same batch twice gave different answers: state kept across batches?"
                        .into(),
                ),
                Err(e) => Verdict::Fail(format!("the second call failed: {e}")),
            },
        );
    }

    let mut wire = Vec::new();
    let projected = abi::project_reads(batch, instance.manifest());
    let truncated = match projected.map(|b| ipc::write_stream(&b, &mut wire)) {
        Ok(Ok(())) => wire[..wire.len() / 2].to_vec(),
        _ => Vec::new(),
    };
    report.push(
        "malformed input",
        refuses_input(&mut instance, b"this is not an Arrow IPC stream"),
    );
    report.push("truncated input", refuses_input(&mut instance, &truncated));

    let (memory, speed) = steady(&mut instance, batch, wire.len());
    report.push("memory", memory);
    report.push("speed", speed);
    report
}

fn refuses_bad_params(result: Result<Instance, RuntimeError>) -> Verdict {
    match result {
        Ok(_) => Verdict::Warn(
            "accepted a JSON string as its params: refuse params you can't use, naming the field"
                .into(),
        ),
        Err(RuntimeError::Init { message, .. }) if message.starts_with("trapped") => Verdict::Warn(
            format!("trapped on bad params instead of answering -1 with a message: {message}"),
        ),
        Err(RuntimeError::Init { message, .. })
            if message.trim().is_empty() || message == "(no error message)" =>
        {
            Verdict::Fail("refused bad params without a message (weir_last_error)".into())
        }
        Err(RuntimeError::Init { message, .. }) => {
            Verdict::Pass(format!("refuses bad params with a message: {message}"))
        }
        Err(e) => Verdict::Fail(e.to_string()),
    }
}

fn alloc(instance: &mut Instance) -> Verdict {
    for len in [0u32, 1, 7, 8, 100, 65_536] {
        match instance.probe_alloc(len) {
            Ok(ptr) if ptr % 8 != 0 => {
                return Verdict::Fail(format!(
                    "weir_alloc({len}) returned {ptr:#x}, not 8-byte aligned"
                ))
            }
            Ok(_) => {}
            Err(e) => return Verdict::Fail(format!("weir_alloc({len}) then weir_free: {e}")),
        }
    }
    Verdict::Pass(
        "weir_alloc gives aligned buffers inside memory (0 to 64 KiB); weir_free takes them back"
            .into(),
    )
}

fn refuses_input(instance: &mut Instance, input: &[u8]) -> Verdict {
    match instance.call_raw(input) {
        Err(TransformFailure::Guest(m)) if m == "(no error message)" || m.trim().is_empty() => {
            Verdict::Fail("failed without a message (weir_last_error)".into())
        }
        Err(TransformFailure::Guest(m)) => Verdict::Pass(format!("fails the call: {m}")),
        Err(e @ TransformFailure::Trap(_)) => Verdict::Warn(format!(
            "{e}: weir survives a trap but re-creates the instance; answer -1 with a message"
        )),
        Err(e) => Verdict::Fail(e.to_string()),
        Ok(answer) => Verdict::Fail(format!(
            "answered success ({} bytes) to {} bytes that are no IPC stream",
            answer.len(),
            input.len()
        )),
    }
}

/// Many calls on one batch: whether memory stops growing (a leak shows as growth in step with
/// the bytes sent), and how fast it goes.
fn steady(instance: &mut Instance, batch: &RecordBatch, wire_bytes: usize) -> (Verdict, Verdict) {
    let calls = |instance: &mut Instance, n: usize| -> Result<(), TransformFailure> {
        for _ in 0..n {
            instance.call(batch)?;
        }
        Ok(())
    };
    if let Err(e) = calls(instance, WARMUP_CALLS) {
        let v = Verdict::Skip(format!("the sample batch fails: {e}"));
        return (v.clone(), v);
    }
    let before = instance.memory_bytes().unwrap_or(0);
    let started = Instant::now();
    if let Err(e) = calls(instance, STEADY_CALLS) {
        return (
            Verdict::Fail(format!("a later call failed: {e}")),
            Verdict::Skip(String::new()),
        );
    }
    let elapsed = started.elapsed();
    let after = instance.memory_bytes().unwrap_or(0);
    let growth = after.saturating_sub(before);
    let sent = wire_bytes * STEADY_CALLS;
    let memory = if growth > (256 << 10).max(sent / 4) {
        Verdict::Fail(format!(
            "memory grew by {} KiB over {STEADY_CALLS} calls ({} KiB sent): a buffer is never freed?",
            growth >> 10,
            sent >> 10
        ))
    } else {
        Verdict::Pass(format!(
            "{} KiB of memory, grew by {} KiB over {STEADY_CALLS} calls ({} KiB sent)",
            after >> 10,
            growth >> 10,
            sent >> 10
        ))
    };
    let rows = (batch.num_rows() * STEADY_CALLS) as f64;
    let speed = Verdict::Info(format!(
        "{:.0} rows/s in batches of {} rows ({:.3} ms a call, copies included)",
        rows / elapsed.as_secs_f64().max(1e-9),
        batch.num_rows(),
        elapsed.as_secs_f64() * 1e3 / STEADY_CALLS as f64
    ));
    (memory, speed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authoring::sample::json_lines;
    use crate::runtime::tests::{answer_ptr, empty_answer, wat_guest};
    use crate::runtime::Limits;

    const ROWS: usize = 3;

    /// Checks a hand-written guest (see `wat_guest`) on a sample of `ROWS` rows, each with a
    /// text of `text_len` bytes.
    fn check_wat(wat: &str, text_len: usize) -> Report {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("guest.wat"), wat).expect("write the guest");
        let runtime = Runtime::new(
            Limits {
                time_budget: std::time::Duration::from_millis(500),
                memory_limit: 64 << 20,
                ..Limits::default()
            },
            None,
        )
        .expect("runtime");
        let text = "x".repeat(text_len);
        let lines: String = (0..ROWS)
            .map(|a| format!("{{\"a\": {a}, \"text\": \"{text}\"}}\n"))
            .collect();
        let sample = json_lines(lines.as_bytes(), 10).expect("sample");
        check(
            &runtime,
            "guest.wat",
            dir.path(),
            &serde_json::json!({}),
            &FileGrants::default(),
            &sample,
            true,
        )
    }

    fn verdict<'a>(report: &'a Report, name: &str) -> &'a Verdict {
        &report
            .checks
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no check {name} in {report}"))
            .verdict
    }

    /// A guest that answers `ROWS` rows with no columns, whatever it is given.
    fn yes_man() -> String {
        let answer = empty_answer(ROWS);
        wat_guest(&answer_ptr(answer.len()), &answer)
    }

    #[test]
    fn a_guest_that_answers_anything_fails_where_it_should() {
        let report = check_wat(&yes_man(), 1);
        assert!(!report.passed(), "{report}");
        assert!(matches!(verdict(&report, "loads"), Verdict::Pass(_)));
        assert!(matches!(verdict(&report, "alloc"), Verdict::Pass(_)));
        assert!(matches!(verdict(&report, "sample"), Verdict::Pass(_)));
        assert!(matches!(
            verdict(&report, "deterministic"),
            Verdict::Pass(_)
        ));
        assert!(matches!(verdict(&report, "memory"), Verdict::Pass(_)));
        // It ignores bad params, and answers success to garbage.
        assert!(matches!(verdict(&report, "init refuses"), Verdict::Warn(_)));
        assert!(matches!(
            verdict(&report, "malformed input"),
            Verdict::Fail(_)
        ));
        assert!(matches!(
            verdict(&report, "truncated input"),
            Verdict::Fail(_)
        ));
    }

    #[test]
    fn misaligned_buffers_fail() {
        let wat = yes_man().replace(
            "(local.set $p (global.get $bump))",
            "(local.set $p (i32.add (global.get $bump) (i32.const 4)))",
        );
        let report = check_wat(&wat, 1);
        let Verdict::Fail(why) = verdict(&report, "alloc") else {
            panic!("{report}")
        };
        assert!(why.contains("not 8-byte aligned"), "{why}");
    }

    #[test]
    fn a_leak_fails_the_memory_check() {
        // Never resets its bump allocator, and grows memory to make room.
        let wat = yes_man()
            .replace("(global.set $bump (i32.const 65536))", "")
            .replace(
                "(local.set $p (global.get $bump))",
                "(if (i32.gt_u (i32.add (global.get $bump) (local.get $len))
                        (i32.mul (memory.size) (i32.const 65536)))
                   (then (drop (memory.grow
                     (i32.add (i32.shr_u (local.get $len) (i32.const 16)) (i32.const 1))))))
                 (local.set $p (global.get $bump))",
            );
        let report = check_wat(&wat, 4096);
        let Verdict::Fail(why) = verdict(&report, "memory") else {
            panic!("{report}")
        };
        assert!(why.contains("never freed"), "{why}");
    }

    #[test]
    fn a_trap_fails_the_sample_and_is_only_a_warning_on_garbage() {
        let report = check_wat(&wat_guest("(unreachable)", b""), 1);
        assert!(
            matches!(verdict(&report, "sample"), Verdict::Fail(_)),
            "{report}"
        );
        assert!(matches!(
            verdict(&report, "malformed input"),
            Verdict::Warn(_)
        ));
        assert!(!report.passed());
    }

    #[test]
    fn a_module_that_is_no_plugin_stops_at_load() {
        let report = check_wat("(module)", 1);
        assert_eq!(report.checks.len(), 1);
        assert!(matches!(verdict(&report, "loads"), Verdict::Fail(_)));
    }
}
