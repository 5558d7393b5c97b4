// Arrow data types, fields and metadata, as the SDK models them.

/** The Arrow types the SDK knows. `Other` is any other type: read as an opaque column. */
export enum TypeId {
  Null,
  Bool,
  Int8,
  Int16,
  Int32,
  Int64,
  UInt8,
  UInt16,
  UInt32,
  UInt64,
  Float32,
  Float64,
  Utf8,
  LargeUtf8,
  Binary,
  LargeBinary,
  Date32,
  Date64,
  Timestamp,
  Struct,
  List,
  LargeList,
  Other,
}

/** The unit of a timestamp. */
export enum TimeUnit {
  Second = 0,
  Millisecond = 1,
  Microsecond = 2,
  Nanosecond = 3,
}

/** Key-value metadata of a schema or a field, in order. */
export class Metadata {
  keys: string[] = [];
  values: string[] = [];

  /** The value of `key`, or null. */
  get(key: string): string | null {
    for (let i = 0; i < this.keys.length; i++) {
      if (this.keys[i] == key) return this.values[i];
    }
    return null;
  }

  /** Sets `key` (replacing its value when present). */
  set(key: string, value: string): Metadata {
    for (let i = 0; i < this.keys.length; i++) {
      if (this.keys[i] == key) {
        this.values[i] = value;
        return this;
      }
    }
    this.keys.push(key);
    this.values.push(value);
    return this;
  }

  /** Removes `key` when present. */
  delete(key: string): void {
    for (let i = 0; i < this.keys.length; i++) {
      if (this.keys[i] == key) {
        this.keys.splice(i, 1);
        this.values.splice(i, 1);
        return;
      }
    }
  }

  get size(): i32 {
    return this.keys.length;
  }

  clone(): Metadata {
    const m = new Metadata();
    m.keys = this.keys.slice();
    m.values = this.values.slice();
    return m;
  }
}

/** An Arrow data type. Nested types (`Struct`, `List`, `LargeList`) hold their child fields. */
export class DataType {
  /** For `Timestamp`. */
  unit: TimeUnit = TimeUnit.Second;
  /** For `Timestamp`: the time zone, or null. */
  timezone: string | null = null;
  /** The children of `Struct` (its fields) and of `List`/`LargeList` (one: the item field). */
  children: Field[] = [];
  /** For `Other`: the Arrow type's name (`Decimal`, `Time`, `Map`...). */
  otherName: string = "";
  /** @internal For `Other`: how the IPC format lays it out (buffer count, view type...). */
  otherLayout: i32 = 0;

  constructor(public id: TypeId) {}

  static null(): DataType { return new DataType(TypeId.Null); }
  static bool(): DataType { return new DataType(TypeId.Bool); }
  static int8(): DataType { return new DataType(TypeId.Int8); }
  static int16(): DataType { return new DataType(TypeId.Int16); }
  static int32(): DataType { return new DataType(TypeId.Int32); }
  static int64(): DataType { return new DataType(TypeId.Int64); }
  static uint8(): DataType { return new DataType(TypeId.UInt8); }
  static uint16(): DataType { return new DataType(TypeId.UInt16); }
  static uint32(): DataType { return new DataType(TypeId.UInt32); }
  static uint64(): DataType { return new DataType(TypeId.UInt64); }
  static float32(): DataType { return new DataType(TypeId.Float32); }
  static float64(): DataType { return new DataType(TypeId.Float64); }
  static utf8(): DataType { return new DataType(TypeId.Utf8); }
  static largeUtf8(): DataType { return new DataType(TypeId.LargeUtf8); }
  static binary(): DataType { return new DataType(TypeId.Binary); }
  static largeBinary(): DataType { return new DataType(TypeId.LargeBinary); }
  static date32(): DataType { return new DataType(TypeId.Date32); }
  static date64(): DataType { return new DataType(TypeId.Date64); }

  static timestamp(unit: TimeUnit, timezone: string | null = null): DataType {
    const t = new DataType(TypeId.Timestamp);
    t.unit = unit;
    t.timezone = timezone;
    return t;
  }

  static struct(fields: Field[]): DataType {
    const t = new DataType(TypeId.Struct);
    t.children = fields;
    return t;
  }

  /** A list of `item` (Arrow's default item field is `new Field("item", type, true)`). */
  static list(item: Field): DataType {
    const t = new DataType(TypeId.List);
    t.children = [item];
    return t;
  }

  static largeList(item: Field): DataType {
    const t = new DataType(TypeId.LargeList);
    t.children = [item];
    return t;
  }

  /** Signed or unsigned integers of any width. */
  isInteger(): bool {
    return this.id >= TypeId.Int8 && this.id <= TypeId.UInt64;
  }

  isSignedInteger(): bool {
    return this.id >= TypeId.Int8 && this.id <= TypeId.Int64;
  }

  isUnsignedInteger(): bool {
    return this.id >= TypeId.UInt8 && this.id <= TypeId.UInt64;
  }

  isFloat(): bool {
    return this.id == TypeId.Float32 || this.id == TypeId.Float64;
  }

  /** Integers and floats: what `Column.getF64` reads. */
  isNumeric(): bool {
    return this.id >= TypeId.Int8 && this.id <= TypeId.Float64;
  }

  /** Date32, Date64, Timestamp. */
  isTemporal(): bool {
    return this.id == TypeId.Date32 || this.id == TypeId.Date64 || this.id == TypeId.Timestamp;
  }

  /** Utf8 and LargeUtf8. */
  isString(): bool {
    return this.id == TypeId.Utf8 || this.id == TypeId.LargeUtf8;
  }

  /** Utf8, LargeUtf8, Binary, LargeBinary: values held as offsets into a data buffer. */
  isVariableSize(): bool {
    return this.id >= TypeId.Utf8 && this.id <= TypeId.LargeBinary;
  }

  /** LargeUtf8, LargeBinary, LargeList: 64-bit offsets. */
  hasLargeOffsets(): bool {
    return this.id == TypeId.LargeUtf8 || this.id == TypeId.LargeBinary || this.id == TypeId.LargeList;
  }

  isList(): bool {
    return this.id == TypeId.List || this.id == TypeId.LargeList;
  }

  /** The width in bytes of one value of a fixed-width type (0 for the others, Bool included). */
  byteWidth(): i32 {
    switch (this.id) {
      case TypeId.Int8: case TypeId.UInt8: return 1;
      case TypeId.Int16: case TypeId.UInt16: return 2;
      case TypeId.Int32: case TypeId.UInt32: case TypeId.Float32: case TypeId.Date32: return 4;
      case TypeId.Int64: case TypeId.UInt64: case TypeId.Float64: case TypeId.Date64:
      case TypeId.Timestamp: return 8;
      default: return 0;
    }
  }

  /** Whether the SDK can write columns of this type (every type but `Other`, recursively). */
  isWritable(): bool {
    if (this.id == TypeId.Other) return false;
    for (let i = 0; i < this.children.length; i++) {
      if (!this.children[i].type.isWritable()) return false;
    }
    return true;
  }

  /** Same type (units, zones and children included; child names too). */
  equals(other: DataType): bool {
    if (this.id != other.id) return false;
    if (this.id == TypeId.Timestamp) {
      if (this.unit != other.unit) return false;
      const a = this.timezone, b = other.timezone;
      if ((a == null) != (b == null)) return false;
      if (a != null && b != null && a != b) return false;
    }
    if (this.id == TypeId.Other && this.otherName != other.otherName) return false;
    if (this.children.length != other.children.length) return false;
    for (let i = 0; i < this.children.length; i++) {
      const x = this.children[i], y = other.children[i];
      if (x.name != y.name || x.nullable != y.nullable || !x.type.equals(y.type)) return false;
    }
    return true;
  }

  /** Arrow's name for the type, as weir's messages write it: `int64`, `timestamp[ms, UTC]`, `list<int64>`. */
  toString(): string {
    switch (this.id) {
      case TypeId.Null: return "null";
      case TypeId.Bool: return "bool";
      case TypeId.Int8: return "int8";
      case TypeId.Int16: return "int16";
      case TypeId.Int32: return "int32";
      case TypeId.Int64: return "int64";
      case TypeId.UInt8: return "uint8";
      case TypeId.UInt16: return "uint16";
      case TypeId.UInt32: return "uint32";
      case TypeId.UInt64: return "uint64";
      case TypeId.Float32: return "float32";
      case TypeId.Float64: return "float64";
      case TypeId.Utf8: return "utf8";
      case TypeId.LargeUtf8: return "large_utf8";
      case TypeId.Binary: return "binary";
      case TypeId.LargeBinary: return "large_binary";
      case TypeId.Date32: return "date32";
      case TypeId.Date64: return "date64";
      case TypeId.Timestamp: {
        const units = ["s", "ms", "us", "ns"];
        const tz = this.timezone;
        return "timestamp[" + units[<i32>this.unit] + (tz != null ? ", " + tz : "") + "]";
      }
      case TypeId.Struct: {
        const parts = new Array<string>();
        for (let i = 0; i < this.children.length; i++) {
          parts.push(this.children[i].name + ": " + this.children[i].type.toString());
        }
        return "struct<" + parts.join(", ") + ">";
      }
      case TypeId.List: return "list<" + this.children[0].type.toString() + ">";
      case TypeId.LargeList: return "large_list<" + this.children[0].type.toString() + ">";
      default: return this.otherName;
    }
  }
}

/** A named, typed column slot of a schema (or a child of a nested type). */
export class Field {
  constructor(
    public name: string,
    public type: DataType,
    public nullable: bool = true,
    public metadata: Metadata | null = null,
  ) {}
}
