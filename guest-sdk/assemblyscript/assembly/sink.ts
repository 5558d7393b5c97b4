// A growable byte buffer in unmanaged memory: the answer buffer the host reads, reused from call
// to call so that a steady stream of calls allocates nothing for answers.

/** @internal Bytes appended at the end of a heap buffer that grows by doubling. */
export class Sink {
  ptr: usize = 0;
  cap: usize = 0;
  len: usize = 0;

  reset(): void {
    this.len = 0;
  }

  /** Makes room for `extra` more bytes. */
  reserve(extra: usize): void {
    const need = this.len + extra;
    if (need <= this.cap) return;
    let cap = max<usize>(this.cap << 1, 256);
    while (cap < need) cap <<= 1;
    this.ptr = this.ptr == 0 ? heap.alloc(cap) : heap.realloc(this.ptr, cap);
    this.cap = cap;
  }

  u8(v: u8): void {
    this.reserve(1);
    store<u8>(this.ptr + this.len, v);
    this.len += 1;
  }

  u16(v: u16): void {
    this.reserve(2);
    store<u16>(this.ptr + this.len, v);
    this.len += 2;
  }

  i32(v: i32): void {
    this.reserve(4);
    store<i32>(this.ptr + this.len, v);
    this.len += 4;
  }

  i64(v: i64): void {
    this.reserve(8);
    store<i64>(this.ptr + this.len, v);
    this.len += 8;
  }

  bytes(src: usize, n: usize): void {
    this.reserve(n);
    memory.copy(this.ptr + this.len, src, n);
    this.len += n;
  }

  zeros(n: usize): void {
    this.reserve(n);
    memory.fill(this.ptr + this.len, 0, n);
    this.len += n;
  }

  /** Pads with zeros until the length is a multiple of `a` (a power of two). */
  align(a: usize): void {
    const pad = (a - (this.len & (a - 1))) & (a - 1);
    if (pad) this.zeros(pad);
  }

  /** Appends `s` as UTF-8 (a lone surrogate becomes U+FFFD: the host gets valid UTF-8). */
  utf8(s: string): void {
    const n = <usize>String.UTF8.byteLength(s);
    this.reserve(n);
    String.UTF8.encodeUnsafe(changetype<usize>(s), s.length, this.ptr + this.len, false, String.UTF8.ErrorMode.REPLACE);
    this.len += n;
  }

  setI32(at: usize, v: i32): void {
    store<i32>(this.ptr + at, v);
  }

  setU32(at: usize, v: u32): void {
    store<u32>(this.ptr + at, v);
  }
}
