// @weir/guest-sdk: write weir transforms in AssemblyScript.
//
// The plugin's entry file imports what it needs from here, registers its transform, and
// re-exports the ABI:
//
//   import { Batch, Output, Params, Transform, register } from "@weir/guest-sdk/assembly";
//   ...
//   register((): Transform => new MyTransform());
//   export * from "@weir/guest-sdk/assembly/exports";
//
// See README.md for the guide, and guest-sdk/ABI.md for the contract it implements.

export { Batch } from "./batch";
export {
  Builder, PrimitiveBuilder, VarBuilder, BooleanBuilder, NullBuilder, StructBuilder, ListBuilder,
  Int8Builder, Int16Builder, Int32Builder, Int64Builder,
  UInt8Builder, UInt16Builder, UInt32Builder, UInt64Builder,
  Float32Builder, Float64Builder, Date32Builder, Date64Builder, TimestampBuilder,
  StringBuilder, LargeStringBuilder, BinaryBuilder, LargeBinaryBuilder,
  builderFor, listOf,
} from "./builders";
export { Column, bitAt } from "./column";
export { LogLevel, log, readFile, panic } from "./host";
export { JsonKind, JsonValue, JsonResult, Params, parseJson, parseJsonBytes, jsonString, jsonNumber } from "./json";
export { Output, NamedColumn, named, RowErrors, KEEP_COLUMN, ERROR_COLUMN, OUTPUT_MODE_KEY } from "./output";
export { Transform, CopyColumn, register } from "./transform";
export { DataType, Field, Metadata, TimeUnit, TypeId } from "./types";
export { Utf8Map } from "./utf8map";
