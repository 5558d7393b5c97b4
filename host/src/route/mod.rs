//! Route: a message type picks its route (the first whose `match` regex matches), and the route
//! runs its wasm transforms in order, keeping track of which input message each row came from
//! so that per-row failures can be dead-lettered with their original bytes.

use std::borrow::Cow;
use std::collections::HashMap;

use arrow_array::{RecordBatch, UInt32Array};
use regex::Regex;

use crate::runtime::{Instance, TransformFailure};

/// Picks a route per message type; answers are cached per type.
pub struct Router {
    patterns: Vec<Regex>,
    cache: HashMap<String, Option<usize>>,
}

impl Router {
    /// A router over the routes' `match` expressions, anchored at both ends.
    pub fn new<'a>(matches: impl IntoIterator<Item = &'a str>) -> Result<Self, regex::Error> {
        let patterns = matches
            .into_iter()
            .map(|m| Regex::new(&format!("^(?:{m})$")))
            .collect::<Result<_, _>>()?;
        Ok(Router {
            patterns,
            cache: HashMap::new(),
        })
    }

    /// The index of the route for `type_name`, if any.
    pub fn route(&mut self, type_name: &str) -> Option<usize> {
        if let Some(r) = self.cache.get(type_name) {
            return *r;
        }
        let r = self.patterns.iter().position(|p| p.is_match(type_name));
        self.cache.insert(type_name.to_string(), r);
        r
    }
}

/// The outcome of a route's transforms on one batch.
pub struct ChainOutput {
    /// What goes to the sink.
    pub batch: RecordBatch,
    /// Records (poll indices) whose rows failed inside a transform, with plugin and reason.
    pub row_errors: Vec<(u32, String, String)>,
    /// Rows the transforms dropped (filtered), not counting failed rows.
    pub filtered: usize,
}

/// A whole batch failed in a transform.
pub struct ChainFailure {
    /// The plugin that failed.
    pub plugin: String,
    /// Why.
    pub failure: TransformFailure,
}

/// Runs `batch` (whose row i came from poll record `records[i]`) through the transforms.
/// Rows a transform drops are taken out once, after the last one: in between, each transform
/// gets the rows still there of the columns it reads, and only the columns still needed are
/// carried on.
pub fn run_chain(
    stages: &mut [Instance],
    batch: RecordBatch,
    records: &[u32],
) -> Result<ChainOutput, ChainFailure> {
    let rows_in = batch.num_rows();
    let mut batch = batch;
    // The rows of `batch` still there, in order; `None` for all of them.
    let mut rows: Option<UInt32Array> = None;
    // `None` once a transform replaced the batch: rows no longer map to messages.
    // Borrowed until a transform drops rows: a route that keeps every row copies nothing.
    let mut origin: Option<Cow<'_, [u32]>> = Some(Cow::Borrowed(records));
    let mut row_errors = Vec::new();
    let mut last = None;
    for stage in stages.iter_mut() {
        if rows.as_ref().map_or(batch.num_rows(), |r| r.len()) == 0 {
            break;
        }
        let plugin = stage.plugin_name().to_string();
        let fail = |failure| ChainFailure {
            plugin: plugin.clone(),
            failure,
        };
        let applied = stage.call_unselected(&batch, rows.as_ref()).map_err(fail)?;
        for (row, reason) in applied.errors {
            match origin.as_ref().and_then(|o| o.get(row as usize)) {
                Some(&record) => row_errors.push((record, plugin.clone(), reason)),
                None => {
                    return Err(fail(TransformFailure::BadOutput(format!(
                        "row {row} failed ({reason}), but rows can't be traced after a replacing transform"
                    ))))
                }
            }
        }
        origin = match (origin, &applied.rows) {
            _ if applied.replaced => None,
            (o, None) => o,
            (Some(o), Some(kept)) => Some(Cow::Owned(
                kept.values().iter().map(|&i| o[i as usize]).collect(),
            )),
            (None, Some(_)) => None,
        };
        batch = applied.batch;
        rows = applied.rows;
        last = Some(plugin);
    }
    if let Some(kept) = rows {
        batch = weir_guest_sdk::abi::take_rows(&batch, &kept).map_err(|e| ChainFailure {
            plugin: last.unwrap_or_default(),
            failure: TransformFailure::BadOutput(format!("taking the rows kept: {e}")),
        })?;
    }
    let filtered = rows_in.saturating_sub(batch.num_rows() + row_errors.len());
    Ok(ChainOutput {
        batch,
        row_errors,
        filtered,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_match_whole_types_first_match_wins() {
        let mut r = Router::new(["orders", "pay.*", ".*"]).unwrap();
        assert_eq!(r.route("orders"), Some(0));
        assert_eq!(
            r.route("orders2"),
            Some(2),
            "anchored: `orders` does not match `orders2`"
        );
        assert_eq!(r.route("payments"), Some(1));
        let mut r = Router::new(["a|b"]).unwrap();
        assert_eq!(r.route("b"), Some(0));
        assert_eq!(r.route("ab"), None);
    }
}
