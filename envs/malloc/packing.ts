/**
 * The fast-memory layout: which buffers sit where, and the free address gaps over a live range.
 *
 * Placed buffers are kept sorted by offset. The free gaps of fast memory during a live range
 * [start, end) are then one pass over that list: skip buffers whose live range does not intersect it,
 * merge the address intervals of the others, and report the holes. A gap's start is 0 or the top
 * (offset + size) of a time-intersecting buffer, so the legal canonical offsets of the spec are exactly
 * the starts of the gaps that are large enough. O(placed buffers) per query, no allocation.
 */
import type { CompiledProgram } from './types.js';

/** Placement state of fast memory for one program. Offsets are bytes; −1 means not placed. */
export class FastMemoryLayout {
  /** [n] offset of each placed buffer, −1 otherwise. */
  readonly offsets: Float64Array;
  /** Placed buffer indices sorted by offset (ties: placement order); first `count` entries valid. */
  readonly byOffset: Int32Array;
  private placedCount = 0;

  constructor(
    readonly program: CompiledProgram,
    source?: FastMemoryLayout,
  ) {
    if (source) {
      this.offsets = source.offsets.slice();
      this.byOffset = source.byOffset.slice();
      this.placedCount = source.placedCount;
    } else {
      this.offsets = new Float64Array(program.bufferCount).fill(-1);
      this.byOffset = new Int32Array(program.bufferCount);
    }
  }

  /** Number of placed buffers. */
  get count(): number {
    return this.placedCount;
  }

  /** An independent copy. */
  clone(): FastMemoryLayout {
    return new FastMemoryLayout(this.program, this);
  }

  /** Record b at `offset` (the caller has checked legality). */
  place(b: number, offset: number): void {
    const { byOffset, offsets } = this;
    // Upper bound: first position whose offset is > `offset`, so equal offsets keep placement order.
    let lo = 0;
    let hi = this.placedCount;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (offsets[byOffset[mid]] <= offset) lo = mid + 1;
      else hi = mid;
    }
    byOffset.copyWithin(lo + 1, lo, this.placedCount);
    byOffset[lo] = b;
    offsets[b] = offset;
    this.placedCount += 1;
  }

  /**
   * Maximal free address gaps of fast memory during [start, end), lowest first, keeping only gaps of
   * at least `minLength` bytes and at most `maxGaps` of them. Writes gap starts and lengths into the
   * output arrays; returns how many it wrote.
   */
  freeGaps(start: number, end: number, minLength: number, maxGaps: number, gapStart: Float64Array, gapLength: Float64Array): number {
    const { byOffset, offsets } = this;
    const { size, start: starts, end: ends, capacity } = this.program;
    let cursor = 0; // lowest address not covered by the intervals seen so far
    let written = 0;
    for (let j = 0; j < this.placedCount; j++) {
      const p = byOffset[j];
      if (starts[p] >= end || ends[p] <= start) continue;
      const lo = offsets[p];
      if (lo > cursor) {
        const length = lo - cursor;
        if (length >= minLength && length > 0) {
          gapStart[written] = cursor;
          gapLength[written] = length;
          if (++written >= maxGaps) return written;
        }
      }
      const hi = lo + size[p];
      if (hi > cursor) cursor = hi;
    }
    const length = capacity - cursor;
    if (length >= minLength && length > 0 && written < maxGaps) {
      gapStart[written] = cursor;
      gapLength[written] = length;
      written += 1;
    }
    return written;
  }

  /** The lowest offset where b fits (first fit over the canonical offsets), or −1. */
  firstFit(b: number, scratchStart: Float64Array, scratchLength: Float64Array): number {
    const { size, start, end } = this.program;
    return this.freeGaps(start[b], end[b], size[b], 1, scratchStart, scratchLength) === 1 ? scratchStart[0] : -1;
  }

  /** The start of the smallest gap where b fits (best fit; ties: lowest), or −1. */
  bestFit(b: number, scratchStart: Float64Array, scratchLength: Float64Array): number {
    const { size, start, end } = this.program;
    const gaps = this.freeGaps(start[b], end[b], size[b], scratchStart.length, scratchStart, scratchLength);
    let best = -1;
    let bestLength = Infinity;
    for (let g = 0; g < gaps; g++) {
      if (scratchLength[g] < bestLength) {
        bestLength = scratchLength[g];
        best = scratchStart[g];
      }
    }
    return best;
  }
}

/** Scratch arrays large enough for any gap query on `program` (at most n + 1 gaps). */
export function gapScratch(program: CompiledProgram): { start: Float64Array; length: Float64Array } {
  return { start: new Float64Array(program.bufferCount + 1), length: new Float64Array(program.bufferCount + 1) };
}
