// A transform's answer for one batch.

import { Batch } from "./batch";
import { StringBuilder } from "./builders";
import { Column } from "./column";
import { Field, Metadata, TypeId } from "./types";

/** Output schema metadata key that tells the host how to apply the answer. */
export const OUTPUT_MODE_KEY = "weir.output";
/** Merge-mode column: `Bool`; rows false or null are dropped. */
export const KEEP_COLUMN = "__weir_keep";
/** Merge-mode column: `Utf8`; a non-null value fails that row alone, with that text. */
export const ERROR_COLUMN = "__weir_error";

/** @internal */
export enum OutputKind {
  Merge,
  Replace,
  Fail,
}

/** A column with the name it takes in the answer. */
export class NamedColumn {
  constructor(public name: string, public column: Column) {}
}

/** `new NamedColumn(name, column)`, for `Output.columns([named("eur", eur)])`. */
export function named(name: string, column: Column): NamedColumn {
  return new NamedColumn(name, column);
}

/**
 * What `transform` answers:
 *
 * - merge (relative to the input; untouched columns never cross the boundary):
 *   `Output.keep(mask)` keeps the rows where a `Bool` column is true; `Output.columns([...])`
 *   adds columns, or replaces those of the same name; `withErrors(errors)` fails single rows.
 *   Every column has as many rows as the input.
 * - `Output.replace(batch)`: the whole new batch, any rows and columns.
 * - `Output.fail(message)`: the whole batch fails, with that message.
 */
export class Output {
  /** @internal */ kind: OutputKind = OutputKind.Merge;
  /** @internal */ message: string = "";
  /** @internal */ keepMask: Column | null = null;
  /** @internal */ errors: Column | null = null;
  /** @internal */ added: NamedColumn[] = [];
  /** @internal */ batch: Batch | null = null;

  /** An empty merge answer: every row kept, nothing added. */
  static merge(): Output {
    return new Output();
  }

  /** Keeps the rows where `mask` (a `Bool` column) is true; false and null rows are dropped. */
  static keep(mask: Column): Output {
    return new Output().withKeep(mask);
  }

  /** Adds (or replaces, by name) these columns, keeping every row. */
  static columns(columns: NamedColumn[]): Output {
    const o = new Output();
    o.added = columns;
    return o;
  }

  /** Answers with a whole new batch (replace mode): any rows, any columns. */
  static replace(batch: Batch): Output {
    const o = new Output();
    o.kind = OutputKind.Replace;
    o.batch = batch;
    return o;
  }

  /** Fails the whole batch with `message`; the host applies the route's `on_transform_error`. */
  static fail(message: string): Output {
    const o = new Output();
    o.kind = OutputKind.Fail;
    o.message = message;
    return o;
  }

  /** Adds (or replaces) the column `name` (merge mode). */
  with(name: string, column: Column): Output {
    this.added.push(new NamedColumn(name, column));
    return this;
  }

  /** Sets the rows to keep (merge mode). */
  withKeep(mask: Column): Output {
    this.keepMask = mask;
    return this;
  }

  /** Sets the per-row errors (a `Utf8` column, null where the row is fine); null sets none. */
  withErrors(errors: Column | null): Output {
    this.errors = errors;
    return this;
  }

  /** @internal The answer as fields, columns and schema metadata, or an error message. */
  toBatch(inputRows: i32): OutputBatch {
    const out = new OutputBatch();
    if (this.kind == OutputKind.Replace) {
      const b = this.batch!;
      const md = b.metadata != null ? b.metadata!.clone() : new Metadata();
      md.set(OUTPUT_MODE_KEY, "replace");
      out.fields = b.fields;
      out.columns = b.columns;
      out.numRows = b.numRows;
      out.metadata = md;
      return out;
    }
    out.numRows = inputRows;
    out.metadata = new Metadata().set(OUTPUT_MODE_KEY, "merge");
    const keep = this.keepMask;
    if (keep != null) {
      if (keep.type.id != TypeId.Bool) {
        out.error = KEEP_COLUMN + " must be a bool column, not " + keep.type.toString();
        return out;
      }
      out.add(KEEP_COLUMN, keep);
    }
    const errors = this.errors;
    if (errors != null) {
      if (errors.type.id != TypeId.Utf8) {
        out.error = ERROR_COLUMN + " must be a utf8 column, not " + errors.type.toString();
        return out;
      }
      out.add(ERROR_COLUMN, errors);
    }
    for (let i = 0; i < this.added.length; i++) out.add(this.added[i].name, this.added[i].column);
    for (let i = 0; i < out.columns.length; i++) {
      if (out.columns[i].length != inputRows) {
        out.error = "column \"" + out.fields[i].name + "\" has " + out.columns[i].length.toString() +
          " rows, the input has " + inputRows.toString() + " (a merge answer keeps every row; use Output.replace to change rows)";
        return out;
      }
    }
    return out;
  }
}

/** @internal */
export class OutputBatch {
  fields: Field[] = [];
  columns: Column[] = [];
  numRows: i32 = 0;
  metadata: Metadata | null = null;
  error: string | null = null;

  add(name: string, c: Column): void {
    this.fields.push(new Field(name, c.type, true));
    this.columns.push(c);
  }
}

/**
 * Per-row failures of a merge answer: `fail(row, message)` for each failing row, then
 * `Output.columns(...).withErrors(errors.finish())`. `finish` gives null when no row failed, so
 * the answer then carries no `__weir_error` column at all.
 */
export class RowErrors {
  private rows: i32[] = [];
  private messages: string[] = [];

  constructor(public numRows: i32) {}

  /** Fails `row` with `message` (rows in increasing order; a row failed twice keeps the first). */
  fail(row: i32, message: string): void {
    const n = this.rows.length;
    if (n > 0 && this.rows[n - 1] >= row) return;
    this.rows.push(row);
    this.messages.push(message);
  }

  /** How many rows failed. */
  get count(): i32 {
    return this.rows.length;
  }

  /** The `__weir_error` column, or null when no row failed. */
  finish(): Column | null {
    if (this.rows.length == 0) return null;
    const b = new StringBuilder(this.numRows);
    let next = 0;
    for (let i = 0; i < this.numRows; i++) {
      if (next < this.rows.length && this.rows[next] == i) {
        b.append(this.messages[next]);
        next++;
      } else {
        b.appendNull();
      }
    }
    return b.finish();
  }
}
