// A test plugin of the SDK (built to build/echo.wasm): params `{"mode": ...}` pick what it does.
//
// - "echo": rebuilds every column with the SDK's builders and answers the batch (replace mode).
// - "pass": answers the input batch itself (replace mode; the input's views are written out).
// - "filter": keeps the rows where the bool column `column` is true (replace mode, Batch.filter).
// - "nested": merge mode; for each struct column S, a column `S.F` per field F; for each list
//   column L, `L.len` (int32) and, when its items are numbers, `L.sum` (float64).
// - "fail": fails every batch; "trap": calls getF64 on the first column, a utf8 one (traps).
// - "file": `{"mode": "file", "name": N}`: one row, column `bytes` (binary) holding the granted file N.
// - "log": logs one line per batch, answers nothing (merge).
// Manifest params: `reads`, `drop`, `select` (arrays of names), `copy` (an object name -> path).
import {
  Batch, Builder, BinaryBuilder, Column, CopyColumn, Float64Builder, Int32Builder, LogLevel, Output, Params,
  Transform, TypeId, builderFor, log, readFile, register,
} from "../assembly";

class Echo extends Transform {
  mode: string = "echo";
  column: string = "keep";
  name: string = "";
  reading: string[] | null = null;
  dropping: string[] | null = null;
  selecting: string[] | null = null;
  copying: CopyColumn[] | null = null;

  init(p: Params): string | null {
    p.allowOnly(["mode", "column", "name", "reads", "drop", "select", "copy"]);
    this.mode = p.string("mode", "echo");
    this.column = p.string("column", "keep");
    this.name = p.string("name", "");
    this.reading = p.strings("reads");
    this.dropping = p.strings("drop");
    this.selecting = p.strings("select");
    const copy = p.object("copy");
    if (copy != null) {
      const copies = new Array<CopyColumn>();
      const names = copy.keys();
      for (let i = 0; i < names.length; i++) copies.push(new CopyColumn(names[i], copy.requiredString(names[i])));
      this.copying = copies;
    }
    const modes = ["echo", "pass", "filter", "nested", "fail", "trap", "file", "log"];
    if (!modes.includes(this.mode)) p.failAt("mode", "unknown mode " + this.mode);
    return p.error;
  }

  reads(): string[] | null { return this.reading; }
  drops(): string[] | null { return this.dropping; }
  selects(): string[] | null { return this.selecting; }
  copies(): CopyColumn[] | null { return this.copying; }

  transform(batch: Batch): Output {
    if (this.mode == "pass") return Output.replace(batch);
    if (this.mode == "fail") return Output.fail("echo refuses this batch of " + batch.numRows.toString() + " rows");
    if (this.mode == "trap") {
      batch.columnAt(0).getF64(0);
      return Output.merge();
    }
    if (this.mode == "log") {
      log(LogLevel.Info, "echo saw " + batch.numRows.toString() + " rows");
      return Output.merge();
    }
    if (this.mode == "file") {
      const bytes = readFile(this.name);
      if (bytes == null) return Output.fail("no file " + this.name);
      const b = new BinaryBuilder();
      b.appendArray(bytes);
      return Output.replace(Batch.of(["bytes"], [b.finish()]));
    }
    if (this.mode == "filter") {
      const mask = batch.column(this.column);
      if (mask == null) return Output.fail("no column " + this.column);
      return Output.replace(batch.filter(mask));
    }
    if (this.mode == "nested") return nested(batch);
    const columns = new Array<Column>();
    for (let k = 0; k < batch.numColumns; k++) {
      const src = batch.columnAt(k);
      if (!src.type.isWritable()) return Output.fail("echo cannot write " + src.type.toString());
      const b: Builder = builderFor(src.type);
      for (let i = 0; i < batch.numRows; i++) b.appendFrom(src, i);
      columns.push(b.finish());
    }
    return Output.replace(new Batch(batch.fields, columns, batch.numRows, batch.metadata));
  }
}

function nested(batch: Batch): Output {
  const out = Output.merge();
  for (let k = 0; k < batch.numColumns; k++) {
    const c = batch.columnAt(k);
    const name = batch.fields[k].name;
    if (c.type.id == TypeId.Struct) {
      const fields = c.type.children;
      for (let f = 0; f < fields.length; f++) {
        // A field of a null struct is null.
        const b = builderFor(fields[f].type, batch.numRows);
        const child = c.child(f);
        for (let i = 0; i < batch.numRows; i++) {
          if (c.isNull(i)) b.appendNull();
          else b.appendFrom(child, i);
        }
        out.with(name + "." + fields[f].name, b.finish());
      }
    } else if (c.type.isList()) {
      const lens = new Int32Builder(batch.numRows);
      const items = c.items;
      const numeric = items.type.isNumeric();
      const sums = new Float64Builder(batch.numRows);
      for (let i = 0; i < batch.numRows; i++) {
        if (c.isNull(i)) {
          lens.appendNull();
          sums.appendNull();
          continue;
        }
        const start = c.listStart(i);
        const n = c.listLength(i);
        lens.append(n);
        if (numeric) {
          let s = 0.0;
          for (let j = start; j < start + n; j++) if (!items.isNull(j)) s += items.getF64(j);
          sums.append(s);
        }
      }
      out.with(name + ".len", lens.finish());
      if (numeric) out.with(name + ".sum", sums.finish());
    }
  }
  return out;
}

register((): Transform => new Echo());
export * from "../assembly/exports";
