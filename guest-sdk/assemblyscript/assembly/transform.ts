// The transform a plugin author writes, and its registration.

import { Batch } from "./batch";
import { Params } from "./json";
import { Output } from "./output";

/** A column the host sets itself from the input (manifest key `copy`). */
export class CopyColumn {
  /**
   * @param name the column to set (added, or replacing the one of that name)
   * @param path the input field, dotted into structs: `id`, `customer.name`
   */
  constructor(public name: string, public path: string) {}
}

/**
 * A weir transform. Extend it, override `transform` (and `init` to read params, `reads` to
 * name the columns it needs), and register a factory once at the top level of the plugin:
 *
 * ```ts
 * class AtLeast extends Transform {
 *   min: f64 = 0;
 *   init(p: Params): string | null {
 *     p.allowOnly(["min"]);
 *     this.min = p.requiredNumber("min");
 *     return p.error;
 *   }
 *   reads(): string[] | null { return ["n"]; }
 *   transform(batch: Batch): Output { ... }
 * }
 * register((): Transform => new AtLeast());
 * export * from "@weir/guest-sdk/assembly/exports";
 * ```
 *
 * AssemblyScript has no exceptions: failures are values. `init` returns an error message (or
 * null), `transform` may return `Output.fail(message)`.
 */
export abstract class Transform {
  /**
   * Reads the route's params (a JSON object; `{}` when the YAML gives none). Returns null when
   * they are fine, else a message naming the field at fault: the plugin is then refused at load
   * (and by `weir validate`). The default accepts only `{}`.
   */
  init(params: Params): string | null {
    params.allowOnly([]);
    return params.error;
  }

  /** The top-level columns `transform` reads, or null for all. Only these cross into the sandbox. */
  reads(): string[] | null {
    return null;
  }

  /** Columns the host removes after it applied each answer (manifest `drop`), or null. */
  drops(): string[] | null {
    return null;
  }

  /** The only columns that remain after each answer, in this order (manifest `select`), or null. */
  selects(): string[] | null {
    return null;
  }

  /** Columns the host copies from the input itself (manifest `copy`; merge answers only), or null. */
  copies(): CopyColumn[] | null {
    return null;
  }

  /** Answers one batch, which holds the columns of `reads` (those the input has). */
  abstract transform(batch: Batch): Output;
}

/** @internal The registered factory. */
export let factory: (() => Transform) | null = null;

/**
 * Registers the plugin's transform: `register((): Transform => new MyTransform())`, once, at the
 * top level of the plugin's entry file. `weir_init` builds one instance per sandbox with it.
 */
export function register(make: () => Transform): void {
  factory = make;
}
