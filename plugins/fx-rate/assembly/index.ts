// fx-rate: converts an amount to another currency by a fixed rate per currency, as a new column.
//
// A weir transform written in AssemblyScript with @weir/guest-sdk. It reads two columns (only
// they cross into the sandbox), and answers in merge mode with one Float64 column:
// `output = amount * rates[currency]`.
//
// - `amount` may be any integer or float column; `currency` a utf8 column.
// - A null amount or a null currency gives a null output.
// - A currency with no rate fails that row alone (`no rate for currency "XYZ"`): the host sends
//   the row's message to the dead-letter route; the other rows go on.
// - A batch without the amount or the currency column gets an all-null output (a missing field
//   is null, as in weir's expressions); a column of the wrong type fails the batch.
//
// Params (an unknown key, or a field of the wrong type, refuses the plugin at load):
//
//   amount:   the amount column (default `amount`)
//   currency: the currency column (default `currency`)
//   rates:    currency -> rate, numbers; required, at least one
//   output:   the new column (default `amount_eur`; an existing column of that name is replaced)
//
// Usage, in a route of weir's YAML config:
//
//   transforms:
//     - plugin: ./plugins/fx-rate/build/fx-rate.wasm
//       params:
//         amount: amount
//         currency: currency
//         rates: { USD: 0.92, EUR: 1.0, GBP: 1.17 }
//         output: amount_eur
//
// Build: `npm ci && npm run build` (writes build/fx-rate.wasm).

import {
  Batch, Float64Builder, Output, Params, RowErrors, Transform, Utf8Map, named, register,
} from "@weir/guest-sdk/assembly";

class FxRate extends Transform {
  amount: string = "amount";
  currency: string = "currency";
  output: string = "amount_eur";
  /** Currency -> index into `rates`. */
  index: Utf8Map = new Utf8Map();
  rates: f64[] = [];

  init(p: Params): string | null {
    p.allowOnly(["amount", "currency", "rates", "output"]);
    this.amount = p.string("amount", "amount");
    this.currency = p.string("currency", "currency");
    this.output = p.string("output", "amount_eur");
    const rates = p.requiredObject("rates");
    if (rates != null) {
      const currencies = rates.keys();
      if (currencies.length == 0) rates.fail("must give at least one currency");
      for (let i = 0; i < currencies.length; i++) {
        this.index.set(currencies[i], i);
        this.rates.push(rates.requiredNumber(currencies[i]));
      }
    }
    return p.error;
  }

  reads(): string[] | null {
    return [this.amount, this.currency];
  }

  transform(batch: Batch): Output {
    const n = batch.numRows;
    const out = new Float64Builder(n);
    const errors = new RowErrors(n);
    const amount = batch.column(this.amount);
    const currency = batch.column(this.currency);
    if (amount == null || currency == null) {
      for (let i = 0; i < n; i++) out.appendNull();
    } else {
      if (!amount.type.isNumeric()) {
        return Output.fail("column \"" + this.amount + "\" is " + amount.type.toString() + ", not a number");
      }
      if (!currency.type.isString()) {
        return Output.fail("column \"" + this.currency + "\" is " + currency.type.toString() + ", not a string");
      }
      const rates = this.rates;
      for (let i = 0; i < n; i++) {
        if (amount.isNull(i) || currency.isNull(i)) {
          out.appendNull();
          continue;
        }
        const k = this.index.get(currency.bytesStart(i), currency.bytesLength(i));
        if (k < 0) {
          errors.fail(i, "no rate for currency \"" + currency.getString(i) + "\"");
          out.appendNull();
          continue;
        }
        out.append(amount.getF64(i) * unchecked(rates[k]));
      }
    }
    return Output.columns([named(this.output, out.finish())]).withErrors(errors.finish());
  }
}

register((): Transform => new FxRate());

export * from "@weir/guest-sdk/assembly/exports";
