// StringBuilder: strings built piece by piece in one growing buffer.
// Concatenating with + copies the whole string each time, and the minimal
// runtime frees garbage only when the hook returns (exports.ts), so a
// string built from n pieces with + costs O(n^2) memory until then; and
// Array<string>.join does the same when a build optimizes for size
// (shrinkLevel >= 1). The builder's buffer doubles: O(n) in all.

export class StringBuilder {
  private buf: ArrayBuffer;
  private bytes: i32 = 0;

  constructor(capacity: i32 = 32) {
    this.buf = new ArrayBuffer(max(capacity, 8) << 1);
  }

  /** The number of UTF-16 code units written. */
  get length(): i32 {
    return this.bytes >> 1;
  }

  private reserve(n: i32): usize {
    const need = this.bytes + n;
    if (need > this.buf.byteLength) {
      const grown = new ArrayBuffer(max(need, this.buf.byteLength << 1));
      memory.copy(changetype<usize>(grown), changetype<usize>(this.buf), <usize>this.bytes);
      this.buf = grown;
    }
    return changetype<usize>(this.buf) + <usize>this.bytes;
  }

  append(s: string): StringBuilder {
    const n = s.length << 1;
    memory.copy(this.reserve(n), changetype<usize>(s), <usize>n);
    this.bytes += n;
    return this;
  }

  /** Appends s's code units [start, end). */
  appendRange(s: string, start: i32, end: i32): StringBuilder {
    if (end <= start) return this;
    const n = (end - start) << 1;
    memory.copy(this.reserve(n), changetype<usize>(s) + (<usize>start << 1), <usize>n);
    this.bytes += n;
    return this;
  }

  /** Appends one UTF-16 code unit. */
  appendCode(c: i32): StringBuilder {
    store<u16>(this.reserve(2), <u16>c);
    this.bytes += 2;
    return this;
  }

  /** Forgets what was written, keeping the buffer. */
  reset(): void {
    this.bytes = 0;
  }

  toString(): string {
    return String.UTF16.decodeUnsafe(changetype<usize>(this.buf), <usize>this.bytes);
  }
}
