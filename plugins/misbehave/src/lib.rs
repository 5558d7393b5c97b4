//! # `builtin:misbehave`: misbehave on request, row by row
//!
//! ```yaml
//! transforms:
//!   - plugin: builtin:misbehave   # no params: `params: {}` or none at all
//! ```
//!
//! Input rows `{"behaviour": "ok"}`, `{"behaviour": "error"}` and `{"behaviour": "spin", "arg": 300}`:
//! the call busy-loops for 300 million iterations, then rows 0 and 2 go on unchanged and row 1
//! is dead-lettered with the reason `row asked to fail`.
//!
//! This plugin exists to test the sandbox and the error policies: the host's own tests use it to
//! make a guest trap, run past its time budget, grow its memory, flood the log or answer garbage,
//! and users can put it on a staging route to see what `errors.on_transform_error`, the
//! dead-letter topic, `runtime.time_budget` and `runtime.memory_limit` do with each failure before
//! a real plugin fails that way in production. It has no use on real data.
//!
//! Each row chooses, by its `behaviour` column (`Utf8`; `LargeUtf8` and `Utf8View` are read too).
//! The optional `arg` column (`Int64`) sizes some behaviours; where it is absent, null or of type
//! `Null`, the default below applies. A negative `arg` fails that row alone. Only these two
//! columns cross into the sandbox; a batch without `behaviour` passes unchanged (every row reads
//! as null), and one whose `behaviour` is not a string, or whose `arg` is not `Int64`, fails as a
//! whole.
//!
//! | `behaviour` | `arg` (default) | what the call does |
//! |---|---|---|
//! | `ok` or null | | the row goes on unchanged |
//! | `error` | | that row alone fails: `row asked to fail` |
//! | `fail` | | the whole call fails (`-1`): `batch asked to fail` |
//! | `panic` | | `panic!("row asked to panic")`: the plugin is built with `panic = "abort"`, so a trap (the SDK's hook logs the panic first) |
//! | `loop` | | loops forever, until the host's time budget stops it |
//! | `alloc` | bytes (1 GiB) | allocates `arg` bytes and writes to every 64 KiB page of them, so linear memory really grows; an allocation the memory limit refuses aborts, a trap (so does one past the 4 GiB address space, as a panic). The memory is held until the call ends |
//! | `huge` | bytes (256 MiB) | adds the column `blob` (`Utf8`): `arg` times `x` on this row, null on the others: a huge answer. The call needs about four times `arg` bytes of memory (the column, then the answer's buffer as the SDK grows it), so under the default 256 MiB `memory_limit` the default traps on memory; up to about 50 MiB gets out as an answer |
//! | `bad_pointer` | | the call answers a range outside linear memory (pointer `0x7fff0000`, length `0xffff0000`): the host's `bad output` |
//! | `spin` | millions of iterations (100) | busy-loops, then the row goes on: a slow but finite call (the sandbox has no clock) |
//! | `log` | lines (10000) | writes `arg` info lines to the host's log, then the row goes on |
//! | anything else | | that row alone fails: ``unknown behaviour `X` `` |
//!
//! When rows of one batch ask for different things, the call does them in this order:
//!
//! 1. `loop`: never returns, so nothing else happens.
//! 2. `panic`: traps.
//! 3. `alloc`: every `alloc` row allocates its bytes (all held together until the call ends).
//! 4. `spin`: every `spin` row spins its iterations, one after the other.
//! 5. `log`: every `log` row writes its lines.
//! 6. `bad_pointer`: the answer is the bad range; nothing below happens.
//! 7. `fail`: the call fails as a whole; nothing below happens.
//! 8. `huge`: the `blob` column is added.
//! 9. per-row errors: the `error` rows, the unknown behaviours and the negative `arg`s fail alone;
//!    the other rows go on.
//!
//! So a batch asking for `spin` and `error` spins, then fails its `error` rows, and one asking for
//! `fail` and `huge` fails whole without building the blob. Rows that only ask for `alloc`,
//! `spin`, `log` or `ok` go on unchanged.

use std::cell::Cell;
use std::hint::black_box;
use std::sync::Arc;

use arrow_buffer::{Buffer, NullBuffer, OffsetBuffer};
use serde::Deserialize;
use weir_guest_sdk::arrow_array::cast::AsArray;
use weir_guest_sdk::arrow_array::types::Int64Type;
use weir_guest_sdk::arrow_array::{Array, ArrayRef, Int64Array, StringArray};
use weir_guest_sdk::arrow_schema::DataType;
use weir_guest_sdk::{Error, LogLevel, Merge, Output, RecordBatch, Transform};

/// The column whose value picks each row's behaviour.
pub const BEHAVIOUR_COLUMN: &str = "behaviour";
/// The optional column that sizes `alloc`, `huge`, `spin` and `log`.
pub const ARG_COLUMN: &str = "arg";
/// The column `huge` adds.
pub const BLOB_COLUMN: &str = "blob";

/// Bytes `alloc` allocates without an `arg`: 1 GiB.
pub const DEFAULT_ALLOC_BYTES: u64 = 1 << 30;
/// Bytes of `blob` that `huge` answers without an `arg`: 256 MiB.
pub const DEFAULT_HUGE_BYTES: u64 = 256 << 20;
/// Millions of iterations `spin` runs without an `arg`.
pub const DEFAULT_SPIN_MILLIONS: u64 = 100;
/// Log lines `log` writes without an `arg`.
pub const DEFAULT_LOG_LINES: u64 = 10_000;

/// What `weir_transform` returns when a row asks for `bad_pointer`: `pack(0x7fff_0000,
/// 0xffff_0000)`, a range that ends past 4 GiB, so outside any wasm32 memory. It is not negative
/// (a negative answer would read as a failed call, not as a bad one).
pub const BAD_ANSWER: i64 = 0x7fff_0000_ffff_0000;

/// Pages are touched at this stride, so every wasm page of an `alloc` is written.
const PAGE: usize = 64 << 10;

thread_local! {
    /// Set by [`Misbehave::transform`] when a row asks for `bad_pointer`; read by the export.
    static BAD_POINTER: Cell<bool> = const { Cell::new(false) };
}

/// Whether the last call asked for a bad answer pointer (`bad_pointer`), and clears it. The
/// hand-written `weir_transform` export asks after each call.
pub fn take_bad_pointer() -> bool {
    BAD_POINTER.replace(false)
}

/// The plugin's params: none.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {}

/// The misbehave transform.
#[derive(Debug)]
pub struct Misbehave;

/// What the rows of one batch ask for, gathered before anything is done.
#[derive(Debug, Default)]
struct Plan {
    looping: bool,
    panic: bool,
    alloc: Vec<u64>,
    spin: Vec<u64>,
    /// (row, lines)
    log: Vec<(usize, u64)>,
    bad_pointer: bool,
    fail: bool,
    /// Per row: the blob's length for `huge` rows.
    huge: Vec<Option<u64>>,
    /// Per row: the reason the row fails alone.
    errors: Vec<Option<String>>,
}

impl Plan {
    fn of(batch: &RecordBatch) -> Result<Plan, Error> {
        let rows = batch.num_rows();
        let behaviours = behaviours(batch)?;
        let args = args(batch)?;
        let mut plan = Plan {
            huge: vec![None; rows],
            errors: vec![None; rows],
            ..Plan::default()
        };
        for (row, behaviour) in behaviours.into_iter().enumerate() {
            let sized = |default: u64| -> Result<u64, String> {
                match args.filter(|a| a.is_valid(row)).map(|a| a.value(row)) {
                    None => Ok(default),
                    Some(v) => u64::try_from(v).map_err(|_| {
                        format!(
                            "behaviour `{}`: `arg` must not be negative, got {v}",
                            behaviour.unwrap_or_default()
                        )
                    }),
                }
            };
            let asked = match behaviour {
                None | Some("ok") => Ok(()),
                Some("error") => Err("row asked to fail".to_string()),
                Some("fail") => {
                    plan.fail = true;
                    Ok(())
                }
                Some("panic") => {
                    plan.panic = true;
                    Ok(())
                }
                Some("loop") => {
                    plan.looping = true;
                    Ok(())
                }
                Some("bad_pointer") => {
                    plan.bad_pointer = true;
                    Ok(())
                }
                Some("alloc") => sized(DEFAULT_ALLOC_BYTES).map(|n| plan.alloc.push(n)),
                Some("huge") => sized(DEFAULT_HUGE_BYTES).map(|n| plan.huge[row] = Some(n)),
                Some("spin") => sized(DEFAULT_SPIN_MILLIONS).map(|n| plan.spin.push(n)),
                Some("log") => sized(DEFAULT_LOG_LINES).map(|n| plan.log.push((row, n))),
                Some(other) => Err(format!("unknown behaviour `{other}`")),
            };
            if let Err(reason) = asked {
                plan.errors[row] = Some(reason);
            }
        }
        Ok(plan)
    }
}

/// Each row's behaviour; all null when the batch has no `behaviour` column.
fn behaviours(batch: &RecordBatch) -> Result<Vec<Option<&str>>, Error> {
    let rows = batch.num_rows();
    let Some(column) = batch.column_by_name(BEHAVIOUR_COLUMN) else {
        return Ok(vec![None; rows]);
    };
    match column.data_type() {
        DataType::Utf8 => Ok(column.as_string::<i32>().iter().collect()),
        DataType::LargeUtf8 => Ok(column.as_string::<i64>().iter().collect()),
        DataType::Utf8View => Ok(column.as_string_view().iter().collect()),
        DataType::Null => Ok(vec![None; rows]),
        other => Err(Error::new(format!(
            "column `{BEHAVIOUR_COLUMN}` must be Utf8, not {other}"
        ))),
    }
}

/// The `arg` column, or `None` when the batch has none (or only a `Null` one).
fn args(batch: &RecordBatch) -> Result<Option<&Int64Array>, Error> {
    let Some(column) = batch.column_by_name(ARG_COLUMN) else {
        return Ok(None);
    };
    match column.data_type() {
        DataType::Int64 => Ok(Some(column.as_primitive::<Int64Type>())),
        DataType::Null => Ok(None),
        other => Err(Error::new(format!(
            "column `{ARG_COLUMN}` must be Int64, not {other}"
        ))),
    }
}

/// Loops until the host stops the call.
fn loop_forever() -> ! {
    let mut i = 0u64;
    loop {
        i = black_box(i.wrapping_add(1));
    }
}

/// Allocates `bytes` and writes to each page of them. A size the allocator can't give aborts
/// (in wasm, a trap); a size beyond the address space panics (also a trap).
fn allocate(bytes: u64) -> Vec<u8> {
    let len = usize::try_from(bytes).unwrap_or(usize::MAX);
    let mut memory = vec![0u8; len];
    for i in (0..len).step_by(PAGE) {
        memory[i] = black_box(1);
    }
    black_box(memory)
}

/// Busy-loops `millions` million iterations; returns how many it ran.
fn spin(millions: u64) -> u64 {
    let n = millions.saturating_mul(1_000_000);
    let mut acc = 0u64;
    for i in 0..n {
        acc = black_box(acc.wrapping_add(i));
    }
    black_box(acc);
    n
}

/// Writes `lines` log lines for `row` through `log`.
fn emit_logs(row: usize, lines: u64, mut log: impl FnMut(&str)) {
    for i in 1..=lines {
        log(&format!(
            "misbehave: row {row} asked for {lines} log lines; this is line {i}"
        ));
    }
}

/// The `blob` column: `lengths[row]` times `x` where set, null elsewhere.
fn blob(lengths: &[Option<u64>]) -> Result<ArrayRef, Error> {
    let total: u64 = lengths.iter().flatten().sum();
    let too_big = || {
        Error::new(format!(
            "huge: {total} bytes of `{BLOB_COLUMN}` exceed what one Utf8 column holds (2 GiB)"
        ))
    };
    // Each length is at most the total, so every conversion below fits once this one does.
    let total = i32::try_from(total)
        .ok()
        .and_then(|t| usize::try_from(t).ok())
        .ok_or_else(too_big)?;
    let offsets = OffsetBuffer::<i32>::from_lengths(
        lengths
            .iter()
            .map(|l| l.and_then(|l| usize::try_from(l).ok()).unwrap_or(0)),
    );
    let nulls = NullBuffer::from(lengths.iter().map(Option::is_some).collect::<Vec<_>>());
    let values = Buffer::from_vec(vec![b'x'; total]);
    Ok(Arc::new(StringArray::try_new(
        offsets,
        values,
        Some(nulls),
    )?))
}

impl Transform for Misbehave {
    type Params = Params;

    fn new(_: Params) -> Result<Self, Error> {
        Ok(Misbehave)
    }

    fn reads(&self) -> Option<Vec<String>> {
        // The host skips names the batch lacks, so a batch without `arg` is fine.
        Some(vec![BEHAVIOUR_COLUMN.into(), ARG_COLUMN.into()])
    }

    fn transform(&mut self, batch: RecordBatch) -> Result<Output, Error> {
        BAD_POINTER.set(false);
        let plan = Plan::of(&batch)?;
        if plan.looping {
            loop_forever();
        }
        if plan.panic {
            panic!("row asked to panic");
        }
        let held: Vec<Vec<u8>> = plan.alloc.iter().map(|&n| allocate(n)).collect();
        for &millions in &plan.spin {
            spin(millions);
        }
        for &(row, lines) in &plan.log {
            emit_logs(row, lines, |line| weir_guest_sdk::log(LogLevel::Info, line));
        }
        black_box(&held);
        if plan.bad_pointer {
            BAD_POINTER.set(true);
            return Ok(Output::Merge(Merge::default()));
        }
        if plan.fail {
            return Err(Error::new("batch asked to fail"));
        }
        let mut columns = Vec::new();
        if plan.huge.iter().any(Option::is_some) {
            columns.push((BLOB_COLUMN.to_string(), blob(&plan.huge)?));
        }
        let errors = plan
            .errors
            .iter()
            .any(Option::is_some)
            .then(|| StringArray::from(plan.errors));
        Ok(Output::Merge(Merge {
            keep: None,
            errors,
            columns,
        }))
    }
}

/// The weir ABI, written out instead of `export_transform!` so that `weir_transform` can answer
/// a bad pointer when a row asks for one. Each export delegates to the SDK as the macro's do.
#[cfg(target_arch = "wasm32")]
mod exports {
    use weir_guest_sdk::{abi, guest};

    use super::{take_bad_pointer, Misbehave, BAD_ANSWER};

    #[unsafe(no_mangle)]
    pub extern "C" fn weir_abi_version() -> i32 {
        abi::ABI_VERSION
    }

    #[unsafe(no_mangle)]
    pub extern "C" fn weir_alloc(len: i32) -> i32 {
        guest::alloc(len)
    }

    /// # Safety
    /// The host passes back a buffer it got from `weir_alloc`.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn weir_free(ptr: i32, len: i32) {
        unsafe { guest::free(ptr, len) }
    }

    /// # Safety
    /// The host passes a buffer it got from `weir_alloc`, filled.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn weir_init(ptr: i32, len: i32) -> i64 {
        unsafe { guest::init::<Misbehave>(ptr, len) }
    }

    /// # Safety
    /// The host passes a buffer it got from `weir_alloc`, filled.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn weir_transform(ptr: i32, len: i32) -> i64 {
        // A flag left by a call that never reached the transform must not leak into this one.
        take_bad_pointer();
        let answer = unsafe { guest::transform::<Misbehave>(ptr, len) };
        if take_bad_pointer() {
            BAD_ANSWER
        } else {
            answer
        }
    }

    #[unsafe(no_mangle)]
    pub extern "C" fn weir_last_error() -> i64 {
        guest::last_error()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use weir_guest_sdk::abi::{self, Applied};
    use weir_guest_sdk::testing;

    /// A batch of these behaviours and args, with a column the plugin does not read.
    fn batch(rows: &[(Option<&str>, Option<i64>)]) -> RecordBatch {
        let behaviour: ArrayRef = Arc::new(StringArray::from(
            rows.iter().map(|r| r.0).collect::<Vec<_>>(),
        ));
        let arg: ArrayRef = Arc::new(Int64Array::from(
            rows.iter().map(|r| r.1).collect::<Vec<_>>(),
        ));
        let id: ArrayRef = Arc::new(Int64Array::from_iter_values(0..rows.len() as i64));
        RecordBatch::try_from_iter(vec![("id", id), ("behaviour", behaviour), ("arg", arg)])
            .unwrap()
    }

    fn run(batch: &RecordBatch) -> Result<Applied, Error> {
        let mut t = testing::init::<Misbehave>("{}").unwrap();
        testing::run(&mut t, batch)
    }

    fn ids(applied: &Applied) -> Vec<i64> {
        applied
            .batch
            .column_by_name("id")
            .unwrap()
            .as_primitive::<Int64Type>()
            .values()
            .to_vec()
    }

    fn errors(applied: &Applied) -> Vec<(u32, &str)> {
        applied
            .errors
            .iter()
            .map(|(row, e)| (*row, e.as_str()))
            .collect()
    }

    #[test]
    fn params_are_none_and_only_behaviour_and_arg_cross() {
        let t = testing::init::<Misbehave>("{}").unwrap();
        assert_eq!(
            testing::manifest(&t).reads,
            Some(vec!["behaviour".to_string(), "arg".to_string()])
        );
        let e = testing::init::<Misbehave>(r#"{"rows": 1}"#).unwrap_err();
        assert!(e.0.contains("invalid params"), "{e}");
        assert!(testing::init::<Misbehave>(r#""not params""#).is_err());
    }

    #[test]
    fn ok_and_null_rows_pass_unchanged() {
        let input = batch(&[(Some("ok"), None), (None, Some(7)), (Some("ok"), Some(-1))]);
        let applied = run(&input).unwrap();
        assert_eq!(applied.batch, input);
        assert!(applied.errors.is_empty());
    }

    #[test]
    fn batches_without_arg_or_behaviour_pass() {
        let id: ArrayRef = Arc::new(Int64Array::from(vec![1, 2]));
        let input = RecordBatch::try_from_iter(vec![("id", id)]).unwrap();
        assert_eq!(run(&input).unwrap().batch, input);

        let behaviour: ArrayRef = Arc::new(StringArray::from(vec!["ok", "error"]));
        let input = RecordBatch::try_from_iter(vec![("behaviour", behaviour)]).unwrap();
        let applied = run(&input).unwrap();
        assert_eq!(applied.batch.num_rows(), 1);
        assert_eq!(errors(&applied), vec![(1, "row asked to fail")]);
    }

    #[test]
    fn columns_of_the_wrong_type_fail_the_batch() {
        let behaviour: ArrayRef = Arc::new(Int64Array::from(vec![1]));
        let input = RecordBatch::try_from_iter(vec![("behaviour", behaviour)]).unwrap();
        let e = run(&input).unwrap_err();
        assert_eq!(e.0, "column `behaviour` must be Utf8, not Int64");

        let behaviour: ArrayRef = Arc::new(StringArray::from(vec!["ok"]));
        let arg: ArrayRef = Arc::new(StringArray::from(vec!["1"]));
        let input =
            RecordBatch::try_from_iter(vec![("behaviour", behaviour), ("arg", arg)]).unwrap();
        let e = run(&input).unwrap_err();
        assert_eq!(e.0, "column `arg` must be Int64, not Utf8");
    }

    #[test]
    fn error_and_unknown_rows_fail_alone() {
        let input = batch(&[
            (Some("ok"), None),
            (Some("error"), None),
            (Some("explode"), None),
            (None, None),
            (Some("spin"), Some(-3)),
        ]);
        let applied = run(&input).unwrap();
        assert_eq!(ids(&applied), vec![0, 3]);
        assert_eq!(
            errors(&applied),
            vec![
                (1, "row asked to fail"),
                (2, "unknown behaviour `explode`"),
                (4, "behaviour `spin`: `arg` must not be negative, got -3"),
            ]
        );
    }

    #[test]
    fn fail_fails_the_whole_batch_before_huge_and_row_errors() {
        let input = batch(&[
            (Some("huge"), Some(4)),
            (Some("fail"), None),
            (Some("error"), None),
        ]);
        let e = run(&input).unwrap_err();
        assert_eq!(e.0, "batch asked to fail");
    }

    #[test]
    fn huge_adds_a_blob_on_its_rows_only() {
        let input = batch(&[
            (Some("ok"), None),
            (Some("huge"), Some(5)),
            (Some("error"), None),
            (Some("huge"), Some(0)),
            (Some("huge"), Some(3)),
        ]);
        let applied = run(&input).unwrap();
        assert_eq!(ids(&applied), vec![0, 1, 3, 4]);
        assert_eq!(errors(&applied), vec![(2, "row asked to fail")]);
        let blob = applied
            .batch
            .column_by_name("blob")
            .unwrap()
            .as_string::<i32>();
        let blob: Vec<Option<&str>> = blob.iter().collect();
        assert_eq!(blob, vec![None, Some("xxxxx"), Some(""), Some("xxx")]);
    }

    #[test]
    fn huge_beyond_one_utf8_column_fails_the_batch() {
        let e = blob(&[Some(1 << 31)]).unwrap_err();
        assert!(e.0.contains("2147483648 bytes of `blob`"), "{e}");
    }

    #[test]
    fn spin_runs_and_passes() {
        assert_eq!(spin(2), 2_000_000);
        let input = batch(&[
            (Some("spin"), Some(1)),
            (Some("ok"), None),
            (Some("spin"), Some(0)),
        ]);
        let applied = run(&input).unwrap();
        assert_eq!(applied.batch, input);
        assert!(applied.errors.is_empty());
    }

    #[test]
    fn log_writes_its_lines_and_passes() {
        let mut lines = Vec::new();
        emit_logs(4, 3, |l| lines.push(l.to_string()));
        assert_eq!(lines.len(), 3);
        assert_eq!(
            lines[2],
            "misbehave: row 4 asked for 3 log lines; this is line 3"
        );
        let input = batch(&[(Some("log"), Some(2)), (Some("error"), None)]);
        let applied = run(&input).unwrap();
        assert_eq!(ids(&applied), vec![0]);
        assert_eq!(errors(&applied), vec![(1, "row asked to fail")]);
    }

    #[test]
    fn bad_pointer_beats_fail_and_answers_outside_memory() {
        let input = batch(&[(Some("fail"), None), (Some("bad_pointer"), None)]);
        let applied = run(&input).unwrap();
        assert_eq!(applied.batch, input);
        assert!(take_bad_pointer());
        assert!(!take_bad_pointer());
        // A later call that does not ask clears it.
        run(&batch(&[(Some("bad_pointer"), None)])).unwrap();
        run(&batch(&[(Some("ok"), None)])).unwrap();
        assert!(!take_bad_pointer());
        // Not negative (that would read as a failed call), and past any wasm32 memory.
        let (ptr, len) = abi::unpack(BAD_ANSWER).unwrap();
        assert_eq!(BAD_ANSWER, abi::pack(0x7fff_0000, 0xffff_0000));
        assert!(u64::from(ptr) + u64::from(len) > 1 << 32);
    }
}
