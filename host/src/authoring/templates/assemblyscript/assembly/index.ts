// {{name}}: a weir transform in AssemblyScript. It keeps the orders whose `amount` is at least
// `min_amount` and adds `amount_cents` (int64). Change it to your needs: the SDK's README
// (@weir/guest-sdk) and guest-sdk/ABI.md in the weir repository say what a transform can do.
//
//   transforms:
//     - plugin: build/{{name}}.wasm
//       params: { min_amount: 100 }

import {
  Batch, BooleanBuilder, Int64Builder, Output, Params, Transform, named, register,
} from "@weir/guest-sdk/assembly";

class Plugin extends Transform {
  minAmount: f64 = 0;

  // The route's `params`. Return null when they are fine, else a message naming the field: the
  // plugin is then refused at load (and by `weir validate`).
  init(p: Params): string | null {
    p.allowOnly(["min_amount"]);
    this.minAmount = p.number("min_amount", 0);
    return p.error;
  }

  // Only `amount` crosses into the sandbox; the host keeps every other column as it is.
  reads(): string[] | null {
    return ["amount"];
  }

  transform(batch: Batch): Output {
    const amount = batch.column("amount");
    if (amount == null) return Output.fail("the batch has no column `amount`");
    if (!amount.type.isNumeric()) return Output.fail("`amount` must be a number");
    const n = batch.numRows;
    const keep = new BooleanBuilder(n);
    const cents = new Int64Builder(n);
    for (let i = 0; i < n; i++) {
      if (amount.isNull(i)) {
        keep.append(false);
        cents.appendNull();
        continue;
      }
      const a = amount.getF64(i);
      keep.append(a >= this.minAmount);
      cents.append(<i64>Math.round(a * 100));
    }
    // One answer: which rows stay, and a new column (rows that go are dropped by the host).
    return Output.columns([named("amount_cents", cents.finish())]).withKeep(keep.finish());
  }
}

register((): Transform => new Plugin());

// The weir ABI: weir_init, weir_transform, weir_alloc, ...
export * from "@weir/guest-sdk/assembly/exports";
