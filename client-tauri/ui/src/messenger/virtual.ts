// The arithmetic of a virtualized list with rows of different heights: measured heights
// where known, an estimate elsewhere, prefix sums for offsets, and a binary search for
// the rows in view.

export class Layout {
  /** offsets[i] = top of row i; offsets[n] = total height. */
  readonly offsets: Float64Array;

  constructor(
    readonly keys: readonly string[],
    heightOf: (key: string, index: number) => number,
  ) {
    this.offsets = new Float64Array(keys.length + 1);
    for (let i = 0; i < keys.length; i++) {
      this.offsets[i + 1] = (this.offsets[i] ?? 0) + heightOf(keys[i] ?? "", i);
    }
  }

  get total(): number {
    return this.offsets[this.keys.length] ?? 0;
  }

  top(i: number): number {
    return this.offsets[Math.max(0, Math.min(i, this.keys.length))] ?? 0;
  }

  /** The row at height y (clamped). */
  indexAt(y: number): number {
    let lo = 0;
    let hi = this.keys.length - 1;
    if (hi < 0) return 0;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((this.offsets[mid] ?? 0) <= y) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /** [start, end) of the rows that overlap [scrollTop - overscan, scrollTop + h + overscan]. */
  range(scrollTop: number, viewport: number, overscan: number): [number, number] {
    const n = this.keys.length;
    if (n === 0) return [0, 0];
    const start = this.indexAt(Math.max(0, scrollTop - overscan));
    const endY = scrollTop + viewport + overscan;
    let end = this.indexAt(endY) + 1;
    end = Math.min(n, Math.max(end, start + 1));
    return [start, end];
  }
}
