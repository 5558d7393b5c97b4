//! {{name}}: a weir transform. It keeps the orders whose `amount` is at least `min_amount`
//! and adds `amount_cents` (int64). Change it to your needs: the weir guest SDK's docs and
//! `guest-sdk/ABI.md` in the weir repository say what a transform can do.
//!
//! ```yaml
//! transforms:
//!   - plugin: target/wasm32-unknown-unknown/release/{{crate}}.wasm
//!     params: { min_amount: 100 }
//! ```

use std::sync::Arc;

use weir_guest_sdk::arrow_array::cast::AsArray;
use weir_guest_sdk::arrow_array::types::Float64Type;
use weir_guest_sdk::arrow_array::{ArrayRef, BooleanArray, Int64Array, RecordBatch};
use weir_guest_sdk::{Error, Merge, Output, Transform};

/// The route's `params`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Orders below this amount are filtered out.
    #[serde(default)]
    pub min_amount: f64,
}

/// The transform: one per route, alive across batches.
pub struct Plugin {
    min_amount: f64,
}

impl Transform for Plugin {
    type Params = Params;

    fn new(params: Params) -> Result<Self, Error> {
        if !params.min_amount.is_finite() {
            return Err(Error::new("min_amount: must be a finite number"));
        }
        Ok(Plugin {
            min_amount: params.min_amount,
        })
    }

    /// Only `amount` crosses into the sandbox; the host keeps every other column as it is.
    fn reads(&self) -> Option<Vec<String>> {
        Some(vec!["amount".into()])
    }

    fn transform(&mut self, batch: RecordBatch) -> Result<Output, Error> {
        let amount = batch
            .column_by_name("amount")
            .ok_or_else(|| Error::new("the batch has no column `amount`"))?
            .as_primitive_opt::<Float64Type>()
            .ok_or_else(|| Error::new("`amount` must be float64"))?;
        let keep: BooleanArray = amount
            .iter()
            .map(|a| Some(a.is_some_and(|a| a >= self.min_amount)))
            .collect();
        let cents: Int64Array = amount
            .iter()
            .map(|a| a.map(|a| (a * 100.0).round() as i64))
            .collect();
        // One answer: which rows stay, and a new column (rows that go are dropped by the host).
        Ok(Output::Merge(Merge {
            keep: Some(keep),
            errors: None,
            columns: vec![("amount_cents".into(), Arc::new(cents) as ArrayRef)],
        }))
    }
}

weir_guest_sdk::export_transform!(Plugin);

#[cfg(test)]
mod tests {
    use super::*;
    use weir_guest_sdk::arrow_array::types::Int64Type;
    use weir_guest_sdk::arrow_array::{Float64Array, StringArray};
    use weir_guest_sdk::testing;

    #[test]
    fn keeps_big_orders_and_adds_cents() {
        let id: ArrayRef = Arc::new(StringArray::from(vec!["a", "b", "c"]));
        let amount: ArrayRef = Arc::new(Float64Array::from(vec![Some(150.5), Some(20.0), None]));
        let batch = RecordBatch::try_from_iter(vec![("id", id), ("amount", amount)]).unwrap();

        let mut plugin = testing::init::<Plugin>(r#"{"min_amount": 100}"#).unwrap();
        let out = testing::run(&mut plugin, &batch).unwrap();

        assert_eq!(out.batch.num_rows(), 1);
        let cents = out.batch.column_by_name("amount_cents").unwrap();
        assert_eq!(cents.as_primitive::<Int64Type>().value(0), 15050);
        assert_eq!(out.batch.column_by_name("id").unwrap().as_string::<i32>().value(0), "a");
    }

    #[test]
    fn refuses_unknown_params() {
        assert!(testing::init::<Plugin>(r#"{"min_amout": 100}"#).is_err());
    }
}
