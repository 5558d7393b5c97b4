// The two imports weir grants a guest (ABI.md, "Imports"), and the helpers over them.
//
// AssemblyScript emits an import only when it is called, so a plugin that never calls
// `readFile` does not import `weir.read_file` and still loads on hosts older than it.

// @ts-ignore: decorator
@external("weir", "log")
declare function weirLog(level: i32, ptr: usize, len: usize): void;

// @ts-ignore: decorator
@external("weir", "read_file")
declare function weirReadFile(namePtr: usize, nameLen: usize, dstPtr: usize, dstCap: usize): i64;

/** Log levels of `log`: what the host's log shows the line as. */
export enum LogLevel {
  Error = 1,
  Warn = 2,
  Info = 3,
  Debug = 4,
}

/**
 * Writes one line to the host's log, tagged there with the route and the plugin. Lines are cut
 * at 4 KiB by the host.
 */
export function log(level: LogLevel, message: string): void {
  const bytes = String.UTF8.encode(message);
  weirLog(<i32>level, changetype<usize>(bytes), <usize>bytes.byteLength);
}

/**
 * The bytes of a file the route's config grants this transform (`files: { name: path }`), or
 * null when the config grants no file of that name (the sandbox offers no other files). The host
 * read the file once, when the transform loaded; the usual place to call this is `init`.
 */
export function readFile(name: string): Uint8Array | null {
  const n = String.UTF8.encode(name);
  const namePtr = changetype<usize>(n);
  const nameLen = <usize>n.byteLength;
  const size = weirReadFile(namePtr, nameLen, 0, 0);
  if (size < 0 || size > 0x7fff_ffff) return null;
  const out = new Uint8Array(<i32>size);
  const written = weirReadFile(namePtr, nameLen, out.dataStart, <usize>size);
  if (written != size) return null;
  return out;
}

/**
 * The SDK's `abort`: asc is told `--use abort=...` to call this instead of importing
 * `env.abort`, which weir does not grant. It logs the message at level error and traps: the
 * host fails the batch and re-creates the instance. Reached by a failed `assert`, an array index
 * out of range, out-of-memory in the allocator, or an SDK accessor used on the wrong type.
 */
export function weirAbort(
  message: string | null,
  fileName: string | null,
  line: u32,
  column: u32,
): void {
  let text = "abort: " + (message != null ? message : "(no message)");
  if (fileName != null) {
    text += " at " + fileName + ":" + line.toString() + ":" + column.toString();
  }
  const bytes = String.UTF8.encode(text);
  weirLog(<i32>LogLevel.Error, changetype<usize>(bytes), <usize>bytes.byteLength);
  unreachable();
}

/** Logs `message` at level error and traps (see `weirAbort`). */
export function panic(message: string): void {
  weirAbort(message, null, 0, 0);
}
