// A record batch: named columns of equal length.

import { builderFor } from "./builders";
import { Column, bitAt } from "./column";
import { panic } from "./host";
import { Field, Metadata, TypeId } from "./types";

/**
 * A record batch: `fields` describe `columns`, each `numRows` long. The batch `transform`
 * receives holds the columns the manifest's `reads` named (those the input has), as views into
 * the input buffer: valid until `transform` returns.
 */
export class Batch {
  constructor(
    public fields: Field[],
    public columns: Column[],
    public numRows: i32,
    /** Schema-level metadata, or null. */
    public metadata: Metadata | null = null,
  ) {}

  /** A batch of `columns` named `names` (nullable fields; their types are the columns'). */
  static of(names: string[], columns: Column[]): Batch {
    if (names.length != columns.length) panic("Batch.of: " + names.length.toString() + " names for " + columns.length.toString() + " columns");
    const fields = new Array<Field>();
    for (let i = 0; i < names.length; i++) {
      fields.push(new Field(names[i], columns[i].type, true));
      columns[i].name = names[i];
    }
    return new Batch(fields, columns, columns.length ? columns[0].length : 0);
  }

  get numColumns(): i32 {
    return this.columns.length;
  }

  /** The index of the column `name`, or -1. */
  indexOf(name: string): i32 {
    for (let i = 0; i < this.fields.length; i++) {
      if (this.fields[i].name == name) return i;
    }
    return -1;
  }

  /** The column `name`, or null when the batch lacks it. */
  column(name: string): Column | null {
    const i = this.indexOf(name);
    return i < 0 ? null : this.columns[i];
  }

  /** The column at `index`. */
  columnAt(index: i32): Column {
    return this.columns[index];
  }

  /** The field `name`, or null. */
  field(name: string): Field | null {
    const i = this.indexOf(name);
    return i < 0 ? null : this.fields[i];
  }

  /**
   * A new batch of the rows where `mask` (a `Bool` column as long as the batch) is true; null
   * counts as false. The new columns own their memory. Traps on columns of a type the SDK cannot
   * write (`Other`).
   */
  filter(mask: Column): Batch {
    if (mask.type.id != TypeId.Bool || mask.length != this.numRows) {
      panic("Batch.filter: the mask must be a bool column of " + this.numRows.toString() + " rows");
    }
    const rows = new Array<i32>();
    const bits = mask.values;
    const valid = mask.validity;
    for (let i = 0; i < this.numRows; i++) {
      if (bitAt(bits, i) && (valid == 0 || bitAt(valid, i))) rows.push(i);
    }
    return this.take(rows);
  }

  /** A new batch of the rows at `rows` (in that order; a row may repeat). */
  take(rows: i32[]): Batch {
    const columns = new Array<Column>();
    for (let k = 0; k < this.columns.length; k++) {
      const src = this.columns[k];
      const b = builderFor(src.type, rows.length);
      for (let r = 0; r < rows.length; r++) b.appendFrom(src, rows[r]);
      const c = b.finish();
      c.name = src.name;
      columns.push(c);
    }
    return new Batch(this.fields, columns, rows.length, this.metadata);
  }
}
